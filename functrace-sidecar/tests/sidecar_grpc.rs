//! gRPC through the real `functrace-sidecar`, with grpcio on both ends
//! (`tests/sidecar_grpc.py`): a Python client calls a Python server through an outbound
//! sidecar ("caller") and an inbound one ("echo"), over HTTP/2. Proves that unary,
//! server-streaming and bidirectional streaming calls and their trailers (grpc-status,
//! grpc-message) pass both hops; that
//! the server sees B3 and `x-request-id` metadata; that each call leaves a CLIENT span and a
//! SERVER span sharing its ids, named by the gRPC path, with `grpc.status_code` from the
//! trailers and `error` only for a server fault; and that the inbound sidecar joins a `b3`
//! the client sent itself. Requires `python3` with `grpcio` (`scripts/test` installs it);
//! without them this test fails, it never skips.

mod sidecar_support;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread::JoinHandle;

use functrace_mesh::export::{Kind, Span};
use serde_json::Value;
use sidecar_support::Sidecar;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sidecar_grpc.py");
const NEEDS: &str = "this test needs python3 with grpcio (python3 -m pip install grpcio==1.85.1)";
const B3_TRACE: &str = "80f198ee56343ba864fe8b2a57d3eff7";
const B3_SPAN: &str = "e457b5a2e4d86bd1";
const FAIL_MESSAGE: &str = "deliberate failure";

/// `sidecar_grpc.py server`, killed when dropped (also on a panic).
struct PythonServer {
    child: Child,
    _stdin: ChildStdin,
    port: u16,
}

impl PythonServer {
    fn start() -> PythonServer {
        let mut child = Command::new("python3")
            .args([SCRIPT, "server"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run python3 ({error}): {NEEDS}"));
        let stdin = child.stdin.take().unwrap();
        let stderr = read_all(child.stderr.take().unwrap());
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(port) = line.trim().strip_prefix("port ") else {
            let status = child.wait().unwrap();
            let stderr = stderr.join().unwrap();
            panic!("sidecar_grpc.py server ended ({status}): {stderr}\n{NEEDS}");
        };
        PythonServer {
            port: port.parse().unwrap(),
            child,
            _stdin: stdin,
        }
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `stream` to its end on a thread of its own (so a chatty child never blocks on it).
fn read_all(mut stream: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        text
    })
}

/// `sidecar_grpc.py client`: Say, Count, Fail and Chat on `target`; answers what came back.
fn python_client(target: SocketAddr, authority: &str, b3: Option<&str>) -> Value {
    let output = Command::new("python3")
        .args([SCRIPT, "client", &target.to_string(), authority])
        .args(b3)
        .output()
        .unwrap_or_else(|error| panic!("cannot run python3 ({error}): {NEEDS}"));
    assert!(
        output.status.success(),
        "sidecar_grpc.py client failed ({}): {}\n{NEEDS}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let replies: Value = serde_json::from_slice(&output.stdout).expect("the client prints JSON");
    // Streaming and trailers came through, whatever the route.
    assert_eq!(replies["count"], serde_json::json!(["1", "2", "3"]));
    assert_eq!(replies["fail"]["code"], "INTERNAL");
    assert_eq!(replies["fail"]["details"], FAIL_MESSAGE);
    assert_eq!(
        replies["chat"],
        serde_json::json!(["echo a", "echo b", "echo c"])
    );
    replies
}

/// The value of metadata `key` as the Python server saw it on Say.
fn seen(replies: &Value, key: &str) -> String {
    let text = replies["say"].as_str().unwrap();
    sidecar_support::echoed_header(text, key)
        .unwrap_or_else(|| panic!("the server saw no {key} in:\n{text}"))
}

/// The one span of the call to `path` in `trace` (any trace if `None`). Its name is the
/// path lowercased, as Zipkin has every span name; `http.path` keeps the case.
fn span<'a>(spans: &'a [Span], path: &str, trace: Option<&str>) -> &'a Span {
    let found: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name == path.to_lowercase())
        .filter(|s| trace.is_none_or(|t| s.trace_id.to_string() == t))
        .collect();
    assert_eq!(found.len(), 1, "spans of {path} in {trace:?}: {spans:#?}");
    assert_eq!(tag(found[0], "http.path"), path);
    found[0]
}

fn tag<'a>(span: &'a Span, key: &str) -> &'a str {
    span.tags
        .get(key)
        .unwrap_or_else(|| panic!("no {key} tag on {span:#?}"))
}

#[test]
fn grpc_passes_both_sidecars_with_b3_and_grpc_status_on_spans() {
    let server = PythonServer::start();
    let app = format!("127.0.0.1:{}", server.port);
    let inbound_flag = format!("127.0.0.1:0={app}");
    let echo = Sidecar::start(&["--service", "echo", "--inbound", &inbound_flag]);
    let route = format!("echo={}", echo.inbound());
    let caller = Sidecar::start(&[
        "--service",
        "caller",
        "--outbound",
        "127.0.0.1:0",
        "--route",
        &route,
    ]);

    let routed = python_client(caller.outbound(), "echo", None);
    let direct = python_client(
        echo.inbound(),
        "echo",
        Some(&format!("{B3_TRACE}-{B3_SPAN}-1")),
    );
    // The inbound sidecar joined the client's own b3 and passed it on as multi-header B3.
    assert_eq!(seen(&direct, "x-b3-traceid"), B3_TRACE);
    assert_eq!(seen(&direct, "x-b3-spanid"), B3_SPAN);
    assert_eq!(seen(&direct, "x-b3-sampled"), "1");

    let inbound_address = echo.inbound().to_string();
    let (status, caller_spans) = caller.stop();
    assert!(status.success(), "caller sidecar: {status}");
    let (status, echo_spans) = echo.stop();
    assert!(status.success(), "echo sidecar: {status}");
    drop(server);
    assert_eq!(caller_spans.len(), 4, "{caller_spans:#?}");
    assert_eq!(echo_spans.len(), 8, "{echo_spans:#?}");

    for (method, code, error) in [
        ("Say", "0", false),
        ("Count", "0", false),
        ("Fail", "13", true),
        ("Chat", "0", false),
    ] {
        let name = format!("/demo.Echo/{method}");
        let client = span(&caller_spans, &name, None);
        let trace = client.trace_id.to_string();
        let server = span(&echo_spans, &name, Some(&trace));
        assert_eq!(client.kind, Some(Kind::Client), "{client:#?}");
        assert_eq!(client.parent_id, None, "no B3 from the app: a new root");
        assert_eq!(client.shared, None);
        assert_eq!(server.kind, Some(Kind::Server), "{server:#?}");
        assert_eq!((server.id, server.parent_id), (client.id, client.parent_id));
        assert_eq!(server.shared, Some(true));
        assert_eq!(tag(client, "upstream.address"), inbound_address);
        assert_eq!(tag(server, "upstream.address"), app);
        assert_eq!(
            tag(server, "guid:x-request-id"),
            tag(client, "guid:x-request-id")
        );
        for span in [client, server] {
            assert_eq!(tag(span, "http.protocol"), "HTTP/2");
            assert_eq!(tag(span, "grpc.status_code"), code, "{span:#?}");
            assert_eq!(span.tags.contains_key("error"), error, "{span:#?}");
        }
        if method == "Say" {
            // What the Python server saw is the context both spans recorded.
            assert_eq!(seen(&routed, "x-b3-traceid"), trace);
            assert_eq!(seen(&routed, "x-b3-spanid"), client.id.to_string());
            assert_eq!(seen(&routed, "x-b3-sampled"), "1");
            assert_eq!(
                seen(&routed, "x-request-id"),
                tag(client, "guid:x-request-id")
            );
        }
        if method == "Fail" {
            assert_eq!(tag(client, "grpc.message"), FAIL_MESSAGE);
            assert_eq!(tag(server, "grpc.message"), FAIL_MESSAGE);
        }
        if method == "Chat" {
            // Three messages streamed up, each a 5-byte gRPC prefix and one byte.
            assert_eq!(tag(client, "request_size"), "18");
            assert_eq!(tag(server, "request_size"), "18");
        }
    }
    // The direct Say: a SERVER span joining the b3 the client sent.
    let joined = span(&echo_spans, "/demo.Echo/Say", Some(B3_TRACE));
    assert_eq!(joined.id.to_string(), B3_SPAN);
    assert_eq!(joined.shared, Some(true));
    assert_eq!(tag(joined, "grpc.status_code"), "0");
}
