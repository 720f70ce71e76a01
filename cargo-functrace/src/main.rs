//! `cargo functrace add|remove`: inserts `#[functrace::trace]` above every
//! function of Rust source files, and removes exactly what it inserted.
//! See README.md for usage.

mod cli;
mod edit;
mod files;
mod scan;

fn main() -> std::process::ExitCode {
    cli::main()
}
