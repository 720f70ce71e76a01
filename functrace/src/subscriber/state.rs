//! What functrace keeps of one `tracing` span, and what happens to it at each of its events,
//! for the layer (kept in the registry's extensions) and for the subscriber (kept in its own
//! records) alike.
//!
//! A span takes its place in the thread's frames as a traced future does (see `future.rs`): at
//! its first enter it is placed under the current frame (a `#[trace]` call, or another span) or
//! as a root of its task, and prints its `->` line; around every later enter its frame is made
//! current again; the frame it replaced is put back at every exit. From its first exit until it
//! closes it counts as open under its caller, as a pending future does, so that spans
//! overlapping under one caller (`join!` of `#[instrument]` async fns) print under branch ids.
//! It prints its `<-` line when it closes.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Record};
use tracing::Metadata;

use crate::clock;
use crate::frame::{Frame, Parent};
use crate::line::{self, At, Detail, Exit, Path};
use crate::local::{with_local, Before, Local};
use crate::output;
use crate::trace_context::{self, TraceId};

/// One span's state.
#[derive(Default)]
pub(super) struct State {
    /// Its fields rendered as arguments (`a = 1, b = "x"`), before the `->` line; recorded
    /// after it, for the `<-` line.
    fields: String,
    /// Where `fields` stood when the `->` line was printed.
    printed: usize,
    /// Opened by a `#[trace]` call (functrace's `tracing` feature): never printed.
    own: bool,
    /// How many enters are not exited yet (a span may be entered again while entered).
    entered: u32,
    /// Set at the first enter (`None` while muted then).
    open: Option<Open>,
}

/// A span that printed its `->` line and owes a `<-` line.
struct Open {
    frame: Frame,
    /// The trace its lines carry the id of (a functrace [`TraceContext`] current at the
    /// first enter).
    ///
    /// [`TraceContext`]: crate::TraceContext
    trace: Option<TraceId>,
    /// The clock at the first enter; `None` when the sink discards lines.
    start: Option<u64>,
    /// Until the first exit: what was current before the first enter. After it, whom the
    /// span is counted open with, and what was current before the latest enter.
    place: Place,
}

enum Place {
    First(Before),
    Later {
        parent: Parent,
        previous: Option<Frame>,
    },
}

impl State {
    /// A new span's state in `self`, which may be a closed span's, reused with its buffer.
    pub fn reset(&mut self, attrs: &Attributes<'_>) {
        let own = super::opening_own();
        self.fields.clear();
        self.printed = 0;
        self.own = own;
        self.entered = 0;
        self.open = None;
        if !own && !attrs.values().is_empty() {
            attrs.record(&mut Fields(&mut self.fields));
        }
    }

    /// Fields recorded after the span was made (`Span::record`).
    pub fn record(&mut self, values: &Record<'_>) {
        if !self.own {
            values.record(&mut Fields(&mut self.fields));
        }
    }

    /// Fields already rendered (see [`render`]), appended.
    pub fn record_rendered(&mut self, rendered: &str) {
        if !self.own && !rendered.is_empty() {
            if !self.fields.is_empty() {
                self.fields.push_str(", ");
            }
            self.fields.push_str(rendered);
        }
    }

    pub fn enter(&mut self, metadata: &'static Metadata<'static>) {
        if self.own {
            return;
        }
        self.entered += 1;
        if self.entered > 1 {
            return;
        }
        with_local(|local| match &mut self.open {
            None => {
                let name = Path(metadata.target(), metadata.name());
                self.open = first_enter(local, name, &self.fields);
                self.printed = self.fields.len();
            }
            Some(Open { frame, place, .. }) => {
                let current = local.replace(Some(*frame));
                if let Place::Later { previous, .. } = place {
                    *previous = current;
                }
            }
        });
    }

    pub fn exit(&mut self) {
        if self.own || self.entered == 0 {
            return;
        }
        self.entered -= 1;
        let (0, Some(open)) = (self.entered, &mut self.open) else {
            return;
        };
        with_local(|local| {
            let previous = match open.place {
                Place::First(mut before) => {
                    let parent = local.count_open(&mut before);
                    let previous = before.frame();
                    open.place = Place::Later { parent, previous };
                    previous
                }
                Place::Later { previous, .. } => previous,
            };
            // Keep what happened under the span (futures it started are counted in it).
            if let Some(own) = local.replace(previous) {
                open.frame = own;
            }
        });
    }

    pub fn close(&mut self, metadata: &'static Metadata<'static>) {
        let Some(open) = self.open.take() else { return };
        let name = Path(metadata.target(), metadata.name());
        let late = &self.fields[self.printed..];
        with_local(|local| {
            if let Some(start) = open.start {
                let elapsed = clock::nanos_since(start);
                let note = match late {
                    "" => Detail::None,
                    late => Detail::Format(format_args!("({})", late.trim_start_matches(", "))),
                };
                if let Some(mut writer) = local.writer(output::generation()) {
                    let at = At {
                        label: open.frame.label,
                        trace: open.trace.as_ref(),
                        depth: open.frame.depth,
                    };
                    // Closed by unwinding (an entered span dropped in a panicking scope).
                    let how = match std::thread::panicking() {
                        true => Exit::Panicked,
                        false => Exit::Returned,
                    };
                    writer.write(|buf| line::exit(buf, at, name, elapsed, note, how));
                }
            }
            match open.place {
                Place::Later { parent, .. } => local.future_ended(parent),
                // Closed while entered (a span dropped inside its own scope): put back what
                // its enter replaced.
                Place::First(before) => {
                    local.replace(before.frame());
                }
            }
        });
    }
}

/// Places a span at its first enter and prints its `->` line; `None` when muted.
fn first_enter(local: &Local, name: Path<'_>, fields: &str) -> Option<Open> {
    if output::muted() {
        return None;
    }
    let mut writer = local.writer(output::generation())?;
    let (frame, before) = local.enter_future();
    let trace = trace_context::current_context().map(|context| context.trace_id);
    let args = match fields {
        "" => Detail::None,
        fields => Detail::Text(fields),
    };
    let start = writer.wants_lines().then(|| {
        let at = At {
            label: frame.label,
            trace: trace.as_ref(),
            depth: frame.depth,
        };
        writer.write(|buf| line::enter(buf, at, name, args));
        clock::now()
    });
    Some(Open {
        frame,
        trace,
        start,
        place: Place::First(before),
    })
}

/// `values` rendered as `#[trace]` renders arguments: `a = 1, b = "x"`.
pub(super) fn render(values: &Record<'_>) -> String {
    let mut rendered = String::new();
    values.record(&mut Fields(&mut rendered));
    rendered
}

/// Renders fields as `#[trace]` renders arguments: `a = 1, b = "x"`.
struct Fields<'a>(&'a mut String);

impl Fields<'_> {
    fn name(&mut self, field: &Field) {
        if !self.0.is_empty() {
            self.0.push_str(", ");
        }
        self.0.push_str(field.name());
        self.0.push_str(" = ");
    }
}

impl Visit for Fields<'_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.name(field);
        self.0.push_str(itoa::Buffer::new().format(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.name(field);
        self.0.push_str(itoa::Buffer::new().format(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.name(field);
        self.0.push_str(if value { "true" } else { "false" });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.name(field);
        let _ = write!(self.0, "{value:?}");
    }
}
