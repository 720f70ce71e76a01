//! The two chains of `chains`, each in its own tokio task on a multi-thread runtime, with awaits
//! in between: lines of the two tasks interleave, yet `grep 't\[02'` gives one clean tree. The
//! body of `#[tokio::main]` is `t[01]` throughout, and the two checks it runs concurrently with
//! `join!` print as `t[01]` and its branch `t[01.2]`.
//!
//! ```text
//! cargo run --example tasks --features trace
//! ```

use functrace::trace;
use tokio::task::yield_now;

#[trace]
async fn a1() {
    yield_now().await;
    b1().await;
}

#[trace]
async fn b1() {
    c1().await;
    yield_now().await;
}

#[trace]
async fn c1() {
    yield_now().await;
    d().await;
}

#[trace]
async fn a2() {
    b2().await;
    yield_now().await;
}

#[trace]
async fn b2() {
    yield_now().await;
    c2().await;
}

#[trace]
async fn c2() {
    d().await;
    yield_now().await;
}

#[trace]
async fn d() {
    yield_now().await;
}

#[trace(args)]
async fn check(n: u32) {
    for _ in 0..n {
        yield_now().await;
    }
    d().await;
}

#[trace]
async fn run() {
    let first = tokio::spawn(a1());
    let second = tokio::spawn(a2());
    tokio::join!(check(1), check(2));
    first.await.expect("a1 task");
    second.await.expect("a2 task");
}

#[trace]
async fn report() {
    yield_now().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    run().await;
    report().await;
}
