//! The monitor: a thread per manager, registered as one of its resources, that samples at
//! `monitor_interval`. (The counters are in [`crate::metrics`], the records it fills in
//! [`crate::records`]; both are re-exported here for the paths callers already use.)

pub use crate::metrics::{Histogram, Metrics};
pub use crate::records::*;

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
