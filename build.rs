//! Generates include/resman.h with cbindgen. The header is committed; it is rewritten only
//! when its content changes, and CI fails when the committed copy differs from a fresh one.

use std::path::PathBuf;

fn main() {
    for path in [
        "src/ffi",
        "src/error.rs",
        "src/lib.rs",
        "cbindgen.toml",
        "build.rs",
    ] {
        println!("cargo:rerun-if-changed={path}");
    }
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let mut config = cbindgen::Config::from_file(dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable and valid");
    let var = |k: &str| std::env::var(k).expect("set by cargo");
    let (major, minor, patch) = (
        var("CARGO_PKG_VERSION_MAJOR"),
        var("CARGO_PKG_VERSION_MINOR"),
        var("CARGO_PKG_VERSION_PATCH"),
    );
    // The shared library's SONAME carries the major version, so a program linked against it
    // keeps loading libresman.so.MAJOR across compatible releases (make install makes the
    // usual symlinks).
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libresman.so.{major}");
    let number: u32 = major.parse::<u32>().unwrap() * 10000
        + minor.parse::<u32>().unwrap() * 100
        + patch.parse::<u32>().unwrap();
    config.after_includes = Some(format!(
        "\n/* Version of this header; compare with rm_version() / rm_version_number(). */\n\
         #define RM_VERSION_MAJOR {major}\n#define RM_VERSION_MINOR {minor}\n\
         #define RM_VERSION_PATCH {patch}\n#define RM_VERSION_NUMBER {number}\n\
         #define RM_VERSION_STRING \"{major}.{minor}.{patch}\"\n"
    ));
    let bindings = cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut fresh = Vec::new();
    bindings.write(&mut fresh);
    let header = dir.join("include").join("resman.h");
    if std::fs::read(&header).ok().as_deref() != Some(&fresh[..]) {
        std::fs::create_dir_all(header.parent().expect("has a parent"))
            .expect("include/ can be created");
        std::fs::write(&header, &fresh).expect("include/resman.h can be written");
    }
}
