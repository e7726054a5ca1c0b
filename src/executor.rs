//! Where close work runs: a small process-wide pool of threads that grows past closes that
//! hang, so a stuck close callback never holds up the closer or unrelated resources.
//!
//! * At most `target` jobs (the machine's parallelism, 2 to 8) run at full speed; a job that
//!   has run longer than [`STALL`] stops counting, so a hung callback costs one thread, not a
//!   slot. A keeper thread, alive only while jobs wait and no worker is free, checks every
//!   [`STALL`] and adds a worker when the running ones are all stalled.
//! * A worker with nothing to do for [`IDLE`] exits: a quiet process keeps no resman threads.
//! * A job's panic is caught (close work catches its own; this is the last line).
//! * [`submit`] hands the job back when no thread can be started at all (the OS refused and
//!   no worker exists): the caller runs it itself, which is what resman did before the pool.

use parking_lot::{Condvar, Mutex};
use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A unit of close work.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// A job running longer than this no longer counts against the pool's parallelism.
pub const STALL: Duration = Duration::from_millis(50);
/// A worker idle this long exits.
pub const IDLE: Duration = Duration::from_secs(2);
/// Threads at most, stalled ones included (each is one hung callback at least).
pub const MAX_WORKERS: usize = 1024;

#[derive(Default)]
struct PoolState {
    queue: VecDeque<Job>,
    /// Workers waiting for a job.
    idle: usize,
    /// Start of the job each busy worker runs, by worker id.
    running: HashMap<u64, Instant>,
    workers: usize,
    keeper: bool,
    spawned: u64,
}

impl PoolState {
    fn stalled(&self) -> usize {
        self.running
            .values()
            .filter(|t| t.elapsed() >= STALL)
            .count()
    }
}

struct Pool {
    state: Mutex<PoolState>,
    cv: Condvar,
    target: usize,
}

static POOL: once_cell::sync::Lazy<Arc<Pool>> = once_cell::sync::Lazy::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    Arc::new(Pool {
        state: Mutex::new(PoolState::default()),
        cv: Condvar::new(),
        target: cores.clamp(2, 8),
    })
});

/// Runs `job` on a pool thread. Returns it when no thread could run it (the caller runs it).
pub fn submit(job: Job) -> Option<Job> {
    let pool = &*POOL;
    let mut s = pool.state.lock();
    s.queue.push_back(job);
    if s.idle >= s.queue.len() {
        pool.cv.notify_one();
        return None;
    }
    if s.workers - s.stalled().min(s.workers) < pool.target && s.workers < MAX_WORKERS {
        if spawn_worker(&mut s).is_ok() {
            return None;
        }
        if s.workers == 0 {
            return s.queue.pop_back();
        }
    }
    if !s.keeper && spawn_keeper().is_ok() {
        s.keeper = true;
    }
    None
}

/// Threads of the pool right now (stalled ones included), and threads started so far.
pub fn workers() -> (usize, u64) {
    let s = POOL.state.lock();
    (s.workers, s.spawned)
}

fn spawn_worker(s: &mut PoolState) -> std::io::Result<()> {
    let id = s.spawned;
    std::thread::Builder::new()
        .name("resman-close".into())
        .spawn(move || worker(id))?;
    s.workers += 1;
    s.spawned += 1;
    Ok(())
}

fn spawn_keeper() -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("resman-keeper".into())
        .spawn(keeper)
        .map(|_| ())
}

fn worker(id: u64) {
    let pool = &*POOL;
    let mut s = pool.state.lock();
    loop {
        if let Some(job) = s.queue.pop_front() {
            s.running.insert(id, Instant::now());
            drop(s);
            // Close work catches its own panics; this keeps the worker alive regardless.
            let _ = catch_unwind(AssertUnwindSafe(job));
            s = pool.state.lock();
            s.running.remove(&id);
            continue;
        }
        s.idle += 1;
        let timed_out = pool.cv.wait_for(&mut s, IDLE).timed_out();
        s.idle -= 1;
        if timed_out && s.queue.is_empty() {
            s.workers -= 1;
            return;
        }
    }
}

/// Adds a worker while jobs wait behind stalled ones; exits once nothing waits.
fn keeper() {
    let pool = &*POOL;
    loop {
        // A policy timer (how long a job may run before it stops counting), not a wait for
        // another thread's state.
        std::thread::sleep(STALL);
        let mut s = pool.state.lock();
        if s.queue.is_empty() || s.workers >= MAX_WORKERS {
            s.keeper = false;
            return;
        }
        let active = s.workers - s.stalled().min(s.workers);
        if s.idle < s.queue.len() && active < pool.target {
            let _ = spawn_worker(&mut s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn jobs_run_and_a_hung_job_does_not_block_the_next() {
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel::<u32>();
        // More hung jobs than the pool's target parallelism.
        let hung = POOL.target + 1;
        let release_rx = Arc::new(Mutex::new(release_rx));
        for i in 0..hung {
            let r = Arc::clone(&release_rx);
            let d = done_tx.clone();
            assert!(submit(Box::new(move || {
                let _ = r.lock().recv();
                let _ = d.send(i as u32);
            }))
            .is_none());
        }
        let d = done_tx.clone();
        assert!(submit(Box::new(move || {
            let _ = d.send(999);
        }))
        .is_none());
        // The quick job finishes while every earlier one is still blocked.
        assert_eq!(done_rx.recv().unwrap(), 999);
        for _ in 0..hung {
            release_tx.send(()).unwrap();
        }
        let mut rest: Vec<u32> = (0..hung).map(|_| done_rx.recv().unwrap()).collect();
        rest.sort_unstable();
        assert_eq!(rest, (0..hung as u32).collect::<Vec<_>>());
    }
}
