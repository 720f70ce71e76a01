//! The async side: a future that owns its frame and makes it current around every poll
//! (the `Instrumented` pattern), so depth and task id follow the future across worker
//! threads and never leak into other tasks polled by the same worker.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::call::{self, Call};
use crate::filter::Callsite;
use crate::frame::{Frame, Parent};
use crate::line::{Detail, Exit};
use crate::local::{with_local, Before, Local};
use crate::trace_context::{self, TraceContext};

enum State {
    /// Not polled yet: the parent frame is the one current at the first poll.
    Unpolled,
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
        site: &'static Callsite,
        // Boxed: only `args`/`ret`/`err` need them, and a plain traced future stays small.
        options: Option<Box<Options<F::Output>>>,
    }
}

impl<F: Future> Traced<F> {
    /// Wraps the body of the traced async fn of `site`.
    pub fn new(site: &'static Callsite, inner: F) -> Traced<F> {
        Traced {
            inner,
            state: Open(State::Unpolled),
            site,
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
    /// the state (and at the first poll, the two loads that decide) and the inner poll. The
    /// traced path is out of line.
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        match this.state.0 {
            State::Untraced | State::Done => this.inner.poll(cx),
            // Muted or filtered out: decided here, without leaving the caller's poll.
            State::Unpolled if !call::wanted(this.site) => {
                this.state.0 = State::Untraced;
                this.inner.poll(cx)
            }
            State::Unpolled | State::Running(..) => {
                poll_traced(this.inner, &mut this.state.0, this.site, this.options, cx)
            }
        }
    }
}

/// A poll of a call that is traced, or not decided yet (its first poll).
fn poll_traced<F: Future>(
    inner: Pin<&mut F>,
    state: &mut State,
    site: &'static Callsite,
    options: &Option<Box<Options<F::Output>>>,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    let (previous, outer) = match state {
        State::Untraced | State::Done => return inner.poll(cx),
        State::Unpolled => return first_poll(inner, state, site, options, cx),
        State::Running(call, _) => {
            let previous = with_local(|local| local.replace(Some(call.frame))).flatten();
            let outer = call
                .span
                .as_ref()
                .map(|span| trace_context::replace_current(Some(span.context)));
            (previous, outer)
        }
    };
    let mut polling = Polling {
        state,
        previous,
        outer,
        ended: None,
    };
    let poll = inner.poll(cx);
    if let Poll::Ready(output) = &poll {
        polling.ended = Some(Ended::Returned(note(options, output)));
    }
    poll
}

/// The first poll: enters the call, which stays on the stack unless the poll returns
/// `Pending`. Most calls complete in their first poll: they are never written into the
/// future, nor counted open (a call that completes there overlaps no sibling).
fn first_poll<F: Future>(
    inner: Pin<&mut F>,
    state: &mut State,
    site: &'static Callsite,
    options: &Option<Box<Options<F::Output>>>,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    let args = options
        .as_ref()
        .and_then(|o| o.args.as_deref())
        .map_or(Detail::None, Detail::Text);
    let Some((call, before)) = call::enter(site, args, |local| local.enter_future()) else {
        *state = State::Untraced;
        return inner.poll(cx);
    };
    // Inside a trace the call made its span current: the enclosing one goes back after the
    // poll. Outside, the context is left alone.
    let outer = call.span.as_ref().map(|span| span.outer());
    let mut polling = FirstPoll {
        call: Some(call),
        state,
        before,
        outer,
        ended: None,
    };
    let poll = inner.poll(cx);
    if let Poll::Ready(output) = &poll {
        polling.ended = Some(Ended::Returned(note(options, output)));
    }
    poll
}

/// The exit line's note for a completed call's output (the `ret` and `err` options).
fn note<T>(options: &Option<Box<Options<T>>>, output: &T) -> Option<Note> {
    options.as_ref().and_then(|o| o.note(output))
}

/// How a poll ended its call: completed, or panicked (the poll is unwinding). `None`: the
/// call goes on.
fn ended(completed: Option<Ended>) -> Option<Ended> {
    match completed {
        None if std::thread::panicking() => Some(Ended::Panicked),
        completed => completed,
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

/// The first poll of a traced call, until it returns: restores what was current before it,
/// even if the poll panics; prints the exit line of a call that completed or panicked, or
/// counts open and stores in the future a call that goes on.
struct FirstPoll<'a> {
    /// The call; taken when the poll ends.
    call: Option<Call>,
    /// `State::Unpolled` until the poll ends.
    state: &'a mut State,
    before: Before,
    /// The trace context current before the poll, to put back: for a call with a span.
    outer: Option<Option<TraceContext>>,
    ended: Option<Ended>,
}

impl Drop for FirstPoll<'_> {
    fn drop(&mut self) {
        let ended = ended(self.ended.take());
        if let Some(outer) = self.outer {
            trace_context::replace_current(outer);
        }
        let Some(mut call) = self.call.take() else {
            return;
        };
        let before = &mut self.before;
        // Done, unless the call goes on (or the thread's state is gone).
        *self.state = State::Done;
        with_local(|local| match &ended {
            Some(ended) => {
                restore(local, &mut call, before.frame());
                exit(local, &call, ended);
            }
            None => {
                let parent = local.count_open(before);
                restore(local, &mut call, before.frame());
                *self.state = State::Running(call, parent);
            }
        });
    }
}

/// A later poll of a traced call: restores the frame that was current before it, even if
/// the poll panics; prints the exit line of a call that completed or panicked.
struct Polling<'a> {
    /// `State::Running`.
    state: &'a mut State,
    previous: Option<Frame>,
    /// The trace context current before the poll, to put back: for a call with a span.
    outer: Option<Option<TraceContext>>,
    ended: Option<Ended>,
}

impl Drop for Polling<'_> {
    fn drop(&mut self) {
        let ended = ended(self.ended.take());
        if let Some(outer) = self.outer {
            trace_context::replace_current(outer);
        }
        let State::Running(call, parent) = &mut *self.state else {
            return;
        };
        with_local(|local| {
            restore(local, call, self.previous);
            if let Some(ended) = &ended {
                exit(local, call, ended);
                local.future_ended(*parent);
            }
        });
        if ended.is_some() {
            *self.state = State::Done;
        }
    }
}
