//! The async side: a future that owns its frame and makes it current around every poll
//! (the `Instrumented` pattern), so depth and task id follow the future across worker
//! threads and never leak into other tasks polled by the same worker.

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::thread;

use pin_project_lite::pin_project;

use crate::call::{self, Call};
use crate::filter::Callsite;
use crate::frame::{Frame, Parent};
use crate::line::{Detail, Exit};
use crate::local::{with_local, Local};
use crate::trace_context;

enum State {
    /// Not polled yet, a call of `site`: the parent frame is the one current at the first
    /// poll. (The call site lives here and then in the call, not beside the state: that keeps
    /// every traced future a word smaller.)
    Unpolled(&'static Callsite),
    /// Went on after its first poll, counted open with `parent`. (A call that completes in
    /// its first poll never gets here: it stays on that poll's stack.)
    Running(Call, Parent),
    /// Tracing was muted, or the filter left the fn out, at the first poll.
    Untraced,
    Done,
}

/// The state of a traced future's call. Dropped while running, it prints the `(cancelled)`
/// exit line: a field after the inner future, so that the calls inside close first.
struct Open(State);

impl Drop for Open {
    #[inline]
    fn drop(&mut self) {
        if let State::Running(call, parent) = &self.0 {
            cancelled(call, *parent);
        }
    }
}

#[cold]
fn cancelled(call: &Call, parent: Parent) {
    with_local(|local| {
        call.exit(local, Detail::None, Exit::Cancelled);
        local.future_ended(parent);
    });
}
/// Renders the returned value for the exit line (the `ret` option).
type Ret<T> = fn(&T) -> String;
/// Renders the error of an output that is an `Err` (the `err` option).
type Err<T> = fn(&T) -> Option<String>;

struct Options<T> {
    args: Option<String>,
    ret: Option<Ret<T>>,
    err: Option<Err<T>>,
}

impl<T> Options<T> {
    /// The exit line's note for this output: the error if it is one, else the value.
    fn note(&self, output: &T) -> Option<Note> {
        if let Some(error) = self.err.and_then(|err| err(output)) {
            return Some(Note::Failed(error));
        }
        self.ret.map(|ret| Note::Value(ret(output)))
    }
}

/// How a poll ended the call.
enum Ended {
    /// It completed, with the exit line's note.
    Returned(Option<Note>),
    Panicked,
}

/// The exit line's note: the returned value, or the error.
enum Note {
    Value(String),
    Failed(String),
}

pin_project! {
    /// The body of a traced `async fn`. Prints the enter line at its first poll and the exit
    /// line when it completes, panics (`(panicked)`) or is dropped unfinished (`(cancelled)`).
    #[must_use = "futures do nothing unless polled"]
    pub struct Traced<F: Future> {
        // Fields drop in order: the inner future before `state`.
        #[pin]
        inner: F,
        state: Open,
        // Boxed: only `args`/`ret`/`err` need them, and a plain traced future stays small.
        options: Option<Box<Options<F::Output>>>,
    }
}

impl<F: Future> Traced<F> {
    /// Wraps the body of the traced async fn of `site`.
    pub fn new(site: &'static Callsite, inner: F) -> Traced<F> {
        Traced {
            inner,
            state: Open(State::Unpolled(site)),
            options: None,
        }
    }

    /// Shows the arguments, rendered when the fn was called, on the enter line.
    pub fn with_args(mut self, args: Option<String>) -> Traced<F> {
        self.options().args = args;
        self
    }

    /// Shows the returned value on the exit line.
    pub fn with_ret(mut self, ret: Ret<F::Output>) -> Traced<F> {
        self.options().ret = Some(ret);
        self
    }

    /// Shows an `Err` output on the exit line and reports it as the span's error.
    pub fn with_err(mut self, err: Err<F::Output>) -> Traced<F> {
        self.options().err = Some(err);
        self
    }

    fn options(&mut self) -> &mut Options<F::Output> {
        self.options.get_or_insert_with(|| {
            Box::new(Options {
                args: None,
                ret: None,
                err: None,
            })
        })
    }
}

impl<F: Future> Future for Traced<F> {
    type Output = F::Output;

    /// Inlined into the caller's poll for an untraced call (muted, filtered out): a match on
    /// the state (and at the first poll, the loads that decide) and the inner poll. The
    /// traced path is out of line.
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let state = &mut this.state.0;
        match *state {
            State::Untraced | State::Done => this.inner.poll(cx),
            // Muted or filtered out: decided here, without leaving the caller's poll.
            State::Unpolled(site) => match call::wanted(site) {
                None => {
                    *state = State::Untraced;
                    this.inner.poll(cx)
                }
                Some(generation) => {
                    first_poll(this.inner, state, site, generation, this.options, cx)
                }
            },
            State::Running(..) => later_poll(this.inner, state, this.options, cx),
        }
    }
}

/// The first poll: enters the call, which stays on the stack unless the poll returns
/// `Pending`. Most calls complete in their first poll: they are never written into the
/// future, nor counted open (a call that completes there overlaps no sibling).
///
/// A panic in the poll is caught to print the exit line, then resumed: that costs nothing
/// unless it happens, where a guard with a destructor would move the call in and out of it
/// on every first poll.
fn first_poll<F: Future>(
    inner: Pin<&mut F>,
    state: &mut State,
    site: &'static Callsite,
    generation: usize,
    options: &Option<Box<Options<F::Output>>>,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    let args = options
        .as_ref()
        .and_then(|o| o.args.as_deref())
        .map_or(Detail::None, Detail::Text);
    let entered = call::enter_wanted(generation, site, args, |local| local.enter_future());
    let Some((mut call, mut before)) = entered else {
        *state = State::Untraced;
        return inner.poll(cx);
    };
    // Inside a trace the call made its span current: the enclosing one goes back after the
    // poll. Outside, the context is left alone.
    let outer = call.span.as_ref().map(|span| span.outer());
    let polled = panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx)));
    if let Some(outer) = outer {
        trace_context::replace_current(outer);
    }
    let ended = ended(&polled, options);
    *state = State::Done;
    with_local(|local| match &ended {
        Some(ended) => {
            restore(local, &mut call, before.frame());
            exit(local, &call, ended);
        }
        None => {
            let parent = local.count_open(&mut before);
            restore(local, &mut call, before.frame());
            *state = State::Running(call, parent);
        }
    });
    polled.unwrap_or_else(|panic| panic::resume_unwind(panic))
}

/// A later poll of a call that went on after its first poll (`State::Running`): its frame
/// and span are made current around the poll, as in [`first_poll`].
fn later_poll<F: Future>(
    inner: Pin<&mut F>,
    state: &mut State,
    options: &Option<Box<Options<F::Output>>>,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    let State::Running(call, parent) = state else {
        return inner.poll(cx);
    };
    let previous = with_local(|local| local.replace(Some(call.frame))).flatten();
    let outer = call
        .span
        .as_ref()
        .map(|span| trace_context::replace_current(Some(span.context)));
    let polled = panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx)));
    if let Some(outer) = outer {
        trace_context::replace_current(outer);
    }
    let ended = ended(&polled, options);
    with_local(|local| {
        restore(local, call, previous);
        if let Some(ended) = &ended {
            exit(local, call, ended);
            local.future_ended(*parent);
        }
    });
    if ended.is_some() {
        *state = State::Done;
    }
    polled.unwrap_or_else(|panic| panic::resume_unwind(panic))
}

/// How a poll ended its call: completed (with the exit line's note for its output: the
/// `ret` and `err` options), or panicked. `None`: the call goes on.
fn ended<T>(polled: &thread::Result<Poll<T>>, options: &Option<Box<Options<T>>>) -> Option<Ended> {
    match polled {
        Ok(Poll::Ready(output)) => Some(Ended::Returned(
            options.as_ref().and_then(|o| o.note(output)),
        )),
        Ok(Poll::Pending) => None,
        Err(_) => Some(Ended::Panicked),
    }
}

/// Prints the exit line of a call that ended in a poll.
fn exit(local: &Local, call: &Call, ended: &Ended) {
    let (note, how) = match ended {
        Ended::Returned(None) => (Detail::None, Exit::Returned),
        Ended::Returned(Some(Note::Value(text))) => (Detail::Text(text), Exit::Returned),
        Ended::Returned(Some(Note::Failed(text))) => (Detail::FailedText(text), Exit::Returned),
        Ended::Panicked => (Detail::None, Exit::Panicked),
    };
    call.exit(local, note, how);
}

/// Makes `previous` current again, keeping in the call's frame what the poll changed in it
/// (the futures it started during the poll are counted there).
fn restore(local: &Local, call: &mut Call, previous: Option<Frame>) {
    if let Some(own) = local.replace(previous) {
        call.frame = own;
    }
}
