#!/usr/bin/env bash
# AddressSanitizer and LeakSanitizer over the Rust tests and the C tests. Not part of
# `make test` (it needs a nightly flag on the stable toolchain); tests/reliability.sh runs it.
#
#   bash tests/asan.sh
#
# 1. `cargo test --release --lib --tests` with RUSTC_BOOTSTRAP=1 and -Zsanitizer=address, for
#    the explicit host target (so build scripts and proc macros are built without it), in its
#    own target directory (RESMAN_ASAN_TARGET_DIR, default /var/tmp/resman-asan). Leak
#    checking is on: a test binary that leaks fails.
# 2. The C tests and the C quick-start (tests/c/run.sh, without valgrind) compiled with
#    gcc -fsanitize=address and linked against the libresman.a of step 1.
# RocksDB is the main release build's (CARGO_TARGET_DIR, default <repo>/target), linked as
# it is, not instrumented: its own memory errors are valgrind's part (tests/c/run.sh).
# Known false positives of LeakSanitizer are suppressed in tests/lsan.supp (with reasons).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"
main_target="${CARGO_TARGET_DIR:-$repo/target}"
asan_target="${RESMAN_ASAN_TARGET_DIR:-/var/tmp/resman-asan}"
triple="$(host_triple)"

use_prebuilt_rocksdb "$repo" "$main_target"
export RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zsanitizer=address -Cforce-frame-pointers=yes"
export CARGO_TARGET_DIR="$asan_target"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$here/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

failed=()
echo "== Rust tests under ASan/LSan ($asan_target)"
start=$(ms)
cd "$repo"
if ! cargo test --release --target "$triple" --lib --tests; then
    failed+=("Rust tests")
fi
echo "Rust tests under ASan: $(( ($(ms) - start) / 1000 )) s"

cargo build --release --target "$triple" --lib
echo "== C tests (gcc -fsanitize=address, the instrumented libresman.a)"
if ! RESMAN_LIB="$asan_target/$triple/release/libresman.a" RESMAN_NO_VALGRIND=1 \
    CFLAGS="-fsanitize=address -fno-omit-frame-pointer" bash "$here/c/run.sh"; then
    failed+=("C tests")
fi

if ((${#failed[@]})); then
    echo "asan.sh: failed: ${failed[*]}" >&2
    exit 1
fi
echo "asan.sh: the Rust tests and the C tests are clean under ASan and LSan"
