//! OTLP/HTTP export (the `otlp` feature): spans in the Zipkin model converted to OTLP's
//! protobuf messages (`opentelemetry-proto`) and posted as one `ExportTraceServiceRequest`
//! per batch to `/v1/traces`, `Content-Type: application/x-protobuf`.
//!
//! The mapping is documented in the parent module (`# OTLP`).

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span as OtlpSpan, SpanFlags, Status,
};
use prost::Message;
use std::collections::BTreeMap;

use super::semconv::{self, otlp_ids, trace_id_bytes, Attr};
use super::span::{Kind, Span};

/// Where an OTLP/HTTP receiver takes spans when its URL has no path.
pub const TRACES_PATH: &str = "/v1/traces";

/// How OTLP/HTTP requests are encoded (OpenTelemetry's `OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OtlpProtocol {
    /// `http/protobuf`: `Content-Type: application/x-protobuf` (the default, as in
    /// OpenTelemetry's SDKs).
    #[default]
    HttpProtobuf,
    /// `http/json`: OTLP/JSON (hex ids, integer enums), `Content-Type: application/json`.
    HttpJson,
}

/// The body of one `POST /v1/traces` and its content type: `spans` (normalized) as an
/// `ExportTraceServiceRequest`.
pub(crate) fn encode(spans: &[Span], protocol: OtlpProtocol) -> (Vec<u8>, &'static str) {
    let request = request(spans);
    match protocol {
        OtlpProtocol::HttpProtobuf => (request.encode_to_vec(), "application/x-protobuf"),
        OtlpProtocol::HttpJson => (
            serde_json::to_vec(&request).expect("OTLP messages serialize"),
            "application/json",
        ),
    }
}

/// `spans` as an `ExportTraceServiceRequest`, one resource per local service name.
pub(crate) fn request(spans: &[Span]) -> ExportTraceServiceRequest {
    let mut by_service: BTreeMap<&str, Vec<OtlpSpan>> = BTreeMap::new();
    for span in spans {
        let service = span.local_endpoint.service_name.as_deref().unwrap_or("");
        by_service.entry(service).or_default().push(to_otlp(span));
    }
    let resource_spans = by_service
        .into_iter()
        .map(|(service, spans)| ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    string("service.name", service),
                    string("telemetry.sdk.language", "rust"),
                    string("telemetry.sdk.name", "functrace"),
                    string("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
                ],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "functrace".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..InstrumentationScope::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

fn to_otlp(span: &Span) -> OtlpSpan {
    let (id, parent) = otlp_ids(span);
    let kind = match span.kind {
        None => SpanKind::Internal,
        Some(Kind::Client) => SpanKind::Client,
        Some(Kind::Server) => SpanKind::Server,
        Some(Kind::Producer) => SpanKind::Producer,
        Some(Kind::Consumer) => SpanKind::Consumer,
    };
    let remote_parent = span.kind == Some(Kind::Server) && parent.is_some();
    let flags = 0x01
        | SpanFlags::ContextHasIsRemoteMask as u32
        | if remote_parent {
            SpanFlags::ContextIsRemoteMask as u32
        } else {
            0
        };
    let start = span.timestamp.saturating_mul(1000);
    let status = span.tags.get("error").map(|reason| Status {
        message: reason.clone(),
        code: StatusCode::Error as i32,
    });
    OtlpSpan {
        trace_id: trace_id_bytes(span.trace_id).to_vec(),
        span_id: id.get().to_be_bytes().to_vec(),
        trace_state: String::new(),
        parent_span_id: parent.map_or_else(Vec::new, |parent| parent.get().to_be_bytes().to_vec()),
        flags,
        name: span.name.clone(),
        kind: kind as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start.saturating_add(span.duration.saturating_mul(1000)),
        attributes: attributes(span),
        dropped_attributes_count: 0,
        events: span
            .annotations
            .iter()
            .map(|annotation| Event {
                time_unix_nano: annotation.timestamp.saturating_mul(1000),
                name: annotation.value.clone(),
                ..Event::default()
            })
            .collect(),
        dropped_events_count: 0,
        links: Vec::new(),
        dropped_links_count: 0,
        status,
    }
}

fn attributes(span: &Span) -> Vec<KeyValue> {
    semconv::attributes(span)
        .into_iter()
        .map(|(key, value)| KeyValue {
            key,
            value: Some(AnyValue {
                value: Some(match value {
                    Attr::Text(text) => any_value::Value::StringValue(text),
                    Attr::Int(int) => any_value::Value::IntValue(int),
                    Attr::Texts(texts) => any_value::Value::ArrayValue(ArrayValue {
                        values: texts
                            .into_iter()
                            .map(|text| AnyValue {
                                value: Some(any_value::Value::StringValue(text)),
                            })
                            .collect(),
                    }),
                }),
            }),
            ..KeyValue::default()
        })
        .collect()
}

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}
