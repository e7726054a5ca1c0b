//! Point reads and writes on one column family.

use super::db::with_cf;
use super::raw;
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
    let idx = raw::read_index(flags)?;
    with_cf(cf, |res| {
        // SAFETY: `with_cf` holds a lease on the column family for the call: target's contract.
        let t = unsafe { res.target() }?;
        let Some(snapshot) = snapshot else {
            // SAFETY: the lease keeps `t` open for the call; the DB's own options read at no
            // snapshot.
            return unsafe { raw::get_into(t, &res.db.read[idx], key, out) };
        };
        with_snapshot(snapshot, &res.db, |snap| {
            // SAFETY: the lease on the column family keeps `t` open for the call; the lease on
            // the snapshot keeps it unreleased (only its close releases it), and its options
            // read at it.
            unsafe { raw::get_into(t, &snap.read[idx], key, out) }
        })
    })
}

/// Reads `key` into a new vector (Rust convenience).
pub fn get_vec(cf: CfHandle, key: &[u8]) -> Result<Option<Vec<u8>>> {
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
