//! The two chains of `chains`, each on its own std thread: every thread has its own id.
//!
//! ```text
//! cargo run --example threads --features trace
//! ```

use functrace::trace;
use std::thread;

#[trace]
fn a1() {
    b1();
}

#[trace]
fn b1() {
    c1();
}

#[trace]
fn c1() {
    d();
}

#[trace]
fn a2() {
    b2();
}

#[trace]
fn b2() {
    c2();
}

#[trace]
fn c2() {
    d();
}

#[trace]
fn d() {}

#[trace]
fn run() {
    let first = thread::spawn(a1);
    let second = thread::spawn(a2);
    first.join().expect("a1 thread");
    second.join().expect("a2 thread");
}

fn main() {
    run();
}
