//! Upstream of `benches/proxy.sh`: answers every request `200 ok` (body "ok"), over HTTP/1.1
//! with keep-alive and HTTP/2 prior knowledge on the same port.
//!
//! Usage: `ok_upstream [ADDR]` (default `127.0.0.1:0`); the first stdout line is
//! `listening on ADDR` with the bound address.

use std::convert::Infallible;
use std::io::Write;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;

async fn ok(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

async fn serve(addr: &str) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let builder = Builder::new(TokioExecutor::new());
    loop {
        // A failed accept (e.g. out of file descriptors) must not end the server.
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        tokio::spawn(async move {
            let io = TokioIo::new(stream);
            // Errors here are the client's doing (reset, bad request); nothing to report.
            let _ = builder.serve_connection(io, service_fn(ok)).await;
        });
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1);
    let addr = addr.as_deref().unwrap_or("127.0.0.1:0");
    // Default worker count: one per CPU the process may run on (respects `taskset`).
    tokio::runtime::Builder::new_multi_thread()
        .enable_io()
        .build()?
        .block_on(serve(addr))
}
