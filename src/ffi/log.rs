//! A manager's log events, delivered to a C callback.

use super::boundary::{boundary, rm_error};
use crate::error::{rm_result, Error};
use crate::manager;
use std::ffi::{c_char, c_void};

/// Log levels of `rm_log_fn` events (and the `max_level` of `rm_manager_set_log`).
pub const RM_LOG_ERROR: i32 = 1;
/// Something went wrong but was handled: a retry, a timeout, a deferred close, leaks.
pub const RM_LOG_WARN: i32 = 2;
/// A resource closed.
pub const RM_LOG_INFO: i32 = 3;
/// A resource was registered.
pub const RM_LOG_DEBUG: i32 = 4;

/// Receives a manager's log events: `level` is one of `RM_LOG_*`; `message` is NUL-terminated
/// UTF-8, valid only during the call (copy it to keep it). Called on whatever thread the event
/// happens (the caller of a resman function, or a close thread), possibly from several threads
/// at once, and never while resman holds a lock: it may call resman functions, except that
/// close, cleanup and destroy are refused from a close callback and from the event reporting a
/// close (they would wait for that close). It must not unwind (throw or panic) across this
/// boundary.
#[allow(non_camel_case_types)]
pub type rm_log_fn =
    Option<unsafe extern "C" fn(context: *mut c_void, level: i32, message: *const c_char)>;

struct CLogger {
    f: unsafe extern "C" fn(*mut c_void, i32, *const c_char),
    context: *mut c_void,
}

// SAFETY: the only use of the two pointers is the call in `emit`, and the caller of
// rm_manager_set_log promised (its `# Safety`) that `log` may be called with `context` from any
// thread; resman never dereferences `context` itself. So moving a CLogger to another thread
// moves nothing that thread could not use.
unsafe impl Send for CLogger {}
// SAFETY: `&CLogger` allows only `emit`, and the same promise covers calls from several threads
// at once ("concurrently").
unsafe impl Sync for CLogger {}

impl CLogger {
    fn emit(&self, level: manager::LogLevel, msg: &str) {
        // A message never contains NUL in practice (names cannot); replace one if it does.
        let text = std::ffi::CString::new(msg.replace('\0', "\u{fffd}")).unwrap_or_default();
        // SAFETY: `f` and `context` are what the caller passed to rm_manager_set_log, whose
        // contract makes `f` callable with `context` from any thread, concurrently, for as long
        // as the manager may deliver events to it (its documentation says until when);
        // `text` is a NUL-terminated string that lives until after the call, as rm_log_fn's
        // `message` must.
        unsafe { (self.f)(self.context, level as i32, text.as_ptr()) }
    }
}

/// Routes manager `manager`'s events (registrations at `RM_LOG_DEBUG`, closes at
/// `RM_LOG_INFO`; retries, timeouts, escalations, deferred closes, closes stuck for longer
/// than the monitor interval and leaked iterators/snapshots at `RM_LOG_WARN`; close failures
/// at `RM_LOG_ERROR`) to `log(context, level, message)`, for events at
/// `max_level` or more severe (a lower number). `log` NULL removes the receiver. With no
/// receiver resman writes nothing anywhere. `context` is kept and passed back (resman never
/// dereferences it): keep what it points to alive until the receiver is replaced or removed,
/// or the manager destroyed (after `rm_manager_destroy` returns no event is delivered, except
/// by a call on another thread that was still inside the manager when destroy's deadline
/// passed).
/// Thread-safe.
///
/// Errors: `RM_ERR_INVALID_ARGUMENT` (`max_level` outside RM_LOG_ERROR..RM_LOG_DEBUG), handle
/// errors, `RM_ERR_CLOSED` (manager destroyed).
///
/// # Safety
/// `log`, if not NULL, must be callable with `context` from any thread, concurrently;
/// `err` is NULL or points to a writable `rm_error`.
#[no_mangle]
pub unsafe extern "C" fn rm_manager_set_log(
    manager: u64,
    log: rm_log_fn,
    context: *mut c_void,
    max_level: i32,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        let max = match max_level {
            RM_LOG_ERROR => manager::LogLevel::Error,
            RM_LOG_WARN => manager::LogLevel::Warn,
            RM_LOG_INFO => manager::LogLevel::Info,
            RM_LOG_DEBUG => manager::LogLevel::Debug,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "max_level {other} is not one of RM_LOG_ERROR (1) .. RM_LOG_DEBUG (4)"
                )))
            }
        };
        let f: Option<std::sync::Arc<manager::LogFn>> = log.map(|f| {
            let l = CLogger { f, context };
            std::sync::Arc::new(move |level: manager::LogLevel, msg: &str| l.emit(level, msg))
                as std::sync::Arc<manager::LogFn>
        });
        manager::set_logger(manager, f, max)
    })
}
