//! Counters and the status document.
//!
//! Counters are plain atomics bumped by the manager as things happen; the status document is
//! a snapshot built on demand by [`crate::manager::status`] and serialised to JSON for
//! `rm_status`.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

/// Event counters of one manager (monotonic).
#[derive(Default)]
pub struct Metrics {
    pub registered: AtomicU64,
    pub unregistered: AtomicU64,
    pub closed: AtomicU64,
    pub failed: AtomicU64,
    pub forced: AtomicU64,
    pub deferred: AtomicU64,
    pub timed_out: AtomicU64,
    pub cleanups: AtomicU64,
    pub leaked_iterators: AtomicU64,
    pub leaked_snapshots: AtomicU64,
}

impl Metrics {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// One resource in the status document.
#[derive(Clone, Debug, Serialize)]
pub struct ResourceStatus {
    /// The handle as a number.
    pub handle: u64,
    pub name: String,
    pub kind: &'static str,
    /// "active", "closing", "closed" or "failed".
    pub state: &'static str,
    /// Leases held right now: in-flight operations plus one per live dependent.
    pub leases: u64,
    /// Names of what this resource depends on.
    pub depends_on: Vec<String>,
    /// Names of what depends on this resource.
    pub dependents: Vec<String>,
    pub age_ms: u64,
    /// How long the close took (or has taken so far), when one began.
    pub close_duration_ms: Option<f64>,
    /// True when the native close was left to the last in-flight operation.
    pub close_deferred: bool,
    pub last_error: Option<String>,
    /// What the resource reports about itself (a DB: path, column families, memory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

/// A resource that finished closing, kept in a short history for the status document.
#[derive(Clone, Debug, Serialize)]
pub struct ClosedRecord {
    pub handle: u64,
    pub name: String,
    pub kind: &'static str,
    /// "closed", "failed" or "unregistered".
    pub outcome: &'static str,
    pub close_duration_ms: f64,
    pub forced: bool,
    pub error: Option<String>,
    /// For a DB: iterators still open when it closed (closed by resman).
    pub leaked_iterators: u64,
    /// For a DB: snapshots still open when it closed (released by resman).
    pub leaked_snapshots: u64,
}

/// Counts in the status document.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    /// Registered since the manager was created.
    pub registered: u64,
    /// Currently registered and accepting operations.
    pub active: u64,
    /// Currently closing (no new operations; native close pending).
    pub closing: u64,
    /// Closed successfully since the manager was created.
    pub closed: u64,
    /// Closes that failed since the manager was created.
    pub failed: u64,
    /// Handed back with unregister.
    pub unregistered: u64,
    /// Closes that were forced (asked for, or after a graceful deadline passed).
    pub forced: u64,
    /// Closes left to the last in-flight operation.
    pub deferred: u64,
    /// Resources reported as not finished by a deadline.
    pub timed_out: u64,
    /// Cleanup runs.
    pub cleanups: u64,
    /// Iterators still open when what they read from (their DB, column family or snapshot)
    /// was closed: closed by resman, leaked by the caller.
    pub leaked_iterators: u64,
    /// Snapshots still open when their DB was closed: released by resman.
    pub leaked_snapshots: u64,
}

impl Totals {
    pub fn from_metrics(m: &Metrics, active: u64, closing: u64) -> Totals {
        Totals {
            registered: Metrics::get(&m.registered),
            active,
            closing,
            closed: Metrics::get(&m.closed),
            failed: Metrics::get(&m.failed),
            unregistered: Metrics::get(&m.unregistered),
            forced: Metrics::get(&m.forced),
            deferred: Metrics::get(&m.deferred),
            timed_out: Metrics::get(&m.timed_out),
            cleanups: Metrics::get(&m.cleanups),
            leaked_iterators: Metrics::get(&m.leaked_iterators),
            leaked_snapshots: Metrics::get(&m.leaked_snapshots),
        }
    }
}

/// The status document of one manager.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    pub version: &'static str,
    pub manager: u64,
    pub uptime_ms: u64,
    pub cleanup_timeout_ms: u64,
    pub totals: Totals,
    /// Live resources (active or closing), in registration order.
    pub resources: Vec<ResourceStatus>,
    /// The most recently finished closes, newest last.
    pub recently_closed: Vec<ClosedRecord>,
}

impl Status {
    pub fn to_json(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}
