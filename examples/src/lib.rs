//! Demo programs; see the examples.
