//! The panic boundary every export runs its body in, and `rm_error`, where it reports.
//!
//! A panic is caught and becomes `RM_ERR_PANIC` (since Rust 1.81 a panic leaving an
//! `extern "C"` function aborts the process, which for a Go service is the whole service),
//! every error becomes its stable code, and the detail text is written into the caller's
//! `rm_error` in the same call: no thread-local "last error", which a goroutine could not read
//! back reliably.

use crate::error::{rm_result, Error, Result};
use crate::manager::panic_message;
use std::ffi::c_char;
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
    /// NUL-terminated UTF-8 detail ("" on success). A message longer than the array is cut
    /// after a whole word and ends with " …" (U+2026); the full per-resource detail of a
    /// cleanup is in `rm_cleanup_failures`.
    pub message: [c_char; RM_ERROR_MESSAGE_MAX],
}

/// Writes `code` and `message` into `err` (if not NULL).
///
/// # Safety
/// `err` is NULL or points to a writable `rm_error` that nothing else refers to during the
/// call.
unsafe fn write_error(err: *mut rm_error, code: rm_result, message: &dyn std::fmt::Display) {
    if err.is_null() {
        return;
    }
    // SAFETY: `err` is not NULL (checked above), so by this function's contract it points to a
    // writable `rm_error` nothing else refers to: a unique borrow for this call is sound.
    let e = unsafe { &mut *err };
    e.code = code;
    let mut w = MessageWriter {
        buf: &mut e.message,
        len: 0,
        full: false,
    };
    // Formatting into the fixed array allocates nothing: a NOT_FOUND or BUFFER_TOO_SMALL on
    // the data path stays allocation-free. The writer fails once the array is full, which
    // stops the formatting: a cleanup's message costs the same for 10 or 100,000 resources.
    let _ = std::fmt::write(&mut w, format_args!("{message}"));
    let end = w.len;
    w.buf[end] = 0;
}

/// Sets `*err` (if not NULL) to success: the code and an empty message, without formatting
/// (every successful call on the data path passes here).
///
/// # Safety
/// As for [`write_error`].
unsafe fn write_ok(err: *mut rm_error) {
    if err.is_null() {
        return;
    }
    // SAFETY: `err` is not NULL (checked above), so by this function's contract it points to a
    // writable `rm_error` nothing else refers to.
    let e = unsafe { &mut *err };
    e.code = rm_result::RM_OK;
    e.message[0] = 0;
}

/// What ends a message that did not fit.
const CUT_MARK: &str = " \u{2026}";

/// Fills `rm_error.message`, keeping room for the NUL. A message that does not fit is cut
/// after its last whole word (within the last quarter of the array; at a character boundary
/// otherwise) and ends with [`CUT_MARK`], so a reader sees that something is missing.
struct MessageWriter<'a> {
    buf: &'a mut [c_char; RM_ERROR_MESSAGE_MAX],
    len: usize,
    full: bool,
}

impl MessageWriter<'_> {
    fn append(&mut self, s: &[u8]) {
        for (d, b) in self.buf[self.len..self.len + s.len()].iter_mut().zip(s) {
            *d = *b as c_char;
        }
        self.len += s.len();
    }
}

impl std::fmt::Write for MessageWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.full {
            return Err(std::fmt::Error);
        }
        let room = RM_ERROR_MESSAGE_MAX - 1 - self.len;
        if s.len() <= room {
            self.append(s.as_bytes());
            return Ok(());
        }
        self.full = true;
        // The text kept is at most this long, so the mark and the NUL always fit.
        let limit = RM_ERROR_MESSAGE_MAX - 1 - CUT_MARK.len();
        if self.len < limit {
            let mut cut = (limit - self.len).min(s.len());
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            self.append(&s.as_bytes()[..cut]);
        } else {
            // What is there already leaves no room for the mark: drop its end, back to the
            // start of a character (UTF-8 continuation bytes are 0b10xx_xxxx).
            self.len = limit;
            while self.len > 0 && (self.buf[self.len] as u8) & 0xC0 == 0x80 {
                self.len -= 1;
            }
        }
        // Back to the end of the last whole word, if there is one near the end.
        let floor = (limit * 3) / 4;
        if self.len > floor {
            if let Some(space) = self.buf[floor..self.len]
                .iter()
                .rposition(|b| *b as u8 == b' ')
            {
                self.len = floor + space;
            }
        }
        while self.len > 0 && matches!(self.buf[self.len - 1] as u8, b';' | b',' | b':' | b' ') {
            self.len -= 1;
        }
        self.append(CUT_MARK.as_bytes());
        Err(std::fmt::Error)
    }
}

/// Runs an exported function's body: catches panics, maps errors to codes, fills `err`.
///
/// `err` is NULL or points to a writable `rm_error`: it is always an export's own `err`, which
/// that export's `# Safety` makes so (the two exports without one pass NULL). `boundary` is
/// not an `unsafe fn` only so that the exports' bodies, the closures it runs, stay outside
/// `unsafe` blocks, where each unsafe operation needs its own block and `// SAFETY:` comment.
pub(super) fn boundary(err: *mut rm_error, body: impl FnOnce() -> Result<()>) -> rm_result {
    let result = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| {
        Err(Error::Panic(format!(
            "panic inside resman (a bug; the call did nothing further): {}",
            panic_message(&*panic)
        )))
    });
    match result {
        Ok(()) => {
            // SAFETY: `err` is NULL or a writable `rm_error` no one else refers to during the
            // call, as this function's documentation explains: write_ok's contract.
            unsafe { write_ok(err) };
            rm_result::RM_OK
        }
        Err(e) => {
            let code = e.code();
            // SAFETY: as for write_ok above.
            unsafe { write_error(err, code, &e) };
            code
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

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
        let body = m
            .strip_suffix(CUT_MARK)
            .expect("a cut message ends with the mark");
        assert!(body.chars().all(|c| c == 'é'), "{m}");
    }

    /// Every length around the array's size, in every shape (one piece or two, ASCII or
    /// multi-byte, with or without spaces): never past the array, always valid UTF-8, and a
    /// cut message always ends with the mark.
    #[test]
    fn messages_of_every_length_fit_the_array() {
        struct Pieces<'a>(&'a str, &'a str);
        impl std::fmt::Display for Pieces<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)?;
                f.write_str(self.1)
            }
        }
        for unit in ["a", "é", "ab ", "x; ", "€"] {
            for n in 0..=RM_ERROR_MESSAGE_MAX {
                let text = unit.repeat(n / unit.len() + 1);
                let mut end = n.min(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                let whole = &text[..end];
                for split in [0, whole.len() / 2, whole.len()] {
                    let mut at = split;
                    while !whole.is_char_boundary(at) {
                        at -= 1;
                    }
                    let mut err = new_error();
                    // SAFETY: `&mut err` is a writable rm_error nothing else refers to.
                    unsafe {
                        write_error(
                            &mut err,
                            rm_result::RM_ERR_INVALID_ARGUMENT,
                            &Pieces(&whole[..at], &whole[at..]),
                        )
                    };
                    let m = message(&err);
                    assert!(m.len() < RM_ERROR_MESSAGE_MAX, "{unit:?} x {n}");
                    let bytes: Vec<u8> = err.message.iter().map(|c| *c as u8).collect();
                    let nul = bytes.iter().position(|b| *b == 0).unwrap();
                    assert!(std::str::from_utf8(&bytes[..nul]).is_ok(), "{unit:?} x {n}");
                    if whole.len() < RM_ERROR_MESSAGE_MAX {
                        assert_eq!(m, whole, "a message that fits is whole");
                    } else {
                        assert!(m.ends_with(CUT_MARK), "{unit:?} x {n}: {m}");
                    }
                }
            }
        }
    }

    #[test]
    fn long_messages_are_cut_after_a_whole_word_and_marked() {
        let mut err = new_error();
        let failures: std::sync::Arc<Vec<crate::error::Failure>> = (0..40)
            .map(|i| crate::error::Failure {
                name: format!("callback-{i}"),
                handle: crate::handle::Handle::from_raw(0x1000 + i),
                code: rm_result::RM_ERR_CLOSE_FAILED,
                message: "failed 4 times: [attempt 1] close callback returned 7".into(),
            })
            .collect::<Vec<_>>()
            .into();
        boundary(&mut err, || Err(Error::Cleanup(failures.clone())));
        let m = message(&err);
        assert!(m.len() < RM_ERROR_MESSAGE_MAX);
        assert!(m.starts_with("40 resource(s) did not close cleanly"), "{m}");
        let body = m
            .strip_suffix(CUT_MARK)
            .expect("a cut message ends with the mark");
        let last = body.rsplit(' ').next().unwrap();
        // Every word of the full text (the words it is cut between are whole).
        let full = Error::Cleanup(failures).to_string();
        assert!(
            full.split([' ', ';', ',', ':'])
                .any(|w| w == last.trim_end_matches([';', ',', ':'])),
            "the message ends inside a word: {m}"
        );
        assert!(full.starts_with(body), "{m}");
    }
}
