//! The sidecar's request path: raw bytes from a client, over loopback, into a running sidecar
//! (inbound or outbound listener, by the first byte) with an app behind it. The client sends
//! the bytes, closes its writing side and reads until the sidecar closes. What comes back must
//! be well-formed: HTTP/1.1 responses, or HTTP/2 frames after an HTTP/2 preface, or nothing
//! (a close). A panic anywhere in the sidecar aborts the process (libfuzzer-sys's panic hook),
//! so it is a crash; so is no close within the deadline.
#![no_main]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo};
use libfuzzer_sys::fuzz_target;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Longer than the sidecar's header timeout (1 s here), well under libFuzzer's `-timeout`.
const DEADLINE: Duration = Duration::from_secs(5);

fuzz_target!(|data: &[u8]| {
    let Some((&which, request)) = data.split_first() else {
        return;
    };
    let [inbound, outbound] = *listeners();
    let listener = if which % 2 == 0 { inbound } else { outbound };
    let (answer, reset) = exchange(listener, request);
    if request.starts_with(PREFACE) {
        check_http2(&answer, reset);
    } else {
        check_http1(&answer, reset);
    }
});

/// Sends `request`, half-closes, reads until the sidecar closes: (what came back, whether
/// the connection ended in a reset rather than a close).
fn exchange(listener: SocketAddr, request: &[u8]) -> (Vec<u8>, bool) {
    let mut stream = TcpStream::connect(listener).expect("the sidecar accepts");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.set_write_timeout(Some(DEADLINE)).unwrap();
    // The sidecar may answer and close before reading everything: a failed write is fine.
    let _ = stream.write_all(request);
    let _ = stream.shutdown(Shutdown::Write);
    let mut answer = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return (answer, false),
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("no close {DEADLINE:?} after the request ended; got {answer:?}")
            }
            Err(_) => return (answer, true),
        }
    }
}

/// One or more HTTP/1.x responses. A reset may cut the last one short.
fn check_http1(mut answer: &[u8], reset: bool) {
    while !answer.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        let head = match response.parse(answer) {
            Ok(httparse::Status::Complete(head)) => head,
            Ok(httparse::Status::Partial) if reset => return,
            other => panic!("not an HTTP/1.1 response ({other:?}): {answer:?}"),
        };
        // HTTP/1.0 requests are answered in HTTP/1.0.
        assert!(matches!(response.version, Some(0 | 1)), "{answer:?}");
        let code = response.code.unwrap();
        assert!((100..=599).contains(&code), "{answer:?}");
        // 499 (the client went away) is for metrics and spans, never for the wire.
        assert_ne!(code, 499, "{answer:?}");
        let header = |name: &str| {
            response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value)
        };
        let body = &answer[head..];
        let length = if matches!(code, 100..=199 | 204 | 304) {
            0
        } else if header("transfer-encoding").is_some() {
            match chunked_length(body) {
                Some(length) => length,
                None if reset => return,
                None => panic!("a malformed chunked body: {answer:?}"),
            }
        } else if let Some(length) = header("content-length") {
            let length: usize = std::str::from_utf8(length).unwrap().parse().unwrap();
            // The answer to a HEAD has a length but no body: either is fine.
            if body.len() < length || !next_is_a_response(&body[length..]) {
                assert!(reset || next_is_a_response(body), "{answer:?}");
                0
            } else {
                length
            }
        } else {
            // Delimited by the close.
            body.len()
        };
        answer = &body[length..];
    }
}

fn next_is_a_response(rest: &[u8]) -> bool {
    rest.is_empty() || rest.starts_with(b"HTTP/1.")
}

/// The length of a chunked body at the start of `body`, trailers included.
fn chunked_length(body: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let line_end = at + body[at..].windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&body[at..line_end]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            // Trailers, then an empty line.
            loop {
                let end = at + body[at..].windows(2).position(|w| w == b"\r\n")?;
                let empty = end == at;
                at = end + 2;
                if empty {
                    return Some(at);
                }
            }
        }
        at += size;
        if body.get(at..at + 2)? != b"\r\n" {
            return None;
        }
        at += 2;
    }
}

/// HTTP/2 frames, the first one the server's SETTINGS. A reset may cut the last one short.
fn check_http2(mut answer: &[u8], reset: bool) {
    let mut first = true;
    while !answer.is_empty() {
        if answer.len() < 9 {
            assert!(reset, "half a frame header: {answer:?}");
            return;
        }
        let length =
            usize::from(answer[0]) << 16 | usize::from(answer[1]) << 8 | usize::from(answer[2]);
        let (kind, stream) = (
            answer[3],
            u32::from_be_bytes(answer[5..9].try_into().unwrap()),
        );
        assert!(
            length <= 16_384,
            "a frame over the default size: {answer:?}"
        );
        if first {
            assert_eq!(
                (kind, stream),
                (4, 0),
                "the first frame is SETTINGS: {answer:?}"
            );
            first = false;
        }
        if answer.len() < 9 + length {
            assert!(reset, "half a frame: {answer:?}");
            return;
        }
        answer = &answer[9 + length..];
    }
}

/// The sidecar's inbound and outbound listeners, started once with an app behind them.
fn listeners() -> &'static [SocketAddr; 2] {
    static LISTENERS: OnceLock<[SocketAddr; 2]> = OnceLock::new();
    LISTENERS.get_or_init(|| {
        // A Rust binary's `main` ignores SIGPIPE, as the sidecar's does; libFuzzer's `main`
        // does not, and a write to a socket the peer closed would end the process.
        // SAFETY: setting a signal's disposition to SIG_IGN, before any other thread runs.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let app = app().await;
                let config = functrace_sidecar::Config::from_toml(&format!(
                    r#"
                    service = "fuzz"
                    [[inbound]]
                    listen = "127.0.0.1:0"
                    app = "{app}"
                    timeout_ms = 2000
                    [outbound]
                    listen = "127.0.0.1:0"
                    allow = ["127.0.0.1"]
                    timeout_ms = 2000
                    [[outbound.route]]
                    host = "app"
                    timeout_ms = 2000
                    backends = [{{ address = "{app}" }}]
                    [tracing]
                    spans_file = "/dev/null"
                    [limits]
                    header_read_timeout_ms = 1000
                    drain_timeout_ms = 100
                    "#
                ))
                .unwrap();
                config.validate().unwrap();
                let running = functrace_sidecar::start(config).await.unwrap();
                let address = |name| running.listeners.iter().find(|l| l.0 == name).unwrap().1;
                send.send([address("inbound"), address("outbound")])
                    .unwrap();
                std::future::pending::<()>().await;
            });
        });
        receive.recv().unwrap()
    })
}

/// An app that reads the request body (up to 1 MiB) and answers its length.
async fn app() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |request: http::Request<hyper::body::Incoming>| async move {
                        let body = Limited::new(request.into_body(), 1 << 20).collect().await;
                        let length = body.map_or(0, |body| body.to_bytes().len());
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::from(length.to_string()),
                        )))
                    },
                );
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    address
}
