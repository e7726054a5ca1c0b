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
//!   A lookup that races the close and reuse of its slot answers "closed" or "stale", never
//!   "invalid": it judges from the occupant it actually loaded (the argument is in `get`).

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
    /// Mutations left before the next full self-check (see `HandleTable::check`).
    #[cfg(any(debug_assertions, test))]
    until_full_check: u32,
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
                #[cfg(any(debug_assertions, test))]
                until_full_check: 0,
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
        // Why a handle this table issued is never called invalid, whatever this lookup races
        // with (issue 16, item 9). Writers take the allocation lock, so one slot changes one
        // step at a time: insert stores the occupant, then (Release) generation g+1 with the
        // occupied bit; remove takes the occupant out, then clears the occupied bit, keeping
        // g. A slot's generation therefore only grows, and each (index, generation) is issued
        // at most once: a slot at MAX_GENERATION is retired, never reused. FIFO order and the
        // quarantine only choose which free slot an insert takes; they change nothing here.
        // Let h be issued, i.e. we run after the insert_with that made it returned.
        // 1. The generation load sees h's insert or later: G >= h.gen, never "never issued".
        // 2. The occupant load comes after an Acquire load that saw G's insert, whose occupant
        //    store precedes it: it sees that occupant or a later one, so None or an object of
        //    generation >= G >= h.gen. The slot may have been freed and reused any number of
        //    times since G was read, so G is NOT compared with the occupant (the old code did:
        //    G == h.gen with a newer occupant said Invalid to a merely stale handle).
        //    * occupant == h: live (true at the occupant load);
        //    * another occupant, newer than h: h's object was removed and its slot reused:
        //      Stale (true at the occupant load);
        //    * another occupant of h's generation: it is *the* handle issued for this index and
        //      generation, and h differs from it (only in its kind bits): h was never issued.
        //      (An older occupant is impossible by 2; were it possible, h still is no handle
        //      of that slot's history we can vouch for.)
        //    * no occupant: h is not live at the occupant load. Re-read the generation: if it
        //      grew, the slot was reused since (Stale, true at the re-read); if not, no insert
        //      ran between the two generation loads, so the empty slot is h's own, removed
        //      (Removed, true at the occupant load). A retired slot stays empty at
        //      MAX_GENERATION forever: its last handle reads Removed, earlier ones Stale.
        let slot_gen = (slot.meta.load(Ordering::Acquire) >> 1) as u32;
        if h.generation() > slot_gen {
            return Err(HandleError::Invalid(h, "never issued"));
        }
        #[cfg(test)]
        race_hook::reached(race_hook::Point::AfterGeneration);
        let guard = slot.value.load();
        let live = match guard.as_ref().map(|s| s.handle) {
            Some(occupant) if occupant == h => true,
            Some(occupant) if occupant.generation() > h.generation() => {
                return Err(HandleError::Stale(h));
            }
            Some(_) => {
                // Same index and generation, other kind bits: a forged number.
                return Err(HandleError::Invalid(
                    h,
                    "does not match the object in its slot",
                ));
            }
            None => {
                #[cfg(test)]
                race_hook::reached(race_hook::Point::AfterOccupant);
                let now = (slot.meta.load(Ordering::Acquire) >> 1) as u32;
                if h.generation() < now {
                    return Err(HandleError::Stale(h));
                }
                false
            }
        };
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
        #[cfg(any(debug_assertions, test))]
        self.check(&mut alloc, index);
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
        #[cfg(any(debug_assertions, test))]
        self.check(&mut alloc, handle.index());
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
        let mut alloc = self.alloc.lock();
        let slot = self.slot(index).expect("slot exists");
        let occupied = slot.meta.load(Ordering::Relaxed) & 1;
        slot.meta
            .store((u64::from(generation) << 1) | occupied, Ordering::Relaxed);
        self.check(&mut alloc, index);
    }
}

/// Self-check of the table's invariants (after mozilla ffi-support's `HandleMap::assert_valid`),
/// run under the allocation lock after every insert and remove, which are every mutation
/// (a quarantined slot is released and a slot is retired inside them). Compiled only into
/// debug builds and the crate's own unit tests: a release build has neither the calls nor
/// the counter.
///
/// Cost: the touched slot and the counts are checked every time, in O(1). The full recount is
/// O(slots issued + free list), so it runs after every mutation only while the table has at
/// most `FULL_CHECK_ALWAYS` slots (most tables in the unit tests), and otherwise once
/// every `issued` mutations: amortised O(1) per mutation, so a debug build of a test with
/// 100,000 resources stays linear instead of quadratic, and every table is still recounted
/// regularly.
#[cfg(any(debug_assertions, test))]
impl<T> HandleTable<T> {
    const FULL_CHECK_ALWAYS: u32 = 64;

    fn check(&self, alloc: &mut Alloc, touched: u32) {
        let issued = self.issued.load(Ordering::Relaxed);
        assert!(
            touched < issued,
            "touched slot {touched} >= issued {issued}"
        );
        self.check_slot(touched);
        assert_eq!(
            alloc.live as usize + alloc.retired as usize + alloc.free.len(),
            issued as usize,
            "every issued slot is exactly one of live, retired, free (table {})",
            self.tag
        );
        if issued <= Self::FULL_CHECK_ALWAYS || alloc.until_full_check == 0 {
            self.check_all(alloc);
            alloc.until_full_check = issued;
        } else {
            alloc.until_full_check -= 1;
        }
    }

    /// One slot's occupant agrees with its generation word; returns (occupied, generation).
    fn check_slot(&self, index: u32) -> (bool, u32) {
        let slot = self
            .slot(index)
            .unwrap_or_else(|| panic!("issued slot {index} has no chunk"));
        let meta = slot.meta.load(Ordering::Relaxed);
        let (occupied, generation) = (meta & 1 == 1, (meta >> 1) as u32);
        assert!(
            (1..=MAX_GENERATION).contains(&generation),
            "slot {index}: generation {generation} out of range"
        );
        match slot.value.load().as_ref() {
            Some(stored) => {
                let h = stored.handle;
                assert!(occupied, "slot {index}: occupant {h} but marked free");
                assert_eq!(h.tag(), self.tag, "slot {index}: occupant {h}: tag");
                assert_eq!(h.index(), index, "slot {index}: occupant {h}: index");
                assert_eq!(
                    h.generation(),
                    generation,
                    "slot {index}: occupant {h}: generation"
                );
                assert!(h.kind().is_some(), "slot {index}: occupant {h}: kind");
            }
            None => assert!(!occupied, "slot {index}: marked occupied but empty"),
        }
        (occupied, generation)
    }

    /// The full recount: every issued slot, the free list and the counts.
    fn check_all(&self, alloc: &Alloc) {
        let issued = self.issued.load(Ordering::Relaxed);
        let (mut live, mut retired, mut free) = (0u32, 0u32, 0u32);
        let mut state = vec![0u8; issued as usize]; // 1 occupied, 2 retired, 3 free
        for index in 0..issued {
            let (occupied, generation) = self.check_slot(index);
            state[index as usize] = if occupied {
                live += 1;
                1
            } else if generation == MAX_GENERATION {
                retired += 1;
                2
            } else {
                free += 1;
                3
            };
        }
        assert_eq!(live, alloc.live, "live count vs recount");
        assert_eq!(retired, alloc.retired, "retired count vs recount");
        assert_eq!(
            free as usize,
            alloc.free.len(),
            "free list length vs recount"
        );
        for &index in &alloc.free {
            let s = state
                .get_mut(index as usize)
                .unwrap_or_else(|| panic!("free slot {index} >= issued {issued}"));
            assert!(*s != 1, "free slot {index} is occupied");
            assert!(*s != 2, "free slot {index} is retired");
            assert!(*s == 3, "free slot {index} is in the free list twice");
            *s = 0;
        }
    }

    /// For tests: the full recount, now.
    #[cfg(test)]
    fn assert_valid(&self) {
        self.check_all(&self.alloc.lock());
    }
}

/// Test-only: runs a closure at a chosen point of the calling thread's next `get`, so that a
/// test can make another "thread's" insert or remove happen exactly there.
#[cfg(test)]
mod race_hook {
    use std::cell::RefCell;

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub(super) enum Point {
        /// After `get` loaded the slot's generation, before it loads the occupant.
        AfterGeneration,
        /// After `get` loaded the occupant (found none), before it re-reads the generation.
        AfterOccupant,
    }

    type Hook = (Point, Box<dyn FnOnce()>);

    thread_local! {
        static HOOK: RefCell<Option<Hook>> = const { RefCell::new(None) };
    }

    /// Arms `f` to run when this thread's `get` next reaches `point`.
    pub(super) fn arm(point: Point, f: impl FnOnce() + 'static) {
        HOOK.with(|h| *h.borrow_mut() = Some((point, Box::new(f))));
    }

    /// True while an armed hook has not run yet.
    pub(super) fn armed() -> bool {
        HOOK.with(|h| h.borrow().is_some())
    }

    pub(super) fn reached(point: Point) {
        let f = HOOK.with(|h| {
            let mut h = h.borrow_mut();
            match h.as_ref() {
                Some((p, _)) if *p == point => h.take().map(|(_, f)| f),
                _ => None,
            }
        });
        // Run outside the borrow: the hook may call into the table (but not arm again).
        if let Some(f) = f {
            f();
        }
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

    /// Looks `h` up in `t` with `between` run (as if by another thread) at `point` of the
    /// lookup; checks that it did run there, and the table's invariants after it.
    fn race(
        t: &Arc<HandleTable<&'static str>>,
        h: Handle,
        point: race_hook::Point,
        between: impl FnOnce(&HandleTable<&'static str>) + 'static,
    ) -> Result<Handle, HandleError> {
        let t2 = Arc::clone(t);
        race_hook::arm(point, move || between(&t2));
        let got = t.get(h.raw(), Some(Kind::Db)).map(|r| r.handle);
        assert!(!race_hook::armed(), "the lookup never reached {point:?}");
        t.assert_valid();
        got
    }

    /// Issue 16, item 9: `get` loads the slot's generation, then its occupant. A stale handle
    /// whose slot is freed and reused between the two loads must answer Stale, never Invalid
    /// (the old code answered Invalid: "does not match the object in its slot").
    #[test]
    fn slot_reused_between_the_generation_and_occupant_loads_is_stale_not_invalid() {
        let t = Arc::new(HandleTable::<&'static str>::new(7));
        let old = t.insert_with(Kind::Db, |_| "old").unwrap();
        let got = race(&t, old, race_hook::Point::AfterGeneration, move |t| {
            t.remove(old).unwrap();
            let new = t.insert_with(Kind::Db, |_| "new").unwrap();
            assert_eq!(new.index(), old.index());
        });
        assert_eq!(got.unwrap_err(), HandleError::Stale(old));
        // The same with the handle already closed when the lookup read the generation.
        let t = Arc::new(HandleTable::<&'static str>::new(7));
        let old = t.insert_with(Kind::Db, |_| "old").unwrap();
        t.remove(old).unwrap();
        let got = race(&t, old, race_hook::Point::AfterGeneration, move |t| {
            t.insert_with(Kind::Db, |_| "new").unwrap();
        });
        assert_eq!(got.unwrap_err(), HandleError::Stale(old));
    }

    #[test]
    fn every_interleaving_of_a_lookup_with_close_and_reuse_is_live_closed_or_stale() {
        use race_hook::Point::{AfterGeneration, AfterOccupant};
        let fresh = || {
            let t = Arc::new(HandleTable::<&'static str>::new(7));
            let h = t.insert_with(Kind::Db, |_| "h").unwrap();
            (t, h)
        };
        // Closed between the loads, not reused: closed.
        let (t, h) = fresh();
        let got = race(&t, h, AfterGeneration, move |t| drop(t.remove(h)));
        assert_eq!(got.unwrap_err(), HandleError::Removed(h));
        // Closed, reused and closed again between the loads: the slot moved on, stale.
        let (t, h) = fresh();
        let got = race(&t, h, AfterGeneration, move |t| {
            t.remove(h).unwrap();
            let n = t.insert_with(Kind::Db, |_| "n").unwrap();
            t.remove(n).unwrap();
        });
        assert_eq!(got.unwrap_err(), HandleError::Stale(h));
        // Found the slot empty, then it was reused before the generation was read again.
        let (t, h) = fresh();
        t.remove(h).unwrap();
        let got = race(&t, h, AfterOccupant, move |t| {
            t.insert_with(Kind::Db, |_| "n").unwrap();
        });
        assert_eq!(got.unwrap_err(), HandleError::Stale(h));
        // ... and nothing happened there: closed.
        let (t, h) = fresh();
        t.remove(h).unwrap();
        let got = race(&t, h, AfterOccupant, |_| ());
        assert_eq!(got.unwrap_err(), HandleError::Removed(h));
        // Inserts and removes of other slots change nothing: live.
        let (t, h) = fresh();
        let got = race(&t, h, AfterGeneration, |t| {
            let o = t.insert_with(Kind::Db, |_| "o").unwrap();
            t.remove(o).unwrap();
        });
        assert_eq!(got.unwrap(), h);
    }

    #[test]
    fn a_quarantined_slot_released_between_the_loads_makes_the_handle_stale() {
        let t = Arc::new(HandleTable::<&'static str>::with_quarantine(7, 2));
        let h = t.insert_with(Kind::Db, |_| "h").unwrap();
        let others: Vec<_> = (0..2)
            .map(|_| t.insert_with(Kind::Db, |_| "o").unwrap())
            .collect();
        t.remove(h).unwrap();
        let got = race(&t, h, race_hook::Point::AfterGeneration, move |t| {
            // Two more frees: three are free (> 2), so the oldest, h's, is released.
            for o in others {
                t.remove(o).unwrap();
            }
            let n = t.insert_with(Kind::Db, |_| "n").unwrap();
            assert_eq!(n.index(), h.index());
        });
        assert_eq!(got.unwrap_err(), HandleError::Stale(h));
    }

    #[test]
    fn a_slot_retired_between_the_loads_answers_closed_then_stale() {
        use race_hook::Point::AfterGeneration;
        let t = Arc::new(HandleTable::<&'static str>::new(7));
        let first = t.insert_with(Kind::Db, |_| "first").unwrap();
        t.remove(first).unwrap();
        t.set_generation_for_test(first.index(), MAX_GENERATION - 2);
        let before_last = t.insert_with(Kind::Db, |_| "before last").unwrap();
        assert_eq!(before_last.generation(), MAX_GENERATION - 1);
        // The slot is reused for the last time between the loads: stale.
        let got = race(&t, before_last, AfterGeneration, move |t| {
            t.remove(before_last).unwrap();
            let last = t.insert_with(Kind::Db, |_| "last").unwrap();
            assert_eq!(last.generation(), MAX_GENERATION);
        });
        assert_eq!(got.unwrap_err(), HandleError::Stale(before_last));
        let last = Handle::encode(Kind::Db, 7, first.index(), MAX_GENERATION);
        assert_eq!(t.get(last.raw(), None).unwrap().value, "last");
        // Its last handle is closed between the loads, the slot retired and a fresh slot
        // used: closed, for good.
        let got = race(&t, last, AfterGeneration, move |t| {
            t.remove(last).unwrap();
            let next = t.insert_with(Kind::Db, |_| "next").unwrap();
            assert_ne!(next.index(), last.index());
        });
        assert_eq!(got.unwrap_err(), HandleError::Removed(last));
        assert_eq!(t.retired(), 1);
        assert_eq!(
            t.get(before_last.raw(), None).unwrap_err(),
            HandleError::Stale(before_last)
        );
    }

    #[test]
    fn the_self_check_holds_through_reuse_quarantine_and_retirement() {
        let t: HandleTable<u32> = HandleTable::with_quarantine(12, 3);
        let mut hs: VecDeque<Handle> = VecDeque::new();
        for i in 0..2000u32 {
            // Grow to 100 live, then churn: frees go through the quarantine into reuse.
            if hs.len() >= 100 || (i % 3 == 2 && !hs.is_empty()) {
                let h = hs.pop_front().unwrap();
                t.remove(h).unwrap();
            } else {
                hs.push_back(t.insert_with(Kind::Foreign, |_| i).unwrap());
            }
            if i == 1000 {
                let h = hs.pop_front().unwrap();
                t.remove(h).unwrap();
                t.set_generation_for_test(h.index(), MAX_GENERATION - 1);
            }
            if i % 97 == 0 {
                t.assert_valid();
            }
        }
        for h in hs {
            t.remove(h).unwrap();
        }
        t.assert_valid();
        assert_eq!(t.live(), 0);
    }

    #[test]
    #[should_panic(expected = "in the free list twice")]
    fn the_self_check_finds_a_slot_freed_twice() {
        let t = table();
        let hs: Vec<_> = (0..3)
            .map(|_| t.insert_with(Kind::Db, |_| "x").unwrap())
            .collect();
        t.remove(hs[0]).unwrap();
        t.remove(hs[1]).unwrap();
        {
            // Slot 1 lost, slot 0 listed twice: every count still agrees.
            let mut alloc = t.alloc.lock();
            alloc.free.pop_back();
            alloc.free.push_back(hs[0].index());
        }
        t.assert_valid();
    }

    #[test]
    #[should_panic(expected = "is occupied")]
    fn the_self_check_finds_an_occupied_slot_in_the_free_list() {
        let t = table();
        let hs: Vec<_> = (0..3)
            .map(|_| t.insert_with(Kind::Db, |_| "x").unwrap())
            .collect();
        t.remove(hs[0]).unwrap();
        {
            let mut alloc = t.alloc.lock();
            alloc.free.pop_back();
            alloc.free.push_back(hs[2].index());
        }
        // The next mutation runs the check (a small table is recounted every time).
        t.remove(hs[1]).unwrap();
    }

    #[test]
    #[should_panic(expected = "occupant")]
    fn the_self_check_finds_an_occupant_of_another_generation() {
        let t = table();
        let h = t.insert_with(Kind::Db, |_| "x").unwrap();
        let slot = t.slot(h.index()).unwrap();
        slot.meta
            .store(((h.generation() as u64 + 1) << 1) | 1, Ordering::Relaxed);
        t.insert_with(Kind::Db, |_| "y").unwrap();
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
