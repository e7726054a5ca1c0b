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

/// How one resource's close may begin, decided under the registry lock by a [`Closer`].
pub(crate) enum Begin {
    /// The caller won the close: it now refuses new leases and new dependents.
    Won,
    /// Someone else is closing it.
    Lost,
    /// Dependents registered after the set was chosen (none closing yet): close them first,
    /// then ask again. The resource is still open, so they may use it while they close.
    Late(Vec<Arc<Stored<Entry>>>),
}

/// What the scheduler needs from the manager.
pub(crate) trait Closer {
    /// Under the registry lock: begins `e`'s close, or names late dependents (see [`Begin`]);
    /// `attempt` counts earlier `Late` answers for `e`.
    fn begin(&self, e: &Stored<Entry>, attempt: u32) -> Begin;
    /// The registered dependencies of `h`.
    fn deps(&self, h: Handle) -> Vec<Handle>;
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
    errors: Vec<String>,
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
            errors: log.errors.clone(),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What a run reports.
pub(crate) struct Report {
    pub failures: Vec<Failure>,
    /// The run escalated to the forced phase with something unfinished.
    pub escalated: bool,
    /// `lost` was someone else's close already (for `rm_close`: "already closed").
    pub lost: Vec<Handle>,
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
    attempts: u32,
}

impl Node {
    /// A node not begun yet; its `waiting` is counted once the edges into it are known.
    fn new(entry: Arc<Stored<Entry>>, deps: Vec<Handle>) -> Node {
        Node {
            entry,
            deps,
            waiting: 0,
            state: NodeState::Pending,
            attempts: 0,
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
        lost: Vec::new(),
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
    lost: Vec<Handle>,
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
            let now = Instant::now();
            // Past the graceful phase, or nothing left but closes begun by someone else that are
            // past their own graceful phase (an earlier run that timed out): no graceful work
            // remains to wait for.
            let only_watched = self.watching > 0
                && self.watching == self.nodes.len() - self.done
                && self
                    .nodes
                    .values()
                    .all(|n| n.state != NodeState::Watching || manager::past_graceful(&n.entry));
            if !self.escalated && (run.graceful_deadline.is_some_and(|g| now >= g) || only_watched)
            {
                self.escalate();
            }
            while let Some(h) = self.ready.pop_front() {
                self.start(h);
            }
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

    fn start(&mut self, h: Handle) {
        let Some(node) = self.nodes.get(&h) else {
            return;
        };
        // In the graceful phase a node waits for its dependents in the run (a late one may
        // have joined since it was queued); finishing them queues it again.
        if node.state != NodeState::Pending || (!self.escalated && node.waiting > 0) {
            return;
        }
        let entry = Arc::clone(&node.entry);
        match self.closer.begin(&entry, node.attempts) {
            Begin::Late(late) => {
                if let Some(n) = self.nodes.get_mut(&h) {
                    n.attempts += 1;
                }
                for l in late {
                    self.add_late(l, h);
                }
                if self.escalated {
                    // Started after the late dependents, which are ahead of it in `ready`.
                    self.ready.push_back(h);
                }
            }
            Begin::Won => {
                self.set_state(h, NodeState::Begun);
                if self.escalated {
                    manager::start_forced(entry, self.run);
                } else {
                    manager::start_graceful(entry, self.run);
                }
            }
            Begin::Lost => {
                self.set_state(h, NodeState::Watching);
                self.watching += 1;
                self.lost.push(h);
                manager::watch(&entry, self.run);
            }
        }
    }

    fn set_state(&mut self, h: Handle, state: NodeState) {
        if let Some(n) = self.nodes.get_mut(&h) {
            n.state = state;
        }
    }

    /// A dependent of `of` registered after the run chose its set: it joins the run, ahead of
    /// what it depends on. The edge to `of` is recorded whatever the registry says by now (the
    /// dependent may have been added with `add_dependency`, or have closed meanwhile), so `of`
    /// is queued again when the dependent finishes.
    fn add_late(&mut self, e: Arc<Stored<Entry>>, of: Handle) {
        let h = e.handle;
        if let Some(existing) = self.nodes.get_mut(&h) {
            if existing.state == NodeState::Done {
                self.ready.push_back(of);
                return;
            }
            if !existing.deps.contains(&of) {
                existing.deps.push(of);
                if let Some(n) = self.nodes.get_mut(&of) {
                    n.waiting += 1;
                }
            }
            return;
        }
        let mut deps: Vec<Handle> = self
            .closer
            .deps(h)
            .into_iter()
            .filter(|d| self.nodes.contains_key(d))
            .collect();
        if !deps.contains(&of) {
            deps.push(of);
        }
        for d in &deps {
            if let Some(n) = self.nodes.get_mut(d) {
                if n.state != NodeState::Done {
                    n.waiting += 1;
                }
            }
        }
        self.order.insert(0, h);
        self.nodes.insert(h, Node::new(e, deps));
        self.ready.push_front(h);
    }

    fn report(self) -> Report {
        let mut failures = Vec::new();
        for h in &self.order {
            let n = &self.nodes[h];
            if n.state == NodeState::Done {
                if let Some(f) = manager::close_failure(&n.entry) {
                    failures.push(f);
                }
            } else {
                failures.push(manager::timeout_failure(&n.entry, self.waiting_on(n)));
            }
        }
        let mut log = self.run.log.lock();
        log.resources = self.nodes.len() as u64;
        log.errors = failures
            .iter()
            .map(|f| format!("{}: {}", f.name, f.message))
            .collect();
        log.duration = Some(self.run.started.elapsed());
        drop(log);
        Report {
            failures,
            escalated: self.run.log.lock().escalated,
            lost: self.lost,
        }
    }

    /// Names of the unfinished dependents of `n` inside the run.
    fn waiting_on(&self, n: &Node) -> Vec<String> {
        let mut names: Vec<String> = self
            .nodes
            .values()
            .filter(|d| d.state != NodeState::Done && d.deps.contains(&n.entry.handle))
            .map(|d| d.entry.value.name().to_owned())
            .collect();
        names.sort();
        names
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
