//! Multi-get: many keys, over one or more column families of one DB, in one call, with the
//! values packed into one caller buffer.

use super::db::CfResource;
use super::raw::{self, Got};
use super::snapshot::with_snapshot;
use crate::error::{Error, Result};
use crate::handle::Kind;
use crate::manager::{self, Lease};

/// What happened to one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Slot {
    /// The value is at `out[offset..offset + len]`.
    Found {
        offset: usize,
        len: usize,
    },
    NotFound,
    /// The value exists but did not fit in what was left of the buffer; `len` is its size.
    TooSmall {
        len: usize,
    },
    /// RocksDB failed to read this key.
    Failed(Error),
}

/// Reads `keys[i]` from column family `cfs[i]` (or `cfs[0]` for every key when `cfs` has one
/// handle), all of one DB, at `snapshot` (0: latest) with read `flags`. Values are packed into
/// `out` in order of arrival; keys whose value does not fit get `TooSmall` and the rest still
/// fill the space left. Returns one slot per key and the bytes all found values need.
pub fn multi_get(
    cfs: &[u64],
    snapshot: u64,
    flags: u32,
    keys: &[&[u8]],
    out: &mut [u8],
) -> Result<(Vec<Slot>, usize)> {
    let idx = raw::read_index(flags)?;
    if cfs.len() != 1 && cfs.len() != keys.len() {
        return Err(Error::InvalidArgument(format!(
            "{} column families for {} keys: pass one for all keys, or one per key",
            cfs.len(),
            keys.len()
        )));
    }
    // One lease per distinct column family, all of one DB.
    let mut leases: Vec<(u64, Lease)> = Vec::new();
    for (i, &cf) in cfs.iter().enumerate() {
        if leases.iter().any(|(h, _)| *h == cf) {
            continue;
        }
        let lease =
            manager::lease(cf, Kind::ColumnFamily).map_err(|e| e.context(&format!("cfs[{i}]")))?;
        let res = cf_of(&lease)?;
        if let Some((_, first)) = leases.first() {
            let first = cf_of(first)?;
            if !std::sync::Arc::ptr_eq(&first.db, &res.db) {
                return Err(Error::WrongDb(format!(
                    "cfs[{i}] belongs to DB '{}', cfs[0] to DB '{}'",
                    res.db.name, first.db.name
                )));
            }
        }
        leases.push((cf, lease));
    }
    let mut slots = vec![Slot::NotFound; keys.len()];
    let Some((_, first)) = leases.first() else {
        return Ok((slots, 0)); // no keys, no column families
    };
    let db = std::sync::Arc::clone(&cf_of(first)?.db);
    let mut used = 0usize;
    let mut needed = 0usize;
    let mut read_group = |ro: &raw::ReadOpts| -> Result<()> {
        for (h, lease) in &leases {
            let res = cf_of(lease)?;
            let picked: Vec<usize> = if cfs.len() == 1 {
                (0..keys.len()).collect()
            } else {
                (0..keys.len()).filter(|&i| cfs[i] == *h).collect()
            };
            let group: Vec<&[u8]> = picked.iter().map(|&i| keys[i]).collect();
            // SAFETY: the column family is leased for the call (its DB is open).
            let t = unsafe { res.target() }?;
            // SAFETY: as above.
            unsafe {
                raw::multi_get(t, ro, &group, |j, got, value| {
                    let slot = match got {
                        Got::NotFound => Slot::NotFound,
                        Got::Failed(e) => Slot::Failed(e),
                        Got::Found => {
                            needed += value.len();
                            if value.len() <= out.len() - used {
                                out[used..used + value.len()].copy_from_slice(value);
                                used += value.len();
                                Slot::Found {
                                    offset: used - value.len(),
                                    len: value.len(),
                                }
                            } else {
                                Slot::TooSmall { len: value.len() }
                            }
                        }
                    };
                    slots[picked[j]] = slot;
                })
            };
        }
        Ok(())
    };
    if snapshot == 0 {
        read_group(&db.read[idx])?;
    } else {
        with_snapshot(snapshot, &db, |snap| read_group(&snap.read[idx]))?;
    }
    Ok((slots, needed))
}

fn cf_of(lease: &Lease) -> Result<&CfResource> {
    lease
        .resource::<CfResource>()
        .ok_or_else(|| Error::WrongKind(format!("{} is not a column family", lease.handle())))
}
