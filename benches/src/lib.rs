//! Benchmarks of functrace; see benches/.

pub mod forward_client;
