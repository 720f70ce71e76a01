//! `tracing` spans printed as functrace lines, in one tree with `#[trace]` calls: the
//! `tracing-subscriber` [`Layer`] [`FunctraceLayer`] (the `tracing-subscriber` feature), made by
//! [`functrace::layer()`](crate::layer).
//!
//! ```toml
//! [dependencies]
//! functrace = { version = "0.1", features = ["tracing-subscriber"] }
//! tracing-subscriber = "0.3"
//! ```
//!
//! ```
//! use functrace::trace;
//! use tracing_subscriber::prelude::*;
//! use tracing_subscriber::EnvFilter;
//!
//! #[tracing::instrument]
//! fn handle(id: u64) {
//!     load(id);
//! }
//!
//! #[trace]
//! fn load(id: u64) {}
//!
//! tracing_subscriber::registry()
//!     .with(functrace::layer())
//!     .with(EnvFilter::new("info"))
//!     .init();
//! handle(7);
//! ```
//!
//! prints, in a crate named `app` built with `--features trace` (without it, `load` is not
//! traced and only the span prints):
//!
//! ```text
//! t[01]:    ->app::handle(id = 7)
//! t[01]:        ->app::load
//! t[01]:        <-app::load 310ns
//! t[01]:    <-app::handle 2.4µs
//! ```

// A span takes its place in the thread's frames as a traced future does (see `future.rs`): at
// its first enter it is placed under the current frame (a `#[trace]` call, or another span) or
// as a root of its task, and prints its `->` line; around every later enter its frame is made
// current again; the frame it replaced is put back at every exit. From its first exit until it
// closes it counts as open under its caller, as a pending future does, so that spans
// overlapping under one caller (`join!` of `#[instrument]` async fns) print under branch ids.
// It prints its `<-` line when it closes.

use std::cell::Cell;
use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::clock;
use crate::frame::{Frame, Parent};
use crate::line::{self, At, Detail, Exit, Path};
use crate::local::{with_local, Before, Local};
use crate::output;
use crate::trace_context::{self, TraceId};

/// A [`Layer`] that prints `tracing` spans (`#[instrument]`, `info_span!`, ...) as functrace
/// lines, to functrace's output (`FUNCTRACE_OUT`, or the one a [`Builder`](crate::Builder)
/// installed), in one tree with `#[trace]` calls. See [the module](self) for an example.
///
/// - A span prints `->TARGET::NAME` when it is first entered, with its fields as `#[trace]`
///   prints arguments: `(a = 1, b = "x")`, each value's `Debug`. A span created but never
///   entered prints nothing. `#[instrument]`'s target is the module path, so its spans read
///   as `#[trace]`'s calls do: `->app::db::query(id = 7)`.
/// - It prints `<-TARGET::NAME ELAPSED` when it closes (its last handle dropped), ELAPSED
///   counted from its first enter. Fields recorded after the `->` line (`Span::record`) are
///   shown there: `<-app::handle 1.2ms (status = 200)`. A span closed by unwinding is marked
///   ` (panicked)`. (An instrumented future dropped unfinished closes its span as one that
///   completed: the layer cannot tell them apart.)
/// - An async fn under `#[instrument]` enters and exits its span at every poll: it still
///   prints one `->` and one `<-` line, and whatever runs during any of its polls prints one
///   level deeper, under the same task id. Spans that overlap under one caller (`join!`)
///   print under branch ids (`t[01.2]`), as traced futures do.
/// - A `#[trace]` call inside a span prints one level deeper than the span, and a span
///   entered inside a `#[trace]` call one level deeper than the call.
/// - Filters are tracing's: a span that an `EnvFilter` or a per-layer filter
///   (`functrace::layer().with_filter(Targets::new()...)`) disables prints nothing and adds no
///   depth (what runs inside it prints one level up). The `FUNCTRACE` filter applies to
///   `#[trace]` calls only; `FUNCTRACE=off` (a muted output) mutes the layer too.
/// - Events (`info!`, ...) are not printed: the layer draws the tree of spans only.
/// - With functrace's `tracing` feature, every `#[trace]` call also opens a span: the layer
///   skips those, so a traced call prints once.
/// - Without the `trace` feature the layer still prints: it was installed on purpose.
///   `#[trace]` stays compiled out.
#[derive(Clone, Copy, Debug, Default)]
pub struct FunctraceLayer {
    _private: (),
}

impl FunctraceLayer {
    /// The layer; also [`functrace::layer()`](crate::layer).
    pub fn new() -> FunctraceLayer {
        FunctraceLayer::default()
    }
}

/// What the layer keeps in a span's extensions.
struct State {
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

thread_local! {
    /// Set while a `#[trace]` call opens its own `tracing` span.
    static OPENING_OWN: Cell<bool> = const { Cell::new(false) };
}

/// Opens the `tracing` span of a `#[trace]` call (the `tracing` feature), marked so that the
/// layer does not print the call twice.
#[cfg(feature = "tracing")]
pub(crate) fn own_span(open: impl FnOnce() -> tracing::Span) -> tracing::Span {
    let _ = OPENING_OWN.try_with(|own| own.set(true));
    let span = open();
    let _ = OPENING_OWN.try_with(|own| own.set(false));
    span
}

fn opening_own() -> bool {
    OPENING_OWN.try_with(Cell::get).unwrap_or(false)
}

impl<S> Layer<S> for FunctraceLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let own = opening_own();
        let mut fields = String::new();
        if !own && !attrs.values().is_empty() {
            attrs.record(&mut Fields(&mut fields));
        }
        span.extensions_mut().insert(State {
            fields,
            printed: 0,
            own,
            entered: 0,
            open: None,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(state) = extensions.get_mut::<State>() {
            if !state.own {
                values.record(&mut Fields(&mut state.fields));
            }
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        let Some(state) = extensions.get_mut::<State>() else {
            return;
        };
        if state.own {
            return;
        }
        state.entered += 1;
        if state.entered > 1 {
            return;
        }
        let metadata = span.metadata();
        with_local(|local| match &mut state.open {
            None => {
                let name = Path(metadata.target(), metadata.name());
                state.open = first_enter(local, name, &state.fields);
                state.printed = state.fields.len();
            }
            Some(Open { frame, place, .. }) => {
                let current = local.replace(Some(*frame));
                if let Place::Later { previous, .. } = place {
                    *previous = current;
                }
            }
        });
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        let Some(state) = extensions.get_mut::<State>() else {
            return;
        };
        if state.own || state.entered == 0 {
            return;
        }
        state.entered -= 1;
        let (0, Some(open)) = (state.entered, &mut state.open) else {
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

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let mut extensions = span.extensions_mut();
        let Some(State {
            fields,
            printed,
            open: Some(open),
            ..
        }) = extensions.get_mut::<State>()
        else {
            return;
        };
        let metadata = span.metadata();
        let name = Path(metadata.target(), metadata.name());
        let late = &fields[*printed..];
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
