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
use crate::trace_context::{self, TraceContext};

enum State {
    /// Not polled yet: the parent frame is the one current at the first poll.
    Unpolled,
    Running(Call),
    /// Tracing was muted at the first poll.
    Untraced,
    Done,
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
        #[pin]
        inner: F,
        name: &'static str,
        state: State,
        // Boxed: only `args`/`ret`/`err` need them, and a plain traced future stays small.
        options: Option<Box<Options<F::Output>>>,
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

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if matches!(this.state, State::Untraced | State::Done) {
            return this.inner.poll(cx);
        }
        // During a poll the call lives in `Polling`, which puts it back if the future is
        // still pending: a call that completes in its first poll never goes through `state`.
        let (call, previous, outer) = match std::mem::replace(this.state, State::Done) {
            State::Unpolled => {
                let args = this
                    .options
                    .as_ref()
                    .and_then(|o| o.args.as_deref())
                    .map_or(Detail::None, Detail::Text);
                match call::enter(this.name, args, Root::Async) {
                    Some((call, previous)) => {
                        let outer = call
                            .span
                            .as_ref()
                            .map_or_else(trace_context::current_context, |span| span.outer);
                        (call, previous, outer)
                    }
                    None => {
                        *this.state = State::Untraced;
                        return this.inner.poll(cx);
                    }
                }
            }
            State::Running(call) => {
                let previous = with_local(|local| local.replace(Some(call.frame))).flatten();
                let outer = match &call.span {
                    Some(span) => trace_context::replace_current(Some(span.context)),
                    None => trace_context::current_context(),
                };
                (call, previous, outer)
            }
            State::Untraced | State::Done => unreachable!("returned above"),
        };
        let mut polling = Polling {
            state: this.state,
            call: Some(call),
            previous,
            outer,
            ended: None,
        };
        let poll = this.inner.poll(cx);
        if let Poll::Ready(output) = &poll {
            let note = this.options.as_ref().and_then(|o| o.note(output));
            polling.ended = Some((Exit::Returned, note));
        }
        poll
    }
}

/// One poll of a traced call: restores the frame that was current before it, even if the
/// poll panics; prints the exit line of a call that completed or panicked, and puts a
/// pending call back into the future's state.
struct Polling<'a> {
    state: &'a mut State,
    call: Option<Call>,
    previous: Option<Frame>,
    /// The trace context current before the poll.
    outer: Option<TraceContext>,
    ended: Option<(Exit, Option<Ended>)>,
}

impl Drop for Polling<'_> {
    fn drop(&mut self) {
        let ended = match self.ended.take() {
            None if std::thread::panicking() => Some((Exit::Panicked, None)),
            ended => ended,
        };
        let finished = ended.and_then(|end| Some((self.call.take()?, end)));
        trace_context::replace_current(self.outer);
        with_local(|local| {
            local.replace(self.previous);
            if let Some((call, (how, note))) = finished {
                let note = match &note {
                    None => Detail::None,
                    Some(Ended::Returned(text)) => Detail::Text(text),
                    Some(Ended::Failed(text)) => Detail::FailedText(text),
                };
                call.exit(local, note, how);
            }
        });
        if let Some(call) = self.call.take() {
            *self.state = State::Running(call);
        }
    }
}
