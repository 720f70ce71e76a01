//! Finding an example's binary for the feature mode this test was built in.

use std::path::PathBuf;
use std::process::Command;

/// Builds (if needed) the example `name` with the features of this test build, and returns
/// its binary: the hashed file cargo made for these features, not the copy in
/// `target/<profile>/examples/`, which belongs to whichever mode was built last.
pub fn example(name: &str) -> PathBuf {
    let mut cargo = Command::new(env!("CARGO"));
    cargo.current_dir(env!("CARGO_MANIFEST_DIR")).args([
        "build",
        "--quiet",
        "--message-format=json",
        "--example",
        name,
    ]);
    if cfg!(feature = "trace") {
        cargo.args(["--features", "trace"]);
    }
    let output = cargo.output().expect("cargo build");
    assert!(output.status.success(), "building {name}: {output:?}");
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| {
            message["reason"] == "compiler-artifact" && message["target"]["name"] == name
        })
        .find_map(|message| message["filenames"][0].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("no binary for example {name}"))
}
