//! The Rust API's entry points above the core: a manager comes with its monitor. `create` is
//! what `rm_manager_create` calls; [`Manager`] owns one for Rust callers.

use crate::error::Result;
use crate::handle::{Handle, ManagerHandle, ResourceHandle};
use crate::kind::Kind;
use crate::manager::{
    add_dependency, cleanup, cleanup_timeout, close, destroy, register, status, unregister,
    CloseMode, Config, Resource,
};
use crate::records::Status;
use std::time::Duration;

/// Creates a manager and starts its monitor (a resource of the manager, `resman.monitor`,
/// stopped by cleanup). On failure nothing is left.
pub fn create(config: Config) -> Result<Handle> {
    let handle = crate::manager::create(config)?;
    if let Err(e) = crate::monitor::start(handle) {
        let _ = destroy(handle.raw());
        return Err(e);
    }
    Ok(handle)
}

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
    /// This manager's handle: what [`rocks::open`](crate::rocks::open) registers into, and
    /// (`.raw()`) what C code holds as an `rm_manager`.
    pub fn handle(&self) -> ManagerHandle {
        ManagerHandle::from_raw(self.raw())
    }
    /// Registers `resource` as `name`, a dependent of every one of `deps` (closed before
    /// them). Kinds other than `Kind::Foreign` are for resman's own resources.
    pub fn register(
        &self,
        name: &str,
        kind: Kind,
        resource: Box<dyn Resource>,
        deps: &[ResourceHandle],
    ) -> Result<ResourceHandle> {
        let raw: Vec<u64> = deps.iter().map(|d| d.raw()).collect();
        register(self.raw(), name, kind, resource, &raw).map(|h| ResourceHandle::from_raw(h.raw()))
    }
    /// Makes `dependent` close before `dependency` (any kinds of this manager).
    pub fn add_dependency(
        &self,
        dependent: impl Into<ResourceHandle>,
        dependency: impl Into<ResourceHandle>,
    ) -> Result<()> {
        add_dependency(self.raw(), dependent.into().raw(), dependency.into().raw())
    }
    /// Removes a resource without closing it (the caller keeps what it owns).
    pub fn unregister(&self, h: impl Into<ResourceHandle>) -> Result<()> {
        unregister(self.raw(), h.into().raw())
    }
    /// Closes a resource and its dependents, gracefully, within the configured timeouts.
    pub fn close(&self, h: impl Into<ResourceHandle>) -> Result<()> {
        close(self.raw(), h.into().raw(), CloseMode::Graceful, None)
    }
    /// [`close`](Self::close) with a mode and a timeout (None: the configured one).
    pub fn close_with(
        &self,
        h: impl Into<ResourceHandle>,
        mode: CloseMode,
        timeout: Option<Duration>,
    ) -> Result<()> {
        close(self.raw(), h.into().raw(), mode, timeout)
    }
    /// Closes every resource, dependents first, within the configured timeouts.
    pub fn cleanup(&self) -> Result<()> {
        cleanup(self.raw())
    }
    /// [`cleanup`](Self::cleanup) with a timeout and mode.
    pub fn cleanup_timeout(&self, timeout: Duration, mode: CloseMode) -> Result<()> {
        cleanup_timeout(self.raw(), timeout, mode)
    }
    /// What the manager holds, its counters and its last cleanup.
    pub fn status(&self) -> Result<Status> {
        status(self.raw())
    }
    /// Destroys the manager now and returns the aggregated cleanup error, if any.
    pub fn destroy(mut self) -> Result<()> {
        self.destroyed = true;
        destroy(self.raw())
    }
    fn raw(&self) -> u64 {
        self.handle.raw()
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        if !self.destroyed {
            let _ = destroy(self.raw());
        }
    }
}
