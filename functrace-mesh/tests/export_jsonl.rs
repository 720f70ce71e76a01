//! The reporter writing JSON lines: spans of every kind through the real `Reporter`,
//! validated against zipkin2-api.yaml by `tests/export_validate.py`; flushing; draining
//! when the last handle is dropped; the `SpanReporter` side.

mod export_support;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use export_support::{context, finished, numbered, read_lines, scratch_file, validate};
use functrace::{Sampling, SpanReporter};
use functrace_mesh::export::{DeferredSpan, Endpoint, Kind, Reporter, Span, Tag, TagText};

const TRACE: &str = "463ac35c9f6413ad48485a3953bb6124";

/// One span of each kind, and local spans, in one trace (plus a 64-bit trace).
fn report_every_kind(reporter: &Reporter) {
    let now = SystemTime::now();
    let root = context(TRACE, "a2fb4a1d1a96d312", None, Sampling::Accept);
    // Local spans of traced calls, through the SpanReporter side.
    SpanReporter::report(reporter, finished("app::main", root, 1, None));
    let call = root.child();
    SpanReporter::report(
        reporter,
        finished("app::load", call, 2, Some("Err(\"gone\")")),
    );

    let outgoing = call.child();
    reporter.report(
        Span::client(
            &outgoing,
            "get /users/{id}",
            now,
            Duration::from_micros(900),
            "frontend",
        )
        .with_remote_endpoint(
            Endpoint::service("users").with_addr("10.1.2.3:8080".parse().unwrap()),
        )
        .with_local_addr("10.1.2.4:0".parse().unwrap())
        .with_tag("http.method", "GET")
        .with_annotation(now, "ws"),
    );
    reporter.report(
        Span::server(
            &outgoing,
            "get /users/{id}",
            now,
            Duration::from_micros(700),
            "users",
            true,
        )
        .with_remote_endpoint(Endpoint::socket("[2001:db8::c001]:51000".parse().unwrap()))
        .with_tag("http.status_code", "200"),
    );
    let child = outgoing.child();
    reporter.report(
        Span::server(&child, "post /orders", now, Duration::ZERO, "orders", false)
            .with_error("500"),
    );
    reporter.report(
        Span::new(
            &call.child(),
            "send order",
            now,
            Duration::from_micros(30),
            "frontend",
        )
        .with_kind(Kind::Producer)
        .with_remote_endpoint(Endpoint::service("kafka")),
    );
    reporter.report(
        Span::new(
            &call.child(),
            "receive order",
            now,
            Duration::from_micros(30),
            "billing",
        )
        .with_kind(Kind::Consumer),
    );
    let short = context(
        "48485a3953bb6124",
        "00f067aa0ba902b7",
        None,
        Sampling::Debug,
    );
    SpanReporter::report(reporter, finished("app::job", short, 12, Some("cancelled")));
}

#[test]
fn spans_of_every_kind_are_valid_zipkin_v2() {
    let path = scratch_file("every-kind");
    let reporter = Reporter::builder("frontend")
        .json_lines(&path)
        .interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    report_every_kind(&reporter);
    reporter.flush();
    assert_eq!(reporter.exported(), 8);
    assert_eq!(reporter.dropped(), 0);

    let lines = read_lines(&path);
    assert_eq!(lines.len(), 8);
    for (json, span) in &lines {
        let object = json.as_object().unwrap();
        let service = &json["localEndpoint"]["serviceName"];
        assert!(
            service.as_str().is_some_and(|name| !name.is_empty()),
            "{json}"
        );
        assert!(json["duration"].as_u64().unwrap() >= 1, "{json}");
        assert_eq!(object.contains_key("parentId"), span.parent_id.is_some());
        assert_ne!(json["parentId"], "0000000000000000");
        assert_eq!(
            object.contains_key("shared"),
            span.kind == Some(Kind::Server) && span.name == "get /users/{id}",
            "{json}"
        );
    }
    let (root, _) = &lines[0];
    assert_eq!(root["name"], "app::main");
    assert!(!root.as_object().unwrap().contains_key("parentId"));
    assert_eq!(root["traceId"].as_str().unwrap().len(), 32);
    assert_eq!(root["tags"]["task"], "t[01]");
    assert_eq!(lines[1].0["tags"]["error"], "Err(\"gone\")");
    let (short, _) = &lines[7];
    assert_eq!(short["traceId"], "48485a3953bb6124");
    assert_eq!(short["debug"], true);
    assert_eq!(short["tags"]["error"], "cancelled");
    assert_eq!(short["localEndpoint"]["serviceName"], "frontend");
    let kinds: Vec<_> = lines.iter().map(|(json, _)| json["kind"].clone()).collect();
    for kind in ["CLIENT", "SERVER", "PRODUCER", "CONSUMER"] {
        assert!(kinds.contains(&kind.into()), "{kind} missing");
    }

    let report = validate(&path).unwrap_or_else(|errors| panic!("invalid spans:\n{errors}"));
    assert!(report.starts_with("ok: 8 spans valid"), "{report}");
}

#[test]
fn the_validator_rejects_spans_that_break_the_spec() {
    let path = scratch_file("invalid");
    std::fs::write(
        &path,
        concat!(
            r#"{"traceId":"463AC35C9F6413AD","id":"a2fb4a1d1a96d312","duration":0}"#,
            "\n",
            r#"{"id":"a2fb4a1d1a96d312","kind":"INTERNAL"}"#,
            "\n",
            r#"{"traceId":"463ac35c9f6413ad","id":"a2fb4a1d1a96d312","remoteEndpoint":{"ipv4":"::1"}}"#,
            "\n",
        ),
    )
    .unwrap();
    let errors = validate(&path).expect_err("invalid spans accepted");
    for expected in [
        "line 1: traceId",
        "line 1: duration",
        "line 2: (span): 'traceId' is a required property",
        "line 2: kind",
        "line 3: remoteEndpoint/ipv4",
    ] {
        assert!(errors.contains(expected), "{expected:?} not in:\n{errors}");
    }
}

#[test]
fn flush_returns_once_everything_queued_is_written() {
    let path = scratch_file("flush");
    let reporter = Reporter::builder("flusher")
        .json_lines(&path)
        .batch_size(7)
        .interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    for round in 0..3u64 {
        for n in 0..25 {
            reporter.report(numbered(round * 25 + n));
        }
        reporter.flush();
        let names: Vec<String> = read_lines(&path)
            .into_iter()
            .map(|(_, span)| span.name)
            .collect();
        let expected: Vec<String> = (0..(round + 1) * 25).map(|n| format!("span-{n}")).collect();
        assert_eq!(names, expected);
    }
    assert_eq!(reporter.exported(), 75);
    // Nothing queued: returns at once.
    assert!(reporter.flush_timeout(Duration::ZERO));
}

#[test]
fn dropping_the_last_handle_writes_what_is_queued() {
    let path = scratch_file("drop");
    let reporter = Reporter::builder("dropper")
        .json_lines(&path)
        .interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let clone = reporter.clone();
    for n in 0..10 {
        clone.report(numbered(n));
    }
    drop(reporter);
    clone.report(numbered(10));
    drop(clone);
    let lines = read_lines(&path);
    assert_eq!(lines.len(), 11);
    assert!(lines
        .iter()
        .all(|(json, _)| json["localEndpoint"]["serviceName"] == "numbered"));
}

#[test]
fn after_shutdown_spans_are_dropped_and_counted() {
    let path = scratch_file("shutdown");
    let reporter = Reporter::builder("stopper")
        .json_lines(&path)
        .build()
        .unwrap();
    reporter.report(numbered(0));
    reporter.shutdown();
    assert_eq!(reporter.exported(), 1);
    reporter.report(numbered(1));
    reporter.flush();
    assert_eq!(reporter.dropped(), 1);
    assert_eq!(reporter.stats().dropped_queue_full, 1);
    assert_eq!(read_lines(&path).len(), 1);
}

#[test]
fn the_installed_reporter_takes_the_local_spans_of_traced_calls() {
    let path = scratch_file("installed");
    let reporter = Reporter::builder("installed")
        .json_lines(&path)
        .build()
        .unwrap();
    let guard = reporter.install();
    let installed = functrace::span_reporter().expect("installed");
    let root = context(TRACE, "a2fb4a1d1a96d312", None, Sampling::Accept);
    installed.report(finished("app::handler", root, 4, None));
    // Unsampled spans are not exported, should a caller hand one over.
    let denied = context(TRACE, "00f067aa0ba902b7", None, Sampling::Deny);
    installed.report(finished("app::ignored", denied, 4, None));
    drop(installed);
    // The guard's drop uninstalls the reporter and flushes it.
    drop(guard);
    assert!(functrace::span_reporter().is_none());
    let lines = read_lines(&path);
    assert_eq!(lines.len(), 1);
    let (json, span) = &lines[0];
    assert_eq!(span.name, "app::handler");
    assert_eq!(span.kind, None);
    assert_eq!(json["localEndpoint"]["serviceName"], "installed");
    assert_eq!(json["tags"]["task"], "t[04]");
    let _: Arc<dyn SpanReporter> = Arc::new(reporter);
}

/// A span in its recorder's form, written by the export thread.
struct Recorded {
    span: Span,
    status: String,
    path: String,
}

impl DeferredSpan for Recorded {
    fn span_mut(&mut self) -> &mut Span {
        &mut self.span
    }

    fn write(&self, write: &mut dyn for<'t> FnMut(&'t Span, &mut dyn Iterator<Item = Tag<'t>>)) {
        // Text made here, on this call's stack, as a recorder formats its numbers.
        let status = self.status.clone();
        let tags = [
            (TagText::Plain("http.path"), TagText::Escaped(&self.path)),
            (TagText::Plain("http.status_code"), TagText::Plain(&status)),
        ];
        write(&self.span, &mut tags.into_iter());
    }
}

#[test]
fn a_deferred_span_is_written_as_one_with_its_tags_at_hand() {
    let path = scratch_file("deferred");
    let reporter = Reporter::builder("Deferring")
        .json_lines(&path)
        .build()
        .unwrap();
    let server = context(TRACE, "a2fb4a1d1a96d312", None, Sampling::Accept);
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let span = || Span::server(&server, "get /a", at, Duration::from_micros(5), "", true);
    let (status, escaped) = ("200".to_owned(), "/a \"quoted\"".to_owned());
    reporter.report_with_tags(
        span(),
        [
            (TagText::Plain("http.path"), TagText::Escaped(&escaped)),
            (TagText::Plain("http.status_code"), TagText::Plain(&status)),
        ],
    );
    reporter.report_deferred(Box::new(Recorded {
        span: span(),
        status,
        path: escaped,
    }));
    reporter.flush();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0], lines[1]);
    let (_, written) = &read_lines(&path)[1];
    assert_eq!(written.tags["http.path"], "/a \"quoted\"");
    // Normalized by the export thread: the reporter's service name, lowercase.
    let service = written.local_endpoint.service_name.as_deref();
    assert_eq!(service, Some("deferring"));
}
