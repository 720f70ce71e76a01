//! What only `functrace::subscriber()` does itself (the layer has the registry do it):
//! `Span::current()`, span handles and their clones, spans that move between threads, and
//! many threads entering one span at once. What it prints is checked against the layer's in
//! `subscriber_layer.rs`.
#![cfg(feature = "tracing-subscriber")]

mod support;

use std::sync::Barrier;

use support::{capture, renumbered};
use tracing::{info_span, instrument, Dispatch, Span};

fn own<R>(f: impl FnOnce() -> R) -> (R, Vec<String>) {
    let dispatch = Dispatch::new(functrace::subscriber());
    capture(|| tracing::dispatcher::with_default(&dispatch, f))
}

#[instrument(fields(status))]
fn handle(id: u32) -> &'static str {
    let current = Span::current();
    current.record("status", 200);
    current
        .metadata()
        .map_or("none", |metadata| metadata.name())
}

#[test]
fn span_current_is_the_innermost_entered_span() {
    let ((outside, inside), lines) = own(|| {
        let outside = Span::current().is_none();
        (outside, handle(7))
    });
    assert!(outside, "no span is current outside every span");
    assert_eq!(inside, "handle");
    assert_eq!(
        renumbered(&lines),
        "\
t[01]:    ->subscriber_own::handle(id = 7)
t[01]:    <-subscriber_own::handle * (status = 200)
"
    );
}

#[test]
fn a_span_closes_with_its_last_handle() {
    let ((), lines) = own(|| {
        let span = info_span!("shared");
        let clone = span.clone();
        span.in_scope(|| {});
        drop(span);
        assert!(!clone.is_disabled());
        clone.in_scope(|| info_span!("inner").in_scope(|| {}));
        drop(clone);
    });
    // Closed at `drop(span)`, `shared` would print its exit line before `inner`.
    assert_eq!(
        renumbered(&lines),
        "\
t[01]:    ->subscriber_own::shared
t[01]:        ->subscriber_own::inner
t[01]:        <-subscriber_own::inner *
t[01]:    <-subscriber_own::shared *
"
    );
}

#[test]
fn a_span_made_on_one_thread_entered_on_another_and_closed_on_a_third_prints_once() {
    let ((), lines) = own(|| {
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let span = info_span!("moved", n = 1);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                tracing::dispatcher::with_default(&dispatch, || {
                    span.in_scope(|| info_span!("child").in_scope(|| {}));
                })
            });
        });
        std::thread::spawn(move || drop(span))
            .join()
            .expect("closing thread");
    });
    let names: Vec<_> = lines
        .iter()
        .map(|line| line.split(':').nth(1).unwrap_or("").trim_start())
        .map(|rest| rest.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        [
            "->subscriber_own",
            "->subscriber_own",
            "<-subscriber_own",
            "<-subscriber_own"
        ],
        "{lines:#?}"
    );
    assert!(lines[0].contains("moved(n = 1)"), "{lines:#?}");
    assert!(lines[3].contains("<-subscriber_own::moved "), "{lines:#?}");
}

/// Four threads enter clones of one span at once, 500 times each, with a span of their own
/// inside: nothing waits forever, and every span prints its two lines once (the shared one
/// too). Which id the threads' spans print under is not asserted: they run under one span
/// from four threads at once.
#[test]
fn threads_entering_one_span_at_once_neither_wedge_nor_tangle() {
    const THREADS: usize = 4;
    const ROUNDS: usize = 500;
    let ((), lines) = own(|| {
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let shared = info_span!("shared");
        let start = Barrier::new(THREADS);
        std::thread::scope(|scope| {
            for _ in 0..THREADS {
                let (shared, start, dispatch) = (shared.clone(), &start, &dispatch);
                scope.spawn(move || {
                    tracing::dispatcher::with_default(dispatch, || {
                        start.wait();
                        for round in 0..ROUNDS {
                            shared.in_scope(|| info_span!("mine", round).in_scope(|| {}));
                        }
                    })
                });
            }
        });
    });
    let count = |what: &str| lines.iter().filter(|line| line.contains(what)).count();
    assert_eq!(count("->subscriber_own::mine"), THREADS * ROUNDS);
    assert_eq!(count("<-subscriber_own::mine"), THREADS * ROUNDS);
    assert_eq!(count("->subscriber_own::shared"), 1);
    assert_eq!(count("<-subscriber_own::shared"), 1);
}
