//! The C ABI: the only `extern "C"` code of the crate, one file per family of C objects.
//!
//! Every exported function runs its body through `boundary::boundary`: a panic is caught and
//! becomes `RM_ERR_PANIC`, every error becomes its stable code, and the detail text is written
//! into the caller's `rm_error` in the same call. Its arguments are checked by `args` before
//! anything else happens: pointers for NULL, lengths against `isize::MAX`, strings for UTF-8,
//! buffers for overlap.
//!
//! The order of the modules below is the order of the declarations in `include/resman.h`
//! (cbindgen reads them in this order), hence one module per group.

// `rm_error`, and the panic boundary every export runs in.
mod boundary;

// The argument checks and output writes every export uses.
mod args;

// Version, result text, live handles.
mod library;

// Managers: settings, create, destroy.
mod manager;

// Registered resources, dependencies, closing one resource.
mod resource;

// Cleanup of a whole manager and its failure report.
mod cleanup;

// Status document, counters, memory sample.
mod status;

// Log events.
mod log;

// DBs: options, open, memory.
mod db;

// Point reads and writes, multi-get.
mod kv;

// Write batches.
mod batch;

// Snapshots.
mod snapshot;

// Iterators.
mod iter;

// The Rust side of a resource registered with a close callback.
mod foreign;

pub use batch::*;
pub use boundary::{rm_error, RM_ERROR_MESSAGE_MAX};
pub use cleanup::*;
pub use db::*;
pub use iter::*;
pub use kv::*;
pub use library::*;
pub use log::*;
pub use manager::*;
pub use resource::*;
pub use snapshot::*;
pub use status::*;
