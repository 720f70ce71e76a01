//! A reverse proxy that only forwards, serving HTTP/2 with `h2` directly rather than through
//! hyper's server: the `h2forward` target of `benches/proxy.sh`. Its HTTP/1.1 client side is
//! `forward`'s (hyper's client connections, kept for reuse), so beside `forward` on the HTTP/2
//! row it shows what hyper's HTTP/2 server layer costs over `h2` alone. Built as `forward` is:
//! tokio's single-threaded runtime, no tracing, metrics, routes, timeouts or retries. HTTP/2
//! with prior knowledge only. A benchmark target only.
//!
//! Usage: `h2_forward LISTEN UPSTREAM`; the first stdout line is `listening on ADDR`.

use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use functrace_benches::forward_client::{self, strip_connection_fields, BoxError};
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use tokio::net::{TcpListener, TcpStream};

type Pool = forward_client::Pool<RequestBody>;

/// An HTTP/2 request's body as a hyper `Body`: the flow-control window is given back as the
/// data is taken.
struct RequestBody(RecvStream);

impl Body for RequestBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        let stream = &mut self.0;
        if let Some(data) = ready!(stream.poll_data(cx)) {
            let data = data?;
            let _ = stream.flow_control().release_capacity(data.len());
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(
            ready!(stream.poll_trailers(cx))
                .transpose()
                .map(|t| t.map(Frame::trailers)),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }
}

/// One request: forwarded, and its answer (or a 502) sent back on the stream.
async fn handle(
    pool: Pool,
    upstream: Arc<str>,
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
) {
    let request = request.map(RequestBody);
    let response = match forward_client::send(&pool, &upstream, request).await {
        Ok(response) => response,
        Err(_) => {
            let mut refused = Response::new(());
            *refused.status_mut() = StatusCode::BAD_GATEWAY;
            let _ = respond.send_response(refused, true);
            return;
        }
    };
    let (mut parts, body) = response.into_parts();
    strip_connection_fields(&mut parts.headers);
    let end = body.is_end_stream();
    let Ok(out) = respond.send_response(Response::from_parts(parts, ()), end) else {
        return;
    };
    if !end {
        let _ = send_body(body, out).await;
    }
}

/// The answer's body onto the stream, as the peer's window allows.
async fn send_body(mut body: Incoming, mut out: SendStream<Bytes>) -> Result<(), BoxError> {
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        match frame.into_data() {
            Ok(mut data) => {
                while !data.is_empty() {
                    out.reserve_capacity(data.len());
                    let granted = std::future::poll_fn(|cx| out.poll_capacity(cx))
                        .await
                        .ok_or("stream closed")??;
                    out.send_data(data.split_to(granted.min(data.len())), false)?;
                }
            }
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    out.send_trailers(trailers)?;
                    return Ok(());
                }
            }
        }
    }
    out.send_data(Bytes::new(), true)?;
    Ok(())
}

/// A connection's streams, each its own task; accepting also drives the connection's I/O.
async fn serve_connection(
    stream: TcpStream,
    pool: Pool,
    upstream: Arc<str>,
) -> Result<(), h2::Error> {
    let mut connection = h2::server::handshake(stream).await?;
    while let Some(accepted) = connection.accept().await {
        let (request, respond) = accepted?;
        tokio::spawn(handle(pool.clone(), upstream.clone(), request, respond));
    }
    Ok(())
}

async fn serve(listen: &str, upstream: Arc<str>) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let pool = Pool::default();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_connection(stream, pool.clone(), upstream.clone()));
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!("usage: h2_forward LISTEN UPSTREAM");
        std::process::exit(2);
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?
        .block_on(serve(&listen, upstream.into()))
}
