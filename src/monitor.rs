//! Counters, histograms, the status document, and the monitor thread.
//!
//! Counters are plain atomics bumped by the manager as things happen (so `rm_metrics` is a
//! handful of loads); the status document is a snapshot built on demand by
//! [`crate::manager::status`] and serialised to JSON for `rm_status`. The monitor is a thread
//! per manager, registered as one of its resources, that samples at `monitor_interval`.

use crate::manager::{CloseMode, Resource};
use parking_lot::{Condvar, Mutex};
use serde::Serialize;
use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The monitor of one manager: a thread that calls `tick` every interval until it is closed (or `tick` says the manager is gone). Closing it stops and joins the
/// thread, so a cleaned-up manager leaves no thread behind.
pub struct MonitorResource {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl MonitorResource {
    pub fn start(
        interval: Duration,
        mut tick: impl FnMut() -> bool + Send + 'static,
    ) -> std::io::Result<MonitorResource> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("resman-monitor".into())
            .spawn(move || {
                let (lock, cv) = &*flag;
                loop {
                    let mut stopped = lock.lock();
                    if !*stopped {
                        let _ = cv.wait_for(&mut stopped, interval);
                    }
                    if *stopped {
                        return;
                    }
                    drop(stopped);
                    if !tick() {
                        return;
                    }
                }
            })?;
        Ok(MonitorResource {
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }
}

impl Drop for MonitorResource {
    /// Dropped without a close (its registration failed): the thread still stops.
    fn drop(&mut self) {
        let (lock, cv) = &*self.stop;
        *lock.lock() = true;
        cv.notify_all();
    }
}

impl Resource for MonitorResource {
    fn close(&self, _mode: CloseMode) -> Result<(), String> {
        let (lock, cv) = &*self.stop;
        *lock.lock() = true;
        cv.notify_all();
        let thread = self.thread.lock().take();
        if let Some(t) = thread {
            // The monitor never closes itself, but if it ever ran this it must not join itself.
            if t.thread().id() != std::thread::current().id() {
                t.join()
                    .map_err(|_| "the monitor thread panicked".to_owned())?;
            }
        }
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Upper bounds (seconds) of the duration histograms' buckets; a last, implicit bucket is
/// +Inf (the observation count).
pub const DURATION_BOUNDS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

/// A duration histogram with fixed buckets ([`DURATION_BOUNDS`]), lock-free.
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; DURATION_BOUNDS.len()],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = DURATION_BOUNDS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = [0u64; DURATION_BOUNDS.len()];
        let mut acc = 0;
        for (c, b) in cumulative.iter_mut().zip(&self.buckets) {
            acc += b.load(Ordering::Relaxed);
            *c = acc;
        }
        HistogramSnapshot {
            count: self.count.load(Ordering::Relaxed),
            sum_seconds: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
            le: DURATION_BOUNDS,
            buckets: cumulative,
        }
    }
}

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
    /// Close attempts after a failed one.
    pub retries: AtomicU64,
    /// Close attempts that returned an error (or panicked), retried or not.
    pub close_errors: AtomicU64,
    /// Cleanup runs (and closes) that returned an error.
    pub cleanups_failed: AtomicU64,
    /// Runs whose graceful phase ended with something unfinished, which was then forced.
    pub escalations: AtomicU64,
    /// Registered and not yet removed.
    pub live: AtomicU64,
    /// Of those, the ones whose close has begun.
    pub closing: AtomicU64,
    /// Duration of each cleanup run (rm_cleanup, rm_close, destroy), from start to return.
    pub cleanup_duration: Histogram,
    /// Duration of each resource's close, from begin to native close done.
    pub close_duration: Histogram,
}

impl Metrics {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
    pub fn drop_one(counter: &AtomicU64) {
        counter.fetch_sub(1, Ordering::Relaxed);
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

impl Totals {
    pub fn from_metrics(m: &Metrics) -> Totals {
        let live = Metrics::get(&m.live);
        let closing = Metrics::get(&m.closing).min(live);
        Totals {
            registered: Metrics::get(&m.registered),
            active: live - closing,
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
            retries: Metrics::get(&m.retries),
            close_errors: Metrics::get(&m.close_errors),
            cleanups_failed: Metrics::get(&m.cleanups_failed),
            escalations: Metrics::get(&m.escalations),
        }
    }
}

/// One resource closed by a cleanup run, as the run's record shows it.
#[derive(Clone, Debug, Serialize)]
pub struct CleanupStep {
    pub name: String,
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
