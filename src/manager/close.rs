//! The close entry points (close, cleanup, destroy's cleanup): choosing and sealing the set,
//! the leak count, and the scheduler's view of the manager.

use super::*;

pub(super) fn already_closed(e: Error) -> Error {
    match e {
        Error::Closed(m) => Error::AlreadyClosed(m),
        other => other,
    }
}

/// The bounds of a close or cleanup given `timeout` (None: the manager's). Graceful: the
/// graceful phase is `timeout`, the forced phase `force_cleanup_timeout`. Forced: the forced
/// phase alone, bounded by `timeout` (None: `force_cleanup_timeout`).
pub(super) fn bounds(
    config: &Config,
    mode: CloseMode,
    timeout: Option<Duration>,
) -> cleanup::Bounds {
    match mode {
        CloseMode::Graceful => cleanup::Bounds {
            graceful: timeout.unwrap_or(config.cleanup_timeout),
            forced: config.force_cleanup_timeout,
        },
        CloseMode::Forced => cleanup::Bounds {
            graceful: Duration::ZERO,
            forced: timeout.unwrap_or(config.force_cleanup_timeout),
        },
    }
}

/// Closes one resource after everything that (transitively) depends on it, as a cleanup run
/// of that subtree (see [`cleanup_timeout`]). Errors of every resource are aggregated.
///
/// Exactly one caller wins the close of a resource: the first whose close, cleanup, destroy
/// or unregister chose it (under the registry lock). Every other close of it returns
/// `AlreadyClosed`, and so does a close through a destroyed manager of a resource its destroy
/// closed. From the moment a close is won, the resource and everything it sweeps
/// along take no new dependent (`DependencyClosed`; for an iterator, snapshot or batch of a DB,
/// `Closed`), so the run's bounds hold whatever other threads do.
pub fn close(mgr: u64, raw: u64, mode: CloseMode, timeout: Option<Duration>) -> Result<()> {
    refuse_inside_close("rm_close")?;
    with_manager(mgr, |inner| {
        let target = resolve(inner, raw, None).map_err(already_closed)?;
        if target.value.lifecycle.is_closing() {
            return Err(Error::AlreadyClosed(describe_closed(&target)));
        }
        let run = cleanup::Run::new(
            "close",
            Some(target.value.name.clone()),
            mode,
            bounds(&inner.config, mode, timeout),
        );
        let report = close_set(inner, &run, Some(target.handle), |reg| {
            match reg.nodes.get(&target.handle) {
                Some(n) if !n.sealed => {}
                _ => return Err(Error::AlreadyClosed(describe_closing(&target))),
            }
            // The target and everything that (transitively) depends on it.
            let mut set = vec![target.handle];
            let mut seen = FxHashSet::default();
            let mut next = 0;
            while let Some(&h) = set.get(next) {
                next += 1;
                let Some(n) = reg.nodes.get(&h) else {
                    continue;
                };
                for &d in &n.dependents {
                    // A leaf (an iterator, say) never fills `seen`: nothing to deduplicate.
                    if seen.is_empty() {
                        seen.extend(set.iter().copied());
                    }
                    if seen.insert(d) {
                        set.push(d);
                    }
                }
            }
            Ok(set)
        })?;
        Error::from_failures(report.failures).map_or(Ok(()), Err)
    })
    .map_err(|e| match e {
        // The manager is gone. Its destroy closed everything it owned: a handle that names a
        // closed resource (slot not reused yet) or one of its resources still closing is
        // already closed. Anything else keeps the manager's error.
        Error::Closed(m) if closed_with_manager(mgr, raw) => {
            Error::AlreadyClosed(format!("{m}: it closed everything it owned"))
        }
        other => other,
    })
}

/// True when `raw` names a closed resource, or a resource of manager `mgr` (which is gone):
/// what a close through a destroyed manager reports as already closed.
pub(super) fn closed_with_manager(mgr: u64, raw: u64) -> bool {
    match get_resource(raw, None) {
        Ok(e) => e.value.manager.raw() == mgr,
        Err(e) => e.code() == rm_result::RM_ERR_CLOSED,
    }
}

/// Closes every resource of the manager, graceful with the manager's timeouts. See
/// [`cleanup_timeout`].
pub fn cleanup(mgr: u64) -> Result<()> {
    cleanup_with(mgr, None, CloseMode::Graceful)
}

/// Closes every resource of the manager (the monitor included), dependents before what they
/// depend on and independent resources concurrently. Graceful: a graceful phase bounded by
/// `timeout`, then what is unfinished is forced and given `force_cleanup_timeout` more.
/// Forced: the forced phase alone, bounded by `timeout`. Every resource still unfinished at
/// the end is reported as timed out; the error aggregates every failure. While it runs, new
/// registrations in the manager are refused (`Closed`); afterwards the manager takes new
/// resources again.
pub fn cleanup_timeout(mgr: u64, timeout: Duration, mode: CloseMode) -> Result<()> {
    cleanup_with(mgr, Some(timeout), mode)
}

/// `timeout` None: the manager's.
pub(super) fn cleanup_with(mgr: u64, timeout: Option<Duration>, mode: CloseMode) -> Result<()> {
    refuse_inside_close("cleanup")?;
    with_manager(mgr, |inner| {
        cleanup_all(inner, "cleanup", bounds(&inner.config, mode, timeout), mode)
    })
}

pub(super) fn cleanup_all(
    inner: &Arc<ManagerInner>,
    operation: &'static str,
    bounds: cleanup::Bounds,
    mode: CloseMode,
) -> Result<()> {
    let run = cleanup::Run::new(operation, None, mode, bounds);
    // Registrations are refused from the moment the set is chosen until the run returns
    // (dropping the guard, even on unwind, accepts them again).
    struct Refusing<'a>(&'a ManagerInner);
    impl Drop for Refusing<'_> {
        fn drop(&mut self) {
            self.0.registry.lock().cleanups -= 1;
        }
    }
    let mut refusing = None;
    let report = close_set(inner, &run, None, |reg| {
        reg.cleanups += 1;
        refusing = Some(Refusing(inner));
        Ok(reg.nodes.keys().copied().collect())
    })?;
    drop(refusing);
    *inner.last_failures.lock() = (Some(operation), Arc::clone(&report.failures));
    Error::from_failures(report.failures).map_or(Ok(()), Err)
}

/// One resource chosen by a close run, with what the registry said of it at that moment.
pub(super) struct Picked {
    pub(super) entry: Arc<Stored<Entry>>,
    pub(super) seq: u64,
    pub(super) deps: Vec<Handle>,
    /// Someone else had already asked for its close (it is not swept along by this run).
    pub(super) was_sealed: bool,
}

/// Runs `run` over the resources `pick` chooses: see [`crate::cleanup`]. Under the registry
/// lock `pick` chooses the set and every resource in it is sealed (see [`Node::sealed`]), so
/// no dependent can join the set later and the run closes exactly what it chose. Everything
/// else (the order, the leaks, the schedule) is worked out after the lock is released. Each
/// resource stops granting leases only when its own close begins, so a dependent's close (a
/// worker flushing into its DB) may still use what it depends on.
/// `target` is the resource the caller asked to close (None: a cleanup of everything); the
/// iterators and snapshots swept along are counted as leaked.
pub(super) fn close_set(
    inner: &Arc<ManagerInner>,
    run: &Arc<cleanup::Run>,
    target: Option<Handle>,
    pick: impl FnOnce(&mut Registry) -> Result<Vec<Handle>>,
) -> Result<cleanup::Report> {
    let picked = choose_and_seal(inner, pick)?;
    *inner.last_run.lock() = Some(Arc::clone(run));
    let entries = plan(inner, picked, target);
    let report = cleanup::run_closes(run, entries, &RegistryCloser(inner));
    count_run(inner, run, &report);
    Ok(report)
}

/// Under the registry lock: the set `pick` chooses, each member sealed, with what the registry
/// says of it now.
fn choose_and_seal(
    inner: &ManagerInner,
    pick: impl FnOnce(&mut Registry) -> Result<Vec<Handle>>,
) -> Result<Vec<Picked>> {
    let mut reg = inner.registry.lock();
    let set = pick(&mut reg)?;
    let mut picked = Vec::with_capacity(set.len());
    for h in set {
        let Some(node) = reg.nodes.get_mut(&h) else {
            continue;
        };
        let was_sealed = std::mem::replace(&mut node.sealed, true);
        let (seq, deps) = (node.seq, node.deps.clone());
        if let Ok(r) = OBJECTS.resources.get(h.raw(), None) {
            picked.push(Picked {
                entry: r.to_arc(),
                seq,
                deps,
                was_sealed,
            });
        }
    }
    Ok(picked)
}

/// Outside the lock: the run's order (dependents first), the leaks it sweeps along, and each
/// resource's dependencies inside the run (with the "part of" edges).
fn plan(
    inner: &ManagerInner,
    picked: Vec<Picked>,
    target: Option<Handle>,
) -> Vec<(Arc<Stored<Entry>>, Vec<Handle>)> {
    // A lone target (a leaf closed by itself: the iterator, snapshot or batch a service closes
    // after each use) has nothing to order, no dependency inside the run, and sweeps no leak.
    if let [only] = &picked[..] {
        if target == Some(only.entry.handle) {
            return picked.into_iter().map(|p| (p.entry, Vec::new())).collect();
        }
    }
    let index: FxHashMap<Handle, usize> = picked
        .iter()
        .enumerate()
        .map(|(i, p)| (p.entry.handle, i))
        .collect();
    let set: FxHashSet<Handle> = index.keys().copied().collect();
    let order = cleanup::dependents_first(&set, |h| {
        index
            .get(&h)
            .map(|&i| (picked[i].seq, picked[i].deps.clone()))
    });
    count_leaks(inner, &picked, &index, &order, target);
    let mut deps: FxHashMap<Handle, Vec<Handle>> = picked
        .iter()
        .map(|p| {
            let d = p.deps.iter().copied().filter(|d| set.contains(d)).collect();
            (p.entry.handle, d)
        })
        .collect();
    let parts: FxHashSet<Handle> = picked
        .iter()
        .filter(|p| p.entry.value.resource.part_of_dependencies())
        .map(|p| p.entry.handle)
        .collect();
    cleanup::add_part_edges(&mut deps, &parts);
    let mut slots: Vec<Option<Arc<Stored<Entry>>>> =
        picked.into_iter().map(|p| Some(p.entry)).collect();
    order
        .iter()
        .filter_map(|h| {
            let e = slots[index[h]].take()?;
            let d = deps.remove(h).unwrap_or_default();
            Some((e, d))
        })
        .collect()
}

/// The run's counters and warnings.
fn count_run(inner: &ManagerInner, run: &cleanup::Run, report: &cleanup::Report) {
    let m = &inner.metrics;
    Metrics::bump(&m.cleanups);
    m.cleanup_duration.observe(report.duration);
    if !report.failures.is_empty() {
        Metrics::bump(&m.cleanups_failed);
    }
    if report.escalated {
        Metrics::bump(&m.escalations);
        inner.log(LogLevel::Warn, || {
            format!(
                "{} did not finish gracefully within its bound: the rest was forced",
                run.record().operation
            )
        });
    }
    for f in report.failures.iter() {
        if f.code == rm_result::RM_ERR_TIMEOUT {
            Metrics::bump(&m.timed_out);
            inner.log(LogLevel::Warn, || {
                format!("'{}' ({}) timed out: {}", f.name, f.handle, f.message)
            });
        }
    }
}

/// The scheduler's view of the manager.
pub(super) struct RegistryCloser<'a>(pub(super) &'a Arc<ManagerInner>);

impl cleanup::Closer for RegistryCloser<'_> {
    type Item = Arc<Stored<Entry>>;
    fn handle(&self, e: &Self::Item) -> Handle {
        e.handle
    }
    fn name<'a>(&'a self, e: &'a Self::Item) -> &'a str {
        &e.value.name
    }
    fn begin(&self, e: &Self::Item) -> bool {
        begin_entry(self.0, e)
    }
    fn start(&self, e: Self::Item, run: &Arc<cleanup::Run>, forced: bool, inline: bool) -> bool {
        if forced {
            start_forced(e, run, inline)
        } else {
            start_graceful(e, run, inline);
            false
        }
    }
    fn start_later(&self, items: Vec<Self::Item>, run: &Arc<cleanup::Run>, forced: bool) {
        launch_later(items, run, forced);
    }
    fn deferred(&self, items: &[Self::Item]) {
        log_deferred(items);
    }
    fn watch(&self, e: &Self::Item, run: &Arc<cleanup::Run>) {
        watch(e, run);
    }
    fn past_graceful(&self, e: &Self::Item) -> bool {
        past_graceful(e)
    }
    fn failure(&self, e: &Self::Item) -> Option<Failure> {
        close_failure(e)
    }
    fn timeout(&self, e: &Self::Item, waiting_on: &[&str]) -> Failure {
        timeout_failure(e, waiting_on)
    }
}

/// Stops `e` granting leases; true for the one caller that won its close.
pub(super) fn begin_entry(inner: &ManagerInner, e: &Stored<Entry>) -> bool {
    let won = e.value.lifecycle.begin_close();
    if won {
        Metrics::bump(&inner.metrics.closing);
    }
    won
}

/// Counts the iterators and snapshots this close sweeps along with what they depend on (a
/// DB, a column family, a snapshot): nobody had asked for their close, so the caller leaked
/// them, as Pebble reports at Close. Counted in the totals, and on their DB's record when the
/// DB is closed by the same call. Linear in the set: `order` has dependents first, so walking
/// it backwards meets every resource after what it depends on.
pub(super) fn count_leaks(
    inner: &ManagerInner,
    picked: &[Picked],
    index: &FxHashMap<Handle, usize>,
    order: &[Handle],
    target: Option<Handle>,
) {
    // The collector of the run (a DB) that each resource (transitively) depends on, if any.
    let mut collector_of: FxHashMap<Handle, Handle> = FxHashMap::default();
    let mut per_collector: FxHashMap<Handle, (u64, u64)> = FxHashMap::default();
    for h in order.iter().rev() {
        let p = &picked[index[h]];
        let resource = &p.entry.value.resource;
        let collector = if resource.collects_leaks() {
            Some(*h)
        } else {
            p.deps.iter().find_map(|d| collector_of.get(d).copied())
        };
        if let Some(c) = collector {
            collector_of.insert(*h, c);
        }
        // Open now (nobody asked for its close): this close sweeps it.
        let Some(leak) = resource.leak() else {
            continue;
        };
        if p.was_sealed || Some(*h) == target {
            continue;
        }
        let counts = collector.map(|c| per_collector.entry(c).or_default());
        match leak {
            Leak::Iterator => {
                Metrics::bump(&inner.metrics.leaked_iterators);
                if let Some(c) = counts {
                    c.0 += 1;
                }
            }
            Leak::Snapshot => {
                Metrics::bump(&inner.metrics.leaked_snapshots);
                if let Some(c) = counts {
                    c.1 += 1;
                }
            }
        }
    }
    for (c, (iterators, snapshots)) in per_collector {
        let mut info = picked[index[&c]].entry.value.info.lock();
        info.leaked_iterators += iterators;
        info.leaked_snapshots += snapshots;
    }
}
