//! The reporter posting OTLP/HTTP to a real receiver (a hyper server on 127.0.0.1 in the
//! test) that decodes every request body with `opentelemetry-proto`'s messages: ids,
//! parents (a shared SERVER span gets an id of its own), kinds, status, attributes after the
//! HTTP semantic conventions, the resource; the same queue, drop counting and flush as the
//! Zipkin path, and both at once; OTLP/JSON; and Python's `opentelemetry-proto`
//! (`tests/otlp_python.py`) reading the same bodies as the Rust crate.

mod export_support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use export_support::{body_spans, context, finished, numbered, scratch_file, TestCollector};
use functrace::{Sampling, SpanReporter};
use functrace_mesh::export::{
    otlp_server_span_id, Endpoint, OtlpProtocol, Reporter, Span, TagText, TRACES_PATH,
};
use http::StatusCode;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as OtlpStatus;
use opentelemetry_proto::tonic::trace::v1::Span as OtlpSpan;
use prost::Message;

const TRACE: &str = "463ac35c9f6413ad48485a3953bb6124";
const CLIENT_ID: &str = "a2fb4a1d1a96d312";
const ROOT_ID: &str = "0020000000000001";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Decodes a request body as OTLP's `ExportTraceServiceRequest`.
fn decode(body: &[u8]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest::decode(body).expect("an ExportTraceServiceRequest")
}

/// Every span of a request, with the `service.name` of its resource.
fn spans_of(request: &ExportTraceServiceRequest) -> Vec<(String, OtlpSpan)> {
    let mut spans = Vec::new();
    for resource_spans in &request.resource_spans {
        let resource = resource_spans.resource.as_ref().expect("a resource");
        let service = resource
            .attributes
            .iter()
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref()?.value.clone());
        let Some(Value::StringValue(service)) = service else {
            panic!("no service.name in {resource:?}");
        };
        for scope_spans in &resource_spans.scope_spans {
            let scope = scope_spans.scope.as_ref().expect("a scope");
            assert_eq!(scope.name, "functrace");
            assert!(!scope.version.is_empty());
            for span in &scope_spans.spans {
                spans.push((service.clone(), span.clone()));
            }
        }
    }
    spans
}

/// The attributes of a span by key.
fn attributes(span: &OtlpSpan) -> BTreeMap<String, Value> {
    let mut map = BTreeMap::new();
    for kv in &span.attributes {
        let value = kv.value.as_ref().and_then(|v| v.value.clone()).unwrap();
        assert!(
            map.insert(kv.key.clone(), value).is_none(),
            "{} twice",
            kv.key
        );
    }
    map
}

fn text(value: &str) -> Value {
    Value::StringValue(value.into())
}

fn at() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456)
}

/// A CLIENT span of the caller, the callee's SERVER span that shared its id, and a root.
fn exchange() -> Vec<Span> {
    let client = context(TRACE, CLIENT_ID, Some(ROOT_ID), Sampling::Accept);
    let root = context(TRACE, ROOT_ID, None, Sampling::Accept);
    let server_peer: SocketAddr = "10.0.0.7:8080".parse().unwrap();
    let client_peer: SocketAddr = "10.0.0.8:51234".parse().unwrap();
    vec![
        Span::new(
            &root,
            "checkout",
            at(),
            Duration::from_millis(9),
            "frontend",
        ),
        Span::client(
            &client,
            "get /users/{id}",
            at(),
            Duration::from_millis(5),
            "frontend",
        )
        .with_remote_endpoint(Endpoint::service("users").with_addr(server_peer))
        .with_tag("http.method", "GET")
        .with_tag("http.path", "/users/7")
        .with_tag("http.status_code", "503")
        .with_error("503"),
        Span::server(
            &client,
            "get /users/{id}",
            at(),
            Duration::from_millis(4),
            "users",
            true,
        )
        .with_remote_endpoint(Endpoint::socket(client_peer))
        .with_local_addr(server_peer)
        .with_annotation(at() + Duration::from_micros(7), "wr")
        .with_tag("http.method", "GET")
        .with_tag("http.path", "/users/7")
        .with_tag("http.protocol", "HTTP/1.1")
        .with_tag("http.status_code", "200")
        .with_tag("guid:x-request-id", "req-1")
        .with_tag("custom", "kept"),
    ]
}

#[test]
fn batches_are_posted_as_protobuf_and_decode_with_opentelemetry_proto() {
    let receiver = TestCollector::start(StatusCode::OK, false);
    let reporter = Reporter::builder("fallback")
        .otlp(&receiver.url)
        .interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    for span in exchange() {
        reporter.report(span);
    }
    reporter.flush();
    assert_eq!(reporter.exported(), 3);
    assert_eq!(reporter.dropped(), 0);

    let requests = receiver.received();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, TRACES_PATH);
    assert_eq!(request.headers["content-type"], "application/x-protobuf");
    assert_eq!(request.headers["b3"], "0");
    let decoded = decode(&request.body);
    // One resource per service, in name order.
    assert_eq!(decoded.resource_spans.len(), 2);
    let spans = spans_of(&decoded);
    let find = |kind: SpanKind| {
        spans
            .iter()
            .find(|(_, span)| span.kind == kind as i32)
            .unwrap_or_else(|| panic!("no {kind:?} span in {spans:?}"))
    };

    for (_, span) in &spans {
        assert_eq!(hex(&span.trace_id), TRACE);
        assert_eq!(span.start_time_unix_nano, 1_700_000_000_123_456_000);
        assert_eq!(span.flags & 0xff, 1, "sampled");
        assert_eq!(
            span.flags & 0x100,
            0x100,
            "whether the parent is remote is known"
        );
    }

    let (service, root) = find(SpanKind::Internal);
    assert_eq!(service, "frontend");
    assert_eq!(root.name, "checkout");
    assert_eq!(hex(&root.span_id), ROOT_ID);
    assert!(root.parent_span_id.is_empty());
    assert_eq!(
        root.end_time_unix_nano - root.start_time_unix_nano,
        9_000_000
    );
    assert_eq!(root.status, None);

    let (service, client) = find(SpanKind::Client);
    assert_eq!(service, "frontend");
    assert_eq!(hex(&client.span_id), CLIENT_ID);
    assert_eq!(hex(&client.parent_span_id), ROOT_ID);
    assert_eq!(client.flags & 0x200, 0, "a client's parent is local");
    let status = client.status.as_ref().unwrap();
    assert_eq!(status.code, OtlpStatus::Error as i32);
    assert_eq!(status.message, "503");
    let attrs = attributes(client);
    assert_eq!(attrs["http.request.method"], text("GET"));
    assert_eq!(attrs["url.path"], text("/users/7"));
    assert_eq!(attrs["http.response.status_code"], Value::IntValue(503));
    assert_eq!(attrs["error.type"], text("503"));
    assert_eq!(attrs["peer.service"], text("users"));
    assert_eq!(attrs["server.address"], text("10.0.0.7"));
    assert_eq!(attrs["server.port"], Value::IntValue(8080));
    assert!(!attrs.contains_key("error"), "{attrs:?}");

    // The SERVER span shared the CLIENT span's id in Zipkin; in OTLP it has its own, and the
    // CLIENT span as its parent.
    let (service, server) = find(SpanKind::Server);
    assert_eq!(service, "users");
    let trace_id = functrace::TraceId::from_hex(TRACE).unwrap();
    let client_id = functrace::SpanId::from_hex(CLIENT_ID).unwrap();
    let own = otlp_server_span_id(trace_id, client_id);
    assert_ne!(own, client_id);
    assert_eq!(hex(&server.span_id), own.to_string());
    assert_eq!(hex(&server.parent_span_id), CLIENT_ID);
    assert_eq!(server.flags & 0x200, 0x200, "a server's parent is remote");
    assert_eq!(server.status, None);
    assert_eq!(server.events.len(), 1);
    assert_eq!(server.events[0].name, "wr");
    assert_eq!(server.events[0].time_unix_nano, 1_700_000_000_123_463_000);
    let attrs = attributes(server);
    assert_eq!(attrs["http.request.method"], text("GET"));
    assert_eq!(attrs["url.path"], text("/users/7"));
    assert_eq!(attrs["http.response.status_code"], Value::IntValue(200));
    assert_eq!(attrs["network.protocol.name"], text("http"));
    assert_eq!(attrs["network.protocol.version"], text("1.1"));
    assert_eq!(attrs["client.address"], text("10.0.0.8"));
    assert_eq!(attrs["client.port"], Value::IntValue(51234));
    assert_eq!(attrs["network.peer.address"], text("10.0.0.8"));
    assert_eq!(attrs["network.peer.port"], Value::IntValue(51234));
    assert_eq!(attrs["network.local.address"], text("10.0.0.7"));
    assert_eq!(attrs["network.local.port"], Value::IntValue(8080));
    assert_eq!(attrs["custom"], text("kept"));
    let Value::ArrayValue(ids) = &attrs["http.request.header.x-request-id"] else {
        panic!("{attrs:?}");
    };
    assert_eq!(ids.values[0].value, Some(text("req-1")));
}

#[test]
fn the_server_span_id_is_derived_deterministically() {
    let trace_id = functrace::TraceId::from_hex(TRACE).unwrap();
    for n in [1, 2, 0xa2fb_4a1d_1a96_d312, u64::MAX] {
        let shared = functrace::SpanId::new(n).unwrap();
        let own = otlp_server_span_id(trace_id, shared);
        assert_ne!(own, shared);
        assert_eq!(own, otlp_server_span_id(trace_id, shared));
    }
    let other = functrace::TraceId::from_hex("463ac35c9f6413ad").unwrap();
    let shared = functrace::SpanId::new(5).unwrap();
    assert_ne!(
        otlp_server_span_id(trace_id, shared),
        otlp_server_span_id(other, shared)
    );
}

#[test]
fn traced_calls_and_sidecar_spans_reach_otlp_and_json_lines_alike() {
    let receiver = TestCollector::start(StatusCode::OK, false);
    let path = scratch_file("otlp_and_json_lines");
    let reporter = Reporter::builder("Mixed")
        .otlp(format!("{}/custom/traces", receiver.url))
        .json_lines(&path)
        .interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    // A traced call that failed, inside a 64-bit trace.
    let local = context(
        "463ac35c9f6413ad",
        "0000000000000003",
        Some(ROOT_ID),
        Sampling::Accept,
    );
    SpanReporter::report(&reporter, finished("app::work", local, 4, Some("boom")));
    // A span with its tags written at hand, as the sidecar reports.
    let server = context(TRACE, CLIENT_ID, None, Sampling::Accept);
    let span = Span::server(
        &server,
        "post /x",
        at(),
        Duration::from_micros(3),
        "",
        false,
    );
    reporter.report_with_tags(
        span,
        [
            (TagText::Plain("http.method"), TagText::Plain("POST")),
            (
                TagText::Plain("peer.address"),
                TagText::Plain("127.0.0.1:4000"),
            ),
            (TagText::Plain("request_size"), TagText::Plain("12")),
        ],
    );
    reporter.flush();
    assert_eq!(reporter.exported(), 2);

    let requests = receiver.received();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/custom/traces");
    let spans = spans_of(&decode(&requests[0].body));
    assert_eq!(spans.len(), 2);
    let (service, call) = &spans[0];
    assert_eq!(service, "mixed");
    assert_eq!(call.kind, SpanKind::Internal as i32);
    assert_eq!(call.name, "app::work");
    assert_eq!(hex(&call.trace_id), "0000000000000000463ac35c9f6413ad");
    assert_eq!(hex(&call.span_id), "0000000000000003");
    assert_eq!(hex(&call.parent_span_id), ROOT_ID);
    assert_eq!(call.status.as_ref().unwrap().message, "boom");
    assert_eq!(attributes(call)["task"], text("t[04]"));

    let (_, server) = &spans[1];
    assert_eq!(server.kind, SpanKind::Server as i32);
    // Not shared: its own id, and no parent (a root).
    assert_eq!(hex(&server.span_id), CLIENT_ID);
    assert!(server.parent_span_id.is_empty());
    assert_eq!(server.flags & 0x200, 0);
    let attrs = attributes(server);
    assert_eq!(attrs["http.request.method"], text("POST"));
    assert_eq!(attrs["network.peer.address"], text("127.0.0.1"));
    assert_eq!(attrs["network.peer.port"], Value::IntValue(4000));
    assert_eq!(attrs["http.request.body.size"], Value::IntValue(12));

    // The same spans as JSON lines.
    let lines = std::fs::read_to_string(&path).unwrap();
    let spans: Vec<Span> = lines
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[1].tags["peer.address"], "127.0.0.1:4000");
    assert_eq!(spans[0].tags["error"], "boom");
}

#[test]
fn zipkin_and_otlp_together_and_a_failing_receiver_counts_as_dropped() {
    let zipkin = TestCollector::start(StatusCode::ACCEPTED, false);
    let otlp = TestCollector::start(StatusCode::SERVICE_UNAVAILABLE, false);
    let reporter = Reporter::builder("both")
        .collector(&zipkin.url)
        .otlp(&otlp.url)
        .build()
        .unwrap();
    reporter.report(numbered(0));
    reporter.report(numbered(1));
    reporter.flush();
    // The Zipkin collector took the batch; the OTLP receiver did not: the batch is dropped.
    assert_eq!(reporter.exported(), 0);
    assert_eq!(reporter.dropped(), 2);
    assert!(reporter.stats().last_error.unwrap().contains("503"));
    let zipkin_requests = zipkin.received();
    assert_eq!(zipkin_requests.len(), 1);
    assert_eq!(body_spans(&zipkin_requests[0]).len(), 2);
    let otlp_requests = otlp.received();
    assert_eq!(otlp_requests.len(), 1);
    assert_eq!(spans_of(&decode(&otlp_requests[0].body)).len(), 2);
}

#[test]
fn an_invalid_otlp_url_is_refused() {
    let error = Reporter::builder("x")
        .otlp("https://collector:4318")
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("http://"), "{error}");
}

#[test]
fn otlp_json_has_hex_ids_integer_kinds_and_decodes_to_the_same_request() {
    let receiver = TestCollector::start(StatusCode::OK, false);
    let reporter = Reporter::builder("fallback")
        .otlp(&receiver.url)
        .otlp_protocol(OtlpProtocol::HttpJson)
        .interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    for span in exchange() {
        reporter.report(span);
    }
    reporter.flush();
    assert_eq!(reporter.exported(), 3);
    let requests = receiver.received();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, TRACES_PATH);
    assert_eq!(requests[0].headers["content-type"], "application/json");

    // OTLP/JSON as the specification writes it: lowerCamelCase keys, ids in hex (not
    // base64), enums as integers.
    let json: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
    let spans: Vec<&serde_json::Value> = json["resourceSpans"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|resource| resource["scopeSpans"][0]["spans"].as_array().unwrap())
        .collect();
    assert_eq!(spans.len(), 3);
    let client = spans.iter().find(|span| span["kind"] == 3).unwrap();
    assert_eq!(client["traceId"], TRACE);
    assert_eq!(client["spanId"], CLIENT_ID);
    assert_eq!(client["parentSpanId"], ROOT_ID);
    assert_eq!(client["status"]["code"], 2);
    let method = client["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|kv| kv["key"] == "http.request.method")
        .unwrap();
    assert_eq!(method["value"]["stringValue"], "GET");

    // The same request as the protobuf one.
    let from_json: ExportTraceServiceRequest = serde_json::from_slice(&requests[0].body).unwrap();
    let protobuf = TestCollector::start(StatusCode::OK, false);
    let reporter = Reporter::builder("fallback")
        .otlp(&protobuf.url)
        .interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    for span in exchange() {
        reporter.report(span);
    }
    reporter.flush();
    assert_eq!(decode(&protobuf.received()[0].body), from_json);
}

/// What a request holds, as `tests/otlp_python.py` prints it.
fn summary(request: &ExportTraceServiceRequest) -> serde_json::Value {
    use serde_json::json;
    fn value(any: &Value) -> serde_json::Value {
        match any {
            Value::StringValue(text) => json!(text),
            Value::IntValue(int) => json!(int),
            Value::BoolValue(b) => json!(b),
            Value::DoubleValue(d) => json!(d),
            Value::ArrayValue(array) => array
                .values
                .iter()
                .map(|item| value(item.value.as_ref().unwrap()))
                .collect(),
            other => panic!("not written by the exporter: {other:?}"),
        }
    }
    let attributes = |kvs: &[opentelemetry_proto::tonic::common::v1::KeyValue]| {
        kvs.iter()
            .map(|kv| {
                let v = kv.value.as_ref().and_then(|v| v.value.as_ref()).unwrap();
                (kv.key.clone(), value(v))
            })
            .collect::<serde_json::Map<_, _>>()
    };
    request
        .resource_spans
        .iter()
        .map(|resource_spans| {
            json!({
                "resource": attributes(&resource_spans.resource.as_ref().unwrap().attributes),
                "scopes": resource_spans.scope_spans.iter().map(|scope_spans| {
                    let scope = scope_spans.scope.as_ref().unwrap();
                    json!({
                        "name": scope.name,
                        "version": scope.version,
                        "spans": scope_spans.spans.iter().map(|s| json!({
                            "trace_id": hex(&s.trace_id),
                            "span_id": hex(&s.span_id),
                            "parent_span_id": hex(&s.parent_span_id),
                            "flags": s.flags,
                            "name": s.name,
                            "kind": s.kind,
                            "start": s.start_time_unix_nano,
                            "end": s.end_time_unix_nano,
                            "attributes": attributes(&s.attributes),
                            "events": s.events.iter().map(|e| json!({
                                "name": e.name,
                                "time": e.time_unix_nano,
                            })).collect::<Vec<_>>(),
                            "status": s.status.as_ref().map(|status| json!({
                                "code": status.code,
                                "message": status.message,
                            })),
                        })).collect::<Vec<_>>(),
                    })
                }).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// Python's `opentelemetry-proto` (tests/otlp_python.py) reads each posted body as the Rust
/// crate does: ids, parents, kinds, times, status, attributes, resource and scope. Requires
/// `python3` with the package (`scripts/test` installs it); without it this test fails, it
/// never skips.
#[test]
fn python_opentelemetry_proto_decodes_the_same_requests() {
    let receiver = TestCollector::start(StatusCode::OK, false);
    let reporter = Reporter::builder("fallback")
        .otlp(&receiver.url)
        .batch_size(2)
        .interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    for span in exchange() {
        reporter.report(span);
    }
    let local = context(TRACE, "0000000000000003", Some(CLIENT_ID), Sampling::Accept);
    SpanReporter::report(&reporter, finished("app::work", local, 4, Some("boom")));
    reporter.flush();
    let requests = receiver.received();
    assert_eq!(requests.len(), 2, "batches of 2");

    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("functrace-otlp");
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for (n, request) in requests.iter().enumerate() {
        let path = dir.join(format!("request-{n}.bin"));
        std::fs::write(&path, &request.body).unwrap();
        files.push(path);
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/otlp_python.py");
    let output = std::process::Command::new("python3")
        .arg(script)
        .args(&files)
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run python3 ({error}): the OTLP cross-check needs python3 with \
                 opentelemetry-proto (python3 -m pip install opentelemetry-proto)"
            )
        });
    assert!(
        output.status.success(),
        "tests/otlp_python.py failed (python3 -m pip install opentelemetry-proto): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let python: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let rust: serde_json::Value = requests
        .iter()
        .map(|request| summary(&decode(&request.body)))
        .collect();
    assert_eq!(python, rust);
    // And what it read is what was meant: the shared SERVER span's own id and parent.
    let all = python.to_string();
    let trace_id = functrace::TraceId::from_hex(TRACE).unwrap();
    let client_id = functrace::SpanId::from_hex(CLIENT_ID).unwrap();
    assert!(all.contains(&otlp_server_span_id(trace_id, client_id).to_string()));
    assert!(all.contains("\"message\":\"boom\""));
}
