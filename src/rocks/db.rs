//! The DB and column-family resources, the state a DB shares with everything that depends on
//! it, and the leases through which the other modules reach them.

use super::dirlock::DirGuard;
use super::raw::{self, ReadOpts, Target, WriteOpts};
use super::status::rocks_error;
use super::{CfHandle, DbHandle};
use crate::error::{Error, Result};
use crate::handle::{Handle, Kind};
use crate::manager::{self, CloseMode, Resource, MAX_NAME_LEN};
use crate::records::ResourceMemory;
use parking_lot::Mutex;
use rocksdb::{AsColumnFamilyRef, AsRawPtr, Cache, DB};
use std::any::Any;
use std::cell::UnsafeCell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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
// UnsafeCell, whose mutations (the `take` in `DbResource::close` and in `abandon`) cannot
// overlap any read: see the module documentation of `crate::rocks` for the lease argument.
unsafe impl Sync for DbInner {}

impl DbInner {
    /// The state of a DB just opened: `db`, the claim on its directory, and its names.
    pub(super) fn new(
        db: DB,
        dir: Option<DirGuard>,
        manager: u64,
        name: &str,
        path: PathBuf,
        all_cfs: Vec<String>,
        cache: Option<Cache>,
    ) -> DbInner {
        DbInner {
            db: UnsafeCell::new(Some(db)),
            dir: Mutex::new(dir),
            manager,
            name: name.to_owned(),
            path,
            all_cfs,
            // SAFETY: NULL: these options read the latest data, at no snapshot.
            read: unsafe { ReadOpts::all(std::ptr::null()) },
            write: WriteOpts::all(),
            cache,
            children: AtomicU64::new(0),
        }
    }

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
        // SAFETY: this function's contract is `db`'s (a lease that pins the DB); as_raw_ptr
        // only reads the DB's pointer field.
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
        // SAFETY: this function's contract is `db`'s: the caller holds a lease that pins the DB.
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

    /// Its record counts the iterators and snapshots its close swept along.
    fn collects_leaks(&self) -> bool {
        true
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
// SAFETY: as above: `&CfPtr` only hands out the pointer, and RocksDB supports using one
// column-family handle from several threads at once.
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
            // SAFETY: the caller's lease on this column family pins its DB (this function's
            // contract), which is `raw`'s contract.
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
        .map(Handle::raw)
        .map_err(|e| match e {
            Error::DependencyClosed(m) => Error::Closed(m),
            other => other,
        })
}

/// Runs `f` with the column family `cf` leased for the duration.
pub(crate) fn with_cf<T>(cf: CfHandle, f: impl FnOnce(&CfResource) -> Result<T>) -> Result<T> {
    let lease = manager::lease(cf.raw(), Kind::ColumnFamily)?;
    let Some(res) = lease.resource::<CfResource>() else {
        return Err(Error::WrongKind(format!(
            "handle {cf} is not a RocksDB column family"
        )));
    };
    f(res)
}

/// Runs `f` with the DB `db` leased for the duration.
pub(crate) fn with_db<T>(db: DbHandle, f: impl FnOnce(&Arc<DbInner>) -> Result<T>) -> Result<T> {
    let lease = manager::lease(db.raw(), Kind::Db)?;
    let Some(res) = lease.resource::<DbResource>() else {
        return Err(Error::WrongKind(format!("handle {db} is not a RocksDB DB")));
    };
    f(&res.0)
}

/// RocksDB's memory figures for the DB `db`.
pub fn memory(db: DbHandle) -> Result<Memory> {
    // SAFETY: `with_db` holds a lease on the DB for the call.
    with_db(db, |inner| unsafe { inner.memory() })
}

/// Reads an integer property ("rocksdb.estimate-num-keys", ...) of column family `cf`.
pub fn property_int(cf: CfHandle, name: &str) -> Result<Option<u64>> {
    with_cf(cf, |res| {
        // SAFETY: `with_cf` holds a lease on the column family for the call.
        let db = unsafe { res.db.db() }?;
        db.property_int_value_cf(&res.cf, name).map_err(rocks_error)
    })
}
