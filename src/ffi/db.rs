//! DBs: their options, opening one with its column families, its memory figures.

use super::args::{array, at_most, c_str, out_ptr, put_out};
use super::boundary::{boundary, rm_error};
use crate::error::{rm_result, Error, Result};
use crate::handle::ManagerHandle;
use crate::rocks::{self, CfSpec, Compression, DbHandle, DbOptions};
use std::ffi::c_char;
use std::path::Path;

/// Largest number of column families `rm_db_open` and `rm_db_open_cf` take in one call.
pub const RM_MAX_COLUMN_FAMILIES: usize = 4096;
/// Smallest `write_buffer_size` accepted by `rm_db_open` (64 KiB).
pub const RM_MIN_WRITE_BUFFER_SIZE: u64 = 65_536;
/// Largest `write_buffer_size` accepted by `rm_db_open` (64 GiB).
pub const RM_MAX_WRITE_BUFFER_SIZE: u64 = 68_719_476_736;
const _: () = assert!(RM_MIN_WRITE_BUFFER_SIZE as usize == rocks::MIN_WRITE_BUFFER_SIZE);
const _: () = assert!(RM_MAX_WRITE_BUFFER_SIZE as usize == rocks::MAX_WRITE_BUFFER_SIZE);

/// Compression of a column family (`rm_cf_options.compression`): use `rm_db_options.compression`.
pub const RM_COMPRESSION_INHERIT: u32 = 0;
/// No compression.
pub const RM_COMPRESSION_NONE: u32 = 1;
/// LZ4 (the default).
pub const RM_COMPRESSION_LZ4: u32 = 2;
/// Zstandard.
pub const RM_COMPRESSION_ZSTD: u32 = 3;

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
        // SAFETY: `out` is not NULL (out_ptr above), and this function's contract makes a
        // non-NULL `out` a writable `rm_db_options`: put_out's contract.
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
/// - `RM_ERR_INVALID_ARGUMENT`: more than RM_MAX_COLUMN_FAMILIES column families;
///   `cf_names` not aligned for a pointer; an empty `path`; `name` or a column-family name
///   empty or longer than RM_MAX_NAME_LEN bytes; a column family listed twice; an option out
///   of range (see `rm_db_options`: `compression` must be _NONE, _LZ4 or _ZSTD); and
///   RocksDB's refusals: no DB with create_if_missing 0, a DB with error_if_exists 1, a
///   missing column family with create_missing_column_families 0.
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
        at_most(n_cfs, RM_MAX_COLUMN_FAMILIES, "column families")?;
        // SAFETY: this function's contract makes `cf_names` `n_cfs` readable pointers (NULL
        // allowed with 0), and `n_cfs` is at most RM_MAX_COLUMN_FAMILIES: array's contract.
        let names = unsafe { array(cf_names, n_cfs, "cf_names") }?;
        let mut cfs = Vec::with_capacity(n_cfs);
        for &p in names {
            // SAFETY: this function's contract makes each `cf_names[i]` a NUL-terminated
            // string valid for the call (c_str refuses NULL): c_str's contract.
            cfs.push(CfSpec::new(unsafe { c_str(p, "cf_names[i]") }?));
        }
        // SAFETY: `name`, `path`, `opts`, `out_db` and `out_cfs` come with this function's
        // contract, which is `open`'s; `out_cfs` has room for `n_cfs` = `cfs.len()` handles.
        unsafe { open(manager, name, path, opts, &cfs, out_db, out_cfs) }
    })
}

/// Like `rm_db_open`, with options per column family: `cfs` points to `n_cfs` entries, each a
/// name and its compression. Thread-safe.
///
/// Errors: those of `rm_db_open`, with `cfs` in place of `cf_names`: `RM_ERR_NULL_POINTER`
/// also for `cfs` or one of `cfs[i].name` NULL (with `n_cfs` > 0), `RM_ERR_INVALID_UTF8` for
/// a `cfs[i].name` that is not UTF-8, and `RM_ERR_INVALID_ARGUMENT` also for an unknown
/// `cfs[i].compression` or `cfs` not aligned for `rm_cf_options`.
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
        at_most(n_cfs, RM_MAX_COLUMN_FAMILIES, "column families")?;
        // SAFETY: this function's contract makes `cfs` `n_cfs` readable `rm_cf_options` (NULL
        // allowed with 0), whose fields are a pointer and an integer, so any bits the caller
        // wrote are valid values; `n_cfs` is at most RM_MAX_COLUMN_FAMILIES: array's contract.
        let entries = unsafe { array(cfs, n_cfs, "cfs") }?;
        let mut specs = Vec::with_capacity(n_cfs);
        for c in entries {
            specs.push(CfSpec {
                // SAFETY: this function's contract makes each `cfs[i].name` a NUL-terminated
                // string valid for the call (c_str refuses NULL).
                name: unsafe { c_str(c.name, "cfs[i].name") }?,
                compression: compression(c.compression, "cfs[i].compression")?,
            });
        }
        // SAFETY: `name`, `path`, `opts`, `out_db` and `out_cfs` come with this function's
        // contract, which is `open`'s; `out_cfs` has room for `n_cfs` = `specs.len()` handles.
        unsafe { open(manager, name, path, opts, &specs, out_db, out_cfs) }
    })
}

/// The shared part of the two opens: checks the other arguments, opens, writes the handles.
///
/// # Safety
/// `name` and `path` are NULL or NUL-terminated strings valid for the call; `opts` is NULL or
/// points to a readable `rm_db_options`; `out_db` is NULL or points to a writable `uint64_t`;
/// when `cfs` is not empty, `out_cfs` is NULL or points to `cfs.len()` writable `uint64_t`.
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
    // SAFETY: NULL or a NUL-terminated string valid for the call, by this function's
    // contract: c_str's contract.
    let name = unsafe { c_str(name, "name") }?;
    // SAFETY: as for `name`.
    let path = unsafe { c_str(path, "path") }?;
    let options = if opts.is_null() {
        DbOptions::default()
    } else {
        // SAFETY: `opts` is not NULL (this branch), so by this function's contract it points
        // to a readable `rm_db_options`; every bit pattern of its fields is a valid value
        // (they are integers).
        from_c(&unsafe { *opts })?
    };
    let opened = rocks::open(
        ManagerHandle::from_raw(manager),
        name,
        Path::new(path),
        cfs,
        &options,
    )?;
    // SAFETY: `out_db` is not NULL (out_ptr above), so by this function's contract it points
    // to a writable `uint64_t`.
    unsafe { put_out(out_db, opened.db.raw()) };
    for (i, h) in opened.column_families.iter().enumerate() {
        // SAFETY: there is one handle per entry of `cfs` (`rocks::open` returns them in
        // order), so `cfs` is not empty here and `out_cfs` was checked non-NULL above; by this
        // function's contract it points to `cfs.len()` writable `uint64_t`, and `i < cfs.len()`.
        unsafe { put_out(out_cfs.add(i), h.raw()) };
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
        let m = rocks::memory(DbHandle::from_raw(db))?;
        // SAFETY: `out` is not NULL (out_ptr above), and this function's contract makes it a
        // writable `rm_memory`: put_out's contract.
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
