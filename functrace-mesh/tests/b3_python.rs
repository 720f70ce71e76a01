//! The vector table through Python's `opentelemetry-propagator-b3` (`tests/b3_python.py`):
//! where it agrees with the spec it must extract what we do; where it does not, it must show
//! exactly the documented difference (see the `b3` module docs). Requires `python3` with the
//! package installed (`.ci/run` installs it); without them this test fails, it never skips.

mod b3_support;

use std::path::Path;
use std::process::Command;

use b3_support::{seen, vectors, PythonSeen};
use functrace_mesh::b3;
use serde_json::{json, Value};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/b3_python.py");

fn python_seen(value: &Value) -> PythonSeen {
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
                "cannot run python3 ({error}): the B3 cross-check needs python3 with \
                 opentelemetry-propagator-b3 (python3 -m pip install opentelemetry-propagator-b3)"
            )
        });
    assert!(
        output.status.success(),
        "{SCRIPT} failed ({}): {}\nThe B3 cross-check needs python3 with \
         opentelemetry-propagator-b3 (python3 -m pip install opentelemetry-propagator-b3)",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("b3_python.py prints JSON")
}

#[test]
fn python_otel_agrees_except_where_documented() {
    let vectors = vectors();
    let table: Vec<Value> = vectors
        .iter()
        .map(|v| json!({ "name": v.name, "headers": v.headers }))
        .collect();
    let input = std::env::temp_dir().join(format!("b3_vectors_{}.json", std::process::id()));
    std::fs::write(&input, serde_json::to_vec(&table).unwrap()).unwrap();
    let output = run_python(&input);
    std::fs::remove_file(&input).unwrap();
    let version = output["version"].as_str().unwrap_or("?");
    let results = output["results"].as_array().expect("results");
    assert_eq!(results.len(), vectors.len());

    let mut failures = Vec::new();
    let mut differences = 0;
    for (vector, result) in vectors.iter().zip(results) {
        assert_eq!(result["name"], vector.name.as_str());
        // The spec side first: the table is what we extract.
        assert_eq!(seen(&b3::extract(&vector.header_map())), vector.expect);
        // B3SingleFormat only changes injection: both extract alike.
        let multi = python_seen(&result["multi"]);
        assert_eq!(python_seen(&result["single"]), multi, "{}", vector.name);
        if let Some((differs, why)) = &vector.python {
            differences += 1;
            // A documented difference must be a real one.
            assert_ne!(
                *differs,
                vector.python_agreeing(),
                "{}: not a difference: {why}",
                vector.name
            );
        }
        let want = vector.python_expected();
        if multi != want {
            failures.push(format!(
                "{}: python {multi:?}, expected {want:?}{}",
                vector.name,
                match &vector.python {
                    Some((_, why)) => format!(" ({why})"),
                    None => String::new(),
                },
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "opentelemetry-propagator-b3 {version}:\n{}",
        failures.join("\n")
    );
    assert!(differences >= 15, "{differences} documented differences");
}
