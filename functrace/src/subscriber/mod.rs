//! `tracing` spans printed as functrace lines, in one tree with `#[trace]` calls (the
//! `tracing-subscriber` feature), by a subscriber of functrace's own,
//! [`FunctraceSubscriber`] ([`functrace::subscriber()`](crate::subscriber())), or by a
//! `tracing-subscriber` layer over the registry, [`FunctraceLayer`]
//! ([`functrace::layer()`](crate::layer)). They print the same lines. The subscriber is the
//! fast one (it keeps spans in functrace's own records, where a layer looks each one up in the
//! registry at every event); the layer is the one that goes beside other layers (`fmt`,
//! `tracing-opentelemetry`) and under per-layer filters.
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
//! functrace::subscriber().with(EnvFilter::new("info")).init();
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
//!
//! Beside other layers, the layer goes over the registry:
//!
//! ```
//! # use tracing_subscriber::prelude::*;
//! # use tracing_subscriber::EnvFilter;
//! tracing_subscriber::registry()
//!     .with(functrace::layer())
//!     .with(EnvFilter::new("info"))
//!     .init();
//! ```
//!
//! ## What prints
//!
//! The same with either:
//!
//! - A span prints `->TARGET::NAME` when it is first entered, with its fields as `#[trace]`
//!   prints arguments: `(a = 1, b = "x")`, each value's `Debug`. A span created but never
//!   entered prints nothing. `#[instrument]`'s target is the module path, so its spans read
//!   as `#[trace]`'s calls do: `->app::db::query(id = 7)`.
//! - It prints `<-TARGET::NAME ELAPSED` when it closes (its last handle dropped), ELAPSED
//!   counted from its first enter. Fields recorded after the `->` line (`Span::record`) are
//!   shown there: `<-app::handle 1.2ms (status = 200)`. A span closed by unwinding is marked
//!   ` (panicked)`. (An instrumented future dropped unfinished closes its span as one that
//!   completed: neither can tell them apart.)
//! - An async fn under `#[instrument]` enters and exits its span at every poll: it still
//!   prints one `->` and one `<-` line, and whatever runs during any of its polls prints one
//!   level deeper, under the same task id. Spans that overlap under one caller (`join!`)
//!   print under branch ids (`t[01.2]`), as traced futures do.
//! - A `#[trace]` call inside a span prints one level deeper than the span, and a span
//!   entered inside a `#[trace]` call one level deeper than the call.
//! - Filters are tracing's: a span that an `EnvFilter` or a `Targets` filter disables prints
//!   nothing and adds no depth (what runs inside it prints one level up). The `FUNCTRACE`
//!   filter applies to `#[trace]` calls only; `FUNCTRACE=off` (a muted output) mutes spans
//!   too.
//! - Events (`info!`, ...) are not printed: functrace draws the tree of spans only.
//! - With functrace's `tracing` feature, every `#[trace]` call also opens a span: those are
//!   skipped, so a traced call prints once.
//! - Without the `trace` feature spans still print: the subscriber or layer was installed on
//!   purpose. `#[trace]` stays compiled out.

mod layer;
mod standalone;
mod state;

use std::cell::Cell;

pub use layer::FunctraceLayer;
pub use standalone::FunctraceSubscriber;

thread_local! {
    /// Set while a `#[trace]` call opens its own `tracing` span.
    static OPENING_OWN: Cell<bool> = const { Cell::new(false) };
}

/// Opens the `tracing` span of a `#[trace]` call (the `tracing` feature), marked so that the
/// subscriber and the layer do not print the call twice.
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
