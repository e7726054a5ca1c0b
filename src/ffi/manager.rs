//! Managers: their settings, creation and destruction.

use super::args::{close_mode, out_ptr, put_out};
use super::boundary::{boundary, rm_error};
use crate::error::{rm_result, Error};
use crate::manager::{self, Config};
use std::time::Duration;

/// Manager settings. Fill with `rm_config_default`, then change what you need;
/// `rm_manager_create` (and `rm_config_validate`) refuse a value outside its range with
/// `RM_ERR_INVALID_ARGUMENT` and a message naming it.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct rm_config {
    /// Bound of the graceful phase of `rm_cleanup`, `rm_close` and `rm_manager_destroy`
    /// (waiting for in-flight operations and closing with every courtesy), in milliseconds.
    /// Default 30000; 1 to 86400000 (24 h).
    pub cleanup_timeout_ms: u64,
    /// Bound of the forced phase: what the graceful phase left unfinished is forced, and what
    /// has not finished this long after is reported as timed out.
    /// Default 5000; 1 to 3600000 (1 h).
    pub force_cleanup_timeout_ms: u64,
    /// How often the monitor thread refreshes the memory figures and logs closes that are
    /// stuck. Default 10000; 10 to 86400000.
    pub monitor_interval_ms: u64,
    /// Pause between two attempts at a close that failed. Default 1000; 1 to 60000.
    pub retry_delay_ms: u64,
    /// Further attempts after a close fails (then the resource is marked failed with every
    /// attempt's error). Default 3; 0 (no retry) to 100.
    pub max_retries: u32,
}

impl rm_config {
    fn from_rust(c: &Config) -> rm_config {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        rm_config {
            cleanup_timeout_ms: ms(c.cleanup_timeout),
            force_cleanup_timeout_ms: ms(c.force_cleanup_timeout),
            monitor_interval_ms: ms(c.monitor_interval),
            retry_delay_ms: ms(c.retry_delay),
            max_retries: c.max_retries,
        }
    }
    fn to_rust(self) -> Config {
        Config {
            cleanup_timeout: Duration::from_millis(self.cleanup_timeout_ms),
            force_cleanup_timeout: Duration::from_millis(self.force_cleanup_timeout_ms),
            monitor_interval: Duration::from_millis(self.monitor_interval_ms),
            retry_delay: Duration::from_millis(self.retry_delay_ms),
            max_retries: self.max_retries,
        }
    }
}

/// Fills `*out` with the default manager settings.
///
/// Errors: `RM_ERR_NULL_POINTER` (`out`), `RM_ERR_PANIC`.
///
/// # Safety
/// `out` is NULL (rejected) or points to a writable `rm_config`.
#[no_mangle]
pub unsafe extern "C" fn rm_config_default(out: *mut rm_config) -> rm_result {
    boundary(std::ptr::null_mut(), || {
        let out = out_ptr(out, "out")?;
        // SAFETY: `out` is not NULL (out_ptr above), and this function's contract makes a
        // non-NULL `out` a writable `rm_config`: put_out's contract.
        unsafe { put_out(out, rm_config::from_rust(&Config::default())) };
        Ok(())
    })
}

/// Checks `*config` as `rm_manager_create` would, without creating anything: RM_OK, or
/// `RM_ERR_INVALID_ARGUMENT` with a message naming the first setting out of range (a
/// service can refuse a bad configuration file at start-up). Thread-safe.
///
/// # Safety
/// `config` is NULL (rejected) or points to a readable `rm_config`; `err` is NULL or points
/// to a writable `rm_error`.
#[no_mangle]
pub unsafe extern "C" fn rm_config_validate(
    config: *const rm_config,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        if config.is_null() {
            return Err(Error::NullPointer("config"));
        }
        // SAFETY: `config` is not NULL (checked above), and this function's contract makes a
        // non-NULL `config` a readable, aligned `rm_config`; its fields are integers, so
        // whatever the caller wrote there is a valid value.
        let c = unsafe { *config };
        c.to_rust().validate()
    })
}

/// Creates a manager and writes its handle to `*out_manager`.
///
/// `config` may be NULL for the defaults; it is read during the call only. The manager owns
/// every resource registered in it until they are closed; destroy it with
/// `rm_manager_destroy`. It starts a monitor thread, registered as its resource
/// "resman.monitor" (kind "monitor"; the name is taken), which `rm_cleanup` and
/// `rm_manager_destroy` stop and join like any resource. Thread-safe: a manager may be used
/// from any number of threads.
///
/// Errors: `RM_ERR_NULL_POINTER` (out_manager), `RM_ERR_INVALID_ARGUMENT` (a setting out of
/// range, named in the message), `RM_ERR_CAPACITY` (too many managers, or no thread for the
/// monitor).
///
/// # Safety
/// `config` is NULL or points to a readable `rm_config`; `out_manager` to a writable `uint64_t`;
/// `err` is NULL or points to a writable `rm_error`.
#[no_mangle]
pub unsafe extern "C" fn rm_manager_create(
    config: *const rm_config,
    out_manager: *mut u64,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        let out = out_ptr(out_manager, "out_manager")?;
        let cfg = if config.is_null() {
            Config::default()
        } else {
            // SAFETY: `config` is not NULL (this branch), and this function's contract makes a
            // non-NULL `config` a readable, aligned `rm_config`; its fields are integers, so
            // whatever the caller wrote there is a valid value.
            unsafe { *config }.to_rust()
        };
        let h = crate::api::create(cfg)?;
        // SAFETY: `out` is not NULL (out_ptr above) and this function's contract makes
        // `out_manager` a writable `uint64_t`: put_out's contract.
        unsafe { put_out(out, h.raw()) };
        Ok(())
    })
}

/// Closes everything the manager owns, like `rm_cleanup` (the graceful phase bounded by
/// `cleanup_timeout_ms`, including the wait for calls still inside the manager, then the
/// forced phase), stops its monitor, then destroys the manager itself. The manager handle is dead afterwards,
/// even when an error is returned (the error lists what did not close cleanly). A second call
/// returns `RM_ERR_ALREADY_CLOSED`; calls in flight on other threads are waited for (up to the
/// cleanup timeout), later calls return `RM_ERR_CLOSED` (`RM_ERR_STALE_HANDLE` once a newer
/// manager reuses the slot). New registrations are refused from the moment the destroy
/// begins. Returns within the graceful + forced bounds (plus the time to start the closes),
/// whatever other threads do. Thread-safe.
///
/// Errors: `RM_ERR_ALREADY_CLOSED` (destroyed, or being destroyed, by another call),
/// `RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND` (not a manager handle),
/// `RM_ERR_INVALID_ARGUMENT` (called from inside a close callback), `RM_ERR_CLOSE_FAILED`,
/// `RM_ERR_TIMEOUT`, `RM_ERR_CLEANUP_FAILED` (as `rm_cleanup`), `RM_ERR_PANIC`.
///
/// # Safety
/// `err` is NULL or points to a writable `rm_error`.
#[no_mangle]
pub unsafe extern "C" fn rm_manager_destroy(manager: u64, err: *mut rm_error) -> rm_result {
    boundary(err, || manager::destroy(manager))
}

/// `rm_manager_destroy` with explicit bounds, as `rm_cleanup_timeout` takes them: `force` 0:
/// the graceful phase lasts `timeout_ms` (including the wait for calls still inside the
/// manager), then the forced phase `force_cleanup_timeout_ms`; `force` non-zero: the forced
/// phase alone, bounded by `timeout_ms`. A resource an earlier cleanup already reported as
/// timed out is not waited for gracefully again: only the forced phase. Thread-safe.
///
/// Errors: as `rm_manager_destroy`.
///
/// # Safety
/// `err` is NULL or points to a writable `rm_error`.
#[no_mangle]
pub unsafe extern "C" fn rm_manager_destroy_timeout(
    manager: u64,
    timeout_ms: u64,
    force: bool,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        manager::destroy_timeout(
            manager,
            Duration::from_millis(timeout_ms),
            close_mode(force),
        )
    })
}
