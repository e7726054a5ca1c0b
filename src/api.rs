//! The Rust API's entry points above the core: a manager comes with its monitor. `create` is
//! what `rm_manager_create` calls; [`Manager`] owns one for Rust callers.

use crate::error::Result;
use crate::handle::Handle;
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
