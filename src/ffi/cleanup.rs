//! Cleanup of a whole manager, and the report of its failures.

use super::args::{close_mode, write_json};
use super::boundary::{boundary, rm_error};
use crate::error::{rm_result, Result};
use crate::manager;
use std::ffi::c_char;
use std::time::Duration;

/// Closes every resource of the manager, the monitor included.
///
/// Order: a resource's close begins only after everything that depends on it has finished
/// closing; resources that do not depend on each other close concurrently on resman's close
/// threads (started most recently registered first). Graceful phase (up to
/// `cleanup_timeout_ms`, 30 s by default): each close waits for the resource's in-flight
/// operations, then closes with every courtesy (a DB flushes its memtables and syncs its WAL).
/// Forced phase: whatever is unfinished when the graceful phase ends is forced (no more
/// waiting for operations; the last one starts the close) and given `force_cleanup_timeout_ms`
/// (5 s) more. A close that fails is retried (`max_retries`, `retry_delay_ms`). Whatever is
/// still unfinished then, a hung close callback or a resource held by it, is reported as
/// timed out with its name and state, and closes when what holds it lets go. So this returns
/// within `cleanup_timeout_ms + force_cleanup_timeout_ms`, whatever a callback does. Goes on
/// past failures; the error aggregates every failure (cut at 511 bytes; every resource's full
/// reason: `rm_cleanup_failures`). The order used is in the status document (`last_cleanup`).
///
/// What is closed is what was registered when the cleanup began: from then until it returns,
/// every registration in the manager (`rm_register`, `rm_db_open`, a new iterator, snapshot
/// or batch) is refused with `RM_ERR_CLOSED`, so the bound holds whatever other threads do.
/// Afterwards the manager is usable again. Thread-safe.
///
/// Errors: `RM_ERR_CLOSE_FAILED`, `RM_ERR_TIMEOUT`, `RM_ERR_CLEANUP_FAILED` (as `rm_close`),
/// `RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND`, `RM_ERR_CLOSED`
/// (manager destroyed), `RM_ERR_INVALID_ARGUMENT` (called from inside a close callback),
/// `RM_ERR_PANIC`.
///
/// # Safety
/// `err` is NULL or points to a writable `rm_error`.
#[no_mangle]
pub unsafe extern "C" fn rm_cleanup(manager: u64, err: *mut rm_error) -> rm_result {
    boundary(err, || manager::cleanup(manager))
}

/// `rm_cleanup` with an explicit bound: `force` 0: the graceful phase lasts `timeout_ms`, then
/// the forced phase `force_cleanup_timeout_ms`; `force` non-zero: the forced phase alone,
/// bounded by `timeout_ms` (see `rm_close_timeout`). Thread-safe.
///
/// Errors: as `rm_cleanup`.
///
/// # Safety
/// `err` is NULL or points to a writable `rm_error`.
#[no_mangle]
pub unsafe extern "C" fn rm_cleanup_timeout(
    manager: u64,
    timeout_ms: u64,
    force: bool,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        manager::cleanup_timeout(
            manager,
            Duration::from_millis(timeout_ms),
            close_mode(force),
        )
    })
}

/// Writes, as a NUL-terminated JSON document into `buf`, what the most recent cleanup of the
/// whole manager (`rm_cleanup`, `rm_cleanup_timeout`) reported for each resource that failed
/// or did not finish: `{"operation": "cleanup" or null (no cleanup yet), "total": N,
/// "failures": [{"name", "handle", "code", "message"}]}`, dependents first. `code` is the
/// `rm_result` number (`RM_ERR_CLOSE_FAILED` with every attempt's error, or `RM_ERR_TIMEOUT`
/// with the resource's state and what it waits for); `message` is resman's full text, never
/// cut. At most `max_failures` entries are written (`total` counts them all), so reading the
/// report of a cleanup that timed out on 100,000 resources costs what the caller chooses.
/// A `rm_close` of one resource does not replace the report. This is how a binding names each
/// resource after a cleanup whose aggregated message (`rm_error`, 511 bytes) was cut.
///
/// Buffer protocol as `rm_status`: `*out_len` receives the length without the NUL; when
/// `buf_cap <= *out_len` the result is `RM_ERR_BUFFER_TOO_SMALL` and nothing is written.
/// Thread-safe.
///
/// Errors: as `rm_status`.
///
/// # Safety
/// `buf` points to `buf_cap` writable bytes; `out_len` to a writable `size_t`; `err` is NULL or
/// points to a writable `rm_error`.
#[no_mangle]
pub unsafe extern "C" fn rm_cleanup_failures(
    manager: u64,
    max_failures: usize,
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
                failures_json(manager, max_failures)
            })
        }
    })
}

/// The document of `rm_cleanup_failures`.
fn failures_json(manager: u64, max_failures: usize) -> Result<String> {
    let (operation, failures) = manager::cleanup_failures(manager)?;
    let listed: Vec<serde_json::Value> = failures
        .iter()
        .take(max_failures)
        .map(|f| {
            serde_json::json!({
                "name": f.name,
                "handle": f.handle.raw(),
                "code": f.code as i32,
                "message": f.message,
            })
        })
        .collect();
    Ok(serde_json::json!({
        "operation": operation,
        "total": failures.len(),
        "failures": listed,
    })
    .to_string())
}
