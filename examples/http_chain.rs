//! Three services in one process, on loopback: `frontend -> orders -> stock`, each an axum
//! router behind the functrace-mesh server layer, calling the next through the client layer.
//! One request crosses all three: every trace line carries its trace id, and the spans file
//! holds one connected tree (SERVER and CLIENT spans from the layers, a local span per traced
//! function).
//!
//! ```text
//! cargo run --example http_chain --features trace [-- SPANS_FILE]
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

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
use tower::{ServiceBuilder, ServiceExt};

type HttpClient = TracedClient<Client<HttpConnector, Full<Bytes>>>;

/// A GET to `url` through `client`; the answer's text.
async fn call<C, B>(client: C, url: String) -> String
where
    C: tower::Service<http::Request<Full<Bytes>>, Response = http::Response<B>>,
    C::Error: std::fmt::Debug,
    B: hyper::body::Body,
    B::Error: std::fmt::Debug,
{
    let request = http::Request::get(url)
        .body(Full::default())
        .expect("request");
    let response = client.oneshot(request).await.expect("downstream");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

#[trace]
async fn checkout(orders: HttpClient, at: SocketAddr) -> String {
    let placed = place_order(&orders, at).await;
    format!("checkout: {placed}")
}

#[trace]
async fn place_order(orders: &HttpClient, at: SocketAddr) -> String {
    call(orders.clone(), format!("http://{at}/orders")).await
}

#[trace]
async fn create_order(stock: HttpClient, at: SocketAddr) -> String {
    let reserved = call(stock, format!("http://{at}/stock")).await;
    format!("order 17 ({reserved})")
}

#[trace]
async fn reserve() -> String {
    format!("{} left", count_shelf())
}

#[trace]
fn count_shelf() -> u32 {
    41
}

/// Serves `router` for `service` on 127.0.0.1:0 behind the server layer.
async fn serve(tracing: &Tracing, router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let service = ServiceBuilder::new()
        .layer(tracing.server())
        .service(router);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = hyper_util::service::TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn client(tracing: &Tracing) -> HttpClient {
    let client = Client::builder(TokioExecutor::new()).build_http();
    ServiceBuilder::new()
        .layer(tracing.client())
        .service(client)
}

#[tokio::main]
async fn main() {
    let spans: PathBuf = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("http_chain.spans.jsonl"));
    let _ = std::fs::remove_file(&spans);
    let reporter = Reporter::builder("http_chain")
        .json_lines(&spans)
        .build()
        .expect("spans file");
    // Local spans of traced functions go to the same file.
    // Dropped at the end of main: every span written.
    let _spans = reporter.install();

    let tracing = |service: &str| Tracing::new(service).reporter(reporter.clone());
    let stock = serve(
        &tracing("stock"),
        Router::new().route("/stock", get(reserve)),
    )
    .await;
    let stock_client = client(&tracing("orders"));
    let orders_router = Router::new().route(
        "/orders",
        get(move || create_order(stock_client.clone(), stock)),
    );
    let orders = serve(&tracing("orders"), orders_router).await;
    let orders_client = client(&tracing("frontend"));
    let frontend_router = Router::new().route(
        "/checkout",
        get(move || checkout(orders_client.clone(), orders)),
    );
    let frontend = serve(&tracing("frontend"), frontend_router).await;

    let plain = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    println!(
        "{}",
        call(plain, format!("http://{frontend}/checkout")).await
    );

    reporter.flush();
    println!("spans: {}", spans.display());
}
