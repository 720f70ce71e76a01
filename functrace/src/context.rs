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
    /// The line being assembled, reused so that a traced call does not allocate.
    pub line: RefCell<Vec<u8>>,
}

thread_local! {
    static LOCAL: Local = const {
        Local {
            current: Cell::new(None),
            thread_task: Cell::new(0),
            sink_generation: Cell::new(0),
            sink: RefCell::new(None),
            line: RefCell::new(Vec::new()),
        }
    };
}

/// Runs `f` with this thread's state; `None` while the thread is being torn down.
#[inline]
pub(crate) fn with_local<R>(f: impl FnOnce(&Local) -> R) -> Option<R> {
    LOCAL.try_with(f).ok()
}

impl Local {
    /// Runs `f` with the installed sink unless tracing is muted.
    #[inline]
    pub fn with_sink<R>(&self, f: impl FnOnce(&dyn Sink) -> R) -> Option<R> {
        self.refresh_sink();
        let sink = self.sink.try_borrow().ok()?;
        sink.as_deref().map(f)
    }

    #[inline]
    fn refresh_sink(&self) {
        let generation = output::generation();
        if self.sink_generation.get() != generation {
            if let Ok(mut sink) = self.sink.try_borrow_mut() {
                *sink = output::chosen();
                self.sink_generation.set(generation);
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
/// that many newer tasks) can be forgotten and get a fresh display id.
#[cfg(feature = "tokio")]
mod tokio_ids {
    use std::hash::{Hash, Hasher};
    use std::sync::{Mutex, PoisonError};
    use tokio::task::Id;

    const SLOTS: usize = 4096;
    static TABLE: Mutex<Vec<Option<(Id, u32)>>> = Mutex::new(Vec::new());

    pub fn display_id(id: Id) -> u32 {
        let slot = slot_of(id);
        let mut table = TABLE.lock().unwrap_or_else(PoisonError::into_inner);
        if table.is_empty() {
            table.resize(SLOTS, None);
        }
        match table[slot] {
            Some((known, display)) if known == id => display,
            _ => {
                let display = super::next_task_id();
                table[slot] = Some((id, display));
                display
            }
        }
    }

    /// tokio's `Id` hashes as its sequence number; keep that number.
    fn slot_of(id: Id) -> usize {
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
        (number.0 % SLOTS as u64) as usize
    }
}
