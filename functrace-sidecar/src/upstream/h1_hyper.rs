//! HTTP/1.1 to upstreams on the sidecar's own codec for requests that hyper's server read
//! (HTTP/2 clients, and HTTP/1.1 clients of a listener that may send to HTTP/2): the
//! request written from its `http` parts, the answer's head read with the codec into a
//! `Response`, its body a hyper [`Body`] that reads the kept connection and puts it back in
//! the pool at the body's end. Instead of hyper's client (a task per connection, and
//! channels to it), which cost 6k more user-space instructions per request
//! (`PROTOCOL=h2 benches/callgrind.sh`: 56.4k against 50.3k when this landed).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::h1::{
    body_or_answer, connect_peer, failed, read_answer, upstream_failed, BodyWent, Peer, Pool,
};
use super::{BoxError, SendError};
use crate::body::RequestBody;
use crate::h1::chunked::{chunk_start, ChunkedDecoder, CHUNK_END, LAST_CHUNK};
use crate::h1::head::kind_of;
use crate::h1::io::{BodyError, FLUSH_AT};
use crate::h1::write::{end_head, field};
use crate::h1::{FieldKind, Framing, ResponseHead};

/// The start of a request's HTTP/1.1 head, written once for all its attempts: the request
/// line (origin form) and the fields less those that stay at this hop (hop-by-hop ones and
/// those `Connection` names, framing, trace context, request id, `Expect`: the kinds of
/// [`kind_of`]); then this hop's, which `added` writes.
pub struct OwnHead {
    bytes: Vec<u8>,
    /// A `Host` field came (else one is written for each attempt).
    has_host: bool,
}

/// One attempt's request: the head's start, the `Host` when none came (the client's
/// authority, or else the upstream's address), the body.
pub struct OwnRequest<'a> {
    head: &'a OwnHead,
    method: &'a Method,
    host: Option<&'a str>,
    body: RequestBody,
}

impl OwnHead {
    pub fn start<B>(request: &Request<B>, added: impl FnOnce(&mut Vec<u8>)) -> OwnHead {
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(request.method().as_str().as_bytes());
        out.push(b' ');
        let target = request.uri().path_and_query();
        out.extend_from_slice(target.map_or("/", |target| target.as_str()).as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        let headers = request.headers();
        // (HTTP/2 requests carry no `Connection`: the look costs one probe.)
        let listed: Vec<&str> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(',').map(str::trim))
            .collect();
        let mut has_host = false;
        for (name, value) in headers {
            let passes = match kind_of(name.as_str().as_bytes(), value.as_bytes()) {
                FieldKind::Host => {
                    has_host = true;
                    true
                }
                FieldKind::Other => !listed
                    .iter()
                    .any(|option| option.eq_ignore_ascii_case(name.as_str())),
                _ => false,
            };
            if passes {
                field(&mut out, name.as_str().as_bytes(), value.as_bytes());
            }
        }
        added(&mut out);
        OwnHead {
            bytes: out,
            has_host,
        }
    }

    /// The request of one attempt: `host`, the client's authority if it named one.
    pub fn request<'a>(
        &'a self,
        method: &'a Method,
        host: Option<&'a str>,
        body: RequestBody,
    ) -> OwnRequest<'a> {
        OwnRequest {
            head: self,
            method,
            host,
            body,
        }
    }
}

/// Sends `request` to `address` on a kept connection or a new one (its read buffer
/// `head_limit` bytes), and reads the final answer's head; 1xx answers are dropped, as
/// hyper's client drops them.
pub async fn send(
    pool: &Pool,
    address: &Arc<str>,
    request: OwnRequest<'_>,
    head_limit: usize,
) -> Result<Response<PeerBody>, SendError> {
    let OwnRequest {
        head,
        method,
        host,
        mut body,
    } = request;
    let (mut peer, reused) = match pool.take(address) {
        Some(peer) => (peer, true),
        // Boxed: connecting is rare, and its future would make every request's larger.
        None => (Box::pin(connect_peer(address, head_limit)).await?, false),
    };
    let framing = request_framing(method, &body);
    let mut out = Vec::with_capacity(head.bytes.len() + 64);
    out.extend_from_slice(&head.bytes);
    if !head.has_host {
        field(&mut out, b"host", host.unwrap_or(address).as_bytes());
    }
    end_head(&mut out, Some(framing), false);
    let went = if framing.has_body() {
        let (mut reading, mut to) = peer.split();
        let sending = send_body(&mut to, &mut out, &mut body, framing);
        // Boxed, as `exchange`'s: most requests have no body.
        Box::pin(body_or_answer(&mut reading, sending)).await
    } else {
        BodyWent::Sent(send_body(&mut peer.stream, &mut out, &mut body, framing).await)
    };
    let cut_off = match went {
        BodyWent::Sent(Ok(())) => false,
        BodyWent::Sent(Err(BodyError::Read(_))) => return Err(SendError::ClientGone),
        // An upstream that stops taking the body may have answered already: its answer
        // goes back.
        BodyWent::Sent(Err(BodyError::Write(_))) | BodyWent::Answered => true,
        BodyWent::Failed(error) => return Err(upstream_failed(failed(&peer, error), false)),
    };
    let mut answer = ResponseHead::default();
    // (Bytes the upstream sent while the body went are answer already.)
    let mut answered = !peer.data().is_empty();
    loop {
        let read = read_answer(&mut peer, &mut answer, &mut answered).await;
        read.map_err(|error| upstream_failed(error, reused && !cut_off))?;
        match answer.status {
            101 => {
                return Err(malformed(
                    "101 Switching Protocols to a request that asked none",
                ))
            }
            100..=199 => peer.consume(answer.fields.len),
            _ => break,
        }
    }
    let framing = answer
        .framing(peer.data(), *method == Method::HEAD)
        .map_err(|error| malformed(&error.to_string()))?;
    let (status, headers) = response_parts(&peer, &answer, framing)?;
    peer.consume(answer.fields.len);
    let reusable = !answer.fields.close && framing != Framing::UntilClose && !cut_off;
    let keep = reusable.then(|| (pool.clone(), address.clone()));
    let mut response = Response::new(PeerBody::new(peer, framing, keep));
    *response.status_mut() = status;
    *response.version_mut() = Version::HTTP_11;
    *response.headers_mut() = headers;
    Ok(response)
}

fn malformed(why: &str) -> SendError {
    let error = io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed answer: {why}"),
    );
    SendError::Exchange(error.into())
}

/// How the body goes: none when the client's stream ended with its head (with a zero
/// length for the methods that define a meaning for content, as RFC 9110 §8.6 asks of a
/// POST), its length when the client declared one, chunks otherwise.
fn request_framing(method: &Method, body: &RequestBody) -> Framing {
    if body.is_end_stream() {
        let content = matches!(*method, Method::POST | Method::PUT | Method::PATCH);
        return if content {
            Framing::Length(0)
        } else {
            Framing::Empty
        };
    }
    body.size_hint()
        .exact()
        .map_or(Framing::Chunked, Framing::Length)
}

/// Writes `out` (the head) and the body framed as `framing`: head and a first piece of
/// body in one write. A body that comes out longer or shorter than its length fails as the
/// client's: never a message whose end the upstream reads elsewhere.
async fn send_body<W: AsyncWrite + Unpin>(
    to: &mut W,
    out: &mut Vec<u8>,
    body: &mut RequestBody,
    framing: Framing,
) -> Result<(), BodyError> {
    let mismatch = || {
        BodyError::Read(io::Error::other(
            "the body's length is not its declared one",
        ))
    };
    let mut left = match framing {
        Framing::Length(length) => length,
        _ => 0,
    };
    if framing.has_body() {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|error| BodyError::Read(io::Error::other(error)))?;
            // Trailers go nowhere: an HTTP/1.1 upstream of an HTTP/2 client gets none.
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if data.is_empty() {
                continue;
            }
            if framing == Framing::Chunked {
                chunk_start(out, data.len());
                out.extend_from_slice(&data);
                out.extend_from_slice(CHUNK_END);
            } else {
                left = left.checked_sub(data.len() as u64).ok_or_else(mismatch)?;
                out.extend_from_slice(&data);
            }
            // Sent as it comes: the upstream may be waiting for it (a stream of events).
            if out.len() >= FLUSH_AT || !body.is_end_stream() {
                to.write_all(out).await.map_err(BodyError::Write)?;
                out.clear();
            }
        }
        if left > 0 {
            return Err(mismatch());
        }
        if framing == Framing::Chunked {
            out.extend_from_slice(LAST_CHUNK);
        }
    }
    to.write_all(out).await.map_err(BodyError::Write)
}

/// The answer's status and fields, less those that describe the connection or its framing
/// (a length passes when the body goes as it is).
fn response_parts(
    peer: &Peer,
    answer: &ResponseHead,
    framing: Framing,
) -> Result<(StatusCode, HeaderMap), SendError> {
    let status =
        StatusCode::from_u16(answer.status).map_err(|error| malformed(&error.to_string()))?;
    // One copy of the head, which the values share.
    let head = Bytes::copy_from_slice(&peer.data()[..answer.fields.len]);
    let fields = &answer.fields;
    let pass_length = matches!(framing, Framing::Length(_) | Framing::Empty);
    let mut headers = HeaderMap::with_capacity(fields.fields.len());
    for each in &fields.fields {
        let passes = !fields.stays(&head, each)
            || pass_length && each.kind == FieldKind::ContentLength
            || matches!(each.kind, FieldKind::TraceContext | FieldKind::RequestId);
        if !passes {
            continue;
        }
        let name = HeaderName::from_bytes(&head[each.name.clone()]);
        let value = HeaderValue::from_maybe_shared(head.slice(each.value.clone()));
        match (name, value) {
            (Ok(name), Ok(value)) => headers.append(name, value),
            _ => return Err(malformed("a field hyper cannot carry")),
        };
    }
    Ok((status, headers))
}

/// An answer's body read from its upstream connection, which goes back to the pool when the
/// body ends whole with nothing after it (and it may be reused).
pub struct PeerBody {
    /// `None` once the body has ended or failed.
    peer: Option<Peer>,
    left: Left,
    keep: Option<(Pool, Arc<str>)>,
}

/// What is left of the body.
enum Left {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
}

impl PeerBody {
    fn new(peer: Peer, framing: Framing, keep: Option<(Pool, Arc<str>)>) -> PeerBody {
        let left = match framing {
            Framing::Empty => Left::Length(0),
            Framing::Length(length) => Left::Length(length),
            Framing::Chunked => Left::Chunked(ChunkedDecoder::default()),
            Framing::UntilClose => Left::UntilClose,
        };
        let mut body = PeerBody {
            peer: Some(peer),
            left,
            keep,
        };
        if matches!(body.left, Left::Length(0)) {
            body.end();
        }
        body
    }

    /// The body ended whole: the connection goes back when it may.
    fn end(&mut self) {
        if let (Some(peer), Some((pool, address))) = (self.peer.take(), self.keep.take()) {
            // Bytes after the answer were never asked for: that connection is not trusted.
            if peer.data().is_empty() {
                pool.put(&address, peer);
            }
        }
    }

    fn fail(&mut self, error: io::Error) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.peer = None;
        Poll::Ready(Some(Err(error.into())))
    }
}

impl Body for PeerBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            let Some(peer) = this.peer.as_mut() else {
                return Poll::Ready(None);
            };
            let data = peer.data();
            let (consumed, taken, done) = match &mut this.left {
                Left::Length(left) => {
                    let take = data.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    *left -= take as u64;
                    (take, 0..take, *left == 0)
                }
                Left::Chunked(decoder) => match decoder.step(data) {
                    Ok(step) => (step.consumed, step.data, step.done),
                    Err(error) => {
                        return this.fail(io::Error::new(io::ErrorKind::InvalidData, error))
                    }
                },
                Left::UntilClose => (data.len(), 0..data.len(), false),
            };
            let frame = (!taken.is_empty()).then(|| Bytes::copy_from_slice(&data[taken]));
            peer.consume(consumed);
            if done {
                this.end();
                return Poll::Ready(frame.map(|frame| Ok(Frame::data(frame))));
            }
            if let Some(frame) = frame {
                return Poll::Ready(Some(Ok(Frame::data(frame))));
            }
            match ready!(peer.poll_fill(cx)) {
                Ok(0) if matches!(this.left, Left::UntilClose) => {
                    this.peer = None;
                    return Poll::Ready(None);
                }
                Ok(0) => return this.fail(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => {}
                Err(error) => return this.fail(error),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.peer.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.peer, &self.left) {
            (None, _) => SizeHint::with_exact(0),
            (Some(_), Left::Length(left)) => SizeHint::with_exact(*left),
            (Some(_), _) => SizeHint::default(),
        }
    }
}
