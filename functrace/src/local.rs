//! Everything a traced call needs from its thread, behind one thread-local access: the current
//! frame, the thread's display id, the cached sink, and the buffer lines are assembled in.
//!
//! Sync calls push and pop the thread's current frame; traced futures install theirs around
//! every poll (see [`Traced`](crate::future::Traced)).

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::frame::{Frame, Parent};
use crate::output::{self, Sink};
use crate::task_ids;

pub(crate) struct Local {
    current: Cell<Option<Frame>>,
    /// The thread's display id, 0 until its first root call.
    thread_task: Cell<u32>,
    /// The next serial for a frame (see `Frame::serial`), 0 until the first.
    next_serial: Cell<u64>,
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
            next_serial: Cell::new(0),
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

/// Serials are unique across threads: each thread counts up from its own base.
static NEXT_SERIAL_BASE: AtomicU64 = AtomicU64::new(1);

impl Local {
    /// Runs `f` with the installed sink of `generation` (see [`output::generation`]) unless
    /// tracing is muted.
    #[inline]
    pub fn with_sink<R>(&self, generation: usize, f: impl FnOnce(&dyn Sink) -> R) -> Option<R> {
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

    /// Enters a sync call: the child of the current frame, or a root of the thread's task.
    /// Returns the new frame and the one it replaces, to be restored on exit.
    #[inline]
    pub fn enter_sync(&self) -> (Frame, Option<Frame>) {
        let previous = self.current.get();
        let frame = match previous {
            Some(caller) => caller.sync_child(),
            None => {
                let home = task_ids::tokio_task();
                Frame::sync_root(self.task_of(home), home)
            }
        };
        self.current.set(Some(frame));
        (frame, previous)
    }

    /// Enters a traced future at its first poll: the child of the current frame if that is
    /// of the same tokio task, else a root of the task. Returns the new frame, the one it
    /// replaces (to be restored after the poll), and whom to uncount it with when it ends.
    pub fn enter_future(&self) -> (Frame, Option<Frame>, Parent) {
        let home = task_ids::tokio_task();
        let (frame, parent) = match self.current.get() {
            Some(mut caller) if caller.hosts(home) => {
                let started = caller.future_child(|| self.next_serial());
                self.current.set(Some(caller));
                started
            }
            _ => Frame::future_root(self.task_of(home), home),
        };
        (frame, self.current.replace(Some(frame)), parent)
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

fn hand_over(sink: &dyn Sink, lines: &mut Vec<u8>) {
    if sink.write_line(lines).is_err() {
        let lost = lines.iter().filter(|&&b| b == b'\n').count();
        output::count_dropped_n(lost as u64);
    }
    lines.clear();
}
