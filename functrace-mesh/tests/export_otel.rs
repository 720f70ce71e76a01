//! `ZipkinExporter` in a real OpenTelemetry SDK pipeline (simple span processor), written
//! as JSON lines through a `Reporter`.

mod export_support;

use std::collections::HashMap;

use export_support::{read_lines, scratch_file, validate};
use functrace_mesh::export::{Kind, Reporter, ZipkinExporter};
use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use serde_json::{json, Value};

#[test]
fn an_opentelemetry_pipeline_exports_zipkin_spans() {
    let path = scratch_file("otel");
    let reporter = Reporter::builder("checkout")
        .json_lines(&path)
        .build()
        .unwrap();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(ZipkinExporter::new(reporter.clone()))
        .build();
    let tracer = provider.tracer("export-test");

    let root = tracer
        .span_builder("GET /cart")
        .with_kind(SpanKind::Server)
        .with_attributes([KeyValue::new("http.request.method", "GET")])
        .start(&tracer);
    let cx = Context::current_with_span(root);
    let mut call = tracer
        .span_builder("charge")
        .with_kind(SpanKind::Client)
        .with_attributes([
            KeyValue::new("peer.service", "payments"),
            KeyValue::new("network.peer.address", "10.0.0.7"),
            KeyValue::new("network.peer.port", 8443),
            KeyValue::new("retries", 2),
        ])
        .start_with_context(&tracer, &cx);
    call.add_event("retry", vec![]);
    call.add_event("declined", vec![KeyValue::new("code", "51")]);
    call.set_status(Status::error("card declined"));
    call.end();
    let mut local = tracer.start_with_context("validate", &cx);
    local.set_status(Status::Ok);
    local.end();
    let mut publish = tracer
        .span_builder("publish")
        .with_kind(SpanKind::Producer)
        .start_with_context(&tracer, &cx);
    publish.end();
    cx.span().end();

    provider.force_flush().unwrap();
    reporter.flush();
    assert_eq!(reporter.exported(), 4);

    let lines = read_lines(&path);
    let by_name: HashMap<String, Value> = lines
        .iter()
        .map(|(json, span)| (span.name.clone(), json.clone()))
        .collect();
    assert_eq!(by_name.len(), 4, "{lines:?}");
    let root = &by_name["get /cart"];
    let call = &by_name["charge"];
    let local = &by_name["validate"];
    let publish = &by_name["publish"];

    assert!(
        !root.as_object().unwrap().contains_key("parentId"),
        "{root}"
    );
    assert_eq!(root["kind"], "SERVER");
    assert_eq!(root["tags"]["http.request.method"], "GET");
    assert_eq!(root["tags"]["otel.scope.name"], "export-test");
    let trace_id = root["traceId"].as_str().unwrap();
    assert_eq!(trace_id.len(), 32);
    for child in [call, local, publish] {
        assert_eq!(child["traceId"], trace_id);
        assert_eq!(child["parentId"], root["id"]);
        assert_eq!(child["id"].as_str().unwrap().len(), 16);
    }
    for span in by_name.values() {
        assert_eq!(span["localEndpoint"], json!({"serviceName": "checkout"}));
        assert!(span["duration"].as_u64().unwrap() >= 1);
        assert!(!span.as_object().unwrap().contains_key("shared"));
    }

    assert_eq!(call["kind"], "CLIENT");
    assert_eq!(
        call["remoteEndpoint"],
        json!({"serviceName": "payments", "ipv4": "10.0.0.7", "port": 8443})
    );
    assert_eq!(call["tags"]["error"], "card declined");
    assert_eq!(call["tags"]["otel.status_code"], "ERROR");
    assert_eq!(call["tags"]["retries"], "2");
    let annotations: Vec<&str> = call["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|annotation| annotation["value"].as_str().unwrap())
        .collect();
    assert_eq!(annotations, ["retry", r#"{"declined":{"code":"51"}}"#]);

    assert!(!local.as_object().unwrap().contains_key("kind"), "{local}");
    assert_eq!(local["tags"]["otel.status_code"], "OK");
    assert!(!local["tags"].as_object().unwrap().contains_key("error"));
    assert_eq!(publish["kind"], "PRODUCER");

    let by_kind: Vec<Option<Kind>> = lines.iter().map(|(_, span)| span.kind).collect();
    assert!(by_kind.contains(&None));

    let report = validate(&path).unwrap_or_else(|errors| panic!("invalid spans:\n{errors}"));
    assert!(report.starts_with("ok: 4 spans valid"), "{report}");
    provider.shutdown().unwrap();
}

#[test]
fn the_service_name_comes_from_the_exporter_then_the_resource_then_the_reporter() {
    let path = scratch_file("otel-service");
    let reporter = Reporter::builder("from-reporter")
        .json_lines(&path)
        .build()
        .unwrap();
    let pipelines = [
        (ZipkinExporter::new(reporter.clone()), None),
        (
            ZipkinExporter::new(reporter.clone()),
            Some(
                Resource::builder_empty()
                    .with_service_name("from-resource")
                    .build(),
            ),
        ),
        (
            ZipkinExporter::new(reporter.clone()).with_service_name("from-exporter"),
            Some(
                Resource::builder_empty()
                    .with_service_name("from-resource")
                    .build(),
            ),
        ),
        (
            ZipkinExporter::new(reporter.clone()),
            Some(
                Resource::builder_empty()
                    .with_service_name("unknown_service:x")
                    .build(),
            ),
        ),
    ];
    for (exporter, resource) in pipelines {
        let mut builder = SdkTracerProvider::builder().with_simple_exporter(exporter);
        if let Some(resource) = resource {
            builder = builder.with_resource(resource);
        }
        let provider = builder.build();
        provider.tracer("t").start("root").end();
        provider.shutdown().unwrap();
    }
    reporter.flush();
    let services: Vec<Value> = read_lines(&path)
        .into_iter()
        .map(|(json, _)| json["localEndpoint"]["serviceName"].clone())
        .collect();
    assert_eq!(
        services,
        [
            "from-reporter",
            "from-resource",
            "from-exporter",
            "from-reporter"
        ]
    );
    for (json, _) in read_lines(&path) {
        assert!(
            !json.as_object().unwrap().contains_key("parentId"),
            "{json}"
        );
    }
}
