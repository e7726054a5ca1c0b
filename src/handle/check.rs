//! The table's self-check (debug builds and unit tests only): its invariants after every
//! mutation, as mozilla ffi-support's `HandleMap::assert_valid` does.

use super::*;

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

    pub(super) fn check(&self, alloc: &mut Alloc, touched: u32) {
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
    pub(super) fn assert_valid(&self) {
        self.check_all(&self.alloc.lock());
    }
}
