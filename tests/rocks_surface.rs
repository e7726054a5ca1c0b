//! Batches, multi-get, iterators, snapshots, options, memory and the close sequences, against
//! the real RocksDB.

use resman::rocks::batch::{self, Op};
use resman::rocks::iter::{self, IterOptions};
use resman::rocks::multiget::{multi_get, Lookup};
use resman::rocks::{
    self, snapshot, BatchHandle, CfHandle, CfSpec, Compression, DbOptions, IterHandle, Seek,
    SnapshotHandle,
};
use resman::{CloseMode, Error, Manager, ResourceHandle};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

fn open_with(mgr: &Manager, name: &str, path: &Path, cfs: &[&str], o: &DbOptions) -> rocks::Opened {
    let specs: Vec<CfSpec> = cfs.iter().map(|c| CfSpec::new(c)).collect();
    rocks::open(mgr.handle(), name, path, &specs, o).unwrap()
}

fn open(mgr: &Manager, name: &str, path: &Path, cfs: &[&str]) -> rocks::Opened {
    open_with(mgr, name, path, cfs, &DbOptions::default())
}

fn get(cf: CfHandle, key: &[u8]) -> Option<Vec<u8>> {
    rocks::get_vec(cf, key).unwrap()
}

fn get_at(cf: CfHandle, snap: SnapshotHandle, key: &[u8]) -> Option<Vec<u8>> {
    let mut buf = [0u8; 256];
    match rocks::get_opt(cf, Some(snap), 0, key, &mut buf) {
        Ok(n) => Some(buf[..n].to_vec()),
        Err(Error::NotFound) => None,
        Err(e) => panic!("get_opt: {e}"),
    }
}

/// Bytes in the directory's WAL files.
fn wal_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// Every entry from the current position onwards (forward) or backwards.
fn drain(it: IterHandle, forward: bool, mut valid: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let (mut k, mut v) = ([0u8; 64], [0u8; 64]);
    while valid {
        let e = iter::entry(it, &mut k, &mut v).unwrap();
        assert!(e.copied);
        out.push((k[..e.key].to_vec(), v[..e.value].to_vec()));
        valid = iter::step(it, forward).unwrap();
    }
    out
}

fn keys(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<String> {
    entries
        .iter()
        .map(|(k, _)| String::from_utf8(k.clone()).unwrap())
        .collect()
}

/// Nothing is registered but the manager's own monitor.
fn only_monitor(st: &resman::monitor::Status) -> bool {
    st.resources.iter().all(|r| r.kind == "monitor")
}

#[test]
fn graceful_close_flushes_every_column_family_so_reopen_replays_no_wal() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::new().unwrap();
    let db = open(&mgr, "g", dir.path(), &["default", "users", "events"]);
    for cf in &db.column_families {
        for i in 0..500u32 {
            rocks::put(*cf, format!("k{i:05}").as_bytes(), &[7u8; 100]).unwrap();
        }
    }
    assert!(wal_bytes(dir.path()) > 0, "the writes are in the WAL");
    mgr.close(db.db).unwrap();
    assert_eq!(
        wal_bytes(dir.path()),
        0,
        "after a graceful close the memtables of every column family were flushed: no WAL left to replay"
    );
    let db = open(&mgr, "g", dir.path(), &["default", "users", "events"]);
    for cf in &db.column_families {
        assert_eq!(get(*cf, b"k00499").as_deref(), Some(&[7u8; 100][..]));
        assert_eq!(
            rocks::property_int(*cf, "rocksdb.num-entries-active-mem-table").unwrap(),
            Some(0),
            "nothing replayed into the memtable"
        );
    }
}

#[test]
fn forced_close_keeps_acknowledged_wal_writes_and_leaves_the_wal_to_replay() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::new().unwrap();
    let db = open(&mgr, "f", dir.path(), &["default"]);
    let cf = db.column_families[0];
    for i in 0..300u32 {
        rocks::put(cf, format!("k{i}").as_bytes(), b"v").unwrap();
    }
    mgr.close_with(db.db, CloseMode::Forced, None).unwrap();
    assert!(
        wal_bytes(dir.path()) > 0,
        "a forced close does not flush: the acknowledged writes are in the WAL"
    );
    let db = open(&mgr, "f", dir.path(), &["default"]);
    for i in 0..300u32 {
        assert_eq!(
            get(db.column_families[0], format!("k{i}").as_bytes()).as_deref(),
            Some(&b"v"[..])
        );
    }
}

#[test]
fn forced_close_under_load_refuses_new_work_and_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::new().unwrap();
    let db = open(&mgr, "load", dir.path(), &["default", "data"]);
    let cf = db.column_families[1];
    let it = iter::create(cf, &IterOptions::default()).unwrap();
    let (tx, rx) = mpsc::channel();
    let threads: Vec<_> = (0..6u32)
        .map(|t| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                let mut buf = [0u8; 64];
                for i in 0.. {
                    // At most 3000 distinct keys per writer: under a loaded machine a slow
                    // reader may take a while to reach its 200th call, and the data (and the
                    // WAL replayed at reopen) must not grow without bound meanwhile.
                    let key = format!("t{t}-{}", i.min(3000));
                    let r = match t % 3 {
                        0 => rocks::put(cf, key.as_bytes(), key.as_bytes()),
                        1 => rocks::get(cf, b"t0-0", &mut buf).map(|_| ()).or_else(|e| {
                            if e == Error::NotFound {
                                Ok(())
                            } else {
                                Err(e)
                            }
                        }),
                        _ => iter::seek(it, Seek::First).map(|_| ()),
                    };
                    match r {
                        Ok(()) if t % 3 == 0 && i <= 3000 => acked.push(key),
                        Ok(()) => {}
                        Err(e) => return (acked, e),
                    }
                    if i == 200 {
                        tx.send(()).unwrap();
                    }
                }
                unreachable!()
            })
        })
        .collect();
    for _ in 0..threads.len() {
        rx.recv().unwrap();
    }
    let started = Instant::now();
    mgr.close_with(db.db, CloseMode::Forced, None).unwrap();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "a forced close returns at once (took {took:?})"
    );
    let mut acked = Vec::new();
    for t in threads {
        let (keys, err) = t.join().unwrap();
        assert!(
            gone(err.clone()),
            "every operation after the close is refused as closed, got {err:?}"
        );
        acked.extend(keys);
    }
    assert!(!acked.is_empty());
    let db = open(&mgr, "load", dir.path(), &["default", "data"]);
    for k in &acked {
        assert_eq!(
            get(db.column_families[1], k.as_bytes()).as_deref(),
            Some(k.as_bytes()),
            "acknowledged write {k} survived the forced close"
        );
    }
}

#[test]
fn iterators_and_snapshots_left_open_close_before_their_db_and_are_counted_as_leaked() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::new().unwrap();
    let db = open(&mgr, "leaky", dir.path(), &["default"]);
    let cf = db.column_families[0];
    rocks::put(cf, b"a", b"1").unwrap();
    let snap = snapshot::create(db.db).unwrap();
    let snap2 = snapshot::create(db.db).unwrap();
    let it1 = iter::create(cf, &IterOptions::default()).unwrap();
    let it2 = iter::create(
        cf,
        &IterOptions {
            snapshot: Some(snap),
            ..Default::default()
        },
    )
    .unwrap();
    let it3 = iter::create(cf, &IterOptions::default()).unwrap();
    let b = batch::create(db.db).unwrap();
    assert!(iter::seek(it2, Seek::First).unwrap());
    // Closed by their owner: not leaked.
    mgr.close(it3).unwrap();
    mgr.close(snap2).unwrap();
    // A snapshot with a live iterator on it: closing it closes the iterator first.
    let status = mgr.status().unwrap();
    let leases_of = |h: ResourceHandle| {
        status
            .resources
            .iter()
            .find(|r| r.handle == h.raw())
            .unwrap()
            .leases
    };
    assert_eq!(leases_of(snap.into()), 1, "the iterator pins its snapshot");

    mgr.close(db.db).unwrap();
    for h in [it1, it2] {
        assert!(gone(iter::seek(h, Seek::First).unwrap_err()));
        assert!(gone(iter::valid(h).unwrap_err()));
    }
    assert!(gone(get_at_err(cf, snap)));
    assert!(gone(batch::count(b).unwrap_err()));
    let status = mgr.status().unwrap();
    assert_eq!(status.totals.leaked_iterators, 2);
    assert_eq!(status.totals.leaked_snapshots, 1);
    let rec = status
        .recently_closed
        .iter()
        .find(|r| &*r.name == "leaky")
        .unwrap();
    assert_eq!((rec.leaked_iterators, rec.leaked_snapshots), (2, 1));
    assert!(only_monitor(&status));
    // The order actually used: every iterator before its column family and snapshot, those
    // before the DB.
    let pos = |h: ResourceHandle| {
        status
            .recently_closed
            .iter()
            .position(|r| r.handle == h.raw())
            .unwrap()
    };
    let [it1, it2, cf, snap, b, db]: [ResourceHandle; 6] = [
        it1.into(),
        it2.into(),
        cf.into(),
        snap.into(),
        b.into(),
        db.db.into(),
    ];
    assert!(pos(it1) < pos(cf) && pos(it2) < pos(cf) && pos(it2) < pos(snap));
    assert!(pos(cf) < pos(db) && pos(snap) < pos(db) && pos(b) < pos(db));
}

/// Closed; or stale, once 1024 other frees (other tests in this process) let the slot be
/// reused: both refuse the call, neither touches freed memory.
fn gone(e: Error) -> bool {
    matches!(e, Error::Closed(_) | Error::StaleHandle(_))
}

fn get_at_err(cf: CfHandle, snap: SnapshotHandle) -> Error {
    let mut buf = [0u8; 8];
    rocks::get_opt(cf, Some(snap), 0, b"a", &mut buf).unwrap_err()
}

#[test]
fn a_snapshot_sees_the_db_as_it_was_through_get_multi_get_and_iterators() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::new().unwrap();
    let db = open(&mgr, "s", dir.path(), &["default", "other"]);
    let (cf, other) = (db.column_families[0], db.column_families[1]);
    rocks::put(cf, b"a", b"old").unwrap();
    rocks::put(other, b"x", b"old-x").unwrap();
    let snap = snapshot::create(db.db).unwrap();
    rocks::put(cf, b"a", b"new").unwrap();
    rocks::put(cf, b"b", b"born later").unwrap();
    rocks::delete(other, b"x").unwrap();

    assert_eq!(get_at(cf, snap, b"a").as_deref(), Some(&b"old"[..]));
    assert_eq!(get_at(cf, snap, b"b"), None);
    assert_eq!(get_at(other, snap, b"x").as_deref(), Some(&b"old-x"[..]));
    assert_eq!(get(cf, b"a").as_deref(), Some(&b"new"[..]));

    let mut out = [0u8; 64];
    let (slots, needed) = multi_get(
        &[cf, cf, other],
        Some(snap),
        0,
        &[b"a", b"b", b"x"],
        &mut out,
    )
    .unwrap();
    assert_eq!(needed, 8);
    assert_eq!(slots[1], Lookup::NotFound);
    match (&slots[0], &slots[2]) {
        (
            Lookup::Found {
                offset: o1,
                len: l1,
            },
            Lookup::Found {
                offset: o2,
                len: l2,
            },
        ) => {
            assert_eq!(&out[*o1..o1 + l1], b"old");
            assert_eq!(&out[*o2..o2 + l2], b"old-x");
        }
        other => panic!("{other:?}"),
    }

    let it = iter::create(
        cf,
        &IterOptions {
            snapshot: Some(snap),
            ..Default::default()
        },
    )
    .unwrap();
    let all = drain(it, true, iter::seek(it, Seek::First).unwrap());
    assert_eq!(all, vec![(b"a".to_vec(), b"old".to_vec())]);
    mgr.close(it).unwrap();

    // Released: reads at it are refused, and nothing is left pinned.
    mgr.close(snap).unwrap();
    assert!(gone(get_at_err(cf, snap)));
    assert!(gone(
        iter::create(
            cf,
            &IterOptions {
                snapshot: Some(snap),
                ..Default::default()
            }
        )
        .unwrap_err()
    ));
}

#[test]
fn iterators_honour_bounds_directions_and_refuse_to_move_when_not_positioned() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::new().unwrap();
    let db = open(&mgr, "it", dir.path(), &["default"]);
    let cf = db.column_families[0];
    for k in ["a", "b", "c", "d", "e", "f", "g", "h"] {
        rocks::put(cf, k.as_bytes(), format!("v{k}").as_bytes()).unwrap();
    }
    let it = iter::create(
        cf,
        &IterOptions {
            lower: Some(b"c"),
            upper: Some(b"g"),
            ..Default::default()
        },
    )
    .unwrap();
    // Unpositioned at first.
    assert!(!iter::valid(it).unwrap());
    assert!(matches!(
        iter::step(it, true),
        Err(Error::IteratorNotValid(_))
    ));
    assert!(matches!(
        iter::read(it, true, &mut [0u8; 8]),
        Err(Error::IteratorNotValid(_))
    ));

    let fwd = drain(it, true, iter::seek(it, Seek::First).unwrap());
    assert_eq!(keys(&fwd), ["c", "d", "e", "f"], "upper bound is exclusive");
    assert_eq!(fwd[0].1, b"vc");
    assert!(
        matches!(iter::step(it, true), Err(Error::IteratorNotValid(_))),
        "past the end"
    );
    let back = drain(it, false, iter::seek(it, Seek::Last).unwrap());
    assert_eq!(keys(&back), ["f", "e", "d", "c"]);

    assert!(iter::seek(it, Seek::To(b"dd")).unwrap());
    let mut k = [0u8; 8];
    let n = iter::read(it, true, &mut k).unwrap();
    assert_eq!(&k[..n], b"e");
    assert!(iter::seek(it, Seek::ForPrev(b"dd")).unwrap());
    let n = iter::read(it, true, &mut k).unwrap();
    assert_eq!(&k[..n], b"d");
    assert!(
        !iter::seek(it, Seek::To(b"x")).unwrap(),
        "beyond the upper bound"
    );

    // Too small a buffer: the needed size, nothing copied.
    assert!(iter::seek(it, Seek::First).unwrap());
    assert_eq!(
        iter::read(it, false, &mut [0u8; 1]),
        Err(Error::BufferTooSmall { needed: 2 })
    );
    let e = iter::entry(it, &mut [0u8; 8], &mut [0u8; 1]).unwrap();
    assert_eq!((e.key, e.value, e.copied), (1, 2, false));

    // Bad bounds.
    assert!(matches!(
        iter::create(
            cf,
            &IterOptions {
                lower: Some(b"z"),
                upper: Some(b"a"),
                ..Default::default()
            }
        ),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        iter::create(
            cf,
            &IterOptions {
                flags: 1 << 7,
                ..Default::default()
            }
        ),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn a_batch_applies_atomically_across_column_families_and_is_emptied_by_its_write() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::new().unwrap();
    let db = open(&mgr, "b", dir.path(), &["default", "idx"]);
    let (cf, idx) = (db.column_families[0], db.column_families[1]);
    for k in ["r1", "r2", "r3", "r4"] {
        rocks::put(cf, k.as_bytes(), b"old").unwrap();
    }
    let b = batch::create(db.db).unwrap();
    batch::add(b, cf, Op::Put(b"user:1", b"alice")).unwrap();
    batch::add(b, idx, Op::Put(b"alice", b"user:1")).unwrap();
    batch::add(b, cf, Op::Delete(b"r1")).unwrap();
    batch::add(b, cf, Op::DeleteRange(b"r2", b"r4")).unwrap();
    assert_eq!(batch::count(b).unwrap(), 4);
    assert_eq!(get(cf, b"user:1"), None, "nothing applied before the write");
    batch::write(b, 0).unwrap();
    assert_eq!(get(cf, b"user:1").as_deref(), Some(&b"alice"[..]));
    assert_eq!(get(idx, b"alice").as_deref(), Some(&b"user:1"[..]));
    assert_eq!(get(cf, b"r1"), None);
    assert_eq!(get(cf, b"r2"), None);
    assert_eq!(get(cf, b"r3"), None);
    assert_eq!(
        get(cf, b"r4").as_deref(),
        Some(&b"old"[..]),
        "range end is exclusive"
    );

    // Written once: empty now, a second write applies nothing again.
    assert_eq!(batch::count(b).unwrap(), 0);
    rocks::put(cf, b"user:1", b"changed").unwrap();
    batch::write(b, 0).unwrap();
    assert_eq!(get(cf, b"user:1").as_deref(), Some(&b"changed"[..]));
    batch::add(b, cf, Op::Put(b"x", b"1")).unwrap();
    batch::clear(b).unwrap();
    batch::write(b, 0).unwrap();
    assert_eq!(get(cf, b"x"), None, "cleared before the write");

    // Flags and inputs.
    batch::add(b, cf, Op::Put(b"s", b"1")).unwrap();
    assert!(matches!(batch::write(b, 3), Err(Error::InvalidArgument(_))));
    assert_eq!(
        batch::count(b).unwrap(),
        1,
        "a refused write keeps the content"
    );
    batch::write(b, 1).unwrap(); // RM_WRITE_SYNC
    assert!(matches!(
        batch::add(b, cf, Op::DeleteRange(b"z", b"a")),
        Err(Error::InvalidArgument(_))
    ));

    // A column family of another DB.
    let dir2 = tempfile::tempdir().unwrap();
    let db2 = open(&mgr, "b2", dir2.path(), &["default"]);
    assert!(matches!(
        batch::add(b, db2.column_families[0], Op::Put(b"k", b"v")),
        Err(Error::WrongDb(_))
    ));
    // Wrong kinds.
    assert!(matches!(
        batch::count(BatchHandle::from_raw(cf.raw())),
        Err(Error::WrongKind(_))
    ));
    assert!(matches!(
        batch::add(b, CfHandle::from_raw(db.db.raw()), Op::Delete(b"k")),
        Err(Error::WrongKind(_))
    ));

    mgr.close(b).unwrap();
    assert!(gone(batch::write(b, 0).unwrap_err()));
    assert!(matches!(
        mgr.close(b),
        Err(Error::AlreadyClosed(_) | Error::StaleHandle(_))
    ));
}

#[test]
fn multi_get_packs_values_reports_each_key_and_refuses_mixed_dbs() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::new().unwrap();
    let db = open(&mgr, "m", dir.path(), &["default", "b"]);
    let (a, b) = (db.column_families[0], db.column_families[1]);
    rocks::put(a, b"k1", b"one").unwrap();
    rocks::put(a, b"k2", &[2u8; 40]).unwrap();
    rocks::put(b, b"k3", b"three").unwrap();

    let keys: [&[u8]; 4] = [b"k1", b"k2", b"missing", b"k3"];
    let mut small = [0u8; 10];
    let (slots, needed) = multi_get(&[a, a, a, b], None, 0, &keys, &mut small).unwrap();
    assert_eq!(needed, 3 + 40 + 5);
    assert_eq!(slots[0], Lookup::Found { offset: 0, len: 3 });
    assert_eq!(slots[1], Lookup::TooSmall { len: 40 });
    assert_eq!(slots[2], Lookup::NotFound);
    assert_eq!(
        slots[3],
        Lookup::Found { offset: 3, len: 5 },
        "later values fill what is left"
    );
    assert_eq!(&small[..8], b"onethree");
    let mut big = vec![0u8; needed];
    let (slots, _) = multi_get(&[a, a, a, b], None, 0, &keys, &mut big).unwrap();
    assert!(
        slots
            .iter()
            .filter(|s| matches!(s, Lookup::Found { .. }))
            .count()
            == 3
    );

    // One column family for all keys; no keys at all.
    let (slots, _) = multi_get(&[a], None, 0, &[b"k1", b"k3"], &mut big).unwrap();
    assert_eq!(slots[1], Lookup::NotFound);
    assert_eq!(multi_get(&[a], None, 0, &[], &mut big).unwrap().0.len(), 0);

    let dir2 = tempfile::tempdir().unwrap();
    let other = open(&mgr, "m2", dir2.path(), &["default"]);
    let c = other.column_families[0];
    assert!(matches!(
        multi_get(&[a, c], None, 0, &[b"k1", b"k1"], &mut big),
        Err(Error::WrongDb(_))
    ));
    let snap = snapshot::create(other.db).unwrap();
    assert!(matches!(
        multi_get(&[a], Some(snap), 0, &[b"k1"], &mut big),
        Err(Error::WrongDb(_))
    ));
    assert!(matches!(
        multi_get(&[a, b], None, 0, &[b"k1", b"k2", b"k3"], &mut big),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        multi_get(
            &[CfHandle::from_raw(db.db.raw())],
            None,
            0,
            &[b"k1"],
            &mut big
        ),
        Err(Error::WrongKind(_))
    ));
}

#[test]
fn options_are_validated_and_applied_and_memory_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::new().unwrap();
    for bad in [
        DbOptions {
            write_buffer_size: 1024,
            ..Default::default()
        },
        DbOptions {
            max_open_files: 0,
            ..Default::default()
        },
        DbOptions {
            max_open_files: -2,
            ..Default::default()
        },
        DbOptions {
            block_cache_size: usize::MAX,
            ..Default::default()
        },
    ] {
        let specs = [CfSpec::new("default")];
        let r = rocks::open(mgr.handle(), "bad", dir.path(), &specs, &bad);
        assert!(
            matches!(r, Err(Error::InvalidArgument(_))),
            "{bad:?}: {r:?}"
        );
    }
    // (Process-wide counts are checked by the C suite, which runs alone: tests here share the
    // process.) Nothing registered, and the directory was never locked:
    assert!(only_monitor(&mgr.status().unwrap()));

    let o = DbOptions {
        write_buffer_size: 256 << 10,
        max_open_files: 64,
        block_cache_size: 1 << 20,
        compression: Compression::Zstd,
        ..Default::default()
    };
    let specs = [
        CfSpec::new("default"),
        CfSpec {
            name: "raw",
            compression: Some(Compression::None),
        },
        CfSpec {
            name: "fast",
            compression: Some(Compression::Lz4),
        },
    ];
    let db = rocks::open(mgr.handle(), "opts", dir.path(), &specs, &o).unwrap();
    for cf in &db.column_families {
        for i in 0..2000u32 {
            rocks::put_opt(*cf, format!("key{i:06}").as_bytes(), &[b'x'; 200], 2).unwrap();
        }
    }
    let m = rocks::memory(db.db).unwrap();
    assert!(m.mem_table_total > 0 && m.mem_table_unflushed > 0, "{m:?}");
    let json = mgr.status().unwrap().to_json();
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let entry = doc["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "opts")
        .unwrap();
    assert!(
        entry["details"]["memory"]["mem_table_total"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(
        entry["details"]["column_families"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // Unknown write flags, and sync without the WAL.
    let cf = db.column_families[0];
    assert!(matches!(
        rocks::put_opt(cf, b"k", b"v", 4),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        rocks::put_opt(cf, b"k", b"v", 3),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        rocks::get_opt(cf, None, 8, b"k", &mut [0u8; 4]),
        Err(Error::InvalidArgument(_))
    ));

    // Writes without the WAL survive a graceful close (it flushes), with every compression.
    mgr.close(db.db).unwrap();
    let db = rocks::open(mgr.handle(), "opts", dir.path(), &specs, &o).unwrap();
    for cf in &db.column_families {
        assert_eq!(get(*cf, b"key001999").as_deref(), Some(&[b'x'; 200][..]));
    }
}

#[test]
fn a_failed_open_releases_everything_it_created() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::new().unwrap();
    {
        let db = open(&mgr, "first", dir.path(), &["default", "a"]);
        rocks::put(db.column_families[1], b"k", b"v").unwrap();
        // Locked: this process already holds the directory.
        let specs = [CfSpec::new("default")];
        let r = rocks::open(
            mgr.handle(),
            "second",
            dir.path(),
            &specs,
            &DbOptions::default(),
        );
        assert!(matches!(r, Err(Error::Locked(_))), "{r:?}");
        mgr.close(db.db).unwrap();
    }
    // A column family that cannot be created.
    let no_create = DbOptions {
        create_missing_column_families: false,
        ..Default::default()
    };
    let specs = [CfSpec::new("default"), CfSpec::new("a"), CfSpec::new("new")];
    let r = rocks::open(mgr.handle(), "third", dir.path(), &specs, &no_create);
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    assert!(only_monitor(&mgr.status().unwrap()));
    // Nothing kept the directory: it opens again at once, data intact.
    let db = open(&mgr, "fourth", dir.path(), &["default", "a"]);
    assert_eq!(get(db.column_families[1], b"k").as_deref(), Some(&b"v"[..]));
}

#[test]
fn closing_a_db_while_threads_iterate_and_read_at_snapshots_never_crashes() {
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let mgr = Manager::new().unwrap();
        let db = open(&mgr, "race", dir.path(), &["default"]);
        let cf = db.column_families[0];
        for i in 0..200u32 {
            rocks::put(cf, format!("k{i:04}").as_bytes(), b"v").unwrap();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (stop, tx) = (Arc::clone(&stop), tx.clone());
                let (dbh, mh) = (db.db, mgr.handle().raw());
                std::thread::spawn(move || {
                    let mut sent = false;
                    while !stop.load(Ordering::Relaxed) {
                        let r = (|| -> resman::Result<()> {
                            let snap = snapshot::create(dbh)?;
                            let it = iter::create(
                                cf,
                                &IterOptions {
                                    snapshot: Some(snap),
                                    ..Default::default()
                                },
                            )?;
                            let mut valid = iter::seek(it, Seek::First)?;
                            let mut n = 0;
                            while valid && n < 50 + t {
                                valid = iter::step(it, true)?;
                                n += 1;
                            }
                            let mut buf = [0u8; 8];
                            rocks::get_opt(cf, Some(snap), 0, b"k0001", &mut buf)?;
                            // Released by their owner, as a careful caller does (the close may
                            // lose the race against the DB's close: already closed then).
                            for h in [it.raw(), snap.raw()] {
                                match resman::manager::close(mh, h, CloseMode::Graceful, None) {
                                    Ok(())
                                    | Err(Error::AlreadyClosed(_) | Error::StaleHandle(_)) => {}
                                    Err(e) => return Err(e),
                                }
                            }
                            Ok(())
                        })();
                        if !sent {
                            tx.send(()).unwrap();
                            sent = true;
                        }
                        match r {
                            Ok(()) => {}
                            Err(
                                Error::Closed(_)
                                | Error::DependencyClosed(_)
                                | Error::StaleHandle(_),
                            ) => break,
                            Err(e) => panic!("round {round}: unexpected {e:?}"),
                        }
                    }
                })
            })
            .collect();
        for _ in 0..threads.len() {
            rx.recv().unwrap();
        }
        let mode = if round % 2 == 0 {
            CloseMode::Graceful
        } else {
            CloseMode::Forced
        };
        let _ = mgr.close_with(db.db, mode, Some(Duration::from_millis(200)));
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        // The iterators and snapshots the threads left behind are gone with the DB; the
        // manager is empty once every deferred close ran.
        mgr.cleanup().unwrap();
        assert!(only_monitor(&mgr.status().unwrap()), "round {round}");
    }
}

#[test]
fn a_db_with_the_longest_name_still_gets_iterators_snapshots_and_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::new().unwrap();
    // 1024 bytes, multi-byte characters at the cut.
    let name = format!("{}{}", "é".repeat(500), "x".repeat(24));
    assert_eq!(name.len(), 1024);
    // Its column families are named `name/cf`, longer than RM_MAX_NAME_LEN: accepted, the
    // limit is on the names the caller chooses.
    let cf_name = "c".repeat(1024);
    let specs = [CfSpec::new("default"), CfSpec::new(&cf_name)];
    let db = rocks::open(
        mgr.handle(),
        &name,
        dir.path(),
        &specs,
        &DbOptions::default(),
    )
    .unwrap();
    let st = mgr.status().unwrap();
    let cf = st
        .resources
        .iter()
        .find(|r| r.handle == db.column_families[1].raw())
        .unwrap();
    assert_eq!(cf.name, format!("{name}/{cf_name}"));
    assert_eq!(cf.name.len(), 2049);
    let longer = format!("{name}x");
    let refused = rocks::open(
        mgr.handle(),
        &longer,
        dir.path(),
        &[],
        &DbOptions::default(),
    );
    assert!(
        matches!(&refused, Err(Error::InvalidArgument(m)) if m.contains("1025 bytes")),
        "{refused:?}"
    );
    let s = snapshot::create(db.db).unwrap();
    let b = batch::create(db.db).unwrap();
    let st = mgr.status().unwrap();
    for h in [ResourceHandle::from(s), b.into()] {
        let r = st.resources.iter().find(|r| r.handle == h.raw()).unwrap();
        assert!(r.name.len() <= 1024 && r.name.contains('#'), "{}", r.name);
    }
}

/// A resource of the caller's that depends on a DB and uses it in its close (a write-behind
/// cache flushing at shutdown); optionally also tries to open an iterator there (a dependent
/// that would appear while the cleanup runs) and keeps what it was told.
struct Flusher {
    cf: CfHandle,
    open_iterator: Option<Told>,
}

/// What the flusher's attempt to open an iterator returned (None: no attempt yet).
type Told = Arc<Mutex<Option<Result<IterHandle, Error>>>>;

impl resman::Resource for Flusher {
    fn close(&self, _mode: CloseMode) -> Result<(), String> {
        rocks::put(self.cf, b"flushed-at-close", b"yes").map_err(|e| e.to_string())?;
        if let Some(told) = &self.open_iterator {
            *told.lock().unwrap() = Some(iter::create(self.cf, &IterOptions::default()));
        }
        Ok(())
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[test]
fn a_dependent_may_use_its_db_while_it_closes_whichever_close_sweeps_it() {
    for how in ["close the DB", "cleanup", "destroy"] {
        let dir = tempfile::tempdir().unwrap();
        let mgr = Manager::new().unwrap();
        let db = open(&mgr, "db", dir.path(), &["default"]);
        let cf = db.column_families[0];
        mgr.register(
            "flusher",
            resman::Kind::Foreign,
            Box::new(Flusher {
                cf,
                open_iterator: None,
            }),
            &[db.db.into()],
        )
        .unwrap();
        match how {
            "close the DB" => mgr.close(db.db).unwrap(),
            "cleanup" => mgr.cleanup().unwrap(),
            _ => mgr.destroy().unwrap(),
        }
        let mgr = Manager::new().unwrap();
        let db = open(&mgr, "db", dir.path(), &["default"]);
        assert_eq!(
            get(db.column_families[0], b"flushed-at-close").as_deref(),
            Some(&b"yes"[..]),
            "{how}: the dependent's write during its close reached the DB before it closed"
        );
    }
}

#[test]
fn a_dependent_cannot_open_new_children_of_a_db_whose_close_was_asked_for() {
    for how in ["close the DB", "cleanup"] {
        let dir = tempfile::tempdir().unwrap();
        let mgr = Manager::new().unwrap();
        let db = open(&mgr, "db", dir.path(), &["default"]);
        let cf = db.column_families[0];
        // Registered after the column family, so it closes first and, while closing, tries
        // to open an iterator on the column family: a dependent the close did not choose,
        // which would hold the column family until the deadline. It is refused; the
        // flusher's write still lands.
        let told = Arc::new(Mutex::new(None));
        mgr.register(
            "flusher",
            resman::Kind::Foreign,
            Box::new(Flusher {
                cf,
                open_iterator: Some(Arc::clone(&told)),
            }),
            &[db.db.into()],
        )
        .unwrap();
        match how {
            "close the DB" => mgr.close(db.db).unwrap(),
            _ => mgr
                .cleanup_timeout(Duration::from_secs(20), CloseMode::Graceful)
                .unwrap(),
        }
        let refused = told
            .lock()
            .unwrap()
            .take()
            .expect("the flusher's close ran");
        assert!(
            matches!(refused, Err(Error::Closed(_))),
            "{how}: {refused:?}"
        );
        let status = mgr.status().unwrap();
        assert_eq!(status.totals.timed_out, 0, "{how}");
        let kinds: Vec<&str> = status.recently_closed.iter().map(|r| r.kind).collect();
        assert!(!kinds.contains(&"iterator"), "{how}: {kinds:?}");
        let mgr = Manager::new().unwrap();
        let db = open(&mgr, "db", dir.path(), &["default"]);
        assert_eq!(
            get(db.column_families[0], b"flushed-at-close").as_deref(),
            Some(&b"yes"[..]),
            "{how}"
        );
    }
}

#[test]
fn the_monitor_samples_each_open_db_and_a_forced_cleanup_returns_with_everything_closed() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mgr = Manager::with_config(resman::Config {
        monitor_interval: Duration::from_millis(10),
        ..Default::default()
    })
    .unwrap();
    let a = open(&mgr, "a", dirs[0].path(), &["default"]);
    let b = open(&mgr, "b", dirs[1].path(), &["default", "x"]);
    for i in 0..1000u32 {
        rocks::put(a.column_families[0], &i.to_be_bytes(), &[7u8; 100]).unwrap();
    }
    let sampled = |m: &resman::monitor::MemorySample| {
        m.reporting == 2
            && m.resources
                .iter()
                .any(|r| r.name == "a" && r.memory.mem_table_total > 0)
    };
    let mut sample = resman::manager::memory_sample_of(mgr.handle().raw()).unwrap();
    for _ in 0..1_000_000 {
        if sampled(&sample) {
            break;
        }
        std::thread::yield_now();
        sample = resman::manager::memory_sample_of(mgr.handle().raw()).unwrap();
    }
    assert!(sampled(&sample), "{sample:?}");
    let names: Vec<&str> = sample.resources.iter().map(|r| r.name.as_str()).collect();
    assert!(names.contains(&"a") && names.contains(&"b"), "{names:?}");
    let sum: u64 = sample
        .resources
        .iter()
        .map(|r| r.memory.mem_table_total)
        .sum();
    assert_eq!(sum, sample.total.mem_table_total);
    assert!(sample.registry_bytes > 0);
    // A forced cleanup with nothing in flight: every close ran when it returns.
    mgr.cleanup_timeout(Duration::from_secs(30), CloseMode::Forced)
        .unwrap();
    let st = mgr.status().unwrap();
    assert!(st.resources.is_empty(), "monitor included");
    let rec = st.last_cleanup.unwrap();
    assert_eq!(rec.mode, "forced");
    assert!(rec.steps.iter().all(|s| s.forced));
    let pos = |n: &str| rec.order.iter().position(|x| x == n).unwrap();
    assert!(pos("b/x") < pos("b") && pos("a/default") < pos("a"));
    let _ = (a.db, b.db);
}
