//! Every Rust snippet of the READMEs is compiled: each must appear, line for line
//! (indentation and blank lines aside), in `examples/readme.rs`, an example that `cargo test`
//! builds in both feature modes, or in a doctest of the sources in [`DOCTESTS`] (a snippet
//! that needs a feature the examples do not turn on).

use std::path::Path;

/// The READMEs, from the workspace root.
const READMES: &[&str] = &[
    "README.md",
    "functrace/README.md",
    "functrace-macros/README.md",
    "functrace-mesh/README.md",
    "functrace-sidecar/README.md",
    "cargo-functrace/README.md",
    "examples/README.md",
    "deploy/README.md",
];

/// Sources whose doc comments hold doctests that README snippets are copies of; their tests
/// run in `scripts/test` with the features they need.
const DOCTESTS: &[&str] = &["functrace/src/subscriber/mod.rs", "functrace/src/lib.rs"];

/// The lines of each ```rust block of `markdown`, trimmed, blank ones left out.
fn rust_snippets(markdown: &str) -> Vec<Vec<&str>> {
    let mut snippets = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim_start().starts_with("```rust") => current = Some(Vec::new()),
            Some(_) if line.trim_start().starts_with("```") => {
                snippets.extend(current.take());
            }
            Some(lines) if !line.trim().is_empty() => lines.push(line.trim()),
            _ => {}
        }
    }
    snippets
}

fn trimmed_lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect()
}

#[test]
fn every_readme_rust_snippet_is_in_the_compiled_readme_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let example = std::fs::read_to_string(root.join("examples/readme.rs")).unwrap();
    let mut sources = vec![trimmed_lines(&example)];
    let doctests: Vec<String> = DOCTESTS
        .iter()
        .map(|path| std::fs::read_to_string(root.join(path)).unwrap())
        .collect();
    for source in &doctests {
        let lines = source.lines().filter_map(|line| {
            let line = line.trim_start();
            line.strip_prefix("//!")
                .or_else(|| line.strip_prefix("///"))
                .map(str::trim)
                .filter(|line| !line.is_empty())
        });
        sources.push(lines.collect());
    }
    let mut checked = 0;
    for readme in READMES {
        let text = std::fs::read_to_string(root.join(readme)).unwrap();
        for (i, snippet) in rust_snippets(&text).iter().enumerate() {
            let found = sources.iter().any(|lines| {
                lines
                    .windows(snippet.len())
                    .any(|window| window == snippet.as_slice())
            });
            assert!(
                found,
                "{readme}, rust snippet {}: not in examples/readme.rs nor a doctest, line for line:\n{}",
                i + 1,
                snippet.join("\n")
            );
            checked += 1;
        }
    }
    // The READMEs have snippets: a parser that finds none would pass anything.
    assert!(checked >= 10, "{checked} snippets found");
}

#[test]
fn snippets_are_found_with_their_lines_trimmed() {
    let markdown = "text\n```rust\n  let a = 1;\n\n  a\n```\n```sh\nls\n```\n";
    assert_eq!(rust_snippets(markdown), vec![vec!["let a = 1;", "a"]]);
}
