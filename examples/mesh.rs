//! The Istio walkthrough on one machine: `svca` (`/pay`) calls `svcb` (`/notify`), which calls
//! `msgd` (`/send`), a service outside the mesh that `svcb` may reach only through an egress
//! rule. Every service is its own process behind its own `functrace-sidecar` process, all on
//! loopback. The demo shows the egress failure first, adds the rule, shifts `svcb` traffic from
//! v1 to v2 (100/0, 50/50, 0/100) by reloading svca's sidecar, and then follows one request
//! across every service: its function trace lines, grepped by trace id, and its spans (the
//! apps' and the sidecars') drawn as one tree. svcb v2 calls msgd over gRPC (tonic) where v1
//! uses HTTP, so the same trace crosses both.
//!
//! ```text
//! cargo run --example mesh --features trace [-- --keep DIR]
//! ```
//!
//! `--keep DIR` leaves the spans files and logs in DIR. The apps are this same binary, started
//! as `mesh app NAME VERSION SPANS_FILE`; the demo finds (and builds, if needed) the sidecar
//! next to its own binary, or takes it from `FUNCTRACE_SIDECAR`.
//!
//! `mesh serve NAME VERSION` runs one app in a container beside its sidecar (the manifests of
//! `deploy/kubernetes/`), set by its environment: `LISTEN` (default `0.0.0.0:8080`),
//! `HTTP_PROXY` (the sidecar's outbound listener, `http://127.0.0.1:15001`), `MSGD` (svcb's
//! `HOST:PORT` of msgd) and `ZIPKIN` (the collector of its spans, else JSON lines on stdout);
//! it stops on SIGTERM or SIGINT.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use functrace::trace;
use functrace_mesh::export::Reporter;
use functrace_mesh::layer::{TracedClient, Tracing};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tonic::transport::{Channel, Endpoint};
use tower::{ServiceBuilder, ServiceExt};

#[path = "common/text_codec.rs"]
mod text_codec;
use text_codec::TextCodec;

// ---------------------------------------------------------------------------------------
// The apps: small axum services with traced functions.

type HttpClient = TracedClient<Client<HttpConnector, Full<Bytes>>>;

/// What an app needs to call out: its sidecar's outbound listener.
#[derive(Clone)]
struct Outbound {
    client: HttpClient,
    /// gRPC to msgd, through the same listener (`:authority` names msgd).
    grpc: Option<tonic::client::Grpc<TracedClient<Channel>>>,
    sidecar: SocketAddr,
}

impl Outbound {
    /// GET `path` on `host` through the sidecar (the target named in `Host`, as with Istio):
    /// the status and the answer's text.
    async fn get(&self, host: &str, path: &str) -> (u16, String) {
        let request = http::Request::get(format!("http://{}{path}", self.sidecar))
            .header(http::header::HOST, host)
            .body(Full::default())
            .expect("request");
        match self.client.clone().oneshot(request).await {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.into_body().collect().await;
                let body = body.map(|b| b.to_bytes()).unwrap_or_default();
                (status, String::from_utf8_lossy(&body).trim().to_owned())
            }
            Err(err) => (502, format!("sidecar unreachable: {err:?}")),
        }
    }
}

#[trace]
async fn pay(outbound: Outbound) -> (http::StatusCode, String) {
    let receipt = charge_card(17);
    let (status, notified) = notify_payee(&outbound).await;
    let trace = functrace::current_context().map(|c| c.trace_id.to_string());
    let text = format!(
        "{receipt}; {notified} [trace {}]",
        trace.unwrap_or_default()
    );
    (http::StatusCode::from_u16(status).unwrap_or_default(), text)
}

#[trace]
fn charge_card(amount: u32) -> String {
    format!("charged {amount}")
}

#[trace]
async fn notify_payee(outbound: &Outbound) -> (u16, String) {
    outbound.get("svcb", "/notify").await
}

#[trace]
async fn notify(
    outbound: Outbound,
    version: &'static str,
    msgd: String,
) -> (http::StatusCode, String) {
    let message = render_message(version);
    let (status, sent) = deliver(&outbound, &msgd, message).await;
    if status == 200 {
        (http::StatusCode::OK, format!("svcb {version}: {sent}"))
    } else {
        let text = format!("svcb {version}: msgd unreachable ({status}: {sent})");
        (http::StatusCode::BAD_GATEWAY, text)
    }
}

#[trace]
fn render_message(version: &str) -> String {
    format!("payment received (template {version})")
}

#[trace]
async fn deliver(outbound: &Outbound, msgd: &str, message: String) -> (u16, String) {
    let (status, answer) = match &outbound.grpc {
        Some(grpc) => send_over_grpc(grpc.clone(), message.clone()).await,
        None => outbound.get(msgd, "/send").await,
    };
    (status, format!("{answer} <{message}>"))
}

/// `/msgd.Messages/Send`; a gRPC failure is reported as the HTTP status a gateway would give.
#[trace]
async fn send_over_grpc(
    mut grpc: tonic::client::Grpc<TracedClient<Channel>>,
    message: String,
) -> (u16, String) {
    let path = http::uri::PathAndQuery::from_static("/msgd.Messages/Send");
    let sent = match grpc.ready().await {
        Ok(()) => {
            grpc.unary(tonic::Request::new(message), path, TextCodec)
                .await
        }
        Err(err) => Err(tonic::Status::unavailable(err.to_string())),
    };
    match sent {
        Ok(answer) => (200, answer.into_inner()),
        Err(status) => (
            502,
            format!("gRPC {:?}: {}", status.code(), status.message()),
        ),
    }
}

#[trace]
async fn send() -> String {
    format!("message {} sent", queue_message())
}

#[trace]
async fn send_grpc(
    _message: tonic::Request<String>,
) -> Result<tonic::Response<String>, tonic::Status> {
    Ok(tonic::Response::new(format!(
        "message {} sent over gRPC",
        queue_message()
    )))
}

#[trace]
fn queue_message() -> u32 {
    42
}

/// Where an app gets its settings and when it stops.
enum Run {
    /// `mesh app NAME VERSION SPANS_FILE`: serves NAME on 127.0.0.1:0, prints `listening ADDR`,
    /// then reads `outbound ADDR` and `msgd HOST:PORT` lines from stdin; exits when stdin
    /// closes.
    Demo(PathBuf),
    /// `mesh serve NAME VERSION`: from the environment (see the top of this file); exits on
    /// SIGTERM or SIGINT.
    Container,
}

fn app(name: &'static str, version: &'static str, run: Run) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async move {
        let reporter = match &run {
            Run::Demo(spans) => Reporter::builder(name).json_lines(spans),
            Run::Container => match std::env::var("ZIPKIN") {
                Ok(url) => Reporter::builder(name).collector(url),
                Err(_) => Reporter::builder(name).stdout(),
            },
        };
        let reporter = reporter.build().expect("span export");
        // Dropped at the end of this block, once stopped: every span written.
        let _spans = reporter.install();
        // Behind a sidecar, the sidecar records the SERVER span: the app's server layer only
        // joins the context (no reporter), its client layer records CLIENT spans.
        let server = Tracing::new(name);
        let client_tracing = Tracing::new(name).reporter(reporter.clone());
        let listen = match run {
            Run::Demo(_) => "127.0.0.1:0".to_owned(),
            Run::Container => std::env::var("LISTEN").unwrap_or_else(|_| "0.0.0.0:8080".into()),
        };
        let listener = tokio::net::TcpListener::bind(&listen).await.expect("bind");
        println!("listening {}", listener.local_addr().expect("address"));
        let (sidecar, msgd) = match run {
            Run::Demo(_) => read_settings(),
            Run::Container => settings_from_env(),
        };
        // v2 calls msgd over gRPC: an HTTP/2 channel to the sidecar, `:authority` msgd's.
        let grpc = (version == "v2" && !msgd.is_empty()).then(|| {
            let origin = format!("http://{msgd}").parse().expect("msgd address");
            let channel = Endpoint::from_shared(format!("http://{sidecar}"))
                .expect("sidecar address")
                .origin(origin)
                .connect_lazy();
            let traced = ServiceBuilder::new()
                .layer(client_tracing.client())
                .service(channel);
            tonic::client::Grpc::new(traced)
        });
        let outbound = Outbound {
            client: ServiceBuilder::new()
                .layer(client_tracing.client())
                .service(Client::builder(TokioExecutor::new()).build_http()),
            grpc,
            sidecar,
        };
        let router = match name {
            "svca" => Router::new().route("/pay", get(move || pay(outbound.clone()))),
            "svcb" => Router::new().route(
                "/notify",
                get(move || notify(outbound.clone(), version, msgd.clone())),
            ),
            _ => Router::new().route("/send", get(send)).route_service(
                "/msgd.Messages/Send",
                tower::service_fn(|request: http::Request<axum::body::Body>| async move {
                    let handler = tower::service_fn(send_grpc);
                    let response = tonic::server::Grpc::new(TextCodec)
                        .unary(handler, request)
                        .await;
                    Ok::<_, std::convert::Infallible>(response)
                }),
            ),
        };
        let service = ServiceBuilder::new().layer(server.server()).service(router);
        let serving = async move {
            while let Ok((stream, _)) = listener.accept().await {
                let service = hyper_util::service::TowerToHyperService::new(service.clone());
                tokio::spawn(async move {
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        };
        tokio::select! {
            _ = serving => {}
            _ = stopped(&run) => {}
        }
    });
}

/// The demo closes stdin to stop the app (also when the demo itself dies); Kubernetes sends
/// SIGTERM, a terminal SIGINT.
async fn stopped(run: &Run) {
    match run {
        Run::Demo(_) => {
            let _ = tokio::task::spawn_blocking(|| {
                let mut line = String::new();
                while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
                    line.clear();
                }
            })
            .await;
        }
        Run::Container => {
            use tokio::signal::unix::{signal, SignalKind};
            let mut terminate = signal(SignalKind::terminate()).expect("a SIGTERM handler");
            let mut interrupt = signal(SignalKind::interrupt()).expect("a SIGINT handler");
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        }
    }
}

/// In a container: the sidecar's outbound listener from `HTTP_PROXY` (`http://ADDR`, as
/// Kubernetes manifests set it for every client in the pod), and msgd from `MSGD`.
fn settings_from_env() -> (SocketAddr, String) {
    let proxy = std::env::var("HTTP_PROXY")
        .or_else(|_| std::env::var("http_proxy"))
        .expect("HTTP_PROXY: the sidecar's outbound listener");
    let sidecar = proxy
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|_| panic!("HTTP_PROXY={proxy:?} is not http://IP:PORT"));
    (sidecar, std::env::var("MSGD").unwrap_or_default())
}

/// The `outbound ADDR` and `msgd HOST:PORT` lines the demo sends once the sidecar is up.
fn read_settings() -> (SocketAddr, String) {
    let mut outbound = None;
    let mut msgd = String::new();
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("stdin");
        match line.split_once(' ') {
            Some(("outbound", addr)) => outbound = Some(addr.parse().expect("outbound address")),
            Some(("msgd", addr)) => msgd = addr.to_owned(),
            _ if line == "go" => break,
            _ => panic!("unexpected setting {line:?}"),
        }
    }
    (outbound.expect("an outbound address"), msgd)
}

// ---------------------------------------------------------------------------------------
// The demo: processes, configs, requests, and what they show.

/// Every child's pid, for stopping them all when the demo is interrupted.
static CHILDREN: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

/// On Ctrl-C or SIGTERM: stops every child (SIGTERM), then exits. A Ctrl-C at a terminal
/// reaches the children too; this covers a signal sent to the demo alone.
fn stop_children_on_signal(runtime: &tokio::runtime::Runtime) {
    runtime.spawn(async {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut interrupt), Ok(mut terminate)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        let children = CHILDREN.lock().map(|c| c.clone()).unwrap_or_default();
        for pid in children {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        eprintln!("mesh demo: interrupted; stopped every process");
        std::process::exit(130);
    });
}

/// A child process, stopped when dropped: apps by closing their stdin, sidecars by SIGTERM.
struct Process {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    /// stderr lines of a sidecar, for its `config reloaded`.
    stderr: Option<mpsc::Receiver<String>>,
}

impl Process {
    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("an app");
        writeln!(stdin, "{line}").expect("the app reads its stdin");
    }

    fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status();
    }

    /// Waits for a stderr line containing `needle` (a sidecar's).
    fn await_stderr(&self, needle: &str) -> String {
        let lines = self.stderr.as_ref().expect("a sidecar");
        loop {
            match lines.recv_timeout(Duration::from_secs(30)) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("{}: no {needle:?} on stderr", self.name),
            }
        }
    }

    fn stop(&mut self) {
        if self.stdin.take().is_none() {
            self.signal("TERM");
        }
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where the demo keeps its files, and the processes it started.
struct Mesh {
    dir: PathBuf,
    sidecar_binary: PathBuf,
    processes: Vec<Process>,
}

/// An app and its sidecar's addresses.
struct Service {
    app: SocketAddr,
    inbound: SocketAddr,
    outbound: SocketAddr,
    /// Index of its sidecar in `Mesh::processes`.
    sidecar: usize,
    config: PathBuf,
}

impl Mesh {
    fn log(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.log"))
    }

    /// Starts an app process; answers its address.
    fn start_app(&mut self, name: &str, version: &str) -> (SocketAddr, usize) {
        let spans = self.dir.join(format!("{name}-{version}.app.jsonl"));
        let mut child = Command::new(std::env::current_exe().expect("own binary"))
            .args(["app", name, version])
            .arg(&spans)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(File::create(self.log(&format!("{name}-{version}"))).expect("log file"))
            .spawn()
            .expect("start app");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let stdin = child.stdin.take();
        let first = stdout
            .lines()
            .next()
            .and_then(Result::ok)
            .unwrap_or_default();
        let addr = first
            .strip_prefix("listening ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("{name}: {first:?}"));
        CHILDREN.lock().expect("pids").push(child.id());
        self.processes.push(Process {
            name: format!("{name} {version}"),
            child,
            stdin,
            stderr: None,
        });
        (addr, self.processes.len() - 1)
    }

    /// Starts a sidecar with `config` (TOML); answers its listeners.
    fn start_sidecar(
        &mut self,
        name: &str,
        config: &str,
    ) -> (SocketAddr, SocketAddr, usize, PathBuf) {
        let path = self.dir.join(format!("{name}.sidecar.toml"));
        std::fs::write(&path, config).expect("config file");
        let mut child = Command::new(&self.sidecar_binary)
            .arg("--config")
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start functrace-sidecar");
        let (send, receive) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        let (mut inbound, mut outbound) = (None, None);
        for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
            let line = line.expect("sidecar stdout");
            match line.split_once(' ') {
                Some(("inbound", addr)) => inbound = addr.parse().ok(),
                Some(("outbound", addr)) => outbound = addr.parse().ok(),
                _ if line == "ready" => break,
                _ => {}
            }
        }
        CHILDREN.lock().expect("pids").push(child.id());
        self.processes.push(Process {
            name: format!("{name} sidecar"),
            child,
            stdin: None,
            stderr: Some(receive),
        });
        let index = self.processes.len() - 1;
        (
            inbound.expect("inbound"),
            outbound.expect("outbound"),
            index,
            path,
        )
    }

    /// An app and its sidecar; the app then learns its outbound address.
    fn start_service(&mut self, name: &str, version: &str, msgd: Option<SocketAddr>) -> Service {
        let (app, app_index) = self.start_app(name, version);
        let spans = self.dir.join(format!("{name}-{version}.sidecar.jsonl"));
        let config = sidecar_config(name, app, &spans, &[], &[]);
        let label = format!("{name}-{version}");
        let (inbound, outbound, sidecar, config) = self.start_sidecar(&label, &config);
        let process = &mut self.processes[app_index];
        process.send(&format!("outbound {outbound}"));
        if let Some(msgd) = msgd {
            process.send(&format!("msgd {msgd}"));
        }
        process.send("go");
        Service {
            app,
            inbound,
            outbound,
            sidecar,
            config,
        }
    }

    /// Rewrites a sidecar's config and reloads it (SIGHUP); returns once it is in force.
    fn reload(&self, service: &Service, config: &str) {
        std::fs::write(&service.config, config).expect("config file");
        let sidecar = &self.processes[service.sidecar];
        sidecar.signal("HUP");
        let answer = sidecar.await_stderr("reload");
        assert!(answer.contains("config reloaded"), "{answer}");
    }

    fn spans_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .expect("demo dir")
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
            .collect();
        files.sort();
        files
    }
}

/// A route's backend: address, version label, weight.
type Backend = (SocketAddr, &'static str, u32);

/// A sidecar's TOML: inbound to `app`, an outbound listener, routes and the allow-list.
fn sidecar_config(
    service: &str,
    app: SocketAddr,
    spans: &Path,
    routes: &[(&str, &[Backend])],
    allow: &[SocketAddr],
) -> String {
    let mut config = format!(
        "service = \"{service}\"\n\n[[inbound]]\nlisten = \"127.0.0.1:0\"\napp = \"{app}\"\n\n\
         [outbound]\nlisten = \"127.0.0.1:0\"\nallow = [{}]\n",
        allow
            .iter()
            .map(|a| format!("\"{a}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (host, backends) in routes {
        let backends: Vec<String> = backends
            .iter()
            .map(|(address, version, weight)| {
                format!("{{ address = \"{address}\", version = \"{version}\", weight = {weight} }}")
            })
            .collect();
        config.push_str(&format!(
            "\n[[outbound.route]]\nhost = \"{host}\"\nbackends = [{}]\n",
            backends.join(", ")
        ));
    }
    config.push_str(&format!(
        "\n[tracing]\nspans_file = {:?}\n",
        spans.display().to_string()
    ));
    config
}

/// The sidecar binary: `FUNCTRACE_SIDECAR`, or built next to this binary with cargo.
fn sidecar_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("FUNCTRACE_SIDECAR") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("own binary");
    // target/<profile>/examples/mesh -> target/<profile>/functrace-sidecar
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("a cargo target dir");
    let release = profile_dir
        .file_name()
        .is_some_and(|name| name == "release");
    let mut cargo = Command::new(option_env!("CARGO").unwrap_or("cargo"));
    cargo.args([
        "build",
        "--quiet",
        "-p",
        "functrace-sidecar",
        "--bin",
        "functrace-sidecar",
    ]);
    if release {
        cargo.arg("--release");
    }
    let status = cargo.status().expect("cargo");
    assert!(status.success(), "building functrace-sidecar failed");
    profile_dir.join("functrace-sidecar")
}

/// GET `path` from `addr`, plain (the outside world has no sidecar): (status, text).
async fn fetch(addr: SocketAddr, path: &str) -> (u16, String) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let uri = format!("http://{addr}{path}").parse().expect("uri");
    let response = client.get(uri).await.expect("svca's sidecar answers");
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).trim().to_owned())
}

/// Sends `count` requests to svca; answers how many svcb v1 and v2 served, and the last answer.
async fn split(svca: SocketAddr, count: usize) -> ([usize; 2], String) {
    let mut served = [0; 2];
    let mut last = String::new();
    for _ in 0..count {
        let (status, text) = fetch(svca, "/pay").await;
        assert_eq!(status, 200, "{text}");
        served[usize::from(text.contains("svcb v2"))] += 1;
        last = text;
    }
    (served, last)
}

fn route_svcb(
    v1: &Service,
    v2: &Service,
    weights: (u32, u32),
) -> Vec<(SocketAddr, &'static str, u32)> {
    vec![(v1.inbound, "v1", weights.0), (v2.inbound, "v2", weights.1)]
}

fn demo(kept: Option<PathBuf>) {
    let keep = kept.is_some();
    let dir = kept.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("functrace-mesh-demo-{}", std::process::id()))
    });
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("demo dir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    stop_children_on_signal(&runtime);
    let mut mesh = Mesh {
        dir: dir.clone(),
        sidecar_binary: sidecar_binary(),
        processes: Vec::new(),
    };
    println!("functrace mesh demo: svca -> svcb (v1 over HTTP, v2 over gRPC) -> msgd, each behind a functrace-sidecar");
    let msgd = mesh.start_service("msgd", "v1", None);
    let svcb_v1 = mesh.start_service("svcb", "v1", Some(msgd.inbound));
    let svcb_v2 = mesh.start_service("svcb", "v2", Some(msgd.inbound));
    let svca = mesh.start_service("svca", "v1", None);
    for (name, service) in [
        ("svca", &svca),
        ("svcb v1", &svcb_v1),
        ("svcb v2", &svcb_v2),
        ("msgd", &msgd),
    ] {
        println!(
            "  {name:<8} app {}  sidecar in {}  out {}",
            service.app, service.inbound, service.outbound
        );
    }
    let spans = |name: &str| dir.join(format!("{name}.sidecar.jsonl"));
    let svca_config = |weights| {
        sidecar_config(
            "svca",
            svca.app,
            &spans("svca-v1"),
            &[("svcb", &route_svcb(&svcb_v1, &svcb_v2, weights))],
            &[],
        )
    };
    mesh.reload(&svca, &svca_config((100, 0)));

    println!("\n1. svcb calls msgd, outside the mesh, with no egress rule yet");
    let (status, text) = runtime.block_on(fetch(svca.inbound, "/pay"));
    println!("   GET svca /pay -> {status}: {}", without_trace(&text));
    let refused_trace = trace_of(&text);

    println!(
        "\n2. Egress rule for msgd at {} on both svcb sidecars (reloaded)",
        msgd.inbound
    );
    for (service, version) in [(&svcb_v1, "v1"), (&svcb_v2, "v2")] {
        let name = format!("svcb-{version}");
        let app = service.app;
        mesh.reload(
            service,
            &sidecar_config("svcb", app, &spans(&name), &[], &[msgd.inbound]),
        );
    }
    let (status, text) = runtime.block_on(fetch(svca.inbound, "/pay"));
    println!("   GET svca /pay -> {status}: {}", without_trace(&text));

    for (step, weights, count) in [(3, (100, 0), 10), (4, (50, 50), 20), (5, (0, 100), 10)] {
        mesh.reload(&svca, &svca_config(weights));
        let ([v1, v2], _) = runtime.block_on(split(svca.inbound, count));
        println!(
            "\n{step}. svca's route to svcb: v1 {}%, v2 {}% (svca's sidecar reloaded)\n   {count} requests served by v1: {v1}, v2: {v2}",
            weights.0, weights.1
        );
    }

    let (_, last) = runtime.block_on(split(svca.inbound, 1));
    let trace = trace_of(&last);
    println!("\n6. One request across the mesh: trace {trace}");
    // Stop everything first: apps and sidecars write their last spans on the way out.
    let logs: Vec<(String, PathBuf)> = ["svca-v1", "svcb-v1", "svcb-v2", "msgd-v1"]
        .iter()
        .map(|name| (name.to_string(), mesh.log(name)))
        .collect();
    let stopped = mesh.processes.len();
    mesh.processes.clear();
    println!("   function trace lines, grep {trace} over every app's output:");
    for (name, log) in &logs {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for line in text.lines().filter(|line| line.contains(&trace)) {
            println!("   {name:<8} {line}");
        }
    }
    println!("   spans of apps and sidecars, as a tree (functrace-sidecar view --trace {trace}):");
    print_tree(&mesh, &trace);
    println!("\n7. The request of step 1, refused at svcb's sidecar: the spans say why");
    print_tree(&mesh, &refused_trace);
    if keep {
        println!(
            "\nStopped all {stopped} processes; files in {}",
            dir.display()
        );
    } else {
        let _ = std::fs::remove_dir_all(&dir);
        println!("\nStopped all {stopped} processes.");
    }
}

/// The trace id svca puts at the end of its answer.
fn trace_of(text: &str) -> String {
    let tail = text.rsplit("[trace ").next().unwrap_or_default();
    tail.trim_end_matches(']').to_owned()
}

/// `functrace-sidecar view --trace` over every spans file of the demo.
fn print_tree(mesh: &Mesh, trace: &str) {
    let tree = Command::new(&mesh.sidecar_binary)
        .arg("view")
        .args(mesh.spans_files())
        .args(["--trace", trace])
        .output()
        .expect("functrace-sidecar view");
    for line in String::from_utf8_lossy(&tree.stdout).lines() {
        println!("   {line}");
    }
}

/// An answer without its trace id (shown once, in step 6).
fn without_trace(text: &str) -> &str {
    text.split(" [trace ").next().unwrap_or(text)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let leak = |i: usize| -> &'static str { Box::leak(args[i].clone().into_boxed_str()) };
    match args.get(1).map(String::as_str) {
        Some("app") => app(leak(2), leak(3), Run::Demo(PathBuf::from(&args[4]))),
        Some("serve") => app(leak(2), leak(3), Run::Container),
        Some("--keep") => demo(args.get(2).map(PathBuf::from)),
        _ => demo(None),
    }
}
