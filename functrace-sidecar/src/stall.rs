//! A wait's timer, for the deadlines that bound how long a peer may keep bytes waiting: a
//! client that does not read (`conn.rs`), a request body (`conn.rs`), an upstream's answer
//! body (`h1::io` on the own path, `record.rs` on hyper's).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// A wait's timer: made at the first wait, set when a wait begins, and left to run until
/// bytes move. So a read or write that goes through at once costs one store.
#[derive(Default)]
pub(crate) struct Stall {
    timer: Option<Pin<Box<Sleep>>>,
    /// Whether the timer times the current wait (no bytes moved since it was set).
    set: bool,
}

impl Stall {
    /// Ready once the current wait has lasted `limit`.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>, limit: Duration) -> Poll<()> {
        // The clock is read as a wait begins, not at every poll within it.
        if !self.set {
            let deadline = Instant::now() + limit;
            match &mut self.timer {
                Some(timer) => timer.as_mut().reset(deadline),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            self.set = true;
        }
        let timer = self.timer.as_mut().expect("set with the wait");
        timer.as_mut().poll(cx)
    }

    /// Whether a wait is being timed (no bytes moved since it began).
    pub(crate) fn waiting(&self) -> bool {
        self.set
    }

    /// Bytes moved: the wait is over.
    pub(crate) fn moved(&mut self) {
        self.set = false;
    }
}

/// Why a body's sender was given up on: nothing came for `limit`.
pub(crate) fn stalled(limit: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no bytes for {} ms", limit.as_millis()),
    )
}
