//! The same trace across services: B3 context in HTTP and gRPC headers, and spans in the
//! Zipkin v2 model, exported as JSON lines or to a Zipkin collector.
//!
//! - [`b3`]: the B3 codec (single and multi headers), strict per the specification.
//! - [`layer`]: tower layers for HTTP and gRPC servers and clients (hyper, axum, tonic).
//! - [`http_span`]: the HTTP span vocabulary shared by the layers and `functrace-sidecar`.
//! - [`export`]: the span model and the [`export::Reporter`] (JSON lines, Zipkin collector;
//!   with the `otlp` feature, OTLP/HTTP); with the `otel` feature, an OpenTelemetry span
//!   exporter too, and any OpenTelemetry SDK span exporter as a destination.
//! - `otel` (the `otel` feature): B3 as an OpenTelemetry propagator, and trace contexts to
//!   and from OpenTelemetry's span contexts.

pub mod b3;
pub mod export;
pub mod http_span;
pub mod layer;
#[cfg(feature = "otel")]
pub mod otel;
