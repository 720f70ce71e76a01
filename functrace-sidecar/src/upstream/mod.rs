//! Connections to upstreams, opened on demand and kept for reuse: HTTP/1.1 connections
//! carry one request at a time, and one HTTP/2 connection per upstream carries them all.
//!
//! A small pool of its own rather than hyper-util's legacy client: the legacy client's
//! keyed pool (hashing, checkout and return bookkeeping, a dispatch task per request) cost
//! about a tenth of the sidecar's CPU time per proxied request. HTTP/1.1 goes through
//! hyper's client connections or the sidecar's own codec ([`h1`]), HTTP/2 through
//! [`http2`].

pub mod h1;
pub mod h1_hyper;
mod http2;

use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fnv::FnvHashMap;
use http::{Request, Response};
use http_body_util::Either;
use hyper::body::Incoming;
use hyper::client::conn::{http1, TrySendError};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::body::RequestBody;

/// An error of either version's exchange, as bodies and hyper's services carry it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// An idle HTTP/1.1 connection older than this is closed rather than reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle HTTP/1.1 connections kept per upstream; beyond it, they close after their exchange.
const MAX_IDLE: usize = 1024;

/// The open connections, by upstream address (from the sidecar's config, so a fast hash
/// rather than one that resists chosen keys).
#[derive(Default)]
pub struct Upstreams {
    /// HTTP/1.1 connections of the sidecar's own codec.
    pub h1: h1::Pool,
    http1: Mutex<FnvHashMap<Arc<str>, Vec<Idle>>>,
    http2: Mutex<FnvHashMap<Arc<str>, h2::client::SendRequest<Bytes>>>,
}

/// An HTTP/1.1 connection back in the pool; it may still be finishing its last response.
struct Idle {
    sender: http1::SendRequest<RequestBody>,
    since: Instant,
}

/// Why a request did not get a response.
#[derive(Debug)]
pub enum SendError {
    /// No connection: refused, unreachable, or the connect timed out.
    Connect(io::Error),
    /// A kept connection was closed by the upstream as the request went out on it, before
    /// any answer: the upstream ended it while it was idle (HTTP/1.1), or said it would
    /// take no more streams (HTTP/2 GOAWAY). An idempotent request can go again.
    Closed(BoxError),
    /// The connection failed during the exchange (reset, closed early, a bad response).
    Exchange(BoxError),
    /// The client's request body failed: the client went away mid-request, and the
    /// upstream request went with it.
    ClientGone,
}

/// A request as the client that takes it upstream has it.
pub enum Outbound<'a> {
    /// hyper's client: its URI in the form the version needs (origin-form for HTTP/1.1,
    /// absolute for HTTP/2); over HTTP/1.1 its connections' read buffers `head_limit` bytes
    /// at most (hyper's own default would take an answer head of 400 KiB).
    Hyper {
        request: Request<RequestBody>,
        http2: bool,
        head_limit: usize,
    },
    /// The own codec's, its connections' read buffers `head_limit` bytes at most.
    Own {
        request: h1_hyper::OwnRequest<'a>,
        head_limit: usize,
    },
}

impl Upstreams {
    /// Sends a request to `address` and waits for the response head.
    pub async fn send(
        &self,
        address: &Arc<str>,
        outbound: Outbound<'_>,
    ) -> Result<Response<UpstreamBody>, SendError> {
        match outbound {
            Outbound::Hyper {
                request,
                http2: true,
                ..
            } => {
                let response = self.send_http2(address, request).await?;
                Ok(response.map(Either::Right))
            }
            Outbound::Hyper {
                request,
                head_limit,
                ..
            } => {
                let response = self.send_http1(address, request, head_limit).await?;
                Ok(response.map(|body| Either::Left(Either::Left(body))))
            }
            Outbound::Own {
                request,
                head_limit,
            } => {
                let response = h1_hyper::send(&self.h1, address, request, head_limit).await?;
                Ok(response.map(|body| Either::Left(Either::Right(body))))
            }
        }
    }

    async fn send_http1(
        &self,
        address: &Arc<str>,
        mut request: Request<RequestBody>,
        head_limit: usize,
    ) -> Result<Response<Incoming>, SendError> {
        loop {
            let (mut sender, reused) = match self.idle_http1(address) {
                Some(sender) => (sender, true),
                // Boxed: connecting is rare, and its large future would otherwise make every
                // request's future larger, and costlier to move.
                None => (Box::pin(connect_http1(address, head_limit)).await?, false),
            };
            match sender.try_send_request(request).await {
                Ok(response) => {
                    self.put_http1(address, sender);
                    return Ok(response);
                }
                Err(error) => request = unsent(error, reused)?,
            }
        }
    }

    async fn send_http2(
        &self,
        address: &Arc<str>,
        request: Request<RequestBody>,
    ) -> Result<Response<http2::ResponseBody>, SendError> {
        loop {
            let shared = lock(&self.http2).get(address).cloned();
            let (sender, reused) = match shared {
                Some(sender) => (sender, true),
                None => {
                    let sender = Box::pin(connect_http2(address)).await?;
                    lock(&self.http2).insert(address.clone(), sender.clone());
                    (sender, false)
                }
            };
            match sender.ready().await {
                Ok(sender) => return http2::send(sender, request)?.await,
                Err(error) => {
                    lock(&self.http2).remove(address);
                    // The connection is gone and the request never went out: a new
                    // connection may carry it.
                    if !reused {
                        return Err(SendError::Exchange(error.into()));
                    }
                }
            }
        }
    }

    /// The most recently used connection to `address` that is ready for a request; closed
    /// and expired ones are dropped on the way.
    fn idle_http1(&self, address: &Arc<str>) -> Option<http1::SendRequest<RequestBody>> {
        let mut pool = lock(&self.http1);
        let idle = pool.get_mut(address)?;
        idle.retain(|idle| !idle.sender.is_closed());
        while let Some(index) = idle.iter().rposition(|idle| idle.sender.is_ready()) {
            let idle = idle.swap_remove(index);
            if idle.since.elapsed() < IDLE_TIMEOUT {
                return Some(idle.sender);
            }
        }
        None
    }

    fn put_http1(&self, address: &Arc<str>, sender: http1::SendRequest<RequestBody>) {
        let mut pool = lock(&self.http1);
        let idle = pool.entry(address.clone()).or_default();
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }
}

/// The request back when it never went out on a kept connection: the upstream had closed
/// that connection, so a new one may carry it. Otherwise why the send failed: a message cut
/// short, or a reset, is `Closed` on a kept connection (hyper does not say whether a byte
/// of answer had come before the reset; only idempotent requests without a body go again,
/// so sending one twice is safe either way).
fn unsent(
    mut error: TrySendError<Request<RequestBody>>,
    reused: bool,
) -> Result<Request<RequestBody>, SendError> {
    match error.take_message() {
        Some(unsent) if reused => Ok(unsent),
        _ if client_body_failed(error.error()) => Err(SendError::ClientGone),
        _ if reused && (error.error().is_incomplete_message() || reset(error.error())) => {
            Err(SendError::Closed(error.into_error().into()))
        }
        _ => Err(SendError::Exchange(error.into_error().into())),
    }
}

/// Whether the connection failed with the peer's reset ([`h1::is_reset`]).
fn reset(error: &(dyn std::error::Error + 'static)) -> bool {
    causes(error).any(|error| error.downcast_ref::<io::Error>().is_some_and(h1::is_reset))
}

/// Whether sending failed because reading the client's request body did.
fn client_body_failed(error: &(dyn std::error::Error + 'static)) -> bool {
    causes(error).any(|error| {
        error
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_user)
    })
}

/// `error` and the errors under it.
fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |error| error.source())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn connect(address: &str) -> Result<TcpStream, SendError> {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return Err(SendError::Connect(error)),
        Err(_) => {
            let error = io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
            return Err(SendError::Connect(error));
        }
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

async fn connect_http1(
    address: &str,
    head_limit: usize,
) -> Result<http1::SendRequest<RequestBody>, SendError> {
    let io = TokioIo::new(connect(address).await?);
    // hyper refuses a read buffer under 8 KiB (the config's `max_header_bytes` is at least).
    let (sender, connection) = http1::Builder::new()
        .max_buf_size(head_limit.max(8192))
        .handshake(io)
        .await
        .map_err(|error| SendError::Exchange(error.into()))?;
    // Ends when the upstream closes, or after the last exchange once the pool drops it.
    tokio::spawn(connection);
    Ok(sender)
}

async fn connect_http2(address: &str) -> Result<h2::client::SendRequest<Bytes>, SendError> {
    http2::handshake(connect(address).await?).await
}

/// An upstream's response body: `Left` over HTTP/1.1 (hyper's client, or the own codec's),
/// `Right` over HTTP/2.
pub type UpstreamBody = Either<Either<Incoming, h1_hyper::PeerBody>, http2::ResponseBody>;
