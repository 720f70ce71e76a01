//! OTLP/HTTP export (the `otlp` feature): spans in the Zipkin model converted to OTLP's
//! protobuf messages (`opentelemetry-proto`) and posted as one `ExportTraceServiceRequest`
//! per batch to `/v1/traces`, `Content-Type: application/x-protobuf`.
//!
//! The mapping is documented in the parent module (`# OTLP`).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use functrace::{SpanId, TraceId};
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

use super::span::{Endpoint, Kind, Span};

/// Where an OTLP/HTTP receiver takes spans when its URL has no path.
pub const TRACES_PATH: &str = "/v1/traces";

/// The OTLP span id of a SERVER span that shared its caller's span id `shared` in trace
/// `trace_id`: OTLP has no shared spans, so the SERVER span gets this id and the CLIENT span
/// (`shared`) as its parent. Deterministic (a mix of the two ids, never zero, never `shared`
/// itself), so that every exporter of the span, and a test, agrees on it.
pub fn otlp_server_span_id(trace_id: TraceId, shared: SpanId) -> SpanId {
    // splitmix64's finalizer over the span id and the trace id's low half.
    let mut x = shared.get() ^ trace_id.low().rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    if x == shared.get() {
        x = !x;
    }
    SpanId::new(x).unwrap_or(SpanId::new(!shared.get()).unwrap_or(shared))
}

/// The 16 bytes of a trace id: a 64-bit id has eight zero bytes in front.
pub(crate) fn trace_id_bytes(trace_id: TraceId) -> [u8; 16] {
    let (high, low) = match trace_id {
        TraceId::Short(low) => (0, low.get()),
        TraceId::Long(high, low) => (high, low),
    };
    ((u128::from(high) << 64) | u128::from(low)).to_be_bytes()
}

/// The ids a span has in OTLP: its own, and its parent's (see [`otlp_server_span_id`]).
pub(crate) fn otlp_ids(span: &Span) -> (SpanId, Option<SpanId>) {
    if span.kind == Some(Kind::Server) && span.shared == Some(true) {
        (otlp_server_span_id(span.trace_id, span.id), Some(span.id))
    } else {
        (span.id, span.parent_id)
    }
}

/// The protobuf body of one `POST /v1/traces`: `spans` (normalized) as an
/// `ExportTraceServiceRequest`.
pub(crate) fn encode(spans: &[Span]) -> Vec<u8> {
    request(spans).encode_to_vec()
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

enum Attr {
    Text(String),
    Int(i64),
    Texts(Vec<String>),
}

fn attributes(span: &Span) -> Vec<KeyValue> {
    let mut attrs: BTreeMap<String, Attr> = BTreeMap::new();
    let text = |value: &str| Attr::Text(value.to_owned());
    let int_or_text = |value: &str| value.parse().map_or_else(|_| text(value), Attr::Int);
    for (key, value) in &span.tags {
        match key.as_str() {
            "error" => {}
            "http.method" => {
                attrs.insert("http.request.method".into(), text(value));
            }
            "http.path" => {
                attrs.insert("url.path".into(), text(value));
            }
            "http.url" => {
                attrs.insert("url.full".into(), text(value));
            }
            "http.status_code" => {
                attrs.insert("http.response.status_code".into(), int_or_text(value));
            }
            "http.protocol" => match value.split_once('/') {
                Some((name, version)) if !name.is_empty() && !version.is_empty() => {
                    attrs.insert(
                        "network.protocol.name".into(),
                        Attr::Text(name.to_ascii_lowercase()),
                    );
                    attrs.insert("network.protocol.version".into(), text(version));
                }
                _ => {
                    attrs.insert(key.clone(), text(value));
                }
            },
            "peer.address" => match value.parse::<SocketAddr>() {
                Ok(address) => {
                    attrs.insert(
                        "network.peer.address".into(),
                        Attr::Text(address.ip().to_string()),
                    );
                    attrs.insert("network.peer.port".into(), Attr::Int(address.port().into()));
                }
                Err(_) => {
                    attrs.insert(key.clone(), text(value));
                }
            },
            "request_size" => {
                attrs.insert("http.request.body.size".into(), int_or_text(value));
            }
            "response_size" => {
                attrs.insert("http.response.body.size".into(), int_or_text(value));
            }
            "guid:x-request-id" => {
                attrs.insert(
                    "http.request.header.x-request-id".into(),
                    Attr::Texts(vec![value.clone()]),
                );
            }
            "grpc.status_code" => {
                attrs.insert("rpc.grpc.status_code".into(), int_or_text(value));
            }
            _ => {
                attrs.insert(key.clone(), text(value));
            }
        }
    }
    if span.tags.contains_key("error") {
        if let Some(status) = span
            .tags
            .get("http.status_code")
            .and_then(|status| status.parse::<u16>().ok())
            .filter(|&status| status >= 400)
        {
            attrs.insert("error.type".into(), Attr::Text(status.to_string()));
        }
    }
    let mut add = |key: &str, value: Attr| {
        attrs.entry(key.to_owned()).or_insert(value);
    };
    if let Some(remote) = &span.remote_endpoint {
        if let Some(service) = &remote.service_name {
            add("peer.service", Attr::Text(service.clone()));
        }
        let (address, port) = match span.kind {
            Some(Kind::Client) => ("server.address", "server.port"),
            Some(Kind::Server) => ("client.address", "client.port"),
            _ => ("network.peer.address", "network.peer.port"),
        };
        if let Some(ip) = ip(remote) {
            add(address, Attr::Text(ip.to_string()));
            add("network.peer.address", Attr::Text(ip.to_string()));
        }
        if let Some(remote_port) = remote.port {
            add(port, Attr::Int(remote_port.into()));
            add("network.peer.port", Attr::Int(remote_port.into()));
        }
    }
    if let Some(ip) = ip(&span.local_endpoint) {
        add("network.local.address", Attr::Text(ip.to_string()));
    }
    if let Some(port) = span.local_endpoint.port {
        add("network.local.port", Attr::Int(port.into()));
    }
    attrs
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

fn ip(endpoint: &Endpoint) -> Option<IpAddr> {
    endpoint
        .ipv4
        .map(IpAddr::V4)
        .or(endpoint.ipv6.map(IpAddr::V6))
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
