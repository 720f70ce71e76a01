//! The request body sent upstream: the client's, streamed (never buffered whole) and
//! counted, or none. Below both the proxy and the upstream pool, which only move it.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// A request body to an upstream: the client's, streamed and counted, or none.
    pub struct RequestBody {
        #[pin]
        inner: Option<Incoming>,
        counted: Option<Arc<AtomicU64>>,
    }
}

impl RequestBody {
    pub fn new(inner: Option<Incoming>) -> RequestBody {
        RequestBody {
            inner,
            counted: None,
        }
    }

    pub fn counting(mut self, counter: &Arc<AtomicU64>) -> RequestBody {
        self.counted = Some(counter.clone());
        self
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.project();
        let Some(inner) = this.inner.as_pin_mut() else {
            return Poll::Ready(None);
        };
        let frame = std::task::ready!(inner.poll_frame(cx));
        if let (Some(Ok(frame)), Some(counted)) = (&frame, this.counted) {
            if let Some(data) = frame.data_ref() {
                counted.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}
