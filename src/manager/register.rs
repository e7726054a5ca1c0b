//! Registration, dependencies added later, and unregistering: how resources enter and leave
//! a manager's graph.

use super::*;

/// Longest accepted name, in bytes.
pub const MAX_NAME_LEN: usize = 1024;

/// Longest name of a column family's entry, `db/cf`: both parts may be [`MAX_NAME_LEN`] long.
pub const MAX_QUALIFIED_NAME_LEN: usize = 2 * MAX_NAME_LEN + 1;

/// Checks a resource name: 1 to `limit` bytes, no NUL.
pub fn validate_name(name: &str, limit: usize) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidArgument("name must not be empty".into()));
    }
    if name.len() > limit {
        return Err(Error::InvalidArgument(format!(
            "name is {} bytes long, the limit is {limit}",
            name.len()
        )));
    }
    if name.contains('\0') {
        return Err(Error::InvalidArgument("name must not contain NUL".into()));
    }
    Ok(())
}

/// The longest name `resource` may have: one named after what it is part of (`db/cf`, each
/// part up to [`MAX_NAME_LEN`]) twice that and one, anything else [`MAX_NAME_LEN`].
pub(super) fn name_limit(resource: &dyn Resource) -> usize {
    if resource.qualified_name() {
        MAX_QUALIFIED_NAME_LEN
    } else {
        MAX_NAME_LEN
    }
}

/// Resolves a handle of this manager's (any state), checking that it belongs to `inner`.
pub(super) fn resolve(inner: &ManagerInner, raw: u64, want: Option<Kind>) -> Result<Ref<Entry>> {
    let entry = get_resource(raw, want)?;
    if entry.value.manager != inner.handle {
        return Err(Error::ForeignHandle(format!(
            "{} '{}' ({}) belongs to manager {}, not to manager {}",
            entry.value.kind, entry.value.name, entry.handle, entry.value.manager, inner.handle
        )));
    }
    Ok(entry)
}

/// Registers `resource` under `name` in manager `mgr`, depending on `deps` (handles of the
/// same manager, all active). The resource is closed after everything that depends on it and
/// before everything it depends on. On error the resource is dropped (not closed).
pub fn register(
    mgr: u64,
    name: &str,
    kind: Kind,
    resource: Box<dyn Resource>,
    deps: &[u64],
) -> Result<Handle> {
    with_manager(mgr, |inner| register_in(inner, name, kind, resource, deps))
}

pub(super) fn register_in(
    inner: &Arc<ManagerInner>,
    name: &str,
    kind: Kind,
    resource: Box<dyn Resource>,
    deps: &[u64],
) -> Result<Handle> {
    validate_name(name, name_limit(resource.as_ref()))?;
    let dep_refs = resolve_dependencies(inner, deps)?;
    // Everything that might run a close when dropped (leases, the resource itself on failure)
    // is kept here and dropped after the registry lock is released.
    let mut pins = Vec::with_capacity(dep_refs.len());
    let mut payload = Some(resource);
    let result = (|| {
        let mut reg = inner.registry.lock();
        reg.accepting(inner.handle)?;
        if let Some(existing) = reg.names.get(name) {
            return Err(Error::DuplicateName(format!(
                "a resource named '{name}' is already registered ({existing})"
            )));
        }
        pin_dependencies(&reg, &dep_refs, &mut pins)?;
        let shared: Arc<str> = Arc::from(name);
        let handle = OBJECTS.resources.insert_with(kind, |_| Entry {
            manager: inner.handle,
            owner: Arc::downgrade(inner),
            name: Arc::clone(&shared),
            kind,
            resource: payload.take().expect("resource moved in once"),
            lifecycle: Lifecycle::new(),
            created: Instant::now(),
            pins: Mutex::new(std::mem::take(&mut pins)),
            info: Mutex::new(CloseInfo::default()),
        })?;
        reg.add(handle, shared, dep_refs.iter().map(|d| d.handle).collect());
        Metrics::bump(&inner.metrics.registered);
        Metrics::bump(&inner.metrics.live);
        Ok(handle)
    })();
    drop(pins);
    drop(payload);
    match &result {
        Ok(h) => inner.log(LogLevel::Debug, || {
            format!("registered {kind} '{name}' ({h})")
        }),
        // Debug: the caller gets the error; a DB closing under a busy service refuses many.
        Err(e) => inner.log(LogLevel::Debug, || {
            format!("registering {kind} '{name}' failed: {e}")
        }),
    }
    result
}

/// The dependencies of a new resource, each once, all of this manager's.
fn resolve_dependencies(inner: &ManagerInner, deps: &[u64]) -> Result<Vec<Arc<Stored<Entry>>>> {
    let mut dep_refs: Vec<Arc<Stored<Entry>>> = Vec::with_capacity(deps.len());
    for (i, &d) in deps.iter().enumerate() {
        let e = resolve(inner, d, None)
            .map_err(|e| dependency_error(e).context(&format!("dependency {i}")))?;
        if !dep_refs.iter().any(|x| x.handle == e.handle) {
            dep_refs.push(e.to_arc());
        }
    }
    Ok(dep_refs)
}

/// Takes a pin on each dependency, under the registry lock: so unregister can rely on "no
/// dependents in the graph" meaning "no pins", and a close that chose its set under the same
/// lock (and sealed it) can rely on no dependent joining it later. A sealed or closing
/// dependency is refused; the pins taken so far are the caller's to drop.
fn pin_dependencies(
    reg: &Registry,
    dep_refs: &[Arc<Stored<Entry>>],
    pins: &mut Vec<Lease<Arc<Stored<Entry>>>>,
) -> Result<()> {
    for dep in dep_refs {
        if reg.nodes.get(&dep.handle).is_some_and(|n| n.sealed) {
            return Err(sealed_error(dep));
        }
        match acquire(Arc::clone(dep)) {
            Ok(pin) => pins.push(pin),
            Err(_) => {
                return Err(Error::DependencyClosed(format!(
                    "cannot depend on {}",
                    describe_closed(dep)
                )))
            }
        }
    }
    Ok(())
}

/// Fails with `DuplicateName` (or `InvalidArgument`) unless every name is valid and free in
/// manager `mgr` right now, and with `Closed` while a cleanup of the whole manager runs. Lets
/// a caller refuse early, before building an expensive resource.
pub fn check_names_free(mgr: u64, names: &[String]) -> Result<()> {
    with_manager(mgr, |inner| {
        for name in names {
            // Each registration checks its own kind's limit; this is the widest.
            validate_name(name, MAX_QUALIFIED_NAME_LEN)?;
        }
        let reg = inner.registry.lock();
        reg.accepting(inner.handle)?;
        for name in names {
            if let Some(existing) = reg.names.get(name.as_str()) {
                return Err(Error::DuplicateName(format!(
                    "a resource named '{name}' is already registered ({existing})"
                )));
            }
        }
        Ok(())
    })
}

/// A dependency that is closed and gone is reported like one that is closing.
pub(super) fn dependency_error(e: Error) -> Error {
    match e {
        Error::Closed(m) => Error::DependencyClosed(m),
        other => other,
    }
}

/// Makes `dependent` depend on `dependency` after both were registered. Refused when it would
/// make a cycle, when either is closing, or when they belong to different managers.
pub fn add_dependency(mgr: u64, dependent: u64, dependency: u64) -> Result<()> {
    with_manager(mgr, |inner| {
        let child = resolve(inner, dependent, None).map_err(|e| e.context("dependent"))?;
        let parent = resolve(inner, dependency, None)
            .map_err(|e| dependency_error(e).context("dependency"))?;
        // A lease on the child for the duration: its native close (which takes its pins) cannot
        // run until the new pin is in place, so the pin is always released.
        let child_lease = acquire(child.to_arc())?;
        let mut reg = inner.registry.lock();
        if reg
            .nodes
            .get(&child.handle)
            .is_some_and(|n| n.deps.contains(&parent.handle))
        {
            drop(reg);
            drop(child_lease);
            return Ok(());
        }
        if reg.nodes.get(&parent.handle).is_some_and(|n| n.sealed) {
            drop(reg);
            drop(child_lease);
            return Err(sealed_error(&parent));
        }
        if child.handle == parent.handle || reaches(&reg, parent.handle, child.handle) {
            drop(reg);
            drop(child_lease);
            return Err(Error::Cycle(format!(
                "'{}' cannot depend on '{}': '{}' already depends on '{}'",
                child.value.name, parent.value.name, parent.value.name, child.value.name
            )));
        }
        let pin = match acquire(parent.to_arc()) {
            Ok(pin) => pin,
            Err(_) => {
                drop(reg);
                drop(child_lease);
                return Err(Error::DependencyClosed(format!(
                    "cannot depend on {}",
                    describe_closed(&parent)
                )));
            }
        };
        child.value.pins.lock().push(pin);
        if let Some(n) = reg.nodes.get_mut(&child.handle) {
            n.deps.push(parent.handle);
        }
        if let Some(n) = reg.nodes.get_mut(&parent.handle) {
            n.dependents.insert(child.handle);
        }
        drop(reg);
        drop(child_lease);
        Ok(())
    })
}

/// Forgets a resource the caller registered, without closing it: the caller owns it again.
/// Refused for resources resman owns (close those) and while something depends on it.
pub fn unregister(mgr: u64, raw: u64) -> Result<()> {
    with_manager(mgr, |inner| {
        let entry = resolve(inner, raw, None).map_err(already_closed)?;
        {
            let mut reg = inner.registry.lock();
            if !entry.value.resource.can_unregister() {
                return Err(Error::OwnedResource(format!(
                    "{} '{}' ({}) is owned by resman: close it instead of unregistering it",
                    entry.value.kind, entry.value.name, entry.handle
                )));
            }
            // Whoever seals the node first wins: a close asked for earlier makes this an
            // "already closed", and this unregister makes a later close one.
            let node = match reg.nodes.get_mut(&entry.handle) {
                Some(n) if !n.sealed => n,
                _ => return Err(Error::AlreadyClosed(describe_closing(&entry))),
            };
            if !node.dependents.is_empty() {
                return Err(Error::HasDependents(format!(
                    "'{}' still has {} dependent(s): close or unregister them first",
                    entry.value.name,
                    node.dependents.len()
                )));
            }
            node.sealed = true;
            if !begin_entry(inner, &entry) {
                // Unreachable: every close begins only after sealing under this lock.
                return Err(Error::AlreadyClosed(describe_closed(&entry)));
            }
            entry.value.info.lock().unregistering = true;
        }
        if entry.value.lifecycle.claim_close() == crate::lifecycle::Claim::RunNow {
            run_close(&entry, CloseMode::Forced);
        }
        Ok(())
    })
}
