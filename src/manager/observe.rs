//! What an observer of a manager (the monitor, in `crate::monitor`) may see and do: its live
//! resources, each one's memory figures under a lease, how long a close has been running,
//! and the manager's memory sample and log. The manager itself samples nothing.

use super::*;

/// One live resource as an observer sees it.
pub struct Observed {
    entry: Arc<Stored<Entry>>,
}

impl Observed {
    pub fn name(&self) -> &str {
        &self.entry.value.name
    }
    pub fn handle(&self) -> Handle {
        self.entry.handle
    }
    pub fn kind(&self) -> Kind {
        self.entry.value.kind
    }
    /// Operations and dependents holding it now.
    pub fn leases(&self) -> u64 {
        self.entry.value.lifecycle.leases()
    }
    /// When its close began, if it has.
    pub fn closing_since(&self) -> Option<Instant> {
        self.entry.value.info.lock().started
    }
    /// Its memory figures, read under a lease (`Err(())`: it is closing, no lease).
    #[allow(clippy::result_unit_err)]
    pub fn memory(&self) -> std::result::Result<Option<ResourceMemory>, ()> {
        let lease = acquire(Arc::clone(&self.entry)).map_err(|_| ())?;
        Ok(lease.entry().resource.memory())
    }
}

/// What a manager looks like to an observer now: its live resources, an estimate of the
/// registry's own memory, and its configured monitor interval. The registry lock is held
/// only to copy the list.
pub fn observe(mgr: u64) -> Result<(Vec<Observed>, u64, Duration)> {
    with_manager(mgr, |inner| {
        let reg = inner.registry.lock();
        let mut bytes = std::mem::size_of::<Registry>() as u64;
        let seen = reg
            .nodes
            .iter()
            .filter_map(|(h, n)| {
                let r = OBJECTS.resources.get(h.raw(), None).ok()?;
                bytes += (std::mem::size_of::<Stored<Entry>>()
                    + std::mem::size_of::<Node>()
                    + 2 * r.value.name.len()
                    + 16 * (n.deps.len() + n.dependents.len())
                    + 64) as u64;
                Some(Observed { entry: r.to_arc() })
            })
            .collect();
        Ok((seen, bytes, inner.config.monitor_interval))
    })
}

/// Stores an observer's memory sample as the manager's latest (numbered and stamped here).
pub fn record_memory_sample(mgr: u64, mut sample: MemorySample) -> Result<()> {
    with_manager(mgr, |inner| {
        let mut mem = inner.memory.lock();
        sample.samples = mem.0.samples + 1;
        sample.age_ms = None;
        *mem = (sample, Some(Instant::now()));
        Ok(())
    })
}

/// Emits a log event of the manager's (built only if its receiver wants the level).
pub fn log_event(mgr: u64, level: LogLevel, msg: impl FnOnce() -> String) -> Result<()> {
    with_manager(mgr, |inner| {
        inner.log(level, msg);
        Ok(())
    })
}
