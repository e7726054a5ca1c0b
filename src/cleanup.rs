//! Ordered closing: the order (dependents first), one close with its deadline, and a sequence
//! of closes that goes on past failures and collects every error.

use crate::error::{rm_result, Failure};
use crate::handle::{Handle, Stored};
use crate::lifecycle::Claim;
use crate::manager::{self, CloseMode, Entry};
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

/// What happened to one resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Natively closed by this call.
    Closed,
    /// The native close ran and failed (the message says why).
    Failed(String),
    /// Forced while operations were in flight: the last one runs the native close.
    Deferred,
    /// Graceful, and operations were still in flight at the deadline: forced, and the last
    /// operation runs the native close.
    TimedOut,
    /// Someone else had already begun closing it.
    AlreadyClosing,
}

/// Orders `set` so that every resource comes before the resources it depends on; among
/// resources that are ready together, the most recently registered comes first. `node` gives
/// a resource's registration sequence number and its dependencies.
pub(crate) fn dependents_first(
    set: &HashSet<Handle>,
    node: impl Fn(Handle) -> Option<(u64, Vec<Handle>)>,
) -> Vec<Handle> {
    let nodes: HashMap<Handle, (u64, Vec<Handle>)> = set
        .iter()
        .filter_map(|h| node(*h).map(|n| (*h, n)))
        .collect();
    // Number of dependents inside the set that must close first.
    let mut waiting: HashMap<Handle, usize> = nodes.keys().map(|h| (*h, 0)).collect();
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
        let placed: HashSet<Handle> = order.iter().copied().collect();
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

/// Closes one resource whose close the caller began (`won`: it was the one `begin_close`
/// winner). A graceful close whose deadline has already passed is forced.
pub(crate) fn close_one(
    entry: &Stored<Entry>,
    won: bool,
    mode: CloseMode,
    deadline: Option<Instant>,
) -> Outcome {
    let life = manager::lifecycle(entry);
    if !won {
        return Outcome::AlreadyClosing;
    }
    let effective = match deadline {
        Some(d) if mode == CloseMode::Graceful && Instant::now() >= d => CloseMode::Forced,
        _ => mode,
    };
    manager::begin(entry, effective == CloseMode::Forced);
    if effective == CloseMode::Graceful {
        life.wait_drained(deadline);
    }
    match life.claim_close() {
        Claim::RunNow => match manager::run_close(entry, effective) {
            None => Outcome::Closed,
            Some(e) => Outcome::Failed(e),
        },
        Claim::Deferred => {
            manager::mark_deferred(entry);
            if mode == CloseMode::Graceful {
                Outcome::TimedOut
            } else {
                Outcome::Deferred
            }
        }
    }
}

/// How the closer may proceed with one resource, decided under the registry lock by
/// [`close_sequence`]'s `begin`.
pub(crate) enum Begin {
    /// The caller won the close: it now refuses new leases and new dependents.
    Won,
    /// Someone else is closing it.
    Lost,
    /// Dependents registered after the set was chosen (none closing yet): close them first,
    /// then ask again. The resource is still open, so they may use it while they close.
    Late(Vec<Arc<Stored<Entry>>>),
}

/// Closes `entries` in the given order (dependents first), going on past failures. `begin`
/// starts one resource's close (see [`Begin`]): a dependent that appeared after the order was
/// computed is closed before what it depends on, like every other. A graceful sequence then
/// waits (until the deadline) for closes left to in-flight operations or begun by someone
/// else, and reports each one still unfinished as timed out.
pub(crate) fn close_sequence(
    entries: &[Arc<Stored<Entry>>],
    mode: CloseMode,
    deadline: Option<Instant>,
    begin: &dyn Fn(&Stored<Entry>, u32) -> Begin,
) -> (Vec<(Handle, Outcome)>, Vec<Failure>) {
    let mut run = Run {
        mode,
        deadline,
        begin,
        outcomes: Vec::with_capacity(entries.len()),
        failures: Vec::new(),
        pending: Vec::new(),
    };
    for e in entries {
        run.close(e);
    }
    for e in std::mem::take(&mut run.pending) {
        let life = manager::lifecycle(&e);
        if !life.wait_done(deadline) {
            run.failures.push(manager::failure(
                &e,
                rm_result::RM_ERR_TIMEOUT,
                format!(
                    "did not finish closing by the deadline ({} operation(s) or dependent(s) still holding it; it closes when they end)",
                    life.leases()
                ),
            ));
        }
    }
    (run.outcomes, run.failures)
}

struct Run<'a> {
    mode: CloseMode,
    deadline: Option<Instant>,
    begin: &'a dyn Fn(&Stored<Entry>, u32) -> Begin,
    outcomes: Vec<(Handle, Outcome)>,
    failures: Vec<Failure>,
    pending: Vec<Arc<Stored<Entry>>>,
}

impl Run<'_> {
    fn close(&mut self, e: &Arc<Stored<Entry>>) {
        let mut attempt = 0;
        let won = loop {
            match (self.begin)(e, attempt) {
                Begin::Won => break true,
                Begin::Lost => break false,
                Begin::Late(late) => {
                    for d in &late {
                        self.close(d);
                    }
                    attempt += 1;
                }
            }
        };
        let outcome = close_one(e, won, self.mode, self.deadline);
        match &outcome {
            Outcome::Failed(msg) => self.failures.push(manager::failure(
                e,
                rm_result::RM_ERR_CLOSE_FAILED,
                msg.clone(),
            )),
            Outcome::TimedOut | Outcome::AlreadyClosing if self.mode == CloseMode::Graceful => {
                self.pending.push(Arc::clone(e))
            }
            _ => {}
        }
        self.outcomes.push((e.handle, outcome));
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
        let deps: HashMap<Handle, (u64, Vec<Handle>)> = [
            (h[0], (1, vec![])),
            (h[1], (2, vec![h[0]])),
            (h[2], (3, vec![h[0]])),
            (h[3], (4, vec![h[1]])),
            (h[4], (5, vec![])),
        ]
        .into_iter()
        .collect();
        let set: HashSet<Handle> = h.iter().copied().collect();
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
        let set: HashSet<Handle> = [b].into_iter().collect();
        let order = dependents_first(&set, |x| (x == b).then(|| (2, vec![a])));
        assert_eq!(order, vec![b]);
    }
}
