//! The JSON shape of Zipkin v2 spans: what the model and its constructors produce.

mod export_support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use export_support::{context, finished};
use functrace::Sampling;
use functrace_mesh::export::{
    duration_micros, epoch_micros, task_label, Endpoint, Kind, Reporter, Span,
};
use serde_json::{json, Value};

const TRACE_128: &str = "463ac35c9f6413ad48485a3953bb6124";
const TRACE_64: &str = "48485a3953bb6124";

fn at(micros: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_micros(micros)
}

fn to_json(span: &Span) -> Value {
    serde_json::to_value(span).unwrap()
}

#[test]
fn a_root_span_has_no_parent_id_and_keeps_the_trace_id_width() {
    for trace in [TRACE_128, TRACE_64] {
        let root = context(trace, "a2fb4a1d1a96d312", None, Sampling::Accept);
        let span = Span::new(
            &root,
            "main",
            at(1_500_000),
            Duration::from_micros(7),
            "svc",
        );
        let json = to_json(&span);
        assert_eq!(json["traceId"], trace);
        assert_eq!(json["id"], "a2fb4a1d1a96d312");
        let object = json.as_object().unwrap();
        assert!(!object.contains_key("parentId"), "{json}");
        for absent in [
            "kind",
            "remoteEndpoint",
            "tags",
            "shared",
            "debug",
            "annotations",
        ] {
            assert!(!object.contains_key(absent), "{absent} in {json}");
        }
    }
}

#[test]
fn a_child_span_serializes_exactly_as_the_spec_names_its_fields() {
    let child = context(
        TRACE_64,
        "0000000000000001",
        Some("00f067aa0ba902b7"),
        Sampling::Accept,
    );
    let span = Span::client(
        &child,
        "get /users",
        at(1_556_604_172_355_737),
        Duration::from_micros(1431),
        "frontend",
    )
    .with_remote_endpoint(Endpoint::service("backend").with_addr("10.0.0.2:8080".parse().unwrap()))
    .with_tag("http.method", "GET");
    assert_eq!(
        to_json(&span),
        json!({
            "traceId": "48485a3953bb6124",
            "id": "0000000000000001",
            "parentId": "00f067aa0ba902b7",
            "name": "get /users",
            "kind": "CLIENT",
            "timestamp": 1_556_604_172_355_737u64,
            "duration": 1431,
            "localEndpoint": {"serviceName": "frontend"},
            "remoteEndpoint": {"serviceName": "backend", "ipv4": "10.0.0.2", "port": 8080},
            "tags": {"http.method": "GET"},
        })
    );
}

#[test]
fn durations_are_at_least_one_microsecond() {
    assert_eq!(duration_micros(Duration::ZERO), 1);
    assert_eq!(duration_micros(Duration::from_nanos(999)), 1);
    assert_eq!(duration_micros(Duration::from_micros(1500)), 1500);
    let root = context(TRACE_128, "a2fb4a1d1a96d312", None, Sampling::Accept);
    let span = Span::new(&root, "fast", SystemTime::now(), Duration::ZERO, "svc");
    assert_eq!(to_json(&span)["duration"], 1);
    // A span built by hand with 0 is fixed before export.
    let mut span = span;
    span.duration = 0;
    span.normalize("svc");
    assert_eq!(span.duration, 1);
    assert_eq!(
        epoch_micros(at(1_502_787_600_000_000)),
        1_502_787_600_000_000
    );
    assert_eq!(
        epoch_micros(SystemTime::UNIX_EPOCH - Duration::from_secs(1)),
        0
    );
}

#[test]
fn shared_is_set_only_on_a_server_span_that_joined_the_callers_span() {
    let caller = context(
        TRACE_128,
        "00f067aa0ba902b7",
        Some("a2fb4a1d1a96d312"),
        Sampling::Accept,
    );
    let joined = Span::server(
        &caller,
        "get",
        at(1),
        Duration::from_micros(5),
        "backend",
        true,
    );
    assert_eq!(joined.kind, Some(Kind::Server));
    assert_eq!(to_json(&joined)["shared"], true);
    assert_eq!(to_json(&joined)["id"], "00f067aa0ba902b7");

    let child = caller.child();
    let own = Span::server(
        &child,
        "get",
        at(1),
        Duration::from_micros(5),
        "backend",
        false,
    );
    assert!(!to_json(&own).as_object().unwrap().contains_key("shared"));
    let client = Span::client(&caller, "get", at(1), Duration::from_micros(5), "frontend");
    assert!(!to_json(&client).as_object().unwrap().contains_key("shared"));
}

#[test]
fn debug_is_set_only_on_debug_sampled_traces() {
    let debug = context(TRACE_128, "00f067aa0ba902b7", None, Sampling::Debug);
    assert_eq!(
        to_json(&Span::new(
            &debug,
            "x",
            at(1),
            Duration::from_micros(1),
            "s"
        ))["debug"],
        true
    );
    let accept = context(TRACE_128, "00f067aa0ba902b7", None, Sampling::Accept);
    let json = to_json(&Span::new(
        &accept,
        "x",
        at(1),
        Duration::from_micros(1),
        "s",
    ));
    assert!(!json.as_object().unwrap().contains_key("debug"));
}

#[test]
fn a_traced_call_becomes_a_local_span_with_task_and_error_tags() {
    let ctx = context(
        TRACE_64,
        "00f067aa0ba902b7",
        Some("a2fb4a1d1a96d312"),
        Sampling::Accept,
    );
    let ok = Span::from_finished(&finished("chains::a1", ctx, 3, None), "worker");
    let json = to_json(&ok);
    assert_eq!(json["name"], "chains::a1");
    assert_eq!(json["localEndpoint"], json!({"serviceName": "worker"}));
    assert_eq!(json["tags"], json!({"task": "t[03]"}));
    assert_eq!(json["timestamp"], 1_700_000_000_000_000u64);
    assert_eq!(json["duration"], 42);
    assert_eq!(json["parentId"], "a2fb4a1d1a96d312");
    assert!(!json.as_object().unwrap().contains_key("kind"));

    let failed = Span::from_finished(&finished("chains::d", ctx, 123, Some("panicked")), "w");
    assert_eq!(
        to_json(&failed)["tags"],
        json!({"task": "t[123]", "error": "panicked"})
    );
    assert_eq!(task_label(7), "t[07]");
}

#[test]
fn endpoints_write_addresses_as_text_and_leave_unknowns_out() {
    let v6: SocketAddr = "[2001:db8::c001]:443".parse().unwrap();
    assert_eq!(
        serde_json::to_value(Endpoint::socket(v6)).unwrap(),
        json!({"ipv6": "2001:db8::c001", "port": 443})
    );
    let mapped = IpAddr::V6(Ipv4Addr::new(192, 168, 99, 100).to_ipv6_mapped());
    assert_eq!(
        serde_json::to_value(Endpoint::default().with_ip(mapped).with_port(0)).unwrap(),
        json!({"ipv4": "192.168.99.100"})
    );
    assert_eq!(
        serde_json::to_value(Endpoint::default().with_ip(IpAddr::V6(Ipv6Addr::LOCALHOST))).unwrap(),
        json!({"ipv6": "::1"})
    );
}

#[test]
fn normalize_fills_the_service_name_and_lowercases_names() {
    let root = context(TRACE_128, "00f067aa0ba902b7", None, Sampling::Accept);
    let mut span = Span::new(&root, "GET /Users", at(1), Duration::from_micros(3), "")
        .with_remote_endpoint(Endpoint::service("Backend"))
        .with_annotation(at(2), "ws")
        .with_annotation(at(2), "ws");
    span.normalize("Checkout");
    let json = to_json(&span);
    assert_eq!(json["name"], "get /users");
    assert_eq!(json["localEndpoint"]["serviceName"], "checkout");
    assert_eq!(json["remoteEndpoint"]["serviceName"], "backend");
    assert_eq!(
        json["annotations"],
        json!([{"timestamp": 2, "value": "ws"}])
    );
}

#[test]
fn spans_parse_back_and_bad_ids_are_rejected() {
    let ctx = context(
        TRACE_64,
        "00f067aa0ba902b7",
        Some("a2fb4a1d1a96d312"),
        Sampling::Accept,
    );
    let span =
        Span::client(&ctx, "get", at(10), Duration::from_micros(5), "svc").with_error("timeout");
    let text = serde_json::to_string(&span).unwrap();
    assert_eq!(serde_json::from_str::<Span>(&text).unwrap(), span);

    let mut bad = serde_json::to_value(&span).unwrap();
    bad["parentId"] = json!("0000000000000000");
    assert!(serde_json::from_value::<Span>(bad.clone()).is_err());
    bad["parentId"] = json!("A2FB4A1D1A96D312");
    assert!(serde_json::from_value::<Span>(bad.clone()).is_err());
    bad["parentId"] = json!("a2fb4a1d1a96d312");
    bad["traceId"] = json!("48485a3953bb612");
    assert!(serde_json::from_value::<Span>(bad).is_err());
}

#[test]
fn the_builder_rejects_what_it_cannot_export_to() {
    let https = Reporter::builder("svc")
        .collector("https://zipkin:9411")
        .build();
    assert!(https
        .unwrap_err()
        .to_string()
        .contains("only plain http://"));
    let relative = Reporter::builder("svc").collector("/api/v2/spans").build();
    assert!(relative.is_err());
    let missing = Reporter::builder("svc")
        .json_lines("/nonexistent-dir-for-functrace/spans.jsonl")
        .build();
    let error = missing.unwrap_err().to_string();
    assert!(
        error.contains("/nonexistent-dir-for-functrace/spans.jsonl"),
        "{error}"
    );
}
