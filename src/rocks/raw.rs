//! Owned wrappers over the RocksDB C objects that rust-rocksdb either does not expose in the
//! shape resman needs or ties to a borrow of the DB: read and write options (built once per
//! flag combination, never per call), snapshots, iterators and write batches, plus the
//! allocation-free point read, the point write and the batched multi-get of one column family.
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
    // SAFETY: `err` is not NULL (checked above), so by this function's contract it is a string
    // RocksDB allocated (strdup: NUL-terminated) and has not freed; it is read before the free.
    let msg = unsafe { CStr::from_ptr(err) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: RocksDB allocated it with malloc and it is not freed yet (this function's
    // contract); this is its only free, and `msg` is an owned copy, so nothing reads it after.
    unsafe { ffi::rocksdb_free(err.cast()) };
    Some(super::status::classify(msg))
}

/// Read options, immutable after construction.
pub(crate) struct ReadOpts(*mut ffi::rocksdb_readoptions_t);

// SAFETY: a ReadOptions is plain data with no tie to the thread that made it; the pointer is
// owned (destroyed once, by Drop), so moving it to another thread moves the ownership.
unsafe impl Send for ReadOpts {}
// SAFETY: after construction nothing mutates it (no `&self` method writes, and `set_bounds`
// runs before the options are shared), and RocksDB only reads options, so reads through
// `&ReadOpts` from several threads at once do not race.
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
    ///
    /// # Safety
    /// `snapshot` is NULL or a snapshot that is not released yet, and stays unreleased for as
    /// long as the options are used for a read (RocksDB reads through the pointer then).
    pub(crate) unsafe fn new(flags: u32, snapshot: *const ffi::rocksdb_snapshot_t) -> ReadOpts {
        // SAFETY: create returns a fresh object (RocksDB aborts on allocation failure), and
        // the setters take that live object and plain values; set_snapshot reads the snapshot,
        // which is unreleased now by this function's contract, and the reads that follow
        // through these options are covered by the same contract.
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
    ///
    /// # Safety
    /// As for [`ReadOpts::new`].
    pub(crate) unsafe fn all(snapshot: *const ffi::rocksdb_snapshot_t) -> [ReadOpts; 4] {
        // SAFETY: this function's contract is `new`'s, for the same snapshot.
        [0, 1, 2, 3].map(|f| unsafe { ReadOpts::new(f, snapshot) })
    }

    /// Sets iteration bounds. RocksDB keeps pointers to the bytes, not a copy.
    ///
    /// # Safety
    /// The bytes of `lower` and `upper` stay where they are, unchanged, for as long as the
    /// options are used (by an iterator created with them); their borrow ends with this call,
    /// so the compiler does not check that.
    unsafe fn set_bounds(&mut self, lower: Option<&[u8]>, upper: Option<&[u8]>) {
        // SAFETY: `self.0` is live (owned, destroyed only by Drop); the setters copy the
        // pointer and length, which stay valid for as long as the options are used by this
        // function's contract.
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
        // SAFETY: `self.0` was created by rocksdb_readoptions_create and is destroyed exactly
        // once, here (ReadOpts is not Clone); nothing that uses it outlives it: an iterator's
        // options sit in its `Iter`, which destroys the iterator before its fields drop, and
        // a DB's or snapshot's options are only used under a lease on their owner.
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

// SAFETY: as for ReadOpts: plain data, owned through the pointer (destroyed once, by Drop).
unsafe impl Send for WriteOpts {}
// SAFETY: nothing mutates it after construction (no method writes), and RocksDB only reads
// write options, so concurrent writes sharing one do not race on it.
unsafe impl Sync for WriteOpts {}

impl WriteOpts {
    fn new(flags: u32) -> WriteOpts {
        // SAFETY: create returns a fresh object (RocksDB aborts on allocation failure); the
        // setters take that live object and plain values.
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
        // SAFETY: `self.0` was created by rocksdb_writeoptions_create and is destroyed exactly
        // once, here (WriteOpts is not Clone); writes borrow it only for their call.
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
/// `t` names an open DB and one of its column families, both kept open for the call; the
/// snapshot `ro` reads at, if any, stays unreleased for the call.
pub(crate) unsafe fn get_into(
    t: Target,
    ro: &ReadOpts,
    key: &[u8],
    out: &mut [u8],
) -> Result<usize> {
    let mut len = 0usize;
    let mut found = 0u8;
    let mut err: *mut c_char = ptr::null_mut();
    // SAFETY: db, cf and ro's snapshot are live for the call (this function's contract) and
    // ro itself is (borrowed); key and out are valid slices whose lengths are passed along,
    // and RocksDB writes at most `out.len()` bytes; len, found and err are valid out-pointers.
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
    // SAFETY: `err` is NULL or the message RocksDB allocated for this call, not freed yet.
    if let Some(e) = unsafe { take_error(err) } {
        return Err(e);
    }
    match (found != 0, fits != 0) {
        (false, _) => Err(Error::NotFound),
        (true, true) => Ok(len),
        (true, false) => Err(Error::BufferTooSmall { needed: len }),
    }
}

/// Reads `key` and hands its value, pinned in RocksDB's memory, to `f`: one lookup whatever
/// the value's size, and no copy but the one `f` makes. `Ok(None)` (and `f` not called) when
/// there is no such key. The pin is released when `f` returns or unwinds.
///
/// # Safety
/// As for [`get_into`]: `t` names an open DB and one of its column families, both kept open
/// for the call (`f` included); the snapshot `ro` reads at, if any, stays unreleased for it.
pub(crate) unsafe fn get_pinned<R>(
    t: Target,
    ro: &ReadOpts,
    key: &[u8],
    f: impl FnOnce(&[u8]) -> R,
) -> Result<Option<R>> {
    /// Owns a pinned value; destroying it releases the pin.
    struct Pinned(*mut ffi::rocksdb_pinnableslice_t);
    impl Drop for Pinned {
        fn drop(&mut self) {
            // SAFETY: the pointer came non-NULL from rocksdb_get_pinned_cf and this is its
            // only destroy; the DB is still open (the contract of `get_pinned`, which owns
            // this value for no longer than its call).
            unsafe { ffi::rocksdb_pinnableslice_destroy(self.0) }
        }
    }
    let mut err: *mut c_char = ptr::null_mut();
    // SAFETY: db, cf and ro's snapshot are live for the call (this function's contract) and
    // ro itself is (borrowed); key is a valid slice whose length is passed along; err is a
    // valid out-pointer.
    let v = unsafe {
        ffi::rocksdb_get_pinned_cf(t.db, ro.0, t.cf, key.as_ptr().cast(), key.len(), &mut err)
    };
    // SAFETY: `err` is NULL or the message RocksDB allocated for this call, not freed yet.
    if let Some(e) = unsafe { take_error(err) } {
        // RocksDB returns no value with an error; should it ever, it is still released.
        drop((!v.is_null()).then_some(Pinned(v)));
        return Err(e);
    }
    if v.is_null() {
        return Ok(None);
    }
    let pinned = Pinned(v);
    let mut len = 0usize;
    // SAFETY: `pinned.0` is a live pinnable slice (destroyed only by `pinned`'s drop, below);
    // `len` is a valid out-pointer.
    let p = unsafe { ffi::rocksdb_pinnableslice_value(pinned.0, &mut len) };
    let value: &[u8] = if len == 0 || p.is_null() {
        &[]
    } else {
        // SAFETY: RocksDB's value is `len` readable bytes at `p`, pinned until `pinned` is
        // destroyed, which happens after `f` has returned (the borrow ends there).
        unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }
    };
    Ok(Some(f(value)))
}

/// One key's result from [`multi_get_cf`].
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
pub(crate) unsafe fn multi_get_cf(
    t: Target,
    ro: &ReadOpts,
    keys: &[&[u8]],
    mut each: impl FnMut(usize, Got, &[u8]),
) {
    // SAFETY: this function's contract is `fetch`'s.
    let mut results = unsafe { MultiGetResults::fetch(t, ro, keys) };
    for i in 0..keys.len() {
        let (got, value) = results.get(i);
        each(i, got, value);
    }
    // Dropping `results` releases every value and message, also when `each` panics.
}

/// What one batched multi-get returned: per key, a pinnable slice (NULL: no such key) and an
/// error message (NULL: none). Every entry is NULL or an object RocksDB allocated for that call
/// and nothing has released yet; each is released exactly once, by `get` (messages) or `Drop`.
struct MultiGetResults {
    values: Vec<*mut ffi::rocksdb_pinnableslice_t>,
    errs: Vec<*mut c_char>,
}

impl MultiGetResults {
    /// Runs RocksDB's batched multi-get for `keys`.
    ///
    /// # Safety
    /// As for [`get_into`].
    unsafe fn fetch(t: Target, ro: &ReadOpts, keys: &[&[u8]]) -> MultiGetResults {
        let slices: Vec<ffi::rocksdb_slice_t> = keys
            .iter()
            .map(|k| ffi::rocksdb_slice_t {
                data: k.as_ptr().cast(),
                size: k.len(),
            })
            .collect();
        let mut results = MultiGetResults {
            values: vec![ptr::null_mut(); keys.len()],
            errs: vec![ptr::null_mut(); keys.len()],
        };
        // SAFETY: db, cf and ro's snapshot are live for the call (this function's contract)
        // and ro itself is (borrowed); the three arrays hold keys.len() elements each, and the
        // key slices point into `keys`, borrowed for the call. RocksDB fills each entry with
        // NULL or an object it allocated, as `MultiGetResults` requires.
        unsafe {
            ffi::rocksdb_batched_multi_get_cf_slice(
                t.db,
                ro.0,
                t.cf,
                keys.len(),
                slices.as_ptr(),
                results.values.as_mut_ptr(),
                results.errs.as_mut_ptr(),
                false,
            )
        };
        results
    }

    /// Key `i`'s result, its value borrowed from RocksDB until `self` is borrowed again.
    fn get(&mut self, i: usize) -> (Got, &[u8]) {
        let e = std::mem::replace(&mut self.errs[i], ptr::null_mut());
        // SAFETY: `e` is NULL or a message RocksDB allocated and nothing freed (the struct's
        // invariant); it was replaced by NULL above, so it is freed here only, once.
        if let Some(err) = unsafe { take_error(e) } {
            return (Got::Failed(err), &[]);
        }
        let v = self.values[i];
        if v.is_null() {
            return (Got::NotFound, &[]);
        }
        let mut len = 0usize;
        // SAFETY: `v` is a pinnable slice RocksDB returned and nothing destroyed yet (the
        // struct's invariant: only `Drop` destroys it); `len` is a valid out-pointer.
        let data = unsafe { ffi::rocksdb_pinnableslice_value(v, &mut len) };
        // SAFETY: RocksDB's pinned value is `len` readable bytes at `data`, unchanged until `v`
        // is destroyed, which only `Drop` does: the returned borrow of `self` ends before.
        (Got::Found, unsafe { raw_slice(data, len) })
    }
}

impl Drop for MultiGetResults {
    fn drop(&mut self) {
        for v in self.values.iter_mut().filter(|v| !v.is_null()) {
            // SAFETY: a pinnable slice RocksDB returned and nothing destroyed yet (the struct's
            // invariant); this is its one destruction.
            unsafe { ffi::rocksdb_pinnableslice_destroy(*v) };
        }
        for e in self.errs.iter_mut().filter(|e| !e.is_null()) {
            // SAFETY: a message RocksDB strdup'ed and nothing freed yet: `get` frees the ones
            // it takes and leaves NULL; this is the one free of the others.
            unsafe { ffi::rocksdb_free((*e).cast()) };
        }
    }
}

/// A snapshot of a DB. Released explicitly with the DB still open ([`Snapshot::release`]).
pub(crate) struct Snapshot(*const ffi::rocksdb_snapshot_t);

// SAFETY: a RocksDB snapshot is an immutable sequence number record, usable and releasable
// from any thread.
unsafe impl Send for Snapshot {}
// SAFETY: `&Snapshot` only reads the pointer or releases it (`release`, whose contract allows
// one call); RocksDB reads snapshots from many threads at once.
unsafe impl Sync for Snapshot {}

impl Snapshot {
    /// Takes a snapshot of `db`.
    ///
    /// # Safety
    /// `db` is open, and stays open until [`Snapshot::release`] is called on it.
    pub(crate) unsafe fn create(db: *mut ffi::rocksdb_t) -> Snapshot {
        // SAFETY: `db` is open for the call by this function's contract.
        Snapshot(unsafe { ffi::rocksdb_create_snapshot(db) })
    }

    pub(crate) fn as_ptr(&self) -> *const ffi::rocksdb_snapshot_t {
        self.0
    }

    /// Releases the snapshot.
    ///
    /// # Safety
    /// `db` is the open DB the snapshot was taken from; called at most once.
    pub(crate) unsafe fn release(&self, db: *mut ffi::rocksdb_t) {
        // SAFETY: by this function's contract `db` is open and is the snapshot's DB, and the
        // snapshot has not been released before (this is the one call).
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
    /// Creates an iterator over `t` at `snapshot` (NULL: the data as of now), with `flags` and
    /// bounds (copied into the iterator).
    ///
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
        // SAFETY: `snapshot` is NULL or unreleased until `destroy` (this function's contract),
        // and these options are used only by the iterator created below, which `destroy` ends.
        let mut ro = unsafe { ReadOpts::new(flags, snapshot) };
        let lower: Option<Box<[u8]>> = lower.map(Box::from);
        let upper: Option<Box<[u8]>> = upper.map(Box::from);
        // SAFETY: the boxed bytes move into the `Iter` with `ro` and are never changed; moving
        // a Box does not move its heap bytes, and they are dropped after `ro` and after the
        // iterator, the only user of the options (field order and `Drop for Iter`).
        unsafe { ro.set_bounds(lower.as_deref(), upper.as_deref()) };
        // SAFETY: db and cf are open by this function's contract; `ro` (and the bounds it
        // points to) live in the same `Iter` and are dropped only after the iterator is
        // destroyed.
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
        // SAFETY: `it` is live (not destroyed), so its DB is open (`Iter::create`'s contract);
        // RocksDB copies the target key during the call, and the key is a valid slice.
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

    /// Moves the iterator to the DB's latest data (RocksDB's `Iterator::Refresh`), leaving it
    /// unpositioned: the caller seeks next. For an iterator that reads as of its creation,
    /// not one at an explicit snapshot (the caller refuses those).
    pub(crate) fn refresh(&mut self) -> Result<()> {
        let it = self.live()?;
        let mut err: *mut c_char = ptr::null_mut();
        // SAFETY: `it` is live (not destroyed), so its DB is open (`Iter::create`'s contract);
        // `err` is a valid out-pointer, and what RocksDB puts there is a message allocated for
        // this call, which take_error frees once.
        unsafe {
            ffi::rocksdb_iter_refresh(it, &mut err);
            match take_error(err) {
                Some(e) => Err(e),
                None => Ok(()),
            }
        }
    }

    /// Valid, or the iterator's error if it failed.
    pub(crate) fn valid(&self) -> Result<bool> {
        let it = self.live()?;
        // SAFETY: `it` is live (not destroyed), so its DB is open (`Iter::create`'s contract).
        if unsafe { ffi::rocksdb_iter_valid(it) } != 0 {
            return Ok(true);
        }
        let mut err: *mut c_char = ptr::null_mut();
        // SAFETY: `it` is live, as above; `err` is a valid out-pointer, and what RocksDB puts
        // there is a message allocated for this call, which take_error frees once.
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
        // SAFETY: `positioned` returned `it`, so it is live and on an entry: advance's contract.
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
            // SAFETY: `it` is live (not destroyed: `&mut self` is held), so its DB is open.
            if unsafe { ffi::rocksdb_iter_valid(it) } == 0 {
                return self.valid();
            }
            let (mut kl, mut vl) = (0usize, 0usize);
            // SAFETY: `it` is live and on an entry (checked above), as key and value require;
            // their bytes stay valid and unchanged until the iterator moves, which happens only
            // after `take` has returned, and the slices handed to `take` do not outlive that
            // call: raw_slice's contract.
            let taken = unsafe {
                let k = ffi::rocksdb_iter_key(it, &mut kl);
                let v = ffi::rocksdb_iter_value(it, &mut vl);
                take(raw_slice(k, kl), raw_slice(v, vl))
            };
            if !taken {
                return Ok(true);
            }
            // SAFETY: `it` is live and on an entry (checked above; `take` cannot move it: it
            // gets byte slices, not the iterator): advance's contract.
            unsafe { advance(it, forward) };
        }
    }

    /// The current key (`key`) or value, borrowed until the next move.
    pub(crate) fn current(&self, key: bool) -> Result<&[u8]> {
        let it = self.positioned()?;
        let mut len = 0usize;
        // SAFETY: `positioned` returned `it`, so it is live and on an entry, as key and value
        // require; the bytes stay valid and unchanged until the iterator moves or is destroyed,
        // which takes `&mut self`, so not while the returned slice (tied to `&self`) lives.
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
            // SAFETY: `self.it` was created by rocksdb_create_iterator_cf and is not destroyed
            // yet (not NULL; it is nulled right after); its DB is open by this function's
            // contract, as destroying an iterator requires.
            unsafe { ffi::rocksdb_iter_destroy(self.it) };
            self.it = ptr::null_mut();
        }
    }
}

impl Drop for Iter {
    fn drop(&mut self) {
        // Normally destroyed by the resource's close; this is the path of a resource that was
        // never registered (its creator still holds the lease keeping the DB open).
        // SAFETY: `destroy` needs the DB open when the iterator is not destroyed yet. A
        // registered iterator is destroyed by its resource's close, under its pins, before it
        // can be dropped; an unregistered one is dropped inside `rocks::iter::create`, which
        // holds a lease on its column family, hence on the DB, until it returns.
        unsafe { self.destroy() }
    }
}

/// Where an iterator seeks ([`iter::seek`](crate::rocks::iter::seek), `rm_iter_seek*`).
pub enum Seek<'a> {
    First,
    Last,
    To(&'a [u8]),
    ForPrev(&'a [u8]),
}

/// A write batch. Independent of any DB until written. Not thread-safe: the batch resource
/// keeps it behind a mutex.
pub(crate) struct WriteBatch(*mut ffi::rocksdb_writebatch_t);

// SAFETY: a WriteBatch is plain owned data with no tie to a thread; WriteBatch is not Sync, so
// one thread at a time uses it (the resource keeps it behind a mutex).
unsafe impl Send for WriteBatch {}

impl WriteBatch {
    pub(crate) fn new() -> WriteBatch {
        // SAFETY: no argument; returns a fresh batch (RocksDB aborts on allocation failure).
        WriteBatch(unsafe { ffi::rocksdb_writebatch_create() })
    }

    /// Adds "put `key` = `value` in `cf`".
    ///
    /// # Safety
    /// `cf` is a live column-family handle (only its id is recorded).
    pub(crate) unsafe fn put(
        &mut self,
        cf: *mut ffi::rocksdb_column_family_handle_t,
        key: &[u8],
        value: &[u8],
    ) {
        // SAFETY: `self.0` is live (owned, destroyed only by Drop), `cf` is live by this
        // function's contract; RocksDB copies the key and value, valid slices, into the batch.
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

    /// Adds "delete `key` from `cf`".
    ///
    /// # Safety
    /// As for [`WriteBatch::put`].
    pub(crate) unsafe fn delete(
        &mut self,
        cf: *mut ffi::rocksdb_column_family_handle_t,
        key: &[u8],
    ) {
        // SAFETY: as in `put`: live batch, live `cf` (contract), the key copied from a valid
        // slice.
        unsafe { ffi::rocksdb_writebatch_delete_cf(self.0, cf, key.as_ptr().cast(), key.len()) }
    }

    /// Adds "delete the keys in [`begin`, `end`) of `cf`".
    ///
    /// # Safety
    /// As for [`WriteBatch::put`].
    pub(crate) unsafe fn delete_range(
        &mut self,
        cf: *mut ffi::rocksdb_column_family_handle_t,
        begin: &[u8],
        end: &[u8],
    ) {
        // SAFETY: as in `put`: live batch, live `cf` (contract), both keys copied from valid
        // slices.
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
        // SAFETY: `self.0` is live (owned, destroyed only by Drop), and `&mut self` makes this
        // the only use of it.
        unsafe { ffi::rocksdb_writebatch_clear(self.0) }
    }

    pub(crate) fn count(&self) -> usize {
        // SAFETY: `self.0` is live (owned, destroyed only by Drop); count only reads it, and
        // WriteBatch is not Sync, so no other thread writes it meanwhile.
        let n = unsafe { ffi::rocksdb_writebatch_count(self.0) };
        usize::try_from(n).unwrap_or(0)
    }

    /// Applies the batch atomically.
    ///
    /// # Safety
    /// `db` is open for the call.
    pub(crate) unsafe fn write(&self, db: *mut ffi::rocksdb_t, wo: &WriteOpts) -> Result<()> {
        let mut err: *mut c_char = ptr::null_mut();
        // SAFETY: `db` is open by this function's contract; the options and the batch are live
        // (borrowed, destroyed only by their Drop); `err` is a valid out-pointer, and what
        // RocksDB puts there is a message allocated for this call, which take_error frees once.
        unsafe {
            ffi::rocksdb_write(db, wo.0, self.0, &mut err);
            take_error(err).map_or(Ok(()), Err)
        }
    }
}

impl Drop for WriteBatch {
    fn drop(&mut self) {
        // SAFETY: `self.0` was created by rocksdb_writebatch_create and is destroyed exactly
        // once, here (WriteBatch is not Clone); a write borrows it only for its call.
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
    // SAFETY: db and cf are open for the call by this function's contract; the options are
    // live (borrowed); RocksDB copies the key and value, valid slices; `err` is a valid
    // out-pointer, and what RocksDB puts there is a message allocated for this call, which
    // take_error frees once.
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
    // SAFETY: by this function's contract `it` is live and on an entry, as RocksDB's Next and
    // Prev require.
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
        // SAFETY: `len` is not 0, so by this function's contract `p` points to `len` readable
        // bytes, unchanged for `'a`; u8 needs no alignment, and RocksDB's keys and values are
        // far below isize::MAX bytes.
        unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }
    }
}
