#!/usr/bin/env bash
# The reliability suite's long forms in one run (issue 7; RELIABILITY.md lists what each part
# proves). `make test` runs the bounded forms; this script runs them at stress sizes and adds
# the fuzzer, the sanitizers and coverage, none of which the test command runs.
#
#   bash tests/reliability.sh              every part, in the order below
#   bash tests/reliability.sh PART...      only those parts
#
# Parts (defaults in brackets; on two cores the whole run takes about 30 minutes,
# plus about 10 for the first sanitizer, coverage and fuzzing builds):
#   calls      the C ABI call-sequence property test, RESMAN_CALLS_CASES times the cases
#              of `make test` [20: 8,960 cases, ~9 M calls]
#   stress     the dependency-graph cleanup with RESMAN_STRESS_RESOURCES resources
#              [1,000,000] and RESMAN_STRESS_ROUNDS racing rounds [20,000]
#   soak       RESMAN_SOAK_CYCLES open/use/close cycles [10,000], with the resident-memory
#              bound asserted
#   faults     the fault tests (disk full, read-only filesystem, ...)
#   durability RESMAN_DURABILITY_CYCLES SIGKILL cycles [300]
#   fuzz       tests/fuzz.sh for RESMAN_FUZZ_SECONDS [600]
#   asan       tests/asan.sh: the Rust and C tests under AddressSanitizer/LeakSanitizer
#   valgrind   the C and C++ tests under valgrind (tests/c/run.sh, tests/cpp/run.sh)
#   coverage   tests/coverage.sh: line coverage, resource-management modules >= 85%
#
# Every part runs even when an earlier one failed; the script fails if any did. Each part's
# output is kept in $CARGO_TARGET_DIR/reliability/PART.log, and the lines that carry its
# figures are collected in $CARGO_TARGET_DIR/reliability/summary.txt (what RELIABILITY.md
# quotes).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
out="$CARGO_TARGET_DIR/reliability"
mkdir -p "$out"
summary="$out/summary.txt"

all=(calls stress soak faults durability fuzz asan valgrind coverage)
parts=("$@")
((${#parts[@]})) || parts=("${all[@]}")

part_calls() {
    RESMAN_CALLS_CASES="${RESMAN_CALLS_CASES:-20}" \
        cargo test --release --test calls -- --nocapture
}
part_stress() {
    RESMAN_STRESS_RESOURCES="${RESMAN_STRESS_RESOURCES:-1000000}" \
        RESMAN_STRESS_ROUNDS="${RESMAN_STRESS_ROUNDS:-20000}" \
        cargo test --release --test stress -- --nocapture --test-threads=1
}
part_soak() {
    RESMAN_SOAK_CYCLES="${RESMAN_SOAK_CYCLES:-10000}" \
        cargo test --release --test soak -- --nocapture
}
part_faults() { cargo test --release --test faults -- --nocapture --test-threads=1; }
part_durability() {
    RESMAN_DURABILITY_CYCLES="${RESMAN_DURABILITY_CYCLES:-300}" bash "$here/c/durability.sh"
}
part_fuzz() { bash "$here/fuzz.sh" "${RESMAN_FUZZ_SECONDS:-600}"; }
part_asan() { bash "$here/asan.sh"; }
part_valgrind() { bash "$here/c/run.sh" && bash "$here/cpp/run.sh"; }
part_coverage() { bash "$here/coverage.sh"; }

# The lines of a part's log that carry its figures (a test's own lines may follow libtest's
# "test NAME ... " on the same line).
figures() {
    grep -E '(^|\.\.\. )(calls\.rs:|stress:|soak:|fuzz calls:|stat::number_of_executed_units|corpus:|valgrind:|Rust tests under ASan|asan\.sh:|coverage\.sh:|resource management|all of src/|src/[a-z_/]+\.rs +[0-9]|test result:|cycles:|acknowledged:|keys checked:|disk full after|close of the full|creating a column family|opening on a read-only|skipped:|[0-9]+ passed, [0-9]+ failed|[A-Za-z_ ]*: *[0-9]+ checks|.*checks passed|.*[0-9]+ checks,)' "$1" || true
}

cd "$repo"
cargo build --release >/dev/null 2>&1 || cargo build --release
{
    echo "# tests/reliability.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "# $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo); parts: ${parts[*]}"
} >"$summary"
failed=()
for part in "${parts[@]}"; do
    if ! declare -F "part_$part" >/dev/null; then
        echo "reliability.sh: unknown part '$part' (parts: ${all[*]})" >&2
        exit 2
    fi
    log="$out/$part.log"
    echo "== $part (log: $log)"
    start=$(ms)
    "part_$part" >"$log" 2>&1
    status=$?
    secs=$(( ($(ms) - start) / 1000 ))
    {
        echo
        echo "## $part: $([[ $status == 0 ]] && echo passed || echo "FAILED (exit $status)") in $secs s"
        figures "$log"
    } >>"$summary"
    if [[ $status == 0 ]]; then
        echo "$part: passed in $secs s"
    else
        echo "$part: FAILED (exit $status) in $secs s; last lines of $log:" >&2
        tail -n 20 "$log" >&2
        failed+=("$part")
    fi
done
echo
cat "$summary"
if ((${#failed[@]})); then
    echo "reliability.sh: failed: ${failed[*]}" >&2
    exit 1
fi
echo "reliability.sh: every part passed"
