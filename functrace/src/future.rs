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
use crate::local::with_local;
use crate::trace_context::{self, TraceContext};

enum State {
    /// Not polled yet: the parent frame is the one current at the first poll.
    Unpolled,
    /// Started, and counted open with `parent`.
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
    fn note(&self, output: &T) -> Option<Ended> {
        if let Some(error) = self.err.and_then(|err| err(output)) {
            return Some(Ended::Failed(error));
        }
        self.ret.map(|ret| Ended::Returned(ret(output)))
    }
}

/// How a poll ended the call: the text for the exit line.
enum Ended {
    Returned(String),
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
    // The call stays in `state` from its first poll to its end, read in place.
    let (previous, outer) = match state {
        State::Untraced | State::Done => return inner.poll(cx),
        State::Unpolled => {
            let args = options
                .as_ref()
                .and_then(|o| o.args.as_deref())
                .map_or(Detail::None, Detail::Text);
            let entered = call::enter(site, args, |local| {
                let (frame, previous, parent) = local.enter_future();
                (frame, (previous, parent))
            });
            let Some((call, (previous, parent))) = entered else {
                *state = State::Untraced;
                return inner.poll(cx);
            };
            // Inside a trace the call made its span current: the enclosing one goes back
            // after the poll. Outside, the context is left alone.
            let outer = call.span.as_ref().map(|span| span.outer());
            *state = State::Running(call, parent);
            (previous, outer)
        }
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
        let note = options.as_ref().and_then(|o| o.note(output));
        polling.ended = Some((Exit::Returned, note));
    }
    poll
}

/// One poll of a traced call: restores the frame that was current before it, even if the
/// poll panics, keeping what the poll changed in the call's frame; prints the exit line of a
/// call that completed or panicked.
struct Polling<'a> {
    /// `State::Running`.
    state: &'a mut State,
    previous: Option<Frame>,
    /// The trace context current before the poll, to put back: for a call with a span.
    outer: Option<Option<TraceContext>>,
    ended: Option<(Exit, Option<Ended>)>,
}

impl Drop for Polling<'_> {
    fn drop(&mut self) {
        let ended = match self.ended.take() {
            None if std::thread::panicking() => Some((Exit::Panicked, None)),
            ended => ended,
        };
        if let Some(outer) = self.outer {
            trace_context::replace_current(outer);
        }
        let State::Running(call, parent) = &mut *self.state else {
            return;
        };
        with_local(|local| {
            // The futures it started during the poll are counted in its frame.
            if let Some(own) = local.replace(self.previous) {
                call.frame = own;
            }
            if let Some((how, note)) = &ended {
                let note = match note {
                    None => Detail::None,
                    Some(Ended::Returned(text)) => Detail::Text(text),
                    Some(Ended::Failed(text)) => Detail::FailedText(text),
                };
                call.exit(local, note, *how);
                local.future_ended(*parent);
            }
        });
        if ended.is_some() {
            *self.state = State::Done;
        }
    }
}
