//! B3 propagation: see the module docs once written.
