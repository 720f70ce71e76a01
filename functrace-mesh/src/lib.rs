//! The same trace across services: B3 context in HTTP and gRPC headers, and spans in the
//! Zipkin v2 model, exported as JSON lines or to a Zipkin collector.

pub mod b3;
pub mod export;
pub mod http;
pub mod sidecar;
pub mod view;
