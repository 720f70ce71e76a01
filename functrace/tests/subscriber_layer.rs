//! The `tracing-subscriber` feature: `tracing` spans printed by `functrace::layer()` and by
//! `functrace::subscriber()` in one tree with `#[trace]` calls, with the same task and branch
//! ids, under tracing's filters. Every golden is printed by both, which must agree. Goldens
//! are the captured lines with elapsed times masked and task ids renumbered from 01; where a
//! golden holds `#[trace]` lines it is checked only with the `trace` feature (without it, the
//! layer still prints the spans and `#[trace]` is compiled out: see `spans_print_without_trace`).
#![cfg(feature = "tracing-subscriber")]

mod support;

use functrace::trace;
use support::{assert_every_id_nests, capture, renumbered};
use tracing::{info_span, instrument, Dispatch};
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::prelude::*;

/// `f` run twice, its lines captured: under functrace's layer over the registry, and under
/// functrace's own subscriber, each on a thread of its own (so that each numbers its task's
/// branches from the start). The two must print the same lines (task ids renumbered); the
/// subscriber's run is returned.
fn printed<R: Send>(f: impl Fn() -> R + Sync) -> (R, Vec<String>) {
    let run = |dispatch: Dispatch| {
        std::thread::scope(|scope| {
            let run = scope.spawn(|| capture(|| tracing::dispatcher::with_default(&dispatch, &f)));
            run.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    };
    let (_, by_layer) = run(Dispatch::new(
        tracing_subscriber::registry().with(functrace::layer()),
    ));
    let (result, lines) = run(Dispatch::new(functrace::subscriber()));
    assert_eq!(
        renumbered(&lines),
        renumbered(&by_layer),
        "functrace::subscriber() and functrace::layer() print alike"
    );
    (result, lines)
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

#[instrument]
fn span_outer() {
    traced_mid();
}

#[trace]
fn traced_mid() {
    span_inner(3);
}

#[instrument]
fn span_inner(n: u32) {
    traced_leaf();
}

#[trace]
fn traced_leaf() {}

#[cfg(feature = "trace")]
#[trace]
fn traced_outer() {
    span_inner(5);
}

#[cfg(feature = "trace")]
#[test]
fn instrumented_and_traced_fns_nest_both_ways() {
    let ((), lines) = printed(|| {
        span_outer();
        traced_outer();
    });
    assert_every_id_nests(&lines);
    assert_eq!(
        renumbered(&lines),
        "\
t[01]:    ->subscriber_layer::span_outer
t[01]:        ->subscriber_layer::traced_mid
t[01]:            ->subscriber_layer::span_inner(n = 3)
t[01]:                ->subscriber_layer::traced_leaf
t[01]:                <-subscriber_layer::traced_leaf *
t[01]:            <-subscriber_layer::span_inner *
t[01]:        <-subscriber_layer::traced_mid *
t[01]:    <-subscriber_layer::span_outer *
t[01]:    ->subscriber_layer::traced_outer
t[01]:        ->subscriber_layer::span_inner(n = 5)
t[01]:            ->subscriber_layer::traced_leaf
t[01]:            <-subscriber_layer::traced_leaf *
t[01]:        <-subscriber_layer::span_inner *
t[01]:    <-subscriber_layer::traced_outer *
"
    );
}

#[test]
fn spans_print_without_trace_and_traced_fns_only_with_it() {
    let ((), lines) = printed(span_outer);
    let golden = if cfg!(feature = "trace") {
        "\
t[01]:    ->subscriber_layer::span_outer
t[01]:        ->subscriber_layer::traced_mid
t[01]:            ->subscriber_layer::span_inner(n = 3)
t[01]:                ->subscriber_layer::traced_leaf
t[01]:                <-subscriber_layer::traced_leaf *
t[01]:            <-subscriber_layer::span_inner *
t[01]:        <-subscriber_layer::traced_mid *
t[01]:    <-subscriber_layer::span_outer *
"
    } else {
        "\
t[01]:    ->subscriber_layer::span_outer
t[01]:        ->subscriber_layer::span_inner(n = 3)
t[01]:        <-subscriber_layer::span_inner *
t[01]:    <-subscriber_layer::span_outer *
"
    };
    assert_eq!(renumbered(&lines), golden);
}

#[test]
fn fields_print_as_arguments_and_later_records_on_the_exit_line() {
    let ((), lines) = printed(|| {
        let span = info_span!(
            "request",
            method = "GET",
            id = 7u64,
            ok = true,
            ratio = 0.5,
            user = tracing::field::Empty,
            status = tracing::field::Empty,
        );
        span.record("user", "ann");
        let entered = span.enter();
        span.record("status", 200);
        info_span!("plain").in_scope(|| {});
        drop(entered);
        // Entered again: no second `->` line; closed when the last handle goes.
        let again = span.clone();
        again.in_scope(|| {});
        drop(span);
        info_span!("negative", delta = -3i64).in_scope(|| {});
        drop(again);
    });
    assert_eq!(
        renumbered(&lines),
        "\
t[01]:    ->subscriber_layer::request(method = \"GET\", id = 7, ok = true, ratio = 0.5, user = \"ann\")
t[01]:        ->subscriber_layer::plain
t[01]:        <-subscriber_layer::plain *
t[01.2]:    ->subscriber_layer::negative(delta = -3)
t[01.2]:    <-subscriber_layer::negative *
t[01]:    <-subscriber_layer::request * (status = 200)
"
    );
}

#[instrument]
fn panics() {
    let _inner = info_span!("inner").entered();
    panic!("boom");
}

#[test]
fn spans_closed_by_unwinding_are_marked() {
    let (caught, lines) = printed(|| std::panic::catch_unwind(panics));
    assert!(caught.is_err());
    assert_eq!(
        renumbered(&lines),
        "\
t[01]:    ->subscriber_layer::panics
t[01]:        ->subscriber_layer::inner
t[01]:        <-subscriber_layer::inner * (panicked)
t[01]:    <-subscriber_layer::panics * (panicked)
"
    );
    // The frames were put back: the next span is a root again.
    let ((), lines) = printed(|| info_span!("next").in_scope(|| {}));
    assert_eq!(support::parse(&lines[0]).depth, 1);
}

#[test]
fn a_span_never_entered_prints_nothing() {
    let ((), lines) = printed(|| {
        let span = info_span!("idle", x = 1);
        span.record("x", 2);
        drop(span);
    });
    assert_eq!(lines, Vec::<String>::new());
}

#[instrument]
async fn polled(n: u32) {
    for step in 0..3 {
        info_span!("step", step).in_scope(|| {});
        tokio::task::yield_now().await;
    }
    traced_leaf();
}

#[test]
fn an_instrumented_async_fn_prints_once_over_many_polls() {
    let (polls, lines) = printed(|| {
        let mut polls = 0;
        let mut future = Box::pin(polled(2));
        current_thread().block_on(std::future::poll_fn(|cx| {
            polls += 1;
            future.as_mut().poll(cx)
        }));
        polls
    });
    assert_eq!(polls, 4, "polled several times");
    let leaf = if cfg!(feature = "trace") {
        "\
t[01]:        ->subscriber_layer::traced_leaf
t[01]:        <-subscriber_layer::traced_leaf *
"
    } else {
        ""
    };
    assert_eq!(
        renumbered(&lines),
        format!(
            "\
t[01]:    ->subscriber_layer::polled(n = 2)
t[01]:        ->subscriber_layer::step(step = 0)
t[01]:        <-subscriber_layer::step *
t[01]:        ->subscriber_layer::step(step = 1)
t[01]:        <-subscriber_layer::step *
t[01]:        ->subscriber_layer::step(step = 2)
t[01]:        <-subscriber_layer::step *
{leaf}t[01]:    <-subscriber_layer::polled *
"
        )
    );
}

use std::future::Future;

#[instrument]
async fn branch(n: u32) {
    tokio::task::yield_now().await;
    info_span!("inside", n).in_scope(|| {});
    tokio::task::yield_now().await;
}

/// `tokio::join!` starts each of its polls with the next future in turn: the second poll
/// reaches `branch(2)` first.
#[instrument]
async fn joins() {
    tokio::join!(branch(1), branch(2));
    branch(3).await;
}

#[instrument]
async fn spawned() {
    tokio::task::yield_now().await;
    info_span!("in_spawned").in_scope(|| {});
}

#[test]
fn join_branches_and_spawned_tasks_keep_their_ids() {
    let ((), lines) = printed(|| {
        current_thread().block_on(async {
            joins().await;
            tokio::spawn(spawned()).await.unwrap();
        })
    });
    assert_every_id_nests(&lines);
    assert_eq!(
        renumbered(&lines),
        "\
t[01]:    ->subscriber_layer::joins
t[01]:        ->subscriber_layer::branch(n = 1)
t[01.2]:        ->subscriber_layer::branch(n = 2)
t[01.2]:            ->subscriber_layer::inside(n = 2)
t[01.2]:            <-subscriber_layer::inside *
t[01]:            ->subscriber_layer::inside(n = 1)
t[01]:            <-subscriber_layer::inside *
t[01]:        <-subscriber_layer::branch *
t[01.2]:        <-subscriber_layer::branch *
t[01]:        ->subscriber_layer::branch(n = 3)
t[01]:            ->subscriber_layer::inside(n = 3)
t[01]:            <-subscriber_layer::inside *
t[01]:        <-subscriber_layer::branch *
t[01]:    <-subscriber_layer::joins *
t[02]:    ->subscriber_layer::spawned
t[02]:        ->subscriber_layer::in_spawned
t[02]:        <-subscriber_layer::in_spawned *
t[02]:    <-subscriber_layer::spawned *
"
    );
}

#[cfg(feature = "trace")]
#[trace]
async fn traced_joiner() {
    tokio::join!(branch(1), branch(2));
}

#[cfg(feature = "trace")]
#[test]
fn spans_join_under_a_traced_future_in_branches() {
    let ((), lines) = printed(|| current_thread().block_on(traced_joiner()));
    assert_every_id_nests(&lines);
    assert_eq!(
        renumbered(&lines),
        "\
t[01]:    ->subscriber_layer::traced_joiner
t[01]:        ->subscriber_layer::branch(n = 1)
t[01.2]:        ->subscriber_layer::branch(n = 2)
t[01.2]:            ->subscriber_layer::inside(n = 2)
t[01.2]:            <-subscriber_layer::inside *
t[01]:            ->subscriber_layer::inside(n = 1)
t[01]:            <-subscriber_layer::inside *
t[01]:        <-subscriber_layer::branch *
t[01.2]:        <-subscriber_layer::branch *
t[01]:    <-subscriber_layer::traced_joiner *
"
    );
}

mod noisy {
    #[tracing::instrument]
    pub fn filtered() {
        super::span_inner(9);
    }

    #[tracing::instrument(level = "debug")]
    pub fn debug_only() {}
}

#[instrument]
fn kept() {
    noisy::filtered();
    noisy::debug_only();
}

/// Under `kept`, the filtered-out `noisy::filtered` prints nothing and what runs inside it
/// prints one level up; `debug_only` is below the level.
const FILTERED: &str = "\
t[01]:    ->subscriber_layer::kept
t[01]:        ->subscriber_layer::span_inner(n = 9)
t[01]:            ->subscriber_layer::traced_leaf
t[01]:            <-subscriber_layer::traced_leaf *
t[01]:        <-subscriber_layer::span_inner *
t[01]:    <-subscriber_layer::kept *
";

fn filtered_golden() -> String {
    match cfg!(feature = "trace") {
        true => FILTERED.to_owned(),
        false => FILTERED
            .lines()
            .filter(|line| !line.contains("traced_"))
            .map(|line| format!("{line}\n"))
            .collect(),
    }
}

fn noisy_off() -> EnvFilter {
    EnvFilter::new("info,subscriber_layer::noisy=off")
}

#[test]
fn an_env_filter_leaves_spans_out_and_their_children_move_up() {
    let layer = Dispatch::new(
        tracing_subscriber::registry()
            .with(functrace::layer())
            .with(noisy_off()),
    );
    let subscriber = Dispatch::new(functrace::subscriber().with(noisy_off()));
    for dispatch in [layer, subscriber] {
        let ((), lines) = capture(|| tracing::dispatcher::with_default(&dispatch, kept));
        assert_eq!(renumbered(&lines), filtered_golden());
    }
}

#[test]
fn a_targets_filter_over_the_subscriber_leaves_spans_out() {
    let targets = Targets::new()
        .with_default(LevelFilter::INFO)
        .with_target("subscriber_layer::noisy", LevelFilter::OFF);
    let dispatch = Dispatch::new(functrace::subscriber().with(targets));
    let ((), lines) = capture(|| tracing::dispatcher::with_default(&dispatch, kept));
    assert_eq!(renumbered(&lines), filtered_golden());
}

#[test]
fn a_per_layer_targets_filter_leaves_spans_out() {
    let targets = Targets::new()
        .with_default(LevelFilter::INFO)
        .with_target("subscriber_layer::noisy", LevelFilter::OFF);
    let dispatch =
        Dispatch::new(tracing_subscriber::registry().with(functrace::layer().with_filter(targets)));
    let ((), lines) = capture(|| tracing::dispatcher::with_default(&dispatch, kept));
    assert_eq!(renumbered(&lines), filtered_golden());
}

#[test]
fn a_muted_output_mutes_the_layer_and_the_subscriber() {
    let layer = Dispatch::new(tracing_subscriber::registry().with(functrace::layer()));
    for dispatch in [layer, Dispatch::new(functrace::subscriber())] {
        muted_output_prints_nothing(&dispatch);
    }
}

fn muted_output_prints_nothing(dispatch: &Dispatch) {
    let (lines, _) = capture(|| {
        let memory = functrace::MemorySink::new();
        let output = || functrace::Output::Memory(memory.clone());
        let builder = functrace::Builder::new().output(output());
        builder.enabled(false).install().unwrap();
        tracing::dispatcher::with_default(dispatch, span_outer);
        assert_eq!(memory.lines(), Vec::<String>::new());
        // Unmuted, the next spans print from depth 1: the muted ones left no frame behind.
        functrace::Builder::new()
            .output(output())
            .install()
            .unwrap();
        tracing::dispatcher::with_default(dispatch, || info_span!("after").in_scope(|| {}));
        memory.lines()
    });
    assert_eq!(
        renumbered(&lines),
        "t[01]:    ->subscriber_layer::after\nt[01]:    <-subscriber_layer::after *\n"
    );
}

/// With the `tracing` feature every `#[trace]` call also opens a span: the layer and the
/// subscriber skip those, so each call prints once.
#[cfg(all(feature = "trace", feature = "tracing"))]
#[test]
fn traced_calls_with_the_tracing_feature_print_once() {
    let ((), lines) = printed(|| {
        traced_outer();
        current_thread().block_on(traced_joiner());
    });
    assert_every_id_nests(&lines);
    assert_eq!(
        renumbered(&lines),
        "\
t[01]:    ->subscriber_layer::traced_outer
t[01]:        ->subscriber_layer::span_inner(n = 5)
t[01]:            ->subscriber_layer::traced_leaf
t[01]:            <-subscriber_layer::traced_leaf *
t[01]:        <-subscriber_layer::span_inner *
t[01]:    <-subscriber_layer::traced_outer *
t[01]:    ->subscriber_layer::traced_joiner
t[01]:        ->subscriber_layer::branch(n = 1)
t[01.2]:        ->subscriber_layer::branch(n = 2)
t[01.2]:            ->subscriber_layer::inside(n = 2)
t[01.2]:            <-subscriber_layer::inside *
t[01]:            ->subscriber_layer::inside(n = 1)
t[01]:            <-subscriber_layer::inside *
t[01]:        <-subscriber_layer::branch *
t[01.2]:        <-subscriber_layer::branch *
t[01]:    <-subscriber_layer::traced_joiner *
"
    );
}
