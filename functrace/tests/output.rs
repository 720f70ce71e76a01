//! Output choices: muting, the null sink, failing sinks, files, the environment.
#![cfg(feature = "trace")]

mod support;

use std::io;
use std::sync::Arc;

use functrace::{trace, Builder, Output, Sink};

#[trace]
fn leaf() {}

#[trace]
fn outer() {
    leaf();
}

struct Broken;
impl Sink for Broken {
    fn write_line(&self, _: &[u8]) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

/// One test, so that the process-wide output is not switched under a concurrent test.
#[test]
fn outputs() {
    let ((), lines) = support::capture(|| {
        Builder::new().enabled(false).install().unwrap();
        outer();
    });
    assert!(lines.is_empty(), "muted: {lines:?}");

    let ((), lines) = support::capture(|| {
        Builder::new().output(Output::Null).install().unwrap();
        outer();
    });
    assert!(lines.is_empty());

    let ((), _) = support::capture(|| {
        let before = functrace::dropped_lines();
        Builder::new()
            .output(Output::Custom(Arc::new(Broken)))
            .install()
            .unwrap();
        outer();
        assert_eq!(functrace::dropped_lines() - before, 4);
    });

    let dir = std::env::temp_dir().join(format!("functrace-output-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("trace.log");
    let ((), _) = support::capture(|| {
        Builder::new()
            .output(Output::File(path.clone()))
            .install()
            .unwrap();
        outer();
        outer();
    });
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 8);
    support::assert_well_nested(&lines);

    let ((), _) = support::capture(|| {
        let memory = functrace::MemorySink::new();
        let buffered = Output::Buffered(Box::new(Output::Memory(memory.clone())));
        Builder::new().output(buffered).install().unwrap();
        outer();
        assert!(memory.lines().is_empty(), "held back until flushed");
        functrace::flush();
        assert_eq!(memory.lines().len(), 4);
        std::thread::spawn(outer).join().unwrap();
        assert_eq!(
            memory.lines().len(),
            8,
            "a thread hands its lines over when it ends"
        );
        outer();
        Builder::new().output(Output::Null).install().unwrap();
        outer();
        assert_eq!(
            memory.lines().len(),
            12,
            "replacing the output hands them over"
        );
        support::assert_well_nested(&memory.lines());
    });

    let missing = dir.join("no/such/dir/trace.log");
    let err = Builder::new().output(Output::File(missing)).install();
    assert!(err.is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn environment_is_parsed() {
    assert!(matches!(Output::parse("stderr"), Output::Stderr));
    assert!(matches!(Output::parse("stdout"), Output::Stdout));
    assert!(matches!(Output::parse("null"), Output::Null));
    assert!(matches!(Output::parse("/tmp/x.log"), Output::File(p) if p.ends_with("x.log")));
}
