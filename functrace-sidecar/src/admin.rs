//! The admin listener: `/metrics` (Prometheus text), `/ready`, `/config` (the effective
//! config as JSON).

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::limit::Limit;
use crate::Shared;

/// `/ready` answers 200 from start until shutdown begins, unless a new proxied connection
/// would be refused: every place under `max_connections` taken by a busy one.
pub struct Readiness {
    pub ready: AtomicBool,
    connections: Arc<Limit>,
}

impl Readiness {
    pub fn new(connections: Arc<Limit>) -> Readiness {
        Readiness {
            ready: AtomicBool::new(false),
            connections,
        }
    }
}

pub async fn handle(
    shared: Arc<Shared>,
    readiness: Arc<Readiness>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, content_type, body) = match request.uri().path() {
        "/metrics" => (
            StatusCode::OK,
            "text/plain; version=0.0.4",
            shared.metrics.render(shared.reporter.as_ref()),
        ),
        "/ready" if !readiness.ready.load(Ordering::Relaxed) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "draining\n".to_owned(),
        ),
        "/ready" if readiness.connections.is_full() => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "at the connection limit\n".to_owned(),
        ),
        "/ready" => (StatusCode::OK, "text/plain", "ready\n".to_owned()),
        "/config" => (
            StatusCode::OK,
            "application/json",
            serde_json::to_string_pretty(&shared.settings().config)
                .expect("a config always serializes")
                + "\n",
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /metrics, /ready or /config\n".to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    Ok(response)
}
