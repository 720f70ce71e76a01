//! `http_chain`: one request through three services over loopback. Its trace lines share one
//! trace id, and its spans form one connected tree.

#[path = "../../functrace/tests/support/mod.rs"]
mod support;

mod common;

use std::collections::HashSet;
use std::process::Command;

use serde_json::Value;

#[test]
fn one_request_is_one_connected_trace() {
    let example = common::example("http_chain");
    let spans_path = std::env::temp_dir().join(format!("http_chain-{}.jsonl", std::process::id()));
    let output = Command::new(example)
        .arg(&spans_path)
        .env_remove("FUNCTRACE")
        .env_remove("FUNCTRACE_OUT")
        .output()
        .expect("run http_chain");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.starts_with("checkout: order 17 (41 left)\n"),
        "{stdout}"
    );

    let spans: Vec<Value> = std::fs::read_to_string(&spans_path)
        .expect("spans file")
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON span"))
        .collect();
    std::fs::remove_file(&spans_path).unwrap();
    let field = |span: &Value, name: &str| span[name].as_str().map(str::to_owned);

    let trace_ids: HashSet<_> = spans.iter().map(|s| field(s, "traceId").unwrap()).collect();
    assert_eq!(trace_ids.len(), 1, "{spans:#?}");
    let trace_id = trace_ids.into_iter().next().unwrap();

    // Connected: every parent is a span of the file; one root, the frontend's SERVER span.
    let ids: HashSet<_> = spans.iter().map(|s| field(s, "id").unwrap()).collect();
    let roots: Vec<&Value> = spans
        .iter()
        .filter(|s| s.get("parentId").is_none())
        .collect();
    assert_eq!(roots.len(), 1, "{spans:#?}");
    assert_eq!(field(roots[0], "name").as_deref(), Some("get /checkout"));
    for span in &spans {
        if let Some(parent) = field(span, "parentId") {
            assert!(ids.contains(&parent), "orphan: {span}");
        }
    }
    let count = |kind: &str| spans.iter().filter(|s| s["kind"] == kind).count();
    assert_eq!((count("SERVER"), count("CLIENT")), (3, 2));
    let services: HashSet<_> = spans
        .iter()
        .filter(|s| s["kind"] == "SERVER")
        .map(|s| {
            s["localEndpoint"]["serviceName"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        services,
        ["frontend", "orders", "stock"].map(String::from).into()
    );

    let lines: Vec<String> = String::from_utf8(output.stderr)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("t["))
        .map(str::to_owned)
        .collect();
    let local_spans = spans.iter().filter(|s| s.get("kind").is_none()).count();
    if cfg!(feature = "trace") {
        // checkout, place_order, create_order, reserve, count_shelf: a line pair and a span each.
        assert_eq!((lines.len(), local_spans), (10, 5));
        for line in &lines {
            assert_eq!(
                support::parse(line).trace.as_deref(),
                Some(&*trace_id),
                "{line}"
            );
        }
    } else {
        assert_eq!((lines.len(), local_spans), (0, 0));
    }
}
