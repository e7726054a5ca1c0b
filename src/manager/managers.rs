//! Managers: creation (the registry; `crate::api` adds the monitor), the lease every manager
//! call holds, the log receiver, and destroy.

use super::*;

/// The instant `d` from now; None (no deadline) when that is past what `Instant` can hold,
/// so a caller's huge timeout means "wait as long as it takes" rather than an overflow.
pub(super) fn deadline_after(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

pub(super) struct ManagerObj {
    pub(super) lifecycle: Lifecycle,
    pub(super) inner: Arc<ManagerInner>,
}

pub(super) struct ManagerInner {
    pub(super) handle: Handle,
    pub(super) config: Config,
    pub(super) created: Instant,
    pub(super) registry: Mutex<Registry>,
    pub(super) metrics: Metrics,
    pub(super) history: Mutex<VecDeque<ClosedRecord>>,
    pub(super) logger: parking_lot::RwLock<Option<Logger>>,
    /// The most recent cleanup run (for the status document).
    pub(super) last_run: Mutex<Option<Arc<cleanup::Run>>>,
    /// What the most recent cleanup of the whole manager reported, by resource (for
    /// `rm_cleanup_failures`).
    pub(super) last_failures: Mutex<FailureReport>,
    /// The monitor's last sample and when it was taken.
    pub(super) memory: Mutex<(MemorySample, Option<Instant>)>,
}

#[derive(Clone)]
pub(super) struct Logger {
    pub(super) f: Arc<LogFn>,
    pub(super) max: LogLevel,
}

impl ManagerInner {
    /// Emits an event if a logger wants this level; the message is only built then.
    pub(super) fn log(&self, level: LogLevel, msg: impl FnOnce() -> String) {
        let logger = self.logger.read().clone();
        if let Some(l) = logger {
            if level <= l.max {
                // A receiver that panics loses its event, never the close it reports on.
                let _ = catch_unwind(AssertUnwindSafe(|| (l.f)(level, &msg())));
            }
        }
    }
}

/// Sets (or with None removes) manager `mgr`'s log receiver; events above `max` (less
/// severe) are not built or delivered. No logger: no output at all.
pub fn set_logger(mgr: u64, f: Option<Arc<LogFn>>, max: LogLevel) -> Result<()> {
    with_manager(mgr, |inner| {
        *inner.logger.write() = f.map(|f| Logger { f, max });
        Ok(())
    })
}

/// Creates a manager and returns its handle: the registry alone. `crate::api::create` is
/// what callers use: it also starts the manager's monitor.
pub fn create(config: Config) -> Result<Handle> {
    config.validate()?;
    let handle = OBJECTS
        .managers
        .insert_with(Kind::Manager, |handle| ManagerObj {
            lifecycle: Lifecycle::new(),
            inner: Arc::new(ManagerInner {
                handle,
                config,
                created: Instant::now(),
                registry: Mutex::new(Registry::default()),
                metrics: Metrics::default(),
                history: Mutex::new(VecDeque::new()),
                logger: parking_lot::RwLock::new(None),
                last_run: Mutex::new(None),
                last_failures: Mutex::new((None, Arc::new(Vec::new()))),
                memory: Mutex::new((MemorySample::default(), None)),
            }),
        })
        .map_err(Error::from)?;
    Ok(handle)
}

/// Runs `f` on a live manager, holding a lease on it so destroy waits for the call.
pub(super) fn with_manager<T>(
    mgr: u64,
    f: impl FnOnce(&Arc<ManagerInner>) -> Result<T>,
) -> Result<T> {
    let obj = get_manager(mgr).map_err(|e| manager_error(mgr, e))?;
    if !obj.value.lifecycle.try_acquire() {
        return Err(Error::Closed(format!(
            "manager {} was destroyed",
            obj.handle
        )));
    }
    struct CallGuard<'a>(&'a Lifecycle);
    impl Drop for CallGuard<'_> {
        fn drop(&mut self) {
            // A manager has no native close for the last call to run: destroy does the work.
            let _ = self.0.release();
        }
    }
    let _call = CallGuard(&obj.value.lifecycle);
    f(&obj.value.inner)
}

pub(super) fn manager_error(mgr: u64, e: Error) -> Error {
    match e {
        Error::Closed(_) => {
            Error::Closed(format!("manager {} was destroyed", Handle::from_raw(mgr)))
        }
        other => other.context("manager"),
    }
}

/// Closes everything the manager owns (gracefully, bounded by its cleanup timeout, forced
/// past it), then the manager itself. A second call returns `AlreadyClosed`.
pub fn destroy(mgr: u64) -> Result<()> {
    destroy_with(mgr, None, CloseMode::Graceful)
}

/// [`destroy`] with explicit bounds, as [`cleanup_timeout`] takes them.
pub fn destroy_timeout(mgr: u64, timeout: Duration, mode: CloseMode) -> Result<()> {
    destroy_with(mgr, Some(timeout), mode)
}

pub(super) fn destroy_with(mgr: u64, timeout: Option<Duration>, mode: CloseMode) -> Result<()> {
    refuse_inside_close("rm_manager_destroy")?;
    let obj = get_manager(mgr).map_err(|e| match e {
        Error::Closed(_) => Error::AlreadyClosed(format!(
            "manager {} was already destroyed",
            Handle::from_raw(mgr)
        )),
        other => other.context("manager"),
    })?;
    if !obj.value.lifecycle.begin_close() {
        return Err(Error::AlreadyClosed(format!(
            "manager {} is already being destroyed",
            obj.handle
        )));
    }
    let inner = &obj.value.inner;
    let mut bounds = bounds(&inner.config, mode, timeout);
    // Let calls already inside the manager (a register, a close) finish first, within the
    // first phase's bound (graceful; for a forced destroy, the forced one).
    let first = match mode {
        CloseMode::Graceful => &mut bounds.graceful,
        CloseMode::Forced => &mut bounds.forced,
    };
    let deadline = deadline_after(*first);
    obj.value.lifecycle.wait_drained(deadline);
    let _ = obj.value.lifecycle.claim_close();
    if let Some(d) = deadline {
        *first = d.saturating_duration_since(Instant::now());
    }
    let result = cleanup_all(inner, "destroy", bounds, mode);
    obj.value.lifecycle.finish(result.is_ok());
    let removed = OBJECTS.managers.remove(obj.handle);
    drop(obj);
    drop(removed);
    result
}
