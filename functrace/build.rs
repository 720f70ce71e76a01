//! `cfg(runtime)`: the runtime that prints lines (frames, lines, the clock, the per-thread
//! buffer) is compiled for `#[trace]` (the `trace` feature) and for the `tracing` layer (the
//! `tracing-subscriber` feature), one name for the two.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(runtime)");
    if std::env::var_os("CARGO_FEATURE_TRACE").is_some()
        || std::env::var_os("CARGO_FEATURE_TRACING_SUBSCRIBER").is_some()
    {
        println!("cargo::rustc-cfg=runtime");
    }
}
