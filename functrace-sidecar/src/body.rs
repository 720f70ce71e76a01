//! The request body sent upstream: the client's, streamed (never buffered whole) and
//! counted, or none. Below both the proxy and the upstream pool, which only move it.
//!
//! It keeps the body's progress deadline: a client that sends nothing more of its body for
//! `limits.body_timeout_ms` fails it, and the proxy answers 408. What became of the body
//! (still coming, ended, too slow, malformed) is kept in its [`Progress`], which the
//! request's record reads to name the culprit when the exchange fails.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::conn::Busy;
use crate::upstream::BoxError;

/// What a body's progress came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Still coming, as fast as it is taken (or never polled).
    Receiving,
    /// Still coming, and the client owes its next bytes.
    Waiting,
    Ended,
    /// Nothing came for the progress deadline.
    TooSlow,
    /// The client's framing was wrong (an invalid chunk size, say).
    Malformed,
}

/// A body's bytes so far and its outcome, shared with the request's record.
#[derive(Default)]
pub struct Progress {
    bytes: AtomicU64,
    outcome: AtomicU8,
}

impl Progress {
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// A body that ended after `bytes`.
    pub fn ended(bytes: u64) -> Progress {
        Progress {
            bytes: AtomicU64::new(bytes),
            outcome: AtomicU8::new(Outcome::Ended as u8),
        }
    }

    pub fn outcome(&self) -> Outcome {
        match self.outcome.load(Ordering::Relaxed) {
            0 => Outcome::Receiving,
            1 => Outcome::Waiting,
            2 => Outcome::Ended,
            3 => Outcome::TooSlow,
            _ => Outcome::Malformed,
        }
    }

    fn set(&self, outcome: Outcome) {
        self.outcome.store(outcome as u8, Ordering::Relaxed);
    }
}

/// The body failed because the client sent nothing more for the progress deadline.
#[derive(Debug)]
pub struct TooSlow(Duration);

impl std::fmt::Display for TooSlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no request body bytes for {} ms: the client is too slow",
            self.0.as_millis()
        )
    }
}

impl std::error::Error for TooSlow {}

pin_project! {
    /// A request body to an upstream: the client's, streamed and counted, or none.
    pub struct RequestBody {
        #[pin]
        inner: Option<Incoming>,
        progress: Option<Arc<Progress>>,
        timeout: Duration,
        // Made the first time the client keeps the body waiting.
        stall: Option<Pin<Box<Sleep>>>,
        moved: bool,
        // The connection is busy while the body is read, though its answer may be done:
        // its bytes are not the start of the next request's head.
        busy: Option<Busy>,
    }
}

impl RequestBody {
    pub fn new(inner: Option<Incoming>, timeout: Duration) -> RequestBody {
        RequestBody {
            inner,
            progress: None,
            timeout,
            stall: None,
            moved: false,
            busy: None,
        }
    }

    /// Counted into `progress`, its connection kept busy by `busy` until it ends.
    pub fn counting(mut self, progress: &Arc<Progress>, busy: Busy) -> RequestBody {
        self.progress = Some(progress.clone());
        self.busy = Some(busy);
        self
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let Some(mut inner) = this.inner.as_pin_mut() else {
            return Poll::Ready(None);
        };
        let set_outcome = |outcome: Outcome| {
            if let Some(progress) = this.progress.as_deref() {
                progress.set(outcome);
            }
        };
        let frame = match inner.as_mut().poll_frame(cx) {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                let timeout = *this.timeout;
                let stall = this
                    .stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if std::mem::take(this.moved) {
                    stall.as_mut().reset(Instant::now() + timeout);
                }
                if stall.as_mut().poll(cx).is_ready() {
                    set_outcome(Outcome::TooSlow);
                    return Poll::Ready(Some(Err(Box::new(TooSlow(timeout)))));
                }
                set_outcome(Outcome::Waiting);
                return Poll::Pending;
            }
        };
        *this.moved = true;
        match &frame {
            Some(Ok(frame)) => {
                if let (Some(data), Some(progress)) = (frame.data_ref(), this.progress.as_deref()) {
                    progress
                        .bytes
                        .fetch_add(data.len() as u64, Ordering::Relaxed);
                }
                // With a known length, nobody need poll again for the end.
                set_outcome(if frame.is_trailers() || inner.is_end_stream() {
                    Outcome::Ended
                } else {
                    Outcome::Receiving
                });
            }
            Some(Err(error)) if is_malformed(error) => set_outcome(Outcome::Malformed),
            Some(Err(_)) => {}
            None => set_outcome(Outcome::Ended),
        }
        if frame.as_ref().is_none_or(Result::is_err) || inner.is_end_stream() {
            *this.busy = None;
        }
        Poll::Ready(frame.map(|frame| frame.map_err(Into::into)))
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

/// Whether reading the client's body failed on its framing (hyper's decoder says invalid
/// input or data) rather than on the connection.
fn is_malformed(error: &hyper::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData
            );
        }
        source = error.source();
    }
    false
}
