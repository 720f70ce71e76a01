//! Traced calls inside a trace: child spans, trace ids on the lines, reported spans.
#![cfg(feature = "trace")]

mod support;

use std::sync::{Arc, Mutex, PoisonError};

use functrace::{
    current_context, in_context, in_current_context, set_span_reporter, trace, with_context,
    FinishedSpan, Sampling, SpanId, SpanReporter, TraceContext, TraceId,
};

#[derive(Default, Clone)]
struct Collected(Arc<Mutex<Vec<FinishedSpan>>>);

impl SpanReporter for Collected {
    fn report(&self, span: FinishedSpan) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(span);
    }
}

/// Runs `f` with lines and spans captured.
fn traced<R>(f: impl FnOnce() -> R) -> (R, Vec<String>, Vec<FinishedSpan>) {
    let spans = Collected::default();
    let (result, lines) = support::capture(|| {
        set_span_reporter(Some(Arc::new(spans.clone())));
        let result = f();
        set_span_reporter(None);
        result
    });
    let spans = spans.0.lock().unwrap().clone();
    (result, lines, spans)
}

fn remote(sampling: Sampling) -> TraceContext {
    TraceContext {
        trace_id: TraceId::from_hex("463ac35c9f6413ad48485a3953bb6124").unwrap(),
        span_id: SpanId::from_hex("a2fb4a1d1a96d312").unwrap(),
        parent_id: None,
        sampling,
    }
}

#[trace]
fn leaf() -> Option<TraceContext> {
    current_context()
}

#[trace]
fn outer() -> (Option<TraceContext>, Option<TraceContext>) {
    (current_context(), leaf())
}

#[test]
fn calls_in_a_trace_are_child_spans_and_lines_carry_the_trace_id() {
    let parent = remote(Sampling::Accept);
    let ((outer_ctx, leaf_ctx), lines, spans) = traced(|| {
        let contexts = with_context(parent, outer);
        assert_eq!(current_context(), None, "restored after with_context");
        contexts
    });
    let (outer_ctx, leaf_ctx) = (outer_ctx.unwrap(), leaf_ctx.unwrap());
    assert_eq!(outer_ctx.parent_id, Some(parent.span_id));
    assert_eq!(leaf_ctx.parent_id, Some(outer_ctx.span_id));
    assert_eq!(leaf_ctx.trace_id, parent.trace_id);

    assert_eq!(lines.len(), 4);
    for line in &lines {
        let event = support::parse(line);
        assert_eq!(
            event.trace.as_deref(),
            Some("463ac35c9f6413ad48485a3953bb6124"),
            "{line}"
        );
    }

    // Reported when they end: leaf first.
    let names: Vec<&str> = spans.iter().map(|s| s.name).collect();
    assert_eq!(names, ["trace_context::leaf", "trace_context::outer"]);
    assert_eq!(spans[0].context, leaf_ctx);
    assert_eq!(spans[1].context, outer_ctx);
    assert!(spans.iter().all(|s| s.error.is_none()));
    assert_eq!(spans[0].task, spans[1].task);
}

#[test]
fn outside_a_trace_there_is_no_span_and_no_trace_id() {
    let ((outer_ctx, leaf_ctx), lines, spans) = traced(outer);
    assert_eq!((outer_ctx, leaf_ctx), (None, None));
    assert!(lines.iter().all(|l| support::parse(l).trace.is_none()));
    assert!(spans.is_empty());
}

#[test]
fn a_denied_trace_keeps_ids_on_the_lines_but_reports_nothing() {
    let (_, lines, spans) = traced(|| with_context(remote(Sampling::Deny), outer));
    assert!(lines.iter().all(|l| support::parse(l).trace.is_some()));
    assert!(spans.is_empty());
}

#[trace(err)]
fn fails(input: &str) -> Result<u8, String> {
    input.parse().map_err(|_| format!("bad number {input}"))
}

#[trace]
fn panics() {
    panic!("boom")
}

#[test]
fn errors_and_panics_mark_the_span() {
    let (_, _, spans) = traced(|| {
        with_context(remote(Sampling::Debug), || {
            assert!(fails("x").is_err());
            assert!(fails("7").is_ok());
            assert!(std::panic::catch_unwind(panics).is_err());
        })
    });
    let errors: Vec<Option<&str>> = spans.iter().map(|s| s.error.as_deref()).collect();
    assert_eq!(errors, [Some("\"bad number x\""), None, Some("panicked")]);
    assert!(spans.iter().all(|s| s.context.sampling == Sampling::Debug));
}

#[trace]
async fn child_task() -> Option<TraceContext> {
    tokio::task::yield_now().await;
    current_context()
}

#[trace]
async fn spawner() -> [Option<TraceContext>; 3] {
    let carried = tokio::spawn(in_current_context(child_task()));
    let bare = tokio::spawn(child_task());
    let inline = child_task().await;
    [carried.await.unwrap(), inline, bare.await.unwrap()]
}

#[test]
fn a_spawned_task_keeps_the_spawners_span_as_its_parent() {
    let parent = remote(Sampling::Accept);
    let ([carried, inline, bare], lines, spans) = traced(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        runtime.block_on(in_context(Some(parent), spawner()))
    });
    let spawner_span = spans
        .iter()
        .find(|s| s.name == "trace_context::spawner")
        .expect("spawner span");
    assert_eq!(spawner_span.context.parent_id, Some(parent.span_id));
    for child in [carried.unwrap(), inline.unwrap()] {
        assert_eq!(child.parent_id, Some(spawner_span.context.span_id));
        assert_eq!(child.trace_id, parent.trace_id);
    }
    // A traced async fn's span opens at its first poll: spawned bare, it starts outside.
    assert_eq!(bare, None);
    // The spawned tasks print under ids of their own, at depth 1.
    let tasks = support::by_task(&lines);
    assert_eq!(tasks.len(), 3, "{lines:#?}");
    assert!(tasks[1..]
        .iter()
        .all(|(_, t)| support::parse(&t[0]).depth == 1));
}

#[test]
fn in_context_follows_the_future_not_the_thread() {
    let parent = remote(Sampling::Accept);
    let (seen, _, _) = traced(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let task = tokio::spawn(in_context(Some(parent), async {
                tokio::task::yield_now().await;
                current_context()
            }));
            let outside = current_context();
            (task.await.unwrap(), outside)
        })
    });
    assert_eq!(seen, (Some(parent), None));
}
