//! Snapshots as resources: a point-in-time view of a DB, read through `get_opt`, multi-get and
//! iterators, released (by close) before their DB.

use super::db::{register_child, with_db, DbInner};
use super::raw::{ReadOpts, Snapshot};
use super::{DbHandle, SnapshotHandle};
use crate::error::{Error, Result};
use crate::handle::Kind;
use crate::manager::{self, CloseMode, Leak, Resource};
use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub(crate) struct SnapshotResource {
    pub(crate) db: Arc<DbInner>,
    snap: Snapshot,
    released: AtomicBool,
    /// Read options at this snapshot, per flag combination.
    pub(crate) read: [ReadOpts; 4],
}

impl SnapshotResource {
    pub(crate) fn ptr(&self) -> *const librocksdb_sys::rocksdb_snapshot_t {
        self.snap.as_ptr()
    }

    fn release(&self) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        // SAFETY: the snapshot resource pins its DB until after its close (and its creator
        // holds a lease on the DB while a not-yet-registered snapshot can be dropped), so the
        // DB is open; `released` makes this run once.
        if let Ok(db) = unsafe { self.db.raw() } {
            // SAFETY: `db` is open (above) and is the DB the snapshot was taken from (`create`
            // took it from `self.db`); the `released` swap lets only one call get here.
            unsafe { self.snap.release(db) };
        }
    }
}

impl Resource for SnapshotResource {
    fn close(&self, _mode: CloseMode) -> std::result::Result<(), String> {
        self.release();
        Ok(())
    }

    /// A DB is never closed under a child it could not destroy (see `Resource`).
    fn releases_dependencies_on_failure(&self) -> bool {
        false
    }

    /// Destroying it frees memory: closed on the closing thread when nothing holds it.
    fn closes_quickly(&self) -> bool {
        true
    }

    /// Still open when its DB is closed: leaked.
    fn leak(&self) -> Option<Leak> {
        Some(Leak::Snapshot)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Drop for SnapshotResource {
    fn drop(&mut self) {
        // Only a snapshot that never got registered reaches here unreleased; see `release`.
        self.release();
    }
}

/// Takes a snapshot of DB `db` and registers it as a dependent of the DB. Release it with
/// close (`rm_close`); the DB's close releases it first if it is still open.
pub fn create(db: DbHandle) -> Result<SnapshotHandle> {
    with_db(db, |inner| {
        // SAFETY: `with_db` holds a lease on the DB for the call: raw's contract.
        let raw = unsafe { inner.raw() }?;
        let name = inner.child_name("snapshot")?;
        // SAFETY: the DB is open (lease) and stays open until the release: once registered the
        // snapshot pins the DB; before that, this lease does.
        let snap = unsafe { Snapshot::create(raw) };
        // SAFETY: the snapshot was just taken and is released only by `release`, by the
        // resource's close or drop; reads use these options only under a lease on the
        // snapshot, which that close cannot run under (a drop without a close only happens to
        // a resource that was never registered, which nothing read through).
        let read = unsafe { ReadOpts::all(snap.as_ptr()) };
        let res = SnapshotResource {
            db: Arc::clone(inner),
            snap,
            released: AtomicBool::new(false),
            read,
        };
        register_child(inner, &name, Kind::Snapshot, Box::new(res), &[db.raw()])
            .map(SnapshotHandle::from_raw)
    })
}

/// Runs `f` with snapshot `snapshot` leased, checking that it is a snapshot of `db`.
pub(crate) fn with_snapshot<T>(
    snapshot: SnapshotHandle,
    db: &Arc<DbInner>,
    f: impl FnOnce(&SnapshotResource) -> Result<T>,
) -> Result<T> {
    let lease =
        manager::lease(snapshot.raw(), Kind::Snapshot).map_err(|e| e.context("snapshot"))?;
    let Some(snap) = lease.resource::<SnapshotResource>() else {
        return Err(Error::WrongKind(format!(
            "handle {snapshot} is not a snapshot"
        )));
    };
    if !Arc::ptr_eq(&snap.db, db) {
        return Err(Error::WrongDb(format!(
            "snapshot {} belongs to DB '{}', not to DB '{}'",
            lease.handle(),
            snap.db.name,
            db.name
        )));
    }
    f(snap)
}
