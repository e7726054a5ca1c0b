//! Point reads and writes on a column family, and multi-get.

use super::args::{
    array, at_most, buffer, bytes, out_ptr, overlaps, put_optional, put_out, snapshot_arg,
    write_len,
};
use super::boundary::{boundary, rm_error};
use crate::error::{rm_result, Error, Result};
use crate::manager;
use crate::rocks::multiget::{self, Lookup};
use crate::rocks::{self, CfHandle};
use std::ffi::c_void;

/// Largest number of keys `rm_multi_get` takes in one call.
pub const RM_MAX_MULTI_GET_KEYS: usize = 1 << 20;

/// Read flag: do not add the blocks this read loads to the block cache (for scans that would
/// evict the working set). Default: fill the cache.
pub const RM_READ_NO_FILL_CACHE: u32 = 1;
/// Read flag: do not verify block checksums. Default: verify.
pub const RM_READ_NO_VERIFY_CHECKSUMS: u32 = 2;
/// Write flag: fsync the WAL before returning, so the write survives a power cut (default:
/// the WAL is written but not synced, which survives a crash of the process).
pub const RM_WRITE_SYNC: u32 = 1;
/// Write flag: skip the WAL. The write is lost if the process dies before its memtable is
/// flushed (a graceful close flushes). Cannot be combined with `RM_WRITE_SYNC`.
pub const RM_WRITE_DISABLE_WAL: u32 = 2;

const _: () = assert!(RM_READ_NO_FILL_CACHE == rocks::raw::READ_NO_FILL_CACHE);
const _: () = assert!(RM_READ_NO_VERIFY_CHECKSUMS == rocks::raw::READ_NO_VERIFY_CHECKSUMS);
const _: () = assert!(RM_WRITE_SYNC == rocks::raw::WRITE_SYNC);
const _: () = assert!(RM_WRITE_DISABLE_WAL == rocks::raw::WRITE_DISABLE_WAL);

/// One key's result of `rm_multi_get`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct rm_value {
    /// RM_OK: the value is at `buf + offset`, `len` bytes. RM_ERR_NOT_FOUND: no such key
    /// (`len` 0). RM_ERR_BUFFER_TOO_SMALL: the value did not fit in what was left of the
    /// buffer; `len` is its size. Anything else: reading this key failed.
    pub code: rm_result,
    /// Where the value starts in the caller's buffer (RM_OK only; with `rm_multi_get_alloc`, only
    /// when the key's `out_spilled` is NULL: otherwise the value is there, and `offset` is 0).
    pub offset: usize,
    /// The value's length.
    pub len: usize,
}

/// Writes `key` = `value` in column family `cf` (WAL on, not synced: survives a crash of the
/// process, not of the machine). Same as `rm_put_opt` with flags 0. Both buffers are read
/// during the call only. Thread-safe.
///
/// Errors (the data functions below use the same terms):
/// - `RM_ERR_NULL_POINTER`: `key` NULL with a non-zero `key_len`, or `value` NULL with a
///   non-zero `value_len`. Every (pointer, length) input of these functions may be NULL when
///   its length is 0 (it is then empty); NULL with a non-zero length is `RM_ERR_NULL_POINTER`.
/// - `RM_ERR_INVALID_ARGUMENT`: `key_len` or `value_len` over `PTRDIFF_MAX` (so for every
///   length and capacity below).
/// - On `cf`: `RM_ERR_INVALID_HANDLE` (0, or a number never issued), `RM_ERR_STALE_HANDLE`
///   (its slot has since been reused), `RM_ERR_WRONG_KIND` (a handle, open or closed, of
///   another kind: a DB, iterator, snapshot, batch, registered resource or manager),
///   `RM_ERR_CLOSED`: the column family is closed, or its own close has begun (always before
///   its DB's). A close or cleanup that includes it (`rm_close` of it or of its DB,
///   `rm_cleanup`, `rm_manager_destroy`) first closes what depends on it (its iterators,
///   resources registered as its dependents) and, when the DB closes too, the DB's other
///   dependents (snapshots, batches, registered dependents), and begins the column family's
///   close only after them: operations are accepted until then, so a dependent's close (a
///   worker flushing into the DB) may still write.
/// - RocksDB's status: `RM_ERR_IO`, `RM_ERR_CORRUPTION`, `RM_ERR_INVALID_ARGUMENT`,
///   `RM_ERR_ROCKSDB`.
/// - `RM_ERR_PANIC`: a bug inside resman, caught at the boundary.
///
/// # Safety
/// `key` points to `key_len` readable bytes and `value` to `value_len`; `err` is NULL or
/// points to a writable `rm_error`.
#[no_mangle]
pub unsafe extern "C" fn rm_put(
    cf: u64,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    err: *mut rm_error,
) -> rm_result {
    // SAFETY: rm_put_opt's contract is this function's, argument for argument.
    unsafe { rm_put_opt(cf, key, key_len, value, value_len, 0, err) }
}

/// `rm_put` with write flags: 0, `RM_WRITE_SYNC` or `RM_WRITE_DISABLE_WAL`. Thread-safe.
///
/// Errors: those of `rm_put` (`RM_ERR_NULL_POINTER`, `RM_ERR_INVALID_ARGUMENT`, on `cf`
/// `RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND`, `RM_ERR_CLOSED`,
/// RocksDB's status, `RM_ERR_PANIC`), and `RM_ERR_INVALID_ARGUMENT` for unknown bits in
/// `write_flags` or both flags together.
///
/// # Safety
/// As for `rm_put`.
#[no_mangle]
pub unsafe extern "C" fn rm_put_opt(
    cf: u64,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    write_flags: u32,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        // SAFETY: this function's contract makes `key` `key_len` readable bytes (bytes refuses
        // NULL with a length): bytes's contract.
        let key = unsafe { bytes(key, key_len, "key") }?;
        // SAFETY: as for `key`, with `value_len` bytes.
        let value = unsafe { bytes(value, value_len, "value") }?;
        rocks::put_opt(CfHandle::from_raw(cf), key, value, write_flags)
    })
}

/// Deletes `key` from column family `cf` (no error when it does not exist). `key` is read
/// during the call only. Same as `rm_delete_opt` with flags 0. Thread-safe.
///
/// Errors: `RM_ERR_NULL_POINTER` (`key` NULL with `key_len` > 0), `RM_ERR_INVALID_ARGUMENT`
/// (`key_len` over `PTRDIFF_MAX`); on `cf`, as for `rm_put`: `RM_ERR_INVALID_HANDLE`,
/// `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND`, `RM_ERR_CLOSED` (once the column family's own
/// close has begun); RocksDB's status (`RM_ERR_IO`, `RM_ERR_CORRUPTION`,
/// `RM_ERR_INVALID_ARGUMENT`, `RM_ERR_ROCKSDB`); `RM_ERR_PANIC`.
///
/// # Safety
/// `key` points to `key_len` readable bytes; `err` is NULL or points to a writable `rm_error`.
#[no_mangle]
pub unsafe extern "C" fn rm_delete(
    cf: u64,
    key: *const u8,
    key_len: usize,
    err: *mut rm_error,
) -> rm_result {
    // SAFETY: rm_delete_opt's contract is this function's, argument for argument.
    unsafe { rm_delete_opt(cf, key, key_len, 0, err) }
}

/// `rm_delete` with write flags (see `rm_put_opt`). Thread-safe.
///
/// Errors: those of `rm_delete`, and `RM_ERR_INVALID_ARGUMENT` for unknown bits in
/// `write_flags` or both flags together.
///
/// # Safety
/// As for `rm_delete`.
#[no_mangle]
pub unsafe extern "C" fn rm_delete_opt(
    cf: u64,
    key: *const u8,
    key_len: usize,
    write_flags: u32,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        // SAFETY: this function's contract makes `key` `key_len` readable bytes (bytes refuses
        // NULL with a length): bytes's contract.
        let key = unsafe { bytes(key, key_len, "key") }?;
        rocks::delete_opt(CfHandle::from_raw(cf), key, write_flags)
    })
}

/// Reads `key` from column family `cf` into `buf` with one copy. Same as `rm_get_opt` with no
/// snapshot and flags 0. On success `*out_len` is the value's length. If `buf_cap` is smaller,
/// the result is `RM_ERR_BUFFER_TOO_SMALL`, nothing is copied and `*out_len` is the length
/// needed: retry with a buffer that large. A missing key is `RM_ERR_NOT_FOUND`. `buf` may be
/// NULL when `buf_cap` is 0; `key` and `buf` must not overlap. Nothing is allocated: the value
/// goes from RocksDB's pinned memory straight into `buf`. Thread-safe.
///
/// Errors: `RM_ERR_NOT_FOUND`, `RM_ERR_BUFFER_TOO_SMALL` (above; `*out_len` is written only
/// on success and with this code); `RM_ERR_NULL_POINTER` (`out_len` NULL, `key` NULL with
/// `key_len` > 0, `buf` NULL with `buf_cap` > 0); `RM_ERR_INVALID_ARGUMENT` (`key` and `buf`
/// overlap, `key_len` or `buf_cap` over `PTRDIFF_MAX`); on `cf`, as for `rm_put`:
/// `RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND`, `RM_ERR_CLOSED`
/// (once the column family's own close has begun); RocksDB's status (`RM_ERR_IO`,
/// `RM_ERR_CORRUPTION`, `RM_ERR_INVALID_ARGUMENT`, `RM_ERR_ROCKSDB`); `RM_ERR_PANIC`.
///
/// # Safety
/// `key` points to `key_len` readable bytes; `buf` to `buf_cap` writable bytes; `out_len` to a
/// writable `size_t`; `err` is NULL or points to a writable `rm_error`.
#[no_mangle]
pub unsafe extern "C" fn rm_get(
    cf: u64,
    key: *const u8,
    key_len: usize,
    buf: *mut u8,
    buf_cap: usize,
    out_len: *mut usize,
    err: *mut rm_error,
) -> rm_result {
    // SAFETY: rm_get_opt's contract is this function's, argument for argument.
    unsafe { rm_get_opt(cf, 0, 0, key, key_len, buf, buf_cap, out_len, err) }
}

/// `rm_get` at `snapshot` (0: the latest data; otherwise a snapshot of the same DB, from
/// `rm_snapshot_create`) with read flags (`RM_READ_NO_FILL_CACHE`,
/// `RM_READ_NO_VERIFY_CHECKSUMS`). Thread-safe.
///
/// Errors: those of `rm_get`; `RM_ERR_INVALID_ARGUMENT` (unknown bits in `read_flags`); on a
/// non-zero `snapshot`: `RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND`
/// (not a snapshot), `RM_ERR_CLOSED` (the snapshot is released, or its close has begun: a
/// close of its DB begins it before the DB's column families), `RM_ERR_WRONG_DB` (a snapshot
/// of another DB than `cf`'s).
///
/// # Safety
/// As for `rm_get`.
#[no_mangle]
pub unsafe extern "C" fn rm_get_opt(
    cf: u64,
    snapshot: u64,
    read_flags: u32,
    key: *const u8,
    key_len: usize,
    buf: *mut u8,
    buf_cap: usize,
    out_len: *mut usize,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        let out_len = out_ptr(out_len, "out_len")?;
        // SAFETY: this function's contract is key_and_buffer's.
        let (key, buf) = unsafe { key_and_buffer(key, key_len, buf, buf_cap) }?;
        let result = rocks::get_opt(
            CfHandle::from_raw(cf),
            snapshot_arg(snapshot),
            read_flags,
            key,
            buf,
        );
        // SAFETY: `out_len` is not NULL (out_ptr above) and, by this function's contract, a
        // writable `size_t`: write_len's contract.
        unsafe { write_len(out_len, &result) };
        result.map(|_| ())
    })
}

/// A point read's key and output buffer, refused when they overlap (or when NULL with a
/// length).
///
/// # Safety
/// `key` points to `key_len` readable bytes and `buf` to `buf_cap` writable bytes, both valid
/// for `'a`, and nothing else borrows `buf`'s bytes meanwhile.
unsafe fn key_and_buffer<'a>(
    key: *const u8,
    key_len: usize,
    buf: *mut u8,
    buf_cap: usize,
) -> Result<(&'a [u8], &'a mut [u8])> {
    if overlaps(key, key_len, buf, buf_cap) {
        return Err(Error::InvalidArgument("key and buf overlap".into()));
    }
    // SAFETY: this function's contract makes `key` `key_len` readable bytes (bytes refuses NULL
    // with a length): bytes's contract.
    let key = unsafe { bytes(key, key_len, "key") }?;
    // SAFETY: this function's contract makes `buf` `buf_cap` writable bytes, and they do not
    // overlap `key` (checked above), the only other caller memory borrowed here.
    let buf = unsafe { buffer(buf, buf_cap, "buf") }?;
    Ok((key, buf))
}

/// Allocates room for a value that did not fit in the caller's buffer (`rm_get_alloc`):
/// returns a pointer to `len` writable bytes (`len` > 0), or NULL to refuse. `context` is the
/// caller's `alloc_context`. It runs on the calling thread while resman holds the column
/// family open, and must not close anything (`rm_close`, `rm_cleanup*`,
/// `rm_manager_destroy` are refused from inside it with `RM_ERR_INVALID_ARGUMENT`).
#[allow(non_camel_case_types)]
pub type rm_alloc_fn = Option<unsafe extern "C" fn(context: *mut c_void, len: usize) -> *mut u8>;

/// Reads `key` with **one RocksDB lookup whatever the value's size**: into `buf` when the value
/// fits in `buf_cap` bytes, otherwise into memory obtained from `alloc(alloc_context, len)`
/// (called at most once, only for a value that does not fit). On `RM_OK`, `*out_value` points
/// to the value (`buf`, or what `alloc` returned: the caller owns that and frees it as its
/// allocator wants) and `*out_len` is its length. `snapshot` and `read_flags` are as for
/// `rm_get_opt`; `buf` may be NULL when `buf_cap` is 0; `key` and `buf` must not overlap.
/// Thread-safe.
///
/// `alloc` NULL: a value that does not fit gives `RM_ERR_BUFFER_TOO_SMALL` with `*out_len` the
/// length needed, as `rm_get_opt`. `alloc` returning NULL gives the same code (nothing is
/// allocated, nothing is copied).
///
/// Errors: those of `rm_get_opt` (`RM_ERR_NOT_FOUND`: `alloc` is not called);
/// `RM_ERR_NULL_POINTER` also for `out_value` NULL. `*out_value` is written only on `RM_OK`;
/// `*out_len` on `RM_OK` and `RM_ERR_BUFFER_TOO_SMALL`.
///
/// # Safety
/// As for `rm_get_opt`; `out_value` points to a writable `uint8_t *`; `alloc`, if not NULL, is
/// a function that returns NULL or a pointer to `len` writable bytes that do not overlap `key`
/// or `buf`.
#[no_mangle]
pub unsafe extern "C" fn rm_get_alloc(
    cf: u64,
    snapshot: u64,
    read_flags: u32,
    key: *const u8,
    key_len: usize,
    buf: *mut u8,
    buf_cap: usize,
    alloc: rm_alloc_fn,
    alloc_context: *mut c_void,
    out_value: *mut *mut u8,
    out_len: *mut usize,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        let out_value = out_ptr(out_value, "out_value")?;
        let out_len = out_ptr(out_len, "out_len")?;
        // SAFETY: this function's contract is key_and_buffer's.
        let (key, room) = unsafe { key_and_buffer(key, key_len, buf, buf_cap) }?;
        let placed = rocks::get_with(
            CfHandle::from_raw(cf),
            snapshot_arg(snapshot),
            read_flags,
            key,
            |value| place(value, room, alloc, alloc_context),
        )
        .and_then(|r| r);
        let len = placed.as_ref().map(|&(_, len)| len).map_err(Clone::clone);
        // SAFETY: `out_len` is not NULL (out_ptr above) and, by this function's contract, a
        // writable `size_t`: write_len's contract.
        unsafe { write_len(out_len, &len) };
        let (p, _) = placed?;
        let p = p.unwrap_or(buf);
        // SAFETY: `out_value` is not NULL (out_ptr above) and, by this function's contract, a
        // writable `uint8_t *`.
        unsafe { put_out(out_value, p) };
        Ok(())
    })
}

/// Copies `value` into `room` when it fits (None), otherwise into what `alloc` returns (its
/// pointer), with the value's length; or `BufferTooSmall` (no `alloc`, or it refused).
fn place(
    value: &[u8],
    room: &mut [u8],
    alloc: rm_alloc_fn,
    alloc_context: *mut c_void,
) -> Result<(Option<*mut u8>, usize)> {
    let len = value.len();
    if len <= room.len() {
        room[..len].copy_from_slice(value);
        return Ok((None, len));
    }
    let Some(alloc) = alloc else {
        return Err(Error::BufferTooSmall { needed: len });
    };
    // SAFETY: rm_get_alloc's contract makes `alloc` a function returning NULL or `len` writable
    // bytes. It runs marked as inside a callback, so a close from it is refused instead of
    // waiting for the lease this read holds.
    let p = manager::inside_close(|| unsafe { alloc(alloc_context, len) });
    if p.is_null() {
        return Err(Error::BufferTooSmall { needed: len });
    }
    // SAFETY: `p` is not NULL, so by rm_get_alloc's contract it points to `len` writable bytes
    // that overlap neither the key nor the caller's buffer, nor RocksDB's pinned value (memory
    // the allocator just handed out).
    unsafe { std::ptr::copy_nonoverlapping(value.as_ptr(), p, len) };
    Ok((Some(p), len))
}

/// Reads `n_keys` keys in one call. The keys are concatenated in `keys`, key `i` being
/// `key_lens[i]` bytes long. `cfs` holds `n_cfs` column-family handles of one DB: either one
/// (every key is read from it) or `n_keys` (key `i` from `cfs[i]`). `snapshot` and
/// `read_flags` are as for `rm_get_opt`.
///
/// Values are packed into `buf`; `out_values[i]` tells where key `i`'s value is, or why it is
/// not there (see `rm_value`). A value that does not fit in what is left of `buf` is skipped
/// (code `RM_ERR_BUFFER_TOO_SMALL`, `len` its size) and later values still fill the rest.
/// `*out_needed` (if not NULL) receives the bytes all found values need together: a retry with
/// that much room gets every value (unless the data changed meanwhile).
///
/// Returns `RM_OK` when every key was found or is missing; `RM_ERR_BUFFER_TOO_SMALL` when some
/// value did not fit; otherwise the code of the first key RocksDB failed to read (RocksDB's
/// status: `RM_ERR_IO`, `RM_ERR_CORRUPTION`, `RM_ERR_INVALID_ARGUMENT`, `RM_ERR_ROCKSDB`; the
/// per-key codes say which). `n_keys` 0 (with `n_cfs` 0 or 1) is a successful no-op that reads
/// no other argument (`*out_needed`, if not NULL, receives 0). Thread-safe.
///
/// Errors that fail the whole call before anything is read (`out_values` and `*out_needed`
/// are left untouched):
/// - `RM_ERR_NULL_POINTER`: `cfs`, `key_lens` or `out_values` NULL; `keys` NULL when the key
///   lengths add up to more than 0; `buf` NULL with `buf_cap` > 0.
/// - `RM_ERR_INVALID_ARGUMENT`: more than RM_MAX_MULTI_GET_KEYS keys; `n_cfs` neither 1 nor
///   `n_keys`; `cfs`, `key_lens` or `out_values` not aligned for its element type
///   (`_Alignof(uint64_t)`, `_Alignof(size_t)`, `_Alignof(rm_value)`: 8 on 64-bit targets);
///   key lengths whose sum overflows `size_t` or exceeds `PTRDIFF_MAX`; the keys overlapping
///   `buf`; `buf_cap` over `PTRDIFF_MAX`; unknown bits in `read_flags`.
/// - On each `cfs[i]`, as for `rm_put`: `RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`,
///   `RM_ERR_WRONG_KIND` (not a column family), `RM_ERR_CLOSED` (once that column family's
///   own close has begun); `RM_ERR_WRONG_DB` (column families of different DBs).
/// - On a non-zero `snapshot`, as for `rm_get_opt`: `RM_ERR_INVALID_HANDLE`,
///   `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND`, `RM_ERR_CLOSED`, `RM_ERR_WRONG_DB`.
/// - `RM_ERR_PANIC`.
///
/// # Safety
/// `cfs` points to `n_cfs` readable `uint64_t`; `key_lens` to `n_keys` readable `size_t`;
/// `keys` to the sum of `key_lens` readable bytes; `buf` to `buf_cap` writable bytes not
/// overlapping the keys; `out_values` to `n_keys` writable `rm_value`; `out_needed` is NULL or
/// writable; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rm_multi_get(
    cfs: *const u64,
    n_cfs: usize,
    snapshot: u64,
    read_flags: u32,
    keys: *const u8,
    key_lens: *const usize,
    n_keys: usize,
    buf: *mut u8,
    buf_cap: usize,
    out_values: *mut rm_value,
    out_needed: *mut usize,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        // SAFETY: this function's contract is multi_get_call's, and there is no spill.
        unsafe {
            multi_get_call(
                cfs, n_cfs, snapshot, read_flags, keys, key_lens, n_keys, buf, buf_cap, out_values,
                out_needed, None,
            )
        }
    })
}

/// Where the values that do not fit go (`rm_multi_get_alloc`): memory from `alloc`, its
/// pointer in `out[i]`.
struct Spill {
    alloc: unsafe extern "C" fn(context: *mut c_void, len: usize) -> *mut u8,
    context: *mut c_void,
    out: *mut *mut u8,
}

/// The body of `rm_multi_get` and `rm_multi_get_alloc` (their arguments, and where the values
/// that do not fit go: nowhere for `rm_multi_get`).
///
/// # Safety
/// `rm_multi_get`'s contract; with `spill`, `rm_multi_get_alloc`'s on it (`out` is `n_keys`
/// writable, aligned pointers, already checked non-NULL and aligned).
#[allow(clippy::too_many_arguments)]
unsafe fn multi_get_call(
    cfs: *const u64,
    n_cfs: usize,
    snapshot: u64,
    read_flags: u32,
    keys: *const u8,
    key_lens: *const usize,
    n_keys: usize,
    buf: *mut u8,
    buf_cap: usize,
    out_values: *mut rm_value,
    out_needed: *mut usize,
    spill: Option<Spill>,
) -> Result<()> {
    at_most(n_keys, RM_MAX_MULTI_GET_KEYS, "keys")?;
    if n_cfs > n_keys.max(1) {
        return Err(Error::InvalidArgument(format!(
            "{n_cfs} column families for {n_keys} keys: pass one, or one per key"
        )));
    }
    if n_keys == 0 {
        // SAFETY: this function's contract makes `out_needed` NULL or writable:
        // put_optional's contract.
        unsafe { put_optional(out_needed, 0) };
        return Ok(());
    }
    if n_cfs == 0 {
        return Err(Error::InvalidArgument(
            "no column family given: pass one, or one per key".into(),
        ));
    }
    // SAFETY: this function's contract makes `cfs` `n_cfs` readable `uint64_t` (array
    // refuses NULL and checks the alignment); `CfHandle` is a `#[repr(transparent)]` u64,
    // so they are `n_cfs` valid `CfHandle` (any bit pattern is one; each is checked when
    // leased); `n_cfs <= n_keys <= RM_MAX_MULTI_GET_KEYS`.
    let cfs = unsafe { array(cfs.cast::<CfHandle>(), n_cfs, "cfs") }?;
    let out_values = out_ptr(out_values, "out_values")?;
    if key_lens.is_null() {
        return Err(Error::NullPointer("key_lens"));
    }
    if !key_lens.is_aligned() || !out_values.is_aligned() {
        return Err(Error::InvalidArgument(
            "key_lens and out_values must be aligned".into(),
        ));
    }
    // SAFETY: `key_lens` is not NULL and aligned (checked above) and, by this function's
    // contract, points to `n_keys` readable `size_t`; `keys`, `buf` and `buf_cap` come
    // with this function's contract too, which is `split_keys`'s.
    let (keys, buf) = unsafe { split_keys(keys, key_lens, n_keys, buf, buf_cap) }?;
    let (lookups, needed) = match &spill {
        None => multiget::multi_get(cfs, snapshot_arg(snapshot), read_flags, &keys, buf)?,
        Some(s) => {
            for i in 0..n_keys {
                // SAFETY: this function's contract makes `s.out` `n_keys` writable pointers.
                unsafe { put_out(s.out.add(i), std::ptr::null_mut()) };
            }
            let take = |i: usize, value: &[u8]| {
                // SAFETY: rm_multi_get_alloc's contract makes `alloc` a function returning
                // NULL or `len` writable bytes; marked as inside a callback, a close from it
                // is refused instead of waiting for this read's leases.
                let p = manager::inside_close(|| unsafe { (s.alloc)(s.context, value.len()) });
                if p.is_null() {
                    return false;
                }
                // SAFETY: `p` is `value.len()` writable bytes the allocator just handed out
                // (overlapping no caller buffer nor RocksDB's value); `i < n_keys`, so
                // `s.out.add(i)` is one of the caller's `n_keys` writable pointers.
                unsafe {
                    std::ptr::copy_nonoverlapping(value.as_ptr(), p, value.len());
                    put_out(s.out.add(i), p);
                }
                true
            };
            multiget::multi_get_with(cfs, snapshot_arg(snapshot), read_flags, &keys, buf, take)?
        }
    };
    // SAFETY: `out_values` is not NULL and aligned (checked above) and, by this function's
    // contract, points to `n_keys` writable `rm_value`; multi_get returns one lookup per
    // key, `n_keys` of them.
    let result = unsafe { write_lookups(lookups, out_values, needed) };
    // SAFETY: this function's contract makes `out_needed` NULL or writable.
    unsafe { put_optional(out_needed, needed) };
    result
}

/// `rm_multi_get` with **one RocksDB lookup per key whatever the values' sizes**: a found
/// value that does not fit in what is left of `buf` is copied into memory from
/// `alloc(alloc_context, len)` (called once per such value, on the calling thread, while the
/// column families are held open: it must not close anything), its `out_values[i]` is `RM_OK`
/// with its `len`, and `out_spilled[i]` points to it (the caller owns that memory). Every other
/// key's `out_spilled[i]` is NULL and its value, if found, is at `buf + out_values[i].offset`.
/// An `alloc` that returns NULL leaves that key `RM_ERR_BUFFER_TOO_SMALL`, as in
/// `rm_multi_get` (and the call returns that code unless a key failed). Thread-safe.
///
/// Errors: those of `rm_multi_get`, and `RM_ERR_NULL_POINTER` (`alloc` or `out_spilled`
/// NULL), `RM_ERR_INVALID_ARGUMENT` (`out_spilled` not aligned for a pointer). `out_spilled`
/// is set to all NULL once the pointers and sizes are checked (before the handles are).
///
/// # Safety
/// As for `rm_multi_get`; `out_spilled` points to `n_keys` writable `uint8_t *`; `alloc`
/// returns NULL or a pointer to `len` writable bytes that overlap no other argument.
#[no_mangle]
pub unsafe extern "C" fn rm_multi_get_alloc(
    cfs: *const u64,
    n_cfs: usize,
    snapshot: u64,
    read_flags: u32,
    keys: *const u8,
    key_lens: *const usize,
    n_keys: usize,
    buf: *mut u8,
    buf_cap: usize,
    alloc: rm_alloc_fn,
    alloc_context: *mut c_void,
    out_values: *mut rm_value,
    out_spilled: *mut *mut u8,
    out_needed: *mut usize,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        let Some(alloc) = alloc else {
            return Err(Error::NullPointer("alloc"));
        };
        let out = if n_keys == 0 {
            out_spilled
        } else {
            let out = out_ptr(out_spilled, "out_spilled")?;
            if !out.is_aligned() {
                return Err(Error::InvalidArgument("out_spilled must be aligned".into()));
            }
            out
        };
        let spill = Spill {
            alloc,
            context: alloc_context,
            out,
        };
        // SAFETY: this function's contract is multi_get_call's, `out` checked as it requires.
        unsafe {
            multi_get_call(
                cfs,
                n_cfs,
                snapshot,
                read_flags,
                keys,
                key_lens,
                n_keys,
                buf,
                buf_cap,
                out_values,
                out_needed,
                Some(spill),
            )
        }
    })
}

/// The keys of `rm_multi_get`, cut out of their concatenation, and its value buffer.
///
/// # Safety
/// `key_lens` points to `n_keys` readable, aligned `size_t`; `keys` to their sum of readable
/// bytes (NULL allowed when that is 0); `buf` to `buf_cap` writable bytes (NULL allowed when
/// `buf_cap` is 0), not aliased by anything but, perhaps, `keys` (refused here).
unsafe fn split_keys<'a>(
    keys: *const u8,
    key_lens: *const usize,
    n_keys: usize,
    buf: *mut u8,
    buf_cap: usize,
) -> Result<(Vec<&'a [u8]>, &'a mut [u8])> {
    // SAFETY: by this function's contract `key_lens` is `n_keys` readable, aligned `size_t`;
    // `n_keys <= RM_MAX_MULTI_GET_KEYS`, so the slice is far below isize::MAX bytes.
    let lens = unsafe { std::slice::from_raw_parts(key_lens, n_keys) };
    let total = lens
        .iter()
        .try_fold(0usize, |a, &l| a.checked_add(l))
        .ok_or_else(|| {
            Error::InvalidArgument("the key lengths add up to more than memory can hold".into())
        })?;
    if overlaps(keys, total, buf, buf_cap) {
        return Err(Error::InvalidArgument("keys and buf overlap".into()));
    }
    // SAFETY: by this function's contract `keys` is `total` readable bytes (bytes refuses
    // NULL with a length, and a total over isize::MAX).
    let all = unsafe { bytes(keys, total, "keys") }?;
    // SAFETY: by this function's contract `buf` is `buf_cap` writable bytes, and it does not
    // overlap the keys (checked above), the only other memory borrowed from the caller here.
    let buf = unsafe { buffer(buf, buf_cap, "buf") }?;
    let mut split = Vec::with_capacity(n_keys);
    let mut at = 0;
    for &l in lens {
        split.push(&all[at..at + l]);
        at += l;
    }
    Ok((split, buf))
}

/// Writes one `rm_value` per lookup; the call's result: the first failed key's error, else
/// `BufferTooSmall { needed }` if a value did not fit, else success.
///
/// # Safety
/// `out_values` points to `lookups.len()` writable, aligned `rm_value`.
unsafe fn write_lookups(
    lookups: Vec<Lookup>,
    out_values: *mut rm_value,
    needed: usize,
) -> Result<()> {
    let mut first_error: Option<Error> = None;
    let mut too_small = false;
    for (i, lookup) in lookups.into_iter().enumerate() {
        let v = match lookup {
            Lookup::Found { offset, len } => rm_value {
                code: rm_result::RM_OK,
                offset,
                len,
            },
            // Where it is, the caller's `out_spilled[i]` says (rm_multi_get_alloc).
            Lookup::Spilled { len } => rm_value {
                code: rm_result::RM_OK,
                offset: 0,
                len,
            },
            Lookup::NotFound => rm_value {
                code: rm_result::RM_ERR_NOT_FOUND,
                offset: 0,
                len: 0,
            },
            Lookup::TooSmall { len } => {
                too_small = true;
                rm_value {
                    code: rm_result::RM_ERR_BUFFER_TOO_SMALL,
                    offset: 0,
                    len,
                }
            }
            Lookup::Failed(e) => {
                let code = e.code();
                first_error.get_or_insert_with(|| e.context(&format!("key {i}")));
                rm_value {
                    code,
                    offset: 0,
                    len: 0,
                }
            }
        };
        // SAFETY: by this function's contract `out_values` has room for `lookups.len()`
        // entries, and `i` is below that.
        unsafe { put_out(out_values.add(i), v) };
    }
    match (first_error, too_small) {
        (Some(e), _) => Err(e),
        (None, true) => Err(Error::BufferTooSmall { needed }),
        (None, false) => Ok(()),
    }
}
