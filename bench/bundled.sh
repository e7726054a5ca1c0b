# Sourced by bench/go/run.sh and bench/ycsb/run.sh: where the rocksdb crate's bundled build
# put what grocksdb links against.
#
# bundled_build REPO: runs the release build (libresman.a; nothing to do when it is fresh) and,
# from cargo's messages, sets librocksdb_sys, lz4_sys and zstd_sys (the directories of
# librocksdb.a, liblz4.a and libzstd.a) and rocksdb_include (RocksDB's include/). RUSTFLAGS
# must not change for this target directory (it would rebuild RocksDB), so it is unset.
bundled_build() {
    eval "$(cd "$1" && env -u RUSTFLAGS -u RUSTC_BOOTSTRAP cargo build --release --message-format=json |
        python3 -c 'import json, os, sys
dirs = {}
for line in sys.stdin:
    m = json.loads(line)
    pkg = m.get("package_id", "").rsplit("#", 1)[-1].split("@")[0]
    if m.get("reason") == "build-script-executed" and pkg in ("librocksdb-sys", "lz4-sys", "zstd-sys"):
        dirs[pkg.replace("-", "_")] = m["out_dir"]
    if m.get("reason") == "compiler-artifact" and pkg == "librocksdb-sys":
        dirs["rocksdb_include"] = os.path.join(os.path.dirname(m["manifest_path"]), "rocksdb", "include")
for k, v in sorted(dirs.items()):
    print(f"{k}={v!r}")')"
}

# rocksdb_version_of INCLUDE_DIR: "MAJOR.MINOR.PATCH" from RocksDB's version.h.
rocksdb_version_of() {
    sed -nE 's/^#define ROCKSDB_(MAJOR|MINOR|PATCH) ([0-9]+).*/\2/p' "$1/rocksdb/version.h" | paste -sd.
}
