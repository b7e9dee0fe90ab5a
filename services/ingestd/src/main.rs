//! ingestd binary
fn main() {}
