//! The same trace across services: B3 or W3C Trace Context in HTTP and gRPC headers, and
//! spans in the Zipkin v2 model, exported as JSON lines, to a Zipkin collector or over OTLP.
//!
//! - [`b3`]: the B3 codec (single and multi headers), strict per the specification.
//! - [`w3c`]: the W3C Trace Context codec (`traceparent`, `tracestate`), strict per the
//!   Recommendation.
//! - [`propagation`]: both standards together: which one wins, and which ones go on.
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
pub mod propagation;
pub mod w3c;
