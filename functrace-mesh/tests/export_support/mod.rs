//! Shared by the `export_*` tests: scratch files, reading JSON lines back, the Python
//! schema validator, and a real Zipkin collector (a hyper server on 127.0.0.1:0) that
//! records what it receives and can hold its answers until the test lets it go.

#![allow(dead_code)]

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use functrace::{FinishedSpan, Sampling, SpanId, TraceContext, TraceId};
use functrace_mesh::export::Span;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

/// A fresh path under the target's scratch directory (the file does not exist).
pub fn scratch_file(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("functrace-export");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.jsonl"));
    let _ = std::fs::remove_file(&path);
    path
}

/// Each line of a JSON lines file, as JSON and as a [`Span`].
pub fn read_lines(path: &Path) -> Vec<(serde_json::Value, Span)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|line| {
            let json: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("not JSON: {error}: {line}"));
            let span: Span = serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("not a span: {error}: {line}"));
            (json, span)
        })
        .collect()
}

/// The Zipkin v2 API spec (`zipkin2-api.yaml`, openzipkin's zipkin-api), kept with the tests.
pub fn spec_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/zipkin2-api.yaml")
}

/// Runs `tests/export_validate.py` on a JSON lines file: `Ok(stdout)` when it exits 0,
/// `Err(stdout + stderr)` when it reports invalid spans (exit 1). Panics, with what to
/// install, when python3 or its packages are missing.
pub fn validate(spans: &Path) -> Result<String, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/export_validate.py");
    let output = Command::new("python3")
        .arg(&script)
        .arg(spec_path())
        .arg(spans)
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "python3 is needed to validate spans against zipkin2-api.yaml \
                 (and `python3 -m pip install jsonschema pyyaml`): {error}"
            )
        });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    match output.status.code() {
        Some(0) => Ok(stdout),
        Some(1) => Err(format!("{stdout}{stderr}")),
        _ => panic!(
            "the schema validator could not run ({}); it needs python3 with \
             `python3 -m pip install jsonschema pyyaml`:\n{stdout}{stderr}",
            output.status
        ),
    }
}

/// A sampled context with a 128-bit trace id.
pub fn context(trace: &str, span: &str, parent: Option<&str>, sampling: Sampling) -> TraceContext {
    TraceContext {
        trace_id: TraceId::from_hex(trace).unwrap(),
        span_id: SpanId::from_hex(span).unwrap(),
        parent_id: parent.map(|parent| SpanId::from_hex(parent).unwrap()),
        sampling,
    }
}

/// A traced call's span, as the core hands it to a reporter.
pub fn finished(
    name: &'static str,
    context: TraceContext,
    task: u32,
    error: Option<&str>,
) -> FinishedSpan {
    FinishedSpan {
        name,
        context,
        start: SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_000_000),
        duration: Duration::from_micros(42),
        task,
        error: error.map(str::to_owned),
    }
}

/// A simple span numbered `n` (its name is `span-n`).
pub fn numbered(n: u64) -> Span {
    let context = TraceContext {
        trace_id: TraceId::from_hex("463ac35c9f6413ad48485a3953bb6124").unwrap(),
        span_id: SpanId::new(n + 1).unwrap(),
        parent_id: None,
        sampling: Sampling::Accept,
    };
    Span::client(
        &context,
        format!("span-{n}"),
        SystemTime::now(),
        Duration::from_micros(10),
        "numbered",
    )
}

/// One request the collector received.
#[derive(Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A real HTTP server standing in for a Zipkin collector.
pub struct TestCollector {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Requests as they arrive (before they are answered).
    pub requests: mpsc::Receiver<Recorded>,
    gate: watch::Sender<bool>,
    runtime: tokio::runtime::Runtime,
}

impl TestCollector {
    /// Answers `status` to every request; with `hold`, only once [`release`](Self::release)
    /// is called.
    pub fn start(status: StatusCode, hold: bool) -> TestCollector {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (gate, opened) = watch::channel(!hold);
        let (record, requests) = mpsc::channel();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let record = record.clone();
                let opened = opened.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let record = record.clone();
                        let mut opened = opened.clone();
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body.collect().await.unwrap().to_bytes();
                            let _ = record.send(Recorded {
                                method: parts.method.to_string(),
                                path: parts.uri.path().to_owned(),
                                headers: parts.headers,
                                body,
                            });
                            let _ = opened.wait_for(|open| *open).await;
                            let mut response = Response::new(Full::new(Bytes::new()));
                            *response.status_mut() = status;
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        TestCollector {
            url,
            requests,
            gate,
            runtime,
        }
    }

    /// Lets held and later requests be answered.
    pub fn release(&self) {
        self.gate.send_replace(true);
    }

    /// Every request received so far (without waiting).
    pub fn received(&self) -> Vec<Recorded> {
        self.requests.try_iter().collect()
    }
}

/// The spans in a collector request body (a JSON array).
pub fn body_spans(request: &Recorded) -> Vec<Span> {
    serde_json::from_slice(&request.body).unwrap_or_else(|error| {
        panic!(
            "the body is not a JSON array of spans: {error}: {}",
            String::from_utf8_lossy(&request.body)
        )
    })
}
