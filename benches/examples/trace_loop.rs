//! The `trace_buffered` variant of `benches/benches/trace.rs` as a plain loop, without
//! criterion: a traced `#[inline(never)] fn f(x: u64) -> u64 { black_box(x) + 1 }` (and a
//! 10-deep chain) called on the main thread, `Output::Buffered` over `/dev/null`, best of 5
//! rounds in process CPU time. It uses only the API every version of `functrace` has had, so
//! it can be copied into a checkout of an older commit for an A/B of two builds:
//!
//! ```text
//! cargo run --release -p functrace-benches --features trace --example trace_loop
//! ```

use std::hint::black_box;

use functrace::{trace, Builder, Output};

#[trace]
#[inline(never)]
fn f(x: u64) -> u64 {
    black_box(x) + 1
}

/// The chain `d10` → `d9` → ... → `d2` → `f`.
macro_rules! chain {
    ($($name:ident -> $callee:ident),*) => {
        $(#[trace] #[inline(never)] fn $name(x: u64) -> u64 { $callee(x) })*
    };
}
chain!(d2 -> f, d3 -> d2, d4 -> d3, d5 -> d4, d6 -> d5, d7 -> d6, d8 -> d7, d9 -> d8, d10 -> d9);

const CALLS: u64 = 2_000_000;

/// The process's CPU time in nanoseconds.
fn cpu_nanos() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write to.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "clock_gettime");
    now.tv_sec as f64 * 1e9 + now.tv_nsec as f64
}

/// ns per traced call of `run`, which makes `calls` of them.
fn per_call(calls: u64, run: impl Fn()) -> f64 {
    let start = cpu_nanos();
    run();
    (cpu_nanos() - start) / calls as f64
}

fn main() {
    Builder::new()
        .output(Output::Buffered(Box::new(Output::File("/dev/null".into()))))
        .install()
        .expect("trace output");
    let (mut depth1, mut depth10) = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        depth1 = depth1.min(per_call(CALLS, || {
            for i in 0..CALLS {
                black_box(f(black_box(i)));
            }
        }));
        depth10 = depth10.min(per_call(CALLS, || {
            for i in 0..CALLS / 10 {
                black_box(d10(black_box(i)));
            }
        }));
    }
    println!("ns per traced call: depth 1 {depth1:.1}, depth 10 {depth10:.1}");
}
