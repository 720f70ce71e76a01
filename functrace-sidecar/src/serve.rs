//! Listeners: accept within the connection limit, serve HTTP/1.1 and HTTP/2 (chosen per
//! connection by its first bytes), and on shutdown stop accepting and drain.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::admin::{self, Readiness};
use crate::config::{Config, Limits};
use crate::flood::FloodGuard;
use crate::metrics::Direction;
use crate::proxy::Proxy;
use crate::Shared;
use functrace_mesh::export::{BuildError, Reporter};

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
    let readiness = Arc::new(Readiness::default());
    let (stop, stopped) = watch::channel(false);
    let builder = Arc::new(connection_builder(&limits));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let drain = Duration::from_millis(limits.drain_timeout_ms);
    let header_timeout = Duration::from_millis(limits.header_read_timeout_ms);
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
        let listener = bind(name, listen).await?;
        listeners.push((name, listener.local_addr()?));
        let accept = Accept {
            listener,
            shared: shared.clone(),
            builder: builder.clone(),
            permits: permits.clone(),
            stop: stopped.clone(),
            drain,
            header_timeout,
        };
        tasks.push(tokio::spawn(accept.proxy(direction, index)));
    }
    if let Some(listen) = config.admin {
        let listener = bind("admin", listen).await?;
        listeners.push(("admin", listener.local_addr()?));
        let accept = Accept {
            listener,
            shared: shared.clone(),
            builder: builder.clone(),
            permits: Arc::new(Semaphore::new(64)),
            stop: stopped.clone(),
            drain,
            header_timeout,
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
    if tracing.spans_file.is_none() && tracing.zipkin.is_none() {
        return Ok(None);
    }
    let mut builder = Reporter::builder(config.service.clone());
    if let Some(path) = &tracing.spans_file {
        builder = builder.json_lines(path);
    }
    if let Some(url) = &tracing.zipkin {
        builder = builder.collector(url);
    }
    builder.build().map(Some)
}

/// Keeps a timer due within the second until the sidecar stops. tokio wakes its own event
/// loop (a write to an eventfd, then one more turn of the loop) for every timer registered
/// before the earliest it knew of when it last looked, or when it knew of none. Each request
/// registers two, hyper's header-read timeout and the route's timeout, usually later than
/// any other pending timer. Under load, that was 0.6 extra system calls per proxied
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

async fn bind(name: &str, listen: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(listen)
        .await
        .map_err(|err| io::Error::new(err.kind(), format!("{name} listener {listen}: {err}")))
}

fn connection_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms))
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

/// One listener's accept loop.
struct Accept {
    listener: TcpListener,
    shared: Arc<Shared>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    permits: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
    drain: Duration,
    header_timeout: Duration,
}

impl Accept {
    async fn proxy(self, direction: Direction, inbound: usize) {
        let shared = self.shared.clone();
        self.run(true, move |peer| Proxy {
            shared: shared.clone(),
            direction,
            inbound,
            peer,
        })
        .await
    }

    async fn admin(self, readiness: Arc<Readiness>) {
        let shared = self.shared.clone();
        self.run(false, move |_| {
            let (shared, readiness) = (shared.clone(), readiness.clone());
            service_fn(move |request| admin::handle(shared.clone(), readiness.clone(), request))
        })
        .await
    }

    /// Accepts until stopped, then drains the open connections. `counted`: the connection
    /// metrics are of proxied connections only.
    async fn run<S, B>(mut self, counted: bool, service_for: impl Fn(SocketAddr) -> S)
    where
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
        let graceful = GracefulShutdown::new();
        loop {
            // Beyond the limit, connections wait in the kernel's backlog.
            let permit = tokio::select! {
                permit = self.permits.clone().acquire_owned() => permit.expect("never closed"),
                _ = self.stop.changed() => break,
            };
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors, say: back off rather than spin.
                        eprintln!("functrace-sidecar: accept: {err}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = self.stop.changed() => break,
            };
            let _ = stream.set_nodelay(true);
            let open = counted.then(|| self.shared.metrics.connection_opened());
            let connection = self
                .builder
                .serve_connection(
                    TokioIo::new(FloodGuard::new(stream, self.header_timeout)),
                    service_for(peer),
                )
                .into_owned();
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                let _ = connection.await;
                drop((open, permit));
            });
        }
        drop(self.listener);
        let _ = tokio::time::timeout(self.drain, graceful.shutdown()).await;
    }
}
