//! Async traced calls: depth follows the future across workers, spawn starts a new task,
//! join! stays in the caller's task, panics and cancellation close the call.
#![cfg(feature = "trace")]

mod support;

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use functrace::trace;
use futures::FutureExt;
use support::{assert_well_nested, by_task, capture, mask, parse};
use tokio::sync::oneshot;
use tokio::task::yield_now;

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// The lines without their task prefix, elapsed masked.
fn bodies(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| mask(l).split_once(':').unwrap().1.to_owned())
        .collect()
}

#[trace]
fn sync_leaf() {}

#[trace]
async fn leaf() {
    yield_now().await;
    sync_leaf();
}

#[trace]
async fn chain(n: u32) {
    yield_now().await;
    if n > 0 {
        Box::pin(chain(n - 1)).await;
    } else {
        leaf().await;
    }
    yield_now().await;
}

#[test]
fn depth_follows_tasks_across_workers() {
    const TASKS: usize = 16;
    let ((), lines) = capture(|| {
        multi_thread().block_on(async {
            let tasks: Vec<_> = (0..TASKS).map(|_| tokio::spawn(chain(5))).collect();
            for task in tasks {
                task.await.unwrap();
            }
        })
    });
    let tasks = by_task(&lines);
    assert_eq!(tasks.len(), TASKS);
    for (_, task) in &tasks {
        assert_well_nested(task);
        // chain x6, leaf, sync_leaf: 8 calls, 16 lines, deepest at depth 8.
        assert_eq!(task.len(), 16);
        assert_eq!(task.iter().map(|l| parse(l).depth).max(), Some(8));
    }
}

#[test]
fn interleaved_tasks_on_one_worker_keep_their_trees() {
    let ((), lines) = capture(|| {
        current_thread().block_on(async {
            let local = tokio::task::LocalSet::new();
            local
                .run_until(async {
                    let a = tokio::task::spawn_local(chain(3));
                    let b = tokio::task::spawn_local(chain(3));
                    a.await.unwrap();
                    b.await.unwrap();
                })
                .await
        })
    });
    let tasks = by_task(&lines);
    assert_eq!(tasks.len(), 2);
    // The two tasks really interleaved: the second starts before the first ends.
    let second_start = lines
        .iter()
        .position(|l| l.starts_with(&format!("t[{}]", tasks[1].0)));
    assert!(second_start.unwrap() < lines.len() / 2, "{lines:#?}");
    for (_, task) in &tasks {
        assert_well_nested(task);
    }
}

#[trace]
async fn child() {
    yield_now().await;
}

#[trace]
async fn spawner() {
    let handle = tokio::spawn(child());
    handle.await.unwrap();
}

#[test]
fn spawn_inside_a_traced_fn_starts_a_new_task_at_depth_one() {
    let ((), lines) = capture(|| multi_thread().block_on(spawner()));
    let tasks = by_task(&lines);
    assert_eq!(tasks.len(), 2, "{lines:#?}");
    assert_eq!(
        bodies(&tasks[0].1),
        ["    ->async_calls::spawner", "    <-async_calls::spawner *"]
    );
    assert_eq!(
        bodies(&tasks[1].1),
        ["    ->async_calls::child", "    <-async_calls::child *"]
    );
}

#[trace]
async fn joiner() {
    tokio::join!(child(), leaf());
}

#[test]
fn join_stays_in_the_callers_task_one_level_deeper_in_a_branch() {
    let ((), lines) = capture(|| current_thread().block_on(joiner()));
    assert_eq!(support::task_ids(&lines).len(), 1, "{lines:#?}");
    let ids: Vec<String> = by_task(&lines).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), 2, "the task and one branch: {lines:#?}");
    assert_eq!(ids[1], format!("{}.2", ids[0]));
    support::assert_every_id_nests(&lines);
    let depths: Vec<(usize, bool, String)> = lines
        .iter()
        .map(|l| parse(l))
        .map(|e| (e.depth, e.enter, e.name.replace("async_calls::", "")))
        .collect();
    // Both children entered (at depth 2) before either returns: they ran concurrently.
    assert_eq!(depths[0], (1, true, "joiner".to_owned()));
    assert_eq!(depths[1], (2, true, "child".to_owned()));
    assert_eq!(depths[2], (2, true, "leaf".to_owned()));
    assert_eq!(depths.last().unwrap(), &(1, false, "joiner".to_owned()));
    assert_eq!(lines.len(), 8);
}

#[trace]
async fn waits_forever(never: oneshot::Receiver<()>) {
    let _ = never.await;
}

#[trace]
async fn gives_up() {
    let (_keep, never) = oneshot::channel();
    let wait = waits_forever(never);
    let timeout = tokio::time::timeout(Duration::from_millis(1), wait).await;
    assert!(timeout.is_err());
}

#[test]
fn a_dropped_future_is_marked_cancelled() {
    let ((), lines) = capture(|| current_thread().block_on(gives_up()));
    assert_eq!(
        bodies(&lines),
        [
            "    ->async_calls::gives_up",
            "        ->async_calls::waits_forever",
            "        <-async_calls::waits_forever * (cancelled)",
            "    <-async_calls::gives_up *",
        ]
    );
}

#[trace]
async fn panics_after_await() {
    yield_now().await;
    sync_leaf();
    panic!("boom");
}

#[test]
fn a_panicking_future_is_marked_and_the_panic_propagates() {
    let ((), lines) = capture(|| {
        multi_thread().block_on(async {
            let err = tokio::spawn(panics_after_await()).await.unwrap_err();
            assert!(err.is_panic());
            chain(0).await;
        })
    });
    let tasks = by_task(&lines);
    assert_eq!(
        bodies(&tasks[0].1),
        [
            "    ->async_calls::panics_after_await",
            "        ->async_calls::sync_leaf",
            "        <-async_calls::sync_leaf *",
            "    <-async_calls::panics_after_await * (panicked)",
        ]
    );
    // The worker's frame was restored: the next traced call starts at depth 1 again.
    assert_eq!(parse(&tasks[1].1[0]).depth, 1);
    assert_well_nested(&tasks[1].1);
}

#[trace]
async fn panics_at_once() {
    sync_leaf();
    panic!("boom");
}

#[trace]
async fn awaits_a_panic() {
    panics_at_once().await;
}

#[test]
fn a_future_panicking_in_its_first_poll_is_marked_and_the_panic_propagates() {
    let ((), lines) = capture(|| {
        current_thread().block_on(async {
            let caught = AssertUnwindSafe(awaits_a_panic()).catch_unwind().await;
            assert!(caught.is_err(), "the panic reaches the caller");
            chain(0).await;
        })
    });
    assert_eq!(
        bodies(&lines[..6]),
        [
            "    ->async_calls::awaits_a_panic",
            "        ->async_calls::panics_at_once",
            "            ->async_calls::sync_leaf",
            "            <-async_calls::sync_leaf *",
            "        <-async_calls::panics_at_once * (panicked)",
            "    <-async_calls::awaits_a_panic * (panicked)",
        ]
    );
    // The frames were restored: the next traced call starts at depth 1 again.
    assert_eq!(parse(&lines[6]).depth, 1);
    assert_well_nested(&lines);
}

#[test]
fn sync_calls_inside_a_tokio_task_belong_to_that_task() {
    let ((), lines) = capture(|| {
        multi_thread().block_on(async {
            let a = tokio::spawn(async { sync_leaf() });
            let b = tokio::spawn(async { sync_leaf() });
            a.await.unwrap();
            b.await.unwrap();
        })
    });
    assert_eq!(by_task(&lines).len(), 2, "{lines:#?}");
}
