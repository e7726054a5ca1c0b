//! What the library says about itself: its version, the text of a result code, the number of
//! live handles in the process.

use crate::error::rm_result;
use crate::manager;
use std::ffi::{c_char, CStr};

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
