//! The `boomerang` command line.
fn main() {}
