//! What a manager reports: the status document, the counters, the monitor's memory sample.

use super::args::{out_ptr, put_out, write_json};
use super::boundary::{boundary, rm_error};
use crate::error::rm_result;
use crate::manager;
use std::ffi::c_char;

/// Writes the manager's status as a NUL-terminated JSON document into `buf`:
/// `{"version", "manager", "uptime_ms", "cleanup_timeout_ms", "config": {cleanup_timeout_ms,
/// force_cleanup_timeout_ms, monitor_interval_ms, max_retries, retry_delay_ms}, "totals":
/// {the counters of `rm_manager_metrics`}, "cleanup_duration" and "close_duration": {count,
/// sum_seconds, le, buckets}, "memory": {the monitor's last sample, as `rm_memory_sample`},
/// "close_threads",
/// "last_cleanup": null or {operation, target, mode, graceful_timeout_ms, force_timeout_ms,
/// age_ms, duration_ms, escalated, resources, order, steps: [{name, kind, handle, started_ms,
/// finished_ms, outcome, attempts, forced, errors}], errors}, "resources": [{handle, name,
/// kind, state, leases, depends_on, dependents, age_ms, close_duration_ms, close_deferred,
/// last_error, details}], "recently_closed": [{handle, name, kind, outcome,
/// close_duration_ms, forced, attempts, error, leaked_iterators, leaked_snapshots}]}`.
/// `last_cleanup.order` is the order in which the last run's native closes started; in
/// `steps`, a dependent's `finished_ms` is never later than the `started_ms` of what it
/// depends on. A DB's `details` are its path, its column families and `memory` (RocksDB's
/// figures, as `rm_db_memory`, read now; the top-level `memory` is the monitor's last sample).
/// Iterators and snapshots still open when what they read from was closed are counted as
/// leaked.
///
/// `*out_len` receives the document's length without the NUL. When `buf_cap <= *out_len` the
/// result is `RM_ERR_BUFFER_TOO_SMALL` and nothing is written: call again with at least
/// `*out_len + 1` bytes (the status may have grown meanwhile). `buf` may be NULL when
/// `buf_cap` is 0. Thread-safe.
///
/// Errors: `RM_ERR_NULL_POINTER` (`out_len`, or `buf` with `buf_cap` > 0),
/// `RM_ERR_INVALID_ARGUMENT` (`buf_cap` over `PTRDIFF_MAX`), `RM_ERR_BUFFER_TOO_SMALL`,
/// `RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND` (not a manager
/// handle), `RM_ERR_CLOSED` (manager destroyed), `RM_ERR_PANIC`.
///
/// # Safety
/// `buf` points to `buf_cap` writable bytes; `out_len` to a writable `size_t`; `err` is NULL or
/// points to a writable `rm_error`.
#[no_mangle]
pub unsafe extern "C" fn rm_status(
    manager: u64,
    buf: *mut c_char,
    buf_cap: usize,
    out_len: *mut usize,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        // SAFETY: this function's contract makes `buf` `buf_cap` writable bytes (NULL allowed
        // with 0) and `out_len` a writable `size_t`: write_json's contract.
        unsafe {
            write_json(buf, buf_cap, out_len, || {
                Ok(manager::status(manager)?.to_json())
            })
        }
    })
}

/// Buckets of an `rm_histogram`.
pub const RM_HISTOGRAM_BUCKETS: usize = 12;
const _: () = assert!(RM_HISTOGRAM_BUCKETS == crate::records::DURATION_BOUNDS.len());

/// A duration histogram, Prometheus style.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct rm_histogram {
    /// Observations.
    pub count: u64,
    /// Their sum, in seconds.
    pub sum_seconds: f64,
    /// Upper bounds of the buckets in seconds, ascending (0.001 .. 30); the +Inf bucket is
    /// `count`.
    pub le: [f64; RM_HISTOGRAM_BUCKETS],
    /// `buckets[i]`: observations of at most `le[i]` seconds (cumulative).
    pub buckets: [u64; RM_HISTOGRAM_BUCKETS],
}

/// A manager's counters, for cheap polling with `rm_manager_metrics`. Counters (`*_total` in
/// Prometheus terms) only grow; `active`, `closing` and the memory figures are gauges.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct rm_metrics {
    /// Resources registered since the manager was created (the monitor, DBs, column
    /// families, iterators, snapshots, batches, `rm_register`ed resources).
    pub registered: u64,
    /// Registered and accepting operations now.
    pub active: u64,
    /// Registered, close begun, native close not finished yet.
    pub closing: u64,
    /// Closed successfully (possibly after retries).
    pub closed: u64,
    /// Marked failed: every attempt at closing failed.
    pub failed: u64,
    /// Handed back with `rm_unregister`.
    pub unregistered: u64,
    /// Closes that were forced (asked for, or after the graceful phase ended).
    pub forced: u64,
    /// Closes left to the last in-flight operation.
    pub deferred: u64,
    /// Resources reported as not finished by a run's deadline.
    pub timed_out: u64,
    /// Close attempts made after a failed one.
    pub retries: u64,
    /// Close attempts that failed (retried or not).
    pub close_errors: u64,
    /// Cleanup runs: `rm_cleanup*`, `rm_close*`, `rm_manager_destroy`.
    pub cleanups: u64,
    /// Of those, the ones that returned an error (success rate: 1 - failed / cleanups).
    pub cleanups_failed: u64,
    /// Runs whose graceful phase ended with something unfinished, which was then forced.
    pub escalations: u64,
    /// Iterators still open when what they read from was closed (closed by resman).
    pub leaked_iterators: u64,
    /// Snapshots still open when their DB was closed (released by resman).
    pub leaked_snapshots: u64,
    /// Seconds per cleanup run, from its start to its return.
    pub cleanup_duration: rm_histogram,
    /// Seconds per resource close, from its begin to its native close's end.
    pub close_duration: rm_histogram,
    /// Resources whose memory the monitor's last sample counted (the open DBs).
    pub memory_reporting: u64,
    /// Sums of RocksDB's figures over those DBs, in bytes (as `rm_db_memory`).
    pub mem_table_total: u64,
    pub mem_table_unflushed: u64,
    pub table_readers: u64,
    pub block_cache: u64,
    /// Estimate of the manager's own bookkeeping, in bytes.
    pub registry_bytes: u64,
    /// Age of that sample in milliseconds; UINT64_MAX before the first.
    pub memory_age_ms: u64,
    /// Samples taken by the monitor.
    pub memory_samples: u64,
    /// Threads of resman's close pool now, across the process (busy, stalled on a hung
    /// callback, or idle; idle ones exit after 2 s).
    pub close_threads: u64,
}

/// Fills `*out` with manager `manager`'s counters: a few atomic loads, no allocation and no
/// walk over the resources, so it can be polled often (Prometheus scrapes). The memory
/// figures are the monitor's last sample (`monitor_interval_ms`). Thread-safe.
///
/// Errors: `RM_ERR_NULL_POINTER` (`out`), `RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`,
/// `RM_ERR_WRONG_KIND` (not a manager handle), `RM_ERR_CLOSED` (manager destroyed),
/// `RM_ERR_PANIC`.
///
/// # Safety
/// `out` points to a writable `rm_metrics`; `err` is NULL or points to a writable `rm_error`.
#[no_mangle]
pub unsafe extern "C" fn rm_manager_metrics(
    manager: u64,
    out: *mut rm_metrics,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        let out = out_ptr(out, "out")?;
        let m = manager::metrics(manager)?;
        let t = &m.totals;
        let hist = |h: &crate::records::HistogramSnapshot| rm_histogram {
            count: h.count,
            sum_seconds: h.sum_seconds,
            le: h.le,
            buckets: h.buckets,
        };
        let value = rm_metrics {
            registered: t.registered,
            active: t.active,
            closing: t.closing,
            closed: t.closed,
            failed: t.failed,
            unregistered: t.unregistered,
            forced: t.forced,
            deferred: t.deferred,
            timed_out: t.timed_out,
            retries: t.retries,
            close_errors: t.close_errors,
            cleanups: t.cleanups,
            cleanups_failed: t.cleanups_failed,
            escalations: t.escalations,
            leaked_iterators: t.leaked_iterators,
            leaked_snapshots: t.leaked_snapshots,
            cleanup_duration: hist(&m.cleanup_duration),
            close_duration: hist(&m.close_duration),
            memory_reporting: m.memory.reporting,
            mem_table_total: m.memory.total.mem_table_total,
            mem_table_unflushed: m.memory.total.mem_table_unflushed,
            table_readers: m.memory.total.table_readers,
            block_cache: m.memory.total.block_cache,
            registry_bytes: m.memory.registry_bytes,
            memory_age_ms: m.memory.age_ms.unwrap_or(u64::MAX),
            memory_samples: m.memory.samples,
            close_threads: m.close_threads,
        };
        // SAFETY: `out` is not NULL (out_ptr above) and this function's contract makes it a
        // writable `rm_metrics`: put_out's contract.
        unsafe { put_out(out, value) };
        Ok(())
    })
}

/// Writes the monitor's last memory sample as NUL-terminated JSON into `buf`:
/// `{"reporting", "mem_table_total", "mem_table_unflushed", "table_readers", "block_cache",
/// "registry_bytes", "resources": [{"name", "handle", "mem_table_total",
/// "mem_table_unflushed", "table_readers", "block_cache"}], "age_ms", "samples"}`: the sums
/// and each open DB's RocksDB figures in bytes, as sampled every `monitor_interval_ms` (no
/// RocksDB call and no walk over the resources happens here). Buffer protocol as
/// `rm_status`. Thread-safe.
///
/// Errors: as `rm_status`.
///
/// # Safety
/// `buf` points to `buf_cap` writable bytes; `out_len` to a writable `size_t`; `err` is NULL or
/// points to a writable `rm_error`.
#[no_mangle]
pub unsafe extern "C" fn rm_memory_sample(
    manager: u64,
    buf: *mut c_char,
    buf_cap: usize,
    out_len: *mut usize,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        // SAFETY: this function's contract makes `buf` `buf_cap` writable bytes (NULL allowed
        // with 0) and `out_len` a writable `size_t`: write_json's contract.
        unsafe {
            write_json(buf, buf_cap, out_len, || {
                Ok(manager::memory_sample_of(manager)?.to_json())
            })
        }
    })
}
