//! Zero cost when off, shown on machine code: the release build of `chains` without the
//! `trace` feature has the very same `.text` section as `chains` with every `#[trace]` line
//! deleted. The traced build must differ, which shows the comparison can fail.
//!
//! It builds a scratch crate three times (its target dir is kept under cargo's test tmpdir, so
//! later runs are incremental) and reads `.text` with `objcopy` (binutils).

use std::path::{Path, PathBuf};
use std::process::Command;

const EXAMPLE: &str = include_str!("../chains.rs");

fn scratch_crate() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("zero-cost");
    std::fs::create_dir_all(dir.join("src")).expect("scratch dir");
    let functrace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../functrace");
    let manifest = format!(
        "[package]\nname = \"chains\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [dependencies]\nfunctrace = {{ path = {:?}, default-features = false }}\n\n\
         [features]\ntrace = [\"functrace/trace\"]\n\n[workspace]\n",
        functrace.canonicalize().expect("functrace dir")
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).expect("manifest");
    dir
}

/// Builds `source` in release and returns the bytes of the binary's `.text` section.
fn text_section(dir: &Path, source: &str, features: &[&str]) -> Vec<u8> {
    std::fs::write(dir.join("src/main.rs"), source).expect("main.rs");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(dir)
        .args(["build", "--release", "--quiet", "--features"])
        .arg(features.join(","))
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env("RUSTFLAGS", "-Awarnings")
        .status()
        .expect("cargo build");
    assert!(status.success(), "scratch build failed");
    let binary = dir.join("target/release/chains");
    let text = dir.join("target/text.bin");
    let status = Command::new("objcopy")
        .args(["-O", "binary", "--only-section=.text"])
        .arg(&binary)
        .arg(&text)
        .status()
        .expect("objcopy (binutils) must be installed");
    assert!(status.success(), "objcopy failed");
    std::fs::read(&text).expect(".text bytes")
}

#[test]
fn off_build_has_the_text_of_the_build_without_attributes() {
    let without_attributes: String = EXAMPLE
        .lines()
        .filter(|line| line.trim() != "#[trace]")
        .map(|line| format!("{line}\n"))
        .collect();
    assert_eq!(
        EXAMPLE.lines().count() - without_attributes.lines().count(),
        7,
        "chains.rs has seven #[trace] lines"
    );
    let dir = scratch_crate();
    let plain = text_section(&dir, &without_attributes, &[]);
    let off = text_section(&dir, EXAMPLE, &[]);
    let on = text_section(&dir, EXAMPLE, &["trace"]);
    assert!(!plain.is_empty());
    assert!(plain == off, ".text differs with #[trace] compiled out");
    assert!(
        plain != on,
        "the traced build should differ: is the check reading the right section?"
    );
}
