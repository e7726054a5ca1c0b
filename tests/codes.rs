//! The result codes agree everywhere they are written (issue 16): `rm_result` in src/error.rs
//! (its enum and `codes!` table are tied together by the compiler), include/resman.h (which
//! cbindgen generates from the enum), `rm_result_str`, and the Go binding's constants and
//! sentinels in bindings/go/errors.go (parsed as text). FROZEN below makes a renumbering, a
//! removal or a reuse fail loudly. (bindings/cpp/resman.hpp has no list of its own: it uses
//! the header's `rm_result` and `rm_result_str`.)

use resman::rm_result;
use std::collections::BTreeMap;
use std::ffi::{c_char, CStr};

/// Every code ever published, by number. A new code is appended; a line is never edited or
/// removed (a client compiled against an older header must keep meaning the same thing).
const FROZEN: &[(i32, &str)] = &[
    (0, "RM_OK"),
    (1, "RM_ERR_NULL_POINTER"),
    (2, "RM_ERR_INVALID_ARGUMENT"),
    (3, "RM_ERR_INVALID_UTF8"),
    (4, "RM_ERR_INVALID_HANDLE"),
    (5, "RM_ERR_STALE_HANDLE"),
    (6, "RM_ERR_WRONG_KIND"),
    (7, "RM_ERR_FOREIGN_HANDLE"),
    (8, "RM_ERR_CLOSED"),
    (9, "RM_ERR_ALREADY_CLOSED"),
    (10, "RM_ERR_NOT_FOUND"),
    (11, "RM_ERR_BUFFER_TOO_SMALL"),
    (12, "RM_ERR_DUPLICATE_NAME"),
    (13, "RM_ERR_DEPENDENCY_CLOSED"),
    (14, "RM_ERR_CYCLE"),
    (15, "RM_ERR_HAS_DEPENDENTS"),
    (16, "RM_ERR_OWNED_RESOURCE"),
    (17, "RM_ERR_TIMEOUT"),
    (18, "RM_ERR_CLOSE_FAILED"),
    (19, "RM_ERR_CLEANUP_FAILED"),
    (20, "RM_ERR_LOCKED"),
    (21, "RM_ERR_IO"),
    (22, "RM_ERR_CORRUPTION"),
    (23, "RM_ERR_ROCKSDB"),
    (24, "RM_ERR_PANIC"),
    (25, "RM_ERR_CAPACITY"),
    (26, "RM_ERR_WRONG_DB"),
    (27, "RM_ERR_ITERATOR_NOT_VALID"),
];

// The C symbol itself, not a Rust path to it (the ffi module's layout may change).
extern "C" {
    fn rm_result_str(code: i32) -> *const c_char;
}

fn read(path: &str) -> String {
    let full = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// The codes as Rust sees them: (number, name).
fn rust_codes() -> Vec<(i32, String)> {
    rm_result::ALL
        .iter()
        .map(|c| (*c as i32, format!("{c:?}")))
        .collect()
}

fn c_text(code: i32) -> String {
    // SAFETY: rm_result_str returns a static NUL-terminated string for any number.
    let p = unsafe { rm_result_str(code) };
    assert!(!p.is_null(), "rm_result_str({code}) returned NULL");
    // SAFETY: as above.
    unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned()
}

#[test]
fn codes_are_the_frozen_list_numbered_from_0_without_gaps() {
    for (i, (n, name)) in FROZEN.iter().enumerate() {
        assert_eq!(
            *n as usize, i,
            "FROZEN: {name} must be number {i} (no gaps)"
        );
    }
    let rust = rust_codes();
    for (i, (n, name)) in rust.iter().enumerate() {
        assert_eq!(*n as usize, i, "rm_result::ALL[{i}] is {name} = {n}");
        match FROZEN.get(i) {
            Some((_, frozen)) => assert_eq!(
                name, frozen,
                "code {i} was {frozen} and is now {name}: codes are never renumbered, renamed \
                 or reused (append a new one instead)"
            ),
            None => panic!(
                "new code {name} = {n}: append it to FROZEN in tests/codes.rs (and to the Go \
                 binding)"
            ),
        }
    }
    let removed: Vec<_> = FROZEN[rust.len().min(FROZEN.len())..].to_vec();
    assert!(
        removed.is_empty(),
        "codes removed from rm_result: {removed:?}"
    );
}

#[test]
fn from_i32_and_rm_result_str_agree_with_describe() {
    let mut texts = BTreeMap::new();
    for code in rm_result::ALL {
        let n = code as i32;
        assert_eq!(rm_result::from_i32(n), Some(code));
        let text = code.describe();
        assert!(!text.is_empty(), "{code:?} has no text");
        assert_eq!(code.describe_c().to_str().unwrap(), text);
        assert_eq!(
            c_text(n),
            text,
            "rm_result_str({n}) differs from {code:?}.describe()"
        );
        if let Some(other) = texts.insert(text, code) {
            panic!("{other:?} and {code:?} share the text {text:?}");
        }
    }
    let n = rm_result::ALL.len() as i32;
    for bad in [-1, n, n + 1, i32::MIN, i32::MAX] {
        assert_eq!(rm_result::from_i32(bad), None, "from_i32({bad})");
        let text = c_text(bad);
        assert!(
            !texts.contains_key(text.as_str()),
            "rm_result_str({bad}) returned a code's text: {text:?}"
        );
    }
}

/// The entries of `typedef enum { ... } rm_result;` in the header: (number, name), in order.
fn header_codes() -> Vec<(i32, String)> {
    let h = read("include/resman.h");
    let end = h
        .find("} rm_result;")
        .expect("include/resman.h declares `typedef enum { ... } rm_result;`");
    let start = h[..end]
        .rfind("typedef enum {")
        .expect("rm_result is a typedef enum");
    let mut body = &h[start + "typedef enum {".len()..end];
    let mut code = String::new();
    // Drop the /** ... */ documentation, keeping the entries between the comments.
    while let Some(open) = body.find("/*") {
        code.push_str(&body[..open]);
        let close = body[open..].find("*/").expect("comment is closed") + open;
        body = &body[close + 2..];
    }
    code.push_str(body);
    code.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (name, value) = entry
                .split_once('=')
                .unwrap_or_else(|| panic!("header: rm_result entry without a number: {entry:?}"));
            let value = value.trim().parse().unwrap_or_else(|_| {
                panic!("header: rm_result entry with a non-literal number: {entry:?}")
            });
            (value, name.trim().to_owned())
        })
        .collect()
}

#[test]
fn the_header_has_every_code_with_its_number() {
    let (header, rust) = (header_codes(), rust_codes());
    let only_in = |a: &[(i32, String)], b: &[(i32, String)]| -> Vec<(i32, String)> {
        a.iter().filter(|x| !b.contains(x)).cloned().collect()
    };
    assert!(
        header == rust,
        "include/resman.h's rm_result differs from src/error.rs (build.rs regenerates it on \
         `cargo build --release`: commit it): only in the header {:?}, only in Rust {:?}{}",
        only_in(&header, &rust),
        only_in(&rust, &header),
        if only_in(&header, &rust).is_empty() && only_in(&rust, &header).is_empty() {
            " (the order differs)"
        } else {
            ""
        }
    );
}

/// What bindings/go/errors.go says about the codes.
struct Go {
    /// Go constant name -> the C code it stands for (`CodeClosed Code = C.RM_ERR_CLOSED`), as
    /// (number, name): the number is the header's for `C.NAME`, or the literal written.
    consts: BTreeMap<String, (i32, String)>,
    /// Sentinel name -> Go constant name (`ErrClosed = &Error{Code: CodeClosed}`).
    sentinels: BTreeMap<String, String>,
}

fn go_codes() -> Go {
    let text = read("bindings/go/errors.go");
    let header: BTreeMap<String, i32> = header_codes().into_iter().map(|(n, s)| (s, n)).collect();
    let name_of = |n: i32| FROZEN.get(n as usize).map_or("?", |f| f.1).to_owned();
    let mut go = Go {
        consts: BTreeMap::new(),
        sentinels: BTreeMap::new(),
    };
    for line in text.lines() {
        let line = line.split("//").next().unwrap().trim();
        let words: Vec<&str> = line.split_whitespace().collect();
        // `CodeX Code = C.RM_...` or `CodeX Code = 7`
        if let [name, "Code", "=", value] = words[..] {
            let code = match value.strip_prefix("C.") {
                Some(c) => {
                    let n = *header
                        .get(c)
                        .unwrap_or_else(|| panic!("errors.go: {name} = C.{c}: no such code"));
                    (n, c.to_owned())
                }
                None => {
                    let n: i32 = value
                        .parse()
                        .unwrap_or_else(|_| panic!("errors.go: cannot read `{line}`"));
                    (n, name_of(n))
                }
            };
            let previous = go.consts.insert(name.to_owned(), code);
            assert!(previous.is_none(), "errors.go: {name} defined twice");
        }
        // `ErrX = &Error{Code: CodeX}` (a sentinel has no Message)
        if let Some((name, value)) = line.split_once("= &Error{Code: ") {
            let name = name.trim();
            if name.starts_with("Err") {
                let value = value
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("errors.go: cannot read sentinel `{line}`"));
                let previous = go
                    .sentinels
                    .insert(name.to_owned(), value.trim().to_owned());
                assert!(previous.is_none(), "errors.go: {name} defined twice");
            }
        }
    }
    go
}

#[test]
fn the_go_binding_has_a_constant_and_a_sentinel_for_every_code() {
    let go = go_codes();
    let rust = rust_codes();
    // Constants: exactly one per code, with its number.
    for (n, name) in &rust {
        let defs: Vec<_> = go.consts.iter().filter(|(_, c)| &c.1 == name).collect();
        assert_eq!(
            defs.len(),
            1,
            "bindings/go/errors.go: {name} needs exactly one constant `CodeX Code = C.{name}`, \
             found {defs:?}"
        );
        assert_eq!(
            defs[0].1 .0, *n,
            "errors.go: {} is not {name} = {n}",
            defs[0].0
        );
    }
    assert_eq!(
        go.consts.len(),
        rust.len(),
        "errors.go has extra constants: {:?}",
        go.consts
    );
    // Sentinels: exactly one per error code (none for RM_OK), named after its constant.
    for (konst, (_, name)) in &go.consts {
        let users: Vec<_> = go.sentinels.iter().filter(|(_, c)| *c == konst).collect();
        if name == "RM_OK" {
            assert!(
                users.is_empty(),
                "errors.go: a sentinel for RM_OK: {users:?}"
            );
            continue;
        }
        assert_eq!(
            users.len(),
            1,
            "bindings/go/errors.go: {name} needs exactly one sentinel `ErrX = &Error{{Code: \
             {konst}}}`, found {users:?}"
        );
        let expected = format!("Err{}", konst.strip_prefix("Code").unwrap_or(konst));
        assert_eq!(users[0].0, &expected, "errors.go: the sentinel of {konst}");
    }
    for (sentinel, konst) in &go.sentinels {
        assert!(
            go.consts.contains_key(konst),
            "errors.go: {sentinel} uses {konst}, which is not a code constant"
        );
    }
}
