//! One traced call: entering (push a frame, print `->`, open a span inside a trace) and
//! leaving (print `<-`, report the span). Shared by the sync [`Guard`](crate::guard::Guard)
//! and the async [`Traced`](crate::future::Traced) future.

use std::time::SystemTime;

use crate::clock;
use crate::context::{with_local, Frame, Local, Root};
use crate::line::{self, At, Detail, Exit, TaskLabel};
use crate::output;
use crate::span::{self, FinishedSpan};
use crate::trace_context::{self, TraceContext};

/// A call that printed its enter line and owes an exit line.
pub(crate) struct Call {
    name: &'static str,
    pub frame: Frame,
    /// `None` when the sink discards lines: then no label is made and no clock is read.
    printed: Option<Printed>,
    /// `None` outside any trace.
    pub span: Option<Span>,
}

/// What the exit line needs from the enter line.
struct Printed {
    task: TaskLabel,
    start: u64,
}

/// The call's own span inside a trace: a child of the enclosing one.
pub(crate) struct Span {
    pub context: TraceContext,
    /// The context current before entering, put back when the call leaves.
    pub outer: Option<TraceContext>,
    /// When the trace is sampled and a reporter is installed: when the call started.
    reported: Option<(SystemTime, u64)>,
}

/// Enters `name` under the thread's current frame (which it replaces; the previous frame is
/// returned for the caller to restore) and, inside a trace, opens a child span (made current;
/// the previous context is in `Span::outer`). `None` when tracing is muted.
#[inline]
pub(crate) fn enter(
    name: &'static str,
    args: Detail<'_>,
    root: Root,
) -> Option<(Call, Option<Frame>)> {
    // Muted: two atomic loads and out, without touching the thread's state.
    if output::muted() {
        return None;
    }
    with_local(|local| enter_with(local, name, args, root)).flatten()
}

#[inline]
fn enter_with(
    local: &Local,
    name: &'static str,
    args: Detail<'_>,
    root: Root,
) -> Option<(Call, Option<Frame>)> {
    local.with_sink(|sink| {
        let (frame, parent) = local.push(root);
        let span = open_span();
        let trace = span.as_ref().map(|s| &s.context.trace_id);
        let printed = local.wants_lines().then(|| {
            let task = TaskLabel::new(frame.task);
            let at = At {
                task: &task,
                trace,
                depth: frame.depth,
            };
            local.write(sink, |buf| line::enter(buf, at, name, args));
            Printed {
                task,
                start: clock::now(),
            }
        });
        let call = Call {
            name,
            frame,
            printed,
            span,
        };
        (call, parent)
    })
}

fn open_span() -> Option<Span> {
    let outer = trace_context::current_context();
    let context = outer?.child();
    trace_context::replace_current(Some(context));
    let reported = (context.sampling.is_sampled() && span::reporting())
        .then(|| (SystemTime::now(), clock::now()));
    Some(Span {
        context,
        outer,
        reported,
    })
}

impl Call {
    /// Prints the exit line and reports the span. The current frame and trace context are
    /// the caller's business.
    #[inline]
    pub fn exit(&self, local: &Local, note: Detail<'_>, how: Exit) {
        if let Some(Printed { task, start }) = &self.printed {
            let elapsed = clock::nanos_since(*start);
            let trace = self.span.as_ref().map(|s| &s.context.trace_id);
            local.with_sink(|sink| {
                let at = At {
                    task,
                    trace,
                    depth: self.frame.depth,
                };
                local.write(sink, |buf| {
                    line::exit(buf, at, self.name, elapsed, note, how)
                })
            });
        }
        if let Some(Span {
            context,
            reported: Some((start, clock_start)),
            ..
        }) = &self.span
        {
            let error = match (how, note) {
                (Exit::Panicked, _) => Some("panicked".to_owned()),
                (Exit::Cancelled, _) => Some("cancelled".to_owned()),
                (Exit::Returned, note) => note.error(),
            };
            span::report(FinishedSpan {
                name: self.name,
                context: *context,
                start: *start,
                duration: std::time::Duration::from_nanos(clock::nanos_since(*clock_start)),
                task: self.frame.task,
                error,
            });
        }
    }
}
