//! The registry of one manager: names, the dependency graph, and the walks over it.

use super::*;

pub(super) struct Node {
    pub(super) seq: u64,
    pub(super) deps: Vec<Handle>,
    pub(super) dependents: FxHashSet<Handle>,
    /// A close of this resource has been asked for (a close, cleanup or destroy chose it, or
    /// an unregister took it): from then on it takes no new dependent, and every other close
    /// or unregister of it is told it is already closed. Set once, under the registry lock, so
    /// exactly one caller is told it won.
    pub(super) sealed: bool,
}

#[derive(Default)]
pub(super) struct Registry {
    pub(super) names: FxHashMap<Arc<str>, Handle>,
    pub(super) nodes: FxHashMap<Handle, Node>,
    pub(super) seq: u64,
    /// Cleanups of the whole manager (cleanup, destroy) running now: while there is one, new
    /// registrations are refused, so what a cleanup closes is what it chose and its bounds
    /// hold whatever other threads do.
    pub(super) cleanups: u32,
}

impl Registry {
    /// Adds a new resource's node (the newest so far), its name, and the edges to its
    /// dependencies.
    pub(super) fn add(&mut self, h: Handle, name: Arc<str>, deps: Vec<Handle>) {
        self.seq += 1;
        self.names.insert(name, h);
        for d in &deps {
            if let Some(node) = self.nodes.get_mut(d) {
                node.dependents.insert(h);
            }
        }
        let node = Node {
            seq: self.seq,
            deps,
            dependents: FxHashSet::default(),
            sealed: false,
        };
        self.nodes.insert(h, node);
    }

    /// Removes a closed resource: its name (if still its own) and its node, and the node from
    /// the dependents of what it depended on.
    pub(super) fn forget(&mut self, h: Handle, name: &str) {
        if self.names.get(name) == Some(&h) {
            self.names.remove(name);
        }
        if let Some(node) = self.nodes.remove(&h) {
            for d in &node.deps {
                if let Some(n) = self.nodes.get_mut(d) {
                    n.dependents.remove(&h);
                }
            }
        }
    }

    /// Refuses a new resource while a cleanup of the whole manager runs.
    pub(super) fn accepting(&self, mgr: Handle) -> Result<()> {
        if self.cleanups > 0 {
            return Err(Error::Closed(format!(
                "manager {mgr} is cleaning up: new resources are refused until the cleanup returns"
            )));
        }
        Ok(())
    }
}

/// The refusal of a new dependent of `dep`, whose close has been asked for.
pub(super) fn sealed_error(dep: &Stored<Entry>) -> Error {
    Error::DependencyClosed(format!(
        "cannot depend on {} '{}' ({}): its close has begun",
        dep.value.kind, dep.value.name, dep.handle
    ))
}

/// True if `to` can be reached from `from` by following "depends on" edges.
pub(super) fn reaches(reg: &Registry, from: Handle, to: Handle) -> bool {
    let mut stack = vec![from];
    let mut seen = FxHashSet::default();
    while let Some(h) = stack.pop() {
        if h == to {
            return true;
        }
        if seen.insert(h) {
            if let Some(n) = reg.nodes.get(&h) {
                stack.extend(n.deps.iter().copied());
            }
        }
    }
    false
}
