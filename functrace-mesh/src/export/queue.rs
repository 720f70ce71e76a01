//! The bounded queue between the threads that report spans and the export thread: pushing
//! never waits (a full queue drops and counts), the export thread takes batches, and
//! `flush` waits on a condition variable until the export thread has settled every span
//! accepted before it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use functrace::FinishedSpan;

use super::reporter::DeferredSpan;
use super::span::Span;

/// A span waiting for export: a traced call's is converted on the export thread, not on
/// the caller's.
/// What the export thread takes.
pub(crate) enum Queued {
    Finished(FinishedSpan),
    Span(Span),
    /// A span already written as a JSON object, normalized.
    Encoded(Vec<u8>),
    /// A span in its recorder's own form, written by the export thread (the sidecar's).
    Deferred(Box<dyn DeferredSpan>),
}

pub(crate) struct Queue {
    state: Mutex<State>,
    /// The export thread waits here for spans (or a flush, or closing).
    work: Condvar,
    /// `flush` waits here for the export thread to settle spans.
    settled: Condvar,
    capacity: usize,
    batch_size: usize,
    interval: Duration,
    dropped_full: AtomicU64,
    dropped_failed: AtomicU64,
    exported: AtomicU64,
}

struct State {
    items: VecDeque<Queued>,
    /// Spans accepted into the queue, ever.
    accepted: u64,
    /// Spans the export thread is done with (written, sent, or failed), ever.
    settled: u64,
    /// A flush waits for `settled` to reach this: send what is queued without waiting for
    /// a full batch or the interval.
    flush_to: u64,
    closed: bool,
    worker_alive: bool,
    last_error: Option<String>,
}

impl Queue {
    pub(crate) fn new(capacity: usize, batch_size: usize, interval: Duration) -> Queue {
        Queue {
            state: Mutex::new(State {
                items: VecDeque::with_capacity(capacity.min(1024)),
                accepted: 0,
                settled: 0,
                flush_to: 0,
                closed: false,
                worker_alive: true,
                last_error: None,
            }),
            work: Condvar::new(),
            settled: Condvar::new(),
            capacity,
            batch_size,
            interval,
            dropped_full: AtomicU64::new(0),
            dropped_failed: AtomicU64::new(0),
            exported: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a span, or drops and counts it when the queue is full or closed.
    pub(crate) fn push(&self, item: Queued) {
        let mut state = self.lock();
        if state.closed || state.items.len() >= self.capacity {
            drop(state);
            self.dropped_full.fetch_add(1, Ordering::Relaxed);
            return;
        }
        state.items.push_back(item);
        state.accepted += 1;
        let len = state.items.len();
        drop(state);
        // The export thread only needs waking when there is something new to wait for:
        // the first span (it starts the interval) or a full batch.
        if len == 1 || len == self.batch_size {
            self.work.notify_one();
        }
    }

    /// For the export thread: waits until a batch is due (full, interval elapsed, flushed
    /// or closing) and takes it, saying whether the queue is closing; `None` once closed
    /// and empty.
    pub(crate) fn next_batch(&self) -> Option<(Vec<Queued>, bool)> {
        let mut state = self.lock();
        let mut deadline: Option<Instant> = None;
        loop {
            if state.items.is_empty() {
                if state.closed {
                    return None;
                }
                deadline = None;
                state = self
                    .work
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            let now = Instant::now();
            let deadline = *deadline.get_or_insert(now + self.interval);
            if state.closed
                || state.items.len() >= self.batch_size
                || state.flush_to > state.settled
                || now >= deadline
            {
                let take = state.items.len().min(self.batch_size);
                return Some((state.items.drain(..take).collect(), state.closed));
            }
            state = self
                .work
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// For the export thread: `count` spans are done with, exported or not.
    pub(crate) fn settle(&self, count: usize, result: Result<(), String>) {
        let mut state = self.lock();
        match result {
            Ok(()) => {
                self.exported.fetch_add(count as u64, Ordering::Relaxed);
            }
            Err(error) => {
                self.dropped_failed
                    .fetch_add(count as u64, Ordering::Relaxed);
                state.last_error = Some(error);
            }
        }
        state.settled += count as u64;
        drop(state);
        self.settled.notify_all();
    }

    /// Waits until every span accepted before the call is settled (`timeout`: at most that
    /// long, returning `false` if it was not enough).
    pub(crate) fn flush(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        let mut state = self.lock();
        let target = state.accepted;
        if state.settled >= target || !state.worker_alive {
            return true;
        }
        state.flush_to = state.flush_to.max(target);
        self.work.notify_one();
        while state.settled < target && state.worker_alive {
            state = match deadline {
                None => self
                    .settled
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    self.settled
                        .wait_timeout(state, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
        true
    }

    /// No more spans: later ones are dropped, and the export thread drains what is queued
    /// and stops.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.work.notify_all();
    }

    /// For the export thread, when it ends (also by unwinding): wakes flushes for good.
    pub(crate) fn worker_exited(&self) {
        let mut state = self.lock();
        state.worker_alive = false;
        state.closed = true;
        drop(state);
        self.settled.notify_all();
    }

    pub(crate) fn dropped_full(&self) -> u64 {
        self.dropped_full.load(Ordering::Relaxed)
    }

    pub(crate) fn dropped_failed(&self) -> u64 {
        self.dropped_failed.load(Ordering::Relaxed)
    }

    pub(crate) fn exported(&self) -> u64 {
        self.exported.load(Ordering::Relaxed)
    }

    pub(crate) fn queued(&self) -> usize {
        self.lock().items.len()
    }

    pub(crate) fn last_error(&self) -> Option<String> {
        self.lock().last_error.clone()
    }
}
