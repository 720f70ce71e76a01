//! W3C Trace Context through the real `functrace-sidecar` process: `traceparent` and
//! `tracestate` extracted beside B3, the request forwarded in the standards it came in (or
//! as `--propagation` / `propagation` says), and one trace across the sidecar and two
//! services using the `functrace-mesh` layers when only `traceparent` came in.

mod sidecar_support;

use std::path::Path;

use functrace_mesh::export::{Kind, Reporter, Span};
use sidecar_support::*;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACESTATE: &str = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";
const OTHER_SPAN: &str = "e457b5a2e4d86bd1";

fn hex(id: impl std::fmt::Display) -> String {
    id.to_string()
}

/// What the app behind an inbound sidecar saw, for one request with `headers`.
fn seen_by_app(sidecar: &Sidecar, headers: &[(&str, &str)]) -> String {
    let rt = runtime();
    let (response, seen) = rt.block_on(get(sidecar.inbound(), "/pay", headers));
    assert_eq!(response.status(), 200);
    seen
}

fn has_b3(seen: &str) -> bool {
    echoed(seen)
        .iter()
        .any(|(name, _)| name == "b3" || name.starts_with("x-b3-"))
}

#[test]
fn inbound_joins_a_traceparent_and_hands_it_on_as_it_came() {
    let rt = runtime();
    let app = rt.block_on(echo_app("a"));
    let sidecar = Sidecar::start(&[
        "--service",
        "svca",
        "--inbound",
        &format!("127.0.0.1:0={app}"),
    ]);
    let seen = seen_by_app(
        &sidecar,
        &[("traceparent", TRACEPARENT), ("tracestate", TRACESTATE)],
    );
    // The same context inbound: traceparent unchanged, tracestate carried, no B3.
    assert_eq!(
        echoed_header(&seen, "traceparent").as_deref(),
        Some(TRACEPARENT)
    );
    assert_eq!(
        echoed_header(&seen, "tracestate").as_deref(),
        Some(TRACESTATE)
    );
    assert!(!has_b3(&seen), "{seen}");
    // Unsampled in, unsampled on, and not recorded.
    let unsampled = TRACEPARENT.replace("-01", "-00");
    let seen = seen_by_app(&sidecar, &[("traceparent", &unsampled)]);
    assert_eq!(echoed_header(&seen, "traceparent"), Some(unsampled));

    let (status, spans) = sidecar.stop();
    assert!(status.success(), "{status}");
    assert_eq!(spans.len(), 1, "{spans:#?}");
    let span = &spans[0];
    assert_eq!(span.kind, Some(Kind::Server));
    assert_eq!(
        (hex(span.trace_id), hex(span.id)),
        (TRACE.into(), PARENT.into())
    );
    assert_eq!((span.parent_id, span.shared), (None, Some(true)));
    assert_eq!(
        span.tags.get("http.status_code").map(String::as_str),
        Some("200")
    );
}

#[test]
fn both_standards_in_go_on_as_both_and_b3_wins_a_disagreement() {
    let rt = runtime();
    let app = rt.block_on(echo_app("a"));
    let sidecar = Sidecar::start(&["--inbound", &format!("127.0.0.1:0={app}")]);
    // B3 alone: B3 alone on, as before.
    let b3 = format!("{TRACE}-{PARENT}-1");
    let seen = seen_by_app(&sidecar, &[("b3", &b3)]);
    assert_eq!(echoed_header(&seen, "x-b3-spanid").as_deref(), Some(PARENT));
    assert_eq!(echoed_header(&seen, "traceparent"), None);
    // Both, agreeing: both on, B3's debug flag kept.
    let debug = format!("{TRACE}-{PARENT}-d");
    let seen = seen_by_app(
        &sidecar,
        &[
            ("b3", &debug),
            ("traceparent", TRACEPARENT),
            ("tracestate", TRACESTATE),
        ],
    );
    assert_eq!(echoed_header(&seen, "x-b3-flags").as_deref(), Some("1"));
    assert_eq!(
        echoed_header(&seen, "traceparent").as_deref(),
        Some(TRACEPARENT)
    );
    assert_eq!(
        echoed_header(&seen, "tracestate").as_deref(),
        Some(TRACESTATE)
    );
    // Both, disagreeing on the trace: B3's context in both, the tracestate of the other
    // trace dropped.
    let other_trace = "463ac35c9f6413ad48485a3953bb6124";
    let other = format!("{other_trace}-{OTHER_SPAN}-1");
    let seen = seen_by_app(
        &sidecar,
        &[
            ("b3", &other),
            ("traceparent", TRACEPARENT),
            ("tracestate", TRACESTATE),
        ],
    );
    assert_eq!(
        echoed_header(&seen, "x-b3-traceid").as_deref(),
        Some(other_trace)
    );
    assert_eq!(
        echoed_header(&seen, "traceparent"),
        Some(format!("00-{other_trace}-{OTHER_SPAN}-01"))
    );
    assert_eq!(echoed_header(&seen, "tracestate"), None);

    let (_, spans) = sidecar.stop();
    let mut joined: Vec<(String, String)> =
        spans.iter().map(|s| (hex(s.trace_id), hex(s.id))).collect();
    joined.sort();
    let mut expected = vec![
        (TRACE.to_owned(), PARENT.to_owned()),
        (TRACE.to_owned(), PARENT.to_owned()),
        (other_trace.to_owned(), OTHER_SPAN.to_owned()),
    ];
    expected.sort();
    assert_eq!(joined, expected);
    assert!(spans.iter().any(|s| s.debug == Some(true)), "{spans:#?}");
}

#[test]
fn the_propagation_flag_and_config_key_choose_the_standards() {
    let rt = runtime();
    let app = rt.block_on(echo_app("a"));
    let inbound = format!("127.0.0.1:0={app}");
    let b3 = format!("{TRACE}-{PARENT}-1");

    let sidecar = Sidecar::start(&["--inbound", &inbound, "--propagation", "b3"]);
    let seen = seen_by_app(
        &sidecar,
        &[("traceparent", TRACEPARENT), ("tracestate", TRACESTATE)],
    );
    assert_eq!(echoed_header(&seen, "x-b3-traceid").as_deref(), Some(TRACE));
    assert_eq!(echoed_header(&seen, "x-b3-spanid").as_deref(), Some(PARENT));
    assert_eq!(echoed_header(&seen, "traceparent"), None);
    assert_eq!(echoed_header(&seen, "tracestate"), None);
    drop(sidecar);

    let sidecar = Sidecar::start(&["--inbound", &inbound, "--propagation", "both"]);
    let seen = seen_by_app(&sidecar, &[("b3", &b3)]);
    assert_eq!(echoed_header(&seen, "x-b3-spanid").as_deref(), Some(PARENT));
    assert_eq!(
        echoed_header(&seen, "traceparent").as_deref(),
        Some(TRACEPARENT)
    );
    drop(sidecar);

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sidecar.toml");
    std::fs::write(&config, "[tracing]\npropagation = \"w3c\"\n").unwrap();
    let sidecar = Sidecar::start(&["--config", config.to_str().unwrap(), "--inbound", &inbound]);
    let seen = seen_by_app(&sidecar, &[("b3", &b3)]);
    assert_eq!(
        echoed_header(&seen, "traceparent").as_deref(),
        Some(TRACEPARENT)
    );
    assert!(!has_b3(&seen), "{seen}");
    // Nothing in: a new trace, written as configured.
    let seen = seen_by_app(&sidecar, &[]);
    let traceparent = echoed_header(&seen, "traceparent").unwrap();
    assert_eq!(traceparent.len(), 55);
    assert!(!traceparent.contains(TRACE));
    let (status, spans) = sidecar.stop();
    assert!(status.success());
    assert_eq!(spans.len(), 2);
}

#[test]
fn a_malformed_traceparent_is_ignored_whole_and_the_request_served_under_a_fresh_trace() {
    let rt = runtime();
    let app = rt.block_on(echo_app("a"));
    let sidecar = Sidecar::start(&["--inbound", &format!("127.0.0.1:0={app}")]);
    let uppercase = TRACEPARENT.to_uppercase();
    let bad = [
        uppercase.as_str(),
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
    ];
    for traceparent in bad {
        let seen = seen_by_app(
            &sidecar,
            &[("traceparent", traceparent), ("tracestate", TRACESTATE)],
        );
        // Nothing usable came: a new trace, in B3, and the W3C headers gone.
        let trace = echoed_header(&seen, "x-b3-traceid").unwrap();
        assert_ne!(trace, TRACE);
        assert_eq!(echoed_header(&seen, "traceparent"), None, "{seen}");
        assert_eq!(echoed_header(&seen, "tracestate"), None, "{seen}");
    }
    let (_, spans) = sidecar.stop();
    assert_eq!(spans.len(), bad.len());
    assert!(spans
        .iter()
        .all(|s| s.parent_id.is_none() && s.shared.is_none()));
    assert!(spans.iter().all(|s| hex(s.trace_id) != TRACE));
}

fn reporter(service: &str, path: &Path) -> Reporter {
    Reporter::builder(service).json_lines(path).build().unwrap()
}

fn spans_of(reporter: &Reporter, path: &Path) -> Vec<Span> {
    reporter.flush();
    read_spans(path)
}

#[test]
fn traceparent_alone_through_a_sidecar_and_two_services_makes_one_trace() {
    // client --traceparent--> sidecar (inbound) -> svca (layers) -> sidecar (outbound,
    // Host: svcb) -> svcb (layers), which echoes what it got.
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let (svca_file, svcb_file) = (dir.path().join("svca.jsonl"), dir.path().join("svcb.jsonl"));
    let (svca_reporter, svcb_reporter) =
        (reporter("svca", &svca_file), reporter("svcb", &svcb_file));

    let sidecar = two_services(
        &rt,
        svca_reporter.clone(),
        svcb_reporter.clone(),
        |request| {
            let headers = request.headers().iter();
            headers
                .map(|(k, v)| format!("{k}: {}\n", v.to_str().unwrap()))
                .collect()
        },
        &[],
    );

    let (response, seen_by_svcb) = rt.block_on(get(
        sidecar.inbound(),
        "/pay",
        &[("traceparent", TRACEPARENT), ("tracestate", TRACESTATE)],
    ));
    assert_eq!(response.status(), 200, "{seen_by_svcb}");
    // Only traceparent all the way, the tracestate carried unchanged.
    assert!(!has_b3(&seen_by_svcb), "{seen_by_svcb}");
    assert_eq!(
        echoed_header(&seen_by_svcb, "tracestate").as_deref(),
        Some(TRACESTATE)
    );
    let traceparent = echoed_header(&seen_by_svcb, "traceparent").unwrap();

    let (status, sidecar_spans) = sidecar.stop();
    assert!(status.success(), "{status}");
    let spans: Vec<Span> = sidecar_spans
        .into_iter()
        .chain(spans_of(&svca_reporter, &svca_file))
        .chain(spans_of(&svcb_reporter, &svcb_file))
        .collect();
    assert_eq!(spans.len(), 4, "{spans:#?}");
    // One trace, the caller's.
    assert!(spans.iter().all(|s| hex(s.trace_id) == TRACE), "{spans:#?}");
    let find = |service: &str, kind: Kind| {
        spans
            .iter()
            .find(|s| {
                s.local_endpoint.service_name.as_deref() == Some(service) && s.kind == Some(kind)
            })
            .unwrap_or_else(|| panic!("no {kind:?} span of {service}: {spans:#?}"))
    };
    let sidecar_server = find("svca-sidecar", Kind::Server);
    let svca_client = find("svca", Kind::Client);
    let sidecar_client = find("svca-sidecar", Kind::Client);
    let svcb_server = find("svcb", Kind::Server);
    // The sidecar joins the caller's span; svca's call is its child; the sidecar's outbound
    // CLIENT span is a child of that; svcb's SERVER span shares it. traceparent carries no
    // parent's parent, so svcb's SERVER half has no parent id of its own: its CLIENT half
    // (the same id) has it.
    assert_eq!(hex(sidecar_server.id), PARENT);
    assert_eq!(
        (sidecar_server.parent_id, sidecar_server.shared),
        (None, Some(true))
    );
    assert_eq!(svca_client.parent_id, Some(sidecar_server.id));
    assert_eq!(sidecar_client.parent_id, Some(svca_client.id));
    assert_eq!(
        (svcb_server.id, svcb_server.shared),
        (sidecar_client.id, Some(true))
    );
    assert_eq!(svcb_server.parent_id, None);
    // Every parent id is a span of the trace: the trace hangs together.
    let ids: Vec<_> = spans.iter().map(|s| s.id).collect();
    assert!(spans
        .iter()
        .filter_map(|s| s.parent_id)
        .all(|parent| ids.contains(&parent)));
    assert_eq!(
        traceparent,
        format!("00-{TRACE}-{}-01", hex(sidecar_client.id))
    );

    // The viewer draws them as one tree: svcb's shared SERVER span under the
    // CLIENT span with its id, nothing orphaned.
    let all = dir.path().join("all.jsonl");
    let lines: Vec<String> = spans
        .iter()
        .map(|span| serde_json::to_string(span).unwrap())
        .collect();
    std::fs::write(&all, lines.join("\n") + "\n").unwrap();
    let drawn = std::process::Command::new(env!("CARGO_BIN_EXE_functrace-sidecar"))
        .arg("view")
        .arg(&all)
        .args(["--trace", TRACE])
        .output()
        .unwrap();
    let text = String::from_utf8(drawn.stdout).unwrap();
    assert!(drawn.status.success(), "{text}");
    assert!(
        text.starts_with(&format!("trace {TRACE}: 4 spans, 3 services")),
        "{text}"
    );
    assert!(!text.contains("(orphan)"), "{text}");
    let depth = |marker: &str| {
        let row = text
            .lines()
            .find(|line| line.ends_with(marker))
            .unwrap_or_else(|| panic!("no {marker}: {text}"));
        let span = row.rsplit_once("|  ").unwrap().1;
        span.len() - span.trim_start().len()
    };
    assert_eq!(depth("svcb get /stock [SERVER shared]"), 6, "{text}");
}
