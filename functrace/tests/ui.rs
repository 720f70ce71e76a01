//! Compile-time behaviour of `#[trace]`, in whichever feature mode the tests run: the same
//! programs must compile, and the same misuses fail with the same pinned messages, whether
//! tracing is compiled in or not.

#[test]
fn ui() {
    // Read by `pass/mode.rs`, which checks that trybuild built it in this same mode.
    let mode = if cfg!(feature = "trace") { "on" } else { "off" };
    std::env::set_var("FUNCTRACE_EXPECTED_MODE", mode);
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
