//! Bad input and failures at `functrace-sidecar`, each over real loopback sockets: a clear
//! answer, nothing lost, never a crash.

mod sidecar_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use functrace_mesh::export::Span;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use sidecar_support::*;

fn tag<'a>(span: &'a Span, key: &str) -> &'a str {
    span.tags.get(key).map_or("", String::as_str)
}

fn write_config(dir: &tempfile::TempDir, text: &str) -> String {
    let path = dir.path().join("sidecar.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Sends raw bytes on a fresh connection; answers everything the sidecar sends back
/// until it closes.
fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(bytes).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// A port nothing listens on.
fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[test]
fn upstream_refusal_reset_and_slowness_get_502_503_504_with_error_spans() {
    let rt = runtime();
    let hanging = rt.block_on(serve(|_request: Request<Incoming>| async {
        std::future::pending::<()>().await;
        unreachable!()
    }));
    // Accepts, reads the request, and closes without answering.
    let resetting = TcpListener::bind("127.0.0.1:0").unwrap();
    let reset_addr = resetting.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in resetting.incoming() {
            let mut stream = stream.unwrap();
            let _ = stream.read(&mut [0; 4096]);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        &dir,
        &format!(
            r#"
[outbound]
listen = "127.0.0.1:0"
[[outbound.route]]
host = "refusing"
backends = [{{ address = "{}" }}]
[[outbound.route]]
host = "resetting"
backends = [{{ address = "{reset_addr}" }}]
[[outbound.route]]
host = "hanging"
timeout_ms = 300
backends = [{{ address = "{hanging}" }}]
"#,
            closed_port()
        ),
    );
    let sidecar = Sidecar::start(&["--config", &config]);
    let out = sidecar.outbound();
    for (host, status, reason) in [
        ("refusing", 503, "upstream connect error"),
        ("resetting", 502, "upstream reset"),
        ("hanging", 504, "upstream timed out after 300 ms"),
    ] {
        let (response, body) = rt.block_on(get(out, "/", &[("host", host)]));
        assert_eq!(response.status(), status, "{host}: {body}");
        let header = response.headers()["x-functrace-reason"].to_str().unwrap();
        assert!(header.starts_with(reason), "{host}: {header}");
        assert!(body.starts_with(reason), "{host}: {body}");
        let metric = format!(
            r#"functrace_sidecar_requests_total{{direction="outbound",route="{host}",version="",code="{status}"}}"#
        );
        sidecar.await_metric(&metric, 1.0);
    }
    let (status, spans) = sidecar.stop();
    assert!(status.success());
    for reason in [
        "upstream connect error",
        "upstream reset",
        "upstream timed out",
    ] {
        assert!(
            spans.iter().any(|s| tag(s, "error").starts_with(reason)),
            "no span with error {reason:?}: {spans:#?}"
        );
    }
}

#[test]
fn malformed_requests_get_400_and_oversized_headers_431() {
    let rt = runtime();
    let app = rt.block_on(echo_app("a"));
    let sidecar = Sidecar::start(&["--inbound", &format!("127.0.0.1:0={app}")]);
    let inbound = sidecar.inbound();
    let garbage = raw_exchange(inbound, b"THIS IS NOT HTTP\r\n\r\n");
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage:?}");
    let bad_header = raw_exchange(
        inbound,
        b"GET / HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n",
    );
    assert!(bad_header.starts_with("HTTP/1.1 400"), "{bad_header:?}");
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nx-big: {}\r\n\r\n",
        "x".repeat(100 * 1024)
    );
    let too_large = raw_exchange(inbound, huge.as_bytes());
    assert!(too_large.starts_with("HTTP/1.1 431"), "{too_large:?}");
    // Still serving.
    let (response, _) = rt.block_on(get(inbound, "/", &[]));
    assert_eq!(response.status(), 200);
    let (status, _) = sidecar.stop();
    assert!(status.success());
}

#[test]
fn slow_clients_get_408_and_an_idle_connection_makes_room_at_the_limit() {
    let rt = runtime();
    let app = rt.block_on(echo_app("a"));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        &dir,
        &format!(
            "[[inbound]]\nlisten = \"127.0.0.1:0\"\napp = \"{app}\"\n\
             [limits]\nmax_connections = 1\nheader_read_timeout_ms = 300\n"
        ),
    );
    let sidecar = Sidecar::start(&["--config", &config]);
    let inbound = sidecar.inbound();

    // Headers never finished: the sidecar answers 408 and closes (here after 300 ms).
    let slow = raw_exchange(inbound, b"GET / HTTP/1.1\r\nHost: a\r\n");
    assert!(slow.starts_with("HTTP/1.1 408"), "{slow:?}");
    sidecar.await_metric("functrace_sidecar_connections_open", 0.0);

    // One connection open and idle: at the limit, it is closed to make room for a second.
    let mut first = TcpStream::connect(inbound).unwrap();
    first.set_read_timeout(Some(PATIENCE)).unwrap();
    first
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let mut answer = [0; 12];
    first.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    let accepted = sidecar.metric("functrace_sidecar_connections_total");
    let (status, _) = blocking_get(inbound, "/");
    assert_eq!(status, 200);
    let mut rest = Vec::new();
    let _ = first.read_to_end(&mut rest);
    assert!(
        !String::from_utf8_lossy(&rest).contains("HTTP/1.1"),
        "the idle first connection was closed, unanswered: {rest:?}"
    );
    sidecar.await_metric("functrace_sidecar_connections_total", accepted + 1.0);
}

#[test]
fn a_client_leaving_mid_upload_cancels_the_upstream_request() {
    client_leaving_mid_upload_cancels_the_upstream_request(false);
}

#[test]
fn an_http2_client_leaving_mid_upload_cancels_the_upstream_stream() {
    client_leaving_mid_upload_cancels_the_upstream_request(true);
}

/// A client sends part of an upload, which reaches the app, then closes its connection: the
/// app's request body fails (the sidecar cancels the upstream request), the span says so,
/// and no connection is left open. The app's side is HTTP/2 when the client's is.
fn client_leaving_mid_upload_cancels_the_upstream_request(http2: bool) {
    let rt = runtime();
    let (events, mut app_events) = tokio::sync::mpsc::unbounded_channel::<String>();
    let app = rt.block_on(serve(move |request: Request<Incoming>| {
        let events = events.clone();
        async move {
            let mut body = request.into_body();
            let outcome = loop {
                match body.frame().await {
                    Some(Ok(_)) => {
                        let _ = events.send("data".into());
                    }
                    Some(Err(err)) => break format!("body failed: {err}"),
                    None => break "body ended".into(),
                }
            };
            let _ = events.send(outcome);
            Response::new(Full::default())
        }
    }));
    let sidecar = Sidecar::start(&["--inbound", &format!("127.0.0.1:0={app}")]);
    let leave: Box<dyn FnOnce()> = if http2 {
        let inbound = sidecar.inbound();
        let exchange = rt.spawn(async move {
            let stream = tokio::net::TcpStream::connect(inbound).await.unwrap();
            let io = hyper_util::rt::TokioIo::new(stream);
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                    .await
                    .unwrap();
            tokio::spawn(connection);
            let request = Request::post("http://a/upload")
                .body(Chunks {
                    chunk: Bytes::from(vec![b'x'; 1000]),
                    left: 1,
                    stall: true,
                })
                .unwrap();
            // Never answered: the app waits for the rest of the body.
            let _ = sender.send_request(request).await;
        });
        // Aborting drops the request, the sender and the connection with its socket.
        Box::new(move || exchange.abort())
    } else {
        let mut client = TcpStream::connect(sidecar.inbound()).unwrap();
        client
            .write_all(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n")
            .unwrap();
        client.write_all(&[b'x'; 1000]).unwrap();
        Box::new(move || drop(client))
    };
    let mut next_event = || {
        rt.block_on(async { tokio::time::timeout(PATIENCE, app_events.recv()).await })
            .expect("the app reports")
            .unwrap()
    };
    // Leave once the upload has reached the app.
    assert_eq!(next_event(), "data");
    leave();
    let outcome = loop {
        match next_event() {
            data if data == "data" => continue,
            outcome => break outcome,
        }
    };
    assert!(outcome.starts_with("body failed"), "{outcome}");
    sidecar.await_metric("functrace_sidecar_connections_open", 0.0);
    let (_, spans) = sidecar.stop();
    assert_eq!(spans.len(), 1, "{spans:#?}");
    assert!(
        tag(&spans[0], "error").starts_with("cancelled"),
        "{:?}",
        spans[0].tags
    );
}

const CHUNK: usize = 256 * 1024;

#[test]
fn a_gibibyte_upload_streams_through_in_constant_memory() {
    upload_streams_through_in_constant_memory(false, 4096);
}

/// A quarter of the HTTP/1.1 upload, as HTTP/2 framing in a debug build streams at a
/// fraction of the speed, and the whole exchange must end within the route's timeout. Four
/// times the memory bound still shows that the body is not held.
#[test]
fn a_256_mib_upload_streams_through_http2_in_constant_memory() {
    upload_streams_through_in_constant_memory(true, 1024);
}

/// `chunks` of [`CHUNK`] bytes; the client's version is the app's too, so that HTTP/2
/// streams under both hops' flow control.
fn upload_streams_through_in_constant_memory(http2: bool, chunks: usize) {
    let rt = runtime();
    let app = rt.block_on(serve(|request: Request<Incoming>| async move {
        let mut body = request.into_body();
        let mut total = 0u64;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                total += data.len() as u64;
            }
        }
        Response::new(Full::new(Bytes::from(total.to_string())))
    }));
    let sidecar = Sidecar::start(&["--inbound", &format!("127.0.0.1:0={app}")]);
    let body = Chunks {
        chunk: Bytes::from(vec![0u8; CHUNK]),
        left: chunks,
        stall: false,
    };
    let request = Request::post(format!("http://{}/upload", sidecar.inbound()))
        .body(body)
        .unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(http2)
        .build_http();
    let answer = rt.block_on(async {
        let response = client.request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        response.into_body().collect().await.unwrap().to_bytes()
    });
    assert_eq!(answer, (CHUNK * chunks).to_string());
    let peak_mib = sidecar.status_kib("VmHWM") / 1024;
    assert!(peak_mib < 64, "the sidecar peaked at {peak_mib} MiB");
    let (_, spans) = sidecar.stop();
    assert_eq!(
        tag(&spans[0], "http.protocol"),
        if http2 { "HTTP/2" } else { "HTTP/1.1" }
    );
    assert_eq!(tag(&spans[0], "request_size"), (CHUNK * chunks).to_string());
}

#[test]
fn sigterm_drains_in_flight_requests_then_flushes_spans_and_exits_0() {
    let rt = runtime();
    let (arrived, mut request_arrived) = tokio::sync::mpsc::unbounded_channel::<()>();
    let release = Arc::new(tokio::sync::Notify::new());
    let release_app = release.clone();
    let app = rt.block_on(serve(move |_request: Request<Incoming>| {
        let (arrived, release) = (arrived.clone(), release_app.clone());
        async move {
            let _ = arrived.send(());
            release.notified().await;
            Response::new(Full::new(Bytes::from("finished")))
        }
    }));
    let sidecar = Sidecar::start(&["--inbound", &format!("127.0.0.1:0={app}")]);
    let in_flight = rt.spawn(get(sidecar.inbound(), "/slow", &[]));
    rt.block_on(request_arrived.recv()).unwrap();
    sidecar.signal("TERM");
    sidecar.stderr_line("draining");
    release.notify_one();
    let (response, body) = rt.block_on(in_flight).unwrap();
    assert_eq!(
        (response.status().as_u16(), body.as_str()),
        (200, "finished")
    );
    let (status, spans) = sidecar.wait();
    assert_eq!(status.code(), Some(0));
    assert_eq!(spans.len(), 1);
    assert_eq!(tag(&spans[0], "http.status_code"), "200");
}

/// The reason header is the same text as the body's first line, so a client that shows
/// either tells the whole story.
#[test]
fn every_local_answer_says_why_in_the_body_and_the_header() {
    let sidecar = Sidecar::start(&["--outbound", "127.0.0.1:0"]);
    let answer = raw_exchange(
        sidecar.outbound(),
        b"GET / HTTP/1.1\r\nHost: nowhere\r\nConnection: close\r\n\r\n",
    );
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let reason = head
        .lines()
        .find_map(|line| line.strip_prefix("x-functrace-reason: "))
        .unwrap();
    assert_eq!(body.trim_end(), reason);
}

/// A raw HTTP/1.1 upstream answering `200 ok` (never `Connection: close`). With `keep`
/// false, each connection answers one request and is closed, unanswered, when the next one
/// arrives on it: as an upstream does whose idle timeout fires as a request is sent. Answers
/// the count of connections it accepted.
fn counting_upstream(keep: bool) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut request = Vec::new();
                let mut buffer = [0; 4096];
                let mut answered = 0;
                while let Ok(read @ 1..) = stream.read(&mut buffer) {
                    request.extend_from_slice(&buffer[..read]);
                    // Requests without a body: each ends with an empty line.
                    while let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        request.drain(..end + 4);
                        if !keep && answered == 1 {
                            return;
                        }
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if stream.write_all(answer).is_err() {
                            return;
                        }
                        answered += 1;
                    }
                }
            });
        }
    });
    (addr, accepted)
}

/// One request on a fresh connection to the sidecar: the whole answer.
fn request_once(sidecar: SocketAddr, method: &str, host: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(sidecar).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let body = if method == "POST" { "x" } else { "" };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn upstream_connections_are_reused_and_replaced_once_the_upstream_closes_them() {
    let (keeping, kept_connections) = counting_upstream(true);
    let (closing, closed_connections) = counting_upstream(false);
    let sidecar = Sidecar::start(&[
        "--outbound",
        "127.0.0.1:0",
        "--route",
        &format!("keeping={keeping}"),
        "--route",
        &format!("closing={closing}"),
    ]);
    const REQUESTS: usize = 20;
    for host in ["keeping", "closing"] {
        for i in 0..REQUESTS {
            let response = request_once(sidecar.outbound(), "GET", host, &format!("/{i}"));
            assert!(
                response.starts_with("HTTP/1.1 200 ") && response.ends_with("\r\n\r\nok"),
                "{host} request {i}: {response:?}"
            );
        }
    }
    // One after another, the requests find the kept connection idle (a second one may open
    // while the first finishes its answer).
    let kept = kept_connections.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&kept),
        "{kept} connections for {REQUESTS} requests"
    );
    // Every GET after the first went out on a kept connection that the upstream closed,
    // and again on a new one.
    assert_eq!(closed_connections.load(Ordering::SeqCst), REQUESTS);
    // A POST is not sent twice: it fails with the connection.
    let post = request_once(sidecar.outbound(), "POST", "closing", "/post");
    assert!(post.starts_with("HTTP/1.1 502 "), "{post:?}");
    assert!(post.contains("upstream reset"), "{post:?}");
    let (status, spans) = sidecar.stop();
    assert!(status.success());
    assert_eq!(spans.len(), 2 * REQUESTS + 1);
    let ok = spans
        .iter()
        .filter(|span| tag(span, "http.status_code") == "200");
    assert_eq!(ok.count(), 2 * REQUESTS);
}

/// An HTTP/2 upstream that serves one request per connection, then closes it gracefully
/// (GOAWAY first); counts the connections it accepted.
async fn one_request_per_connection_http2_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (served, mut serving) = tokio::sync::mpsc::unbounded_channel::<()>();
                let service = hyper::service::service_fn(move |_request| {
                    let _ = served.send(());
                    async {
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(
                            "ok",
                        ))))
                    }
                });
                let connection =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                tokio::pin!(connection);
                tokio::select! {
                    _ = connection.as_mut() => return,
                    _ = serving.recv() => {}
                }
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            });
        }
    });
    (addr, accepted)
}

#[test]
fn http2_upstream_connections_are_replaced_once_the_upstream_closes_them() {
    let rt = runtime();
    let (app, connections) = rt.block_on(one_request_per_connection_http2_upstream());
    let sidecar = Sidecar::start(&["--inbound", &format!("127.0.0.1:0={app}")]);
    let client = http2_client();
    const REQUESTS: usize = 20;
    for i in 0..REQUESTS {
        let request = Request::get(format!("http://{}/{i}", sidecar.inbound()))
            .body(Full::default())
            .unwrap();
        let (response, body) = rt.block_on(send_with(&client, request));
        assert_eq!(
            (response.status().as_u16(), body.as_str()),
            (200, "ok"),
            "request {i}"
        );
    }
    // Each connection served one request, or two: h2 closes gracefully in two steps (a first
    // GOAWAY that still takes streams, then one naming the last), and a request can slip in
    // between. Every later request found the connection closing or closed and went out on a
    // new one, with no failure on the way.
    let opened = connections.load(Ordering::SeqCst);
    assert!(
        opened >= REQUESTS / 2,
        "{opened} connections for {REQUESTS} requests"
    );
    let (status, spans) = sidecar.stop();
    assert!(status.success());
    assert_eq!(spans.len(), REQUESTS);
    assert!(spans
        .iter()
        .all(|span| tag(span, "http.status_code") == "200" && tag(span, "error").is_empty()));
}

/// An HTTP/2 upstream (the `h2` crate's server, which can refuse a stream) that refuses every
/// other stream with REFUSED_STREAM, the first included, and answers the rest `ok`.
async fn refusing_http2_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut connection = h2::server::handshake(stream).await.unwrap();
                let mut streams = 0;
                while let Some(Ok((_request, mut respond))) = connection.accept().await {
                    streams += 1;
                    if streams % 2 == 1 {
                        respond.send_reset(h2::Reason::REFUSED_STREAM);
                        continue;
                    }
                    let mut body = respond.send_response(Response::new(()), false).unwrap();
                    body.send_data(Bytes::from("ok"), true).unwrap();
                }
            });
        }
    });
    addr
}

#[test]
fn a_stream_an_http2_upstream_refuses_goes_again_when_idempotent() {
    let rt = runtime();
    let app = rt.block_on(refusing_http2_upstream());
    let sidecar = Sidecar::start(&["--inbound", &format!("127.0.0.1:0={app}")]);
    let client = http2_client();
    let exchange = |method: http::Method| {
        let request = Request::builder()
            .method(method)
            .uri(format!("http://{}/", sidecar.inbound()))
            .body(Full::default())
            .unwrap();
        let (response, body) = rt.block_on(send_with(&client, request));
        (response.status().as_u16(), body)
    };
    // Refused, then answered on the second attempt.
    assert_eq!(exchange(http::Method::GET), (200, "ok".into()));
    // Refused, and not sent twice.
    let (status, body) = exchange(http::Method::POST);
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("refused stream"), "{body}");
    let (_, spans) = sidecar.stop();
    let statuses: Vec<&str> = spans
        .iter()
        .map(|span| tag(span, "http.status_code"))
        .collect();
    assert_eq!(statuses, ["200", "502"]);
}
