#!/usr/bin/env bash
# Builds and runs the C tests against the static library:
#   1. compiles the test programs (tests/c/test_lifecycle.c, tests/c/test_rocks.c) and
#      examples/c/quickstart.c with -Werror,
#   2. runs the quick-start example, then each test program natively,
#   3. runs each test program again under valgrind (memcheck) and fails on any memory error
#      or on any definitely-lost byte (one log per program: build/valgrind-<program>.log).
# Every program is run even when an earlier one failed; the script fails if any did.
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

# The test programs, in the order they run.
programs=(test_lifecycle test_rocks)

echo "== compile ($cc, $lib)"
for prog in "${programs[@]}"; do
    "$cc" "${cflags[@]}" "$here/$prog.c" "${libs[@]}" -o "$build/$prog"
done
"$cc" "${cflags[@]}" "$repo/examples/c/quickstart.c" "${libs[@]}" -o "$build/quickstart"

echo "== examples/c/quickstart"
# The example uses a fixed directory; start it fresh and leave nothing behind.
rm -rf /tmp/resman-quickstart
"$build/quickstart"
rm -rf /tmp/resman-quickstart

ms() { echo $(( $(date +%s%N) / 1000000 )); }
failed=()

for prog in "${programs[@]}"; do
    echo "== $prog (native)"
    start=$(ms)
    set +e
    "$build/$prog"
    status=$?
    set -e
    echo "$prog native run: $(( $(ms) - start )) ms"
    if [[ $status -ne 0 ]]; then
        echo "run.sh: $prog failed natively (exit $status)" >&2
        failed+=("$prog (native)")
    fi
done

if [[ "${RESMAN_NO_VALGRIND:-0}" == 1 ]]; then
    echo "== valgrind skipped (RESMAN_NO_VALGRIND=1)"
    if ((${#failed[@]})); then
        echo "run.sh: failed: ${failed[*]}" >&2
        exit 1
    fi
    exit 0
fi
if ! command -v valgrind >/dev/null; then
    echo "run.sh: valgrind not found (install it, or RESMAN_NO_VALGRIND=1 to skip)" >&2
    exit 2
fi

# Runs one program under valgrind; returns non-zero on a failed check, an error in the
# error summary or a definitely-lost byte.
run_valgrind() {
    local prog="$1"
    local log="$build/valgrind-$prog.log"
    local out="$build/valgrind-$prog.stdout" err="$build/valgrind-$prog.stderr"
    local vg=(valgrind --leak-check=full --errors-for-leak-kinds=definite
              --show-leak-kinds=definite --error-exitcode=99 --log-file="$log")
    if [[ -f "$here/valgrind.supp" ]]; then
        vg+=(--suppressions="$here/valgrind.supp")
    fi
    echo "== $prog (valgrind)"
    local start status elapsed
    start=$(ms)
    set +e
    "${vg[@]}" "$build/$prog" >"$out" 2>"$err"
    status=$?
    set -e
    elapsed=$(( $(ms) - start ))
    tail -n 1 "$out"
    echo "$prog valgrind run: $elapsed ms (log: $log)"

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
        grep -A 8 -E 'definitely lost in loss record' "$log" | sed -E 's/^==[0-9]+== ?/    /'
    fi

    local fail=0
    if [[ $status -ne 0 ]]; then
        if [[ $status -eq 99 ]]; then
            echo "run.sh: valgrind reported errors in $prog (exit 99); see $log" >&2
        else
            echo "run.sh: $prog failed under valgrind (exit $status)" >&2
            grep -E '^(FAIL|XPASS)' "$err" >&2 || true
        fi
        fail=1
    fi
    if [[ -z "$definite" || "$lost_bytes" != 0 ]]; then
        echo "run.sh: definitely-lost bytes (or no leak summary) under valgrind in $prog; see $log" >&2
        fail=1
    fi
    if ! grep -qE 'ERROR SUMMARY: 0 errors' "$log"; then
        echo "run.sh: valgrind error summary of $prog is not zero; see $log" >&2
        fail=1
    fi
    return $fail
}

for prog in "${programs[@]}"; do
    if ! run_valgrind "$prog"; then
        failed+=("$prog (valgrind)")
    fi
done

if ((${#failed[@]})); then
    echo "run.sh: failed: ${failed[*]}" >&2
    exit 1
fi
echo "== all C tests passed"
