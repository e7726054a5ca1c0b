//! The scheduler: drives a run's closes through its two phases and reports what did not
//! close cleanly.

use super::run::Run;
use super::Closer;
use crate::error::Failure;
use crate::handle::Handle;
use crate::resource::CloseMode;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

/// What a run reports.
pub(crate) struct Report {
    pub failures: Arc<Vec<Failure>>,
    /// The run escalated to the forced phase with something unfinished.
    pub escalated: bool,
    /// From the run's start to its report.
    pub duration: std::time::Duration,
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

struct RunNode<I> {
    item: I,
    /// Its dependencies inside the run.
    deps: Vec<Handle>,
    /// Its dependents inside the run that have not finished.
    waiting: usize,
    state: NodeState,
}

impl<I> RunNode<I> {
    /// A node not begun yet; its `waiting` is counted once the edges into it are known.
    fn new(item: I, deps: Vec<Handle>) -> RunNode<I> {
        RunNode {
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
        s.nodes.insert(h, RunNode::new(item, deps));
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
    nodes: FxHashMap<Handle, RunNode<C::Item>>,
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
        // The first pass judges the deadline at the run's start (it just began: one clock read
        // fewer for a close that finishes in that pass); later passes read the clock.
        let mut first = true;
        loop {
            self.collect();
            let now = if std::mem::take(&mut first) {
                run.started
            } else {
                Instant::now()
            };
            // Past the graceful phase, or nothing left but closes begun by someone else that are
            // past their own graceful phase (an earlier run that timed out): no graceful work
            // remains to wait for.
            if !self.escalated
                && (run.graceful_deadline.is_some_and(|g| now >= g)
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
        let duration = self.run.started.elapsed();
        log.duration = Some(duration);
        let escalated = log.escalated;
        drop(log);
        Report {
            failures,
            escalated,
            duration,
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
