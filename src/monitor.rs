//! The monitor: a thread per manager, registered as one of its resources through the public
//! registration, that samples at `monitor_interval`: each open DB's memory figures (under a
//! lease), the registry's own size, and closes that are stuck, which it logs. It sits above
//! the manager and uses only what the manager offers an observer (`manager::observe`).
//! (The counters are in `crate::metrics`, the records in `crate::records`; both are
//! re-exported here for the paths callers already use.)

pub use crate::metrics::{Histogram, Metrics};
pub use crate::records::*;

use crate::error::{Error, Result};
use crate::handle::Handle;
use crate::kind::Kind;
use crate::log::LogLevel;
use crate::manager;
use crate::resource::{CloseMode, Resource};
use parking_lot::{Condvar, Mutex};
use std::any::Any;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The monitor of one manager: a thread that calls `tick` every interval until it is closed (or `tick` says the manager is gone). Closing it stops and joins the
/// thread, so a cleaned-up manager leaves no thread behind.
pub struct MonitorResource {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl MonitorResource {
    pub fn start(
        interval: Duration,
        mut tick: impl FnMut() -> bool + Send + 'static,
    ) -> std::io::Result<MonitorResource> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("resman-monitor".into())
            .spawn(move || {
                let (lock, cv) = &*flag;
                loop {
                    let mut stopped = lock.lock();
                    if !*stopped {
                        let _ = cv.wait_for(&mut stopped, interval);
                    }
                    if *stopped {
                        return;
                    }
                    drop(stopped);
                    if !tick() {
                        return;
                    }
                }
            })?;
        Ok(MonitorResource {
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }
}

impl Drop for MonitorResource {
    /// Dropped without a close (its registration failed): the thread still stops.
    fn drop(&mut self) {
        let (lock, cv) = &*self.stop;
        *lock.lock() = true;
        cv.notify_all();
    }
}

impl Resource for MonitorResource {
    fn close(&self, _mode: CloseMode) -> Result<(), String> {
        let (lock, cv) = &*self.stop;
        *lock.lock() = true;
        cv.notify_all();
        let thread = self.thread.lock().take();
        if let Some(t) = thread {
            // The monitor never closes itself, but if it ever ran this it must not join itself.
            if t.thread().id() != std::thread::current().id() {
                t.join()
                    .map_err(|_| "the monitor thread panicked".to_owned())?;
            }
        }
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Name of the monitor resource every manager registers at creation.
pub const MONITOR_NAME: &str = "resman.monitor";

/// Starts manager `mgr`'s monitor and registers it as a resource (closed by cleanup). The
/// first sample is taken now, so the figures exist from the start.
pub fn start(mgr: Handle) -> Result<()> {
    let raw = mgr.raw();
    let (_, _, interval) = manager::observe(raw)?;
    sample(raw)?;
    // The thread stops by itself once the manager is gone (its calls are refused).
    let monitor = MonitorResource::start(interval, move || sample(raw).is_ok())
        .map_err(|e| Error::Capacity(format!("cannot start the monitor thread: {e}")))?;
    manager::register(raw, MONITOR_NAME, Kind::Monitor, Box::new(monitor), &[]).map(|_| ())
}

/// One monitor tick: refreshes the memory figures and logs closes that are stuck.
fn sample(mgr: u64) -> Result<()> {
    let (resources, registry_bytes, stuck_after) = manager::observe(mgr)?;
    let mut sample = MemorySample {
        registry_bytes,
        ..MemorySample::default()
    };
    for r in &resources {
        match r.memory() {
            Ok(Some(m)) => {
                sample.reporting += 1;
                sample.resources.push(NamedMemory {
                    name: r.name().to_owned(),
                    handle: r.handle().raw(),
                    memory: m,
                });
                let t = &mut sample.total;
                t.mem_table_total += m.mem_table_total;
                t.mem_table_unflushed += m.mem_table_unflushed;
                t.table_readers += m.table_readers;
                t.block_cache += m.block_cache;
            }
            Ok(None) => {}
            Err(()) => log_if_stuck(mgr, r, stuck_after)?,
        }
    }
    drop(resources);
    manager::record_memory_sample(mgr, sample)
}

/// Warns about a close that has been running for longer than one interval.
fn log_if_stuck(mgr: u64, r: &manager::Observed, stuck_after: Duration) -> Result<()> {
    let Some(since) = r.closing_since().filter(|s| s.elapsed() >= stuck_after) else {
        return Ok(());
    };
    manager::log_event(mgr, LogLevel::Warn, || {
        format!(
            "{} '{}' ({}) has been closing for {:.1} s ({} operation(s) or dependent(s) still hold it)",
            r.kind(),
            r.name(),
            r.handle(),
            since.elapsed().as_secs_f64(),
            r.leases()
        )
    })
}
