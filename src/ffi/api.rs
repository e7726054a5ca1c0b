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

/// Close callback of a resource registered with `rm_register`.
///
/// Called on a thread of resman's close pool (never on the caller of `rm_close`,
/// `rm_cleanup` or `rm_manager_destroy`, so a callback that hangs cannot hold them past their
/// deadline), after every resource that depends on this one has finished closing. Callbacks
/// of resources that do not depend on each other may run at the same time on different
/// threads; one resource's callback never runs twice at once. `context` is the pointer given
/// to `rm_register`. Return 0 on success; on failure return any other value and optionally
/// write a NUL-terminated message of at most `message_cap` bytes (including the NUL) into
/// `message`, which is only valid during the call. A failure is retried up to the manager's
/// `max_retries` times, `retry_delay_ms` apart, even past the deadline of the cleanup that
/// began it (which reports it as timed out and returns on time); after the last failure the
/// resource is marked failed with every attempt's message, what it depends on goes on
/// closing, and the callback is never called again. The callback must not unwind (throw a C++ exception or panic) across this boundary.
/// It may call resman's data functions and `rm_register` (refused with `RM_ERR_CLOSED` while
/// a cleanup or destroy of the manager runs, and with `RM_ERR_DEPENDENCY_CLOSED` on a
/// dependency whose close has been asked for), but `rm_close`,
/// `rm_close_timeout`, `rm_cleanup`, `rm_cleanup_timeout` and `rm_manager_destroy` are
/// refused with `RM_ERR_INVALID_ARGUMENT` from inside a callback (they would wait for the
/// callback itself).
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
/// Errors: `RM_ERR_NULL_POINTER` (`out`), `RM_ERR_PANIC`.
///
/// # Safety
/// `out` is NULL (rejected) or points to a writable `rm_config`.
#[no_mangle]
pub unsafe extern "C" fn rm_config_default(out: *mut rm_config) -> rm_result {
    boundary(std::ptr::null_mut(), || {
        let out = out_ptr(out, "out")?;
        // SAFETY: checked non-NULL; writable per the contract.
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
        // SAFETY: non-NULL and readable per the contract.
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
            // SAFETY: non-NULL and readable per the contract.
            unsafe { *config }.to_rust()
        };
        let h = manager::create(cfg)?;
        // SAFETY: checked non-NULL; writable per the contract.
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
        manager::destroy_timeout(manager, Duration::from_millis(timeout_ms), mode(force))
    })
}

/// Registers a resource of the caller's as `name`, closed by `close(context, ...)`, and writes
/// its handle to `*out_handle`.
///
/// `depends_on` lists `n_deps` handles (of the same manager, all active) this resource depends
/// on: it is closed before any of them, and none of them is closed before it. `depends_on` may
/// be NULL when `n_deps` is 0 (NULL with `n_deps` > 0 is `RM_ERR_NULL_POINTER`); otherwise it
/// must be 8-byte aligned (`RM_ERR_INVALID_ARGUMENT`). A resource whose close has been asked
/// for (`rm_close` of it or of something it depends on, a cleanup or destroy of the manager)
/// takes no new dependent: `RM_ERR_DEPENDENCY_CLOSED`, from the moment the close is asked for,
/// even while operations on it are still accepted. While a cleanup or destroy of the manager
/// runs, every registration is refused with `RM_ERR_CLOSED`; after a cleanup returns, the
/// manager takes new resources again. `name` and `depends_on` are read during the call only;
/// `context` is kept and passed back to `close` (resman never dereferences it): keep what it
/// points to alive until resman is done with it, which is when the callback has returned 0,
/// or has returned non-zero `1 + max_retries` times (it is called exactly that often, never
/// fewer), or the resource was unregistered.
/// On error nothing is registered and `close` is never called. Thread-safe.
///
/// Errors: `RM_ERR_NULL_POINTER` (`name`, `close`, `out_handle`, or `depends_on` with
/// `n_deps` > 0), `RM_ERR_INVALID_UTF8` (`name`), `RM_ERR_INVALID_ARGUMENT` (empty name, name
/// over `RM_MAX_NAME_LEN` bytes, more than `RM_MAX_DEPENDENCIES` dependencies, `depends_on`
/// not 8-byte aligned), `RM_ERR_DUPLICATE_NAME`, for the manager or a dependency
/// `RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND` (a manager handle as a
/// dependency, or a resource handle as the manager), `RM_ERR_FOREIGN_HANDLE` (a dependency of
/// another manager), `RM_ERR_DEPENDENCY_CLOSED` (a dependency closing, closed, or whose close
/// has been asked for), `RM_ERR_CLOSED` (manager destroyed, or a cleanup of it running),
/// `RM_ERR_CAPACITY` (no free handle), `RM_ERR_PANIC`.
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
/// `RM_ERR_DEPENDENCY_CLOSED` (dependency closing, closed, or its close asked for),
/// `RM_ERR_CLOSED` (dependent closing, or manager destroyed), `RM_ERR_INVALID_HANDLE`,
/// `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND`, `RM_ERR_FOREIGN_HANDLE`, `RM_ERR_PANIC`.
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
/// caller owns it (and its context) again. Thread-safe. Against a racing `rm_close`,
/// `rm_cleanup` or `rm_manager_destroy` exactly one wins: if the close was asked for first,
/// this returns `RM_ERR_ALREADY_CLOSED` and the callback runs (once); if this came first, it
/// returns `RM_OK`, the close returns `RM_ERR_ALREADY_CLOSED` and the callback never runs.
///
/// Errors: `RM_ERR_OWNED_RESOURCE` (anything resman created: a DB, a column family, an
/// iterator, a snapshot, a batch, the monitor: close those), `RM_ERR_HAS_DEPENDENTS`,
/// `RM_ERR_ALREADY_CLOSED` (closing, closed, or its close already asked for),
/// `RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND`,
/// `RM_ERR_FOREIGN_HANDLE`, `RM_ERR_CLOSED` (manager destroyed), `RM_ERR_PANIC`.
///
/// # Safety
/// `err` is NULL or points to a writable `rm_error`.
#[no_mangle]
pub unsafe extern "C" fn rm_unregister(manager: u64, handle: u64, err: *mut rm_error) -> rm_result {
    boundary(err, || manager::unregister(manager, handle))
}

/// Closes a resource and everything that (transitively) depends on it, like `rm_cleanup`
/// does for the whole manager: dependents first, graceful for up to the manager's
/// `cleanup_timeout_ms`, then forced for up to `force_cleanup_timeout_ms`. Returns when all
/// of them have finished closing or that bound has passed, whatever other threads do. The
/// handle is dead afterwards, whatever the result: later operations return `RM_ERR_CLOSED`, a
/// second close `RM_ERR_ALREADY_CLOSED` (`RM_ERR_STALE_HANDLE` once its slot is reused).
/// Thread-safe.
///
/// Exactly one call wins a resource's close and gets its result (`RM_OK` or an error below);
/// every other `rm_close` of it, racing or later, returns `RM_ERR_ALREADY_CLOSED`, and so does
/// `rm_unregister`. A close of a resource that a running close, cleanup or destroy already
/// includes (an iterator of a DB being closed) is `RM_ERR_ALREADY_CLOSED` too, and so is a
/// close through a destroyed manager of a resource its destroy closed (any other handle gets
/// the manager's `RM_ERR_CLOSED`). From the moment the close is asked for, the resource and
/// its dependents take no new dependent: `rm_register` with it as a dependency is
/// `RM_ERR_DEPENDENCY_CLOSED`, and a new iterator, snapshot or batch of a DB or column family
/// being closed is `RM_ERR_CLOSED`. Operations on it are still accepted until its own close
/// begins, which is after its dependents have finished closing (they may use it while they
/// close).
///
/// Errors: `RM_ERR_ALREADY_CLOSED`, `RM_ERR_CLOSE_FAILED` (the message has every attempt's
/// error), `RM_ERR_TIMEOUT` (names what had not finished and its state; it closes when what
/// holds it lets go), `RM_ERR_CLEANUP_FAILED` (several; the message is cut at 511 bytes, see
/// `rm_error`), `RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND` (a
/// manager handle as the resource, or the reverse), `RM_ERR_FOREIGN_HANDLE`,
/// `RM_ERR_INVALID_ARGUMENT` (called from inside a close callback), `RM_ERR_CLOSED` (the
/// manager was destroyed and the handle is not one of the resources it closed),
/// `RM_ERR_PANIC`.
///
/// # Safety
/// `err` is NULL or points to a writable `rm_error`.
#[no_mangle]
pub unsafe extern "C" fn rm_close(manager: u64, handle: u64, err: *mut rm_error) -> rm_result {
    boundary(err, || {
        manager::close(manager, handle, CloseMode::Graceful, None)
    })
}

/// Like `rm_close` with an explicit bound. `force` 0: the graceful phase lasts `timeout_ms`
/// (0: forced at once), then the forced phase `force_cleanup_timeout_ms`. `force` non-zero:
/// no graceful phase: new operations are refused at once, in-flight operations are not
/// waited for (the last one to end starts the native close), and the call returns when every
/// close has finished or `timeout_ms` has passed, reporting what had not finished as
/// `RM_ERR_TIMEOUT`. Thread-safe.
///
/// Errors: as `rm_close`.
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

/// Closes every resource of the manager, the monitor included.
///
/// Order: a resource's close begins only after everything that depends on it has finished
/// closing; resources that do not depend on each other close concurrently on resman's close
/// threads (started most recently registered first). Graceful phase (up to
/// `cleanup_timeout_ms`, 30 s by default): each close waits for the resource's in-flight
/// operations, then closes with every courtesy (a DB flushes its memtables and syncs its WAL).
/// Forced phase: whatever is unfinished when the graceful phase ends is forced (no more
/// waiting for operations; the last one starts the close) and given `force_cleanup_timeout_ms`
/// (5 s) more. A close that fails is retried (`max_retries`, `retry_delay_ms`). Whatever is
/// still unfinished then, a hung close callback or a resource held by it, is reported as
/// timed out with its name and state, and closes when what holds it lets go. So this returns
/// within `cleanup_timeout_ms + force_cleanup_timeout_ms`, whatever a callback does. Goes on
/// past failures; the error aggregates every failure (cut at 511 bytes; every resource's full
/// reason: `rm_cleanup_failures`). The order used is in the status document (`last_cleanup`).
///
/// What is closed is what was registered when the cleanup began: from then until it returns,
/// every registration in the manager (`rm_register`, `rm_db_open`, a new iterator, snapshot
/// or batch) is refused with `RM_ERR_CLOSED`, so the bound holds whatever other threads do.
/// Afterwards the manager is usable again. Thread-safe.
///
/// Errors: `RM_ERR_CLOSE_FAILED`, `RM_ERR_TIMEOUT`, `RM_ERR_CLEANUP_FAILED` (as `rm_close`),
/// `RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND`, `RM_ERR_CLOSED`
/// (manager destroyed), `RM_ERR_INVALID_ARGUMENT` (called from inside a close callback),
/// `RM_ERR_PANIC`.
///
/// # Safety
/// `err` is NULL or points to a writable `rm_error`.
#[no_mangle]
pub unsafe extern "C" fn rm_cleanup(manager: u64, err: *mut rm_error) -> rm_result {
    boundary(err, || manager::cleanup(manager))
}

/// `rm_cleanup` with an explicit bound: `force` 0: the graceful phase lasts `timeout_ms`, then
/// the forced phase `force_cleanup_timeout_ms`; `force` non-zero: the forced phase alone,
/// bounded by `timeout_ms` (see `rm_close_timeout`). Thread-safe.
///
/// Errors: as `rm_cleanup`.
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

/// Writes, as a NUL-terminated JSON document into `buf`, what the most recent cleanup of the
/// whole manager (`rm_cleanup`, `rm_cleanup_timeout`) reported for each resource that failed
/// or did not finish: `{"operation": "cleanup" or null (no cleanup yet), "total": N,
/// "failures": [{"name", "handle", "code", "message"}]}`, dependents first. `code` is the
/// `rm_result` number (`RM_ERR_CLOSE_FAILED` with every attempt's error, or `RM_ERR_TIMEOUT`
/// with the resource's state and what it waits for); `message` is resman's full text, never
/// cut. At most `max_failures` entries are written (`total` counts them all), so reading the
/// report of a cleanup that timed out on 100,000 resources costs what the caller chooses.
/// A `rm_close` of one resource does not replace the report. This is how a binding names each
/// resource after a cleanup whose aggregated message (`rm_error`, 511 bytes) was cut.
///
/// Buffer protocol as `rm_status`: `*out_len` receives the length without the NUL; when
/// `buf_cap <= *out_len` the result is `RM_ERR_BUFFER_TOO_SMALL` and nothing is written.
/// Thread-safe.
///
/// Errors: as `rm_status`.
///
/// # Safety
/// `buf` points to `buf_cap` writable bytes; `out_len` to a writable `size_t`; `err` is NULL or
/// points to a writable `rm_error`.
#[no_mangle]
pub unsafe extern "C" fn rm_cleanup_failures(
    manager: u64,
    max_failures: usize,
    buf: *mut c_char,
    buf_cap: usize,
    out_len: *mut usize,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        // SAFETY: the buffer and length pointers as this function's contract has them.
        unsafe {
            write_json(buf, buf_cap, out_len, || {
                let (operation, failures) = manager::cleanup_failures(manager)?;
                let listed: Vec<serde_json::Value> = failures
                    .iter()
                    .take(max_failures)
                    .map(|f| {
                        serde_json::json!({
                            "name": f.name,
                            "handle": f.handle.raw(),
                            "code": f.code as i32,
                            "message": f.message,
                        })
                    })
                    .collect();
                Ok(serde_json::json!({
                    "operation": operation,
                    "total": failures.len(),
                    "failures": listed,
                })
                .to_string())
            })
        }
    })
}

/// Writes the manager's status as a NUL-terminated JSON document into `buf`:
/// `{"version", "manager", "uptime_ms", "cleanup_timeout_ms", "config": {cleanup_timeout_ms,
/// force_cleanup_timeout_ms, monitor_interval_ms, max_retries, retry_delay_ms}, "totals":
/// {the counters of `rm_manager_metrics`}, "cleanup_duration" and "close_duration": {count,
/// sum_seconds, le, buckets}, "memory": {the monitor's last sample, as `rm_memory_sample`},
/// "close_threads",
/// "last_cleanup": null or {operation, target, mode, graceful_timeout_ms, force_timeout_ms,
/// age_ms, duration_ms, escalated, resources, order, steps: [{name, kind, handle, started_ms,
/// finished_ms, outcome, attempts, forced, errors}], errors}, "resources": [{handle, name,
/// kind, state, leases, depends_on, dependents, age_ms, close_duration_ms, close_deferred,
/// last_error, details}], "recently_closed": [{handle, name, kind, outcome,
/// close_duration_ms, forced, attempts, error, leaked_iterators, leaked_snapshots}]}`.
/// `last_cleanup.order` is the order in which the last run's native closes started; in
/// `steps`, a dependent's `finished_ms` is never later than the `started_ms` of what it
/// depends on. A DB's `details` are its path, its column families and `memory` (RocksDB's
/// figures, as `rm_db_memory`, read now; the top-level `memory` is the monitor's last sample).
/// Iterators and snapshots still open when what they read from was closed are counted as
/// leaked.
///
/// `*out_len` receives the document's length without the NUL. When `buf_cap <= *out_len` the
/// result is `RM_ERR_BUFFER_TOO_SMALL` and nothing is written: call again with at least
/// `*out_len + 1` bytes (the status may have grown meanwhile). `buf` may be NULL when
/// `buf_cap` is 0. Thread-safe.
///
/// Errors: `RM_ERR_NULL_POINTER` (`out_len`, or `buf` with `buf_cap` > 0),
/// `RM_ERR_INVALID_ARGUMENT` (`buf_cap` over `PTRDIFF_MAX`), `RM_ERR_BUFFER_TOO_SMALL`,
/// `RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`, `RM_ERR_WRONG_KIND` (not a manager
/// handle), `RM_ERR_CLOSED` (manager destroyed), `RM_ERR_PANIC`.
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
        // SAFETY: the buffer and length pointers as this function's contract has them.
        unsafe {
            write_json(buf, buf_cap, out_len, || {
                Ok(manager::status(manager)?.to_json())
            })
        }
    })
}

/// The two-call buffer protocol of the JSON documents: checks the pointers, builds the
/// document, writes its length to `*out_len` and, if it fits with its NUL, the text into `buf`.
///
/// # Safety
/// `buf` is NULL or points to `buf_cap` writable bytes; `out_len` is NULL or writable.
unsafe fn write_json(
    buf: *mut c_char,
    buf_cap: usize,
    out_len: *mut usize,
    document: impl FnOnce() -> Result<String, Error>,
) -> Result<(), Error> {
    let out_len = out_ptr(out_len, "out_len")?;
    // SAFETY: `buf_cap` writable bytes per this function's contract (NULL checked inside).
    let buf = unsafe { buffer(buf.cast::<u8>(), buf_cap, "buf") }?;
    let json = document()?;
    // SAFETY: checked non-NULL; writable per this function's contract.
    unsafe { put_out(out_len, json.len()) };
    if buf.len() <= json.len() {
        return Err(Error::BufferTooSmall {
            needed: json.len() + 1,
        });
    }
    buf[..json.len()].copy_from_slice(json.as_bytes());
    buf[json.len()] = 0;
    Ok(())
}

/// Buckets of an `rm_histogram`.
pub const RM_HISTOGRAM_BUCKETS: usize = 12;
const _: () = assert!(RM_HISTOGRAM_BUCKETS == crate::monitor::DURATION_BOUNDS.len());

/// A duration histogram, Prometheus style.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct rm_histogram {
    /// Observations.
    pub count: u64,
    /// Their sum, in seconds.
    pub sum_seconds: f64,
    /// Upper bounds of the buckets in seconds, ascending (0.001 .. 30); the +Inf bucket is
    /// `count`.
    pub le: [f64; RM_HISTOGRAM_BUCKETS],
    /// `buckets[i]`: observations of at most `le[i]` seconds (cumulative).
    pub buckets: [u64; RM_HISTOGRAM_BUCKETS],
}

/// A manager's counters, for cheap polling with `rm_manager_metrics`. Counters (`*_total` in
/// Prometheus terms) only grow; `active`, `closing` and the memory figures are gauges.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct rm_metrics {
    /// Resources registered since the manager was created (the monitor, DBs, column
    /// families, iterators, snapshots, batches, `rm_register`ed resources).
    pub registered: u64,
    /// Registered and accepting operations now.
    pub active: u64,
    /// Registered, close begun, native close not finished yet.
    pub closing: u64,
    /// Closed successfully (possibly after retries).
    pub closed: u64,
    /// Marked failed: every attempt at closing failed.
    pub failed: u64,
    /// Handed back with `rm_unregister`.
    pub unregistered: u64,
    /// Closes that were forced (asked for, or after the graceful phase ended).
    pub forced: u64,
    /// Closes left to the last in-flight operation.
    pub deferred: u64,
    /// Resources reported as not finished by a run's deadline.
    pub timed_out: u64,
    /// Close attempts made after a failed one.
    pub retries: u64,
    /// Close attempts that failed (retried or not).
    pub close_errors: u64,
    /// Cleanup runs: `rm_cleanup*`, `rm_close*`, `rm_manager_destroy`.
    pub cleanups: u64,
    /// Of those, the ones that returned an error (success rate: 1 - failed / cleanups).
    pub cleanups_failed: u64,
    /// Runs whose graceful phase ended with something unfinished, which was then forced.
    pub escalations: u64,
    /// Iterators still open when what they read from was closed (closed by resman).
    pub leaked_iterators: u64,
    /// Snapshots still open when their DB was closed (released by resman).
    pub leaked_snapshots: u64,
    /// Seconds per cleanup run, from its start to its return.
    pub cleanup_duration: rm_histogram,
    /// Seconds per resource close, from its begin to its native close's end.
    pub close_duration: rm_histogram,
    /// Resources whose memory the monitor's last sample counted (the open DBs).
    pub memory_reporting: u64,
    /// Sums of RocksDB's figures over those DBs, in bytes (as `rm_db_memory`).
    pub mem_table_total: u64,
    pub mem_table_unflushed: u64,
    pub table_readers: u64,
    pub block_cache: u64,
    /// Estimate of the manager's own bookkeeping, in bytes.
    pub registry_bytes: u64,
    /// Age of that sample in milliseconds; UINT64_MAX before the first.
    pub memory_age_ms: u64,
    /// Samples taken by the monitor.
    pub memory_samples: u64,
    /// Threads of resman's close pool now, across the process (busy, stalled on a hung
    /// callback, or idle; idle ones exit after 2 s).
    pub close_threads: u64,
}

/// Fills `*out` with manager `manager`'s counters: a few atomic loads, no allocation and no
/// walk over the resources, so it can be polled often (Prometheus scrapes). The memory
/// figures are the monitor's last sample (`monitor_interval_ms`). Thread-safe.
///
/// Errors: `RM_ERR_NULL_POINTER` (`out`), `RM_ERR_INVALID_HANDLE`, `RM_ERR_STALE_HANDLE`,
/// `RM_ERR_WRONG_KIND` (not a manager handle), `RM_ERR_CLOSED` (manager destroyed),
/// `RM_ERR_PANIC`.
///
/// # Safety
/// `out` points to a writable `rm_metrics`; `err` is NULL or points to a writable `rm_error`.
#[no_mangle]
pub unsafe extern "C" fn rm_manager_metrics(
    manager: u64,
    out: *mut rm_metrics,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        let out = out_ptr(out, "out")?;
        let m = manager::metrics(manager)?;
        let t = &m.totals;
        let hist = |h: &crate::monitor::HistogramSnapshot| rm_histogram {
            count: h.count,
            sum_seconds: h.sum_seconds,
            le: h.le,
            buckets: h.buckets,
        };
        let value = rm_metrics {
            registered: t.registered,
            active: t.active,
            closing: t.closing,
            closed: t.closed,
            failed: t.failed,
            unregistered: t.unregistered,
            forced: t.forced,
            deferred: t.deferred,
            timed_out: t.timed_out,
            retries: t.retries,
            close_errors: t.close_errors,
            cleanups: t.cleanups,
            cleanups_failed: t.cleanups_failed,
            escalations: t.escalations,
            leaked_iterators: t.leaked_iterators,
            leaked_snapshots: t.leaked_snapshots,
            cleanup_duration: hist(&m.cleanup_duration),
            close_duration: hist(&m.close_duration),
            memory_reporting: m.memory.reporting,
            mem_table_total: m.memory.total.mem_table_total,
            mem_table_unflushed: m.memory.total.mem_table_unflushed,
            table_readers: m.memory.total.table_readers,
            block_cache: m.memory.total.block_cache,
            registry_bytes: m.memory.registry_bytes,
            memory_age_ms: m.memory.age_ms.unwrap_or(u64::MAX),
            memory_samples: m.memory.samples,
            close_threads: m.close_threads,
        };
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { put_out(out, value) };
        Ok(())
    })
}

/// Writes the monitor's last memory sample as NUL-terminated JSON into `buf`:
/// `{"reporting", "mem_table_total", "mem_table_unflushed", "table_readers", "block_cache",
/// "registry_bytes", "resources": [{"name", "handle", "mem_table_total",
/// "mem_table_unflushed", "table_readers", "block_cache"}], "age_ms", "samples"}`: the sums
/// and each open DB's RocksDB figures in bytes, as sampled every `monitor_interval_ms` (no
/// RocksDB call and no walk over the resources happens here). Buffer protocol as
/// `rm_status`. Thread-safe.
///
/// Errors: as `rm_status`.
///
/// # Safety
/// `buf` points to `buf_cap` writable bytes; `out_len` to a writable `size_t`; `err` is NULL or
/// points to a writable `rm_error`.
#[no_mangle]
pub unsafe extern "C" fn rm_memory_sample(
    manager: u64,
    buf: *mut c_char,
    buf_cap: usize,
    out_len: *mut usize,
    err: *mut rm_error,
) -> rm_result {
    boundary(err, || {
        // SAFETY: the buffer and length pointers as this function's contract has them.
        unsafe {
            write_json(buf, buf_cap, out_len, || {
                Ok(manager::memory_sample_of(manager)?.to_json())
            })
        }
    })
}

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
