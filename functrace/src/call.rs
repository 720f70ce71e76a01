//! One traced call: entering (place its frame, print `->`, open a span inside a trace) and
//! leaving (print `<-`, report the span). Shared by the sync [`Guard`](crate::guard::Guard)
//! and the async [`Traced`](crate::future::Traced) future.

use std::time::SystemTime;

use crate::clock;
use crate::filter::Callsite;
use crate::frame::Frame;
use crate::line::{self, At, Detail, Exit, TaskLabel};
use crate::local::{with_local, Local};
use crate::output;
use crate::span::{self, FinishedSpan};
use crate::trace_context::{self, TraceContext};

/// A call that printed its enter line and owes an exit line.
pub(crate) struct Call {
    name: &'static str,
    pub frame: Frame,
    /// When it started (a clock reading); `None` when the sink discards lines: then no clock
    /// is read.
    start: Option<u64>,
    /// `None` outside any trace.
    pub span: Option<Span>,
}

/// The call's own span inside a trace: a child of the enclosing one.
pub(crate) struct Span {
    pub context: TraceContext,
    /// The context current before entering, put back when the call leaves.
    pub outer: Option<TraceContext>,
    /// When the trace is sampled and a reporter is installed: when the call started.
    reported: Option<(SystemTime, u64)>,
}

/// Enters the fn of `site` unless tracing is muted or the filter leaves it out: `place` makes
/// its frame current (returning it, and what the caller needs to put things back), and inside
/// a trace a child span is opened and made current (the previous context is in
/// `Span::outer`).
#[inline]
pub(crate) fn enter<P>(
    site: &'static Callsite,
    args: Detail<'_>,
    place: impl FnOnce(&Local) -> (Frame, P),
) -> Option<(Call, P)> {
    // Muted: one atomic load and out, without touching the thread's state.
    if output::muted() {
        return None;
    }
    let generation = output::generation();
    if !site.enabled(generation) {
        return None;
    }
    with_local(|local| {
        local.with_sink(generation, |sink| {
            let (frame, placed) = place(local);
            let span = open_span();
            let start = local.wants_lines().then(|| {
                let at = At {
                    task: &TaskLabel::new(frame.label),
                    trace: span.as_ref().map(|s| &s.context.trace_id),
                    depth: frame.depth,
                };
                local.write(sink, |buf| line::enter(buf, at, site.name(), args));
                clock::now()
            });
            let call = Call {
                name: site.name(),
                frame,
                start,
                span,
            };
            (call, placed)
        })
    })
    .flatten()
}

fn open_span() -> Option<Span> {
    let outer = trace_context::current_context();
    let context = outer?.child();
    trace_context::replace_current(Some(context));
    let reported = (context.sampling.is_sampled() && span::reporting()).then(|| {
        // The clock first: its first reading calibrates it, which takes a while.
        let start = clock::now();
        (SystemTime::now(), start)
    });
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
        if let Some(start) = self.start {
            let elapsed = clock::nanos_since(start);
            local.with_sink(output::generation(), |sink| {
                let at = At {
                    task: &TaskLabel::new(self.frame.label),
                    trace: self.span.as_ref().map(|s| &s.context.trace_id),
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
                task: self.frame.label.task,
                error,
            });
        }
    }
}
