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
    /// The export thread waits for a first span, with no interval running: only then does
    /// a span need to wake it.
    worker_idle: bool,
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
                worker_idle: false,
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
        let wake = (len == 1 && state.worker_idle) || len == self.batch_size;
        drop(state);
        // The export thread only needs waking when there is something new to wait for: a
        // first span while it waits idle (the span starts the interval), or a full batch.
        if wake {
            self.work.notify_one();
        }
    }

    /// For the export thread: waits until a batch is due (full, interval elapsed, flushed
    /// or closing) and takes it, saying whether the queue is closing; `None` once closed
    /// and empty.
    ///
    /// Back from a batch, the thread waits out one interval for spans to come before it
    /// waits idle: a span that comes meanwhile goes out when that interval ends (or its
    /// batch fills) and need not wake it. Woken, the thread would take the core from the
    /// requests at once and find the queue empty again: two wakes, four context switches
    /// per batch, where one wake does.
    pub(crate) fn next_batch(&self) -> Option<(Vec<Queued>, bool)> {
        let mut state = self.lock();
        let mut deadline = Some(Instant::now() + self.interval);
        loop {
            let now = Instant::now();
            if state.items.is_empty() {
                if state.closed {
                    return None;
                }
                // Within the interval after a batch, wait it out; past it, wait idle.
                deadline = deadline.filter(|&at| now < at);
                let rest = deadline.map(|at| at - now);
                state.worker_idle = rest.is_none();
                state = wait(&self.work, state, rest);
                state.worker_idle = false;
                continue;
            }
            let deadline = *deadline.get_or_insert(now + self.interval);
            if state.closed
                || state.items.len() >= self.batch_size
                || state.flush_to > state.settled
                || now >= deadline
            {
                let take = state.items.len().min(self.batch_size);
                return Some((state.items.drain(..take).collect(), state.closed));
            }
            state = wait(&self.work, state, Some(deadline - now));
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
            let rest = match deadline {
                None => None,
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(rest) if !rest.is_zero() => Some(rest),
                    _ => return false,
                },
            };
            state = wait(&self.settled, state, rest);
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

/// Waits on `condvar`, `timeout` at most (`None`: until woken), and takes the lock back.
fn wait<'a>(
    condvar: &Condvar,
    state: MutexGuard<'a, State>,
    timeout: Option<Duration>,
) -> MutexGuard<'a, State> {
    match timeout {
        None => condvar.wait(state).unwrap_or_else(PoisonError::into_inner),
        Some(timeout) => {
            condvar
                .wait_timeout(state, timeout)
                .unwrap_or_else(PoisonError::into_inner)
                .0
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{mpsc, Arc};
    use std::thread;
    use std::time::Duration;

    use super::{Queue, Queued};

    /// A queue of ten spans and `next_batch` run on a thread of its own, as the export
    /// thread does; the receiver gets the sizes of the batches it takes, in order.
    fn started(batch_size: usize, interval: Duration) -> (Arc<Queue>, mpsc::Receiver<usize>) {
        let queue = Arc::new(Queue::new(10, batch_size, interval));
        let (sizes, received) = mpsc::channel();
        let taker = Arc::clone(&queue);
        thread::spawn(move || {
            while let Some((batch, _)) = taker.next_batch() {
                if sizes.send(batch.len()).is_err() {
                    return;
                }
            }
        });
        (queue, received)
    }

    /// Until the export thread waits for a first span with no interval running.
    fn until_idle(queue: &Queue) {
        while !queue.lock().worker_idle {
            thread::yield_now();
        }
    }

    fn span() -> Queued {
        Queued::Encoded(b"{}".to_vec())
    }

    const LONG: Duration = Duration::from_secs(30);

    #[test]
    fn a_first_span_wakes_an_idle_export_thread_and_goes_out_after_the_interval() {
        let (queue, sizes) = started(100, Duration::from_millis(20));
        until_idle(&queue);
        queue.push(span());
        assert_eq!(sizes.recv_timeout(LONG), Ok(1));
        until_idle(&queue);
        queue.push(span());
        queue.push(span());
        assert_eq!(sizes.recv_timeout(LONG), Ok(2));
        queue.close();
    }

    #[test]
    fn a_full_batch_wakes_an_export_thread_waiting_out_its_interval() {
        // The export thread starts waiting out an hour's interval: only a full batch can
        // end that wait before the test's time is up.
        let (queue, sizes) = started(3, Duration::from_secs(3600));
        for _ in 0..3 {
            queue.push(span());
        }
        assert_eq!(sizes.recv_timeout(LONG), Ok(3));
        queue.close();
    }

    #[test]
    fn spans_after_a_batch_go_out_when_the_interval_ends() {
        let (queue, sizes) = started(100, Duration::from_millis(20));
        queue.push(span());
        assert_eq!(sizes.recv_timeout(LONG), Ok(1));
        // Back from its batch, the thread waits out an interval and takes what came.
        queue.push(span());
        assert_eq!(sizes.recv_timeout(LONG), Ok(1));
        queue.close();
    }
}
