// The module path is trybuild's crate name, so only depth and fn name are checked.
// `#[trace]` above `#[tokio::main]`: main's future is traced, so a call from it is at depth 2.
use functrace::{trace, Builder, MemorySink, Output};

#[trace]
async fn inner() {}

#[trace]
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let memory = MemorySink::new();
    Builder::new().output(Output::Memory(memory.clone())).install().unwrap();
    inner().await;
    let expected: &[&str] = match std::env::var("FUNCTRACE_EXPECTED_MODE").unwrap().as_str() {
        "on" => &["        ->", "        <-"],
        _ => &[],
    };
    let lines = memory.lines();
    assert_eq!(lines.len(), expected.len(), "{lines:?}");
    for (line, want) in lines.iter().zip(expected) {
        let event = line.split_once(':').unwrap().1;
        assert!(event.starts_with(want) && event.contains("::inner"), "{line}");
    }
}
