// `crate = path`: functrace reached through a re-export.
mod tools {
    pub use functrace;
}

#[functrace::trace(crate = crate::tools::functrace, ret)]
fn answer() -> u8 {
    42
}

fn main() {
    assert_eq!(answer(), 42);
}
