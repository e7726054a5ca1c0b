//! The C ABI: the only `extern "C"` code of the crate.
//!
//! Every exported function runs its body through [`boundary`]: a panic is caught and becomes
//! `RM_ERR_PANIC` (since Rust 1.81 a panic leaving an `extern "C"` function aborts the
//! process, which for a Go service is the whole service), every error becomes its stable code,
//! and the detail text is written into the caller's `rm_error` in the same call: no
//! thread-local "last error", which a goroutine could not read back reliably.
//!
//! Pointer arguments are checked for NULL, lengths against `isize::MAX`, strings for UTF-8,
//! before anything else happens.

mod api;
mod foreign;
mod rocks_api;

pub use api::*;
pub use rocks_api::*;

use crate::error::{rm_result, Error, Result};
use crate::manager::panic_message;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Size of `rm_error.message`, including the terminating NUL.
pub const RM_ERROR_MESSAGE_MAX: usize = 512;

/// Error detail, written by every `rm_*` function that takes one. Caller-owned (usually on the
/// stack); pass NULL when the code alone is enough.
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct rm_error {
    /// The same code the function returned.
    pub code: rm_result,
    /// NUL-terminated UTF-8 detail ("" on success). Long messages are cut at a character
    /// boundary.
    pub message: [c_char; RM_ERROR_MESSAGE_MAX],
}

/// Writes `code` and `message` into `err` (if not NULL).
fn write_error(err: *mut rm_error, code: rm_result, message: &dyn std::fmt::Display) {
    if err.is_null() {
        return;
    }
    // SAFETY: `err` is non-NULL and, per every function's contract, points to a writable
    // rm_error; nothing else refers to it during the call.
    let e = unsafe { &mut *err };
    e.code = code;
    let mut w = MessageWriter {
        buf: &mut e.message,
        len: 0,
        full: false,
    };
    // Formatting into the fixed array allocates nothing: a NOT_FOUND or BUFFER_TOO_SMALL on
    // the data path stays allocation-free. The writer never fails.
    let _ = std::fmt::write(&mut w, format_args!("{message}"));
    let end = w.len;
    w.buf[end] = 0;
}

/// Sets `*err` (if not NULL) to success: the code and an empty message, without formatting
/// (every successful call on the data path passes here).
fn write_ok(err: *mut rm_error) {
    if err.is_null() {
        return;
    }
    // SAFETY: as in `write_error`.
    let e = unsafe { &mut *err };
    e.code = rm_result::RM_OK;
    e.message[0] = 0;
}

/// Fills `rm_error.message`, keeping room for the NUL and cutting at a character boundary.
struct MessageWriter<'a> {
    buf: &'a mut [c_char; RM_ERROR_MESSAGE_MAX],
    len: usize,
    full: bool,
}

impl std::fmt::Write for MessageWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.full {
            return Ok(());
        }
        let room = RM_ERROR_MESSAGE_MAX - 1 - self.len;
        let mut cut = s.len().min(room);
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        for (d, b) in self.buf[self.len..self.len + cut]
            .iter_mut()
            .zip(s.as_bytes())
        {
            *d = *b as c_char;
        }
        self.len += cut;
        if cut < s.len() {
            self.full = true;
        }
        Ok(())
    }
}

/// Runs an exported function's body: catches panics, maps errors to codes, fills `err`.
pub(crate) fn boundary(err: *mut rm_error, body: impl FnOnce() -> Result<()>) -> rm_result {
    let result = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| {
        Err(Error::Panic(format!(
            "panic inside resman (a bug; the call did nothing further): {}",
            panic_message(&*panic)
        )))
    });
    match result {
        Ok(()) => {
            write_ok(err);
            rm_result::RM_OK
        }
        Err(e) => {
            let code = e.code();
            write_error(err, code, &e);
            code
        }
    }
}

/// A NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for the call.
pub(crate) unsafe fn c_str<'a>(p: *const c_char, what: &'static str) -> Result<&'a str> {
    if p.is_null() {
        return Err(Error::NullPointer(what));
    }
    // SAFETY: non-NULL and NUL-terminated per this function's contract.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map_err(|_| Error::InvalidUtf8(what))
}

/// A byte-slice argument: `len` bytes at `p`; `p` may be NULL only when `len` is 0.
///
/// # Safety
/// When `len > 0`, `p` points to `len` readable bytes valid for the call.
pub(crate) unsafe fn bytes<'a>(p: *const u8, len: usize, what: &'static str) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::NullPointer(what));
    }
    if len > isize::MAX as usize {
        return Err(Error::InvalidArgument(format!(
            "{what}: length {len} is too large"
        )));
    }
    // SAFETY: non-NULL, `len` readable bytes per this function's contract, len <= isize::MAX.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// An output buffer: `cap` writable bytes at `p`; `p` may be NULL only when `cap` is 0.
///
/// # Safety
/// When `cap > 0`, `p` points to `cap` writable bytes valid for the call, not aliased by any
/// other argument.
pub(crate) unsafe fn buffer<'a>(
    p: *mut u8,
    cap: usize,
    what: &'static str,
) -> Result<&'a mut [u8]> {
    if cap == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(Error::NullPointer(what));
    }
    if cap > isize::MAX as usize {
        return Err(Error::InvalidArgument(format!(
            "{what}: capacity {cap} is too large"
        )));
    }
    // SAFETY: non-NULL, `cap` writable unaliased bytes per this function's contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(p, cap) })
}

/// Checks that an output pointer is not NULL.
pub(crate) fn out_ptr<T>(p: *mut T, what: &'static str) -> Result<*mut T> {
    if p.is_null() {
        Err(Error::NullPointer(what))
    } else {
        Ok(p)
    }
}

/// Writes through an output pointer checked by [`out_ptr`].
///
/// # Safety
/// `p` is non-NULL and points to a writable `T`.
pub(crate) unsafe fn put_out<T>(p: *mut T, value: T) {
    // SAFETY: per this function's contract.
    unsafe { p.write(value) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_error() -> rm_error {
        rm_error {
            code: rm_result::RM_OK,
            message: [0; RM_ERROR_MESSAGE_MAX],
        }
    }

    fn message(e: &rm_error) -> String {
        // SAFETY: write_error always NUL-terminates inside the array.
        unsafe { CStr::from_ptr(e.message.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_becomes_an_error_code() {
        let mut err = new_error();
        let code = boundary(&mut err, || panic!("boom {}", 42));
        assert_eq!(code, rm_result::RM_ERR_PANIC);
        assert_eq!(err.code, rm_result::RM_ERR_PANIC);
        assert!(message(&err).contains("boom 42"), "{}", message(&err));
    }

    #[test]
    fn errors_fill_the_callers_struct_and_success_clears_it() {
        let mut err = new_error();
        let code = boundary(&mut err, || Err(Error::NotFound));
        assert_eq!(code, rm_result::RM_ERR_NOT_FOUND);
        assert_eq!(message(&err), "key not found");
        assert_eq!(boundary(&mut err, || Ok(())), rm_result::RM_OK);
        assert_eq!(message(&err), "");
        // NULL err is allowed.
        assert_eq!(
            boundary(std::ptr::null_mut(), || Err(Error::NotFound)),
            rm_result::RM_ERR_NOT_FOUND
        );
    }

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let mut err = new_error();
        let long = "é".repeat(RM_ERROR_MESSAGE_MAX);
        boundary(&mut err, || Err(Error::InvalidArgument(long.clone())));
        let m = message(&err);
        assert!(m.len() < RM_ERROR_MESSAGE_MAX);
        assert!(m.chars().all(|c| c == 'é'));
    }

    #[test]
    fn argument_helpers_reject_bad_input() {
        // SAFETY (all below): NULL pointers and zero lengths are exactly what is being tested;
        // the helpers must not dereference them.
        unsafe {
            assert_eq!(
                c_str(std::ptr::null(), "name"),
                Err(Error::NullPointer("name"))
            );
            let bad = b"\xff\xfe\0";
            assert_eq!(
                c_str(bad.as_ptr().cast(), "name"),
                Err(Error::InvalidUtf8("name"))
            );
            assert_eq!(bytes(std::ptr::null(), 0, "key").unwrap(), &[] as &[u8]);
            assert_eq!(
                bytes(std::ptr::null(), 3, "key"),
                Err(Error::NullPointer("key"))
            );
            let one = [1u8];
            assert!(matches!(
                bytes(one.as_ptr(), usize::MAX, "key"),
                Err(Error::InvalidArgument(_))
            ));
            assert!(buffer(std::ptr::null_mut(), 0, "buf").unwrap().is_empty());
            assert!(buffer(std::ptr::null_mut(), 8, "buf").is_err());
        }
        assert!(out_ptr(std::ptr::null_mut::<u64>(), "out").is_err());
    }
}
