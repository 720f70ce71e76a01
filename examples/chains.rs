//! The first demo of the original Go functrace: two call chains that end in the same `d()`.
//! The trace tells which chain each `d()` ran in.
//!
//! ```text
//! cargo run --example chains --features trace
//! ```

use functrace::trace;

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

fn main() {
    a1();
    a2();
}
