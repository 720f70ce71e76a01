//! A reverse proxy that only forwards, built as functrace-sidecar is (tokio's single-threaded
//! runtime, hyper-util's HTTP/1.1 and HTTP/2 server, hyper's HTTP/1.1 client connections,
//! kept for reuse): the `forward` target of `benches/proxy.sh`. Beside the sidecar, it shows
//! what a proxy on hyper costs before any work of its own: no tracing, metrics, routes,
//! timeouts or retries, and no hop-by-hop header handling. A benchmark target only.
//!
//! Usage: `forward_proxy LISTEN UPSTREAM`; the first stdout line is `listening on ADDR`.

use std::convert::Infallible;
use std::io::Write;
use std::sync::Arc;

use functrace_benches::forward_client;
use http::{Request, Response};
use http_body_util::{Either, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;

/// The upstream's body, or the proxy's own answer to a failure: no allocation to box it.
type Body = Either<Incoming, Full<Bytes>>;

type Pool = forward_client::Pool<Incoming>;

/// Forwards `request` on a kept connection, or a new one; a failure is answered 502.
async fn forward(
    pool: Pool,
    upstream: Arc<str>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    match forward_client::send(&pool, &upstream, request).await {
        Ok(response) => Ok(response.map(Either::Left)),
        Err(error) => {
            let body = Full::new(Bytes::from(format!("{error}\n")));
            let mut response = Response::new(Either::Right(body));
            *response.status_mut() = http::StatusCode::BAD_GATEWAY;
            Ok(response)
        }
    }
}

async fn serve(listen: &str, upstream: Arc<str>) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let builder = Arc::new(Builder::new(TokioExecutor::new()));
    let pool = Pool::default();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (builder, pool, upstream) = (builder.clone(), pool.clone(), upstream.clone());
        tokio::spawn(async move {
            let service =
                service_fn(move |request| forward(pool.clone(), upstream.clone(), request));
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!("usage: forward_proxy LISTEN UPSTREAM");
        std::process::exit(2);
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?
        .block_on(serve(&listen, upstream.into()))
}
