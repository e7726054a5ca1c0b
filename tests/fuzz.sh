#!/usr/bin/env bash
# Runs the libFuzzer target fuzz/fuzz_targets/calls.rs (the C ABI call-sequence model of
# tests/calls.rs, driven by the fuzzer's bytes) for a bounded time. Not part of `make test`;
# tests/reliability.sh runs it.
#
#   bash tests/fuzz.sh [SECONDS]      (default 300)
#
# It builds with cargo-fuzz (installed with `cargo install cargo-fuzz --locked` when missing)
# on the stable toolchain with RUSTC_BOOTSTRAP=1, under AddressSanitizer, in its own target
# directory (RESMAN_FUZZ_TARGET_DIR, default /var/tmp/resman-fuzz), linking the RocksDB of the
# main release build (CARGO_TARGET_DIR, default <repo>/target) instead of compiling it again.
# The corpus grows in fuzz/corpus/calls; a failing input is saved in fuzz/artifacts/calls/
# (both ignored by git) and the script fails. Replay one with:
#   cd fuzz && RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=/var/tmp/resman-fuzz cargo fuzz run calls ARTIFACT
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"
secs="${1:-300}"
main_target="${CARGO_TARGET_DIR:-$repo/target}"
fuzz_target="${RESMAN_FUZZ_TARGET_DIR:-/var/tmp/resman-fuzz}"

command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
use_prebuilt_rocksdb "$repo" "$main_target"
mkdir -p "$repo/fuzz/corpus/calls"
log="$fuzz_target/fuzz-calls.log"
mkdir -p "$fuzz_target"

cd "$repo/fuzz"
export RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$fuzz_target"
export LSAN_OPTIONS="suppressions=$here/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
echo "== build (cargo fuzz, ASan, $fuzz_target)"
cargo fuzz build calls --target "$(host_triple)"
echo "== fuzz for $secs s (log: $log)"
start=$(ms)
set +e
cargo fuzz run calls --target "$(host_triple)" -- \
    -max_total_time="$secs" -timeout=120 -rss_limit_mb=8192 -print_final_stats=1 2>"$log"
status=$?
set -e
grep -E '^fuzz calls:' "$log" | tail -n 1 || true
grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^#[0-9]+.*DONE' "$log" || true
echo "corpus: $(find corpus/calls -type f | wc -l) inputs; $(( ($(ms) - start) / 1000 )) s"
if [[ $status -ne 0 ]]; then
    grep -E -A 30 'panicked at|ERROR: AddressSanitizer|ERROR: libFuzzer|ERROR: LeakSanitizer' \
        "$log" | head -n 60 >&2 || true
    echo "fuzz.sh: the fuzzer found a failure (exit $status); the input is in fuzz/artifacts/calls/" >&2
    exit 1
fi
echo "fuzz.sh: no failure"
