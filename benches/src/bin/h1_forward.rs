//! A reverse proxy that only forwards HTTP/1.1, on the sidecar's own codec
//! (`functrace_sidecar::h1`): the `h1forward` target of `benches/proxy.sh`. Beside `forward`
//! (the same work on hyper), it shows what that codec's design reaches before any work of the
//! sidecar's own: a reused buffer per connection, heads parsed in place and written on with
//! their fields as they came, head and small body in one write, bodies framed by the codec,
//! upstream connections kept for reuse (each checked for a close before it is reused), an
//! early answer from an upstream that stops taking the body passed back. Built as `forward`
//! is: tokio's single-threaded runtime, a locked pool. No tracing, metrics, routes, deadlines
//! or retries beyond one for a bodiless request on a kept connection the upstream had closed.
//! HTTP/1.1 only. A benchmark target only.
//!
//! Usage: `h1_forward LISTEN UPSTREAM`; the first stdout line is `listening on ADDR`.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use functrace_sidecar::h1::io::{forward_body, BodyError, Buffered, FLUSH_AT};
use functrace_sidecar::h1::write::{request_head, response_head};
use functrace_sidecar::h1::{Framing, RequestHead, ResponseHead};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// A head must fit in this (the sidecar's default `max_header_bytes` is 64 KiB).
const BUFFER: usize = 64 * 1024;

/// Idle connections to the upstream.
type Pool = Arc<Mutex<Vec<Peer>>>;

type Peer = Buffered<TcpStream>;

/// What went wrong with the upstream: `unanswered` when a kept connection took the request
/// and closed without a byte of answer (the upstream had closed it while idle).
struct UpstreamError {
    unanswered: bool,
}

impl From<io::Error> for UpstreamError {
    fn from(_: io::Error) -> Self {
        UpstreamError { unanswered: false }
    }
}

async fn serve_client(stream: TcpStream, pool: Pool, upstream: Arc<str>) -> io::Result<()> {
    let mut client = Peer::new(stream, BUFFER);
    let mut head = RequestHead::default();
    let mut answer = ResponseHead::default();
    let mut out = Vec::with_capacity(FLUSH_AT + 1024);
    let mut sent = Vec::new();
    loop {
        loop {
            match head.parse(client.data()) {
                Ok(true) => break,
                Ok(false) if client.fill().await? > 0 => {}
                Ok(false) if client.data().is_empty() => return Ok(()),
                Ok(false) => return refuse(&mut client.stream, 431).await,
                Err(error) => return refuse(&mut client.stream, error.status()).await,
            }
        }
        let framing = match head.framing(client.data()) {
            Ok(framing) => framing,
            Err(error) => return refuse(&mut client.stream, error.status()).await,
        };
        let head_request = &client.data()[head.method.clone()] == b"HEAD";
        let close = head.fields.close;
        out.clear();
        request_head(
            &mut out,
            client.data(),
            &head,
            upstream.as_bytes(),
            &[],
            framing,
        );
        client.consume(head.fields.len);
        // A bodiless request can go again on a new connection when a kept one turns out
        // closed: all of it is its head.
        let bodiless = matches!(framing, Framing::Empty | Framing::Length(0));
        if bodiless {
            sent.clear();
            sent.extend_from_slice(&out);
        }
        let mut first = true;
        let client_closes = loop {
            let (mut peer, reused) = match take(&pool) {
                Some(peer) => (peer, true),
                None => match connect(&upstream).await {
                    Ok(peer) => (peer, false),
                    Err(_) => return refuse(&mut client.stream, 502).await,
                },
            };
            let exchange = Exchange {
                framing,
                head_request,
                close,
            };
            match exchange
                .run(&mut client, &mut peer, &mut out, &mut answer)
                .await
            {
                Ok(done) => {
                    if done.upstream_reusable {
                        pool.lock().unwrap().push(peer);
                    }
                    break done.client_closes;
                }
                Err(error) if error.unanswered && reused && bodiless && first => {
                    first = false;
                    out.clear();
                    out.extend_from_slice(&sent);
                }
                Err(_) => return refuse(&mut client.stream, 502).await,
            }
        };
        if client_closes {
            return Ok(());
        }
    }
}

/// One request's exchange with the upstream, its head already in `out`.
struct Exchange {
    framing: Framing,
    head_request: bool,
    /// The client's connection closes after the answer.
    close: bool,
}

/// How an exchange left the two connections.
struct Done {
    upstream_reusable: bool,
    client_closes: bool,
}

impl Exchange {
    /// Sends the request (its head in `out`, its body from `client`) on `peer`, and the
    /// answer back.
    async fn run(
        &self,
        client: &mut Peer,
        peer: &mut Peer,
        out: &mut Vec<u8>,
        answer: &mut ResponseHead,
    ) -> Result<Done, UpstreamError> {
        // An upstream that stops taking the body may have answered already (without
        // reading it, say): its answer goes back, and the client's connection closes, the
        // rest of its body unread.
        let cut_off = match forward_body(client, &mut peer.stream, out, self.framing, None).await {
            Ok(_) => false,
            Err(BodyError::Write(_)) => true,
            Err(BodyError::Read(error)) => return Err(error.into()),
        };
        let mut answered = false;
        loop {
            loop {
                match answer.parse(peer.data()) {
                    Ok(true) => break,
                    Ok(false) if peer.fill().await? > 0 => answered = true,
                    Ok(false) => {
                        return Err(UpstreamError {
                            unanswered: !answered,
                        })
                    }
                    Err(_) => return Err(UpstreamError { unanswered: false }),
                }
            }
            if answer.status >= 200 {
                break;
            }
            // 1xx: passed on as it came, then the final answer.
            client
                .stream
                .write_all(&peer.data()[..answer.fields.len])
                .await?;
            peer.consume(answer.fields.len);
        }
        let framing = answer
            .framing(peer.data(), self.head_request)
            .map_err(|_| UpstreamError { unanswered: false })?;
        let until_close = framing == Framing::UntilClose;
        // A bodiless answer (to HEAD, a 304) passes its Content-Length as it came.
        let written = (framing != Framing::Empty).then_some(framing);
        let client_closes = self.close || until_close || cut_off;
        out.clear();
        response_head(out, peer.data(), answer, &[], written, client_closes);
        let upstream_reusable = !answer.fields.close && !until_close && !cut_off;
        peer.consume(answer.fields.len);
        forward_body(peer, &mut client.stream, out, framing, None)
            .await
            .map_err(BodyError::into_inner)?;
        Ok(Done {
            upstream_reusable,
            client_closes,
        })
    }
}

async fn refuse(stream: &mut TcpStream, status: u16) -> io::Result<()> {
    let answer =
        format!("HTTP/1.1 {status} Refused\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    stream.write_all(answer.as_bytes()).await
}

/// The most recently used idle connection the upstream has not closed. An upstream may
/// close a kept connection without saying so first (hyper does, after an answer whose
/// request body it did not read): a read that would block says it is still open; an end of
/// stream, or bytes nobody asked for, that it is not.
fn take(pool: &Pool) -> Option<Peer> {
    let mut idle = pool.lock().unwrap();
    while let Some(peer) = idle.pop() {
        match peer.stream.try_read(&mut [0; 1]) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Some(peer),
            _ => continue,
        }
    }
    None
}

async fn connect(upstream: &str) -> io::Result<Peer> {
    let stream = TcpStream::connect(upstream).await?;
    stream.set_nodelay(true)?;
    Ok(Peer::new(stream, BUFFER))
}

async fn serve(listen: &str, upstream: Arc<str>) -> io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    println!("listening on {}", listener.local_addr()?);
    io::stdout().flush()?;
    let pool = Pool::default();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_client(stream, pool.clone(), upstream.clone()));
    }
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!("usage: h1_forward LISTEN UPSTREAM");
        std::process::exit(2);
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?
        .block_on(serve(&listen, upstream.into()))
}
