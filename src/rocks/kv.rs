//! Point reads and writes on one column family.

use super::db::with_cf;
use super::raw::{self, ReadOpts, Target};
use super::snapshot::with_snapshot;
use super::{CfHandle, SnapshotHandle};
use crate::error::{Error, Result};

/// Reads `key` into `out`. Returns the value's length; `BufferTooSmall { needed }` (nothing
/// copied) when it does not fit; `NotFound` when there is no such key. The value is copied
/// once, from RocksDB's pinned memory into `out`, and nothing is allocated.
pub fn get(cf: CfHandle, key: &[u8], out: &mut [u8]) -> Result<usize> {
    get_opt(cf, None, 0, key, out)
}

/// [`get`] at `snapshot` (None: the latest data) with read `flags` (`RM_READ_*`).
pub fn get_opt(
    cf: CfHandle,
    snapshot: Option<SnapshotHandle>,
    flags: u32,
    key: &[u8],
    out: &mut [u8],
) -> Result<usize> {
    // SAFETY: `with_read` calls this with `t` open and `ro` reading at no snapshot or at a
    // leased one, for the call: get_into's contract.
    with_read(cf, snapshot, flags, |t, ro| unsafe {
        raw::get_into(t, ro, key, out)
    })
}

/// Reads `key` and calls `f` with its value, pinned in RocksDB's memory: one lookup whatever
/// the value's size (where [`get`] needs a second call when the buffer is too small). `f` runs
/// while the column family is leased, so it must not close it (nor anything it depends on).
/// `NotFound` (and `f` not called) when there is no such key.
pub fn get_with<R>(
    cf: CfHandle,
    snapshot: Option<SnapshotHandle>,
    flags: u32,
    key: &[u8],
    f: impl FnOnce(&[u8]) -> R,
) -> Result<R> {
    // SAFETY: `with_read` calls this with `t` open and `ro` reading at no snapshot or at a
    // leased one, for the call (`f` included): get_pinned's contract.
    with_read(cf, snapshot, flags, |t, ro| unsafe {
        raw::get_pinned(t, ro, key, f)
    })?
    .ok_or(Error::NotFound)
}

/// Runs `f` with column family `cf` open and the read options for `flags` at `snapshot`, both
/// leased for the call.
fn with_read<T>(
    cf: CfHandle,
    snapshot: Option<SnapshotHandle>,
    flags: u32,
    f: impl FnOnce(Target, &ReadOpts) -> Result<T>,
) -> Result<T> {
    let idx = raw::read_index(flags)?;
    with_cf(cf, |res| {
        // SAFETY: `with_cf` holds a lease on the column family for the call: target's contract.
        let t = unsafe { res.target() }?;
        match snapshot {
            // The lease keeps `t` open for the call; the DB's own options read at no snapshot.
            None => f(t, &res.db.read[idx]),
            // The lease on the snapshot keeps it unreleased (only its close releases it), and
            // its options read at it.
            Some(s) => with_snapshot(s, &res.db, |snap| f(t, &snap.read[idx])),
        }
    })
}

/// Reads `key` into a new vector (Rust convenience): one lookup, one copy.
pub fn get_vec(cf: CfHandle, key: &[u8]) -> Result<Option<Vec<u8>>> {
    match get_with(cf, None, 0, key, <[u8]>::to_vec) {
        Ok(v) => Ok(Some(v)),
        Err(Error::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `key` = `value` (WAL on, not synced: survives a process crash, not a power cut).
pub fn put(cf: CfHandle, key: &[u8], value: &[u8]) -> Result<()> {
    put_opt(cf, key, value, 0)
}

/// [`put`] with write `flags` (`RM_WRITE_*`).
pub fn put_opt(cf: CfHandle, key: &[u8], value: &[u8], flags: u32) -> Result<()> {
    write_one(cf, key, Some(value), flags)
}

/// Deletes `key` (no error when it does not exist).
pub fn delete(cf: CfHandle, key: &[u8]) -> Result<()> {
    delete_opt(cf, key, 0)
}

/// [`delete`] with write `flags` (`RM_WRITE_*`).
pub fn delete_opt(cf: CfHandle, key: &[u8], flags: u32) -> Result<()> {
    write_one(cf, key, None, flags)
}

fn write_one(cf: CfHandle, key: &[u8], value: Option<&[u8]>, flags: u32) -> Result<()> {
    with_cf(cf, |res| {
        let wo = res.db.write_opts(flags)?;
        // SAFETY: `with_cf` holds a lease on the column family for the call: target's contract.
        let t = unsafe { res.target() }?;
        // SAFETY: the lease keeps `t` open for the call.
        unsafe { raw::put_or_delete(t, wo, key, value) }
    })
}
