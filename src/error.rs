//! Errors and the stable result codes they map to.

use crate::handle::{Handle, HandleError};
use std::sync::Arc;

/// Result of every `rm_*` call. The numbers are stable: a code is never renumbered or reused.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(C)]
pub enum rm_result {
    /// Success.
    RM_OK = 0,
    /// A required pointer argument was NULL.
    RM_ERR_NULL_POINTER = 1,
    /// An argument is out of range: an empty name, a length too large, a bad option value.
    RM_ERR_INVALID_ARGUMENT = 2,
    /// A name or path is not valid UTF-8.
    RM_ERR_INVALID_UTF8 = 3,
    /// The handle is 0, or was never issued (a random or corrupted number).
    RM_ERR_INVALID_HANDLE = 4,
    /// The handle's slot has been reused by a newer object: the handle is long dead.
    RM_ERR_STALE_HANDLE = 5,
    /// The handle is valid but names another kind of object than the call takes.
    RM_ERR_WRONG_KIND = 6,
    /// The handle belongs to another manager than the one passed.
    RM_ERR_FOREIGN_HANDLE = 7,
    /// The object is closing or closed: the operation was not started.
    RM_ERR_CLOSED = 8,
    /// Close was called on an object that is already closing or closed.
    RM_ERR_ALREADY_CLOSED = 9,
    /// The key does not exist.
    RM_ERR_NOT_FOUND = 10,
    /// The output buffer is too small; the needed size was written to the length output.
    RM_ERR_BUFFER_TOO_SMALL = 11,
    /// A resource with that name is already registered (or still closing) in this manager.
    RM_ERR_DUPLICATE_NAME = 12,
    /// A dependency is closing or closed.
    RM_ERR_DEPENDENCY_CLOSED = 13,
    /// The dependency would make a cycle.
    RM_ERR_CYCLE = 14,
    /// The resource still has live dependents.
    RM_ERR_HAS_DEPENDENTS = 15,
    /// The resource is owned by resman (a DB, a column family): close it, do not unregister it.
    RM_ERR_OWNED_RESOURCE = 16,
    /// The deadline passed before everything finished; the message names what did not.
    RM_ERR_TIMEOUT = 17,
    /// A close failed (a callback returned an error or panicked, or RocksDB reported an error
    /// while flushing); the resource is released as far as possible and marked failed.
    RM_ERR_CLOSE_FAILED = 18,
    /// Several resources failed or timed out during one cleanup; the message lists them.
    RM_ERR_CLEANUP_FAILED = 19,
    /// The DB directory is locked by another process or another open DB.
    RM_ERR_LOCKED = 20,
    /// RocksDB reported an I/O error (permissions, missing directory, disk full).
    RM_ERR_IO = 21,
    /// RocksDB reported corruption.
    RM_ERR_CORRUPTION = 22,
    /// Any other RocksDB error; the message carries RocksDB's text.
    RM_ERR_ROCKSDB = 23,
    /// A panic inside resman was caught at the boundary (a bug: please report it).
    RM_ERR_PANIC = 24,
    /// A fixed limit was reached (live handles, live managers).
    RM_ERR_CAPACITY = 25,
    /// The handles passed belong to different DBs (a column family of another DB in a batch,
    /// a multi-get or a read at a snapshot of another DB).
    RM_ERR_WRONG_DB = 26,
    /// The iterator is not positioned on an entry (never positioned, or moved past either
    /// end): seek first, and check validity before next, prev, key and value.
    RM_ERR_ITERATOR_NOT_VALID = 27,
}

impl rm_result {
    /// Static, human-readable text for the code.
    pub fn describe(self) -> &'static str {
        self.describe_c().to_str().unwrap_or("")
    }

    /// The same text, NUL-terminated (for `rm_result_str`).
    pub fn describe_c(self) -> &'static std::ffi::CStr {
        use rm_result::*;
        match self {
            RM_OK => c"ok",
            RM_ERR_NULL_POINTER => c"null pointer argument",
            RM_ERR_INVALID_ARGUMENT => c"invalid argument",
            RM_ERR_INVALID_UTF8 => c"string is not valid UTF-8",
            RM_ERR_INVALID_HANDLE => c"invalid handle",
            RM_ERR_STALE_HANDLE => c"stale handle",
            RM_ERR_WRONG_KIND => c"handle of the wrong kind",
            RM_ERR_FOREIGN_HANDLE => c"handle belongs to another manager",
            RM_ERR_CLOSED => c"closed",
            RM_ERR_ALREADY_CLOSED => c"already closed",
            RM_ERR_NOT_FOUND => c"not found",
            RM_ERR_BUFFER_TOO_SMALL => c"buffer too small",
            RM_ERR_DUPLICATE_NAME => c"duplicate name",
            RM_ERR_DEPENDENCY_CLOSED => c"dependency is closed",
            RM_ERR_CYCLE => c"dependency cycle",
            RM_ERR_HAS_DEPENDENTS => c"resource has live dependents",
            RM_ERR_OWNED_RESOURCE => c"resource is owned by resman",
            RM_ERR_TIMEOUT => c"timed out",
            RM_ERR_CLOSE_FAILED => c"close failed",
            RM_ERR_CLEANUP_FAILED => c"cleanup failed",
            RM_ERR_LOCKED => c"database directory is locked",
            RM_ERR_IO => c"I/O error",
            RM_ERR_CORRUPTION => c"corruption",
            RM_ERR_ROCKSDB => c"RocksDB error",
            RM_ERR_PANIC => c"internal panic",
            RM_ERR_CAPACITY => c"capacity exhausted",
            RM_ERR_WRONG_DB => c"handle belongs to another DB",
            RM_ERR_ITERATOR_NOT_VALID => c"iterator is not positioned on an entry",
        }
    }

    /// The code with this number, if there is one.
    pub fn from_i32(n: i32) -> Option<rm_result> {
        usize::try_from(n)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// Every code, in numeric order (for tests and documentation).
    pub const ALL: [rm_result; 28] = {
        use rm_result::*;
        [
            RM_OK,
            RM_ERR_NULL_POINTER,
            RM_ERR_INVALID_ARGUMENT,
            RM_ERR_INVALID_UTF8,
            RM_ERR_INVALID_HANDLE,
            RM_ERR_STALE_HANDLE,
            RM_ERR_WRONG_KIND,
            RM_ERR_FOREIGN_HANDLE,
            RM_ERR_CLOSED,
            RM_ERR_ALREADY_CLOSED,
            RM_ERR_NOT_FOUND,
            RM_ERR_BUFFER_TOO_SMALL,
            RM_ERR_DUPLICATE_NAME,
            RM_ERR_DEPENDENCY_CLOSED,
            RM_ERR_CYCLE,
            RM_ERR_HAS_DEPENDENTS,
            RM_ERR_OWNED_RESOURCE,
            RM_ERR_TIMEOUT,
            RM_ERR_CLOSE_FAILED,
            RM_ERR_CLEANUP_FAILED,
            RM_ERR_LOCKED,
            RM_ERR_IO,
            RM_ERR_CORRUPTION,
            RM_ERR_ROCKSDB,
            RM_ERR_PANIC,
            RM_ERR_CAPACITY,
            RM_ERR_WRONG_DB,
            RM_ERR_ITERATOR_NOT_VALID,
        ]
    };
}

/// One resource that did not close cleanly during a close or cleanup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub name: String,
    pub handle: Handle,
    pub code: rm_result,
    pub message: String,
}

/// Every error resman reports. `code()` gives the stable number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{0} must not be NULL")]
    NullPointer(&'static str),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    #[error("{0}")]
    InvalidHandle(String),
    #[error("{0}")]
    StaleHandle(String),
    #[error("{0}")]
    WrongKind(String),
    #[error("{0}")]
    ForeignHandle(String),
    #[error("{0}")]
    Closed(String),
    #[error("{0}")]
    AlreadyClosed(String),
    #[error("key not found")]
    NotFound,
    #[error("buffer too small: {needed} bytes needed")]
    BufferTooSmall { needed: usize },
    #[error("{0}")]
    DuplicateName(String),
    #[error("{0}")]
    DependencyClosed(String),
    #[error("{0}")]
    Cycle(String),
    #[error("{0}")]
    HasDependents(String),
    #[error("{0}")]
    OwnedResource(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    CloseFailed(String),
    /// Several failures from one close or cleanup (or one failure plus timeouts).
    #[error("{}", Summary(.0))]
    Cleanup(Arc<Vec<Failure>>),
    #[error("{0}")]
    Locked(String),
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Corruption(String),
    #[error("{0}")]
    RocksDb(String),
    #[error("{0}")]
    Panic(String),
    #[error("{0}")]
    Capacity(String),
    #[error("{0}")]
    WrongDb(String),
    #[error("{0}")]
    IteratorNotValid(String),
}

/// The text of a cleanup's failures, written piece by piece: a writer with a fixed size (the
/// C `rm_error`) stops it as soon as it is full, so the cost does not grow with the list.
struct Summary<'a>(&'a [Failure]);

impl std::fmt::Display for Summary<'_> {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let failures = self.0;
        let timeouts = failures
            .iter()
            .filter(|f| f.code == rm_result::RM_ERR_TIMEOUT)
            .count();
        write!(
            out,
            "{} resource(s) did not close cleanly ({} failed, {} timed out): ",
            failures.len(),
            failures.len() - timeouts,
            timeouts
        )?;
        for (i, f) in failures.iter().enumerate() {
            if i > 0 {
                out.write_str("; ")?;
            }
            write!(out, "{} ({}): {}", f.name, f.handle, f.message)?;
        }
        Ok(())
    }
}

impl Error {
    pub fn code(&self) -> rm_result {
        use rm_result::*;
        match self {
            Error::NullPointer(_) => RM_ERR_NULL_POINTER,
            Error::InvalidArgument(_) => RM_ERR_INVALID_ARGUMENT,
            Error::InvalidUtf8(_) => RM_ERR_INVALID_UTF8,
            Error::InvalidHandle(_) => RM_ERR_INVALID_HANDLE,
            Error::StaleHandle(_) => RM_ERR_STALE_HANDLE,
            Error::WrongKind(_) => RM_ERR_WRONG_KIND,
            Error::ForeignHandle(_) => RM_ERR_FOREIGN_HANDLE,
            Error::Closed(_) => RM_ERR_CLOSED,
            Error::AlreadyClosed(_) => RM_ERR_ALREADY_CLOSED,
            Error::NotFound => RM_ERR_NOT_FOUND,
            Error::BufferTooSmall { .. } => RM_ERR_BUFFER_TOO_SMALL,
            Error::DuplicateName(_) => RM_ERR_DUPLICATE_NAME,
            Error::DependencyClosed(_) => RM_ERR_DEPENDENCY_CLOSED,
            Error::Cycle(_) => RM_ERR_CYCLE,
            Error::HasDependents(_) => RM_ERR_HAS_DEPENDENTS,
            Error::OwnedResource(_) => RM_ERR_OWNED_RESOURCE,
            Error::Timeout(_) => RM_ERR_TIMEOUT,
            Error::CloseFailed(_) => RM_ERR_CLOSE_FAILED,
            Error::Cleanup(f) => {
                if f.iter().all(|f| f.code == RM_ERR_TIMEOUT) {
                    RM_ERR_TIMEOUT
                } else {
                    RM_ERR_CLEANUP_FAILED
                }
            }
            Error::Locked(_) => RM_ERR_LOCKED,
            Error::Io(_) => RM_ERR_IO,
            Error::Corruption(_) => RM_ERR_CORRUPTION,
            Error::RocksDb(_) => RM_ERR_ROCKSDB,
            Error::Panic(_) => RM_ERR_PANIC,
            Error::Capacity(_) => RM_ERR_CAPACITY,
            Error::WrongDb(_) => RM_ERR_WRONG_DB,
            Error::IteratorNotValid(_) => RM_ERR_ITERATOR_NOT_VALID,
        }
    }

    /// Builds the error for a list of failures: the failure itself when there is exactly one,
    /// `Cleanup` otherwise (sharing the list, not copying it). None when the list is empty.
    pub fn from_failures(failures: Arc<Vec<Failure>>) -> Option<Error> {
        match failures.len() {
            0 => None,
            1 => {
                let f = &failures[0];
                let msg = format!("{} ({}): {}", f.name, f.handle, f.message);
                Some(match f.code {
                    rm_result::RM_ERR_TIMEOUT => Error::Timeout(msg),
                    _ => Error::CloseFailed(msg),
                })
            }
            _ => Some(Error::Cleanup(failures)),
        }
    }

    /// Prefixes the message with context ("dependency 2: ..."), keeping the code.
    pub fn context(self, what: &str) -> Error {
        let wrap = |m: String| format!("{what}: {m}");
        match self {
            Error::InvalidHandle(m) => Error::InvalidHandle(wrap(m)),
            Error::StaleHandle(m) => Error::StaleHandle(wrap(m)),
            Error::WrongKind(m) => Error::WrongKind(wrap(m)),
            Error::ForeignHandle(m) => Error::ForeignHandle(wrap(m)),
            Error::Closed(m) => Error::Closed(wrap(m)),
            Error::AlreadyClosed(m) => Error::AlreadyClosed(wrap(m)),
            Error::DependencyClosed(m) => Error::DependencyClosed(wrap(m)),
            Error::InvalidArgument(m) => Error::InvalidArgument(wrap(m)),
            Error::WrongDb(m) => Error::WrongDb(wrap(m)),
            other => other,
        }
    }
}

impl From<HandleError> for Error {
    fn from(e: HandleError) -> Error {
        let msg = e.to_string();
        match e {
            HandleError::Invalid(..) => Error::InvalidHandle(msg),
            // Whether it is a valid handle of another table (a manager handle where a
            // resource goes) is for the layer that knows the tables: see manager::lookup_error.
            HandleError::OtherTag(h, _) => {
                Error::InvalidHandle(format!("invalid handle {h}: not issued by this registry"))
            }
            HandleError::WrongKind { .. } => Error::WrongKind(msg),
            HandleError::Stale(..) => Error::StaleHandle(msg),
            HandleError::Removed(..) => Error::Closed(msg),
            HandleError::Full(..) => Error::Capacity(msg),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
