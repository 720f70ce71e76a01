//! The mesh demo (`cargo run --example mesh --features trace`): its output, with ids, ports,
//! task numbers and times masked, is pinned by `tests/golden/mesh.txt`; its spans files are
//! one connected tree per request, and `functrace-sidecar view` reads them.
//! (`FUNCTRACE_BLESS=1` rewrites the golden file.)
#![cfg(feature = "trace")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// The demo's output with what changes from run to run masked.
fn masked(output: &str) -> String {
    let mut lines = Vec::new();
    for line in output.lines() {
        let mut line = mask_words(line);
        // Tree rows: offset, duration and the bar depend on timing; the span column stays.
        if line.trim_start().starts_with("<d>") {
            if let Some((_, span)) = line.rsplit_once("|  ") {
                line = format!("   <timing>  {span}");
            }
        }
        lines.push(line);
    }
    lines.join("\n") + "\n"
}

/// Masks ids, ports, task numbers, durations and dates in one line, word by word.
fn mask_words(line: &str) -> String {
    let mut out = String::new();
    let mut word = String::new();
    for c in line.chars() {
        if c.is_whitespace() || c == '(' {
            out.push_str(&mask_word(&word));
            word.clear();
            out.push(c);
        } else {
            word.push(c);
        }
    }
    out.push_str(&mask_word(&word));
    out
}

fn mask_word(word: &str) -> String {
    let hex = |w: &str, len: usize| w.len() == len && w.bytes().all(|b| b.is_ascii_hexdigit());
    let core = word.trim_end_matches([':', ',', ']', ')', '>']);
    let tail = &word[core.len()..];
    let masked = if hex(core, 32) {
        "<trace>".to_owned()
    } else if let Some(port) = core.strip_prefix("127.0.0.1:") {
        let digits = port.trim_end_matches(|c: char| !c.is_ascii_digit());
        format!("127.0.0.1:<port>{}", &port[digits.len()..])
    } else if word.starts_with("t[") {
        let after = word.split_once(']').map_or("", |(_, after)| after);
        return format!("t[..]{after}");
    } else if is_duration(core) {
        "<d>".to_owned()
    } else if core.starts_with("20") && core.ends_with('Z') {
        "<date>".to_owned()
    } else if core.starts_with(&std::env::temp_dir().display().to_string()) {
        "<dir>".to_owned()
    } else {
        core.to_owned()
    };
    masked + tail
}

fn is_duration(word: &str) -> bool {
    let number = word.trim_end_matches(['n', 'µ', 'm', 's']);
    !number.is_empty()
        && number.len() < word.len()
        && number.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && ["ns", "µs", "ms", "s"]
            .iter()
            .any(|unit| word.ends_with(unit))
}

fn sidecar_binary(example: &Path) -> std::path::PathBuf {
    // target/<profile>/examples/mesh-<hash> -> target/<profile>/functrace-sidecar
    example
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("functrace-sidecar")
}

#[test]
fn the_mesh_demo_prints_the_pinned_walkthrough_and_connected_traces() {
    let example = common::example("mesh");
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(&example)
        .arg("--keep")
        .arg(dir.path())
        .env_remove("FUNCTRACE")
        .env_remove("FUNCTRACE_OUT")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let golden_path = format!("{}/tests/golden/mesh.txt", env!("CARGO_MANIFEST_DIR"));
    let actual = masked(&stdout);
    if std::env::var_os("FUNCTRACE_BLESS").is_some() {
        std::fs::write(&golden_path, &actual).unwrap();
    }
    let golden = std::fs::read_to_string(&golden_path).unwrap();
    assert_eq!(actual, golden, "the demo's output changed:\n{stdout}");

    // Every request is one trace whose spans all hang together: each parent is in it.
    let mut traces: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                let span: serde_json::Value = serde_json::from_str(line).unwrap();
                let trace = span["traceId"].as_str().unwrap().to_owned();
                traces.entry(trace).or_default().push(span);
            }
        }
    }
    // 1 refused + 1 + 10 + 20 + 10 + 1 requests to svca.
    assert_eq!(traces.len(), 43);
    for spans in traces.values() {
        let ids: BTreeSet<&str> = spans.iter().map(|s| s["id"].as_str().unwrap()).collect();
        let roots = spans.iter().filter(|s| s.get("parentId").is_none()).count();
        assert_eq!(roots, 1, "{spans:#?}");
        for span in spans {
            if let Some(parent) = span["parentId"].as_str() {
                assert!(ids.contains(parent), "orphan {span}");
            }
        }
    }

    // The viewer lists them all, and draws one as a page.
    let sidecar = sidecar_binary(&example);
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    let list = Command::new(&sidecar)
        .arg("view")
        .args(&files)
        .output()
        .unwrap();
    assert!(list.status.success());
    let list = String::from_utf8(list.stdout).unwrap();
    for trace in traces.keys() {
        assert!(list.contains(trace.as_str()), "{trace} not listed:\n{list}");
    }
    let page = dir.path().join("trace.html");
    // The trace with the most spans goes through every service (one of the 43, the refused
    // request, never reaches msgd; trace ids are random, so "the first" would be any).
    let (fullest, _) = traces.iter().max_by_key(|(_, spans)| spans.len()).unwrap();
    let html = Command::new(&sidecar)
        .arg("view")
        .args(&files)
        .args(["--trace", fullest, "--html"])
        .arg(&page)
        .output()
        .unwrap();
    assert!(html.status.success(), "{html:?}");
    let page = std::fs::read_to_string(page).unwrap();
    assert!(page.contains("svca") && page.contains("msgd"));
}
