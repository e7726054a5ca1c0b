//! Write batches: operations on the column families of one DB, applied atomically.

use super::args::{bytes, out_ptr, put_out};
use super::boundary::{boundary, rm_error};
use crate::error::rm_result;
use crate::rocks::batch::{self, Op};
use crate::rocks::{BatchHandle, CfHandle, DbHandle};

/// Creates an empty write batch for DB `db` and writes its handle to `*out_batch`. The batch
/// is a resource of the DB's manager and a dependent of the DB: close it with `rm_close` when
/// done (the DB's close closes it otherwise). A batch may be used from several threads (calls
/// are serialised) but building one batch from several threads is rarely meaningful.
///
/// Errors: `RM_ERR_NULL_POINTER` (`out_batch` NULL); on `db`: `RM_ERR_INVALID_HANDLE` (0, or
/// a number never issued), `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND` (not a DB),
/// `RM_ERR_CLOSED` (the DB is closed or closing, or a close that includes it has been
/// requested: `rm_close` of the DB, `rm_cleanup` or `rm_manager_destroy` of its manager, even
/// while that close is still closing the DB's dependents); `RM_ERR_DUPLICATE_NAME` (the
/// generated name `<db>/batch#<n>` was taken by registered resources 16 times in a row);
/// `RM_ERR_CAPACITY` (the table of live handles is full); `RM_ERR_PANIC`.
///
/// # Safety
/// `out_batch` points to a writable `uint64_t`; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rm_batch_create(
    db: u64,
    out_batch: *mut u64,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        let out = out_ptr(out_batch, "out_batch")?;
        let h = batch::create(DbHandle::from_raw(db))?;
        // SAFETY: `out` is not NULL (out_ptr above) and, by this function's contract, a
        // writable `uint64_t`: put_out's contract.
        unsafe { put_out(out, h.raw()) };
        Ok(())
    })
}

/// Adds "put `key` = `value` in column family `cf`" to the batch (copied; nothing is kept).
/// `cf` must belong to the batch's DB. Thread-safe.
///
/// Errors (nothing is added): `RM_ERR_NULL_POINTER` (`key` NULL with `key_len` > 0, `value`
/// NULL with `value_len` > 0), `RM_ERR_INVALID_ARGUMENT` (a length over `PTRDIFF_MAX`); on
/// `batch`: `RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND` (not a
/// batch), `RM_ERR_CLOSED` (the batch is closed, or its own close has begun: a close of its
/// DB begins it before the DB's column families); on `cf`, as for `rm_put`:
/// `RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND`, `RM_ERR_CLOSED`;
/// `RM_ERR_WRONG_DB` (`cf` belongs to another DB than the batch); `RM_ERR_PANIC`.
///
/// # Safety
/// `key` points to `key_len` readable bytes and `value` to `value_len`; `err` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn rm_batch_put(
    batch: u64,
    cf: u64,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        // SAFETY: this function's contract makes `key` `key_len` readable bytes (bytes refuses
        // NULL with a length): bytes's contract.
        let key = unsafe { bytes(key, key_len, "key") }?;
        // SAFETY: as for `key`, with `value_len` bytes.
        let value = unsafe { bytes(value, value_len, "value") }?;
        batch::add(
            BatchHandle::from_raw(batch),
            CfHandle::from_raw(cf),
            Op::Put(key, value),
        )
    })
}

/// Adds "delete `key` from column family `cf`" to the batch. Thread-safe.
///
/// Errors (nothing is added): `RM_ERR_NULL_POINTER` (`key` NULL with `key_len` > 0),
/// `RM_ERR_INVALID_ARGUMENT` (`key_len` over `PTRDIFF_MAX`); on `batch` and on `cf`, as for
/// `rm_batch_put`: `RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND`,
/// `RM_ERR_CLOSED`; `RM_ERR_WRONG_DB`; `RM_ERR_PANIC`.
///
/// # Safety
/// `key` points to `key_len` readable bytes; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rm_batch_delete(
    batch: u64,
    cf: u64,
    key: *const u8,
    key_len: usize,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        // SAFETY: this function's contract makes `key` `key_len` readable bytes (bytes refuses
        // NULL with a length): bytes's contract.
        let key = unsafe { bytes(key, key_len, "key") }?;
        batch::add(
            BatchHandle::from_raw(batch),
            CfHandle::from_raw(cf),
            Op::Delete(key),
        )
    })
}

/// Adds "delete every key in [`begin`, `end`) of column family `cf`" to the batch; `begin`
/// equal to `end` is an empty range, and NULL with length 0 is the empty key. Thread-safe.
///
/// Errors (nothing is added): `RM_ERR_NULL_POINTER` (`begin` NULL with `begin_len` > 0, `end`
/// NULL with `end_len` > 0), `RM_ERR_INVALID_ARGUMENT` (`begin` greater than `end` bytewise,
/// a length over `PTRDIFF_MAX`); on `batch` and on `cf`, as for `rm_batch_put`:
/// `RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND`, `RM_ERR_CLOSED`;
/// `RM_ERR_WRONG_DB`; `RM_ERR_PANIC`.
///
/// # Safety
/// `begin` points to `begin_len` readable bytes and `end` to `end_len`; `err` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn rm_batch_delete_range(
    batch: u64,
    cf: u64,
    begin: *const u8,
    begin_len: usize,
    end: *const u8,
    end_len: usize,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        // SAFETY: this function's contract makes `begin` `begin_len` readable bytes (bytes
        // refuses NULL with a length): bytes's contract.
        let begin = unsafe { bytes(begin, begin_len, "begin") }?;
        // SAFETY: as for `begin`, with `end` and `end_len`.
        let end = unsafe { bytes(end, end_len, "end") }?;
        batch::add(
            BatchHandle::from_raw(batch),
            CfHandle::from_raw(cf),
            Op::DeleteRange(begin, end),
        )
    })
}

/// Removes every operation from the batch. Thread-safe.
///
/// Errors: on `batch`, as for `rm_batch_put`: `RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`,
/// `RM_ERR_WRONG_KIND`, `RM_ERR_CLOSED`; `RM_ERR_PANIC`.
///
/// # Safety
/// `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rm_batch_clear(batch: u64, err: *mut rm_error) -> rm_result {
    boundary(err, || batch::clear(BatchHandle::from_raw(batch)))
}

/// Writes the number of operations in the batch to `*out_count` (only on success).
/// Thread-safe.
///
/// Errors: `RM_ERR_NULL_POINTER` (`out_count` NULL); on `batch`, as for `rm_batch_put`:
/// `RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND`, `RM_ERR_CLOSED`;
/// `RM_ERR_PANIC`.
///
/// # Safety
/// `out_count` points to a writable `size_t`; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rm_batch_count(
    batch: u64,
    out_count: *mut usize,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        let out = out_ptr(out_count, "out_count")?;
        let n = batch::count(BatchHandle::from_raw(batch))?;
        // SAFETY: `out` is not NULL (out_ptr above) and, by this function's contract, a
        // writable `size_t`: put_out's contract.
        unsafe { put_out(out, n) };
        Ok(())
    })
}

/// Applies every operation of the batch atomically, with write flags as for `rm_put_opt`,
/// then empties the batch so it can be filled again: writing it a second time without adding
/// anything writes nothing. On error nothing was applied and the content is kept, so the
/// write may be retried. Thread-safe.
///
/// Errors: on `batch`, as for `rm_batch_put`: `RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`,
/// `RM_ERR_WRONG_KIND`, `RM_ERR_CLOSED` (the batch is closed, or its own close has begun: a
/// close of its DB begins it before the DB's column families); `RM_ERR_INVALID_ARGUMENT`
/// (unknown bits in `write_flags`, or both flags together); RocksDB's status (`RM_ERR_IO`,
/// `RM_ERR_CORRUPTION`, `RM_ERR_INVALID_ARGUMENT`, `RM_ERR_ROCKSDB`); `RM_ERR_PANIC`.
///
/// # Safety
/// `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rm_batch_write(
    batch: u64,
    write_flags: u32,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        batch::write(BatchHandle::from_raw(batch), write_flags)
    })
}
