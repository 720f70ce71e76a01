//! HTTP/2 clients in front of an HTTP/1.1 upstream (`protocol = "http1"`): hyper's HTTP/2
//! server reads the request, and the sidecar's own codec (`--http1 own`, the default) or
//! hyper's client (`--http1 hyper`) takes it upstream. A raw upstream on loopback records
//! each request's head and body, and its connection, and answers in the framing the path
//! names; both paths must pass every answer on, send each body in the framing it came in,
//! reuse a connection whose answer ended cleanly and never one with bytes after its answer.

mod sidecar_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use sidecar_support::{
    http2_client, own_http1, runtime, send_with, sidecar_to_http1, Chunks, PATIENCE,
};

/// What the upstream received: on which of its connections (numbered from 0), the head's
/// lines, the body (decoded from its chunks).
#[derive(Debug)]
struct Received {
    connection: usize,
    head: Vec<String>,
    body: Vec<u8>,
}

/// The answer to a request for `path`: its bytes, and whether the connection closes after.
fn answer(path: &str, body: &[u8]) -> (Vec<u8>, bool) {
    let text: &[u8] = match path {
        "/length" => b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-up: 1\r\n\r\nhello",
        "/chunked" => {
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=1\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n"
        }
        "/close" => return (b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nto the end".to_vec(), true),
        "/interim" => b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        "/extra" => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nforged",
        "/malformed" => b"HTTP/1.1 2x0 OK\r\ncontent-length: 2\r\n\r\nok",
        "/no-content" => b"HTTP/1.1 204 No Content\r\n\r\n",
        "/huge-head" => {
            let filler = "x".repeat(1000);
            let fields: String = (0..70).map(|i| format!("x-filler-{i}: {filler}\r\n")).collect();
            let head = format!("HTTP/1.1 200 OK\r\n{fields}content-length: 2\r\n\r\nok");
            return (head.into_bytes(), true);
        }
        _ => {
            let mut echo = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len())
                .into_bytes();
            echo.extend_from_slice(body);
            return (echo, false);
        }
    };
    (text.to_vec(), false)
}

/// The raw upstream: each connection on a thread of its own, each request sent to the
/// returned channel as it is read, then answered.
fn upstream() -> (SocketAddr, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (sender, received) = mpsc::channel();
    std::thread::spawn(move || {
        for (connection, stream) in listener.incoming().enumerate() {
            let (Ok(stream), sender) = (stream, sender.clone()) else {
                continue;
            };
            std::thread::spawn(move || serve(connection, stream, &sender));
        }
    });
    (addr, received)
}

fn serve(connection: usize, stream: TcpStream, received: &mpsc::Sender<Received>) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    while let Some(head) = read_head(&mut reader) {
        let field = |name: &str| {
            head.iter().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_owned())
            })
        };
        let body = if field("transfer-encoding").as_deref() == Some("chunked") {
            read_chunks(&mut reader)
        } else {
            let length = field("content-length").map_or(0, |n| n.parse().unwrap());
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            body
        };
        let path = head[0].split(' ').nth(1).unwrap().to_owned();
        let (bytes, close) = answer(&path, &body);
        let _ = received.send(Received {
            connection,
            head,
            body,
        });
        if writer.write_all(&bytes).is_err() || close {
            return;
        }
    }
}

fn read_head(reader: &mut impl BufRead) -> Option<Vec<String>> {
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            return Some(head);
        }
        head.push(line);
    }
}

fn read_chunks(reader: &mut impl BufRead) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).unwrap();
        let size = usize::from_str_radix(size.trim_end(), 16).unwrap();
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).unwrap();
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

fn next(received: &mpsc::Receiver<Received>) -> Received {
    received
        .recv_timeout(PATIENCE)
        .expect("the upstream gets the request")
}

#[test]
fn answers_in_each_framing_reach_http2_clients() {
    let (app, received) = upstream();
    let (sidecar, _dir) = sidecar_to_http1(app);
    let inbound = sidecar.inbound();
    runtime().block_on(async {
        let client = http2_client();
        for (path, status, body) in [
            ("/length", 200, "hello"),
            ("/chunked", 200, "hello world"),
            ("/close", 200, "to the end"),
            ("/interim", 200, "ok"),
            ("/no-content", 204, ""),
        ] {
            let request = Request::get(format!("http://{inbound}{path}"))
                .body(Full::default())
                .unwrap();
            let (response, text) = send_with(&client, request).await;
            assert_eq!(response.status().as_u16(), status, "{path}");
            assert_eq!(text, body, "{path}");
            assert_eq!(next(&received).head[0], format!("GET {path} HTTP/1.1"));
            if path == "/length" {
                assert_eq!(response.headers()["x-up"], "1");
                assert_eq!(response.headers()["content-length"], "5");
            }
        }
        // HEAD: the answer's length passes, with no body.
        let request = Request::head(format!("http://{inbound}/length"))
            .body(Full::default())
            .unwrap();
        let (response, text) = send_with(&client, request).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-length"], "5");
        assert_eq!(text, "");
    });
}

#[test]
fn request_bodies_go_upstream_in_the_framing_they_came_in() {
    let (app, received) = upstream();
    let (sidecar, _dir) = sidecar_to_http1(app);
    let inbound = sidecar.inbound();
    runtime().block_on(async {
        let field = |head: &[String], name: &str| {
            head.iter()
                .filter(|line| line.to_ascii_lowercase().starts_with(&format!("{name}:")))
                .count()
        };
        // A GET carries no framing; its target and Host go as they came.
        let request = Request::get(format!("http://{inbound}/echo?q=1"))
            .body(Full::default())
            .unwrap();
        send_with(&http2_client(), request).await;
        let got = next(&received);
        assert_eq!(got.head[0], "GET /echo?q=1 HTTP/1.1");
        assert_eq!(field(&got.head, "host"), 1);
        assert_eq!(field(&got.head, "content-length"), 0);
        assert_eq!(field(&got.head, "transfer-encoding"), 0);

        // A body of known length goes with it.
        let request = Request::post(format!("http://{inbound}/echo"))
            .body(Full::new(Bytes::from_static(b"hello world")))
            .unwrap();
        let (response, text) = send_with(&http2_client(), request).await;
        assert_eq!(
            (response.status().as_u16(), text.as_str()),
            (200, "hello world")
        );
        let got = next(&received);
        assert!(
            got.head.contains(&"content-length: 11".to_owned()),
            "{got:?}"
        );
        assert_eq!(field(&got.head, "transfer-encoding"), 0);

        // A body of no declared length goes in chunks, every byte of it.
        let streaming = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http::<Chunks>();
        let body = Chunks {
            chunk: Bytes::from(vec![b'x'; 10_000]),
            left: 5,
            stall: false,
        };
        let request = Request::builder()
            .method(Method::PUT)
            .uri(format!("http://{inbound}/echo"))
            .body(body)
            .unwrap();
        let response = streaming.request(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let echoed = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(echoed.len(), 50_000);
        let got = next(&received);
        assert!(
            got.head.contains(&"transfer-encoding: chunked".to_owned()),
            "{got:?}"
        );
        assert_eq!(field(&got.head, "content-length"), 0);
        assert_eq!(got.body, vec![b'x'; 50_000]);
    });
}

#[test]
fn a_connection_is_kept_only_when_its_answer_ended_cleanly() {
    let (app, received) = upstream();
    let (sidecar, _dir) = sidecar_to_http1(app);
    let inbound = sidecar.inbound();
    runtime().block_on(async {
        let client = http2_client();
        let get = |path: &str| {
            Request::get(format!("http://{inbound}{path}"))
                .body(Full::default())
                .unwrap()
        };
        let mut connections = Vec::new();
        for path in [
            "/length", "/chunked", "/length", "/extra", "/length", "/close", "/length",
        ] {
            let (response, text) = send_with(&client, get(path)).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            // The forged second answer after `/extra`'s is never anyone's.
            assert_ne!(text, "forged");
            connections.push(next(&received).connection);
        }
        // Kept after a length and after chunks; not after bytes nobody asked for, nor
        // after a close.
        let first = connections[0];
        assert_eq!(&connections[..4], &[first; 4], "{connections:?}");
        assert_ne!(connections[4], first, "{connections:?}");
        assert_ne!(connections[6], connections[5], "{connections:?}");
        assert_eq!(connections[5], connections[4], "{connections:?}");
    });
}

#[test]
fn a_malformed_answer_is_a_502_and_the_next_request_is_served() {
    let (app, received) = upstream();
    let (sidecar, _dir) = sidecar_to_http1(app);
    let inbound = sidecar.inbound();
    runtime().block_on(async {
        let client = http2_client();
        let request = Request::get(format!("http://{inbound}/malformed"))
            .body(Full::default())
            .unwrap();
        let (response, _) = send_with(&client, request).await;
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        next(&received);
        // A head over the sidecar's limit (64 KiB) is refused as what it is. (hyper's client
        // reads heads to 400 KiB and passes this one on, which the HTTP/2 client refuses
        // with GOAWAY COMPRESSION_ERROR: not asked on that path.)
        if own_http1() {
            let request = Request::get(format!("http://{inbound}/huge-head"))
                .body(Full::default())
                .unwrap();
            let (response, text) = send_with(&client, request).await;
            assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
            assert!(text.contains("answer head over 65536 bytes"), "{text}");
            next(&received);
        }
        let request = Request::get(format!("http://{inbound}/length"))
            .body(Full::default())
            .unwrap();
        let (response, text) = send_with(&client, request).await;
        assert_eq!(
            (response.status(), text.as_str()),
            (StatusCode::OK, "hello")
        );
    });
    let (_, spans) = sidecar.stop();
    let statuses: Vec<_> = spans
        .iter()
        .filter_map(|span| span.tags.get("http.status_code").cloned())
        .collect();
    let expected: &[&str] = if own_http1() {
        &["502", "502", "200"]
    } else {
        &["502", "200"]
    };
    assert_eq!(statuses, expected);
}

#[test]
fn the_callers_context_and_request_id_go_upstream_once_each() {
    let (app, received) = upstream();
    let (sidecar, _dir) = sidecar_to_http1(app);
    let inbound = sidecar.inbound();
    let trace = "463ac35c9f6413ad48485a3953bb6124";
    runtime().block_on(async {
        let request = Request::get(format!("http://{inbound}/echo"))
            .header("x-b3-traceid", trace)
            .header("x-b3-spanid", "a2fb4a1d1a96d312")
            .header("x-b3-sampled", "1")
            .header("x-request-id", "req-1")
            .header("x-app", "kept")
            .body(Full::default())
            .unwrap();
        let (response, _) = send_with(&http2_client(), request).await;
        assert_eq!(response.status(), StatusCode::OK);
    });
    let got = next(&received);
    let values = |name: &str| -> Vec<String> {
        got.head
            .iter()
            .filter_map(|line| line.split_once(": "))
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.to_owned())
            .collect()
    };
    // Inbound, the sidecar joins the caller's span: the upstream sees the same context.
    assert_eq!(values("x-b3-traceid"), [trace], "{got:?}");
    assert_eq!(values("x-b3-spanid"), ["a2fb4a1d1a96d312"], "{got:?}");
    assert_eq!(values("x-b3-sampled"), ["1"], "{got:?}");
    assert_eq!(values("x-request-id"), ["req-1"], "{got:?}");
    assert_eq!(values("x-app"), ["kept"], "{got:?}");
    assert_eq!(values("host"), [inbound.to_string()], "{got:?}");
}
