//! The record phase: a request's span and metrics, started when the request comes in and
//! written once when the exchange ends (the response body ends or is dropped: the span ends
//! when the body ends, as everywhere in `functrace_mesh::http_span`); and the response body
//! that ends it.

use std::borrow::Cow;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use functrace::TraceContext;
use functrace_mesh::export::TagText::{Escaped, Plain};
use functrace_mesh::export::{Endpoint, Kind, Reporter, Span};
use functrace_mesh::http_span::{self, GrpcStatus};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, Version};
use http_body_util::Full;
use hyper::body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::body::{Outcome, Progress, RequestBody};
use crate::conn::Busy;
use crate::hop_by_hop::remove_hop_by_hop;
use crate::metrics::Direction;
use crate::proxy::Proxy;
use crate::refusal::{write_answer, Refusal, REASON};
use crate::stall::{stalled, Stall};
use crate::upstream::{BoxError, UpstreamBody};
use crate::Shared;

/// A request's span and metrics, recorded once when the exchange ends: when the response
/// body ends, or when it is dropped (the client went away: `error=cancelled`).
pub struct Record {
    shared: Arc<Shared>,
    direction: Direction,
    started: Instant,
    /// Set when the request is sampled and spans are reported. Boxed: a record moves with
    /// its request, and this is large.
    sampled: Option<Box<Sampled>>,
    /// The route's name once routed, and the version of the upstream chosen. Options rather
    /// than placeholder strings, which would cost an allocation each per request.
    route: Option<Arc<str>>,
    version: Option<Arc<str>>,
    status: u16,
    error: Option<String>,
    /// The request body sent upstream, when there is one: its bytes and how it ended.
    request_body: Option<Arc<Progress>>,
    response_size: u64,
    finished: bool,
    /// The connection is busy until the exchange ends.
    busy: Busy,
}

/// What a sampled request's span says of the request, asked for only when it is sampled.
pub struct Described {
    /// The span's name (`functrace_mesh::http_span::span_name`).
    pub name: String,
    pub method: Method,
    pub path: String,
    /// The `http.protocol` tag.
    pub protocol: &'static str,
}

impl Described {
    /// What hyper's parsed request says, its path cut to `max_path` bytes.
    pub fn of<B>(request: &Request<B>, max_path: usize) -> Described {
        let path = cut_path(request.uri().path(), max_path);
        Described {
            name: http_span::span_name_with_path(request, path),
            method: request.method().clone(),
            path: path.to_owned(),
            protocol: http_span::protocol(request.version()),
        }
    }
}

/// `path` cut to at most `max` bytes, at a character's boundary (`tracing.max_path_tag_length`).
pub fn cut_path(path: &str, max: usize) -> &str {
    if path.len() <= max {
        return path;
    }
    let end = (0..=max).rev().find(|&end| path.is_char_boundary(end));
    &path[..end.unwrap_or(0)]
}

impl Record {
    /// The record of a request that came in at `started` (the clock read once for the
    /// route's deadline and the record's latency).
    pub fn start(
        proxy: &Proxy,
        started: Instant,
        service: &str,
        context: TraceContext,
        joined: bool,
        describe: impl FnOnce() -> Described,
        request_id: HeaderValue,
    ) -> Record {
        let reporter = proxy.shared.reporter.as_ref();
        let reporter = reporter.filter(|_| context.sampling.is_sampled());
        let sampled = reporter.map(|reporter| {
            let kind = match proxy.direction {
                Direction::Inbound => Kind::Server,
                Direction::Outbound => Kind::Client,
            };
            let Described {
                name,
                method,
                path,
                protocol,
            } = describe();
            // Left out when it is the reporter's (a reload may change it), which writes its
            // own without a copy per span.
            let service = if service == reporter.service_name() {
                String::new()
            } else {
                service.to_owned()
            };
            let mut span = Span::new(&context, name, SystemTime::now(), Duration::ZERO, service)
                .with_kind(kind);
            span.shared = (kind == Kind::Server && joined).then_some(true);
            if kind == Kind::Server {
                span.remote_endpoint = Some(Endpoint::socket(proxy.peer));
            }
            Box::new(Sampled {
                span,
                method,
                path,
                protocol,
                peer: proxy.peer_text.clone(),
                request_id,
                upstream: None,
                fault: None,
                grpc_code: None,
                grpc_message: None,
            })
        });
        Record {
            shared: proxy.shared.clone(),
            direction: proxy.direction,
            started,
            sampled,
            route: None,
            version: None,
            status: 0,
            error: None,
            request_body: None,
            response_size: 0,
            finished: false,
            busy: proxy.conn.request(),
        }
    }

    /// The route's name, once routed.
    pub fn routed(&mut self, name: &Arc<str>) {
        self.route = Some(name.clone());
    }

    /// A fault injected into this request, for the span's `fault` tag.
    pub fn fault(&mut self, fault: &'static str) {
        if let Some(sampled) = &mut self.sampled {
            sampled.fault = Some(fault);
        }
    }

    /// `body`, counted into the request size when it has any data to count; the
    /// connection stays busy while it is read, though the answer may be done before it.
    pub fn counted(&mut self, body: RequestBody) -> RequestBody {
        if body.is_end_stream() {
            return body;
        }
        let progress = self.request_body.get_or_insert_with(Arc::default);
        body.counting(progress, self.busy.another())
    }

    /// How the request body went (`Ended` when there is none).
    pub fn request_body(&self) -> Outcome {
        self.request_body
            .as_ref()
            .map_or(Outcome::Ended, |body| body.outcome())
    }

    pub fn upstream(&mut self, address: &Arc<str>, version: &Arc<str>) {
        self.version = Some(version.clone());
        if let Some(sampled) = &mut self.sampled {
            sampled.upstream = Some(address.clone());
            if self.direction == Direction::Outbound {
                let endpoint = match address.parse() {
                    Ok(addr) => Endpoint::socket(addr),
                    Err(_) => Endpoint::service(self.route.as_deref().unwrap_or_default()),
                };
                sampled.span.remote_endpoint = Some(endpoint);
            }
        }
    }

    /// Answers the client from the sidecar itself: `status`, with the reason in a header
    /// and the body, and on an error span.
    pub fn refuse(mut self, refusal: Refusal) -> Response<ResponseBody> {
        let (reason, body) = self.refused(&refusal);
        let mut response = Response::new(ResponseBody::Local {
            body: Full::new(body),
        });
        *response.status_mut() = refusal.status_on_the_wire();
        if let Ok(value) = HeaderValue::from_str(&reason) {
            response.headers_mut().insert(REASON, value);
        }
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        // HTTP/1.1 only: hyper leaves it out of HTTP/2 responses.
        if refusal.closes_connection() {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        self.finish();
        response
    }

    /// [`Record::refuse`] on the sidecar's own HTTP/1.1 path: the answer written into
    /// `out`; `close`: the connection closes after it (it does too when the refusal says so).
    pub fn refuse_h1(mut self, refusal: &Refusal, out: &mut Vec<u8>, close: bool) {
        let (reason, body) = self.refused(refusal);
        let close = close || refusal.closes_connection();
        write_answer(out, refusal.status_on_the_wire(), &reason, &body, close);
        self.finish();
    }

    /// Notes the sidecar's own answer: its status, error and size. Its reason and body.
    fn refused<'r>(&mut self, refusal: &'r Refusal) -> (Cow<'r, str>, Bytes) {
        let reason = refusal.reason();
        self.status = refusal.status().as_u16();
        if !(200..400).contains(&self.status) {
            self.error = Some(reason.clone().into_owned());
        }
        let body = Bytes::from(format!("{reason}\n"));
        self.response_size = body.len() as u64;
        (reason, body)
    }

    /// The upstream's answer has `status` (the sidecar's own HTTP/1.1 path).
    pub fn answered(&mut self, status: u16) {
        self.status = status;
        if http_span::is_error_status(status) {
            self.error = Some(status.to_string());
        }
    }

    /// The request body went upstream whole: `bytes` of data (the sidecar's own HTTP/1.1
    /// path, which has no [`RequestBody`] to count it).
    pub fn request_sent(&mut self, bytes: u64) {
        if bytes > 0 {
            self.request_body = Some(Arc::new(Progress::ended(bytes)));
        }
    }

    /// The exchange ended whole, with `bytes` of response body sent to the client.
    pub fn completed(mut self, bytes: u64) {
        self.response_size = bytes;
        self.finish();
    }

    /// The exchange failed after the answer's head went to the client: the upstream's body
    /// broke off (the client's leaving is told by dropping the record).
    pub fn upstream_body_failed(mut self, error: &std::io::Error) {
        self.error = Some(format!("upstream body failed: {error}"));
        self.finish();
    }

    /// Passes the upstream's response on; the record ends with its body, which may keep
    /// its next bytes waiting `stall_limit` at most (then it fails).
    pub fn forward(
        mut self,
        response: Response<UpstreamBody>,
        stall_limit: Duration,
    ) -> Response<ResponseBody> {
        let (mut parts, body) = response.into_parts();
        remove_hop_by_hop(&mut parts.headers);
        // The client's connection has its own version (an HTTP/1.0 upstream must not turn
        // off the client's keep-alive).
        parts.version = Version::HTTP_11;
        self.status = parts.status.as_u16();
        if http_span::is_error_status(self.status) {
            self.error = Some(parts.status.as_str().to_owned());
        }
        self.grpc(&parts.headers);
        // An empty body may never be polled: the exchange is over now.
        let record = if body.is_end_stream() {
            self.finish();
            None
        } else {
            Some(self)
        };
        let body = ResponseBody::Upstream {
            body,
            record,
            stall: Stall::default(),
            stall_limit,
        };
        Response::from_parts(parts, body)
    }

    /// How a gRPC call ended; only server-fault codes are errors.
    fn grpc(&mut self, headers: &HeaderMap) {
        let Some(status) = GrpcStatus::of(headers) else {
            return;
        };
        if status.server_fault {
            self.error = Some(format!("grpc-status {}", status.code));
        }
        if let Some(sampled) = &mut self.sampled {
            sampled.grpc_code = Some(status.code.to_owned());
            sampled.grpc_message = status.message;
        }
    }

    fn finish(&mut self) {
        self.finished = true;
        let latency = self.started.elapsed();
        self.shared.metrics.request(
            self.direction,
            self.route.as_ref(),
            self.version.as_ref(),
            self.status,
            latency,
        );
        let (Some(sampled), Some(reporter)) = (self.sampled.take(), &self.shared.reporter) else {
            return;
        };
        let ending = Ending {
            status: self.status,
            error: self.error.as_deref(),
            request_size: self.request_body.as_ref().map_or(0, |body| body.bytes()),
            response_size: self.response_size,
            version: self.version.as_deref(),
        };
        sampled.report(&ending, latency, reporter);
    }
}

/// A sampled request's span, without tags, and the values its tags are written from when
/// the exchange ends.
struct Sampled {
    span: Span,
    method: Method,
    path: String,
    protocol: &'static str,
    peer: Arc<str>,
    request_id: HeaderValue,
    upstream: Option<Arc<str>>,
    fault: Option<&'static str>,
    grpc_code: Option<String>,
    grpc_message: Option<String>,
}

/// How the exchange ended, for the span's tags.
struct Ending<'a> {
    status: u16,
    error: Option<&'a str>,
    request_size: u64,
    response_size: u64,
    version: Option<&'a str>,
}

impl Sampled {
    /// Reports the span, `latency` long, with its tags written straight from the values and
    /// how the exchange `ended`, in key order: no map of owned strings. Numbers, addresses
    /// and the method (a token) are plain; what came from outside is escaped.
    fn report(self: Box<Self>, ended: &Ending<'_>, latency: Duration, reporter: &Reporter) {
        let Sampled {
            mut span,
            method,
            path,
            protocol,
            peer,
            request_id,
            upstream,
            fault,
            grpc_code,
            grpc_message,
        } = *self;
        span.duration = functrace_mesh::export::duration_micros(latency);
        let (mut status, mut request_size, mut response_size) = (
            itoa::Buffer::new(),
            itoa::Buffer::new(),
            itoa::Buffer::new(),
        );
        let request_id = http_span::request_id_text(&request_id);
        let tags = [
            ("error", ended.error.map(Escaped)),
            ("fault", fault.map(Plain)),
            ("grpc.message", grpc_message.as_deref().map(Escaped)),
            ("grpc.status_code", grpc_code.as_deref().map(Escaped)),
            ("guid:x-request-id", Some(Escaped(&request_id))),
            ("http.method", Some(Plain(method.as_str()))),
            ("http.path", Some(Escaped(&path))),
            ("http.protocol", Some(Plain(protocol))),
            ("http.status_code", Some(Plain(status.format(ended.status)))),
            ("peer.address", Some(Plain(&peer))),
            (
                "request_size",
                Some(Plain(request_size.format(ended.request_size))),
            ),
            (
                "response_size",
                Some(Plain(response_size.format(ended.response_size))),
            ),
            ("upstream.address", upstream.as_deref().map(Escaped)),
            (
                "upstream.version",
                ended.version.filter(|v| !v.is_empty()).map(Escaped),
            ),
        ];
        debug_assert!(tags.windows(2).all(|pair| pair[0].0 < pair[1].0));
        let tags = tags
            .iter()
            .filter_map(|&(key, value)| Some((Plain(key), value?)));
        reporter.report_with_tags(span, tags);
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        if !self.finished {
            // The client went away: before the answer (counted with code 0) or during it.
            if self.status == 0 {
                self.error = Some("cancelled: the client went away".into());
            } else if self.busy.client_stopped_reading() {
                self.error = Some("cancelled: the client stopped reading the response".into());
            } else if self.error.is_none() {
                self.error = Some("cancelled: the client went away mid-response".into());
            }
            self.finish();
        }
    }
}

pin_project! {
    /// A response body to the client: the upstream's, streamed, ending the record when it
    /// ends; or the sidecar's own short answer.
    #[project = ResponseBodyProjection]
    pub enum ResponseBody {
        Upstream {
            #[pin]
            body: UpstreamBody,
            record: Option<Record>,
            // Runs while the upstream keeps the body's next bytes waiting.
            stall: Stall,
            stall_limit: Duration,
        },
        Local {
            #[pin]
            body: Full<Bytes>,
        },
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.project() {
            ResponseBodyProjection::Local { body } => body
                .poll_frame(cx)
                .map(|frame| frame.map(|frame| frame.map_err(|never| match never {}))),
            ResponseBodyProjection::Upstream {
                mut body,
                record,
                stall,
                stall_limit,
            } => {
                let frame = match body.as_mut().poll_frame(cx) {
                    Poll::Ready(frame) => {
                        stall.moved();
                        frame
                    }
                    Poll::Pending => {
                        std::task::ready!(stall.poll(cx, *stall_limit));
                        Some(Err(stalled(*stall_limit).into()))
                    }
                };
                if let Some(mut ended) = record.take() {
                    match &frame {
                        Some(Ok(frame)) => {
                            if let Some(data) = frame.data_ref() {
                                ended.response_size += data.len() as u64;
                            }
                            if let Some(trailers) = frame.trailers_ref() {
                                ended.grpc(trailers);
                            }
                            // With a known length, hyper stops at the last byte rather than
                            // polling for the end.
                            if body.is_end_stream() {
                                ended.finish();
                            } else {
                                *record = Some(ended);
                            }
                        }
                        Some(Err(error)) => {
                            ended.error = Some(format!("upstream body failed: {error}"));
                            ended.finish();
                        }
                        None => ended.finish(),
                    }
                }
                Poll::Ready(frame)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Upstream { body, .. } => body.is_end_stream(),
            ResponseBody::Local { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Upstream { body, .. } => body.size_hint(),
            ResponseBody::Local { body } => body.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cut_path;

    #[test]
    fn a_path_is_cut_at_a_character_boundary_no_longer_than_the_limit() {
        assert_eq!(cut_path("/abc", 4), "/abc");
        assert_eq!(cut_path("/abcdef", 4), "/abc");
        // "é" is two bytes, from 2 to 4: a cut at 3 falls inside it.
        assert_eq!(cut_path("/aé", 3), "/a");
        assert_eq!(cut_path("/aé", 4), "/aé");
        assert_eq!(cut_path("é", 1), "");
    }
}
