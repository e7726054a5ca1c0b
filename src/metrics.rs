//! A manager's counters and duration histograms: atomics bumped where things happen, so that
//! `rm_metrics` is a handful of loads, no allocation and no walk over the resources.

use crate::records::{HistogramSnapshot, Totals, DURATION_BOUNDS};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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
