//! OpenTelemetry interop: `B3Propagator` installed with `global::set_text_map_propagator`
//! (inject/extract round trips, an SDK tracer's child span, agreement with
//! `opentelemetry-zipkin`'s B3 propagator both ways), `TraceContext` ↔ `SpanContext`, and
//! functrace's spans handed to an SDK `SpanExporter` (`InMemorySpanExporter`) by a reporter.

// opentelemetry-zipkin deprecates its whole API (Zipkin accepts OTLP now); its B3 propagator
// is still the Rust otel one, and what this cross-checks.
#![allow(deprecated)]

mod export_support;

use std::collections::HashMap;
use std::time::Duration;

use export_support::{context, finished};
use functrace::{Sampling, SpanId, SpanReporter, TraceContext, TraceId};
use functrace_mesh::b3::Format;
use functrace_mesh::export::{otlp_server_span_id, to_span_data, Endpoint, Reporter, Span};
use functrace_mesh::otel::{to_span_context, to_trace_context, B3Propagator};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, TraceFlags, Tracer, TracerProvider};
use opentelemetry::{global, Context, Value};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use opentelemetry_zipkin::{B3Encoding, Propagator as ZipkinPropagator};

const TRACE: &str = "80f198ee56343ba864fe8b2a57d3eff7";
const SPAN: &str = "e457b5a2e4d86bd1";
const PARENT: &str = "05e3ac9a4f6e3b90";

fn headers(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn inject(propagator: &dyn TextMapPropagator, cx: &Context) -> HashMap<String, String> {
    let mut out = HashMap::new();
    propagator.inject_context(cx, &mut out);
    out
}

#[test]
fn the_global_propagator_round_trips_b3_exactly() {
    global::set_text_map_propagator(B3Propagator::new(Format::Both));
    let cases = [
        // 128-bit, sampled, with a parent.
        format!("{TRACE}-{SPAN}-1-{PARENT}"),
        // 64-bit trace id: its width is kept.
        format!("{}-{SPAN}-0", &TRACE[16..]),
        // Debug, and defer with a parent: neither fits a span context, both are kept.
        format!("{TRACE}-{SPAN}-d"),
        format!("{TRACE}-{SPAN}-{PARENT}"),
    ];
    for single in cases {
        let incoming = headers(&[("b3", &single)]);
        let cx = global::get_text_map_propagator(|p| p.extract(&incoming));
        let span = cx.span();
        let span_context = span.span_context();
        assert!(span_context.is_valid(), "{single}");
        assert!(span_context.is_remote());
        assert_eq!(format!("{:016x}", span_context.span_id()), SPAN);
        let out = global::get_text_map_propagator(|p| inject(p, &cx));
        assert_eq!(out["b3"], single);
        // And the same in multiple headers, read back by our own codec.
        let mut map = http::HeaderMap::new();
        for (k, v) in &out {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map.remove("b3");
        let single_context = functrace_mesh::b3::extract_single(&single).unwrap();
        assert_eq!(functrace_mesh::b3::extract_multi(&map), Ok(single_context));
    }

    // Multiple headers in, single out.
    let multi = headers(&[
        ("x-b3-traceid", TRACE),
        ("x-b3-spanid", SPAN),
        ("x-b3-parentspanid", PARENT),
        ("x-b3-sampled", "1"),
    ]);
    let cx = B3Propagator::new(Format::Single).extract(&multi);
    assert_eq!(
        inject(&B3Propagator::new(Format::Single), &cx)["b3"],
        format!("{TRACE}-{SPAN}-1-{PARENT}")
    );
}

#[test]
fn malformed_b3_and_a_decision_alone_extract_as_nothing() {
    let propagator = B3Propagator::default();
    for bad in [
        headers(&[(
            "b3",
            "00-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-01",
        )]),
        headers(&[("b3", "0")]),
        headers(&[("x-b3-traceid", TRACE)]),
        headers(&[
            ("x-b3-traceid", &TRACE.to_uppercase()),
            ("x-b3-spanid", SPAN),
        ]),
        headers(&[]),
    ] {
        let cx = propagator.extract(&bad);
        assert!(!cx.span().span_context().is_valid(), "{bad:?}");
        assert!(inject(&propagator, &cx).is_empty());
    }
}

#[test]
fn fields_name_the_headers_of_the_format() {
    let fields = |format| {
        B3Propagator::new(format)
            .fields()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(fields(Format::Single), ["b3"]);
    let multi = [
        "x-b3-traceid",
        "x-b3-spanid",
        "x-b3-parentspanid",
        "x-b3-sampled",
        "x-b3-flags",
    ];
    assert_eq!(fields(Format::Multi), multi);
    assert_eq!(fields(Format::Both)[0], "b3");
    assert_eq!(&fields(Format::Both)[1..], multi);
}

#[test]
fn an_sdk_span_started_from_extracted_b3_is_injected_as_its_child() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("interop");
    let propagator = B3Propagator::new(Format::Multi);
    let parent_cx = propagator.extract(&headers(&[("b3", &format!("{TRACE}-{SPAN}-1"))]));
    let span = tracer.start_with_context("work", &parent_cx);
    let child_cx = parent_cx.with_span(span);
    let out = inject(&propagator, &child_cx);
    assert_eq!(out["x-b3-traceid"], TRACE);
    assert_ne!(out["x-b3-spanid"], SPAN);
    assert_eq!(out["x-b3-sampled"], "1");
    // An OpenTelemetry span does not say its parent: none is written.
    assert!(!out.contains_key("x-b3-parentspanid"));
    child_cx.span().end();
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 1);
    assert_eq!(format!("{:016x}", spans[0].parent_span_id), SPAN);
    assert!(spans[0].parent_span_is_remote);
}

fn zipkin(format: Format) -> ZipkinPropagator {
    ZipkinPropagator::with_encoding(match format {
        Format::Multi => B3Encoding::MultipleHeader,
        Format::Single => B3Encoding::SingleHeader,
        Format::Both => B3Encoding::SingleAndMultiHeader,
    })
}

#[test]
fn agrees_with_opentelemetry_zipkin_both_ways() {
    for format in [Format::Multi, Format::Single, Format::Both] {
        for sampling in [Sampling::Accept, Sampling::Deny] {
            for n in 1..20u64 {
                let trace_id = TraceId::Long(n.wrapping_mul(0x9e37_79b9_7f4a_7c15), n);
                let context = TraceContext {
                    trace_id,
                    span_id: SpanId::new(n * 7919).unwrap(),
                    parent_id: None,
                    sampling,
                };
                let ours = B3Propagator::new(format);
                let theirs = zipkin(format);
                let cx = Context::new().with_remote_span_context(to_span_context(&context));

                // Our inject, its extract.
                let wire = inject(&ours, &cx);
                let seen = theirs.extract(&wire);
                let seen = seen.span().span_context().clone();
                assert_eq!(seen.trace_id(), cx.span().span_context().trace_id());
                assert_eq!(seen.span_id(), cx.span().span_context().span_id());
                assert_eq!(seen.is_sampled(), sampling.is_sampled(), "{wire:?}");

                // Its inject, our extract.
                let wire = inject(&theirs, &cx);
                let back = ours.extract(&wire);
                let back = to_trace_context(back.span().span_context()).unwrap();
                assert_eq!(back, context, "{wire:?}");
            }
        }
    }
}

#[test]
fn trace_contexts_convert_to_span_contexts_and_back() {
    let long = context(TRACE, SPAN, Some(PARENT), Sampling::Accept);
    let span_context = to_span_context(&long);
    assert_eq!(format!("{:032x}", span_context.trace_id()), TRACE);
    assert_eq!(format!("{:016x}", span_context.span_id()), SPAN);
    assert_eq!(span_context.trace_flags(), TraceFlags::SAMPLED);
    assert!(span_context.is_remote());
    // The parent id has no place in a span context.
    let back = to_trace_context(&span_context).unwrap();
    assert_eq!(
        back,
        TraceContext {
            parent_id: None,
            ..long
        }
    );

    let short = context(&TRACE[16..], SPAN, None, Sampling::Debug);
    let span_context = to_span_context(&short);
    assert_eq!(
        format!("{:032x}", span_context.trace_id()),
        format!("0000000000000000{}", &TRACE[16..])
    );
    let back = to_trace_context(&span_context).unwrap();
    assert_eq!(
        back.trace_id, short.trace_id,
        "a zero high half reads as 64 bits"
    );
    assert_eq!(back.sampling, Sampling::Accept, "debug is sampled");
    for unsampled in [Sampling::Deny, Sampling::Defer] {
        let span_context = to_span_context(&TraceContext {
            sampling: unsampled,
            ..long
        });
        assert!(!span_context.is_sampled());
        assert_eq!(
            to_trace_context(&span_context).unwrap().sampling,
            Sampling::Deny
        );
    }
    assert_eq!(
        to_trace_context(&opentelemetry::trace::SpanContext::empty_context()),
        None
    );
}

#[test]
fn a_reporter_hands_functrace_spans_to_an_sdk_exporter() {
    let exporter = InMemorySpanExporter::default();
    let reporter = Reporter::builder("Checkout")
        .interval(Duration::from_secs(3600))
        .build_with_exporter(exporter.clone())
        .unwrap();
    // A traced call, through the SpanReporter side.
    let call = context(TRACE, "0000000000000003", Some(SPAN), Sampling::Accept);
    SpanReporter::report(&reporter, finished("app::pay", call, 2, Some("declined")));
    // A SERVER span that shared the caller's id, through the layers' side.
    let server = context(TRACE, SPAN, Some(PARENT), Sampling::Accept);
    let at = std::time::SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_000_000);
    reporter.report(
        Span::server(&server, "post /pay", at, Duration::from_millis(3), "", true)
            .with_remote_endpoint(Endpoint::socket("10.0.0.8:5000".parse().unwrap()))
            .with_tag("http.method", "POST")
            .with_tag("http.status_code", "201"),
    );
    reporter.flush();
    assert_eq!(reporter.exported(), 2);
    assert_eq!(reporter.dropped(), 0);

    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 2);
    let call = &spans[0];
    assert_eq!(call.name, "app::pay");
    assert_eq!(call.span_kind, SpanKind::Internal);
    assert_eq!(format!("{:032x}", call.span_context.trace_id()), TRACE);
    assert_eq!(
        format!("{:016x}", call.span_context.span_id()),
        "0000000000000003"
    );
    assert_eq!(format!("{:016x}", call.parent_span_id), SPAN);
    assert_eq!(call.status, Status::error("declined"));
    assert_eq!(call.instrumentation_scope.name(), "functrace");
    assert!(call
        .attributes
        .iter()
        .any(|kv| kv.key.as_str() == "task" && kv.value == Value::from("t[02]")));
    assert_eq!(
        call.end_time.duration_since(call.start_time).unwrap(),
        Duration::from_micros(42)
    );

    let server = &spans[1];
    assert_eq!(server.span_kind, SpanKind::Server);
    let own = otlp_server_span_id(
        TraceId::from_hex(TRACE).unwrap(),
        SpanId::from_hex(SPAN).unwrap(),
    );
    assert_eq!(
        format!("{:016x}", server.span_context.span_id()),
        own.to_string()
    );
    assert_eq!(format!("{:016x}", server.parent_span_id), SPAN);
    assert!(server.parent_span_is_remote);
    assert_eq!(server.status, Status::Unset);
    let attribute = |key: &str| {
        server
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.clone())
    };
    assert_eq!(attribute("http.request.method"), Some(Value::from("POST")));
    assert_eq!(
        attribute("http.response.status_code"),
        Some(Value::I64(201))
    );
    assert_eq!(attribute("client.address"), Some(Value::from("10.0.0.8")));
    assert_eq!(attribute("client.port"), Some(Value::I64(5000)));
    // A SERVER span that started a child of the caller's keeps its ids.
    let child = context(TRACE, PARENT, Some(SPAN), Sampling::Accept);
    let data = to_span_data(&Span::server(&child, "x", at, Duration::ZERO, "s", false));
    assert_eq!(format!("{:016x}", data.span_context.span_id()), PARENT);
    assert_eq!(format!("{:016x}", data.parent_span_id), SPAN);

    drop(reporter);
    assert!(exporter.is_shutdown_called());
}
