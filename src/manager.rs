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

pub use crate::config::{
    Config, DEFAULT_CLEANUP_TIMEOUT, DEFAULT_FORCE_CLEANUP_TIMEOUT, DEFAULT_MAX_RETRIES,
    DEFAULT_MONITOR_INTERVAL, DEFAULT_RETRY_DELAY, MAX_RETRIES,
};
pub use crate::log::{LogFn, LogLevel};
pub use crate::resource::{CloseMode, Resource};

use crate::cleanup;
use crate::error::{rm_result, Error, Failure, Result};
use crate::executor;
use crate::handle::{tags, Handle, HandleError, HandleTable, Kind, Ref, Stored};
use crate::lifecycle::{Claim, Lifecycle, Release, State};
use crate::metrics::Metrics;
use crate::monitor::MonitorResource;
use crate::records::{
    CleanupStep, ClosedRecord, ConfigStatus, HistogramSnapshot, MemorySample, NamedMemory,
    ResourceMemory, ResourceStatus, Status, Totals,
};
use once_cell::sync::Lazy;
use parking_lot::Mutex;
use rustc_hash::{FxHashMap, FxHashSet};
use std::any::Any;
use std::collections::VecDeque;
use std::ops::Deref;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// The instant `d` from now; None (no deadline) when that is past what `Instant` can hold,
/// so a caller's huge timeout means "wait as long as it takes" rather than an overflow.
fn deadline_after(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

/// Longest accepted name, in bytes.
pub const MAX_NAME_LEN: usize = 1024;
/// Longest name of a column family's entry, `db/cf`: both parts may be [`MAX_NAME_LEN`] long.
pub const MAX_QUALIFIED_NAME_LEN: usize = 2 * MAX_NAME_LEN + 1;
/// Closes remembered for the status document.
const HISTORY: usize = 128;

#[derive(Default)]
struct CloseInfo {
    /// When its close began (the winner's begin).
    started: Option<Instant>,
    /// When its native close started.
    running_since: Option<Instant>,
    /// The end of the graceful phase of the run that began it (None: unbounded).
    graceful_deadline: Option<Instant>,
    /// Runs to tell when the close finishes.
    runs: Vec<Arc<cleanup::Run>>,
    /// The native close has finished (runs that attach later are told at once).
    done: bool,
    attempts: u32,
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

/// "is closing" for a resource whose close was asked for but may not have begun yet.
fn describe_closing(e: &Stored<Entry>) -> String {
    let state = match e.value.lifecycle.state() {
        State::Active => State::Closing,
        s => s,
    };
    format!(
        "{} '{}' ({}) is {}: its close was already asked for",
        e.value.kind,
        e.value.name,
        e.handle,
        state.as_str()
    )
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
    dependents: FxHashSet<Handle>,
    /// A close of this resource has been asked for (a close, cleanup or destroy chose it, or
    /// an unregister took it): from then on it takes no new dependent, and every other close
    /// or unregister of it is told it is already closed. Set once, under the registry lock, so
    /// exactly one caller is told it won.
    sealed: bool,
}

#[derive(Default)]
struct Registry {
    names: FxHashMap<String, Handle>,
    nodes: FxHashMap<Handle, Node>,
    seq: u64,
    /// Cleanups of the whole manager (cleanup, destroy) running now: while there is one, new
    /// registrations are refused, so what a cleanup closes is what it chose and its bounds
    /// hold whatever other threads do.
    cleanups: u32,
}

impl Registry {
    /// Refuses a new resource while a cleanup of the whole manager runs.
    fn accepting(&self, mgr: Handle) -> Result<()> {
        if self.cleanups > 0 {
            return Err(Error::Closed(format!(
                "manager {mgr} is cleaning up: new resources are refused until the cleanup returns"
            )));
        }
        Ok(())
    }
}

struct ManagerInner {
    handle: Handle,
    config: Config,
    created: Instant,
    registry: Mutex<Registry>,
    metrics: Metrics,
    history: Mutex<VecDeque<ClosedRecord>>,
    logger: parking_lot::RwLock<Option<Logger>>,
    /// The most recent cleanup run (for the status document).
    last_run: Mutex<Option<Arc<cleanup::Run>>>,
    /// What the most recent cleanup of the whole manager reported, by resource (for
    /// `rm_cleanup_failures`).
    last_failures: Mutex<FailureReport>,
    /// The monitor's last sample and when it was taken.
    memory: Mutex<(MemorySample, Option<Instant>)>,
}

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

/// The pins of resources whose close failed for good while they hold what they depend on
/// (see [`Resource::releases_dependencies_on_failure`]): kept for the life of the process,
/// so what they depend on stays open, on purpose, and stays reachable (a leak checker sees
/// memory held, not memory lost).
static HELD: Mutex<Vec<Lease<Arc<Stored<Entry>>>>> = Mutex::new(Vec::new());

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
    config.validate()?;
    let handle = OBJECTS
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
                last_run: Mutex::new(None),
                last_failures: Mutex::new((None, Arc::new(Vec::new()))),
                memory: Mutex::new((MemorySample::default(), None)),
            }),
        })
        .map_err(Error::from)?;
    if let Err(e) = start_monitor(handle) {
        let _ = destroy(handle.raw());
        return Err(e);
    }
    Ok(handle)
}

/// Name of the monitor resource every manager registers at creation.
pub const MONITOR_NAME: &str = "resman.monitor";

/// Starts manager `mgr`'s monitor and registers it as a resource (closed by cleanup).
fn start_monitor(mgr: Handle) -> Result<()> {
    with_manager(mgr.raw(), |inner| {
        // The first sample now, so the figures exist from the start.
        sample(inner);
        let weak = Arc::downgrade(inner);
        let monitor = MonitorResource::start(inner.config.monitor_interval, move || {
            match weak.upgrade() {
                Some(inner) => {
                    sample(&inner);
                    true
                }
                None => false,
            }
        })
        .map_err(|e| Error::Capacity(format!("cannot start the monitor thread: {e}")))?;
        register_in(inner, MONITOR_NAME, Kind::Monitor, Box::new(monitor), &[]).map(|_| ())
    })
}

/// One monitor tick: refreshes the memory figures and logs closes that are stuck.
fn sample(inner: &Arc<ManagerInner>) {
    let (entries, registry_bytes) = {
        let reg = inner.registry.lock();
        let mut bytes = std::mem::size_of::<Registry>() as u64;
        let entries: Vec<Arc<Stored<Entry>>> = reg
            .nodes
            .iter()
            .filter_map(|(h, n)| {
                let r = OBJECTS.resources.get(h.raw(), None).ok()?;
                bytes += (std::mem::size_of::<Stored<Entry>>()
                    + std::mem::size_of::<Node>()
                    + 2 * r.value.name.len()
                    + 16 * (n.deps.len() + n.dependents.len())
                    + 64) as u64;
                Some(r.to_arc())
            })
            .collect();
        (entries, bytes)
    };
    let mut total = ResourceMemory::default();
    let mut reporting = 0;
    let mut per_resource = Vec::new();
    let stuck_after = inner.config.monitor_interval;
    for e in &entries {
        if let Ok(lease) = acquire(Arc::clone(e)) {
            if let Some(m) = lease.entry().resource.memory() {
                reporting += 1;
                per_resource.push(NamedMemory {
                    name: e.value.name.clone(),
                    handle: e.handle.raw(),
                    memory: m,
                });
                total.mem_table_total += m.mem_table_total;
                total.mem_table_unflushed += m.mem_table_unflushed;
                total.table_readers += m.table_readers;
                total.block_cache += m.block_cache;
            }
            continue;
        }
        let started = e.value.info.lock().started;
        if let Some(since) = started.filter(|s| s.elapsed() >= stuck_after) {
            inner.log(LogLevel::Warn, || {
                format!(
                    "{} '{}' ({}) has been closing for {:.1} s ({} operation(s) or dependent(s) still hold it)",
                    e.value.kind,
                    e.value.name,
                    e.handle,
                    since.elapsed().as_secs_f64(),
                    e.value.lifecycle.leases()
                )
            });
        }
    }
    drop(entries);
    let mut mem = inner.memory.lock();
    let samples = mem.0.samples + 1;
    *mem = (
        MemorySample {
            reporting,
            total,
            registry_bytes,
            resources: per_resource,
            age_ms: None,
            samples,
        },
        Some(Instant::now()),
    );
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
    destroy_with(mgr, None, CloseMode::Graceful)
}

/// [`destroy`] with explicit bounds, as [`cleanup_timeout`] takes them.
pub fn destroy_timeout(mgr: u64, timeout: Duration, mode: CloseMode) -> Result<()> {
    destroy_with(mgr, Some(timeout), mode)
}

fn destroy_with(mgr: u64, timeout: Option<Duration>, mode: CloseMode) -> Result<()> {
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
    let mut bounds = bounds(&inner.config, mode, timeout);
    // Let calls already inside the manager (a register, a close) finish first, within the
    // first phase's bound (graceful; for a forced destroy, the forced one).
    let first = match mode {
        CloseMode::Graceful => &mut bounds.graceful,
        CloseMode::Forced => &mut bounds.forced,
    };
    let deadline = deadline_after(*first);
    obj.value.lifecycle.wait_drained(deadline);
    let _ = obj.value.lifecycle.claim_close();
    if let Some(d) = deadline {
        *first = d.saturating_duration_since(Instant::now());
    }
    let result = cleanup_all(inner, "destroy", bounds, mode);
    obj.value.lifecycle.finish(result.is_ok());
    let removed = OBJECTS.managers.remove(obj.handle);
    drop(obj);
    drop(removed);
    result
}

// ---------------------------------------------------------------------------------------
// Registration

/// Checks a resource name: 1 to `limit` bytes, no NUL.
pub fn validate_name(name: &str, limit: usize) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidArgument("name must not be empty".into()));
    }
    if name.len() > limit {
        return Err(Error::InvalidArgument(format!(
            "name is {} bytes long, the limit is {limit}",
            name.len()
        )));
    }
    if name.contains('\0') {
        return Err(Error::InvalidArgument("name must not contain NUL".into()));
    }
    Ok(())
}

/// The longest name a resource of `kind` may have: a column family is named after its DB
/// and itself (`db/cf`, each part up to [`MAX_NAME_LEN`]), anything else [`MAX_NAME_LEN`].
fn name_limit(kind: Kind) -> usize {
    match kind {
        Kind::ColumnFamily => MAX_QUALIFIED_NAME_LEN,
        _ => MAX_NAME_LEN,
    }
}

/// The refusal of a new dependent of `dep`, whose close has been asked for.
fn sealed_error(dep: &Stored<Entry>) -> Error {
    Error::DependencyClosed(format!(
        "cannot depend on {} '{}' ({}): its close has begun",
        dep.value.kind, dep.value.name, dep.handle
    ))
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
    validate_name(name, name_limit(kind))?;
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
        reg.accepting(inner.handle)?;
        if let Some(existing) = reg.names.get(name) {
            return Err(Error::DuplicateName(format!(
                "a resource named '{name}' is already registered ({existing})"
            )));
        }
        // Pins are taken under the registry lock so that unregister can rely on "no
        // dependents in the graph" meaning "no pins", and a close that chose its set under
        // the same lock (and sealed it) can rely on no dependent joining it later.
        for dep in &dep_refs {
            if reg.nodes.get(&dep.handle).is_some_and(|n| n.sealed) {
                return Err(sealed_error(dep));
            }
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
                dependents: FxHashSet::default(),
                sealed: false,
            },
        );
        Metrics::bump(&inner.metrics.registered);
        Metrics::bump(&inner.metrics.live);
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
/// manager `mgr` right now, and with `Closed` while a cleanup of the whole manager runs. Lets
/// a caller refuse early, before building an expensive resource.
pub fn check_names_free(mgr: u64, names: &[String]) -> Result<()> {
    with_manager(mgr, |inner| {
        for name in names {
            // Each registration checks its own kind's limit; this is the widest.
            validate_name(name, MAX_QUALIFIED_NAME_LEN)?;
        }
        let reg = inner.registry.lock();
        reg.accepting(inner.handle)?;
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
        if reg.nodes.get(&parent.handle).is_some_and(|n| n.sealed) {
            drop(reg);
            drop(child_lease);
            return Err(sealed_error(&parent));
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
    let mut seen = FxHashSet::default();
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
            let mut reg = inner.registry.lock();
            if !entry.value.resource.can_unregister() {
                return Err(Error::OwnedResource(format!(
                    "{} '{}' ({}) is owned by resman: close it instead of unregistering it",
                    entry.value.kind, entry.value.name, entry.handle
                )));
            }
            // Whoever seals the node first wins: a close asked for earlier makes this an
            // "already closed", and this unregister makes a later close one.
            let node = match reg.nodes.get_mut(&entry.handle) {
                Some(n) if !n.sealed => n,
                _ => return Err(Error::AlreadyClosed(describe_closing(&entry))),
            };
            if !node.dependents.is_empty() {
                return Err(Error::HasDependents(format!(
                    "'{}' still has {} dependent(s): close or unregister them first",
                    entry.value.name,
                    node.dependents.len()
                )));
            }
            node.sealed = true;
            if !begin_entry(inner, &entry) {
                // Unreachable: every close begins only after sealing under this lock.
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

/// The bounds of a close or cleanup given `timeout` (None: the manager's). Graceful: the
/// graceful phase is `timeout`, the forced phase `force_cleanup_timeout`. Forced: the forced
/// phase alone, bounded by `timeout` (None: `force_cleanup_timeout`).
fn bounds(config: &Config, mode: CloseMode, timeout: Option<Duration>) -> cleanup::Bounds {
    match mode {
        CloseMode::Graceful => cleanup::Bounds {
            graceful: timeout.unwrap_or(config.cleanup_timeout),
            forced: config.force_cleanup_timeout,
        },
        CloseMode::Forced => cleanup::Bounds {
            graceful: Duration::ZERO,
            forced: timeout.unwrap_or(config.force_cleanup_timeout),
        },
    }
}

/// Closes one resource after everything that (transitively) depends on it, as a cleanup run
/// of that subtree (see [`cleanup_timeout`]). Errors of every resource are aggregated.
///
/// Exactly one caller wins the close of a resource: the first whose close, cleanup, destroy
/// or unregister chose it (under the registry lock). Every other close of it returns
/// `AlreadyClosed`, and so does a close through a manager that was destroyed (its destroy
/// closed everything). From the moment a close is won, the resource and everything it sweeps
/// along take no new dependent (`DependencyClosed`; for an iterator, snapshot or batch of a DB,
/// `Closed`), so the run's bounds hold whatever other threads do.
pub fn close(mgr: u64, raw: u64, mode: CloseMode, timeout: Option<Duration>) -> Result<()> {
    refuse_inside_close("rm_close")?;
    with_manager(mgr, |inner| {
        let target = resolve(inner, raw, None).map_err(already_closed)?;
        if target.value.lifecycle.is_closing() {
            return Err(Error::AlreadyClosed(describe_closed(&target)));
        }
        let run = cleanup::Run::new(
            "close",
            Some(target.value.name.clone()),
            mode,
            bounds(&inner.config, mode, timeout),
        );
        let report = close_set(inner, &run, Some(target.handle), |reg| {
            match reg.nodes.get(&target.handle) {
                Some(n) if !n.sealed => {}
                _ => return Err(Error::AlreadyClosed(describe_closing(&target))),
            }
            // The target and everything that (transitively) depends on it.
            let mut set = FxHashSet::default();
            let mut stack = vec![target.handle];
            while let Some(h) = stack.pop() {
                if set.insert(h) {
                    if let Some(n) = reg.nodes.get(&h) {
                        stack.extend(n.dependents.iter().copied());
                    }
                }
            }
            Ok(set)
        })?;
        Error::from_failures(report.failures).map_or(Ok(()), Err)
    })
    .map_err(|e| match e {
        // The manager is gone. Its destroy closed everything it owned: a handle that names a
        // closed resource (slot not reused yet) or one of its resources still closing is
        // already closed. Anything else keeps the manager's error.
        Error::Closed(m) if closed_with_manager(mgr, raw) => {
            Error::AlreadyClosed(format!("{m}: it closed everything it owned"))
        }
        other => other,
    })
}

/// True when `raw` names a closed resource, or a resource of manager `mgr` (which is gone):
/// what a close through a destroyed manager reports as already closed.
fn closed_with_manager(mgr: u64, raw: u64) -> bool {
    match get_resource(raw, None) {
        Ok(e) => e.value.manager.raw() == mgr,
        Err(e) => e.code() == rm_result::RM_ERR_CLOSED,
    }
}

/// Closes every resource of the manager, graceful with the manager's timeouts. See
/// [`cleanup_timeout`].
pub fn cleanup(mgr: u64) -> Result<()> {
    cleanup_with(mgr, None, CloseMode::Graceful)
}

/// Closes every resource of the manager (the monitor included), dependents before what they
/// depend on and independent resources concurrently. Graceful: a graceful phase bounded by
/// `timeout`, then what is unfinished is forced and given `force_cleanup_timeout` more.
/// Forced: the forced phase alone, bounded by `timeout`. Every resource still unfinished at
/// the end is reported as timed out; the error aggregates every failure. While it runs, new
/// registrations in the manager are refused (`Closed`); afterwards the manager takes new
/// resources again.
pub fn cleanup_timeout(mgr: u64, timeout: Duration, mode: CloseMode) -> Result<()> {
    cleanup_with(mgr, Some(timeout), mode)
}

/// `timeout` None: the manager's.
fn cleanup_with(mgr: u64, timeout: Option<Duration>, mode: CloseMode) -> Result<()> {
    refuse_inside_close("cleanup")?;
    with_manager(mgr, |inner| {
        cleanup_all(inner, "cleanup", bounds(&inner.config, mode, timeout), mode)
    })
}

fn cleanup_all(
    inner: &Arc<ManagerInner>,
    operation: &'static str,
    bounds: cleanup::Bounds,
    mode: CloseMode,
) -> Result<()> {
    let run = cleanup::Run::new(operation, None, mode, bounds);
    // Registrations are refused from the moment the set is chosen until the run returns.
    struct Accepting<'a>(&'a ManagerInner);
    impl Drop for Accepting<'_> {
        fn drop(&mut self) {
            self.0.registry.lock().cleanups -= 1;
        }
    }
    let mut refusing = None;
    let report = close_set(inner, &run, None, |reg| {
        reg.cleanups += 1;
        refusing = Some(Accepting(inner));
        Ok(reg.nodes.keys().copied().collect())
    })?;
    drop(refusing);
    *inner.last_failures.lock() = (Some(operation), Arc::clone(&report.failures));
    Error::from_failures(report.failures).map_or(Ok(()), Err)
}

/// One resource chosen by a close run, with what the registry said of it at that moment.
struct Picked {
    entry: Arc<Stored<Entry>>,
    seq: u64,
    deps: Vec<Handle>,
    /// Someone else had already asked for its close (it is not swept along by this run).
    was_sealed: bool,
}

/// Runs `run` over the resources `pick` chooses: see [`crate::cleanup`]. Under the registry
/// lock `pick` chooses the set and every resource in it is sealed (see [`Node::sealed`]), so
/// no dependent can join the set later and the run closes exactly what it chose. Everything
/// else (the order, the leaks, the schedule) is worked out after the lock is released. Each
/// resource stops granting leases only when its own close begins, so a dependent's close (a
/// worker flushing into its DB) may still use what it depends on.
/// `target` is the resource the caller asked to close (None: a cleanup of everything); the
/// iterators and snapshots swept along are counted as leaked.
fn close_set(
    inner: &Arc<ManagerInner>,
    run: &Arc<cleanup::Run>,
    target: Option<Handle>,
    pick: impl FnOnce(&mut Registry) -> Result<FxHashSet<Handle>>,
) -> Result<cleanup::Report> {
    let picked: Vec<Picked> = {
        let mut reg = inner.registry.lock();
        let set = pick(&mut reg)?;
        let mut picked = Vec::with_capacity(set.len());
        for h in set {
            let Some(node) = reg.nodes.get_mut(&h) else {
                continue;
            };
            let was_sealed = std::mem::replace(&mut node.sealed, true);
            let (seq, deps) = (node.seq, node.deps.clone());
            if let Ok(r) = OBJECTS.resources.get(h.raw(), None) {
                picked.push(Picked {
                    entry: r.to_arc(),
                    seq,
                    deps,
                    was_sealed,
                });
            }
        }
        picked
    };
    *inner.last_run.lock() = Some(Arc::clone(run));
    let index: FxHashMap<Handle, usize> = picked
        .iter()
        .enumerate()
        .map(|(i, p)| (p.entry.handle, i))
        .collect();
    let set: FxHashSet<Handle> = index.keys().copied().collect();
    let order = cleanup::dependents_first(&set, |h| {
        index
            .get(&h)
            .map(|&i| (picked[i].seq, picked[i].deps.clone()))
    });
    count_leaks(inner, &picked, &index, &order, target);
    // Each resource's dependencies inside the run, and its dependents inside the run.
    let mut deps: FxHashMap<Handle, Vec<Handle>> = picked
        .iter()
        .map(|p| {
            let d = p.deps.iter().copied().filter(|d| set.contains(d)).collect();
            (p.entry.handle, d)
        })
        .collect();
    let parts: FxHashSet<Handle> = picked
        .iter()
        .filter(|p| p.entry.value.resource.part_of_dependencies())
        .map(|p| p.entry.handle)
        .collect();
    cleanup::add_part_edges(&mut deps, &parts);
    let mut slots: Vec<Option<Arc<Stored<Entry>>>> =
        picked.into_iter().map(|p| Some(p.entry)).collect();
    let entries = order
        .iter()
        .filter_map(|h| {
            let e = slots[index[h]].take()?;
            let d = deps.remove(h).unwrap_or_default();
            Some((e, d))
        })
        .collect();
    let report = cleanup::run_closes(run, entries, &RegistryCloser(inner));
    let m = &inner.metrics;
    Metrics::bump(&m.cleanups);
    m.cleanup_duration.observe(run.started.elapsed());
    if !report.failures.is_empty() {
        Metrics::bump(&m.cleanups_failed);
    }
    if report.escalated {
        Metrics::bump(&m.escalations);
        inner.log(LogLevel::Warn, || {
            format!(
                "{} did not finish gracefully within its bound: the rest was forced",
                run.record().operation
            )
        });
    }
    for f in report.failures.iter() {
        if f.code == rm_result::RM_ERR_TIMEOUT {
            Metrics::bump(&m.timed_out);
            inner.log(LogLevel::Warn, || {
                format!("'{}' ({}) timed out: {}", f.name, f.handle, f.message)
            });
        }
    }
    Ok(report)
}

/// The scheduler's view of the manager.
struct RegistryCloser<'a>(&'a Arc<ManagerInner>);

impl cleanup::Closer for RegistryCloser<'_> {
    type Item = Arc<Stored<Entry>>;
    fn handle(&self, e: &Self::Item) -> Handle {
        e.handle
    }
    fn name<'a>(&'a self, e: &'a Self::Item) -> &'a str {
        &e.value.name
    }
    fn begin(&self, e: &Self::Item) -> bool {
        begin_entry(self.0, e)
    }
    fn start(&self, e: Self::Item, run: &Arc<cleanup::Run>, forced: bool, inline: bool) -> bool {
        if forced {
            start_forced(e, run, inline)
        } else {
            start_graceful(e, run, inline);
            false
        }
    }
    fn start_later(&self, items: Vec<Self::Item>, run: &Arc<cleanup::Run>, forced: bool) {
        launch_later(items, run, forced);
    }
    fn deferred(&self, items: &[Self::Item]) {
        log_deferred(items);
    }
    fn watch(&self, e: &Self::Item, run: &Arc<cleanup::Run>) {
        watch(e, run);
    }
    fn past_graceful(&self, e: &Self::Item) -> bool {
        past_graceful(e)
    }
    fn failure(&self, e: &Self::Item) -> Option<Failure> {
        close_failure(e)
    }
    fn timeout(&self, e: &Self::Item, waiting_on: &[&str]) -> Failure {
        timeout_failure(e, waiting_on)
    }
}

/// Stops `e` granting leases; true for the one caller that won its close.
fn begin_entry(inner: &ManagerInner, e: &Stored<Entry>) -> bool {
    let won = e.value.lifecycle.begin_close();
    if won {
        Metrics::bump(&inner.metrics.closing);
    }
    won
}

/// Counts the iterators and snapshots this close sweeps along with what they depend on (a
/// DB, a column family, a snapshot): nobody had asked for their close, so the caller leaked
/// them, as Pebble reports at Close. Counted in the totals, and on their DB's record when the
/// DB is closed by the same call. Linear in the set: `order` has dependents first, so walking
/// it backwards meets every resource after what it depends on.
fn count_leaks(
    inner: &ManagerInner,
    picked: &[Picked],
    index: &FxHashMap<Handle, usize>,
    order: &[Handle],
    target: Option<Handle>,
) {
    // The DB of the run that each resource (transitively) depends on, if any.
    let mut db_of: FxHashMap<Handle, Handle> = FxHashMap::default();
    let mut per_db: FxHashMap<Handle, (u64, u64)> = FxHashMap::default();
    for h in order.iter().rev() {
        let p = &picked[index[h]];
        let kind = p.entry.value.kind;
        let db = if kind == Kind::Db {
            Some(*h)
        } else {
            p.deps.iter().find_map(|d| db_of.get(d).copied())
        };
        if let Some(db) = db {
            db_of.insert(*h, db);
        }
        // Open now (nobody asked for its close): this close sweeps it.
        if p.was_sealed || Some(*h) == target || !matches!(kind, Kind::Iterator | Kind::Snapshot) {
            continue;
        }
        let counts = db.map(|db| per_db.entry(db).or_default());
        if kind == Kind::Iterator {
            Metrics::bump(&inner.metrics.leaked_iterators);
            if let Some(c) = counts {
                c.0 += 1;
            }
        } else {
            Metrics::bump(&inner.metrics.leaked_snapshots);
            if let Some(c) = counts {
                c.1 += 1;
            }
        }
    }
    for (db, (iterators, snapshots)) in per_db {
        let mut info = picked[index[&db]].entry.value.info.lock();
        info.leaked_iterators += iterators;
        info.leaked_snapshots += snapshots;
    }
}

/// Runs `job` on the close pool, or here when no pool thread can be had.
fn dispatch(job: impl FnOnce() + Send + 'static) {
    if let Some(job) = executor::submit(Box::new(job)) {
        job();
    }
}

/// Marks a close begun by `run` (the run that won it) and makes `run` hear when it finishes.
fn note_begin(entry: &Stored<Entry>, run: &Arc<cleanup::Run>, forced: bool) {
    let mut info = entry.value.info.lock();
    info.started = Some(Instant::now());
    info.forced = forced;
    info.graceful_deadline = run.graceful_deadline;
    info.runs.push(Arc::clone(run));
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
    note_begin(&entry, run, false);
    let graceful_end = run.graceful_deadline;
    // Begun: no lease can be taken any more, so none held now means drained for good.
    let here = inline && quick_and_drained(&entry);
    let job = move || {
        let life = &entry.value.lifecycle;
        let drained = life.wait_drained(graceful_end);
        let in_time = graceful_end.is_none_or(|g| Instant::now() < g);
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
fn quick_and_drained(entry: &Stored<Entry>) -> bool {
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
fn mark_deferred(entry: &Stored<Entry>, level: LogLevel) {
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
    /// Close callbacks running on this thread (see `refuse_inside_close`).
    static IN_CLOSE: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Runs `f` marked as inside a close on this thread (see `refuse_inside_close`); the mark is
/// removed when `f` returns or unwinds.
fn inside_close<R>(f: impl FnOnce() -> R) -> R {
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
fn refuse_inside_close(what: &str) -> Result<()> {
    if IN_CLOSE.with(|c| c.get()) > 0 {
        return Err(Error::InvalidArgument(format!(
            "{what} cannot be called from inside a close callback (it would wait for itself)"
        )));
    }
    Ok(())
}

/// The last lease of a resource whose close was deferred was just released: the native close
/// runs on a pool thread, so the operation that let go returns at once.
fn run_deferred(entry: Arc<Stored<Entry>>) {
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
fn close_attempts(
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
fn attempts_error(errors: &[String]) -> String {
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

/// Runs the native close (exactly once per entry, with retries: the lifecycle protocol
/// guarantees one caller), then forgets the entry, lets go of what it depends on (unless a
/// failure forbids it, see [`Resource::releases_dependencies_on_failure`]) and tells the runs
/// waiting for it. Returns the close error, if any.
pub(crate) fn run_close(entry: &Stored<Entry>, mode: CloseMode) -> Option<String> {
    let e = &entry.value;
    let (unregistering, graceful_end) = {
        let mut info = e.info.lock();
        info.running_since = Some(Instant::now());
        (info.unregistering, info.graceful_deadline)
    };
    let owner = e.owner.upgrade();
    let native_start = Instant::now();
    let (errors, ok, forced) = if unregistering {
        (Vec::new(), true, true)
    } else {
        close_attempts(entry, owner.as_ref(), mode, graceful_end)
    };
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
    let mut pins = std::mem::take(&mut *e.pins.lock());
    let hold = error.is_some() && !e.resource.releases_dependencies_on_failure();
    if hold {
        // What it depends on stays open for good (a DB is never closed under an iterator it
        // could not destroy): the pins are never released.
        HELD.lock().append(&mut pins);
    }
    let outcome = if unregistering {
        "unregistered"
    } else if error.is_some() {
        "failed"
    } else {
        "closed"
    };
    if let Some(inner) = &owner {
        let m = &inner.metrics;
        Metrics::drop_one(&m.live);
        Metrics::drop_one(&m.closing);
        Metrics::bump(match outcome {
            "unregistered" => &m.unregistered,
            "failed" => &m.failed,
            _ => &m.closed,
        });
        if !unregistering {
            m.close_duration.observe(duration);
            if forced {
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
            outcome,
            close_duration_ms: duration.as_secs_f64() * 1e3,
            forced,
            attempts,
            error: error.clone(),
            leaked_iterators: leaked.0,
            leaked_snapshots: leaked.1,
        });
        drop(history);
        // A receiver calling close, cleanup or destroy from here would wait for this close.
        inside_close(|| {
            log_close(
                inner, entry, outcome, forced, duration, &error, hold, leaked,
            )
        });
    }
    // Every effect is visible before anyone waiting is told: the log event is delivered,
    // the handle is gone (rm_live_objects), what it depends on is let go. A run that picks its
    // resources later either finds the node (and so waits on `done` below) or finds nothing.
    let removed = OBJECTS.resources.remove(entry.handle);
    drop(removed);
    drop(pins);
    if let Some(inner) = &owner {
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
    let runs = {
        let mut info = e.info.lock();
        info.done = true;
        std::mem::take(&mut info.runs)
    };
    for run in runs {
        let step = (!unregistering).then(|| CleanupStep {
            name: e.name.clone(),
            kind: e.kind.as_str(),
            handle: entry.handle.raw(),
            started_ms: run.offset_ms(native_start),
            finished_ms: run.offset_ms(native_end),
            outcome,
            attempts,
            forced,
            errors: errors.clone(),
        });
        run.finished(entry.handle, step);
    }
    error
}

#[allow(clippy::too_many_arguments)]
fn log_close(
    inner: &ManagerInner,
    entry: &Stored<Entry>,
    outcome: &str,
    forced: bool,
    duration: Duration,
    error: &Option<String>,
    hold: bool,
    leaked: (u64, u64),
) {
    let e = &entry.value;
    let what = || format!("{} '{}' ({})", e.kind, e.name, entry.handle);
    match error {
        Some(msg) => inner.log(LogLevel::Error, || {
            format!(
                "{} failed to close: {msg}{}",
                what(),
                if hold {
                    "; what it depends on stays open"
                } else {
                    ""
                }
            )
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
        let c = &inner.config;
        Ok(Status {
            version: crate::VERSION,
            manager: inner.handle.raw(),
            uptime_ms: inner.created.elapsed().as_millis() as u64,
            cleanup_timeout_ms: c.cleanup_timeout.as_millis() as u64,
            config: ConfigStatus {
                cleanup_timeout_ms: c.cleanup_timeout.as_millis() as u64,
                force_cleanup_timeout_ms: c.force_cleanup_timeout.as_millis() as u64,
                monitor_interval_ms: c.monitor_interval.as_millis() as u64,
                max_retries: c.max_retries,
                retry_delay_ms: c.retry_delay.as_millis() as u64,
            },
            totals: Totals::from_metrics(&inner.metrics),
            cleanup_duration: inner.metrics.cleanup_duration.snapshot(),
            close_duration: inner.metrics.close_duration.snapshot(),
            memory: memory_sample(inner, true),
            close_threads: executor::workers().0 as u64,
            last_cleanup: inner.last_run.lock().as_ref().map(|r| r.record()),
            resources,
            recently_closed: inner.history.lock().iter().cloned().collect(),
        })
    })
}

/// The monitor's last sample, with its age. Without `per_resource` the per-DB list is left
/// out: copying it would allocate, which `rm_manager_metrics` must not.
fn memory_sample(inner: &ManagerInner, per_resource: bool) -> MemorySample {
    let m = inner.memory.lock();
    MemorySample {
        reporting: m.0.reporting,
        total: m.0.total,
        registry_bytes: m.0.registry_bytes,
        resources: if per_resource {
            m.0.resources.clone()
        } else {
            Vec::new()
        },
        age_ms: m.1.map(|t| t.elapsed().as_millis() as u64),
        samples: m.0.samples,
    }
}

/// The monitor's last memory sample (per DB and in total), without building the status.
pub fn memory_sample_of(mgr: u64) -> Result<MemorySample> {
    with_manager(mgr, |inner| Ok(memory_sample(inner, true)))
}

/// The manager's counters, cheap to poll (no allocation, no walk over the resources).
pub fn metrics(mgr: u64) -> Result<MetricsSnapshot> {
    with_manager(mgr, |inner| {
        let memory = memory_sample(inner, false);
        Ok(MetricsSnapshot {
            totals: Totals::from_metrics(&inner.metrics),
            cleanup_duration: inner.metrics.cleanup_duration.snapshot(),
            close_duration: inner.metrics.close_duration.snapshot(),
            memory,
            close_threads: executor::workers().0 as u64,
        })
    })
}

/// What [`metrics`] returns.
#[derive(Clone, Debug)]
pub struct MetricsSnapshot {
    pub totals: Totals,
    pub cleanup_duration: HistogramSnapshot,
    pub close_duration: HistogramSnapshot,
    pub memory: MemorySample,
    pub close_threads: u64,
}

/// What a cleanup of the whole manager reported by resource: the operation (None before the
/// first cleanup) and its failures, dependents first.
pub type FailureReport = (Option<&'static str>, Arc<Vec<Failure>>);

/// What the most recent cleanup of the whole manager (a cleanup, or the destroy's) reported
/// by resource. A close of one resource does not replace it.
pub fn cleanup_failures(mgr: u64) -> Result<FailureReport> {
    with_manager(mgr, |inner| Ok(inner.last_failures.lock().clone()))
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
