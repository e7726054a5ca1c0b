//! Ordered closing: the order (dependents first), and the scheduler of a cleanup run.
//!
//! A run has two phases. In the graceful phase (until `cleanup_timeout`) a resource's close
//! begins only when every resource that depends on it has finished closing, so a dependent's
//! close may still use what it depends on; resources that do not depend on each other close
//! at the same time, each on a thread of [`crate::executor`], so a close that hangs holds up
//! only what depends on it. Whatever is unfinished when the graceful phase ends is forced:
//! every resource not begun yet begins at once (the lease protocol still makes each native
//! close wait for its dependents'), and the run waits `force_cleanup_timeout` more. What is
//! still unfinished then is reported as timed out, by name and state, and closes whenever
//! what holds it lets go. A forced run is the forced phase alone.

use crate::error::Failure;
use crate::handle::Handle;
use crate::records::{CleanupRecord, CleanupStep};
use crate::resource::CloseMode;
use parking_lot::{Condvar, Mutex};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Orders `set` so that every resource comes before the resources it depends on; among
/// resources that are ready together, the most recently registered comes first. `node` gives
/// a resource's registration sequence number and its dependencies.
pub(crate) fn dependents_first(
    set: &FxHashSet<Handle>,
    node: impl Fn(Handle) -> Option<(u64, Vec<Handle>)>,
) -> Vec<Handle> {
    let nodes: FxHashMap<Handle, (u64, Vec<Handle>)> = set
        .iter()
        .filter_map(|h| node(*h).map(|n| (*h, n)))
        .collect();
    // Number of dependents inside the set that must close first.
    let mut waiting: FxHashMap<Handle, usize> = nodes.keys().map(|h| (*h, 0)).collect();
    for (_, deps) in nodes.values() {
        for d in deps {
            if let Some(w) = waiting.get_mut(d) {
                *w += 1;
            }
        }
    }
    let mut ready: BinaryHeap<(u64, Handle)> = waiting
        .iter()
        .filter(|(_, w)| **w == 0)
        .map(|(h, _)| (nodes[h].0, *h))
        .collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some((_, h)) = ready.pop() {
        order.push(h);
        for d in &nodes[&h].1 {
            if let Some(w) = waiting.get_mut(d) {
                *w -= 1;
                if *w == 0 {
                    ready.push((nodes[d].0, *d));
                }
            }
        }
    }
    if order.len() < nodes.len() {
        // Unreachable while registration refuses cycles; close the rest newest first anyway.
        let placed: FxHashSet<Handle> = order.iter().copied().collect();
        let mut rest: Vec<_> = nodes
            .keys()
            .filter(|h| !placed.contains(h))
            .copied()
            .collect();
        rest.sort_by_key(|h| std::cmp::Reverse(nodes[h].0));
        order.extend(rest);
    }
    order
}

/// Adds the edges of the "part of" rule to `deps` (each resource's dependencies inside a run):
/// a part (a column family) closes only after everything else that depends on the same whole
/// (its DB), so a dependent of the DB (a worker flushing at shutdown) may still use the DB's
/// column families in its own close. In scheduling terms each such dependent "depends on" the
/// part. No edge is added from something the part itself closes before (that would be a
/// cycle), nor between two parts.
pub(crate) fn add_part_edges(deps: &mut FxHashMap<Handle, Vec<Handle>>, parts: &FxHashSet<Handle>) {
    let mut dependents: FxHashMap<Handle, Vec<Handle>> = FxHashMap::default();
    for (h, ds) in deps.iter() {
        for d in ds {
            dependents.entry(*d).or_default().push(*h);
        }
    }
    for p in parts {
        // What the part already closes before (transitively).
        let mut before: FxHashSet<Handle> = FxHashSet::default();
        let mut stack: Vec<Handle> = deps.get(p).cloned().unwrap_or_default();
        while let Some(h) = stack.pop() {
            if before.insert(h) {
                stack.extend(deps.get(&h).into_iter().flatten().copied());
            }
        }
        for whole in deps.get(p).cloned().unwrap_or_default() {
            for x in dependents.get(&whole).into_iter().flatten() {
                if parts.contains(x) || before.contains(x) {
                    continue;
                }
                if let Some(d) = deps.get_mut(x) {
                    if !d.contains(p) {
                        d.push(*p);
                    }
                }
            }
        }
    }
}

/// What the scheduler needs from the manager, and all it knows of it. The manager sealed the
/// run's set when it chose it, so no dependent can join the run later: the set is the whole
/// job. Every close the run starts tells the run when it has finished, through
/// [`Run::finished`].
pub(crate) trait Closer {
    /// One resource of the run (an `Arc`: cheap to clone, and sent to the close pool).
    type Item: Clone + Send + 'static;
    fn handle(&self, item: &Self::Item) -> Handle;
    fn name<'a>(&'a self, item: &'a Self::Item) -> &'a str;
    /// Begins the close (the resource refuses new leases from now on): true if this run won
    /// it, false if someone else is closing it.
    fn begin(&self, item: &Self::Item) -> bool;
    /// Starts the close this run won: graceful (wait for operations until the graceful
    /// deadline, then close) or forced. `inline`: a quick close may run on this thread.
    /// Returns true when a forced close was left to what still holds the resource.
    fn start(&self, item: Self::Item, run: &Arc<Run>, forced: bool, inline: bool) -> bool;
    /// Starts those closes on another thread (the run has no time left to).
    fn start_later(&self, items: Vec<Self::Item>, run: &Arc<Run>, forced: bool);
    /// Reports the forced closes left to what still holds them (one event for the batch).
    fn deferred(&self, items: &[Self::Item]);
    /// Makes `run` hear when someone else's close of the item finishes.
    fn watch(&self, item: &Self::Item, run: &Arc<Run>);
    /// Someone else's close of the item is past its own graceful phase.
    fn past_graceful(&self, item: &Self::Item) -> bool;
    /// The failure of a finished close, if it failed.
    fn failure(&self, item: &Self::Item) -> Option<Failure>;
    /// The failure of a close unfinished at the final deadline; `waiting_on` names its
    /// unfinished dependents in the run.
    fn timeout(&self, item: &Self::Item, waiting_on: &[&str]) -> Failure;
}

/// The bounds of a run: the graceful phase, then the forced phase.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    pub graceful: Duration,
    pub forced: Duration,
}

#[derive(Default)]
struct RunLog {
    steps: Vec<CleanupStep>,
    escalated: bool,
    resources: u64,
    duration: Option<Duration>,
    /// What did not close cleanly (shared with the caller's error, not copied).
    failures: Arc<Vec<Failure>>,
}

/// One cleanup run: its deadlines, the channel by which finished closes reach the scheduler,
/// and the record shown in the status document. Shared (`Arc`) with the resources it
/// closes, so a close that finishes after the run returned still lands in its record.
pub(crate) struct Run {
    operation: &'static str,
    target: Option<String>,
    mode: CloseMode,
    bounds: Bounds,
    pub(crate) started: Instant,
    /// End of the graceful phase (None: no bound). For a forced run, its start.
    pub(crate) graceful_deadline: Option<Instant>,
    /// End of the forced phase (None: no bound).
    pub(crate) final_deadline: Option<Instant>,
    finished: Mutex<Vec<Handle>>,
    cv: Condvar,
    log: Mutex<RunLog>,
}

impl Run {
    pub(crate) fn new(
        operation: &'static str,
        target: Option<String>,
        mode: CloseMode,
        bounds: Bounds,
    ) -> Arc<Run> {
        let started = Instant::now();
        let graceful = match mode {
            CloseMode::Graceful => bounds.graceful,
            CloseMode::Forced => Duration::ZERO,
        };
        let graceful_deadline = started.checked_add(graceful);
        let final_deadline = graceful_deadline.and_then(|g| g.checked_add(bounds.forced));
        Arc::new(Run {
            operation,
            target,
            mode,
            bounds,
            started,
            graceful_deadline,
            final_deadline,
            finished: Mutex::new(Vec::new()),
            cv: Condvar::new(),
            log: Mutex::new(RunLog::default()),
        })
    }

    /// Milliseconds from the run's start to `t`.
    pub(crate) fn offset_ms(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.started).as_secs_f64() * 1e3
    }

    /// Records a finished close (called by whoever ran it, after the dependencies were let
    /// go) and wakes the scheduler.
    pub(crate) fn finished(&self, handle: Handle, step: Option<CleanupStep>) {
        if let Some(step) = step {
            self.log.lock().steps.push(step);
        }
        self.finished.lock().push(handle);
        self.cv.notify_all();
    }

    /// The record for the status document.
    pub(crate) fn record(&self) -> CleanupRecord {
        let log = self.log.lock();
        let mut steps = log.steps.clone();
        steps.sort_by(|a, b| a.started_ms.total_cmp(&b.started_ms));
        CleanupRecord {
            operation: self.operation,
            target: self.target.clone(),
            mode: match self.mode {
                CloseMode::Graceful => "graceful",
                CloseMode::Forced => "forced",
            },
            graceful_timeout_ms: match self.mode {
                CloseMode::Graceful => millis(self.bounds.graceful),
                CloseMode::Forced => 0,
            },
            force_timeout_ms: millis(self.bounds.forced),
            age_ms: millis(self.started.elapsed()),
            duration_ms: log.duration.map(|d| d.as_secs_f64() * 1e3),
            escalated: log.escalated,
            resources: log.resources,
            order: steps.iter().map(|s| s.name.clone()).collect(),
            steps,
            errors: log
                .failures
                .iter()
                .map(|f| format!("{}: {}", f.name, f.message))
                .collect(),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What a run reports.
pub(crate) struct Report {
    pub failures: Arc<Vec<Failure>>,
    /// The run escalated to the forced phase with something unfinished.
    pub escalated: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum NodeState {
    Pending,
    /// This run began its close.
    Begun,
    /// Someone else is closing it; this run waits for it.
    Watching,
    Done,
}

struct Node<I> {
    item: I,
    /// Its dependencies inside the run.
    deps: Vec<Handle>,
    /// Its dependents inside the run that have not finished.
    waiting: usize,
    state: NodeState,
}

impl<I> Node<I> {
    /// A node not begun yet; its `waiting` is counted once the edges into it are known.
    fn new(item: I, deps: Vec<Handle>) -> Node<I> {
        Node {
            item,
            deps,
            waiting: 0,
            state: NodeState::Pending,
        }
    }
}

/// Closes `entries` (given dependents first, each with its dependencies inside the set), as
/// the module documentation describes, and returns when all have finished or the run's final
/// deadline has passed.
pub(crate) fn run_closes<C: Closer>(
    run: &Arc<Run>,
    entries: Vec<(C::Item, Vec<Handle>)>,
    closer: &C,
) -> Report {
    let mut s = Sched {
        run,
        closer,
        nodes: FxHashMap::with_capacity_and_hasher(entries.len(), Default::default()),
        order: Vec::with_capacity(entries.len()),
        ready: VecDeque::new(),
        escalated: false,
        done: 0,
        watching: 0,
        final_deadline: run.final_deadline,
    };
    for (item, deps) in entries {
        let h = closer.handle(&item);
        s.order.push(h);
        s.nodes.insert(h, Node::new(item, deps));
    }
    let edges: Vec<Handle> = s.nodes.values().flat_map(|n| n.deps.clone()).collect();
    for d in edges {
        if let Some(n) = s.nodes.get_mut(&d) {
            n.waiting += 1;
        }
    }
    s.ready = s
        .order
        .iter()
        .copied()
        .filter(|h| s.nodes[h].waiting == 0)
        .collect();
    s.drive();
    s.report()
}

struct Sched<'a, C: Closer> {
    run: &'a Arc<Run>,
    closer: &'a C,
    nodes: FxHashMap<Handle, Node<C::Item>>,
    /// Dependents first: the order of escalation.
    order: Vec<Handle>,
    ready: VecDeque<Handle>,
    escalated: bool,
    done: usize,
    /// Nodes in state Watching.
    watching: usize,
    /// End of the forced phase (set when it begins).
    final_deadline: Option<Instant>,
}

impl<C: Closer> Sched<'_, C> {
    fn drive(&mut self) {
        let run = Arc::clone(self.run);
        loop {
            self.collect();
            // Past the graceful phase, or nothing left but closes begun by someone else that are
            // past their own graceful phase (an earlier run that timed out): no graceful work
            // remains to wait for.
            if !self.escalated
                && (run.graceful_deadline.is_some_and(|g| Instant::now() >= g)
                    || self.only_watched_past_graceful())
            {
                self.escalate();
            }
            self.start_ready();
            self.collect();
            if self.done == self.nodes.len() {
                return;
            }
            if !self.ready.is_empty() {
                continue;
            }
            let until = if self.escalated {
                self.final_deadline
            } else {
                run.graceful_deadline
            };
            let mut finished = run.finished.lock();
            if finished.is_empty() {
                match until {
                    None => run.cv.wait(&mut finished),
                    Some(t) => {
                        if Instant::now() >= t {
                            if self.escalated {
                                return;
                            }
                            continue;
                        }
                        let _ = run.cv.wait_until(&mut finished, t);
                    }
                }
            }
        }
    }

    /// Takes the finished closes the run has been told about.
    fn collect(&mut self) {
        let finished = std::mem::take(&mut *self.run.finished.lock());
        for h in finished {
            self.mark_done(h);
        }
    }

    fn mark_done(&mut self, h: Handle) {
        let Some(node) = self.nodes.get_mut(&h) else {
            return;
        };
        if node.state == NodeState::Done {
            return;
        }
        if node.state == NodeState::Watching {
            self.watching -= 1;
        }
        node.state = NodeState::Done;
        self.done += 1;
        let deps = node.deps.clone();
        for d in deps {
            if let Some(n) = self.nodes.get_mut(&d) {
                n.waiting = n.waiting.saturating_sub(1);
                if n.waiting == 0 && n.state == NodeState::Pending && !self.escalated {
                    self.ready.push_back(d);
                }
            }
        }
    }

    /// The graceful phase is over: everything not begun begins now, forced. The forced phase
    /// lasts its bound from now (earlier than planned when the graceful phase ended early).
    fn escalate(&mut self) {
        self.escalated = true;
        let early = Instant::now().checked_add(self.run.bounds.forced);
        self.final_deadline = match (self.run.final_deadline, early) {
            (Some(planned), Some(e)) => Some(planned.min(e)),
            (planned, e) => planned.or(e),
        };
        if self.run.mode == CloseMode::Graceful && self.done < self.nodes.len() {
            self.run.log.lock().escalated = true;
        }
        self.ready = self
            .order
            .iter()
            .copied()
            .filter(|h| self.nodes[h].state == NodeState::Pending)
            .collect();
    }

    /// Nothing left but closes begun by someone else, each past its own graceful phase.
    fn only_watched_past_graceful(&self) -> bool {
        self.watching > 0
            && self.watching == self.nodes.len() - self.done
            && self
                .nodes
                .values()
                .all(|n| n.state != NodeState::Watching || self.closer.past_graceful(&n.item))
    }

    /// Starts the closes of everything ready: first every one of them begins (stops taking
    /// leases), then their closes are launched. In the forced phase a whole batch is ready at
    /// once, dependents and what they depend on together; beginning them all first means a
    /// dependent's close, launched first, already finds what it depends on refusing new
    /// operations, as a forced close promises. The launches that remain once the run's final
    /// deadline has passed are handed to the close pool, so the run returns on time however
    /// many there are.
    fn start_ready(&mut self) {
        let batch: Vec<Handle> = self.ready.drain(..).collect();
        let mut won = Vec::with_capacity(batch.len());
        for h in batch {
            let Some(node) = self.nodes.get(&h) else {
                continue;
            };
            // In the graceful phase a node waits for its dependents in the run; finishing
            // them queues it again.
            if node.state != NodeState::Pending || (!self.escalated && node.waiting > 0) {
                continue;
            }
            let item = node.item.clone();
            if self.closer.begin(&item) {
                self.set_state(h, NodeState::Begun);
                won.push(item);
            } else {
                self.set_state(h, NodeState::Watching);
                self.watching += 1;
                self.closer.watch(&item, self.run);
            }
        }
        let forced = self.escalated;
        let mut deferred = Vec::new();
        let mut won = won.into_iter();
        let mut launched = 0usize;
        while let Some(item) = won.next() {
            // Checking the clock every 64 launches keeps its cost out of the common case.
            launched += 1;
            if launched.is_multiple_of(64)
                && self.final_deadline.is_some_and(|d| Instant::now() >= d)
            {
                let rest: Vec<_> = std::iter::once(item).chain(won).collect();
                self.closer.start_later(rest, self.run, forced);
                break;
            }
            if self.closer.start(item.clone(), self.run, forced, true) {
                deferred.push(item);
            }
        }
        if !deferred.is_empty() {
            self.closer.deferred(&deferred);
        }
    }

    fn set_state(&mut self, h: Handle, state: NodeState) {
        if let Some(n) = self.nodes.get_mut(&h) {
            n.state = state;
        }
    }

    fn report(self) -> Report {
        let waiting_on = self.waiting_on();
        let mut failures = Vec::new();
        for h in &self.order {
            let n = &self.nodes[h];
            if n.state == NodeState::Done {
                if let Some(f) = self.closer.failure(&n.item) {
                    failures.push(f);
                }
            } else {
                let names = waiting_on.get(h).map_or(&[][..], Vec::as_slice);
                failures.push(self.closer.timeout(&n.item, names));
            }
        }
        let failures = Arc::new(failures);
        let mut log = self.run.log.lock();
        log.resources = self.nodes.len() as u64;
        log.failures = Arc::clone(&failures);
        log.duration = Some(self.run.started.elapsed());
        let escalated = log.escalated;
        drop(log);
        Report {
            failures,
            escalated,
        }
    }

    /// For each resource, the names of its unfinished dependents inside the run (sorted):
    /// one pass over the edges, borrowing the names, whatever the number left unfinished.
    fn waiting_on(&self) -> FxHashMap<Handle, Vec<&str>> {
        let mut out: FxHashMap<Handle, Vec<&str>> = FxHashMap::default();
        for d in self.nodes.values() {
            if d.state == NodeState::Done {
                continue;
            }
            for h in &d.deps {
                out.entry(*h).or_default().push(self.closer.name(&d.item));
            }
        }
        for names in out.values_mut() {
            names.sort_unstable();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handle::{HandleTable, Kind};
    use std::cell::RefCell;

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
}
