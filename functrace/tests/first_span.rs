//! The first traced call of a process: its span contains its children's. (The clock that
//! times spans calibrates at its first reading; the span's wall-clock start must not be read
//! before that.) Alone in its file, so that nothing traced runs before it in this process.
#![cfg(feature = "trace")]

use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use functrace::{trace, FinishedSpan, Sampling, SpanReporter, TraceContext};

#[derive(Default)]
struct Collect(Mutex<Vec<FinishedSpan>>);

impl SpanReporter for Collect {
    fn report(&self, span: FinishedSpan) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(span);
    }
}

#[trace]
fn parent() {
    child();
    child();
}

#[trace]
fn child() {}

#[test]
fn the_first_span_of_a_process_contains_its_children() {
    let spans = Arc::new(Collect::default());
    functrace::set_span_reporter(Some(spans.clone()));
    functrace::with_context(TraceContext::new_root(Sampling::Accept), parent);
    let spans = spans.0.lock().unwrap_or_else(PoisonError::into_inner);
    let end = |span: &FinishedSpan| span.start + span.duration;
    let (children, parents): (Vec<_>, Vec<_>) =
        spans.iter().partition(|s| s.name.ends_with("child"));
    let parent: &FinishedSpan = parents[0];
    assert_eq!(children.len(), 2);
    for child in children {
        assert_eq!(child.context.parent_id, Some(parent.context.span_id));
        let micros = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_micros()
        };
        // In whole microseconds, as the spans are exported.
        assert!(
            micros(parent.start) <= micros(child.start),
            "{parent:?} {child:?}"
        );
        assert!(
            micros(end(child)) <= micros(end(parent)),
            "{parent:?} {child:?}"
        );
    }
}
