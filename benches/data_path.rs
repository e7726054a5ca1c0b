//! The data path through resman's C ABI against rust-rocksdb called directly (issue 8, item 1):
//! get (hit, miss), put, a batch of 100 puts, and a scan of 10k keys.
//!
//! Both sides read the same bytes: one seed DB (100k keys of 16 bytes, values of 100 bytes,
//! flushed and compacted into one level) copied into two directories, opened with the same
//! options (resman's defaults: 64 MiB memtables, a 32 MiB LRU block cache, LZ4), both caches
//! warm. Reads use default read options on both sides, writes default write options (WAL on,
//! not synced); rust-rocksdb's options objects are built once, as resman builds its own once.
//! Between two measurements both DBs are left to finish their flushes and compactions.
//!
//! Run with `cargo bench --bench data_path` (`make bench` runs everything);
//! `RESMAN_BENCH_QUICK=1` shortens every measurement for checking the harness. Criterion's own
//! figures go to `$CARGO_TARGET_DIR/bench/criterion`; the medians become rows of
//! `$CARGO_TARGET_DIR/bench/rust.json`.

mod common;

use common::*;
use criterion::{Bencher, Criterion, Throughput};
use resman::ffi::{
    rm_batch_count, rm_batch_create, rm_batch_put, rm_batch_write, rm_close, rm_entry_len,
    rm_error, rm_iter_create, rm_iter_entry, rm_iter_next, rm_iter_read_next, rm_iter_seek,
};
use resman::rm_result;
use rocksdb::{ReadOptions, WriteBatch, WriteOptions};
use serde_json::json;
use std::hint::black_box;
use std::path::Path;
use std::ptr;
use std::time::{Duration, Instant};

/// Keys per scan.
const SCAN: u64 = 10_000;
/// Puts per batch.
const BATCH: u64 = 100;
/// Length of the precomputed key sequences (a power of two).
const SEQ: usize = 1 << 16;

const GOAL: &str = "resman/baseline >= 0.95";

fn main() {
    let info = RunInfo::start();
    let quick = quick();
    let crit_dir = out_dir().join("criterion");
    let _ = std::fs::remove_dir_all(&crit_dir);
    let (warm, measure, samples) = if quick {
        (Duration::from_millis(200), Duration::from_millis(600), 10)
    } else {
        (Duration::from_secs(1), Duration::from_secs(3), 50)
    };
    let mut c = Criterion::default()
        .warm_up_time(warm)
        .measurement_time(measure)
        .sample_size(samples)
        .output_directory(&crit_dir)
        .configure_from_args();

    let fx = Fixture::new("data_path");
    let mut rng = Rng(42);
    let hits: Vec<[u8; 16]> = (0..SEQ).map(|_| key(2 * (rng.next_u64() % KEYS))).collect();
    let misses: Vec<[u8; 16]> = (0..SEQ)
        .map(|_| key(2 * (rng.next_u64() % KEYS) + 1))
        .collect();
    // Writes go to random keys over four times the seeded range (inserts and overwrites).
    let writes: Vec<[u8; 16]> = (0..SEQ).map(|_| key(rng.next_u64() % (4 * KEYS))).collect();
    let value = rng.bytes(VALUE_LEN);
    // Scans start at random keys that leave at least SCAN keys after them.
    let starts: Vec<[u8; 16]> = (0..SEQ)
        .map(|_| key(2 * (rng.next_u64() % (KEYS - SCAN))))
        .collect();

    bench_get(&mut c, &fx, "get_hit", &hits, true);
    bench_get(&mut c, &fx, "get_miss", &misses, false);
    bench_scan(&mut c, &fx, &starts);
    bench_scan_entries(&mut c, &fx, &starts);
    bench_put(&mut c, &fx, &writes, &value);
    bench_batch(&mut c, &fx, &writes, &value);
    bench_call(&mut c, &fx);
    c.final_summary();

    let mut rows = rows(&crit_dir);
    if let Some(ns) = median_ns(&crit_dir, "call", "resman") {
        rows.push(
            Row::new("data path", "one C call that does no RocksDB work", "ns")
                .lower_is_better()
                .resman(ns)
                .note(format!(
                    "rm_batch_count on an empty batch: resolving the handle, the lease, the \
                     batch's lock, the panic boundary and writing the rm_error, with nothing \
                     else; the floor of what any resman call adds to the RocksDB call it makes \
                     (median, best of {} criterion runs)",
                    rounds()
                )),
        );
    }
    write_part("1-data_path", &info, &rows, json!({}));
    fx.destroy();
}

/// Waits until neither DB has a flush or compaction running or pending, so a measurement does
/// not pay for the previous one's background work.
fn settle(fx: &Fixture) {
    let props = [
        "rocksdb.num-running-flushes",
        "rocksdb.num-running-compactions",
        "rocksdb.mem-table-flush-pending",
        "rocksdb.compaction-pending",
    ];
    let cf = fx.direct.cf_handle(CF).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let busy = props.iter().any(|p| {
            resman::rocks::property_int(resman::rocks::CfHandle::from_raw(fx.resman.cf), p)
                .unwrap()
                .unwrap_or(0)
                > 0
                || fx
                    .direct
                    .property_int_value_cf(cf, *p)
                    .unwrap()
                    .unwrap_or(0)
                    > 0
        });
        if !busy || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Interleaved rounds: resman, rust-rocksdb, resman, rust-rocksdb... each a full criterion
/// measurement after both DBs settle; the report keeps each side's best round, so a burst of
/// load from elsewhere on the machine does not decide the comparison.
fn rounds() -> usize {
    if quick() {
        1
    } else {
        5
    }
}

/// Measures `resman` and `direct` in group `group`, `elements` operations per iteration.
fn pair(
    c: &mut Criterion,
    fx: &Fixture,
    group: &str,
    elements: u64,
    samples: Option<usize>,
    mut resman: impl FnMut(&mut Bencher),
    mut direct: impl FnMut(&mut Bencher),
) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(elements));
    if let Some(n) = samples {
        g.sample_size(n);
    }
    for round in 0..rounds() {
        settle(fx);
        g.bench_function(format!("resman-{round}"), &mut resman);
        settle(fx);
        g.bench_function(format!("rust-rocksdb-{round}"), &mut direct);
    }
    g.finish();
    settle(fx);
}

fn bench_get(c: &mut Criterion, fx: &Fixture, group: &str, keys: &[[u8; 16]], hit: bool) {
    let cf = fx.resman.cf;
    let (mut buf_r, mut buf_d) = ([0u8; 256], [0u8; 256]);
    let mut err = new_error();
    let (mut i, mut j) = (0usize, 0usize);
    let db = &fx.direct;
    let handle = db.cf_handle(CF).unwrap();
    let ro = ReadOptions::default();
    pair(
        c,
        fx,
        group,
        1,
        None,
        |b| {
            b.iter(|| {
                let k = &keys[i & (SEQ - 1)];
                i += 1;
                let r = rm_get(cf, black_box(k), &mut buf_r, &mut err);
                debug_assert_eq!(r.is_some(), hit);
                black_box(r)
            })
        },
        |b| {
            b.iter(|| {
                let k = &keys[j & (SEQ - 1)];
                j += 1;
                let r = direct_get(db, &handle, &ro, black_box(k), &mut buf_d);
                debug_assert_eq!(r.is_some(), hit);
                black_box(r)
            })
        },
    );
}

/// Entries per `rm_iter_read_next` call in the batched scan, and its buffer: as the Go binding
/// reads (its largest batch).
const READ_BATCH: usize = 128;
const READ_BUF: usize = 64 << 10;

/// One scan as a C caller should write it: an iterator created at `start`'s key, SCAN entries
/// copied out by `rm_iter_read_next` (READ_BATCH per call into one buffer), the iterator
/// closed; rust-rocksdb as in [`bench_scan_entries`].
fn bench_scan(c: &mut Criterion, fx: &Fixture, starts: &[[u8; 16]]) {
    let (mgr, cf) = (fx.resman.mgr, fx.resman.cf);
    let mut buf = vec![0u8; READ_BUF];
    let mut lens = vec![
        rm_entry_len {
            key_len: 0,
            value_len: 0
        };
        READ_BATCH
    ];
    let mut i = 0usize;
    pair(
        c,
        fx,
        "scan_10k",
        SCAN,
        Some(if quick() { 10 } else { 30 }),
        |b| {
            b.iter(|| {
                let start = &starts[i & (SEQ - 1)];
                i += 1;
                let mut err = new_error();
                let (it, mut valid) = open_scan(cf, start, &mut err);
                let mut total = 0usize;
                let mut left = SCAN as usize;
                while left > 0 {
                    assert!(valid);
                    let mut count = 0usize;
                    // SAFETY: `buf` and `lens` are live, of the sizes passed, not overlapping;
                    // the outputs and `err` are locals.
                    let rc = unsafe {
                        rm_iter_read_next(
                            it,
                            buf.as_mut_ptr(),
                            buf.len(),
                            lens.as_mut_ptr(),
                            READ_BATCH.min(left),
                            &mut count,
                            &mut valid,
                            &mut err,
                        )
                    };
                    debug_assert_eq!(rc, rm_result::RM_OK);
                    for l in &lens[..count] {
                        total += l.key_len + l.value_len;
                    }
                    left -= count;
                }
                // SAFETY: `err` is a local.
                let rc = unsafe { rm_close(mgr, it, &mut err) };
                check(rc, &err, "rm_close(iterator)");
                black_box(total)
            })
        },
        |b| direct_scan(b, fx, starts),
    );
}

/// An iterator on `cf` positioned at `start`, and whether it is on an entry: the start of
/// both resman scans.
fn open_scan(cf: u64, start: &[u8; 16], err: &mut rm_error) -> (u64, bool) {
    let mut it = 0u64;
    let mut valid = false;
    // SAFETY: no bounds (NULL, 0); the out-pointer and `err` are valid for the call.
    let rc = unsafe { rm_iter_create(cf, 0, 0, ptr::null(), 0, ptr::null(), 0, &mut it, err) };
    check(rc, err, "rm_iter_create");
    // SAFETY: `start` is a live 16-byte key; `valid` and `err` are valid for the call.
    let rc = unsafe { rm_iter_seek(it, start.as_ptr(), start.len(), &mut valid, err) };
    check(rc, err, "rm_iter_seek");
    (it, valid)
}

/// rust-rocksdb's side of both scans: an iterator at `start`'s key, SCAN keys and values
/// copied into buffers, as resman copies them into the caller's.
fn direct_scan(b: &mut Bencher, fx: &Fixture, starts: &[[u8; 16]]) {
    let db = &fx.direct;
    let handle = db.cf_handle(CF).unwrap();
    let (mut kbuf, mut vbuf) = ([0u8; 64], [0u8; 256]);
    let mut j = 0usize;
    b.iter(|| {
        let start = &starts[j & (SEQ - 1)];
        j += 1;
        let mut total = 0usize;
        // rust-rocksdb takes the read options by value: one per iterator.
        let mut it = db.raw_iterator_cf_opt(&handle, ReadOptions::default());
        it.seek(start);
        for _ in 0..SCAN {
            assert!(it.valid());
            let k = it.key().unwrap();
            let v = it.value().unwrap();
            kbuf[..k.len()].copy_from_slice(k);
            vbuf[..v.len()].copy_from_slice(v);
            total += k.len() + v.len();
            it.next();
        }
        black_box(total)
    })
}

/// One scan with a C call per step: an iterator created at `start`'s key, SCAN entries copied
/// out by `rm_iter_entry` + `rm_iter_next`, the iterator closed.
fn bench_scan_entries(c: &mut Criterion, fx: &Fixture, starts: &[[u8; 16]]) {
    let (mgr, cf) = (fx.resman.mgr, fx.resman.cf);
    let (mut kbuf, mut vbuf) = ([0u8; 64], [0u8; 256]);
    let mut i = 0usize;
    pair(
        c,
        fx,
        "scan_10k_entries",
        SCAN,
        Some(if quick() { 10 } else { 30 }),
        |b| {
            b.iter(|| {
                let start = &starts[i & (SEQ - 1)];
                i += 1;
                let mut err = new_error();
                let (it, mut valid) = open_scan(cf, start, &mut err);
                let mut total = 0usize;
                for _ in 0..SCAN {
                    assert!(valid);
                    let (mut kl, mut vl) = (0usize, 0usize);
                    // SAFETY: both buffers are live, non-overlapping, of the capacities passed;
                    // lengths and `err` are locals.
                    let rc = unsafe {
                        rm_iter_entry(
                            it,
                            kbuf.as_mut_ptr(),
                            kbuf.len(),
                            &mut kl,
                            vbuf.as_mut_ptr(),
                            vbuf.len(),
                            &mut vl,
                            &mut err,
                        )
                    };
                    debug_assert_eq!(rc, rm_result::RM_OK);
                    total += kl + vl;
                    // SAFETY: `valid` and `err` are locals.
                    let rc = unsafe { rm_iter_next(it, &mut valid, &mut err) };
                    debug_assert_eq!(rc, rm_result::RM_OK);
                }
                // SAFETY: `err` is a local.
                let rc = unsafe { rm_close(mgr, it, &mut err) };
                check(rc, &err, "rm_close(iterator)");
                black_box(total)
            })
        },
        |b| direct_scan(b, fx, starts),
    );
}

/// A batch on the fixture's resman DB; its handle.
fn create_batch(fx: &Fixture) -> u64 {
    let mut err = new_error();
    let mut batch = 0u64;
    // SAFETY: out-pointer and `err` are locals.
    check(
        unsafe { rm_batch_create(fx.resman.db, &mut batch, &mut err) },
        &err,
        "rm_batch_create",
    );
    batch
}

/// Closes a batch of [`create_batch`].
fn close_batch(fx: &Fixture, batch: u64) {
    let mut err = new_error();
    // SAFETY: `err` is a local.
    check(
        unsafe { rm_close(fx.resman.mgr, batch, &mut err) },
        &err,
        "rm_close(batch)",
    );
}

fn bench_put(c: &mut Criterion, fx: &Fixture, keys: &[[u8; 16]], value: &[u8]) {
    let cf = fx.resman.cf;
    let mut err = new_error();
    let (mut i, mut j) = (0usize, 0usize);
    let db = &fx.direct;
    let handle = db.cf_handle(CF).unwrap();
    let wo = WriteOptions::default();
    pair(
        c,
        fx,
        "put",
        1,
        None,
        |b| {
            b.iter(|| {
                let k = &keys[i & (SEQ - 1)];
                i += 1;
                let rc = put_rc(cf, k, value, &mut err);
                debug_assert_eq!(rc, rm_result::RM_OK);
                black_box(rc)
            })
        },
        |b| {
            b.iter(|| {
                let k = &keys[j & (SEQ - 1)];
                j += 1;
                db.put_cf_opt(&handle, k, value, &wo).unwrap()
            })
        },
    );
}

fn bench_batch(c: &mut Criterion, fx: &Fixture, keys: &[[u8; 16]], value: &[u8]) {
    let cf = fx.resman.cf;
    let mut err = new_error();
    let batch = create_batch(fx);
    let (mut i, mut j) = (0usize, 0usize);
    let db = &fx.direct;
    let handle = db.cf_handle(CF).unwrap();
    let wo = WriteOptions::default();
    pair(
        c,
        fx,
        "batch_100",
        1,
        None,
        |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    let k = &keys[i & (SEQ - 1)];
                    i += 1;
                    // SAFETY: live slices of the lengths passed; `err` is a local.
                    let rc = unsafe {
                        rm_batch_put(
                            batch,
                            cf,
                            k.as_ptr(),
                            k.len(),
                            value.as_ptr(),
                            value.len(),
                            &mut err,
                        )
                    };
                    debug_assert_eq!(rc, rm_result::RM_OK);
                }
                // The write empties the batch: it is filled again next time.
                // SAFETY: `err` is a local.
                let rc = unsafe { rm_batch_write(batch, 0, &mut err) };
                debug_assert_eq!(rc, rm_result::RM_OK);
                black_box(rc)
            })
        },
        |b| {
            b.iter(|| {
                // rust-rocksdb's write takes the batch by value: one batch per write.
                let mut wb = WriteBatch::default();
                for _ in 0..BATCH {
                    let k = &keys[j & (SEQ - 1)];
                    j += 1;
                    wb.put_cf(&handle, k, value);
                }
                db.write_opt(wb, &wo).unwrap()
            })
        },
    );
    close_batch(fx, batch);
}

/// resman's own cost per call: `rm_batch_count` does nothing but resolve, lease, lock and
/// report.
fn bench_call(c: &mut Criterion, fx: &Fixture) {
    let mut err = new_error();
    let batch = create_batch(fx);
    let mut g = c.benchmark_group("call");
    g.throughput(Throughput::Elements(1));
    for round in 0..rounds() {
        g.bench_function(format!("resman-{round}"), |b| {
            b.iter(|| {
                let mut n = 0usize;
                // SAFETY: `n` and `err` are locals.
                let rc = unsafe { rm_batch_count(black_box(batch), &mut n, &mut err) };
                debug_assert_eq!(rc, rm_result::RM_OK);
                black_box(n)
            })
        });
    }
    g.finish();
    close_batch(fx, batch);
}

/// Criterion's median time per iteration of `group/function-<round>` in nanoseconds, the best
/// (lowest) over the rounds that ran.
fn median_ns(dir: &Path, group: &str, function: &str) -> Option<f64> {
    best_round(&round_medians(dir, group, function))
}

/// The best (lowest) of the rounds' medians.
fn best_round(medians: &[f64]) -> Option<f64> {
    medians.iter().copied().min_by(f64::total_cmp)
}

/// Criterion's median time per iteration of `group/function-<round>` in nanoseconds, for each
/// round that ran, in order.
fn round_medians(dir: &Path, group: &str, function: &str) -> Vec<f64> {
    (0..rounds())
        .filter_map(|round| {
            let p = dir
                .join(group)
                .join(format!("{function}-{round}"))
                .join("new/estimates.json");
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()?;
            v["median"]["point_estimate"].as_f64()
        })
        .collect()
}

/// What resman does on each of these calls that a direct rust-rocksdb call does not (the
/// reason for any gap; the figures say how much it costs).
const PER_CALL: &str = "resolves the handle (a lock-free table lookup), takes and releases a \
     lease (two atomic read-modify-writes), runs inside the panic boundary and writes the \
     caller's rm_error";

fn rows(dir: &Path) -> Vec<Row> {
    // (criterion group, row name, unit, operations per iteration, C calls per operation, what
    // is compared, where resman's extra time goes)
    let specs: [(&str, &str, &str, f64, f64, &str, String); 6] = [
        (
            "get_hit",
            "get (hit)",
            "ops/s",
            1.0,
            1.0,
            "rm_get into a caller buffer, with an rm_error, vs get_pinned_cf_opt and one copy \
             into the same kind of buffer; random keys of 100k in one level, cache warm",
            format!(
                "each rm_get {PER_CALL}; the row \"one C call that does no RocksDB work\" is \
                 all of that, and a difference beyond it is the RocksDB read itself running \
                 slower on resman's copy of the DB, which varies from run to run"
            ),
        ),
        (
            "get_miss",
            "get (miss)",
            "ops/s",
            1.0,
            1.0,
            "keys between the stored ones (no bloom filter on either side, as resman opens \
             it); rm_get reports RM_ERR_NOT_FOUND with its message in the rm_error",
            format!(
                "each rm_get {PER_CALL}, here the not-found message; the row \"one C call that \
                 does no RocksDB work\" is all of that but the message, and a difference beyond \
                 it is the RocksDB read itself running slower on resman's copy of the DB, which \
                 varies from run to run"
            ),
        ),
        (
            "put",
            "put",
            "ops/s",
            1.0,
            1.0,
            "rm_put vs put_cf_opt, 16-byte keys, 100-byte values, WAL on, no sync; includes \
             the flushes and compactions the writes cause",
            format!(
                "each rm_put {PER_CALL}; the WAL append and memtable insert dominate, and the \
                 flushes and compactions the writes cause fall in some rounds and not others, \
                 so the rounds of one side differ by more than resman's per-call work (the \
                 \"one C call\" row); see the medians per round"
            ),
        ),
        (
            "batch_100",
            "batch of 100 puts",
            "batches/s",
            1.0,
            101.0,
            "100 rm_batch_put then rm_batch_write (one batch handle reused: the write empties \
             it) vs a WriteBatch of 100 put_cf and write_opt (rust-rocksdb's write takes the \
             batch by value, so a new one per write)",
            format!(
                "each rm_batch_put resolves and leases two handles (batch and column family) \
                 and locks the batch; each call also {PER_CALL}; the write itself dominates, \
                 and the flushes and compactions it causes fall in some rounds and not others \
                 (see the medians per round)"
            ),
        ),
        (
            "scan_10k",
            "scan of 10k keys",
            "keys/s",
            SCAN as f64,
            (SCAN as usize).div_ceil(READ_BATCH) as f64 + 3.0,
            "rm_iter_create, rm_iter_seek, rm_iter_read_next of up to 128 entries per call \
             into one 64 KiB buffer (key and value copied) until 10k, rm_close vs \
             raw_iterator_cf_opt, seek, 10k x (key, value copied, next)",
            format!(
                "one C call per 128 entries, which {PER_CALL} and locks the iterator (a RocksDB \
                 iterator is not thread-safe) once; creating and closing the iterator \
                 registers and closes a resource"
            ),
        ),
        (
            "scan_10k_entries",
            "scan of 10k keys, a C call per step",
            "keys/s",
            SCAN as f64,
            2.0 * SCAN as f64,
            "as the scan above, but stepping with rm_iter_entry + rm_iter_next per key (what a \
             caller pays without rm_iter_read_next; no goal: the batched read is the way to scan)",
            format!(
                "two C calls per key (rm_iter_entry, rm_iter_next), each of which {PER_CALL} \
                 and locks the iterator; rust-rocksdb's iterator is a borrowed Rust object that \
                 needs none of it"
            ),
        ),
    ];
    let mut rows = Vec::new();
    for (group, name, unit, per_iter, calls, what, why) in specs {
        let (rounds_r, rounds_b) = (
            round_medians(dir, group, "resman"),
            round_medians(dir, group, "rust-rocksdb"),
        );
        let (Some(r), Some(b)) = (best_round(&rounds_r), best_round(&rounds_b)) else {
            continue;
        };
        let row = Row::new("data path", name, unit)
            .resman(per_iter * 1e9 / r)
            .baseline(per_iter * 1e9 / b);
        let ratio = speed_ratio(&row);
        let row = if group.ends_with("_entries") {
            row
        } else {
            row.goal(GOAL, ratio >= 0.95)
        };
        let per_round = |v: &[f64]| {
            v.iter()
                .map(|ns| format!("{ns:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let row = row.note(format!(
            "{what}. Median per {} (best of {} interleaved criterion runs): resman {r:.0} ns, \
             rust-rocksdb {b:.0} ns, a difference of {:+.0} ns per C call of resman's (each \
             round's median, in ns: resman {}; rust-rocksdb {}). Where resman's extra time \
             goes: {why}.",
            if per_iter > 1.0 { "scan" } else { "operation" },
            rounds(),
            (r - b) / calls,
            per_round(&rounds_r),
            per_round(&rounds_b),
        ));
        rows.push(row);
    }
    rows
}
