//! The proxy's phases (`proxy.rs`) on the sidecar's own HTTP/1.1 path (`http1 = "own"`):
//! an HTTP/1.1 client connection read with the codec ([`crate::h1`]), each request sent to
//! an HTTP/1.1 upstream on a kept connection ([`crate::upstream::h1`]). The request's head
//! goes on as the bytes that came in, less the fields this hop writes anew (trace context,
//! request id, framing, hop-by-hop); its body streams in its framing, as does the answer's.
//!
//! The phases are `proxy.rs`'s, in its order: context, message, route, rate limit, fault,
//! the context for the next hop, send (retries within the route's timeout), record. The
//! connection's deadlines are `conn.rs`'s (a head not whole in time: 408; idle: closed; a
//! client that stops reading: cut off), and one more while a request body is read: the
//! client may keep its next bytes waiting `body_timeout_ms` at most (408). The upstream may
//! keep the next bytes of its answer's body waiting as long, no longer: the answer is cut
//! there, and the connection closes.
//!
//! A connection goes on after an answer only when the message boundaries are certain: a
//! refusal before a request body was read, a failed exchange mid-body, an answer to the
//! end of the connection, or an upstream that stopped taking the body close it.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use functrace_mesh::http_span::{self, REQUEST_ID};
use functrace_mesh::propagation::{self, Received};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tokio::time::Sleep;

use crate::body::Outcome;
use crate::conn::Watched;
use crate::h1::io::{forward_body, forward_body_plain, BodyError, Buffered};
use crate::h1::write::{end_head, field, origin_form, request_head_start, response_head};
use crate::h1::{FieldKind, Framing, HeadError, RequestHead, ResponseHead};
use crate::policy::message;
use crate::policy::retry::Retry;
use crate::policy::route::{self, Chosen, Upstream};
use crate::proxy::{admit_route, body_timeout, refusal_of, Proxy};
use crate::record::{cut_path, Described, Record};
use crate::refusal::{write_answer, Refusal};
use crate::upstream::h1::{connect_peer, exchange, upstream_failed, ExchangeError, Peer, Sent};
use crate::upstream::SendError;
use crate::Settings;

/// One client connection on the own path, and the buffers its requests reuse.
pub struct Connection {
    proxy: Proxy,
    client: Buffered<Watched>,
    head: RequestHead,
    answer: ResponseHead,
    /// What goes out next: a head, with a small body.
    out: Vec<u8>,
    /// A bodiless request's head, kept for another attempt.
    again: Vec<u8>,
    /// The route's timeout: one timer for the connection's requests, made at the first
    /// (see [`expired`]).
    timer: Option<Pin<Box<Sleep>>>,
    /// Bytes a head may have (`max_header_bytes`): the read buffers' size.
    head_limit: usize,
    stop: watch::Receiver<bool>,
}

/// How the connection stands after a request.
#[derive(PartialEq, Eq)]
enum Next {
    Request,
    Close,
    /// A reload took the listener off the own path: the request, unread, goes to hyper's
    /// server with the rest of the connection.
    HandOver,
}

impl Connection {
    pub fn new(
        proxy: Proxy,
        client: Buffered<Watched>,
        head_limit: usize,
        stop: watch::Receiver<bool>,
    ) -> Connection {
        Connection {
            proxy,
            client,
            head: RequestHead::default(),
            answer: ResponseHead::default(),
            out: Vec::with_capacity(8 * 1024),
            again: Vec::new(),
            timer: None,
            head_limit,
            stop,
        }
    }

    /// Serves requests until the client or a failure ends the connection, or the sidecar
    /// stops (the request in flight finishes first). Answers the connection, its next
    /// request's head unread, when a reload has taken the listener off the own path (a
    /// route of it now speaks HTTP/2): hyper's server serves it on.
    pub async fn serve(mut self) -> Option<Buffered<Watched>> {
        while self.read_head().await {
            match self.request().await {
                Next::Request => {}
                Next::Close => break,
                Next::HandOver => return Some(self.client),
            }
        }
        let _ = self.client.stream.shutdown().await;
        None
    }

    /// Reads until a whole head is parsed: `false` when the connection ends instead (the
    /// client closed or went quiet, the sidecar stops, or the head was refused).
    async fn read_head(&mut self) -> bool {
        loop {
            match self.head.parse(self.client.data()) {
                Ok(true) => return true,
                Ok(false) => {}
                Err(error) => return self.refuse_head(&error).await,
            }
            if self.client.is_full() {
                return self.refuse_head(&HeadError::TooManyFields).await;
            }
            // Between requests, the sidecar's stopping closes the connection (while it
            // waits for one, `serve.rs` does).
            if self.client.data().is_empty() && *self.stop.borrow() {
                return false;
            }
            match self.client.fill().await {
                Ok(0) | Err(_) => return false,
                Ok(_) => {}
            }
        }
    }

    /// A head the codec refused, answered as hyper's server answers one (no record: no
    /// request was read); the connection closes.
    async fn refuse_head(&mut self, error: &HeadError) -> bool {
        let (status, reason) = if self.client.is_full() {
            (431, format!("request head over {} bytes", self.head_limit))
        } else {
            (error.status(), error.to_string())
        };
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        self.out.clear();
        let body = format!("{reason}\n");
        write_answer(&mut self.out, status, &reason, body.as_bytes(), true);
        let _ = self.client.stream.write_all(&self.out).await;
        false
    }

    /// One request, its head parsed, through the phases.
    async fn request(&mut self) -> Next {
        let proxy = self.proxy.clone();
        let settings = proxy.shared.settings();
        if !proxy.own_http1(&settings) {
            return Next::HandOver;
        }
        let started = Instant::now();
        let (head, buf) = (&self.head, self.client.data());
        let framing = match head.framing(buf) {
            Ok(framing) => Ok(framing),
            // Refused as a request (with a record), as on hyper's path.
            Err(HeadError::UnknownCoding(coding)) => Err(Refusal::UnknownCoding(coding)),
            Err(error) => {
                self.refuse_head(&error).await;
                return Next::Close;
            }
        };
        let incoming = received(head, buf);
        let (context, joined) = proxy.context(&settings, &incoming);
        let request_id = head
            .fields
            .first(buf, FieldKind::RequestId)
            .and_then(|id| HeaderValue::from_bytes(id).ok())
            .unwrap_or_else(http_span::new_request_id);
        let service = &settings.config.service;
        let method = Method::from_bytes(&buf[head.method.clone()]).unwrap_or(Method::GET);
        let max_path = settings.config.tracing.max_path_tag_length;
        let describe = || describe(head, buf, &method, max_path);
        let mut record = Record::start(
            &proxy,
            started,
            service,
            context,
            joined,
            describe,
            request_id.clone(),
        );
        let admitted = match framing {
            Ok(framing) => self
                .admit(&settings, &mut record)
                .await
                .map(|r| (r, framing)),
            Err(refusal) => Err(refusal),
        };
        let (route, framing) = match admitted {
            Ok(admitted) => admitted,
            Err(refusal) => {
                let unread = self
                    .head
                    .framing(self.client.data())
                    .unwrap_or(Framing::Chunked);
                self.client.consume(self.head.fields.len);
                return self.refuse(record, &refusal, unread).await;
            }
        };
        // The upstream sees the context: the same one inbound, the CLIENT span's outbound.
        let upstream = route.pick();
        let tracing = &settings.config.tracing;
        self.out.clear();
        let buf = self.client.data();
        request_head_start(&mut self.out, buf, &self.head, upstream.address.as_bytes());
        let out = &mut self.out;
        let (propagation, format) = (tracing.propagation.into(), tracing.b3_format.into());
        incoming.fields(&context, propagation, format, |name, value| {
            field(out, name.as_bytes(), value);
        });
        field(out, REQUEST_ID.as_str().as_bytes(), request_id.as_bytes());
        end_head(out, Some(framing), false);
        let client_closes = self.head.fields.close;
        let http10 = self.head.fields.minor_version == 0;
        let expects_continue = self.head.expects_continue(self.client.data());
        self.client.consume(self.head.fields.len);

        let bodiless = !framing.has_body();
        let retry = Retry::new(&method, bodiless, route.attempts);
        let body_timeout = body_timeout(&settings);
        let attempts = Attempts {
            route: &route,
            first: upstream,
            retry,
            deadline: started + route.timeout,
            framing,
            body_timeout,
            expects_continue,
            http10,
        };
        let (peer, address, sent) = match self.send(&mut record, attempts).await {
            Ok(sent) => sent,
            Err(refusal) => {
                // Whatever of the body was not read yet stays unread.
                let unread = if bodiless { Framing::Empty } else { framing };
                return self.refuse(record, &refusal, unread).await;
            }
        };
        record.request_sent(sent.body_bytes);
        let ending = Ending {
            head_request: method == Method::HEAD,
            sent,
            client_closes,
            http10,
            body_timeout,
        };
        self.answer_client(record, peer, &address, ending).await
    }

    /// The phases before sending: the message, route and egress, rate limit, fault.
    async fn admit<'s>(
        &self,
        settings: &'s Settings,
        record: &mut Record,
    ) -> Result<Chosen<'s>, Refusal> {
        let (head, buf) = (&self.head, self.client.data());
        message::check_h1(head, buf)?;
        let route = route::choose(settings, self.proxy.direction, self.proxy.inbound, || {
            route::authority_h1(head, buf)
        })?;
        admit_route(record, route).await
    }

    /// Sends the request (its head in `out`) to one of the route's upstreams, trying again
    /// when that is safe, within the route's timeout: the connection the answer's head came
    /// on, its address, and how the request went.
    async fn send(
        &mut self,
        record: &mut Record,
        attempts: Attempts<'_, '_>,
    ) -> Result<(Peer, Arc<str>, Sent), Refusal> {
        // Only a bodiless request goes again: all of it is its head.
        if attempts.retry.may_follow(1) {
            self.again.clear();
            self.again.extend_from_slice(&self.out);
        }
        let mut upstream = attempts.first;
        let mut attempt = 1;
        let mut timer = self
            .timer
            .take()
            .unwrap_or_else(|| Box::pin(tokio::time::sleep_until(attempts.deadline.into())));
        let result = loop {
            record.upstream(&upstream.address, &upstream.version);
            let address = upstream.address.clone();
            let tried = self.attempt(&address, &attempts);
            let tried = tokio::select! {
                biased;
                tried = tried => Some(tried),
                () = expired(timer.as_mut(), attempts.deadline) => None,
            };
            let refusal = match tried {
                Some(Ok((peer, sent))) => break Ok((peer, address, sent)),
                Some(Err((error, body))) => {
                    if attempts.retry.again(attempt, &error) {
                        attempt += 1;
                        upstream = attempts.route.pick();
                        self.out.clear();
                        self.out.extend_from_slice(&self.again);
                        continue;
                    }
                    refusal_of(error, body)
                }
                // The upstream cannot answer a request it has not had whole, when the client
                // owes the rest: the client's fault.
                None if self.client.stream.waiting_for_body() => Refusal::ClientTooSlow,
                None => Refusal::TimedOut(attempts.route.timeout),
            };
            self.client.stream.reading_body(None);
            break Err(refusal);
        };
        self.timer = Some(timer);
        result
    }

    /// One attempt: a kept connection or a new one, the exchange up to the answer's head.
    /// Its failure, with how the client's body went.
    async fn attempt(
        &mut self,
        address: &Arc<str>,
        attempts: &Attempts<'_, '_>,
    ) -> Result<(Peer, Sent), (SendError, Outcome)> {
        let framing = attempts.framing;
        let upstreams = &self.proxy.shared.upstreams;
        let (mut peer, reused) = match upstreams.h1.take(address) {
            Some(peer) => (peer, true),
            // Boxed: connecting is rare, and its future would make every request's larger.
            None => match Box::pin(connect_peer(address, self.head_limit)).await {
                Ok(peer) => (peer, false),
                Err(error) => return Err((error, Outcome::Ended)),
            },
        };
        let has_body = framing.has_body();
        if has_body && attempts.expects_continue {
            // The client waits for this before it sends the body (the upstream was not
            // asked: `Expect` stays at this hop).
            let continued = self.client.stream.write_all(CONTINUE).await;
            continued.map_err(|_| (SendError::ClientGone, Outcome::Receiving))?;
        }
        self.client
            .stream
            .reading_body(has_body.then_some(attempts.body_timeout));
        let exchanged = exchange(
            &mut self.client,
            &mut peer,
            &mut self.out,
            framing,
            !attempts.http10,
            &mut self.answer,
        )
        .await;
        self.client.stream.reading_body(None);
        match exchanged {
            Ok(sent) => Ok((peer, sent)),
            Err(ExchangeError::Client(error)) => {
                let body = match error.kind() {
                    std::io::ErrorKind::TimedOut => Outcome::TooSlow,
                    std::io::ErrorKind::InvalidData => Outcome::Malformed,
                    _ => Outcome::Receiving,
                };
                Err((SendError::ClientGone, body))
            }
            Err(error) => Err((upstream_failed(error, reused), Outcome::Ended)),
        }
    }

    /// Passes the upstream's answer (its head parsed from `peer`) on to the client; the
    /// record ends with its body.
    async fn answer_client(
        &mut self,
        mut record: Record,
        mut peer: Peer,
        address: &Arc<str>,
        ending: Ending,
    ) -> Next {
        let framing = match self.answer.framing(peer.data(), ending.head_request) {
            Ok(framing) => framing,
            Err(error) => {
                let refusal = Refusal::Reset(format!("malformed answer: {error}"));
                return self.refuse(record, &refusal, Framing::Empty).await;
            }
        };
        record.answered(self.answer.status);
        // An HTTP/1.0 client reads no chunks: the data goes as it is, to the close.
        let dechunk = ending.http10 && framing == Framing::Chunked;
        let until_close = framing == Framing::UntilClose || dechunk;
        let closes =
            ending.client_closes || until_close || ending.sent.cut_off || *self.stop.borrow();
        let mut added: [(&[u8], &[u8]); 2] = [(b"", b""); 2];
        let mut count = 0;
        if ending.http10 && !closes {
            added[count] = (b"connection", b"keep-alive");
            count += 1;
        }
        // An answer that came without a `Date` gets one here (RFC 9110 §6.6.1).
        let date;
        if !self.answer.fields.has(peer.data(), b"date") {
            date = crate::date::now();
            added[count] = (b"date", &date);
            count += 1;
        }
        // A bodiless answer (to HEAD, a 304) passes its Content-Length as it came.
        let written = match framing {
            Framing::Empty => None,
            _ if dechunk => Some(Framing::UntilClose),
            framing => Some(framing),
        };
        self.out.clear();
        response_head(
            &mut self.out,
            peer.data(),
            &self.answer,
            &added[..count],
            written,
            closes,
        );
        let reusable =
            !self.answer.fields.close && framing != Framing::UntilClose && !ending.sent.cut_off;
        peer.consume(self.answer.fields.len);
        let to = &mut self.client.stream;
        let stall = Some(ending.body_timeout);
        let forwarded = if dechunk {
            forward_body_plain(&mut peer, to, &mut self.out, stall).await
        } else {
            forward_body(&mut peer, to, &mut self.out, framing, stall).await
        };
        match forwarded {
            Ok(bytes) => {
                record.completed(bytes);
                // Kept for the next request only after its answer went whole, and with
                // nothing after it: bytes no request asked for would be read as the next
                // request's answer (a desynchronised connection).
                if reusable && peer.data().is_empty() {
                    self.proxy.shared.upstreams.h1.put(address, peer);
                }
            }
            Err(BodyError::Read(error)) => {
                record.upstream_body_failed(&error);
                return Next::Close;
            }
            // The client went away or stopped reading: the record, dropped, says which.
            Err(BodyError::Write(_)) => return Next::Close,
        }
        if closes {
            Next::Close
        } else {
            Next::Request
        }
    }

    /// Answers from the sidecar itself. `unread`: the request body not read yet, which
    /// closes the connection after the answer (where the next request would start is not
    /// known without reading it).
    async fn refuse(&mut self, record: Record, refusal: &Refusal, unread: Framing) -> Next {
        let closes = self.head.fields.close
            || refusal.closes_connection()
            || unread.has_body()
            || *self.stop.borrow();
        self.out.clear();
        record.refuse_h1(refusal, &mut self.out, closes);
        if self.client.stream.write_all(&self.out).await.is_err() || closes {
            return Next::Close;
        }
        Next::Request
    }
}

/// Resolves at `deadline`, on the connection's one `timer`. The timer is moved only when
/// it would fire after `deadline` (or has fired): each request's deadline is later than the
/// last one's, so it usually stays, fires early, and is moved on then. So a request costs no
/// timer operation (tokio's timer wheel takes a lock, and may wake its driver, on each).
async fn expired(mut timer: Pin<&mut Sleep>, deadline: Instant) {
    let deadline = tokio::time::Instant::from_std(deadline);
    loop {
        if timer.is_elapsed() || timer.deadline() > deadline {
            timer.as_mut().reset(deadline);
        }
        timer.as_mut().await;
        if tokio::time::Instant::now() >= deadline {
            return;
        }
    }
}

/// What the send phase works with.
struct Attempts<'r, 's> {
    route: &'r Chosen<'s>,
    first: &'r Upstream,
    retry: Retry,
    /// The route's timeout, from the request's start: for every attempt together.
    deadline: Instant,
    framing: Framing,
    body_timeout: Duration,
    /// The client waits for `100 Continue` before it sends the body.
    expects_continue: bool,
    /// The client speaks HTTP/1.0: no 1xx answers.
    http10: bool,
}

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// What decides how an answer goes to the client and what the connection does after.
struct Ending {
    head_request: bool,
    sent: Sent,
    /// The client asked for the connection to close.
    client_closes: bool,
    http10: bool,
    /// The longest the upstream may keep the next bytes of its answer's body waiting.
    body_timeout: Duration,
}

/// The request's trace headers, read as `propagation::extract` reads them. The map is made
/// only when the request has any.
fn received(head: &RequestHead, buf: &[u8]) -> Received {
    let mut headers = HeaderMap::new();
    let trace = head.fields.fields.iter();
    for field in trace.filter(|field| field.kind == FieldKind::TraceContext) {
        let name = HeaderName::from_bytes(&buf[field.name.clone()]);
        let value = HeaderValue::from_bytes(&buf[field.value.clone()]);
        if let (Ok(name), Ok(value)) = (name, value) {
            headers.append(name, value);
        }
    }
    propagation::extract(&headers)
}

/// What the span says of the request: as `Described::of`, from the head.
fn describe(head: &RequestHead, buf: &[u8], method: &Method, max_path: usize) -> Described {
    let (_, target) = origin_form(&buf[head.target.clone()]);
    let path = match target
        .split(|&byte| byte == b'?')
        .next()
        .unwrap_or_default()
    {
        [] => &b"/"[..],
        path => path,
    };
    let path = cut_path(&String::from_utf8_lossy(path), max_path).to_owned();
    let version = match head.fields.minor_version {
        0 => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    Described {
        name: http_span::http_name(method.as_str(), &path),
        method: method.clone(),
        path,
        protocol: http_span::protocol(version),
    }
}
