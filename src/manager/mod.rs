//! The manager: resources by name, the dependency graph, leases, and the close path.
//!
//! Every resource of every manager lives in one process-wide [`HandleTable`], so an operation
//! on a resource handle resolves it with one lock-free lookup and takes one lease; it never
//! touches its manager. Managers live in a second table, so a manager handle passed where a
//! resource is expected (or the reverse) is recognised as the wrong kind.
//!
//! Dependencies are leases too: a resource holds one lease ("pin") on each resource it depends
//! on from registration until its own native close has finished. So a dependency can never be
//! natively closed before its dependents, whatever order closes are asked for in and whatever
//! is still in flight: the lease protocol in [`crate::lifecycle`] enforces the order.
//!
//! Locking: the registry lock (names and graph) is never held while a resource does its work,
//! while a lease is dropped, or while a removed entry is dropped.

pub use crate::config::{
    Config, DEFAULT_CLEANUP_TIMEOUT, DEFAULT_FORCE_CLEANUP_TIMEOUT, DEFAULT_MAX_RETRIES,
    DEFAULT_MONITOR_INTERVAL, DEFAULT_RETRY_DELAY, MAX_RETRIES,
};
pub use crate::log::{LogFn, LogLevel};
pub use crate::resource::{CloseMode, Leak, Resource};

use crate::cleanup;
use crate::error::{rm_result, Error, Failure, Result};
use crate::executor;
use crate::handle::{tags, Handle, HandleError, HandleTable, Kind, Ref, Stored};
use crate::lifecycle::{Claim, Lifecycle, Release, State};
use crate::metrics::Metrics;
use crate::records::{
    CleanupStep, ClosedRecord, ConfigStatus, HistogramSnapshot, MemorySample, ResourceMemory,
    ResourceStatus, Status, Totals,
};
use once_cell::sync::Lazy;
use parking_lot::Mutex;
use rustc_hash::{FxHashMap, FxHashSet};
use std::any::Any;
use std::collections::VecDeque;
use std::ops::Deref;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

mod close;
mod entry;
mod graph;
mod managers;
mod native;
mod observe;
mod register;
mod status;

pub use self::close::*;
pub use self::entry::*;
use self::graph::*;
pub use self::managers::*;
pub(crate) use self::native::*;
pub use self::observe::*;
pub use self::register::*;
pub use self::status::*;
