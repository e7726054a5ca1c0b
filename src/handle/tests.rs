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
