//! The shapes async programs take, each pinned by its exact output (elapsed times masked, task
//! ids renumbered in order of appearance): every id's lines nest as a stack, a branch of a task
//! prints as `NN.B`, and everything `main` does in sequence is one id. Without the `trace`
//! feature the same shapes print nothing.

mod support;

use std::future::pending;

use functrace::trace;
use futures::stream::{FuturesUnordered, StreamExt};
use support::{assert_every_id_nests, capture, renumbered};
use tokio::task::yield_now;

#[trace(args)]
async fn leaf(n: u32) {
    yield_now().await;
    std::hint::black_box(n);
}

#[trace(args)]
async fn mid(n: u32) {
    leaf(n).await;
}

#[trace]
fn step() {}

#[trace]
async fn stuck() {
    step();
    pending::<()>().await;
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// Runs `f`, checks that every id nests, and returns the renumbered lines.
fn shape(f: impl FnOnce()) -> String {
    let ((), lines) = capture(f);
    assert_every_id_nests(&lines);
    renumbered(&lines)
}

/// A golden as written in this file: indented, between blank lines. Nothing without `trace`.
fn golden(text: &str) -> String {
    if !cfg!(feature = "trace") {
        return String::new();
    }
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.strip_prefix("        ").unwrap_or(l).to_owned() + "\n")
        .collect()
}

#[tokio::main(flavor = "current_thread")]
async fn sequential_main() {
    leaf(1).await;
    mid(2).await;
    step();
}

#[test]
fn tokio_main_with_sequential_awaits_is_one_task() {
    assert_eq!(
        shape(sequential_main),
        golden(
            r#"
        t[01]:    ->async_shapes::leaf(n = 1)
        t[01]:    <-async_shapes::leaf *
        t[01]:    ->async_shapes::mid(n = 2)
        t[01]:        ->async_shapes::leaf(n = 2)
        t[01]:        <-async_shapes::leaf *
        t[01]:    <-async_shapes::mid *
        t[01]:    ->async_shapes::step
        t[01]:    <-async_shapes::step *
"#
        )
    );
}

#[trace]
async fn two_joined() {
    tokio::join!(mid(1), mid(2));
}

#[test]
fn join_prints_the_second_branch_under_a_branch_id() {
    assert_eq!(
        shape(|| current_thread().block_on(two_joined())),
        golden(
            r#"
        t[01]:    ->async_shapes::two_joined
        t[01]:        ->async_shapes::mid(n = 1)
        t[01]:            ->async_shapes::leaf(n = 1)
        t[01.2]:        ->async_shapes::mid(n = 2)
        t[01.2]:            ->async_shapes::leaf(n = 2)
        t[01.2]:            <-async_shapes::leaf *
        t[01.2]:        <-async_shapes::mid *
        t[01]:            <-async_shapes::leaf *
        t[01]:        <-async_shapes::mid *
        t[01]:    <-async_shapes::two_joined *
"#
        )
    );
}

#[trace]
async fn one_selected() {
    tokio::select! {
        biased;
        () = stuck() => unreachable!("never ready"),
        () = mid(1) => {}
    }
}

#[test]
fn select_closes_the_losing_branch_as_cancelled() {
    assert_eq!(
        shape(|| current_thread().block_on(one_selected())),
        golden(
            r#"
        t[01]:    ->async_shapes::one_selected
        t[01]:        ->async_shapes::stuck
        t[01]:            ->async_shapes::step
        t[01]:            <-async_shapes::step *
        t[01.2]:        ->async_shapes::mid(n = 1)
        t[01.2]:            ->async_shapes::leaf(n = 1)
        t[01.2]:            <-async_shapes::leaf *
        t[01.2]:        <-async_shapes::mid *
        t[01]:        <-async_shapes::stuck * (cancelled)
        t[01]:    <-async_shapes::one_selected *
"#
        )
    );
}

#[trace]
async fn ten_unordered() {
    let mut all: FuturesUnordered<_> = (1..=10).map(leaf).collect();
    while all.next().await.is_some() {}
}

#[test]
fn futures_unordered_gives_each_overlapping_future_a_branch() {
    assert_eq!(
        shape(|| current_thread().block_on(ten_unordered())),
        golden(
            r#"
        t[01]:    ->async_shapes::ten_unordered
        t[01]:        ->async_shapes::leaf(n = 1)
        t[01.2]:        ->async_shapes::leaf(n = 2)
        t[01.3]:        ->async_shapes::leaf(n = 3)
        t[01.4]:        ->async_shapes::leaf(n = 4)
        t[01.5]:        ->async_shapes::leaf(n = 5)
        t[01.6]:        ->async_shapes::leaf(n = 6)
        t[01.7]:        ->async_shapes::leaf(n = 7)
        t[01.8]:        ->async_shapes::leaf(n = 8)
        t[01.9]:        ->async_shapes::leaf(n = 9)
        t[01.10]:        ->async_shapes::leaf(n = 10)
        t[01.10]:        <-async_shapes::leaf *
        t[01.9]:        <-async_shapes::leaf *
        t[01.8]:        <-async_shapes::leaf *
        t[01.7]:        <-async_shapes::leaf *
        t[01.6]:        <-async_shapes::leaf *
        t[01.5]:        <-async_shapes::leaf *
        t[01.4]:        <-async_shapes::leaf *
        t[01.3]:        <-async_shapes::leaf *
        t[01.2]:        <-async_shapes::leaf *
        t[01]:        <-async_shapes::leaf *
        t[01]:    <-async_shapes::ten_unordered *
"#
        )
    );
}

#[trace]
async fn pair() {
    tokio::join!(leaf(3), leaf(4));
}

#[trace]
async fn nested_join() {
    tokio::join!(mid(1), pair());
}

#[test]
fn a_join_inside_a_branch_branches_again() {
    assert_eq!(
        shape(|| current_thread().block_on(nested_join())),
        golden(
            r#"
        t[01]:    ->async_shapes::nested_join
        t[01]:        ->async_shapes::mid(n = 1)
        t[01]:            ->async_shapes::leaf(n = 1)
        t[01.2]:        ->async_shapes::pair
        t[01.2]:            ->async_shapes::leaf(n = 3)
        t[01.3]:            ->async_shapes::leaf(n = 4)
        t[01.3]:            <-async_shapes::leaf *
        t[01.2]:            <-async_shapes::leaf *
        t[01.2]:        <-async_shapes::pair *
        t[01]:            <-async_shapes::leaf *
        t[01]:        <-async_shapes::mid *
        t[01]:    <-async_shapes::nested_join *
"#
        )
    );
}

#[test]
fn roots_multiplexed_by_an_executor_branch_the_thread() {
    assert_eq!(
        shape(|| futures::executor::block_on(async {
            futures::join!(mid(1), mid(2), leaf(3));
            step();
        })),
        golden(
            r#"
        t[01]:    ->async_shapes::mid(n = 1)
        t[01]:        ->async_shapes::leaf(n = 1)
        t[01.2]:    ->async_shapes::mid(n = 2)
        t[01.2]:        ->async_shapes::leaf(n = 2)
        t[01.3]:    ->async_shapes::leaf(n = 3)
        t[01]:        <-async_shapes::leaf *
        t[01]:    <-async_shapes::mid *
        t[01.2]:        <-async_shapes::leaf *
        t[01.2]:    <-async_shapes::mid *
        t[01.3]:    <-async_shapes::leaf *
        t[01]:    ->async_shapes::step
        t[01]:    <-async_shapes::step *
"#
        )
    );
}

#[trace]
async fn local_set() {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let a = tokio::task::spawn_local(mid(1));
            let b = tokio::task::spawn_local(mid(2));
            a.await.unwrap();
            b.await.unwrap();
        })
        .await;
}

#[test]
fn tasks_of_a_local_set_are_tasks_of_their_own() {
    assert_eq!(
        shape(|| current_thread().block_on(local_set())),
        golden(
            r#"
        t[01]:    ->async_shapes::local_set
        t[02]:    ->async_shapes::mid(n = 1)
        t[02]:        ->async_shapes::leaf(n = 1)
        t[03]:    ->async_shapes::mid(n = 2)
        t[03]:        ->async_shapes::leaf(n = 2)
        t[03]:        <-async_shapes::leaf *
        t[03]:    <-async_shapes::mid *
        t[02]:        <-async_shapes::leaf *
        t[02]:    <-async_shapes::mid *
        t[01]:    <-async_shapes::local_set *
"#
        )
    );
}

#[trace]
async fn two_units() {
    functrace::in_new_task(mid(1)).await;
    functrace::in_new_task(async { step() }).await;
}

#[test]
fn in_new_task_gives_each_unit_of_work_its_own_id_from_depth_one() {
    assert_eq!(
        shape(|| current_thread().block_on(two_units())),
        golden(
            r#"
        t[01]:    ->async_shapes::two_units
        t[02]:    ->async_shapes::mid(n = 1)
        t[02]:        ->async_shapes::leaf(n = 1)
        t[02]:        <-async_shapes::leaf *
        t[02]:    <-async_shapes::mid *
        t[03]:    ->async_shapes::step
        t[03]:    <-async_shapes::step *
        t[01]:    <-async_shapes::two_units *
"#
        )
    );
}
