//! The argument checks of the exports, made before anything else runs, and the writes through
//! their output pointers.
//!
//! Pointers are checked for NULL (NULL is allowed with a length of 0), lengths against
//! `isize::MAX`, strings for UTF-8, arrays for alignment, counts against their `RM_MAX_*`,
//! buffers for overlap. Output pointers are checked with [`out_ptr`] before the work starts and
//! written with [`put_out`] after it; optional ones (NULL: not wanted) with [`put_optional`].
//! The JSON documents use one two-call protocol, [`write_json`].
//!
//! Each `unsafe fn` here turns a caller's pointer into a slice or a write; what makes that sound
//! is the export's own `# Safety` contract, which its caller accepted and which the export
//! passes on, argument for argument, in its `// SAFETY:` comment.

use crate::error::{Error, Result};
use crate::manager::CloseMode;
use crate::rocks::SnapshotHandle;
use std::ffi::{c_char, CStr};

/// A NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for the call.
pub(super) unsafe fn c_str<'a>(p: *const c_char, what: &'static str) -> Result<&'a str> {
    if p.is_null() {
        return Err(Error::NullPointer(what));
    }
    // SAFETY: `p` is not NULL (checked above), so by this function's contract it points to a
    // NUL-terminated string that stays valid for the call, which `'a` does not outlive.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map_err(|_| Error::InvalidUtf8(what))
}

/// A byte-slice argument: `len` bytes at `p`; `p` may be NULL only when `len` is 0.
///
/// # Safety
/// When `len > 0`, `p` points to `len` readable bytes valid for the call.
pub(super) unsafe fn bytes<'a>(p: *const u8, len: usize, what: &'static str) -> Result<&'a [u8]> {
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
    // SAFETY: `p` is not NULL and `len` is not 0 (checked above), so by this function's
    // contract `p` points to `len` readable bytes valid for the call; `len <= isize::MAX`
    // (checked above), as `from_raw_parts` requires; u8 needs no alignment.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// An optional byte-slice argument (an iterator bound): NULL with length 0 is none, NULL with
/// a length is an error, anything else is [`bytes`] (a non-NULL pointer with length 0 is the
/// empty key).
///
/// # Safety
/// `p` is NULL or points to `len` readable bytes valid for the call.
pub(super) unsafe fn optional_bytes<'a>(
    p: *const u8,
    len: usize,
    what: &'static str,
) -> Result<Option<&'a [u8]>> {
    if p.is_null() {
        if len != 0 {
            return Err(Error::NullPointer(what));
        }
        return Ok(None);
    }
    // SAFETY: `p` is not NULL, so by this function's contract it points to `len` readable bytes
    // valid for the call: the contract of `bytes`.
    unsafe { bytes(p, len, what) }.map(Some)
}

/// An output buffer: `cap` writable bytes at `p`; `p` may be NULL only when `cap` is 0.
///
/// # Safety
/// When `cap > 0`, `p` points to `cap` writable bytes valid for the call, not aliased by any
/// other argument.
pub(super) unsafe fn buffer<'a>(
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
    // SAFETY: `p` is not NULL and `cap` is not 0 (checked above), so by this function's
    // contract `p` points to `cap` writable bytes valid for the call that no other argument
    // aliases (the exports check the overlaps they can see with `overlaps`), which makes the
    // unique borrow sound; `cap <= isize::MAX` (checked above); u8 needs no alignment.
    Ok(unsafe { std::slice::from_raw_parts_mut(p, cap) })
}

/// An input array: `n` values of `T` at `p` (NULL allowed when n is 0), refused when NULL
/// with `n > 0` or not aligned for `T`.
///
/// # Safety
/// When `n > 0`, `p` points to `n` readable `T` valid for the call, every bit pattern of which
/// is a valid `T` (integers, raw pointers, `#[repr(C)]` structs of those); `n` is bounded by
/// the caller (an RM_MAX_*), so `n * size_of::<T>()` is far below isize::MAX.
pub(super) unsafe fn array<'a, T>(p: *const T, n: usize, what: &'static str) -> Result<&'a [T]> {
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::NullPointer(what));
    }
    if !p.is_aligned() {
        return Err(Error::InvalidArgument(format!(
            "{what} is not {}-byte aligned",
            std::mem::align_of::<T>()
        )));
    }
    // SAFETY: `p` is not NULL and aligned (checked above), and by this function's contract
    // points to `n` readable, valid `T` for the call, with `n * size_of::<T>()` far below
    // isize::MAX.
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

/// `n` u64 values at `p` (NULL allowed when n is 0): [`array`] of `uint64_t`.
///
/// # Safety
/// As for [`array`].
pub(super) unsafe fn u64s<'a>(p: *const u64, n: usize, what: &'static str) -> Result<&'a [u64]> {
    // SAFETY: this function's contract is array's.
    unsafe { array(p, n, what) }
}

/// A snapshot argument: 0 reads the latest data (no snapshot).
pub(super) fn snapshot_arg(raw: u64) -> Option<SnapshotHandle> {
    (raw != 0).then_some(SnapshotHandle::from_raw(raw))
}

/// Refuses more than `max` of something ("{n} {what}; the limit is {max}").
pub(super) fn at_most(n: usize, max: usize, what: &str) -> Result<()> {
    if n > max {
        return Err(Error::InvalidArgument(format!(
            "{n} {what}; the limit is {max}"
        )));
    }
    Ok(())
}

/// Whether two caller buffers share a byte (never when either is empty or NULL).
pub(super) fn overlaps(a: *const u8, a_len: usize, b: *mut u8, b_len: usize) -> bool {
    if a_len == 0 || b_len == 0 || a.is_null() || b.is_null() {
        return false;
    }
    let (a, b) = (a as usize, b as usize);
    a < b.saturating_add(b_len) && b < a.saturating_add(a_len)
}

/// Checks that an output pointer is not NULL.
pub(super) fn out_ptr<T>(p: *mut T, what: &'static str) -> Result<*mut T> {
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
pub(super) unsafe fn put_out<T>(p: *mut T, value: T) {
    // SAFETY: by this function's contract `p` is non-NULL and points to a writable `T`, which
    // is what `write` needs; `write` does not drop the old value, which for the plain C types
    // written here (integers, bools, `#[repr(C)]` structs of them) has nothing to drop.
    unsafe { p.write(value) }
}

/// Writes through an optional output pointer: nothing when it is NULL (not wanted).
///
/// # Safety
/// `p` is NULL or points to a writable `T`.
pub(super) unsafe fn put_optional<T>(p: *mut T, value: T) {
    if !p.is_null() {
        // SAFETY: `p` is not NULL, so by this function's contract it points to a writable `T`:
        // the contract of `put_out`.
        unsafe { put_out(p, value) };
    }
}

/// Writes the length of a buffer-filling result (found, or needed) to `out`; nothing for
/// any other error.
///
/// # Safety
/// `out` is non-NULL and writable.
pub(super) unsafe fn write_len(out: *mut usize, result: &Result<usize>) {
    let n = match result {
        Ok(n) => Some(*n),
        Err(Error::BufferTooSmall { needed }) => Some(*needed),
        Err(_) => None,
    };
    if let Some(n) = n {
        // SAFETY: by this function's contract `out` is non-NULL and writable: the contract of
        // `put_out`.
        unsafe { put_out(out, n) };
    }
}

/// The two-call buffer protocol of the JSON documents: checks the pointers, builds the
/// document, writes its length to `*out_len` and, if it fits with its NUL, the text into `buf`.
///
/// # Safety
/// `buf` is NULL or points to `buf_cap` writable bytes; `out_len` is NULL or writable.
pub(super) unsafe fn write_json(
    buf: *mut c_char,
    buf_cap: usize,
    out_len: *mut usize,
    document: impl FnOnce() -> Result<String>,
) -> Result<()> {
    let out_len = out_ptr(out_len, "out_len")?;
    // SAFETY: by this function's contract `buf` is NULL or points to `buf_cap` writable bytes
    // (c_char and u8 have the same size and alignment); `buffer` refuses NULL with a capacity.
    // The only other pointer, `out_len`, is a `size_t` the caller does not pass as `buf`.
    let buf = unsafe { buffer(buf.cast::<u8>(), buf_cap, "buf") }?;
    let json = document()?;
    // SAFETY: `out_len` is not NULL (out_ptr above) and writable by this function's contract.
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

/// The mode a `force` argument asks for.
pub(super) fn close_mode(force: bool) -> CloseMode {
    if force {
        CloseMode::Forced
    } else {
        CloseMode::Graceful
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_helpers_reject_bad_input() {
        // SAFETY: every call below either passes what the helper's contract allows (NULL with a
        // length or capacity of 0, a valid NUL-terminated string) or breaks the contract only
        // in a way the helper checks before it dereferences anything (NULL with a length, a
        // length over isize::MAX): exactly what is being tested. Nothing is dereferenced.
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
            assert_eq!(optional_bytes(std::ptr::null(), 0, "lower"), Ok(None));
            assert_eq!(
                optional_bytes(std::ptr::null(), 2, "lower"),
                Err(Error::NullPointer("lower"))
            );
            assert_eq!(u64s(std::ptr::null(), 0, "deps").unwrap(), &[] as &[u64]);
            assert_eq!(
                u64s(std::ptr::null(), 1, "deps"),
                Err(Error::NullPointer("deps"))
            );
        }
        assert!(out_ptr(std::ptr::null_mut::<u64>(), "out").is_err());
        assert!(at_most(3, 3, "keys").is_ok());
        assert_eq!(
            at_most(4, 3, "keys"),
            Err(Error::InvalidArgument("4 keys; the limit is 3".into()))
        );
    }

    #[test]
    fn overlap_is_any_shared_byte() {
        let mut b = [0u8; 8];
        let p = b.as_mut_ptr();
        // Pointer arithmetic only, inside one array: nothing is dereferenced.
        let at = |i: usize| p.wrapping_add(i);
        assert!(overlaps(at(0), 4, at(3), 2));
        assert!(!overlaps(at(0), 4, at(4), 4));
        assert!(
            !overlaps(at(0), 0, at(0), 8),
            "an empty buffer overlaps nothing"
        );
        assert!(!overlaps(std::ptr::null(), 8, at(0), 8));
    }
}
