//! The real `functrace-sidecar` binary, started as its own process on loopback, and small
//! hyper apps to put behind it.
#![allow(dead_code)] // each test file uses its own share

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use functrace_mesh::export::Span;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// How long a test waits for something that should happen at once.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Whether the sidecars of this run serve HTTP/1.1 on their own codec (`SIDECAR_HTTP1`, or
/// else the default, `http1 = "own"`), for the few answers where the two paths differ.
pub fn own_http1() -> bool {
    std::env::var("SIDECAR_HTTP1").map_or(true, |http1| http1 == "own")
}

/// A running sidecar process; killed when dropped unless stopped.
pub struct Sidecar {
    child: Option<Child>,
    pub inbound: Option<SocketAddr>,
    pub outbound: Option<SocketAddr>,
    pub admin: SocketAddr,
    pub spans_file: PathBuf,
    stderr: mpsc::Receiver<String>,
    _dir: tempfile::TempDir,
}

impl Sidecar {
    /// Starts the sidecar with `args`, plus an admin listener and a spans file of its own;
    /// returns once it says `ready`. `SIDECAR_HTTP1` in the environment (`own`, `hyper`)
    /// picks its HTTP/1.1 path (`--http1`), so that the whole suite runs on either.
    pub fn start(args: &[&str]) -> Sidecar {
        let dir = tempfile::tempdir().unwrap();
        let spans_file = dir.path().join("spans.jsonl");
        let http1 = std::env::var("SIDECAR_HTTP1").ok();
        let mut child = Command::new(env!("CARGO_BIN_EXE_functrace-sidecar"))
            .args(args)
            .args(http1.iter().flat_map(|http1| ["--http1", http1.as_str()]))
            .args(["--admin", "127.0.0.1:0", "--spans-file"])
            .arg(&spans_file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("functrace-sidecar starts");
        let stderr = lines_of(child.stderr.take().unwrap());
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (mut inbound, mut outbound, mut admin) = (None, None, None);
        loop {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap() == 0 {
                let errors: Vec<String> = stderr.try_iter().collect();
                panic!("functrace-sidecar {args:?} exited before ready: {errors:?}");
            }
            match line.trim().split_once(' ') {
                Some(("inbound", addr)) => inbound = Some(addr.parse().unwrap()),
                Some(("outbound", addr)) => outbound = Some(addr.parse().unwrap()),
                Some(("admin", addr)) => admin = Some(addr.parse().unwrap()),
                _ if line.trim() == "ready" => break,
                _ => panic!("unexpected line from functrace-sidecar: {line:?}"),
            }
        }
        Sidecar {
            child: Some(child),
            inbound,
            outbound,
            admin: admin.unwrap(),
            spans_file,
            stderr,
            _dir: dir,
        }
    }

    pub fn inbound(&self) -> SocketAddr {
        self.inbound.expect("an inbound listener")
    }

    pub fn outbound(&self) -> SocketAddr {
        self.outbound.expect("an outbound listener")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// A line of `/proc/PID/status`, such as `VmHWM`, in KiB.
    pub fn status_kib(&self, key: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|value| value.trim().trim_end_matches(" kB").parse().ok())
            .unwrap_or_else(|| panic!("no {key} in /proc status"))
    }

    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status();
        assert!(status.unwrap().success(), "kill -{signal} {pid}");
    }

    /// Waits for a stderr line containing `needle`; answers it.
    pub fn stderr_line(&self, needle: &str) -> String {
        loop {
            let line = self
                .stderr
                .recv_timeout(PATIENCE)
                .unwrap_or_else(|_| panic!("no stderr line with {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// SIGTERM, then waits for the exit; answers the status and the spans written.
    pub fn stop(self) -> (ExitStatus, Vec<Span>) {
        self.signal("TERM");
        self.wait()
    }

    /// Waits for the exit (after a signal), for `PATIENCE` at most; answers the status and
    /// the spans written.
    pub fn wait(mut self) -> (ExitStatus, Vec<Span>) {
        let mut child = self.child.take().unwrap();
        let pid = child.id();
        let (exited, exit) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = exited.send(child.wait());
        });
        let Ok(status) = exit.recv_timeout(PATIENCE) else {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("functrace-sidecar did not exit within {PATIENCE:?}");
        };
        (status.unwrap(), read_spans(&self.spans_file))
    }

    /// The admin listener's answer to GET `path`.
    pub fn admin_get(&self, path: &str) -> String {
        let (status, body) = blocking_get(self.admin, path);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// A metric's value by its whole name with labels, as `/metrics` shows it; 0 if absent.
    pub fn metric(&self, name: &str) -> f64 {
        self.admin_get("/metrics")
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    /// Waits until `metric` reads `value` (metrics change just after a response is sent).
    pub fn await_metric(&self, name: &str, value: f64) {
        let deadline = std::time::Instant::now() + PATIENCE;
        while self.metric(name) != value {
            assert!(
                std::time::Instant::now() < deadline,
                "{name} stayed {} (want {value})",
                self.metric(name)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn lines_of(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            eprintln!("[sidecar] {line}");
            if send.send(line).is_err() {
                break;
            }
        }
    });
    receive
}

pub fn read_spans(path: &Path) -> Vec<Span> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect()
}

/// GET over a fresh HTTP/1.1 connection, blocking: (status, body).
pub fn blocking_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    // One write: in pieces, each would wait for the last one's acknowledgement.
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_owned())
}

/// A runtime for the apps and clients of a test, beside the blocking sidecar handles.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A sidecar whose inbound listener sends to `app` over HTTP/1.1 whatever the client's
/// version (`protocol = "http1"`), and the directory of its config.
pub fn sidecar_to_http1(app: SocketAddr) -> (Sidecar, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sidecar.toml");
    std::fs::write(
        &config,
        format!("[[inbound]]\nlisten = \"127.0.0.1:0\"\napp = \"{app}\"\nprotocol = \"http1\"\n"),
    )
    .unwrap();
    (Sidecar::start(&["--config", config.to_str().unwrap()]), dir)
}

/// Runs `curl` with `args` (plus `-s`); answers its stdout.
pub fn curl(args: &[&str]) -> String {
    let output = Command::new("curl")
        .arg("-s")
        .args(args)
        .output()
        .expect("curl is installed");
    assert!(output.status.success(), "curl {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// Serves `handler` (HTTP/1.1 and HTTP/2) on 127.0.0.1:0 until the runtime ends.
pub async fn serve<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let answer = handler(request);
                    async move { Ok::<_, Infallible>(answer.await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// An app that answers its name and the request's headers, one `name: value` per line.
pub async fn echo_app(name: &'static str) -> SocketAddr {
    serve(move |request: Request<Incoming>| async move {
        let mut text = format!("app: {name}\n");
        for (key, value) in request.headers() {
            text.push_str(&format!("{key}: {}\n", value.to_str().unwrap_or("?")));
        }
        Response::new(Full::new(Bytes::from(text)))
    })
    .await
}

/// An app that answers the request's path.
pub async fn path_app() -> SocketAddr {
    serve(|request: Request<Incoming>| async move {
        Response::new(Full::new(Bytes::from(request.uri().path().to_owned())))
    })
    .await
}

/// Header lines of an [`echo_app`] answer, as (name, value).
pub fn echoed(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| line.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The first value of `name` in an [`echo_app`] answer.
pub fn echoed_header(text: &str, name: &str) -> Option<String> {
    echoed(text)
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// A plain HTTP/1.1 client.
pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// An HTTP/2 client (prior knowledge).
pub fn http2_client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// Sends `request` over HTTP/1.1; answers the response with its body read whole.
pub async fn send(request: Request<Full<Bytes>>) -> (Response<()>, String) {
    send_with(&client(), request).await
}

/// Sends `request` with `client`; answers the response with its body read whole.
pub async fn send_with(
    client: &HttpClient,
    request: Request<Full<Bytes>>,
) -> (Response<()>, String) {
    let response = client.request(request).await.expect("the sidecar answers");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        Response::from_parts(parts, ()),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// GET `http://{addr}{path}` with extra headers.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (Response<()>, String) {
    let mut request = Request::get(format!("http://{addr}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(request.body(Full::default()).unwrap()).await
}

/// A body of `left` frames of `chunk` (shared bytes: the client allocates nothing),
/// then its end, or with `stall` nothing more, ever: a client stalled mid-upload.
pub struct Chunks {
    pub chunk: Bytes,
    pub left: usize,
    pub stall: bool,
}

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            return if self.stall {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(None)
            };
        }
        self.left -= 1;
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(self.chunk.clone()))))
    }
}

/// Serves a tower `service` (HTTP/1.1 and HTTP/2) on 127.0.0.1:0 until the runtime ends.
pub async fn serve_tower<S, B>(service: S) -> SocketAddr
where
    S: tower::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let service = hyper_util::service::TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// The end-to-end mesh: a client's request reaches the sidecar's inbound listener, then svca
/// (the `functrace-mesh` layers: the server layer only joins, its client layer reports to
/// `svca`), which calls svcb through the sidecar's outbound listener (`Host: svcb`); svcb
/// (the layers, reporting to `svcb`) answers `answer(request)`. As in the mesh demo, the
/// sidecar records svca's SERVER span. Answers the sidecar, started with `extra` arguments.
pub fn two_services(
    rt: &tokio::runtime::Runtime,
    svca: functrace_mesh::export::Reporter,
    svcb: functrace_mesh::export::Reporter,
    answer: fn(&Request<Incoming>) -> String,
    extra: &[&str],
) -> Sidecar {
    use functrace_mesh::layer::Tracing;
    use tower::{ServiceBuilder, ServiceExt};

    let answer = tower::service_fn(move |request: Request<Incoming>| async move {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(answer(&request)))))
    });
    let svcb = rt.block_on(serve_tower(
        ServiceBuilder::new()
            .layer(Tracing::new("svcb").reporter(svcb).server())
            .service(answer),
    ));
    // svca learns the sidecar's outbound address once the sidecar is up.
    let outbound = std::sync::Arc::new(std::sync::OnceLock::<SocketAddr>::new());
    let outbound_for_svca = outbound.clone();
    let client = ServiceBuilder::new()
        .layer(Tracing::new("svca").reporter(svca).client())
        .service(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());
    let pay = tower::service_fn(move |_: Request<Incoming>| {
        let client = client.clone();
        let outbound = *outbound_for_svca.get().unwrap();
        async move {
            let call = Request::get(format!("http://{outbound}/stock"))
                .header("host", "svcb")
                .body(Full::default())
                .unwrap();
            let answer = client
                .oneshot(call)
                .await
                .expect("svcb through the sidecar");
            let text = answer.into_body().collect().await.unwrap().to_bytes();
            Ok::<_, Infallible>(Response::new(Full::new(text)))
        }
    });
    let svca = rt.block_on(serve_tower(
        ServiceBuilder::new()
            .layer(Tracing::new("svca").server())
            .service(pay),
    ));
    let inbound = format!("127.0.0.1:0={svca}");
    let route = format!("svcb={svcb}");
    let mut args = vec![
        "--service",
        "svca-sidecar",
        "--inbound",
        &inbound,
        "--outbound",
        "127.0.0.1:0",
        "--route",
        &route,
    ];
    args.extend_from_slice(extra);
    let sidecar = Sidecar::start(&args);
    outbound.set(sidecar.outbound()).unwrap();
    sidecar
}

/// The cases of `tests/h1_corpus/KIND` (`request`, `response`): name and bytes, by name.
pub fn h1_corpus(kind: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/h1_corpus")
        .join(kind);
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    cases.sort();
    cases
}
