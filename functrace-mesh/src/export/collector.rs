//! A collector over plain HTTP (hyper-util's client on the export thread's own single-thread
//! runtime): a Zipkin v2 collector takes batches as `POST /api/v2/spans` with a JSON array
//! body, an OTLP/HTTP receiver as `POST /v1/traces` with a protobuf body. Requests carry
//! `b3: 0` so that instrumented services never trace the reporting itself.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::runtime::Runtime;

/// Where a collector takes spans when its URL has no path.
pub const SPANS_PATH: &str = "/api/v2/spans";

pub(crate) struct Collector {
    runtime: Runtime,
    client: Client<HttpConnector, Full<Bytes>>,
    uri: Uri,
    timeout: Duration,
}

/// Parses a collector URL: `http://host:port` (posting to `default_path`) or a full
/// `http://host:port/path`.
pub(crate) fn parse_url(url: &str, default_path: &'static str) -> Result<Uri, String> {
    let uri: Uri = url
        .parse()
        .map_err(|error| format!("collector URL {url:?}: {error}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "collector URL {url:?}: only plain http:// is supported"
        ));
    }
    if uri.authority().is_none() {
        return Err(format!("collector URL {url:?}: no host"));
    }
    if matches!(uri.path(), "" | "/") && uri.query().is_none() {
        let mut parts = uri.into_parts();
        parts.path_and_query = Some(default_path.parse().expect("a valid path"));
        return Uri::from_parts(parts).map_err(|error| format!("collector URL {url:?}: {error}"));
    }
    Ok(uri)
}

impl Collector {
    pub(crate) fn new(uri: Uri, timeout: Duration) -> std::io::Result<Collector> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Collector {
            runtime,
            client,
            uri,
            timeout,
        })
    }

    /// Sends one batch, `lines` of JSON objects each ended by a newline, as a JSON array;
    /// `Err` says why it did not arrive (answered with a 2xx).
    pub(crate) fn send(&mut self, lines: &[u8]) -> Result<(), String> {
        // The objects hold no raw newline (JSON escapes it in strings): each one is a comma.
        let mut body = Vec::with_capacity(lines.len() + 2);
        body.push(b'[');
        body.extend(
            lines
                .iter()
                .map(|&byte| if byte == b'\n' { b',' } else { byte }),
        );
        if body.len() > 1 {
            body.pop(); // the last newline's comma
        }
        body.push(b']');
        self.post(body, "application/json")
    }

    /// Posts one body of `content_type`; `Err` says why it did not arrive (answered with a
    /// 2xx).
    pub(crate) fn post(&mut self, body: Vec<u8>, content_type: &'static str) -> Result<(), String> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static(content_type))
            .header("b3", HeaderValue::from_static("0"))
            .body(Full::new(Bytes::from(body)))
            .map_err(|error| error.to_string())?;
        let client = &self.client;
        let uri = &self.uri;
        let exchange = async move {
            let response = client
                .request(request)
                .await
                .map_err(|error| format!("POST {uri}: {}", with_sources(&error)))?;
            let status = response.status();
            // Read the answer to the end, so the connection can be reused.
            let _ = response.into_body().collect().await;
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("POST {uri}: {status}"))
            }
        };
        self.runtime
            .block_on(async { tokio::time::timeout(self.timeout, exchange).await })
            .unwrap_or_else(|_| {
                Err(format!(
                    "POST {}: no answer in {:?}",
                    self.uri, self.timeout
                ))
            })
    }
}

/// An error and its sources, `: `-separated (hyper's own message is only the error kind).
pub fn with_sources(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
