//! Everything that speaks HTTP to GitHub, and `sim`, the in-memory GitHub that tests and `boomerang demo` talk to.

pub mod sim;
