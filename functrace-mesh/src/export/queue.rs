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

/// A batch's text stops at about this many bytes (a lines buffer, the batch the export
/// thread takes), whatever its count of spans: a batch of large spans in the export thread's
/// hands (and in a collector's request) is not counted by the queue's byte bound.
const BATCH_BYTES: usize = 1 << 20;
/// Room past [`BATCH_BYTES`] for the line that ends a buffer: a proxy's span with a long
/// path.
const LINE_SLACK: usize = 16 << 10;

/// What the export thread takes: a traced call's span is converted there, not on the
/// caller's thread.
pub(crate) enum Queued {
    Finished(FinishedSpan),
    /// A structured span, and its text's length as the byte bound counts it (made by
    /// [`Queued::span`], so counted once).
    Span {
        span: Span,
        text: usize,
    },
    /// `count` spans already written as JSON lines, normalized. Written straight into the
    /// queue ([`Queue::push_line`]), one after the other into the last such buffer while it
    /// holds less than a batch: a proxy's span costs no allocation of its own, and the export
    /// thread writes the buffer as it is rather than gathering lines.
    Lines {
        bytes: Vec<u8>,
        count: usize,
    },
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
    /// The most bytes of spans' text that may wait (JSON lines, a structured span's
    /// strings): a span's size is its client's to choose (a path of 60 KiB), and a sink that
    /// stalls would otherwise hold `capacity` of the largest.
    max_bytes: usize,
    batch_size: usize,
    interval: Duration,
    dropped_full: AtomicU64,
    dropped_failed: AtomicU64,
    exported: AtomicU64,
}

impl Queued {
    /// `span`, queued.
    pub(crate) fn span(span: Span) -> Queued {
        let text = span.text_len();
        Queued::Span { span, text }
    }

    /// How many spans this is.
    pub(crate) fn spans(&self) -> usize {
        match self {
            Queued::Lines { count, .. } => *count,
            _ => 1,
        }
    }

    /// The bytes of text this holds, as the queue's byte bound counts them: a lines
    /// buffer's length, a structured span's strings, a traced call's error (its name is
    /// static; the error is whatever the `Err` it returned says). A deferred span counts
    /// none: its recorder bounds it.
    fn bytes(&self) -> usize {
        match self {
            Queued::Lines { bytes, .. } => bytes.len(),
            Queued::Span { text, .. } => *text,
            Queued::Finished(finished) => finished.error.as_ref().map_or(0, String::len),
            Queued::Deferred(_) => 0,
        }
    }
}

struct State {
    items: VecDeque<Queued>,
    /// Spans in `items`.
    spans: usize,
    /// Bytes in `items`, as [`Queued::bytes`] counts them.
    bytes: usize,
    /// A lines buffer the export thread is done with, kept for the next lines.
    spare: Vec<u8>,
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
    pub(crate) fn new(
        capacity: usize,
        max_bytes: usize,
        batch_size: usize,
        interval: Duration,
    ) -> Queue {
        Queue {
            state: Mutex::new(State {
                items: VecDeque::with_capacity(capacity.min(1024)),
                spans: 0,
                bytes: 0,
                spare: Vec::new(),
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
            max_bytes,
            batch_size,
            interval,
            dropped_full: AtomicU64::new(0),
            dropped_failed: AtomicU64::new(0),
            exported: AtomicU64::new(0),
        }
    }

    /// Spans per batch, for the reporter's tests.
    #[cfg(test)]
    pub(crate) fn batch_size(&self) -> usize {
        self.batch_size
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a span, or drops and counts it when the queue is full or closed.
    pub(crate) fn push(&self, item: Queued) {
        let bytes = item.bytes();
        if let Some(mut state) = self.admit(bytes) {
            state.items.push_back(item);
            self.accepted(state, bytes);
        }
    }

    /// Queues a span that `write` writes as one JSON object (the newline is added), or drops
    /// and counts it when the queue is full or closed. `write` runs under the queue's lock,
    /// straight into the lines the export thread will write: it should only write.
    pub(crate) fn push_line(&self, write: impl FnOnce(&mut Vec<u8>)) {
        let Some(mut state) = self.admit(0) else {
            return;
        };
        let state_ref = &mut *state;
        let open = match state_ref.items.back() {
            Some(Queued::Lines { bytes, count }) => {
                *count < self.batch_size && bytes.len() < BATCH_BYTES
            }
            _ => false,
        };
        if !open {
            let mut bytes = std::mem::take(&mut state_ref.spare);
            // Room for a whole batch at once: grown by doubling instead, a buffer would
            // leave the allocator holding the smaller ones it outgrew (the sidecar's
            // resident memory under load was 2 MiB more so, at 2,000 spans per batch).
            // Pages not yet written take no memory.
            bytes.reserve(BATCH_BYTES + LINE_SLACK);
            state_ref.items.push_back(Queued::Lines { bytes, count: 0 });
        }
        let Some(Queued::Lines { bytes, count }) = state_ref.items.back_mut() else {
            unreachable!("a lines buffer was just made the last item");
        };
        let start = bytes.len();
        write(bytes);
        bytes.push(b'\n');
        let line = bytes.len() - start;
        if state_ref.bytes + line > self.max_bytes {
            // Its size is known only once written: taken back out, and dropped as a full
            // queue drops.
            bytes.truncate(start);
            if *count == 0 {
                if let Some(Queued::Lines { bytes, .. }) = state_ref.items.pop_back() {
                    state_ref.spare = bytes;
                }
            }
            drop(state);
            self.dropped_full.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *count += 1;
        self.accepted(state, line);
    }

    /// The lock, when the queue takes one more span of `bytes` (as far as they are known
    /// yet); else the span is counted as dropped.
    fn admit(&self, bytes: usize) -> Option<MutexGuard<'_, State>> {
        let state = self.lock();
        if state.closed || state.spans >= self.capacity || state.bytes + bytes > self.max_bytes {
            drop(state);
            self.dropped_full.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(state)
    }

    /// Counts the span just queued (of `bytes`), and wakes the export thread if it needs to
    /// know.
    fn accepted(&self, mut state: MutexGuard<'_, State>, bytes: usize) {
        state.accepted += 1;
        state.spans += 1;
        state.bytes += bytes;
        let spans = state.spans;
        let filled = state.bytes >= BATCH_BYTES && state.bytes - bytes < BATCH_BYTES;
        let wake = (spans == 1 && state.worker_idle) || spans == self.batch_size || filled;
        drop(state);
        // The export thread only needs waking when there is something new to wait for: a
        // first span while it waits idle (the span starts the interval), or a full batch (of
        // spans, or of bytes).
        if wake {
            self.work.notify_one();
        }
    }

    /// For the export thread: waits until a batch is due (full, interval elapsed, flushed
    /// or closing) and takes it (about a batch's spans, or a mebibyte of their text: lines
    /// come in buffers of up to either), saying whether the queue is closing; `None` once
    /// closed and empty.
    ///
    /// Back from a batch, the thread waits out one interval for spans to come before it
    /// waits idle: a span that comes meanwhile goes out when that interval ends (or its
    /// batch fills) and need not wake it. Woken, the thread would take the core from the
    /// requests at once and find the queue empty again: two wakes, four context switches
    /// per batch, where one wake does.
    ///
    /// `spare`: the thread's lines buffer of its last batch, written: the queue's next lines
    /// go into it. Handed back here rather than after the next batch is written, the two
    /// buffers take turns and no lines buffer is made (or freed on the export thread) while
    /// the spans keep coming.
    pub(crate) fn next_batch(&self, mut spare: Vec<u8>) -> Option<(Vec<Queued>, bool)> {
        spare.clear();
        let mut state = self.lock();
        if spare.capacity() > state.spare.capacity() {
            state.spare = spare;
        }
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
                || state.spans >= self.batch_size
                || state.bytes >= BATCH_BYTES
                || state.flush_to > state.settled
                || now >= deadline
            {
                let mut batch = Vec::new();
                let (mut spans, mut bytes) = (0, 0);
                while spans < self.batch_size && bytes < BATCH_BYTES {
                    let Some(item) = state.items.pop_front() else {
                        break;
                    };
                    spans += item.spans();
                    bytes += item.bytes();
                    batch.push(item);
                }
                state.bytes -= bytes;
                state.spans -= spans;
                return Some((batch, state.closed));
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
        self.lock().spans
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

    use super::{Queue, Queued, Span, BATCH_BYTES, LINE_SLACK};

    /// A queue of ten spans and `next_batch` run on a thread of its own, as the export
    /// thread does; the receiver gets the sizes of the batches it takes, in order.
    fn started(batch_size: usize, interval: Duration) -> (Arc<Queue>, mpsc::Receiver<usize>) {
        let queue = Arc::new(Queue::new(10, ANY_SIZE, batch_size, interval));
        let (sizes, received) = mpsc::channel();
        let taker = Arc::clone(&queue);
        thread::spawn(move || {
            while let Some((batch, _)) = taker.next_batch(Vec::new()) {
                if sizes.send(batch.iter().map(Queued::spans).sum()).is_err() {
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
        Queued::Lines {
            bytes: b"{}\n".to_vec(),
            count: 1,
        }
    }

    const LONG: Duration = Duration::from_secs(30);

    /// A byte bound no test's spans come near.
    const ANY_SIZE: usize = 64 << 20;

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

    /// The lines of each batch the queue gives out, once closed, and its spans' count.
    fn drained(queue: &Queue) -> Vec<(Vec<String>, usize)> {
        queue.close();
        let mut batches = Vec::new();
        while let Some((batch, _)) = queue.next_batch(Vec::new()) {
            let spans = batch.iter().map(Queued::spans).sum();
            let lines = batch.into_iter().map(|item| match item {
                Queued::Lines { bytes, .. } => String::from_utf8(bytes).unwrap(),
                _ => "a span".to_owned(),
            });
            batches.push((lines.collect(), spans));
        }
        batches
    }

    #[test]
    fn lines_are_written_into_buffers_of_a_batch_at_most_and_a_full_queue_drops() {
        let queue = Queue::new(10, ANY_SIZE, 4, LONG);
        for i in 0..11 {
            queue.push_line(|out| out.extend_from_slice(format!("{{{i}}}").as_bytes()));
        }
        assert_eq!(queue.queued(), 10);
        assert_eq!(queue.dropped_full(), 1);
        let lines = |range: std::ops::Range<i32>| range.map(|i| format!("{{{i}}}\n")).collect();
        assert_eq!(
            drained(&queue),
            [
                (vec![lines(0..4)], 4),
                (vec![lines(4..8)], 4),
                (vec![lines(8..10)], 2)
            ]
        );
    }

    #[test]
    fn a_line_past_the_byte_bound_is_dropped_whole_and_smaller_ones_still_fit() {
        // Room for 10 bytes: "{1}\n" takes 4, a 20-byte line does not fit, "{2}\n" does.
        let queue = Queue::new(10, 10, 4, LONG);
        queue.push_line(|out| out.extend_from_slice(b"{1}"));
        queue.push_line(|out| out.extend_from_slice(&[b'x'; 19]));
        queue.push_line(|out| out.extend_from_slice(b"{2}"));
        assert_eq!((queue.queued(), queue.dropped_full()), (2, 1));
        assert_eq!(drained(&queue), [(vec!["{1}\n{2}\n".to_owned()], 2)]);
    }

    #[test]
    fn a_first_line_past_the_byte_bound_leaves_no_empty_buffer_behind() {
        let queue = Queue::new(10, 10, 4, LONG);
        queue.push_line(|out| out.extend_from_slice(&[b'x'; 19]));
        assert_eq!((queue.queued(), queue.dropped_full()), (0, 1));
        assert_eq!(drained(&queue), []);
    }

    #[test]
    fn bytes_taken_by_the_export_thread_make_room_again() {
        let queue = Queue::new(10, 8, 4, Duration::ZERO);
        queue.push_line(|out| out.extend_from_slice(b"{1}"));
        queue.push_line(|out| out.extend_from_slice(b"{2}"));
        queue.push_line(|out| out.extend_from_slice(b"{3}"));
        assert_eq!(queue.dropped_full(), 1, "8 bytes hold two lines");
        let (batch, _) = queue.next_batch(Vec::new()).unwrap();
        assert_eq!(batch.iter().map(Queued::spans).sum::<usize>(), 2);
        queue.push_line(|out| out.extend_from_slice(b"{4}"));
        queue.push_line(|out| out.extend_from_slice(b"{5}"));
        assert_eq!(queue.dropped_full(), 1);
        assert_eq!(drained(&queue), [(vec!["{4}\n{5}\n".to_owned()], 2)]);
    }

    #[test]
    fn a_batch_of_large_lines_stops_at_a_mebibyte_of_them() {
        let queue = Queue::new(10, 8 << 20, 4, LONG);
        let line = vec![b'x'; 600 << 10];
        for _ in 0..3 {
            queue.push_line(|out| out.extend_from_slice(&line));
        }
        let spans: Vec<usize> = drained(&queue).iter().map(|(_, spans)| *spans).collect();
        assert_eq!(spans, [2, 1], "a buffer closes once past a mebibyte");
    }

    #[test]
    fn a_mebibyte_of_lines_wakes_an_export_thread_waiting_out_its_interval() {
        // As a full batch does: with an hour's interval, only that ends the wait in time.
        let (queue, sizes) = started(100, Duration::from_secs(3600));
        let line = vec![b'x'; 600 << 10];
        queue.push_line(|out| out.extend_from_slice(&line));
        queue.push_line(|out| out.extend_from_slice(&line));
        assert_eq!(sizes.recv_timeout(LONG), Ok(2));
        queue.close();
    }

    #[test]
    fn a_structured_span_counts_its_text_against_the_byte_bound() {
        let queue = Queue::new(10, 1000, 4, LONG);
        let context = functrace::TraceContext::new_root(functrace::Sampling::Accept);
        let at = std::time::SystemTime::now();
        let mut large = Span::new(&context, "x", at, LONG, "svc");
        large.tags.insert("http.path".to_owned(), "/".repeat(2000));
        queue.push(Queued::span(large));
        queue.push(Queued::span(Span::new(&context, "x", at, LONG, "svc")));
        assert_eq!((queue.queued(), queue.dropped_full()), (1, 1));
    }

    #[test]
    fn a_traced_call_s_span_counts_its_error_against_the_byte_bound() {
        let queue = Queue::new(10, 1000, 4, LONG);
        let failed = |error: &str| {
            Queued::Finished(functrace::FinishedSpan {
                name: "app::handler",
                context: functrace::TraceContext::new_root(functrace::Sampling::Accept),
                start: std::time::SystemTime::now(),
                duration: LONG,
                task: 1,
                error: Some(error.to_owned()),
            })
        };
        queue.push(failed(&"e".repeat(600)));
        queue.push(failed(&"e".repeat(600)));
        queue.push(failed("short"));
        assert_eq!((queue.queued(), queue.dropped_full()), (2, 1));
        assert_eq!(queue.lock().bytes, 605);
    }

    #[test]
    fn lines_keep_their_place_among_other_spans() {
        let queue = Queue::new(10, ANY_SIZE, 4, LONG);
        let context = functrace::TraceContext::new_root(functrace::Sampling::Accept);
        let at = std::time::SystemTime::now();
        queue.push_line(|out| out.extend_from_slice(b"{1}"));
        queue.push(Queued::span(Span::new(&context, "x", at, LONG, "svc")));
        queue.push_line(|out| out.extend_from_slice(b"{2}"));
        queue.push_line(|out| out.extend_from_slice(b"{3}"));
        let batch = vec![
            "{1}\n".to_owned(),
            "a span".to_owned(),
            "{2}\n{3}\n".to_owned(),
        ];
        assert_eq!(drained(&queue), [(batch, 4)]);
    }

    #[test]
    fn the_buffer_handed_back_for_a_batch_takes_the_next_lines() {
        let queue = Queue::new(10, ANY_SIZE, 4, Duration::ZERO);
        queue.push_line(|out| out.extend_from_slice(b"{1}"));
        let mut written = Vec::with_capacity(BATCH_BYTES + LINE_SLACK);
        written.extend_from_slice(&b"{0}\n".repeat(1000));
        let handed_back = written.as_ptr();
        let (first, _) = queue.next_batch(written).unwrap();
        assert_eq!(first.iter().map(Queued::spans).sum::<usize>(), 1);
        queue.push_line(|out| out.extend_from_slice(b"{2}"));
        queue.close();
        let (batch, _) = queue.next_batch(Vec::new()).unwrap();
        let [Queued::Lines { bytes, count: 1 }] = &batch[..] else {
            panic!("one line expected");
        };
        assert_eq!(bytes, b"{2}\n", "cleared before it took the lines");
        assert_eq!(bytes.as_ptr(), handed_back, "a new buffer was made");
    }

    #[test]
    fn a_new_lines_buffer_has_room_for_a_whole_batch_at_once() {
        let queue = Queue::new(10, ANY_SIZE, 4, Duration::ZERO);
        queue.push_line(|out| out.extend_from_slice(b"{1}"));
        let (batch, _) = queue.next_batch(Vec::new()).unwrap();
        let [Queued::Lines { bytes, .. }] = &batch[..] else {
            panic!("one lines buffer expected");
        };
        assert!(bytes.capacity() >= BATCH_BYTES + LINE_SLACK);
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
