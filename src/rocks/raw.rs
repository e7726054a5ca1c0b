//! Owned wrappers over the RocksDB C objects that rust-rocksdb either does not expose in the
//! shape resman needs or ties to a borrow of the DB: read and write options (built once per
//! flag combination, never per call), snapshots, iterators and write batches, plus the
//! allocation-free point read and the batched multi-get.
//!
//! Every wrapper owns exactly one native object and releases it exactly once. Objects that
//! need the DB to be open when they are released (snapshots, iterators) are released by their
//! resource's `close`, under the dependency pin that keeps the DB open; see `crate::rocks`.

use crate::error::{Error, Result};
use librocksdb_sys as ffi;
use std::ffi::{c_char, CStr};
use std::ptr;

/// Converts a RocksDB error string (`char*` from `strdup`) into an error and frees it.
///
/// # Safety
/// `err` is NULL or a string allocated by RocksDB and not yet freed.
unsafe fn take_error(err: *mut c_char) -> Option<Error> {
    if err.is_null() {
        return None;
    }
    // SAFETY: non-NULL, NUL-terminated, allocated by RocksDB (per this function's contract).
    let msg = unsafe { CStr::from_ptr(err) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: allocated by RocksDB with malloc; freed exactly once, here.
    unsafe { ffi::rocksdb_free(err.cast()) };
    Some(super::db::classify(msg))
}

/// Read options, immutable after construction.
pub(crate) struct ReadOpts(*mut ffi::rocksdb_readoptions_t);

// SAFETY: a ReadOptions is plain data that RocksDB only reads; after construction resman never
// mutates it, so sharing it between threads is sound.
unsafe impl Send for ReadOpts {}
// SAFETY: as above.
unsafe impl Sync for ReadOpts {}

/// Read flags (`RM_READ_*`).
pub(crate) const READ_NO_FILL_CACHE: u32 = 1;
pub(crate) const READ_NO_VERIFY_CHECKSUMS: u32 = 2;
pub(crate) const READ_FLAGS: u32 = READ_NO_FILL_CACHE | READ_NO_VERIFY_CHECKSUMS;
/// Write flags (`RM_WRITE_*`).
pub(crate) const WRITE_SYNC: u32 = 1;
pub(crate) const WRITE_DISABLE_WAL: u32 = 2;
pub(crate) const WRITE_FLAGS: u32 = WRITE_SYNC | WRITE_DISABLE_WAL;

impl ReadOpts {
    /// Options for `flags` (a combination of `READ_*`), reading at `snapshot` when not NULL.
    /// The snapshot must outlive the options.
    pub(crate) fn new(flags: u32, snapshot: *const ffi::rocksdb_snapshot_t) -> ReadOpts {
        // SAFETY: create returns a fresh object (RocksDB aborts on allocation failure); the
        // setters take that object and plain values; the snapshot pointer, when set, is valid
        // for the life of these options per this function's contract.
        unsafe {
            let ro = ffi::rocksdb_readoptions_create();
            ffi::rocksdb_readoptions_set_fill_cache(ro, u8::from(flags & READ_NO_FILL_CACHE == 0));
            ffi::rocksdb_readoptions_set_verify_checksums(
                ro,
                u8::from(flags & READ_NO_VERIFY_CHECKSUMS == 0),
            );
            if !snapshot.is_null() {
                ffi::rocksdb_readoptions_set_snapshot(ro, snapshot);
            }
            ReadOpts(ro)
        }
    }

    /// The four flag combinations, indexed by flags.
    pub(crate) fn all(snapshot: *const ffi::rocksdb_snapshot_t) -> [ReadOpts; 4] {
        [0, 1, 2, 3].map(|f| ReadOpts::new(f, snapshot))
    }

    /// Sets iteration bounds. The bytes must stay where they are for the life of the options
    /// (RocksDB keeps pointers to them).
    fn set_bounds(&mut self, lower: Option<&[u8]>, upper: Option<&[u8]>) {
        // SAFETY: `self.0` is live; the key pointers stay valid as long as the options, per
        // this function's contract (the iterator state owns the boxed bounds).
        unsafe {
            if let Some(l) = lower {
                ffi::rocksdb_readoptions_set_iterate_lower_bound(
                    self.0,
                    l.as_ptr().cast(),
                    l.len(),
                );
            }
            if let Some(u) = upper {
                ffi::rocksdb_readoptions_set_iterate_upper_bound(
                    self.0,
                    u.as_ptr().cast(),
                    u.len(),
                );
            }
        }
    }
}

impl Drop for ReadOpts {
    fn drop(&mut self) {
        // SAFETY: created by rocksdb_readoptions_create, destroyed exactly once, here; nothing
        // using it (an iterator) outlives it: the iterator state drops the iterator first.
        unsafe { ffi::rocksdb_readoptions_destroy(self.0) }
    }
}

/// Index into a `[ReadOpts; 4]` for `flags`, or the error for unknown bits.
pub(crate) fn read_index(flags: u32) -> Result<usize> {
    if flags & !READ_FLAGS != 0 {
        return Err(Error::InvalidArgument(format!(
            "unknown read flags {:#x} (known: RM_READ_NO_FILL_CACHE, RM_READ_NO_VERIFY_CHECKSUMS)",
            flags & !READ_FLAGS
        )));
    }
    Ok(flags as usize)
}

/// Write options, immutable after construction.
pub(crate) struct WriteOpts(*mut ffi::rocksdb_writeoptions_t);

// SAFETY: as for ReadOpts: immutable plain data, only read by RocksDB.
unsafe impl Send for WriteOpts {}
// SAFETY: as above.
unsafe impl Sync for WriteOpts {}

impl WriteOpts {
    fn new(flags: u32) -> WriteOpts {
        // SAFETY: a fresh object and plain values.
        unsafe {
            let wo = ffi::rocksdb_writeoptions_create();
            ffi::rocksdb_writeoptions_set_sync(wo, u8::from(flags & WRITE_SYNC != 0));
            ffi::rocksdb_writeoptions_disable_WAL(wo, i32::from(flags & WRITE_DISABLE_WAL != 0));
            WriteOpts(wo)
        }
    }

    /// The valid flag combinations, indexed by flags (3, sync without WAL, is never used).
    pub(crate) fn all() -> [WriteOpts; 3] {
        [0, 1, 2].map(WriteOpts::new)
    }
}

impl Drop for WriteOpts {
    fn drop(&mut self) {
        // SAFETY: created by rocksdb_writeoptions_create, destroyed exactly once, here.
        unsafe { ffi::rocksdb_writeoptions_destroy(self.0) }
    }
}

/// Index into `WriteOpts::all()` for `flags`, or the error for unknown or contradictory bits.
pub(crate) fn write_index(flags: u32) -> Result<usize> {
    if flags & !WRITE_FLAGS != 0 {
        return Err(Error::InvalidArgument(format!(
            "unknown write flags {:#x} (known: RM_WRITE_SYNC, RM_WRITE_DISABLE_WAL)",
            flags & !WRITE_FLAGS
        )));
    }
    if flags == WRITE_SYNC | WRITE_DISABLE_WAL {
        return Err(Error::InvalidArgument(
            "RM_WRITE_SYNC needs the WAL: it cannot be combined with RM_WRITE_DISABLE_WAL".into(),
        ));
    }
    Ok(flags as usize)
}

/// A live DB and one of its column families, as RocksDB's C API takes them.
#[derive(Clone, Copy)]
pub(crate) struct Target {
    pub db: *mut ffi::rocksdb_t,
    pub cf: *mut ffi::rocksdb_column_family_handle_t,
}

/// Reads `key` into `out` with one copy from RocksDB's pinned memory and no allocation:
/// `Ok(len)`, `BufferTooSmall { needed }` (nothing copied) or `NotFound`.
///
/// # Safety
/// `t` names an open DB and one of its column families, both kept open for the call.
pub(crate) unsafe fn get_into(
    t: Target,
    ro: &ReadOpts,
    key: &[u8],
    out: &mut [u8],
) -> Result<usize> {
    let mut len = 0usize;
    let mut found = 0u8;
    let mut err: *mut c_char = ptr::null_mut();
    // SAFETY: db, cf and ro are live (contract and ownership); key and out are valid slices
    // whose lengths are passed along; len, found and err are valid out-pointers.
    let fits = unsafe {
        ffi::rocksdb_get_into_buffer_cf(
            t.db,
            ro.0,
            t.cf,
            key.as_ptr().cast(),
            key.len(),
            out.as_mut_ptr().cast(),
            out.len(),
            &mut len,
            &mut found,
            &mut err,
        )
    };
    // SAFETY: err is NULL or a RocksDB-allocated message.
    if let Some(e) = unsafe { take_error(err) } {
        return Err(e);
    }
    match (found != 0, fits != 0) {
        (false, _) => Err(Error::NotFound),
        (true, true) => Ok(len),
        (true, false) => Err(Error::BufferTooSmall { needed: len }),
    }
}

/// One key's result from [`multi_get`].
pub(crate) enum Got {
    Found,
    NotFound,
    Failed(Error),
}

/// Reads `keys` from one column family in one batched call; `each(i, result, value)` is called
/// for every key in order, with the value borrowed from RocksDB for the duration of the call.
///
/// # Safety
/// As for [`get_into`].
pub(crate) unsafe fn multi_get(
    t: Target,
    ro: &ReadOpts,
    keys: &[&[u8]],
    mut each: impl FnMut(usize, Got, &[u8]),
) {
    let slices: Vec<ffi::rocksdb_slice_t> = keys
        .iter()
        .map(|k| ffi::rocksdb_slice_t {
            data: k.as_ptr().cast(),
            size: k.len(),
        })
        .collect();
    let mut values: Vec<*mut ffi::rocksdb_pinnableslice_t> = vec![ptr::null_mut(); keys.len()];
    let mut errs: Vec<*mut c_char> = vec![ptr::null_mut(); keys.len()];
    // SAFETY: db, cf, ro live (contract); the three arrays hold keys.len() elements each and
    // the key slices point into `keys`, alive for the call.
    unsafe {
        ffi::rocksdb_batched_multi_get_cf_slice(
            t.db,
            ro.0,
            t.cf,
            keys.len(),
            slices.as_ptr(),
            values.as_mut_ptr(),
            errs.as_mut_ptr(),
            false,
        )
    };
    // Every value and error is released below even if `each` panics (guard).
    struct Release<'a>(
        &'a mut [*mut ffi::rocksdb_pinnableslice_t],
        &'a mut [*mut c_char],
    );
    impl Drop for Release<'_> {
        fn drop(&mut self) {
            for v in self.0.iter_mut() {
                if !v.is_null() {
                    // SAFETY: returned by RocksDB, destroyed exactly once (then nulled).
                    unsafe { ffi::rocksdb_pinnableslice_destroy(*v) };
                    *v = ptr::null_mut();
                }
            }
            for e in self.1.iter_mut() {
                if !e.is_null() {
                    // SAFETY: strdup'ed by RocksDB, freed exactly once (then nulled).
                    unsafe { ffi::rocksdb_free((*e).cast()) };
                    *e = ptr::null_mut();
                }
            }
        }
    }
    let guard = Release(&mut values, &mut errs);
    for i in 0..keys.len() {
        let v = guard.0[i];
        let e = std::mem::replace(&mut guard.1[i], ptr::null_mut());
        // SAFETY: e is NULL or a RocksDB message, now owned here (taken out of the guard).
        if let Some(err) = unsafe { take_error(e) } {
            each(i, Got::Failed(err), &[]);
        } else if v.is_null() {
            each(i, Got::NotFound, &[]);
        } else {
            let mut len = 0usize;
            // SAFETY: v is a live pinnable slice; its bytes stay valid until it is destroyed
            // (by the guard, after this loop).
            let data = unsafe { ffi::rocksdb_pinnableslice_value(v, &mut len) };
            let value = if len == 0 {
                &[][..]
            } else {
                // SAFETY: `len` bytes at `data`, alive until the guard runs.
                unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) }
            };
            each(i, Got::Found, value);
        }
    }
    drop(guard);
}

/// A snapshot of a DB. Released explicitly with the DB still open ([`Snapshot::release`]).
pub(crate) struct Snapshot(*const ffi::rocksdb_snapshot_t);

// SAFETY: a RocksDB snapshot is an immutable sequence number record, usable from any thread.
unsafe impl Send for Snapshot {}
// SAFETY: as above.
unsafe impl Sync for Snapshot {}

impl Snapshot {
    /// # Safety
    /// `db` is open, and stays open until [`Snapshot::release`] is called on it.
    pub(crate) unsafe fn create(db: *mut ffi::rocksdb_t) -> Snapshot {
        // SAFETY: per contract.
        Snapshot(unsafe { ffi::rocksdb_create_snapshot(db) })
    }

    pub(crate) fn as_ptr(&self) -> *const ffi::rocksdb_snapshot_t {
        self.0
    }

    /// # Safety
    /// `db` is the open DB the snapshot was taken from; called at most once.
    pub(crate) unsafe fn release(&self, db: *mut ffi::rocksdb_t) {
        // SAFETY: per contract.
        unsafe { ffi::rocksdb_release_snapshot(db, self.0) }
    }
}

/// An iterator with the read options and bound keys it points into. Not thread-safe: the
/// iterator resource keeps it behind a mutex.
pub(crate) struct Iter {
    it: *mut ffi::rocksdb_iterator_t,
    // Dropped after the iterator (which points into both): see Drop.
    _ro: ReadOpts,
    _lower: Option<Box<[u8]>>,
    _upper: Option<Box<[u8]>>,
}

// SAFETY: a RocksDB iterator may be used from any thread, one thread at a time; the resource
// holds it behind a mutex.
unsafe impl Send for Iter {}

impl Iter {
    /// # Safety
    /// `t` is open and stays open until [`Iter::destroy`]; `snapshot`, if not NULL, stays
    /// unreleased until then.
    pub(crate) unsafe fn create(
        t: Target,
        flags: u32,
        snapshot: *const ffi::rocksdb_snapshot_t,
        lower: Option<&[u8]>,
        upper: Option<&[u8]>,
    ) -> Iter {
        let mut ro = ReadOpts::new(flags, snapshot);
        let lower: Option<Box<[u8]>> = lower.map(Box::from);
        let upper: Option<Box<[u8]>> = upper.map(Box::from);
        ro.set_bounds(lower.as_deref(), upper.as_deref());
        // SAFETY: db and cf open per contract; ro lives as long as the iterator (same struct).
        let it = unsafe { ffi::rocksdb_create_iterator_cf(t.db, ro.0, t.cf) };
        Iter {
            it,
            _ro: ro,
            _lower: lower,
            _upper: upper,
        }
    }

    fn live(&self) -> Result<*mut ffi::rocksdb_iterator_t> {
        if self.it.is_null() {
            Err(Error::Closed("the iterator is closed".into()))
        } else {
            Ok(self.it)
        }
    }

    pub(crate) fn seek(&mut self, how: Seek<'_>) -> Result<()> {
        let it = self.live()?;
        // SAFETY: `it` is live (not destroyed); keys are valid slices for the call.
        unsafe {
            match how {
                Seek::First => ffi::rocksdb_iter_seek_to_first(it),
                Seek::Last => ffi::rocksdb_iter_seek_to_last(it),
                Seek::To(k) => ffi::rocksdb_iter_seek(it, k.as_ptr().cast(), k.len()),
                Seek::ForPrev(k) => ffi::rocksdb_iter_seek_for_prev(it, k.as_ptr().cast(), k.len()),
            }
        }
        Ok(())
    }

    /// Valid, or the iterator's error if it failed.
    pub(crate) fn valid(&self) -> Result<bool> {
        let it = self.live()?;
        // SAFETY: `it` is live.
        if unsafe { ffi::rocksdb_iter_valid(it) } != 0 {
            return Ok(true);
        }
        let mut err: *mut c_char = ptr::null_mut();
        // SAFETY: `it` is live; err is a valid out-pointer; the message is freed by take_error.
        unsafe {
            ffi::rocksdb_iter_get_error(it, &mut err);
            match take_error(err) {
                Some(e) => Err(e),
                None => Ok(false),
            }
        }
    }

    fn positioned(&self) -> Result<*mut ffi::rocksdb_iterator_t> {
        if self.valid()? {
            Ok(self.it)
        } else {
            Err(Error::IteratorNotValid(
                "the iterator is not positioned on an entry (seek first; it is past the end after the last next or prev)".into(),
            ))
        }
    }

    /// Moves forward (`forward`) or back; refused when not positioned (RocksDB's own Next on
    /// an invalid iterator is undefined behaviour).
    pub(crate) fn step(&mut self, forward: bool) -> Result<()> {
        let it = self.positioned()?;
        // SAFETY: `it` is live and valid, as Next/Prev require.
        unsafe { advance(it, forward) };
        Ok(())
    }

    /// Offers the current entry to `take` and, if taken, moves on (forward or back), for as
    /// long as there is an entry and `take` takes it. Returns whether the iterator ends on an
    /// entry (the first one not taken), or the iterator's error. One validity check per entry,
    /// where `current` and `step` would make four.
    pub(crate) fn take_while(
        &mut self,
        forward: bool,
        mut take: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<bool> {
        let it = self.live()?;
        loop {
            // SAFETY: `it` is live.
            if unsafe { ffi::rocksdb_iter_valid(it) } == 0 {
                return self.valid();
            }
            let (mut kl, mut vl) = (0usize, 0usize);
            // SAFETY: `it` is live and valid; the bytes stay valid until the iterator moves,
            // which happens only after `take` has returned (the slices do not outlive the
            // call).
            let taken = unsafe {
                let k = ffi::rocksdb_iter_key(it, &mut kl);
                let v = ffi::rocksdb_iter_value(it, &mut vl);
                take(raw_slice(k, kl), raw_slice(v, vl))
            };
            if !taken {
                return Ok(true);
            }
            // SAFETY: `it` is live and valid (checked above; taking does not move it).
            unsafe { advance(it, forward) };
        }
    }

    /// The current key (`key`) or value, borrowed until the next move.
    pub(crate) fn current(&self, key: bool) -> Result<&[u8]> {
        let it = self.positioned()?;
        let mut len = 0usize;
        // SAFETY: `it` is live and valid; the returned bytes stay valid until the iterator
        // moves, which cannot happen while `&self` is borrowed.
        unsafe {
            let p = if key {
                ffi::rocksdb_iter_key(it, &mut len)
            } else {
                ffi::rocksdb_iter_value(it, &mut len)
            };
            Ok(raw_slice(p, len))
        }
    }

    /// Destroys the iterator. Idempotent.
    ///
    /// # Safety
    /// The DB it was created on is still open.
    pub(crate) unsafe fn destroy(&mut self) {
        if !self.it.is_null() {
            // SAFETY: created by rocksdb_create_iterator_cf, destroyed once (then nulled); the
            // DB is open per contract.
            unsafe { ffi::rocksdb_iter_destroy(self.it) };
            self.it = ptr::null_mut();
        }
    }
}

impl Drop for Iter {
    fn drop(&mut self) {
        // Normally destroyed by the resource's close; this is the path of a resource that was
        // never registered (its creator still holds the lease keeping the DB open).
        // SAFETY: see above: the only owners that drop an undestroyed iterator hold a lease on
        // its column family, hence on its DB.
        unsafe { self.destroy() }
    }
}

/// Where [`Iter::seek`] goes.
pub enum Seek<'a> {
    First,
    Last,
    To(&'a [u8]),
    ForPrev(&'a [u8]),
}

/// A write batch. Independent of any DB until written. Not thread-safe: the batch resource
/// keeps it behind a mutex.
pub(crate) struct Batch(*mut ffi::rocksdb_writebatch_t);

// SAFETY: a WriteBatch is plain owned data; one thread at a time (mutex in the resource).
unsafe impl Send for Batch {}

impl Batch {
    pub(crate) fn new() -> Batch {
        // SAFETY: returns a fresh batch.
        Batch(unsafe { ffi::rocksdb_writebatch_create() })
    }

    /// # Safety
    /// `cf` is a live column-family handle (only its id is recorded).
    pub(crate) unsafe fn put(
        &mut self,
        cf: *mut ffi::rocksdb_column_family_handle_t,
        key: &[u8],
        value: &[u8],
    ) {
        // SAFETY: live batch, live cf (contract), valid slices.
        unsafe {
            ffi::rocksdb_writebatch_put_cf(
                self.0,
                cf,
                key.as_ptr().cast(),
                key.len(),
                value.as_ptr().cast(),
                value.len(),
            )
        }
    }

    /// # Safety
    /// As for [`Batch::put`].
    pub(crate) unsafe fn delete(
        &mut self,
        cf: *mut ffi::rocksdb_column_family_handle_t,
        key: &[u8],
    ) {
        // SAFETY: live batch, live cf (contract), valid slice.
        unsafe { ffi::rocksdb_writebatch_delete_cf(self.0, cf, key.as_ptr().cast(), key.len()) }
    }

    /// # Safety
    /// As for [`Batch::put`].
    pub(crate) unsafe fn delete_range(
        &mut self,
        cf: *mut ffi::rocksdb_column_family_handle_t,
        begin: &[u8],
        end: &[u8],
    ) {
        // SAFETY: live batch, live cf (contract), valid slices.
        unsafe {
            ffi::rocksdb_writebatch_delete_range_cf(
                self.0,
                cf,
                begin.as_ptr().cast(),
                begin.len(),
                end.as_ptr().cast(),
                end.len(),
            )
        }
    }

    pub(crate) fn clear(&mut self) {
        // SAFETY: live batch.
        unsafe { ffi::rocksdb_writebatch_clear(self.0) }
    }

    pub(crate) fn count(&self) -> usize {
        // SAFETY: live batch; count only reads it.
        let n = unsafe { ffi::rocksdb_writebatch_count(self.0) };
        usize::try_from(n).unwrap_or(0)
    }

    /// Applies the batch atomically.
    ///
    /// # Safety
    /// `db` is open for the call.
    pub(crate) unsafe fn write(&self, db: *mut ffi::rocksdb_t, wo: &WriteOpts) -> Result<()> {
        let mut err: *mut c_char = ptr::null_mut();
        // SAFETY: open db (contract), live options and batch, valid out-pointer.
        unsafe {
            ffi::rocksdb_write(db, wo.0, self.0, &mut err);
            take_error(err).map_or(Ok(()), Err)
        }
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        // SAFETY: created by rocksdb_writebatch_create, destroyed exactly once, here.
        unsafe { ffi::rocksdb_writebatch_destroy(self.0) }
    }
}

/// Writes `key` = `value` (or deletes `key` when `value` is None).
///
/// # Safety
/// As for [`get_into`].
pub(crate) unsafe fn put_or_delete(
    t: Target,
    wo: &WriteOpts,
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<()> {
    let mut err: *mut c_char = ptr::null_mut();
    // SAFETY: open db and cf (contract), live options, valid slices and out-pointer.
    unsafe {
        match value {
            Some(v) => ffi::rocksdb_put_cf(
                t.db,
                wo.0,
                t.cf,
                key.as_ptr().cast(),
                key.len(),
                v.as_ptr().cast(),
                v.len(),
                &mut err,
            ),
            None => {
                ffi::rocksdb_delete_cf(t.db, wo.0, t.cf, key.as_ptr().cast(), key.len(), &mut err)
            }
        }
        take_error(err).map_or(Ok(()), Err)
    }
}

/// RocksDB's Next (`forward`) or Prev.
///
/// # Safety
/// `it` is a live iterator positioned on an entry (RocksDB's Next and Prev are undefined
/// otherwise).
unsafe fn advance(it: *mut ffi::rocksdb_iterator_t, forward: bool) {
    // SAFETY: per this function's contract.
    unsafe {
        if forward {
            ffi::rocksdb_iter_next(it)
        } else {
            ffi::rocksdb_iter_prev(it)
        }
    }
}

/// The `len` bytes at `p` (none when `len` is 0, where RocksDB may return any pointer).
///
/// # Safety
/// When `len` is not 0, `p` points to `len` readable bytes that stay valid and unchanged for
/// `'a`.
unsafe fn raw_slice<'a>(p: *const c_char, len: usize) -> &'a [u8] {
    if len == 0 {
        &[]
    } else {
        // SAFETY: per this function's contract.
        unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }
    }
}
