//! The proxying service of one listener: picks the upstream, applies the route's policies,
//! records the span and the metrics, and forwards the request with B3 for the next hop.
//!
//! Inbound (to the local app): joins the caller's B3 context (or starts a trace), records a
//! SERVER span sharing the caller's span id, and passes the same context on to the app.
//! Outbound (from the app): records a CLIENT span as a child of the app's B3 context and
//! passes that child on to the upstream, whose sidecar joins it.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use functrace::TraceContext;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{uri, Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use pin_project_lite::pin_project;

use functrace_mesh::b3;
use functrace_mesh::export::TagText::{Escaped, Plain};
use functrace_mesh::export::{socket_address_text, with_sources, Endpoint, Kind, Span};
use functrace_mesh::http_span::{self, GrpcStatus, Side, REQUEST_ID};

use crate::config::Protocol;
use crate::metrics::Direction;
use crate::routes::{Route, Target};
use crate::upstream::{BoxError, SendError, UpstreamBody};
use crate::Shared;

/// Why a request was answered by the sidecar itself, for the client and the span.
pub const REASON: HeaderName = HeaderName::from_static("x-functrace-reason");

/// The service of one accepted connection.
#[derive(Clone)]
pub struct Proxy {
    pub shared: Arc<Shared>,
    pub direction: Direction,
    /// Which inbound listener (unused outbound).
    pub inbound: usize,
    pub peer: SocketAddr,
}

impl hyper::service::Service<Request<Incoming>> for Proxy {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        Box::pin(self.clone().serve(request))
    }
}

/// What a request is sent to: the route (for policies and metrics) and one of its upstreams.
enum Chosen<'a> {
    Borrowed(&'a Route),
    Owned(Arc<Route>),
}

impl std::ops::Deref for Chosen<'_> {
    type Target = Route;
    fn deref(&self) -> &Route {
        match self {
            Chosen::Borrowed(route) => route,
            Chosen::Owned(route) => route,
        }
    }
}

impl Proxy {
    /// A `Result`, as hyper's service has it, so that `call` can box this future as it is:
    /// a wrapper future around it would move it once more on every request.
    async fn serve(
        self,
        mut request: Request<Incoming>,
    ) -> Result<Response<ResponseBody>, Infallible> {
        let settings = self.shared.settings();
        let started = Instant::now();
        let (context, joined) = self.context(&settings, request.headers());
        let request_id = request
            .headers()
            .get(&REQUEST_ID)
            .cloned()
            .unwrap_or_else(http_span::new_request_id);
        request.headers_mut().insert(REQUEST_ID, request_id.clone());
        let service = &settings.config.service;
        let mut record = Record::start(&self, service, context, joined, &request, request_id);

        let route = match self.direction {
            Direction::Inbound => Chosen::Owned(settings.inbound[self.inbound].clone()),
            Direction::Outbound => match authority(&request) {
                None => return Ok(record.local(StatusCode::BAD_REQUEST, "no Host or authority")),
                Some(authority) => match settings.routes.resolve(&authority) {
                    Target::Route(route) => Chosen::Borrowed(route),
                    Target::Allowed(route) => Chosen::Owned(route),
                    Target::Refused(reason) => {
                        return Ok(record.local(StatusCode::BAD_GATEWAY, &reason))
                    }
                },
            },
        };
        record.route = Some(route.name.clone());
        if let Some(bucket) = &route.rate_limit {
            if !bucket.try_take() {
                return Ok(record.local(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded"));
            }
        }
        if let Some(fault) = &route.fault {
            if let Some(delay) = &fault.delay {
                if chance(delay.percent) {
                    if let Some(sampled) = &mut record.sampled {
                        sampled.fault = Some("delay");
                    }
                    tokio::time::sleep(Duration::from_millis(delay.ms)).await;
                }
            }
            if let Some(abort) = &fault.abort {
                if chance(abort.percent) {
                    let status = StatusCode::from_u16(abort.status).unwrap_or(StatusCode::OK);
                    return Ok(record.local(status, "fault injected: abort"));
                }
            }
        }

        // The upstream sees the context: the same one inbound, the CLIENT span's outbound.
        let format = settings.config.tracing.b3_format.into();
        b3::inject(&context, format, request.headers_mut());
        Ok(self.send(record, &route, request, started).await)
    }

    /// Sends the request to one of the route's upstreams, trying again on a refused
    /// connection when that is safe; answers the upstream's response or the reason it failed.
    async fn send(
        &self,
        mut record: Record,
        route: &Route,
        request: Request<Incoming>,
        started: Instant,
    ) -> Response<ResponseBody> {
        let (mut parts, body) = request.into_parts();
        let replayable = is_idempotent(&parts.method) && body.is_end_stream();
        let mut body = Some(body);
        let timeout = route.timeout;
        let deadline = started + timeout;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let upstream = route.pick();
            record.upstream(&upstream.address, &upstream.version);
            let http2 = match route.protocol {
                Protocol::Auto => parts.version == Version::HTTP_2,
                Protocol::Http1 => false,
                Protocol::Http2 => true,
            };
            // The headers are copied only when a later attempt may need them again.
            let headers = if replayable && attempt < route.attempts {
                parts.headers.clone()
            } else {
                std::mem::take(&mut parts.headers)
            };
            let outgoing =
                match upstream_request(&parts, headers, &upstream.address, http2, body.take()) {
                    Ok(outgoing) => outgoing.map(|body| record.counted(body)),
                    Err(reason) => return record.local(StatusCode::BAD_GATEWAY, &reason),
                };
            let sent = self
                .shared
                .upstreams
                .send(&upstream.address, outgoing, http2);
            let error = match tokio::time::timeout_at(deadline.into(), sent).await {
                Ok(Ok(response)) => return record.forward(response),
                Ok(Err(error)) => error,
                Err(_) => {
                    let reason = format!("upstream timed out after {} ms", timeout.as_millis());
                    return record.local(StatusCode::GATEWAY_TIMEOUT, &reason);
                }
            };
            match error {
                SendError::Connect(_) | SendError::Closed(_)
                    if replayable && attempt < route.attempts =>
                {
                    continue
                }
                SendError::Connect(error) => {
                    let reason = format!("upstream connect error: {}", with_sources(&error));
                    return record.local(StatusCode::SERVICE_UNAVAILABLE, &reason);
                }
                SendError::ClientGone => {
                    // Nobody reads this answer; metrics and the span get nginx's 499.
                    let status = StatusCode::from_u16(499).expect("a valid code");
                    return record.local(status, "cancelled: the client went away mid-request");
                }
                SendError::Closed(error) | SendError::Exchange(error) => {
                    let reason = format!("upstream reset: {}", with_sources(&*error));
                    return record.local(StatusCode::BAD_GATEWAY, &reason);
                }
            }
        }
    }

    /// The context this hop runs under, and whether it joins the caller's span: inbound
    /// joins the caller, outbound makes a child of the app's context.
    fn context(&self, settings: &crate::Settings, headers: &HeaderMap) -> (TraceContext, bool) {
        let side = match self.direction {
            Direction::Inbound => Side::Server,
            Direction::Outbound => Side::Client,
        };
        http_span::context(
            side,
            http_span::extract(headers),
            settings.config.tracing.sample,
        )
    }
}

/// `true` with probability `percent` / 100.
fn chance(percent: f64) -> bool {
    http_span::random_fraction() * 100.0 < percent
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// Where an outbound request was meant to go: the absolute-form URI (proxy style), the
/// HTTP/2 `:authority`, or the `Host` header.
fn authority<B>(request: &Request<B>) -> Option<String> {
    if let Some(authority) = request.uri().authority() {
        return Some(authority.as_str().to_owned());
    }
    let host = request.headers().get(header::HOST)?.to_str().ok()?;
    (!host.is_empty()).then(|| host.to_owned())
}

/// The request for `address`, with `headers` less the hop-by-hop ones.
fn upstream_request(
    parts: &http::request::Parts,
    mut headers: HeaderMap,
    address: &str,
    http2: bool,
    body: Option<Incoming>,
) -> Result<Request<RequestBody>, String> {
    let mut uri = uri::Parts::default();
    uri.path_and_query = Some(match parts.uri.path_and_query() {
        Some(path) => path.clone(),
        None => uri::PathAndQuery::from_static("/"),
    });
    remove_hop_by_hop(&mut headers);
    if http2 {
        // HTTP/2 names the target in `:scheme` and `:authority`, from an absolute URI.
        uri.scheme = Some(uri::Scheme::HTTP);
        uri.authority = Some(
            address
                .parse()
                .map_err(|err| format!("bad upstream address {address}: {err}"))?,
        );
        headers.remove(header::HOST);
    } else if !headers.contains_key(header::HOST) {
        // HTTP/1.1 sends the origin form and names the target in `Host`: the one the client
        // asked for (a proxy-style request), or else the upstream.
        let host = parts
            .uri
            .authority()
            .map_or(address, |authority| authority.as_str());
        let value = HeaderValue::from_str(host).map_err(|e| e.to_string())?;
        headers.insert(header::HOST, value);
    }
    let uri =
        Uri::from_parts(uri).map_err(|err| format!("bad upstream URI for {address}: {err}"))?;
    let mut request = Request::new(RequestBody::new(body));
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = uri;
    if http2 {
        *request.version_mut() = Version::HTTP_2;
    }
    *request.headers_mut() = headers;
    Ok(request)
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), including the
/// names `Connection` lists. `te: trailers` stays: gRPC needs it end to end.
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none of them: one look at each name is cheaper than a removal
    // (a hash and a probe) per hop-by-hop name.
    if !headers
        .keys()
        .any(|name| name == header::TE || HOP_BY_HOP.contains(name))
    {
        return;
    }
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    if headers
        .get(header::TE)
        .is_some_and(|te| !te.as_bytes().eq_ignore_ascii_case(b"trailers"))
    {
        headers.remove(header::TE);
    }
}

/// The hop-by-hop names removed whatever their value (`te` goes unless it is `trailers`).
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    HeaderName::from_static("http2-settings"),
];

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
    /// Bytes of request body sent upstream; counted only when there is a body.
    request_size: Option<Arc<AtomicU64>>,
    response_size: u64,
    finished: bool,
}

impl Record {
    fn start(
        proxy: &Proxy,
        service: &str,
        context: TraceContext,
        joined: bool,
        request: &Request<Incoming>,
        request_id: HeaderValue,
    ) -> Record {
        let sampled = context.sampling.is_sampled() && proxy.shared.reporter.is_some();
        let sampled = sampled.then(|| {
            let kind = match proxy.direction {
                Direction::Inbound => Kind::Server,
                Direction::Outbound => Kind::Client,
            };
            let name = http_span::span_name(request);
            let mut span = Span::new(&context, name, SystemTime::now(), Duration::ZERO, service)
                .with_kind(kind);
            span.shared = (kind == Kind::Server && joined).then_some(true);
            if kind == Kind::Server {
                span.remote_endpoint = Some(Endpoint::socket(proxy.peer));
            }
            Box::new(Sampled {
                span,
                method: request.method().clone(),
                uri: request.uri().clone(),
                protocol: http_span::protocol(request.version()),
                peer: proxy.peer,
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
            started: Instant::now(),
            sampled,
            route: None,
            version: None,
            status: 0,
            error: None,
            request_size: None,
            response_size: 0,
            finished: false,
        }
    }

    /// `body`, counted into the request size when it has any data to count.
    fn counted(&mut self, body: RequestBody) -> RequestBody {
        if body.is_end_stream() {
            return body;
        }
        body.counting(self.request_size.get_or_insert_with(Arc::default))
    }

    fn upstream(&mut self, address: &Arc<str>, version: &Arc<str>) {
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
    fn local(mut self, status: StatusCode, reason: &str) -> Response<ResponseBody> {
        self.status = status.as_u16();
        if !(200..400).contains(&self.status) {
            self.error = Some(reason.to_owned());
        }
        let body = Bytes::from(format!("{reason}\n"));
        self.response_size = body.len() as u64;
        let mut response = Response::new(ResponseBody::Local {
            body: Full::new(body),
        });
        *response.status_mut() = status;
        if let Ok(value) = HeaderValue::from_str(reason) {
            response.headers_mut().insert(REASON, value);
        }
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        self.finish();
        response
    }

    /// Passes the upstream's response on; the record ends with its body.
    fn forward(mut self, response: Response<UpstreamBody>) -> Response<ResponseBody> {
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
        Response::from_parts(parts, ResponseBody::Upstream { body, record })
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
        let Sampled {
            mut span,
            method,
            uri,
            protocol,
            peer,
            request_id,
            upstream,
            fault,
            grpc_code,
            grpc_message,
        } = *sampled;
        span.duration = functrace_mesh::export::duration_micros(latency);
        let (mut status, mut request_size, mut response_size) = (
            itoa::Buffer::new(),
            itoa::Buffer::new(),
            itoa::Buffer::new(),
        );
        let peer = socket_address_text(peer);
        let request_size_sent = self
            .request_size
            .as_ref()
            .map_or(0, |size| size.load(Ordering::Relaxed));
        // Written straight from the values, in key order: no map of owned strings. Numbers,
        // addresses and the method (a token) are plain; what came from outside is escaped.
        let tags = [
            ("error", self.error.as_deref().map(Escaped)),
            ("fault", fault.map(Plain)),
            ("grpc.message", grpc_message.as_deref().map(Escaped)),
            ("grpc.status_code", grpc_code.as_deref().map(Escaped)),
            (
                "guid:x-request-id",
                Some(Escaped(request_id.to_str().unwrap_or_default())),
            ),
            ("http.method", Some(Plain(method.as_str()))),
            ("http.path", Some(Escaped(uri.path()))),
            ("http.protocol", Some(Plain(protocol))),
            ("http.status_code", Some(Plain(status.format(self.status)))),
            ("peer.address", Some(Plain(&peer))),
            (
                "request_size",
                Some(Plain(request_size.format(request_size_sent))),
            ),
            (
                "response_size",
                Some(Plain(response_size.format(self.response_size))),
            ),
            ("upstream.address", upstream.as_deref().map(Escaped)),
            (
                "upstream.version",
                self.version
                    .as_deref()
                    .filter(|v| !v.is_empty())
                    .map(Escaped),
            ),
        ];
        debug_assert!(tags.windows(2).all(|pair| pair[0].0 < pair[1].0));
        let tags = tags
            .iter()
            .filter_map(|&(key, value)| Some((Plain(key), value?)));
        reporter.report_with_tags(span, tags);
    }
}

/// A sampled request's span, without tags, and the values its tags are written from when
/// the exchange ends.
struct Sampled {
    span: Span,
    method: Method,
    uri: Uri,
    protocol: &'static str,
    peer: SocketAddr,
    request_id: HeaderValue,
    upstream: Option<Arc<str>>,
    fault: Option<&'static str>,
    grpc_code: Option<String>,
    grpc_message: Option<String>,
}

impl Drop for Record {
    fn drop(&mut self) {
        if !self.finished {
            // The client went away: before the answer (counted with code 0) or during it.
            if self.status == 0 {
                self.error = Some("cancelled: the client went away".into());
            } else if self.error.is_none() {
                self.error = Some("cancelled: the client went away mid-response".into());
            }
            self.finish();
        }
    }
}

pin_project! {
    /// A request body to an upstream: the client's, streamed and counted, or none.
    pub struct RequestBody {
        #[pin]
        inner: Option<Incoming>,
        counted: Option<Arc<AtomicU64>>,
    }
}

impl RequestBody {
    fn new(inner: Option<Incoming>) -> RequestBody {
        RequestBody {
            inner,
            counted: None,
        }
    }

    fn counting(mut self, counter: &Arc<AtomicU64>) -> RequestBody {
        self.counted = Some(counter.clone());
        self
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.project();
        let Some(inner) = this.inner.as_pin_mut() else {
            return Poll::Ready(None);
        };
        let frame = std::task::ready!(inner.poll_frame(cx));
        if let (Some(Ok(frame)), Some(counted)) = (&frame, this.counted) {
            if let Some(data) = frame.data_ref() {
                counted.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
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
            ResponseBodyProjection::Upstream { mut body, record } => {
                let frame = std::task::ready!(body.as_mut().poll_frame(cx));
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
    use super::*;

    #[test]
    fn only_hop_by_hop_headers_are_removed() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-drop"),
            ("x-drop", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("x-keep", "1"),
            ("host", "svc"),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }
        remove_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["host", "te", "x-keep"]);

        let mut plain = HeaderMap::new();
        plain.insert("x-keep", HeaderValue::from_static("1"));
        plain.insert("te", HeaderValue::from_static("gzip"));
        remove_hop_by_hop(&mut plain);
        assert_eq!(
            plain.keys().map(HeaderName::as_str).collect::<Vec<_>>(),
            ["x-keep"]
        );
    }
}
