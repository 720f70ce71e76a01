//! The async side: a future that owns its frame and makes it current around every poll
//! (the `Instrumented` pattern), so depth and task id follow the future across worker
//! threads and never leak into other tasks polled by the same worker.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::call::{self, Call};
use crate::context::{with_local, Frame, Root};
use crate::line::{Detail, Exit};

enum State {
    /// Not polled yet: the parent frame is the one current at the first poll.
    Unpolled,
    Running(Call),
    /// Tracing was muted at the first poll.
    Untraced,
    Done,
}

/// Renders the exit line's note from the output (the `ret` and `err` options).
type Note<T> = fn(&T) -> Option<String>;

pin_project! {
    /// The body of a traced `async fn`. Prints the enter line at its first poll and the exit
    /// line when it completes, panics (`(panicked)`) or is dropped unfinished (`(cancelled)`).
    #[must_use = "futures do nothing unless polled"]
    pub struct Traced<F: Future> {
        #[pin]
        inner: F,
        name: &'static str,
        state: State,
        args: Option<String>,
        note: Option<Note<F::Output>>,
    }

    impl<F: Future> PinnedDrop for Traced<F> {
        fn drop(this: Pin<&mut Self>) {
            if let State::Running(call) = this.project().state {
                with_local(|local| call.exit(local, Detail::None, Exit::Cancelled));
            }
        }
    }
}

impl<F: Future> Traced<F> {
    /// Wraps the body of the traced async fn `name` (its full path).
    pub fn new(name: &'static str, inner: F) -> Traced<F> {
        Traced {
            inner,
            name,
            state: State::Unpolled,
            args: None,
            note: None,
        }
    }

    /// Shows the arguments, rendered when the fn was called, on the enter line.
    pub fn with_args(mut self, args: Option<String>) -> Traced<F> {
        self.args = args;
        self
    }

    /// Adds a note made from the output to the exit line.
    pub fn with_note(mut self, note: Note<F::Output>) -> Traced<F> {
        self.note = Some(note);
        self
    }
}

impl<F: Future> Future for Traced<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let previous = match this.state {
            State::Unpolled => {
                let args = this.args.as_deref().map_or(Detail::None, Detail::Text);
                match call::enter(this.name, args, Root::Async) {
                    Some((call, previous)) => {
                        *this.state = State::Running(call);
                        previous
                    }
                    None => {
                        *this.state = State::Untraced;
                        return this.inner.poll(cx);
                    }
                }
            }
            State::Running(call) => with_local(|local| local.replace(Some(call.frame))).flatten(),
            State::Untraced | State::Done => return this.inner.poll(cx),
        };
        let mut polling = Polling {
            state: this.state,
            previous,
            finished: None,
        };
        let poll = this.inner.poll(cx);
        if let Poll::Ready(output) = &poll {
            let note = this.note.and_then(|note| note(output));
            polling.finished = Some((Exit::Returned, note));
        }
        poll
    }
}

/// Restores the frame that was current before the poll, even if the poll panics, and prints
/// the exit line of a call that completed or panicked.
struct Polling<'a> {
    state: &'a mut State,
    previous: Option<Frame>,
    finished: Option<(Exit, Option<String>)>,
}

impl Drop for Polling<'_> {
    fn drop(&mut self) {
        let finished = if std::thread::panicking() {
            Some((Exit::Panicked, None))
        } else {
            self.finished.take()
        };
        let ended = finished.map(|end| (std::mem::replace(self.state, State::Done), end));
        with_local(|local| {
            local.replace(self.previous);
            if let Some((State::Running(call), (how, note))) = ended {
                let note = note.as_deref().map_or(Detail::None, Detail::Text);
                call.exit(local, note, how);
            }
        });
    }
}
