//! OpenTelemetry SDK spans both ways: [`ZipkinExporter`], a [`SpanExporter`] that converts the
//! SDK's spans to Zipkin v2 spans and hands them to a [`Reporter`], so an OpenTelemetry
//! pipeline shares the reporter's queue, destinations and counters with the traced calls and
//! the HTTP layers; and [`to_span_data`] with the export sink behind
//! `ReporterBuilder::build_with_exporter`, which hands functrace's spans to any SDK
//! `SpanExporter`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, SystemTime};

use functrace::{SpanId, TraceId};
use opentelemetry::trace::{
    Event, SpanContext, SpanId as OtelSpanId, SpanKind, Status, TraceFlags, TraceId as OtelTraceId,
    TraceState,
};
use opentelemetry::{Array, InstrumentationScope, Key, KeyValue, StringValue, Value};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter, SpanLinks};
use opentelemetry_sdk::Resource;

use super::reporter::Reporter;
use super::semconv::{self, Attr};
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

/// The OpenTelemetry SDK span of a functrace span (normalized, as a [`Reporter`] exports
/// it): the same mapping as OTLP export (see the [module docs](crate::export#otlp)), so a
/// shared SERVER span gets [`otlp_server_span_id`](crate::export::otlp_server_span_id) as its
/// id and the CLIENT span as its parent; scope `functrace`. Events have no attributes.
pub fn to_span_data(span: &Span) -> SpanData {
    let (id, parent) = semconv::otlp_ids(span);
    let span_context = SpanContext::new(
        OtelTraceId::from_bytes(semconv::trace_id_bytes(span.trace_id)),
        OtelSpanId::from_bytes(id.get().to_be_bytes()),
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    );
    let start = SystemTime::UNIX_EPOCH + Duration::from_micros(span.timestamp);
    let mut events = SpanEvents::default();
    events.events = span
        .annotations
        .iter()
        .map(|annotation| {
            Event::new(
                annotation.value.clone(),
                SystemTime::UNIX_EPOCH + Duration::from_micros(annotation.timestamp),
                Vec::new(),
                0,
            )
        })
        .collect();
    SpanData {
        span_context,
        parent_span_id: parent.map_or(OtelSpanId::INVALID, |parent| {
            OtelSpanId::from_bytes(parent.get().to_be_bytes())
        }),
        parent_span_is_remote: span.kind == Some(Kind::Server) && parent.is_some(),
        span_kind: match span.kind {
            None => SpanKind::Internal,
            Some(Kind::Client) => SpanKind::Client,
            Some(Kind::Server) => SpanKind::Server,
            Some(Kind::Producer) => SpanKind::Producer,
            Some(Kind::Consumer) => SpanKind::Consumer,
        },
        name: Cow::Owned(span.name.clone()),
        start_time: start,
        end_time: start + Duration::from_micros(span.duration),
        attributes: semconv::attributes(span)
            .into_iter()
            .map(|(key, value)| {
                let value = match value {
                    Attr::Text(text) => Value::from(text),
                    Attr::Int(int) => Value::I64(int),
                    Attr::Texts(texts) => Value::Array(Array::String(
                        texts.into_iter().map(StringValue::from).collect(),
                    )),
                };
                KeyValue::new(key, value)
            })
            .collect(),
        dropped_attributes_count: 0,
        events,
        links: SpanLinks::default(),
        status: match span.tags.get("error") {
            Some(reason) => Status::error(reason.clone()),
            None => Status::Unset,
        },
        instrumentation_scope: InstrumentationScope::builder("functrace")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build(),
    }
}

/// An OpenTelemetry SDK span exporter as a destination of the export thread.
pub(crate) trait ExportSink: Send {
    fn export(&mut self, spans: &[Span]) -> Result<(), String>;
    fn shutdown(&mut self);
}

struct SdkSink<E>(E);

/// `exporter` as a destination, its resource `service.name` = `service_name`.
pub(crate) fn sink<E: SpanExporter + 'static>(
    mut exporter: E,
    service_name: &str,
) -> Box<dyn ExportSink> {
    exporter.set_resource(
        &Resource::builder_empty()
            .with_service_name(service_name.to_owned())
            .build(),
    );
    Box::new(SdkSink(exporter))
}

impl<E: SpanExporter + 'static> ExportSink for SdkSink<E> {
    fn export(&mut self, spans: &[Span]) -> Result<(), String> {
        let batch = spans.iter().map(to_span_data).collect();
        // As the SDK's own span processors drive an exporter: on this thread, with no
        // runtime of its own (an exporter that needs one brings it, as tonic's does).
        block_on(self.0.export(batch)).map_err(|error| format!("span exporter: {error}"))
    }

    fn shutdown(&mut self) {
        let _ = self.0.shutdown();
    }
}

/// Runs a future to completion on this thread, parking between polls.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut context = TaskContext::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        thread::park();
    }
}
