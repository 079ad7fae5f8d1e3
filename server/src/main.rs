//! The `pipeproof` binary.
fn main() {}
