//! Zipkin v2 export.
