//! Tower layers that carry the trace across HTTP and gRPC calls, so the application never
//! forwards trace headers by hand.
//!
//! - [`Tracing::server`]: reads B3 and W3C Trace Context from the request (see
//!   [`crate::propagation`] for which wins when both came; or starts a trace at the sampling
//!   rate; malformed headers are ignored whole and the request served under a fresh trace),
//!   runs the handler under that context, so its traced calls are children of the caller's
//!   span, and records a SERVER span that shares the caller's span id (`shared: true`). The
//!   request's trace headers are replaced by that context, so a handler that reads them sees
//!   what it runs under.
//! - [`Tracing::client`]: makes a child of the current context (the traced call making the
//!   request), writes it into the request's trace headers (replacing any), and records a
//!   CLIENT span.
//!
//! Which standards are written is [`Tracing::propagation`]: by default
//! ([`Propagation::Same`]) those the request being served came in, so a service called with
//! `traceparent` calls on with `traceparent`, and one called with B3 (or with neither, or
//! outside any request) calls on with B3. The `tracestate` that came with a request goes on
//! to the calls made within it, beside `traceparent`.
//!
//! Both work with any `tower::Service<http::Request<B>>`: hyper 1 services, axum routers,
//! tonic servers and channels. Spans are named `method path` (gRPC: the path); with the
//! `axum` feature and the server layer put on the router (`Router::layer`), by the route's
//! template (`get /users/{id}`, tagged `http.route`); or by a hook ([`Tracing::span_name`]).
//! A SERVER span is an error for a 5xx status, a CLIENT span for a 4xx or 5xx, as
//! OpenTelemetry has it ([`StatusErrors`]; Brave's rule, any status from 400, is an option).
//! A span ends when the response body ends, so it covers streaming and picks `grpc-status`
//! / `grpc-message` from the trailers. `x-request-id` is generated when absent and carried
//! along to outgoing calls made within the request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use functrace::{in_context, in_new_task, InContext, InNewTask, Sampling, TraceContext, TraceId};
use http::{HeaderMap, HeaderValue, Request, Response};
use hyper::body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::b3::Format;
use crate::export::{Endpoint, Kind, Reporter, Span};
pub use crate::http_span::StatusErrors;
use crate::http_span::{self, GrpcStatus, Side, REQUEST_ID};
use crate::propagation::{self, Propagation, Standards};

tokio::task_local! {
    /// What the request being served hands on to the calls it makes.
    static CURRENT_REQUEST: Carried;
}

/// What a served request hands on to the calls made within it.
#[derive(Clone)]
struct Carried {
    /// Its `x-request-id`.
    request_id: HeaderValue,
    /// The standards its context came in.
    came_in: Standards,
    /// Its trace, and the `tracestate` that came with it.
    trace_id: TraceId,
    tracestate: Option<HeaderValue>,
}

/// The standards to write for an outgoing call and the `tracestate` to go with `context`,
/// from the request being served (if any).
fn outgoing(propagation: Propagation, context: &TraceContext) -> (Standards, Option<HeaderValue>) {
    let (came_in, tracestate) = CURRENT_REQUEST
        .try_with(|carried| {
            let same_trace = carried.trace_id == context.trace_id;
            (
                carried.came_in,
                carried.tracestate.clone().filter(|_| same_trace),
            )
        })
        .unwrap_or((Standards::NONE, None));
    (propagation.standards(came_in), tracestate)
}

/// Tracing settings shared by the server and client layers of one service.
#[derive(Clone)]
pub struct Tracing {
    service: Arc<str>,
    reporter: Option<Reporter>,
    sample_rate: f64,
    format: Format,
    status_errors: StatusErrors,
    span_name: Option<Arc<NameHook>>,
    propagation: Propagation,
}

type NameHook = dyn Fn(&RequestHead<'_>) -> Option<String> + Send + Sync;

/// What a span-naming hook sees of a request.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct RequestHead<'a> {
    /// Its method.
    pub method: &'a http::Method,
    /// Its target.
    pub uri: &'a http::Uri,
    /// Its headers.
    pub headers: &'a HeaderMap,
    /// Its extensions: where a framework keeps what it knows of the request (axum: the
    /// matched route).
    pub extensions: &'a http::Extensions,
}

impl Tracing {
    /// Settings for `service`: sample everything, propagate in the standards a request came
    /// in (B3 when none), B3 as multiple headers, no reporter.
    pub fn new(service: impl Into<Arc<str>>) -> Tracing {
        Tracing {
            service: service.into(),
            reporter: None,
            sample_rate: 1.0,
            format: Format::Multi,
            status_errors: StatusErrors::default(),
            span_name: None,
            propagation: Propagation::Same,
        }
    }

    /// Where spans go.
    pub fn reporter(mut self, reporter: Reporter) -> Tracing {
        self.reporter = Some(reporter);
        self
    }

    /// The share of new traces recorded, 0.0 to 1.0. An incoming decision always wins.
    pub fn sample_rate(mut self, rate: f64) -> Tracing {
        self.sample_rate = rate.clamp(0.0, 1.0);
        self
    }

    /// How B3 is written, when it is (see [`Tracing::propagation`]).
    pub fn format(mut self, format: Format) -> Tracing {
        self.format = format;
        self
    }

    /// Which statuses are errors (by default OpenTelemetry's rule: see [`StatusErrors`]).
    pub fn status_errors(mut self, rule: StatusErrors) -> Tracing {
        self.status_errors = rule;
        self
    }

    /// Names spans with `name` where it answers `Some`; otherwise by the route's template
    /// (the `axum` feature) or `method path`.
    ///
    /// ```
    /// use functrace_mesh::layer::Tracing;
    ///
    /// let tracing = Tracing::new("orders").span_name(|request| {
    ///     let path = request.uri.path();
    ///     path.starts_with("/orders/").then(|| "get /orders/:id".to_owned())
    /// });
    /// ```
    pub fn span_name(
        mut self,
        name: impl Fn(&RequestHead<'_>) -> Option<String> + Send + Sync + 'static,
    ) -> Tracing {
        self.span_name = Some(Arc::new(name));
        self
    }

    /// Which standards carry the context on: B3, W3C Trace Context, both, or (the default)
    /// the ones the request being served came in, B3 when none. The server layer writes the
    /// request's headers for the handler the same way.
    pub fn propagation(mut self, propagation: Propagation) -> Tracing {
        self.propagation = propagation;
        self
    }

    /// The layer for servers.
    pub fn server(&self) -> ServerLayer {
        ServerLayer(self.clone())
    }

    /// The layer for clients.
    pub fn client(&self) -> ClientLayer {
        ClientLayer(self.clone())
    }
}

/// Writes the current context's child into `headers` (replacing any trace headers), for
/// HTTP clients that are not tower services: in the standards the request being served came
/// in ([`Propagation::Same`]; B3 as multiple headers). Starts a new sampled trace when none is
/// current. Returns the injected context.
pub fn inject(headers: &mut HeaderMap) -> TraceContext {
    let context = match functrace::current_context() {
        Some(parent) => parent.child(),
        None => TraceContext::new_root(Sampling::Accept),
    };
    let (standards, tracestate) = outgoing(Propagation::Same, &context);
    propagation::inject(
        &context,
        standards,
        Format::Multi,
        tracestate.as_ref(),
        headers,
    );
    carry_request_id(headers);
    context
}

fn carry_request_id(headers: &mut HeaderMap) {
    if !headers.contains_key(REQUEST_ID) {
        if let Ok(id) = CURRENT_REQUEST.try_with(|carried| carried.request_id.clone()) {
            headers.insert(REQUEST_ID, id);
        }
    }
}

/// The layer for servers: see the module docs.
#[derive(Clone)]
pub struct ServerLayer(Tracing);

impl<S> tower::Layer<S> for ServerLayer {
    type Service = TracedServer<S>;

    fn layer(&self, inner: S) -> TracedServer<S> {
        TracedServer {
            inner,
            tracing: self.0.clone(),
        }
    }
}

/// A server wrapped by [`ServerLayer`].
#[derive(Clone)]
pub struct TracedServer<S> {
    inner: S,
    tracing: Tracing,
}

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for TracedServer<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<SpanBody<ResBody>>;
    type Error = S::Error;
    type Future = SpanFuture<InNewTask<InContext<S::Future>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let incoming = propagation::extract(request.headers());
        let (context, joined) =
            http_span::context(Side::Server, incoming.extracted, self.tracing.sample_rate);
        // The handler sees the context it runs under, whatever (if anything) came in.
        incoming.inject(
            &context,
            self.tracing.propagation,
            self.tracing.format,
            request.headers_mut(),
        );
        let request_id = request
            .headers()
            .get(REQUEST_ID)
            .cloned()
            .unwrap_or_else(http_span::new_request_id);
        request.headers_mut().insert(REQUEST_ID, request_id.clone());
        let pending = Pending::start(&self.tracing, Kind::Server, context, joined, &request).tag(
            "guid:x-request-id",
            &http_span::request_id_text(&request_id),
        );
        // Each request is a unit of its own, also when one connection's task serves several.
        let response = in_new_task(in_context(Some(context), self.inner.call(request)));
        let carried = Carried {
            request_id,
            came_in: incoming.came_in,
            trace_id: context.trace_id,
            tracestate: incoming.tracestate_for(&context).cloned(),
        };
        SpanFuture {
            inner: response,
            pending: Some(pending),
            carried: Some(carried),
        }
    }
}

/// The layer for clients: see the module docs.
#[derive(Clone)]
pub struct ClientLayer(Tracing);

impl<S> tower::Layer<S> for ClientLayer {
    type Service = TracedClient<S>;

    fn layer(&self, inner: S) -> TracedClient<S> {
        TracedClient {
            inner,
            tracing: self.0.clone(),
        }
    }
}

/// A client wrapped by [`ClientLayer`].
#[derive(Clone)]
pub struct TracedClient<S> {
    inner: S,
    tracing: Tracing,
}

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for TracedClient<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<SpanBody<ResBody>>;
    type Error = S::Error;
    type Future = SpanFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let context = match functrace::current_context() {
            Some(parent) => parent.child(),
            None => TraceContext::new_root(http_span::sample(self.tracing.sample_rate)),
        };
        let (standards, tracestate) = outgoing(self.tracing.propagation, &context);
        propagation::inject(
            &context,
            standards,
            self.tracing.format,
            tracestate.as_ref(),
            request.headers_mut(),
        );
        carry_request_id(request.headers_mut());
        let mut pending = Pending::start(&self.tracing, Kind::Client, context, false, &request);
        if let Some(authority) = request.uri().authority() {
            pending = pending.remote(authority.as_str());
        }
        SpanFuture {
            inner: self.inner.call(request),
            pending: Some(pending),
            carried: None,
        }
    }
}

/// The route template a framework matched the request to (axum's `MatchedPath`), for
/// gRPC requests none: their path is their name.
#[cfg(feature = "axum")]
fn route_template<B>(request: &Request<B>) -> Option<&str> {
    if http_span::is_grpc(request.headers()) {
        return None;
    }
    let matched = request.extensions().get::<axum::extract::MatchedPath>()?;
    Some(matched.as_str())
}

#[cfg(not(feature = "axum"))]
fn route_template<B>(_: &Request<B>) -> Option<&str> {
    None
}

/// A span being recorded: everything known when the request started.
struct Pending {
    span: Span,
    started: Instant,
    status_errors: StatusErrors,
    reporter: Option<Reporter>,
}

impl Pending {
    fn start<B>(
        tracing: &Tracing,
        kind: Kind,
        context: TraceContext,
        joined: bool,
        request: &Request<B>,
    ) -> Pending {
        let path = request.uri().path();
        let method = request.method().as_str();
        let route = route_template(request);
        let name = tracing
            .span_name
            .as_ref()
            .and_then(|name| {
                name(&RequestHead {
                    method: request.method(),
                    uri: request.uri(),
                    headers: request.headers(),
                    extensions: request.extensions(),
                })
            })
            .or_else(|| route.map(|route| format!("{} {route}", method.to_ascii_lowercase())))
            .unwrap_or_else(|| http_span::span_name(request));
        let mut span = Span::new(
            &context,
            name,
            SystemTime::now(),
            Default::default(),
            &*tracing.service,
        )
        .with_kind(kind)
        .with_tag("http.method", method)
        .with_tag("http.path", path)
        .with_tag("http.protocol", http_span::protocol(request.version()));
        if let Some(route) = route {
            span.tags.insert("http.route".to_owned(), route.to_owned());
        }
        span.shared = (kind == Kind::Server && joined).then_some(true);
        Pending {
            span,
            started: Instant::now(),
            status_errors: tracing.status_errors,
            reporter: context
                .sampling
                .is_sampled()
                .then(|| tracing.reporter.clone())
                .flatten(),
        }
    }

    fn tag(mut self, key: &str, value: &str) -> Pending {
        self.span.tags.insert(key.to_owned(), value.to_owned());
        self
    }

    fn remote(mut self, authority: &str) -> Pending {
        let endpoint = match authority.parse() {
            Ok(addr) => Endpoint::socket(addr),
            Err(_) => Endpoint {
                service_name: Some(authority.split(':').next().unwrap_or(authority).to_owned()),
                ..Endpoint::default()
            },
        };
        self.span.remote_endpoint = Some(endpoint);
        self
    }

    fn response(&mut self, headers: &HeaderMap, status: http::StatusCode) {
        self.span
            .tags
            .insert("http.status_code".into(), status.as_str().into());
        let kind = self.span.kind.unwrap_or(Kind::Client);
        if self.status_errors.is_error(kind, status.as_u16()) {
            self.span
                .tags
                .insert("error".into(), status.as_str().into());
        }
        self.grpc(headers);
    }

    /// `grpc-status` and `grpc-message`, from trailers (or the headers of a trailers-only
    /// response). Only server-fault codes are errors.
    fn grpc(&mut self, headers: &HeaderMap) {
        let Some(status) = GrpcStatus::of(headers) else {
            return;
        };
        let tags = &mut self.span.tags;
        tags.insert("grpc.status_code".into(), status.code.into());
        if let Some(message) = status.message {
            tags.insert("grpc.message".into(), message);
        }
        if status.server_fault {
            tags.insert("error".into(), status.code.into());
        }
    }

    fn finish(mut self, error: Option<&str>) {
        if let Some(error) = error {
            self.span.tags.insert("error".into(), error.into());
        }
        self.span.duration = crate::export::duration_micros(self.started.elapsed());
        if let Some(reporter) = self.reporter {
            reporter.report(self.span);
        }
    }
}

pin_project! {
    /// The response future of a traced service: hands the span on to the response body.
    pub struct SpanFuture<F> {
        #[pin]
        inner: F,
        pending: Option<Pending>,
        carried: Option<Carried>,
    }
}

impl<F, B, E> Future for SpanFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<SpanBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = match this.carried.clone() {
            Some(carried) => CURRENT_REQUEST.sync_scope(carried, || this.inner.poll(cx)),
            None => this.inner.poll(cx),
        };
        let result = std::task::ready!(result);
        let mut pending = this.pending.take();
        Poll::Ready(match result {
            Ok(response) => {
                if let Some(pending) = &mut pending {
                    pending.response(response.headers(), response.status());
                }
                Ok(response.map(|body| SpanBody {
                    inner: body,
                    pending,
                }))
            }
            Err(err) => {
                if let Some(pending) = pending {
                    pending.finish(Some("request failed"));
                }
                Err(err)
            }
        })
    }
}

pin_project! {
    /// A response body that ends its span when it ends (or is dropped unfinished).
    pub struct SpanBody<B> {
        #[pin]
        inner: B,
        pending: Option<Pending>,
    }

    impl<B> PinnedDrop for SpanBody<B> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(pending) = this.project().pending.take() {
                pending.finish(None);
            }
        }
    }
}

impl<B: Body> Body for SpanBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let frame = std::task::ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let (Some(trailers), Some(pending)) =
                    (frame.trailers_ref(), this.pending.as_mut())
                {
                    pending.grpc(trailers);
                }
            }
            Some(Err(_)) => {
                if let Some(pending) = this.pending.take() {
                    pending.finish(Some("body failed"));
                }
            }
            None => {
                if let Some(pending) = this.pending.take() {
                    pending.finish(None);
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
