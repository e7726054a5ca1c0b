//! The cleanup policy with test resources (no RocksDB): configuration, escalation from
//! graceful to forced, hung callbacks, retries, the failure rule per kind, concurrency that
//! respects every dependency, the record of the order used, and the metrics.

mod common;
use common::{wait_until, Rng};
use resman::manager::{self, Lease};
use resman::monitor::{CleanupRecord, HistogramSnapshot, Status};
use resman::{
    rm_result, CloseMode, Config, Error, Kind, LogLevel, Manager, Resource, ResourceHandle,
};
use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Closes that were called, in order (names).
type Calls = Arc<Mutex<Vec<String>>>;

/// What a test resource's close does.
enum Act {
    Ok,
    /// Fails this many times, then succeeds.
    FailTimes(u32),
    Panic,
    /// Blocks until the receiver gets a message (or its sender is dropped).
    Hang(Mutex<mpsc::Receiver<()>>),
    /// Waits (up to 20 s) until `other` has started closing too: proves two closes overlap.
    Meet(Arc<Rendezvous>),
}

#[derive(Default)]
struct Rendezvous {
    arrived: Mutex<u32>,
    cv: Condvar,
}

impl Rendezvous {
    fn meet(&self) -> Result<(), String> {
        let mut n = self.arrived.lock().unwrap();
        *n += 1;
        self.cv.notify_all();
        let (n, timeout) = self
            .cv
            .wait_timeout_while(n, Duration::from_secs(20), |n| *n < 2)
            .unwrap();
        if timeout.timed_out() && *n < 2 {
            return Err("the other close never ran at the same time".into());
        }
        Ok(())
    }
}

struct Probe {
    name: String,
    act: Act,
    attempts: AtomicU32,
    calls: Calls,
    hold_on_failure: bool,
}

impl Resource for Probe {
    fn close(&self, _mode: CloseMode) -> Result<(), String> {
        let n = self.attempts.fetch_add(1, Ordering::SeqCst) + 1;
        self.calls.lock().unwrap().push(self.name.clone());
        match &self.act {
            Act::Ok => Ok(()),
            Act::FailTimes(k) if n <= *k => Err(format!("{} failure {n}", self.name)),
            Act::FailTimes(_) => Ok(()),
            Act::Panic => panic!("{} panics", self.name),
            Act::Hang(rx) => {
                let _ = rx.lock().unwrap().recv();
                Ok(())
            }
            Act::Meet(r) => r.meet(),
        }
    }
    fn releases_dependencies_on_failure(&self) -> bool {
        !self.hold_on_failure
    }
    fn can_unregister(&self) -> bool {
        true
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

struct Fx {
    mgr: Manager,
    calls: Calls,
}

fn config(graceful_ms: u64, forced_ms: u64, retries: u32) -> Config {
    Config {
        cleanup_timeout: Duration::from_millis(graceful_ms),
        force_cleanup_timeout: Duration::from_millis(forced_ms),
        max_retries: retries,
        retry_delay: Duration::from_millis(1),
        ..Config::default()
    }
}

impl Fx {
    fn new(c: Config) -> Fx {
        Fx {
            mgr: Manager::with_config(c).unwrap(),
            calls: Calls::default(),
        }
    }
    fn add(&self, name: &str, act: Act, deps: &[ResourceHandle]) -> ResourceHandle {
        self.add_with(name, act, deps, false)
    }
    fn add_with(
        &self,
        name: &str,
        act: Act,
        deps: &[ResourceHandle],
        hold_on_failure: bool,
    ) -> ResourceHandle {
        self.mgr
            .register(
                name,
                Kind::Foreign,
                Box::new(Probe {
                    name: name.into(),
                    act,
                    attempts: AtomicU32::new(0),
                    calls: Arc::clone(&self.calls),
                    hold_on_failure,
                }),
                deps,
            )
            .unwrap()
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
    fn status(&self) -> Status {
        self.mgr.status().unwrap()
    }
    fn record(&self) -> CleanupRecord {
        self.status().last_cleanup.expect("a cleanup ran")
    }
}

fn failures(e: &Error) -> Vec<(String, rm_result, String)> {
    match e {
        Error::Cleanup(v) => v
            .iter()
            .map(|f| (f.name.clone(), f.code, f.message.clone()))
            .collect(),
        other => vec![("?".into(), other.code(), other.to_string())],
    }
}

#[test]
fn config_defaults_and_every_out_of_range_value_is_refused_by_name() {
    let d = Config::default();
    assert_eq!(d.cleanup_timeout, Duration::from_secs(30));
    assert_eq!(d.force_cleanup_timeout, Duration::from_secs(5));
    assert_eq!(d.monitor_interval, Duration::from_secs(10));
    assert_eq!(d.max_retries, 3);
    assert_eq!(d.retry_delay, Duration::from_secs(1));
    d.validate().unwrap();
    let ms = Duration::from_millis;
    let bad: Vec<(&str, Config)> = vec![
        (
            "cleanup_timeout",
            Config {
                cleanup_timeout: ms(0),
                ..d.clone()
            },
        ),
        (
            "cleanup_timeout",
            Config {
                cleanup_timeout: ms(86_400_001),
                ..d.clone()
            },
        ),
        (
            "force_cleanup_timeout",
            Config {
                force_cleanup_timeout: ms(0),
                ..d.clone()
            },
        ),
        (
            "force_cleanup_timeout",
            Config {
                force_cleanup_timeout: ms(3_600_001),
                ..d.clone()
            },
        ),
        (
            "monitor_interval",
            Config {
                monitor_interval: ms(9),
                ..d.clone()
            },
        ),
        (
            "monitor_interval",
            Config {
                monitor_interval: ms(86_400_001),
                ..d.clone()
            },
        ),
        (
            "retry_delay",
            Config {
                retry_delay: ms(0),
                ..d.clone()
            },
        ),
        (
            "retry_delay",
            Config {
                retry_delay: ms(60_001),
                ..d.clone()
            },
        ),
        (
            "max_retries",
            Config {
                max_retries: 101,
                ..d.clone()
            },
        ),
        (
            "cleanup_timeout",
            Config {
                cleanup_timeout: Duration::from_nanos(999_999),
                ..d.clone()
            },
        ),
    ];
    for (field, c) in bad {
        let e = Manager::with_config(c.clone()).err().expect(field);
        assert_eq!(e.code(), rm_result::RM_ERR_INVALID_ARGUMENT, "{field}");
        assert!(e.to_string().starts_with(field), "{field}: {e}");
        assert_eq!(c.validate().unwrap_err(), e);
    }
    // The edges of every range are accepted; zero retries means one attempt.
    let edges = Config {
        cleanup_timeout: ms(1),
        force_cleanup_timeout: ms(3_600_000),
        monitor_interval: ms(10),
        max_retries: 0,
        retry_delay: ms(60_000),
    };
    Manager::with_config(edges).unwrap();
}

#[test]
fn what_the_graceful_phase_leaves_unfinished_is_forced() {
    let fx = Arc::new(Fx::new(config(50, 60_000, 0)));
    let busy = fx.add("busy", Act::Ok, &[]);
    fx.add("idle", Act::Ok, &[]);
    let op = manager::lease(busy.raw(), Kind::Foreign).unwrap();
    let cleaner = {
        let fx = Arc::clone(&fx);
        std::thread::spawn(move || fx.mgr.cleanup())
    };
    // The graceful phase ends with "busy" still in use: the run escalates.
    wait_until(|| {
        fx.status()
            .last_cleanup
            .is_some_and(|r| r.escalated && r.order.contains(&"idle".to_owned()))
    });
    assert!(!fx.calls().contains(&"busy".to_owned()));
    drop(op); // the forced close of "busy" runs now, well within the forced phase
    cleaner.join().unwrap().unwrap();
    let r = fx.record();
    let step = |n: &str| r.steps.iter().find(|s| &*s.name == n).unwrap().clone();
    assert!(r.escalated);
    assert!(step("busy").forced, "closed in the forced phase");
    assert!(!step("idle").forced, "closed gracefully in time");
    let t = fx.status().totals;
    assert_eq!(t.escalations, 1);
    assert_eq!(t.forced, 1);
    assert_eq!(t.timed_out, 0);
    assert_eq!(t.cleanups_failed, 0);
}

#[test]
fn a_hung_callback_is_reported_while_everything_unrelated_closes_within_the_deadline() {
    let fx = Fx::new(config(100, 100, 0));
    let (release, rx) = mpsc::channel();
    let parent = fx.add("parent", Act::Ok, &[]);
    fx.add("hung", Act::Hang(Mutex::new(rx)), &[parent]);
    let base = fx.add("base", Act::Ok, &[]);
    let mid = fx.add("mid", Act::Ok, &[base]);
    fx.add("leaf", Act::Ok, &[mid]);
    fx.add("alone", Act::Ok, &[]);
    let started = Instant::now();
    let err = fx.mgr.cleanup().unwrap_err();
    // Returns at its deadline (0.2 s), not when the callback returns (never, yet); the bound
    // here only has to be far from "never".
    assert!(started.elapsed() < Duration::from_secs(20));
    let f = failures(&err);
    let by_name: HashMap<_, _> = f.iter().map(|(n, c, m)| (n.as_str(), (*c, m))).collect();
    assert_eq!(by_name.len(), 2, "{f:?}");
    let (code, msg) = by_name["hung"];
    assert_eq!(code, rm_result::RM_ERR_TIMEOUT);
    assert!(
        msg.contains("state closing") && msg.contains("running for"),
        "{msg}"
    );
    let (code, msg) = by_name["parent"];
    assert_eq!(code, rm_result::RM_ERR_TIMEOUT);
    assert!(msg.contains("waiting for 'hung'"), "{msg}");
    for n in ["base", "mid", "leaf", "alone", "resman.monitor"] {
        assert!(fx.record().order.contains(&n.to_owned()), "{n} closed");
    }
    assert_eq!(fx.status().totals.timed_out, 2);
    // Once the callback returns, what it held closes too.
    release.send(()).unwrap();
    wait_until(|| fx.calls().contains(&"parent".to_owned()));
    wait_until(|| fx.status().resources.is_empty());
}

#[test]
fn failed_closes_are_retried_up_to_max_retries_and_report_every_attempt() {
    let fx = Fx::new(config(30_000, 5_000, 3));
    let events: Arc<Mutex<Vec<(LogLevel, String)>>> = Arc::default();
    let sink = Arc::clone(&events);
    manager::set_logger(
        fx.mgr.handle().raw(),
        Some(Arc::new(move |l, m: &str| {
            sink.lock().unwrap().push((l, m.to_owned()))
        })),
        LogLevel::Debug,
    )
    .unwrap();
    fx.add("flaky", Act::FailTimes(2), &[]);
    fx.add("broken", Act::FailTimes(u32::MAX), &[]);
    fx.add("panicky", Act::Panic, &[]);
    let err = fx.mgr.cleanup().unwrap_err();
    let f = failures(&err);
    let names: Vec<_> = f.iter().map(|x| x.0.as_str()).collect();
    assert!(names.contains(&"broken") && names.contains(&"panicky") && names.len() == 2);
    let count = |n: &str| fx.calls().iter().filter(|c| *c == n).count();
    assert_eq!(count("flaky"), 3, "two failures, then success");
    assert_eq!(count("broken"), 4, "1 + max_retries attempts");
    assert_eq!(count("panicky"), 1, "a panic is not retried");
    let broken = &f.iter().find(|x| x.0 == "broken").unwrap().2;
    for i in 1..=4 {
        assert!(
            broken.contains(&format!("[attempt {i}] broken failure {i}")),
            "{broken}"
        );
    }
    let r = fx.record();
    let step = |n: &str| r.steps.iter().find(|s| &*s.name == n).unwrap().clone();
    assert_eq!(
        (step("flaky").attempts, step("flaky").outcome),
        (3, "closed")
    );
    assert_eq!(step("flaky").errors.len(), 2);
    assert_eq!(
        (step("broken").attempts, step("broken").outcome),
        (4, "failed")
    );
    let t = fx.status().totals;
    assert_eq!(t.retries, 2 + 3);
    assert_eq!(t.close_errors, 2 + 4 + 1);
    assert_eq!(t.failed, 2);
    assert_eq!(t.closed, 2, "flaky and the monitor");
    let ev = events.lock().unwrap();
    assert!(ev
        .iter()
        .any(|(l, m)| *l == LogLevel::Warn && m.contains("'flaky'") && m.contains("retrying")));
    assert!(ev.iter().any(|(l, m)| *l == LogLevel::Error
        && m.contains("'broken'")
        && m.contains("failed 4 times")));
}

#[test]
fn retries_go_on_past_the_deadline_which_is_reported_and_stop_at_max_retries() {
    // Retries outlast the run: it returns on time, reporting the resource as timed out; the
    // callback is still called exactly 1 + max_retries times (its context's lifetime rule).
    let fx = Fx::new(Config {
        retry_delay: Duration::from_millis(100),
        ..config(20, 20, 3)
    });
    fx.add("broken", Act::FailTimes(u32::MAX), &[]);
    let err = fx.mgr.cleanup().unwrap_err();
    let f = failures(&err);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].1, rm_result::RM_ERR_TIMEOUT, "{f:?}");
    assert!(f[0].2.contains("running for"), "{f:?}");
    wait_until(|| fx.status().totals.failed == 1);
    assert_eq!(fx.calls().len(), 4);
    let rec = fx.status().recently_closed;
    let broken = rec.iter().find(|r| &*r.name == "broken").unwrap();
    assert_eq!((broken.attempts, broken.outcome), (4, "failed"));
}

#[test]
fn a_destroy_after_a_timed_out_cleanup_waits_only_the_forced_phase_for_it() {
    let fx = Fx::new(config(60_000, 100, 0));
    let (release, rx) = mpsc::channel();
    let hung = fx.add("hung", Act::Hang(Mutex::new(rx)), &[]);
    // A forced close reports it as timed out; the destroy that follows does not give it a
    // second graceful minute.
    let err = fx
        .mgr
        .close_with(hung, CloseMode::Forced, Some(Duration::from_millis(50)))
        .unwrap_err();
    assert_eq!(err.code(), rm_result::RM_ERR_TIMEOUT);
    let started = Instant::now();
    let h = fx.mgr.handle();
    let err = manager::destroy(h.raw()).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "not the graceful minute"
    );
    assert_eq!(err.code(), rm_result::RM_ERR_TIMEOUT);
    assert!(err.to_string().contains("hung"), "{err}");
    release.send(()).unwrap();
    wait_until(|| fx.calls() == vec!["hung"]);
    std::mem::forget(fx.mgr); // destroyed above
}

#[test]
fn after_a_child_fails_a_foreign_parent_goes_on_but_a_holding_child_keeps_its_parent_open() {
    let fx = Fx::new(config(100, 100, 0));
    let p1 = fx.add("parent-1", Act::Ok, &[]);
    fx.add("child-1", Act::FailTimes(u32::MAX), &[p1]);
    let p2 = fx.add("parent-2", Act::Ok, &[]);
    // Like an iterator of a DB: its failure keeps what it depends on open.
    fx.add_with("child-2", Act::FailTimes(u32::MAX), &[p2], true);
    let err = fx.mgr.cleanup().unwrap_err();
    let f = failures(&err);
    let code = |n: &str| f.iter().find(|x| x.0 == n).map(|x| x.1);
    assert_eq!(code("child-1"), Some(rm_result::RM_ERR_CLOSE_FAILED));
    assert_eq!(code("parent-1"), None, "closed after its failed child");
    assert!(fx.calls().contains(&"parent-1".to_owned()));
    assert_eq!(code("child-2"), Some(rm_result::RM_ERR_CLOSE_FAILED));
    assert_eq!(code("parent-2"), Some(rm_result::RM_ERR_TIMEOUT), "{f:?}");
    assert!(
        !fx.calls().contains(&"parent-2".to_owned()),
        "never closed under it"
    );
}

#[test]
fn independent_resources_close_at_the_same_time() {
    let fx = Fx::new(config(60_000, 5_000, 0));
    let r = Arc::new(Rendezvous::default());
    let base = fx.add("base", Act::Ok, &[]);
    fx.add("a", Act::Meet(Arc::clone(&r)), &[base]);
    fx.add("b", Act::Meet(r), &[base]);
    fx.mgr.cleanup().unwrap();
    // Both rendezvous closes succeeded, so they overlapped; the base came after both.
    let rec = fx.record();
    let step = |n: &str| rec.steps.iter().find(|s| &*s.name == n).unwrap().clone();
    assert!(step("a").finished_ms <= step("base").started_ms);
    assert!(step("b").finished_ms <= step("base").started_ms);
    assert!(
        step("a").started_ms < step("b").finished_ms
            && step("b").started_ms < step("a").finished_ms
    );
}

/// Records whether any resource closed before one of its dependents had finished.
struct Checked {
    name: String,
    dependents: Mutex<Vec<Arc<AtomicBool>>>,
    done: Arc<AtomicBool>,
    violations: Arc<Mutex<Vec<String>>>,
}

impl Resource for Checked {
    fn close(&self, _mode: CloseMode) -> Result<(), String> {
        for d in self.dependents.lock().unwrap().iter() {
            if !d.load(Ordering::SeqCst) {
                self.violations.lock().unwrap().push(self.name.clone());
            }
        }
        self.done.store(true, Ordering::SeqCst);
        Ok(())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[test]
fn a_random_graph_closes_concurrently_and_respects_every_dependency() {
    for seed in [1u64, 7, 42] {
        let mgr = Manager::with_config(config(60_000, 5_000, 0)).unwrap();
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let violations = Arc::new(Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        let mut dones: Vec<Arc<AtomicBool>> = Vec::new();
        let mut edges = Vec::new();
        for i in 0..400 {
            let done = Arc::new(AtomicBool::new(false));
            let mut deps = Vec::new();
            for _ in 0..(rng.next() % 4) {
                if i > 0 {
                    let j = (rng.next() % i as u64) as usize;
                    if !deps.contains(&j) {
                        deps.push(j);
                    }
                }
            }
            let res = Checked {
                name: format!("r{i}"),
                dependents: Mutex::new(Vec::new()),
                done: Arc::clone(&done),
                violations: Arc::clone(&violations),
            };
            let dep_handles: Vec<ResourceHandle> = deps.iter().map(|&j| handles[j]).collect();
            let h = mgr
                .register(&format!("r{i}"), Kind::Foreign, Box::new(res), &dep_handles)
                .unwrap();
            for &j in &deps {
                edges.push((i, j));
                let lease: Lease = manager::lease(handles[j].raw(), Kind::Foreign).unwrap();
                lease
                    .resource::<Checked>()
                    .unwrap()
                    .dependents
                    .lock()
                    .unwrap()
                    .push(Arc::clone(&done));
            }
            handles.push(h);
            dones.push(done);
        }
        mgr.cleanup().unwrap();
        assert!(
            violations.lock().unwrap().is_empty(),
            "seed {seed}: {violations:?}"
        );
        assert!(dones.iter().all(|d| d.load(Ordering::SeqCst)));
        let st = mgr.status().unwrap();
        let rec = st.last_cleanup.unwrap();
        assert_eq!(rec.order.len(), 401, "with the monitor");
        let at: HashMap<&str, (f64, f64)> = rec
            .steps
            .iter()
            .map(|s| (&*s.name, (s.started_ms, s.finished_ms)))
            .collect();
        for (i, j) in edges {
            let (dependent, dependency) =
                (at[format!("r{i}").as_str()], at[format!("r{j}").as_str()]);
            assert!(dependent.1 <= dependency.0, "seed {seed}: r{i} before r{j}");
        }
    }
}

fn check_histogram(h: &HistogramSnapshot, count: u64) {
    assert_eq!(h.count, count);
    assert!(h.le.windows(2).all(|w| w[0] < w[1]));
    assert!(h.buckets.windows(2).all(|w| w[0] <= w[1]), "cumulative");
    assert!(*h.buckets.last().unwrap() <= h.count);
    assert!(h.sum_seconds >= 0.0);
}

#[test]
fn metrics_match_what_happened() {
    let fx = Fx::new(config(30_000, 100, 1));
    let a = fx.add("a", Act::Ok, &[]);
    fx.add("b", Act::FailTimes(1), &[a]);
    fx.add("c", Act::FailTimes(u32::MAX), &[]);
    let d = fx.add("d", Act::Ok, &[]);
    fx.mgr.unregister(d).unwrap();
    let m = manager::metrics(fx.mgr.handle().raw()).unwrap();
    assert_eq!(
        (m.totals.registered, m.totals.active, m.totals.closing),
        (5, 4, 0)
    );
    assert!(fx.mgr.cleanup().is_err());
    fx.mgr.cleanup().unwrap(); // nothing left: a second, empty run
    let m = manager::metrics(fx.mgr.handle().raw()).unwrap();
    let t = &m.totals;
    assert_eq!(t.registered, 5);
    assert_eq!((t.active, t.closing), (0, 0));
    assert_eq!(t.closed, 3, "a, b and the monitor");
    assert_eq!(t.failed, 1);
    assert_eq!(t.unregistered, 1);
    assert_eq!(t.retries, 1 + 1);
    assert_eq!(t.close_errors, 1 + 2);
    assert_eq!((t.cleanups, t.cleanups_failed), (2, 1));
    assert_eq!(t.timed_out, 0);
    check_histogram(&m.cleanup_duration, 2);
    check_histogram(&m.close_duration, 4);
    // The status document says the same.
    let st = fx.status();
    assert_eq!(st.totals.closed, t.closed);
    assert_eq!(st.close_duration.count, 4);
    assert!(st.memory.samples >= 1, "the monitor sampled at start");
}

#[test]
fn a_dependent_closes_before_its_dependency_even_when_both_are_busy_at_the_deadline() {
    // Graceful phase ends with both in use; the forced phase still closes the dependent first.
    let fx = Arc::new(Fx::new(config(30, 60_000, 0)));
    let parent = fx.add("parent", Act::Ok, &[]);
    let child = fx.add("child", Act::Ok, &[parent]);
    let op_p = manager::lease(parent.raw(), Kind::Foreign).unwrap();
    let op_c = manager::lease(child.raw(), Kind::Foreign).unwrap();
    let cleaner = {
        let fx = Arc::clone(&fx);
        std::thread::spawn(move || fx.mgr.cleanup())
    };
    wait_until(|| fx.status().last_cleanup.is_some_and(|r| r.escalated));
    drop(op_p);
    assert!(fx.calls().is_empty(), "the parent waits for its child");
    drop(op_c);
    cleaner.join().unwrap().unwrap();
    assert_eq!(fx.calls(), vec!["child", "parent"]);
}

#[test]
fn a_closing_resource_stuck_past_the_monitor_interval_is_logged() {
    let fx = Arc::new(Fx::new(Config {
        monitor_interval: Duration::from_millis(10),
        ..config(60_000, 5_000, 0)
    }));
    let events: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&events);
    manager::set_logger(
        fx.mgr.handle().raw(),
        Some(Arc::new(move |_, m: &str| {
            sink.lock().unwrap().push(m.to_owned())
        })),
        LogLevel::Warn,
    )
    .unwrap();
    let h = fx.add("sticky", Act::Ok, &[]);
    let op = manager::lease(h.raw(), Kind::Foreign).unwrap();
    let closer = {
        let fx = Arc::clone(&fx);
        std::thread::spawn(move || fx.mgr.close(h))
    };
    wait_until(|| {
        events
            .lock()
            .unwrap()
            .iter()
            .any(|m| m.contains("'sticky'") && m.contains("has been closing for"))
    });
    drop(op);
    closer.join().unwrap().unwrap();
}

#[test]
fn a_cleanup_waits_for_a_graceful_close_someone_else_is_running() {
    // Another thread's graceful close is still in its graceful phase: the cleanup watches it
    // without cutting it short to its own (tiny) forced phase.
    let fx = Arc::new(Fx::new(config(60_000, 1, 0)));
    let h = fx.add("slow", Act::Ok, &[]);
    let op = manager::lease(h.raw(), Kind::Foreign).unwrap();
    let closer = {
        let fx = Arc::clone(&fx);
        std::thread::spawn(move || fx.mgr.close(h))
    };
    wait_until(|| {
        fx.status()
            .resources
            .iter()
            .any(|r| r.name == "slow" && r.state == "closing")
    });
    let cleaner = {
        let fx = Arc::clone(&fx);
        std::thread::spawn(move || fx.mgr.cleanup())
    };
    // The cleanup has closed the monitor and is watching "slow".
    wait_until(|| {
        fx.status().last_cleanup.is_some_and(|r| {
            r.operation == "cleanup" && r.order.contains(&"resman.monitor".to_owned())
        })
    });
    drop(op);
    closer.join().unwrap().unwrap();
    cleaner.join().unwrap().unwrap();
    assert_eq!(fx.status().totals.escalations, 0);
    assert_eq!(fx.calls(), vec!["slow"]);
}
