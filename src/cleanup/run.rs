//! One run: its bounds and deadlines, the channel by which finished closes reach the
//! scheduler, and the record shown in the status document.

use crate::error::Failure;
use crate::handle::Handle;
use crate::records::{CleanupRecord, CleanupStep};
use crate::resource::CloseMode;
use parking_lot::{Condvar, Mutex};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The bounds of a run: the graceful phase, then the forced phase.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    pub graceful: Duration,
    pub forced: Duration,
}

#[derive(Default)]
pub(super) struct RunLog {
    pub(super) steps: Vec<CleanupStep>,
    pub(super) escalated: bool,
    pub(super) resources: u64,
    pub(super) duration: Option<Duration>,
    /// What did not close cleanly (shared with the caller's error, not copied).
    pub(super) failures: Arc<Vec<Failure>>,
}

/// One cleanup run: its deadlines, the channel by which finished closes reach the scheduler,
/// and the record shown in the status document. Shared (`Arc`) with the resources it
/// closes, so a close that finishes after the run returned still lands in its record.
pub(crate) struct Run {
    pub(super) operation: &'static str,
    pub(super) target: Option<Arc<str>>,
    pub(super) mode: CloseMode,
    pub(super) bounds: Bounds,
    pub(crate) started: Instant,
    /// End of the graceful phase (None: no bound). For a forced run, its start.
    pub(crate) graceful_deadline: Option<Instant>,
    /// End of the forced phase (None: no bound).
    pub(crate) final_deadline: Option<Instant>,
    pub(super) finished: Mutex<Vec<Handle>>,
    pub(super) cv: Condvar,
    pub(super) log: Mutex<RunLog>,
}

impl Run {
    pub(crate) fn new(
        operation: &'static str,
        target: Option<Arc<str>>,
        mode: CloseMode,
        bounds: Bounds,
    ) -> Arc<Run> {
        let started = Instant::now();
        let graceful = match mode {
            CloseMode::Graceful => bounds.graceful,
            CloseMode::Forced => Duration::ZERO,
        };
        let graceful_deadline = started.checked_add(graceful);
        let final_deadline = graceful_deadline.and_then(|g| g.checked_add(bounds.forced));
        Arc::new(Run {
            operation,
            target,
            mode,
            bounds,
            started,
            graceful_deadline,
            final_deadline,
            finished: Mutex::new(Vec::new()),
            cv: Condvar::new(),
            log: Mutex::new(RunLog::default()),
        })
    }

    /// Milliseconds from the run's start to `t`.
    pub(crate) fn offset_ms(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.started).as_secs_f64() * 1e3
    }

    /// Records a finished close (called by whoever ran it, after the dependencies were let
    /// go) and wakes the scheduler.
    pub(crate) fn finished(&self, handle: Handle, step: Option<CleanupStep>) {
        if let Some(step) = step {
            self.log.lock().steps.push(step);
        }
        self.finished.lock().push(handle);
        self.cv.notify_all();
    }

    /// The record for the status document.
    pub(crate) fn record(&self) -> CleanupRecord {
        let log = self.log.lock();
        let mut steps = log.steps.clone();
        steps.sort_by(|a, b| a.started_ms.total_cmp(&b.started_ms));
        CleanupRecord {
            operation: self.operation,
            target: self.target.as_deref().map(str::to_owned),
            mode: match self.mode {
                CloseMode::Graceful => "graceful",
                CloseMode::Forced => "forced",
            },
            graceful_timeout_ms: match self.mode {
                CloseMode::Graceful => millis(self.bounds.graceful),
                CloseMode::Forced => 0,
            },
            force_timeout_ms: millis(self.bounds.forced),
            age_ms: millis(self.started.elapsed()),
            duration_ms: log.duration.map(|d| d.as_secs_f64() * 1e3),
            escalated: log.escalated,
            resources: log.resources,
            order: steps.iter().map(|s| s.name.to_string()).collect(),
            steps,
            errors: log
                .failures
                .iter()
                .map(|f| format!("{}: {}", f.name, f.message))
                .collect(),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
