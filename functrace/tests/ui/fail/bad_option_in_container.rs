mod counters {
    use functrace::trace;

    pub struct Counter;

    #[trace]
    impl Counter {
        #[trace(verbose)]
        pub fn get(&self) -> u8 {
            1
        }
    }
}

fn main() {
    counters::Counter.get();
}
