//! The model, the transitions and their strategies, and the system under test of the
//! call-sequence property test (see `tests/calls.rs`); the libFuzzer target
//! `fuzz/fuzz_targets/calls.rs` drives the same code.

use proptest::prelude::*;
use proptest::strategy::Union;
use resman::ffi::{
    rm_add_dependency, rm_batch_create, rm_batch_put, rm_batch_write, rm_cleanup,
    rm_cleanup_failures, rm_cleanup_timeout, rm_close, rm_close_timeout, rm_config,
    rm_config_default, rm_db_open, rm_db_options, rm_db_options_default, rm_delete, rm_error,
    rm_get, rm_get_alloc, rm_iter_create, rm_iter_key, rm_iter_next, rm_iter_refresh,
    rm_iter_seek_to_first, rm_iter_value, rm_live_objects, rm_manager_create, rm_manager_destroy,
    rm_manager_metrics, rm_metrics, rm_put, rm_register, rm_snapshot_create, rm_status,
    rm_unregister, RM_ERROR_MESSAGE_MAX, RM_WRITE_DISABLE_WAL, RM_WRITE_SYNC,
};
use resman::handle::Handle;
use resman::rm_result::{self, *};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{c_char, c_void, CString};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Instant;

// ---------------------------------------------------------------------------------------
// Sizes

/// Cases of the default run (times `RESMAN_CALLS_CASES`).
pub(crate) const BASE_CASES: u32 = 448;
/// Longest sequence of a case (the length is uniform in 1..=MAX_STEPS).
pub(crate) const MAX_STEPS: usize = 256;
/// The run must make at least this many C ABI calls, churn steps not counted.
pub(crate) const MIN_CALLS: u64 = 100_000;
/// Bounds of the managers' cleanups (`cleanup_timeout_ms`, `force_cleanup_timeout_ms`).
pub(crate) const GRACEFUL_MS: u64 = 10_000;
pub(crate) const FORCED_MS: u64 = 10_000;
/// A close or cleanup with nothing in flight must return well within that.
pub(crate) const QUICK: std::time::Duration = std::time::Duration::from_secs(5);

pub(crate) const NPATHS: usize = 2;
pub(crate) const CF_NAMES: [&str; 3] = ["default", "a", "b"];
pub(crate) const KEYS: [&[u8]; 4] = [b"", b"k0", b"k1", b"k2"];
/// Names for `rm_register`: a small pool, so duplicates happen; "db0" collides with the DB of
/// path 0 and "resman.monitor" with the monitor.
pub(crate) const NAMES: [&str; 8] = ["r0", "r1", "r2", "r3", "r4", "r5", "db0", "resman.monitor"];
pub(crate) const MONITOR_NAME: &str = "resman.monitor";
/// Resources the second manager starts with (besides its monitor).
pub(crate) const OTHER_RESOURCES: usize = 2;
/// Registrations of a churn step: more than the 1024-slot quarantine, so that slots of
/// closed handles are reused.
pub(crate) const CHURN: std::ops::Range<usize> = 1100..1300;

/// C ABI calls made.
pub(crate) static CALLS: AtomicU64 = AtomicU64::new(0);
/// Of those, made by churn steps.
pub(crate) static CHURN_CALLS: AtomicU64 = AtomicU64::new(0);
/// Steps applied (all cases).
pub(crate) static STEPS: AtomicU64 = AtomicU64::new(0);
/// Cases run.
pub(crate) static CASES: AtomicU64 = AtomicU64::new(0);
/// Clock of the close callbacks (start and end of every call), for the order check.
pub(crate) static SEQ: AtomicU64 = AtomicU64::new(1);
/// Per transition: steps, time, and the result codes seen (printed at the end).
pub(crate) static STATS: Mutex<BTreeMap<&'static str, Stat>> = Mutex::new(BTreeMap::new());

#[derive(Default)]
pub(crate) struct Stat {
    steps: u64,
    nanos: u128,
    codes: BTreeMap<i32, u64>,
}

pub(crate) fn record(what: &'static str, f: impl FnOnce(&mut Stat)) {
    let mut stats = STATS.lock().unwrap_or_else(|p| p.into_inner());
    f(stats.entry(what).or_default());
}

/// Runs `f`, adding a step and its time to the statistics of `what`.
pub(crate) fn timed<R>(what: &'static str, f: impl FnOnce() -> R) -> R {
    let started = Instant::now();
    let r = f();
    let nanos = started.elapsed().as_nanos();
    record(what, |s| {
        s.steps += 1;
        s.nanos += nanos;
    });
    r
}

/// Prints the number of calls, and per transition the steps, time and result codes seen.
pub(crate) fn print_stats(who: &str, started: Instant) {
    eprintln!(
        "{who}: {} C ABI calls ({} of them in churn steps) in {} cases, {} steps, {:.1} s",
        CALLS.load(SeqCst),
        CHURN_CALLS.load(SeqCst),
        CASES.load(SeqCst),
        STEPS.load(SeqCst),
        started.elapsed().as_secs_f64()
    );
    let stats = STATS.lock().unwrap_or_else(|p| p.into_inner());
    for (what, s) in stats.iter() {
        let codes: Vec<String> = s
            .codes
            .iter()
            .map(|(c, n)| {
                let name = rm_result::from_i32(*c).map_or("?", |c| c.describe());
                format!("{name}: {n}")
            })
            .collect();
        eprintln!(
            "  {what:<26} {:>6} steps {:>8.1} ms  {}",
            s.steps,
            s.nanos as f64 / 1e6,
            codes.join(", ")
        );
    }
}

/// Calls one C ABI function, counting it.
macro_rules! c {
    ($f:ident($($arg:expr),* $(,)?)) => {{
        CALLS.fetch_add(1, SeqCst);
        // SAFETY: every pointer passed points to memory the caller owns, of the documented
        // size, alive for the call (see each call site); handles are plain numbers.
        unsafe { $f($($arg),*) }
    }};
}

// ---------------------------------------------------------------------------------------
// The model

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum K {
    Foreign,
    Monitor,
    Db,
    Cf,
    Iter,
    Snap,
    Batch,
}

impl K {
    /// The kind's name in the status document.
    pub(crate) fn json(self) -> &'static str {
        match self {
            K::Foreign => "foreign",
            K::Monitor => "monitor",
            K::Db => "db",
            K::Cf => "column_family",
            K::Iter => "iterator",
            K::Snap => "snapshot",
            K::Batch => "batch",
        }
    }
}

/// What a close callback does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Behavior {
    Ok,
    FailOnce,
    AlwaysFail,
}

impl Behavior {
    pub(crate) fn fail_first(self) -> u32 {
        match self {
            Behavior::Ok => 0,
            Behavior::FailOnce => 1,
            Behavior::AlwaysFail => u32::MAX,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    Main = 0,
    Other = 1,
}

pub(crate) type Table = BTreeMap<Vec<u8>, Vec<u8>>;
/// Column family name -> its data.
pub(crate) type DbData = BTreeMap<String, Table>;
pub(crate) type Entries = Arc<Vec<(Vec<u8>, Vec<u8>)>>;

/// One handle the test was given, and what the model knows of its object.
#[derive(Clone, Debug)]
pub(crate) struct H {
    kind: K,
    owner: Owner,
    live: bool,
    name: String,
    /// What it depends on (distinct; kept after its close, cleared by unregister).
    deps: Vec<usize>,
    /// DB, column family, snapshot, batch, iterator: the DB handle's id; DB: itself.
    db: usize,
    path: usize,
    /// Column family: its name; iterator: its column family's id in `cf_id`.
    cf: String,
    cf_id: usize,
    snap_id: Option<usize>,
    behavior: Behavior,
    /// Close-callback calls so far.
    calls: u32,
    unregistered: bool,
    /// Snapshot: the DB's data when it was taken.
    snap: Option<Arc<DbData>>,
    /// Iterator: the entries it sees, and where it is (None: not on an entry).
    view: Entries,
    pos: Option<usize>,
    /// Batch: its puts (column family, key, value).
    ops: Vec<(String, Vec<u8>, Vec<u8>)>,
}

impl H {
    pub(crate) fn new(kind: K, owner: Owner, name: impl Into<String>) -> H {
        H {
            kind,
            owner,
            live: true,
            name: name.into(),
            deps: Vec::new(),
            db: usize::MAX,
            path: usize::MAX,
            cf: String::new(),
            cf_id: usize::MAX,
            snap_id: None,
            behavior: Behavior::Ok,
            calls: 0,
            unregistered: false,
            snap: None,
            view: Arc::default(),
            pos: None,
            ops: Vec::new(),
        }
    }
}

/// Manager counters as `rm_metrics` reports them.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counters {
    registered: u64,
    closed: u64,
    failed: u64,
    unregistered: u64,
    forced: u64,
    retries: u64,
    close_errors: u64,
    cleanups: u64,
    cleanups_failed: u64,
    escalations: u64,
    /// Lower and upper bounds: the header counts iterators (snapshots) "still open when what
    /// they read from was closed"; one swept along by the close of something else it was
    /// made to depend on is counted by the upper bound only.
    leaked_iterators: (u64, u64),
    leaked_snapshots: (u64, u64),
}

/// An acceptable result: a code, or "closed" for a handle, which is `RM_ERR_STALE_HANDLE`
/// instead once its slot has been reused (the test observes that).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Want {
    Code(rm_result),
    Closed(usize, rm_result),
}

/// What a successful (or buffer-too-small) call returns besides its code.
#[derive(Clone, Debug, Default)]
pub(crate) enum Data {
    #[default]
    None,
    /// Ids the new handles get, in output order.
    New(Vec<usize>),
    /// A value or key read back.
    Bytes(Vec<u8>),
    /// `RM_ERR_BUFFER_TOO_SMALL`: the length written to the length output.
    Needed(usize),
    Valid(bool),
    /// Ids closed by a close, cleanup or destroy.
    Closed(Vec<usize>),
    /// Unregistered.
    Gone(usize),
    /// Status or metrics of this manager.
    Of(Owner),
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Expect {
    wants: Vec<Want>,
    data: Data,
}

pub(crate) fn code(c: rm_result) -> Want {
    Want::Code(c)
}

pub(crate) fn fail(wants: Vec<Want>) -> Expect {
    Expect {
        wants,
        data: Data::None,
    }
}

pub(crate) fn ok(data: Data) -> Expect {
    Expect {
        wants: vec![code(RM_OK)],
        data,
    }
}

/// Runs with `?` on a list of acceptable errors.
pub(crate) type Check<T> = Result<T, Vec<Want>>;

/// Both checks, or the union of their errors.
pub(crate) fn both<A, B>(a: Check<A>, b: Check<B>) -> Check<(A, B)> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(mut x), Err(y)) => {
            x.extend(y);
            Err(x)
        }
        (Err(x), _) | (_, Err(x)) => Err(x),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Graceful,
    /// Graceful phase of 0 ms: everything is forced at once, the run counts as escalated.
    Graceful0,
    Forced,
}

/// The reference model of one case: two managers, their resources, the DB contents.
#[derive(Clone, Debug)]
pub(crate) struct Model {
    max_retries: u32,
    hs: Vec<H>,
    /// Live names per manager.
    names: [BTreeMap<String, usize>; 2],
    /// The open DB of each path.
    open: [Option<usize>; NPATHS],
    data: [DbData; NPATHS],
    other_alive: bool,
    /// A churn step ran (at most one per case: they are long).
    churned: bool,
    ctr: [Counters; 2],
    /// Per manager, the ids whose close failed in its last cleanup of everything (None
    /// before the first): what `rm_cleanup_failures` lists.
    cleanup_failures: [Option<Vec<usize>>; 2],
    /// The ids whose close failed in the last run (`run_close`).
    last_failed: Vec<usize>,
    /// What the last transition must return.
    last: Expect,
}

impl Model {
    pub(crate) fn new(max_retries: u32) -> Model {
        let mut m = Model {
            max_retries,
            hs: Vec::new(),
            names: Default::default(),
            open: [None; NPATHS],
            data: Default::default(),
            other_alive: true,
            churned: false,
            ctr: Default::default(),
            cleanup_failures: Default::default(),
            last_failed: Vec::new(),
            last: Expect::default(),
        };
        // Ids 0 and 1: the monitors; then the other manager's own resources.
        m.push(H::new(K::Monitor, Owner::Main, MONITOR_NAME));
        m.push(H::new(K::Monitor, Owner::Other, MONITOR_NAME));
        for i in 0..OTHER_RESOURCES {
            m.push(H::new(K::Foreign, Owner::Other, format!("o{i}")));
        }
        m
    }

    pub(crate) fn push(&mut self, h: H) -> usize {
        let id = self.hs.len();
        self.names[h.owner as usize].insert(h.name.clone(), id);
        self.ctr[h.owner as usize].registered += 1;
        self.hs.push(h);
        id
    }

    pub(crate) fn live_count(&self) -> u64 {
        self.hs.iter().filter(|h| h.live).count() as u64
    }

    pub(crate) fn live_of(&self, owner: Owner) -> Vec<usize> {
        (0..self.hs.len())
            .filter(|&i| self.hs[i].live && self.hs[i].owner == owner)
            .collect()
    }

    /// Live handles that depend on `id` directly.
    pub(crate) fn dependents(&self, id: usize) -> Vec<usize> {
        (0..self.hs.len())
            .filter(|&j| self.hs[j].live && self.hs[j].deps.contains(&id))
            .collect()
    }

    /// `id` and everything that (transitively) depends on it.
    pub(crate) fn closure(&self, id: usize) -> Vec<usize> {
        let mut set = vec![id];
        let mut i = 0;
        while i < set.len() {
            for d in self.dependents(set[i]) {
                if !set.contains(&d) {
                    set.push(d);
                }
            }
            i += 1;
        }
        set
    }

    /// True if `from` (transitively) depends on `to`.
    pub(crate) fn reaches(&self, from: usize, to: usize) -> bool {
        let mut stack = vec![from];
        let mut seen = HashSet::new();
        while let Some(x) = stack.pop() {
            if x == to {
                return true;
            }
            if seen.insert(x) {
                stack.extend(self.hs[x].deps.iter().copied());
            }
        }
        false
    }

    /// A manager argument: the manager it names, or the errors it must produce.
    pub(crate) fn mgr(&self, m: &MRef) -> Check<Owner> {
        match *m {
            MRef::Main => Ok(Owner::Main),
            MRef::Other if self.other_alive => Ok(Owner::Other),
            MRef::Other => Err(vec![code(RM_ERR_CLOSED)]),
            MRef::Res(i) => {
                let mut w = vec![code(RM_ERR_WRONG_KIND)];
                if !self.hs[i].live {
                    w.push(Want::Closed(i, RM_ERR_WRONG_KIND));
                }
                Err(w)
            }
            MRef::Zero | MRef::Garbage(_) => Err(vec![code(RM_ERR_INVALID_HANDLE)]),
        }
    }

    /// A resource argument. `need`: the kind the call takes (None: any resource);
    /// `closed`: the code for a closed handle; `scope`: the manager of the call, if any.
    pub(crate) fn res(
        &self,
        h: &HRef,
        need: Option<K>,
        closed: rm_result,
        scope: Option<Owner>,
    ) -> Check<usize> {
        match *h {
            HRef::Zero | HRef::Max | HRef::Garbage(_) => Err(vec![code(RM_ERR_INVALID_HANDLE)]),
            HRef::MainMgr => Err(vec![code(RM_ERR_WRONG_KIND)]),
            HRef::OtherMgr if self.other_alive => Err(vec![code(RM_ERR_WRONG_KIND)]),
            HRef::OtherMgr => Err(vec![code(RM_ERR_WRONG_KIND), code(RM_ERR_CLOSED)]),
            HRef::Id(i) => {
                let x = &self.hs[i];
                let kind_ok = need.is_none_or(|k| k == x.kind);
                let foreign = scope.is_some_and(|s| s != x.owner);
                if x.live {
                    if foreign {
                        Err(vec![code(RM_ERR_FOREIGN_HANDLE)])
                    } else if !kind_ok {
                        Err(vec![code(RM_ERR_WRONG_KIND)])
                    } else {
                        Ok(i)
                    }
                } else {
                    // Closed: its code (or stale). The header leaves open which comes first
                    // when the kind is wrong too, or the handle is another manager's.
                    let mut w = vec![Want::Closed(i, closed)];
                    if !kind_ok {
                        w.push(code(RM_ERR_WRONG_KIND));
                    }
                    if foreign {
                        w.push(code(RM_ERR_FOREIGN_HANDLE));
                    }
                    Err(w)
                }
            }
        }
    }

    /// Closes `set` (ids of `owner`, all live) as one run; `target`: what `rm_close` named.
    pub(crate) fn run_close(
        &mut self,
        owner: Owner,
        set: &[usize],
        target: Option<usize>,
        mode: Mode,
    ) -> Expect {
        let o = owner as usize;
        for &id in set {
            let h = &self.hs[id];
            if Some(id) == target {
                continue;
            }
            match h.kind {
                K::Iter => {
                    let reads = set.contains(&h.cf_id)
                        || set.contains(&h.db)
                        || h.snap_id.is_some_and(|s| set.contains(&s));
                    self.ctr[o].leaked_iterators.1 += 1;
                    if reads || target.is_none() {
                        self.ctr[o].leaked_iterators.0 += 1;
                    }
                }
                K::Snap => {
                    self.ctr[o].leaked_snapshots.1 += 1;
                    if set.contains(&h.db) || target.is_none() {
                        self.ctr[o].leaked_snapshots.0 += 1;
                    }
                }
                _ => {}
            }
        }
        let max_retries = self.max_retries;
        let mut failures = 0;
        self.last_failed.clear();
        for &id in set {
            let h = &mut self.hs[id];
            h.live = false;
            let c = &mut self.ctr[o];
            let succeeded = if h.kind == K::Foreign {
                let (attempts, succeeded) = match h.behavior {
                    Behavior::Ok => (1, true),
                    Behavior::FailOnce if max_retries >= 1 => (2, true),
                    Behavior::FailOnce => (1, false),
                    Behavior::AlwaysFail => (max_retries + 1, false),
                };
                h.calls += attempts;
                c.close_errors += u64::from(attempts - u32::from(succeeded));
                c.retries += u64::from(attempts - 1);
                succeeded
            } else {
                true
            };
            if succeeded {
                c.closed += 1;
            } else {
                c.failed += 1;
                failures += 1;
                self.last_failed.push(id);
            }
            if mode != Mode::Graceful {
                c.forced += 1;
            }
            if h.kind == K::Db {
                self.open[h.path] = None;
            }
            if self.names[o].get(&h.name) == Some(&id) {
                self.names[o].remove(&h.name);
            }
        }
        let c = &mut self.ctr[o];
        c.cleanups += 1;
        if mode == Mode::Graceful0 && !set.is_empty() {
            c.escalations += 1;
        }
        let result = match failures {
            0 => RM_OK,
            1 => RM_ERR_CLOSE_FAILED,
            _ => RM_ERR_CLEANUP_FAILED,
        };
        if failures > 0 {
            c.cleanups_failed += 1;
        }
        Expect {
            wants: vec![code(result)],
            data: Data::Closed(set.to_vec()),
        }
    }

    /// Applies `t`, keeping what it must return for the system under test.
    pub(crate) fn advance(&mut self, t: &T) {
        self.last = self.step(t);
    }

    /// Applies `t`; returns what it must return.
    pub(crate) fn step(&mut self, t: &T) -> Expect {
        match self.step_checked(t) {
            Ok(e) => e,
            Err(w) => fail(w),
        }
    }

    pub(crate) fn step_checked(&mut self, t: &T) -> Check<Expect> {
        Ok(match t {
            T::Register {
                m,
                name,
                behavior,
                deps,
            } => {
                let owner = self.mgr(m)?;
                let mut errs = Vec::new();
                let mut ids: Vec<usize> = Vec::new();
                for d in deps {
                    match self.res(d, None, RM_ERR_DEPENDENCY_CLOSED, Some(owner)) {
                        Ok(i) if !ids.contains(&i) => ids.push(i),
                        Ok(_) => {}
                        Err(w) => errs.extend(w),
                    }
                }
                if self.names[owner as usize].contains_key(NAMES[*name]) {
                    errs.push(code(RM_ERR_DUPLICATE_NAME));
                }
                if !errs.is_empty() {
                    return Err(errs);
                }
                let mut h = H::new(K::Foreign, owner, NAMES[*name]);
                h.behavior = *behavior;
                h.deps = ids;
                ok(Data::New(vec![self.push(h)]))
            }
            T::Close { m, h, how } => {
                // Through a destroyed manager, a closed resource is already closed (ALREADY_
                // CLOSED; CLOSED, the manager's error, once its slot is reused); anything else
                // gets the manager's error.
                let owner = self.mgr(m).map_err(|mut w| {
                    if let HRef::Id(i) = *h {
                        if w.contains(&code(RM_ERR_CLOSED)) && !self.hs[i].live {
                            w.push(code(RM_ERR_ALREADY_CLOSED));
                        }
                    }
                    w
                })?;
                let id = self.res(h, None, RM_ERR_ALREADY_CLOSED, Some(owner))?;
                let set = self.closure(id);
                self.run_close(owner, &set, Some(id), how.mode())
            }
            T::Cleanup { m, how } => {
                let owner = self.mgr(m)?;
                let set = self.live_of(owner);
                let e = self.run_close(owner, &set, None, how.mode());
                self.cleanup_failures[owner as usize] = Some(self.last_failed.clone());
                e
            }
            T::DestroyOther => {
                if !self.other_alive {
                    return Err(vec![code(RM_ERR_ALREADY_CLOSED)]);
                }
                let set = self.live_of(Owner::Other);
                let e = self.run_close(Owner::Other, &set, None, Mode::Graceful);
                self.other_alive = false;
                e
            }
            T::Unregister { m, h } => {
                let owner = self.mgr(m)?;
                let id = self.res(h, None, RM_ERR_ALREADY_CLOSED, Some(owner))?;
                let mut errs = Vec::new();
                if self.hs[id].kind != K::Foreign {
                    errs.push(code(RM_ERR_OWNED_RESOURCE));
                }
                if !self.dependents(id).is_empty() {
                    errs.push(code(RM_ERR_HAS_DEPENDENTS));
                }
                if !errs.is_empty() {
                    return Err(errs);
                }
                let x = &mut self.hs[id];
                x.live = false;
                x.unregistered = true;
                x.deps.clear();
                let name = x.name.clone();
                self.names[owner as usize].remove(&name);
                self.ctr[owner as usize].unregistered += 1;
                ok(Data::Gone(id))
            }
            T::AddDep {
                m,
                dependent,
                dependency,
            } => {
                let owner = self.mgr(m)?;
                let (a, b) = both(
                    self.res(dependent, None, RM_ERR_CLOSED, Some(owner)),
                    self.res(dependency, None, RM_ERR_DEPENDENCY_CLOSED, Some(owner)),
                )?;
                if !self.hs[a].deps.contains(&b) {
                    if a == b || self.reaches(b, a) {
                        return Err(vec![code(RM_ERR_CYCLE)]);
                    }
                    self.hs[a].deps.push(b);
                }
                ok(Data::None)
            }
            T::DbOpen {
                m,
                path,
                alias,
                cfs,
            } => {
                let mut errs = Vec::new();
                if (1..cfs.len()).any(|i| cfs[..i].contains(&cfs[i])) {
                    errs.push(code(RM_ERR_INVALID_ARGUMENT));
                }
                match self.mgr(m) {
                    Err(w) => errs.extend(w),
                    Ok(_) => {
                        let name = db_name(*path, *alias);
                        let names = &self.names[0];
                        if names.contains_key(&name)
                            || cfs
                                .iter()
                                .any(|c| names.contains_key(&format!("{name}/{}", CF_NAMES[*c])))
                        {
                            errs.push(code(RM_ERR_DUPLICATE_NAME));
                        }
                        if self.open[*path].is_some() {
                            errs.push(code(RM_ERR_LOCKED));
                        }
                    }
                }
                if !errs.is_empty() {
                    return Err(errs);
                }
                let name = db_name(*path, *alias);
                let mut db = H::new(K::Db, Owner::Main, name.clone());
                db.path = *path;
                db.db = self.hs.len();
                let db_id = self.push(db);
                self.open[*path] = Some(db_id);
                let data = &mut self.data[*path];
                data.entry("default".to_owned()).or_default();
                let mut ids = vec![db_id];
                for &c in cfs {
                    data.entry(CF_NAMES[c].to_owned()).or_default();
                }
                for &c in cfs {
                    let mut cf = H::new(K::Cf, Owner::Main, format!("{name}/{}", CF_NAMES[c]));
                    cf.deps = vec![db_id];
                    cf.db = db_id;
                    cf.path = *path;
                    cf.cf = CF_NAMES[c].to_owned();
                    ids.push(self.push(cf));
                }
                ok(Data::New(ids))
            }
            T::Put { cf, key, value } => {
                let id = self.res(cf, Some(K::Cf), RM_ERR_CLOSED, None)?;
                let (path, name) = (self.hs[id].path, self.hs[id].cf.clone());
                let table = self.data[path].entry(name).or_default();
                table.insert(KEYS[*key].to_vec(), value.clone());
                ok(Data::None)
            }
            T::Delete { cf, key } => {
                let id = self.res(cf, Some(K::Cf), RM_ERR_CLOSED, None)?;
                let (path, name) = (self.hs[id].path, self.hs[id].cf.clone());
                let table = self.data[path].entry(name).or_default();
                table.remove(KEYS[*key]);
                ok(Data::None)
            }
            T::Get { cf, key, cap } => {
                let id = self.res(cf, Some(K::Cf), RM_ERR_CLOSED, None)?;
                let (path, name) = (self.hs[id].path, &self.hs[id].cf);
                match self.data[path].get(name).and_then(|t| t.get(KEYS[*key])) {
                    None => fail(vec![code(RM_ERR_NOT_FOUND)]),
                    Some(v) if v.len() > *cap => Expect {
                        wants: vec![code(RM_ERR_BUFFER_TOO_SMALL)],
                        data: Data::Needed(v.len()),
                    },
                    Some(v) => ok(Data::Bytes(v.clone())),
                }
            }
            // Any size in one call: a value larger than `cap` comes back in allocated memory.
            T::GetAlloc { cf, key, .. } => {
                let id = self.res(cf, Some(K::Cf), RM_ERR_CLOSED, None)?;
                let (path, name) = (self.hs[id].path, &self.hs[id].cf);
                match self.data[path].get(name).and_then(|t| t.get(KEYS[*key])) {
                    None => fail(vec![code(RM_ERR_NOT_FOUND)]),
                    Some(v) => ok(Data::Bytes(v.clone())),
                }
            }
            T::IterCreate { cf, snap } => {
                let snap = snap.as_ref().filter(|s| **s != HRef::Zero);
                let (cf_id, snap_id) = both(
                    self.res(cf, Some(K::Cf), RM_ERR_CLOSED, None),
                    snap.map_or(Ok(None), |s| {
                        self.res(s, Some(K::Snap), RM_ERR_CLOSED, None).map(Some)
                    }),
                )?;
                let c = &self.hs[cf_id];
                let source = match snap_id {
                    Some(s) if self.hs[s].db != c.db => return Err(vec![code(RM_ERR_WRONG_DB)]),
                    Some(s) => self.hs[s].snap.as_deref().and_then(|d| d.get(&c.cf)),
                    None => self.data[c.path].get(&c.cf),
                };
                let view: Vec<(Vec<u8>, Vec<u8>)> = source
                    .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                let mut it = H::new(K::Iter, Owner::Main, "iterator");
                it.deps = vec![cf_id];
                it.deps.extend(snap_id);
                it.db = c.db;
                it.path = c.path;
                it.cf_id = cf_id;
                it.snap_id = snap_id;
                it.view = Arc::new(view);
                ok(Data::New(vec![self.push_child(it)]))
            }
            // The latest data from now on, unpositioned; refused at a snapshot.
            T::IterRefresh { it } => {
                let id = self.res(it, Some(K::Iter), RM_ERR_CLOSED, None)?;
                if self.hs[id].snap_id.is_some() {
                    return Err(vec![code(RM_ERR_INVALID_ARGUMENT)]);
                }
                let c = &self.hs[self.hs[id].cf_id];
                let view: Vec<(Vec<u8>, Vec<u8>)> = self.data[c.path]
                    .get(&c.cf)
                    .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                let x = &mut self.hs[id];
                x.view = Arc::new(view);
                x.pos = None;
                ok(Data::None)
            }
            T::IterSeekFirst { it } => {
                let id = self.res(it, Some(K::Iter), RM_ERR_CLOSED, None)?;
                let x = &mut self.hs[id];
                x.pos = (!x.view.is_empty()).then_some(0);
                ok(Data::Valid(x.pos.is_some()))
            }
            T::IterNext { it } => {
                let id = self.res(it, Some(K::Iter), RM_ERR_CLOSED, None)?;
                let x = &mut self.hs[id];
                let Some(p) = x.pos else {
                    return Err(vec![code(RM_ERR_ITERATOR_NOT_VALID)]);
                };
                x.pos = (p + 1 < x.view.len()).then_some(p + 1);
                ok(Data::Valid(x.pos.is_some()))
            }
            T::IterKey { it, cap, value } => {
                let id = self.res(it, Some(K::Iter), RM_ERR_CLOSED, None)?;
                let x = &self.hs[id];
                let Some(p) = x.pos else {
                    return Err(vec![code(RM_ERR_ITERATOR_NOT_VALID)]);
                };
                let key = if *value { &x.view[p].1 } else { &x.view[p].0 };
                if key.len() > *cap {
                    Expect {
                        wants: vec![code(RM_ERR_BUFFER_TOO_SMALL)],
                        data: Data::Needed(key.len()),
                    }
                } else {
                    ok(Data::Bytes(key.clone()))
                }
            }
            T::SnapCreate { db } => {
                let id = self.res(db, Some(K::Db), RM_ERR_CLOSED, None)?;
                let mut s = H::new(K::Snap, Owner::Main, "snapshot");
                s.deps = vec![id];
                s.db = id;
                s.path = self.hs[id].path;
                s.snap = Some(Arc::new(self.data[s.path].clone()));
                ok(Data::New(vec![self.push_child(s)]))
            }
            T::BatchCreate { db } => {
                let id = self.res(db, Some(K::Db), RM_ERR_CLOSED, None)?;
                let mut b = H::new(K::Batch, Owner::Main, "batch");
                b.deps = vec![id];
                b.db = id;
                b.path = self.hs[id].path;
                ok(Data::New(vec![self.push_child(b)]))
            }
            T::BatchPut {
                batch,
                cf,
                key,
                value,
            } => {
                let (b, c) = both(
                    self.res(batch, Some(K::Batch), RM_ERR_CLOSED, None),
                    self.res(cf, Some(K::Cf), RM_ERR_CLOSED, None),
                )?;
                if self.hs[b].db != self.hs[c].db {
                    return Err(vec![code(RM_ERR_WRONG_DB)]);
                }
                let op = (self.hs[c].cf.clone(), KEYS[*key].to_vec(), value.clone());
                self.hs[b].ops.push(op);
                ok(Data::None)
            }
            T::BatchWrite { batch, flags } => {
                let flags_ok: Check<()> = if *flags == RM_WRITE_SYNC | RM_WRITE_DISABLE_WAL {
                    Err(vec![code(RM_ERR_INVALID_ARGUMENT)])
                } else {
                    Ok(())
                };
                let (b, ()) = both(
                    self.res(batch, Some(K::Batch), RM_ERR_CLOSED, None),
                    flags_ok,
                )?;
                let ops = std::mem::take(&mut self.hs[b].ops);
                let data = &mut self.data[self.hs[b].path];
                for (cf, k, v) in ops {
                    data.entry(cf).or_default().insert(k, v);
                }
                ok(Data::None)
            }
            T::Status { m, .. } | T::Metrics { m } | T::CleanupFailures { m, .. } => {
                ok(Data::Of(self.mgr(m)?))
            }
            T::Churn { n } => {
                self.churned = true;
                let c = &mut self.ctr[0];
                c.registered += *n as u64;
                c.unregistered += *n as u64;
                ok(Data::None)
            }
        })
    }

    /// Registers a child of a DB (iterator, snapshot, batch): its name is resman's.
    pub(crate) fn push_child(&mut self, h: H) -> usize {
        let id = self.hs.len();
        self.ctr[0].registered += 1;
        self.hs.push(h);
        id
    }

    /// Every handle index a transition names exists (shrinking may remove the step that
    /// created it).
    pub(crate) fn valid(&self, t: &T) -> bool {
        let n = self.hs.len();
        let h = |r: &HRef| !matches!(r, HRef::Id(i) if *i >= n);
        let m = |r: &MRef| !matches!(r, MRef::Res(i) if *i >= n);
        match t {
            T::Register { m: mm, deps, .. } => m(mm) && deps.iter().all(h),
            T::Close { m: mm, h: hh, .. } | T::Unregister { m: mm, h: hh } => m(mm) && h(hh),
            T::Cleanup { m: mm, .. }
            | T::Status { m: mm, .. }
            | T::Metrics { m: mm }
            | T::CleanupFailures { m: mm, .. } => m(mm),
            T::AddDep {
                m: mm,
                dependent,
                dependency,
            } => m(mm) && h(dependent) && h(dependency),
            // rm_db_open is only made with the main manager or a bad one.
            T::DbOpen { m: mm, .. } => m(mm) && *mm != MRef::Other,
            T::Put { cf, .. }
            | T::Delete { cf, .. }
            | T::Get { cf, .. }
            | T::GetAlloc { cf, .. } => h(cf),
            T::IterCreate { cf, snap } => h(cf) && snap.as_ref().is_none_or(h),
            T::IterSeekFirst { it }
            | T::IterNext { it }
            | T::IterKey { it, .. }
            | T::IterRefresh { it } => h(it),
            T::SnapCreate { db } | T::BatchCreate { db } => h(db),
            T::BatchPut { batch, cf, .. } => h(batch) && h(cf),
            T::BatchWrite { batch, .. } => h(batch),
            T::DestroyOther => true,
            T::Churn { .. } => !self.churned,
        }
    }
}

pub(crate) fn db_name(path: usize, alias: bool) -> String {
    if alias {
        format!("dbx{path}")
    } else {
        format!("db{path}")
    }
}

// ---------------------------------------------------------------------------------------
// Transitions

/// A resource argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HRef {
    /// The handle with this id (any kind, any state).
    Id(usize),
    MainMgr,
    OtherMgr,
    Zero,
    Max,
    /// Never issued (a generation no slot reaches).
    Garbage(u64),
}

/// A manager argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MRef {
    Main,
    Other,
    /// A resource handle where a manager goes.
    Res(usize),
    Zero,
    Garbage(u64),
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum CloseHow {
    /// `rm_close`.
    Plain,
    /// `rm_close_timeout(.., 0, false)`: forced at once.
    Graceful0,
    /// `rm_close_timeout(.., 10000, false)`.
    Graceful10s,
    /// `rm_close_timeout(.., 5000, true)`.
    Force5s,
}

impl CloseHow {
    pub(crate) fn mode(self) -> Mode {
        match self {
            CloseHow::Plain | CloseHow::Graceful10s => Mode::Graceful,
            CloseHow::Graceful0 => Mode::Graceful0,
            CloseHow::Force5s => Mode::Forced,
        }
    }
}

/// The buffer given to `rm_status` first.
#[derive(Clone, Copy, Debug)]
pub(crate) enum StatusCap {
    /// NULL, 0.
    Null,
    /// A few bytes: too small.
    Small(usize),
    /// Exactly the length a first call reported (no room for the NUL).
    Exact,
    /// 1 MiB.
    Large,
}

#[derive(Clone, Debug)]
pub(crate) enum T {
    Register {
        m: MRef,
        name: usize,
        behavior: Behavior,
        deps: Vec<HRef>,
    },
    Close {
        m: MRef,
        h: HRef,
        how: CloseHow,
    },
    Cleanup {
        m: MRef,
        how: CloseHow,
    },
    Unregister {
        m: MRef,
        h: HRef,
    },
    AddDep {
        m: MRef,
        dependent: HRef,
        dependency: HRef,
    },
    DbOpen {
        m: MRef,
        path: usize,
        alias: bool,
        cfs: Vec<usize>,
    },
    Put {
        cf: HRef,
        key: usize,
        value: Vec<u8>,
    },
    Get {
        cf: HRef,
        key: usize,
        cap: usize,
    },
    GetAlloc {
        cf: HRef,
        key: usize,
        cap: usize,
    },
    Delete {
        cf: HRef,
        key: usize,
    },
    IterCreate {
        cf: HRef,
        snap: Option<HRef>,
    },
    IterSeekFirst {
        it: HRef,
    },
    IterRefresh {
        it: HRef,
    },
    IterNext {
        it: HRef,
    },
    /// `rm_iter_key`, or `rm_iter_value` when `value`.
    IterKey {
        it: HRef,
        cap: usize,
        value: bool,
    },
    SnapCreate {
        db: HRef,
    },
    BatchCreate {
        db: HRef,
    },
    BatchPut {
        batch: HRef,
        cf: HRef,
        key: usize,
        value: Vec<u8>,
    },
    BatchWrite {
        batch: HRef,
        flags: u32,
    },
    Status {
        m: MRef,
        cap: StatusCap,
    },
    Metrics {
        m: MRef,
    },
    /// `rm_cleanup_failures` listing at most `max`.
    CleanupFailures {
        m: MRef,
        max: usize,
    },
    DestroyOther,
    Churn {
        n: usize,
    },
}

impl T {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            T::Register { .. } => "rm_register",
            T::Close { .. } => "rm_close*",
            T::Cleanup { .. } => "rm_cleanup*",
            T::Unregister { .. } => "rm_unregister",
            T::AddDep { .. } => "rm_add_dependency",
            T::DbOpen { .. } => "rm_db_open",
            T::Put { .. } => "rm_put",
            T::Get { .. } => "rm_get",
            T::GetAlloc { .. } => "rm_get_alloc",
            T::Delete { .. } => "rm_delete",
            T::IterCreate { .. } => "rm_iter_create",
            T::IterSeekFirst { .. } => "rm_iter_seek_to_first",
            T::IterRefresh { .. } => "rm_iter_refresh",
            T::IterNext { .. } => "rm_iter_next",
            T::IterKey { value: false, .. } => "rm_iter_key",
            T::IterKey { value: true, .. } => "rm_iter_value",
            T::SnapCreate { .. } => "rm_snapshot_create",
            T::BatchCreate { .. } => "rm_batch_create",
            T::BatchPut { .. } => "rm_batch_put",
            T::BatchWrite { .. } => "rm_batch_write",
            T::Status { .. } => "rm_status",
            T::Metrics { .. } => "rm_manager_metrics",
            T::CleanupFailures { .. } => "rm_cleanup_failures",
            T::DestroyOther => "rm_manager_destroy(other)",
            T::Churn { .. } => "churn",
        }
    }
}

pub(crate) fn special() -> BoxedStrategy<HRef> {
    prop_oneof![
        Just(HRef::Zero),
        Just(HRef::Max),
        any::<u64>().prop_map(|g| HRef::Garbage(g | 1 << 63)),
        Just(HRef::MainMgr),
        Just(HRef::OtherMgr),
    ]
    .boxed()
}

/// A resource argument: mostly a live handle of kind `k` (any kind if None), sometimes a
/// closed one, a handle of any kind, or a special number.
pub(crate) fn href(s: &Model, k: Option<K>) -> BoxedStrategy<HRef> {
    let n = s.hs.len();
    let of_kind = |live: bool| -> Vec<usize> {
        (0..n)
            .filter(|&i| k.is_none_or(|k| s.hs[i].kind == k) && (!live || s.hs[i].live))
            .collect()
    };
    let (live, all) = (of_kind(true), of_kind(false));
    let mut arms: Vec<(u32, BoxedStrategy<HRef>)> = Vec::new();
    if !live.is_empty() {
        arms.push((
            14,
            proptest::sample::select(live).prop_map(HRef::Id).boxed(),
        ));
    }
    if !all.is_empty() {
        arms.push((3, proptest::sample::select(all).prop_map(HRef::Id).boxed()));
    }
    arms.push((2, (0..n).prop_map(HRef::Id).boxed()));
    arms.push((1, special()));
    Union::new_weighted(arms).boxed()
}

pub(crate) fn mref(s: &Model, other: u32) -> BoxedStrategy<MRef> {
    let n = s.hs.len();
    let mut arms = vec![
        (40, Just(MRef::Main).boxed()),
        (other, Just(MRef::Other).boxed()),
        (1, (0..n).prop_map(MRef::Res).boxed()),
        (1, Just(MRef::Zero).boxed()),
        (
            1,
            any::<u64>()
                .prop_map(|g| MRef::Garbage(g | 1 << 63))
                .boxed(),
        ),
    ];
    arms.retain(|(w, _)| *w > 0);
    Union::new_weighted(arms).boxed()
}

pub(crate) fn behavior() -> impl Strategy<Value = Behavior> {
    prop_oneof![
        6 => Just(Behavior::Ok),
        2 => Just(Behavior::FailOnce),
        1 => Just(Behavior::AlwaysFail),
    ]
}

pub(crate) fn close_how() -> impl Strategy<Value = CloseHow> {
    prop_oneof![
        4 => Just(CloseHow::Plain),
        1 => Just(CloseHow::Graceful0),
        1 => Just(CloseHow::Graceful10s),
        2 => Just(CloseHow::Force5s),
    ]
}

pub(crate) fn value() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..10)
}

pub(crate) fn cap() -> impl Strategy<Value = usize> {
    prop_oneof![Just(0usize), 0..12usize, Just(64usize)]
}

pub(crate) fn transitions(s: &Model) -> BoxedStrategy<T> {
    let live = |k: K| s.hs.iter().any(|h| h.live && h.kind == k);
    let w = |cond: bool, yes: u32, no: u32| if cond { yes } else { no };
    let (db, cf, it, batch) = (live(K::Db), live(K::Cf), live(K::Iter), live(K::Batch));
    let keys = 0..KEYS.len();
    let arms: Vec<(u32, BoxedStrategy<T>)> =
        vec![
        (
            14,
            (
                mref(s, 3),
                0..NAMES.len(),
                behavior(),
                proptest::collection::vec(href(s, None), 0..3),
            )
                .prop_map(|(m, name, behavior, deps)| T::Register {
                    m,
                    name,
                    behavior,
                    deps,
                })
                .boxed(),
        ),
        (
            9,
            (mref(s, 2), href(s, None), close_how())
                .prop_map(|(m, h, how)| T::Close { m, h, how })
                .boxed(),
        ),
        (
            1,
            (mref(s, 6), close_how())
                .prop_map(|(m, how)| T::Cleanup { m, how })
                .boxed(),
        ),
        (
            4,
            (mref(s, 2), href(s, Some(K::Foreign)))
                .prop_map(|(m, h)| T::Unregister { m, h })
                .boxed(),
        ),
        (
            2,
            (mref(s, 2), href(s, None))
                .prop_map(|(m, h)| T::Unregister { m, h })
                .boxed(),
        ),
        (
            6,
            (mref(s, 2), href(s, None), href(s, None))
                .prop_map(|(m, dependent, dependency)| T::AddDep {
                    m,
                    dependent,
                    dependency,
                })
                .boxed(),
        ),
        (
            w(db, 1, 5),
            (
                mref(s, 0),
                0..NPATHS,
                proptest::bool::weighted(0.15),
                prop_oneof![
                    12 => proptest::sample::subsequence(vec![0usize, 1, 2], 1..=3).prop_shuffle(),
                    1 => Just(vec![1usize, 1]),
                ],
            )
                .prop_map(|(m, path, alias, cfs)| T::DbOpen { m, path, alias, cfs })
                .boxed(),
        ),
        (
            w(cf, 14, 2),
            (href(s, Some(K::Cf)), keys.clone(), value())
                .prop_map(|(cf, key, value)| T::Put { cf, key, value })
                .boxed(),
        ),
        (
            w(cf, 14, 2),
            (href(s, Some(K::Cf)), keys.clone(), cap())
                .prop_map(|(cf, key, cap)| T::Get { cf, key, cap })
                .boxed(),
        ),
        (
            w(cf, 6, 1),
            (href(s, Some(K::Cf)), keys.clone(), cap())
                .prop_map(|(cf, key, cap)| T::GetAlloc { cf, key, cap })
                .boxed(),
        ),
        (
            w(cf, 5, 1),
            (href(s, Some(K::Cf)), keys.clone())
                .prop_map(|(cf, key)| T::Delete { cf, key })
                .boxed(),
        ),
        (
            w(cf, 5, 1),
            (
                href(s, Some(K::Cf)),
                proptest::option::weighted(0.3, href(s, Some(K::Snap))),
            )
                .prop_map(|(cf, snap)| T::IterCreate { cf, snap })
                .boxed(),
        ),
        (
            w(it, 6, 1),
            href(s, Some(K::Iter))
                .prop_map(|it| T::IterSeekFirst { it })
                .boxed(),
        ),
        (
            w(it, 3, 1),
            href(s, Some(K::Iter))
                .prop_map(|it| T::IterRefresh { it })
                .boxed(),
        ),
        (
            w(it, 8, 1),
            href(s, Some(K::Iter)).prop_map(|it| T::IterNext { it }).boxed(),
        ),
        (
            w(it, 10, 1),
            (href(s, Some(K::Iter)), cap(), proptest::bool::weighted(0.4))
                .prop_map(|(it, cap, value)| T::IterKey { it, cap, value })
                .boxed(),
        ),
        (
            w(db, 2, 1),
            href(s, Some(K::Db)).prop_map(|db| T::SnapCreate { db }).boxed(),
        ),
        (
            w(db, 2, 1),
            href(s, Some(K::Db)).prop_map(|db| T::BatchCreate { db }).boxed(),
        ),
        (
            w(batch, 7, 1),
            (href(s, Some(K::Batch)), href(s, Some(K::Cf)), keys, value())
                .prop_map(|(batch, cf, key, value)| T::BatchPut {
                    batch,
                    cf,
                    key,
                    value,
                })
                .boxed(),
        ),
        (
            w(batch, 3, 1),
            (href(s, Some(K::Batch)), 0u32..4)
                .prop_map(|(batch, flags)| T::BatchWrite { batch, flags })
                .boxed(),
        ),
        (
            2,
            (
                mref(s, 8),
                prop_oneof![
                    Just(StatusCap::Null),
                    (1usize..64).prop_map(StatusCap::Small),
                    Just(StatusCap::Exact),
                    Just(StatusCap::Large),
                ],
            )
                .prop_map(|(m, cap)| T::Status { m, cap })
                .boxed(),
        ),
        (3, mref(s, 8).prop_map(|m| T::Metrics { m }).boxed()),
        (
            2,
            (mref(s, 8), 0..4usize)
                .prop_map(|(m, max)| T::CleanupFailures { m, max })
                .boxed(),
        ),
        (1, Just(T::DestroyOther).boxed()),
    ];
    // A churn (about 2,400 calls) in about a fifth of the cases.
    let mut arms: Vec<(u32, BoxedStrategy<T>)> =
        arms.into_iter().map(|(w, a)| (4 * w, a)).collect();
    if !s.churned {
        arms.push((1, CHURN.prop_map(|n| T::Churn { n }).boxed()));
    }
    Union::new_weighted(arms).boxed()
}

// ---------------------------------------------------------------------------------------
// The system under test

/// What a close callback's `context` points to.
pub(crate) struct Ctx {
    fail_first: u32,
    calls: AtomicU32,
    in_call: AtomicBool,
    /// Set once the resource is unregistered (or was never registered): no call may follow.
    unregistered: AtomicBool,
    violations: AtomicU32,
    first_start: AtomicU64,
    last_end: AtomicU64,
}

pub(crate) const V_CONCURRENT: u32 = 1;
pub(crate) const V_AFTER_UNREGISTER: u32 = 2;

impl Ctx {
    pub(crate) fn new(fail_first: u32) -> Box<Ctx> {
        Box::new(Ctx {
            fail_first,
            calls: AtomicU32::new(0),
            in_call: AtomicBool::new(false),
            unregistered: AtomicBool::new(false),
            violations: AtomicU32::new(0),
            first_start: AtomicU64::new(0),
            last_end: AtomicU64::new(0),
        })
    }

    pub(crate) fn ptr(&self) -> *mut c_void {
        (self as *const Ctx).cast_mut().cast()
    }
}

/// The close callback: records the call (thread-safe: it runs on resman's pool threads),
/// fails the first `fail_first` calls with a message.
unsafe extern "C" fn close_cb(context: *mut c_void, message: *mut c_char, cap: usize) -> i32 {
    // SAFETY: every context given to rm_register is a boxed Ctx that the test keeps alive
    // until its managers are destroyed.
    let ctx = unsafe { &*context.cast::<Ctx>() };
    if ctx.in_call.swap(true, SeqCst) {
        ctx.violations.fetch_or(V_CONCURRENT, SeqCst);
    }
    if ctx.unregistered.load(SeqCst) {
        ctx.violations.fetch_or(V_AFTER_UNREGISTER, SeqCst);
    }
    let start = SEQ.fetch_add(1, SeqCst);
    let n = ctx.calls.fetch_add(1, SeqCst);
    if n == 0 {
        ctx.first_start.store(start, SeqCst);
    }
    let rc = if n < ctx.fail_first {
        let text = b"the test refuses to close\0";
        if !message.is_null() && cap >= text.len() {
            // SAFETY: resman gives `cap` writable bytes at `message`.
            unsafe {
                std::ptr::copy_nonoverlapping(text.as_ptr().cast::<c_char>(), message, text.len())
            };
        }
        7
    } else {
        0
    };
    ctx.last_end.store(SEQ.fetch_add(1, SeqCst), SeqCst);
    ctx.in_call.store(false, SeqCst);
    rc
}

/// An `rm_error` to pass (NULL for one call in eight), checked after the call.
pub(crate) struct ErrBuf {
    e: rm_error,
    null: bool,
}

impl ErrBuf {
    pub(crate) fn new() -> ErrBuf {
        ErrBuf {
            e: rm_error {
                code: RM_ERR_PANIC,
                message: [b'?' as c_char; RM_ERROR_MESSAGE_MAX],
            },
            null: CALLS.load(SeqCst) % 8 == 7,
        }
    }

    pub(crate) fn ptr(&mut self) -> *mut rm_error {
        if self.null {
            null_mut()
        } else {
            &mut self.e
        }
    }

    pub(crate) fn message(&self) -> String {
        let bytes: Vec<u8> = self.e.message.iter().map(|c| *c as u8).collect();
        let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    }

    /// The documented `rm_error` protocol: same code, NUL-terminated UTF-8, "" on success.
    pub(crate) fn check(&self, rc: rm_result, what: &dyn std::fmt::Debug) {
        assert_ne!(
            rc,
            RM_ERR_PANIC,
            "{what:?}: a panic inside resman: {}",
            self.message()
        );
        if self.null {
            return;
        }
        assert_eq!(
            self.e.code, rc,
            "{what:?}: err.code differs from the result"
        );
        let bytes: Vec<u8> = self.e.message.iter().map(|c| *c as u8).collect();
        let end = bytes.iter().position(|b| *b == 0);
        let end = end.unwrap_or_else(|| panic!("{what:?}: err.message is not NUL-terminated"));
        let msg = std::str::from_utf8(&bytes[..end])
            .unwrap_or_else(|_| panic!("{what:?}: err.message is not UTF-8"));
        if rc == RM_OK {
            assert!(msg.is_empty(), "{what:?}: message on success: {msg}");
        } else {
            assert!(!msg.is_empty(), "{what:?}: {rc:?} without a message");
        }
    }
}

/// `rm_register` of `ctx` in manager `mgr` with no dependencies: the result, the handle and the
/// error, already checked against the result (`what` names the call in a failure).
pub(crate) fn register_plain(
    mgr: u64,
    name: &str,
    ctx: &Ctx,
    what: &dyn std::fmt::Debug,
) -> (rm_result, u64, ErrBuf) {
    let name = CString::new(name).unwrap();
    let mut h = 0u64;
    let mut e = ErrBuf::new();
    let rc = c!(rm_register(
        mgr,
        name.as_ptr(),
        Some(close_cb),
        ctx.ptr(),
        null(),
        0,
        &mut h,
        e.ptr()
    ));
    e.check(rc, what);
    (rc, h, e)
}

/// Counters read back from `rm_metrics` or the status document.
#[derive(Debug, Default)]
pub(crate) struct Totals {
    registered: u64,
    active: u64,
    closing: u64,
    closed: u64,
    failed: u64,
    unregistered: u64,
    forced: u64,
    timed_out: u64,
    retries: u64,
    close_errors: u64,
    cleanups: u64,
    cleanups_failed: u64,
    escalations: u64,
    leaked_iterators: u64,
    leaked_snapshots: u64,
}

impl Totals {
    pub(crate) fn from_json(v: &Value) -> Totals {
        let g = |k: &str| {
            v[k].as_u64()
                .unwrap_or_else(|| panic!("status totals: no number '{k}' in {v}"))
        };
        Totals {
            registered: g("registered"),
            active: g("active"),
            closing: g("closing"),
            closed: g("closed"),
            failed: g("failed"),
            unregistered: g("unregistered"),
            forced: g("forced"),
            timed_out: g("timed_out"),
            retries: g("retries"),
            close_errors: g("close_errors"),
            cleanups: g("cleanups"),
            cleanups_failed: g("cleanups_failed"),
            escalations: g("escalations"),
            leaked_iterators: g("leaked_iterators"),
            leaked_snapshots: g("leaked_snapshots"),
        }
    }

    pub(crate) fn from_metrics(m: &rm_metrics) -> Totals {
        Totals {
            registered: m.registered,
            active: m.active,
            closing: m.closing,
            closed: m.closed,
            failed: m.failed,
            unregistered: m.unregistered,
            forced: m.forced,
            timed_out: m.timed_out,
            retries: m.retries,
            close_errors: m.close_errors,
            cleanups: m.cleanups,
            cleanups_failed: m.cleanups_failed,
            escalations: m.escalations,
            leaked_iterators: m.leaked_iterators,
            leaked_snapshots: m.leaked_snapshots,
        }
    }

    pub(crate) fn check(&self, r: &Model, owner: Owner, what: &str) {
        let c = &r.ctr[owner as usize];
        let active = r.live_of(owner).len() as u64;
        let pairs = [
            ("registered", self.registered, c.registered),
            ("active", self.active, active),
            ("closing", self.closing, 0),
            ("closed", self.closed, c.closed),
            ("failed", self.failed, c.failed),
            ("unregistered", self.unregistered, c.unregistered),
            ("forced", self.forced, c.forced),
            ("timed_out", self.timed_out, 0),
            ("retries", self.retries, c.retries),
            ("close_errors", self.close_errors, c.close_errors),
            ("cleanups", self.cleanups, c.cleanups),
            ("cleanups_failed", self.cleanups_failed, c.cleanups_failed),
            ("escalations", self.escalations, c.escalations),
        ];
        for (name, got, want) in pairs {
            assert_eq!(
                got, want,
                "{what} of the {owner:?} manager: {name}\n  {self:?}\n  model {c:?}"
            );
        }
        let within = |got: u64, (lo, hi): (u64, u64)| lo <= got && got <= hi;
        assert!(
            within(self.leaked_iterators, c.leaked_iterators)
                && within(self.leaked_snapshots, c.leaked_snapshots),
            "{what} of the {owner:?} manager: leaked counts\n  {self:?}\n  model {c:?}"
        );
    }
}

pub(crate) struct Sut {
    main: u64,
    other: u64,
    main_destroyed: bool,
    other_destroyed: bool,
    /// `rm_live_objects` before the case.
    baseline: u64,
    /// Handle of each model id.
    handles: Vec<u64>,
    /// Contexts of registered resources, by id.
    ctxs: HashMap<usize, Box<Ctx>>,
    /// Contexts of refused registrations and the churn's: never called.
    // Boxed: resman keeps their addresses.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<Ctx>>,
    /// Latest handle issued per (table tag, slot index).
    slots: HashMap<(u16, u32), u64>,
    /// Every handle issued in this case.
    seen: HashSet<u64>,
    paths: Vec<CString>,
    _dirs: Vec<tempfile::TempDir>,
    step: usize,
}

impl Drop for Sut {
    fn drop(&mut self) {
        // A failed case: destroy the managers before the contexts their callbacks use go.
        if !self.main_destroyed {
            let _ = c!(rm_manager_destroy(self.main, null_mut()));
        }
        if !self.other_destroyed {
            let _ = c!(rm_manager_destroy(self.other, null_mut()));
        }
    }
}

pub(crate) fn tmp_base() -> std::path::PathBuf {
    if let Some(d) = std::env::var_os("RESMAN_CALLS_TMPDIR") {
        return d.into();
    }
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}

impl Sut {
    pub(crate) fn new(r: &Model) -> Sut {
        CASES.fetch_add(1, SeqCst);
        CALLS.fetch_add(1, SeqCst);
        let baseline = rm_live_objects();
        let mut cfg = rm_config {
            cleanup_timeout_ms: 0,
            force_cleanup_timeout_ms: 0,
            monitor_interval_ms: 0,
            retry_delay_ms: 0,
            max_retries: 0,
        };
        assert_eq!(c!(rm_config_default(&mut cfg)), RM_OK);
        cfg.max_retries = r.max_retries;
        cfg.retry_delay_ms = 1;
        cfg.cleanup_timeout_ms = GRACEFUL_MS;
        cfg.force_cleanup_timeout_ms = FORCED_MS;
        // No monitor tick during a case: its sampling takes leases.
        cfg.monitor_interval_ms = 86_400_000;
        let create = || {
            let mut m = 0u64;
            let mut e = ErrBuf::new();
            let rc = c!(rm_manager_create(&cfg, &mut m, e.ptr()));
            e.check(rc, &"rm_manager_create");
            assert_eq!(rc, RM_OK);
            m
        };
        let (main, other) = (create(), create());
        let base = tmp_base();
        let dirs: Vec<tempfile::TempDir> = (0..NPATHS)
            .map(|_| {
                tempfile::Builder::new()
                    .prefix("resman-calls")
                    .tempdir_in(&base)
                    .expect("a temp dir")
            })
            .collect();
        let paths = dirs
            .iter()
            .map(|d| CString::new(d.path().to_str().expect("UTF-8 temp path")).unwrap())
            .collect();
        let mut sut = Sut {
            main,
            other,
            main_destroyed: false,
            other_destroyed: false,
            baseline,
            handles: Vec::new(),
            ctxs: HashMap::new(),
            spare: Vec::new(),
            slots: HashMap::new(),
            seen: HashSet::new(),
            paths,
            _dirs: dirs,
            step: 0,
        };
        // The monitors (ids 0 and 1), found in the status documents.
        for (id, m) in [(0, main), (1, other)] {
            let (rc, doc) = sut.status(m, StatusCap::Large);
            assert_eq!(rc, RM_OK);
            let doc = doc.expect("a status document");
            let monitors: Vec<u64> = doc["resources"]
                .as_array()
                .expect("resources")
                .iter()
                .filter(|x| x["kind"] == "monitor")
                .map(|x| x["handle"].as_u64().expect("a handle"))
                .collect();
            assert_eq!(monitors.len(), 1, "one monitor per manager: {doc}");
            sut.adopt(id, monitors[0]);
        }
        for i in 0..OTHER_RESOURCES {
            let ctx = Ctx::new(0);
            let (rc, h, _) = register_plain(other, &format!("o{i}"), &ctx, &"rm_register");
            assert_eq!(rc, RM_OK);
            sut.adopt(2 + i, h);
            sut.ctxs.insert(2 + i, ctx);
        }
        assert_eq!(sut.handles.len(), r.hs.len());
        sut
    }

    /// Records a handle a call returned.
    pub(crate) fn observe(&mut self, h: u64) {
        assert_ne!(h, 0, "step {}: a call returned handle 0", self.step);
        assert!(
            self.seen.insert(h),
            "step {}: handle {h:#x} was issued twice",
            self.step
        );
        let d = Handle::from_raw(h);
        self.slots.insert((d.tag(), d.index()), h);
    }

    pub(crate) fn adopt(&mut self, id: usize, h: u64) {
        assert_eq!(
            self.handles.len(),
            id,
            "model and test disagree on handle ids"
        );
        self.observe(h);
        self.handles.push(h);
    }

    pub(crate) fn stale(&self, id: usize) -> bool {
        let h = self.handles[id];
        let d = Handle::from_raw(h);
        self.slots.get(&(d.tag(), d.index())) != Some(&h)
    }

    pub(crate) fn resolve(&self, w: Want) -> rm_result {
        match w {
            Want::Code(c) => c,
            Want::Closed(id, _) if self.stale(id) => RM_ERR_STALE_HANDLE,
            Want::Closed(_, c) => c,
        }
    }

    pub(crate) fn h(&self, r: HRef) -> u64 {
        match r {
            HRef::Id(i) => self.handles[i],
            HRef::MainMgr => self.main,
            HRef::OtherMgr => self.other,
            HRef::Zero => 0,
            HRef::Max => u64::MAX,
            HRef::Garbage(g) => g,
        }
    }

    pub(crate) fn m(&self, r: MRef) -> u64 {
        match r {
            MRef::Main => self.main,
            MRef::Other => self.other,
            MRef::Res(i) => self.handles[i],
            MRef::Zero => 0,
            MRef::Garbage(g) => g,
        }
    }

    /// Checks a call's result against the model's.
    pub(crate) fn expect(&self, rc: rm_result, e: &ErrBuf, x: &Expect, t: &T) {
        e.check(rc, t);
        record(t.name(), |s| *s.codes.entry(rc as i32).or_default() += 1);
        let allowed: Vec<rm_result> = x.wants.iter().map(|w| self.resolve(*w)).collect();
        assert!(
            allowed.contains(&rc),
            "step {}: {t:?}\n  returned {rc:?} ({}), the model expects one of {allowed:?}",
            self.step,
            e.message()
        );
    }

    pub(crate) fn new_ids(x: &Expect) -> &[usize] {
        match &x.data {
            Data::New(ids) => ids,
            other => panic!("the model gave no new ids: {other:?}"),
        }
    }

    /// Dependents' callbacks finished before their dependencies' started.
    pub(crate) fn check_order(&self, r: &Model, closed: &[usize]) {
        let called: Vec<usize> = closed
            .iter()
            .copied()
            .filter(|&i| r.hs[i].kind == K::Foreign && r.hs[i].calls > 0)
            .collect();
        for &a in &called {
            for &b in &called {
                if a != b && r.reaches(a, b) {
                    let (ca, cb) = (&self.ctxs[&a], &self.ctxs[&b]);
                    assert!(
                        ca.last_end.load(SeqCst) < cb.first_start.load(SeqCst),
                        "step {}: '{}' depends on '{}' but its close callback did not finish before the other's started",
                        self.step,
                        r.hs[a].name,
                        r.hs[b].name
                    );
                }
            }
        }
    }

    /// A close, cleanup or destroy with nothing in flight has nothing to wait for: it must not
    /// run out its graceful phase (10 s here) and force what is left.
    pub(crate) fn check_quick(&self, started: Instant, t: &dyn std::fmt::Debug) {
        let took = started.elapsed();
        assert!(
            took < QUICK,
            "step {}: {t:?} took {:.1} s with nothing in flight: its graceful phase ran out",
            self.step,
            took.as_secs_f64()
        );
    }

    /// `rm_status` with the documented buffer protocol, starting with `cap`. Returns the
    /// first error, or RM_OK and the document.
    pub(crate) fn status(&self, m: u64, cap: StatusCap) -> (rm_result, Option<Value>) {
        let mut cap = match cap {
            StatusCap::Null => 0,
            StatusCap::Small(n) => n,
            StatusCap::Large => 1 << 20,
            StatusCap::Exact => {
                let mut len = 0usize;
                let mut e = ErrBuf::new();
                let rc = c!(rm_status(m, null_mut(), 0, &mut len, e.ptr()));
                e.check(rc, &"rm_status");
                if rc != RM_ERR_BUFFER_TOO_SMALL {
                    return (rc, None);
                }
                len
            }
        };
        for _ in 0..8 {
            let mut buf = vec![0x5au8; cap];
            let ptr = if cap == 0 {
                null_mut()
            } else {
                buf.as_mut_ptr().cast::<c_char>()
            };
            let mut len = usize::MAX;
            let mut e = ErrBuf::new();
            let rc = c!(rm_status(m, ptr, cap, &mut len, e.ptr()));
            e.check(rc, &"rm_status");
            match rc {
                RM_ERR_BUFFER_TOO_SMALL => {
                    assert!(
                        len >= cap,
                        "rm_status: BUFFER_TOO_SMALL with cap {cap} but length {len}"
                    );
                    assert!(
                        buf.iter().all(|b| *b == 0x5a),
                        "rm_status wrote into a buffer too small"
                    );
                    cap = len + 1;
                }
                RM_OK => {
                    assert!(len < cap, "rm_status: length {len} does not fit {cap}");
                    assert_eq!(buf[len], 0, "rm_status: no NUL after the document");
                    assert!(
                        !buf[..len].contains(&0),
                        "rm_status: NUL inside the document"
                    );
                    let text = std::str::from_utf8(&buf[..len]).expect("status is UTF-8");
                    let doc: Value = serde_json::from_str(text).expect("status is JSON");
                    return (RM_OK, Some(doc));
                }
                other => return (other, None),
            }
        }
        panic!("rm_status: the document kept growing");
    }

    /// The status document against the model.
    pub(crate) fn check_status(&self, r: &Model, owner: Owner, doc: &Value) {
        let manager = if owner == Owner::Main {
            self.main
        } else {
            self.other
        };
        assert_eq!(doc["manager"].as_u64(), Some(manager), "status: manager");
        let got: BTreeMap<u64, &Value> = doc["resources"]
            .as_array()
            .expect("status: resources")
            .iter()
            .map(|x| (x["handle"].as_u64().expect("status: handle"), x))
            .collect();
        let want: BTreeMap<u64, usize> = r
            .live_of(owner)
            .into_iter()
            .map(|i| (self.handles[i], i))
            .collect();
        let missing: Vec<&H> = want
            .iter()
            .filter(|(h, _)| !got.contains_key(h))
            .map(|(_, i)| &r.hs[*i])
            .collect();
        let extra: Vec<&&Value> = got
            .iter()
            .filter(|(h, _)| !want.contains_key(h))
            .map(|(_, x)| x)
            .collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "step {}: status resources of the {owner:?} manager differ from the model\n  missing {missing:?}\n  extra {extra:?}",
            self.step
        );
        for (h, &id) in &want {
            let x = got[h];
            let m = &r.hs[id];
            assert_eq!(x["kind"], m.kind.json(), "status: kind of {m:?}");
            assert_eq!(x["state"], "active", "status: state of {m:?}");
            if matches!(m.kind, K::Foreign | K::Monitor | K::Db | K::Cf) {
                assert_eq!(x["name"], m.name.as_str(), "status: name");
            }
            let dependents = r.dependents(id).len() as u64;
            assert_eq!(
                x["leases"].as_u64(),
                Some(dependents),
                "step {}: status: leases of '{}' (one per live dependent, nothing in flight): {x}",
                self.step,
                m.name
            );
            assert_eq!(
                x["dependents"].as_array().map(Vec::len),
                Some(dependents as usize),
                "status: dependents of {x}"
            );
            assert_eq!(
                x["depends_on"].as_array().map(Vec::len),
                Some(m.deps.len()),
                "status: depends_on of {x}"
            );
        }
        Totals::from_json(&doc["totals"]).check(r, owner, "status totals");
    }

    pub(crate) fn apply(&mut self, r: &Model, t: &T) {
        self.step += 1;
        STEPS.fetch_add(1, SeqCst);
        let x = &r.last;
        let mut e = ErrBuf::new();
        match t {
            T::Register {
                m,
                name,
                deps,
                behavior,
            } => {
                let ctx = Ctx::new(behavior.fail_first());
                let name = CString::new(NAMES[*name]).unwrap();
                let deps: Vec<u64> = deps.iter().map(|d| self.h(*d)).collect();
                let deps_ptr = if deps.is_empty() {
                    null()
                } else {
                    deps.as_ptr()
                };
                let mut out = 0u64;
                let rc = c!(rm_register(
                    self.m(*m),
                    name.as_ptr(),
                    Some(close_cb),
                    ctx.ptr(),
                    deps_ptr,
                    deps.len(),
                    &mut out,
                    e.ptr()
                ));
                self.expect(rc, &e, x, t);
                if rc == RM_OK {
                    let id = Self::new_ids(x)[0];
                    self.adopt(id, out);
                    self.ctxs.insert(id, ctx);
                } else {
                    ctx.unregistered.store(true, SeqCst);
                    self.spare.push(ctx);
                }
            }
            T::Close { m, h, how } => {
                let (m, h, err) = (self.m(*m), self.h(*h), e.ptr());
                let started = Instant::now();
                let rc = match how {
                    CloseHow::Plain => c!(rm_close(m, h, err)),
                    CloseHow::Graceful0 => c!(rm_close_timeout(m, h, 0, false, err)),
                    CloseHow::Graceful10s => c!(rm_close_timeout(m, h, 10_000, false, err)),
                    CloseHow::Force5s => c!(rm_close_timeout(m, h, 5_000, true, err)),
                };
                self.expect(rc, &e, x, t);
                if let Data::Closed(ids) = &x.data {
                    self.check_order(r, ids);
                    self.check_quick(started, t);
                }
            }
            T::Cleanup { m, how } => {
                let (m, err) = (self.m(*m), e.ptr());
                let started = Instant::now();
                let rc = match how {
                    CloseHow::Plain => c!(rm_cleanup(m, err)),
                    CloseHow::Graceful0 => c!(rm_cleanup_timeout(m, 0, false, err)),
                    CloseHow::Graceful10s => c!(rm_cleanup_timeout(m, 10_000, false, err)),
                    CloseHow::Force5s => c!(rm_cleanup_timeout(m, 5_000, true, err)),
                };
                self.expect(rc, &e, x, t);
                if let Data::Closed(ids) = &x.data {
                    self.check_order(r, ids);
                    self.check_quick(started, t);
                }
            }
            T::DestroyOther => {
                let started = Instant::now();
                let rc = c!(rm_manager_destroy(self.other, e.ptr()));
                self.expect(rc, &e, x, t);
                self.other_destroyed = true;
                if let Data::Closed(ids) = &x.data {
                    self.check_order(r, ids);
                    self.check_quick(started, t);
                }
            }
            T::Unregister { m, h } => {
                let rc = c!(rm_unregister(self.m(*m), self.h(*h), e.ptr()));
                self.expect(rc, &e, x, t);
                if let (RM_OK, Data::Gone(id)) = (rc, &x.data) {
                    self.ctxs[id].unregistered.store(true, SeqCst);
                }
            }
            T::AddDep {
                m,
                dependent,
                dependency,
            } => {
                let rc = c!(rm_add_dependency(
                    self.m(*m),
                    self.h(*dependent),
                    self.h(*dependency),
                    e.ptr()
                ));
                self.expect(rc, &e, x, t);
            }
            T::DbOpen {
                m,
                path,
                alias,
                cfs,
            } => {
                let name = CString::new(db_name(*path, *alias)).unwrap();
                let names: Vec<CString> = cfs
                    .iter()
                    .map(|c| CString::new(CF_NAMES[*c]).unwrap())
                    .collect();
                let ptrs: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
                // Small memtables: RocksDB preallocates a WAL file of about one memtable.
                let mut opts = rm_db_options {
                    create_if_missing: 0,
                    create_missing_column_families: 0,
                    error_if_exists: 0,
                    write_buffer_size: 0,
                    max_open_files: 0,
                    compression: 0,
                    block_cache_size: 0,
                };
                assert_eq!(c!(rm_db_options_default(&mut opts)), RM_OK);
                opts.write_buffer_size = 1 << 20;
                opts.block_cache_size = 1 << 20;
                let mut db = 0u64;
                let mut out = vec![0u64; cfs.len()];
                let rc = c!(rm_db_open(
                    self.m(*m),
                    name.as_ptr(),
                    self.paths[*path].as_ptr(),
                    &opts,
                    ptrs.as_ptr(),
                    ptrs.len(),
                    &mut db,
                    out.as_mut_ptr(),
                    e.ptr()
                ));
                self.expect(rc, &e, x, t);
                if rc == RM_OK {
                    let ids = Self::new_ids(x).to_vec();
                    self.adopt(ids[0], db);
                    for (id, h) in ids[1..].iter().zip(out) {
                        self.adopt(*id, h);
                    }
                }
            }
            T::Put { cf, key, value } => {
                let k = KEYS[*key];
                let kp = if k.is_empty() { null() } else { k.as_ptr() };
                let vp = if value.is_empty() {
                    null()
                } else {
                    value.as_ptr()
                };
                let rc = c!(rm_put(self.h(*cf), kp, k.len(), vp, value.len(), e.ptr()));
                self.expect(rc, &e, x, t);
            }
            T::Delete { cf, key } => {
                let k = KEYS[*key];
                let rc = c!(rm_delete(self.h(*cf), k.as_ptr(), k.len(), e.ptr()));
                self.expect(rc, &e, x, t);
            }
            T::Get { cf, key, cap } => {
                let k = KEYS[*key];
                let mut buf = vec![0xa5u8; *cap];
                let bp = if *cap == 0 {
                    null_mut()
                } else {
                    buf.as_mut_ptr()
                };
                let mut len = usize::MAX;
                let rc = c!(rm_get(
                    self.h(*cf),
                    k.as_ptr(),
                    k.len(),
                    bp,
                    *cap,
                    &mut len,
                    e.ptr()
                ));
                self.expect(rc, &e, x, t);
                self.check_read(rc, &buf, len, 0xa5, x, t);
            }
            T::GetAlloc { cf, key, cap } => {
                let k = KEYS[*key];
                let mut buf = vec![0xa5u8; *cap];
                let bp = if *cap == 0 {
                    null_mut()
                } else {
                    buf.as_mut_ptr()
                };
                let (mut value, mut len) = (null_mut::<u8>(), usize::MAX);
                let rc = c!(rm_get_alloc(
                    self.h(*cf),
                    0,
                    0,
                    k.as_ptr(),
                    k.len(),
                    bp,
                    *cap,
                    Some(test_alloc),
                    null_mut(),
                    &mut value,
                    &mut len,
                    e.ptr()
                ));
                self.expect(rc, &e, x, t);
                if rc != RM_OK {
                    assert!(
                        value.is_null(),
                        "step {}: {t:?}: value written on failure",
                        self.step
                    );
                    return;
                }
                let got = if value == bp {
                    buf[..len].to_vec()
                } else {
                    assert!(
                        len > *cap,
                        "step {}: {t:?}: allocated for a fitting value",
                        self.step
                    );
                    // SAFETY: test_alloc returned `value`: `len` bytes of a Vec leaked for it.
                    unsafe { Vec::from_raw_parts(value, len, len) }
                };
                if let Data::Bytes(v) = &x.data {
                    assert_eq!(&got, v, "step {}: {t:?}: bytes read", self.step);
                }
            }
            T::IterCreate { cf, snap } => {
                let snap = snap.map_or(0, |s| self.h(s));
                let mut out = 0u64;
                let rc = c!(rm_iter_create(
                    self.h(*cf),
                    snap,
                    0,
                    null(),
                    0,
                    null(),
                    0,
                    &mut out,
                    e.ptr()
                ));
                self.expect(rc, &e, x, t);
                if rc == RM_OK {
                    self.adopt(Self::new_ids(x)[0], out);
                }
            }
            T::IterRefresh { it } => {
                let rc = c!(rm_iter_refresh(self.h(*it), e.ptr()));
                self.expect(rc, &e, x, t);
            }
            T::IterSeekFirst { it } | T::IterNext { it } => {
                let mut valid = false;
                // Sometimes NULL: `out_valid` may be NULL.
                let vp: *mut bool = if self.step.is_multiple_of(5) {
                    null_mut()
                } else {
                    &mut valid
                };
                let rc = if matches!(t, T::IterNext { .. }) {
                    c!(rm_iter_next(self.h(*it), vp, e.ptr()))
                } else {
                    c!(rm_iter_seek_to_first(self.h(*it), vp, e.ptr()))
                };
                self.expect(rc, &e, x, t);
                if let (RM_OK, Data::Valid(want), false) = (rc, &x.data, vp.is_null()) {
                    assert_eq!(valid, *want, "step {}: {t:?}: out_valid", self.step);
                }
            }
            T::IterKey { it, cap, value } => {
                let mut buf = vec![0xa5u8; *cap];
                let bp = if *cap == 0 {
                    null_mut()
                } else {
                    buf.as_mut_ptr()
                };
                let mut len = usize::MAX;
                let rc = if *value {
                    c!(rm_iter_value(self.h(*it), bp, *cap, &mut len, e.ptr()))
                } else {
                    c!(rm_iter_key(self.h(*it), bp, *cap, &mut len, e.ptr()))
                };
                self.expect(rc, &e, x, t);
                self.check_read(rc, &buf, len, 0xa5, x, t);
            }
            T::SnapCreate { db } | T::BatchCreate { db } => {
                let mut out = 0u64;
                let rc = if matches!(t, T::SnapCreate { .. }) {
                    c!(rm_snapshot_create(self.h(*db), &mut out, e.ptr()))
                } else {
                    c!(rm_batch_create(self.h(*db), &mut out, e.ptr()))
                };
                self.expect(rc, &e, x, t);
                if rc == RM_OK {
                    self.adopt(Self::new_ids(x)[0], out);
                }
            }
            T::BatchPut {
                batch,
                cf,
                key,
                value,
            } => {
                let k = KEYS[*key];
                let rc = c!(rm_batch_put(
                    self.h(*batch),
                    self.h(*cf),
                    k.as_ptr(),
                    k.len(),
                    value.as_ptr(),
                    value.len(),
                    e.ptr()
                ));
                self.expect(rc, &e, x, t);
            }
            T::BatchWrite { batch, flags } => {
                let rc = c!(rm_batch_write(self.h(*batch), *flags, e.ptr()));
                self.expect(rc, &e, x, t);
            }
            T::Status { m, cap } => {
                let (rc, doc) = self.status(self.m(*m), *cap);
                self.expect(
                    rc,
                    &ErrBuf {
                        null: true,
                        ..ErrBuf::new()
                    },
                    x,
                    t,
                );
                if let (Some(doc), Data::Of(owner)) = (doc, &x.data) {
                    self.check_status(r, *owner, &doc);
                }
            }
            T::Metrics { m } => {
                let mut out = rm_metrics::default();
                let rc = c!(rm_manager_metrics(self.m(*m), &mut out, e.ptr()));
                self.expect(rc, &e, x, t);
                if let (RM_OK, &Data::Of(owner)) = (rc, &x.data) {
                    Totals::from_metrics(&out).check(
                        r,
                        owner,
                        &format!("step {}: rm_metrics", self.step),
                    );
                    let c = &r.ctr[owner as usize];
                    assert_eq!(
                        out.close_duration.count,
                        c.closed + c.failed,
                        "close_duration.count"
                    );
                    assert_eq!(
                        out.cleanup_duration.count, c.cleanups,
                        "cleanup_duration.count"
                    );
                    for hist in [&out.close_duration, &out.cleanup_duration] {
                        assert!(
                            hist.buckets.windows(2).all(|w| w[0] <= w[1]),
                            "buckets are cumulative"
                        );
                        assert!(
                            hist.buckets.iter().all(|b| *b <= hist.count),
                            "buckets <= count"
                        );
                    }
                }
            }
            T::CleanupFailures { m, max } => {
                let mut buf = vec![0u8; 1 << 20];
                let mut len = 0usize;
                let rc = c!(rm_cleanup_failures(
                    self.m(*m),
                    *max,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    &mut len,
                    e.ptr()
                ));
                self.expect(rc, &e, x, t);
                if let (RM_OK, &Data::Of(owner)) = (rc, &x.data) {
                    let doc: Value = serde_json::from_slice(&buf[..len])
                        .unwrap_or_else(|e| panic!("rm_cleanup_failures: {e}"));
                    let want = &r.cleanup_failures[owner as usize];
                    let at = format!("step {}: rm_cleanup_failures {doc}", self.step);
                    assert_eq!(
                        doc["operation"].as_str(),
                        want.as_ref().map(|_| "cleanup"),
                        "{at}"
                    );
                    let want = want.as_deref().unwrap_or_default();
                    assert_eq!(doc["total"].as_u64(), Some(want.len() as u64), "{at}");
                    let listed = doc["failures"].as_array().expect("a failures array");
                    assert_eq!(listed.len(), want.len().min(*max), "{at}");
                    for f in listed {
                        assert_eq!(f["code"].as_i64(), Some(RM_ERR_CLOSE_FAILED as i64), "{at}");
                        let name = f["name"].as_str().unwrap_or_default();
                        assert!(want.iter().any(|&i| r.hs[i].name == name), "{at}");
                        assert!(
                            !f["message"].as_str().unwrap_or_default().is_empty(),
                            "{at}"
                        );
                    }
                }
            }
            T::Churn { n } => {
                let before = CALLS.load(SeqCst);
                let ctx = Ctx::new(0);
                ctx.unregistered.store(true, SeqCst);
                for _ in 0..*n {
                    let (rc, h, e) = register_plain(self.main, "churn", &ctx, t);
                    assert_eq!(rc, RM_OK, "churn: rm_register: {}", e.message());
                    self.observe(h);
                    let mut e = ErrBuf::new();
                    let rc = c!(rm_unregister(self.main, h, e.ptr()));
                    e.check(rc, t);
                    assert_eq!(rc, RM_OK, "churn: rm_unregister: {}", e.message());
                }
                self.spare.push(ctx);
                CHURN_CALLS.fetch_add(CALLS.load(SeqCst) - before, SeqCst);
            }
        }
    }

    /// A get or iterator read: the value on success; the needed length and an untouched
    /// buffer when it is too small.
    pub(crate) fn check_read(
        &self,
        rc: rm_result,
        buf: &[u8],
        len: usize,
        fill: u8,
        x: &Expect,
        t: &T,
    ) {
        match (rc, &x.data) {
            (RM_OK, Data::Bytes(v)) => {
                assert_eq!(len, v.len(), "step {}: {t:?}: length", self.step);
                assert_eq!(&buf[..len], &v[..], "step {}: {t:?}: bytes read", self.step);
            }
            (RM_ERR_BUFFER_TOO_SMALL, Data::Needed(n)) => {
                assert_eq!(len, *n, "step {}: {t:?}: the length needed", self.step);
                assert!(
                    buf.iter().all(|b| *b == fill),
                    "step {}: {t:?}: wrote into a buffer too small",
                    self.step
                );
            }
            _ => {}
        }
    }

    /// After every step: the process's live handles and every callback's calls.
    pub(crate) fn invariants(&self, r: &Model) {
        let live = rm_live_objects();
        CALLS.fetch_add(1, SeqCst);
        assert_eq!(
            live,
            self.baseline + r.live_count(),
            "step {}: rm_live_objects (baseline {})",
            self.step,
            self.baseline
        );
        for (id, ctx) in &self.ctxs {
            let h = &r.hs[*id];
            assert_eq!(
                ctx.calls.load(SeqCst),
                h.calls,
                "step {}: close-callback calls of '{}' ({:?}, {:?}{})",
                self.step,
                h.name,
                h.behavior,
                h.owner,
                if h.unregistered { ", unregistered" } else { "" }
            );
            assert_eq!(
                ctx.violations.load(SeqCst),
                0,
                "step {}: callback of '{}': violation",
                self.step,
                h.name
            );
        }
        for ctx in &self.spare {
            assert_eq!(
                ctx.calls.load(SeqCst),
                0,
                "step {}: the callback of a refused (or unregistered churn) registration ran",
                self.step
            );
        }
    }

    /// Destroys the managers as the last steps of the case.
    pub(crate) fn teardown(mut self, mut r: Model) {
        self.step += 1;
        let set = r.live_of(Owner::Main);
        let x = r.run_close(Owner::Main, &set, None, Mode::Graceful);
        let mut e = ErrBuf::new();
        let started = Instant::now();
        let rc = c!(rm_manager_destroy(self.main, e.ptr()));
        self.main_destroyed = true;
        let t = "rm_manager_destroy(main)";
        e.check(rc, &t);
        let allowed: Vec<rm_result> = x.wants.iter().map(|w| self.resolve(*w)).collect();
        assert!(
            allowed.contains(&rc),
            "{t}: {rc:?} ({}), the model expects {allowed:?}",
            e.message()
        );
        if let Data::Closed(ids) = &x.data {
            self.check_order(&r, ids);
        }
        self.check_quick(started, &t);
        // The handle is dead afterwards.
        let mut e = ErrBuf::new();
        let rc = c!(rm_manager_destroy(self.main, e.ptr()));
        e.check(rc, &t);
        assert_eq!(rc, RM_ERR_ALREADY_CLOSED, "a second rm_manager_destroy");
        let mut out = rm_metrics::default();
        let mut e = ErrBuf::new();
        let rc = c!(rm_manager_metrics(self.main, &mut out, e.ptr()));
        e.check(rc, &"rm_metrics");
        assert_eq!(rc, RM_ERR_CLOSED, "rm_metrics on a destroyed manager");
        let late = Ctx::new(0);
        late.unregistered.store(true, SeqCst);
        let (rc, _, _) = register_plain(self.main, "late", &late, &"rm_register");
        assert_eq!(rc, RM_ERR_CLOSED, "rm_register on a destroyed manager");
        self.spare.push(late);
        if r.other_alive {
            let set = r.live_of(Owner::Other);
            let x = r.run_close(Owner::Other, &set, None, Mode::Graceful);
            r.other_alive = false;
            let mut e = ErrBuf::new();
            let rc = c!(rm_manager_destroy(self.other, e.ptr()));
            self.other_destroyed = true;
            e.check(rc, &"rm_manager_destroy(other)");
            assert_eq!(
                Some(&code(rc)),
                x.wants.first(),
                "rm_manager_destroy(other)"
            );
        }
        assert_eq!(r.live_count(), 0);
        self.invariants(&r);
        CALLS.fetch_add(1, SeqCst);
        assert_eq!(
            rm_live_objects(),
            self.baseline,
            "rm_live_objects after destroying the managers"
        );
    }
}

/// rm_get_alloc's allocator in the model run: a leaked Vec of exactly `len` bytes, taken
/// back with `Vec::from_raw_parts` by the step that asked for it.
unsafe extern "C" fn test_alloc(_: *mut c_void, len: usize) -> *mut u8 {
    let mut v = std::mem::ManuallyDrop::new(vec![0u8; len]);
    v.as_mut_ptr()
}
