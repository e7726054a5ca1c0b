//! Typed handles for the Rust API: one newtype per kind, so that passing a column family where
//! a batch is expected is a compile error in Rust rather than `RM_ERR_WRONG_KIND` at run time.
//!
//! Each type is a `u64` underneath (`#[repr(transparent)]`), exactly the number C callers
//! hold. [`from_raw`](ResourceHandle::from_raw) wraps a number that came from elsewhere (the C
//! ABI, a log line) without checking it: every operation still checks the number (tag, kind,
//! slot, generation) against the table, so a wrong number is an error, never a crash.
//!
//! [`ResourceHandle`] names any resource of a manager, whatever its kind; every typed handle of
//! a resource converts into it, which is what the manager's operations (close, unregister,
//! dependencies) take. The kind-specific types of RocksDB objects are declared in
//! `crate::rocks` with [`typed_handle!`](crate::typed_handle); the core names no RocksDB kind.

/// Declares a typed handle of a resource: `typed_handle!(/// docs
/// Name)`. The type is `Copy`, ordered, hashable, printed in hex like
/// [`Handle`](super::Handle), and converts into [`ResourceHandle`] (`From`).
#[macro_export]
#[doc(hidden)]
macro_rules! typed_handle {
    ($(#[$meta:meta])* $name:ident) => {
        $crate::typed_handle!(@newtype $(#[$meta])* $name);

        impl From<$name> for $crate::handle::ResourceHandle {
            fn from(h: $name) -> Self {
                $crate::handle::ResourceHandle::from_raw(h.raw())
            }
        }
    };
    (@newtype $(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(transparent)]
        pub struct $name(u64);

        impl $name {
            /// Wraps a raw handle (one held by C code, say) without checking it: every
            /// operation checks it, and a number that names no such object is an error.
            pub const fn from_raw(raw: u64) -> Self {
                $name(raw)
            }

            /// The number C callers hold.
            pub const fn raw(self) -> u64 {
                self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(&$crate::handle::Handle::from_raw(self.0), f)
            }
        }
    };
}

crate::typed_handle!(@newtype
    /// A resource of a manager, of any kind: what [`Manager::register`](crate::Manager::register)
    /// returns and what the manager's close, unregister and dependency calls take (every typed
    /// handle of a resource converts into it).
    ResourceHandle
);

crate::typed_handle!(@newtype
    /// A manager (not a resource: managers live in a table of their own).
    ManagerHandle
);
