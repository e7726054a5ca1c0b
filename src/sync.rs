//! The synchronisation primitives the lifecycle protocol is written against.
//!
//! Normally these are the standard library's; under `--cfg loom` they are loom's, so the
//! protocol in `lifecycle.rs` can be model-checked unchanged (see `tests/loom/`).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicU8, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicU8, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};
