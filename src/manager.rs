//! The manager: resources by name, the dependency graph, leases, and the close path.
//!
//! Every resource of every manager lives in one process-wide [`HandleTable`], so an operation
//! on a resource handle resolves it with one lock-free lookup and takes one lease; it never
//! touches its manager. Managers live in a second table, so a manager handle passed where a
//! resource is expected (or the reverse) is recognised as the wrong kind.
//!
//! Dependencies are leases too: a resource holds one lease ("pin") on each resource it depends
//! on from registration until its own native close has finished. So a dependency can never be
//! natively closed before its dependents, whatever order closes are asked for in and whatever
//! is still in flight: the lease protocol in [`crate::lifecycle`] enforces the order.
//!
//! Locking: the registry lock (names and graph) is never held while a resource does its work,
//! while a lease is dropped, or while a removed entry is dropped.

use crate::cleanup::{self, Outcome};
use crate::error::{rm_result, Error, Failure, Result};
use crate::handle::{tags, Handle, HandleError, HandleTable, Kind, Ref, Stored};
use crate::lifecycle::{Lifecycle, Release, State};
use crate::monitor::{ClosedRecord, Metrics, ResourceStatus, Status, Totals};
use once_cell::sync::Lazy;
use parking_lot::Mutex;
use std::any::Any;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::Deref;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// The instant `d` from now; None (no deadline) when that is past what `Instant` can hold,
/// so a caller's huge timeout means "wait as long as it takes" rather than an overflow.
fn deadline_after(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

/// Default bound of a graceful cleanup.
pub const DEFAULT_CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest accepted name, in bytes.
pub const MAX_NAME_LEN: usize = 1024;
/// Closes remembered for the status document.
const HISTORY: usize = 128;

/// How a resource is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseMode {
    /// Wait for in-flight operations (up to the deadline), then close with every courtesy
    /// (a DB flushes its memtables and syncs its WAL).
    Graceful,
    /// Refuse new operations at once and do not wait: the native close runs now if nothing is
    /// in flight, otherwise when the last in-flight operation ends. Minimal native close.
    Forced,
}

/// Anything the manager can own. Implemented by the RocksDB resources, by foreign resources
/// registered through the C ABI, and by test doubles.
pub trait Resource: Send + Sync + 'static {
    /// Releases the native resource. The manager calls this exactly once, when no lease is
    /// held and none can be taken any more, on whatever thread ends the last lease. An error
    /// (or a panic) marks the resource failed; it is never called again either way.
    fn close(&self, mode: CloseMode) -> std::result::Result<(), String>;

    /// True if `unregister` may hand this resource back to its owner without closing it. Only
    /// resources that the caller registered itself say yes; resman's own (a DB, a column
    /// family) must be closed.
    fn can_unregister(&self) -> bool {
        false
    }

    /// Extra facts for the status document (a DB's memory figures), or None. Called under a
    /// lease, so the resource is open for the call.
    fn details(&self) -> Option<serde_json::Value> {
        None
    }

    /// For downcasting to the concrete type in the layer that created it.
    fn as_any(&self) -> &dyn Any;
}

/// Manager settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Bound of a graceful cleanup, and of a close that is given no timeout. Default 30 s.
    pub cleanup_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cleanup_timeout: DEFAULT_CLEANUP_TIMEOUT,
        }
    }
}

#[derive(Default)]
struct CloseInfo {
    started: Option<Instant>,
    duration: Option<Duration>,
    forced: bool,
    deferred: bool,
    unregistering: bool,
    error: Option<String>,
    /// Iterators and snapshots still open when this (DB) resource was closed.
    leaked_iterators: u64,
    leaked_snapshots: u64,
}

/// One registered resource.
pub struct Entry {
    manager: Handle,
    owner: Weak<ManagerInner>,
    name: String,
    kind: Kind,
    resource: Box<dyn Resource>,
    lifecycle: Lifecycle,
    created: Instant,
    /// Leases held on the resources this one depends on; dropped after its native close.
    pins: Mutex<Vec<Lease<Arc<Stored<Entry>>>>>,
    info: Mutex<CloseInfo>,
}

impl Entry {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn kind(&self) -> Kind {
        self.kind
    }
    pub fn state(&self) -> State {
        self.lifecycle.state()
    }
    pub fn resource(&self) -> &dyn Resource {
        self.resource.as_ref()
    }
}

/// Something that keeps an entry's memory alive: a table reference or an `Arc`.
pub trait EntryRef: Deref<Target = Stored<Entry>> {
    fn to_arc(&self) -> Arc<Stored<Entry>>;
}

impl EntryRef for Ref<Entry> {
    fn to_arc(&self) -> Arc<Stored<Entry>> {
        Ref::to_arc(self)
    }
}

impl EntryRef for Arc<Stored<Entry>> {
    fn to_arc(&self) -> Arc<Stored<Entry>> {
        Arc::clone(self)
    }
}

/// Proof that an operation may use a resource: while a lease exists the resource is not
/// (natively) closed. Dropping the lease ends the operation; the last lease of a resource whose
/// close was deferred runs that close.
pub struct Lease<P: EntryRef = Ref<Entry>> {
    entry: P,
}

impl<P: EntryRef> Lease<P> {
    pub fn handle(&self) -> Handle {
        self.entry.handle
    }
    pub fn entry(&self) -> &Entry {
        &self.entry.value
    }
    /// The resource as its concrete type.
    pub fn resource<R: Resource>(&self) -> Option<&R> {
        self.entry.value.resource.as_any().downcast_ref::<R>()
    }
}

impl<P: EntryRef> Drop for Lease<P> {
    fn drop(&mut self) {
        if self.entry.value.lifecycle.release() == Release::RunClose {
            run_deferred(self.entry.to_arc());
        }
    }
}

fn acquire<P: EntryRef>(entry: P) -> Result<Lease<P>> {
    if entry.value.lifecycle.try_acquire() {
        Ok(Lease { entry })
    } else {
        Err(Error::Closed(describe_closed(&entry)))
    }
}

fn describe_closed(e: &Stored<Entry>) -> String {
    format!(
        "{} '{}' ({}) is {}",
        e.value.kind,
        e.value.name,
        e.handle,
        e.value.lifecycle.state().as_str()
    )
}

struct ManagerObj {
    lifecycle: Lifecycle,
    inner: Arc<ManagerInner>,
}

struct Node {
    seq: u64,
    deps: Vec<Handle>,
    dependents: HashSet<Handle>,
}

#[derive(Default)]
struct Registry {
    names: HashMap<String, Handle>,
    nodes: HashMap<Handle, Node>,
    seq: u64,
}

struct ManagerInner {
    handle: Handle,
    config: Config,
    created: Instant,
    registry: Mutex<Registry>,
    metrics: Metrics,
    history: Mutex<VecDeque<ClosedRecord>>,
    logger: parking_lot::RwLock<Option<Logger>>,
}

/// Severity of a log event (the numbers are the C API's `RM_LOG_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(i32)]
pub enum LogLevel {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
}

/// Receives a manager's log events: registrations, closes, failures, timeouts, deferred
/// closes, leaks. Called on whatever thread the event happens, never under a resman lock, so
/// it may call back into resman (except close, cleanup and destroy from inside a close).
pub type LogFn = dyn Fn(LogLevel, &str) + Send + Sync;

#[derive(Clone)]
struct Logger {
    f: Arc<LogFn>,
    max: LogLevel,
}

impl ManagerInner {
    /// Emits an event if a logger wants this level; the message is only built then.
    fn log(&self, level: LogLevel, msg: impl FnOnce() -> String) {
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

struct Objects {
    resources: HandleTable<Entry>,
    managers: HandleTable<ManagerObj>,
}

/// Freed slots held back from reuse, so a raced handle says "closed" rather than "stale".
const QUARANTINE: usize = 1024;

static OBJECTS: Lazy<Objects> = Lazy::new(|| Objects {
    resources: HandleTable::with_quarantine(
        tags::claim().expect("a free table tag at start-up"),
        QUARANTINE,
    ),
    managers: HandleTable::with_quarantine(
        tags::claim().expect("a free table tag at start-up"),
        QUARANTINE,
    ),
});

/// A lookup error, with a handle of the other table (a manager handle where a resource goes,
/// or the reverse) told apart from a number nobody issued.
fn lookup_error(e: HandleError, raw: u64, expected: &str) -> Error {
    if let HandleError::OtherTag(h, tag) = &e {
        let issued = |r: std::result::Result<(), HandleError>| {
            !matches!(r, Err(HandleError::Invalid(..) | HandleError::OtherTag(..)))
        };
        let other = if *tag == OBJECTS.managers.tag() {
            issued(OBJECTS.managers.get(raw, None).map(|_| ())).then_some("manager")
        } else if *tag == OBJECTS.resources.tag() {
            issued(OBJECTS.resources.get(raw, None).map(|_| ())).then_some("resource")
        } else {
            None
        };
        if let Some(actual) = other {
            return Error::WrongKind(format!(
                "handle {h} is a {actual} handle, expected a {expected} handle"
            ));
        }
    }
    e.into()
}

/// Looks up a resource handle (any state).
fn get_resource(raw: u64, want: Option<Kind>) -> Result<Ref<Entry>> {
    OBJECTS
        .resources
        .get(raw, want)
        .map_err(|e| lookup_error(e, raw, want.map_or("resource", Kind::as_str)))
}

/// Looks up a manager handle.
fn get_manager(raw: u64) -> Result<Ref<ManagerObj>> {
    OBJECTS
        .managers
        .get(raw, Some(Kind::Manager))
        .map_err(|e| lookup_error(e, raw, "manager"))
}

/// Live resources across all managers (for leak checks in tests and the status document).
pub fn live_resources() -> u32 {
    OBJECTS.resources.live()
}

// ---------------------------------------------------------------------------------------
// Managers

/// Creates a manager and returns its handle.
pub fn create(config: Config) -> Result<Handle> {
    if config.cleanup_timeout.is_zero() {
        return Err(Error::InvalidArgument(
            "cleanup_timeout must be greater than zero".into(),
        ));
    }
    OBJECTS
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
            }),
        })
        .map_err(Error::from)
}

/// Runs `f` on a live manager, holding a lease on it so destroy waits for the call.
fn with_manager<T>(mgr: u64, f: impl FnOnce(&Arc<ManagerInner>) -> Result<T>) -> Result<T> {
    let obj = get_manager(mgr).map_err(|e| manager_error(mgr, e))?;
    if !obj.value.lifecycle.try_acquire() {
        return Err(Error::Closed(format!(
            "manager {} was destroyed",
            obj.handle
        )));
    }
    struct Release<'a>(&'a Lifecycle);
    impl Drop for Release<'_> {
        fn drop(&mut self) {
            // A manager has no native close for the last call to run: destroy does the work.
            let _ = self.0.release();
        }
    }
    let _release = Release(&obj.value.lifecycle);
    f(&obj.value.inner)
}

fn manager_error(mgr: u64, e: Error) -> Error {
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
    let deadline = deadline_after(inner.config.cleanup_timeout);
    // Let calls already inside the manager (a register, a close) finish first.
    obj.value.lifecycle.wait_drained(deadline);
    let _ = obj.value.lifecycle.claim_close();
    let result = cleanup_until(inner, deadline, CloseMode::Graceful);
    obj.value.lifecycle.finish(result.is_ok());
    let removed = OBJECTS.managers.remove(obj.handle);
    drop(obj);
    drop(removed);
    result
}

// ---------------------------------------------------------------------------------------
// Registration

fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidArgument("name must not be empty".into()));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Error::InvalidArgument(format!(
            "name is {} bytes long, the limit is {MAX_NAME_LEN}",
            name.len()
        )));
    }
    if name.contains('\0') {
        return Err(Error::InvalidArgument("name must not contain NUL".into()));
    }
    Ok(())
}

/// Resolves a handle of this manager's (any state), checking that it belongs to `inner`.
fn resolve(inner: &ManagerInner, raw: u64, want: Option<Kind>) -> Result<Ref<Entry>> {
    let entry = get_resource(raw, want)?;
    if entry.value.manager != inner.handle {
        return Err(Error::ForeignHandle(format!(
            "{} '{}' ({}) belongs to manager {}, not to manager {}",
            entry.value.kind, entry.value.name, entry.handle, entry.value.manager, inner.handle
        )));
    }
    Ok(entry)
}

/// Registers `resource` under `name` in manager `mgr`, depending on `deps` (handles of the
/// same manager, all active). The resource is closed after everything that depends on it and
/// before everything it depends on. On error the resource is dropped (not closed).
pub fn register(
    mgr: u64,
    name: &str,
    kind: Kind,
    resource: Box<dyn Resource>,
    deps: &[u64],
) -> Result<Handle> {
    with_manager(mgr, |inner| register_in(inner, name, kind, resource, deps))
}

fn register_in(
    inner: &Arc<ManagerInner>,
    name: &str,
    kind: Kind,
    resource: Box<dyn Resource>,
    deps: &[u64],
) -> Result<Handle> {
    validate_name(name)?;
    let mut dep_refs: Vec<Arc<Stored<Entry>>> = Vec::with_capacity(deps.len());
    for (i, &d) in deps.iter().enumerate() {
        let e = resolve(inner, d, None)
            .map_err(|e| dependency_error(e).context(&format!("dependency {i}")))?;
        if !dep_refs.iter().any(|x| x.handle == e.handle) {
            dep_refs.push(e.to_arc());
        }
    }
    // Everything that might run a close when dropped (leases, the resource itself on failure)
    // is kept here and dropped after the registry lock is released.
    let mut pins = Vec::with_capacity(dep_refs.len());
    let mut payload = Some(resource);
    let result = (|| {
        let mut reg = inner.registry.lock();
        if let Some(existing) = reg.names.get(name) {
            return Err(Error::DuplicateName(format!(
                "a resource named '{name}' is already registered ({existing})"
            )));
        }
        // Pins are taken under the registry lock so that unregister can rely on "no
        // dependents in the graph" meaning "no pins".
        for dep in &dep_refs {
            match acquire(Arc::clone(dep)) {
                Ok(pin) => pins.push(pin),
                Err(_) => {
                    return Err(Error::DependencyClosed(format!(
                        "cannot depend on {}",
                        describe_closed(dep)
                    )))
                }
            }
        }
        let handle = OBJECTS.resources.insert_with(kind, |_| Entry {
            manager: inner.handle,
            owner: Arc::downgrade(inner),
            name: name.to_owned(),
            kind,
            resource: payload.take().expect("resource moved in once"),
            lifecycle: Lifecycle::new(),
            created: Instant::now(),
            pins: Mutex::new(std::mem::take(&mut pins)),
            info: Mutex::new(CloseInfo::default()),
        })?;
        reg.seq += 1;
        let seq = reg.seq;
        reg.names.insert(name.to_owned(), handle);
        for dep in &dep_refs {
            if let Some(node) = reg.nodes.get_mut(&dep.handle) {
                node.dependents.insert(handle);
            }
        }
        reg.nodes.insert(
            handle,
            Node {
                seq,
                deps: dep_refs.iter().map(|d| d.handle).collect(),
                dependents: HashSet::new(),
            },
        );
        Metrics::bump(&inner.metrics.registered);
        Ok(handle)
    })();
    drop(pins);
    drop(payload);
    match &result {
        Ok(h) => inner.log(LogLevel::Debug, || {
            format!("registered {kind} '{name}' ({h})")
        }),
        // Debug: the caller gets the error; a DB closing under a busy service refuses many.
        Err(e) => inner.log(LogLevel::Debug, || {
            format!("registering {kind} '{name}' failed: {e}")
        }),
    }
    result
}

/// Fails with `DuplicateName` (or `InvalidArgument`) unless every name is valid and free in
/// manager `mgr` right now. Lets a caller refuse early, before building an expensive resource.
pub fn check_names_free(mgr: u64, names: &[String]) -> Result<()> {
    with_manager(mgr, |inner| {
        for name in names {
            validate_name(name)?;
        }
        let reg = inner.registry.lock();
        for name in names {
            if let Some(existing) = reg.names.get(name) {
                return Err(Error::DuplicateName(format!(
                    "a resource named '{name}' is already registered ({existing})"
                )));
            }
        }
        Ok(())
    })
}

/// A dependency that is closed and gone is reported like one that is closing.
fn dependency_error(e: Error) -> Error {
    match e {
        Error::Closed(m) => Error::DependencyClosed(m),
        other => other,
    }
}

/// Makes `dependent` depend on `dependency` after both were registered. Refused when it would
/// make a cycle, when either is closing, or when they belong to different managers.
pub fn add_dependency(mgr: u64, dependent: u64, dependency: u64) -> Result<()> {
    with_manager(mgr, |inner| {
        let child = resolve(inner, dependent, None).map_err(|e| e.context("dependent"))?;
        let parent = resolve(inner, dependency, None)
            .map_err(|e| dependency_error(e).context("dependency"))?;
        // A lease on the child for the duration: its native close (which takes its pins) cannot
        // run until the new pin is in place, so the pin is always released.
        let child_lease = acquire(child.to_arc())?;
        let mut reg = inner.registry.lock();
        if reg
            .nodes
            .get(&child.handle)
            .is_some_and(|n| n.deps.contains(&parent.handle))
        {
            drop(reg);
            drop(child_lease);
            return Ok(());
        }
        if child.handle == parent.handle || reaches(&reg, parent.handle, child.handle) {
            drop(reg);
            drop(child_lease);
            return Err(Error::Cycle(format!(
                "'{}' cannot depend on '{}': '{}' already depends on '{}'",
                child.value.name, parent.value.name, parent.value.name, child.value.name
            )));
        }
        let pin = match acquire(parent.to_arc()) {
            Ok(pin) => pin,
            Err(_) => {
                drop(reg);
                drop(child_lease);
                return Err(Error::DependencyClosed(format!(
                    "cannot depend on {}",
                    describe_closed(&parent)
                )));
            }
        };
        child.value.pins.lock().push(pin);
        if let Some(n) = reg.nodes.get_mut(&child.handle) {
            n.deps.push(parent.handle);
        }
        if let Some(n) = reg.nodes.get_mut(&parent.handle) {
            n.dependents.insert(child.handle);
        }
        drop(reg);
        drop(child_lease);
        Ok(())
    })
}

/// True if `to` can be reached from `from` by following "depends on" edges.
fn reaches(reg: &Registry, from: Handle, to: Handle) -> bool {
    let mut stack = vec![from];
    let mut seen = HashSet::new();
    while let Some(h) = stack.pop() {
        if h == to {
            return true;
        }
        if seen.insert(h) {
            if let Some(n) = reg.nodes.get(&h) {
                stack.extend(n.deps.iter().copied());
            }
        }
    }
    false
}

/// Forgets a resource the caller registered, without closing it: the caller owns it again.
/// Refused for resources resman owns (close those) and while something depends on it.
pub fn unregister(mgr: u64, raw: u64) -> Result<()> {
    with_manager(mgr, |inner| {
        let entry = resolve(inner, raw, None).map_err(already_closed)?;
        {
            let reg = inner.registry.lock();
            if !entry.value.resource.can_unregister() {
                return Err(Error::OwnedResource(format!(
                    "{} '{}' ({}) is owned by resman: close it instead of unregistering it",
                    entry.value.kind, entry.value.name, entry.handle
                )));
            }
            if let Some(node) = reg.nodes.get(&entry.handle) {
                if !node.dependents.is_empty() {
                    return Err(Error::HasDependents(format!(
                        "'{}' still has {} dependent(s): close or unregister them first",
                        entry.value.name,
                        node.dependents.len()
                    )));
                }
            }
            if !entry.value.lifecycle.begin_close() {
                return Err(Error::AlreadyClosed(describe_closed(&entry)));
            }
            entry.value.info.lock().unregistering = true;
        }
        if entry.value.lifecycle.claim_close() == crate::lifecycle::Claim::RunNow {
            run_close(&entry, CloseMode::Forced);
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------
// Operations

/// Takes a lease on resource `raw`, which must be of `kind`: the entry point of every
/// operation on a resource.
#[inline]
pub fn lease(raw: u64, kind: Kind) -> Result<Lease> {
    acquire(get_resource(raw, Some(kind))?)
}

// ---------------------------------------------------------------------------------------
// Closing

fn already_closed(e: Error) -> Error {
    match e {
        Error::Closed(m) => Error::AlreadyClosed(m),
        other => other,
    }
}

/// Closes one resource after everything that (transitively) depends on it. Graceful closes
/// wait for in-flight operations up to `timeout` (default: the manager's cleanup timeout) and
/// are forced past it; forced closes return at once. Errors of every resource are aggregated.
pub fn close(mgr: u64, raw: u64, mode: CloseMode, timeout: Option<Duration>) -> Result<()> {
    refuse_inside_close("rm_close")?;
    with_manager(mgr, |inner| {
        let target = resolve(inner, raw, None).map_err(already_closed)?;
        if target.value.lifecycle.is_closing() {
            return Err(Error::AlreadyClosed(describe_closed(&target)));
        }
        let deadline = deadline_after(timeout.unwrap_or(inner.config.cleanup_timeout));
        let (outcomes, failures) = close_set(inner, mode, deadline, Some(target.handle), |reg| {
            // The target and everything that (transitively) depends on it.
            let mut set = HashSet::new();
            let mut stack = vec![target.handle];
            while let Some(h) = stack.pop() {
                if set.insert(h) {
                    if let Some(n) = reg.nodes.get(&h) {
                        stack.extend(n.dependents.iter().copied());
                    }
                }
            }
            set
        });
        if outcomes.last().map(|(h, o)| (*h, o)) == Some((target.handle, &Outcome::AlreadyClosing))
        {
            return Err(Error::AlreadyClosed(describe_closed(&target)));
        }
        Error::from_failures(failures).map_or(Ok(()), Err)
    })
}

/// Closes every resource of the manager, dependents first, bounded by the manager's cleanup
/// timeout. See [`cleanup_timeout`].
pub fn cleanup(mgr: u64) -> Result<()> {
    cleanup_with(mgr, None, CloseMode::Graceful)
}

/// Closes every resource of the manager in reverse dependency order (dependents first, and
/// among independent resources the most recently registered first). Graceful: waits for
/// in-flight operations until the deadline, then forces what is left and reports what did not
/// finish by name. Forced: no waiting. Continues past failures and aggregates every error.
pub fn cleanup_timeout(mgr: u64, timeout: Duration, mode: CloseMode) -> Result<()> {
    cleanup_with(mgr, Some(timeout), mode)
}

/// `timeout` None: the manager's cleanup timeout.
fn cleanup_with(mgr: u64, timeout: Option<Duration>, mode: CloseMode) -> Result<()> {
    refuse_inside_close("cleanup")?;
    with_manager(mgr, |inner| {
        let deadline = deadline_after(timeout.unwrap_or(inner.config.cleanup_timeout));
        cleanup_until(inner, deadline, mode)
    })
}

fn cleanup_until(
    inner: &Arc<ManagerInner>,
    deadline: Option<Instant>,
    mode: CloseMode,
) -> Result<()> {
    let (_, failures) = close_set(inner, mode, deadline, None, |reg| {
        reg.nodes.keys().copied().collect()
    });
    Metrics::bump(&inner.metrics.cleanups);
    Error::from_failures(failures).map_or(Ok(()), Err)
}

/// Closes the resources `pick` chooses (under the registry lock), dependents first, and counts
/// what timed out. Each resource stops granting leases only when its own turn comes, so a
/// dependent's close (a worker flushing into its DB) may still use what it depends on. A
/// dependent registered after the set was chosen is closed before what it depends on too:
/// each resource's close begins under the registry lock, after checking that no dependent is
/// still open, and registration pins its dependencies under the same lock.
/// `target` is the resource the caller asked to close (None: a cleanup of everything); the
/// iterators and snapshots swept along are counted as leaked.
fn close_set(
    inner: &ManagerInner,
    mode: CloseMode,
    deadline: Option<Instant>,
    target: Option<Handle>,
    pick: impl FnOnce(&Registry) -> HashSet<Handle>,
) -> (Vec<(Handle, Outcome)>, Vec<Failure>) {
    let entries: Vec<Arc<Stored<Entry>>> = {
        let reg = inner.registry.lock();
        let set = pick(&reg);
        let order =
            cleanup::dependents_first(&set, |h| reg.nodes.get(&h).map(|n| (n.seq, n.deps.clone())));
        let entries: Vec<Arc<Stored<Entry>>> = order
            .iter()
            .filter_map(|h| OBJECTS.resources.get(h.raw(), None).ok())
            .map(|r| r.to_arc())
            .collect();
        count_leaks(inner, &reg, &set, &entries, target);
        entries
    };
    let begin = |e: &Stored<Entry>, attempt: u32| {
        let reg = inner.registry.lock();
        // Bounded, so a caller registering dependents in a loop cannot stall the close.
        if attempt < 64 {
            let late: Vec<Arc<Stored<Entry>>> = reg
                .nodes
                .get(&e.handle)
                .into_iter()
                .flat_map(|n| n.dependents.iter())
                .filter_map(|h| OBJECTS.resources.get(h.raw(), None).ok())
                .filter(|d| !d.value.lifecycle.is_closing())
                .map(|d| d.to_arc())
                .collect();
            if !late.is_empty() {
                return cleanup::Begin::Late(late);
            }
        }
        if e.value.lifecycle.begin_close() {
            cleanup::Begin::Won
        } else {
            cleanup::Begin::Lost
        }
    };
    let (outcomes, failures) = cleanup::close_sequence(&entries, mode, deadline, &begin);
    note_outcomes(inner, &outcomes);
    for f in &failures {
        if f.code == rm_result::RM_ERR_TIMEOUT {
            inner.log(LogLevel::Warn, || {
                format!("'{}' ({}) timed out: {}", f.name, f.handle, f.message)
            });
        }
    }
    (outcomes, failures)
}

/// Counts the iterators and snapshots this close sweeps along with what they depend on (a
/// DB, a column family, a snapshot): they were still open, so the caller leaked them, as
/// Pebble reports at Close. Counted in the totals, and on their DB's record when the DB is
/// closed by the same call.
fn count_leaks(
    inner: &ManagerInner,
    reg: &Registry,
    set: &HashSet<Handle>,
    entries: &[Arc<Stored<Entry>>],
    target: Option<Handle>,
) {
    for e in entries {
        let kind = e.value.kind;
        // Open now (not being closed by its owner): this close will sweep it.
        if e.value.lifecycle.is_closing()
            || Some(e.handle) == target
            || !matches!(kind, Kind::Iterator | Kind::Snapshot)
        {
            continue;
        }
        if kind == Kind::Iterator {
            Metrics::bump(&inner.metrics.leaked_iterators);
        } else {
            Metrics::bump(&inner.metrics.leaked_snapshots);
        }
        // Its DB: the first dependency, transitively, that is a DB.
        let mut stack = vec![e.handle];
        let mut seen = HashSet::new();
        let mut db = None;
        while let Some(h) = stack.pop() {
            if h.kind() == Some(Kind::Db) {
                db = Some(h);
                break;
            }
            if seen.insert(h) {
                if let Some(n) = reg.nodes.get(&h) {
                    stack.extend(n.deps.iter().copied());
                }
            }
        }
        let Some(db) = db.filter(|d| set.contains(d)) else {
            continue;
        };
        let Some(db_entry) = entries.iter().find(|x| x.handle == db) else {
            continue;
        };
        let mut info = db_entry.value.info.lock();
        if kind == Kind::Iterator {
            info.leaked_iterators += 1;
        } else {
            info.leaked_snapshots += 1;
        }
    }
}

fn note_outcomes(inner: &ManagerInner, outcomes: &[(Handle, Outcome)]) {
    for (_, o) in outcomes {
        if *o == Outcome::TimedOut {
            Metrics::bump(&inner.metrics.timed_out);
        }
    }
}

/// Called by the closer that won: marks the close started, decides who runs the native close.
pub(crate) fn begin(entry: &Stored<Entry>, forced: bool) {
    let mut info = entry.value.info.lock();
    info.started = Some(Instant::now());
    info.forced = forced;
}

pub(crate) fn lifecycle(entry: &Stored<Entry>) -> &Lifecycle {
    &entry.value.lifecycle
}

/// Marks a close as left to the last in-flight operation.
pub(crate) fn mark_deferred(entry: &Stored<Entry>) {
    let mut info = entry.value.info.lock();
    info.deferred = true;
    info.forced = true;
    if let Some(inner) = entry.value.owner.upgrade() {
        Metrics::bump(&inner.metrics.deferred);
        inner.log(LogLevel::Warn, || {
            format!(
                "{} '{}' ({}) is closed with {} operation(s) or dependent(s) still holding it: the last one runs the close",
                entry.value.kind,
                entry.value.name,
                entry.handle,
                entry.value.lifecycle.leases()
            )
        });
    }
}

thread_local! {
    /// Close callbacks running on this thread (see `refuse_inside_close`).
    static IN_CLOSE: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Close, cleanup and destroy wait for closes to finish; called from inside a close (a close
/// callback calling back into resman) they would wait for themselves until the deadline.
fn refuse_inside_close(what: &str) -> Result<()> {
    if IN_CLOSE.with(|c| c.get()) > 0 {
        return Err(Error::InvalidArgument(format!(
            "{what} cannot be called from inside a close callback (it would wait for itself)"
        )));
    }
    Ok(())
}

thread_local! {
    /// Deferred closes queued while this thread is already running one (a chain of
    /// dependencies whose last pins are released one inside the other): run iteratively,
    /// never recursively, so a long chain cannot overflow the stack.
    static DEFERRED: RefCell<Option<Vec<Arc<Stored<Entry>>>>> = const { RefCell::new(None) };
}

fn run_deferred(entry: Arc<Stored<Entry>>) {
    let queued = DEFERRED.with(|d| {
        let mut d = d.borrow_mut();
        match d.as_mut() {
            Some(queue) => {
                queue.push(Arc::clone(&entry));
                true
            }
            None => {
                *d = Some(Vec::new());
                false
            }
        }
    });
    if queued {
        return;
    }
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            DEFERRED.with(|d| *d.borrow_mut() = None);
        }
    }
    let _reset = Reset;
    let mut next = Some(entry);
    while let Some(e) = next {
        run_close(&e, CloseMode::Forced);
        next = DEFERRED.with(|d| d.borrow_mut().as_mut().and_then(|q| q.pop()));
    }
}

/// Runs the native close (exactly once per entry: the lifecycle protocol guarantees it), then
/// forgets the entry and releases its pins. Returns the close error, if any.
pub(crate) fn run_close(entry: &Stored<Entry>, mode: CloseMode) -> Option<String> {
    let e = &entry.value;
    let unregistering = e.info.lock().unregistering;
    let error = if unregistering {
        None
    } else {
        IN_CLOSE.with(|c| c.set(c.get() + 1));
        let result = catch_unwind(AssertUnwindSafe(|| e.resource.close(mode)));
        IN_CLOSE.with(|c| c.set(c.get() - 1));
        match result {
            Ok(Ok(())) => None,
            Ok(Err(msg)) => Some(msg),
            Err(panic) => Some(format!("close panicked: {}", panic_message(&*panic))),
        }
    };
    let forced = mode == CloseMode::Forced;
    let (duration, leaked) = {
        let mut info = e.info.lock();
        let started = *info.started.get_or_insert_with(Instant::now);
        let d = started.elapsed();
        info.duration = Some(d);
        info.forced |= forced;
        info.error.clone_from(&error);
        (d, (info.leaked_iterators, info.leaked_snapshots))
    };
    e.lifecycle.finish(error.is_none());
    let pins = std::mem::take(&mut *e.pins.lock());
    if let Some(inner) = e.owner.upgrade() {
        {
            let mut reg = inner.registry.lock();
            if reg.names.get(&e.name) == Some(&entry.handle) {
                reg.names.remove(&e.name);
            }
            if let Some(node) = reg.nodes.remove(&entry.handle) {
                for d in &node.deps {
                    if let Some(n) = reg.nodes.get_mut(d) {
                        n.dependents.remove(&entry.handle);
                    }
                }
            }
        }
        let m = &inner.metrics;
        let (outcome, counter) = if unregistering {
            ("unregistered", &m.unregistered)
        } else if error.is_some() {
            ("failed", &m.failed)
        } else {
            ("closed", &m.closed)
        };
        Metrics::bump(counter);
        if forced && !unregistering {
            Metrics::bump(&m.forced);
        }
        let mut history = inner.history.lock();
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back(ClosedRecord {
            handle: entry.handle.raw(),
            name: e.name.clone(),
            kind: e.kind.as_str(),
            outcome,
            close_duration_ms: duration.as_secs_f64() * 1e3,
            forced,
            error: error.clone(),
            leaked_iterators: leaked.0,
            leaked_snapshots: leaked.1,
        });
        drop(history);
        let what = || format!("{} '{}' ({})", e.kind, e.name, entry.handle);
        match &error {
            Some(msg) => inner.log(LogLevel::Error, || {
                format!("{} failed to close: {msg}", what())
            }),
            None => inner.log(LogLevel::Info, || {
                format!(
                    "{} {outcome}{} in {:.1} ms",
                    what(),
                    if forced { " (forced)" } else { "" },
                    duration.as_secs_f64() * 1e3
                )
            }),
        }
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
    let removed = OBJECTS.resources.remove(entry.handle);
    drop(removed);
    drop(pins);
    error
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

// ---------------------------------------------------------------------------------------
// Status

/// A snapshot of the manager: every live resource and the totals.
pub fn status(mgr: u64) -> Result<Status> {
    with_manager(mgr, |inner| {
        let nodes: Vec<(u64, Handle, Vec<Handle>, Vec<Handle>)> = {
            let reg = inner.registry.lock();
            reg.nodes
                .iter()
                .map(|(h, n)| {
                    (
                        n.seq,
                        *h,
                        n.deps.clone(),
                        n.dependents.iter().copied().collect(),
                    )
                })
                .collect()
        };
        let name_of = |h: &Handle| {
            OBJECTS
                .resources
                .get(h.raw(), None)
                .map(|r| r.value.name.clone())
                .unwrap_or_else(|_| h.to_string())
        };
        let mut sorted = nodes;
        sorted.sort_by_key(|n| n.0);
        let mut resources = Vec::with_capacity(sorted.len());
        let (mut active, mut closing) = (0, 0);
        for (_, h, deps, dependents) in &sorted {
            let Ok(r) = OBJECTS.resources.get(h.raw(), None) else {
                continue;
            };
            let e = &r.value;
            // Under a lease, so the resource is open while it reports; none when closing.
            let details = acquire(r.to_arc())
                .ok()
                .and_then(|lease| lease.entry().resource.details());
            let state = e.lifecycle.state();
            match state {
                State::Active => active += 1,
                _ => closing += 1,
            }
            let info = e.info.lock();
            let mut dependents: Vec<String> = dependents.iter().map(name_of).collect();
            dependents.sort();
            resources.push(ResourceStatus {
                handle: h.raw(),
                name: e.name.clone(),
                kind: e.kind.as_str(),
                state: state.as_str(),
                leases: e.lifecycle.leases(),
                depends_on: deps.iter().map(name_of).collect(),
                dependents,
                age_ms: e.created.elapsed().as_millis() as u64,
                close_duration_ms: info
                    .duration
                    .or_else(|| info.started.map(|s| s.elapsed()))
                    .map(|d| d.as_secs_f64() * 1e3),
                close_deferred: info.deferred,
                last_error: info.error.clone(),
                details,
            });
        }
        Ok(Status {
            version: crate::VERSION,
            manager: inner.handle.raw(),
            uptime_ms: inner.created.elapsed().as_millis() as u64,
            cleanup_timeout_ms: inner.config.cleanup_timeout.as_millis() as u64,
            totals: Totals::from_metrics(&inner.metrics, active, closing),
            resources,
            recently_closed: inner.history.lock().iter().cloned().collect(),
        })
    })
}

/// The failure entry for one resource (used by the cleanup layer).
pub(crate) fn failure(entry: &Stored<Entry>, code: rm_result, message: String) -> Failure {
    Failure {
        name: entry.value.name.clone(),
        handle: entry.handle,
        code,
        message,
    }
}

// ---------------------------------------------------------------------------------------
// Rust convenience

/// An owned manager for Rust callers: destroyed (everything closed) when dropped.
pub struct Manager {
    handle: Handle,
    destroyed: bool,
}

impl Manager {
    pub fn new() -> Result<Manager> {
        Manager::with_config(Config::default())
    }
    pub fn with_config(config: Config) -> Result<Manager> {
        Ok(Manager {
            handle: create(config)?,
            destroyed: false,
        })
    }
    pub fn handle(&self) -> u64 {
        self.handle.raw()
    }
    pub fn register(
        &self,
        name: &str,
        kind: Kind,
        resource: Box<dyn Resource>,
        deps: &[u64],
    ) -> Result<u64> {
        register(self.handle(), name, kind, resource, deps).map(Handle::raw)
    }
    pub fn add_dependency(&self, dependent: u64, dependency: u64) -> Result<()> {
        add_dependency(self.handle(), dependent, dependency)
    }
    pub fn unregister(&self, h: u64) -> Result<()> {
        unregister(self.handle(), h)
    }
    pub fn close(&self, h: u64) -> Result<()> {
        close(self.handle(), h, CloseMode::Graceful, None)
    }
    pub fn close_with(&self, h: u64, mode: CloseMode, timeout: Option<Duration>) -> Result<()> {
        close(self.handle(), h, mode, timeout)
    }
    pub fn cleanup(&self) -> Result<()> {
        cleanup(self.handle())
    }
    pub fn cleanup_timeout(&self, timeout: Duration, mode: CloseMode) -> Result<()> {
        cleanup_timeout(self.handle(), timeout, mode)
    }
    pub fn status(&self) -> Result<Status> {
        status(self.handle())
    }
    /// Destroys the manager now and returns the aggregated cleanup error, if any.
    pub fn destroy(mut self) -> Result<()> {
        self.destroyed = true;
        destroy(self.handle())
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        if !self.destroyed {
            let _ = destroy(self.handle());
        }
    }
}
