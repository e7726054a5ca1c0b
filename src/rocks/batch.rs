//! Write batches as resources: operations on any column family of one DB, applied atomically.
//! A batch depends on its DB. Writing it applies its content once and leaves it empty, ready
//! to be filled again, so a batch written twice never applies its operations twice.

use super::db::{register_child, with_cf, with_db, DbInner};
use super::raw::WriteBatch;
use super::{BatchHandle, CfHandle, DbHandle};
use crate::error::{Error, Result};
use crate::handle::Kind;
use crate::manager::{self, CloseMode, Resource};
use parking_lot::Mutex;
use std::any::Any;
use std::sync::Arc;

pub(crate) struct BatchResource {
    db: Arc<DbInner>,
    batch: Mutex<WriteBatch>,
}

impl Resource for BatchResource {
    fn close(&self, _mode: CloseMode) -> std::result::Result<(), String> {
        // A batch owns no DB state: emptying it now frees its memory; the native object goes
        // with the entry.
        self.batch.lock().clear();
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

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Creates an empty batch for DB `db`, registered as a dependent of the DB.
pub fn create(db: DbHandle) -> Result<BatchHandle> {
    with_db(db, |inner| {
        let name = inner.child_name("batch")?;
        let res = BatchResource {
            db: Arc::clone(inner),
            batch: Mutex::new(WriteBatch::new()),
        };
        register_child(inner, &name, Kind::Batch, Box::new(res), &[db.raw()])
            .map(BatchHandle::from_raw)
    })
}

fn with_batch<T>(batch: BatchHandle, f: impl FnOnce(&BatchResource) -> Result<T>) -> Result<T> {
    let lease = manager::lease(batch.raw(), Kind::Batch)?;
    let Some(res) = lease.resource::<BatchResource>() else {
        return Err(Error::WrongKind(format!("handle {batch} is not a batch")));
    };
    f(res)
}

/// One operation added to a batch.
pub enum Op<'a> {
    Put(&'a [u8], &'a [u8]),
    Delete(&'a [u8]),
    /// Deletes keys in [begin, end).
    DeleteRange(&'a [u8], &'a [u8]),
}

/// Adds `op` on column family `cf` (of the batch's DB) to the batch.
pub fn add(batch: BatchHandle, cf: CfHandle, op: Op<'_>) -> Result<()> {
    if let Op::DeleteRange(b, e) = &op {
        if b > e {
            return Err(Error::InvalidArgument(
                "delete_range: begin is greater than end".into(),
            ));
        }
    }
    with_batch(batch, |b| {
        with_cf(cf, |c| {
            if !Arc::ptr_eq(&c.db, &b.db) {
                return Err(Error::WrongDb(format!(
                    "column family {cf} belongs to DB '{}', the batch to DB '{}'",
                    c.db.name, b.db.name
                )));
            }
            let mut guard = b.batch.lock();
            // SAFETY: the cf is leased (its DB is open), so its handle is live, which is what
            // put, delete and delete_range require; only its id is recorded in the batch.
            unsafe {
                match op {
                    Op::Put(k, v) => guard.put(c.cf.0, k, v),
                    Op::Delete(k) => guard.delete(c.cf.0, k),
                    Op::DeleteRange(s, e) => guard.delete_range(c.cf.0, s, e),
                }
            }
            Ok(())
        })
    })
}

/// Empties the batch.
pub fn clear(batch: BatchHandle) -> Result<()> {
    with_batch(batch, |b| {
        b.batch.lock().clear();
        Ok(())
    })
}

/// Number of operations in the batch.
pub fn count(batch: BatchHandle) -> Result<usize> {
    with_batch(batch, |b| Ok(b.batch.lock().count()))
}

/// Applies the batch atomically with write `flags`, then empties it. On error the content is
/// kept (nothing was applied), so the caller may retry.
pub fn write(batch: BatchHandle, flags: u32) -> Result<()> {
    with_batch(batch, |b| {
        let wo = b.db.write_opts(flags)?;
        let mut guard = b.batch.lock();
        // SAFETY: the batch pins its DB until its own close, and the batch is leased, so the
        // DB is open for the call.
        let db = unsafe { b.db.raw() }?;
        // SAFETY: `db` is open for the call (the lease above): write's contract.
        unsafe { guard.write(db, wo) }?;
        guard.clear();
        Ok(())
    })
}
