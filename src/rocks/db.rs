//! The DB and column-family resources, open, and the point operations.

use super::dirlock::DirGuard;
use super::raw::{self, ReadOpts, Target, WriteOpts};
use crate::error::{Error, Result};
use crate::handle::Kind;
use crate::manager::{self, CloseMode, Resource, MAX_NAME_LEN};
use crate::monitor::ResourceMemory;
use parking_lot::Mutex;
use rocksdb::{
    AsColumnFamilyRef, AsRawPtr, BlockBasedOptions, Cache, ColumnFamilyDescriptor,
    DBCompressionType, Options, DB,
};
use std::any::Any;
use std::cell::UnsafeCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Compression of a column family's SST files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Lz4,
    Zstd,
}

impl Compression {
    fn rocks(self) -> DBCompressionType {
        match self {
            Compression::None => DBCompressionType::None,
            Compression::Lz4 => DBCompressionType::Lz4,
            Compression::Zstd => DBCompressionType::Zstd,
        }
    }
}

/// Smallest accepted memtable size.
pub const MIN_WRITE_BUFFER_SIZE: usize = 64 << 10;
/// Largest accepted memtable size (RocksDB's own ceiling is 64 GiB on 64-bit).
pub const MAX_WRITE_BUFFER_SIZE: usize = 64 << 30;

/// Options for [`open`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbOptions {
    /// Create the DB if the directory holds none. Default true.
    pub create_if_missing: bool,
    /// Create requested column families that do not exist yet. Default true.
    pub create_missing_column_families: bool,
    /// Fail if a DB already exists at the path. Default false.
    pub error_if_exists: bool,
    /// Bytes per memtable (per column family). Default 64 MiB.
    pub write_buffer_size: usize,
    /// Table files kept open; -1 keeps all open. Default -1.
    pub max_open_files: i32,
    /// One LRU block cache shared by every column family, in bytes; 0 disables block caching.
    /// Default 32 MiB.
    pub block_cache_size: usize,
    /// Compression of every column family that does not set its own. Default LZ4.
    pub compression: Compression,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            create_if_missing: true,
            create_missing_column_families: true,
            error_if_exists: false,
            write_buffer_size: 64 << 20,
            max_open_files: -1,
            block_cache_size: 32 << 20,
            compression: Compression::Lz4,
        }
    }
}

impl DbOptions {
    fn validate(&self) -> Result<()> {
        if !(MIN_WRITE_BUFFER_SIZE..=MAX_WRITE_BUFFER_SIZE).contains(&self.write_buffer_size) {
            return Err(Error::InvalidArgument(format!(
                "write_buffer_size {} is outside {MIN_WRITE_BUFFER_SIZE}..={MAX_WRITE_BUFFER_SIZE} bytes",
                self.write_buffer_size
            )));
        }
        if self.max_open_files == 0 || self.max_open_files < -1 {
            return Err(Error::InvalidArgument(format!(
                "max_open_files {} must be -1 (no limit) or positive",
                self.max_open_files
            )));
        }
        if self.block_cache_size > MAX_WRITE_BUFFER_SIZE * 16 {
            return Err(Error::InvalidArgument(format!(
                "block_cache_size {} is larger than 1 TiB",
                self.block_cache_size
            )));
        }
        Ok(())
    }
}

/// One column family asked for at open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CfSpec<'a> {
    pub name: &'a str,
    /// None: the DB's compression.
    pub compression: Option<Compression>,
}

impl<'a> CfSpec<'a> {
    pub fn new(name: &'a str) -> CfSpec<'a> {
        CfSpec {
            name,
            compression: None,
        }
    }
}

/// What [`open`] registered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    /// The DB's handle.
    pub db: u64,
    /// One handle per requested column family, in the order they were asked for.
    pub column_families: Vec<u64>,
}

/// State shared by a DB resource and everything that depends on it.
pub(crate) struct DbInner {
    db: UnsafeCell<Option<DB>>,
    /// This process's claim on the DB directory (see `super::dirlock`), released right after
    /// the DB is dropped: by the close, or, when the DB is dropped with this struct, by field
    /// order (`db` is declared first, so it is dropped first). None when the directory did not
    /// exist as one when it was checked (RocksDB then opened nothing).
    dir: Mutex<Option<DirGuard>>,
    /// The manager the DB (and all its children) are registered in.
    pub(crate) manager: u64,
    pub(crate) name: String,
    path: PathBuf,
    /// Every column family the DB was opened with (the graceful close flushes each).
    all_cfs: Vec<String>,
    /// Read options per flag combination (no per-call allocation).
    pub(crate) read: [ReadOpts; 4],
    /// Write options per valid flag combination.
    write: [WriteOpts; 3],
    /// The block cache shared by every column family (for the memory figures).
    cache: Option<Cache>,
    /// Numbers the names of iterators, snapshots and batches.
    children: AtomicU64,
}

// SAFETY: `DB`, `Cache` and the option wrappers are Send + Sync. The only non-Sync part is the
// UnsafeCell, whose single mutation (`take` in `DbResource::close`) cannot overlap any read:
// see the module documentation of `crate::rocks` for the lease argument.
unsafe impl Sync for DbInner {}

impl DbInner {
    /// The open DB.
    ///
    /// # Safety
    /// The caller holds a lease on the DB entry or on an entry that (transitively) pins it.
    pub(crate) unsafe fn db(&self) -> Result<&DB> {
        // SAFETY: per this function's contract the close that takes the DB cannot run while
        // the caller's lease is held, so this shared read does not overlap the mutation.
        let db = unsafe { (*self.db.get()).as_ref() };
        db.ok_or_else(|| Error::Closed(format!("the DB at {} is closed", self.path.display())))
    }

    /// The open DB as the C API takes it.
    ///
    /// # Safety
    /// As for [`DbInner::db`]; the pointer is only valid while that lease is held.
    pub(crate) unsafe fn raw(&self) -> Result<*mut librocksdb_sys::rocksdb_t> {
        // SAFETY: per contract; as_raw_ptr only reads the DB's pointer field.
        unsafe { self.db().map(|db| db.as_raw_ptr()) }
    }

    /// Marks the directory free in this process. Called only once the DB has been dropped.
    fn release_dir(&self) {
        drop(self.dir.lock().take());
    }

    pub(crate) fn write_opts(&self, flags: u32) -> Result<&WriteOpts> {
        Ok(&self.write[raw::write_index(flags)?])
    }

    /// A name for a new child ("db/iterator#3") that is free in the manager right now.
    pub(crate) fn child_name(&self, what: &str) -> Result<String> {
        let mut last = None;
        for _ in 0..16 {
            let n = self.children.fetch_add(1, Ordering::Relaxed) + 1;
            let suffix = format!("/{what}#{n}");
            // A DB name near the length limit is cut so the child's name still fits.
            let mut keep = self.name.len().min(MAX_NAME_LEN - suffix.len());
            while !self.name.is_char_boundary(keep) {
                keep -= 1;
            }
            let name = format!("{}{suffix}", &self.name[..keep]);
            match manager::check_names_free(self.manager, std::slice::from_ref(&name)) {
                Ok(()) => return Ok(name),
                Err(Error::DuplicateName(m)) => last = Some(m),
                Err(e) => return Err(e),
            }
        }
        Err(Error::DuplicateName(last.unwrap_or_default()))
    }

    /// RocksDB's memory figures for this DB.
    ///
    /// # Safety
    /// As for [`DbInner::db`].
    pub(crate) unsafe fn memory(&self) -> Result<Memory> {
        // SAFETY: per contract.
        let db = unsafe { self.db() }?;
        let caches: Vec<&Cache> = self.cache.iter().collect();
        let m = rocksdb::perf::get_memory_usage_stats(Some(&[db]), Some(&caches))
            .map_err(rocks_error)?;
        Ok(Memory {
            mem_table_total: m.mem_table_total,
            mem_table_unflushed: m.mem_table_unflushed,
            table_readers: m.mem_table_readers_total,
            block_cache: m.cache_total,
        })
    }
}

/// A DB's memory use, from RocksDB, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Memory {
    /// Memtables, flushed-but-pinned ones included.
    pub mem_table_total: u64,
    /// Memtables not yet flushed.
    pub mem_table_unflushed: u64,
    /// Table readers (indexes and filters held outside the block cache).
    pub table_readers: u64,
    /// The block cache (shared by the DB's column families).
    pub block_cache: u64,
}

pub(crate) struct DbResource(pub(crate) Arc<DbInner>);

impl Resource for DbResource {
    fn close(&self, mode: CloseMode) -> std::result::Result<(), String> {
        // SAFETY: the manager calls `close` when no lease on this DB is held and none can be
        // taken, never twice at once; every dependent pins the DB until its own close.
        // Nothing else can be reading the cell (see `crate::rocks`).
        let cell = unsafe { &mut *self.0.db.get() };
        let Some(db) = cell.as_ref() else {
            self.0.release_dir();
            return Ok(());
        };
        match mode {
            CloseMode::Graceful => {
                // Close does not flush memtables when the WAL is on, and does not sync the WAL:
                // do both, for every column family, so a reopen replays nothing. On failure
                // the DB stays open for the manager's retry; if every attempt fails, the
                // manager drops it unflushed (its writes are in the WAL).
                let mut errors = Vec::new();
                for name in &self.0.all_cfs {
                    if let Some(cf) = db.cf_handle(name) {
                        if let Err(e) = db.flush_cf(cf) {
                            errors.push(format!("flush of column family '{name}': {e}"));
                        }
                    }
                }
                if let Err(e) = db.flush_wal(true) {
                    errors.push(format!("WAL sync: {e}"));
                }
                if !errors.is_empty() {
                    return Err(format!(
                        "DB at {}: {} (still open: the close is retried, and if every attempt fails the DB is closed unflushed, its writes kept in the WAL)",
                        self.0.path.display(),
                        errors.join("; ")
                    ));
                }
                // Let running background jobs finish, and start no new ones.
                db.cancel_all_background_work(true);
            }
            // Acknowledged writes are in the WAL already (the WAL was on) or were asked to
            // skip it; background work is told to stop without waiting for it.
            CloseMode::Forced => db.cancel_all_background_work(false),
        }
        drop(cell.take());
        // Only now that RocksDB has closed the files may another open of the directory begin.
        self.0.release_dir();
        Ok(())
    }

    /// Every close attempt failed (a flush on a full disk): the DB is closed unflushed now,
    /// its writes kept in the WAL, so its directory lock is released before the failure is
    /// reported and the caller can reopen the directory at once.
    fn abandon(&self) {
        // SAFETY: as for `close`: the manager calls this right after the last close attempt,
        // with no lease held or obtainable and no other close running.
        let cell = unsafe { &mut *self.0.db.get() };
        if let Some(db) = cell.as_ref() {
            db.cancel_all_background_work(false);
        }
        drop(cell.take());
        // After the DB, never before (as in `close`).
        self.0.release_dir();
    }

    fn memory(&self) -> Option<ResourceMemory> {
        // SAFETY: the manager calls `memory` under a lease on this DB's entry.
        let m = unsafe { self.0.memory() }.ok()?;
        Some(ResourceMemory {
            mem_table_total: m.mem_table_total,
            mem_table_unflushed: m.mem_table_unflushed,
            table_readers: m.table_readers,
            block_cache: m.block_cache,
        })
    }

    fn details(&self) -> Option<serde_json::Value> {
        // SAFETY: the manager calls `details` under a lease on this DB's entry.
        let memory = unsafe { self.0.memory() }.ok();
        Some(serde_json::json!({
            "path": self.0.path.display().to_string(),
            "column_families": self.0.all_cfs,
            "memory": memory,
        }))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The native handle of one column family.
#[derive(Clone, Copy)]
pub(crate) struct CfPtr(pub(crate) *mut librocksdb_sys::rocksdb_column_family_handle_t);

// SAFETY: the pointer names a RocksDB ColumnFamilyHandle, which is immutable after open and
// safe to use from any thread; it is only dereferenced by RocksDB, under a lease that keeps the
// owning DB (which destroys the handle when it closes) open.
unsafe impl Send for CfPtr {}
// SAFETY: as above; shared use from several threads is what RocksDB supports.
unsafe impl Sync for CfPtr {}

impl AsColumnFamilyRef for CfPtr {
    fn inner(&self) -> *mut librocksdb_sys::rocksdb_column_family_handle_t {
        self.0
    }
}

pub(crate) struct CfResource {
    pub(crate) db: Arc<DbInner>,
    pub(crate) cf: CfPtr,
}

impl CfResource {
    /// The DB and family as the C API takes them.
    ///
    /// # Safety
    /// The caller holds a lease on this column family (which pins its DB).
    pub(crate) unsafe fn target(&self) -> Result<Target> {
        Ok(Target {
            // SAFETY: per contract.
            db: unsafe { self.db.raw() }?,
            cf: self.cf.0,
        })
    }
}

impl Resource for CfResource {
    fn close(&self, _mode: CloseMode) -> std::result::Result<(), String> {
        // The native handle belongs to the DB, which destroys it when it closes; this entry's
        // pin on the DB is released by the manager right after this returns.
        Ok(())
    }

    /// Part of its DB: stays usable until the DB's other dependents have closed.
    fn part_of_dependencies(&self) -> bool {
        true
    }

    /// A DB is never closed under a child it could not destroy (see `Resource`).
    fn releases_dependencies_on_failure(&self) -> bool {
        false
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Maps a RocksDB status message ("IO error: ...", "Corruption: ...") to an error.
pub(crate) fn classify(msg: String) -> Error {
    if msg.starts_with("Failed to create RocksDB directory") {
        return Error::Io(msg);
    }
    if msg.starts_with("IO error") {
        if msg.contains("/LOCK") || msg.contains("lock hold") {
            return Error::Locked(format!(
                "{msg} (another process or another open DB holds this directory)"
            ));
        }
        return Error::Io(msg);
    }
    if msg.starts_with("Corruption") {
        return Error::Corruption(msg);
    }
    if msg.starts_with("Invalid argument") {
        return Error::InvalidArgument(format!("RocksDB: {msg}"));
    }
    Error::RocksDb(msg)
}

fn rocks_error(e: rocksdb::Error) -> Error {
    classify(e.into_string())
}

/// Opens (creating as asked) the DB at `path` with the column families `cfs`, and registers
/// it as `name` in manager `mgr`, each column family as `name/cf`. Column families that exist
/// on disk but are not asked for are opened too (RocksDB requires it) but get no handle.
/// On any failure nothing stays registered or open.
pub fn open(
    mgr: u64,
    name: &str,
    path: &Path,
    cfs: &[CfSpec<'_>],
    opts: &DbOptions,
) -> Result<Opened> {
    if path.as_os_str().is_empty() {
        return Err(Error::InvalidArgument("path must not be empty".into()));
    }
    opts.validate()?;
    // The DB's name is the caller's and has the usual limit; its column families are
    // registered as `name/cf`, which may be up to twice as long (see MAX_QUALIFIED_NAME_LEN).
    manager::validate_name(name, MAX_NAME_LEN)?;
    for (i, cf) in cfs.iter().enumerate() {
        if cf.name.is_empty() || cf.name.len() > MAX_NAME_LEN {
            return Err(Error::InvalidArgument(format!(
                "column family {i}: name must be 1 to {MAX_NAME_LEN} bytes"
            )));
        }
        if cfs[..i].iter().any(|c| c.name == cf.name) {
            return Err(Error::InvalidArgument(format!(
                "column family '{}' is listed twice",
                cf.name
            )));
        }
    }
    let cf_names: Vec<String> = cfs.iter().map(|cf| format!("{name}/{}", cf.name)).collect();
    // Fail on taken names before touching the disk.
    let mut all_names = vec![name.to_owned()];
    all_names.extend(cf_names.iter().cloned());
    manager::check_names_free(mgr, &all_names)?;

    // One open per directory per process, whatever the spelling of its path (see
    // `super::dirlock`): the directory is claimed by its identity before RocksDB sees it.
    // rust-rocksdb runs `create_dir_all` on the path before every open (whatever
    // create_if_missing says), so doing it here first changes nothing on disk and gives the
    // directory an identity to claim; its error, if any, is left for RocksDB's own open to
    // report as before. Declared before `db`, the guard is dropped after it on every early
    // return below.
    let _ = std::fs::create_dir_all(path);
    let dir = DirGuard::acquire(path, name, mgr)?;

    let cache = (opts.block_cache_size > 0).then(|| Cache::new_lru_cache(opts.block_cache_size));
    let mut table = BlockBasedOptions::default();
    match &cache {
        Some(c) => table.set_block_cache(c),
        None => table.disable_cache(),
    }
    let cf_options = |compression: Compression| {
        let mut o = Options::default();
        o.set_write_buffer_size(opts.write_buffer_size);
        o.set_compression_type(compression.rocks());
        o.set_block_based_table_factory(&table);
        o
    };
    let mut o = cf_options(opts.compression);
    o.create_if_missing(opts.create_if_missing);
    o.create_missing_column_families(opts.create_missing_column_families);
    o.set_error_if_exists(opts.error_if_exists);
    o.set_max_open_files(opts.max_open_files);
    // avoid_flush_during_shutdown stays off (RocksDB's default): writes made without the WAL
    // are flushed when the DB closes instead of being dropped.

    let mut all_cfs = vec!["default".to_owned()];
    // Only list what is there when there is a DB: rust-rocksdb's list_cf leaks RocksDB's
    // (empty) result array on its error path. No DB yet is for open to report (or create).
    let existing = if path.join("CURRENT").exists() {
        DB::list_cf(&o, path).map_err(rocks_error)?
    } else {
        Vec::new()
    };
    for existing in existing {
        if !all_cfs.contains(&existing) {
            all_cfs.push(existing);
        }
    }
    for cf in cfs {
        if !all_cfs.iter().any(|c| c == cf.name) {
            all_cfs.push(cf.name.to_owned());
        }
    }
    let descriptors: Vec<ColumnFamilyDescriptor> = all_cfs
        .iter()
        .map(|n| {
            let compression = cfs
                .iter()
                .find(|c| c.name == n)
                .and_then(|c| c.compression)
                .unwrap_or(opts.compression);
            ColumnFamilyDescriptor::new(n, cf_options(compression))
        })
        .collect();
    let db = DB::open_cf_descriptors(&o, path, descriptors).map_err(rocks_error)?;
    let mut ptrs = Vec::with_capacity(cfs.len());
    for cf in cfs {
        match db.cf_handle(cf.name) {
            Some(h) => ptrs.push(CfPtr(h.inner())),
            None => {
                return Err(Error::RocksDb(format!(
                    "column family '{}' missing after open",
                    cf.name
                )))
            }
        }
    }
    let inner = Arc::new(DbInner {
        db: UnsafeCell::new(Some(db)),
        dir: Mutex::new(dir),
        manager: mgr,
        name: name.to_owned(),
        path: path.to_owned(),
        all_cfs,
        read: ReadOpts::all(std::ptr::null()),
        write: WriteOpts::all(),
        cache,
        children: AtomicU64::new(0),
    });
    // If registration fails, dropping `inner` (the last reference) closes the DB, then
    // releases the directory (field order).
    let db_handle = manager::register(
        mgr,
        name,
        Kind::Db,
        Box::new(DbResource(Arc::clone(&inner))),
        &[],
    )?
    .raw();
    let mut handles = Vec::with_capacity(cfs.len());
    for (cf_name, cf) in cf_names.iter().zip(ptrs) {
        let res = CfResource {
            db: Arc::clone(&inner),
            cf,
        };
        match manager::register(
            mgr,
            cf_name,
            Kind::ColumnFamily,
            Box::new(res),
            &[db_handle],
        ) {
            Ok(h) => handles.push(h.raw()),
            Err(e) => {
                // Roll back: closes the column families registered so far, then the DB.
                let _ = manager::close(mgr, db_handle, CloseMode::Forced, None);
                return Err(e);
            }
        }
    }
    Ok(Opened {
        db: db_handle,
        column_families: handles,
    })
}

/// Registers a child (iterator, snapshot, batch) of a DB. A parent that began closing after
/// the caller's lease was taken refuses the new pin: to the caller that is the DB closing
/// under the call, so it is reported as `Closed`, like every operation a close refuses.
pub(crate) fn register_child(
    inner: &DbInner,
    name: &str,
    kind: Kind,
    res: Box<dyn Resource>,
    deps: &[u64],
) -> Result<u64> {
    manager::register(inner.manager, name, kind, res, deps)
        .map(|h| h.raw())
        .map_err(|e| match e {
            Error::DependencyClosed(m) => Error::Closed(m),
            other => other,
        })
}

/// Runs `f` with the column family `cf` leased for the duration.
pub(crate) fn with_cf<T>(cf: u64, f: impl FnOnce(&CfResource) -> Result<T>) -> Result<T> {
    let lease = manager::lease(cf, Kind::ColumnFamily)?;
    let Some(res) = lease.resource::<CfResource>() else {
        return Err(Error::WrongKind(format!(
            "handle {cf:#x} is not a RocksDB column family"
        )));
    };
    f(res)
}

/// Runs `f` with the DB `db` leased for the duration.
pub(crate) fn with_db<T>(db: u64, f: impl FnOnce(&Arc<DbInner>) -> Result<T>) -> Result<T> {
    let lease = manager::lease(db, Kind::Db)?;
    let Some(res) = lease.resource::<DbResource>() else {
        return Err(Error::WrongKind(format!(
            "handle {db:#x} is not a RocksDB DB"
        )));
    };
    f(&res.0)
}

/// Reads `key` into `out`. Returns the value's length; `BufferTooSmall { needed }` (nothing
/// copied) when it does not fit; `NotFound` when there is no such key. The value is copied
/// once, from RocksDB's pinned memory into `out`, and nothing is allocated.
pub fn get(cf: u64, key: &[u8], out: &mut [u8]) -> Result<usize> {
    get_opt(cf, 0, 0, key, out)
}

/// [`get`] at `snapshot` (0: the latest data) with read `flags` (`RM_READ_*`).
pub fn get_opt(cf: u64, snapshot: u64, flags: u32, key: &[u8], out: &mut [u8]) -> Result<usize> {
    let idx = raw::read_index(flags)?;
    with_cf(cf, |res| {
        // SAFETY: `with_cf` holds a lease on the column family for the call.
        let t = unsafe { res.target() }?;
        if snapshot == 0 {
            // SAFETY: t is open for the call (lease).
            return unsafe { raw::get_into(t, &res.db.read[idx], key, out) };
        }
        super::snapshot::with_snapshot(snapshot, &res.db, |snap| {
            // SAFETY: t is open (lease on the cf); the snapshot is leased too.
            unsafe { raw::get_into(t, &snap.read[idx], key, out) }
        })
    })
}

/// Reads `key` into a new vector (Rust convenience).
pub fn get_vec(cf: u64, key: &[u8]) -> Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    loop {
        match get(cf, key, &mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(Error::NotFound) => return Ok(None),
            Err(Error::BufferTooSmall { needed }) => buf.resize(needed, 0),
            Err(e) => return Err(e),
        }
    }
}

/// Writes `key` = `value` (WAL on, not synced: survives a process crash, not a power cut).
pub fn put(cf: u64, key: &[u8], value: &[u8]) -> Result<()> {
    put_opt(cf, key, value, 0)
}

/// [`put`] with write `flags` (`RM_WRITE_*`).
pub fn put_opt(cf: u64, key: &[u8], value: &[u8], flags: u32) -> Result<()> {
    write_one(cf, key, Some(value), flags)
}

/// Deletes `key` (no error when it does not exist).
pub fn delete(cf: u64, key: &[u8]) -> Result<()> {
    delete_opt(cf, key, 0)
}

/// [`delete`] with write `flags` (`RM_WRITE_*`).
pub fn delete_opt(cf: u64, key: &[u8], flags: u32) -> Result<()> {
    write_one(cf, key, None, flags)
}

fn write_one(cf: u64, key: &[u8], value: Option<&[u8]>, flags: u32) -> Result<()> {
    with_cf(cf, |res| {
        let wo = res.db.write_opts(flags)?;
        // SAFETY: `with_cf` holds a lease on the column family for the call.
        let t = unsafe { res.target() }?;
        // SAFETY: t is open for the call (lease).
        unsafe { raw::put_or_delete(t, wo, key, value) }
    })
}

/// RocksDB's memory figures for the DB `db`.
pub fn memory(db: u64) -> Result<Memory> {
    // SAFETY: `with_db` holds a lease on the DB for the call.
    with_db(db, |inner| unsafe { inner.memory() })
}

/// Reads an integer property ("rocksdb.estimate-num-keys", ...) of column family `cf`.
pub fn property_int(cf: u64, name: &str) -> Result<Option<u64>> {
    with_cf(cf, |res| {
        // SAFETY: `with_cf` holds a lease on the column family for the call.
        let db = unsafe { res.db.db() }?;
        db.property_int_value_cf(&res.cf, name).map_err(rocks_error)
    })
}
