//! One open DB per directory per process, whatever the path's spelling.
//!
//! RocksDB refuses a second open of a directory through its `LOCK` file, but within one
//! process the lock it takes (`fcntl`) is per process, so RocksDB also keeps an in-process
//! table of locked files, keyed by the path *string*. `dir`, `dir/`, `dir/.`, `dir//`, a
//! symlink to `dir`, a relative path or `p/../x/dir` are different strings for the same files:
//! each of them opened a second `rocksdb::DB` on a directory that was already open, and two DB
//! objects writing one MANIFEST and WAL corrupt it (the DB then no longer opens and every
//! acknowledged write is lost). Another process was always refused correctly.
//!
//! So `open` takes a [`DirGuard`] on the directory's identity (device and inode, which every
//! spelling resolves to) before RocksDB sees the path, and refuses a directory that is already
//! held with [`Error::Locked`], naming the holder. The guard lives exactly as long as the
//! native DB: it sits next to it in `DbInner` and is released right after the DB is dropped
//! (never before: a racing open in between would reach RocksDB while the files are still in
//! use).

use crate::error::{Error, Result};
use parking_lot::Mutex;
use rustc_hash::{FxBuildHasher, FxHashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A directory's identity: (st_dev, st_ino).
type DirId = (u64, u64);

/// Who holds a directory.
struct Holder {
    /// The directory resolved (canonicalized) when it was taken.
    resolved: PathBuf,
    /// The path as the holder passed it.
    given: PathBuf,
    /// The holder's resman name and manager.
    name: String,
    manager: u64,
}

/// Every directory an open DB holds in this process.
static HELD: Mutex<FxHashMap<DirId, Holder>> = Mutex::new(FxHashMap::with_hasher(FxBuildHasher));

/// Marks a DB directory open in this process; dropping it marks the directory free again.
#[derive(Debug)]
pub(crate) struct DirGuard {
    id: DirId,
}

impl DirGuard {
    /// Takes the directory at `path` for the DB `name` of manager `manager`. `Ok(None)` when
    /// there is no directory at `path` (nothing exists, or it is not a directory): RocksDB
    /// opens nothing there and reports the problem itself. `Error::Locked` when a DB of this
    /// process holds the directory already, under whatever spelling.
    pub(crate) fn acquire(path: &Path, name: &str, manager: u64) -> Result<Option<DirGuard>> {
        let Ok(meta) = std::fs::metadata(path) else {
            return Ok(None);
        };
        if !meta.is_dir() {
            return Ok(None);
        }
        let id = (meta.dev(), meta.ino());
        let resolved = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        let mut held = HELD.lock();
        if let Some(h) = held.get(&id) {
            return Err(Error::Locked(format!(
                "the DB directory {} (as given: {}) is already open in this process as '{}' in manager {:#x}, which opened it as {}; close it first",
                h.resolved.display(),
                path.display(),
                h.name,
                h.manager,
                h.given.display(),
            )));
        }
        held.insert(
            id,
            Holder {
                resolved,
                given: path.to_owned(),
                name: name.to_owned(),
                manager,
            },
        );
        Ok(Some(DirGuard { id }))
    }
}

impl Drop for DirGuard {
    fn drop(&mut self) {
        let mut held = HELD.lock();
        held.remove(&self.id);
        if held.is_empty() {
            // Give the table's memory back when no DB is open (leak checkers see none left).
            *held = FxHashMap::with_hasher(FxBuildHasher);
        }
    }
}
