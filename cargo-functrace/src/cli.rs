//! Command line parsing (clap) and the driver that runs `add`/`remove` over
//! the files, prints diffs, errors and the summary, and picks the exit code.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::scan::Mode;
use crate::{edit, files, scan};

/// Exit code when `--check` finds something to change.
const EXIT_WOULD_CHANGE: u8 = 1;
/// Exit code when a file or path could not be processed.
const EXIT_ERROR: u8 = 2;

#[derive(Parser, Debug)]
#[command(name = "cargo-functrace", bin_name = "cargo functrace", version)]
/// Add or remove `#[functrace::trace]` on every function of Rust source files.
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Insert `#[functrace::trace]` (or `#[trace]` where it is imported)
    /// above every function and method.
    Add {
        #[command(flatten)]
        common: Common,
        /// Also annotate `#[test]` functions and `#[cfg(test)]` code.
        #[arg(long)]
        tests: bool,
    },
    /// Remove exactly the attributes `add` inserts.
    Remove {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Args, Debug)]
struct Common {
    /// Files, or directories to search for `*.rs` files (skipping `target`
    /// and hidden directories).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Write nothing; print the changes as a unified diff and exit with 1 if
    /// anything would change.
    #[arg(long)]
    check: bool,
    /// Skip files and directories whose path or name matches GLOB (repeatable).
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
}

pub fn main() -> ExitCode {
    let mut args: Vec<_> = std::env::args_os().collect();
    // `cargo functrace ...` runs `cargo-functrace functrace ...`.
    if args.get(1).is_some_and(|arg| arg == "functrace") {
        args.remove(1);
    }
    let cli = Cli::parse_from(args);
    let (mode, common) = match cli.command {
        Command::Add { common, tests } => (Mode::Add { tests }, common),
        Command::Remove { common } => (Mode::Remove, common),
    };
    run(mode, &common)
}

#[derive(Default)]
struct Summary {
    files_changed: usize,
    functions: usize,
    failed: usize,
}

fn run(mode: Mode, common: &Common) -> ExitCode {
    let exclude = match files::exclude_set(&common.exclude) {
        Ok(set) => set,
        Err(err) => {
            eprintln!("error: invalid --exclude pattern: {err}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let (paths, walk_errors) = files::rust_files(&common.paths, &exclude);
    let mut summary = Summary {
        failed: walk_errors.len(),
        ..Summary::default()
    };
    for err in walk_errors {
        eprintln!("error: {err}");
    }
    for path in &paths {
        match process(path, mode, common.check) {
            Ok(0) => {}
            Ok(count) => {
                summary.files_changed += 1;
                summary.functions += count;
            }
            Err(err) => {
                eprintln!("error: {err}");
                summary.failed += 1;
            }
        }
    }
    eprintln!("{}", summary_line(mode, common.check, &summary));
    if summary.failed > 0 {
        ExitCode::from(EXIT_ERROR)
    } else if common.check && summary.files_changed > 0 {
        ExitCode::from(EXIT_WOULD_CHANGE)
    } else {
        ExitCode::SUCCESS
    }
}

/// Edits one file (or prints its diff with `check`); returns the number of
/// attributes inserted or removed, 0 when the file is unchanged.
fn process(path: &Path, mode: Mode, check: bool) -> Result<usize, String> {
    let shown = files::clean(path);
    let shown = shown.display();
    let old = fs::read_to_string(path).map_err(|err| format!("{shown}: {err}"))?;
    let sites = scan::scan(&old, mode).map_err(|err| format!("{shown}:{err}"))?;
    let (new, count) = match mode {
        Mode::Add { .. } => (edit::insert(&old, &sites), sites.len()),
        Mode::Remove => edit::remove(&old, &sites),
    };
    if count == 0 {
        return Ok(0);
    }
    // Safety net: never write a file that no longer parses.
    scan::check(&new).map_err(|err| {
        format!("{shown}: bug: the edited file would not parse ({err}); left untouched")
    })?;
    if check {
        let diff = files::unified_diff(path, &old, &new);
        // A closed pipe (`... --check | head`) is not worth a panic; the exit
        // code still tells whether anything would change.
        match io::stdout().lock().write_all(diff.as_bytes()) {
            Err(err) if err.kind() != io::ErrorKind::BrokenPipe => {
                return Err(format!("writing the diff: {err}"));
            }
            _ => {}
        }
    } else {
        files::write_atomic(path, &new).map_err(|err| format!("{shown}: {err}"))?;
    }
    Ok(count)
}

fn summary_line(mode: Mode, check: bool, s: &Summary) -> String {
    let files = plural(s.files_changed, "file");
    let functions = match mode {
        Mode::Add { .. } => format!("{} annotated", plural(s.functions, "function")),
        Mode::Remove => format!("{} removed", plural(s.functions, "annotation")),
    };
    let failed = format!("{} skipped with errors", plural(s.failed, "file"));
    if check {
        format!("functrace (check): {files} would change, {functions} (not written), {failed}")
    } else {
        format!("functrace: {files} changed, {functions}, {failed}")
    }
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn summary_wording() {
        let s = Summary {
            files_changed: 2,
            functions: 1,
            failed: 0,
        };
        assert_eq!(
            summary_line(Mode::Add { tests: false }, false, &s),
            "functrace: 2 files changed, 1 function annotated, 0 files skipped with errors"
        );
        assert_eq!(
            summary_line(Mode::Remove, true, &s),
            "functrace (check): 2 files would change, 1 annotation removed (not written), 0 files skipped with errors"
        );
    }
}
