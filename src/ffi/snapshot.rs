//! Snapshots: a DB as it was at one moment.

use super::args::{out_ptr, put_out};
use super::boundary::{boundary, rm_error};
use crate::error::rm_result;
use crate::rocks::{snapshot, DbHandle};

/// Takes a snapshot of DB `db` and writes its handle to `*out_snapshot`: reads through it
/// (`rm_get_opt`, `rm_multi_get`, `rm_iter_create`) see the DB as it was at this moment.
/// The snapshot is a dependent of the DB; release it with `rm_close` as soon as it is not
/// needed (it holds back compaction). The DB's close releases it first if it is still open,
/// and counts it as leaked in the status document. Thread-safe.
///
/// Errors: `RM_ERR_NULL_POINTER` (`out_snapshot` NULL); on `db`: `RM_ERR_INVALID_HANDLE` (0,
/// or a number never issued), `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND` (not a DB),
/// `RM_ERR_CLOSED` (the DB is closed or closing, or a close that includes it has been
/// requested: `rm_close` of the DB, `rm_cleanup` or `rm_manager_destroy` of its manager, even
/// while that close is still closing the DB's dependents); `RM_ERR_DUPLICATE_NAME` (the
/// generated name `<db>/snapshot#<n>` was taken by registered resources 16 times in a row);
/// `RM_ERR_CAPACITY` (the table of live handles is full); `RM_ERR_PANIC`.
///
/// # Safety
/// `out_snapshot` points to a writable `uint64_t`; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rm_snapshot_create(
    db: u64,
    out_snapshot: *mut u64,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        let out = out_ptr(out_snapshot, "out_snapshot")?;
        let h = snapshot::create(DbHandle::from_raw(db))?;
        // SAFETY: `out` is not NULL (out_ptr above) and, by this function's contract, a
        // writable `uint64_t`: put_out's contract.
        unsafe { put_out(out, h.raw()) };
        Ok(())
    })
}
