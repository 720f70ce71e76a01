//! HTTP/1.1 to upstreams on the sidecar's own codec ([`crate::h1`]): connections kept per
//! upstream and checked for a close before reuse, and one request's exchange on one, up to
//! the final answer's head. What comes after the head (writing it on, the body) is the
//! caller's: it decides what the client's connection becomes.

use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::h1::io::{forward_body, BodyError, Buffered, Reading};
use crate::h1::{Framing, ResponseHead};
use crate::keyed::Keyed;
use crate::upstream::{connect, lock, SendError, IDLE_TIMEOUT, MAX_IDLE};

/// A connection to an upstream, with its read buffer.
pub type Peer = Buffered<TcpStream>;

/// Idle connections, by upstream address: a handle, which an answer's body keeps to put its
/// connection back.
#[derive(Default, Clone)]
pub struct Pool {
    idle: Arc<Mutex<Keyed<Arc<str>, Vec<Idle>>>>,
}

/// A kept connection, and since when it is idle.
type Idle = (Peer, Instant);

impl Pool {
    /// The most recently used idle connection to `address` that is still open. An upstream
    /// may close a kept connection without saying so first (hyper does, after an answer
    /// whose request body it did not read): a read that would block says it is still open;
    /// an end of stream, or bytes nobody asked for, that it is not.
    pub fn take(&self, address: &Arc<str>) -> Option<Peer> {
        let mut pool = lock(&self.idle);
        let idle = idle_of(&mut pool, address);
        while let Some((peer, since)) = idle.pop() {
            let open = matches!(peer.stream.try_read(&mut [0; 1]),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock);
            if open && since.elapsed() < IDLE_TIMEOUT {
                return Some(peer);
            }
        }
        None
    }

    /// Keeps `peer`, whose last exchange ended whole, for the next request to `address`.
    pub fn put(&self, address: &Arc<str>, peer: Peer) {
        let mut pool = lock(&self.idle);
        let idle = idle_of(&mut pool, address);
        if idle.len() < MAX_IDLE {
            idle.push((peer, Instant::now()));
        }
    }
}

/// `address`'s idle connections in `pool`.
fn idle_of<'a>(pool: &'a mut Keyed<Arc<str>, Vec<Idle>>, address: &Arc<str>) -> &'a mut Vec<Idle> {
    // `Arc<str>`'s `==` compares the pointers first: a route's requests share its address.
    pool.of(|at| at == address, || address.clone())
}

/// A new connection to `address`, its read buffer `buffer` bytes (the longest head).
pub async fn connect_peer(address: &str, buffer: usize) -> Result<Peer, SendError> {
    Ok(Buffered::starting_small(connect(address).await?, buffer))
}

/// Why an exchange did not reach the upstream's final answer.
#[derive(Debug)]
pub enum ExchangeError {
    /// Reading the client's body failed: cut short (`UnexpectedEof`), malformed chunks
    /// (`InvalidData`), too slow (`TimedOut`), or its connection failed. Or passing a 1xx
    /// answer on to the client failed.
    Client(io::Error),
    /// The upstream closed the connection, or reset it (the error), before a byte of
    /// answer: on a kept connection, it had closed it while idle (and reset it if the
    /// request came after the close).
    Unanswered(Option<io::Error>),
    /// The upstream failed: a reset mid-answer, an answer cut short or malformed.
    Upstream(io::Error),
}

/// How the request went out.
#[derive(Debug, Clone, Copy)]
pub struct Sent {
    /// The request body's length, without its framing.
    pub body_bytes: u64,
    /// The upstream stopped taking the body before its end (and answered all the same):
    /// the client's connection cannot go on, the rest of its body unread.
    pub cut_off: bool,
}

/// Sends a request, its head in `out` (left empty) and its body (framed as `framing`) from
/// `client`, on `peer`; passes any 1xx answers on to `client` when `interim` (an HTTP/1.0
/// client is sent none: RFC 9110 §15.2), and parses the final answer's head into `answer`,
/// its bytes still in `peer`.
pub async fn exchange<C>(
    client: &mut Buffered<C>,
    peer: &mut Peer,
    out: &mut Vec<u8>,
    framing: Framing,
    interim: bool,
    answer: &mut ResponseHead,
) -> Result<Sent, ExchangeError>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let (body_bytes, cut_off) = if framing.has_body() {
        let (mut reading, mut to) = peer.split();
        let sending = forward_body(client, &mut to, out, framing, None);
        // Boxed: most requests have no body, and this future would make every exchange's
        // larger.
        match Box::pin(body_or_answer(&mut reading, sending)).await {
            BodyWent::Sent(Ok(bytes)) => (bytes, false),
            // An upstream that stops taking the body may have answered already (without
            // reading it, say): its answer goes back.
            BodyWent::Sent(Err(BodyError::Write(_))) | BodyWent::Answered => (0, true),
            BodyWent::Sent(Err(BodyError::Read(error))) => {
                return Err(ExchangeError::Client(error))
            }
            BodyWent::Failed(error) => return Err(failed(peer, error)),
        }
    } else {
        match forward_body(client, &mut peer.stream, out, framing, None).await {
            Ok(bytes) => (bytes, false),
            Err(BodyError::Write(_)) => (0, true),
            Err(BodyError::Read(error)) => return Err(ExchangeError::Client(error)),
        }
    };
    out.clear();
    // (Bytes the upstream sent while the body went are answer already.)
    let mut answered = !peer.data().is_empty();
    loop {
        read_answer(peer, answer, &mut answered).await?;
        if answer.status >= 200 {
            return Ok(Sent {
                body_bytes,
                cut_off,
            });
        }
        // 1xx (100 Continue, 103 Early Hints): passed on as it came, then the final answer.
        let len = answer.fields.len;
        if interim {
            client
                .stream
                .write_all(&peer.data()[..len])
                .await
                .map_err(ExchangeError::Client)?;
        }
        peer.consume(len);
    }
}

/// How a request's body went, as far as the upstream let it.
pub(super) enum BodyWent<T> {
    /// It went (or failed) before the upstream answered.
    Sent(T),
    /// The upstream refused the request (a final answer of 300 or more) first, the answer's
    /// head now in the peer's buffer; the rest of the body is not sent.
    Answered,
    /// The upstream failed (a reset) first.
    Failed(io::Error),
}

/// Runs `sending` (a request's body on its way to the upstream) while reading what the
/// upstream sends meanwhile into `reading`'s buffer. An upstream may refuse a request before
/// it has the whole body (413, 401) and read no more of it: waiting for the body to go
/// whole, the proxy would wait for the route's timeout and lose the answer. RFC 9112 §9.6
/// asks a client to watch for an error answer while it sends a body and to cease sending
/// one the server does not wish to receive; an answer of 2xx says it does (it may stream
/// its answer to a body it still reads), so the body goes on. A 1xx or 2xx answer, an end
/// of stream, a head too long or malformed are read again after the body, as without this.
pub(super) async fn body_or_answer<T>(
    reading: &mut Reading<'_>,
    sending: impl Future<Output = T>,
) -> BodyWent<T> {
    let answer = async {
        let mut head = ResponseHead::default();
        // The 1xx heads already read.
        let mut interim = 0;
        loop {
            match reading.fill().await {
                Ok(0) => return None,
                Ok(_) => {}
                Err(error) => return Some(Err(error)),
            }
            loop {
                match head.parse(&reading.data()[interim..]) {
                    Ok(true) if head.status < 200 => interim += head.fields.len,
                    Ok(true) if head.status >= 300 => return Some(Ok(())),
                    // 2xx: the upstream took the request, and may be streaming its answer
                    // to a body it still reads.
                    Ok(true) => return None,
                    Ok(false) => break,
                    Err(_) => return None,
                }
            }
        }
    };
    tokio::select! {
        biased;
        sent = sending => BodyWent::Sent(sent),
        // (`None` disables this branch: the body goes on.)
        Some(answer) = answer => match answer {
            Ok(()) => BodyWent::Answered,
            Err(error) => BodyWent::Failed(error),
        },
    }
}

/// The upstream's failure while the request's body went, as [`read_answer`] would report it.
pub(super) fn failed(peer: &Peer, error: io::Error) -> ExchangeError {
    if peer.data().is_empty() && is_reset(&error) {
        ExchangeError::Unanswered(Some(error))
    } else {
        ExchangeError::Upstream(error)
    }
}

/// Reads an answer's head on `peer` into `answer`, its bytes left in `peer`. `answered`:
/// whether a byte of answer came before (a close or reset before any is
/// [`ExchangeError::Unanswered`]).
pub(super) async fn read_answer(
    peer: &mut Peer,
    answer: &mut ResponseHead,
    answered: &mut bool,
) -> Result<(), ExchangeError> {
    loop {
        // (Nothing to parse before the first read.)
        let parsed = match peer.data() {
            [] => Ok(false),
            data => answer.parse(data),
        };
        match parsed {
            Ok(true) => return Ok(()),
            Ok(false) if peer.is_full() => {
                let error = io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("answer head over {} bytes", peer.data().len()),
                );
                return Err(ExchangeError::Upstream(error));
            }
            Ok(false) => match peer.fill().await {
                Ok(0) if !*answered => return Err(ExchangeError::Unanswered(None)),
                Ok(0) => return Err(ExchangeError::Upstream(cut_short())),
                Ok(_) => *answered = true,
                Err(error) if !*answered && is_reset(&error) => {
                    return Err(ExchangeError::Unanswered(Some(error)))
                }
                Err(error) => return Err(ExchangeError::Upstream(error)),
            },
            Err(error) => {
                let error = io::Error::new(io::ErrorKind::InvalidData, error);
                return Err(ExchangeError::Upstream(error));
            }
        }
    }
}

/// Why the upstream gave no answer, as the proxy's retries see it: a kept connection it had
/// closed is [`SendError::Closed`] (an idempotent request can go again).
pub fn upstream_failed(error: ExchangeError, reused: bool) -> SendError {
    match error {
        ExchangeError::Unanswered(_) if reused => {
            SendError::Closed("the upstream closed a kept connection".into())
        }
        ExchangeError::Unanswered(None) => {
            SendError::Exchange("the upstream closed the connection without answering".into())
        }
        ExchangeError::Unanswered(Some(error)) | ExchangeError::Upstream(error) => {
            SendError::Exchange(error.into())
        }
        ExchangeError::Client(_) => SendError::ClientGone,
    }
}

/// Whether `error` is the peer's reset (or a write into a connection it had reset): on a
/// kept connection, an upstream that closed it while idle, the request already on its way.
pub fn is_reset(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

fn cut_short() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the upstream closed the connection mid-answer",
    )
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    /// A connection to `listener`, with the listener's end kept open beside it.
    async fn peer(listener: &TcpListener) -> (Peer, TcpStream) {
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        (
            Buffered::starting_small(client.unwrap(), 1024),
            accepted.unwrap().0,
        )
    }

    #[tokio::test]
    async fn each_upstream_gets_back_its_own_connections_in_any_order() {
        let (a, b) = (
            TcpListener::bind("127.0.0.1:0").await.unwrap(),
            TcpListener::bind("127.0.0.1:0").await.unwrap(),
        );
        let address = |listener: &TcpListener| -> Arc<str> {
            listener.local_addr().unwrap().to_string().into()
        };
        let (to_a, to_b) = (address(&a), address(&b));
        // Equal to `to_a` but not the same `Arc`: a reload's.
        let reloaded = address(&a);
        let pool = Pool::default();
        assert!(pool.take(&to_a).is_none());
        let mut kept = Vec::new();
        for (listener, to) in [(&a, &to_a), (&b, &to_b), (&a, &reloaded), (&b, &to_b)] {
            let (peer, server_end) = peer(listener).await;
            pool.put(to, peer);
            kept.push(server_end);
        }
        let upstream = |peer: Option<Peer>| peer.map(|peer| peer.stream.peer_addr().unwrap());
        let (at_a, at_b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        for (to, expected) in [
            (&to_b, Some(at_b)),
            (&to_a, Some(at_a)),
            (&reloaded, Some(at_a)),
            (&to_a, None),
            (&to_b, Some(at_b)),
            (&to_b, None),
        ] {
            assert_eq!(upstream(pool.take(to)), expected, "taken for {to}");
        }
    }
}
