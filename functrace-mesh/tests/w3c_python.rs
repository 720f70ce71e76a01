//! The W3C vector table through Python's `opentelemetry-api` (`TraceContextTextMapPropagator`,
//! `tests/w3c_python.py`): where it agrees with the Recommendation it must extract what we do
//! (context and `tracestate` members); where it does not, it must show exactly the documented
//! difference. And it must write the same `traceparent` and `tracestate` as our injection for
//! the same contexts. Requires `python3` with the package installed (`.ci/run` installs it);
//! without them this test fails, it never skips.

mod w3c_support;

use std::path::Path;
use std::process::Command;

use functrace::{Sampling, SpanId, TraceContext, TraceId};
use functrace_mesh::w3c;
use http::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};
use w3c_support::{members, vectors, Seen, P, STATE, T};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/w3c_python.py");

fn python_seen(value: &Value) -> Seen {
    if value.is_null() {
        return None;
    }
    Some((
        value["trace_id"].as_str().unwrap().to_string(),
        value["span_id"].as_str().unwrap().to_string(),
        value["sampled"].as_bool().unwrap(),
    ))
}

fn run_python(input: &Path) -> Value {
    let output = Command::new("python3")
        .arg(SCRIPT)
        .arg(input)
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run python3 ({error}): the W3C cross-check needs python3 with \
                 opentelemetry-api (python3 -m pip install opentelemetry-api)"
            )
        });
    assert!(
        output.status.success(),
        "{SCRIPT} failed ({}): {}\nThe W3C cross-check needs python3 with opentelemetry-api \
         (python3 -m pip install opentelemetry-api)",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("w3c_python.py prints JSON")
}

/// Contexts to inject: (trace id, span id, sampling, tracestate).
fn injections() -> Vec<(&'static str, &'static str, Sampling, Option<&'static str>)> {
    vec![
        (T, P, Sampling::Accept, Some(STATE)),
        (T, P, Sampling::Deny, None),
        (
            T,
            "e457b5a2e4d86bd1",
            Sampling::Accept,
            Some("congo=t61rcWkgMzE"),
        ),
        (
            "463ac35c9f6413ad48485a3953bb6124",
            P,
            Sampling::Deny,
            Some("a=1"),
        ),
        // A 64-bit B3 trace id: written padded with zeros, as Python's 128-bit ids are.
        ("a3ce929d0e0e4736", P, Sampling::Accept, None),
        (
            "0000000000000000a3ce929d0e0e4736",
            P,
            Sampling::Accept,
            None,
        ),
    ]
}

#[test]
fn python_otel_agrees_except_where_documented() {
    let vectors = vectors();
    let injections = injections();
    let input = json!({
        "extract": vectors
            .iter()
            .map(|v| json!({ "name": v.name, "headers": v.headers }))
            .collect::<Vec<_>>(),
        "inject": injections
            .iter()
            .enumerate()
            .map(|(i, (trace, span, sampling, state))| json!({
                "name": format!("inject {i}"),
                "trace_id": format!("{trace:0>32}"),
                "span_id": span,
                "sampled": sampling.is_sampled(),
                "tracestate": members(state.unwrap_or("")),
            }))
            .collect::<Vec<_>>(),
    });
    let path = std::env::temp_dir().join(format!("w3c_vectors_{}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_vec(&input).unwrap()).unwrap();
    let output = run_python(&path);
    std::fs::remove_file(&path).unwrap();
    let version = output["version"].as_str().unwrap_or("?");

    let results = output["extract"].as_array().expect("extract results");
    assert_eq!(results.len(), vectors.len());
    let mut failures = Vec::new();
    let mut differences = 0;
    for (vector, result) in vectors.iter().zip(results) {
        assert_eq!(result["name"], vector.name.as_str());
        let python = python_seen(&result["context"]);
        if let Some((differs, why)) = &vector.python {
            differences += 1;
            assert_ne!(
                *differs, vector.expect,
                "{}: not a difference: {why}",
                vector.name
            );
        }
        let want = vector.python_expected();
        if python != want {
            failures.push(format!(
                "{}: python {python:?}, expected {want:?}",
                vector.name
            ));
        }
        let state: Vec<(String, String)> =
            serde_json::from_value(result["tracestate"].clone()).unwrap();
        if state != vector.tracestate_members() {
            failures.push(format!(
                "{}: python's tracestate {state:?}, ours {:?}",
                vector.name, vector.tracestate
            ));
        }
    }
    assert_eq!(differences, 2);

    let results = output["inject"].as_array().expect("inject results");
    assert_eq!(results.len(), injections.len());
    for ((trace, span, sampling, state), result) in injections.iter().zip(results) {
        let context = TraceContext {
            trace_id: TraceId::from_hex(trace).unwrap(),
            span_id: SpanId::from_hex(span).unwrap(),
            parent_id: None,
            sampling: *sampling,
        };
        let state = state.map(HeaderValue::from_static);
        let mut ours = HeaderMap::new();
        w3c::inject(&context, state.as_ref(), &mut ours);
        let ours: serde_json::Map<String, Value> = ours
            .iter()
            .map(|(name, value)| (name.to_string(), json!(value.to_str().unwrap())))
            .collect();
        if Value::Object(ours.clone()) != result["headers"] {
            failures.push(format!(
                "inject {trace}-{span} {sampling:?} {state:?}: python {}, ours {ours:?}",
                result["headers"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "opentelemetry-api {version}:\n{}",
        failures.join("\n")
    );
}
