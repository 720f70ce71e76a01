//! No span lost on Ctrl-C: a real process (this test binary, run again as the child) queues
//! spans, is sent SIGINT, returns from its main, and the reporter's guard writes them all.

mod export_support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use export_support::scratch_file;
use functrace::{Sampling, TraceContext};
use functrace_mesh::export::{Kind, Reporter, Span};

/// Set in the child's environment: where it writes its spans.
const SPANS_FILE: &str = "FUNCTRACE_CTRL_C_SPANS";
const SPANS: usize = 50;

/// The child: what a service's main does. Its batches wait up to a minute to fill, so
/// without the guard every span would still be queued at the Ctrl-C.
#[test]
fn child_queues_spans_and_returns_on_ctrl_c() {
    let Ok(path) = std::env::var(SPANS_FILE) else {
        return; // run as a test of its own: nothing to do
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let reporter = Reporter::builder("ctrl-c")
            .json_lines(path)
            .interval(Duration::from_secs(60))
            .batch_size(1000)
            .build()
            .unwrap();
        let _spans = reporter.install();
        let mut interrupt =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).unwrap();
        for n in 0..SPANS {
            reporter.report(span(n));
        }
        println!("queued {SPANS}");
        interrupt.recv().await;
    });
}

fn span(n: usize) -> Span {
    let context = TraceContext::new_root(Sampling::Accept);
    let mut span = Span::new(
        &context,
        format!("get /{n}"),
        SystemTime::now(),
        Duration::from_micros(5),
        "ctrl-c",
    );
    span.kind = Some(Kind::Server);
    span
}

#[test]
fn spans_queued_before_a_ctrl_c_are_all_written() {
    let path = scratch_file("ctrl-c");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_queues_spans_and_returns_on_ctrl_c",
            "--nocapture",
        ])
        .env(SPANS_FILE, &path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Read to the end: the child writes its test report after the signal.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while line.trim_end() != format!("queued {SPANS}") {
        line.clear();
        let read = stdout.read_line(&mut line).unwrap();
        assert!(read > 0, "the child ended before it queued its spans");
    }
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    stdout.read_to_string(&mut line).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(written.lines().count(), SPANS, "{written}");
}
