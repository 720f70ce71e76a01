use functrace::trace;

struct Counter;

#[trace]
impl Counter {
    #[trace]
    const fn zero() -> u8 {
        0
    }
}

fn main() {
    Counter::zero();
}
