//! Finding an example's binary for the feature mode this test was built in, and running the
//! cross-service examples. Each test file uses some of these.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// Builds (if needed) the example `name` with the features of this test build, and returns
/// its binary: the hashed file cargo made for these features, not the copy in
/// `target/<profile>/examples/`, which belongs to whichever mode was built last.
pub fn example(name: &str) -> PathBuf {
    let mut cargo = Command::new(env!("CARGO"));
    cargo.current_dir(env!("CARGO_MANIFEST_DIR")).args([
        "build",
        "--quiet",
        "--message-format=json",
        "--example",
        name,
    ]);
    if cfg!(feature = "trace") {
        cargo.args(["--features", "trace"]);
    }
    let output = cargo.output().expect("cargo build");
    assert!(
        output.status.success(),
        "building {name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| {
            message["reason"] == "compiler-artifact" && message["target"]["name"] == name
        })
        .find_map(|message| message["filenames"][0].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("no binary for example {name}"))
}

/// Runs an example with a spans file; returns (stdout, stderr trace lines, spans).
pub fn run_with_spans(name: &str) -> (String, Vec<String>, Vec<serde_json::Value>) {
    let spans_path = std::env::temp_dir().join(format!("{name}-{}.jsonl", std::process::id()));
    let output = Command::new(example(name))
        .arg(&spans_path)
        .env_remove("FUNCTRACE")
        .env_remove("FUNCTRACE_OUT")
        .output()
        .unwrap_or_else(|e| panic!("run {name}: {e}"));
    assert!(output.status.success(), "{output:?}");
    let spans = std::fs::read_to_string(&spans_path)
        .expect("spans file")
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON span"))
        .collect();
    std::fs::remove_file(&spans_path).unwrap();
    let lines = String::from_utf8(output.stderr)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("t["))
        .map(str::to_owned)
        .collect();
    (String::from_utf8(output.stdout).unwrap(), lines, spans)
}

/// Asserts that `spans` are one trace whose every parent is among them, with one root named
/// `root`; returns the trace id.
pub fn assert_one_connected_trace(spans: &[serde_json::Value], root: &str) -> String {
    use std::collections::HashSet;
    let text = |span: &serde_json::Value, key: &str| span[key].as_str().map(str::to_owned);
    let traces: HashSet<_> = spans.iter().map(|s| text(s, "traceId").unwrap()).collect();
    assert_eq!(traces.len(), 1, "{spans:#?}");
    let ids: HashSet<_> = spans.iter().map(|s| text(s, "id").unwrap()).collect();
    let roots: Vec<_> = spans
        .iter()
        .filter(|s| s.get("parentId").is_none())
        .collect();
    assert_eq!(roots.len(), 1, "{spans:#?}");
    assert_eq!(text(roots[0], "name").as_deref(), Some(root));
    for span in spans {
        if let Some(parent) = text(span, "parentId") {
            assert!(ids.contains(&parent), "orphan: {span}");
        }
    }
    traces.into_iter().next().unwrap()
}

/// Asserts the traced calls of a cross-service example: with the `trace` feature, `calls`
/// local spans and two lines per call, every line carrying `trace_id`; without it, none.
pub fn assert_traced_calls(
    lines: &[String],
    spans: &[serde_json::Value],
    calls: usize,
    trace_id: &str,
) {
    let local_spans = spans.iter().filter(|s| s.get("kind").is_none()).count();
    if cfg!(feature = "trace") {
        assert_eq!((lines.len(), local_spans), (2 * calls, calls), "{lines:#?}");
        for line in lines {
            assert!(
                line.starts_with("t[") && line.contains(&format!(" {trace_id}:")),
                "{line}"
            );
        }
    } else {
        assert_eq!((lines.len(), local_spans), (0, 0));
    }
}
