//! The `tracing` feature: traced calls also open `tracing` spans, nested as the calls are.
#![cfg(all(feature = "trace", feature = "tracing"))]

use std::sync::{Arc, Mutex};

use functrace::trace;
use tracing::span::{Attributes, Id};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// A span's name and its parent's.
type Named = (String, Option<String>);

/// Records each new span.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<Named>>>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(&self, _: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let span = ctx.span(id).expect("new span");
        let parent = span.parent().map(|p| p.name().to_owned());
        self.0
            .lock()
            .unwrap()
            .push((span.name().to_owned(), parent));
    }
}

#[trace]
fn inner() {}

#[trace]
fn outer() {
    inner();
}

#[trace]
async fn awaited() {
    tokio::task::yield_now().await;
    inner();
}

#[test]
fn traced_calls_open_nested_tracing_spans() {
    functrace::Builder::new()
        .output(functrace::Output::Null)
        .install()
        .unwrap();
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    tracing::subscriber::with_default(subscriber, || {
        outer();
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(awaited());
    });
    let seen = spans.0.lock().unwrap().clone();
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(
        seen,
        [
            ("tracing_bridge::outer".to_owned(), None),
            (
                "tracing_bridge::inner".to_owned(),
                some("tracing_bridge::outer")
            ),
            ("tracing_bridge::awaited".to_owned(), None),
            (
                "tracing_bridge::inner".to_owned(),
                some("tracing_bridge::awaited")
            ),
        ]
    );
}
