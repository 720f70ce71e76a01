//! What OpenTelemetry's data model makes of a span in the Zipkin model: the ids (a shared
//! SERVER span gets one of its own) and the attributes after the HTTP semantic conventions.
//! Shared by OTLP export (the `otlp` feature) and the OpenTelemetry SDK adapter (`otel`); the
//! mapping is documented in the parent module (`# OTLP`).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use functrace::{SpanId, TraceId};

use super::span::{Endpoint, Kind, Span};

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

/// The 16 bytes of a trace id in OpenTelemetry: a 64-bit id has eight zero bytes in front.
pub fn trace_id_bytes(trace_id: TraceId) -> [u8; 16] {
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

/// An attribute value.
pub(crate) enum Attr {
    /// A string.
    Text(String),
    /// An integer.
    Int(i64),
    /// A string array.
    Texts(Vec<String>),
}

/// The attributes of a span, by key, after the HTTP semantic conventions.
pub(crate) fn attributes(span: &Span) -> Vec<(String, Attr)> {
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
    attrs.into_iter().collect()
}

fn ip(endpoint: &Endpoint) -> Option<IpAddr> {
    endpoint
        .ipv4
        .map(IpAddr::V4)
        .or(endpoint.ipv6.map(IpAddr::V6))
}
