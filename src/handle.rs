//! Handles: `u64` names for objects in a table of slots, with generations and kinds.
//!
//! A handle packs (low bits first):
//!
//! ```text
//!   bits  0..5   kind        (5 bits; 0 is no kind)
//!   bits  5..15  tag         (10 bits; the table's tag, never 0)
//!   bits 15..35  slot index  (20 bits: up to 1,048,576 live objects per table)
//!   bits 35..64  generation  (29 bits; starts at 1, +1 each time the slot is reused)
//! ```
//!
//! So 0 is never a handle (its tag is 0), and a number that was not issued by this table is
//! recognised without touching memory it does not own: the tag, the kind, the index range and
//! the generation are all checked before a slot is read, and the slot's occupant must carry the
//! exact same handle.
//!
//! * Freed slots are reused first-in first-out, and only once more than a quarantine's worth of
//!   other slots have been freed since (1024 in resman's tables): a closed handle keeps
//!   answering "closed" for a long while before its slot is reused (after which it answers
//!   "stale"), even to a thread that raced the close. The cost is at most 1024 spare slots
//!   (16 bytes each).
//! * A slot whose generation reaches the maximum is retired instead of reused: a generation can
//!   never wrap around and make an old handle valid again. That costs one slot per 2^29 reuses.
//! * Lookups take no lock: each slot is an `ArcSwapOption`, whose load takes no shared write
//!   in the common case. Only insert and remove take the table's allocation lock, and the
//!   values they remove are dropped by the caller after the lock is released.

use arc_swap::{ArcSwapOption, Guard};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

const KIND_BITS: u32 = 5;
const TAG_BITS: u32 = 10;
const INDEX_BITS: u32 = 20;
const GEN_BITS: u32 = 29;
const TAG_SHIFT: u32 = KIND_BITS;
const INDEX_SHIFT: u32 = KIND_BITS + TAG_BITS;
const GEN_SHIFT: u32 = KIND_BITS + TAG_BITS + INDEX_BITS;

/// Largest slot index + 1.
pub const MAX_SLOTS: u32 = 1 << INDEX_BITS;
/// Largest generation; a slot that reaches it is retired.
pub const MAX_GENERATION: u32 = (1 << GEN_BITS) - 1;
/// Largest table tag.
pub const MAX_TAG: u16 = (1 << TAG_BITS) - 1;

const CHUNK_BITS: u32 = 10;
const CHUNK: usize = 1 << CHUNK_BITS;
const CHUNKS: usize = (MAX_SLOTS as usize) / CHUNK;

/// What a handle names. The numbers are part of the handle encoding: never reuse one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    Manager = 1,
    Db = 2,
    ColumnFamily = 3,
    Foreign = 4,
    Iterator = 5,
    Snapshot = 6,
    Batch = 7,
    Monitor = 8,
}

impl Kind {
    pub fn from_bits(bits: u8) -> Option<Kind> {
        Some(match bits {
            1 => Kind::Manager,
            2 => Kind::Db,
            3 => Kind::ColumnFamily,
            4 => Kind::Foreign,
            5 => Kind::Iterator,
            6 => Kind::Snapshot,
            7 => Kind::Batch,
            8 => Kind::Monitor,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Manager => "manager",
            Kind::Db => "db",
            Kind::ColumnFamily => "column_family",
            Kind::Foreign => "foreign",
            Kind::Iterator => "iterator",
            Kind::Snapshot => "snapshot",
            Kind::Batch => "batch",
            Kind::Monitor => "monitor",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A decoded handle. `Handle::raw` is what crosses the C boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(u64);

impl Handle {
    fn encode(kind: Kind, tag: u16, index: u32, generation: u32) -> Handle {
        debug_assert!(tag != 0 && tag <= MAX_TAG);
        debug_assert!(index < MAX_SLOTS);
        debug_assert!(generation != 0 && generation <= MAX_GENERATION);
        Handle(
            (kind as u64)
                | (u64::from(tag) << TAG_SHIFT)
                | (u64::from(index) << INDEX_SHIFT)
                | (u64::from(generation) << GEN_SHIFT),
        )
    }

    /// Wraps a raw number without checking it; [`HandleTable::get`] does the checking.
    pub const fn from_raw(raw: u64) -> Handle {
        Handle(raw)
    }

    pub const fn raw(self) -> u64 {
        self.0
    }

    fn kind_bits(self) -> u8 {
        (self.0 & ((1 << KIND_BITS) - 1)) as u8
    }

    /// The kind this handle claims to be (None for an unknown kind).
    pub fn kind(self) -> Option<Kind> {
        Kind::from_bits(self.kind_bits())
    }

    pub fn tag(self) -> u16 {
        ((self.0 >> TAG_SHIFT) & ((1 << TAG_BITS) - 1)) as u16
    }

    pub fn index(self) -> u32 {
        ((self.0 >> INDEX_SHIFT) & ((1 << INDEX_BITS) - 1)) as u32
    }

    pub fn generation(self) -> u32 {
        (self.0 >> GEN_SHIFT) as u32
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#018x}", self.0)
    }
}

/// Why a handle was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    /// 0, or a number this table never issued (random, forged, corrupted).
    #[error("invalid handle {0}: {1}")]
    Invalid(Handle, &'static str),
    /// Issued by a table with another tag.
    #[error("handle {0} belongs to another registry (tag {1})")]
    OtherTag(Handle, u16),
    /// Valid, but names an object of another kind than the call expects.
    #[error("handle {handle} is a {actual} handle, expected a {expected} handle")]
    WrongKind {
        handle: Handle,
        expected: Kind,
        actual: Kind,
    },
    /// Its object was removed and the slot now holds a newer object.
    #[error("stale handle {0}: its slot was reused by a newer object")]
    Stale(Handle),
    /// Its object was removed (closed) and the slot has not been reused yet.
    #[error("handle {0} was closed")]
    Removed(Handle),
    /// All slots are in use.
    #[error("handle table full ({0} live objects)")]
    Full(u32),
}

/// A value stored in the table together with the handle that names it.
pub struct Stored<T> {
    pub handle: Handle,
    pub value: T,
}

impl<T> std::ops::Deref for Stored<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// A looked-up object. Holding it keeps the object's memory alive (not the object open: that
/// is what leases are for). Cheap: usually no reference-count write.
pub struct Ref<T>(Guard<Option<Arc<Stored<T>>>>);

impl<T> Ref<T> {
    /// An owned, reference-counted pointer to the same object.
    pub fn to_arc(&self) -> Arc<Stored<T>> {
        Arc::clone(self.arc())
    }
    pub fn arc(&self) -> &Arc<Stored<T>> {
        // Invariant: a Ref is only built from a Some guard (see HandleTable::get).
        self.0.as_ref().expect("Ref holds an object")
    }
}

impl<T> fmt::Debug for Ref<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ref({})", self.handle)
    }
}

impl<T> std::ops::Deref for Ref<T> {
    type Target = Stored<T>;
    fn deref(&self) -> &Stored<T> {
        self.arc()
    }
}

struct Slot<T> {
    value: ArcSwapOption<Stored<T>>,
    /// generation << 1 | occupied
    meta: AtomicU64,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot {
            value: ArcSwapOption::empty(),
            meta: AtomicU64::new(0),
        }
    }
}

/// A lazily allocated block of slots.
type Chunk<T> = OnceLock<Box<[Slot<T>]>>;

struct Alloc {
    free: VecDeque<u32>,
    live: u32,
    retired: u32,
}

/// A table of objects named by handles. See the module documentation.
pub struct HandleTable<T> {
    tag: u16,
    /// Freed slots held back from reuse (see the module documentation).
    quarantine: usize,
    chunks: Box<[Chunk<T>]>,
    /// Slots ever handed out: indexes at or past this were never issued.
    issued: AtomicU32,
    alloc: Mutex<Alloc>,
}

impl<T> HandleTable<T> {
    /// A table whose handles carry `tag` (1..=1023), reusing a freed slot as soon as it is
    /// the oldest free one.
    pub fn new(tag: u16) -> Self {
        Self::with_quarantine(tag, 0)
    }

    /// A table that reuses a freed slot only while more than `quarantine` slots are free.
    pub fn with_quarantine(tag: u16, quarantine: usize) -> Self {
        assert!(tag != 0 && tag <= MAX_TAG, "table tag out of range: {tag}");
        HandleTable {
            tag,
            quarantine,
            chunks: (0..CHUNKS).map(|_| OnceLock::new()).collect(),
            issued: AtomicU32::new(0),
            alloc: Mutex::new(Alloc {
                free: VecDeque::new(),
                live: 0,
                retired: 0,
            }),
        }
    }

    pub fn tag(&self) -> u16 {
        self.tag
    }

    fn slot(&self, index: u32) -> Option<&Slot<T>> {
        let chunk = self.chunks.get((index >> CHUNK_BITS) as usize)?.get()?;
        chunk.get(index as usize & (CHUNK - 1))
    }

    fn slot_or_grow(&self, index: u32) -> &Slot<T> {
        let chunk = self.chunks[(index >> CHUNK_BITS) as usize]
            .get_or_init(|| (0..CHUNK).map(|_| Slot::default()).collect());
        &chunk[index as usize & (CHUNK - 1)]
    }

    /// Resolves a handle. `want`: the kind the caller needs (None: any kind).
    pub fn get(&self, raw: u64, want: Option<Kind>) -> Result<Ref<T>, HandleError> {
        let h = Handle(raw);
        if raw == 0 {
            return Err(HandleError::Invalid(h, "0 is never a valid handle"));
        }
        if h.tag() != self.tag {
            return Err(HandleError::OtherTag(h, h.tag()));
        }
        let Some(kind) = h.kind() else {
            return Err(HandleError::Invalid(h, "unknown kind bits"));
        };
        let index = h.index();
        if index >= self.issued.load(Ordering::Acquire) || h.generation() == 0 {
            return Err(HandleError::Invalid(h, "never issued"));
        }
        let Some(slot) = self.slot(index) else {
            return Err(HandleError::Invalid(h, "never issued"));
        };
        let slot_gen = (slot.meta.load(Ordering::Acquire) >> 1) as u32;
        if h.generation() > slot_gen {
            return Err(HandleError::Invalid(h, "never issued"));
        }
        let guard = slot.value.load();
        let occupant = guard.as_ref().map(|s| s.handle);
        let live = occupant == Some(h);
        if !live {
            if h.generation() < slot_gen {
                return Err(HandleError::Stale(h));
            }
            if occupant.is_some() {
                // Same index and generation, other kind or tag bits: a forged number.
                return Err(HandleError::Invalid(
                    h,
                    "does not match the object in its slot",
                ));
            }
        }
        // Issued by this table, live or closed: the caller's mistake may be the kind.
        if let Some(expected) = want {
            if kind != expected {
                return Err(HandleError::WrongKind {
                    handle: h,
                    expected,
                    actual: kind,
                });
            }
        }
        if live {
            Ok(Ref(guard))
        } else {
            Err(HandleError::Removed(h))
        }
    }

    /// Stores the value `make` builds for the new handle. `make` runs under the allocation
    /// lock: it must not use this table.
    pub fn insert_with(
        &self,
        kind: Kind,
        make: impl FnOnce(Handle) -> T,
    ) -> Result<Handle, HandleError> {
        let mut alloc = self.alloc.lock();
        let fresh_left = self.issued.load(Ordering::Relaxed) < MAX_SLOTS;
        let reuse = alloc.free.len() > self.quarantine || !fresh_left;
        let recycled = if reuse { alloc.free.pop_front() } else { None };
        let (index, generation) = match recycled {
            Some(index) => {
                let slot = self.slot_or_grow(index);
                let gen = (slot.meta.load(Ordering::Relaxed) >> 1) as u32;
                (index, gen + 1)
            }
            None => {
                let index = self.issued.load(Ordering::Relaxed);
                if index >= MAX_SLOTS {
                    return Err(HandleError::Full(alloc.live));
                }
                (index, 1)
            }
        };
        let handle = Handle::encode(kind, self.tag, index, generation);
        let stored = Arc::new(Stored {
            handle,
            value: make(handle),
        });
        let slot = self.slot_or_grow(index);
        slot.value.store(Some(stored));
        slot.meta
            .store((u64::from(generation) << 1) | 1, Ordering::Release);
        if index == self.issued.load(Ordering::Relaxed) {
            self.issued.store(index + 1, Ordering::Release);
        }
        alloc.live += 1;
        Ok(handle)
    }

    /// Removes the object `handle` names (if it is still there) and returns it; drop it after
    /// this returns, not under any lock of yours that its `Drop` might need.
    pub fn remove(&self, handle: Handle) -> Option<Arc<Stored<T>>> {
        if handle.tag() != self.tag {
            return None;
        }
        let mut alloc = self.alloc.lock();
        let slot = self.slot(handle.index())?;
        let current = slot.value.load();
        if current.as_ref().map(|s| s.handle) != Some(handle) {
            return None;
        }
        drop(current);
        let old = slot.value.swap(None);
        let generation = handle.generation();
        slot.meta
            .store(u64::from(generation) << 1, Ordering::Release);
        if generation < MAX_GENERATION {
            alloc.free.push_back(handle.index());
        } else {
            alloc.retired += 1;
        }
        alloc.live -= 1;
        old
    }

    /// Objects currently stored.
    pub fn live(&self) -> u32 {
        self.alloc.lock().live
    }

    /// Slots retired because their generation reached the maximum.
    pub fn retired(&self) -> u32 {
        self.alloc.lock().retired
    }

    /// Every object currently stored (a snapshot; objects may come and go meanwhile).
    pub fn all(&self) -> Vec<Arc<Stored<T>>> {
        let issued = self.issued.load(Ordering::Acquire);
        (0..issued)
            .filter_map(|i| self.slot(i).and_then(|s| s.value.load_full()))
            .collect()
    }

    #[cfg(test)]
    fn set_generation_for_test(&self, index: u32, generation: u32) {
        let slot = self.slot(index).expect("slot exists");
        let occupied = slot.meta.load(Ordering::Relaxed) & 1;
        slot.meta
            .store((u64::from(generation) << 1) | occupied, Ordering::Relaxed);
    }
}

/// Hands out table tags so that two live tables never share one.
pub mod tags {
    use super::MAX_TAG;
    use parking_lot::Mutex;
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};

    struct Tags {
        live: Vec<bool>,
        next: u16,
    }

    static TAGS: Mutex<Option<Tags>> = Mutex::new(None);

    /// A tag no live table uses, starting from a per-process random point so that a handle
    /// saved by an earlier run of the process is unlikely to carry a live tag. None when all
    /// 1023 are taken.
    pub fn claim() -> Option<u16> {
        let mut guard = TAGS.lock();
        let tags = guard.get_or_insert_with(|| {
            let mut h = RandomState::new().build_hasher();
            h.write_u32(std::process::id());
            Tags {
                live: vec![false; usize::from(MAX_TAG) + 1],
                next: (h.finish() % u64::from(MAX_TAG)) as u16 + 1,
            }
        });
        for _ in 0..MAX_TAG {
            let tag = tags.next;
            tags.next = if tag == MAX_TAG { 1 } else { tag + 1 };
            if !tags.live[usize::from(tag)] {
                tags.live[usize::from(tag)] = true;
                return Some(tag);
            }
        }
        None
    }

    /// Gives a tag back.
    pub fn release(tag: u16) {
        if let Some(tags) = TAGS.lock().as_mut() {
            if let Some(slot) = tags.live.get_mut(usize::from(tag)) {
                *slot = false;
            }
        }
    }

    /// True if some live table uses `tag`.
    pub fn is_live(tag: u16) -> bool {
        TAGS.lock()
            .as_ref()
            .and_then(|t| t.live.get(usize::from(tag)).copied())
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> HandleTable<&'static str> {
        HandleTable::new(7)
    }

    #[test]
    fn encoding_round_trips() {
        let h = Handle::encode(Kind::Snapshot, 1023, MAX_SLOTS - 1, MAX_GENERATION);
        assert_eq!(h.kind(), Some(Kind::Snapshot));
        assert_eq!(h.tag(), 1023);
        assert_eq!(h.index(), MAX_SLOTS - 1);
        assert_eq!(h.generation(), MAX_GENERATION);
        let h = Handle::encode(Kind::Manager, 1, 0, 1);
        assert_ne!(h.raw(), 0);
    }

    #[test]
    fn lookup_finds_what_was_inserted() {
        let t = table();
        let h = t.insert_with(Kind::Db, |_| "db").unwrap();
        let r = t.get(h.raw(), Some(Kind::Db)).unwrap();
        assert_eq!(r.value, "db");
        assert_eq!(r.handle, h);
        assert!(t.get(h.raw(), None).is_ok());
        assert_eq!(t.live(), 1);
    }

    #[test]
    fn zero_and_random_numbers_are_invalid() {
        let t = table();
        t.insert_with(Kind::Db, |_| "db").unwrap();
        assert!(matches!(t.get(0, None), Err(HandleError::Invalid(..))));
        for raw in [1u64, u64::MAX, 0xdead_beef, 0x0123_4567_89ab_cdef] {
            let err = t.get(raw, None).unwrap_err();
            assert!(
                matches!(err, HandleError::Invalid(..) | HandleError::OtherTag(..)),
                "{raw:#x}: {err}"
            );
        }
        // Right tag, a known kind, but an index never issued.
        let forged = Handle::encode(Kind::Db, 7, 500, 1);
        assert!(matches!(
            t.get(forged.raw(), None),
            Err(HandleError::Invalid(..))
        ));
        // Right slot, generation from the future.
        let forged = Handle::encode(Kind::Db, 7, 0, 9);
        assert!(matches!(
            t.get(forged.raw(), None),
            Err(HandleError::Invalid(..))
        ));
        // Right slot and generation, other kind bits than the occupant.
        let forged = Handle::encode(Kind::Batch, 7, 0, 1);
        assert!(matches!(
            t.get(forged.raw(), None),
            Err(HandleError::Invalid(..))
        ));
    }

    #[test]
    fn other_tables_handles_are_recognised() {
        let a = table();
        let b: HandleTable<&str> = HandleTable::new(8);
        let h = b.insert_with(Kind::Db, |_| "b").unwrap();
        assert_eq!(
            a.get(h.raw(), None).unwrap_err(),
            HandleError::OtherTag(h, 8)
        );
        assert!(a.remove(h).is_none());
    }

    #[test]
    fn wrong_kind_is_reported_before_anything_else() {
        let t = table();
        let h = t.insert_with(Kind::Iterator, |_| "it").unwrap();
        assert_eq!(
            t.get(h.raw(), Some(Kind::Db)).unwrap_err(),
            HandleError::WrongKind {
                handle: h,
                expected: Kind::Db,
                actual: Kind::Iterator
            }
        );
        // Also once removed: the caller's mistake is the kind, not the timing.
        t.remove(h).unwrap();
        assert!(matches!(
            t.get(h.raw(), Some(Kind::Db)),
            Err(HandleError::WrongKind { .. })
        ));
    }

    #[test]
    fn removed_then_reused_slot_makes_the_old_handle_stale() {
        let t = table();
        let old = t.insert_with(Kind::Db, |_| "old").unwrap();
        assert_eq!(t.remove(old).map(|s| s.value), Some("old"));
        assert_eq!(
            t.get(old.raw(), None).unwrap_err(),
            HandleError::Removed(old)
        );
        assert!(t.remove(old).is_none(), "second remove finds nothing");
        let new = t.insert_with(Kind::Db, |_| "new").unwrap();
        assert_eq!(new.index(), old.index(), "the only free slot is reused");
        assert_eq!(new.generation(), old.generation() + 1);
        assert_eq!(t.get(old.raw(), None).unwrap_err(), HandleError::Stale(old));
        assert_eq!(t.get(new.raw(), None).unwrap().value, "new");
    }

    #[test]
    fn free_slots_are_reused_first_in_first_out() {
        let t = table();
        let hs: Vec<_> = (0..4)
            .map(|_| t.insert_with(Kind::Db, |_| "x").unwrap())
            .collect();
        t.remove(hs[2]);
        t.remove(hs[0]);
        let a = t.insert_with(Kind::Db, |_| "a").unwrap();
        let b = t.insert_with(Kind::Db, |_| "b").unwrap();
        assert_eq!(a.index(), hs[2].index());
        assert_eq!(b.index(), hs[0].index());
    }

    #[test]
    fn a_slot_is_retired_instead_of_wrapping_its_generation() {
        let t = table();
        let h = t.insert_with(Kind::Db, |_| "x").unwrap();
        t.remove(h);
        // Pretend the slot has been reused almost 2^29 times.
        t.set_generation_for_test(h.index(), MAX_GENERATION - 1);
        // Reuse once more: generation MAX_GENERATION.
        let last = t.insert_with(Kind::Db, |_| "last").unwrap();
        assert_eq!(last.index(), h.index());
        assert_eq!(last.generation(), MAX_GENERATION);
        assert_eq!(t.get(last.raw(), None).unwrap().value, "last");
        t.remove(last);
        assert_eq!(t.retired(), 1);
        // The slot is never handed out again; a fresh one is.
        let next = t.insert_with(Kind::Db, |_| "next").unwrap();
        assert_ne!(next.index(), h.index());
        assert_eq!(next.generation(), 1);
        assert_eq!(
            t.get(last.raw(), None).unwrap_err(),
            HandleError::Removed(last)
        );
    }

    #[test]
    fn quarantined_slots_wait_for_enough_other_frees() {
        let t: HandleTable<u32> = HandleTable::with_quarantine(11, 3);
        let first = t.insert_with(Kind::Db, |_| 0).unwrap();
        t.remove(first);
        // Fewer than 4 slots free: fresh slots are used, the closed handle stays "closed".
        let more: Vec<_> = (1..4)
            .map(|i| t.insert_with(Kind::Db, |_| i).unwrap())
            .collect();
        assert!(more.iter().all(|h| h.index() != first.index()));
        assert_eq!(
            t.get(first.raw(), None).unwrap_err(),
            HandleError::Removed(first)
        );
        for h in &more {
            t.remove(*h);
        }
        // Now 4 are free (> 3): the oldest, `first`'s slot, is reused.
        let next = t.insert_with(Kind::Db, |_| 9).unwrap();
        assert_eq!(next.index(), first.index());
        assert_eq!(
            t.get(first.raw(), None).unwrap_err(),
            HandleError::Stale(first)
        );
    }

    #[test]
    fn many_objects_span_chunks() {
        let t: HandleTable<u32> = HandleTable::new(3);
        let hs: Vec<_> = (0..3000u32)
            .map(|i| t.insert_with(Kind::Foreign, |_| i).unwrap())
            .collect();
        for (i, h) in hs.iter().enumerate() {
            assert_eq!(t.get(h.raw(), None).unwrap().value, i as u32);
        }
        assert_eq!(t.all().len(), 3000);
        for h in &hs {
            t.remove(*h).unwrap();
        }
        assert_eq!(t.live(), 0);
        assert!(t.all().is_empty());
    }

    #[test]
    fn concurrent_lookups_and_removals_never_return_the_wrong_object() {
        let t = Arc::new(HandleTable::<u64>::new(5));
        let hs: Vec<_> = (0..256u64)
            .map(|i| t.insert_with(Kind::Foreign, |h| h.raw() ^ i).unwrap())
            .collect();
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let t = Arc::clone(&t);
                let hs = hs.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        for (i, h) in hs.iter().enumerate() {
                            if let Ok(r) = t.get(h.raw(), None) {
                                assert_eq!(r.value, h.raw() ^ i as u64);
                            }
                        }
                    }
                })
            })
            .collect();
        for h in &hs {
            t.remove(*h);
            t.insert_with(Kind::Foreign, |n| n.raw()).unwrap();
        }
        for r in readers {
            r.join().unwrap();
        }
    }

    #[test]
    fn tags_are_unique_while_live() {
        let a = tags::claim().unwrap();
        let b = tags::claim().unwrap();
        assert_ne!(a, b);
        assert!(tags::is_live(a) && tags::is_live(b));
        tags::release(a);
        assert!(!tags::is_live(a));
        tags::release(b);
    }
}
