//! Round trip on real code no one here wrote: sources of crates from the
//! local cargo registry (dependencies of this workspace, so they are there
//! whenever it builds).

mod common;

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

use common::{assert_exit, assert_same, run, snapshot, stderr};

/// Directory name prefixes (`name-major.`) of the crates to copy.
const CRATES: &[&str] = &[
    "syn-2.",
    "proc-macro2-1.",
    "quote-1.",
    "clap_builder-4.",
    "walkdir-2.",
];

/// `$CARGO_HOME/registry/src/*/`, falling back to `~/.cargo`.
fn registry_src_dirs() -> Vec<PathBuf> {
    let cargo_home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .expect("neither CARGO_HOME nor HOME is set");
    let src = cargo_home.join("registry/src");
    let Ok(entries) = fs::read_dir(&src) else {
        return Vec::new();
    };
    entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect()
}

/// The newest-looking registry directory named `<prefix><version>`.
fn find_crate(registries: &[PathBuf], prefix: &str) -> Option<PathBuf> {
    registries
        .iter()
        .filter_map(|dir| fs::read_dir(dir).ok())
        .flatten()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
        .max()
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let dest = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            fs::create_dir_all(&dest).unwrap();
        } else if entry.file_type().is_file() {
            fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// The number before `word` in the summary line, e.g. `functions annotated`.
fn count_in_summary(stderr: &str, word: &str) -> usize {
    let summary = stderr.lines().last().unwrap_or_default();
    let before = summary
        .split(", ")
        .find(|part| part.contains(word))
        .unwrap_or_else(|| panic!("no {word:?} in summary {summary:?}"));
    before
        .split(' ')
        .rev()
        .find_map(|w| w.parse().ok())
        .unwrap()
}

fn attribute_count(dir: &Path) -> usize {
    snapshot(dir)
        .iter()
        .filter(|(path, _)| path.extension().is_some_and(|e| e == "rs"))
        .map(|(_, bytes)| {
            let text = String::from_utf8_lossy(bytes);
            text.matches("#[functrace::trace]").count() + text.matches("#[trace]").count()
        })
        .sum()
}

#[test]
fn real_crates_round_trip() {
    let registries = registry_src_dirs();
    let crates: Vec<PathBuf> = CRATES
        .iter()
        .map(|prefix| {
            find_crate(&registries, prefix).unwrap_or_else(|| {
                panic!(
                    "no `{prefix}*` crate sources under {registries:?} \
                     (looked in $CARGO_HOME/registry/src/*/ or ~/.cargo/registry/src/*/); \
                     build the workspace first so cargo downloads them"
                )
            })
        })
        .collect();

    let dir = tempfile::tempdir().unwrap();
    for krate in &crates {
        copy_tree(krate, &dir.path().join(krate.file_name().unwrap()));
    }
    let original = snapshot(dir.path());
    let rust_files = original
        .keys()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .count();
    assert!(rust_files >= 100, "only {rust_files} .rs files copied");
    let attributes_before = attribute_count(dir.path());

    let out = run(dir.path(), &["add", "."]);
    assert_exit(&out, 0);
    let annotated = count_in_summary(&stderr(&out), "functions annotated");
    assert!(annotated >= 2000, "only {annotated} functions annotated");
    assert_eq!(attribute_count(dir.path()) - attributes_before, annotated);

    let added = snapshot(dir.path());
    for (path, bytes) in &added {
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::str::from_utf8(bytes).unwrap();
            if let Err(err) = syn::parse_file(text) {
                panic!("{} no longer parses: {err}", path.display());
            }
        }
    }

    // A second add finds nothing left to do.
    let out = run(dir.path(), &["add", "."]);
    assert_exit(&out, 0);
    assert_eq!(count_in_summary(&stderr(&out), "functions annotated"), 0);
    assert_same(&added, &snapshot(dir.path()));

    // --tests adds the test code on top; remove takes everything away again.
    let out = run(dir.path(), &["add", "--tests", "."]);
    assert_exit(&out, 0);
    let test_fns = count_in_summary(&stderr(&out), "functions annotated");
    assert!(test_fns > 0, "no test functions found");

    let out = run(dir.path(), &["remove", "."]);
    assert_exit(&out, 0);
    assert_eq!(
        count_in_summary(&stderr(&out), "annotations removed"),
        annotated + test_fns
    );
    assert_same(&original, &snapshot(dir.path()));
}
