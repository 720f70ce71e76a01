//! `functrace-sidecar view`, the real binary, on the hand-made spans files of
//! tests/view_data (fixed timestamps from 2023-11-14T22:13:20Z) and on generated ones:
//!
//! - svca/svcb/svcc.jsonl: one file per process. Trace 463ac35c… crosses three services
//!   with shared CLIENT/SERVER pairs, local spans and two errors; 5b8aa5a2… (newest) and
//!   a1b2c3d4e5f60718 (oldest) are small;
//! - orphans.jsonl, skew.jsonl, cycle.jsonl: broken trees;
//! - malformed.jsonl: lines that are not spans, and half a line at the end;
//! - html.jsonl: markup in a span name and tags.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/view_data");

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `functrace-sidecar view ARGS` in tests/view_data.
fn view(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_functrace-sidecar"))
        .arg("view")
        .args(args)
        .current_dir(DATA)
        .output()
        .expect("functrace-sidecar runs");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Runs `view ARGS`, expecting success and nothing on stderr; returns stdout.
fn shown(args: &[&str]) -> String {
    let run = view(args);
    assert_eq!((run.code, run.stderr.as_str()), (Some(0), ""), "{args:?}");
    run.stdout
}

const SERVICES: [&str; 3] = ["svca.jsonl", "svcb.jsonl", "svcc.jsonl"];

fn with_services<'a>(args: &[&'a str]) -> Vec<&'a str> {
    SERVICES.iter().chain(args).copied().collect()
}

const HEADER: &str =
    "TRACE                             STARTED (UTC)             DURATION  SPANS  ERRORS  ROOT\n";
const HEALTH: &str =
    "5b8aa5a2d2c872e8321cf37308d69df2  2023-11-14T22:13:20.100Z     250µs      1       0  svca get /health\n";
const CHECKOUT: &str =
    "463ac35c9f6413ad48485a3953bb6124  2023-11-14T22:13:20.000Z    30.0ms      8       2  svca get /checkout\n";
const CART: &str =
    "a1b2c3d4e5f60718                  2023-11-14T22:13:19.000Z     2.5ms      3       0  svca get /cart\n";

#[test]
fn lists_the_traces_of_several_files_newest_first() {
    assert_eq!(shown(&SERVICES), [HEADER, HEALTH, CHECKOUT, CART].concat());
}

#[test]
fn filters_the_list_by_service_and_duration() {
    let list = |args: &[&str]| shown(&with_services(args));
    assert_eq!(list(&["--service", "svcc"]), [HEADER, CHECKOUT].concat());
    assert_eq!(
        list(&["--service", "SVCB"]),
        [HEADER, CHECKOUT, CART].concat()
    );
    assert_eq!(
        list(&["--min-duration", "1ms"]),
        [HEADER, CHECKOUT, CART].concat()
    );
    assert_eq!(
        list(&["--min-duration", "250us"]),
        [HEADER, HEALTH, CHECKOUT, CART].concat()
    );
    assert_eq!(
        list(&["--min-duration", "251µs"]),
        [HEADER, CHECKOUT, CART].concat()
    );
    assert_eq!(
        list(&["--min-duration", "0.03s"]),
        [HEADER, CHECKOUT].concat()
    );
    let both = list(&["--service", "svcb", "--min-duration", "10ms"]);
    assert_eq!(both, [HEADER, CHECKOUT].concat());
    assert_eq!(
        list(&["--service", "nobody"]),
        [HEADER, "(no traces)\n"].concat()
    );
    let bad = view(&with_services(&["--min-duration", "10"]));
    assert_eq!(bad.code, Some(2));
    assert!(
        bad.stderr.contains("expected a number and a unit"),
        "{}",
        bad.stderr
    );
}

const TIMELINE_HEADER: &str =
    "  OFFSET  DURATION  TIMELINE                                    SPAN\n";

#[test]
fn draws_a_trace_across_three_services() {
    let expected = [
        "trace 463ac35c9f6413ad48485a3953bb6124: 8 spans, 3 services, 30.0ms, 2 errors, started 2023-11-14T22:13:20.000Z\n",
        TIMELINE_HEADER,
        "     0µs    30.0ms  |████████████████████████████████████████|  svca get /checkout [SERVER]\n",
        "   500µs    29.0ms  |████████████████████████████████████████|    svca checkout::handle [local]\n",
        "   1.0ms    20.0ms  | ███████████████████████████            |      svca get svcb [CLIENT]\n",
        "   2.0ms    18.0ms  |  █████████████████████████             |        svcb get /price [SERVER shared]\n",
        "   3.0ms     6.0ms  |    ████████                            |          svcb price::lookup [local]\n",
        "  10.0ms     9.0ms  |             █████████████              |          svcb get svcc [CLIENT] ! 503\n",
        "  11.0ms     7.0ms  |              ██████████                |            svcc get /stock [SERVER shared] ! out of stock\n",
        "  22.0ms     7.5ms  |                             ███████████|      svca checkout::render [local]\n",
    ]
    .concat();
    assert_eq!(
        shown(&with_services(&[
            "--trace",
            "463ac35c9f6413ad48485a3953bb6124"
        ])),
        expected
    );
    // The low 64 bits find a 128-bit trace too; filters do not apply to a chosen trace.
    let args = ["--trace", "48485A3953BB6124", "--service", "nobody"];
    assert_eq!(shown(&with_services(&args)), expected);
}

#[test]
fn spans_without_their_parent_become_orphan_roots() {
    let expected = [
        "trace 00000000000f0001: 5 spans, 3 services, 1.0ms, 0 errors, started 2023-11-14T22:13:20.000Z\n",
        TIMELINE_HEADER,
        "     0µs     1.0ms  |████████████████████████████████████████|  svca get /a [SERVER]\n",
        "   100µs     200µs  |    ████████                            |    svca step [local]\n",
        "    50µs      50µs  |  ██                                    |  svcc get /early [SERVER] (orphan)\n",
        "   300µs     400µs  |            ████████████████            |  svcb get /late [SERVER] (orphan)\n",
        "   400µs     100µs  |                ████                    |    svcb late::work [local]\n",
    ]
    .concat();
    assert_eq!(
        shown(&["orphans.jsonl", "--trace", "00000000000f0001"]),
        expected
    );
}

#[test]
fn a_child_starting_before_its_parent_is_drawn_from_the_trace_start() {
    let expected = [
        "trace 00000000000c1001: 2 spans, 2 services, 3.0ms, 0 errors, started 2023-11-14T22:13:20.000Z\n",
        TIMELINE_HEADER,
        "   1.0ms     1.0ms  |             ██████████████             |  svca get /skew [SERVER]\n",
        "     0µs     3.0ms  |████████████████████████████████████████|    svcb get /later [SERVER]\n",
    ]
    .concat();
    assert_eq!(
        shown(&["skew.jsonl", "--trace", "00000000000c1001"]),
        expected
    );
}

#[test]
fn parent_chains_that_loop_are_broken_once() {
    let expected = [
        "trace 0000000000c0c001: 4 spans, 1 service, 100µs, 0 errors, started 2023-11-14T22:13:20.000Z\n",
        TIMELINE_HEADER,
        "     0µs     100µs  |████████████████████████████████████████|  svca get /root [SERVER]\n",
        "    10µs      20µs  |    ████████                            |  svca ping [local] (cycle)\n",
        "    20µs      20µs  |        ████████                        |    svca pong [local]\n",
        "    30µs      20µs  |            ████████                    |  svca self [local] (cycle)\n",
    ]
    .concat();
    assert_eq!(
        shown(&["cycle.jsonl", "--trace", "0000000000c0c001"]),
        expected
    );
}

#[test]
fn malformed_lines_are_skipped_and_counted() {
    // Bad JSON, a trace id of 32 bytes that are not all ASCII (a crash found by fuzzing), a
    // span without its fields, an id that is not lowercase hex, and half a line at the end;
    // the blank line does not count.
    let run = view(&["malformed.jsonl"]);
    assert_eq!(run.code, Some(0));
    assert_eq!(
        run.stderr,
        "functrace-sidecar view: skipped 5 malformed lines\n"
    );
    let line = "0000000000000bad                  2023-11-14T22:13:20.000Z     2.0ms      2       0  svca get /ok\n";
    assert_eq!(run.stdout, [HEADER, line].concat());
}

#[test]
fn a_file_still_being_written_is_read_up_to_its_last_whole_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("growing.jsonl");
    let whole = std::fs::read_to_string(Path::new(DATA).join("svca.jsonl")).unwrap();
    let next = whole.lines().next().unwrap();
    std::fs::write(&path, format!("{whole}{}", &next[..next.len() - 1])).unwrap();
    let run = view(&[path.to_str().unwrap()]);
    assert_eq!(run.code, Some(0));
    assert_eq!(
        run.stderr,
        "functrace-sidecar view: skipped 1 malformed line\n"
    );
    assert_eq!(run.stdout.lines().count(), 4, "{}", run.stdout);
    // A whole span without its newline yet is a span.
    std::fs::write(&path, whole.trim_end()).unwrap();
    assert_eq!(shown(&[path.to_str().unwrap()]).lines().count(), 4);
}

#[test]
fn an_unknown_trace_is_an_error() {
    let run = view(&with_services(&["--trace", "00000000deadbeef"]));
    assert_eq!(run.code, Some(1));
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "functrace-sidecar view: no trace \"00000000deadbeef\" in the spans files (3 traces)\n"
    );
    let run = view(&["nowhere.jsonl"]);
    assert_eq!(run.code, Some(1));
    assert!(run
        .stderr
        .starts_with("functrace-sidecar view: cannot read nowhere.jsonl: "));
}

/// 1000 spans: a root SERVER span, CLIENT/shared SERVER pairs, and local spans under them,
/// four levels deep.
fn thousand_spans() -> String {
    let mut lines = Vec::new();
    let t0: u64 = 1_700_000_000_000_000;
    let mut span = |id: u64, parent: Option<u64>, kind: Option<&str>, at: u64, duration: u64| {
        let mut json = serde_json::json!({
            "traceId": "00000000000e1000",
            "id": format!("{id:016x}"),
            "name": format!("op{id}"),
            "timestamp": t0 + at,
            "duration": duration,
            "localEndpoint": {"serviceName": format!("svc{}", id % 3)},
        });
        if let Some(parent) = parent {
            json["parentId"] = format!("{parent:016x}").into();
        }
        if let Some(kind) = kind {
            json["kind"] = kind.into();
            json["shared"] = (kind == "SERVER" && parent.is_some()).into();
        }
        lines.push(json.to_string());
    };
    span(1, None, Some("SERVER"), 0, 1_000_000);
    for call in 0..111 {
        let id = 100 + call;
        let at = call * 9_000;
        span(id, Some(1), Some("CLIENT"), at, 8_000);
        span(id, Some(1), Some("SERVER"), at + 100, 7_800);
        for local in 0..7 {
            let local_id = 1_000 + call * 10 + local;
            span(local_id, Some(id), None, at + 200 + local * 1_000, 900);
        }
    }
    assert_eq!(lines.len(), 1000);
    lines.join("\n") + "\n"
}

#[test]
fn a_thousand_span_trace_is_drawn_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("big.jsonl");
    std::fs::write(&path, thousand_spans()).unwrap();
    let path = path.to_str().unwrap();
    let started = Instant::now();
    let list = shown(&[path]);
    let tree = shown(&[path, "--trace", "00000000000e1000"]);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(list.contains("00000000000e1000"));
    assert!(
        list.contains("     1.0s   1000       0  svc1 op1\n"),
        "{list}"
    );
    let rows: Vec<&str> = tree.lines().skip(2).collect();
    assert_eq!(rows.len(), 1000);
    assert!(rows.iter().all(|row| row.contains('█')));
    let shared = rows
        .iter()
        .filter(|r| r.ends_with("[SERVER shared]"))
        .count();
    assert_eq!(shared, 111);
    // The first call: CLIENT, its shared SERVER below it, and the local spans below that.
    assert!(rows[1].ends_with("  svc1 op100 [CLIENT]"));
    assert!(rows[2].ends_with("    svc1 op100 [SERVER shared]"));
    assert!(rows[3].ends_with("      svc1 op1000 [local]"));
    assert!(rows[9].ends_with("      svc1 op1006 [local]"));
    assert!(rows[10].ends_with("  svc2 op101 [CLIENT]"));
}

#[test]
fn html_shows_text_from_spans_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("trace.html");
    let run = view(&[
        "html.jsonl",
        "--trace",
        "00000000000a7e11",
        "--html",
        out.to_str().unwrap(),
    ]);
    assert_eq!((run.code, run.stdout.as_str()), (Some(0), ""));
    assert!(run.stderr.contains("wrote") && run.stderr.ends_with("(1 trace)\n"));
    let page = std::fs::read_to_string(&out).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>\n"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("! &lt;img src=x onerror=alert(1)&gt;"));
    assert!(page.contains("it&#39;s &quot;fine&quot;"));
    assert!(page.contains("title=\"&quot;quote=a&amp;b&#10;error=&lt;img"));
    for unsafe_text in ["<script", "<img", "http", "url(", "@import"] {
        assert!(!page.contains(unsafe_text), "{unsafe_text} in {page}");
    }
    // The root fails and spans the timeline; its child starts at 25% and lasts half.
    assert!(page.contains("<details id=\"t-00000000000a7e11\" open>"));
    assert!(page.contains("<div class=\"row error\""));
    assert!(page.contains("style=\"left:0.000%;width:100.000%\""));
    assert!(page.contains("style=\"padding-left:1em\""));
    assert!(page.contains("style=\"left:25.000%;width:50.000%\""));
}

#[test]
fn html_without_a_trace_folds_every_listed_trace() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("list.html");
    let args = with_services(&["--min-duration", "1ms", "--html", out.to_str().unwrap()]);
    let run = view(&args);
    assert_eq!(run.code, Some(0));
    let page = std::fs::read_to_string(&out).unwrap();
    let details: Vec<&str> = page.lines().filter(|l| l.starts_with("<details")).collect();
    assert_eq!(
        details,
        [
            "<details id=\"t-463ac35c9f6413ad48485a3953bb6124\" open>",
            "<details id=\"t-a1b2c3d4e5f60718\">",
        ]
    );
    assert_eq!(page.matches("<div class=\"bar\"").count(), 8 + 3);
    assert_eq!(page.matches("<div class=\"row error\"").count(), 2);
}

#[test]
fn the_sidecar_flags_still_parse() {
    let output = Command::new(env!("CARGO_BIN_EXE_functrace-sidecar"))
        .args([
            "--service",
            "view",
            "--inbound",
            "127.0.0.1:0=127.0.0.1:8080",
        ])
        .arg("--check-config")
        .output()
        .unwrap();
    assert!(output.status.success());
    let toml = String::from_utf8(output.stdout).unwrap();
    assert!(toml.contains("service = \"view\""), "{toml}");
}
