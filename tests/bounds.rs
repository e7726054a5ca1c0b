//! The core's promises under concurrency (no RocksDB): a close's set is fixed when it is asked
//! for, a cleanup's bound holds while other threads keep registering, leak counting is linear,
//! and exactly one caller wins each close.
//!
//! Elapsed-time checks here only catch a hang or a quadratic blow-up (bounds 10x to 100x what
//! the run needs); speed is measured in `make bench`.

mod common;
use common::wait_until;
use resman::{manager, CloseMode, Config, Error, Kind, Leak, Manager, Resource, ResourceHandle};
use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A resource whose close counts itself.
struct Counted(Arc<AtomicUsize>);

impl Resource for Counted {
    fn close(&self, _mode: CloseMode) -> Result<(), String> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn can_unregister(&self) -> bool {
        true
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A close that blocks until the test opens the gate: lets a test act while a close or
/// cleanup is known to be under way.
#[derive(Default)]
struct Gate {
    state: Mutex<(bool, bool)>, // (entered, open)
    cv: Condvar,
}

impl Gate {
    fn wait_entered(&self) {
        let mut s = self.state.lock().unwrap();
        while !s.0 {
            s = self.cv.wait(s).unwrap();
        }
    }
    fn open(&self) {
        self.state.lock().unwrap().1 = true;
        self.cv.notify_all();
    }
}

struct Gated(Arc<Gate>);

impl Resource for Gated {
    fn close(&self, _mode: CloseMode) -> Result<(), String> {
        let mut s = self.0.state.lock().unwrap();
        s.0 = true;
        self.0.cv.notify_all();
        while !s.1 {
            s = self.0.cv.wait(s).unwrap();
        }
        Ok(())
    }
    fn can_unregister(&self) -> bool {
        true
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A counted resource that reports itself as a leak of `kind` when swept along, or (`None`)
/// collects the leaks swept along with it, as a DB does.
struct Leaky(Arc<AtomicUsize>, Option<Leak>);

impl Resource for Leaky {
    fn close(&self, _mode: CloseMode) -> Result<(), String> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn leak(&self) -> Option<Leak> {
        self.1
    }
    fn collects_leaks(&self) -> bool {
        self.1.is_none()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn leaky(n: &Arc<AtomicUsize>, leak: Option<Leak>) -> Box<Leaky> {
    Box::new(Leaky(Arc::clone(n), leak))
}

fn counted(n: &Arc<AtomicUsize>) -> Box<Counted> {
    Box::new(Counted(Arc::clone(n)))
}

fn config(graceful: Duration, forced: Duration) -> Config {
    Config {
        cleanup_timeout: graceful,
        force_cleanup_timeout: forced,
        max_retries: 0,
        ..Config::default()
    }
}

/// A manager holding `parent` (counted) and `child` (named `child_name`), which depends on it
/// and whose close blocks in `gate`: a test acts while a close of the parent, or a cleanup, is
/// known to be under way.
struct Blocked {
    mgr: Arc<Manager>,
    closes: Arc<AtomicUsize>,
    gate: Arc<Gate>,
    parent: ResourceHandle,
    child: ResourceHandle,
}

fn blocked(graceful: Duration, forced: Duration, child_name: &str) -> Blocked {
    let mgr = Arc::new(Manager::with_config(config(graceful, forced)).unwrap());
    let closes = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Gate::default());
    let parent = mgr
        .register("parent", Kind::Foreign, counted(&closes), &[])
        .unwrap();
    let child = mgr
        .register(
            child_name,
            Kind::Foreign,
            Box::new(Gated(Arc::clone(&gate))),
            &[parent],
        )
        .unwrap();
    Blocked {
        mgr,
        closes,
        gate,
        parent,
        child,
    }
}

#[test]
fn registrations_are_refused_while_a_cleanup_runs_and_accepted_after_it() {
    let Blocked {
        mgr,
        closes,
        gate,
        parent,
        ..
    } = blocked(Duration::from_secs(60), Duration::from_secs(5), "gated");
    let cleaner = {
        let mgr = Arc::clone(&mgr);
        thread::spawn(move || mgr.cleanup())
    };
    // The cleanup is running: its first close is blocked in the gate.
    gate.wait_entered();
    let refused = mgr.register("late", Kind::Foreign, counted(&closes), &[]);
    assert!(
        matches!(&refused, Err(Error::Closed(m)) if m.contains("cleaning up")),
        "{refused:?}"
    );
    let refused = mgr.register("late-child", Kind::Foreign, counted(&closes), &[parent]);
    assert!(matches!(refused, Err(Error::Closed(_))), "{refused:?}");
    assert!(matches!(
        manager::check_names_free(mgr.handle().raw(), &["x".to_owned()]),
        Err(Error::Closed(_))
    ));
    gate.open();
    cleaner.join().unwrap().unwrap();
    // A refused resource was dropped, never closed; what the cleanup chose was closed.
    assert_eq!(closes.load(Ordering::SeqCst), 1);
    // The manager is usable again.
    let again = mgr
        .register("after", Kind::Foreign, counted(&closes), &[])
        .unwrap();
    mgr.close(again).unwrap();
    assert_eq!(closes.load(Ordering::SeqCst), 2);
}

#[test]
fn a_resource_whose_close_was_asked_for_takes_no_new_dependent() {
    let Blocked {
        mgr,
        closes,
        gate,
        parent,
        child,
    } = blocked(Duration::from_secs(60), Duration::from_secs(5), "gated");
    let other = mgr
        .register("other", Kind::Foreign, counted(&closes), &[])
        .unwrap();
    let closer = {
        let mgr = Arc::clone(&mgr);
        thread::spawn(move || mgr.close(parent))
    };
    gate.wait_entered();
    // The parent's own close has not begun (its dependent is closing), yet it is sealed.
    let st = mgr.status().unwrap();
    assert_eq!(
        st.resources
            .iter()
            .find(|r| r.name == "parent")
            .unwrap()
            .state,
        "active"
    );
    let refused = mgr.register("new-child", Kind::Foreign, counted(&closes), &[parent]);
    assert!(
        matches!(&refused, Err(Error::DependencyClosed(m)) if m.contains("its close has begun")),
        "{refused:?}"
    );
    let refused = mgr.add_dependency(other, parent);
    assert!(
        matches!(refused, Err(Error::DependencyClosed(_))),
        "{refused:?}"
    );
    // Unrelated registrations go on: only a manager-wide cleanup refuses them.
    let free = mgr
        .register("unrelated", Kind::Foreign, counted(&closes), &[other])
        .unwrap();
    // The closes that the running close includes are somebody else's now.
    assert!(matches!(mgr.close(parent), Err(Error::AlreadyClosed(_))));
    assert!(matches!(mgr.close(child), Err(Error::AlreadyClosed(_))));
    assert!(matches!(
        mgr.unregister(child),
        Err(Error::AlreadyClosed(_))
    ));
    gate.open();
    closer.join().unwrap().unwrap();
    assert_eq!(closes.load(Ordering::SeqCst), 1, "the parent closed, once");
    mgr.close(free).unwrap();
}

/// Registrations racing a cleanup of the whole manager: the cleanup closes what it chose and
/// returns (the old code accepted registrations during the run and chased them for minutes).
#[test]
fn a_cleanup_returns_while_eight_threads_keep_registering() {
    let mgr = Arc::new(
        Manager::with_config(config(Duration::from_secs(30), Duration::from_secs(5))).unwrap(),
    );
    let closes = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Gate::default());
    let base = mgr
        .register("base", Kind::Foreign, counted(&closes), &[])
        .unwrap();
    for i in 0..1000 {
        mgr.register(&format!("r{i}"), Kind::Foreign, counted(&closes), &[base])
            .unwrap();
    }
    // Holds the cleanup open until the racing threads have been refused at least once.
    mgr.register(
        "gated",
        Kind::Foreign,
        Box::new(Gated(Arc::clone(&gate))),
        &[base],
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (mgr, stop, refused, accepted, closes) = (
                Arc::clone(&mgr),
                Arc::clone(&stop),
                Arc::clone(&refused),
                Arc::clone(&accepted),
                Arc::clone(&closes),
            );
            thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let deps: &[ResourceHandle] = if i.is_multiple_of(2) { &[base] } else { &[] };
                    let name = format!("t{t}-{i}");
                    match mgr.register(&name, Kind::Foreign, counted(&closes), deps) {
                        Ok(_) => accepted.fetch_add(1, Ordering::SeqCst),
                        Err(Error::Closed(_) | Error::DependencyClosed(_)) => {
                            refused.fetch_add(1, Ordering::SeqCst)
                        }
                        Err(e) => panic!("unexpected refusal: {e}"),
                    };
                }
            })
        })
        .collect();
    // Some registrations go in first, so the cleanup has racing work to choose from.
    wait_until(|| accepted.load(Ordering::SeqCst) > 100);
    let started = Instant::now();
    let cleaner = {
        let mgr = Arc::clone(&mgr);
        thread::spawn(move || mgr.cleanup())
    };
    gate.wait_entered();
    wait_until(|| refused.load(Ordering::SeqCst) > 0);
    gate.open();
    let result = cleaner.join().unwrap();
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    assert!(result.is_ok(), "{result:?}");
    assert!(took < Duration::from_secs(30), "the cleanup took {took:?}");
    // Everything registered before the cleanup chose its set was closed exactly once; what
    // came after it returned is still open and closes now.
    mgr.cleanup().unwrap();
    let total = accepted.load(Ordering::SeqCst) + 1001;
    assert_eq!(
        closes.load(Ordering::SeqCst),
        total,
        "each accepted resource closed once"
    );
}

/// Closing a DB-like resource with 100,000 open iterator-like dependents: the leaks are
/// counted in one pass (the old count searched the set once per leaked child, under the
/// registry lock: 40,000 took 14 s, 100,000 over 2 minutes).
#[test]
fn closing_a_parent_of_100k_leaked_children_counts_them_in_linear_time() {
    // Bounds the run needs a twentieth of; the old count alone took longer than both.
    let mgr = Manager::with_config(config(Duration::from_secs(3), Duration::from_secs(3))).unwrap();
    let closes = Arc::new(AtomicUsize::new(0));
    let db = mgr
        .register("db", Kind::Db, leaky(&closes, None), &[])
        .unwrap();
    let n = 100_000;
    for i in 0..n {
        let (kind, leak) = if i % 4 == 0 {
            (Kind::Snapshot, Leak::Snapshot)
        } else {
            (Kind::Iterator, Leak::Iterator)
        };
        mgr.register(
            &format!("db/child#{i}"),
            kind,
            leaky(&closes, Some(leak)),
            &[db],
        )
        .unwrap();
    }
    let started = Instant::now();
    mgr.close(db).unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(30), "closing took {took:?}");
    assert_eq!(closes.load(Ordering::SeqCst), n + 1);
    let st = mgr.status().unwrap();
    assert_eq!(st.totals.leaked_iterators, (n - n / 4) as u64);
    assert_eq!(st.totals.leaked_snapshots, (n / 4) as u64);
    let rec = st
        .recently_closed
        .iter()
        .find(|r| &*r.name == "db")
        .unwrap();
    assert_eq!(rec.leaked_iterators, (n - n / 4) as u64);
    assert_eq!(rec.leaked_snapshots, (n / 4) as u64);
}

/// A child closed by its owner before the parent's close is not a leak; one whose close was
/// asked for first (sealed by another close) is not counted either.
#[test]
fn children_closed_by_their_owner_are_not_counted_as_leaked() {
    let mgr = Manager::new().unwrap();
    let closes = Arc::new(AtomicUsize::new(0));
    let db = mgr
        .register("db", Kind::Db, leaky(&closes, None), &[])
        .unwrap();
    let it = |name: &str| {
        mgr.register(
            name,
            Kind::Iterator,
            leaky(&closes, Some(Leak::Iterator)),
            &[db],
        )
        .unwrap()
    };
    let a = it("db/it#1");
    it("db/it#2");
    // A resource that reports no leak is not counted, whatever its handle's kind.
    mgr.register("db/quiet", Kind::Iterator, counted(&closes), &[db])
        .unwrap();
    mgr.close(a).unwrap();
    mgr.close(db).unwrap();
    let st = mgr.status().unwrap();
    assert_eq!(st.totals.leaked_iterators, 1);
}

/// 16 threads close one resource at once, 300 times over: exactly one is told it won.
#[test]
fn exactly_one_of_sixteen_racing_closes_wins() {
    let mgr = Arc::new(Manager::new().unwrap());
    let closes = Arc::new(AtomicUsize::new(0));
    for round in 0..300 {
        let kind = [Kind::Foreign, Kind::Iterator, Kind::Snapshot][round % 3];
        let h = mgr
            .register(&format!("r{round}"), kind, counted(&closes), &[])
            .unwrap();
        let go = Arc::new(Barrier::new(16));
        let results: Vec<_> = (0..16)
            .map(|_| {
                let (mgr, go) = (Arc::clone(&mgr), Arc::clone(&go));
                thread::spawn(move || {
                    go.wait();
                    mgr.close(h)
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let won = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "round {round}: {results:?}");
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Ok(()) | Err(Error::AlreadyClosed(_)))),
            "round {round}: {results:?}"
        );
    }
    assert_eq!(closes.load(Ordering::SeqCst), 300);
}

/// `close` against `unregister` of the same resource, eight pairs at a time: exactly one of
/// each pair returns Ok, and the close callback runs if and only if the close won.
#[test]
fn close_and_unregister_racing_have_exactly_one_winner() {
    const PAIRS: usize = 8;
    let mgr = Arc::new(Manager::new().unwrap());
    for round in 0..250 {
        let go = Arc::new(Barrier::new(2 * PAIRS));
        let mut pairs = Vec::new();
        for p in 0..PAIRS {
            let closes = Arc::new(AtomicUsize::new(0));
            let h = mgr
                .register(
                    &format!("r{round}-{p}"),
                    Kind::Foreign,
                    counted(&closes),
                    &[],
                )
                .unwrap();
            let spawn = |unregister: bool| {
                let (mgr, go) = (Arc::clone(&mgr), Arc::clone(&go));
                thread::spawn(move || {
                    go.wait();
                    if unregister {
                        mgr.unregister(h)
                    } else {
                        mgr.close(h)
                    }
                })
            };
            pairs.push((closes, spawn(false), spawn(true)));
        }
        for (p, (closes, closer, unregisterer)) in pairs.into_iter().enumerate() {
            let closed = closer.join().unwrap();
            let unregistered = unregisterer.join().unwrap();
            let at = format!("round {round}, pair {p}");
            match (&closed, &unregistered) {
                (Ok(()), Err(Error::AlreadyClosed(_))) => {
                    assert_eq!(closes.load(Ordering::SeqCst), 1, "{at}: the close ran");
                }
                (Err(Error::AlreadyClosed(_)), Ok(())) => {
                    assert_eq!(closes.load(Ordering::SeqCst), 0, "{at}: unregistered");
                }
                other => panic!("{at}: {other:?}"),
            }
        }
    }
}

/// Closing through a destroyed manager: its destroy closed everything, so the resource is
/// already closed.
#[test]
fn a_close_after_the_manager_was_destroyed_is_already_closed() {
    let mgr = Manager::new().unwrap();
    let closes = Arc::new(AtomicUsize::new(0));
    let h = mgr
        .register("r", Kind::Foreign, counted(&closes), &[])
        .unwrap();
    let m = mgr.handle();
    mgr.destroy().unwrap();
    assert_eq!(closes.load(Ordering::SeqCst), 1);
    let again = manager::close(m.raw(), h.raw(), CloseMode::Graceful, None);
    assert!(
        matches!(&again, Err(Error::AlreadyClosed(msg)) if msg.contains("destroyed")),
        "{again:?}"
    );
}

/// A cleanup's failures by resource, with resman's full reasons, for bindings that cannot
/// read them from a 511-byte message.
#[test]
fn the_last_cleanups_failures_are_kept_by_resource_with_their_full_reasons() {
    let Blocked {
        mgr, closes, gate, ..
    } = blocked(Duration::from_millis(50), Duration::from_millis(50), "hung");
    let (op, f) = manager::cleanup_failures(mgr.handle().raw()).unwrap();
    assert!(op.is_none() && f.is_empty());
    let err = mgr.cleanup().unwrap_err();
    assert_eq!(err.code(), resman::rm_result::RM_ERR_TIMEOUT);
    let (op, f) = manager::cleanup_failures(mgr.handle().raw()).unwrap();
    assert_eq!(op, Some("cleanup"));
    let names: Vec<&str> = f.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["hung", "parent"], "dependents first");
    assert!(
        f[0].message.contains("its close has been running"),
        "{}",
        f[0].message
    );
    assert!(
        f[1].message
            .contains("waiting for 'hung' to finish closing first"),
        "{}",
        f[1].message
    );
    // A close of one resource does not replace the report.
    let other = mgr
        .register("other", Kind::Foreign, counted(&closes), &[])
        .unwrap();
    mgr.close(other).unwrap();
    assert_eq!(
        manager::cleanup_failures(mgr.handle().raw())
            .unwrap()
            .1
            .len(),
        2
    );
    gate.open();
    wait_until(|| closes.load(Ordering::SeqCst) == 2);
}

/// Records whether, during its own close, it could still take a lease on what it depends on.
struct Prober {
    parent: Arc<AtomicUsize>,
    could_use_parent: Arc<Mutex<Option<bool>>>,
}

impl Resource for Prober {
    fn close(&self, _mode: CloseMode) -> Result<(), String> {
        let parent = self.parent.load(Ordering::SeqCst) as u64;
        *self.could_use_parent.lock().unwrap() =
            Some(manager::lease(parent, Kind::Foreign).is_ok());
        Ok(())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A forced close refuses new operations on everything it closes at once: a dependent's close
/// already finds what it depends on refusing leases (the old scheduler launched the
/// dependent's close before beginning its dependency's, so it sometimes could still use it),
/// while the dependency's native close still waits for the dependent's.
#[test]
fn under_a_forced_close_a_dependent_finds_its_dependency_refusing_operations() {
    let mgr = Manager::new().unwrap();
    for round in 0..200 {
        let closes = Arc::new(AtomicUsize::new(0));
        let parent = mgr
            .register(&format!("p{round}"), Kind::Foreign, counted(&closes), &[])
            .unwrap();
        let told = Arc::new(Mutex::new(None));
        mgr.register(
            &format!("d{round}"),
            Kind::Foreign,
            Box::new(Prober {
                parent: Arc::new(AtomicUsize::new(parent.raw() as usize)),
                could_use_parent: Arc::clone(&told),
            }),
            &[parent],
        )
        .unwrap();
        let forced = round % 2 == 0;
        if forced {
            mgr.close_with(parent, CloseMode::Forced, Some(Duration::from_secs(30)))
                .unwrap();
        } else {
            mgr.close(parent).unwrap();
        }
        let could = told
            .lock()
            .unwrap()
            .take()
            .expect("the dependent's close ran");
        assert_eq!(could, !forced, "round {round}: forced {forced}");
        assert_eq!(closes.load(Ordering::SeqCst), 1);
    }
}
