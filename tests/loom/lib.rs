//! The lifecycle protocol of resman, compiled unchanged against loom's primitives.
//! The model tests themselves live next to the code, in `src/lifecycle.rs` (`loom_tests`).

#[path = "../../src/sync.rs"]
mod sync;

#[path = "../../src/lifecycle.rs"]
pub mod lifecycle;
