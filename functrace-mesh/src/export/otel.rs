//! An OpenTelemetry [`SpanExporter`] that converts the SDK's spans to Zipkin v2 spans and
//! hands them to a [`Reporter`], so an OpenTelemetry pipeline shares the reporter's queue,
//! destinations and counters with the traced calls and the HTTP layers.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use functrace::{SpanId, TraceId};
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::{Key, KeyValue, Value};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;

use super::reporter::Reporter;
use super::span::{duration_micros, epoch_micros, Annotation, Endpoint, Kind, Span};

/// Exports OpenTelemetry spans through a [`Reporter`].
///
/// The local service name is, first found: [`with_service_name`](Self::with_service_name),
/// the resource's `service.name` (unless it is the SDK's `unknown_service` fallback), the
/// reporter's service name.
///
/// ```no_run
/// use functrace_mesh::export::{Reporter, ZipkinExporter};
/// use opentelemetry_sdk::trace::SdkTracerProvider;
///
/// let reporter = Reporter::builder("checkout").collector("http://127.0.0.1:9411").build()?;
/// let provider = SdkTracerProvider::builder()
///     .with_simple_exporter(ZipkinExporter::new(reporter.clone()))
///     .build();
/// # Ok::<(), functrace_mesh::export::BuildError>(())
/// ```
///
/// Mapping: `SpanKind` → `kind` (`Internal` → none), an invalid parent span id → no
/// `parentId`, attributes → tags, `Status::Error` → tags `otel.status_code` = `ERROR` and
/// `error` = the description (`true` if empty), `Status::Ok` → `otel.status_code` = `OK`,
/// the instrumentation scope → `otel.scope.name` / `otel.scope.version`, events →
/// annotations, and `peer.service` / `network.peer.address` / `network.peer.port` (or the
/// older `net.peer.ip` / `net.peer.port`) → the remote endpoint.
#[derive(Clone, Debug)]
pub struct ZipkinExporter {
    reporter: Reporter,
    service_name: Option<String>,
    resource_service_name: Option<String>,
}

impl ZipkinExporter {
    /// An exporter into `reporter`.
    pub fn new(reporter: Reporter) -> ZipkinExporter {
        ZipkinExporter {
            reporter,
            service_name: None,
            resource_service_name: None,
        }
    }

    /// Names the local service, over the resource and the reporter.
    pub fn with_service_name(mut self, service_name: impl Into<String>) -> ZipkinExporter {
        self.service_name = Some(service_name.into());
        self
    }

    /// The local service name of exported spans.
    pub fn service_name(&self) -> &str {
        self.service_name
            .as_deref()
            .or(self.resource_service_name.as_deref())
            .unwrap_or_else(|| self.reporter.service_name())
    }

    /// The Zipkin span of an OpenTelemetry span (`None` if its ids are invalid).
    pub fn convert(&self, data: SpanData) -> Option<Span> {
        to_zipkin(data, self.service_name())
    }
}

impl SpanExporter for ZipkinExporter {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        for data in batch {
            if let Some(span) = self.convert(data) {
                self.reporter.report(span);
            }
        }
        std::future::ready(Ok(()))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        // The reporter may be shared (with traced calls, HTTP layers): flush, do not stop it.
        if self.reporter.flush_timeout(timeout) {
            Ok(())
        } else {
            Err(OTelSdkError::Timeout(timeout))
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.reporter.flush();
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource_service_name = resource
            .get(&Key::from_static_str("service.name"))
            .map(|name| name.as_str().into_owned())
            .filter(|name| !name.is_empty() && !name.starts_with("unknown_service"));
    }
}

fn to_zipkin(data: SpanData, service_name: &str) -> Option<Span> {
    let context = &data.span_context;
    let trace_id = u128::from_be_bytes(context.trace_id().to_bytes());
    let trace_id = TraceId::from_hex(&format!("{trace_id:032x}"))?;
    let id = SpanId::new(u64::from_be_bytes(context.span_id().to_bytes()))?;
    let parent_id = SpanId::new(u64::from_be_bytes(data.parent_span_id.to_bytes()));
    let kind = match data.span_kind {
        SpanKind::Client => Some(Kind::Client),
        SpanKind::Server => Some(Kind::Server),
        SpanKind::Producer => Some(Kind::Producer),
        SpanKind::Consumer => Some(Kind::Consumer),
        SpanKind::Internal => None,
    };
    let duration = data
        .end_time
        .duration_since(data.start_time)
        .unwrap_or_default();

    let mut tags: BTreeMap<String, String> = data
        .attributes
        .iter()
        .map(|kv| (kv.key.to_string(), kv.value.as_str().into_owned()))
        .collect();
    let scope = &data.instrumentation_scope;
    if !scope.name().is_empty() {
        tags.insert("otel.scope.name".into(), scope.name().into());
    }
    if let Some(version) = scope.version() {
        tags.insert("otel.scope.version".into(), version.into());
    }
    match &data.status {
        Status::Unset => {}
        Status::Ok => {
            tags.insert("otel.status_code".into(), "OK".into());
        }
        Status::Error { description } => {
            tags.insert("otel.status_code".into(), "ERROR".into());
            let reason = if description.is_empty() {
                "true"
            } else {
                description
            };
            tags.insert("error".into(), reason.into());
        }
    }

    let annotations = data
        .events
        .iter()
        .map(|event| Annotation {
            timestamp: epoch_micros(event.timestamp),
            value: event_value(&event.name, &event.attributes),
        })
        .collect();

    Some(Span {
        trace_id,
        id,
        parent_id,
        name: data.name.into_owned(),
        kind,
        timestamp: epoch_micros(data.start_time),
        duration: duration_micros(duration),
        local_endpoint: Endpoint::service(service_name),
        remote_endpoint: kind.and_then(|_| remote_endpoint(&data.attributes)),
        annotations,
        tags,
        shared: None,
        debug: None,
    })
}

/// The event's name, or `{"name":{attributes}}` when it has attributes.
fn event_value(name: &str, attributes: &[KeyValue]) -> String {
    if attributes.is_empty() {
        return name.to_owned();
    }
    let attributes: serde_json::Map<String, serde_json::Value> = attributes
        .iter()
        .map(|kv| (kv.key.to_string(), kv.value.as_str().into_owned().into()))
        .collect();
    serde_json::json!({ name: attributes }).to_string()
}

fn remote_endpoint(attributes: &[KeyValue]) -> Option<Endpoint> {
    let get = |keys: &[&str]| -> Option<&Value> {
        keys.iter().find_map(|key| {
            attributes
                .iter()
                .find(|kv| kv.key.as_str() == *key)
                .map(|kv| &kv.value)
        })
    };
    let mut endpoint = Endpoint {
        service_name: get(&["peer.service"]).map(|name| name.as_str().into_owned()),
        ..Endpoint::default()
    };
    if let Some(ip) = get(&["network.peer.address", "net.peer.ip"])
        .and_then(|address| address.as_str().parse::<IpAddr>().ok())
    {
        endpoint = endpoint.with_ip(ip);
    }
    if let Some(port) = get(&["network.peer.port", "net.peer.port"]).and_then(|port| match port {
        Value::I64(port) => u16::try_from(*port).ok(),
        other => other.as_str().parse().ok(),
    }) {
        endpoint = endpoint.with_port(port);
    }
    (endpoint != Endpoint::default()).then_some(endpoint)
}
