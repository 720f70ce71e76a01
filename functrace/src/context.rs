//! The current frame of each thread, the per-thread sink cache, and task ids.
//!
//! A frame is the position of a traced call: its task's display id and its depth. Sync calls
//! push and pop the thread's current frame; traced futures install theirs around every poll.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::output::{self, Sink};

/// Where a traced call stands: which task, how deep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    pub task: u32,
    pub depth: u32,
}

impl Frame {
    /// The frame a sync call was entered from: the same task one level up, or none at depth 1
    /// (only a root starts at depth 1).
    pub fn parent(self) -> Option<Frame> {
        (self.depth > 1).then(|| Frame {
            task: self.task,
            depth: self.depth - 1,
        })
    }

    fn child(self) -> Frame {
        Frame {
            task: self.task,
            depth: self.depth + 1,
        }
    }
}

/// Whether a call with no current frame starts a new task or joins the ambient one.
#[derive(Clone, Copy)]
pub(crate) enum Root {
    /// A sync call: the ambient tokio task, else the thread.
    Sync,
    /// A future first polled with no current frame: the ambient tokio task, else a new task.
    Async,
}

/// Everything a traced call needs from its thread, behind one thread-local access.
pub(crate) struct Local {
    current: Cell<Option<Frame>>,
    thread_task: Cell<u32>,
    sink_generation: Cell<usize>,
    sink: RefCell<Option<Arc<dyn Sink>>>,
    /// The sink's answers, asked once per sink rather than once per line.
    wants_lines: Cell<bool>,
    batch_bytes: Cell<usize>,
    /// Lines not yet handed to the sink: empty between events, except for a sink that
    /// buffers per thread. Reused, so that a traced call does not allocate.
    lines: RefCell<Vec<u8>>,
}

thread_local! {
    static LOCAL: Local = const {
        Local {
            current: Cell::new(None),
            thread_task: Cell::new(0),
            sink_generation: Cell::new(0),
            sink: RefCell::new(None),
            wants_lines: Cell::new(false),
            batch_bytes: Cell::new(0),
            lines: RefCell::new(Vec::new()),
        }
    };
}

/// Runs `f` with this thread's state; `None` while the thread is being torn down.
#[inline(always)]
pub(crate) fn with_local<R>(f: impl FnOnce(&Local) -> R) -> Option<R> {
    LOCAL.try_with(f).ok()
}

impl Local {
    /// Runs `f` with the installed sink unless tracing is muted.
    #[inline]
    pub fn with_sink<R>(&self, f: impl FnOnce(&dyn Sink) -> R) -> Option<R> {
        let generation = output::generation();
        if self.sink_generation.get() != generation {
            self.switch_sink(generation);
        }
        let sink = self.sink.try_borrow().ok()?;
        sink.as_deref().map(f)
    }

    #[cold]
    fn switch_sink(&self, generation: usize) {
        self.flush();
        if let Ok(mut sink) = self.sink.try_borrow_mut() {
            *sink = output::chosen();
            let sink = sink.as_deref();
            self.wants_lines.set(sink.is_some_and(|s| s.wants_lines()));
            self.batch_bytes
                .set(sink.map_or(0, |s| s.buffer_per_thread()));
            self.sink_generation.set(generation);
        }
    }

    /// Whether the sink of the last [`with_sink`](Local::with_sink) takes lines at all.
    #[inline]
    pub fn wants_lines(&self) -> bool {
        self.wants_lines.get()
    }

    /// Appends a line with `assemble` and hands it to `sink`: at once, or when this thread's
    /// batch is full for a sink that buffers per thread.
    #[inline]
    pub fn write(&self, sink: &dyn Sink, assemble: impl FnOnce(&mut Vec<u8>)) {
        // Busy only if a sink called traced code while writing: drop that inner line.
        let Ok(mut lines) = self.lines.try_borrow_mut() else {
            output::count_dropped();
            return;
        };
        assemble(&mut lines);
        if lines.len() >= self.batch_bytes.get() {
            hand_over(sink, &mut lines);
        }
    }

    /// Hands this thread's pending lines to the sink they were written for.
    pub fn flush(&self) {
        let (Ok(mut lines), Ok(sink)) = (self.lines.try_borrow_mut(), self.sink.try_borrow())
        else {
            return;
        };
        if let Some(sink) = sink.as_deref() {
            if !lines.is_empty() {
                hand_over(sink, &mut lines);
            }
        }
    }

    /// Enters a call: the child of the current frame, or a new root. Returns the new frame and
    /// the one it replaces, to be restored on exit.
    #[inline]
    pub fn push(&self, root: Root) -> (Frame, Option<Frame>) {
        let parent = self.current.get();
        let frame = match parent {
            Some(parent) => parent.child(),
            None => Frame {
                task: self.ambient_task(root),
                depth: 1,
            },
        };
        self.current.set(Some(frame));
        (frame, parent)
    }

    /// Makes `frame` current, returning the previous one.
    #[inline]
    pub fn replace(&self, frame: Option<Frame>) -> Option<Frame> {
        self.current.replace(frame)
    }

    fn ambient_task(&self, root: Root) -> u32 {
        if let Some(task) = tokio_task() {
            return task;
        }
        match root {
            Root::Async => next_task_id(),
            Root::Sync => {
                if self.thread_task.get() == 0 {
                    self.thread_task.set(next_task_id());
                }
                self.thread_task.get()
            }
        }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        self.flush();
    }
}

fn hand_over(sink: &dyn Sink, lines: &mut Vec<u8>) {
    if sink.write_line(lines).is_err() {
        let lost = lines.iter().filter(|&&b| b == b'\n').count();
        output::count_dropped_n(lost as u64);
    }
    lines.clear();
}

static NEXT_TASK_ID: AtomicU32 = AtomicU32::new(1);

/// Display ids are small and sequential in order of first appearance.
fn next_task_id() -> u32 {
    NEXT_TASK_ID.fetch_add(1, Ordering::Relaxed)
}

#[cfg(feature = "tokio")]
fn tokio_task() -> Option<u32> {
    tokio::task::try_id().map(tokio_ids::display_id)
}

#[cfg(not(feature = "tokio"))]
fn tokio_task() -> Option<u32> {
    None
}

/// Display ids of tokio tasks, in a fixed-size table so that a server spawning millions of
/// tasks does not grow it: tokio ids are sequential, so a slot is only reused by a task
/// spawned `SLOTS` tasks later, and only an entry that old (still running and tracing after
/// that many newer tasks) can be forgotten and get a fresh display id. Each thread remembers
/// the last task it looked up, so a task's sync calls do not take the lock every time.
#[cfg(feature = "tokio")]
mod tokio_ids {
    use std::cell::Cell;
    use std::hash::{Hash, Hasher};
    use std::sync::{Mutex, PoisonError};
    use tokio::task::Id;

    const SLOTS: usize = 4096;
    static TABLE: Mutex<Vec<Option<(u64, u32)>>> = Mutex::new(Vec::new());

    thread_local! {
        static LAST: Cell<Option<(u64, u32)>> = const { Cell::new(None) };
    }

    pub fn display_id(id: Id) -> u32 {
        let number = number(id);
        if let Ok(Some((last, display))) = LAST.try_with(Cell::get) {
            if last == number {
                return display;
            }
        }
        let display = look_up(number);
        let _ = LAST.try_with(|last| last.set(Some((number, display))));
        display
    }

    fn look_up(number: u64) -> u32 {
        let slot = (number % SLOTS as u64) as usize;
        let mut table = TABLE.lock().unwrap_or_else(PoisonError::into_inner);
        if table.is_empty() {
            table.resize(SLOTS, None);
        }
        match table[slot] {
            Some((known, display)) if known == number => display,
            _ => {
                let display = super::next_task_id();
                table[slot] = Some((number, display));
                display
            }
        }
    }

    /// tokio's `Id` is a sequence number that it hashes as one `u64`; keep that number.
    fn number(id: Id) -> u64 {
        #[derive(Default)]
        struct Number(u64);
        impl Hasher for Number {
            fn finish(&self) -> u64 {
                self.0
            }
            fn write(&mut self, bytes: &[u8]) {
                for b in bytes {
                    self.0 = self.0.rotate_left(8) ^ u64::from(*b);
                }
            }
            fn write_u64(&mut self, n: u64) {
                self.0 = n;
            }
        }
        let mut number = Number::default();
        id.hash(&mut number);
        number.0
    }
}
