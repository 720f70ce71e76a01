//! Zipkin v2 export: the span model ([`Span`]), and a [`Reporter`] that queues spans
//! without blocking and writes them from a background thread as JSON lines (a file or
//! stdout) and/or posts them to a Zipkin collector (`POST /api/v2/spans`).
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
//! Every exported span has `localEndpoint.serviceName`, lowercase hex ids of the width they
//! were received with, no `parentId` on a root span, and a duration of at least 1µs.

mod collector;
mod json;
mod jsonl;
#[cfg(feature = "otel")]
mod otel;
mod queue;
mod reporter;
mod span;

pub use collector::{with_sources, SPANS_PATH};
pub use json::{socket_address_text, Text as TagText};
#[cfg(feature = "otel")]
pub use otel::ZipkinExporter;
pub use reporter::{
    BuildError, Reporter, ReporterBuilder, ReporterGuard, Stats, DEFAULT_BATCH_SIZE,
    DEFAULT_INTERVAL, DEFAULT_QUEUE_SIZE, DEFAULT_REQUEST_TIMEOUT,
};
pub use span::{duration_micros, epoch_micros, task_label, Annotation, Endpoint, Kind, Span};
