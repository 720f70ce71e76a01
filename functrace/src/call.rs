//! One traced call: entering (place its frame, print `->`, open a span inside a trace) and
//! leaving (print `<-`, report the span). Shared by the sync [`Guard`](crate::guard::Guard)
//! and the async [`Traced`](crate::future::Traced) future.
//!
//! A `Call` is kept small (it lives in every traced future, muted or not, and moves with it),
//! and is read in place rather than moved on the way out. So the span of a call inside a
//! distributed trace is boxed: that is the one allocation of a traced call, made only inside a
//! trace, where the span's report costs more anyway. (In the future, the span inline made a
//! muted traced async call cost 21 ns more than a plain one, boxed 7 ns.)

use std::time::{Duration, SystemTime};

use crate::clock;
use crate::filter::Callsite;
use crate::frame::Frame;
use crate::line::{self, At, Detail, Exit};
use crate::local::{with_local, Local};
use crate::output;
use crate::span::{self, FinishedSpan};
use crate::trace_context::{self, SpanId, TraceContext};

/// A call that printed its enter line and owes an exit line.
pub(crate) struct Call {
    site: &'static Callsite,
    pub frame: Frame,
    /// When it started (a clock reading); `None` when the sink discards lines: then no clock
    /// is read.
    start: Option<u64>,
    /// `None` outside any trace; boxed, see the module docs.
    pub span: Option<Box<Span>>,
}

/// The call's own span inside a trace: a child of the enclosing one.
pub(crate) struct Span {
    pub context: TraceContext,
    /// The parent of the enclosing span, which is this one's parent: with `context` it makes
    /// the context to put back when the call leaves.
    outer_parent: Option<SpanId>,
    /// When the trace is sampled and a reporter is installed: when the call started (a clock
    /// reading; the wall-clock start is worked out from the duration at the end).
    reported: Option<u64>,
}

impl Span {
    /// The context current before the call, put back when it leaves.
    pub fn outer(&self) -> Option<TraceContext> {
        Some(TraceContext {
            span_id: self.context.parent_id?,
            parent_id: self.outer_parent,
            ..self.context
        })
    }
}

/// Enters the fn of `site` unless tracing is muted or the filter leaves it out: `place` makes
/// its frame current (returning it, and what the caller needs to put things back), and inside
/// a trace a child span is opened and made current.
#[inline]
pub(crate) fn enter<P>(
    site: &'static Callsite,
    args: Detail<'_>,
    place: impl FnOnce(&Local) -> (Frame, P),
) -> Option<(Call, P)> {
    enter_wanted(wanted(site)?, site, args, place)
}

/// [`enter`], for a call [`wanted`] already let through, under output `generation`.
#[inline]
pub(crate) fn enter_wanted<P>(
    generation: usize,
    site: &'static Callsite,
    args: Detail<'_>,
    place: impl FnOnce(&Local) -> (Frame, P),
) -> Option<(Call, P)> {
    with_local(|local| {
        let mut writer = local.writer(generation)?;
        let (frame, placed) = place(local);
        let span = open_span();
        let start = writer.wants_lines().then(|| {
            let at = At {
                label: frame.label,
                trace: span.as_ref().map(|s| &s.context.trace_id),
                depth: frame.depth,
            };
            writer.write(|buf| line::enter(buf, at, site.name(), args));
            clock::now()
        });
        let call = Call {
            site,
            frame,
            start,
            span,
        };
        Some((call, placed))
    })
    .flatten()
}

/// Whether a call of `site` is traced now: not muted (one atomic load and out, without
/// touching the thread's state), and let through by the filter (its cached decision). Gives
/// the output generation it was decided under.
#[inline]
pub(crate) fn wanted(site: &Callsite) -> Option<usize> {
    if output::muted() {
        return None;
    }
    let generation = output::generation();
    site.enabled(generation).then_some(generation)
}

#[inline]
fn open_span() -> Option<Box<Span>> {
    // Most calls run outside any trace: that is told without copying a context.
    if !trace_context::in_trace() {
        return None;
    }
    open_child_span()
}

fn open_child_span() -> Option<Box<Span>> {
    let outer = trace_context::current_context()?;
    let context = outer.child();
    trace_context::replace_current(Some(context));
    let reported = (context.sampling.is_sampled() && span::reporting()).then(clock::now);
    Some(Box::new(Span {
        context,
        outer_parent: outer.parent_id,
        reported,
    }))
}

impl Call {
    /// Prints the exit line and reports the span. The current frame and trace context are
    /// the caller's business.
    #[inline]
    pub fn exit(&self, local: &Local, note: Detail<'_>, how: Exit) {
        if let Some(start) = self.start {
            let elapsed = clock::nanos_since(start);
            if let Some(mut writer) = local.writer(output::generation()) {
                let at = At {
                    label: self.frame.label,
                    trace: self.span.as_ref().map(|s| &s.context.trace_id),
                    depth: self.frame.depth,
                };
                writer.write(|buf| line::exit(buf, at, self.site.name(), elapsed, note, how));
            }
        }
        if let Some(Span {
            context,
            reported: Some(start),
            ..
        }) = self.span.as_deref()
        {
            self.report(context, *start, note, how);
        }
    }

    #[cold]
    fn report(&self, context: &TraceContext, start: u64, note: Detail<'_>, how: Exit) {
        let duration = Duration::from_nanos(clock::nanos_since(start));
        let error = match (how, note) {
            (Exit::Panicked, _) => Some("panicked".to_owned()),
            (Exit::Cancelled, _) => Some("cancelled".to_owned()),
            (Exit::Returned, note) => note.error(),
        };
        span::report(FinishedSpan {
            name: self.site.name(),
            context: *context,
            start: SystemTime::now() - duration,
            duration,
            task: self.frame.label.task,
            error,
        });
    }
}
