//! `#[trace]` with `#[test]` and `#[tokio::test]`, in either order. Each test calls a traced
//! fn of its own and finds that fn's lines one level below the test itself, which shows that
//! the test fn was traced. Tests here run in parallel, so none replaces the output: all share
//! one in-memory output installed by whichever runs first.

use std::sync::OnceLock;

use functrace::{trace, Builder, MemorySink, Output};

fn memory() -> &'static MemorySink {
    static MEMORY: OnceLock<MemorySink> = OnceLock::new();
    MEMORY.get_or_init(|| {
        let memory = MemorySink::new();
        Builder::new()
            .output(Output::Memory(memory.clone()))
            .install()
            .expect("memory output");
        memory
    })
}

/// The depths at which `name` entered, from the shared output.
fn depths_of(name: &str) -> Vec<usize> {
    memory()
        .lines()
        .iter()
        .filter_map(|line| {
            let event = line.split_once(':')?.1;
            let call = event.trim_start_matches(' ');
            let called = call.strip_prefix("->")?.strip_prefix("test_attributes::")?;
            (called == name).then_some((event.len() - call.len()) / 4)
        })
        .collect()
}

#[track_caller]
fn assert_called_from_a_traced_test(name: &str) {
    let expected: &[usize] = if cfg!(feature = "trace") { &[2] } else { &[] };
    assert_eq!(depths_of(name), expected);
}

#[trace]
fn inner_sync_above() {}
#[trace]
fn inner_sync_below() {}
#[trace]
async fn inner_async_above() {}
#[trace]
async fn inner_async_below() {}

#[trace]
#[test]
fn trace_above_test() {
    memory();
    inner_sync_above();
    assert_called_from_a_traced_test("inner_sync_above");
}

#[test]
#[trace]
fn trace_below_test() {
    memory();
    inner_sync_below();
    assert_called_from_a_traced_test("inner_sync_below");
}

#[trace]
#[tokio::test]
async fn trace_above_tokio_test() {
    memory();
    inner_async_above().await;
    assert_called_from_a_traced_test("inner_async_above");
}

#[tokio::test]
#[trace]
async fn trace_below_tokio_test() {
    memory();
    inner_async_below().await;
    assert_called_from_a_traced_test("inner_async_below");
}
