//! Stress, bounded for the test command (issue 7, item 5):
//! - 100,000 registered resources in a random dependency graph, cleaned up concurrently with
//!   every dependency respected;
//! - threads racing operations against closes, graceful and forced, for thousands of rounds.
//!
//! Longer forms: RESMAN_STRESS_RESOURCES=N (resources in the graph, default 100000) and
//! RESMAN_STRESS_ROUNDS=N (racing rounds, default 2000).

mod common;
use common::Rng;
use resman::manager;
use resman::{CloseMode, Config, Kind, Manager, Resource, ResourceHandle};
use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Checks, when closed, that everything depending on it closed before.
struct Node {
    index: usize,
    dependents: Arc<Vec<Mutex<Vec<usize>>>>,
    done: Arc<Vec<AtomicBool>>,
    violations: Arc<AtomicUsize>,
}

impl Resource for Node {
    fn close(&self, _mode: CloseMode) -> Result<(), String> {
        for d in self.dependents[self.index].lock().unwrap().iter() {
            if !self.done[*d].load(Ordering::SeqCst) {
                self.violations.fetch_add(1, Ordering::SeqCst);
            }
        }
        if self.done[self.index].swap(true, Ordering::SeqCst) {
            self.violations.fetch_add(1, Ordering::SeqCst); // closed twice
        }
        Ok(())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[test]
fn a_random_graph_of_100k_resources_cleans_up_respecting_every_dependency() {
    let n = env("RESMAN_STRESS_RESOURCES", 100_000);
    let seed = 0x5eed_1234_u64;
    let mut rng = Rng(seed);
    let mgr = Manager::new().unwrap();
    let dependents: Arc<Vec<Mutex<Vec<usize>>>> =
        Arc::new((0..n).map(|_| Mutex::new(Vec::new())).collect());
    let done: Arc<Vec<AtomicBool>> = Arc::new((0..n).map(|_| AtomicBool::new(false)).collect());
    let violations = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::with_capacity(n);
    let mut edges = 0usize;
    let started = Instant::now();
    for i in 0..n {
        let mut deps: Vec<usize> = Vec::new();
        if i > 0 {
            for _ in 0..(rng.next() % 4) {
                // Mostly recent resources, sometimes any: long chains and wide fan-in.
                let span = if rng.next().is_multiple_of(4) {
                    i
                } else {
                    i.min(64)
                };
                let j = i - 1 - (rng.next() as usize % span);
                if !deps.contains(&j) {
                    deps.push(j);
                }
            }
        }
        for &j in &deps {
            dependents[j].lock().unwrap().push(i);
        }
        edges += deps.len();
        let dep_handles: Vec<ResourceHandle> = deps.iter().map(|&j| handles[j]).collect();
        let node = Node {
            index: i,
            dependents: Arc::clone(&dependents),
            done: Arc::clone(&done),
            violations: Arc::clone(&violations),
        };
        handles.push(
            mgr.register(
                &format!("n{i}"),
                Kind::Foreign,
                Box::new(node),
                &dep_handles,
            )
            .unwrap(),
        );
    }
    let registered = started.elapsed();
    let started = Instant::now();
    mgr.cleanup().unwrap();
    let cleaned = started.elapsed();
    eprintln!(
        "stress: {n} resources, {edges} dependencies (seed {seed:#x}): registered in {:.0} ms, cleaned up in {:.0} ms",
        registered.as_secs_f64() * 1e3,
        cleaned.as_secs_f64() * 1e3
    );
    assert_eq!(
        violations.load(Ordering::SeqCst),
        0,
        "a dependency was not respected"
    );
    assert!(
        done.iter().all(|d| d.load(Ordering::SeqCst)),
        "every resource closed"
    );
    let st = mgr.status().unwrap();
    assert!(st.resources.is_empty());
    assert_eq!(st.totals.closed as usize, n + 1, "with the monitor");
}

/// Closed exactly once, never while an operation holds it.
struct Raced {
    in_use: Arc<AtomicU64>,
    closes: Arc<AtomicU64>,
    bad: Arc<AtomicBool>,
}

impl Resource for Raced {
    fn close(&self, _mode: CloseMode) -> Result<(), String> {
        if self.in_use.load(Ordering::SeqCst) != 0 {
            self.bad.store(true, Ordering::SeqCst);
        }
        self.closes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[test]
fn threads_racing_operations_against_closes_for_thousands_of_rounds() {
    let rounds = env("RESMAN_STRESS_ROUNDS", 2_000);
    let threads = 4;
    let mgr = Arc::new(
        Manager::with_config(Config {
            force_cleanup_timeout: Duration::from_secs(30),
            ..Config::default()
        })
        .unwrap(),
    );
    let current = Arc::new(AtomicU64::new(0));
    let in_use = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(threads + 1));
    let ops = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (current, in_use, stop, barrier, ops, refused) = (
                Arc::clone(&current),
                Arc::clone(&in_use),
                Arc::clone(&stop),
                Arc::clone(&barrier),
                Arc::clone(&ops),
                Arc::clone(&refused),
            );
            std::thread::spawn(move || loop {
                barrier.wait();
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let h = current.load(Ordering::SeqCst);
                // Operate until the resource refuses: the close has begun.
                loop {
                    match manager::lease(h, Kind::Foreign) {
                        Ok(lease) => {
                            in_use.fetch_add(1, Ordering::SeqCst);
                            ops.fetch_add(1, Ordering::Relaxed);
                            in_use.fetch_sub(1, Ordering::SeqCst);
                            drop(lease);
                        }
                        Err(e) => {
                            let code = e.code();
                            assert!(
                                matches!(
                                    code,
                                    resman::rm_result::RM_ERR_CLOSED
                                        | resman::rm_result::RM_ERR_STALE_HANDLE
                                ),
                                "{e}"
                            );
                            refused.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                }
                barrier.wait();
            })
        })
        .collect();
    let started = Instant::now();
    for round in 0..rounds {
        let closes = Arc::new(AtomicU64::new(0));
        let h = mgr
            .register(
                &format!("raced-{round}"),
                Kind::Foreign,
                Box::new(Raced {
                    in_use: Arc::clone(&in_use),
                    closes: Arc::clone(&closes),
                    bad: Arc::clone(&bad),
                }),
                &[],
            )
            .unwrap();
        current.store(h.raw(), Ordering::SeqCst);
        barrier.wait(); // workers start operating
        let mode = if round % 2 == 0 {
            CloseMode::Graceful
        } else {
            CloseMode::Forced
        };
        mgr.close_with(h, mode, None).unwrap();
        barrier.wait(); // workers saw the close
        assert_eq!(
            closes.load(Ordering::SeqCst),
            1,
            "round {round}: closed once"
        );
    }
    stop.store(true, Ordering::SeqCst);
    barrier.wait();
    for w in workers {
        w.join().unwrap();
    }
    eprintln!(
        "stress: {rounds} rounds, {threads} threads: {} operations, {} refused, {:.0} ms",
        ops.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64() * 1e3
    );
    assert!(
        !bad.load(Ordering::SeqCst),
        "a close ran while an operation held the resource"
    );
}
