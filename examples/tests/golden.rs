//! The examples' exact output, elapsed times masked, pinned by files in `tests/golden/`.
//! `chains` is compared line for line; `tasks` and `threads` race, so they are compared task
//! by task (see `support::canonical`), after checking that each task's lines form a tree.
//! Without the `trace` feature the examples must print no trace line at all.

#[path = "../../functrace/tests/support/mod.rs"]
mod support;

mod common;

use common::example;
use std::process::Command;

/// Runs an example and returns its trace lines (stderr, the default output).
fn run(name: &str) -> Vec<String> {
    let output = Command::new(example(name))
        .env_remove("FUNCTRACE")
        .env_remove("FUNCTRACE_OUT")
        .output()
        .unwrap_or_else(|e| panic!("cannot run example {name}: {e}"));
    assert!(output.status.success(), "{name} failed: {output:?}");
    String::from_utf8(output.stderr)
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

#[cfg(feature = "trace")]
mod traced {
    use super::*;

    fn golden(name: &str) -> String {
        let path = format!("{}/tests/golden/{name}.txt", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn chains_prints_the_pinned_tree() {
        let lines = run("chains");
        let masked: Vec<String> = lines.iter().map(|l| support::mask(l)).collect();
        assert_eq!(masked.join("\n") + "\n", golden("chains"));
    }

    fn check_concurrent(name: &str) {
        let lines = run(name);
        assert_eq!(support::task_ids(&lines), [1, 2, 3], "{lines:#?}");
        assert!(
            lines[0].starts_with("t[01]:    ->"),
            "main's task comes first: {lines:#?}"
        );
        for (_, task) in support::by_task(&lines) {
            support::assert_well_nested(&task);
        }
        assert_eq!(support::canonical(&lines), golden(name));
    }

    /// `chains` with these environment variables: (stdout, stderr).
    fn run_with(vars: &[(&str, &str)]) -> (String, String) {
        let mut command = Command::new(example("chains"));
        command.env_remove("FUNCTRACE").env_remove("FUNCTRACE_OUT");
        command.envs(vars.iter().copied());
        let output = command.output().expect("run chains");
        assert!(output.status.success(), "{output:?}");
        let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("utf-8");
        (text(output.stdout), text(output.stderr))
    }

    #[test]
    fn environment_chooses_the_output() {
        let expected = golden("chains");
        let masked =
            |text: &str| -> String { text.lines().map(|l| support::mask(l) + "\n").collect() };

        assert_eq!(
            run_with(&[("FUNCTRACE", "off")]),
            (String::new(), String::new())
        );

        let (stdout, stderr) = run_with(&[("FUNCTRACE_OUT", "stdout")]);
        assert_eq!((masked(&stdout), stderr), (expected.clone(), String::new()));

        let path =
            std::env::temp_dir().join(format!("functrace-golden-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let (stdout, stderr) = run_with(&[("FUNCTRACE_OUT", path.to_str().unwrap())]);
        assert_eq!((stdout, stderr), (String::new(), String::new()));
        let written = std::fs::read_to_string(&path).expect("trace file");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(masked(&written), expected);

        // A filter: `b1` filtered out (its callee prints one level up), `d` too; the bad
        // directive is named on stderr and the others apply.
        let (stdout, stderr) = run_with(&[
            ("FUNCTRACE_OUT", "stdout"),
            ("FUNCTRACE", "chains::b1=off,chains::d=maybe,chains::d=off"),
        ]);
        assert_eq!(
            stderr,
            "functrace: FUNCTRACE: bad functrace filter directive `chains::d=maybe` \
             (expected `path=on`, `path=off`, `on` or `off`)\n"
        );
        let filtered: String = expected
            .lines()
            .filter(|l| !l.contains("chains::b1") && !l.contains("chains::d "))
            .filter(|l| !l.ends_with("chains::d"))
            .map(|l| l.replace("        ->chains::c1", "    ->chains::c1"))
            .map(|l| l.replace("        <-chains::c1", "    <-chains::c1") + "\n")
            .collect();
        assert_eq!(masked(&stdout), filtered);

        let (_, stderr) = run_with(&[("FUNCTRACE_OUT", "/no/such/dir/trace.log")]);
        assert!(
            stderr.starts_with("functrace: cannot open FUNCTRACE_OUT"),
            "{stderr}"
        );
        assert_eq!(masked(stderr.split_once('\n').unwrap().1), expected);
    }

    #[test]
    fn a_closed_pipe_loses_lines_not_the_program() {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let status = Command::new(example("chains"))
            .env_remove("FUNCTRACE")
            .env_remove("FUNCTRACE_OUT")
            .stderr(writer)
            .status()
            .expect("run chains");
        assert!(status.success(), "{status:?}");
    }

    #[test]
    fn tasks_prints_one_tree_per_task() {
        check_concurrent("tasks");
    }

    #[test]
    fn threads_prints_one_tree_per_thread() {
        check_concurrent("threads");
    }
}

#[cfg(not(feature = "trace"))]
#[test]
fn without_the_feature_examples_print_nothing() {
    for name in ["chains", "tasks", "threads"] {
        assert_eq!(run(name), Vec::<String>::new(), "{name}");
    }
}
