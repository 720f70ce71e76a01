//! Two gRPC services over HTTP/2 on loopback: `gateway.Gateway/Lookup` calls
//! `inventory.Inventory/Count`. Both are tonic servers behind the functrace-mesh server layer;
//! the gateway calls through a tonic channel behind the client layer. The B3 context travels
//! in gRPC metadata, and the spans file holds one connected tree with `grpc.status_code` on
//! the SERVER and CLIENT spans. Messages are UTF-8 text, so no protobuf compiler is needed.
//!
//! ```text
//! cargo run --example grpc_chain --features trace [-- SPANS_FILE]
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use functrace::trace;
use functrace_mesh::export::Reporter;
use functrace_mesh::layer::{TracedClient, Tracing};
use http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::Status;
use tower::ServiceBuilder;

#[path = "common/text_codec.rs"]
mod text_codec;
use text_codec::TextCodec;

type Reply =
    Pin<Box<dyn Future<Output = Result<http::Response<tonic::body::Body>, Infallible>> + Send>>;

/// Serves one unary method with `handler`, as generated tonic code would.
fn unary<F, Fut>(request: http::Request<tonic::body::Body>, handler: F) -> Reply
where
    F: FnMut(tonic::Request<String>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<tonic::Response<String>, Status>> + Send + 'static,
{
    Box::pin(async move {
        let handler = tower::service_fn(handler);
        Ok(tonic::server::Grpc::new(TextCodec)
            .unary(handler, request)
            .await)
    })
}

#[trace]
fn shelf_count(item: &str) -> u32 {
    item.len() as u32 * 3
}

#[trace]
async fn count(item: String) -> Result<tonic::Response<String>, Status> {
    Ok(tonic::Response::new(shelf_count(&item).to_string()))
}

/// `inventory.Inventory`: `Count` answers how many of an item are on the shelf.
#[derive(Clone)]
struct Inventory;

impl tonic::server::NamedService for Inventory {
    const NAME: &'static str = "inventory.Inventory";
}

impl tower::Service<http::Request<tonic::body::Body>> for Inventory {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Reply;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Reply {
        unary(request, |request: tonic::Request<String>| {
            count(request.into_inner())
        })
    }
}

type InventoryClient = tonic::client::Grpc<TracedClient<Channel>>;

#[trace]
async fn lookup(
    inventory: InventoryClient,
    item: String,
) -> Result<tonic::Response<String>, Status> {
    let mut inventory = inventory;
    inventory
        .ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let path = PathAndQuery::from_static("/inventory.Inventory/Count");
    let counted = inventory
        .unary(tonic::Request::new(item.clone()), path, TextCodec)
        .await?;
    Ok(tonic::Response::new(format!(
        "{item}: {}",
        counted.into_inner()
    )))
}

/// `gateway.Gateway`: `Lookup` asks the inventory.
#[derive(Clone)]
struct Gateway {
    inventory: InventoryClient,
}

impl tonic::server::NamedService for Gateway {
    const NAME: &'static str = "gateway.Gateway";
}

impl tower::Service<http::Request<tonic::body::Body>> for Gateway {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Reply;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Reply {
        let inventory = self.inventory.clone();
        unary(request, move |request: tonic::Request<String>| {
            lookup(inventory.clone(), request.into_inner())
        })
    }
}

/// Serves `service` on 127.0.0.1:0 behind the server layer.
async fn serve<S>(tracing: &Tracing, service: S) -> SocketAddr
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        > + tonic::server::NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let server = tonic::transport::Server::builder()
        .layer(tracing.server())
        .add_service(service);
    tokio::spawn(server.serve_with_incoming(incoming));
    addr
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}

#[tokio::main]
async fn main() {
    let spans: PathBuf = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("grpc_chain.spans.jsonl"));
    let _ = std::fs::remove_file(&spans);
    let reporter = Reporter::builder("grpc_chain")
        .json_lines(&spans)
        .build()
        .expect("spans file");
    // Dropped at the end of main: every span written.
    let _spans = reporter.install();
    let tracing = |service: &str| Tracing::new(service).reporter(reporter.clone());

    let inventory = serve(&tracing("inventory"), Inventory).await;
    let to_inventory = ServiceBuilder::new()
        .layer(tracing("gateway").client())
        .service(channel(inventory).await);
    let gateway = Gateway {
        inventory: tonic::client::Grpc::new(to_inventory),
    };
    let gateway = serve(&tracing("gateway"), gateway).await;

    let mut client = tonic::client::Grpc::new(channel(gateway).await);
    client.ready().await.expect("gateway ready");
    let path = PathAndQuery::from_static("/gateway.Gateway/Lookup");
    let reply = client
        .unary(tonic::Request::new("apples".to_owned()), path, TextCodec)
        .await
        .expect("lookup");
    println!("{}", reply.into_inner());

    reporter.flush();
    println!("spans: {}", spans.display());
}
