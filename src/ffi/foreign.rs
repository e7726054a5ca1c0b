//! Resources registered from outside through a close callback.

use crate::manager::{CloseMode, Resource};
use std::any::Any;
use std::ffi::{c_char, c_void, CStr};

/// Room given to a close callback for its error message.
const MESSAGE_CAP: usize = 512;

pub(crate) type CloseFn = unsafe extern "C" fn(*mut c_void, *mut c_char, usize) -> i32;

pub(crate) struct ForeignResource {
    pub(crate) close: CloseFn,
    pub(crate) context: *mut c_void,
}

// SAFETY: resman never dereferences `context`; it only hands it back to `close`, which the
// caller promised (rm_register's contract) may be called from any thread, up to
// 1 + max_retries times, never twice at once.
unsafe impl Send for ForeignResource {}
// SAFETY: no `&self` method touches the context except `close`, which the manager never
// calls twice at once; sharing the pointer value between threads is harmless.
unsafe impl Sync for ForeignResource {}

impl Resource for ForeignResource {
    fn close(&self, _mode: CloseMode) -> Result<(), String> {
        let mut message = [0 as c_char; MESSAGE_CAP];
        // SAFETY: `close` and `context` come from rm_register, whose contract makes the call
        // valid until it succeeds or has failed 1 + max_retries times (the manager stops
        // there); the buffer is writable for MESSAGE_CAP bytes.
        let rc = unsafe { (self.close)(self.context, message.as_mut_ptr(), MESSAGE_CAP) };
        if rc == 0 {
            return Ok(());
        }
        // The callback may not have terminated the text: force a NUL at the end.
        message[MESSAGE_CAP - 1] = 0;
        // SAFETY: the array is NUL-terminated (last byte at the latest).
        let text = unsafe { CStr::from_ptr(message.as_ptr()) }.to_string_lossy();
        if text.is_empty() {
            Err(format!("close callback returned {rc}"))
        } else {
            Err(format!("close callback returned {rc}: {text}"))
        }
    }

    fn can_unregister(&self) -> bool {
        true
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
