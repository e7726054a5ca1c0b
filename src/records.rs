//! The plain records resman reports: the status document and its parts, a cleanup run's
//! record, memory samples, totals. Data only (serialised to JSON for `rm_status`); the code
//! that fills them lives above.

use serde::Serialize;
use std::sync::Arc;

/// Upper bounds (seconds) of the duration histograms' buckets; a last, implicit bucket is
/// +Inf (the observation count).
pub const DURATION_BOUNDS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

/// A histogram's figures: `buckets[i]` counts observations of at most `le[i]` seconds
/// (cumulative, as Prometheus wants them); `count` is the +Inf bucket.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HistogramSnapshot {
    pub count: u64,
    pub sum_seconds: f64,
    pub le: [f64; DURATION_BOUNDS.len()],
    pub buckets: [u64; DURATION_BOUNDS.len()],
}

/// What a resource reports about its memory (a DB: RocksDB's figures), in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ResourceMemory {
    pub mem_table_total: u64,
    pub mem_table_unflushed: u64,
    pub table_readers: u64,
    pub block_cache: u64,
}

/// One resource's memory figures in a sample.
#[derive(Clone, Debug, Default, Serialize)]
pub struct NamedMemory {
    pub name: String,
    pub handle: u64,
    #[serde(flatten)]
    pub memory: ResourceMemory,
}

/// The monitor's last memory sample of one manager.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MemorySample {
    /// Resources that reported memory figures (the open DBs).
    pub reporting: u64,
    /// Sum of their figures.
    #[serde(flatten)]
    pub total: ResourceMemory,
    /// Estimate of what the manager's own bookkeeping (entries, names, graph) takes.
    pub registry_bytes: u64,
    /// Each reporting resource's figures (one per open DB).
    pub resources: Vec<NamedMemory>,
    /// Milliseconds since the sample was taken (None: never sampled).
    pub age_ms: Option<u64>,
    /// Samples taken since the manager was created.
    pub samples: u64,
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
    pub name: Arc<str>,
    pub kind: &'static str,
    /// "closed", "failed" or "unregistered".
    pub outcome: &'static str,
    pub close_duration_ms: f64,
    pub forced: bool,
    /// Close attempts made (1 + retries; 0 when unregistered).
    pub attempts: u32,
    /// The error (every attempt's, when it was retried).
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
    /// Close attempts made after a failed one (`max_retries` bounds them per resource).
    pub retries: u64,
    /// Close attempts that failed, whether retried or not.
    pub close_errors: u64,
    /// Cleanup runs (and closes) that returned an error.
    pub cleanups_failed: u64,
    /// Runs that forced what the graceful phase left unfinished.
    pub escalations: u64,
}

/// One resource closed by a cleanup run, as the run's record shows it.
#[derive(Clone, Debug, Serialize)]
pub struct CleanupStep {
    pub name: Arc<str>,
    pub kind: &'static str,
    pub handle: u64,
    /// When its native close started and finished, in ms since the run started. A
    /// dependent's `finished_ms` is never later than the `started_ms` of what it depends on.
    pub started_ms: f64,
    pub finished_ms: f64,
    /// "closed" or "failed".
    pub outcome: &'static str,
    /// Close attempts made (1 + retries).
    pub attempts: u32,
    pub forced: bool,
    /// Every failed attempt's error, in order.
    pub errors: Vec<String>,
}

/// What one cleanup run (rm_cleanup, rm_close, destroy) did.
#[derive(Clone, Debug, Serialize)]
pub struct CleanupRecord {
    /// "cleanup", "close" or "destroy".
    pub operation: &'static str,
    /// For "close": the resource asked for.
    pub target: Option<String>,
    /// "graceful" or "forced" (as asked).
    pub mode: &'static str,
    pub graceful_timeout_ms: u64,
    pub force_timeout_ms: u64,
    /// Milliseconds since the run started.
    pub age_ms: u64,
    /// How long the run took to return (None: still running).
    pub duration_ms: Option<f64>,
    /// True when the graceful phase ended with something unfinished and the rest was forced.
    pub escalated: bool,
    /// Resources in the run.
    pub resources: u64,
    /// Names in the order their native closes started (the order actually used; resources
    /// closed concurrently appear in the order they began).
    pub order: Vec<String>,
    pub steps: Vec<CleanupStep>,
    /// What did not close cleanly: "name: message".
    pub errors: Vec<String>,
}

/// The settings in the status document.
#[derive(Clone, Debug, Serialize)]
pub struct ConfigStatus {
    pub cleanup_timeout_ms: u64,
    pub force_cleanup_timeout_ms: u64,
    pub monitor_interval_ms: u64,
    pub max_retries: u32,
    pub retry_delay_ms: u64,
}

/// The status document of one manager.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    pub version: &'static str,
    pub manager: u64,
    pub uptime_ms: u64,
    pub cleanup_timeout_ms: u64,
    /// The manager's settings.
    pub config: ConfigStatus,
    pub totals: Totals,
    /// Seconds per cleanup run and per resource close.
    pub cleanup_duration: HistogramSnapshot,
    pub close_duration: HistogramSnapshot,
    /// The monitor's last sample.
    pub memory: MemorySample,
    /// Threads that run close work right now (process-wide), and started so far.
    pub close_threads: u64,
    /// The most recent cleanup run, or None.
    pub last_cleanup: Option<CleanupRecord>,
    /// Live resources (active or closing), in registration order.
    pub resources: Vec<ResourceStatus>,
    /// The most recently finished closes, newest last.
    pub recently_closed: Vec<ClosedRecord>,
}

impl MemorySample {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

impl Status {
    pub fn to_json(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}
