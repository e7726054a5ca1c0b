//! Resources of the caller's, registered with a close callback, and what every resource
//! shares: dependencies, unregistering, closing one resource with its dependents.

use super::args::{at_most, c_str, close_mode, out_ptr, put_out, u64s};
use super::boundary::{boundary, rm_error};
use super::foreign::ForeignResource;
use crate::error::{rm_result, Error};
use crate::handle::Kind;
use crate::manager::{self, CloseMode};
use std::ffi::{c_char, c_void};
use std::time::Duration;

/// Longest resource or column-family name, in bytes.
pub const RM_MAX_NAME_LEN: usize = 1024;
const _: () = assert!(RM_MAX_NAME_LEN == manager::MAX_NAME_LEN);
/// Largest number of dependencies `rm_register` takes in one call.
pub const RM_MAX_DEPENDENCIES: usize = 65536;

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
        // SAFETY: this function's contract makes `name` a NUL-terminated string valid for the
        // call (or NULL, which c_str refuses): c_str's contract.
        let name = unsafe { c_str(name, "name") }?;
        let close = close.ok_or(Error::NullPointer("close"))?;
        at_most(n_deps, RM_MAX_DEPENDENCIES, "dependencies")?;
        // SAFETY: this function's contract makes `depends_on` `n_deps` readable `uint64_t`
        // (u64s refuses NULL with `n_deps` > 0 and checks the alignment): u64s's contract.
        let deps = unsafe { u64s(depends_on, n_deps, "depends_on") }?;
        let h = manager::register(
            manager,
            name,
            Kind::Foreign,
            Box::new(ForeignResource { close, context }),
            deps,
        )?;
        // SAFETY: `out` is not NULL (out_ptr above) and this function's contract makes
        // `out_handle` a writable `uint64_t`: put_out's contract.
        unsafe { put_out(out, h.raw()) };
        Ok(())
    })
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
            close_mode(force),
            Some(Duration::from_millis(timeout_ms)),
        )
    })
}
