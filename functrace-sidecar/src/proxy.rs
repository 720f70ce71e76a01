//! The proxying service of one listener. A request goes through its phases in order (as in
//! pingora's phase chart), each of which may answer it with a [`Refusal`]:
//!
//! 1. context: join the caller's context (inbound) or make a child of the app's (outbound),
//!    B3 or W3C Trace Context per `functrace_mesh::propagation`, per
//!    `functrace_mesh::http_span`; the request id; the record starts;
//! 2. the message ([`policy::message`]: no `Host`, an unknown coding, CONNECT), route and
//!    egress ([`policy::route`], [`policy::egress`]);
//! 3. rate limit ([`policy::rate_limit`]);
//! 4. fault ([`policy::fault`]);
//! 5. the context for the next hop, in the standards it came in (or as configured): the
//!    same context inbound, the CLIENT span's outbound;
//! 6. send, with retries and the route's timeout ([`policy::retry`], [`crate::upstream`]);
//! 7. record: span and metrics when the response body ends ([`crate::record`]).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use functrace::TraceContext;
use functrace_mesh::export::with_sources;
use functrace_mesh::http_span::{self, Side, REQUEST_ID};
use functrace_mesh::propagation::{self, Received};
use http::header::{self, HeaderMap, HeaderValue};
use http::{uri, Request, Response, Uri, Version};
use hyper::body::{Body, Incoming};

use crate::body::{Outcome, RequestBody};
use crate::config::{Http1, Protocol};
use crate::conn::Conn;
use crate::h1::write::field;
use crate::hop_by_hop::remove_hop_by_hop;
use crate::metrics::Direction;
use crate::policy::retry::Retry;
use crate::policy::route::{self, Chosen, Route};
use crate::policy::{message, rate_limit};
use crate::record::{Described, Record, ResponseBody};
use crate::refusal::Refusal;
use crate::upstream::h1_hyper::OwnHead;
use crate::upstream::{Outbound, SendError};
use crate::{Settings, Shared};

/// The service of one accepted connection.
#[derive(Clone)]
pub struct Proxy {
    pub shared: Arc<Shared>,
    pub direction: Direction,
    /// Which inbound listener (unused outbound).
    pub inbound: usize,
    pub peer: SocketAddr,
    /// `peer` as the spans' `peer.address` tag writes it: formatted once per connection.
    pub peer_text: Arc<str>,
    /// The connection's phases (`conn.rs`): busy while a request is in flight.
    pub conn: Arc<Conn>,
}

impl Proxy {
    /// Whether this listener's HTTP/1.1 goes the sidecar's own way under `settings`: so
    /// configured, and none of its routes speaks HTTP/2 to its upstream.
    pub fn own_http1(&self, settings: &Settings) -> bool {
        if settings.config.http1 != Http1::Own {
            return false;
        }
        match self.direction {
            Direction::Inbound => settings.inbound[self.inbound].protocol != Protocol::Http2,
            Direction::Outbound => settings.routes.speak_http1(),
        }
    }
}

impl hyper::service::Service<Request<Incoming>> for Proxy {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        Box::pin(self.clone().serve(request))
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
        let incoming = propagation::extract(request.headers());
        let (context, joined) = self.context(&settings, &incoming);
        let request_id = request
            .headers()
            .get(&REQUEST_ID)
            .cloned()
            .unwrap_or_else(http_span::new_request_id);
        let service = &settings.config.service;
        let max_path = settings.config.tracing.max_path_tag_length;
        let describe = || Described::of(&request, max_path);
        let mut record = Record::start(
            &self,
            started,
            service,
            context,
            joined,
            describe,
            request_id.clone(),
        );
        let route = match self.admit(&settings, &mut record, &request).await {
            Ok(route) => route,
            Err(refusal) => return Ok(record.refuse(refusal)),
        };
        // The upstream sees the context: the same one inbound, the CLIENT span's outbound.
        let tracing = &settings.config.tracing;
        let (propagation, format) = (tracing.propagation.into(), tracing.b3_format.into());
        let way = match client_for(&settings, route.protocol, request.version()) {
            // Written straight into the head: no `HeaderMap` to update.
            Client::Http1Own { head_limit } => Way::Own {
                head: OwnHead::start(&request, |out| {
                    incoming.fields(&context, propagation, format, |name, value| {
                        field(out, name.as_bytes(), value);
                    });
                    field(out, REQUEST_ID.as_str().as_bytes(), request_id.as_bytes());
                }),
                head_limit,
            },
            client => {
                request.headers_mut().insert(REQUEST_ID, request_id);
                incoming.inject(&context, propagation, format, request.headers_mut());
                Way::Hyper {
                    http2: client == Client::Http2,
                    head_limit: settings.config.limits.max_header_bytes,
                }
            }
        };
        Ok(
            match self
                .send(&settings, &mut record, &route, request, way, started)
                .await
            {
                Ok(response) => record.forward(response, body_timeout(&settings)),
                Err(refusal) => record.refuse(refusal),
            },
        )
    }

    /// The phases before sending: the message, route and egress, rate limit, fault.
    async fn admit<'s>(
        &self,
        settings: &'s Settings,
        record: &mut Record,
        request: &Request<Incoming>,
    ) -> Result<Chosen<'s>, Refusal> {
        message::check(request)?;
        let route = route::choose(settings, self.direction, self.inbound, || {
            route::authority(request)
        })?;
        admit_route(record, route).await
    }
    /// Sends the request to one of the route's upstreams, trying again when that is safe,
    /// within the route's timeout: the upstream's response, or why there is none.
    async fn send(
        &self,
        settings: &Settings,
        record: &mut Record,
        route: &Route,
        request: Request<Incoming>,
        way: Way,
        started: Instant,
    ) -> Result<Response<crate::upstream::UpstreamBody>, Refusal> {
        let body_timeout = body_timeout(settings);
        let (mut parts, body) = request.into_parts();
        let retry = Retry::new(&parts.method, body.is_end_stream(), route.attempts);
        let mut body = Some(body);
        let deadline = started + route.timeout;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let upstream = route.pick();
            record.upstream(&upstream.address, &upstream.version);
            let body = record.counted(RequestBody::new(body.take(), body_timeout));
            let upstreams = &self.shared.upstreams;
            let outbound = match &way {
                Way::Own { head, head_limit } => {
                    let host = parts.uri.authority().map(uri::Authority::as_str);
                    Outbound::Own {
                        request: head.request(&parts.method, host, body),
                        head_limit: *head_limit,
                    }
                }
                &Way::Hyper { http2, head_limit } => {
                    // The headers are copied only when a later attempt may need them again.
                    let headers = if retry.may_follow(attempt) {
                        parts.headers.clone()
                    } else {
                        std::mem::take(&mut parts.headers)
                    };
                    let outgoing =
                        upstream_request(&parts, headers, &upstream.address, http2, body)
                            .map_err(Refusal::BadUpstream)?;
                    Outbound::Hyper {
                        request: outgoing,
                        http2,
                        head_limit,
                    }
                }
            };
            // Boxed: the exchange's future is most of a request's state, and unboxed it made
            // this one 3.4 KiB, copied as each future around it was made (1.9 KiB now).
            let sent = Box::pin(upstreams.send(&upstream.address, outbound));
            let error = match tokio::time::timeout_at(deadline.into(), sent).await {
                Ok(Ok(response)) => return Ok(response),
                Ok(Err(error)) => error,
                // The upstream cannot answer a request it has not had whole, when the client
                // owes the rest (rather than the upstream not taking it): the client's fault.
                Err(_) if record.request_body() == Outcome::Waiting => {
                    return Err(Refusal::ClientTooSlow)
                }
                Err(_) => return Err(Refusal::TimedOut(route.timeout)),
            };
            if retry.again(attempt, &error) {
                continue;
            }
            return Err(refusal_of(error, record.request_body()));
        }
    }

    /// The context this hop runs under, and whether it joins the caller's span: inbound
    /// joins the caller, outbound makes a child of the app's context.
    pub(crate) fn context(&self, settings: &Settings, incoming: &Received) -> (TraceContext, bool) {
        let side = match self.direction {
            Direction::Inbound => Side::Server,
            Direction::Outbound => Side::Client,
        };
        http_span::context(side, incoming.extracted, settings.config.tracing.sample)
    }
}

/// The phases after the route is chosen: rate limit, fault.
pub(crate) async fn admit_route<'s>(
    record: &mut Record,
    route: Chosen<'s>,
) -> Result<Chosen<'s>, Refusal> {
    record.routed(&route.name);
    rate_limit::admit(route.rate_limit.as_ref())?;
    if let Some(fault) = &route.fault {
        if let Some(injected) = fault.inject().await? {
            record.fault(injected);
        }
    }
    Ok(route)
}

/// Which client takes a request upstream.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Client {
    Http2,
    /// hyper's HTTP/1.1 client (`http1 = "hyper"`).
    Http1Hyper,
    /// The sidecar's own codec, its connections' read buffers `head_limit` bytes at most.
    Http1Own {
        head_limit: usize,
    },
}

/// Which client takes a request upstream: HTTP/2 when the route says so (or, with
/// `protocol = "auto"`, when the client spoke it), else HTTP/1.1 on the path `http1` names.
fn client_for(settings: &Settings, protocol: Protocol, version: Version) -> Client {
    let http2 = match protocol {
        Protocol::Auto => version == Version::HTTP_2,
        Protocol::Http1 => false,
        Protocol::Http2 => true,
    };
    match settings.config.http1 {
        _ if http2 => Client::Http2,
        Http1::Hyper => Client::Http1Hyper,
        Http1::Own => Client::Http1Own {
            head_limit: settings.config.limits.max_header_bytes,
        },
    }
}

/// How a request goes upstream, for every attempt.
enum Way {
    /// hyper's client, over HTTP/2 or HTTP/1.1 (its read buffers `head_limit` bytes at most).
    Hyper { http2: bool, head_limit: usize },
    /// The own codec: the head's start written once.
    Own { head: OwnHead, head_limit: usize },
}

/// The longest a body's sender may keep its next bytes waiting: a client's request body,
/// an upstream's answer.
pub(crate) fn body_timeout(settings: &Settings) -> Duration {
    Duration::from_millis(settings.config.limits.body_timeout_ms)
}

/// Why a request got no answer from its upstream, as the client is told: `body` is how the
/// client's request body went.
pub(crate) fn refusal_of(error: SendError, body: Outcome) -> Refusal {
    match error {
        SendError::Connect(error) => Refusal::ConnectFailed(with_sources(&error)),
        // The client's body failed: too slow, malformed, or the client went away
        // (nobody reads that answer; metrics and the span get nginx's 499).
        SendError::ClientGone => match body {
            Outcome::TooSlow => Refusal::ClientTooSlow,
            Outcome::Malformed => Refusal::MalformedBody,
            Outcome::Receiving | Outcome::Waiting | Outcome::Ended => Refusal::ClientGone,
        },
        SendError::Closed(error) | SendError::Exchange(error) => {
            Refusal::Reset(with_sources(&*error))
        }
    }
}

/// The request for `address`, with `headers` less the hop-by-hop ones.
fn upstream_request(
    parts: &http::request::Parts,
    mut headers: HeaderMap,
    address: &str,
    http2: bool,
    body: RequestBody,
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
    let mut request = Request::new(body);
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = uri;
    if http2 {
        *request.version_mut() = Version::HTTP_2;
    }
    *request.headers_mut() = headers;
    Ok(request)
}
