//! Opening a DB: the request is checked, the directory claimed, RocksDB opened with every column
//! family, and the DB and the requested column families registered. Any failure leaves nothing
//! registered and nothing open.

use super::db::{CfPtr, CfResource, DbInner, DbResource};
use super::dirlock::DirGuard;
use super::options::{CfSpec, DbOptions, NativeOptions};
use super::status::rocks_error;
use super::{CfHandle, DbHandle};
use crate::error::{Error, Result};
use crate::handle::{Kind, ManagerHandle};
use crate::manager::{self, CloseMode, MAX_NAME_LEN};
use rocksdb::{AsColumnFamilyRef, ColumnFamilyDescriptor, DB};
use std::path::Path;
use std::sync::Arc;

/// What [`open`] registered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    /// The DB's handle.
    pub db: DbHandle,
    /// One handle per requested column family, in the order they were asked for.
    pub column_families: Vec<CfHandle>,
}

/// Opens (creating as asked) the DB at `path` with the column families `cfs`, and registers
/// it as `name` in manager `mgr`, each column family as `name/cf`. Column families that exist
/// on disk but are not asked for are opened too (RocksDB requires it) but get no handle.
/// On any failure nothing stays registered or open.
pub fn open(
    mgr: ManagerHandle,
    name: &str,
    path: &Path,
    cfs: &[CfSpec<'_>],
    opts: &DbOptions,
) -> Result<Opened> {
    let mgr = mgr.raw();
    let cf_names = check_request(mgr, name, path, cfs, opts)?;
    // One open per directory per process, whatever the spelling of its path (see
    // `super::dirlock`): the directory is claimed by its identity before RocksDB sees it.
    // rust-rocksdb runs `create_dir_all` on the path before every open (whatever
    // create_if_missing says), so doing it here first changes nothing on disk and gives the
    // directory an identity to claim; its error, if any, is left for RocksDB's own open to
    // report as before. Until it moves into the DB's state, the guard outlives every DB object
    // dropped on an early return below (they are dropped inside the steps that open them).
    let _ = std::fs::create_dir_all(path);
    let dir = DirGuard::acquire(path, name, mgr)?;
    let native = NativeOptions::new(opts);
    let all_cfs = column_families(&native, path, cfs)?;
    let (db, ptrs) = open_native(&native, path, &all_cfs, cfs, opts)?;
    let inner = Arc::new(DbInner::new(
        db,
        dir,
        mgr,
        name,
        path.to_owned(),
        all_cfs,
        native.cache,
    ));
    register(mgr, name, inner, &cf_names, ptrs)
}

/// Refuses a request that cannot succeed before anything is touched: an empty path, options
/// out of range, bad or repeated names, names taken in the manager. Returns the column
/// families' names as they are registered (`name/cf`).
fn check_request(
    mgr: u64,
    name: &str,
    path: &Path,
    cfs: &[CfSpec<'_>],
    opts: &DbOptions,
) -> Result<Vec<String>> {
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
    Ok(cf_names)
}

/// Every column family the DB is opened with: "default", those on disk, those asked for.
fn column_families(native: &NativeOptions, path: &Path, cfs: &[CfSpec<'_>]) -> Result<Vec<String>> {
    let mut all_cfs = vec!["default".to_owned()];
    // Only list what is there when there is a DB: rust-rocksdb's list_cf leaks RocksDB's
    // (empty) result array on its error path. No DB yet is for open to report (or create).
    let existing = if path.join("CURRENT").exists() {
        DB::list_cf(&native.db, path).map_err(rocks_error)?
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
    Ok(all_cfs)
}

/// Opens RocksDB with `all_cfs`, each with its compression, and finds the native handle of
/// each column family asked for, in the order of `cfs`.
fn open_native(
    native: &NativeOptions,
    path: &Path,
    all_cfs: &[String],
    cfs: &[CfSpec<'_>],
    opts: &DbOptions,
) -> Result<(DB, Vec<CfPtr>)> {
    let descriptors: Vec<ColumnFamilyDescriptor> = all_cfs
        .iter()
        .map(|n| {
            let compression = cfs
                .iter()
                .find(|c| c.name == n)
                .and_then(|c| c.compression)
                .unwrap_or(opts.compression);
            ColumnFamilyDescriptor::new(n, native.column_family(compression))
        })
        .collect();
    let db = DB::open_cf_descriptors(&native.db, path, descriptors).map_err(rocks_error)?;
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
    Ok((db, ptrs))
}

/// Registers the DB as `name` and each column family `ptrs[i]` as `cf_names[i]`, a dependent
/// of the DB. On failure nothing stays registered or open.
fn register(
    mgr: u64,
    name: &str,
    inner: Arc<DbInner>,
    cf_names: &[String],
    ptrs: Vec<CfPtr>,
) -> Result<Opened> {
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
    let mut handles = Vec::with_capacity(ptrs.len());
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
            Ok(h) => handles.push(CfHandle::from_raw(h.raw())),
            Err(e) => {
                // Roll back: closes the column families registered so far, then the DB.
                let _ = manager::close(mgr, db_handle, CloseMode::Forced, None);
                return Err(e);
            }
        }
    }
    Ok(Opened {
        db: DbHandle::from_raw(db_handle),
        column_families: handles,
    })
}
