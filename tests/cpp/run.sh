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
# shellcheck source=../lib.sh
source "$repo/tests/lib.sh"
target="${CARGO_TARGET_DIR:-$repo/target}"
lib="$target/release/libresman.a"
build="$target/cpp-tests"
cxx="${CXX:-g++}"

require_lib tests/cpp/run.sh "$lib" "$repo" "$target"

mkdir -p "$build"
cxxflags=(-std=c++17 -Wall -Wextra -Werror -g -I"$repo/include" -I"$repo/bindings/cpp")
libs=("$lib" -lstdc++ -lm -ldl -lpthread)
bin="$build/test_wrapper"

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

if ! run_valgrind tests/cpp/run.sh test_wrapper "$bin" "$build/valgrind"; then
    exit 1
fi
echo "== C++ wrapper test passed"
