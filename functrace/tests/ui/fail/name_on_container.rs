use functrace::trace;

struct Counter;

#[trace(name = "count")]
impl Counter {
    fn get(&self) -> u8 {
        1
    }
}

fn main() {
    Counter.get();
}
