//! What a manager reports: the status document, the counters, the memory sample and the last
//! cleanup's failures.

use super::*;

/// A snapshot of the manager: every live resource and the totals.
pub fn status(mgr: u64) -> Result<Status> {
    with_manager(mgr, |inner| {
        let c = &inner.config;
        Ok(Status {
            version: crate::VERSION,
            manager: inner.handle.raw(),
            uptime_ms: inner.created.elapsed().as_millis() as u64,
            cleanup_timeout_ms: c.cleanup_timeout.as_millis() as u64,
            config: ConfigStatus {
                cleanup_timeout_ms: c.cleanup_timeout.as_millis() as u64,
                force_cleanup_timeout_ms: c.force_cleanup_timeout.as_millis() as u64,
                monitor_interval_ms: c.monitor_interval.as_millis() as u64,
                max_retries: c.max_retries,
                retry_delay_ms: c.retry_delay.as_millis() as u64,
            },
            totals: Totals::from_metrics(&inner.metrics),
            cleanup_duration: inner.metrics.cleanup_duration.snapshot(),
            close_duration: inner.metrics.close_duration.snapshot(),
            memory: memory_sample(inner, true),
            close_threads: executor::workers().0 as u64,
            last_cleanup: inner.last_run.lock().as_ref().map(|r| r.record()),
            resources: live_statuses(inner),
            recently_closed: inner.history.lock().iter().cloned().collect(),
        })
    })
}

/// Every live resource of the manager, in registration order. The graph is copied under the
/// registry lock; each resource reports outside it.
fn live_statuses(inner: &ManagerInner) -> Vec<ResourceStatus> {
    let mut nodes: Vec<(u64, Handle, Vec<Handle>, Vec<Handle>)> = {
        let reg = inner.registry.lock();
        reg.nodes
            .iter()
            .map(|(h, n)| {
                (
                    n.seq,
                    *h,
                    n.deps.clone(),
                    n.dependents.iter().copied().collect(),
                )
            })
            .collect()
    };
    nodes.sort_by_key(|n| n.0);
    nodes
        .iter()
        .filter_map(|(_, h, deps, dependents)| resource_status(*h, deps, dependents))
        .collect()
}

/// One resource's line of the status document (None once it is gone).
fn resource_status(h: Handle, deps: &[Handle], dependents: &[Handle]) -> Option<ResourceStatus> {
    let name_of = |h: &Handle| {
        OBJECTS
            .resources
            .get(h.raw(), None)
            .map(|r| r.value.name.to_string())
            .unwrap_or_else(|_| h.to_string())
    };
    let r = OBJECTS.resources.get(h.raw(), None).ok()?;
    let e = &r.value;
    // Under a lease, so the resource is open while it reports; none when closing.
    let details = acquire(r.to_arc())
        .ok()
        .and_then(|lease| lease.entry().resource.details());
    let info = e.info.lock();
    let mut dependents: Vec<String> = dependents.iter().map(name_of).collect();
    dependents.sort();
    Some(ResourceStatus {
        handle: h.raw(),
        name: e.name.to_string(),
        kind: e.kind.as_str(),
        state: e.lifecycle.state().as_str(),
        leases: e.lifecycle.leases(),
        depends_on: deps.iter().map(name_of).collect(),
        dependents,
        age_ms: e.created.elapsed().as_millis() as u64,
        close_duration_ms: info
            .duration
            .or_else(|| info.started.map(|s| s.elapsed()))
            .map(|d| d.as_secs_f64() * 1e3),
        close_deferred: info.deferred,
        last_error: info.error.clone(),
        details,
    })
}

/// The monitor's last sample, with its age. Without `per_resource` the per-DB list is left
/// out: copying it would allocate, which `rm_manager_metrics` must not.
pub(super) fn memory_sample(inner: &ManagerInner, per_resource: bool) -> MemorySample {
    let m = inner.memory.lock();
    MemorySample {
        reporting: m.0.reporting,
        total: m.0.total,
        registry_bytes: m.0.registry_bytes,
        resources: if per_resource {
            m.0.resources.clone()
        } else {
            Vec::new()
        },
        age_ms: m.1.map(|t| t.elapsed().as_millis() as u64),
        samples: m.0.samples,
    }
}

/// The monitor's last memory sample (per DB and in total), without building the status.
pub fn memory_sample_of(mgr: u64) -> Result<MemorySample> {
    with_manager(mgr, |inner| Ok(memory_sample(inner, true)))
}

/// The manager's counters, cheap to poll (no allocation, no walk over the resources).
pub fn metrics(mgr: u64) -> Result<MetricsSnapshot> {
    with_manager(mgr, |inner| {
        let memory = memory_sample(inner, false);
        Ok(MetricsSnapshot {
            totals: Totals::from_metrics(&inner.metrics),
            cleanup_duration: inner.metrics.cleanup_duration.snapshot(),
            close_duration: inner.metrics.close_duration.snapshot(),
            memory,
            close_threads: executor::workers().0 as u64,
        })
    })
}

/// What [`metrics`] returns.
#[derive(Clone, Debug)]
pub struct MetricsSnapshot {
    pub totals: Totals,
    pub cleanup_duration: HistogramSnapshot,
    pub close_duration: HistogramSnapshot,
    pub memory: MemorySample,
    pub close_threads: u64,
}

/// What a cleanup of the whole manager reported by resource: the operation (None before the
/// first cleanup) and its failures, dependents first.
pub type FailureReport = (Option<&'static str>, Arc<Vec<Failure>>);

/// What the most recent cleanup of the whole manager (a cleanup, or the destroy's) reported
/// by resource. A close of one resource does not replace it.
pub fn cleanup_failures(mgr: u64) -> Result<FailureReport> {
    with_manager(mgr, |inner| Ok(inner.last_failures.lock().clone()))
}
