//! storaged binary
fn main() {}
