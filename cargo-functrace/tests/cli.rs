//! Runs the real `cargo-functrace` binary on temporary directories.

mod common;

use std::fs;
use std::path::Path;

use common::{assert_exit, assert_same, run, snapshot, stderr, stdout};

const LIB: &str = "\
//! Crate docs: ünïcödé 😀
use std::fmt;

/// Adds.
pub fn add(a: u8, b: u8) -> u8 {
    fn helper() {}
    a + b
}

pub struct S;

impl S {
    #[inline]
    pub(crate) fn new() -> Self { S }
    const fn c() {}
}

impl fmt::Display for S {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { write!(f, \"é\") }
}

macro_rules! m { () => { fn in_macro() {} } }

#[cfg(test)]
mod tests {
    #[test]
    fn t() {}
}
";

const LIB_ADDED: &str = "\
//! Crate docs: ünïcödé 😀
use std::fmt;

/// Adds.
#[functrace::trace]
pub fn add(a: u8, b: u8) -> u8 {
    #[functrace::trace]
    fn helper() {}
    a + b
}

pub struct S;

impl S {
    #[inline]
    #[functrace::trace]
    pub(crate) fn new() -> Self { S }
    const fn c() {}
}

impl fmt::Display for S {
    #[functrace::trace]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { write!(f, \"é\") }
}

macro_rules! m { () => { fn in_macro() {} } }

#[cfg(test)]
mod tests {
    #[test]
    fn t() {}
}
";

const IMPORTED: &str = "use functrace::{trace, Level};\r\n\r\ntrait T {\r\n\tfn req(&self);\r\n\tfn provided(&self) {}\r\n}\r\n\r\n#[trace] fn done() {}\r\nfn x() {} fn y() {}\r\n";

const IMPORTED_ADDED: &str = "use functrace::{trace, Level};\r\n\r\ntrait T {\r\n\tfn req(&self);\r\n\t#[trace]\r\n\tfn provided(&self) {}\r\n}\r\n\r\n#[trace] fn done() {}\r\n#[trace]\r\nfn x() {} #[trace] fn y() {}\r\n";

const UNTOUCHED: &str = "fn skipped() {}\n";

/// A small project: two sources that get annotated, one nested module, and
/// files in `target/` and a hidden directory that must be left alone.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let write = |rel: &str, text: &str| {
        let path = dir.path().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    };
    write("src/lib.rs", LIB);
    write("src/imported.rs", IMPORTED);
    write(
        "src/nested/deep.rs",
        "pub mod inner {\n    pub fn deep() {}\n}\n",
    );
    write("target/debug/out.rs", UNTOUCHED);
    write(".hidden/x.rs", UNTOUCHED);
    write("README.md", "fn not_rust() {}\n");
    dir
}

fn read(dir: &Path, rel: &str) -> String {
    fs::read_to_string(dir.join(rel)).unwrap()
}

#[test]
fn add_annotates_every_function() {
    let dir = project();
    let out = run(dir.path(), &["add", "."]);
    assert_exit(&out, 0);
    assert_eq!(read(dir.path(), "src/lib.rs"), LIB_ADDED);
    assert_eq!(read(dir.path(), "src/imported.rs"), IMPORTED_ADDED);
    assert_eq!(
        read(dir.path(), "src/nested/deep.rs"),
        "pub mod inner {\n    #[functrace::trace]\n    pub fn deep() {}\n}\n"
    );
    assert_eq!(read(dir.path(), "target/debug/out.rs"), UNTOUCHED);
    assert_eq!(read(dir.path(), ".hidden/x.rs"), UNTOUCHED);
    assert_eq!(
        stderr(&out).trim_end(),
        "functrace: 3 files changed, 8 functions annotated, 0 files skipped with errors"
    );
    assert_eq!(stdout(&out), "");
}

#[test]
fn add_is_idempotent() {
    let dir = project();
    assert_exit(&run(dir.path(), &["add", "src"]), 0);
    let once = snapshot(dir.path());
    let out = run(dir.path(), &["add", "src"]);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("0 files changed, 0 functions annotated"));
    assert_same(&once, &snapshot(dir.path()));
    // Nothing left to add, as --check confirms.
    assert_exit(&run(dir.path(), &["add", "--check", "src"]), 0);
}

#[test]
fn remove_restores_byte_identical_files() {
    let dir = project();
    let original = snapshot(dir.path());
    assert_exit(&run(dir.path(), &["add", "--tests", "."]), 0);
    assert_ne!(read(dir.path(), "src/lib.rs"), LIB);
    let out = run(dir.path(), &["remove", "."]);
    assert_exit(&out, 0);
    assert_eq!(
        stderr(&out).trim_end(),
        "functrace: 3 files changed, 9 annotations removed, 0 files skipped with errors"
    );
    assert_same(&original, &snapshot(dir.path()));
}

#[test]
fn tests_flag_annotates_test_code() {
    let dir = project();
    assert_exit(&run(dir.path(), &["add", "--tests", "src/lib.rs"]), 0);
    assert!(read(dir.path(), "src/lib.rs")
        .contains("mod tests {\n    #[test]\n    #[functrace::trace]\n    fn t() {}\n}"));
}

#[test]
fn check_prints_diff_writes_nothing_and_exits_1() {
    let dir = project();
    let original = snapshot(dir.path());
    let out = run(dir.path(), &["add", "--check", "src/nested"]);
    assert_exit(&out, 1);
    assert_eq!(
        stdout(&out),
        "--- src/nested/deep.rs\n+++ src/nested/deep.rs\n@@ -1,3 +1,4 @@\n pub mod inner {\n+    #[functrace::trace]\n     pub fn deep() {}\n }\n"
    );
    assert!(stderr(&out).contains("1 file would change, 1 function annotated"));
    let out = run(dir.path(), &["add", "--check", "."]);
    assert_exit(&out, 1);
    let diff = stdout(&out);
    for name in ["src/lib.rs", "src/imported.rs", "src/nested/deep.rs"] {
        assert!(
            diff.contains(&format!("--- {name}\n+++ {name}\n@@ ")),
            "{diff}"
        );
    }
    let added: Vec<&str> = diff
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .collect();
    assert_eq!(added.len(), 8, "{diff}");
    assert_same(&original, &snapshot(dir.path()));

    // remove --check: nothing to remove before add, the inserted lines after.
    assert_exit(&run(dir.path(), &["remove", "--check", "."]), 0);
    assert_exit(&run(dir.path(), &["add", "."]), 0);
    let added = snapshot(dir.path());
    let out = run(dir.path(), &["remove", "--check", "."]);
    assert_exit(&out, 1);
    assert!(stdout(&out).contains("-    #[functrace::trace]\n     pub fn deep() {}"));
    assert!(stdout(&out).contains("-fn x() {} #[trace] fn y() {}\r\n+fn x() {} fn y() {}\r\n"));
    assert_same(&added, &snapshot(dir.path()));
}

#[test]
fn exclude_skips_matching_paths() {
    let dir = project();
    let out = run(
        dir.path(),
        &[
            "add",
            ".",
            "--exclude",
            "src/nested",
            "--exclude",
            "imported.rs",
        ],
    );
    assert_exit(&out, 0);
    assert_eq!(read(dir.path(), "src/lib.rs"), LIB_ADDED);
    assert_eq!(read(dir.path(), "src/imported.rs"), IMPORTED);
    assert!(!read(dir.path(), "src/nested/deep.rs").contains("trace"));
    assert!(stderr(&out).contains("1 file changed"));

    let dir = project();
    assert_exit(&run(dir.path(), &["add", "src", "--exclude", "**/*.rs"]), 0);
    assert_eq!(read(dir.path(), "src/lib.rs"), LIB);
}

#[test]
fn broken_file_is_reported_and_left_untouched() {
    let dir = project();
    let broken = "fn ok() {}\n\nfn broken() -> {\n}\n";
    fs::write(dir.path().join("src/broken.rs"), broken).unwrap();
    let out = run(dir.path(), &["add", "src"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("error: src/broken.rs:3:"), "{err}");
    assert!(
        err.contains("3 files changed, 8 functions annotated, 1 file skipped with errors"),
        "{err}"
    );
    assert_eq!(read(dir.path(), "src/broken.rs"), broken);
    assert_eq!(read(dir.path(), "src/lib.rs"), LIB_ADDED);

    // The same with --check: still 2, not 1.
    let out = run(dir.path(), &["remove", "--check", "src"]);
    assert_exit(&out, 2);

    // A lexer error (unbalanced delimiter) and a missing path are errors too.
    fs::write(dir.path().join("src/broken.rs"), "fn a() {\n    (\n}\n").unwrap();
    let out = run(dir.path(), &["remove", "src", "missing.rs"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("error: src/broken.rs:"), "{err}");
    assert!(err.contains("error: missing.rs:"), "{err}");
    assert!(err.contains("2 files skipped with errors"), "{err}");
    assert_eq!(read(dir.path(), "src/lib.rs"), LIB);
}

#[test]
fn invoked_by_cargo_with_extra_argument() {
    let dir = project();
    let out = run(dir.path(), &["functrace", "add", "--check", "src/lib.rs"]);
    assert_exit(&out, 1);
    assert!(stdout(&out).starts_with("--- src/lib.rs\n+++ src/lib.rs\n"));
    assert_exit(&run(dir.path(), &["functrace", "add", "src/lib.rs"]), 0);
    assert_eq!(read(dir.path(), "src/lib.rs"), LIB_ADDED);
    assert_exit(&run(dir.path(), &["functrace", "remove", "src/lib.rs"]), 0);
    assert_eq!(read(dir.path(), "src/lib.rs"), LIB);
}

#[test]
fn usage_errors() {
    let dir = project();
    let out = run(dir.path(), &["add"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("Usage: cargo functrace add"),
        "{}",
        stderr(&out)
    );
    let out = run(dir.path(), &["add", "src", "--exclude", "[oops"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("invalid --exclude pattern"));
    assert_eq!(read(dir.path(), "src/lib.rs"), LIB);
}

#[cfg(unix)]
#[test]
fn permissions_are_kept() {
    use std::os::unix::fs::PermissionsExt;
    let dir = project();
    let path = dir.path().join("src/lib.rs");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o751)).unwrap();
    assert_exit(&run(dir.path(), &["add", "src/lib.rs"]), 0);
    assert_eq!(read(dir.path(), "src/lib.rs"), LIB_ADDED);
    let mode = fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o751);
}
