//! The exported functions. Their doc comments are the header's documentation.

use super::foreign::ForeignResource;
use super::{boundary, buffer, c_str, out_ptr, put_out, rm_error};
use crate::error::{rm_result, Error};
use crate::handle::Kind;
use crate::manager::{self, CloseMode, Config};
use std::ffi::{c_char, c_void, CStr};
use std::time::Duration;

/// Longest resource or column-family name, in bytes.
pub const RM_MAX_NAME_LEN: usize = 1024;
const _: () = assert!(RM_MAX_NAME_LEN == manager::MAX_NAME_LEN);
/// Largest number of dependencies `rm_register` takes in one call.
pub const RM_MAX_DEPENDENCIES: usize = 65536;

/// Manager settings. Fill with `rm_config_default`, then change what you need.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct rm_config {
    /// Bound of `rm_cleanup`, `rm_close` and `rm_manager_destroy`, in milliseconds.
    /// Default 30000. Must be greater than 0.
    pub cleanup_timeout_ms: u64,
}

/// Close callback of a resource registered with `rm_register`.
///
/// Called at most once (never after `rm_unregister`), on whatever thread runs the close: the
/// caller of `rm_close`/`rm_cleanup`/`rm_manager_destroy`, or, when the close was deferred, the
/// thread that released the last dependent. Never called concurrently with itself.
/// `context` is the pointer given to `rm_register`. Return 0 on success; on failure return any
/// other value and optionally write a NUL-terminated message of at most `message_cap` bytes
/// (including the NUL) into `message`, which is only valid during the call. The callback must
/// not unwind (throw a C++ exception or panic) across this boundary. It may call resman's data
/// functions and `rm_register`, but `rm_close`, `rm_close_timeout`, `rm_cleanup`,
/// `rm_cleanup_timeout` and `rm_manager_destroy` are refused with `RM_ERR_INVALID_ARGUMENT`
/// from inside a callback (they would wait for the callback itself).
#[allow(non_camel_case_types)]
pub type rm_close_fn = Option<
    unsafe extern "C" fn(context: *mut c_void, message: *mut c_char, message_cap: usize) -> i32,
>;

static VERSION_C: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(s) => s,
        Err(_) => panic!("version has no interior NUL"),
    };

/// The library version as "MAJOR.MINOR.PATCH". Static storage: do not free. Compare with
/// `RM_VERSION_STRING` to detect a header/library mismatch. Thread-safe.
#[no_mangle]
pub extern "C" fn rm_version() -> *const c_char {
    VERSION_C.as_ptr()
}

/// The library version as MAJOR * 10000 + MINOR * 100 + PATCH (compare with
/// `RM_VERSION_NUMBER`). Thread-safe.
#[no_mangle]
pub extern "C" fn rm_version_number() -> u32 {
    crate::VERSION_NUMBER
}

/// Static text for a result code ("unknown result code" for a number that is not one).
/// Static storage: do not free. Thread-safe.
#[no_mangle]
pub extern "C" fn rm_result_str(code: i32) -> *const c_char {
    match rm_result::from_i32(code) {
        Some(c) => c.describe_c().as_ptr(),
        None => c"unknown result code".as_ptr(),
    }
}

/// Number of live resource handles across all managers of the process (resources registered
/// and not yet fully closed). 0 once every manager is destroyed and every deferred close ran:
/// a leak check for tests. Thread-safe.
#[no_mangle]
pub extern "C" fn rm_live_objects() -> u64 {
    u64::from(manager::live_resources())
}

/// Fills `*out` with the default manager settings.
///
/// # Safety
/// `out` is NULL (rejected) or points to a writable `rm_config`.
#[no_mangle]
pub unsafe extern "C" fn rm_config_default(out: *mut rm_config) -> rm_result {
    boundary(std::ptr::null_mut(), || {
        let out = out_ptr(out, "out")?;
        let d = Config::default();
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe {
            put_out(
                out,
                rm_config {
                    cleanup_timeout_ms: d.cleanup_timeout.as_millis() as u64,
                },
            )
        };
        Ok(())
    })
}

/// Creates a manager and writes its handle to `*out_manager`.
///
/// `config` may be NULL for the defaults; it is read during the call only. The manager owns
/// every resource registered in it until they are closed; destroy it with
/// `rm_manager_destroy`. Thread-safe: a manager may be used from any number of threads.
///
/// Errors: `RM_ERR_NULL_POINTER` (out_manager), `RM_ERR_INVALID_ARGUMENT` (a zero timeout),
/// `RM_ERR_CAPACITY`.
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
        let mut cfg = Config::default();
        if !config.is_null() {
            // SAFETY: non-NULL and readable per the contract.
            let c = unsafe { *config };
            cfg.cleanup_timeout = Duration::from_millis(c.cleanup_timeout_ms);
        }
        let h = manager::create(cfg)?;
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { put_out(out, h.raw()) };
        Ok(())
    })
}

/// Closes everything the manager owns, like `rm_cleanup` (graceful, bounded by the cleanup
/// timeout, forced past it), then the manager itself. The manager handle is dead afterwards,
/// even when an error is returned (the error lists what did not close cleanly). A second call
/// returns `RM_ERR_ALREADY_CLOSED`; calls in flight on other threads are waited for (up to the
/// cleanup timeout), later calls return `RM_ERR_CLOSED` (`RM_ERR_STALE_HANDLE` once a newer
/// manager reuses the slot). Thread-safe.
///
/// # Safety
/// `err` is NULL or points to a writable `rm_error`.
#[no_mangle]
pub unsafe extern "C" fn rm_manager_destroy(manager: u64, err: *mut rm_error) -> rm_result {
    boundary(err, || manager::destroy(manager))
}

/// Registers a resource of the caller's as `name`, closed by `close(context, ...)`, and writes
/// its handle to `*out_handle`.
///
/// `depends_on` lists `n_deps` handles (of the same manager, all active) this resource depends
/// on: it is closed before any of them, and none of them is closed before it. `depends_on` may
/// be NULL when `n_deps` is 0. `name` and `depends_on` are read during the call only;
/// `context` is kept and passed back to `close` (resman never dereferences it): keep what it
/// points to alive until the callback ran or the resource was unregistered.
/// On error nothing is registered and `close` is never called. Thread-safe.
///
/// Errors: `RM_ERR_NULL_POINTER`, `RM_ERR_INVALID_UTF8`, `RM_ERR_INVALID_ARGUMENT` (empty or
/// over-long name, too many dependencies), `RM_ERR_DUPLICATE_NAME`, a handle error for a bad
/// dependency (`RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`, `RM_ERR_FOREIGN_HANDLE`, ...),
/// `RM_ERR_DEPENDENCY_CLOSED`, `RM_ERR_CLOSED` (manager destroyed).
///
/// # Safety
/// `name` is a NUL-terminated string; `depends_on` points to `n_deps` readable `uint64_t`;
/// `out_handle` to a writable `uint64_t`; `err` is NULL or points to a writable `rm_error`.
/// `close` must be callable once with `context` from any thread.
#[no_mangle]
pub unsafe extern "C" fn rm_register(
    manager: u64,
    name: *const c_char,
    close: rm_close_fn,
    context: *mut c_void,
    depends_on: *const u64,
    n_deps: usize,
    out_handle: *mut u64,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        let out = out_ptr(out_handle, "out_handle")?;
        // SAFETY: NUL-terminated per the contract.
        let name = unsafe { c_str(name, "name") }?;
        let close = close.ok_or(Error::NullPointer("close"))?;
        if n_deps > RM_MAX_DEPENDENCIES {
            return Err(Error::InvalidArgument(format!(
                "{n_deps} dependencies; the limit is {RM_MAX_DEPENDENCIES}"
            )));
        }
        // SAFETY: `n_deps` readable u64 per the contract (checked for NULL inside).
        let deps = unsafe { u64s(depends_on, n_deps, "depends_on") }?;
        let h = manager::register(
            manager,
            name,
            Kind::Foreign,
            Box::new(ForeignResource { close, context }),
            deps,
        )?;
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { put_out(out, h.raw()) };
        Ok(())
    })
}

/// `n` u64 values at `p` (NULL allowed when n is 0).
///
/// # Safety
/// When `n > 0`, `p` points to `n` readable, aligned `uint64_t`.
pub(crate) unsafe fn u64s<'a>(
    p: *const u64,
    n: usize,
    what: &'static str,
) -> Result<&'a [u64], Error> {
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::NullPointer(what));
    }
    if !p.is_aligned() {
        return Err(Error::InvalidArgument(format!(
            "{what} is not 8-byte aligned"
        )));
    }
    // SAFETY: non-NULL, aligned, `n` readable values per the contract; n is bounded by the
    // callers (RM_MAX_*), far below isize::MAX / 8.
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

/// Makes `dependent` depend on `dependency` (both already registered in `manager`).
/// Thread-safe.
///
/// Errors: `RM_ERR_CYCLE` (dependency already depends on dependent, or they are the same),
/// `RM_ERR_DEPENDENCY_CLOSED`, `RM_ERR_CLOSED` (dependent closing), handle errors.
///
/// # Safety
/// `err` is NULL or points to a writable `rm_error`.
#[no_mangle]
pub unsafe extern "C" fn rm_add_dependency(
    manager: u64,
    dependent: u64,
    dependency: u64,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        manager::add_dependency(manager, dependent, dependency)
    })
}

/// Forgets a resource registered with `rm_register` without calling its close callback: the
/// caller owns it (and its context) again. Thread-safe.
///
/// Errors: `RM_ERR_OWNED_RESOURCE` (a DB or column family: close those),
/// `RM_ERR_HAS_DEPENDENTS`, `RM_ERR_ALREADY_CLOSED`, handle errors.
///
/// # Safety
/// `err` is NULL or points to a writable `rm_error`.
#[no_mangle]
pub unsafe extern "C" fn rm_unregister(manager: u64, handle: u64, err: *mut rm_error) -> rm_result {
    boundary(err, || manager::unregister(manager, handle))
}

/// Closes a resource gracefully, after everything that depends on it, waiting for in-flight
/// operations up to the manager's cleanup timeout (forced past it). The handle is dead
/// afterwards, whatever the result: later operations return `RM_ERR_CLOSED`, a second close
/// `RM_ERR_ALREADY_CLOSED` (`RM_ERR_STALE_HANDLE` once its slot is reused). Thread-safe.
///
/// Errors: `RM_ERR_ALREADY_CLOSED`, `RM_ERR_CLOSE_FAILED` (the message says why),
/// `RM_ERR_TIMEOUT` (names what was still in use; it closes when that use ends),
/// `RM_ERR_CLEANUP_FAILED` (several), handle errors.
///
/// # Safety
/// `err` is NULL or points to a writable `rm_error`.
#[no_mangle]
pub unsafe extern "C" fn rm_close(manager: u64, handle: u64, err: *mut rm_error) -> rm_result {
    boundary(err, || {
        manager::close(manager, handle, CloseMode::Graceful, None)
    })
}

/// Like `rm_close` with an explicit bound. `force` non-zero: do not wait at all: new operations
/// are refused at once and the native close runs now, or when the last in-flight operation
/// ends (this returns immediately either way). `timeout_ms` 0 with `force` 0: graceful where
/// nothing is in flight, forced where something is. Thread-safe.
///
/// # Safety
/// `err` is NULL or points to a writable `rm_error`.
#[no_mangle]
pub unsafe extern "C" fn rm_close_timeout(
    manager: u64,
    handle: u64,
    timeout_ms: u64,
    force: bool,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        manager::close(
            manager,
            handle,
            mode(force),
            Some(Duration::from_millis(timeout_ms)),
        )
    })
}

fn mode(force: bool) -> CloseMode {
    if force {
        CloseMode::Forced
    } else {
        CloseMode::Graceful
    }
}

/// Closes every resource of the manager: dependents before what they depend on, among
/// independent resources the most recently registered first; graceful, bounded by the
/// manager's cleanup timeout (30 s by default), forced past it. Goes on past failures; the
/// error aggregates every failure and names every resource that did not finish. The manager
/// stays usable. Thread-safe.
///
/// # Safety
/// `err` is NULL or points to a writable `rm_error`.
#[no_mangle]
pub unsafe extern "C" fn rm_cleanup(manager: u64, err: *mut rm_error) -> rm_result {
    boundary(err, || manager::cleanup(manager))
}

/// `rm_cleanup` with an explicit bound, and `force` to skip waiting entirely (see
/// `rm_close_timeout`). Thread-safe.
///
/// # Safety
/// `err` is NULL or points to a writable `rm_error`.
#[no_mangle]
pub unsafe extern "C" fn rm_cleanup_timeout(
    manager: u64,
    timeout_ms: u64,
    force: bool,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        manager::cleanup_timeout(manager, Duration::from_millis(timeout_ms), mode(force))
    })
}

/// Writes the manager's status as a NUL-terminated JSON document into `buf`:
/// `{"version", "manager", "uptime_ms", "cleanup_timeout_ms", "totals": {registered, active,
/// closing, closed, failed, unregistered, forced, deferred, timed_out, cleanups,
/// leaked_iterators, leaked_snapshots}, "resources": [{handle, name, kind, state, leases,
/// depends_on, dependents, age_ms, close_duration_ms, close_deferred, last_error, details}],
/// "recently_closed": [{handle, name, kind, outcome, close_duration_ms, forced, error,
/// leaked_iterators, leaked_snapshots}]}`. A DB's `details` are its path, its column
/// families and `memory` (RocksDB's figures, as `rm_db_memory`). Iterators and snapshots still
/// open when what they read from was closed are counted as leaked.
///
/// `*out_len` receives the document's length without the NUL. When `buf_cap <= *out_len` the
/// result is `RM_ERR_BUFFER_TOO_SMALL` and nothing is written: call again with at least
/// `*out_len + 1` bytes (the status may have grown meanwhile). `buf` may be NULL when
/// `buf_cap` is 0. Thread-safe.
///
/// # Safety
/// `buf` points to `buf_cap` writable bytes; `out_len` to a writable `size_t`; `err` is NULL or
/// points to a writable `rm_error`.
#[no_mangle]
pub unsafe extern "C" fn rm_status(
    manager: u64,
    buf: *mut c_char,
    buf_cap: usize,
    out_len: *mut usize,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        let out_len = out_ptr(out_len, "out_len")?;
        // SAFETY: `buf_cap` writable bytes per the contract (checked for NULL inside).
        let buf = unsafe { buffer(buf.cast::<u8>(), buf_cap, "buf") }?;
        let json = manager::status(manager)?.to_json();
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { put_out(out_len, json.len()) };
        if buf.len() <= json.len() {
            return Err(Error::BufferTooSmall {
                needed: json.len() + 1,
            });
        }
        buf[..json.len()].copy_from_slice(json.as_bytes());
        buf[json.len()] = 0;
        Ok(())
    })
}

/// Log levels of `rm_log_fn` events (and the `max_level` of `rm_manager_set_log`).
pub const RM_LOG_ERROR: i32 = 1;
/// Something went wrong but was handled: a timeout, a deferred close, leaked iterators.
pub const RM_LOG_WARN: i32 = 2;
/// A resource closed.
pub const RM_LOG_INFO: i32 = 3;
/// A resource was registered.
pub const RM_LOG_DEBUG: i32 = 4;

/// Receives a manager's log events: `level` is one of `RM_LOG_*`; `message` is NUL-terminated
/// UTF-8, valid only during the call (copy it to keep it). Called on whatever thread the event
/// happens (the caller of a resman function, or the thread that ran a deferred close), possibly
/// from several threads at once, and never while resman holds a lock: it may call resman
/// functions, except that close, cleanup and destroy are refused inside a close callback. It
/// must not unwind (throw or panic) across this boundary.
#[allow(non_camel_case_types)]
pub type rm_log_fn =
    Option<unsafe extern "C" fn(context: *mut c_void, level: i32, message: *const c_char)>;

struct CLogger {
    f: unsafe extern "C" fn(*mut c_void, i32, *const c_char),
    context: *mut c_void,
}

// SAFETY: the caller of rm_manager_set_log promises `log` may be called with `context` from any
// thread, concurrently; resman never dereferences `context` itself.
unsafe impl Send for CLogger {}
// SAFETY: as above.
unsafe impl Sync for CLogger {}

impl CLogger {
    fn emit(&self, level: manager::LogLevel, msg: &str) {
        // A message never contains NUL in practice (names cannot); replace one if it does.
        let text = std::ffi::CString::new(msg.replace('\0', "\u{fffd}")).unwrap_or_default();
        // SAFETY: `f` and `context` are what the caller registered, callable from any thread
        // (contract of rm_manager_set_log); `text` lives until after the call.
        unsafe { (self.f)(self.context, level as i32, text.as_ptr()) }
    }
}

/// Routes manager `manager`'s events (registrations at `RM_LOG_DEBUG`, closes at
/// `RM_LOG_INFO`, timeouts, deferred closes and leaked iterators/snapshots at `RM_LOG_WARN`,
/// close failures at `RM_LOG_ERROR`) to `log(context, level, message)`, for events at
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
