//! catalogd binary
fn main() {}
