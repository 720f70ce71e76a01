use functrace::{trace, Builder, MemorySink, Output};

#[trace]
fn traced() {}

fn main() {
    let memory = MemorySink::new();
    Builder::new()
        .output(Output::Memory(memory.clone()))
        .install()
        .unwrap();
    traced();
    let expected = std::env::var("FUNCTRACE_EXPECTED_MODE").unwrap();
    let printed = if memory.lines().is_empty() { "off" } else { "on" };
    assert_eq!(printed, expected);
}
