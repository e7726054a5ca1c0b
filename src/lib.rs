//! resman: owns RocksDB and every native resource around it behind `u64` handles with
//! generation counters, so that double close, use after close, stale handles and closing under
//! a running operation are errors instead of crashes.
//!
//! Layers, inside out (the map of every file is in `docs/DESIGN.md`):
//!
//! * leaves: `kind`, `records`, `log`, `config`, [`error`], `metrics`, `resource`;
//! * [`handle`]: the table of slots with generations and kinds;
//! * [`lifecycle`]: one resource's leases and close protocol;
//! * `executor`: the threads close work runs on;
//! * `cleanup`: the order and the two-phase scheduler of a close run;
//! * [`manager`]: names, dependencies, registration, the close path, status;
//! * [`monitor`]: the sampling thread, a client of the manager;
//! * `api`: a manager with its monitor, and the owned Rust [`Manager`];
//! * [`rocks`]: RocksDB resources on top of the above;
//! * [`ffi`]: the C ABI (`include/resman.h`).
//!
//! The core (everything but `rocks` and `ffi`) knows nothing of RocksDB; all `unsafe` code
//! lives in `ffi` and `rocks`.

// The unsafe discipline, enforced: every unsafe operation sits in its own `unsafe` block (also
// inside an `unsafe fn`), every such block says why it is sound (`// SAFETY:`), and every
// `unsafe fn` says what its caller must guarantee (`# Safety`).
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(clippy::missing_safety_doc)]

mod api;
mod cleanup;
mod config;
pub mod error;
mod executor;
pub mod ffi;
pub mod handle;
mod kind;
pub mod lifecycle;
mod log;
pub mod manager;
mod metrics;
pub mod monitor;
mod records;
mod resource;
pub mod rocks;
mod sync;

pub use api::Manager;
pub use error::{rm_result, Error, Result};
pub use handle::{Kind, ManagerHandle, ResourceHandle};
pub use manager::{CloseMode, Config, Leak, LogLevel, Resource};

/// The crate version, "MAJOR.MINOR.PATCH".
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The crate version as MAJOR * 10000 + MINOR * 100 + PATCH.
pub const VERSION_NUMBER: u32 = parse(env!("CARGO_PKG_VERSION_MAJOR")) * 10000
    + parse(env!("CARGO_PKG_VERSION_MINOR")) * 100
    + parse(env!("CARGO_PKG_VERSION_PATCH"));

const fn parse(s: &str) -> u32 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut n = 0;
    while i < b.len() {
        n = n * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    n
}
