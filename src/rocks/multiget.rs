//! Multi-get: many keys, over one or more column families of one DB, in one call, with the
//! values packed into one caller buffer.

use super::db::CfResource;
use super::raw::{self, Got, ReadOpts};
use super::snapshot::with_snapshot;
use super::{CfHandle, SnapshotHandle};
use crate::error::{Error, Result};
use crate::handle::Kind;
use crate::manager::{self, Lease};
use std::sync::Arc;

/// What happened to one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
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
    /// The value did not fit and the caller's spill function took it (see [`multi_get_with`]).
    Spilled {
        len: usize,
    },
    /// RocksDB failed to read this key.
    Failed(Error),
}

/// Reads `keys[i]` from column family `cfs[i]` (or `cfs[0]` for every key when `cfs` has one
/// handle), all of one DB, at `snapshot` (None: latest) with read `flags`. Values are packed into
/// `out` in order of arrival; keys whose value does not fit get `TooSmall` and the rest still
/// fill the space left. Returns one lookup per key and the bytes all found values need.
pub fn multi_get(
    cfs: &[CfHandle],
    snapshot: Option<SnapshotHandle>,
    flags: u32,
    keys: &[&[u8]],
    out: &mut [u8],
) -> Result<(Vec<Lookup>, usize)> {
    multi_get_with(cfs, snapshot, flags, keys, out, |_, _| false)
}

/// [`multi_get`], where a value that does not fit in what is left of `out` is offered to
/// `spill(key_index, value)` (RocksDB's pinned value, while the column family is leased):
/// when it takes it (returns true) the key's lookup is `Spilled`, else `TooSmall`. So every
/// key is looked up once whatever the sizes. `spill` must not close what the read holds.
pub fn multi_get_with(
    cfs: &[CfHandle],
    snapshot: Option<SnapshotHandle>,
    flags: u32,
    keys: &[&[u8]],
    out: &mut [u8],
    spill: impl FnMut(usize, &[u8]) -> bool,
) -> Result<(Vec<Lookup>, usize)> {
    let idx = raw::read_index(flags)?;
    if cfs.len() != 1 && cfs.len() != keys.len() {
        return Err(Error::InvalidArgument(format!(
            "{} column families for {} keys: pass one for all keys, or one per key",
            cfs.len(),
            keys.len()
        )));
    }
    let leases = lease_column_families(cfs)?;
    let mut lookups = vec![Lookup::NotFound; keys.len()];
    let Some((_, first)) = leases.first() else {
        return Ok((lookups, 0)); // no keys, no column families
    };
    let db = Arc::clone(&cf_of(first)?.db);
    let mut packer = Packer {
        out,
        used: 0,
        needed: 0,
        spill,
    };
    let mut read = |ro: &ReadOpts| read_groups(&leases, cfs, keys, ro, &mut packer, &mut lookups);
    match snapshot {
        None => read(&db.read[idx])?,
        Some(s) => with_snapshot(s, &db, |snap| read(&snap.read[idx]))?,
    }
    let needed = packer.needed;
    Ok((lookups, needed))
}

/// One lease per distinct column family of `cfs`, in order of first appearance, all of one DB.
fn lease_column_families(cfs: &[CfHandle]) -> Result<Vec<(CfHandle, Lease)>> {
    let mut leases: Vec<(CfHandle, Lease)> = Vec::new();
    for (i, &cf) in cfs.iter().enumerate() {
        if leases.iter().any(|(h, _)| *h == cf) {
            continue;
        }
        let lease = manager::lease(cf.raw(), Kind::ColumnFamily)
            .map_err(|e| e.context(&format!("cfs[{i}]")))?;
        let res = cf_of(&lease)?;
        if let Some((_, first)) = leases.first() {
            let first = cf_of(first)?;
            if !Arc::ptr_eq(&first.db, &res.db) {
                return Err(Error::WrongDb(format!(
                    "cfs[{i}] belongs to DB '{}', cfs[0] to DB '{}'",
                    res.db.name, first.db.name
                )));
            }
        }
        leases.push((cf, lease));
    }
    Ok(leases)
}

/// Reads, for each leased column family, its keys in one batched call with `ro`, and records
/// each key's lookup.
fn read_groups(
    leases: &[(CfHandle, Lease)],
    cfs: &[CfHandle],
    keys: &[&[u8]],
    ro: &ReadOpts,
    packer: &mut Packer<'_, impl FnMut(usize, &[u8]) -> bool>,
    lookups: &mut [Lookup],
) -> Result<()> {
    for (h, lease) in leases {
        let res = cf_of(lease)?;
        let picked: Vec<usize> = if cfs.len() == 1 {
            (0..keys.len()).collect()
        } else {
            (0..keys.len()).filter(|&i| cfs[i] == *h).collect()
        };
        let group: Vec<&[u8]> = picked.iter().map(|&i| keys[i]).collect();
        // SAFETY: `lease` is held on this column family for the call: target's contract.
        let t = unsafe { res.target() }?;
        // SAFETY: the lease keeps `t` open for the call; `ro` reads at no snapshot or at one
        // the caller holds a lease on (see `multi_get`), which keeps it unreleased.
        unsafe {
            raw::multi_get_cf(t, ro, &group, |j, got, value| {
                lookups[picked[j]] = match got {
                    Got::NotFound => Lookup::NotFound,
                    Got::Failed(e) => Lookup::Failed(e),
                    Got::Found => packer.place(picked[j], value),
                };
            })
        };
    }
    Ok(())
}

/// Packs found values into the caller's buffer in order of arrival.
struct Packer<'a, S> {
    out: &'a mut [u8],
    /// Bytes of `out` filled so far.
    used: usize,
    /// Bytes every found value needs, whether it fit or not.
    needed: usize,
    /// Offered each value that does not fit (see `multi_get_with`).
    spill: S,
}

impl<S: FnMut(usize, &[u8]) -> bool> Packer<'_, S> {
    /// Copies key `i`'s `value` after the values placed so far if it fits in what is left,
    /// else offers it to `spill`.
    fn place(&mut self, i: usize, value: &[u8]) -> Lookup {
        self.needed += value.len();
        if value.len() > self.out.len() - self.used {
            if (self.spill)(i, value) {
                return Lookup::Spilled { len: value.len() };
            }
            return Lookup::TooSmall { len: value.len() };
        }
        let offset = self.used;
        self.out[offset..offset + value.len()].copy_from_slice(value);
        self.used += value.len();
        Lookup::Found {
            offset,
            len: value.len(),
        }
    }
}

fn cf_of(lease: &Lease) -> Result<&CfResource> {
    lease
        .resource::<CfResource>()
        .ok_or_else(|| Error::WrongKind(format!("{} is not a column family", lease.handle())))
}
