//! Listeners: accept within the connection limit, serve HTTP/1.1 and HTTP/2 (chosen per
//! connection by its first bytes), and on shutdown stop accepting and drain.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::future::Future;
use std::pin::Pin;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::admin::{self, Readiness};
use crate::config::{Config, Limits};
use crate::conn::{Conn, Deadlines, Prefixed, Watched, H2_PREFACE};
use crate::flood::FloodGuard;
use crate::h1::io::Buffered;
use crate::limit::{self, Limit};
use crate::metrics::Direction;
use crate::open_files;
use crate::proxy::Proxy;
use crate::proxy_h1::Connection;
use crate::stopping::stopping;
use crate::Shared;
use functrace_mesh::export::{socket_address_text, BuildError, Reporter};

/// A started sidecar.
pub struct Running {
    /// The state its listeners share.
    pub shared: Arc<Shared>,
    /// What each listener is (`inbound`, `outbound`, `admin`) and where it listens.
    pub listeners: Vec<(&'static str, SocketAddr)>,
    readiness: Arc<Readiness>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Binds every listener of `config` (already validated) and starts serving.
pub async fn start(config: Config) -> io::Result<Running> {
    let reporter = reporter(&config).map_err(io::Error::other)?;
    let limits = config.limits.clone();
    let shared = Arc::new(Shared::new(config.clone(), reporter));
    let proxied = Limit::new(fitted_max_connections(&limits));
    let readiness = Arc::new(Readiness::new(proxied.clone()));
    let (stop, stopped) = watch::channel(false);
    let hyper = Arc::new(HyperServers {
        any: connection_builder(&limits),
        http2: connection_builder(&limits).http2_only(),
        header_timeout: Duration::from_millis(limits.header_read_timeout_ms),
    });
    let deadlines = Deadlines::new(&limits);
    let drain = Duration::from_millis(limits.drain_timeout_ms);
    let mut listeners = Vec::new();
    let mut tasks = Vec::new();
    tokio::spawn(keep_a_timer_near(stopped.clone()));

    let mut proxies = Vec::new();
    for (index, inbound) in config.inbound.iter().enumerate() {
        proxies.push(("inbound", inbound.listen, Direction::Inbound, index));
    }
    if let Some(outbound) = &config.outbound {
        proxies.push(("outbound", outbound.listen, Direction::Outbound, 0));
    }
    for (name, listen, direction, index) in proxies {
        let listener = bind(name, listen, limits.listen_backlog)?;
        listeners.push((name, listener.local_addr()?));
        let accept = Accept {
            listener,
            shared: shared.clone(),
            hyper: hyper.clone(),
            limit: proxied.clone(),
            deadlines,
            stop: stopped.clone(),
            drain,
            last_complaint: None,
        };
        tasks.push(tokio::spawn(accept.proxy(direction, index)));
    }
    if let Some(listen) = config.admin {
        let listener = bind("admin", listen, limits.listen_backlog)?;
        listeners.push(("admin", listener.local_addr()?));
        // A limit of its own: a flood of the proxy listeners, or of this one, leaves
        // `/ready` answerable.
        let accept = Accept {
            listener,
            shared: shared.clone(),
            hyper: hyper.clone(),
            limit: Limit::new(limits.admin_max_connections),
            deadlines,
            stop: stopped.clone(),
            drain,
            last_complaint: None,
        };
        tasks.push(tokio::spawn(accept.admin(readiness.clone())));
    }
    readiness.ready.store(true, Ordering::Relaxed);
    Ok(Running {
        shared,
        listeners,
        readiness,
        stop,
        tasks,
    })
}

impl Running {
    /// Stops accepting, lets in-flight requests finish (for the drain time at most), and
    /// exports the spans still queued.
    pub async fn shutdown(self) {
        self.readiness.ready.store(false, Ordering::Relaxed);
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        if let Some(reporter) = self.shared.reporter.clone() {
            let flushed = tokio::task::spawn_blocking(move || {
                let flushed = reporter.flush_timeout(Duration::from_secs(5));
                reporter.shutdown();
                flushed
            });
            if !matches!(flushed.await, Ok(true)) {
                eprintln!("functrace-sidecar: spans still queued at exit were lost");
            }
        }
    }
}

fn reporter(config: &Config) -> Result<Option<Reporter>, BuildError> {
    let tracing = &config.tracing;
    if tracing.spans_file.is_none() && tracing.zipkin.is_none() && tracing.otlp.is_none() {
        return Ok(None);
    }
    let mut builder = Reporter::builder(config.service.clone());
    if let Some(path) = &tracing.spans_file {
        builder = builder.json_lines(path);
    }
    if let Some(url) = &tracing.zipkin {
        builder = builder.collector(url);
    }
    if let Some(url) = &tracing.otlp {
        builder = builder.otlp(url);
    }
    builder.build().map(Some)
}

/// Keeps a timer due within the second until the sidecar stops. tokio wakes its own event
/// loop (a write to an eventfd, then one more turn of the loop) for every timer registered
/// before the earliest it knew of when it last looked, or when it knew of none. Each request
/// registers one, the route's timeout, usually later than any other pending timer. Under load, that was 0.6 extra system calls per proxied
/// request. With this tick pending, it is rare.
async fn keep_a_timer_near(mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
    }
}

/// A listener with a backlog of `backlog` (std's is 128; the kernel caps it at somaxconn).
fn bind(name: &str, listen: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let bound = || {
        let socket = if listen.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(listen)?;
        socket.listen(backlog)
    };
    bound().map_err(|err| io::Error::new(err.kind(), format!("{name} listener {listen}: {err}")))
}

fn connection_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The header-read timeout is `conn.rs`'s (hyper's also runs while a connection is idle
    // between requests); without this, hyper would keep its own default of 30 s.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(limits.max_header_bytes);
    // HTTP/2 floods: h2 ends these in GOAWAY ENHANCE_YOUR_CALM by itself (its defaults,
    // spelled out): streams the client resets before they are accepted (rapid reset), streams
    // it resets itself, empty and small DATA frames, CONTINUATION frames, a header list over
    // four times the limit (below that, 431 on the stream). The rest is `flood.rs`.
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_pending_accept_reset_streams(20)
        .max_local_error_reset_streams(1024);
    builder
}

/// `max_connections`, lowered (and told on stderr) to what fits in the process's open files.
fn fitted_max_connections(limits: &Limits) -> usize {
    let open_files = open_files::limit();
    let fit = open_files::connections_that_fit(open_files, limits.admin_max_connections);
    if fit < limits.max_connections {
        eprintln!(
            "functrace-sidecar: max_connections {} lowered to {fit}: {open_files} open files allowed",
            limits.max_connections
        );
    }
    fit.min(limits.max_connections)
}

/// One listener's accept loop.
struct Accept {
    listener: TcpListener,
    shared: Arc<Shared>,
    hyper: Arc<HyperServers>,
    limit: Arc<Limit>,
    deadlines: Deadlines,
    stop: watch::Receiver<bool>,
    drain: Duration,
    /// When a failed accept was last told on stderr.
    last_complaint: Option<Instant>,
}

/// A connection's task, started by a listener's accept loop.
type Serving = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Accept {
    async fn proxy(self, direction: Direction, inbound: usize) {
        let shared = self.shared.clone();
        let (hyper, head_limit) = (self.hyper.clone(), self.head_limit());
        self.run(true, move |io, peer, conn, stop| {
            let proxy = Proxy {
                shared: shared.clone(),
                direction,
                inbound,
                peer,
                peer_text: socket_address_text(peer).into(),
                conn,
            };
            if !proxy.own_http1(&shared.settings()) {
                return Box::pin(serve_hyper(hyper.clone(), false, io, proxy, stop));
            }
            Box::pin(serve_own(proxy, io, head_limit, hyper.clone(), stop))
        })
        .await
    }

    async fn admin(self, readiness: Arc<Readiness>) {
        let shared = self.shared.clone();
        let hyper = self.hyper.clone();
        self.run(false, move |io, _, conn, stop| {
            let (shared, readiness) = (shared.clone(), readiness.clone());
            let service = service_fn(move |request| {
                let busy = conn.request();
                let answer = admin::handle(shared.clone(), readiness.clone(), request);
                async move {
                    let answer = answer.await;
                    drop(busy);
                    answer
                }
            });
            Box::pin(serve_hyper(hyper.clone(), false, io, service, stop))
        })
        .await
    }

    fn head_limit(&self) -> usize {
        self.shared.settings().config.limits.max_header_bytes
    }

    /// Accepts until stopped, then drains the open connections. `counted`: the connection
    /// metrics are of proxied connections only. `serve`: a connection's task, which ends
    /// the connection (gracefully) once `stop` says so.
    async fn run(
        mut self,
        counted: bool,
        serve: impl Fn(Watched, SocketAddr, Arc<Conn>, watch::Receiver<bool>) -> Serving,
    ) {
        // Every connection's task holds a sender: the drain is over when all are gone.
        let (open_connections, mut all_closed) = mpsc::channel::<()>(1);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        self.accept_failed(&err).await;
                        continue;
                    }
                },
                _ = self.stop.changed() => break,
            };
            let conn = Conn::new();
            let Some(admitted) = self.limit.admit(conn.clone()) else {
                // Every place is taken by a busy connection: refused at once, rather than
                // left to wait. Best effort: this client gets no more of our time.
                let _ = stream.try_write(limit::REFUSED);
                if counted {
                    self.shared.metrics.connection_refused();
                }
                continue;
            };
            if counted && admitted.shed {
                self.shared.metrics.connection_shed();
            }
            let (slot, closed) = (admitted.slot, admitted.closed);
            let _ = stream.set_nodelay(true);
            let open = counted.then(|| self.shared.metrics.connection_opened());
            let io = Watched::new(stream, conn.clone(), self.deadlines);
            let connection = serve(io, peer, conn, self.stop.clone());
            let tracked = open_connections.clone();
            tokio::spawn(async move {
                tokio::select! {
                    biased;
                    _ = connection => {}
                    // Closed to make room for a new connection at the limit.
                    _ = closed => {}
                }
                drop((open, slot, tracked));
            });
        }
        drop(self.listener);
        drop(open_connections);
        let _ = tokio::time::timeout(self.drain, all_closed.recv()).await;
    }

    /// An accept failed: out of file descriptors (the limit in `open_files.rs` leaves room,
    /// but descriptors are not all connections), or a connection reset before it was
    /// accepted. The oldest idle connection makes room, and the loop backs off a little
    /// rather than spin; said on stderr once a second at most.
    async fn accept_failed(&mut self, err: &io::Error) {
        let out_of_files = matches!(err.raw_os_error(), Some(EMFILE | ENFILE));
        let shed = out_of_files && self.limit.shed_one();
        let now = Instant::now();
        if self
            .last_complaint
            .is_none_or(|last| now - last >= Duration::from_secs(1))
        {
            self.last_complaint = Some(now);
            let shed = if shed {
                " (an idle connection closed)"
            } else {
                ""
            };
            eprintln!("functrace-sidecar: accept: {err}{shed}");
        }
        if out_of_files {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Serves a connection with hyper (HTTP/1.1 or HTTP/2, told by its first bytes; HTTP/2
/// only when `http2`), until it ends or the sidecar stops: then gracefully (HTTP/1.1: after
/// the request in flight; HTTP/2: GOAWAY, and the streams in flight finish).
async fn serve_hyper<I, S, B>(
    servers: Arc<HyperServers>,
    http2: bool,
    io: I,
    service: S,
    stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<B>,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let io = TokioIo::new(FloodGuard::new(io, servers.header_timeout));
    let builder = if http2 { &servers.http2 } else { &servers.any };
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = stopping(stop) => {}
    }
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
}

/// hyper's servers, shared by the listeners: for the admin listener, the proxy listeners
/// off the own HTTP/1.1 path, and the connections of those on it that hyper serves.
struct HyperServers {
    /// HTTP/1.1 or HTTP/2, told by the first bytes.
    any: auto::Builder<TokioExecutor>,
    /// HTTP/2 only: connections the own path found opening with the preface.
    http2: auto::Builder<TokioExecutor>,
    header_timeout: Duration,
}

/// Serves a connection on the sidecar's own HTTP/1.1 path; one that opens with the HTTP/2
/// preface goes to hyper's HTTP/2 server, and one whose listener a reload took off the own
/// path goes on with hyper's server from its next request. When the sidecar stops, a
/// connection without a request in flight closes at once; one with a request finishes it
/// first (and closes after it: `proxy_h1.rs` reads `stop`).
async fn serve_own(
    proxy: Proxy,
    io: Watched,
    head_limit: usize,
    hyper: Arc<HyperServers>,
    stop: watch::Receiver<bool>,
) {
    let mut client = Buffered::new(io, head_limit);
    let opens_http2 = tokio::select! {
        opens = opens_with_preface(&mut client) => opens,
        () = stopping(stop.clone()) => return,
    };
    let (http2, client) = match opens_http2 {
        None => return,
        Some(true) => (true, client),
        Some(false) => {
            let conn = proxy.conn.clone();
            let serving = Connection::new(proxy.clone(), client, head_limit, stop.clone()).serve();
            tokio::pin!(serving);
            let handed_over = tokio::select! {
                handed_over = &mut serving => handed_over,
                () = stopping(stop.clone()) => {
                    if !conn.is_idle() {
                        serving.await;
                    }
                    return;
                }
            };
            match handed_over {
                Some(client) => (false, client),
                None => return,
            }
        }
    };
    let io = Prefixed::new(client);
    serve_hyper(hyper, http2, io, proxy, stop).await;
}

/// Reads a connection's first bytes until they tell whether it opens with the HTTP/2
/// preface: `None` when it ends first.
async fn opens_with_preface(client: &mut Buffered<Watched>) -> Option<bool> {
    loop {
        let data = client.data();
        let n = data.len().min(H2_PREFACE.len());
        if n > 0 && data[..n] != H2_PREFACE[..n] {
            return Some(false);
        }
        if n == H2_PREFACE.len() {
            return Some(true);
        }
        match client.fill().await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// `errno` values of a process (`EMFILE`) or system (`ENFILE`) out of file descriptors.
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;
