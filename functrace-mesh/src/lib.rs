//! The same trace across services: B3 or W3C Trace Context in HTTP and gRPC headers, and
//! spans in the Zipkin v2 model, exported as JSON lines or to a Zipkin collector.
//!
//! - [`b3`]: the B3 codec (single and multi headers), strict per the specification.
//! - [`w3c`]: the W3C Trace Context codec (`traceparent`, `tracestate`), strict per the
//!   Recommendation.
//! - [`propagation`]: both standards together: which one wins, and which ones go on.
//! - [`layer`]: tower layers for HTTP and gRPC servers and clients (hyper, axum, tonic).
//! - [`http_span`]: the HTTP span vocabulary shared by the layers and `functrace-sidecar`.
//! - [`export`]: the span model and the [`export::Reporter`] (JSON lines, Zipkin collector);
//!   with the `otel` feature, an OpenTelemetry span exporter too.

pub mod b3;
pub mod export;
pub mod http_span;
pub mod layer;
pub mod propagation;
pub mod w3c;
