//! [`FunctraceLayer`]: functrace's span state kept in the registry's extensions.

use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use super::state::State;

/// A [`Layer`] that prints `tracing` spans (`#[instrument]`, `info_span!`, ...) as functrace
/// lines, to functrace's output (`FUNCTRACE_OUT`, or the one a [`Builder`](crate::Builder)
/// installed), in one tree with `#[trace]` calls, over `tracing_subscriber`'s registry, beside
/// any other layers. It prints what [`FunctraceSubscriber`](super::FunctraceSubscriber) prints
/// (see [the module](super) for what that is); the subscriber is several times faster, the
/// layer composes with other layers and with per-layer filters
/// (`functrace::layer().with_filter(Targets::new()...)`).
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

impl<S> Layer<S> for FunctraceLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut state = State::default();
        state.reset(attrs);
        span.extensions_mut().insert(state);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(state) = extensions.get_mut::<State>() {
            state.record(values);
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(state) = extensions.get_mut::<State>() {
            state.enter(span.metadata());
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(state) = extensions.get_mut::<State>() {
            state.exit();
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(state) = extensions.get_mut::<State>() {
            state.close(span.metadata());
        }
    }
}
