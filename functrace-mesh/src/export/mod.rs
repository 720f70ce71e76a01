//! Zipkin v2 export: the span model ([`Span`]), and a [`Reporter`] that queues spans
//! without blocking and writes them from a background thread as JSON lines (a file or
//! stdout) and/or posts them to a Zipkin collector (`POST /api/v2/spans`) and/or, with the
//! `otlp` feature, to an OpenTelemetry collector over OTLP/HTTP (`POST /v1/traces`,
//! protobuf; `ReporterBuilder::otlp`).
//!
//! Spans come from three places, all into one reporter:
//!
//! - traced calls: [`Reporter`] is a [`functrace::SpanReporter`]; [`Reporter::install`]
//!   makes it the process-wide one, and each traced call that ends inside a sampled trace
//!   becomes a local span (no kind) with tags `task` (`t[NN]`) and, on failure, `error`;
//! - HTTP layers: they build CLIENT and SERVER spans ([`Span::client`], [`Span::server`])
//!   and hand them to [`Reporter::report`];
//! - OpenTelemetry (the `otel` feature): `ZipkinExporter` is an `opentelemetry_sdk` span
//!   exporter.
//!
//! The other way round, with the `otel` feature, `ReporterBuilder::build_with_exporter` makes
//! any `opentelemetry_sdk` `SpanExporter` (`opentelemetry-otlp`'s, say) a destination of the
//! reporter: the reporter is then the [`functrace::SpanReporter`] that hands functrace's spans
//! (`to_span_data`, the same mapping as OTLP below) to that exporter, in batches from the
//! export thread, with the same queue, drop counting and `flush`.
//!
//! Every exported span has `localEndpoint.serviceName`, lowercase hex ids of the width they
//! were received with, no `parentId` on a root span, and a duration of at least 1µs.
//!
//! # OTLP
//!
//! With the `otlp` feature, `ReporterBuilder::otlp` adds an OTLP/HTTP destination: each
//! batch (the same queue, batches, drop counting and `flush` as the other destinations) is
//! one `ExportTraceServiceRequest` (`opentelemetry-proto`'s messages, encoded with `prost`),
//! posted with `Content-Type: application/x-protobuf` (or, with
//! `ReporterBuilder::otlp_protocol(OtlpProtocol::HttpJson)`, as OTLP/JSON). A Zipkin span becomes an OTLP span
//! so:
//!
//! - One `ResourceSpans` per local service name, with resource attribute `service.name` (and
//!   `telemetry.sdk.name` = `functrace`, `telemetry.sdk.language` = `rust`); one
//!   `ScopeSpans` in each, scope `functrace` with this crate's version.
//! - Ids: a 64-bit trace id is written as 16 bytes with eight zero bytes in front (OTLP trace
//!   ids are 128-bit; W3C and OpenTelemetry pad the same way). Span and parent ids as they
//!   are; a root span has an empty `parent_span_id`.
//! - **Shared spans.** OTLP has no shared spans: a span id names one span. A Zipkin SERVER
//!   span that joined its caller's span id (`shared: true`) gets a span id of its own,
//!   `otlp_server_span_id` (derived from the trace id and the shared id, so every exporter
//!   of the same span agrees on it), and the caller's CLIENT span (the shared id) as its
//!   parent. Spans started inside that SERVER span keep the shared id as their parent, so
//!   in OTLP they hang from the CLIENT span, beside the SERVER span rather than under it.
//!   (The id that went over the wire stays the CLIENT span's: a service instrumented with
//!   OpenTelemetry that received it makes it its parent, and finds it.)
//! - Kind: none → `SPAN_KIND_INTERNAL`; CLIENT, SERVER, PRODUCER, CONSUMER as named.
//! - Status: a span with tag `error` has `STATUS_CODE_ERROR` with the tag's value as its
//!   message (`error` is not repeated as an attribute); any other span has no status (unset).
//! - Time: `start_time_unix_nano` and `end_time_unix_nano`, from the span's microseconds.
//! - Flags: sampled (only sampled spans are exported), and whether the parent is remote
//!   (known for every span; remote for a SERVER span with a parent).
//! - Attributes, after OpenTelemetry's HTTP semantic conventions: `http.method` →
//!   `http.request.method`, `http.path` → `url.path`, `http.url` → `url.full`, `http.route`
//!   stays, `http.status_code` → `http.response.status_code` (an integer), `http.protocol`
//!   (`HTTP/1.1`) → `network.protocol.name` = `http` and `network.protocol.version` = `1.1`,
//!   `peer.address` (`ip:port`) → `network.peer.address` and `network.peer.port`,
//!   `request_size` / `response_size` → `http.request.body.size` / `http.response.body.size`,
//!   `guid:x-request-id` → `http.request.header.x-request-id` (a string array),
//!   `grpc.status_code` → `rpc.grpc.status_code`; an error with an HTTP status of 400 or more
//!   adds `error.type` = the status code. The remote endpoint gives `peer.service`, and its
//!   address `server.address` / `server.port` on a CLIENT span, `client.address` /
//!   `client.port` on a SERVER span (and `network.peer.address` / `network.peer.port` when no
//!   tag gave them); the local endpoint's address gives `network.local.address` /
//!   `network.local.port`. Every other tag is a string attribute of the same name.
//! - Annotations → events (name = the annotation's value, at its time). `debug` has no OTLP
//!   counterpart and is left out.

mod collector;
mod json;
mod jsonl;
#[cfg(feature = "otel")]
mod otel;
#[cfg(feature = "otlp")]
mod otlp;
mod queue;
mod reporter;
#[cfg(any(feature = "otel", feature = "otlp"))]
mod semconv;
mod span;

pub use collector::{with_sources, SPANS_PATH};
pub use json::{socket_address_text, Text as TagText};
#[cfg(feature = "otel")]
pub use otel::{to_span_data, ZipkinExporter};
#[cfg(feature = "otlp")]
pub use otlp::{OtlpProtocol, TRACES_PATH};
pub use reporter::{
    BuildError, DeferredSpan, Reporter, ReporterBuilder, ReporterGuard, Stats, Tag,
    DEFAULT_BATCH_SIZE, DEFAULT_INTERVAL, DEFAULT_LINES_BATCH_SIZE, DEFAULT_QUEUE_BYTES,
    DEFAULT_QUEUE_SIZE, DEFAULT_REQUEST_TIMEOUT,
};
#[cfg(any(feature = "otel", feature = "otlp"))]
pub use semconv::{otlp_server_span_id, trace_id_bytes};
pub use span::{duration_micros, epoch_micros, task_label, Annotation, Endpoint, Kind, Span};
