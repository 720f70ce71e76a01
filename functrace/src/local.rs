//! Everything a traced call needs from its thread, behind one thread-local access: the current
//! frame, the thread's display id, the cached sink, and the buffer lines are assembled in.
//!
//! Sync calls push and pop the thread's current frame; traced futures install theirs around
//! every poll (see [`Traced`](crate::future::Traced)).

use std::cell::{Cell, RefCell, RefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::frame::{Frame, Parent};
use crate::output::{self, Sink};
use crate::task_ids;

/// What was current before a traced future's first poll, to be put back after it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Before {
    /// The future's caller: the future is its child.
    Caller(Frame),
    /// The future is a root of `task`; `current` is a frame of another task, or none.
    Root { task: u32, current: Option<Frame> },
}

impl Before {
    /// The frame to make current again.
    pub fn frame(self) -> Option<Frame> {
        match self {
            Before::Caller(caller) => Some(caller),
            Before::Root { current, .. } => current,
        }
    }
}

pub(crate) struct Local {
    current: Cell<Option<Frame>>,
    /// The thread's display id, 0 until its first root call.
    thread_task: Cell<u32>,
    /// The next serial for a frame (see `Frame::serial`), 0 until the first.
    next_serial: Cell<u64>,
    writer: RefCell<Writer>,
}

/// The installed sink as this thread last saw it, and the lines it has not handed over.
pub(crate) struct Writer {
    /// The output generation the sink is of (see [`output::generation`]).
    generation: usize,
    sink: Option<Arc<dyn Sink>>,
    /// The sink's answers, asked once per sink rather than once per line.
    wants_lines: bool,
    batch_bytes: usize,
    /// Lines not yet handed to the sink: empty between events, except for a sink that
    /// buffers per thread. Reused, so that a traced call does not allocate.
    lines: Vec<u8>,
}

thread_local! {
    static LOCAL: Local = const {
        Local {
            current: Cell::new(None),
            thread_task: Cell::new(0),
            next_serial: Cell::new(0),
            writer: RefCell::new(Writer {
                generation: 0,
                sink: None,
                wants_lines: false,
                batch_bytes: 0,
                lines: Vec::new(),
            }),
        }
    };
}

/// Runs `f` with this thread's state; `None` while the thread is being torn down.
#[inline(always)]
pub(crate) fn with_local<R>(f: impl FnOnce(&Local) -> R) -> Option<R> {
    LOCAL.try_with(f).ok()
}

/// Serials are unique across threads: each thread counts up from its own base.
static NEXT_SERIAL_BASE: AtomicU64 = AtomicU64::new(1);

impl Writer {
    /// Whether the sink takes lines at all.
    #[inline]
    pub fn wants_lines(&self) -> bool {
        self.wants_lines
    }

    /// Appends a line with `assemble` and hands it to the sink: at once, or when this
    /// thread's batch is full for a sink that buffers per thread.
    #[inline]
    pub fn write(&mut self, assemble: impl FnOnce(&mut Vec<u8>)) {
        assemble(&mut self.lines);
        if self.lines.len() >= self.batch_bytes {
            self.hand_over();
        }
    }

    /// Hands the pending lines to the sink.
    fn hand_over(&mut self) {
        if let Some(sink) = &self.sink {
            if !self.lines.is_empty() && sink.write_line(&self.lines).is_err() {
                let lost = self.lines.iter().filter(|&&b| b == b'\n').count();
                output::count_dropped_n(lost as u64);
            }
        }
        self.lines.clear();
    }

    #[cold]
    fn switch(&mut self, generation: usize) {
        self.hand_over();
        self.sink = output::chosen();
        let sink = self.sink.as_deref();
        self.wants_lines = sink.is_some_and(|s| s.wants_lines());
        self.batch_bytes = sink.map_or(0, |s| s.buffer_per_thread());
        self.generation = generation;
    }
}

impl Local {
    /// This thread's writer, with the sink of output `generation`; `None` when that sink is
    /// none (muted), or when the writer is busy (a sink that calls traced code while writing:
    /// that inner call is not traced).
    #[inline]
    pub fn writer(&self, generation: usize) -> Option<RefMut<'_, Writer>> {
        let mut writer = self.writer.try_borrow_mut().ok()?;
        if writer.generation != generation {
            writer.switch(generation);
        }
        writer.sink.is_some().then_some(writer)
    }

    /// Hands this thread's pending lines to the sink they were written for.
    pub fn flush(&self) {
        if let Ok(mut writer) = self.writer.try_borrow_mut() {
            writer.hand_over();
        }
    }

    /// Enters a sync call: the child of the current frame, or a root of the thread's task.
    /// Returns the new frame and the one it replaces, to be restored on exit.
    #[inline]
    pub fn enter_sync(&self) -> (Frame, Option<Frame>) {
        let previous = self.current.get();
        let frame = match previous {
            Some(caller) => caller.call_under(),
            None => {
                let home = task_ids::tokio_task();
                Frame::root(self.task_of(home), home)
            }
        };
        self.current.set(Some(frame));
        (frame, previous)
    }

    /// Enters a traced future at its first poll: the child of the current frame if that is
    /// of the same tokio task, else a root of the task. Returns the new frame and what it
    /// replaced (to be restored after the poll).
    #[inline]
    pub fn enter_future(&self) -> (Frame, Before) {
        let home = task_ids::tokio_task();
        let (frame, before) = match self.current.get() {
            Some(caller) if caller.hosts(home) => (caller.call_under(), Before::Caller(caller)),
            current => {
                let task = self.task_of(home);
                let before = Before::Root { task, current };
                (Frame::root(task, home), before)
            }
        };
        self.current.set(Some(frame));
        (frame, before)
    }

    /// Counts open a traced future that outlived its first poll: in its caller's frame
    /// (about to be restored), or among its task's roots. Returns whom to uncount it with
    /// when it ends.
    pub fn count_open(&self, before: &mut Before) -> Parent {
        match before {
            Before::Caller(caller) => caller.count_open(|| self.next_serial()),
            Before::Root { task, .. } => {
                task_ids::root_opened(*task);
                Parent::Root(*task)
            }
        }
    }

    /// Uncounts a traced future that ended (completed or dropped): with the current frame if
    /// that is the one it started under, or with the roots of its task.
    pub fn future_ended(&self, parent: Parent) {
        match parent {
            Parent::Frame(serial) => {
                if let Some(mut frame) = self.current.get() {
                    frame.future_ended(serial);
                    self.current.set(Some(frame));
                }
            }
            Parent::Root(task) => task_ids::root_closed(task),
        }
    }

    /// Makes `frame` current, returning the previous one.
    #[inline]
    pub fn replace(&self, frame: Option<Frame>) -> Option<Frame> {
        self.current.replace(frame)
    }

    /// The display id of tokio task `home`, or of this thread outside any task.
    fn task_of(&self, home: u64) -> u32 {
        if home != 0 {
            return task_ids::tokio_display_id(home);
        }
        if self.thread_task.get() == 0 {
            self.thread_task.set(task_ids::next_task_id());
        }
        self.thread_task.get()
    }

    fn next_serial(&self) -> u64 {
        let mut serial = self.next_serial.get();
        if serial == 0 {
            serial = NEXT_SERIAL_BASE.fetch_add(1, Ordering::Relaxed) << 32;
        }
        self.next_serial.set(serial + 1);
        serial
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        self.flush();
    }
}
