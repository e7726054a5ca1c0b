//! Lookups racing close-and-reuse of their slot (issue 16, item 9), through the public API.
//!
//! The deterministic test of the exact interleaving is in `src/handle.rs`
//! (`slot_reused_between_the_generation_and_occupant_loads_is_stale_not_invalid`); this one
//! hammers the same window from real threads: a handle the table issued must never be called
//! invalid (nor another table's), whatever the lookup races with, and a successful lookup
//! always returns the object of exactly that handle.

use resman::handle::{HandleError, HandleTable, Kind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const SLOTS: usize = 4;
const ROUNDS: usize = 200_000;

#[test]
fn a_handle_this_table_issued_is_never_called_invalid() {
    // No quarantine: every remove's slot is reused by the very next insert, so the window
    // between the generation and the occupant loads of a lookup is as wide open as it gets.
    let table = Arc::new(HandleTable::<u64>::new(9));
    let current: Arc<Vec<AtomicU64>> = Arc::new(
        (0..SLOTS)
            .map(|_| {
                let h = table.insert_with(Kind::Foreign, |h| h.raw()).unwrap();
                AtomicU64::new(h.raw())
            })
            .collect(),
    );
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (table, current, done) = (table.clone(), current.clone(), done.clone());
            std::thread::spawn(move || {
                let (mut live, mut closed, mut stale) = (0u64, 0u64, 0u64);
                while !done.load(Ordering::Relaxed) {
                    for cell in current.iter() {
                        // Published after its insert returned: issued by the table.
                        let raw = cell.load(Ordering::Acquire);
                        match table.get(raw, Some(Kind::Foreign)) {
                            Ok(r) => {
                                assert_eq!(r.handle.raw(), raw);
                                assert_eq!(r.value, raw, "the object of exactly that handle");
                                live += 1;
                            }
                            Err(HandleError::Removed(_)) => closed += 1,
                            Err(HandleError::Stale(_)) => stale += 1,
                            Err(e) => panic!("issued handle {raw:#x} rejected: {e}"),
                        }
                    }
                }
                (live, closed, stale)
            })
        })
        .collect();
    for round in 0..ROUNDS {
        let cell = &current[round % SLOTS];
        let old = resman::handle::Handle::from_raw(cell.load(Ordering::Relaxed));
        let gone = table.remove(old).expect("the current object is there");
        assert_eq!(gone.value, old.raw());
        let new = table.insert_with(Kind::Foreign, |h| h.raw()).unwrap();
        assert_eq!(
            new.index(),
            old.index(),
            "no quarantine: the slot is reused at once"
        );
        cell.store(new.raw(), Ordering::Release);
    }
    done.store(true, Ordering::Relaxed);
    let mut totals = (0, 0, 0);
    for r in readers {
        let (l, c, s) = r.join().unwrap();
        totals = (totals.0 + l, totals.1 + c, totals.2 + s);
    }
    eprintln!(
        "lookups: {} live, {} closed, {} stale",
        totals.0, totals.1, totals.2
    );
    assert_eq!(table.live(), SLOTS as u32);
}
