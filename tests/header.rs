//! The generated header agrees with the crate it documents.

use std::ffi::CStr;

fn header() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/resman.h"))
        .expect("include/resman.h exists (build.rs writes it)")
}

#[test]
fn version_macros_match_cargo_toml_and_the_runtime() {
    let h = header();
    let v = env!("CARGO_PKG_VERSION");
    assert!(
        h.contains(&format!("#define RM_VERSION_STRING \"{v}\"")),
        "RM_VERSION_STRING"
    );
    for (name, value) in [
        ("RM_VERSION_MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("RM_VERSION_MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("RM_VERSION_PATCH", env!("CARGO_PKG_VERSION_PATCH")),
    ] {
        assert!(h.contains(&format!("#define {name} {value}\n")), "{name}");
    }
    assert!(h.contains(&format!(
        "#define RM_VERSION_NUMBER {}\n",
        resman::VERSION_NUMBER
    )));
    // SAFETY: rm_version returns a static NUL-terminated string.
    let runtime = unsafe { CStr::from_ptr(resman::ffi::rm_version()) };
    assert_eq!(runtime.to_str().unwrap(), v);
    assert_eq!(resman::ffi::rm_version_number(), resman::VERSION_NUMBER);
}

#[test]
fn every_result_code_is_in_the_header_with_its_number() {
    let h = header();
    for (i, code) in resman::rm_result::ALL.iter().enumerate() {
        assert_eq!(*code as usize, i, "codes are dense and in order");
        let line = format!("{code:?} = {i},");
        assert!(h.contains(&line), "missing `{line}`");
        assert!(!code.describe().is_empty());
    }
}

#[test]
fn every_exported_function_is_declared_and_documented() {
    let h = header();
    for f in [
        "rm_version",
        "rm_version_number",
        "rm_result_str",
        "rm_live_objects",
        "rm_config_default",
        "rm_manager_create",
        "rm_manager_destroy",
        "rm_register",
        "rm_add_dependency",
        "rm_unregister",
        "rm_close",
        "rm_close_timeout",
        "rm_cleanup",
        "rm_cleanup_timeout",
        "rm_status",
        "rm_db_options_default",
        "rm_db_open",
        "rm_put",
        "rm_get",
        "rm_delete",
    ] {
        // The declaration: a line outside comments naming the function.
        let lines: Vec<&str> = h.lines().collect();
        let at = lines
            .iter()
            .position(|l| {
                let t = l.trim_start();
                !t.starts_with("/*")
                    && !t.starts_with('*')
                    && (t.contains(&format!(" {f}(")) || t.contains(&format!("*{f}(")))
            })
            .unwrap_or_else(|| panic!("{f} not declared"));
        // The line above it closes its doc comment.
        assert!(
            lines[at - 1].trim_end().ends_with("*/"),
            "{f} has no doc comment"
        );
    }
    for constant in [
        "RM_ERROR_MESSAGE_MAX",
        "RM_MAX_NAME_LEN",
        "RM_MAX_DEPENDENCIES",
    ] {
        assert!(h.contains(&format!("#define {constant} ")), "{constant}");
    }
}
