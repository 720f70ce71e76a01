//! Which call chain did this function run in? Put [`#[trace]`](trace) on functions, build with
//! `--features trace`, and read an indented enter/exit tree, one line per event, prefixed with
//! the id of the task (or thread) that made the call:
//!
//! ```text
//! t[01]:    ->chains::a1
//! t[01]:        ->chains::b1
//! t[01]:            ->chains::d
//! t[01]:            <-chains::d 2.1µs
//! t[01]:        <-chains::b1 9.8µs
//! t[01]:    <-chains::a1 14.0µs
//! ```
//!
//! # Using it
//!
//! ```toml
//! [dependencies]
//! functrace = "0.1"
//!
//! [features]
//! trace = ["functrace/trace"]
//! ```
//!
//! ```
//! use functrace::trace;
//!
//! #[trace]
//! fn d() {}
//!
//! #[trace]
//! async fn fetch(id: u64) -> u64 { id }
//! # d();
//! ```
//!
//! Without the `trace` feature the attribute returns the function unchanged: the compiled
//! program is the one you would get without the attribute.
//!
//! `#[trace]` also goes on an `impl` block (every method, named `path::Type::method` or
//! `<path::Type as Trait>::method`), a trait (its default methods) and an inline `mod` (every
//! fn inside, recursively); `#[trace(skip)]` opts an item inside out, and a `const fn` inside is
//! left alone. Options: `name = "..."`, `args`, `args(a, b)`, `skip(x)` (with `args`), `ret`,
//! `err`, `crate = path`:
//!
//! ```
//! # use functrace::trace;
//! #[trace(args, skip(secret), err)]
//! fn login(user: &str, secret: &str) -> Result<u32, String> {
//!     if secret.is_empty() { Err(format!("no secret for {user}")) } else { Ok(7) }
//! }
//! # let _ = login("ann", "x");
//! ```
//!
//! # The line format
//!
//! Every line is `t[NN]:` + 4 spaces per depth level + an event, written whole (one `write`
//! per line, so lines of concurrent threads never tear):
//!
//! - enter: `->path::to::function`, or `->path::to::function(a = 1, b = "x")` with `args`
//! - exit: `<-path::to::function ELAPSED`, where ELAPSED is `850ns`, `2.1µs`, `14.0ms` or `3.2s`
//!   (wall time from entering to leaving; for an async fn, from its first poll to completion),
//!   then ` = VALUE` with `ret`, or ` Err(E)` with `err` when the result is an error, then
//!   ` (panicked)` when the call unwound, or ` (cancelled)` when its future was dropped before
//!   completing.
//!
//! The function path is `module_path!()` + `::` + the fn name, fixed at compile time.
//!
//! `NN` is a small display id, two digits at least, handed out in order of first appearance
//! (`t[01]` is normally `main`), so `grep 't\[03'` isolates one task:
//!
//! - a call with no traced caller, sync or async, belongs to its tokio task if it runs inside
//!   one, else to its thread: everything the body of `#[tokio::main]` does in sequence is one
//!   id; `tokio::spawn(traced())` prints under a new id at depth 1;
//! - anything called or awaited from a traced call is one level deeper under the same id, even
//!   when a multi-thread runtime moves the task to another worker;
//! - a traced future that starts while a sibling is still open (`join!`, `select!`,
//!   `FuturesUnordered`, roots multiplexed by an executor) prints, with everything under it,
//!   under a branch id of its task, `NN.B` (`t[05.2]`), so that every id's lines nest as a
//!   stack;
//! - [`in_new_task`] gives a unit of work (a request) an id of its own.
//!
//! # Inside a distributed trace
//!
//! Under a [`TraceContext`] (set by `functrace-mesh`'s server layer, or by [`with_context`] /
//! [`in_context`]), each traced call is a child span: its lines carry the trace id after the task
//! id (`t[01] 463ac35c9f6413ad48485a3953bb6124:    ->orders::create`), [`current_context`]
//! returns its context, and, when the trace is sampled and a [`SpanReporter`] is installed, it
//! is reported as a [`FinishedSpan`] when it ends. A traced async fn opens its span at its first
//! poll: to keep a spawned task in the spawner's trace, spawn
//! [`in_current_context`]`(traced())`. With the `tracing` feature, each traced call also opens
//! a `tracing` span (INFO, named by the fn path).
//!
//! # `tracing` spans in the same tree
//!
//! With the `tracing-subscriber` feature, `functrace::subscriber()` (a `tracing` subscriber of
//! functrace's own) and `functrace::layer()` (a `tracing-subscriber` layer, to go beside other
//! layers) print `tracing` spans (`#[instrument]`, `info_span!`) as these lines, nested with
//! `#[trace]` calls both ways, under the same task and branch ids, with their fields shown as
//! arguments, under tracing's filters: see the `subscriber` module.
//!
//! # Choosing the output at run time
//!
//! | variable        | values                                    | default  |
//! |-----------------|-------------------------------------------|----------|
//! | `FUNCTRACE_OUT` | `stderr`, `stdout`, `null`, or a file path (appended to) | `stderr` |
//! | `FUNCTRACE`     | a filter: `off` mutes a traced build; `myapp=on,myapp::db=off` (see [`Builder::filter`]) | on |
//!
//! The environment is read at the first traced call, unless a [`Builder`] was installed before.
//! A sink that fails to write (closed pipe, full disk) loses the line, counts it
//! ([`dropped_lines`]), and the program goes on.

#![deny(missing_docs)]

pub use functrace_macros::trace;

mod output;
pub use output::{dropped_lines, Builder, MemorySink, Output, Sink};

mod filter;
pub use filter::FilterError;

mod new_task;
pub use new_task::{in_new_task, InNewTask};

mod trace_context;
pub use trace_context::{
    current_context, in_context, in_current_context, with_context, InContext, Sampling, SpanId,
    TraceContext, TraceId,
};

mod span;
pub use span::{set_span_reporter, span_reporter, FinishedSpan, SpanReporter};

#[cfg(feature = "tracing-subscriber")]
pub mod subscriber;

/// The [`tracing-subscriber` layer](subscriber::FunctraceLayer) that prints `tracing` spans as
/// functrace lines, in one tree with `#[trace]` calls (the `tracing-subscriber` feature):
///
/// ```
/// use tracing_subscriber::prelude::*;
///
/// tracing_subscriber::registry().with(functrace::layer()).init();
/// ```
#[cfg(feature = "tracing-subscriber")]
pub fn layer() -> subscriber::FunctraceLayer {
    subscriber::FunctraceLayer::new()
}

/// The [`tracing` subscriber](subscriber::FunctraceSubscriber) of functrace's own that prints
/// `tracing` spans as functrace lines, in one tree with `#[trace]` calls (the
/// `tracing-subscriber` feature): what [`layer()`] prints, without the registry and several
/// times faster, under global filters only:
///
/// ```
/// use tracing_subscriber::prelude::*;
/// use tracing_subscriber::filter::Targets;
///
/// functrace::subscriber()
///     .with(Targets::new().with_target("app", tracing::Level::DEBUG))
///     .init();
/// ```
#[cfg(feature = "tracing-subscriber")]
pub fn subscriber() -> subscriber::FunctraceSubscriber {
    subscriber::FunctraceSubscriber::new()
}

/// Hands the calling thread's buffered lines to the output now (see [`Output::Buffered`]);
/// other outputs hold nothing back.
pub fn flush() {
    #[cfg(runtime)]
    local::with_local(local::Local::flush);
}

#[cfg(runtime)]
mod call;
#[cfg(runtime)]
mod clock;
#[cfg(runtime)]
mod frame;
#[cfg(runtime)]
mod future;
#[cfg(runtime)]
mod guard;
#[cfg(runtime)]
mod line;
#[cfg(runtime)]
mod local;
#[cfg(runtime)]
mod task_ids;

/// What `#[trace]` expands to. Not a public API.
#[cfg(runtime)]
#[doc(hidden)]
pub mod __private {
    pub use crate::filter::Callsite;
    pub use crate::future::Traced;
    pub use crate::guard::Guard;
    #[cfg(feature = "tracing")]
    pub use tracing;

    /// Opens the `tracing` span of a traced call (the `tracing` feature), so that the
    /// functrace layer, if installed, knows it for the call's own and does not print it again.
    #[cfg(feature = "tracing")]
    #[inline]
    pub fn own_span(open: impl FnOnce() -> tracing::Span) -> tracing::Span {
        #[cfg(feature = "tracing-subscriber")]
        return crate::subscriber::own_span(open);
        #[cfg(not(feature = "tracing-subscriber"))]
        open()
    }

    /// Calls `body` once: a closure that is expected to be `FnOnce` may hand out borrows of
    /// what it captured, as the traced fn itself could (used with `ret` and `err`).
    #[inline(always)]
    pub fn once<R>(body: impl FnOnce() -> R) -> R {
        body()
    }

    /// An async fn's arguments as text, made before they move into its future; `None` while
    /// tracing is muted.
    pub fn render(args: core::fmt::Arguments<'_>) -> Option<String> {
        (!crate::output::muted()).then(|| args.to_string())
    }
}
