# Shared by the test scripts (tests/c/run.sh, tests/c/durability.sh, tests/cpp/run.sh):
# source it after setting `set -euo pipefail`.

# Milliseconds since the epoch.
ms() { echo $(( $(date +%s%N) / 1000000 )); }

# require_lib SCRIPT LIB REPO TARGET [HINT]: exits 2 with how to build LIB when it is missing;
# warns when a source file is newer than LIB (testing an old build).
require_lib() {
    local script="$1" lib="$2" repo="$3" target="$4" hint="${5:-}"
    if [[ ! -f "$lib" ]]; then
        echo "$script: $lib not found." >&2
        echo "  build it:  cd $repo && CARGO_TARGET_DIR=$target cargo build --release" >&2
        echo "  or set CARGO_TARGET_DIR to where it was built${hint}." >&2
        exit 2
    fi
    local stale
    stale="$(find "$repo/src" "$repo/Cargo.toml" "$repo/Cargo.lock" -newer "$lib" -print -quit)"
    if [[ -n "$stale" ]]; then
        echo "$script: WARNING: $stale is newer than $lib: testing an old build" >&2
    fi
}

# run_valgrind SCRIPT NAME BINARY LOGPREFIX [SUPPRESSIONS]: runs BINARY under valgrind
# memcheck (logs LOGPREFIX.log, .stdout, .stderr) and prints the verdict; returns non-zero on
# a failed check, an error in the error summary, or any definitely-lost byte.
run_valgrind() {
    local script="$1" name="$2" bin="$3" prefix="$4" supp="${5:-}"
    local log="$prefix.log" out="$prefix.stdout" err="$prefix.stderr"
    local vg=(valgrind --leak-check=full --errors-for-leak-kinds=definite
              --show-leak-kinds=definite --error-exitcode=99 --log-file="$log")
    if [[ -n "$supp" && -f "$supp" ]]; then
        vg+=(--suppressions="$supp")
    fi
    echo "== $name (valgrind)"
    local start status
    start=$(ms)
    set +e
    "${vg[@]}" "$bin" >"$out" 2>"$err"
    status=$?
    set -e
    tail -n 1 "$out"
    echo "$name valgrind run: $(( $(ms) - start )) ms (log: $log)"

    local definite lost_bytes errors
    definite="$(grep -E 'definitely lost:' "$log" | tail -n 1 | sed -E 's/^==[0-9]+== +//' || true)"
    if [[ -z "$definite" ]]; then
        # With no leak at all valgrind prints no leak table, only this line.
        definite="$(grep -E 'All heap blocks were freed' "$log" | sed -E 's/^==[0-9]+== +//' || true)"
        lost_bytes=0
    else
        lost_bytes="$(sed -E 's/.*definitely lost: ([0-9,]+) bytes.*/\1/' <<<"$definite" | tr -d ,)"
    fi
    errors="$(grep -E 'ERROR SUMMARY:' "$log" | tail -n 1 | sed -E 's/^==[0-9]+== +//' || true)"
    echo "valgrind: ${definite:-<no leak summary found>}"
    echo "valgrind: ${errors:-<no error summary found>}"
    if grep -qE 'definitely lost in loss record' "$log"; then
        echo "valgrind: definitely-lost blocks (first stack of each):"
        grep -A 12 -E 'definitely lost in loss record' "$log" | sed -E 's/^==[0-9]+== ?/    /'
    fi

    local fail=0
    if [[ $status -ne 0 ]]; then
        if [[ $status -eq 99 ]]; then
            echo "$script: valgrind reported errors in $name (exit 99); see $log" >&2
        else
            echo "$script: $name failed under valgrind (exit $status)" >&2
            grep -E '^(FAIL|XPASS)' "$err" >&2 || true
        fi
        fail=1
    fi
    if [[ -z "$definite" || "$lost_bytes" != 0 ]]; then
        echo "$script: definitely-lost bytes (or no leak summary) under valgrind in $name; see $log" >&2
        fail=1
    fi
    if ! grep -qE 'ERROR SUMMARY: 0 errors' "$log"; then
        echo "$script: valgrind error summary of $name is not zero; see $log" >&2
        fail=1
    fi
    return $fail
}

# use_prebuilt_rocksdb REPO TARGET: builds the release library in TARGET (the project's one
# RocksDB build; ~12 minutes when it is not cached) and exports ROCKSDB_LIB_DIR and
# ROCKSDB_STATIC, so that builds with other compiler flags (sanitizers, coverage, fuzzing),
# each in a target directory of its own, link that librocksdb.a instead of compiling RocksDB
# again. RocksDB itself is then not instrumented: valgrind (tests/c/run.sh) covers it.
use_prebuilt_rocksdb() {
    local repo="$1" target="$2" out
    out="$(cd "$repo" && env -u RUSTFLAGS -u RUSTC_BOOTSTRAP CARGO_TARGET_DIR="$target" \
        cargo build --release --message-format=json |
        python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "build-script-executed" and "#librocksdb-sys@" in m["package_id"]:
        print(m["out_dir"])' | tail -n 1)"
    if [[ ! -f "$out/librocksdb.a" ]]; then
        echo "use_prebuilt_rocksdb: no librocksdb.a in '$out'" >&2
        return 1
    fi
    export ROCKSDB_LIB_DIR="$out" ROCKSDB_STATIC=1
    echo "RocksDB: linking the prebuilt $out/librocksdb.a"
}

# The target triple: builds with -Z sanitizer flags name it, so that build scripts and
# proc macros are built without them.
host_triple() { rustc -vV | sed -n 's/^host: //p'; }
