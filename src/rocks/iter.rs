//! Iterators as resources. An iterator depends on its column family (hence its DB) and, when
//! it reads at a snapshot, on that snapshot: both stay open until the iterator is closed, and
//! closing either closes the iterator first.
//!
//! A RocksDB iterator is not thread-safe; each one sits behind a mutex, so concurrent calls on
//! one iterator handle are serialised instead of racing (they still make little sense).

use super::db::{register_child, with_cf, CfResource};
use super::raw::{self, Iter, Seek};
use super::snapshot::with_snapshot;
use super::{CfHandle, IterHandle, SnapshotHandle};
use crate::error::{Error, Result};
use crate::handle::Kind;
use crate::manager::{self, CloseMode, Leak, Resource};
use parking_lot::Mutex;
use std::any::Any;
use std::sync::Arc;

pub(crate) struct IterResource {
    /// Keeps the DB's shared state (not the DB: the pins do that) alive.
    _db: Arc<super::db::DbInner>,
    it: Mutex<Iter>,
    /// Reads at an explicit snapshot (which `refresh` would leave behind: refused).
    at_snapshot: bool,
}

impl Resource for IterResource {
    fn close(&self, _mode: CloseMode) -> std::result::Result<(), String> {
        // SAFETY: the iterator pins its column family (which pins the DB) until after this
        // close returns, so the DB is open.
        unsafe { self.it.lock().destroy() };
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

    /// Still open when its column family, snapshot or DB is closed: leaked.
    fn leak(&self) -> Option<Leak> {
        Some(Leak::Iterator)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Bounds and snapshot of a new iterator.
#[derive(Clone, Copy, Debug, Default)]
pub struct IterOptions<'a> {
    /// Read at this snapshot (None: the data as of creation).
    pub snapshot: Option<SnapshotHandle>,
    /// `RM_READ_*` flags.
    pub flags: u32,
    /// Smallest key the iterator returns (inclusive).
    pub lower: Option<&'a [u8]>,
    /// Key the iterator stops before (exclusive).
    pub upper: Option<&'a [u8]>,
}

/// Creates an iterator over column family `cf` and registers it as a dependent of the column
/// family (and of the snapshot, if any). It starts unpositioned: seek first.
pub fn create(cf: CfHandle, o: &IterOptions<'_>) -> Result<IterHandle> {
    let idx = raw::read_index(o.flags)?;
    if let (Some(l), Some(u)) = (o.lower, o.upper) {
        if l > u {
            return Err(Error::InvalidArgument(
                "the lower bound is greater than the upper bound".into(),
            ));
        }
    }
    with_cf(cf, |res: &CfResource| {
        // SAFETY: `with_cf` holds a lease on the column family for the call: target's contract.
        let t = unsafe { res.target() }?;
        let name = res.db.child_name("iterator")?;
        let build = |snapshot: *const librocksdb_sys::rocksdb_snapshot_t| {
            // SAFETY: the DB is open (lease on the cf) and stays open until the iterator is
            // destroyed: once registered the iterator pins the cf (and the snapshot); before
            // that, this lease does. Likewise `snapshot` is NULL, or leased by
            // `with_snapshot` below until the registration pins it.
            let it = unsafe { Iter::create(t, idx as u32, snapshot, o.lower, o.upper) };
            IterResource {
                _db: Arc::clone(&res.db),
                it: Mutex::new(it),
                at_snapshot: !snapshot.is_null(),
            }
        };
        let register = |r: IterResource, deps: &[u64]| {
            register_child(&res.db, &name, Kind::Iterator, Box::new(r), deps)
                .map(IterHandle::from_raw)
        };
        match o.snapshot {
            None => register(build(std::ptr::null()), &[cf.raw()]),
            Some(s) => with_snapshot(s, &res.db, |snap| {
                register(build(snap.ptr()), &[cf.raw(), s.raw()])
            }),
        }
    })
}

/// Runs `f` on iterator `it`, leased and locked for the duration.
fn with_iter<T>(it: IterHandle, f: impl FnOnce(&mut Iter) -> Result<T>) -> Result<T> {
    with_iter_resource(it, |res| f(&mut res.it.lock()))
}

/// Runs `f` with iterator `it`'s resource, leased for the duration.
fn with_iter_resource<T>(it: IterHandle, f: impl FnOnce(&IterResource) -> Result<T>) -> Result<T> {
    let lease = manager::lease(it.raw(), Kind::Iterator)?;
    let Some(res) = lease.resource::<IterResource>() else {
        return Err(Error::WrongKind(format!("handle {it} is not an iterator")));
    };
    f(res)
}

/// Makes the iterator read the DB's latest data (RocksDB's `Iterator::Refresh`) and leaves it
/// unpositioned: seek next. One iterator can so serve scan after scan, each seeing the writes
/// before it, without a create and a close per scan. Refused (`InvalidArgument`) for an
/// iterator at a snapshot: it would leave its snapshot behind.
pub fn refresh(it: IterHandle) -> Result<()> {
    with_iter_resource(it, |res| {
        if res.at_snapshot {
            return Err(Error::InvalidArgument(
                "an iterator at a snapshot cannot be refreshed (it would read past its snapshot); create one at the new snapshot instead".into(),
            ));
        }
        res.it.lock().refresh()
    })
}

/// Positions the iterator; returns whether it is now on an entry.
pub fn seek(it: IterHandle, how: Seek<'_>) -> Result<bool> {
    with_iter(it, |i| {
        i.seek(how)?;
        i.valid()
    })
}

/// Moves to the next (`forward`) or previous entry; returns whether it is on one.
pub fn step(it: IterHandle, forward: bool) -> Result<bool> {
    with_iter(it, |i| {
        i.step(forward)?;
        i.valid()
    })
}

/// Whether the iterator is on an entry (an error if the iterator failed).
pub fn valid(it: IterHandle) -> Result<bool> {
    with_iter(it, |i| i.valid())
}

/// Copies the current key (`key`) or value into `out`: its length, or `BufferTooSmall`.
pub fn read(it: IterHandle, key: bool, out: &mut [u8]) -> Result<usize> {
    with_iter(it, |i| copy_out(i.current(key)?, out))
}

/// Lengths of the current entry, and whether both were copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryLen {
    pub key: usize,
    pub value: usize,
    /// False when either buffer was too small (then nothing was copied).
    pub copied: bool,
}

/// Copies the current key and value into the two buffers, or nothing if either is too small;
/// the lengths are returned either way.
pub fn entry(it: IterHandle, key_out: &mut [u8], value_out: &mut [u8]) -> Result<EntryLen> {
    with_iter(it, |i| {
        let k = i.current(true)?;
        let v = i.current(false)?;
        let copied = k.len() <= key_out.len() && v.len() <= value_out.len();
        if copied {
            key_out[..k.len()].copy_from_slice(k);
            value_out[..v.len()].copy_from_slice(v);
        }
        Ok(EntryLen {
            key: k.len(),
            value: v.len(),
            copied,
        })
    })
}

fn copy_out(src: &[u8], out: &mut [u8]) -> Result<usize> {
    if src.len() > out.len() {
        return Err(Error::BufferTooSmall { needed: src.len() });
    }
    out[..src.len()].copy_from_slice(src);
    Ok(src.len())
}

/// What [`read_chunk`] copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Entries copied into the buffer.
    pub count: usize,
    /// Whether the iterator is on an entry afterwards: the first one not copied.
    pub valid: bool,
}

/// Copies entries into `buf`, starting with the current one and moving forward (`forward`) or
/// back after each, until `max` are copied, the next does not fit in what is left of `buf`, or
/// the iterator runs out. Entry `i`'s key is packed right after entry `i - 1`'s value, its
/// value right after its key; `record(i, key_len, value_len)` is called for each copied entry.
/// The iterator is left on the first entry not copied.
///
/// An iterator that is not on an entry copies nothing (`valid` false) unless it failed, which
/// is its error. If the very first entry does not fit, nothing is copied, `record(0, ..)` gets
/// its lengths and the result is `BufferTooSmall` with the bytes it needs. If moving fails
/// after some entries were copied, those entries stay in `buf` and their count comes with the
/// error: the second element is the count whatever the result.
pub fn read_chunk(
    it: IterHandle,
    forward: bool,
    buf: &mut [u8],
    max: usize,
    mut record: impl FnMut(usize, usize, usize),
) -> (usize, Result<Chunk>) {
    let mut count = 0;
    let mut too_small = None;
    let result = with_iter(it, |i| {
        let mut at = 0;
        let valid = i.take_while(forward, |k, v| {
            if count == max {
                return false;
            }
            let end = at + k.len() + v.len();
            if end > buf.len() {
                if count == 0 {
                    too_small = Some((k.len(), v.len()));
                }
                return false;
            }
            buf[at..at + k.len()].copy_from_slice(k);
            buf[at + k.len()..end].copy_from_slice(v);
            record(count, k.len(), v.len());
            count += 1;
            at = end;
            true
        })?;
        if let Some((k, v)) = too_small {
            record(0, k, v);
            return Err(Error::BufferTooSmall { needed: k + v });
        }
        Ok(Chunk { count, valid })
    });
    (count, result)
}
