//! Hostile clients against the real `functrace-sidecar` process, on loopback: connections
//! that send nothing or too little, floods of idle connections, malformed and smuggled
//! framing, clients and upstreams that leave mid-exchange. Deadlines in these configs are
//! a few hundred milliseconds, so each test is quick; counts are bounded.
//! The numbers in the test names' docs are the findings of issue #16.

mod sidecar_support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use functrace_mesh::export::Span;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use sidecar_support::*;

/// A sidecar in front of `app` with `limits` (TOML lines of `[limits]`) and `inbound`
/// (extra TOML lines of its `[[inbound]]`).
struct Hostile {
    sidecar: Sidecar,
    _dir: tempfile::TempDir,
}

impl Hostile {
    fn start(app: SocketAddr, inbound: &str, limits: &str) -> Hostile {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sidecar.toml");
        let text = format!(
            "[[inbound]]\nlisten = \"127.0.0.1:0\"\napp = \"{app}\"\n{inbound}\n[limits]\n{limits}\n"
        );
        std::fs::write(&path, text).unwrap();
        let sidecar = Sidecar::start(&["--config", path.to_str().unwrap()]);
        Hostile { sidecar, _dir: dir }
    }

    fn inbound(&self) -> SocketAddr {
        self.sidecar.inbound()
    }

    /// The sidecar's open file descriptors.
    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.sidecar.pid()))
            .unwrap()
            .count()
    }

    /// Waits until the sidecar has at most `fds` open.
    fn await_fds_at_most(&self, fds: usize) {
        let deadline = Instant::now() + PATIENCE;
        while self.fds() > fds {
            assert!(
                Instant::now() < deadline,
                "{} fds open, {fds} before",
                self.fds()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

const SHORT: &str = "handshake_timeout_ms = 200\nheader_read_timeout_ms = 200\n\
                     body_timeout_ms = 200\nkeep_alive_timeout_ms = 200\n\
                     http2_idle_timeout_ms = 200\n";

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Everything the sidecar sends on `stream` until it closes (or resets) the connection.
fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(err) if err.kind() == ErrorKind::ConnectionReset => break,
            Err(err) => panic!("the sidecar kept the connection open: {err}"),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// Sends `bytes` on a fresh connection; answers all that comes back until the close.
fn exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = connect(addr);
    stream.write_all(bytes).unwrap();
    read_until_closed(&mut stream)
}

/// What the sidecar sends on `stream` up to `end`, the connection left open.
fn read_until_ending(stream: &mut TcpStream, end: &str) -> String {
    let mut answer = Vec::new();
    let mut chunk = [0; 4096];
    while !answer.ends_with(end.as_bytes()) {
        match stream.read(&mut chunk) {
            Ok(read @ 1..) => answer.extend_from_slice(&chunk[..read]),
            end => panic!("{end:?} after {:?}", String::from_utf8_lossy(&answer)),
        }
    }
    String::from_utf8(answer).unwrap()
}

/// A `POST` of 64 MiB to `path` on a new connection, its body written by a thread until
/// the sidecar stops taking it (the upstream full, or the connection closed): the
/// connection, and the thread.
fn upload(addr: SocketAddr, path: &str) -> (TcpStream, std::thread::JoinHandle<()>) {
    let mut upload = connect(addr);
    let length = 64 << 20;
    let head = format!("POST {path} HTTP/1.1\r\nHost: a\r\nContent-Length: {length}\r\n\r\n");
    upload.write_all(head.as_bytes()).unwrap();
    let mut writer = upload.try_clone().unwrap();
    let writing = std::thread::spawn(move || {
        let chunk = vec![b'x'; 64 << 10];
        for _ in 0..length / chunk.len() {
            if writer.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    (upload, writing)
}

/// A scripted upstream on loopback: each connection it accepts goes, with its number (from
/// 0), to `serve` on a thread of its own. Answers its address.
fn scripted_upstream(serve: impl Fn(usize, TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let app = upstream.local_addr().unwrap();
    let serve = std::sync::Arc::new(serve);
    std::thread::spawn(move || {
        for (n, stream) in upstream.incoming().enumerate() {
            let (serve, stream) = (serve.clone(), stream.unwrap());
            std::thread::spawn(move || serve(n, stream));
        }
    });
    app
}

/// What a scripted upstream reads of a request up to the end of its head (and maybe more);
/// `None` if the connection ends first.
fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut chunk = [0; 4096];
    while !head.windows(4).any(|end| end == b"\r\n\r\n") {
        match stream.read(&mut chunk) {
            Ok(read @ 1..) => head.extend_from_slice(&chunk[..read]),
            _ => return None,
        }
    }
    Some(head)
}

/// The status of each response in `answer`, read one after the other by their lengths.
fn statuses(mut answer: &str) -> Vec<&str> {
    let mut statuses = Vec::new();
    while let Some((head, rest)) = answer.split_once("\r\n\r\n") {
        assert!(head.starts_with("HTTP/1."), "not a response: {answer:?}");
        statuses.push(&head[9..12]);
        // A 1xx answer has no body; another without a length runs to the close.
        let length = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length: "))
            .map_or(rest.len(), |length| length.parse().unwrap());
        let length = if head.as_bytes()[9] == b'1' {
            0
        } else {
            length
        };
        answer = &rest[length..];
    }
    statuses
}

fn tag<'a>(span: &'a Span, key: &str) -> &'a str {
    span.tags.get(key).map_or("", String::as_str)
}

/// 1: connections that send nothing, or part of the HTTP/2 preface, are closed at the
/// handshake deadline; more of them than `max_connections` do not take the listener down.
#[test]
fn connections_that_send_nothing_or_half_a_preface_are_closed_and_do_not_wedge() {
    let rt = runtime();
    let app = rt.block_on(path_app());
    let hostile = Hostile::start(app, "", &format!("{SHORT}max_connections = 20\n"));
    let inbound = hostile.inbound();
    let mut silent: Vec<TcpStream> = (0..60).map(|_| connect(inbound)).collect();
    for stream in silent.iter_mut().step_by(2) {
        stream.write_all(b"PRI * HTTP/2.0\r\n").unwrap();
    }
    // Served at once, though more connections than the limit sit silent.
    let (status, body) = blocking_get(inbound, "/through");
    assert_eq!((status, body.as_str()), (200, "/through"));
    // Each silent one is closed, answered nothing (some made room before the deadline).
    let started = Instant::now();
    for stream in &mut silent {
        assert_eq!(read_until_closed(stream), "");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    hostile
        .sidecar
        .await_metric("functrace_sidecar_connections_open", 0.0);
    assert_eq!(hostile.sidecar.admin_get("/ready"), "ready\n");
}

/// 2: the admin listener has a limit of its own, sheds idle connections, and `/ready`
/// answers through a flood of them, on it and on the proxy listener.
#[test]
fn the_admin_listener_answers_through_floods_of_idle_connections() {
    let rt = runtime();
    let app = rt.block_on(path_app());
    // Long deadlines: only the limits make room here.
    let hostile = Hostile::start(
        app,
        "",
        "max_connections = 50\nadmin_max_connections = 4\nhandshake_timeout_ms = 60000\n",
    );
    let admin = hostile.sidecar.admin;
    let flood: Vec<TcpStream> = (0..300)
        .map(|i| connect(if i % 2 == 0 { admin } else { hostile.inbound() }))
        .collect();
    for _ in 0..3 {
        let (status, body) = blocking_get(admin, "/ready");
        assert_eq!((status, body.as_str()), (200, "ready\n"));
    }
    let (status, _) = blocking_get(hostile.inbound(), "/");
    assert_eq!(status, 200);
    drop(flood);
}

/// At the limit with every connection busy, a new one is refused at once (503), and
/// `/ready` says so; it is ready again when they finish.
#[test]
fn at_the_limit_with_every_connection_busy_new_ones_get_503_and_ready_says_so() {
    let rt = runtime();
    let (release, released) = tokio::sync::watch::channel(false);
    let (arrive, arrived) = std::sync::mpsc::channel();
    let app = rt.block_on(serve(move |_request: Request<Incoming>| {
        let mut released = released.clone();
        let _ = arrive.send(());
        async move {
            let _ = released.wait_for(|released| *released).await;
            Response::new(Full::new(Bytes::from_static(b"done")))
        }
    }));
    let hostile = Hostile::start(app, "", "max_connections = 2\n");
    let inbound = hostile.inbound();
    let mut busy: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut stream = connect(inbound);
            stream
                .write_all(b"GET /wait HTTP/1.1\r\nHost: a\r\n\r\n")
                .unwrap();
            stream
        })
        .collect();
    // Both requests reach the app, and stay there: both connections are busy (one whose
    // request the sidecar had not read yet would be closed to make room).
    for _ in 0..2 {
        arrived
            .recv_timeout(PATIENCE)
            .expect("a request reaches the app");
    }
    let refused = exchange(inbound, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(
        refused.is_empty() || refused.starts_with("HTTP/1.1 503"),
        "{refused:?}"
    );
    let (status, body) = blocking_get(hostile.sidecar.admin, "/ready");
    assert_eq!((status, body.as_str()), (503, "at the connection limit\n"));
    assert_eq!(
        hostile
            .sidecar
            .metric("functrace_sidecar_connections_refused_total"),
        1.0
    );
    release.send(true).unwrap();
    for stream in &mut busy {
        let mut head = [0; 12];
        stream.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
    }
    let (status, _) = blocking_get(hostile.sidecar.admin, "/ready");
    assert_eq!(status, 200);
}

/// Thousands of idle connections, far over a small limit: new requests are still served.
#[test]
fn thousands_of_idle_connections_do_not_keep_requests_out() {
    let rt = runtime();
    let app = rt.block_on(path_app());
    let hostile = Hostile::start(
        app,
        "",
        "max_connections = 64\nhandshake_timeout_ms = 60000\nkeep_alive_timeout_ms = 60000\n",
    );
    let inbound = hostile.inbound();
    // 5000, or as many as this process may open with room to spare.
    functrace_sidecar::open_files::raise_limit();
    let count = open_files_limit().saturating_sub(200).min(5000);
    assert!(
        count >= 500,
        "too few file descriptors for this test: {count}"
    );
    let idle: Vec<TcpStream> = (0..count)
        .map(|_| TcpStream::connect(inbound).unwrap())
        .collect();
    for i in 0..20 {
        let (status, body) = blocking_get(inbound, &format!("/{i}"));
        assert_eq!((status, body), (200, format!("/{i}")));
    }
    assert!(hostile.sidecar.metric("functrace_sidecar_connections_open") <= 64.0);
    let shed = hostile
        .sidecar
        .metric("functrace_sidecar_connections_shed_total");
    assert!(shed >= (count - 64) as f64, "{shed} shed of {count}");
    assert_eq!(hostile.sidecar.admin_get("/ready"), "ready\n");
    drop(idle);
}

/// Out of file descriptors (its limit lowered under it, below what it fitted its connection
/// limit to at start): the sidecar goes on accepting by closing idle connections, answers new
/// requests, and once the flood is gone serves as before, its descriptors back to where they
/// were.
#[test]
fn running_out_of_file_descriptors_sheds_idle_connections_and_recovers() {
    let rt = runtime();
    let app = rt.block_on(path_app());
    let hostile = Hostile::start(app, "", "handshake_timeout_ms = 60000\n");
    let inbound = hostile.inbound();
    // A connection to the app, pooled for the requests below.
    assert_eq!(blocking_get(inbound, "/warm").0, 200);
    hostile
        .sidecar
        .await_metric("functrace_sidecar_connections_open", 0.0);
    let baseline = hostile.fds();
    let lowered = Command::new("prlimit")
        .arg(format!("--pid={}", hostile.sidecar.pid()))
        .arg(format!("--nofile={0}:{0}", baseline + 16))
        .status()
        .expect("prlimit (util-linux) runs");
    assert!(lowered.success());
    let idle: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(inbound).unwrap())
        .collect();
    hostile.sidecar.stderr_line("Too many open files");
    for i in 0..5 {
        let path = format!("/short/{i}");
        assert_eq!(blocking_get(inbound, &path), (200, path));
    }
    drop(idle);
    hostile.await_fds_at_most(baseline);
    for i in 0..5 {
        let path = format!("/after/{i}");
        assert_eq!(blocking_get(inbound, &path), (200, path));
    }
    assert_eq!(hostile.sidecar.admin_get("/ready"), "ready\n");
}

/// This process's soft limit of open files (`/proc/self/limits`).
fn open_files_limit() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|values| values.split_whitespace().next()?.parse().ok())
        .expect("a limit of open files")
}

/// 3: an invalid chunk size is a malformed request: 400, never 499 on the wire.
#[test]
fn an_invalid_chunk_size_gets_400_and_never_499() {
    let rt = runtime();
    let app = rt.block_on(echo_app("a"));
    let hostile = Hostile::start(app, "", "");
    for size in ["zz", "ffffffffffffffffff"] {
        let request = format!(
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{size}\r\nhello\r\n0\r\n\r\n"
        );
        let answer = exchange(hostile.inbound(), request.as_bytes());
        assert_eq!(statuses(&answer), ["400"], "{size}: {answer:?}");
    }
}

/// 4: an HTTP/1.1 request without exactly one Host is answered 400 (RFC 9112 §3.2).
#[test]
fn an_http11_request_without_one_host_gets_400() {
    let rt = runtime();
    let app = rt.block_on(path_app());
    let hostile = Hostile::start(app, "", "");
    let inbound = hostile.inbound();
    for request in [
        "GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
    ] {
        let answer = exchange(inbound, request.as_bytes());
        assert_eq!(statuses(&answer), ["400"], "{request:?}: {answer:?}");
        assert!(answer.contains("exactly one Host"), "{answer:?}");
    }
    // HTTP/1.0 has no Host to require.
    let answer = exchange(inbound, b"GET /old HTTP/1.0\r\n\r\n");
    assert_eq!(statuses(&answer), ["200"], "{answer:?}");
}

/// 5: a transfer coding the sidecar does not know is refused (501), not stripped.
#[test]
fn an_unknown_transfer_coding_gets_501() {
    let rt = runtime();
    let app = rt.block_on(path_app());
    let hostile = Hostile::start(app, "", "");
    let answer = exchange(
        hostile.inbound(),
        b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
          5\r\nhello\r\n0\r\n\r\n",
    );
    assert_eq!(statuses(&answer), ["501"], "{answer:?}");
    assert!(answer.contains("\"gzip\""), "{answer:?}");
}

/// 6: a refused CONNECT closes the connection: the tunnel's bytes are never read as a
/// request.
#[test]
fn a_refused_connect_closes_the_connection() {
    let rt = runtime();
    let app = rt.block_on(path_app());
    let hostile = Hostile::start(app, "", "");
    let answer = exchange(
        hostile.inbound(),
        b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    assert_eq!(statuses(&answer), ["501"], "{answer:?}");
    assert!(!answer.contains("/smuggled"), "{answer:?}");
}

/// 8: a request body that stops coming is the client's fault: 408, and the span says the
/// client was slow, whether nothing more comes for the body timeout or the body is still
/// trickling in at the route's timeout.
#[test]
fn a_slow_request_body_gets_408_and_a_span_that_blames_the_client() {
    let rt = runtime();
    let app = rt.block_on(serve(|request: Request<Incoming>| async move {
        let body = request.into_body().collect().await;
        let status = if body.is_ok() { 200 } else { 500 };
        let mut response = Response::new(Full::default());
        *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
        response
    }));
    let hostile = Hostile::start(app, "timeout_ms = 600", "body_timeout_ms = 200\n");
    let inbound = hostile.inbound();

    // One byte, then nothing.
    let stalled = exchange(
        inbound,
        b"POST /stalled HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nx",
    );
    assert_eq!(statuses(&stalled), ["408"], "{stalled:?}");

    // A byte every 100 ms: never 200 ms without one, still unfinished at the route's 600.
    let mut trickle = connect(inbound);
    trickle
        .write_all(b"POST /trickle HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n")
        .unwrap();
    let writer = trickle.try_clone().unwrap();
    let dripping = std::thread::spawn(move || {
        let mut writer = writer;
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(100));
            if writer.write_all(b"x").is_err() {
                return;
            }
        }
    });
    let answer = read_until_closed(&mut trickle);
    assert_eq!(statuses(&answer), ["408"], "{answer:?}");
    dripping.join().unwrap();

    let (status, spans) = hostile.sidecar.stop();
    assert!(status.success());
    for path in ["/stalled", "/trickle"] {
        let span = spans
            .iter()
            .find(|span| tag(span, "http.path") == path)
            .unwrap_or_else(|| panic!("no span of {path}: {spans:#?}"));
        assert_eq!(tag(span, "http.status_code"), "408");
        assert!(
            tag(span, "error").starts_with("client too slow"),
            "{span:?}"
        );
    }
}

/// An upstream that does not take a request body is the upstream's fault: 504 at the
/// route's timeout, not the client's 408.
#[test]
fn an_upstream_not_taking_the_body_gets_504_not_408() {
    let rt = runtime();
    let app = rt.block_on(serve(|_request: Request<Incoming>| async {
        std::future::pending::<()>().await;
        unreachable!()
    }));
    let hostile = Hostile::start(app, "timeout_ms = 500", "body_timeout_ms = 200\n");
    let (mut upload, writing) = upload(hostile.inbound(), "/big");
    let mut head = [0; 12];
    upload.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 504");
    // Unblocks the writer, whose bytes nobody reads any more (unless the sidecar, which
    // does not read the rest of the body, closed the connection already: the own path).
    let _ = upload.shutdown(std::net::Shutdown::Both);
    writing.join().unwrap();
}

/// 10: keep-alive idle has its own deadline, not the header timeout's; a slowloris head
/// gets 408; the listen backlog is the configured one.
#[test]
fn keep_alive_idle_has_its_own_deadline_and_slowloris_gets_408() {
    let rt = runtime();
    let app = rt.block_on(path_app());
    let hostile = Hostile::start(
        app,
        "",
        "keep_alive_timeout_ms = 200\nheader_read_timeout_ms = 5000\nlisten_backlog = 1500\n",
    );
    let inbound = hostile.inbound();
    let mut kept = connect(inbound);
    kept.write_all(b"GET /once HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let mut head = [0; 12];
    kept.read_exact(&mut head).unwrap();
    let answered = Instant::now();
    let rest = read_until_closed(&mut kept);
    let idle = answered.elapsed();
    assert!(rest.ends_with("/once"), "{rest:?}");
    assert!(
        idle >= Duration::from_millis(150) && idle < Duration::from_millis(2500),
        "closed after {idle:?} idle"
    );

    // The header timeout counts from the request's first byte, and ends in a 408.
    let slowloris = Hostile::start(app, "", "header_read_timeout_ms = 300\n");
    let mut slow = connect(slowloris.inbound());
    let started = Instant::now();
    let mut answer = String::new();
    for line in [
        "GET / HTTP/1.1\r\n",
        "Host: a\r\n",
        "x-a: 1\r\n",
        "x-b: 2\r\n",
    ] {
        if slow.write_all(line.as_bytes()).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    answer.push_str(&read_until_closed(&mut slow));
    assert_eq!(statuses(&answer), ["408"], "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // `ss` shows a listener's backlog as its Send-Q.
    let listing = std::process::Command::new("ss")
        .args(["-ltnH", &format!("sport = :{}", inbound.port())])
        .output()
        .expect("ss is installed");
    let listing = String::from_utf8_lossy(&listing.stdout);
    let send_q = listing.split_whitespace().nth(2);
    assert_eq!(send_q, Some("1500"), "{listing}");
}

/// HTTP/2 connections without a request in flight are closed at their idle deadline.
#[test]
fn an_idle_http2_connection_is_closed_at_its_deadline() {
    let rt = runtime();
    let app = rt.block_on(path_app());
    let hostile = Hostile::start(app, "", "http2_idle_timeout_ms = 200\n");
    let inbound = hostile.inbound();
    rt.block_on(async move {
        let stream = tokio::net::TcpStream::connect(inbound).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .unwrap();
        let connection = tokio::spawn(connection);
        let request = Request::get("http://a/h2")
            .body(Full::<Bytes>::default())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "/h2");
        let idle = Instant::now();
        tokio::time::timeout(PATIENCE, connection)
            .await
            .expect("the idle connection is closed")
            .unwrap()
            .ok();
        assert!(idle.elapsed() >= Duration::from_millis(150));
    });
}

/// Smuggling: a request with both Content-Length and Transfer-Encoding (either order) is
/// answered once and its connection closed: what would have been a second request is never
/// read. hyper's path reads it by its chunks and answers the app's 200; the sidecar's own
/// codec refuses it, 400 (RFC 9112 §6.3 allows either).
#[test]
fn content_length_with_transfer_encoding_smuggles_nothing_in_either_order() {
    let rt = runtime();
    let app = rt.block_on(path_app());
    let hostile = Hostile::start(app, "", "");
    for framing in [
        "Content-Length: 4\r\nTransfer-Encoding: chunked",
        "Transfer-Encoding: chunked\r\nContent-Length: 4",
    ] {
        let request = format!(
            "POST /a HTTP/1.1\r\nHost: a\r\n{framing}\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
        );
        let answer = exchange(hostile.inbound(), request.as_bytes());
        if own_http1() {
            assert_eq!(statuses(&answer), ["400"], "{framing}: {answer:?}");
            assert!(answer.contains("both Content-Length and Transfer-Encoding"));
        } else {
            assert_eq!(statuses(&answer), ["200"], "{framing}: {answer:?}");
            assert!(answer.ends_with("\r\n\r\n/a"), "{answer:?}");
        }
    }
}

/// Pipelined requests are answered each once, in order.
#[test]
fn pipelined_requests_are_answered_in_order() {
    let rt = runtime();
    let app = rt.block_on(path_app());
    let hostile = Hostile::start(app, "", "");
    let answer = exchange(
        hostile.inbound(),
        b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n\
          GET /3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(statuses(&answer), ["200", "200", "200"], "{answer:?}");
    let (one, two, three) = (
        answer.find("/1").unwrap(),
        answer.find("/2").unwrap(),
        answer.find("/3").unwrap(),
    );
    assert!(one < two && two < three, "{answer:?}");
}

/// An app that answers a request body read whole with 1 KiB, and GET /endless with 1 KiB
/// chunks for ever.
async fn endless_app() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|request: Request<Incoming>| async move {
                    let endless = request.uri().path() == "/endless";
                    let _ = request.into_body().collect().await;
                    let left = if endless { usize::MAX } else { 1 };
                    Ok::<_, std::convert::Infallible>(Response::new(Chunks {
                        chunk: Bytes::from_static(&[b'y'; 1024]),
                        left,
                        stall: false,
                    }))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// A client that stops reading a response is cut off once a write has waited
/// `send_timeout_ms`: its descriptors are freed and its span says why.
#[test]
fn a_client_that_stops_reading_is_cut_off_at_the_send_deadline() {
    let rt = runtime();
    let app = rt.block_on(endless_app());
    let hostile = Hostile::start(app, "", "send_timeout_ms = 300\n");
    let inbound = hostile.inbound();
    let (status, _) = blocking_get(inbound, "/warm");
    assert_eq!(status, 200);
    hostile
        .sidecar
        .await_metric("functrace_sidecar_connections_open", 0.0);
    let baseline = hostile.fds();
    let mut stopped_reading = connect(inbound);
    stopped_reading
        .write_all(b"GET /endless HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    hostile
        .sidecar
        .await_metric("functrace_sidecar_connections_open", 0.0);
    hostile.await_fds_at_most(baseline);
    let (status, _) = blocking_get(inbound, "/after");
    assert_eq!(status, 200);
    let (exit, spans) = hostile.sidecar.stop();
    assert!(exit.success());
    let endless: Vec<&Span> = spans
        .iter()
        .filter(|span| tag(span, "http.path") == "/endless")
        .collect();
    assert_eq!(endless.len(), 1, "{spans:?}");
    assert_eq!(tag(endless[0], "http.status_code"), "200");
    assert_eq!(
        tag(endless[0], "error"),
        "cancelled: the client stopped reading the response"
    );
    drop(stopped_reading);
}

/// Clients that leave mid-body or mid-response leave no descriptor open behind them.
#[test]
fn clients_leaving_mid_body_or_mid_response_leave_no_descriptor_open() {
    let rt = runtime();
    // Answers a request body read whole, or an endless response to GET /endless.
    let app = rt.block_on(endless_app());
    let hostile = Hostile::start(app, "", "");
    let inbound = hostile.inbound();
    let (status, _) = blocking_get(inbound, "/warm");
    assert_eq!(status, 200);
    hostile
        .sidecar
        .await_metric("functrace_sidecar_connections_open", 0.0);
    let baseline = hostile.fds();
    for _ in 0..20 {
        let mut upload = connect(inbound);
        upload
            .write_all(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n")
            .unwrap();
        upload.write_all(&[b'x'; 1000]).unwrap();
        let mut download = connect(inbound);
        download
            .write_all(b"GET /endless HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        let mut some = [0; 4096];
        download.read_exact(&mut some).unwrap();
        drop((upload, download));
    }
    hostile.await_fds_at_most(baseline);
    hostile
        .sidecar
        .await_metric("functrace_sidecar_connections_open", 0.0);
    let (status, _) = blocking_get(inbound, "/after");
    assert_eq!(status, 200);
}

/// An upstream that dies mid-response: the client's response ends short and closed, the
/// span says why, and the sidecar serves on.
#[test]
fn an_upstream_dying_mid_response_cuts_the_response_and_the_span_says_so() {
    let dying = TcpListener::bind("127.0.0.1:0").unwrap();
    let app = dying.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in dying.incoming() {
            let mut stream = stream.unwrap();
            let _ = stream.read(&mut [0; 4096]);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nten bytes!");
        }
    });
    let hostile = Hostile::start(app, "", "");
    for _ in 0..2 {
        let answer = exchange(hostile.inbound(), b"GET /dies HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
        assert!(answer.ends_with("ten bytes!"), "{answer:?}");
    }
    let (status, spans) = hostile.sidecar.stop();
    assert!(status.success());
    assert_eq!(spans.len(), 2);
    for span in &spans {
        assert!(
            tag(span, "error").starts_with("upstream body failed"),
            "{span:?}"
        );
    }
}

/// A client that waits for `100 Continue` before its body gets it, then the app's answer to
/// the whole body; nothing waits on a timer.
#[test]
fn a_client_that_expects_100_continue_gets_it_before_it_sends_the_body() {
    let rt = runtime();
    let app = rt.block_on(serve(|request: Request<Incoming>| async move {
        let body = request.into_body().collect().await.unwrap().to_bytes();
        Response::new(Full::new(body))
    }));
    let hostile = Hostile::start(app, "", "");
    let mut stream = connect(hostile.inbound());
    stream
        .write_all(
            b"POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\
              Connection: close\r\n\r\n",
        )
        .unwrap();
    let mut continued = [0; 25];
    stream.read_exact(&mut continued).unwrap();
    assert_eq!(&continued, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"hello").unwrap();
    let answer = read_until_closed(&mut stream);
    assert_eq!(statuses(&answer), ["200"], "{answer:?}");
    assert!(answer.ends_with("\r\n\r\nhello"), "{answer:?}");
}

/// An upstream's interim answer (`100 Continue` before its 200) reaches no HTTP/1.0 client,
/// which knows no 1xx and would take it for the answer (RFC 9110 §15.2); the own path passes
/// it on to HTTP/1.1 clients, hyper's drops it.
#[test]
fn interim_answers_reach_no_http10_client() {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let app = upstream.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in upstream.incoming() {
            let mut stream = stream.unwrap();
            let _ = stream.read(&mut [0; 4096]);
            let _ = stream.write_all(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            );
        }
    });
    let hostile = Hostile::start(app, "", "");
    let answer = exchange(hostile.inbound(), b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(statuses(&answer), ["200"], "{answer:?}");
    assert!(answer.ends_with("\r\n\r\nok"), "{answer:?}");
    let answer = exchange(
        hostile.inbound(),
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    let expected: &[&str] = if own_http1() {
        &["100", "200"]
    } else {
        &["200"]
    };
    assert_eq!(statuses(&answer), expected, "{answer:?}");
}

/// An upstream that closed a kept connection while it was idle may reset it as the next
/// request reaches it (the close and the request cross): that request had no answer and
/// goes again on a new connection, as after a clean close. Here the upstream waits for the
/// second request to arrive and closes without reading it, which makes the kernel reset.
#[test]
fn a_kept_connection_reset_under_the_next_request_sends_it_again() {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let app = upstream.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut answered = 0;
        for stream in upstream.incoming() {
            let mut stream = stream.unwrap();
            let _ = stream.read(&mut [0; 4096]);
            answered += 1;
            let answer = format!("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n{answered}");
            let _ = stream.write_all(answer.as_bytes());
            // The next request on this connection: arrived, left unread, reset.
            let _ = stream.peek(&mut [0; 1]);
        }
    });
    let hostile = Hostile::start(app, "", "");
    let request = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    let first = exchange(hostile.inbound(), request);
    assert_eq!(statuses(&first), ["200"], "{first:?}");
    assert!(first.ends_with("\r\n\r\n1"), "{first:?}");
    let second = exchange(hostile.inbound(), request);
    assert_eq!(statuses(&second), ["200"], "{second:?}");
    assert!(second.ends_with("\r\n\r\n2"), "{second:?}");
}

/// An upstream that sends more than its answer (here a second, forged answer right behind
/// the first) does not get it read as the answer to the next request: the connection the
/// extra bytes came on is not reused.
#[test]
fn bytes_after_an_answer_are_never_the_next_requests_answer() {
    let app = scripted_upstream(|n, mut stream| {
        let mut head = [0; 4096];
        // The first connection adds a forged answer behind its first one.
        let mut forge = n == 0;
        while matches!(stream.read(&mut head), Ok(read) if read > 0) {
            let answer: &[u8] = if forge {
                b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nrealHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged"
            } else {
                b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal"
            };
            forge = false;
            if stream.write_all(answer).is_err() {
                return;
            }
        }
    });
    let hostile = Hostile::start(app, "", "");
    let mut stream = connect(hostile.inbound());
    for _ in 0..3 {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        let mut chunk = [0; 4096];
        while !answer.ends_with(b"real") && !answer.ends_with(b"forged") {
            let read = stream.read(&mut chunk).unwrap();
            assert!(read > 0, "closed: {:?}", String::from_utf8_lossy(&answer));
            answer.extend_from_slice(&chunk[..read]);
        }
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.ends_with("\r\n\r\nreal"), "{answer:?}");
    }
}

/// An upstream whose answer's body stops coming is given up on after `body_timeout_ms`
/// without a byte (the route's timeout ends with the answer's head): what came goes to the
/// client, then the HTTP/1.1 connection closes or the HTTP/2 stream is reset, and the span
/// says why. A body that trickles, never that long without a byte, goes whole.
#[test]
fn an_upstream_body_that_stalls_is_cut_and_one_that_trickles_is_not() {
    let app = scripted_upstream(|_, mut stream| {
        let mut request = [0; 4096];
        while let Ok(read @ 1..) = stream.read(&mut request) {
            let head = String::from_utf8_lossy(&request[..read]).into_owned();
            let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
            if stream.write_all(answer).is_err() {
                return;
            }
            if !head.contains("/trickle") {
                // Two bytes of ten; the connection stays open until the sidecar
                // closes it.
                let _ = stream.write_all(b"ab");
                while matches!(stream.read(&mut request), Ok(read) if read > 0) {}
                return;
            }
            // A byte every 100 ms: a second in all, never 200 ms without one.
            for byte in b"0123456789" {
                std::thread::sleep(Duration::from_millis(100));
                if stream.write_all(&[*byte]).is_err() {
                    return;
                }
            }
        }
    });
    // HTTP/1.1 to the upstream whatever the client speaks.
    let hostile = Hostile::start(app, "protocol = \"http1\"", "body_timeout_ms = 200\n");
    let inbound = hostile.inbound();

    let stalled = exchange(inbound, b"GET /stalled HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(stalled.starts_with("HTTP/1.1 200"), "{stalled:?}");
    assert!(stalled.ends_with("\r\n\r\nab"), "{stalled:?}");

    let mut trickle = connect(inbound);
    trickle
        .write_all(b"GET /trickle HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .unwrap();
    let trickled = read_until_closed(&mut trickle);
    assert!(trickled.ends_with("\r\n\r\n0123456789"), "{trickled:?}");

    let rt = runtime();
    let over_http2 = rt.block_on(async {
        let request = Request::get(format!("http://{inbound}/stalled-h2"))
            .body(Full::default())
            .unwrap();
        let response = http2_client().request(request).await.unwrap();
        assert_eq!(response.status(), 200, "{:?}", response.headers());
        tokio::time::timeout(PATIENCE, response.into_body().collect()).await
    });
    let reset = over_http2.expect("the stream was not reset");
    assert!(reset.is_err(), "the whole body came: {reset:?}");

    let (status, spans) = hostile.sidecar.stop();
    assert!(status.success());
    for (path, error) in [
        ("/stalled", "upstream body failed: no bytes for 200 ms"),
        ("/stalled-h2", "upstream body failed: no bytes for 200 ms"),
        ("/trickle", ""),
    ] {
        let span = spans
            .iter()
            .find(|span| tag(span, "http.path") == path)
            .unwrap_or_else(|| panic!("no span of {path}: {spans:#?}"));
        assert_eq!(tag(span, "http.status_code"), "200", "{span:?}");
        assert_eq!(tag(span, "error"), error, "{span:?}");
    }
}

/// An upstream's answer head past `max_header_bytes` is refused with a 502, whichever client
/// takes the request upstream (the own codec's; hyper's, with `SIDECAR_HTTP1=hyper`; the own
/// one under hyper's server, from HTTP/2 clients): the sidecar holds no more of an answer's
/// head than of a request's.
#[test]
fn an_upstream_answer_head_past_the_limit_is_a_502() {
    let app = scripted_upstream(|_, mut stream| {
        let mut request = [0; 4096];
        if let Ok(1..) = stream.read(&mut request) {
            let big = "a".repeat(20 * 1024);
            let answer = format!("HTTP/1.1 200 OK\r\nx-big: {big}\r\nContent-Length: 2\r\n\r\nok");
            let _ = stream.write_all(answer.as_bytes());
            while matches!(stream.read(&mut request), Ok(read) if read > 0) {}
        }
    });
    let hostile = Hostile::start(app, "protocol = \"http1\"", "max_header_bytes = 8192\n");
    let inbound = hostile.inbound();
    let answer = exchange(
        inbound,
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 502"), "{answer:?}");
    let rt = runtime();
    let status = rt.block_on(async {
        let request = Request::get(format!("http://{inbound}/"))
            .body(Full::default())
            .unwrap();
        http2_client().request(request).await.unwrap().status()
    });
    assert_eq!(status, 502);
}

/// A scripted upstream's connection held open (the upstream reading no more of it) until the
/// test releases it, or `PATIENCE` at most.
#[derive(Clone, Default)]
struct Held(std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

impl Held {
    /// On the upstream's thread: waits for the release.
    fn wait(&self) {
        let (released, changed) = &*self.0;
        let guard = released.lock().unwrap();
        let _ = changed.wait_timeout_while(guard, PATIENCE, |released| !*released);
    }

    fn release(&self) {
        let (released, changed) = &*self.0;
        *released.lock().unwrap() = true;
        changed.notify_all();
    }
}

/// An upstream may refuse a request before it has its body (413, 401) and read no more of
/// it: its answer reaches the client at once, and the connection closes after it (the rest
/// of the body unread), rather than a 504 at the route's timeout once the body stops
/// going. From HTTP/1.1 clients (the own codec's client, or hyper's with
/// `SIDECAR_HTTP1=hyper`) and HTTP/2 clients (the own client under hyper's server).
#[test]
fn an_answer_before_the_whole_body_reaches_the_client_at_once() {
    let held = Held::default();
    let released = held.clone();
    let app = scripted_upstream(move |_, mut stream| {
        if read_head(&mut stream).is_none() {
            return;
        }
        let refusal = b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\n\r\ntoo big\n";
        let _ = stream.write_all(refusal);
        // Holds the connection open, reading no more of the body, until the test is done.
        held.wait();
    });
    // A 504 would come at the route's timeout: 10 s.
    let hostile = Hostile::start(app, "protocol = \"http1\"\ntimeout_ms = 10000", "");
    let inbound = hostile.inbound();

    let (mut upload, writing) = upload(inbound, "/upload");
    let answer = read_until_ending(&mut upload, "too big\n");
    assert_eq!(statuses(&answer), ["413"], "{answer:?}");
    if own_http1() {
        // (hyper's server closes it once hyper's client is done sending the body: when
        // the upstream lets go of its connection.)
        assert!(answer.contains("connection: close\r\n"), "{answer:?}");
        assert_eq!(read_until_closed(&mut upload), "");
    }
    let _ = upload.shutdown(std::net::Shutdown::Both);
    writing.join().unwrap();

    let rt = runtime();
    let status = rt.block_on(async {
        let body = Full::new(Bytes::from(vec![b'x'; 64 << 20]));
        let request = Request::post(format!("http://{inbound}/upload-h2"))
            .body(body)
            .unwrap();
        http2_client().request(request).await.unwrap().status()
    });
    assert_eq!(status, 413);

    released.release();
    let (status, spans) = hostile.sidecar.stop();
    assert!(status.success());
    for path in ["/upload", "/upload-h2"] {
        let span = spans
            .iter()
            .find(|span| tag(span, "http.path") == path)
            .unwrap_or_else(|| panic!("no span of {path}: {spans:#?}"));
        assert_eq!(tag(span, "http.status_code"), "413", "{span:?}");
    }
}

/// An upstream that answers 2xx before it has the body, then reads it, gets the whole body:
/// only a refusal (300 or more) stops the body early.
#[test]
fn an_early_2xx_answer_still_gets_the_whole_body() {
    let app = scripted_upstream(|_, mut stream| {
        let mut read = Vec::new();
        let mut chunk = [0; 64 << 10];
        let end = loop {
            if let Some(end) = read.windows(4).position(|end| end == b"\r\n\r\n") {
                break end + 4;
            }
            match stream.read(&mut chunk) {
                Ok(n @ 1..) => read.extend_from_slice(&chunk[..n]),
                _ => return,
            }
        };
        let head = String::from_utf8_lossy(&read[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        // The answer's head first, then the body is read.
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        let mut body = read.len() - end;
        while body < length {
            match stream.read(&mut chunk) {
                Ok(n @ 1..) => body += n,
                _ => break,
            }
        }
        let count = format!("received {body}");
        let answer = format!("{:x}\r\n{count}\r\n0\r\n\r\n", count.len());
        let _ = stream.write_all(answer.as_bytes());
    });
    let hostile = Hostile::start(app, "protocol = \"http1\"\ntimeout_ms = 10000", "");
    let inbound = hostile.inbound();
    // More than loopback's socket buffers hold: the answer's head comes while the body goes.
    let length = 32 << 20;

    let mut upload = connect(inbound);
    let writer = upload.try_clone().unwrap();
    let writing = std::thread::spawn(move || {
        let mut writer = writer;
        let head = format!("POST /stream HTTP/1.1\r\nHost: a\r\nContent-Length: {length}\r\n\r\n");
        writer.write_all(head.as_bytes()).unwrap();
        writer.write_all(&vec![b'x'; length]).unwrap();
    });
    let answer = read_until_ending(&mut upload, "0\r\n\r\n");
    writing.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(
        answer.contains(&format!("received {length}\r\n")),
        "{answer:?}"
    );

    let rt = runtime();
    let (response, body) = rt.block_on(async {
        let request = Request::post(format!("http://{inbound}/stream-h2"))
            .body(Full::new(Bytes::from(vec![b'x'; length])))
            .unwrap();
        send_with(&http2_client(), request).await
    });
    assert_eq!(response.status(), 200);
    assert_eq!(body, format!("received {length}"));
}

/// RFC 9112 §9.6: a connection the sidecar closes while the client is still sending is
/// closed in stages: its write side first, then what still comes is read and dropped until
/// the client closes (or for a while). Closed at once with bytes unread, the socket would
/// be reset, and a reset throws away what the kernel has not sent yet: the end of the last
/// answer. Here, an upstream's early 413 (the request body left unread, so the connection
/// closes after it) to a client with a small receive window that reads the answer only
/// once it has sent its whole body: it gets the whole answer, then the end. (On hyper's
/// HTTP/1.1 path, `SIDECAR_HTTP1=hyper`, the connection stays open after such an answer,
/// the body read on: nothing is closed mid-upload there.)
#[test]
fn the_last_answer_of_a_connection_closed_mid_upload_is_not_lost_to_a_reset() {
    if !own_http1() {
        return;
    }
    const ANSWER: usize = 16 << 10;
    let held = Held::default();
    let released = held.clone();
    let app = scripted_upstream(move |_, mut stream| {
        if read_head(&mut stream).is_none() {
            return;
        }
        let refusal = format!("HTTP/1.1 413 Content Too Large\r\nContent-Length: {ANSWER}\r\n\r\n");
        let _ = stream.write_all(refusal.as_bytes());
        let _ = stream.write_all(&[b'!'; ANSWER]);
        // Holds the connection open, reading no more of the body, until the test is done:
        // the body cannot all go before the sidecar sees the answer (and then the
        // connection would rightly stay open), nor is the answer cut by a reset.
        held.wait();
    });
    let hostile = Hostile::start(app, "protocol = \"http1\"", "");
    let rt = runtime();
    let client = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.connect(hostile.inbound()).await.unwrap()
    });
    let mut client = client.into_std().unwrap();
    client.set_nonblocking(false).unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();

    let length = 16 << 20;
    let head = format!("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: {length}\r\n\r\n");
    client.write_all(head.as_bytes()).unwrap();
    // The whole body, or as much as goes before the sidecar resets the connection.
    let chunk = vec![b'x'; 64 << 10];
    for _ in 0..length / chunk.len() {
        if client.write_all(&chunk).is_err() {
            break;
        }
    }
    let mut answer = Vec::new();
    let ending = client.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    let whole = answer.ends_with(&"!".repeat(ANSWER));
    let shown = answer.replace(&"!".repeat(1024), "(1 KiB of !)");
    assert!(whole && ending.is_ok(), "{ending:?} after {shown:?}");
    assert_eq!(statuses(&answer), ["413"], "{answer:?}");
    released.release();
}

/// An upstream that answers whole before it has the body, and reads the body after: the
/// body goes on at the client's pace, longer than the head deadline, and its bytes are
/// never taken for the next request's head (which would end in a stray 408 after the
/// answer). The connection then serves the next request. (hyper's HTTP/1.1 path sends such
/// an answer as it comes; the own path after the body.)
#[test]
fn a_body_still_coming_after_its_answer_is_not_taken_for_the_next_head() {
    let app = scripted_upstream(|_, mut stream| {
        let mut read = Vec::new();
        let mut chunk = [0; 4096];
        loop {
            let Some(end) = read.windows(4).position(|end| end == b"\r\n\r\n") else {
                match stream.read(&mut chunk) {
                    Ok(n @ 1..) => read.extend_from_slice(&chunk[..n]),
                    _ => return,
                }
                continue;
            };
            let head = String::from_utf8_lossy(&read[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length: "))
                .map_or(0, |length| length.parse().unwrap());
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            read.drain(..end + 4);
            while read.len() < length {
                match stream.read(&mut chunk) {
                    Ok(n @ 1..) => read.extend_from_slice(&chunk[..n]),
                    _ => return,
                }
            }
            read.drain(..length);
        }
    });
    let hostile = Hostile::start(app, "protocol = \"http1\"\ntimeout_ms = 10000", SHORT);
    let mut client = connect(hostile.inbound());
    client
        .write_all(b"POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: 8\r\n\r\n")
        .unwrap();
    // Eight bytes, 100 ms apart: within the body's deadline (200 ms) each, past the head's
    // (200 ms) in all.
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(100));
        client.write_all(b"x").unwrap();
    }
    client
        .write_all(b"GET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .unwrap();
    let answers = read_until_closed(&mut client);
    assert_eq!(statuses(&answers), ["200", "200"], "{answers:?}");
}
