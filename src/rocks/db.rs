//! The DB and column-family resources, open, and the point operations.

use crate::error::{Error, Result};
use crate::handle::Kind;
use crate::manager::{self, CloseMode, Resource, MAX_NAME_LEN};
use rocksdb::{AsColumnFamilyRef, ErrorKind, Options, ReadOptions, WriteOptions, DB};
use std::any::Any;
use std::cell::UnsafeCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Options for [`open`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbOptions {
    /// Create the DB if the directory holds none. Default true.
    pub create_if_missing: bool,
    /// Create requested column families that do not exist yet. Default true.
    pub create_missing_column_families: bool,
    /// Fail if a DB already exists at the path. Default false.
    pub error_if_exists: bool,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            create_if_missing: true,
            create_missing_column_families: true,
            error_if_exists: false,
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

/// State shared by a DB resource and its column families.
pub(crate) struct DbInner {
    db: UnsafeCell<Option<DB>>,
    path: PathBuf,
    /// Every column family the DB was opened with (the graceful close flushes each).
    all_cfs: Vec<String>,
    read: ReadOptions,
    write: WriteOptions,
}

// SAFETY: `DB`, `ReadOptions` and `WriteOptions` are Send + Sync. The only non-Sync part is the
// UnsafeCell, whose single mutation (`take` in `DbResource::close`) cannot overlap any read:
// see the module documentation of `crate::rocks` for the lease argument.
unsafe impl Sync for DbInner {}

impl DbInner {
    /// The open DB.
    ///
    /// # Safety
    /// The caller holds a lease on the DB entry or on an entry that pins it (a column family).
    unsafe fn db(&self) -> Result<&DB> {
        // SAFETY: per this function's contract the close that takes the DB cannot run while
        // the caller's lease is held, so this shared read does not overlap the mutation.
        let db = unsafe { (*self.db.get()).as_ref() };
        db.ok_or_else(|| Error::Closed(format!("the DB at {} is closed", self.path.display())))
    }
}

struct DbResource(Arc<DbInner>);

impl Resource for DbResource {
    fn close(&self, mode: CloseMode) -> std::result::Result<(), String> {
        // SAFETY: the manager calls `close` exactly once, when no lease on this DB is held and
        // none can be taken; every dependent pins the DB until its own close. Nothing else can
        // be reading the cell (see `crate::rocks`).
        let Some(db) = (unsafe { (*self.0.db.get()).take() }) else {
            return Ok(());
        };
        let mut errors = Vec::new();
        match mode {
            CloseMode::Graceful => {
                // Close does not flush memtables when the WAL is on, and does not sync the WAL:
                // do both, for every column family, so a reopen replays nothing.
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
                db.cancel_all_background_work(true);
            }
            CloseMode::Forced => db.cancel_all_background_work(false),
        }
        drop(db);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "DB at {} closed with errors: {}",
                self.0.path.display(),
                errors.join("; ")
            ))
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The native handle of one column family.
struct CfPtr(*mut librocksdb_sys::rocksdb_column_family_handle_t);

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

struct CfResource {
    db: Arc<DbInner>,
    cf: CfPtr,
}

impl Resource for CfResource {
    fn close(&self, _mode: CloseMode) -> std::result::Result<(), String> {
        // The native handle belongs to the DB, which destroys it when it closes; this entry's
        // pin on the DB is released by the manager right after this returns.
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn rocks_error(e: rocksdb::Error) -> Error {
    let msg = e.to_string();
    if msg.starts_with("Failed to create RocksDB directory") {
        return Error::Io(msg);
    }
    match e.kind() {
        ErrorKind::IOError if msg.contains("/LOCK") || msg.contains("lock hold") => Error::Locked(
            format!("{msg} (another process or another open DB holds this directory)"),
        ),
        ErrorKind::IOError => Error::Io(msg),
        ErrorKind::Corruption => Error::Corruption(msg),
        ErrorKind::InvalidArgument => Error::InvalidArgument(format!("RocksDB: {msg}")),
        _ => Error::RocksDb(msg),
    }
}

/// Opens (creating as asked) the DB at `path` with the column families `cfs`, and registers
/// it as `name` in manager `mgr`, each column family as `name/cf`. Column families that exist
/// on disk but are not asked for are opened too (RocksDB requires it) but get no handle.
/// On any failure nothing stays registered or open.
pub fn open(mgr: u64, name: &str, path: &Path, cfs: &[&str], opts: &DbOptions) -> Result<Opened> {
    if path.as_os_str().is_empty() {
        return Err(Error::InvalidArgument("path must not be empty".into()));
    }
    for (i, cf) in cfs.iter().enumerate() {
        if cf.is_empty() || cf.len() > MAX_NAME_LEN {
            return Err(Error::InvalidArgument(format!(
                "column family {i}: name must be 1 to {MAX_NAME_LEN} bytes"
            )));
        }
        if cfs[..i].contains(cf) {
            return Err(Error::InvalidArgument(format!(
                "column family '{cf}' is listed twice"
            )));
        }
    }
    let cf_names: Vec<String> = cfs.iter().map(|cf| format!("{name}/{cf}")).collect();
    // Fail on taken names before touching the disk.
    let mut all_names = vec![name.to_owned()];
    all_names.extend(cf_names.iter().cloned());
    manager::check_names_free(mgr, &all_names)?;

    let mut o = Options::default();
    o.create_if_missing(opts.create_if_missing);
    o.create_missing_column_families(opts.create_missing_column_families);
    o.set_error_if_exists(opts.error_if_exists);
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
        if !all_cfs.iter().any(|c| c == cf) {
            all_cfs.push((*cf).to_owned());
        }
    }
    let db = DB::open_cf(&o, path, &all_cfs).map_err(rocks_error)?;
    let mut ptrs = Vec::with_capacity(cfs.len());
    for cf in cfs {
        match db.cf_handle(cf) {
            Some(h) => ptrs.push(CfPtr(h.inner())),
            None => {
                return Err(Error::RocksDb(format!(
                    "column family '{cf}' missing after open"
                )))
            }
        }
    }
    let inner = Arc::new(DbInner {
        db: UnsafeCell::new(Some(db)),
        path: path.to_owned(),
        all_cfs,
        read: ReadOptions::default(),
        write: WriteOptions::default(),
    });
    // If registration fails, dropping `inner` (the last reference) closes the DB.
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

/// Runs `f` with the column family `cf` leased for the duration.
fn with_cf<T>(cf: u64, f: impl FnOnce(&DB, &CfResource) -> Result<T>) -> Result<T> {
    let lease = manager::lease(cf, Kind::ColumnFamily)?;
    let Some(res) = lease.resource::<CfResource>() else {
        return Err(Error::WrongKind(format!(
            "handle {cf:#x} is not a RocksDB column family"
        )));
    };
    // SAFETY: `lease` is held until this function returns, and a column family pins its DB.
    let db = unsafe { res.db.db() }?;
    f(db, res)
}

/// Reads `key` into `out`. Returns the value's length; `BufferTooSmall { needed }` (nothing
/// copied) when it does not fit; `NotFound` when there is no such key. The value is copied
/// once, from RocksDB's pinned memory into `out`.
pub fn get(cf: u64, key: &[u8], out: &mut [u8]) -> Result<usize> {
    with_cf(cf, |db, res| {
        match db
            .get_pinned_cf_opt(&res.cf, key, &res.db.read)
            .map_err(rocks_error)?
        {
            None => Err(Error::NotFound),
            Some(v) if v.len() > out.len() => Err(Error::BufferTooSmall { needed: v.len() }),
            Some(v) => {
                out[..v.len()].copy_from_slice(&v);
                Ok(v.len())
            }
        }
    })
}

/// Reads `key` into a new vector (Rust convenience).
pub fn get_vec(cf: u64, key: &[u8]) -> Result<Option<Vec<u8>>> {
    with_cf(cf, |db, res| {
        Ok(db
            .get_pinned_cf_opt(&res.cf, key, &res.db.read)
            .map_err(rocks_error)?
            .map(|v| v.to_vec()))
    })
}

/// Writes `key` = `value` (WAL on, not synced: survives a process crash, not a power cut).
pub fn put(cf: u64, key: &[u8], value: &[u8]) -> Result<()> {
    with_cf(cf, |db, res| {
        db.put_cf_opt(&res.cf, key, value, &res.db.write)
            .map_err(rocks_error)
    })
}

/// Deletes `key` (no error when it does not exist).
pub fn delete(cf: u64, key: &[u8]) -> Result<()> {
    with_cf(cf, |db, res| {
        db.delete_cf_opt(&res.cf, key, &res.db.write)
            .map_err(rocks_error)
    })
}
