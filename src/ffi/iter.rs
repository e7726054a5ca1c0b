//! Iterators: creation, seeks and steps, reading the current entry, reading many entries in
//! one call.

use super::args::{
    buffer, bytes, optional_bytes, out_ptr, overlaps, put_optional, put_out, snapshot_arg,
    write_len,
};
use super::boundary::{boundary, rm_error};
use crate::error::{rm_result, Error, Result};
use crate::rocks::iter::{self, IterOptions};
use crate::rocks::{CfHandle, IterHandle, Seek};

/// The lengths of one entry copied by `rm_iter_read_next` or `rm_iter_read_prev`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct rm_entry_len {
    /// The key's length; the key starts where the previous entry's value ended (entry 0:
    /// at the start of the buffer).
    pub key_len: usize,
    /// The value's length; the value starts right after the key.
    pub value_len: usize,
}

/// Creates an iterator over column family `cf` and writes its handle to `*out_iter`. It reads
/// at `snapshot` (0: the data as of now) with `read_flags` (as for `rm_get_opt`), and only
/// returns keys in [`lower`, `upper`): a NULL bound with length 0 is no bound, NULL with a
/// non-zero length is `RM_ERR_NULL_POINTER`, and a non-NULL bound of length 0 is the empty
/// key. The bounds are copied. The iterator starts unpositioned: seek first.
///
/// The iterator is a dependent of its column family (hence of the DB) and of its snapshot:
/// close it with `rm_close` when done. Closing the DB (or the snapshot) closes it first and
/// counts it as leaked in the status document; later calls on it return `RM_ERR_CLOSED`.
/// An iterator may be called from any thread; calls on one iterator are serialised.
///
/// Errors (nothing is created, `*out_iter` is untouched):
/// - `RM_ERR_NULL_POINTER`: `out_iter` NULL; `lower` NULL with `lower_len` > 0, `upper` NULL
///   with `upper_len` > 0.
/// - `RM_ERR_INVALID_ARGUMENT`: a bound length over `PTRDIFF_MAX`; unknown bits in
///   `read_flags`; `lower` greater than `upper` (bytewise, when both are given).
/// - On `cf`, as for `rm_put`: `RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`,
///   `RM_ERR_WRONG_KIND`; on a non-zero `snapshot`, as for `rm_get_opt`:
///   `RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND`, `RM_ERR_WRONG_DB`.
/// - `RM_ERR_CLOSED`: `cf` or `snapshot` is closed or closing, or a close that includes the
///   column family, its DB or the snapshot has been requested (`rm_close` of one of them,
///   `rm_cleanup` or `rm_manager_destroy` of their manager), even while that close is still
///   closing their dependents.
/// - `RM_ERR_DUPLICATE_NAME` (the generated name `<db>/iterator#<n>` was taken by registered
///   resources 16 times in a row), `RM_ERR_CAPACITY` (the table of live handles is full),
///   `RM_ERR_PANIC`.
///
/// # Safety
/// `lower` is NULL or points to `lower_len` readable bytes, `upper` likewise; `out_iter`
/// points to a writable `uint64_t`; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rm_iter_create(
    cf: u64,
    snapshot: u64,
    read_flags: u32,
    lower: *const u8,
    lower_len: usize,
    upper: *const u8,
    upper_len: usize,
    out_iter: *mut u64,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        let out = out_ptr(out_iter, "out_iter")?;
        // SAFETY: this function's contract makes `lower` NULL or `lower_len` readable bytes:
        // optional_bytes's contract.
        let lower = unsafe { optional_bytes(lower, lower_len, "lower") }?;
        // SAFETY: as for `lower`, with `upper` and `upper_len`.
        let upper = unsafe { optional_bytes(upper, upper_len, "upper") }?;
        let h = iter::create(
            CfHandle::from_raw(cf),
            &IterOptions {
                snapshot: snapshot_arg(snapshot),
                flags: read_flags,
                lower,
                upper,
            },
        )?;
        // SAFETY: `out` is not NULL (out_ptr above) and, by this function's contract, a
        // writable `uint64_t`: put_out's contract.
        unsafe { put_out(out, h.raw()) };
        Ok(())
    })
}

/// Positions the iterator on the first key (within the bounds). `*out_valid` (may be NULL)
/// receives whether it is on an entry. Thread-safe.
///
/// Errors (the iterator errors of every `rm_iter_*` call below): on `iter`:
/// `RM_ERR_INVALID_HANDLE` (0, or a number never issued), `RM_ERR_STALE_HANDLE`,
/// `RM_ERR_WRONG_KIND` (not an iterator), `RM_ERR_CLOSED` (the iterator is closed, or its own
/// close has begun: a close of its column family, snapshot or DB, or a cleanup, begins it
/// before theirs); RocksDB's status met while reading (`RM_ERR_IO`, `RM_ERR_CORRUPTION`,
/// `RM_ERR_INVALID_ARGUMENT`, `RM_ERR_ROCKSDB`); `RM_ERR_PANIC`.
///
/// # Safety
/// `out_valid` is NULL or writable; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rm_iter_seek_to_first(
    iter: u64,
    out_valid: *mut bool,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        let valid = iter::seek(IterHandle::from_raw(iter), Seek::First)?;
        // SAFETY: this function's contract makes `out_valid` NULL or writable:
        // put_optional's contract.
        unsafe { put_optional(out_valid, valid) };
        Ok(())
    })
}

/// Positions the iterator on the last key (within the bounds); see `rm_iter_seek_to_first`.
///
/// Errors: those of `rm_iter_seek_to_first` (`RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`,
/// `RM_ERR_WRONG_KIND`, `RM_ERR_CLOSED`, RocksDB's status, `RM_ERR_PANIC`).
///
/// # Safety
/// `out_valid` is NULL or writable; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rm_iter_seek_to_last(
    iter: u64,
    out_valid: *mut bool,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        let valid = iter::seek(IterHandle::from_raw(iter), Seek::Last)?;
        // SAFETY: this function's contract makes `out_valid` NULL or writable:
        // put_optional's contract.
        unsafe { put_optional(out_valid, valid) };
        Ok(())
    })
}

/// Positions the iterator on the first key at or after `key` (NULL with `key_len` 0: the
/// empty key); see `rm_iter_seek_to_first`.
///
/// Errors: `RM_ERR_NULL_POINTER` (`key` NULL with `key_len` > 0), `RM_ERR_INVALID_ARGUMENT`
/// (`key_len` over `PTRDIFF_MAX`), and those of `rm_iter_seek_to_first`
/// (`RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND`, `RM_ERR_CLOSED`,
/// RocksDB's status, `RM_ERR_PANIC`). A refused call does not move the iterator.
///
/// # Safety
/// `key` points to `key_len` readable bytes; `out_valid` and `err` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rm_iter_seek(
    iter: u64,
    key: *const u8,
    key_len: usize,
    out_valid: *mut bool,
    err: *mut rm_error,
) -> rm_result {
    // SAFETY: seek_key's contract is this function's, argument for argument.
    unsafe { seek_key(iter, key, key_len, |k| Seek::To(k), out_valid, err) }
}

/// Positions the iterator on the last key at or before `key`; see `rm_iter_seek`.
///
/// Errors: those of `rm_iter_seek` (`RM_ERR_NULL_POINTER`, `RM_ERR_INVALID_ARGUMENT`,
/// `RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND`, `RM_ERR_CLOSED`,
/// RocksDB's status, `RM_ERR_PANIC`).
///
/// # Safety
/// `key` points to `key_len` readable bytes; `out_valid` and `err` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rm_iter_seek_for_prev(
    iter: u64,
    key: *const u8,
    key_len: usize,
    out_valid: *mut bool,
    err: *mut rm_error,
) -> rm_result {
    // SAFETY: seek_key's contract is this function's, argument for argument.
    unsafe { seek_key(iter, key, key_len, |k| Seek::ForPrev(k), out_valid, err) }
}

/// The body of the two seeks that take a key.
///
/// # Safety
/// As for `rm_iter_seek`.
unsafe fn seek_key(
    iter: u64,
    key: *const u8,
    key_len: usize,
    how: for<'k> fn(&'k [u8]) -> Seek<'k>,
    out_valid: *mut bool,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        // SAFETY: this function's contract makes `key` `key_len` readable bytes (bytes refuses
        // NULL with a length): bytes's contract.
        let key = unsafe { bytes(key, key_len, "key") }?;
        let valid = iter::seek(IterHandle::from_raw(iter), how(key))?;
        // SAFETY: this function's contract makes `out_valid` NULL or writable.
        unsafe { put_optional(out_valid, valid) };
        Ok(())
    })
}

/// Moves to the next entry; `*out_valid` (may be NULL) receives whether there is one.
/// Thread-safe.
///
/// Errors: `RM_ERR_ITERATOR_NOT_VALID` (not on an entry, and not failed: RocksDB itself would
/// have undefined behaviour; nothing moves), and those of `rm_iter_seek_to_first`
/// (`RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND`, `RM_ERR_CLOSED`,
/// RocksDB's status: also the error of an iterator that stopped on a failure,
/// `RM_ERR_PANIC`).
///
/// # Safety
/// `out_valid` and `err` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rm_iter_next(
    iter: u64,
    out_valid: *mut bool,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        let valid = iter::step(IterHandle::from_raw(iter), true)?;
        // SAFETY: this function's contract makes `out_valid` NULL or writable:
        // put_optional's contract.
        unsafe { put_optional(out_valid, valid) };
        Ok(())
    })
}

/// Moves to the previous entry; see `rm_iter_next`.
///
/// Errors: those of `rm_iter_next` (`RM_ERR_ITERATOR_NOT_VALID`, `RM_ERR_INVALID_HANDLE`,
/// `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND`, `RM_ERR_CLOSED`, RocksDB's status,
/// `RM_ERR_PANIC`).
///
/// # Safety
/// `out_valid` and `err` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rm_iter_prev(
    iter: u64,
    out_valid: *mut bool,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        let valid = iter::step(IterHandle::from_raw(iter), false)?;
        // SAFETY: this function's contract makes `out_valid` NULL or writable:
        // put_optional's contract.
        unsafe { put_optional(out_valid, valid) };
        Ok(())
    })
}

/// Writes whether the iterator is on an entry to `*out_valid`. An iterator that stopped
/// because RocksDB failed (I/O, corruption) returns that error instead. Thread-safe.
///
/// Errors: `RM_ERR_NULL_POINTER` (`out_valid` NULL), and those of `rm_iter_seek_to_first`
/// (`RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND`, `RM_ERR_CLOSED`,
/// RocksDB's status, `RM_ERR_PANIC`).
///
/// # Safety
/// `out_valid` points to a writable `bool`; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rm_iter_valid(
    iter: u64,
    out_valid: *mut bool,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        let out = out_ptr(out_valid, "out_valid")?;
        let valid = iter::valid(IterHandle::from_raw(iter))?;
        // SAFETY: `out` is not NULL (out_ptr above) and, by this function's contract, a
        // writable `bool`: put_out's contract.
        unsafe { put_out(out, valid) };
        Ok(())
    })
}

/// Makes the iterator read the DB's latest data (RocksDB's `Iterator::Refresh`): writes made
/// since it was created (or last refreshed) become visible. It is left unpositioned: seek
/// next. So one iterator can serve scan after scan (refresh, seek, read) without a create and
/// a close per scan. Thread-safe (serialised with the iterator's other calls).
///
/// Errors: `RM_ERR_INVALID_ARGUMENT` (the iterator reads at a snapshot: refreshing would
/// leave the snapshot behind; create one at the new snapshot instead); those of
/// `rm_iter_seek_to_first` (`RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`,
/// `RM_ERR_WRONG_KIND`, `RM_ERR_CLOSED`, RocksDB's status, `RM_ERR_PANIC`).
///
/// # Safety
/// `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rm_iter_refresh(iter: u64, err: *mut rm_error) -> rm_result {
    boundary(err, || iter::refresh(IterHandle::from_raw(iter)))
}

/// Copies the current key into `buf`; `*out_len` receives its length. Too small a buffer is
/// `RM_ERR_BUFFER_TOO_SMALL` with `*out_len` the length needed (nothing copied); not on an
/// entry is `RM_ERR_ITERATOR_NOT_VALID`. `buf` may be NULL when `buf_cap` is 0. Thread-safe.
///
/// Errors: `RM_ERR_BUFFER_TOO_SMALL` and `RM_ERR_ITERATOR_NOT_VALID` (above; `*out_len` is
/// written only on success and with BUFFER_TOO_SMALL); `RM_ERR_NULL_POINTER` (`out_len` NULL,
/// `buf` NULL with `buf_cap` > 0); `RM_ERR_INVALID_ARGUMENT` (`buf_cap` over `PTRDIFF_MAX`);
/// and those of `rm_iter_seek_to_first` (`RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`,
/// `RM_ERR_WRONG_KIND`, `RM_ERR_CLOSED`, RocksDB's status, `RM_ERR_PANIC`).
///
/// # Safety
/// `buf` points to `buf_cap` writable bytes; `out_len` to a writable `size_t`; `err` is NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn rm_iter_key(
    iter: u64,
    buf: *mut u8,
    buf_cap: usize,
    out_len: *mut usize,
    err: *mut rm_error,
) -> rm_result {
    // SAFETY: read_current's contract is this function's, argument for argument.
    boundary(err, || unsafe {
        read_current(iter, true, buf, buf_cap, out_len)
    })
}

/// Copies the current value into `buf`; see `rm_iter_key`.
///
/// Errors: those of `rm_iter_key` (`RM_ERR_BUFFER_TOO_SMALL`, `RM_ERR_ITERATOR_NOT_VALID`,
/// `RM_ERR_NULL_POINTER`, `RM_ERR_INVALID_ARGUMENT`, `RM_ERR_INVALID_HANDLE`,
/// `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND`, `RM_ERR_CLOSED`, RocksDB's status,
/// `RM_ERR_PANIC`).
///
/// # Safety
/// As for `rm_iter_key`.
#[no_mangle]
pub unsafe extern "C" fn rm_iter_value(
    iter: u64,
    buf: *mut u8,
    buf_cap: usize,
    out_len: *mut usize,
    err: *mut rm_error,
) -> rm_result {
    // SAFETY: read_current's contract is this function's, argument for argument.
    boundary(err, || unsafe {
        read_current(iter, false, buf, buf_cap, out_len)
    })
}

/// The body of `rm_iter_key` (`key`) and `rm_iter_value`.
///
/// # Safety
/// As for `rm_iter_key`.
unsafe fn read_current(
    iter: u64,
    key: bool,
    buf: *mut u8,
    buf_cap: usize,
    out_len: *mut usize,
) -> Result<()> {
    let out_len = out_ptr(out_len, "out_len")?;
    // SAFETY: this function's contract makes `buf` `buf_cap` writable bytes (buffer refuses
    // NULL with a capacity), and no other argument points into them: buffer's contract.
    let buf = unsafe { buffer(buf, buf_cap, "buf") }?;
    let result = iter::read(IterHandle::from_raw(iter), key, buf);
    // SAFETY: `out_len` is not NULL (out_ptr above) and, by this function's contract, a
    // writable `size_t`: write_len's contract.
    unsafe { write_len(out_len, &result) };
    result.map(|_| ())
}

/// Copies the current key into `key_buf` and value into `value_buf` in one call;
/// `*out_key_len` and `*out_value_len` receive their lengths. If either buffer is too small,
/// nothing is copied, both lengths are written and the result is `RM_ERR_BUFFER_TOO_SMALL`.
/// Not on an entry: `RM_ERR_ITERATOR_NOT_VALID`. The two buffers must not overlap; either may
/// be NULL when its capacity is 0. Thread-safe.
///
/// Errors: `RM_ERR_BUFFER_TOO_SMALL` and `RM_ERR_ITERATOR_NOT_VALID` (above; the lengths are
/// written only on success and with BUFFER_TOO_SMALL); `RM_ERR_NULL_POINTER`
/// (`out_key_len` or `out_value_len` NULL, `key_buf` NULL with `key_cap` > 0, `value_buf`
/// NULL with `value_cap` > 0); `RM_ERR_INVALID_ARGUMENT` (the buffers overlap, a capacity
/// over `PTRDIFF_MAX`); and those of `rm_iter_seek_to_first` (`RM_ERR_INVALID_HANDLE`,
/// `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND`, `RM_ERR_CLOSED`, RocksDB's status,
/// `RM_ERR_PANIC`).
///
/// # Safety
/// `key_buf` points to `key_cap` writable bytes and `value_buf` to `value_cap`; both length
/// outputs to writable `size_t`; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rm_iter_entry(
    iter: u64,
    key_buf: *mut u8,
    key_cap: usize,
    out_key_len: *mut usize,
    value_buf: *mut u8,
    value_cap: usize,
    out_value_len: *mut usize,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        let out_k = out_ptr(out_key_len, "out_key_len")?;
        let out_v = out_ptr(out_value_len, "out_value_len")?;
        if overlaps(key_buf, key_cap, value_buf, value_cap) {
            return Err(Error::InvalidArgument(
                "key_buf and value_buf overlap".into(),
            ));
        }
        // SAFETY: this function's contract makes `key_buf` `key_cap` writable bytes (buffer
        // refuses NULL with a capacity), and they do not overlap `value_buf` (checked above),
        // the only other buffer borrowed here: buffer's contract.
        let kb = unsafe { buffer(key_buf, key_cap, "key_buf") }?;
        // SAFETY: as for `key_buf`, with `value_buf` and `value_cap`.
        let vb = unsafe { buffer(value_buf, value_cap, "value_buf") }?;
        let e = iter::entry(IterHandle::from_raw(iter), kb, vb)?;
        // SAFETY: `out_k` and `out_v` are not NULL (out_ptr above) and, by this function's
        // contract, writable `size_t`: put_out's contract.
        unsafe {
            put_out(out_k, e.key);
            put_out(out_v, e.value);
        }
        if e.copied {
            Ok(())
        } else {
            Err(Error::BufferTooSmall {
                needed: e.key.max(e.value),
            })
        }
    })
}

/// Copies up to `max_entries` entries into `buf`, starting with the current one and moving to
/// the next after each, in one call: the same entries as `rm_iter_entry` then `rm_iter_next`
/// in a loop, without a call per entry. The iterator is left on the first entry not copied;
/// `*out_valid` (may be NULL) receives whether there is one, and `*out_count` the number of
/// entries copied.
///
/// The entries are packed: entry 0's key at the start of `buf`, each value right after its
/// key, each key right after the previous value; `out_lens[i]` holds entry `i`'s key and
/// value lengths. The copy stops early, with `RM_OK`, when the next entry does not fit in
/// what is left of `buf` (a larger buffer takes more per call) or the iterator reaches the
/// end (`*out_valid` false). An iterator that is not on an entry copies nothing and returns
/// `RM_OK` with `*out_valid` false: reading at the end is not an error.
///
/// Errors: if the current entry alone does not fit, nothing is copied, the iterator does not
/// move, `out_lens[0]` receives its lengths and the result is `RM_ERR_BUFFER_TOO_SMALL` (a
/// buffer of `key_len + value_len` bytes takes it). If RocksDB fails while moving, its status
/// is returned (`RM_ERR_IO`, `RM_ERR_CORRUPTION`, `RM_ERR_INVALID_ARGUMENT`, `RM_ERR_ROCKSDB`)
/// and the `*out_count` entries copied before the failure are still in `buf`.
/// `RM_ERR_NULL_POINTER` (`out_count` NULL; `out_lens` NULL when
/// `max_entries` is not 0; `buf` NULL when `buf_cap` is not 0), `RM_ERR_INVALID_ARGUMENT`
/// (`buf` overlapping `out_lens`, `out_lens` not aligned for `rm_entry_len`, `max_entries`
/// beyond what memory can hold, `buf_cap` over `PTRDIFF_MAX`): these argument errors leave the
/// iterator where it was and the outputs untouched. The errors of `rm_iter_seek_to_first` on
/// `iter` (`RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND`,
/// `RM_ERR_CLOSED`) copy nothing and set `*out_count` to 0. `RM_ERR_PANIC`.
/// `max_entries` 0 copies nothing and reports whether the iterator is on an entry.
/// Thread-safe; calls on one iterator are serialised.
///
/// # Safety
/// `buf` points to `buf_cap` writable bytes (it may be NULL when `buf_cap` is 0);
/// `out_lens` to `max_entries` writable `rm_entry_len` (NULL when `max_entries` is 0);
/// `out_count` to a writable `size_t`; `out_valid` and `err` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rm_iter_read_next(
    iter: u64,
    buf: *mut u8,
    buf_cap: usize,
    out_lens: *mut rm_entry_len,
    max_entries: usize,
    out_count: *mut usize,
    out_valid: *mut bool,
    err: *mut rm_error,
) -> rm_result {
    // SAFETY: read_entries's contract is this function's, argument for argument.
    boundary(err, || unsafe {
        read_entries(
            iter,
            true,
            buf,
            buf_cap,
            out_lens,
            max_entries,
            out_count,
            out_valid,
        )
    })
}

/// Copies up to `max_entries` entries into `buf`, starting with the current one and moving to
/// the previous after each: `rm_iter_read_next` going backwards (entry 0 is the current one,
/// entry 1 the one before it, and so on).
///
/// Errors: those of `rm_iter_read_next` (`RM_ERR_BUFFER_TOO_SMALL`, `RM_ERR_NULL_POINTER`,
/// `RM_ERR_INVALID_ARGUMENT`, `RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`,
/// `RM_ERR_WRONG_KIND`, `RM_ERR_CLOSED`, RocksDB's status, `RM_ERR_PANIC`).
///
/// # Safety
/// As for `rm_iter_read_next`.
#[no_mangle]
pub unsafe extern "C" fn rm_iter_read_prev(
    iter: u64,
    buf: *mut u8,
    buf_cap: usize,
    out_lens: *mut rm_entry_len,
    max_entries: usize,
    out_count: *mut usize,
    out_valid: *mut bool,
    err: *mut rm_error,
) -> rm_result {
    // SAFETY: read_entries's contract is this function's, argument for argument.
    boundary(err, || unsafe {
        read_entries(
            iter,
            false,
            buf,
            buf_cap,
            out_lens,
            max_entries,
            out_count,
            out_valid,
        )
    })
}

/// The body of `rm_iter_read_next` (`forward`) and `rm_iter_read_prev`.
///
/// # Safety
/// As for `rm_iter_read_next`.
#[allow(clippy::too_many_arguments)]
unsafe fn read_entries(
    iter: u64,
    forward: bool,
    buf: *mut u8,
    buf_cap: usize,
    out_lens: *mut rm_entry_len,
    max_entries: usize,
    out_count: *mut usize,
    out_valid: *mut bool,
) -> Result<()> {
    let out_count = out_ptr(out_count, "out_count")?;
    if max_entries > 0 {
        let lens = out_ptr(out_lens, "out_lens")?;
        if !lens.is_aligned() {
            return Err(Error::InvalidArgument("out_lens must be aligned".into()));
        }
        let lens_bytes = max_entries
            .checked_mul(std::mem::size_of::<rm_entry_len>())
            .filter(|&b| b <= isize::MAX as usize)
            .ok_or_else(|| {
                Error::InvalidArgument(format!("max_entries {max_entries} is too large"))
            })?;
        if overlaps(lens.cast::<u8>(), lens_bytes, buf, buf_cap) {
            return Err(Error::InvalidArgument("buf and out_lens overlap".into()));
        }
    }
    // SAFETY: this function's contract makes `buf` `buf_cap` writable bytes (buffer refuses
    // NULL with a capacity), and they do not overlap `out_lens` (checked above), the only
    // other caller memory written while `buf` is borrowed: buffer's contract.
    let buf = unsafe { buffer(buf, buf_cap, "buf") }?;
    let (count, result) = iter::read_chunk(
        IterHandle::from_raw(iter),
        forward,
        buf,
        max_entries,
        |i, k, v| {
            // SAFETY: read_chunk records at most `max_entries` entries, so `i < max_entries` and
            // `max_entries > 0`, for which `out_lens` was checked non-NULL and aligned above; by
            // this function's contract it holds `max_entries` writable `rm_entry_len`, which do
            // not overlap `buf` (checked above).
            unsafe {
                put_out(
                    out_lens.add(i),
                    rm_entry_len {
                        key_len: k,
                        value_len: v,
                    },
                )
            }
        },
    );
    // SAFETY: `out_count` is not NULL (out_ptr above) and, by this function's contract, a
    // writable `size_t`: put_out's contract.
    unsafe { put_out(out_count, count) };
    let chunk = result?;
    // SAFETY: this function's contract makes `out_valid` NULL or writable: put_optional's
    // contract.
    unsafe { put_optional(out_valid, chunk.valid) };
    Ok(())
}
