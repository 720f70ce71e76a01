//! Benchmarks of functrace; see benches/.
