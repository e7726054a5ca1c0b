#!/usr/bin/env bash
# Builds and runs the C tests against the static library:
#   1. compiles tests/c/test_lifecycle.c and examples/c/quickstart.c with -Werror,
#   2. runs the quick-start example, then the test program natively,
#   3. runs the test program again under valgrind (memcheck) and fails on any memory error
#      or on any definitely-lost byte.
#
# Environment:
#   CARGO_TARGET_DIR      where cargo put the library (default: <repo>/target); the script
#                         links $CARGO_TARGET_DIR/release/libresman.a.
#   RESMAN_CARGO_BUILD=1  run `cargo build --release` first (cheap when RocksDB is cached,
#                         about 12 minutes on two cores when it is not).
#   RESMAN_NO_VALGRIND=1  skip the valgrind run (not for CI).
#   CC                    C compiler (default: gcc).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
lib="$target/release/libresman.a"
build="$here/build"
cc="${CC:-gcc}"

if [[ "${RESMAN_CARGO_BUILD:-0}" == 1 ]]; then
    (cd "$repo" && CARGO_TARGET_DIR="$target" cargo build --release)
fi
if [[ ! -f "$lib" ]]; then
    echo "run.sh: $lib not found." >&2
    echo "  build it:  cd $repo && CARGO_TARGET_DIR=$target cargo build --release" >&2
    echo "  or set CARGO_TARGET_DIR to where it was built (or RESMAN_CARGO_BUILD=1)." >&2
    exit 2
fi
stale="$(find "$repo/src" "$repo/Cargo.toml" "$repo/Cargo.lock" -newer "$lib" -print -quit)"
if [[ -n "$stale" ]]; then
    echo "run.sh: WARNING: $stale is newer than $lib: testing an old build" \
         "(RESMAN_CARGO_BUILD=1 rebuilds)" >&2
fi

mkdir -p "$build"
cflags=(-std=c11 -Wall -Wextra -Werror -g -I"$repo/include")
libs=("$lib" -lstdc++ -lm -ldl -lpthread)

echo "== compile ($cc, $lib)"
"$cc" "${cflags[@]}" "$here/test_lifecycle.c" "${libs[@]}" -o "$build/test_lifecycle"
"$cc" "${cflags[@]}" "$repo/examples/c/quickstart.c" "${libs[@]}" -o "$build/quickstart"

echo "== examples/c/quickstart"
# The example uses a fixed directory; start it fresh and leave nothing behind.
rm -rf /tmp/resman-quickstart
"$build/quickstart"
rm -rf /tmp/resman-quickstart

echo "== test_lifecycle (native)"
ms() { echo $(( $(date +%s%N) / 1000000 )); }
start=$(ms)
"$build/test_lifecycle"
echo "native run: $(( $(ms) - start )) ms"

if [[ "${RESMAN_NO_VALGRIND:-0}" == 1 ]]; then
    echo "== valgrind skipped (RESMAN_NO_VALGRIND=1)"
    exit 0
fi
if ! command -v valgrind >/dev/null; then
    echo "run.sh: valgrind not found (install it, or RESMAN_NO_VALGRIND=1 to skip)" >&2
    exit 2
fi

echo "== test_lifecycle (valgrind)"
log="$build/valgrind.log"
vg=(valgrind --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite
    --error-exitcode=99 --log-file="$log")
if [[ -f "$here/valgrind.supp" ]]; then
    vg+=(--suppressions="$here/valgrind.supp")
fi
start=$(ms)
set +e
"${vg[@]}" "$build/test_lifecycle" >"$build/valgrind.stdout" 2>"$build/valgrind.stderr"
status=$?
set -e
elapsed=$(( $(ms) - start ))
tail -n 1 "$build/valgrind.stdout"
echo "valgrind run: $elapsed ms (log: $log)"

definite="$(grep -E 'definitely lost:' "$log" | tail -n 1 | sed -E 's/^==[0-9]+== +//' || true)"
if [[ -z "$definite" ]]; then
    # With no leak at all valgrind prints no leak table, only this line.
    definite="$(grep -E 'All heap blocks were freed' "$log" | sed -E 's/^==[0-9]+== +//' || true)"
    lost_bytes=0
else
    lost_bytes="$(sed -E 's/.*definitely lost: ([0-9,]+) bytes.*/\1/' <<<"$definite" | tr -d ,)"
fi
errors="$(grep -E 'ERROR SUMMARY:' "$log" | tail -n 1 | sed -E 's/^==[0-9]+== +//')"
echo "valgrind: ${definite:-<no leak summary found>}"
echo "valgrind: $errors"
if grep -qE 'definitely lost in loss record' "$log"; then
    echo "valgrind: definitely-lost blocks (first stack of each):"
    grep -A 8 -E 'definitely lost in loss record' "$log" | sed -E 's/^==[0-9]+== ?/    /'
fi

fail=0
if [[ $status -ne 0 ]]; then
    if [[ $status -eq 99 ]]; then
        echo "run.sh: valgrind reported errors (exit 99); see $log" >&2
    else
        echo "run.sh: the test program failed under valgrind (exit $status)" >&2
        grep -E '^(FAIL|XPASS)' "$build/valgrind.stderr" >&2 || true
    fi
    fail=1
fi
if [[ -z "$definite" || "$lost_bytes" != 0 ]]; then
    echo "run.sh: definitely-lost bytes (or no leak summary) under valgrind; see $log" >&2
    fail=1
fi
if ! grep -qE 'ERROR SUMMARY: 0 errors' "$log"; then
    echo "run.sh: valgrind error summary is not zero; see $log" >&2
    fail=1
fi
if [[ $fail -ne 0 ]]; then
    exit 1
fi
echo "== all C tests passed"
