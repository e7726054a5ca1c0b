#!/usr/bin/env bash
# Builds and runs the C++ wrapper test (bindings/cpp/resman.hpp) against the static library:
#   1. compiles tests/cpp/test_wrapper.cpp with g++ -std=c++17 -Wall -Wextra -Werror,
#   2. runs it natively,
#   3. runs it again under valgrind (memcheck) and fails on any memory error or on any
#      definitely-lost byte.
#
# Environment:
#   CARGO_TARGET_DIR      where cargo put the library (default: <repo>/target); the script
#                         links $CARGO_TARGET_DIR/release/libresman.a and writes its binary
#                         and logs to $CARGO_TARGET_DIR/cpp-tests/.
#   RESMAN_NO_VALGRIND=1  skip the valgrind run (not for CI).
#   CXX                   C++ compiler (default: g++).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
lib="$target/release/libresman.a"
build="$target/cpp-tests"
cxx="${CXX:-g++}"

if [[ ! -f "$lib" ]]; then
    echo "tests/cpp/run.sh: $lib not found." >&2
    echo "  build it:  cd $repo && CARGO_TARGET_DIR=$target cargo build --release" >&2
    echo "  or set CARGO_TARGET_DIR to where it was built." >&2
    exit 2
fi
stale="$(find "$repo/src" "$repo/Cargo.toml" "$repo/Cargo.lock" -newer "$lib" -print -quit)"
if [[ -n "$stale" ]]; then
    echo "tests/cpp/run.sh: WARNING: $stale is newer than $lib: testing an old build" >&2
fi

mkdir -p "$build"
cxxflags=(-std=c++17 -Wall -Wextra -Werror -g -I"$repo/include" -I"$repo/bindings/cpp")
libs=("$lib" -lstdc++ -lm -ldl -lpthread)
bin="$build/test_wrapper"

ms() { echo $(( $(date +%s%N) / 1000000 )); }

echo "== compile ($cxx, $lib)"
start=$(ms)
"$cxx" "${cxxflags[@]}" "$here/test_wrapper.cpp" "${libs[@]}" -o "$bin"
echo "compile: $(( $(ms) - start )) ms"

echo "== test_wrapper (native)"
start=$(ms)
set +e
"$bin"
status=$?
set -e
echo "test_wrapper native run: $(( $(ms) - start )) ms"
if [[ $status -ne 0 ]]; then
    echo "tests/cpp/run.sh: test_wrapper failed natively (exit $status)" >&2
    exit 1
fi

if [[ "${RESMAN_NO_VALGRIND:-0}" == 1 ]]; then
    echo "== valgrind skipped (RESMAN_NO_VALGRIND=1)"
    exit 0
fi
if ! command -v valgrind >/dev/null; then
    echo "tests/cpp/run.sh: valgrind not found (install it, or RESMAN_NO_VALGRIND=1 to skip)" >&2
    exit 2
fi

echo "== test_wrapper (valgrind)"
log="$build/valgrind.log"
out="$build/valgrind.stdout"
err="$build/valgrind.stderr"
vg=(valgrind --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite
    --error-exitcode=99 --log-file="$log")
start=$(ms)
set +e
"${vg[@]}" "$bin" >"$out" 2>"$err"
status=$?
set -e
elapsed=$(( $(ms) - start ))
tail -n 1 "$out"
echo "test_wrapper valgrind run: $elapsed ms (log: $log)"

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

fail=0
if [[ $status -ne 0 ]]; then
    if [[ $status -eq 99 ]]; then
        echo "tests/cpp/run.sh: valgrind reported errors (exit 99); see $log" >&2
    else
        echo "tests/cpp/run.sh: test_wrapper failed under valgrind (exit $status)" >&2
        grep -E '^FAIL' "$err" >&2 || true
    fi
    fail=1
fi
if [[ -z "$definite" || "$lost_bytes" != 0 ]]; then
    echo "tests/cpp/run.sh: definitely-lost bytes (or no leak summary) under valgrind; see $log" >&2
    fail=1
fi
if ! grep -qE 'ERROR SUMMARY: 0 errors' "$log"; then
    echo "tests/cpp/run.sh: valgrind error summary is not zero; see $log" >&2
    fail=1
fi
if [[ $fail -ne 0 ]]; then
    exit 1
fi
echo "== C++ wrapper test passed"
