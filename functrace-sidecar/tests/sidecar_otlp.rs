//! `functrace-sidecar --otlp URL`: the real binary sends its spans over OTLP/HTTP to a
//! receiver in the test (a hyper server on 127.0.0.1) that decodes each body with
//! `opentelemetry-proto`; the same spans go to the JSON lines file, and the two agree (the
//! shared SERVER span with an id of its own in OTLP, the CLIENT span as its parent). And a
//! request with only a `traceparent` through the sidecar and two services with the layers,
//! all exporting OTLP to the same receiver, makes one trace there.

mod sidecar_support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use functrace::{SpanId, TraceId};
use functrace_mesh::export::{otlp_server_span_id, Kind, Reporter};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span as OtlpSpan;
use prost::Message;
use sidecar_support::*;

const TRACE: &str = "80f198ee56343ba864fe8b2a57d3eff7";
const SPAN: &str = "e457b5a2e4d86bd1";
const PARENT: &str = "05e3ac9a4f6e3b90";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The requests an OTLP receiver got: path, content type, decoded body.
type Received = Arc<Mutex<Vec<(String, String, ExportTraceServiceRequest)>>>;

async fn otlp_receiver(received: Received) -> std::net::SocketAddr {
    serve(move |request: Request<Incoming>| {
        let received = received.clone();
        async move {
            let path = request.uri().path().to_owned();
            let content_type = request
                .headers()
                .get("content-type")
                .map(|value| value.to_str().unwrap().to_owned())
                .unwrap_or_default();
            let body = request.into_body().collect().await.unwrap().to_bytes();
            let decoded = ExportTraceServiceRequest::decode(body)
                .expect("the body is an ExportTraceServiceRequest");
            received.lock().unwrap().push((path, content_type, decoded));
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::OK;
            response
        }
    })
    .await
}

fn attributes(span: &OtlpSpan) -> BTreeMap<String, Value> {
    span.attributes
        .iter()
        .map(|kv| {
            let value = kv.value.as_ref().and_then(|v| v.value.clone()).unwrap();
            (kv.key.clone(), value)
        })
        .collect()
}

#[test]
fn spans_go_over_otlp_with_the_shared_server_span_given_its_own_id() {
    let rt = runtime();
    let received = Received::default();
    let receiver = rt.block_on(otlp_receiver(received.clone()));
    let app = rt.block_on(echo_app("a"));
    let svcb = rt.block_on(echo_app("svcb"));
    let sidecar = Sidecar::start(&[
        "--service",
        "svca",
        "--inbound",
        &format!("127.0.0.1:0={app}"),
        "--outbound",
        "127.0.0.1:0",
        "--route",
        &format!("svcb={svcb}"),
        "--otlp",
        &format!("http://{receiver}"),
    ]);
    // In: the caller's span, joined (B3 single header).
    let inbound = format!("http://{}/pay?amount=1", sidecar.inbound());
    curl(&[
        &inbound,
        "-H",
        &format!("b3: {TRACE}-{SPAN}-1-{PARENT}"),
        "-H",
        "x-request-id: r-1",
    ]);
    // Out: the app's own call, a child of the span the app was handed.
    let outbound = format!("http://{}/notify", sidecar.outbound());
    curl(&[
        &outbound,
        "-H",
        "Host: svcb",
        "-H",
        &format!("b3: {TRACE}-{SPAN}-1"),
    ]);
    let (status, json_spans) = sidecar.stop();
    assert!(status.success(), "{status}");
    assert_eq!(json_spans.len(), 2, "{json_spans:#?}");

    let received = received.lock().unwrap();
    assert!(!received.is_empty());
    let mut spans = Vec::new();
    for (path, content_type, request) in received.iter() {
        assert_eq!(path, "/v1/traces");
        assert_eq!(content_type, "application/x-protobuf");
        for resource_spans in &request.resource_spans {
            let resource = resource_spans.resource.as_ref().unwrap();
            let service = resource
                .attributes
                .iter()
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref()?.value.clone());
            assert_eq!(service, Some(Value::StringValue("svca".into())));
            for scope_spans in &resource_spans.scope_spans {
                assert_eq!(scope_spans.scope.as_ref().unwrap().name, "functrace");
                spans.extend(scope_spans.spans.iter().cloned());
            }
        }
    }
    assert_eq!(spans.len(), 2, "{spans:#?}");
    for span in &spans {
        assert_eq!(hex(&span.trace_id), TRACE);
    }

    let server = spans
        .iter()
        .find(|span| span.kind == SpanKind::Server as i32)
        .expect("a SERVER span");
    let json_server = json_spans
        .iter()
        .find(|span| span.kind == Some(Kind::Server))
        .unwrap();
    // Zipkin: the caller's id, shared. OTLP: an id of its own, the caller's span its parent.
    assert_eq!(json_server.id.to_string(), SPAN);
    assert_eq!(json_server.shared, Some(true));
    let own = otlp_server_span_id(
        TraceId::from_hex(TRACE).unwrap(),
        SpanId::from_hex(SPAN).unwrap(),
    );
    assert_eq!(hex(&server.span_id), own.to_string());
    assert_eq!(hex(&server.parent_span_id), SPAN);
    assert_eq!(server.name, "get /pay");
    assert_eq!(server.status, None);
    let micros = json_server.timestamp;
    assert_eq!(server.start_time_unix_nano, micros * 1000);
    assert_eq!(
        server.end_time_unix_nano,
        (micros + json_server.duration) * 1000
    );
    let attrs = attributes(server);
    assert_eq!(
        attrs["http.request.method"],
        Value::StringValue("GET".into())
    );
    assert_eq!(attrs["url.path"], Value::StringValue("/pay".into()));
    assert_eq!(attrs["http.response.status_code"], Value::IntValue(200));
    assert_eq!(
        attrs["network.protocol.version"],
        Value::StringValue("1.1".into())
    );
    assert_eq!(
        attrs["client.address"],
        Value::StringValue("127.0.0.1".into())
    );
    assert_eq!(
        attrs["network.peer.address"],
        Value::StringValue("127.0.0.1".into())
    );
    assert_eq!(
        attrs["upstream.address"],
        Value::StringValue(app.to_string())
    );
    let Value::ArrayValue(ids) = &attrs["http.request.header.x-request-id"] else {
        panic!("{attrs:?}");
    };
    assert_eq!(ids.values[0].value, Some(Value::StringValue("r-1".into())));

    let client = spans
        .iter()
        .find(|span| span.kind == SpanKind::Client as i32)
        .expect("a CLIENT span");
    let json_client = json_spans
        .iter()
        .find(|span| span.kind == Some(Kind::Client))
        .unwrap();
    assert_eq!(hex(&client.span_id), json_client.id.to_string());
    assert_eq!(hex(&client.parent_span_id), SPAN);
    assert_eq!(client.name, "get /notify");
    let attrs = attributes(client);
    assert_eq!(
        attrs["upstream.address"],
        Value::StringValue(svcb.to_string())
    );
    assert_eq!(attrs["http.response.status_code"], Value::IntValue(200));
}

#[test]
fn a_bad_otlp_url_is_a_config_error() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_functrace-sidecar"))
        .args([
            "--inbound",
            "127.0.0.1:0=127.0.0.1:1",
            "--otlp",
            "https://x:4318",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("tracing.otlp"), "{stderr}");
}

#[test]
fn traceparent_alone_through_a_sidecar_and_two_services_makes_one_otlp_trace() {
    // client --traceparent--> sidecar (inbound) -> svca (layers) -> sidecar (outbound,
    // Host: svcb) -> svcb (layers). Everyone exports OTLP to one receiver.
    const W3C_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const CALLER: &str = "00f067aa0ba902b7";
    let rt = runtime();
    let received = Received::default();
    let receiver = rt.block_on(otlp_receiver(received.clone()));
    let otlp = format!("http://{receiver}");
    let reporter = |service: &str| Reporter::builder(service).otlp(&otlp).build().unwrap();
    let (svca_reporter, svcb_reporter) = (reporter("svca"), reporter("svcb"));

    let sidecar = two_services(
        &rt,
        svca_reporter.clone(),
        svcb_reporter.clone(),
        |_| "ok".to_owned(),
        &["--otlp", &otlp],
    );
    let traceparent = format!("00-{W3C_TRACE}-{CALLER}-01");
    let (response, body) = rt.block_on(get(
        sidecar.inbound(),
        "/pay",
        &[("traceparent", &traceparent)],
    ));
    assert_eq!(response.status(), 200, "{body}");
    let (status, _) = sidecar.stop();
    assert!(status.success(), "{status}");
    svca_reporter.flush();
    svcb_reporter.flush();

    let received = received.lock().unwrap();
    let mut spans: Vec<(String, OtlpSpan)> = Vec::new();
    for (_, _, request) in received.iter() {
        for resource_spans in &request.resource_spans {
            let service = resource_spans
                .resource
                .as_ref()
                .unwrap()
                .attributes
                .iter()
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(name) => Some(name.clone()),
                    _ => None,
                })
                .unwrap();
            for scope_spans in &resource_spans.scope_spans {
                for span in &scope_spans.spans {
                    spans.push((service.clone(), span.clone()));
                }
            }
        }
    }
    assert_eq!(spans.len(), 4, "{spans:#?}");
    // One trace, the caller's, with a span id used once.
    assert!(spans.iter().all(|(_, s)| hex(&s.trace_id) == W3C_TRACE));
    let mut ids: Vec<String> = spans.iter().map(|(_, s)| hex(&s.span_id)).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "{spans:#?}");
    let find = |service: &str, kind: SpanKind| {
        &spans
            .iter()
            .find(|(name, s)| name == service && s.kind == kind as i32)
            .unwrap_or_else(|| panic!("no {kind:?} span of {service}: {spans:#?}"))
            .1
    };
    let sidecar_server = find("svca-sidecar", SpanKind::Server);
    let svca_client = find("svca", SpanKind::Client);
    let sidecar_client = find("svca-sidecar", SpanKind::Client);
    let svcb_server = find("svcb", SpanKind::Server);
    let trace_id = TraceId::from_hex(W3C_TRACE).unwrap();
    let own = |shared: &[u8]| {
        let shared = SpanId::from_hex(&hex(shared)).unwrap();
        otlp_server_span_id(trace_id, shared).to_string()
    };
    // The SERVER spans joined their caller's span id: in OTLP they have ids of their own
    // and the caller's span as their parent, even where traceparent gave no parent id.
    assert_eq!(hex(&sidecar_server.span_id), own(&hex_bytes(CALLER)));
    assert_eq!(hex(&sidecar_server.parent_span_id), CALLER);
    assert_eq!(hex(&svcb_server.span_id), own(&sidecar_client.span_id));
    assert_eq!(svcb_server.parent_span_id, sidecar_client.span_id);
    // svca's call was made under the joined span id: in OTLP, the caller's span.
    assert_eq!(hex(&svca_client.parent_span_id), CALLER);
    assert_eq!(sidecar_client.parent_span_id, svca_client.span_id);
    // Every parent is a span of the trace, or the caller's.
    assert!(spans.iter().all(|(_, s)| {
        let parent = hex(&s.parent_span_id);
        parent == CALLER || ids.contains(&parent)
    }));
}

fn hex_bytes(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}
