//! Leak soak (issue 7, item 4), alone in its test binary so that the process's resident memory
//! and resman's live-object count are this test's alone: cycles of open a DB with 4 column
//! families, use it (puts, gets, a batch, a snapshot, iterators), close it. resman's live
//! objects return to their starting count after every cycle, and the iterators and snapshots
//! left open are counted as leaked, exactly.
//!
//! Resident memory: the goal is less than 2 MiB of growth after the warm-up. It is printed
//! always, and asserted only in the long form (RESMAN_SOAK_CYCLES=N, warm-up a quarter), which
//! does NOT meet the goal yet: measured +2.98 MiB from cycle 100 to 400 and +2.87 MiB from
//! cycle 400 to 1,600 (growth slowing, not linear): allocator fragmentation or RocksDB's
//! per-open state, not yet told apart. The bounded form in the test command runs 200 cycles.

use resman::rocks::batch::{self, Op};
use resman::rocks::iter::{self, IterOptions};
use resman::rocks::{self, snapshot, CfSpec, DbOptions, Seek};
use resman::Manager;

/// Resident set size in bytes, from /proc.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn cycle(mgr: &Manager, dir: &std::path::Path, i: usize) {
    let specs: Vec<CfSpec> = ["default", "a", "b", "c"]
        .iter()
        .map(|n| CfSpec::new(n))
        .collect();
    let opts = DbOptions {
        write_buffer_size: 1 << 20,
        ..DbOptions::default()
    };
    let db = rocks::open(mgr.handle(), "soak", dir, &specs, &opts).unwrap();
    let key = format!("key-{}", i % 64);
    for (n, cf) in db.column_families.iter().enumerate() {
        rocks::put(*cf, key.as_bytes(), format!("v{i}-{n}").as_bytes()).unwrap();
    }
    assert!(rocks::get_vec(db.column_families[1], key.as_bytes())
        .unwrap()
        .is_some());
    let b = batch::create(db.db).unwrap();
    batch::add(
        b,
        db.column_families[2],
        Op::Put(b"batched", key.as_bytes()),
    )
    .unwrap();
    batch::write(b, 0).unwrap();
    let snap = snapshot::create(db.db).unwrap();
    let it = iter::create(
        db.column_families[0],
        &IterOptions {
            snapshot: snap,
            ..IterOptions::default()
        },
    )
    .unwrap();
    let mut seen = 0;
    let mut valid = iter::seek(it, Seek::First).unwrap();
    while valid {
        seen += 1;
        valid = iter::step(it, true).unwrap();
    }
    assert!(seen >= 1);
    // Close what the caller owns explicitly on odd cycles; let the DB's close sweep them on
    // even ones (the leak path).
    if i % 2 == 1 {
        mgr.close(it).unwrap();
        mgr.close(snap).unwrap();
        mgr.close(b).unwrap();
    }
    mgr.close(db.db).unwrap();
}

#[test]
fn open_use_close_cycles_leave_no_object_and_no_memory_behind() {
    let cycles: usize = std::env::var("RESMAN_SOAK_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let long_form = std::env::var("RESMAN_SOAK_CYCLES").is_ok();
    let warmup = (cycles / 4).max(1);
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::new().unwrap();
    let live0 = resman::manager::live_resources();
    let mut after_warmup = 0;
    let started = std::time::Instant::now();
    for i in 0..cycles {
        cycle(&mgr, dir.path(), i);
        assert_eq!(resman::manager::live_resources(), live0, "cycle {i}");
        if i + 1 == warmup {
            after_warmup = rss();
        }
    }
    let end = rss();
    let growth = end as i64 - after_warmup as i64;
    eprintln!(
        "soak: {cycles} cycles in {:.1} s; resident {:.1} MiB after {warmup} warm-up cycles, {:.1} MiB at the end ({:+.2} MiB)",
        started.elapsed().as_secs_f64(),
        after_warmup as f64 / 1048576.0,
        end as f64 / 1048576.0,
        growth as f64 / 1048576.0
    );
    let st = mgr.status().unwrap();
    assert_eq!(st.totals.leaked_iterators as usize, cycles.div_ceil(2));
    assert_eq!(st.totals.leaked_snapshots as usize, cycles.div_ceil(2));
    if long_form {
        assert!(
            growth < 2 << 20,
            "resident memory grew by {growth} bytes after the warm-up"
        );
    }
}
