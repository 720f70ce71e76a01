//! [`FunctraceSubscriber`]: a `tracing` subscriber of functrace's own, without the registry.
//!
//! A span is a record that lives as long as the process: its [`Id`] is the record's address,
//! so that finding it is a cast rather than a look-up. Closed records are kept for the next
//! spans, first on the thread that closed them and past a few dozen in a shared list, so that
//! memory stays bounded by the most spans ever open at once however spans move between threads.
//! A record is reached by one thread at a time: between an enter or exit and the next under its
//! own lock (an uncontended one: a span's enters and exits usually run on one thread), and
//! without it when made (its id not handed out yet) and closed (no handle left).

use std::cell::{RefCell, UnsafeCell};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_core::span::Current;

use super::state::{self, State};

/// A `tracing` [`Subscriber`] that prints spans (`#[instrument]`, `info_span!`, ...) as
/// functrace lines, to functrace's output, in one tree with `#[trace]` calls: what
/// [`FunctraceLayer`](super::FunctraceLayer) prints, without `tracing_subscriber`'s registry,
/// several times faster. Made by [`functrace::subscriber()`](crate::subscriber()); see
/// [the module](super) for what it prints.
///
/// It takes global filters as a layer over it: `functrace::subscriber().with(EnvFilter::new
/// ("info"))` or `.with(Targets::new()...)` (`tracing_subscriber::prelude::*`). Layers that
/// need the registry (`fmt`, per-layer filters, `tracing-opentelemetry`) do not go over it:
/// use [`functrace::layer()`](crate::layer) beside them. `Span::current()` works.
#[derive(Clone, Copy, Debug, Default)]
pub struct FunctraceSubscriber {
    _private: (),
}

impl FunctraceSubscriber {
    /// The subscriber; also [`functrace::subscriber()`](crate::subscriber()).
    pub fn new() -> FunctraceSubscriber {
        FunctraceSubscriber::default()
    }
}

/// One span.
struct SpanRecord {
    /// The span's handles (`Span` values and their clones).
    handles: AtomicUsize,
    /// Held while `inner` is read or written.
    busy: AtomicBool,
    inner: UnsafeCell<Inner>,
}

struct Inner {
    metadata: &'static Metadata<'static>,
    state: State,
}

// SAFETY: `inner` is only reached under `busy` (`SpanRecord::with`), by the one thread that
// took the record from the spare ones and has not handed its id out yet, or by the one that
// dropped its last handle.
unsafe impl Sync for SpanRecord {}

impl SpanRecord {
    fn of(id: &Id) -> &'static SpanRecord {
        // SAFETY: every id this subscriber hands out is the address of a leaked `SpanRecord`,
        // and `tracing` passes a subscriber only the ids it handed out. Records are never
        // freed, so the address stays valid.
        unsafe { &*(id.into_u64() as usize as *const SpanRecord) }
    }

    fn id(&'static self) -> Id {
        Id::from_u64(self as *const SpanRecord as usize as u64)
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        while self
            .busy
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::thread::yield_now();
        }
        struct Release<'a>(&'a AtomicBool);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _release = Release(&self.busy);
        // SAFETY: `busy` is held until `_release` drops.
        f(unsafe { &mut *self.inner.get() })
    }
}

/// How many spare records a thread keeps before it hands half of them to the shared list.
const SPARE_PER_THREAD: usize = 64;

/// Records handed over by threads with too many spare ones.
static SHARED_SPARE: Mutex<Vec<&'static SpanRecord>> = Mutex::new(Vec::new());

/// How many records were made (for a test that they are reused).
#[cfg(test)]
static RECORDS_MADE: AtomicUsize = AtomicUsize::new(0);

struct Thread {
    spare: RefCell<Vec<&'static SpanRecord>>,
    /// The spans entered on this thread and not exited, innermost last.
    entered: RefCell<Vec<(&'static SpanRecord, &'static Metadata<'static>)>>,
}

impl Drop for Thread {
    /// A thread's spare records go to the shared list when it ends.
    fn drop(&mut self) {
        let spare = std::mem::take(self.spare.get_mut());
        let mut shared = SHARED_SPARE
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        shared.extend(spare);
    }
}

thread_local! {
    static THREAD: Thread = const {
        Thread {
            spare: RefCell::new(Vec::new()),
            entered: RefCell::new(Vec::new()),
        }
    };
}

/// A record for a new span of `metadata`'s: a spare one, or a new one.
fn take_record(metadata: &'static Metadata<'static>) -> &'static SpanRecord {
    let spare = THREAD.try_with(|thread| {
        let mut spare = thread.spare.borrow_mut();
        if spare.is_empty() {
            let mut shared = SHARED_SPARE
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let keep = shared.len().saturating_sub(SPARE_PER_THREAD / 2);
            spare.extend(shared.drain(keep..));
        }
        spare.pop()
    });
    spare.ok().flatten().unwrap_or_else(|| {
        #[cfg(test)]
        RECORDS_MADE.fetch_add(1, Ordering::Relaxed);
        Box::leak(Box::new(SpanRecord {
            handles: AtomicUsize::new(0),
            busy: AtomicBool::new(false),
            inner: UnsafeCell::new(Inner {
                metadata,
                state: State::default(),
            }),
        }))
    })
}

/// Keeps a closed span's record for a later span.
fn give_back(record: &'static SpanRecord) {
    let kept = THREAD.try_with(|thread| {
        let mut spare = thread.spare.borrow_mut();
        spare.push(record);
        if spare.len() > SPARE_PER_THREAD {
            let half = spare.len() / 2;
            let mut shared = SHARED_SPARE
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            shared.extend(spare.drain(half..));
        }
    });
    if kept.is_err() {
        let mut shared = SHARED_SPARE
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        shared.push(record);
    }
}

impl Subscriber for FunctraceSubscriber {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::always()
    }

    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let record = take_record(attrs.metadata());
        record.handles.store(1, Ordering::Relaxed);
        // SAFETY: a record taken from the spare ones is this thread's alone until its id is
        // handed out (what closed it happened before it was put back).
        let inner = unsafe { &mut *record.inner.get() };
        inner.metadata = attrs.metadata();
        inner.state.reset(attrs);
        record.id()
    }

    fn record(&self, id: &Id, values: &Record<'_>) {
        // Rendered before the lock is taken: a value's `Debug` may itself use `tracing`.
        let rendered = state::render(values);
        SpanRecord::of(id).with(|inner| inner.state.record_rendered(&rendered));
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, _: &Event<'_>) {}

    fn enter(&self, id: &Id) {
        let record = SpanRecord::of(id);
        let metadata = record.with(|inner| {
            inner.state.enter(inner.metadata);
            inner.metadata
        });
        let _ = THREAD.try_with(|thread| thread.entered.borrow_mut().push((record, metadata)));
    }

    fn exit(&self, id: &Id) {
        let record = SpanRecord::of(id);
        record.with(|inner| inner.state.exit());
        let _ = THREAD.try_with(|thread| {
            let mut entered = thread.entered.borrow_mut();
            if let Some(at) = entered.iter().rposition(|(r, _)| std::ptr::eq(*r, record)) {
                entered.remove(at);
            }
        });
    }

    fn clone_span(&self, id: &Id) -> Id {
        SpanRecord::of(id).handles.fetch_add(1, Ordering::Relaxed);
        id.clone()
    }

    fn try_close(&self, id: Id) -> bool {
        let record = SpanRecord::of(&id);
        // The last handle: no other thread holds one to clone it from, so a load will do.
        if record.handles.load(Ordering::Acquire) != 1
            && record.handles.fetch_sub(1, Ordering::AcqRel) != 1
        {
            return false;
        }
        // SAFETY: with its last handle gone, no other thread can reach the record.
        let inner = unsafe { &mut *record.inner.get() };
        inner.state.close(inner.metadata);
        give_back(record);
        true
    }

    fn current_span(&self) -> Current {
        let top = THREAD.try_with(|thread| thread.entered.borrow().last().copied());
        match top {
            Ok(Some((record, metadata))) => Current::new(record.id(), metadata),
            _ => Current::none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spans made on one thread and closed on another, round after round: the records the
    /// closing thread keeps come back to the making thread through the shared list, so that
    /// no more are made than were ever open at once, plus what the threads keep spare.
    #[test]
    fn records_closed_on_another_thread_are_made_again_on_the_first() {
        const OPEN: usize = 200;
        let dispatch = tracing::Dispatch::new(FunctraceSubscriber::new());
        let made_before = RECORDS_MADE.load(Ordering::Relaxed);
        tracing::dispatcher::with_default(&dispatch, || {
            for _ in 0..50 {
                let spans: Vec<_> = (0..OPEN).map(|_| tracing::info_span!("moved")).collect();
                std::thread::scope(|scope| {
                    scope.spawn(move || drop(spans));
                });
            }
        });
        let made = RECORDS_MADE.load(Ordering::Relaxed) - made_before;
        assert!(made <= OPEN + 2 * SPARE_PER_THREAD, "{made} records made");
    }
}
