//! The order of a run: dependents first, and the edges of the "part of" rule. Pure functions
//! of the graph.

use crate::handle::Handle;
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::BinaryHeap;

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
