//! A reverse proxy that only forwards, built as functrace-sidecar is (tokio's single-threaded
//! runtime, hyper-util's HTTP/1.1 and HTTP/2 server, hyper's HTTP/1.1 client connections,
//! kept for reuse): the `forward` target of `benches/proxy.sh`. Beside the sidecar, it shows
//! what a proxy on hyper costs before any work of its own: no tracing, metrics, routes,
//! timeouts or retries, and no hop-by-hop header handling. A benchmark target only.
//!
//! Usage: `forward_proxy LISTEN UPSTREAM`; the first stdout line is `listening on ADDR`.

use std::convert::Infallible;
use std::error::Error;
use std::io::Write;
use std::sync::{Arc, Mutex};

use http::uri::PathAndQuery;
use http::{header, HeaderValue, Request, Response, Uri, Version};
use http_body_util::{Either, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpStream};

type BoxError = Box<dyn Error + Send + Sync>;
/// The upstream's body, or the proxy's own answer to a failure: no allocation to box it.
type Body = Either<Incoming, Full<Bytes>>;

/// Idle connections to the upstream; one may still be finishing its last response.
type Pool = Arc<Mutex<Vec<SendRequest<Incoming>>>>;

/// Forwards `request` on a kept connection, or a new one; a failure is answered 502.
async fn forward(
    pool: Pool,
    upstream: Arc<str>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    match send(&pool, &upstream, request).await {
        Ok(response) => Ok(response.map(Either::Left)),
        Err(error) => {
            let body = Full::new(Bytes::from(format!("{error}\n")));
            let mut response = Response::new(Either::Right(body));
            *response.status_mut() = http::StatusCode::BAD_GATEWAY;
            Ok(response)
        }
    }
}

async fn send(
    pool: &Pool,
    upstream: &str,
    request: Request<Incoming>,
) -> Result<Response<Incoming>, BoxError> {
    let idle = {
        let mut idle = pool.lock().unwrap();
        let ready = idle.iter().rposition(SendRequest::is_ready);
        ready.map(|index| idle.swap_remove(index))
    };
    let mut sender = match idle {
        Some(sender) => sender,
        None => connect(upstream).await?,
    };
    let response = sender.send_request(http1_request(request)?).await?;
    pool.lock().unwrap().push(sender);
    Ok(response)
}

/// The request in HTTP/1.1's origin form, with the target in `Host` (HTTP/2 names it in
/// the URI).
fn http1_request(request: Request<Incoming>) -> Result<Request<Incoming>, BoxError> {
    let (mut parts, body) = request.into_parts();
    if parts.version == Version::HTTP_2 {
        if let Some(authority) = parts.uri.authority() {
            let host = HeaderValue::from_str(authority.as_str())?;
            parts.headers.entry(header::HOST).or_insert(host);
        }
        let path = parts.uri.path_and_query().cloned();
        parts.uri = Uri::from(path.unwrap_or_else(|| PathAndQuery::from_static("/")));
    }
    parts.version = Version::HTTP_11;
    Ok(Request::from_parts(parts, body))
}

async fn connect(upstream: &str) -> Result<SendRequest<Incoming>, BoxError> {
    let stream = TcpStream::connect(upstream).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
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
