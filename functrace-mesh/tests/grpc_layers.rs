//! The same layers with tonic over HTTP/2 (real server and channel on loopback): B3 travels in
//! lowercase metadata, and `grpc-status` from the trailers lands on the spans, marked as an
//! error only for server-fault codes.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes};
use functrace_mesh::export::{Kind, Reporter, Span};
use functrace_mesh::layer::Tracing;
use http::uri::PathAndQuery;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Status;
use tower::ServiceBuilder;

/// Messages as raw bytes: enough to carry text, with no protobuf code generation.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// `echo.Echo`: `Say` answers with the B3 metadata it got, `Parent` with its `traceparent`
/// and whether B3 came too; `Fail` is an Internal error;
/// `Find` is NotFound (a client's fault, not the server's).
#[derive(Clone)]
struct Echo;

impl tonic::server::NamedService for Echo {
    const NAME: &'static str = "echo.Echo";
}

impl tower::Service<http::Request<tonic::body::Body>> for Echo {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let method = request
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        Box::pin(async move {
            let handler = tower::service_fn(move |request: tonic::Request<Bytes>| {
                let method = method.clone();
                async move {
                    match method.as_str() {
                        "Say" => {
                            let metadata = request.metadata();
                            let seen =
                                ["x-b3-traceid", "x-b3-parentspanid", "x-b3-sampled"].map(|k| {
                                    metadata.get(k).and_then(|v| v.to_str().ok()).unwrap_or("-")
                                });
                            Ok(tonic::Response::new(Bytes::from(seen.join(" "))))
                        }
                        "Parent" => {
                            let metadata = request.metadata();
                            let traceparent = metadata
                                .get("traceparent")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("-");
                            let b3 = metadata.keys().any(|key| match key {
                                tonic::metadata::KeyRef::Ascii(key) => {
                                    key.as_str().starts_with("x-b3-") || key.as_str() == "b3"
                                }
                                tonic::metadata::KeyRef::Binary(_) => false,
                            });
                            let text = format!("{traceparent} b3:{b3}");
                            Ok(tonic::Response::new(Bytes::from(text)))
                        }
                        "Fail" => Err(Status::internal("boom")),
                        _ => Err(Status::not_found("no such thing")),
                    }
                }
            });
            Ok(tonic::server::Grpc::new(RawCodec)
                .unary(handler, request)
                .await)
        })
    }
}

async fn serve(tracing: &Tracing) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let server = tonic::transport::Server::builder()
        .layer(tracing.server())
        .add_service(Echo);
    tokio::spawn(server.serve_with_incoming(incoming));
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_calls_carry_b3_and_record_grpc_status() {
    let path = std::env::temp_dir().join(format!("functrace-grpc-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let reporter = Reporter::builder("echo").json_lines(&path).build().unwrap();
    let tracing = Tracing::new("echo").reporter(reporter.clone());
    let addr = serve(&tracing).await;

    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let channel = ServiceBuilder::new()
        .layer(tracing.client())
        .service(channel);
    let client = tonic::client::Grpc::new(channel);
    let call = |method: &'static str| {
        let mut client = client.clone();
        async move {
            client.ready().await.unwrap();
            let path = PathAndQuery::from_static(method);
            client
                .unary(tonic::Request::new(Bytes::new()), path, RawCodec)
                .await
        }
    };

    let parent = functrace::TraceContext::new_root(functrace::Sampling::Accept);
    let said = functrace::in_context(Some(parent), call("/echo.Echo/Say"))
        .await
        .unwrap();
    let said = String::from_utf8(said.into_inner().to_vec()).unwrap();
    assert_eq!(said, format!("{} {} 1", parent.trace_id, parent.span_id));
    assert_eq!(
        call("/echo.Echo/Fail").await.unwrap_err().code(),
        tonic::Code::Internal
    );
    assert_eq!(
        call("/echo.Echo/Find").await.unwrap_err().code(),
        tonic::Code::NotFound
    );

    reporter.flush();
    let spans: Vec<Span> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(spans.len(), 6, "{spans:#?}");
    for (method, code, error) in [
        ("say", "0", None),
        ("fail", "13", Some("13")),
        ("find", "5", None),
    ] {
        for kind in [Kind::Client, Kind::Server] {
            let span = spans
                .iter()
                .find(|s| s.kind == Some(kind) && s.name.ends_with(method))
                .unwrap_or_else(|| panic!("{kind:?} {method}: {spans:#?}"));
            assert_eq!(
                span.tags.get("grpc.status_code").map(String::as_str),
                Some(code),
                "{span:?}"
            );
            assert_eq!(
                span.tags.get("error").map(String::as_str),
                error,
                "{span:?}"
            );
        }
    }
    let say_client = spans
        .iter()
        .find(|s| s.kind == Some(Kind::Client) && s.name.ends_with("say"))
        .unwrap();
    assert_eq!(say_client.parent_id, Some(parent.span_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_calls_carry_traceparent_when_asked_to() {
    use functrace_mesh::propagation::Propagation;
    let path =
        std::env::temp_dir().join(format!("functrace-grpc-w3c-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let reporter = Reporter::builder("echo").json_lines(&path).build().unwrap();
    // The server as by default (the standards a call came in); the client writes W3C.
    let addr = serve(&Tracing::new("echo").reporter(reporter.clone())).await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let tracing = Tracing::new("echo")
        .reporter(reporter.clone())
        .propagation(Propagation::W3c);
    let mut client = tonic::client::Grpc::new(
        ServiceBuilder::new()
            .layer(tracing.client())
            .service(channel),
    );
    let parent = functrace::TraceContext::new_root(functrace::Sampling::Accept);
    let said = functrace::in_context(Some(parent), async {
        client.ready().await.unwrap();
        let path = PathAndQuery::from_static("/echo.Echo/Parent");
        client
            .unary(tonic::Request::new(Bytes::new()), path, RawCodec)
            .await
    })
    .await
    .unwrap();
    let said = String::from_utf8(said.into_inner().to_vec()).unwrap();
    let (traceparent, b3) = said.split_once(' ').unwrap();
    assert_eq!(b3, "b3:false", "{said}");
    let fields: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(fields.len(), 4, "{said}");
    assert_eq!((fields[0], fields[3]), ("00", "01"));
    assert_eq!(fields[1], parent.trace_id.to_string());

    reporter.flush();
    let spans: Vec<Span> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(spans.len(), 2, "{spans:#?}");
    // The server joined the client's span from traceparent.
    for span in &spans {
        assert_eq!(span.trace_id, parent.trace_id);
        assert_eq!(span.id.to_string(), fields[2], "{span:?}");
    }
    let client_span = spans.iter().find(|s| s.kind == Some(Kind::Client)).unwrap();
    assert_eq!(client_span.parent_id, Some(parent.span_id));
}
