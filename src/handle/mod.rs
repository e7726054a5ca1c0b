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

pub use self::typed::{ManagerHandle, ResourceHandle};
pub use crate::kind::Kind;

#[cfg(any(debug_assertions, test))]
mod check;
#[cfg(test)]
mod tests;
mod typed;

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
