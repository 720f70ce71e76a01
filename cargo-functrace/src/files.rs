//! File system side: finding the `.rs` files to process, `--exclude`
//! matching, atomic writes and unified diffs.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use walkdir::WalkDir;

/// Compiles the `--exclude` patterns.
pub fn exclude_set(patterns: &[String]) -> Result<GlobSet, globset::Error> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        builder.add(Glob::new(pattern)?);
    }
    builder.build()
}

/// The files to process: each file argument as is, and every `*.rs` file
/// below each directory argument (skipping `target` and hidden directories
/// and symlinks), minus excluded paths, without duplicates. Also returns
/// one message per path that could not be read.
pub fn rust_files(paths: &[PathBuf], exclude: &GlobSet) -> (Vec<PathBuf>, Vec<String>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    let mut add = |path: PathBuf| {
        let key = fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if seen.insert(key) {
            files.push(path);
        }
    };
    for root in paths {
        let meta = match fs::metadata(root) {
            Ok(meta) => meta,
            Err(err) => {
                errors.push(format!("{}: {err}", root.display()));
                continue;
            }
        };
        if !meta.is_dir() {
            if !is_excluded(root, root, exclude) {
                add(root.clone());
            }
            continue;
        }
        let walk = WalkDir::new(root)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|entry| {
                if entry.depth() == 0 {
                    return true;
                }
                let name = entry.file_name().to_string_lossy();
                let skipped_dir =
                    entry.file_type().is_dir() && (name.starts_with('.') || name == "target");
                !skipped_dir && !is_excluded(entry.path(), root, exclude)
            });
        for entry in walk {
            match entry {
                Ok(entry) => {
                    let is_rs = entry.path().extension().is_some_and(|ext| ext == "rs");
                    if entry.file_type().is_file() && is_rs {
                        add(entry.into_path());
                    }
                }
                Err(err) => errors.push(err.to_string()),
            }
        }
    }
    (files, errors)
}

/// A path is excluded when a pattern matches it as given (without `./`),
/// relative to the directory argument it was found under, or its name.
fn is_excluded(path: &Path, root: &Path, exclude: &GlobSet) -> bool {
    if exclude.is_empty() {
        return false;
    }
    let relative = path
        .strip_prefix(root)
        .ok()
        .filter(|p| !p.as_os_str().is_empty());
    let name = path.file_name().map(Path::new);
    [Some(clean(path).as_path()), relative, name]
        .into_iter()
        .flatten()
        .any(|candidate| exclude.is_match(candidate))
}

/// `path` without `.` components, as shown to the user.
pub fn clean(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| *c != Component::CurDir)
        .collect()
}

/// Replaces the contents of `path` without ever leaving it half-written: the
/// new text goes to a temporary file in the same directory, which gets the
/// original permissions and is then renamed over the original. A symlink is
/// followed, so the link stays a link.
pub fn write_atomic(path: &Path, contents: &str) -> io::Result<()> {
    let target = fs::canonicalize(path)?;
    let permissions = fs::metadata(&target)?.permissions();
    let dir = target.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".functrace-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(contents.as_bytes())?;
    tmp.as_file().set_permissions(permissions)?;
    tmp.persist(&target).map_err(|err| err.error)?;
    Ok(())
}

/// A `diff -u` style unified diff of the change to `path`.
pub fn unified_diff(path: &Path, old: &str, new: &str) -> String {
    let name = clean(path).display().to_string();
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&name, &name)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(root: &Path, rel: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "fn a() {}\n").unwrap();
    }

    fn walk(root: &Path, paths: &[&str], exclude: &[&str]) -> Vec<String> {
        let paths: Vec<PathBuf> = paths.iter().map(|p| root.join(p)).collect();
        let exclude: Vec<String> = exclude.iter().map(|s| s.to_string()).collect();
        let (files, errors) = rust_files(&paths, &exclude_set(&exclude).unwrap());
        assert!(errors.is_empty(), "{errors:?}");
        files
            .iter()
            .map(|f| f.strip_prefix(root).unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn walks_rs_files_skipping_target_and_hidden_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for rel in [
            "src/lib.rs",
            "src/a/b.rs",
            "src/notes.txt",
            "target/debug/build/out.rs",
            "src/target/x.rs",
            ".git/hook.rs",
            "src/.hidden/y.rs",
            "build.rs",
            "script",
        ] {
            touch(root, rel);
        }
        assert_eq!(
            walk(root, &["."], &[]),
            ["build.rs", "src/a/b.rs", "src/lib.rs"]
        );
        // Explicit files are taken whatever their name; duplicates are dropped.
        assert_eq!(
            walk(root, &["script", "src", "src/lib.rs"], &[]),
            ["script", "src/a/b.rs", "src/lib.rs"]
        );
        // A hidden directory given explicitly is walked.
        assert_eq!(walk(root, &["src/.hidden"], &[]), ["src/.hidden/y.rs"]);
    }

    #[test]
    fn exclude_matches_path_relative_path_or_name() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for rel in ["src/lib.rs", "src/gen/x.rs", "src/gen/y.rs", "build.rs"] {
            touch(root, rel);
        }
        assert_eq!(
            walk(root, &["."], &["build.rs"]),
            ["src/gen/x.rs", "src/gen/y.rs", "src/lib.rs"]
        );
        assert_eq!(walk(root, &["."], &["src/gen"]), ["build.rs", "src/lib.rs"]);
        assert_eq!(
            walk(root, &["src"], &["gen/*.rs", "lib.rs"]),
            Vec::<String>::new()
        );
        assert_eq!(
            walk(root, &["src"], &["**/x.rs"]),
            ["src/gen/y.rs", "src/lib.rs"]
        );
    }

    #[test]
    fn missing_path_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (files, errors) = rust_files(&[dir.path().join("nope")], &GlobSet::empty());
        assert!(files.is_empty());
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("nope"), "{errors:?}");
    }

    #[cfg(unix)]
    #[test]
    fn atomic_write_keeps_permissions_and_symlinks() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.rs");
        fs::write(&file, "old").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("link.rs");
        symlink(&file, &link).unwrap();
        write_atomic(&link, "new").unwrap();
        assert_eq!(fs::read_to_string(&file).unwrap(), "new");
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        let mode = fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 2, "temporary file left behind");
    }

    #[test]
    fn diff_has_file_names_and_hunks() {
        let diff = unified_diff(
            Path::new("./src/a.rs"),
            "x\nfn a() {}\n",
            "x\n#[t]\nfn a() {}\n",
        );
        assert_eq!(
            diff,
            "--- src/a.rs\n+++ src/a.rs\n@@ -1,2 +1,3 @@\n x\n+#[t]\n fn a() {}\n"
        );
    }
}
