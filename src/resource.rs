//! What the manager owns: the [`Resource`] trait, implemented by the RocksDB resources, by
//! resources registered through the C ABI and by test doubles, and how one is closed.

use crate::records::ResourceMemory;
use std::any::Any;

/// How a resource is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseMode {
    /// Wait for in-flight operations (up to the deadline), then close with every courtesy
    /// (a DB flushes its memtables and syncs its WAL).
    Graceful,
    /// Refuse new operations at once and do not wait: the native close runs now if nothing is
    /// in flight, otherwise when the last in-flight operation ends. Minimal native close.
    Forced,
}

/// What an open resource counts as when a close sweeps it along with what it depends on: its
/// owner never closed it, so it leaked it (as Pebble reports at Close). The names are those of
/// the totals (`leaked_iterators`, `leaked_snapshots`) and of `rm_metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leak {
    Iterator,
    Snapshot,
}

/// Anything the manager can own. Implemented by the RocksDB resources, by foreign resources
/// registered through the C ABI, and by test doubles.
pub trait Resource: Send + Sync + 'static {
    /// Releases the native resource. The manager calls this when no lease is held and none
    /// can be taken any more, on a thread of the close pool (or on the closer's own thread:
    /// when no pool thread can be had, and for a resource that [closes
    /// quickly](Resource::closes_quickly)), never twice at once. An error is retried up to the
    /// manager's `max_retries` with `retry_delay` between attempts (later attempts forced
    /// once the graceful phase is over); a panic is not retried. After a success or the last
    /// failure it is never called again, and the resource is dropped.
    fn close(&self, mode: CloseMode) -> std::result::Result<(), String>;

    /// Called once after the last close attempt failed or panicked, in the same conditions
    /// as `close` and before the close is reported: releases what the resource still holds
    /// natively, without the steps that failed, so that nothing of it outlives the close
    /// that reported the failure (a DB's directory lock, which a caller reopening the
    /// directory right after needs). By default nothing: a resource with native state left
    /// after a failed close gives it up when it is dropped.
    fn abandon(&self) {}

    /// Whether what this resource depends on may still close after this resource's close
    /// failed for good. Yes by default: a failed foreign resource is forgotten and its
    /// parent goes on. resman's own children of a DB say no, so a DB is never closed under
    /// an iterator, snapshot or batch it could not destroy: the DB then stays open (and is
    /// reported as timed out) rather than risk freeing memory still in use.
    fn releases_dependencies_on_failure(&self) -> bool {
        true
    }

    /// True when the native close is short and cannot block (it frees memory; an iterator,
    /// a snapshot, a batch). Such a resource, with no operation in flight when its close
    /// begins, is closed on the closing thread instead of a pool thread, which saves two
    /// thread switches (most of the cost of closing it). False by default: a close that may
    /// block (a DB's flush, a caller's callback) runs on the close pool, so that the closer's
    /// deadline holds whatever the close does.
    fn closes_quickly(&self) -> bool {
        false
    }

    /// True for a part of what it depends on (a column family of its DB): its close begins
    /// only after everything else that depends on the same resource has finished closing, so
    /// a dependent of the DB (a worker flushing at shutdown) may still use the DB's column
    /// families in its own close, although the two do not depend on each other.
    fn part_of_dependencies(&self) -> bool {
        false
    }

    /// What this resource counts as if a close of what it depends on sweeps it along while it
    /// is still open (see [`Leak`]); None (the default): it is not counted.
    fn leak(&self) -> Option<Leak> {
        None
    }

    /// True for a resource whose close record counts the leaks swept along with it by the same
    /// close (a DB counts the iterators and snapshots that were still open on it). False by
    /// default.
    fn collects_leaks(&self) -> bool {
        false
    }

    /// True for a resource named after what it is part of (`db/cf`): its name may be up to
    /// twice `MAX_NAME_LEN` long, since each part may be. Defaults to
    /// [`part_of_dependencies`](Resource::part_of_dependencies).
    fn qualified_name(&self) -> bool {
        self.part_of_dependencies()
    }

    /// Memory figures (a DB's, from RocksDB), or None. Called by the monitor under a lease.
    fn memory(&self) -> Option<ResourceMemory> {
        None
    }

    /// True if `unregister` may hand this resource back to its owner without closing it. Only
    /// resources that the caller registered itself say yes; resman's own (a DB, a column
    /// family) must be closed.
    fn can_unregister(&self) -> bool {
        false
    }

    /// Extra facts for the status document (a DB's memory figures), or None. Called under a
    /// lease, so the resource is open for the call.
    fn details(&self) -> Option<serde_json::Value> {
        None
    }

    /// For downcasting to the concrete type in the layer that created it.
    fn as_any(&self) -> &dyn Any;
}
