//! Running one resource's native close: where it runs (here, the pool, or the last lease),
//! retries, the record it leaves, and the failure it reports.

use super::*;

/// Closes remembered for the status document.
pub(super) const HISTORY: usize = 128;

/// Runs `job` on the close pool, or here when no pool thread can be had.
pub(super) fn dispatch(job: impl FnOnce() + Send + 'static) {
    if let Some(job) = executor::submit(Box::new(job)) {
        job();
    }
}

/// Marks a close begun by `run` (the run that won it) and makes `run` hear when it finishes.
/// Returns when it began.
pub(super) fn note_begin(entry: &Stored<Entry>, run: &Arc<cleanup::Run>, forced: bool) -> Instant {
    let now = Instant::now();
    let mut info = entry.value.info.lock();
    info.started = Some(now);
    info.forced = forced;
    info.graceful_deadline = run.graceful_deadline;
    info.runs.push(Arc::clone(run));
    now
}

/// True when `entry`'s close was begun forced, or by a run whose graceful phase is over.
pub(crate) fn past_graceful(entry: &Stored<Entry>) -> bool {
    let info = entry.value.info.lock();
    info.forced || info.deferred || info.graceful_deadline.is_some_and(|g| Instant::now() >= g)
}

/// Makes `run` hear when `entry`'s close (begun by someone else) finishes; at once if it has.
pub(crate) fn watch(entry: &Stored<Entry>, run: &Arc<cleanup::Run>) {
    let mut info = entry.value.info.lock();
    if info.done {
        drop(info);
        run.finished(entry.handle, None);
    } else {
        info.runs.push(Arc::clone(run));
    }
}

/// Won in the graceful phase: on a pool thread, wait for in-flight operations until the end
/// of the graceful phase, then run the native close (graceful if drained in time, forced
/// otherwise) or leave it to the last operation.
/// `inline`: a quick close may run on this thread (see [`Resource::closes_quickly`]).
pub(crate) fn start_graceful(entry: Arc<Stored<Entry>>, run: &Arc<cleanup::Run>, inline: bool) {
    let begun = note_begin(&entry, run, false);
    let graceful_end = run.graceful_deadline;
    // Begun: no lease can be taken any more, so none held now means drained for good.
    let here = inline && quick_and_drained(&entry);
    let job = move || {
        let life = &entry.value.lifecycle;
        let drained = life.wait_drained(graceful_end);
        // Run here, it was drained when it began: judged at that instant (no clock read).
        let now = if here { begun } else { Instant::now() };
        let in_time = graceful_end.is_none_or(|g| now < g);
        match life.claim_close() {
            Claim::RunNow => {
                let mode = if drained && in_time {
                    CloseMode::Graceful
                } else {
                    CloseMode::Forced
                };
                run_close(&entry, mode);
            }
            Claim::Deferred => mark_deferred(&entry, LogLevel::Warn),
        }
    };
    if here {
        job();
    } else {
        dispatch(job);
    }
}

/// A resource whose close may run on the closing thread: it closes quickly
/// ([`Resource::closes_quickly`]) and no operation holds it.
pub(super) fn quick_and_drained(entry: &Stored<Entry>) -> bool {
    entry.value.resource.closes_quickly() && entry.value.lifecycle.leases() == 0
}

/// Won in the forced phase: the native close runs now on a pool thread (on this one for a
/// quick close when `inline`), or is left to the last operation (or dependent) still holding
/// the resource. Returns true in that last case; the caller logs it (see [`log_deferred`]).
pub(crate) fn start_forced(
    entry: Arc<Stored<Entry>>,
    run: &Arc<cleanup::Run>,
    inline: bool,
) -> bool {
    note_begin(&entry, run, true);
    match entry.value.lifecycle.claim_close() {
        Claim::RunNow if inline && entry.value.resource.closes_quickly() => {
            run_close(&entry, CloseMode::Forced);
            false
        }
        Claim::RunNow => {
            dispatch(move || {
                run_close(&entry, CloseMode::Forced);
            });
            false
        }
        Claim::Deferred => {
            mark_deferred(&entry, LogLevel::Debug);
            true
        }
    }
}

/// Launches, on a pool thread, the closes of begun resources that a run had no time left to
/// launch itself (see `cleanup::Sched::start_ready`).
pub(crate) fn launch_later(
    entries: Vec<Arc<Stored<Entry>>>,
    run: &Arc<cleanup::Run>,
    forced: bool,
) {
    let run = Arc::clone(run);
    dispatch(move || {
        let mut deferred = Vec::new();
        for entry in entries {
            if forced {
                if start_forced(Arc::clone(&entry), &run, false) {
                    deferred.push(entry);
                }
            } else {
                start_graceful(entry, &run, false);
            }
        }
        log_deferred(&deferred);
    });
}

/// One warning for the closes a forced phase left to what still holds them (each one is a
/// debug event): a forced cleanup of a long chain defers every link, and an operator needs
/// the count and a few names, not 100,000 lines.
pub(crate) fn log_deferred(deferred: &[Arc<Stored<Entry>>]) {
    let Some(inner) = deferred.first().and_then(|e| e.value.owner.upgrade()) else {
        return;
    };
    inner.log(LogLevel::Warn, || {
        const NAMED: usize = 5;
        let mut names = deferred
            .iter()
            .take(NAMED)
            .map(|e| format!("'{}'", e.value.name))
            .collect::<Vec<_>>()
            .join(", ");
        if deferred.len() > NAMED {
            names.push_str(&format!(" and {} more", deferred.len() - NAMED));
        }
        format!(
            "{} resource(s) closed by force with operations or dependents still holding them ({names}): the last one to let go starts each close",
            deferred.len()
        )
    });
}

/// Marks a close as left to the last in-flight operation, and logs it at `level`.
pub(super) fn mark_deferred(entry: &Stored<Entry>, level: LogLevel) {
    let mut info = entry.value.info.lock();
    info.deferred = true;
    info.forced = true;
    drop(info);
    if let Some(inner) = entry.value.owner.upgrade() {
        Metrics::bump(&inner.metrics.deferred);
        inner.log(level, || {
            format!(
                "{} '{}' ({}) is closed with {} operation(s) or dependent(s) still holding it: the last one to let go starts the close",
                entry.value.kind,
                entry.value.name,
                entry.handle,
                entry.value.lifecycle.leases()
            )
        });
    }
}

thread_local! {
    /// Close callbacks (and caller functions called under a lease) running on this thread
    /// (see `refuse_inside_close`).
    static IN_CLOSE: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Runs `f` marked as inside a close on this thread (see `refuse_inside_close`); the mark is
/// removed when `f` returns or unwinds. Also for a caller's function resman calls while it
/// holds a lease (a get's allocator): a close from there would wait for that lease.
pub(crate) fn inside_close<R>(f: impl FnOnce() -> R) -> R {
    struct Mark;
    impl Drop for Mark {
        fn drop(&mut self) {
            IN_CLOSE.with(|c| c.set(c.get() - 1));
        }
    }
    IN_CLOSE.with(|c| c.set(c.get() + 1));
    let _mark = Mark;
    f()
}

/// Close, cleanup and destroy wait for closes to finish; called from inside a close (a close
/// callback calling back into resman) they would wait for themselves until the deadline.
pub(super) fn refuse_inside_close(what: &str) -> Result<()> {
    if IN_CLOSE.with(|c| c.get()) > 0 {
        return Err(Error::InvalidArgument(format!(
            "{what} cannot be called from inside a close callback or a get's allocator (it would wait for itself)"
        )));
    }
    Ok(())
}

/// The last lease of a resource whose close was deferred was just released: the native close
/// runs on a pool thread, so the operation that let go returns at once.
pub(super) fn run_deferred(entry: Arc<Stored<Entry>>) {
    dispatch(move || {
        run_close(&entry, CloseMode::Forced);
    });
}

/// Calls the resource's close, retrying a failure up to `max_retries` times with
/// `retry_delay` between attempts, so a close callback is called exactly until it succeeds or
/// has failed `1 + max_retries` times (its caller can tell when resman is done with its
/// context). Retries go on past the run's deadline: the run reports the resource as timed out
/// and returns on time. Attempts made after the graceful phase ended are forced. A panic is
/// not retried. Returns every failed attempt's error, whether the last attempt succeeded, and
/// whether the close ended forced.
pub(super) fn close_attempts(
    entry: &Stored<Entry>,
    owner: Option<&Arc<ManagerInner>>,
    mode: CloseMode,
    graceful_end: Option<Instant>,
) -> (Vec<String>, bool, bool) {
    let e = &entry.value;
    let (max_retries, delay) = owner.map_or((DEFAULT_MAX_RETRIES, DEFAULT_RETRY_DELAY), |i| {
        (i.config.max_retries, i.config.retry_delay)
    });
    let mut errors = Vec::new();
    let mut forced = mode == CloseMode::Forced;
    loop {
        let attempt_mode = if forced {
            CloseMode::Forced
        } else {
            CloseMode::Graceful
        };
        let result =
            inside_close(|| catch_unwind(AssertUnwindSafe(|| e.resource.close(attempt_mode))));
        let (msg, panicked) = match result {
            Ok(Ok(())) => return (errors, true, forced),
            Ok(Err(msg)) => (msg, false),
            Err(panic) => (format!("close panicked: {}", panic_message(&*panic)), true),
        };
        if let Some(inner) = owner {
            Metrics::bump(&inner.metrics.close_errors);
        }
        errors.push(msg);
        let attempts = errors.len() as u32;
        if panicked || attempts > max_retries {
            let abandoned =
                inside_close(|| catch_unwind(AssertUnwindSafe(|| e.resource.abandon())));
            if let Err(panic) = abandoned {
                errors.push(format!(
                    "releasing it after the failed close panicked: {}",
                    panic_message(&*panic)
                ));
            }
            return (errors, false, forced);
        }
        if let Some(inner) = owner {
            Metrics::bump(&inner.metrics.retries);
            inner.log(LogLevel::Warn, || {
                format!(
                    "{} '{}' ({}): close attempt {attempts} of {} failed: {}; retrying in {} ms",
                    e.kind,
                    e.name,
                    entry.handle,
                    max_retries + 1,
                    errors.last().map_or("", String::as_str),
                    delay.as_millis()
                )
            });
        }
        // The configured pause between attempts (policy, not synchronisation).
        std::thread::sleep(delay);
        if graceful_end.is_some_and(|g| Instant::now() >= g) {
            forced = true;
        }
    }
}

/// One error text for all failed attempts.
pub(super) fn attempts_error(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!(
            "failed {} times: {}",
            many.len(),
            many.iter()
                .enumerate()
                .map(|(i, m)| format!("[attempt {}] {m}", i + 1))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

/// What one native close came to: everything the record, the counters, the log and the
/// waiting runs are told.
struct Outcome {
    unregistering: bool,
    /// Every failed attempt's error, in order.
    errors: Vec<String>,
    /// The close's error (all attempts'), if it failed for good.
    error: Option<String>,
    forced: bool,
    attempts: u32,
    /// From the close's begin to the end of the native close.
    duration: Duration,
    native_start: Instant,
    native_end: Instant,
    /// What it depends on stays open for good (see `Resource::releases_dependencies_on_failure`).
    hold: bool,
    leaked: (u64, u64),
}

impl Outcome {
    fn as_str(&self) -> &'static str {
        if self.unregistering {
            "unregistered"
        } else if self.error.is_some() {
            "failed"
        } else {
            "closed"
        }
    }
}

/// Runs the native close (exactly once per entry, with retries: the lifecycle protocol
/// guarantees one caller), then forgets the entry, lets go of what it depends on (unless a
/// failure forbids it, see [`Resource::releases_dependencies_on_failure`]) and tells the runs
/// waiting for it. Returns the close error, if any.
pub(crate) fn run_close(entry: &Stored<Entry>, mode: CloseMode) -> Option<String> {
    let e = &entry.value;
    let native_start = Instant::now();
    let (unregistering, graceful_end) = {
        let mut info = e.info.lock();
        info.running_since = Some(native_start);
        (info.unregistering, info.graceful_deadline)
    };
    let owner = e.owner.upgrade();
    let (errors, ok, forced) = if unregistering {
        (Vec::new(), true, true)
    } else {
        close_attempts(entry, owner.as_ref(), mode, graceful_end)
    };
    let outcome = settle(entry, unregistering, errors, ok, forced, native_start);
    let mut pins = std::mem::take(&mut *e.pins.lock());
    if outcome.hold {
        // What it depends on stays open for good (a DB is never closed under an iterator it
        // could not destroy): the pins are never released.
        HELD.lock().append(&mut pins);
    }
    if let Some(inner) = &owner {
        report_close(inner, entry, &outcome);
    }
    // Every effect is visible before anyone waiting is told: the log event is delivered,
    // the handle is gone (rm_live_objects), the name is free, what it depends on is let go. A
    // run that picks its resources later either finds the node (and so waits on `done` below)
    // or finds nothing. The name is freed before the pins are dropped: dropping the last pin
    // may run a dependency's deferred close, and whoever sees that close finish must find the
    // name free.
    let removed = OBJECTS.resources.remove(entry.handle);
    drop(removed);
    if let Some(inner) = &owner {
        inner.registry.lock().forget(entry.handle, &e.name);
    }
    drop(pins);
    tell_runs(entry, &outcome);
    outcome.error
}

/// Records the native close's result on the entry and its lifecycle.
fn settle(
    entry: &Stored<Entry>,
    unregistering: bool,
    errors: Vec<String>,
    ok: bool,
    forced: bool,
    native_start: Instant,
) -> Outcome {
    let e = &entry.value;
    let native_end = Instant::now();
    let error = (!ok).then(|| attempts_error(&errors));
    let attempts = if unregistering {
        0
    } else {
        errors.len() as u32 + u32::from(ok)
    };
    let (duration, leaked) = {
        let mut info = e.info.lock();
        let started = *info.started.get_or_insert(native_start);
        let d = native_end.saturating_duration_since(started);
        info.duration = Some(d);
        info.forced |= forced;
        info.error.clone_from(&error);
        info.attempts = attempts;
        (d, (info.leaked_iterators, info.leaked_snapshots))
    };
    e.lifecycle.finish(error.is_none());
    let hold = error.is_some() && !e.resource.releases_dependencies_on_failure();
    Outcome {
        unregistering,
        errors,
        error,
        forced,
        attempts,
        duration,
        native_start,
        native_end,
        hold,
        leaked,
    }
}

/// Counts the close, remembers it in the manager's history and logs it.
fn report_close(inner: &ManagerInner, entry: &Stored<Entry>, o: &Outcome) {
    let e = &entry.value;
    let m = &inner.metrics;
    Metrics::drop_one(&m.live);
    Metrics::drop_one(&m.closing);
    Metrics::bump(match o.as_str() {
        "unregistered" => &m.unregistered,
        "failed" => &m.failed,
        _ => &m.closed,
    });
    if !o.unregistering {
        m.close_duration.observe(o.duration);
        if o.forced {
            Metrics::bump(&m.forced);
        }
    }
    let mut history = inner.history.lock();
    if history.len() == HISTORY {
        history.pop_front();
    }
    history.push_back(ClosedRecord {
        handle: entry.handle.raw(),
        name: e.name.clone(),
        kind: e.kind.as_str(),
        outcome: o.as_str(),
        close_duration_ms: o.duration.as_secs_f64() * 1e3,
        forced: o.forced,
        attempts: o.attempts,
        error: o.error.clone(),
        leaked_iterators: o.leaked.0,
        leaked_snapshots: o.leaked.1,
    });
    drop(history);
    // A receiver calling close, cleanup or destroy from here would wait for this close.
    inside_close(|| log_close(inner, entry, o));
}

/// Marks the close done and tells every run waiting for it, with its step in the run's record.
fn tell_runs(entry: &Stored<Entry>, o: &Outcome) {
    let e = &entry.value;
    let runs = {
        let mut info = e.info.lock();
        info.done = true;
        std::mem::take(&mut info.runs)
    };
    for run in runs {
        let step = (!o.unregistering).then(|| CleanupStep {
            name: e.name.clone(),
            kind: e.kind.as_str(),
            handle: entry.handle.raw(),
            started_ms: run.offset_ms(o.native_start),
            finished_ms: run.offset_ms(o.native_end),
            outcome: o.as_str(),
            attempts: o.attempts,
            forced: o.forced,
            errors: o.errors.clone(),
        });
        run.finished(entry.handle, step);
    }
}

fn log_close(inner: &ManagerInner, entry: &Stored<Entry>, o: &Outcome) {
    let e = &entry.value;
    let what = || format!("{} '{}' ({})", e.kind, e.name, entry.handle);
    match &o.error {
        Some(msg) => inner.log(LogLevel::Error, || {
            format!(
                "{} failed to close: {msg}{}",
                what(),
                if o.hold {
                    "; what it depends on stays open"
                } else {
                    ""
                }
            )
        }),
        None => inner.log(LogLevel::Info, || {
            format!(
                "{} {}{} in {:.1} ms",
                what(),
                o.as_str(),
                if o.forced { " (forced)" } else { "" },
                o.duration.as_secs_f64() * 1e3
            )
        }),
    }
    let leaked = o.leaked;
    if leaked != (0, 0) {
        inner.log(LogLevel::Warn, || {
            format!(
                "{} closed with {} iterator(s) and {} snapshot(s) still open: resman closed them (leaked by the caller)",
                what(),
                leaked.0,
                leaked.1
            )
        });
    }
}

pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_owned()
    }
}

/// The failure of a finished close, if it failed.
pub(crate) fn close_failure(entry: &Stored<Entry>) -> Option<Failure> {
    let message = entry.value.info.lock().error.clone()?;
    Some(failure(entry, rm_result::RM_ERR_CLOSE_FAILED, message))
}

/// The failure of a close unfinished at a run's final deadline: its name and state, and what
/// it waits for (`waiting_on`: unfinished dependents in the run).
pub(crate) fn timeout_failure(entry: &Stored<Entry>, waiting_on: &[&str]) -> Failure {
    let e = &entry.value;
    let state = e.lifecycle.state();
    let running = e.info.lock().running_since;
    let detail = if let Some(since) = running {
        format!(
            "its close has been running for {:.0} ms",
            since.elapsed().as_secs_f64() * 1e3
        )
    } else if !waiting_on.is_empty() {
        // A few names say what it waits for; a DB waiting for 40,000 iterators needs no more.
        const NAMED: usize = 5;
        let mut names = waiting_on
            .iter()
            .take(NAMED)
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ");
        if waiting_on.len() > NAMED {
            names.push_str(&format!(" and {} more", waiting_on.len() - NAMED));
        }
        format!("waiting for {names} to finish closing first")
    } else if e.lifecycle.leases() == 0 {
        "its close has not started yet (waiting for a close thread)".to_owned()
    } else {
        format!(
            "{} operation(s) or dependent(s) still hold it; it closes when they let go",
            e.lifecycle.leases()
        )
    };
    failure(
        entry,
        rm_result::RM_ERR_TIMEOUT,
        format!(
            "did not finish closing by the deadline (state {}: {detail})",
            state.as_str()
        ),
    )
}

/// The failure entry for one resource (used by the cleanup layer).
pub(crate) fn failure(entry: &Stored<Entry>, code: rm_result, message: String) -> Failure {
    Failure {
        name: entry.value.name.to_string(),
        handle: entry.handle,
        code,
        message,
    }
}
