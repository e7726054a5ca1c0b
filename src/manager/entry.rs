//! A resource's entry in the process-wide tables, and the lease that proves an operation may
//! use it.

use super::*;

#[derive(Default)]
pub(super) struct CloseInfo {
    /// When its close began (the winner's begin).
    pub(super) started: Option<Instant>,
    /// When its native close started.
    pub(super) running_since: Option<Instant>,
    /// The end of the graceful phase of the run that began it (None: unbounded).
    pub(super) graceful_deadline: Option<Instant>,
    /// Runs to tell when the close finishes.
    pub(super) runs: Vec<Arc<cleanup::Run>>,
    /// The native close has finished (runs that attach later are told at once).
    pub(super) done: bool,
    pub(super) attempts: u32,
    pub(super) duration: Option<Duration>,
    pub(super) forced: bool,
    pub(super) deferred: bool,
    pub(super) unregistering: bool,
    pub(super) error: Option<String>,
    /// Iterators and snapshots still open when this (DB) resource was closed.
    pub(super) leaked_iterators: u64,
    pub(super) leaked_snapshots: u64,
}

/// One registered resource.
pub struct Entry {
    pub(super) manager: Handle,
    pub(super) owner: Weak<ManagerInner>,
    pub(super) name: Arc<str>,
    pub(super) kind: Kind,
    pub(super) resource: Box<dyn Resource>,
    pub(super) lifecycle: Lifecycle,
    pub(super) created: Instant,
    /// Leases held on the resources this one depends on; dropped after its native close.
    pub(super) pins: Mutex<Vec<Lease<Arc<Stored<Entry>>>>>,
    pub(super) info: Mutex<CloseInfo>,
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
    pub(super) entry: P,
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

pub(super) fn acquire<P: EntryRef>(entry: P) -> Result<Lease<P>> {
    if entry.value.lifecycle.try_acquire() {
        Ok(Lease { entry })
    } else {
        Err(Error::Closed(describe_closed(&entry)))
    }
}

/// "is closing" for a resource whose close was asked for but may not have begun yet.
pub(super) fn describe_closing(e: &Stored<Entry>) -> String {
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

pub(super) fn describe_closed(e: &Stored<Entry>) -> String {
    format!(
        "{} '{}' ({}) is {}",
        e.value.kind,
        e.value.name,
        e.handle,
        e.value.lifecycle.state().as_str()
    )
}

pub(super) struct Objects {
    pub(super) resources: HandleTable<Entry>,
    pub(super) managers: HandleTable<ManagerObj>,
}

/// The pins of resources whose close failed for good while they hold what they depend on
/// (see [`Resource::releases_dependencies_on_failure`]): kept for the life of the process,
/// so what they depend on stays open, on purpose, and stays reachable (a leak checker sees
/// memory held, not memory lost).
pub(super) static HELD: Mutex<Vec<Lease<Arc<Stored<Entry>>>>> = Mutex::new(Vec::new());

/// Freed slots held back from reuse, so a raced handle says "closed" rather than "stale".
pub(super) const QUARANTINE: usize = 1024;

pub(super) static OBJECTS: Lazy<Objects> = Lazy::new(|| Objects {
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
pub(super) fn lookup_error(e: HandleError, raw: u64, expected: &str) -> Error {
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
pub(super) fn get_resource(raw: u64, want: Option<Kind>) -> Result<Ref<Entry>> {
    OBJECTS
        .resources
        .get(raw, want)
        .map_err(|e| lookup_error(e, raw, want.map_or("resource", Kind::as_str)))
}

/// Looks up a manager handle.
pub(super) fn get_manager(raw: u64) -> Result<Ref<ManagerObj>> {
    OBJECTS
        .managers
        .get(raw, Some(Kind::Manager))
        .map_err(|e| lookup_error(e, raw, "manager"))
}

/// Live resources across all managers (for leak checks in tests and the status document).
pub fn live_resources() -> u32 {
    OBJECTS.resources.live()
}

/// Takes a lease on resource `raw`, which must be of `kind`: the entry point of every
/// operation on a resource.
#[inline]
pub fn lease(raw: u64, kind: Kind) -> Result<Lease> {
    acquire(get_resource(raw, Some(kind))?)
}
