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
use crate::handle::{Handle, Stored};
use crate::manager::{self, CloseMode, Entry};
use crate::monitor::{CleanupRecord, CleanupStep};
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

/// What the scheduler needs from the manager. The manager sealed the run's set when it chose
/// it, so no dependent can join the run later: the set is the whole job.
pub(crate) trait Closer {
    /// Begins `e`'s close (it refuses new leases from now on): true if this run won it, false
    /// if someone else is closing it (the run then waits for that close to finish).
    fn begin(&self, e: &Stored<Entry>) -> bool;
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

struct Node {
    entry: Arc<Stored<Entry>>,
    /// Its dependencies inside the run.
    deps: Vec<Handle>,
    /// Its dependents inside the run that have not finished.
    waiting: usize,
    state: NodeState,
}

impl Node {
    /// A node not begun yet; its `waiting` is counted once the edges into it are known.
    fn new(entry: Arc<Stored<Entry>>, deps: Vec<Handle>) -> Node {
        Node {
            entry,
            deps,
            waiting: 0,
            state: NodeState::Pending,
        }
    }
}

/// Closes `entries` (given dependents first, each with its dependencies inside the set), as
/// the module documentation describes, and returns when all have finished or the run's final
/// deadline has passed.
pub(crate) fn run_closes(
    run: &Arc<Run>,
    entries: Vec<(Arc<Stored<Entry>>, Vec<Handle>)>,
    closer: &dyn Closer,
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
    for (e, deps) in entries {
        s.order.push(e.handle);
        s.nodes.insert(e.handle, Node::new(e, deps));
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

struct Sched<'a> {
    run: &'a Arc<Run>,
    closer: &'a dyn Closer,
    nodes: FxHashMap<Handle, Node>,
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

impl Sched<'_> {
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
                .all(|n| n.state != NodeState::Watching || manager::past_graceful(&n.entry))
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
            let entry = Arc::clone(&node.entry);
            if self.closer.begin(&entry) {
                self.set_state(h, NodeState::Begun);
                won.push(entry);
            } else {
                self.set_state(h, NodeState::Watching);
                self.watching += 1;
                manager::watch(&entry, self.run);
            }
        }
        let forced = self.escalated;
        let mut deferred = Vec::new();
        let mut won = won.into_iter();
        let mut launched = 0usize;
        while let Some(entry) = won.next() {
            // Checking the clock every 64 launches keeps its cost out of the common case.
            launched += 1;
            if launched.is_multiple_of(64)
                && self.final_deadline.is_some_and(|d| Instant::now() >= d)
            {
                let rest: Vec<_> = std::iter::once(entry).chain(won).collect();
                manager::launch_later(rest, self.run, forced);
                break;
            }
            if forced {
                if manager::start_forced(entry.clone(), self.run, true) {
                    deferred.push(entry);
                }
            } else {
                manager::start_graceful(entry, self.run, true);
            }
        }
        manager::log_deferred(&deferred);
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
                if let Some(f) = manager::close_failure(&n.entry) {
                    failures.push(f);
                }
            } else {
                let names = waiting_on.get(h).map_or(&[][..], Vec::as_slice);
                failures.push(manager::timeout_failure(&n.entry, names));
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
                out.entry(*h).or_default().push(d.entry.value.name());
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
