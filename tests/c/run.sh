#!/usr/bin/env bash
# Builds and runs the C tests against the static library:
#   1. compiles the test programs (tests/c/test_*.c, listed in `programs` below) and
#      examples/c/quickstart.c with -Werror,
#   2. runs the quick-start example, then each test program natively,
#   3. runs each test program again under valgrind (memcheck) and fails on any memory error
#      or on any definitely-lost byte (one log per program: build/valgrind-<program>.log).
# Every program is run even when an earlier one failed; the script fails if any did.
#
# Environment:
#   CARGO_TARGET_DIR      where cargo put the library (default: <repo>/target); the script
#                         links $CARGO_TARGET_DIR/release/libresman.a.
#   RESMAN_LIB            the static library to link instead (tests/asan.sh's build).
#   RESMAN_CARGO_BUILD=1  run `cargo build --release` first (cheap when RocksDB is cached,
#                         about 12 minutes on two cores when it is not).
#   RESMAN_NO_VALGRIND=1  skip the valgrind run (not for CI).
#   CC                    C compiler (default: gcc).
#   CFLAGS                extra compile (and link) flags, e.g. -fsanitize=address (word-split).
#   LDFLAGS               extra link flags (word-split).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=../lib.sh
source "$repo/tests/lib.sh"
target="${CARGO_TARGET_DIR:-$repo/target}"
lib="${RESMAN_LIB:-$target/release/libresman.a}"
build="$here/build"
cc="${CC:-gcc}"

if [[ "${RESMAN_CARGO_BUILD:-0}" == 1 ]]; then
    (cd "$repo" && CARGO_TARGET_DIR="$target" cargo build --release)
fi
require_lib run.sh "$lib" "$repo" "$target" " (or RESMAN_CARGO_BUILD=1)"

mkdir -p "$build"
cflags=(-std=c11 -Wall -Wextra -Werror -g -I"$repo/include")
# shellcheck disable=SC2206
cflags+=(${CFLAGS:-})
libs=("$lib" -lstdc++ -lm -ldl -lpthread)
# Extra link flags, e.g. tests/coverage.sh's hook for the profiler runtime.
# shellcheck disable=SC2206
libs+=(${LDFLAGS:-})

# The test programs, in the order they run.
programs=(test_lifecycle test_rocks test_paths test_races test_docs)

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

for prog in "${programs[@]}"; do
    if ! run_valgrind run.sh "$prog" "$build/$prog" "$build/valgrind-$prog" "$here/valgrind.supp"; then
        failed+=("$prog (valgrind)")
    fi
done

if ((${#failed[@]})); then
    echo "run.sh: failed: ${failed[*]}" >&2
    exit 1
fi
echo "== all C tests passed"
