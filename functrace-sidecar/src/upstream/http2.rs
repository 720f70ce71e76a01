//! HTTP/2 to an upstream through the `h2` crate directly, with the settings hyper's client
//! uses. hyper's client adds, per request, a message to its connection task, a spawned task
//! that waits for the response, and a channel back. Here the request's own task opens the
//! stream and waits for the response; a task is spawned only to stream a request body.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use h2::client::{ResponseFuture, SendRequest};
use h2::{Reason, RecvStream, SendStream};
use http::header::{HeaderValue, CONTENT_LENGTH};
use http::{Method, Request, Response};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::SendError;
use crate::body::RequestBody;

/// hyper's client defaults: windows larger than the protocol's 64 KiB, as a proxy streams
/// bodies of any size.
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;
const MAX_FRAME_SIZE: u32 = 16 * 1024;
const MAX_HEADER_LIST_SIZE: u32 = 16 * 1024;
const MAX_SEND_BUFFER_SIZE: usize = 1024 * 1024;
const INITIAL_MAX_SEND_STREAMS: usize = 100;

/// Opens an HTTP/2 connection (prior knowledge) on `stream`. A spawned task drives it until
/// the upstream closes it or the last sender is dropped.
pub async fn handshake(stream: TcpStream) -> Result<SendRequest<Bytes>, SendError> {
    let (sender, connection) = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME_SIZE)
        .max_header_list_size(MAX_HEADER_LIST_SIZE)
        .max_send_buffer_size(MAX_SEND_BUFFER_SIZE)
        .initial_max_send_streams(INITIAL_MAX_SEND_STREAMS)
        .enable_push(false)
        .handshake(stream)
        .await
        .map_err(|error| SendError::Exchange(error.into()))?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Sends `request` (absolute URI, no connection-specific headers) on a new stream of
/// `sender`, which is ready for one. The exchange resolves to the response head.
pub fn send(
    mut sender: SendRequest<Bytes>,
    request: Request<RequestBody>,
) -> Result<Exchange, SendError> {
    let (mut parts, body) = request.into_parts();
    let end_of_stream = body.is_end_stream();
    // As hyper's client does: a body of known length says so, unless the method gives a
    // body no meaning and it is empty.
    if let Some(length) = body.size_hint().exact() {
        if length != 0 || !matches!(parts.method, Method::GET | Method::HEAD | Method::DELETE) {
            parts
                .headers
                .entry(CONTENT_LENGTH)
                .or_insert_with(|| HeaderValue::from(length));
        }
    }
    let (response, stream) = sender
        .send_request(Request::from_parts(parts, ()), end_of_stream)
        .map_err(|error| SendError::Exchange(error.into()))?;
    let upload = (!end_of_stream).then(|| {
        let (exchange, dropped) = oneshot::channel();
        tokio::spawn(upload(body, stream, dropped));
        exchange
    });
    Ok(Exchange { response, upload })
}

/// A request sent, waiting for its response head. A future of its own rather than an
/// `async fn`: it stays this small, and so does every request's future that holds it.
pub struct Exchange {
    response: ResponseFuture,
    upload: Option<oneshot::Sender<()>>,
}

impl Future for Exchange {
    type Output = Result<Response<ResponseBody>, SendError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match std::task::ready!(Pin::new(&mut self.response).poll(cx)) {
            Ok(response) => {
                let upload = self.upload.take();
                Poll::Ready(Ok(response.map(|body| ResponseBody {
                    body,
                    data_ended: false,
                    _upload: upload,
                })))
            }
            // Only `upload` resets a stream from this side: the client's body failed.
            Err(error) if error.is_reset() && !error.is_remote() && !error.is_library() => {
                Poll::Ready(Err(SendError::ClientGone))
            }
            // The upstream closed the connection under the request (GOAWAY), or refused the
            // stream unprocessed: as with an HTTP/1.1 connection closed under a request, an
            // idempotent one may go again.
            Err(error) if error.is_go_away() || error.reason() == Some(Reason::REFUSED_STREAM) => {
                Poll::Ready(Err(SendError::Closed(error.into())))
            }
            Err(error) => Poll::Ready(Err(SendError::Exchange(error.into()))),
        }
    }
}

/// Streams the client's request body to the upstream, taking no more of it than the
/// upstream's flow control lets through (with h2's send buffer), until it ends or the
/// exchange is dropped (`dropped` resolves): then the stream goes, and h2 resets it.
async fn upload(body: RequestBody, mut stream: SendStream<Bytes>, dropped: oneshot::Receiver<()>) {
    tokio::select! {
        _ = dropped => {}
        _ = send_body(body, &mut stream) => {}
    }
}

async fn send_body(mut body: RequestBody, stream: &mut SendStream<Bytes>) {
    loop {
        let frame = match body.frame().await {
            None => {
                let _ = stream.send_data(Bytes::new(), true);
                return;
            }
            Some(Ok(frame)) => frame,
            Some(Err(_)) => {
                stream.send_reset(Reason::CANCEL);
                return;
            }
        };
        let data = match frame.into_data() {
            Ok(data) => data,
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    let _ = stream.send_trailers(trailers);
                }
                return;
            }
        };
        // As hyper's client does: claim one byte of the window, and only with a chunk in
        // hand (a claim held while waiting for the client can stall other streams); h2
        // buffers the chunk and asks the upstream for the rest. There is capacity while less
        // is buffered than the window granted (and h2's send buffer): memory stays bounded.
        stream.reserve_capacity(1);
        while stream.capacity() == 0 {
            match poll_fn(|cx| stream.poll_capacity(cx)).await {
                Some(Ok(_)) => {}
                // Reset or closed by the upstream.
                _ => return,
            }
        }
        if stream.send_data(data, false).is_err() {
            return;
        }
    }
}

/// An upstream's response body, released to flow control as it is read.
pub struct ResponseBody {
    body: RecvStream,
    data_ended: bool,
    /// Held while the response is read: dropping it stops the request body's upload.
    _upload: Option<oneshot::Sender<()>>,
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        if !self.data_ended {
            match std::task::ready!(self.body.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = self.body.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None => self.data_ended = true,
            }
        }
        match std::task::ready!(self.body.poll_trailers(cx)) {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(error) => Poll::Ready(Some(Err(error))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }
}
