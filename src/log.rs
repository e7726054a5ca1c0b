//! Log events: their levels and the receiver's type. Where events are emitted is the
//! manager's business; this module only names them.

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
