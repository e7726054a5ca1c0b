//! The scheduler on pure graphs: a fake closer, no threads, no RocksDB.

use super::*;
use crate::handle::{HandleTable, Kind};
use crate::resource::CloseMode;
use rustc_hash::{FxHashMap, FxHashSet};
use std::cell::RefCell;
use std::time::Duration;

/// A closer over plain handles, on the scheduler's own thread: what it began and started
/// (and how), and which closes finish at once ("quick") or never ("hung").
#[derive(Default)]
struct Fake {
    names: FxHashMap<Handle, String>,
    hung: FxHashSet<Handle>,
    /// Closes someone else began (the run only watches them).
    taken: FxHashSet<Handle>,
    log: RefCell<Vec<String>>,
}

impl Closer for Fake {
    type Item = Handle;
    fn handle(&self, h: &Handle) -> Handle {
        *h
    }
    fn name<'a>(&'a self, h: &'a Handle) -> &'a str {
        &self.names[h]
    }
    fn begin(&self, h: &Handle) -> bool {
        self.log
            .borrow_mut()
            .push(format!("begin {}", self.names[h]));
        !self.taken.contains(h)
    }
    fn start(&self, h: Handle, run: &Arc<Run>, forced: bool, _inline: bool) -> bool {
        let how = if forced { "forced" } else { "graceful" };
        self.log
            .borrow_mut()
            .push(format!("start {} {how}", self.names[&h]));
        if !self.hung.contains(&h) {
            run.finished(h, None);
        }
        false
    }
    fn start_later(&self, items: Vec<Handle>, run: &Arc<Run>, forced: bool) {
        for h in items {
            self.start(h, run, forced, false);
        }
    }
    fn deferred(&self, _items: &[Handle]) {}
    fn watch(&self, h: &Handle, run: &Arc<Run>) {
        self.log
            .borrow_mut()
            .push(format!("watch {}", self.names[h]));
        run.finished(*h, None);
    }
    fn past_graceful(&self, _h: &Handle) -> bool {
        false
    }
    fn failure(&self, _h: &Handle) -> Option<Failure> {
        None
    }
    fn timeout(&self, h: &Handle, waiting_on: &[&str]) -> Failure {
        Failure {
            name: self.names[h].clone(),
            handle: *h,
            code: crate::error::rm_result::RM_ERR_TIMEOUT,
            message: format!("waiting on {waiting_on:?}"),
        }
    }
}

/// A graph of `n` handles named "r0".."r{n-1}"; `edges` are (dependent, dependency).
fn graph(
    n: usize,
    edges: &[(usize, usize)],
) -> (Vec<Handle>, Fake, FxHashMap<Handle, Vec<Handle>>) {
    let t: HandleTable<()> = HandleTable::new(11);
    let h: Vec<Handle> = (0..n)
        .map(|_| t.insert_with(Kind::Foreign, |_| ()).unwrap())
        .collect();
    let mut fake = Fake::default();
    let mut deps: FxHashMap<Handle, Vec<Handle>> = FxHashMap::default();
    for (i, x) in h.iter().enumerate() {
        fake.names.insert(*x, format!("r{i}"));
        deps.insert(*x, Vec::new());
    }
    for (a, b) in edges {
        deps.get_mut(&h[*a]).unwrap().push(h[*b]);
    }
    (h, fake, deps)
}

fn run_graph(
    h: &[Handle],
    fake: &Fake,
    deps: &FxHashMap<Handle, Vec<Handle>>,
    mode: CloseMode,
    graceful: Duration,
) -> Report {
    let set: FxHashSet<Handle> = h.iter().copied().collect();
    let order = dependents_first(&set, |x| {
        let seq = h.iter().position(|y| *y == x).unwrap() as u64;
        Some((seq, deps[&x].clone()))
    });
    let run = Run::new(
        "test",
        None,
        mode,
        Bounds {
            graceful,
            forced: Duration::ZERO,
        },
    );
    let entries = order.iter().map(|x| (*x, deps[x].clone())).collect();
    run_closes(&run, entries, fake)
}

fn position(log: &[String], what: &str) -> usize {
    log.iter()
        .position(|l| l == what)
        .unwrap_or_else(|| panic!("{what} not in {log:?}"))
}

#[test]
fn a_graceful_run_starts_each_close_after_its_dependents_finished() {
    // r1 and r2 depend on r0; r3 on r1; r4 alone.
    let (h, fake, deps) = graph(5, &[(1, 0), (2, 0), (3, 1)]);
    let report = run_graph(
        &h,
        &fake,
        &deps,
        CloseMode::Graceful,
        Duration::from_secs(60),
    );
    assert!(report.failures.is_empty() && !report.escalated);
    let log = fake.log.borrow();
    for (dependent, dependency) in [("r1", "r0"), ("r2", "r0"), ("r3", "r1")] {
        assert!(
            position(&log, &format!("start {dependent} graceful"))
                < position(&log, &format!("begin {dependency}")),
            "{log:?}"
        );
    }
    // Independent resources are ready together: r4, r3 and r2 begin before any of them
    // has to wait for another.
    let first_three: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with("begin"))
        .take(3)
        .collect();
    assert_eq!(first_three, ["begin r4", "begin r3", "begin r2"], "{log:?}");
}

#[test]
fn a_forced_run_begins_everything_before_starting_any_close() {
    let (h, fake, deps) = graph(4, &[(1, 0), (2, 1), (3, 0)]);
    let report = run_graph(&h, &fake, &deps, CloseMode::Forced, Duration::ZERO);
    assert!(report.failures.is_empty());
    let log = fake.log.borrow();
    let last_begin = log.iter().rposition(|l| l.starts_with("begin")).unwrap();
    let first_start = log.iter().position(|l| l.starts_with("start")).unwrap();
    assert!(last_begin < first_start, "{log:?}");
    assert!(log
        .iter()
        .filter(|l| l.starts_with("start"))
        .all(|l| l.ends_with("forced")));
    assert!(position(&log, "start r2 forced") < position(&log, "start r1 forced"));
}

#[test]
fn a_hung_close_escalates_and_is_reported_with_what_waits_for_it() {
    // r1 depends on r0 and hangs; r2 is independent.
    let (h, mut fake, deps) = graph(3, &[(1, 0)]);
    fake.hung.insert(h[1]);
    let report = run_graph(
        &h,
        &fake,
        &deps,
        CloseMode::Graceful,
        Duration::from_millis(1),
    );
    assert!(report.escalated);
    let names: Vec<&str> = report.failures.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["r1"], "r0 is forced and finishes; r1 never does");
    let log = fake.log.borrow();
    assert!(log.contains(&"start r0 forced".to_owned()), "{log:?}");
    assert!(log.contains(&"start r2 graceful".to_owned()), "{log:?}");
}

#[test]
fn a_resource_closed_by_someone_else_is_watched_not_started() {
    let (h, mut fake, deps) = graph(2, &[(1, 0)]);
    fake.taken.insert(h[1]);
    let report = run_graph(
        &h,
        &fake,
        &deps,
        CloseMode::Graceful,
        Duration::from_secs(60),
    );
    assert!(report.failures.is_empty());
    let log = fake.log.borrow();
    assert!(log.contains(&"watch r1".to_owned()));
    assert!(!log.iter().any(|l| l.starts_with("start r1")));
    assert!(position(&log, "watch r1") < position(&log, "begin r0"));
}

#[test]
fn parts_close_after_the_other_dependents_of_their_whole() {
    // r0 a DB; r1, r2 its column families (parts); r3 a worker on r0; r4 an iterator on
    // r1; r5 something r1 depends on besides r0 (no edge back to it).
    let (h, _, mut deps) = graph(6, &[(1, 0), (1, 5), (2, 0), (3, 0), (4, 1), (5, 0)]);
    let parts: FxHashSet<Handle> = [h[1], h[2]].into_iter().collect();
    add_part_edges(&mut deps, &parts);
    assert!(
        deps[&h[3]].contains(&h[1]) && deps[&h[3]].contains(&h[2]),
        "the worker closes before both parts"
    );
    assert!(
        !deps[&h[1]].contains(&h[2]) && !deps[&h[2]].contains(&h[1]),
        "no edge between parts"
    );
    assert!(
        !deps[&h[5]].contains(&h[1]),
        "no edge from what the part depends on"
    );
    assert!(
        deps[&h[5]].contains(&h[2]),
        "another part still waits for it"
    );
    assert_eq!(
        deps[&h[4]],
        vec![h[1]],
        "the part's own dependent is unchanged"
    );
}

#[test]
fn dependents_come_first_and_newest_first_among_peers() {
    let t: HandleTable<()> = HandleTable::new(9);
    let h: Vec<Handle> = (0..5)
        .map(|_| t.insert_with(Kind::Foreign, |_| ()).unwrap())
        .collect();
    // 0 <- 1 <- 3 ; 0 <- 2 ; 4 independent.  (a <- b: b depends on a)
    let deps: FxHashMap<Handle, (u64, Vec<Handle>)> = [
        (h[0], (1, vec![])),
        (h[1], (2, vec![h[0]])),
        (h[2], (3, vec![h[0]])),
        (h[3], (4, vec![h[1]])),
        (h[4], (5, vec![])),
    ]
    .into_iter()
    .collect();
    let set: FxHashSet<Handle> = h.iter().copied().collect();
    let order = dependents_first(&set, |x| deps.get(&x).cloned());
    let pos = |x: Handle| order.iter().position(|y| *y == x).unwrap();
    assert_eq!(order.len(), 5);
    assert!(pos(h[3]) < pos(h[1]));
    assert!(pos(h[1]) < pos(h[0]));
    assert!(pos(h[2]) < pos(h[0]));
    assert_eq!(order[0], h[4], "newest ready resource first");
    assert_eq!(*order.last().unwrap(), h[0]);
}

#[test]
fn a_subset_ignores_edges_leaving_it() {
    let t: HandleTable<()> = HandleTable::new(10);
    let a = t.insert_with(Kind::Foreign, |_| ()).unwrap();
    let b = t.insert_with(Kind::Foreign, |_| ()).unwrap();
    let set: FxHashSet<Handle> = [b].into_iter().collect();
    let order = dependents_first(&set, |x| (x == b).then(|| (2, vec![a])));
    assert_eq!(order, vec![b]);
}
