//! The exported RocksDB functions: open, point reads and writes, multi-get, batches,
//! snapshots, iterators, memory. Their doc comments are the header's documentation.
//!
//! Every data call takes one lease on each handle it is given (the column family and, when
//! given, the snapshot or batch) for its duration; a handle whose resource's own close has
//! begun returns `RM_ERR_CLOSED` without starting. A close or cleanup stops leases one
//! resource at a time, dependents first, so a column family keeps accepting operations until
//! the DB's other dependents have finished closing. The `Errors:` paragraphs below are the
//! header's error lists: keep them in step with the code paths.

use super::api::u64s;
use super::{boundary, buffer, bytes, c_str, out_ptr, put_out, rm_error};
use crate::error::{rm_result, Error, Result};
use crate::rocks::batch::{self, Op};
use crate::rocks::iter::{self, IterOptions};
use crate::rocks::multiget::{self, Slot};
use crate::rocks::{self, CfSpec, Compression, DbOptions, Seek};
use std::ffi::c_char;
use std::path::Path;

/// Largest number of column families `rm_db_open` and `rm_db_open_cf` take in one call.
pub const RM_MAX_COLUMN_FAMILIES: usize = 4096;
/// Largest number of keys `rm_multi_get` takes in one call.
pub const RM_MAX_MULTI_GET_KEYS: usize = 1 << 20;
/// Smallest `write_buffer_size` accepted by `rm_db_open` (64 KiB).
pub const RM_MIN_WRITE_BUFFER_SIZE: u64 = 65_536;
/// Largest `write_buffer_size` accepted by `rm_db_open` (64 GiB).
pub const RM_MAX_WRITE_BUFFER_SIZE: u64 = 68_719_476_736;
const _: () = assert!(RM_MIN_WRITE_BUFFER_SIZE as usize == rocks::MIN_WRITE_BUFFER_SIZE);
const _: () = assert!(RM_MAX_WRITE_BUFFER_SIZE as usize == rocks::MAX_WRITE_BUFFER_SIZE);

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

/// Compression of a column family (`rm_cf_options.compression`): use `rm_db_options.compression`.
pub const RM_COMPRESSION_INHERIT: u32 = 0;
/// No compression.
pub const RM_COMPRESSION_NONE: u32 = 1;
/// LZ4 (the default).
pub const RM_COMPRESSION_LZ4: u32 = 2;
/// Zstandard.
pub const RM_COMPRESSION_ZSTD: u32 = 3;

const _: () = assert!(RM_READ_NO_FILL_CACHE == rocks::raw::READ_NO_FILL_CACHE);
const _: () = assert!(RM_READ_NO_VERIFY_CHECKSUMS == rocks::raw::READ_NO_VERIFY_CHECKSUMS);
const _: () = assert!(RM_WRITE_SYNC == rocks::raw::WRITE_SYNC);
const _: () = assert!(RM_WRITE_DISABLE_WAL == rocks::raw::WRITE_DISABLE_WAL);

/// DB open options. Fill with `rm_db_options_default`, then change what you need.
/// Flags are 0 (off) or non-zero (on). resman never sets RocksDB's
/// `avoid_flush_during_shutdown`: writes made without the WAL are flushed by a close.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct rm_db_options {
    /// Create the DB if the directory holds none. Default 1.
    pub create_if_missing: u8,
    /// Create requested column families that do not exist yet. Default 1.
    pub create_missing_column_families: u8,
    /// Fail if a DB already exists at the path. Default 0.
    pub error_if_exists: u8,
    /// Size of one memtable of each column family, in bytes: RM_MIN_WRITE_BUFFER_SIZE to
    /// RM_MAX_WRITE_BUFFER_SIZE. Default 64 MiB.
    pub write_buffer_size: u64,
    /// Table files RocksDB keeps open: -1 for no limit (the default), or a positive number.
    pub max_open_files: i32,
    /// Compression of every column family that does not choose its own: RM_COMPRESSION_NONE,
    /// RM_COMPRESSION_LZ4 (default) or RM_COMPRESSION_ZSTD.
    pub compression: u32,
    /// One LRU block cache shared by all column families of the DB, in bytes; 0 disables
    /// block caching. At most 1 TiB. Default 32 MiB.
    pub block_cache_size: u64,
}

/// One column family for `rm_db_open_cf`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct rm_cf_options {
    /// NUL-terminated UTF-8 name, 1 to RM_MAX_NAME_LEN bytes ("default" is allowed).
    pub name: *const c_char,
    /// RM_COMPRESSION_INHERIT (use the DB's), or RM_COMPRESSION_NONE / _LZ4 / _ZSTD.
    pub compression: u32,
}

/// A DB's memory use as RocksDB reports it, in bytes (`rm_db_memory`).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct rm_memory {
    /// All memtables (including flushed ones still pinned).
    pub mem_table_total: u64,
    /// Memtables not yet flushed to disk.
    pub mem_table_unflushed: u64,
    /// Table readers (indexes and filters held outside the block cache).
    pub table_readers: u64,
    /// The DB's block cache.
    pub block_cache: u64,
}

/// One key's result of `rm_multi_get`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct rm_value {
    /// RM_OK: the value is at `buf + offset`, `len` bytes. RM_ERR_NOT_FOUND: no such key
    /// (`len` 0). RM_ERR_BUFFER_TOO_SMALL: the value did not fit in what was left of the
    /// buffer; `len` is its size. Anything else: reading this key failed.
    pub code: rm_result,
    /// Where the value starts in the caller's buffer (RM_OK only).
    pub offset: usize,
    /// The value's length.
    pub len: usize,
}

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

fn compression(code: u32, what: &str) -> Result<Option<Compression>> {
    match code {
        RM_COMPRESSION_INHERIT => Ok(None),
        RM_COMPRESSION_NONE => Ok(Some(Compression::None)),
        RM_COMPRESSION_LZ4 => Ok(Some(Compression::Lz4)),
        RM_COMPRESSION_ZSTD => Ok(Some(Compression::Zstd)),
        other => Err(Error::InvalidArgument(format!(
            "{what}: unknown compression {other} (RM_COMPRESSION_NONE, _LZ4 or _ZSTD)"
        ))),
    }
}

fn to_c(o: &DbOptions) -> rm_db_options {
    rm_db_options {
        create_if_missing: o.create_if_missing.into(),
        create_missing_column_families: o.create_missing_column_families.into(),
        error_if_exists: o.error_if_exists.into(),
        write_buffer_size: o.write_buffer_size as u64,
        max_open_files: o.max_open_files,
        compression: match o.compression {
            Compression::None => RM_COMPRESSION_NONE,
            Compression::Lz4 => RM_COMPRESSION_LZ4,
            Compression::Zstd => RM_COMPRESSION_ZSTD,
        },
        block_cache_size: o.block_cache_size as u64,
    }
}

fn from_c(o: &rm_db_options) -> Result<DbOptions> {
    let size = |v: u64, what: &str| {
        usize::try_from(v).map_err(|_| Error::InvalidArgument(format!("{what} {v} is too large")))
    };
    Ok(DbOptions {
        create_if_missing: o.create_if_missing != 0,
        create_missing_column_families: o.create_missing_column_families != 0,
        error_if_exists: o.error_if_exists != 0,
        write_buffer_size: size(o.write_buffer_size, "write_buffer_size")?,
        max_open_files: o.max_open_files,
        block_cache_size: size(o.block_cache_size, "block_cache_size")?,
        compression: compression(o.compression, "rm_db_options.compression")?.ok_or_else(|| {
            Error::InvalidArgument(
                "rm_db_options.compression must be RM_COMPRESSION_NONE, _LZ4 or _ZSTD".into(),
            )
        })?,
    })
}

/// Fills `*out` with the default DB options.
///
/// Errors (the return value only: there is no `err`): `RM_ERR_NULL_POINTER` (`out` NULL),
/// `RM_ERR_PANIC`.
///
/// # Safety
/// `out` is NULL (rejected) or points to a writable `rm_db_options`.
#[no_mangle]
pub unsafe extern "C" fn rm_db_options_default(out: *mut rm_db_options) -> rm_result {
    boundary(std::ptr::null_mut(), || {
        let out = out_ptr(out, "out")?;
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { put_out(out, to_c(&DbOptions::default())) };
        Ok(())
    })
}

/// Opens the RocksDB database at `path` and registers it in `manager` as `name`, with one
/// handle per column family named in `cf_names` (registered as `name/<cf>`, each a dependent
/// of the DB) written to `out_cfs[i]`. "default" may be listed like any other. Column families
/// that exist on disk but are not listed are opened too but get no handle. Every column family
/// gets `opts->compression`; `rm_db_open_cf` chooses per column family.
///
/// `opts` may be NULL for the defaults. Everything passed is read during the call only. The
/// native options, caches and handles are owned by resman and released by the close: the
/// caller never frees any. On error nothing stays registered, open or allocated. Close the DB
/// with `rm_close` (its iterators, snapshots, batches and column families close first) or let
/// `rm_cleanup`/`rm_manager_destroy` do it; a graceful close flushes every column family and
/// syncs the WAL, so the next open replays nothing. If the flush fails on every attempt (a
/// full disk), the close reports `RM_ERR_CLOSE_FAILED` and the DB is closed unflushed before
/// it returns: its writes stay in the WAL and the directory can be reopened at once.
/// Thread-safe.
///
/// Errors (`*out_db` and `out_cfs` are written only on success):
/// - `RM_ERR_NULL_POINTER`: `name`, `path` or `out_db` NULL; with `n_cfs` > 0, `cf_names`,
///   one of `cf_names[i]`, or `out_cfs` NULL.
/// - `RM_ERR_INVALID_UTF8`: `name`, `path` or a column-family name is not UTF-8.
/// - `RM_ERR_INVALID_ARGUMENT`: more than RM_MAX_COLUMN_FAMILIES column families; an empty
///   `path`; `name` or a column-family name empty or longer than RM_MAX_NAME_LEN bytes; a
///   column family listed twice; an option out of range (see
///   `rm_db_options`: `compression` must be _NONE, _LZ4 or _ZSTD); and RocksDB's refusals: no
///   DB with create_if_missing 0, a DB with error_if_exists 1, a missing column family with
///   create_missing_column_families 0.
/// - On `manager`: `RM_ERR_INVALID_HANDLE` (0, or a number never issued),
///   `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND` (a resource handle), `RM_ERR_CLOSED` (the
///   manager is destroyed or being destroyed, or a `rm_cleanup` of it is running: new
///   resources are refused until it returns).
/// - `RM_ERR_DUPLICATE_NAME`: `name` or one of the `name/<cf>` is taken in the manager (also
///   by a resource that is still closing).
/// - `RM_ERR_LOCKED`: the directory is held by another process, or by a DB open in this
///   process under any spelling of its path (a trailing slash, `.`, `..`, a symlink, a
///   relative path); the message names the holder.
/// - `RM_ERR_IO` (the directory cannot be created, read or written), `RM_ERR_CORRUPTION`,
///   `RM_ERR_ROCKSDB` (any other RocksDB status).
/// - `RM_ERR_CAPACITY`: the process's table of live handles is full.
/// - `RM_ERR_PANIC`: a bug inside resman, caught at the boundary.
///
/// # Safety
/// `name` and `path` are NUL-terminated strings; `cf_names` points to `n_cfs` NUL-terminated
/// strings and `out_cfs` to `n_cfs` writable `uint64_t` (both may be NULL when `n_cfs` is 0);
/// `out_db` to a writable `uint64_t`; `opts` is NULL or readable; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rm_db_open(
    manager: u64,
    name: *const c_char,
    path: *const c_char,
    opts: *const rm_db_options,
    cf_names: *const *const c_char,
    n_cfs: usize,
    out_db: *mut u64,
    out_cfs: *mut u64,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        check_cf_count(n_cfs)?;
        let mut cfs = Vec::with_capacity(n_cfs);
        if n_cfs > 0 {
            if cf_names.is_null() {
                return Err(Error::NullPointer("cf_names"));
            }
            for i in 0..n_cfs {
                // SAFETY: `cf_names` points to `n_cfs` pointers per the contract.
                let p = unsafe { *cf_names.add(i) };
                // SAFETY: each is NUL-terminated per the contract.
                cfs.push(CfSpec::new(unsafe { c_str(p, "cf_names[i]") }?));
            }
        }
        // SAFETY: forwarded contract.
        unsafe { open(manager, name, path, opts, &cfs, out_db, out_cfs) }
    })
}

/// Like `rm_db_open`, with options per column family: `cfs` points to `n_cfs` entries, each a
/// name and its compression. Thread-safe.
///
/// Errors: those of `rm_db_open`, with `cfs` in place of `cf_names`: `RM_ERR_NULL_POINTER`
/// also for `cfs` or one of `cfs[i].name` NULL (with `n_cfs` > 0), `RM_ERR_INVALID_UTF8` for
/// a `cfs[i].name` that is not UTF-8, and `RM_ERR_INVALID_ARGUMENT` also for an unknown
/// `cfs[i].compression`.
///
/// # Safety
/// As for `rm_db_open`, with `cfs` pointing to `n_cfs` readable `rm_cf_options` whose names
/// are NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn rm_db_open_cf(
    manager: u64,
    name: *const c_char,
    path: *const c_char,
    opts: *const rm_db_options,
    cfs: *const rm_cf_options,
    n_cfs: usize,
    out_db: *mut u64,
    out_cfs: *mut u64,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        check_cf_count(n_cfs)?;
        let mut specs = Vec::with_capacity(n_cfs);
        if n_cfs > 0 {
            if cfs.is_null() {
                return Err(Error::NullPointer("cfs"));
            }
            for i in 0..n_cfs {
                // SAFETY: `cfs` points to `n_cfs` readable entries per the contract.
                let c = unsafe { *cfs.add(i) };
                specs.push(CfSpec {
                    // SAFETY: NUL-terminated per the contract.
                    name: unsafe { c_str(c.name, "cfs[i].name") }?,
                    compression: compression(c.compression, "cfs[i].compression")?,
                });
            }
        }
        // SAFETY: forwarded contract.
        unsafe { open(manager, name, path, opts, &specs, out_db, out_cfs) }
    })
}

fn check_cf_count(n: usize) -> Result<()> {
    if n > RM_MAX_COLUMN_FAMILIES {
        return Err(Error::InvalidArgument(format!(
            "{n} column families; the limit is {RM_MAX_COLUMN_FAMILIES}"
        )));
    }
    Ok(())
}

/// The shared part of the two opens.
///
/// # Safety
/// As for `rm_db_open` (`out_cfs` has room for `cfs.len()` handles).
unsafe fn open(
    manager: u64,
    name: *const c_char,
    path: *const c_char,
    opts: *const rm_db_options,
    cfs: &[CfSpec<'_>],
    out_db: *mut u64,
    out_cfs: *mut u64,
) -> Result<()> {
    let out_db = out_ptr(out_db, "out_db")?;
    if !cfs.is_empty() {
        out_ptr(out_cfs, "out_cfs")?;
    }
    // SAFETY: NUL-terminated per the contract.
    let name = unsafe { c_str(name, "name") }?;
    // SAFETY: NUL-terminated per the contract.
    let path = unsafe { c_str(path, "path") }?;
    let options = if opts.is_null() {
        DbOptions::default()
    } else {
        // SAFETY: non-NULL and readable per the contract; every bit pattern of its fields is
        // a valid value (they are integers).
        from_c(&unsafe { *opts })?
    };
    let opened = rocks::open(manager, name, Path::new(path), cfs, &options)?;
    // SAFETY: checked non-NULL; writable per the contract.
    unsafe { put_out(out_db, opened.db) };
    for (i, h) in opened.column_families.iter().enumerate() {
        // SAFETY: `out_cfs` has room for `cfs.len()` values per the contract, i < that.
        unsafe { put_out(out_cfs.add(i), *h) };
    }
    Ok(())
}

/// Writes RocksDB's memory figures for DB `db` into `*out` (only on success). Thread-safe.
///
/// Errors: `RM_ERR_NULL_POINTER` (`out` NULL); on `db`: `RM_ERR_INVALID_HANDLE` (0, or a
/// number never issued), `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND` (not a DB),
/// `RM_ERR_CLOSED` (the DB is closed or its own close has begun: a close or cleanup begins it
/// only after every dependent of the DB, its column families included, has finished closing;
/// until then this works); RocksDB's status (`RM_ERR_IO`, `RM_ERR_CORRUPTION`,
/// `RM_ERR_INVALID_ARGUMENT`, `RM_ERR_ROCKSDB`); `RM_ERR_PANIC`.
///
/// # Safety
/// `out` points to a writable `rm_memory`; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rm_db_memory(
    db: u64,
    out: *mut rm_memory,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        let out = out_ptr(out, "out")?;
        let m = rocks::memory(db)?;
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe {
            put_out(
                out,
                rm_memory {
                    mem_table_total: m.mem_table_total,
                    mem_table_unflushed: m.mem_table_unflushed,
                    table_readers: m.table_readers,
                    block_cache: m.block_cache,
                },
            )
        };
        Ok(())
    })
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
    // SAFETY: forwarded contract.
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
        // SAFETY: readable per the contract (checked for NULL inside).
        let key = unsafe { bytes(key, key_len, "key") }?;
        // SAFETY: readable per the contract (checked for NULL inside).
        let value = unsafe { bytes(value, value_len, "value") }?;
        rocks::put_opt(cf, key, value, write_flags)
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
    // SAFETY: forwarded contract.
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
        // SAFETY: readable per the contract (checked for NULL inside).
        let key = unsafe { bytes(key, key_len, "key") }?;
        rocks::delete_opt(cf, key, write_flags)
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
    // SAFETY: forwarded contract.
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
        if overlaps(key, key_len, buf, buf_cap) {
            return Err(Error::InvalidArgument("key and buf overlap".into()));
        }
        // SAFETY: readable per the contract (checked for NULL inside).
        let key = unsafe { bytes(key, key_len, "key") }?;
        // SAFETY: writable, and not overlapping `key` (checked above).
        let buf = unsafe { buffer(buf, buf_cap, "buf") }?;
        let result = rocks::get_opt(cf, snapshot, read_flags, key, buf);
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { write_len(out_len, &result) };
        result.map(|_| ())
    })
}

/// Writes the length of a buffer-filling result (found, or needed) to `out`.
///
/// # Safety
/// `out` is non-NULL and writable.
unsafe fn write_len(out: *mut usize, result: &Result<usize>) {
    let n = match result {
        Ok(n) => Some(*n),
        Err(Error::BufferTooSmall { needed }) => Some(*needed),
        Err(_) => None,
    };
    if let Some(n) = n {
        // SAFETY: per contract.
        unsafe { put_out(out, n) };
    }
}

fn overlaps(a: *const u8, a_len: usize, b: *mut u8, b_len: usize) -> bool {
    if a_len == 0 || b_len == 0 || a.is_null() || b.is_null() {
        return false;
    }
    let (a, b) = (a as usize, b as usize);
    a < b.saturating_add(b_len) && b < a.saturating_add(a_len)
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
        if n_keys > RM_MAX_MULTI_GET_KEYS {
            return Err(Error::InvalidArgument(format!(
                "{n_keys} keys; the limit is {RM_MAX_MULTI_GET_KEYS}"
            )));
        }
        if n_cfs > n_keys.max(1) {
            return Err(Error::InvalidArgument(format!(
                "{n_cfs} column families for {n_keys} keys: pass one, or one per key"
            )));
        }
        if n_keys == 0 {
            if !out_needed.is_null() {
                // SAFETY: non-NULL and writable per the contract.
                unsafe { put_out(out_needed, 0) };
            }
            return Ok(());
        }
        if n_cfs == 0 {
            return Err(Error::InvalidArgument(
                "no column family given: pass one, or one per key".into(),
            ));
        }
        // SAFETY: `n_cfs` readable u64 per the contract (bounded by n_keys above).
        let cfs = unsafe { u64s(cfs, n_cfs, "cfs") }?;
        let out_values = out_ptr(out_values, "out_values")?;
        if key_lens.is_null() {
            return Err(Error::NullPointer("key_lens"));
        }
        if !key_lens.is_aligned() || !out_values.is_aligned() {
            return Err(Error::InvalidArgument(
                "key_lens and out_values must be aligned".into(),
            ));
        }
        // SAFETY: non-NULL, aligned, `n_keys` readable size_t per the contract.
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
        // SAFETY: `total` readable bytes per the contract (checked for NULL inside).
        let all = unsafe { bytes(keys, total, "keys") }?;
        // SAFETY: writable, and not overlapping the keys (checked above).
        let buf = unsafe { buffer(buf, buf_cap, "buf") }?;
        let mut split = Vec::with_capacity(n_keys);
        let mut at = 0;
        for &l in lens {
            split.push(&all[at..at + l]);
            at += l;
        }
        let (slots, needed) = multiget::multi_get(cfs, snapshot, read_flags, &split, buf)?;
        let mut first_error: Option<Error> = None;
        let mut too_small = false;
        for (i, slot) in slots.into_iter().enumerate() {
            let v = match slot {
                Slot::Found { offset, len } => rm_value {
                    code: rm_result::RM_OK,
                    offset,
                    len,
                },
                Slot::NotFound => rm_value {
                    code: rm_result::RM_ERR_NOT_FOUND,
                    offset: 0,
                    len: 0,
                },
                Slot::TooSmall { len } => {
                    too_small = true;
                    rm_value {
                        code: rm_result::RM_ERR_BUFFER_TOO_SMALL,
                        offset: 0,
                        len,
                    }
                }
                Slot::Failed(e) => {
                    let code = e.code();
                    first_error.get_or_insert_with(|| e.context(&format!("key {i}")));
                    rm_value {
                        code,
                        offset: 0,
                        len: 0,
                    }
                }
            };
            // SAFETY: `out_values` has room for `n_keys` entries per the contract; i < n_keys.
            unsafe { put_out(out_values.add(i), v) };
        }
        if !out_needed.is_null() {
            // SAFETY: non-NULL and writable per the contract.
            unsafe { put_out(out_needed, needed) };
        }
        match (first_error, too_small) {
            (Some(e), _) => Err(e),
            (None, true) => Err(Error::BufferTooSmall { needed }),
            (None, false) => Ok(()),
        }
    })
}

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
        let h = batch::create(db)?;
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { put_out(out, h) };
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
        // SAFETY: readable per the contract (checked for NULL inside).
        let key = unsafe { bytes(key, key_len, "key") }?;
        // SAFETY: readable per the contract (checked for NULL inside).
        let value = unsafe { bytes(value, value_len, "value") }?;
        batch::add(batch, cf, Op::Put(key, value))
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
        // SAFETY: readable per the contract (checked for NULL inside).
        let key = unsafe { bytes(key, key_len, "key") }?;
        batch::add(batch, cf, Op::Delete(key))
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
        // SAFETY: readable per the contract (checked for NULL inside).
        let begin = unsafe { bytes(begin, begin_len, "begin") }?;
        // SAFETY: readable per the contract (checked for NULL inside).
        let end = unsafe { bytes(end, end_len, "end") }?;
        batch::add(batch, cf, Op::DeleteRange(begin, end))
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
    boundary(err, || batch::clear(batch))
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
        let n = batch::count(batch)?;
        // SAFETY: checked non-NULL; writable per the contract.
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
    boundary(err, || batch::write(batch, write_flags))
}

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
        let h = crate::rocks::snapshot::create(db)?;
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { put_out(out, h) };
        Ok(())
    })
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
        // SAFETY: NULL (no bound) or `lower_len` readable bytes per the contract.
        let lower = unsafe { bound(lower, lower_len, "lower") }?;
        // SAFETY: NULL (no bound) or `upper_len` readable bytes per the contract.
        let upper = unsafe { bound(upper, upper_len, "upper") }?;
        let h = iter::create(
            cf,
            &IterOptions {
                snapshot,
                flags: read_flags,
                lower,
                upper,
            },
        )?;
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { put_out(out, h) };
        Ok(())
    })
}

/// An optional bound: NULL is none.
///
/// # Safety
/// `p` is NULL or points to `len` readable bytes.
unsafe fn bound<'a>(p: *const u8, len: usize, what: &'static str) -> Result<Option<&'a [u8]>> {
    if p.is_null() {
        if len != 0 {
            return Err(Error::NullPointer(what));
        }
        return Ok(None);
    }
    // SAFETY: per contract.
    unsafe { bytes(p, len, what) }.map(Some)
}

/// Writes whether the iterator is on an entry to `*out_valid` (when not NULL).
///
/// # Safety
/// `out_valid` is NULL or writable.
unsafe fn put_valid(out_valid: *mut bool, result: Result<bool>) -> Result<()> {
    let valid = result?;
    if !out_valid.is_null() {
        // SAFETY: per contract.
        unsafe { put_out(out_valid, valid) };
    }
    Ok(())
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
    // SAFETY: forwarded contract.
    boundary(err, || unsafe {
        put_valid(out_valid, iter::seek(iter, Seek::First))
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
    // SAFETY: forwarded contract.
    boundary(err, || unsafe {
        put_valid(out_valid, iter::seek(iter, Seek::Last))
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
    // SAFETY: forwarded contract.
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
    // SAFETY: forwarded contract.
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
        // SAFETY: readable per the contract (checked for NULL inside).
        let key = unsafe { bytes(key, key_len, "key") }?;
        // SAFETY: forwarded contract.
        unsafe { put_valid(out_valid, iter::seek(iter, how(key))) }
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
    // SAFETY: forwarded contract.
    boundary(err, || unsafe {
        put_valid(out_valid, iter::step(iter, true))
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
    // SAFETY: forwarded contract.
    boundary(err, || unsafe {
        put_valid(out_valid, iter::step(iter, false))
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
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { put_valid(out, iter::valid(iter)) }
    })
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
    // SAFETY: forwarded contract.
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
    // SAFETY: forwarded contract.
    boundary(err, || unsafe {
        read_current(iter, false, buf, buf_cap, out_len)
    })
}

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
    // SAFETY: writable per the contract (checked for NULL inside).
    let buf = unsafe { buffer(buf, buf_cap, "buf") }?;
    let result = iter::read(iter, key, buf);
    // SAFETY: checked non-NULL; writable per the contract.
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
        // SAFETY: writable per the contract (checked for NULL inside), not overlapping.
        let kb = unsafe { buffer(key_buf, key_cap, "key_buf") }?;
        // SAFETY: as above.
        let vb = unsafe { buffer(value_buf, value_cap, "value_buf") }?;
        let e = iter::entry(iter, kb, vb)?;
        // SAFETY: checked non-NULL; writable per the contract.
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
    // SAFETY: the caller's contract is this function's.
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
    // SAFETY: the caller's contract is this function's.
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
    // SAFETY: writable per the contract (checked for NULL inside), not overlapping out_lens.
    let buf = unsafe { buffer(buf, buf_cap, "buf") }?;
    let (count, result) = iter::read_batch(iter, forward, buf, max_entries, |i, k, v| {
        // SAFETY: `i < max_entries` (read_batch records at most `max` entries), out_lens is
        // non-NULL, aligned and holds `max_entries` writable entries per the contract.
        unsafe {
            put_out(
                out_lens.add(i),
                rm_entry_len {
                    key_len: k,
                    value_len: v,
                },
            )
        }
    });
    // SAFETY: checked non-NULL; writable per the contract.
    unsafe { put_out(out_count, count) };
    let batch = result?;
    if !out_valid.is_null() {
        // SAFETY: non-NULL and writable per the contract.
        unsafe { put_out(out_valid, batch.valid) };
    }
    Ok(())
}
