//! Shared by the two bench targets (`mod common;`): the fixture (one seed DB copied twice, so
//! resman and rust-rocksdb read the same bytes with the same options), thin wrappers over the
//! C ABI, and the JSON writer of `$CARGO_TARGET_DIR/bench/rust.json`. Each target uses some of
//! it, hence the allowance.
#![allow(dead_code)]

use resman::ffi::{
    rm_db_open, rm_db_options, rm_db_options_default, rm_error, rm_manager_create,
    rm_manager_destroy, RM_COMPRESSION_LZ4,
};
use resman::rm_result;
use rocksdb::{BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, Options, DB};
use serde_json::{json, Value};
use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::ptr;

/// Keys in the seed DB: `key(2 * i)` for i in 0..KEYS, so an odd index is a miss that has to
/// look inside a table file (an index past the last key would be refused by the file's range).
pub const KEYS: u64 = 100_000;
/// Bytes per value in the seed DB and in the write benchmarks.
pub const VALUE_LEN: usize = 100;
/// The column family every benchmark uses, on both sides.
pub const CF: &str = "bench";
/// RocksDB's memtable size for the data-path fixture (resman's default).
pub const WRITE_BUFFER_SIZE: usize = 64 << 20;
/// Block cache (resman's default): the seed DB's ~12 MB fit in it.
pub const BLOCK_CACHE_SIZE: usize = 32 << 20;

/// A 16-byte key: "key-" and 12 decimal digits, so byte order is numeric order.
pub fn key(i: u64) -> [u8; 16] {
    let mut k = *b"key-000000000000";
    let mut n = i;
    for b in k[4..].iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
    k
}

/// A deterministic generator (xorshift64*): both sides see the same key sequence.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `n` pseudo-random bytes (incompressible: the close benchmarks flush real bytes).
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

/// `$CARGO_TARGET_DIR/bench` (the checkout's `target/bench` without it).
pub fn out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench")
}

/// A fresh, empty scratch directory for `name` (removed first if a previous run left it).
pub fn scratch(name: &str) -> PathBuf {
    let dir = out_dir().join("tmp").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch directory");
    dir
}

pub fn remove(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

/// The options resman's `rocks::open` builds from `rm_db_options` (see src/rocks/options.rs), for
/// the rust-rocksdb side: one LRU cache shared by the column families, `write_buffer_size`,
/// LZ4, no limit on open files. Everything else is RocksDB's default on both sides.
pub fn baseline_options(write_buffer_size: usize) -> (Options, Options) {
    let cache = Cache::new_lru_cache(BLOCK_CACHE_SIZE);
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&cache);
    let cf = || {
        let mut o = Options::default();
        o.set_write_buffer_size(write_buffer_size);
        o.set_compression_type(DBCompressionType::Lz4);
        o.set_block_based_table_factory(&table);
        o
    };
    let mut db = cf();
    db.create_if_missing(true);
    db.create_missing_column_families(true);
    db.set_max_open_files(-1);
    (db, cf())
}

/// Opens (creating) a rust-rocksdb DB at `path` with "default" and [`CF`], as resman would.
pub fn open_baseline(path: &Path, write_buffer_size: usize) -> DB {
    let (db_opts, cf_opts) = baseline_options(write_buffer_size);
    let cfs = ["default", CF].map(|n| ColumnFamilyDescriptor::new(n, cf_opts.clone()));
    DB::open_cf_descriptors(&db_opts, path, cfs).expect("open rust-rocksdb DB")
}

/// Panics with the code and message when `rc` is not RM_OK.
pub fn check(rc: rm_result, err: &rm_error, what: &str) {
    if rc != rm_result::RM_OK {
        // SAFETY: resman always NUL-terminates `message` before returning.
        let msg = unsafe { CStr::from_ptr(err.message.as_ptr()) };
        panic!("{what}: {rc:?}: {}", msg.to_string_lossy());
    }
}

pub fn new_error() -> rm_error {
    rm_error {
        code: rm_result::RM_OK,
        message: [0; resman::ffi::RM_ERROR_MESSAGE_MAX],
    }
}

/// A new manager with the default configuration; its handle.
pub fn new_manager() -> u64 {
    let mut err = new_error();
    let mut mgr = 0u64;
    // SAFETY: NULL config (the defaults); out-pointers to locals.
    check(
        unsafe { rm_manager_create(ptr::null(), &mut mgr, &mut err) },
        &err,
        "rm_manager_create",
    );
    mgr
}

/// A manager with one DB ("db", column families "default" and [`CF`]) opened through the C
/// ABI; destroyed (gracefully) on drop unless already closed.
pub struct Resman {
    pub mgr: u64,
    pub db: u64,
    pub cf: u64,
}

impl Resman {
    pub fn open(path: &Path, write_buffer_size: usize) -> Resman {
        let mut err = new_error();
        let mgr = new_manager();
        let mut opts = rm_db_options {
            create_if_missing: 0,
            create_missing_column_families: 0,
            error_if_exists: 0,
            write_buffer_size: 0,
            max_open_files: 0,
            compression: 0,
            block_cache_size: 0,
        };
        // SAFETY: `opts` is a writable rm_db_options.
        check(
            unsafe { rm_db_options_default(&mut opts) },
            &err,
            "rm_db_options_default",
        );
        opts.write_buffer_size = write_buffer_size as u64;
        assert_eq!(opts.compression, RM_COMPRESSION_LZ4);
        assert_eq!(opts.block_cache_size, BLOCK_CACHE_SIZE as u64);
        let name = CString::new("db").unwrap();
        let cpath = CString::new(path.to_str().unwrap()).unwrap();
        let cf = CString::new(CF).unwrap();
        let cf_names = [c"default".as_ptr(), cf.as_ptr()];
        let mut db = 0u64;
        let mut cfs = [0u64; 2];
        // SAFETY: NUL-terminated strings; two names and room for two handles; locals for the
        // outputs.
        let rc = unsafe {
            rm_db_open(
                mgr,
                name.as_ptr(),
                cpath.as_ptr(),
                &opts,
                cf_names.as_ptr(),
                2,
                &mut db,
                cfs.as_mut_ptr(),
                &mut err,
            )
        };
        check(rc, &err, "rm_db_open");
        Resman {
            mgr,
            db,
            cf: cfs[1],
        }
    }

    /// Destroys the manager (closing the DB gracefully if it is still open).
    pub fn destroy(self) {
        let mut err = new_error();
        // SAFETY: `err` is a writable rm_error.
        let rc = unsafe { rm_manager_destroy(self.mgr, &mut err) };
        check(rc, &err, "rm_manager_destroy");
    }
}

/// The data-path fixture: a seed DB of [`KEYS`] keys written by rust-rocksdb, flushed and
/// compacted into one level, then copied byte for byte into two directories: one opened by
/// resman (through `rm_db_open`), one by rust-rocksdb, with the same options. Both block caches
/// are warmed with one read of every key.
pub struct Fixture {
    pub resman: Resman,
    pub direct: DB,
    pub dirs: Vec<PathBuf>,
}

impl Fixture {
    pub fn new(name: &str) -> Fixture {
        let root = scratch(name);
        let seed = root.join("seed");
        {
            let db = open_baseline(&seed, WRITE_BUFFER_SIZE);
            let cf = db.cf_handle(CF).unwrap();
            let mut rng = Rng(0x5eed);
            for i in 0..KEYS {
                db.put_cf(cf, key(2 * i), rng.bytes(VALUE_LEN)).unwrap();
            }
            db.flush_cf(cf).unwrap();
            db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
            db.flush_wal(true).unwrap();
        }
        let resman_dir = root.join("resman");
        let direct_dir = root.join("rust-rocksdb");
        copy_dir(&seed, &resman_dir);
        copy_dir(&seed, &direct_dir);
        remove(&seed);
        let resman = Resman::open(&resman_dir, WRITE_BUFFER_SIZE);
        let direct = open_baseline(&direct_dir, WRITE_BUFFER_SIZE);
        let f = Fixture {
            resman,
            direct,
            dirs: vec![root],
        };
        f.warm();
        f
    }

    fn warm(&self) {
        let cf = self.direct.cf_handle(CF).unwrap();
        let mut buf = [0u8; 256];
        let mut err = new_error();
        for i in 0..KEYS {
            let k = key(2 * i);
            assert_eq!(
                rm_get(self.resman.cf, &k, &mut buf, &mut err),
                Some(VALUE_LEN)
            );
            assert!(self.direct.get_pinned_cf(cf, k).unwrap().is_some());
        }
    }

    pub fn destroy(self) {
        self.resman.destroy();
        drop(self.direct);
        for d in &self.dirs {
            remove(d);
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        assert!(e.file_type().unwrap().is_file(), "flat DB directory");
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// `rm_get` into `buf` with the caller's `rm_error`: the result code as it comes, and the
/// value's length.
#[inline]
pub fn get_rc(cf: u64, key: &[u8], buf: &mut [u8], err: &mut rm_error) -> (rm_result, usize) {
    let mut len = 0usize;
    // SAFETY: `key` and `buf` are live slices of the lengths passed; `len` and `err` are
    // writable.
    let rc = unsafe {
        resman::ffi::rm_get(
            cf,
            key.as_ptr(),
            key.len(),
            buf.as_mut_ptr(),
            buf.len(),
            &mut len,
            err,
        )
    };
    (rc, len)
}

/// `rm_put` of `key` and `value` with the caller's `rm_error`: the result code as it comes.
#[inline]
pub fn put_rc(cf: u64, key: &[u8], value: &[u8], err: &mut rm_error) -> rm_result {
    // SAFETY: `key` and `value` are live slices of the lengths passed; `err` is writable.
    unsafe {
        resman::ffi::rm_put(
            cf,
            key.as_ptr(),
            key.len(),
            value.as_ptr(),
            value.len(),
            err,
        )
    }
}

/// `rm_get` into `buf` with the caller's `rm_error`, as a C or Go caller makes it (one error
/// struct on its stack, reused): the length, or None for a missing key (anything else panics).
#[inline]
pub fn rm_get(cf: u64, key: &[u8], buf: &mut [u8], err: &mut rm_error) -> Option<usize> {
    let (rc, len) = get_rc(cf, key, buf, err);
    match rc {
        rm_result::RM_OK => Some(len),
        rm_result::RM_ERR_NOT_FOUND => None,
        _ => {
            check(rc, err, "rm_get");
            unreachable!()
        }
    }
}

/// The direct equivalent of [`rm_get`]: rust-rocksdb's pinned read (no copy, no allocation of
/// the value) with read options built once, then the one copy into the caller's buffer that
/// `rm_get` makes.
#[inline]
pub fn direct_get(
    db: &DB,
    cf: &impl rocksdb::AsColumnFamilyRef,
    ro: &rocksdb::ReadOptions,
    key: &[u8],
    buf: &mut [u8],
) -> Option<usize> {
    let v = db.get_pinned_cf_opt(cf, key, ro).expect("get")?;
    buf[..v.len()].copy_from_slice(&v);
    Some(v.len())
}

/// One row of the suite's table (the schema both suites share).
pub struct Row {
    pub group: &'static str,
    pub name: String,
    pub unit: &'static str,
    pub higher_is_better: bool,
    pub resman: f64,
    pub baseline: Option<f64>,
    pub goal: Option<String>,
    pub goal_met: Option<bool>,
    pub note: Option<String>,
}

impl Row {
    pub fn new(group: &'static str, name: impl Into<String>, unit: &'static str) -> Row {
        Row {
            group,
            name: name.into(),
            unit,
            higher_is_better: true,
            resman: 0.0,
            baseline: None,
            goal: None,
            goal_met: None,
            note: None,
        }
    }

    pub fn lower_is_better(mut self) -> Row {
        self.higher_is_better = false;
        self
    }

    pub fn resman(mut self, v: f64) -> Row {
        self.resman = v;
        self
    }

    pub fn baseline(mut self, v: f64) -> Row {
        self.baseline = Some(v);
        self
    }

    pub fn goal(mut self, goal: impl Into<String>, met: bool) -> Row {
        self.goal = Some(goal.into());
        self.goal_met = Some(met);
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Row {
        self.note = Some(note.into());
        self
    }

    fn to_json(&self) -> Value {
        let mut v = json!({
            "group": self.group,
            "name": self.name,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "resman": self.resman,
            "baseline": self.baseline,
        });
        if self.baseline.is_some() {
            v["baseline_name"] = json!("rust-rocksdb");
        }
        if let Some(g) = &self.goal {
            v["goal"] = json!(g);
            v["goal_met"] = json!(self.goal_met);
        }
        if let Some(n) = &self.note {
            v["note"] = json!(n);
        }
        v
    }
}

/// resman speed relative to rust-rocksdb (> 1: resman faster), whichever way the unit goes.
pub fn speed_ratio(r: &Row) -> f64 {
    let b = r.baseline.expect("a baseline");
    if r.higher_is_better {
        r.resman / b
    } else {
        b / r.resman
    }
}

/// The versions compiled in, read from Cargo.lock (nothing typed by hand).
pub fn versions() -> Value {
    let lock = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"));
    let version_of = |name: &str| -> Option<String> {
        let mut lines = lock.lines();
        while let Some(l) = lines.next() {
            if l == format!("name = \"{name}\"") {
                let v = lines.next()?;
                return Some(
                    v.trim_start_matches("version = ")
                        .trim_matches('"')
                        .to_owned(),
                );
            }
        }
        None
    };
    let sys = version_of("librocksdb-sys").unwrap_or_default();
    json!({
        "rocksdb": sys.split('+').nth(1),
        "rust-rocksdb": version_of("rocksdb"),
        "librocksdb-sys": sys,
        "resman": resman::VERSION,
        "criterion": version_of("criterion"),
    })
}

/// The conditions of one target's run, recorded next to its figures: whether it was the quick
/// mode, how long it took, and how idle the machine was in the second before it started and
/// the second after it ended (the load average is no guide on every machine: a VM's kernel
/// threads may hold it near 1 with every CPU idle).
pub struct RunInfo {
    started: std::time::Instant,
    idle_before: Option<f64>,
}

/// The share of CPU time spent idle across all CPUs over one second (from /proc/stat), in
/// percent; None where /proc/stat cannot be read.
fn idle_percent() -> Option<f64> {
    let sample = || -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal ...: idle + iowait is idle.
        let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
        Some((idle, v.iter().take(8).sum()))
    };
    let (i0, t0) = sample()?;
    std::thread::sleep(std::time::Duration::from_secs(1));
    let (i1, t1) = sample()?;
    (t1 > t0).then(|| 100.0 * (i1 - i0) as f64 / (t1 - t0) as f64)
}

impl RunInfo {
    pub fn start() -> RunInfo {
        let idle_before = idle_percent();
        RunInfo {
            started: std::time::Instant::now(),
            idle_before,
        }
    }

    fn to_json(&self) -> Value {
        let seconds = self.started.elapsed().as_secs_f64();
        json!({
            "quick": quick(),
            "seconds": seconds,
            "idle_before": self.idle_before,
            "idle_after": idle_percent(),
        })
    }
}

/// Writes this target's part (`bench/rust-parts/<part>.json`), then merges every part present
/// into `bench/rust.json` (`make bench` removes the parts first, so none is stale). The part's
/// run conditions go into the series as `run/<part>`.
pub fn write_part(part: &str, info: &RunInfo, rows: &[Row], mut series: Value) {
    let dir = out_dir();
    let parts = dir.join("rust-parts");
    std::fs::create_dir_all(&parts).unwrap();
    series[format!("run/{part}")] = info.to_json();
    let doc = json!({
        "rows": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
        "series": series,
    });
    std::fs::write(
        parts.join(format!("{part}.json")),
        serde_json::to_string_pretty(&doc).unwrap(),
    )
    .unwrap();

    let mut names: Vec<PathBuf> = std::fs::read_dir(&parts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    let mut all_rows = Vec::new();
    let mut all_series = serde_json::Map::new();
    for p in names {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        all_rows.extend(v["rows"].as_array().cloned().unwrap_or_default());
        if let Some(s) = v["series"].as_object() {
            all_series.extend(s.clone());
        }
    }
    let merged = json!({
        "suite": "rust",
        "versions": versions(),
        "rows": all_rows,
        "series": all_series,
    });
    let out = dir.join("rust.json");
    std::fs::write(&out, serde_json::to_string_pretty(&merged).unwrap()).unwrap();
    eprintln!("wrote {} ({part})", out.display());
}

/// Median of `v` (sorted in place).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Whether the quick development mode is on (`RESMAN_BENCH_QUICK=1`): shorter measurements,
/// figures for checking the harness only.
pub fn quick() -> bool {
    std::env::var("RESMAN_BENCH_QUICK").is_ok_and(|v| v != "0" && !v.is_empty())
}
