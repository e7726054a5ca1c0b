//! The manager with test resources (no RocksDB): ordering, deadlines, failures, races.

mod common;
use common::wait_until;
use resman::manager::{self, Lease};
use resman::{
    rm_result, CloseMode, Config, Error, Kind, Manager, ManagerHandle, Resource, ResourceHandle,
};
use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

/// What a test resource does when closed.
#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    Ok,
    Fail,
    Panic,
}

/// Shared record of what happened.
#[derive(Default)]
struct Log {
    order: Mutex<Vec<String>>,
    /// Names of resources with an operation in flight (one entry per operation).
    in_use: Mutex<Vec<String>>,
    closed_in_use: AtomicBool,
    /// `abandon` calls: the resource, and how many close attempts it had seen by then.
    abandoned: Mutex<Vec<(String, usize)>>,
}

impl Log {
    fn start(&self, name: &str) {
        self.in_use.lock().unwrap().push(name.to_owned());
    }
    fn end(&self, name: &str) {
        let mut v = self.in_use.lock().unwrap();
        let i = v.iter().position(|n| n == name).expect("started");
        v.swap_remove(i);
    }
    fn busy(&self, name: &str) -> bool {
        self.in_use.lock().unwrap().iter().any(|n| n == name)
    }
}

struct Probe {
    name: String,
    log: Arc<Log>,
    behaviour: Behaviour,
    closes: AtomicUsize,
}

impl Resource for Probe {
    fn close(&self, _mode: CloseMode) -> Result<(), String> {
        self.closes.fetch_add(1, Ordering::SeqCst);
        if self.log.busy(&self.name) {
            self.log.closed_in_use.store(true, Ordering::SeqCst);
        }
        self.log.order.lock().unwrap().push(self.name.clone());
        match self.behaviour {
            Behaviour::Ok => Ok(()),
            Behaviour::Fail => Err(format!("{} refuses to close", self.name)),
            Behaviour::Panic => panic!("{} panics while closing", self.name),
        }
    }
    fn abandon(&self) {
        let closes = self.closes.load(Ordering::SeqCst);
        self.log
            .abandoned
            .lock()
            .unwrap()
            .push((self.name.clone(), closes));
    }
    fn can_unregister(&self) -> bool {
        true
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

struct Fixture {
    mgr: Manager,
    log: Arc<Log>,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_timeout(Duration::from_secs(30))
    }
    /// A graceful bound of `t`, a short forced phase, and no retries (tests of retries set
    /// their own).
    fn with_timeout(t: Duration) -> Fixture {
        Fixture::with(Config {
            cleanup_timeout: t,
            force_cleanup_timeout: Duration::from_millis(100),
            max_retries: 0,
            ..Config::default()
        })
    }
    fn with(config: Config) -> Fixture {
        Fixture {
            mgr: Manager::with_config(config).unwrap(),
            log: Arc::new(Log::default()),
        }
    }
    fn add(&self, name: &str, behaviour: Behaviour, deps: &[ResourceHandle]) -> ResourceHandle {
        self.mgr
            .register(name, Kind::Foreign, self.probe(name, behaviour), deps)
            .unwrap()
    }
    fn probe(&self, name: &str, behaviour: Behaviour) -> Box<Probe> {
        Box::new(Probe {
            name: name.into(),
            log: Arc::clone(&self.log),
            behaviour,
            closes: AtomicUsize::new(0),
        })
    }
    /// No close under way: every close that began has finished (its resource is gone).
    fn settled(&self) -> bool {
        self.mgr
            .status()
            .unwrap()
            .resources
            .iter()
            .all(|r| r.state == "active")
    }
    fn order(&self) -> Vec<String> {
        self.log.order.lock().unwrap().clone()
    }
    /// A lease that marks the resource in use while held.
    fn use_it(&self, h: ResourceHandle) -> InUse {
        let lease = manager::lease(h.raw(), Kind::Foreign).unwrap();
        let name = lease.entry().name().to_owned();
        self.log.start(&name);
        InUse {
            lease: Some(lease),
            log: Arc::clone(&self.log),
            name,
        }
    }
    fn state(&self, h: ResourceHandle) -> Option<String> {
        let st = self.mgr.status().unwrap();
        st.resources
            .iter()
            .find(|r| r.handle == h.raw())
            .map(|r| r.state.to_string())
    }
}

struct InUse {
    lease: Option<Lease>,
    log: Arc<Log>,
    name: String,
}

impl Drop for InUse {
    fn drop(&mut self) {
        self.log.end(&self.name);
        drop(self.lease.take());
    }
}

#[test]
fn double_close_and_use_after_close_are_errors() {
    let f = Fixture::new();
    let h = f.add("a", Behaviour::Ok, &[]);
    f.mgr.close(h).unwrap();
    assert!(matches!(f.mgr.close(h), Err(Error::AlreadyClosed(_))));
    assert!(matches!(
        manager::lease(h.raw(), Kind::Foreign),
        Err(Error::Closed(_))
    ));
    assert_eq!(f.order(), vec!["a"]);
}

#[test]
fn graceful_close_waits_for_the_operation_in_flight() {
    let f = Arc::new(Fixture::new());
    let h = f.add("busy", Behaviour::Ok, &[]);
    let op = f.use_it(h);
    let closer = {
        let f = Arc::clone(&f);
        std::thread::spawn(move || f.mgr.close(h))
    };
    wait_until(|| f.state(h).as_deref() == Some("closing"));
    // Closing: new operations are refused, the one in flight goes on.
    assert!(matches!(
        manager::lease(h.raw(), Kind::Foreign),
        Err(Error::Closed(_))
    ));
    assert!(f.order().is_empty(), "not closed under a running operation");
    drop(op);
    closer.join().unwrap().unwrap();
    assert_eq!(f.order(), vec!["busy"]);
    assert!(!f.log.closed_in_use.load(Ordering::SeqCst));
}

#[test]
fn graceful_close_times_out_and_the_last_operation_closes() {
    let f = Fixture::new();
    let h = f.add("slow", Behaviour::Ok, &[]);
    let op = f.use_it(h);
    let err = f
        .mgr
        .close_with(h, CloseMode::Graceful, Some(Duration::from_millis(20)))
        .unwrap_err();
    assert_eq!(err.code(), rm_result::RM_ERR_TIMEOUT);
    assert!(err.to_string().contains("slow"), "{err}");
    assert_eq!(f.state(h).as_deref(), Some("closing"));
    assert!(f.order().is_empty());
    drop(op); // the last lease starts the deferred close (on a close thread)
    wait_until(|| f.order() == vec!["slow"] && f.settled());
    assert!(!f.log.closed_in_use.load(Ordering::SeqCst));
    assert!(matches!(f.mgr.close(h), Err(Error::AlreadyClosed(_))));
    let st = f.mgr.status().unwrap();
    assert_eq!(st.totals.timed_out, 1);
    assert_eq!(st.totals.deferred, 1);
    assert_eq!(st.totals.closed, 1);
}

#[test]
fn forced_close_does_not_wait_for_operations_and_the_last_one_closes() {
    let f = Fixture::new();
    let h = f.add("forced", Behaviour::Ok, &[]);
    let op = f.use_it(h);
    // The operation outlives the forced bound: reported as timed out, by name and state.
    let err = f
        .mgr
        .close_with(h, CloseMode::Forced, Some(Duration::from_millis(20)))
        .unwrap_err();
    assert_eq!(err.code(), rm_result::RM_ERR_TIMEOUT);
    assert!(err.to_string().starts_with("forced ("), "{err}");
    assert!(err.to_string().contains("state closing"), "{err}");
    assert!(f.order().is_empty());
    assert!(matches!(
        manager::lease(h.raw(), Kind::Foreign),
        Err(Error::Closed(_))
    ));
    drop(op);
    wait_until(|| f.order() == vec!["forced"] && f.settled());
    assert_eq!(f.mgr.status().unwrap().totals.forced, 1);

    // An operation that ends within the bound: the forced close returns once it has run.
    let h = f.add("forced-2", Behaviour::Ok, &[]);
    let op = f.use_it(h);
    let ender = std::thread::spawn(move || {
        wait_until(|| manager::lease(h.raw(), Kind::Foreign).is_err());
        drop(op);
    });
    f.mgr
        .close_with(h, CloseMode::Forced, Some(Duration::from_secs(60)))
        .unwrap();
    assert_eq!(f.order(), vec!["forced", "forced-2"]);
    ender.join().unwrap();
}

#[test]
fn failing_and_panicking_closes_are_reported_and_not_retried_by_a_second_close() {
    let f = Fixture::new();
    let bad = f.add("bad", Behaviour::Fail, &[]);
    let err = f.mgr.close(bad).unwrap_err();
    assert_eq!(err.code(), rm_result::RM_ERR_CLOSE_FAILED);
    assert!(err.to_string().contains("bad refuses to close"), "{err}");
    assert!(matches!(f.mgr.close(bad), Err(Error::AlreadyClosed(_))));

    let p = f.add("panicky", Behaviour::Panic, &[]);
    let err = f.mgr.close(p).unwrap_err();
    assert_eq!(err.code(), rm_result::RM_ERR_CLOSE_FAILED);
    assert!(err.to_string().contains("panicked"), "{err}");
    let st = f.mgr.status().unwrap();
    assert_eq!(st.totals.failed, 2);
    let rec = st
        .recently_closed
        .iter()
        .find(|r| &*r.name == "panicky")
        .unwrap();
    assert_eq!(rec.outcome, "failed");
    assert!(rec
        .error
        .as_deref()
        .unwrap()
        .contains("panics while closing"));
}

#[test]
fn a_resource_is_abandoned_once_after_its_last_failed_attempt_before_the_close_returns() {
    let f = Fixture::with(Config {
        max_retries: 2,
        retry_delay: Duration::from_millis(1),
        ..Config::default()
    });
    let good = f.add("good", Behaviour::Ok, &[]);
    let bad = f.add("bad", Behaviour::Fail, &[]);
    let panicky = f.add("panicky", Behaviour::Panic, &[]);
    f.mgr.close(good).unwrap();
    assert!(f.log.abandoned.lock().unwrap().is_empty());
    assert!(f.mgr.close(bad).is_err());
    // All three attempts were made, then it was abandoned, all before close returned.
    assert_eq!(*f.log.abandoned.lock().unwrap(), [("bad".to_string(), 3)]);
    assert!(f.mgr.close(panicky).is_err());
    // A panic is not retried: abandoned after its one attempt.
    assert_eq!(
        f.log.abandoned.lock().unwrap().last(),
        Some(&("panicky".to_string(), 1))
    );
    assert_eq!(f.log.abandoned.lock().unwrap().len(), 2);
}

#[test]
fn cleanup_closes_dependents_first() {
    let f = Fixture::new();
    let db = f.add("db", Behaviour::Ok, &[]);
    let cache = f.add("cache", Behaviour::Ok, &[]);
    let cf = f.add("cf", Behaviour::Ok, &[db]);
    let _worker = f.add("worker", Behaviour::Ok, &[cf, cache]);
    let _metrics = f.add("metrics", Behaviour::Ok, &[]);
    f.mgr.cleanup().unwrap();
    let order = f.order();
    let pos = |n: &str| order.iter().position(|x| x == n).unwrap();
    assert_eq!(order.len(), 5);
    assert!(pos("worker") < pos("cf") && pos("cf") < pos("db"));
    assert!(pos("worker") < pos("cache"));
    // The five, and the monitor.
    assert_eq!(f.mgr.status().unwrap().totals.closed, 6);
}

#[test]
fn closing_a_resource_closes_its_dependents_first_only() {
    let f = Fixture::new();
    let a = f.add("a", Behaviour::Ok, &[]);
    let b = f.add("b", Behaviour::Ok, &[a]);
    let _c = f.add("c", Behaviour::Ok, &[b]);
    let other = f.add("other", Behaviour::Ok, &[]);
    f.mgr.close(a).unwrap();
    assert_eq!(f.order(), vec!["c", "b", "a"]);
    assert_eq!(f.state(other).as_deref(), Some("active"));
}

#[test]
fn cleanup_goes_on_past_failures_and_aggregates_them() {
    let f = Fixture::new();
    let base = f.add("base", Behaviour::Ok, &[]);
    f.add("fails-1", Behaviour::Fail, &[base]);
    f.add("fine", Behaviour::Ok, &[base]);
    f.add("fails-2", Behaviour::Panic, &[]);
    let err = f.mgr.cleanup().unwrap_err();
    assert_eq!(err.code(), rm_result::RM_ERR_CLEANUP_FAILED);
    let Error::Cleanup(failures) = &err else {
        panic!("{err:?}")
    };
    let mut names: Vec<_> = failures.iter().map(|x| x.name.as_str()).collect();
    names.sort();
    assert_eq!(names, vec!["fails-1", "fails-2"]);
    // Every resource was closed exactly once, the base after its dependents.
    let order = f.order();
    let pos = |n: &str| order.iter().position(|x| x == n).unwrap();
    assert_eq!(order.len(), 4);
    assert!(pos("base") > pos("fails-1") && pos("base") > pos("fine"));
}

#[test]
fn cleanup_timeout_names_what_did_not_finish_and_closes_the_rest() {
    let f = Fixture::new();
    let stuck = f.add("stuck", Behaviour::Ok, &[]);
    let parent = f.add("parent", Behaviour::Ok, &[]);
    let child = f.add("child", Behaviour::Ok, &[parent]);
    f.add("free", Behaviour::Ok, &[]);
    let op1 = f.use_it(stuck);
    let op2 = f.use_it(child);
    let err = f
        .mgr
        .cleanup_timeout(Duration::from_millis(30), CloseMode::Graceful)
        .unwrap_err();
    assert_eq!(err.code(), rm_result::RM_ERR_TIMEOUT);
    let msg = err.to_string();
    for name in ["stuck", "child", "parent"] {
        assert!(msg.contains(name), "{name} missing from: {msg}");
    }
    assert!(!msg.contains("free"), "{msg}");
    assert_eq!(f.order(), vec!["free"]);
    drop(op2); // child closes, then its pin on parent ends: parent closes
    wait_until(|| f.order() == vec!["free", "child", "parent"]);
    drop(op1);
    wait_until(|| f.order() == vec!["free", "child", "parent", "stuck"] && f.settled());
    assert!(!f.log.closed_in_use.load(Ordering::SeqCst));
    let _ = (stuck, child);
}

#[test]
fn bad_registrations_are_refused_and_leave_nothing() {
    let f = Fixture::new();
    let a = f.add("a", Behaviour::Ok, &[]);
    let e = |r: resman::Result<ResourceHandle>| r.unwrap_err().code();
    assert_eq!(
        e(f.mgr
            .register("a", Kind::Foreign, f.probe("a", Behaviour::Ok), &[])),
        rm_result::RM_ERR_DUPLICATE_NAME
    );
    assert_eq!(
        e(f.mgr
            .register("", Kind::Foreign, f.probe("x", Behaviour::Ok), &[])),
        rm_result::RM_ERR_INVALID_ARGUMENT
    );
    let long = "n".repeat(manager::MAX_NAME_LEN + 1);
    assert_eq!(
        e(f.mgr
            .register(&long, Kind::Foreign, f.probe("x", Behaviour::Ok), &[])),
        rm_result::RM_ERR_INVALID_ARGUMENT
    );
    for bad in [0u64, 1, u64::MAX, 0x1234_5678_9abc_def0] {
        let forged = ResourceHandle::from_raw(bad);
        let code = e(f
            .mgr
            .register("x", Kind::Foreign, f.probe("x", Behaviour::Ok), &[forged]));
        assert_eq!(code, rm_result::RM_ERR_INVALID_HANDLE, "{bad:#x}");
    }
    // A dependency that is closing.
    let closing = f.add("closing", Behaviour::Ok, &[]);
    let op = f.use_it(closing);
    assert_eq!(
        f.mgr
            .close_with(closing, CloseMode::Forced, Some(Duration::ZERO))
            .unwrap_err()
            .code(),
        rm_result::RM_ERR_TIMEOUT
    );
    assert_eq!(
        e(f.mgr
            .register("x", Kind::Foreign, f.probe("x", Behaviour::Ok), &[closing])),
        rm_result::RM_ERR_DEPENDENCY_CLOSED
    );
    drop(op);
    wait_until(|| f.order() == vec!["closing"] && f.settled());
    // A dependency that is closed and gone.
    assert_eq!(
        e(f.mgr
            .register("x", Kind::Foreign, f.probe("x", Behaviour::Ok), &[closing])),
        rm_result::RM_ERR_DEPENDENCY_CLOSED
    );
    assert_eq!(
        f.mgr.add_dependency(a, closing).unwrap_err().code(),
        rm_result::RM_ERR_DEPENDENCY_CLOSED
    );
    // A forged number carrying the managers' table tag is invalid, not "the wrong kind".
    let tag_bits = f.mgr.handle().raw() & (0x3ff << 5);
    for forged in [
        tag_bits | 31 | (1 << 35),
        tag_bits | 1 | (999 << 15) | (1 << 35),
    ] {
        assert_eq!(
            manager::lease(forged, Kind::Foreign).err().unwrap().code(),
            rm_result::RM_ERR_INVALID_HANDLE,
            "{forged:#x}"
        );
    }
    // Another manager's resource.
    let other = Fixture::new();
    let theirs = other.add("theirs", Behaviour::Ok, &[]);
    assert_eq!(
        e(f.mgr
            .register("x", Kind::Foreign, f.probe("x", Behaviour::Ok), &[theirs])),
        rm_result::RM_ERR_FOREIGN_HANDLE
    );
    assert_eq!(
        f.mgr.close(theirs).unwrap_err().code(),
        rm_result::RM_ERR_FOREIGN_HANDLE
    );
    // A manager handle where a resource goes, and the reverse.
    assert_eq!(
        e(f.mgr.register(
            "x",
            Kind::Foreign,
            f.probe("x", Behaviour::Ok),
            &[ResourceHandle::from_raw(f.mgr.handle().raw())]
        )),
        rm_result::RM_ERR_WRONG_KIND
    );
    assert_eq!(
        manager::status(a.raw()).unwrap_err().code(),
        rm_result::RM_ERR_WRONG_KIND
    );
    // Only the monitor, "a" and "closing" were ever registered; nothing else was created.
    let st = f.mgr.status().unwrap();
    assert_eq!(st.totals.registered, 3);
    assert_eq!(st.resources.len(), 2);
    assert!(f.order().iter().all(|n| n == "closing"));
}

#[test]
fn dependency_cycles_are_refused() {
    let f = Fixture::new();
    let a = f.add("a", Behaviour::Ok, &[]);
    let b = f.add("b", Behaviour::Ok, &[a]);
    let c = f.add("c", Behaviour::Ok, &[b]);
    assert_eq!(
        f.mgr.add_dependency(a, c).unwrap_err().code(),
        rm_result::RM_ERR_CYCLE
    );
    assert_eq!(
        f.mgr.add_dependency(a, a).unwrap_err().code(),
        rm_result::RM_ERR_CYCLE
    );
    let d = f.add("d", Behaviour::Ok, &[]);
    f.mgr.add_dependency(d, c).unwrap();
    f.mgr.add_dependency(d, c).unwrap(); // idempotent
    f.mgr.cleanup().unwrap();
    assert_eq!(f.order(), vec!["d", "c", "b", "a"]);
}

#[test]
fn unregister_hands_the_resource_back_without_closing_it() {
    let f = Fixture::new();
    let a = f.add("a", Behaviour::Ok, &[]);
    let b = f.add("b", Behaviour::Ok, &[a]);
    assert_eq!(
        f.mgr.unregister(a).unwrap_err().code(),
        rm_result::RM_ERR_HAS_DEPENDENTS
    );
    f.mgr.unregister(b).unwrap();
    assert_eq!(
        f.mgr.unregister(b).unwrap_err().code(),
        rm_result::RM_ERR_ALREADY_CLOSED
    );
    f.mgr.unregister(a).unwrap();
    f.mgr.cleanup().unwrap();
    assert!(
        f.order().is_empty(),
        "unregistered resources are never closed"
    );
    assert_eq!(f.mgr.status().unwrap().totals.unregistered, 2);
    // The names are free again.
    f.add("a", Behaviour::Ok, &[]);
}

#[test]
fn destroy_closes_everything_and_kills_the_manager_handle() {
    let f = Fixture::new();
    let a = f.add("a", Behaviour::Ok, &[]);
    f.add("b", Behaviour::Ok, &[a]);
    let h = f.mgr.handle().raw();
    manager::destroy(h).unwrap();
    assert_eq!(f.order(), vec!["b", "a"]);
    assert_eq!(
        manager::destroy(h).unwrap_err().code(),
        rm_result::RM_ERR_ALREADY_CLOSED
    );
    assert_eq!(
        manager::status(h).unwrap_err().code(),
        rm_result::RM_ERR_CLOSED
    );
    assert_eq!(
        manager::cleanup(h).unwrap_err().code(),
        rm_result::RM_ERR_CLOSED
    );
}

#[test]
fn a_long_chain_of_deferred_closes_runs_without_recursion() {
    let f = Fixture::new();
    let mut prev: Option<ResourceHandle> = None;
    for i in 0..20_000 {
        let deps: Vec<ResourceHandle> = prev.into_iter().collect();
        prev = Some(f.add(&format!("r{i}"), Behaviour::Ok, &deps));
    }
    let leaf = prev.unwrap();
    let op = f.use_it(leaf);
    let f = Arc::new(f);
    let cleaner = {
        let f = Arc::clone(&f);
        std::thread::spawn(move || {
            f.mgr
                .cleanup_timeout(Duration::from_secs(600), CloseMode::Forced)
        })
    };
    // Every close begins, and waits on the leaf's operation.
    wait_until(|| f.mgr.status().unwrap().totals.closing == 20_000);
    assert!(f.order().is_empty());
    drop(op); // 20,000 closes cascade from here
    cleaner.join().unwrap().unwrap();
    let order = f.order();
    assert_eq!(order.len(), 20_000);
    assert_eq!(order[0], "r19999");
    assert_eq!(order[19_999], "r0");
}

#[test]
fn racing_operations_against_close_never_touch_a_closed_resource() {
    for round in 0..50 {
        let f = Arc::new(Fixture::new());
        let h = f.add("raced", Behaviour::Ok, &[]);
        let threads = 4;
        let barrier = Arc::new(Barrier::new(threads + 1));
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let f = Arc::clone(&f);
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut ok = 0u64;
                    loop {
                        match manager::lease(h.raw(), Kind::Foreign) {
                            Ok(lease) => {
                                f.log.start("raced");
                                ok += 1;
                                f.log.end("raced");
                                drop(lease);
                            }
                            Err(Error::Closed(_)) => return ok,
                            Err(e) => panic!("unexpected {e}"),
                        }
                    }
                })
            })
            .collect();
        barrier.wait();
        let mode = if round % 2 == 0 {
            CloseMode::Graceful
        } else {
            CloseMode::Forced
        };
        f.mgr.close_with(h, mode, None).unwrap();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(f.order(), vec!["raced"], "closed exactly once");
        assert!(!f.log.closed_in_use.load(Ordering::SeqCst));
    }
}

#[test]
fn status_lists_resources_and_serialises_to_json() {
    let f = Fixture::new();
    let a = f.add("alpha", Behaviour::Ok, &[]);
    f.add("beta", Behaviour::Ok, &[a]);
    let st = f.mgr.status().unwrap();
    let json: serde_json::Value = serde_json::from_str(&st.to_json()).unwrap();
    // With the monitor.
    assert_eq!(json["totals"]["registered"], 3);
    assert_eq!(json["totals"]["active"], 3);
    assert_eq!(json["cleanup_timeout_ms"], 30_000);
    assert_eq!(json["config"]["force_cleanup_timeout_ms"], 100);
    let res = &json["resources"].as_array().unwrap()[1..];
    assert_eq!(json["resources"][0]["kind"], "monitor");
    assert_eq!(res[0]["name"], "alpha");
    assert_eq!(res[0]["kind"], "foreign");
    assert_eq!(res[0]["state"], "active");
    assert_eq!(res[0]["leases"], 1, "beta's pin");
    assert_eq!(res[0]["dependents"][0], "beta");
    assert_eq!(res[1]["depends_on"][0], "alpha");
}

/// A resource whose close calls back into the manager.
struct Reentrant {
    mgr: ManagerHandle,
    codes: Arc<Mutex<Vec<rm_result>>>,
}

impl Resource for Reentrant {
    fn close(&self, _: CloseMode) -> Result<(), String> {
        let mut codes = self.codes.lock().unwrap();
        let mgr = self.mgr.raw();
        codes.push(manager::cleanup(mgr).unwrap_err().code());
        codes.push(manager::destroy(mgr).unwrap_err().code());
        codes.push(
            manager::close(mgr, 1, CloseMode::Forced, None)
                .unwrap_err()
                .code(),
        );
        // Reading the status is fine.
        codes.push(manager::status(mgr).map_or_else(|e| e.code(), |_| rm_result::RM_OK));
        Ok(())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[test]
fn close_callbacks_cannot_wait_for_themselves() {
    let mgr = Manager::new().unwrap();
    let codes = Arc::new(Mutex::new(Vec::new()));
    let h = mgr
        .register(
            "reentrant",
            Kind::Foreign,
            Box::new(Reentrant {
                mgr: mgr.handle(),
                codes: Arc::clone(&codes),
            }),
            &[],
        )
        .unwrap();
    mgr.close(h).unwrap();
    use rm_result::*;
    assert_eq!(
        *codes.lock().unwrap(),
        vec![
            RM_ERR_INVALID_ARGUMENT,
            RM_ERR_INVALID_ARGUMENT,
            RM_ERR_INVALID_ARGUMENT,
            RM_OK
        ]
    );
}

#[test]
fn huge_timeouts_mean_no_deadline_not_an_overflow() {
    let f = Fixture::new();
    let a = f.add("a", Behaviour::Ok, &[]);
    f.mgr
        .close_with(a, CloseMode::Graceful, Some(Duration::MAX))
        .unwrap();
    f.add("b", Behaviour::Ok, &[]);
    f.mgr
        .cleanup_timeout(Duration::MAX, CloseMode::Graceful)
        .unwrap();
    f.add("c", Behaviour::Ok, &[]);
    f.mgr
        .close_with(
            ResourceHandle::from_raw(f.mgr.status().unwrap().resources.last().unwrap().handle),
            CloseMode::Forced,
            Some(Duration::MAX),
        )
        .unwrap();
    assert_eq!(f.order(), vec!["a", "b", "c"]);
}

#[test]
fn zero_cleanup_timeout_is_refused() {
    let err = Manager::with_config(Config {
        cleanup_timeout: Duration::ZERO,
        ..Config::default()
    })
    .err()
    .unwrap();
    assert_eq!(err.code(), rm_result::RM_ERR_INVALID_ARGUMENT);
}

#[test]
fn log_events_reach_the_receiver_at_the_levels_asked_for() {
    let f = Fixture::with_timeout(Duration::from_millis(200));
    let events: Arc<Mutex<Vec<(resman::LogLevel, String)>>> = Arc::default();
    let sink = Arc::clone(&events);
    manager::set_logger(
        f.mgr.handle().raw(),
        Some(Arc::new(move |level, msg: &str| {
            sink.lock().unwrap().push((level, msg.to_owned()))
        })),
        resman::LogLevel::Debug,
    )
    .unwrap();
    let a = f.add("a", Behaviour::Ok, &[]);
    let b = f.add("b", Behaviour::Fail, &[]);
    let busy = f.add("busy", Behaviour::Ok, &[]);
    let lease = manager::lease(busy.raw(), Kind::Foreign).unwrap();
    f.mgr.close(a).unwrap();
    assert!(f.mgr.close(b).is_err());
    assert!(matches!(f.mgr.close(busy), Err(Error::Timeout(_))));
    drop(lease);
    // The deferred close runs on a close thread: wait for its event.
    wait_until(|| {
        events
            .lock()
            .unwrap()
            .iter()
            .any(|(l, m)| *l == resman::LogLevel::Info && m.contains("'busy'"))
    });
    let ev = events.lock().unwrap().clone();
    let has = |level: resman::LogLevel, needle: &str| {
        ev.iter().any(|(l, m)| *l == level && m.contains(needle))
    };
    assert!(
        has(resman::LogLevel::Debug, "registered foreign 'a'"),
        "{ev:#?}"
    );
    assert!(has(resman::LogLevel::Info, "'a'"), "{ev:#?}");
    assert!(
        has(resman::LogLevel::Error, "b refuses to close"),
        "{ev:#?}"
    );
    assert!(
        has(resman::LogLevel::Warn, "'busy'"),
        "deferred and timed out: {ev:#?}"
    );
    assert!(
        has(resman::LogLevel::Info, "'busy'"),
        "closed by the last lease: {ev:#?}"
    );

    // A higher threshold drops the chatty levels; None removes the receiver.
    events.lock().unwrap().clear();
    let sink = Arc::clone(&events);
    manager::set_logger(
        f.mgr.handle().raw(),
        Some(Arc::new(move |level, msg: &str| {
            sink.lock().unwrap().push((level, msg.to_owned()))
        })),
        resman::LogLevel::Warn,
    )
    .unwrap();
    let c = f.add("c", Behaviour::Ok, &[]);
    f.mgr.close(c).unwrap();
    assert!(
        events.lock().unwrap().is_empty(),
        "debug and info are filtered"
    );
    manager::set_logger(f.mgr.handle().raw(), None, resman::LogLevel::Debug).unwrap();
    let d = f.add("d", Behaviour::Fail, &[]);
    assert!(f.mgr.close(d).is_err());
    assert!(events.lock().unwrap().is_empty(), "no receiver, no output");
}

/// Records the thread its close ran on.
struct Quick {
    quick: bool,
    closed_on: Arc<Mutex<Option<std::thread::ThreadId>>>,
}

impl Resource for Quick {
    fn close(&self, _mode: CloseMode) -> Result<(), String> {
        *self.closed_on.lock().unwrap() = Some(std::thread::current().id());
        Ok(())
    }
    fn closes_quickly(&self) -> bool {
        self.quick
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[test]
fn a_quick_close_with_nothing_in_flight_runs_on_the_closing_thread_and_others_on_the_pool() {
    let mgr = Manager::new().unwrap();
    let add = |quick: bool| {
        let closed_on = Arc::new(Mutex::new(None));
        let r = Box::new(Quick {
            quick,
            closed_on: Arc::clone(&closed_on),
        });
        let h = mgr.register("q", Kind::Foreign, r, &[]).unwrap();
        (h, closed_on)
    };
    let me = std::thread::current().id();
    // Quick and idle: here, graceful or forced, and when swept along by a parent's close.
    let (h, on) = add(true);
    mgr.close(h).unwrap();
    assert_eq!(*on.lock().unwrap(), Some(me));
    let (h, on) = add(true);
    mgr.close_with(h, CloseMode::Forced, None).unwrap();
    assert_eq!(*on.lock().unwrap(), Some(me));
    // Not quick: on a pool thread, so that the closer's deadline holds whatever it does.
    let (h, on) = add(false);
    mgr.close(h).unwrap();
    assert!(matches!(*on.lock().unwrap(), Some(t) if t != me));
    // Quick but in use when its close begins: the close waits on the pool as any other.
    let (h, on) = add(true);
    let lease = manager::lease(h.raw(), Kind::Foreign).unwrap();
    std::thread::scope(|s| {
        let closer = s.spawn(|| {
            mgr.close(h).unwrap();
            std::thread::current().id()
        });
        wait_until(|| {
            mgr.status()
                .unwrap()
                .resources
                .iter()
                .any(|r| r.handle == h.raw() && r.state == "closing")
        });
        assert_eq!(*on.lock().unwrap(), None, "not closed under its operation");
        drop(lease);
        let closer = closer.join().unwrap();
        assert!(matches!(*on.lock().unwrap(), Some(t) if t != closer && t != me));
    });
}
