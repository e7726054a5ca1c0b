#!/usr/bin/env bash
# The SIGKILL durability test (tests/c/durability.c): a writer process is killed with SIGKILL
# at random moments, cycle after cycle; after each kill every acknowledged key of every cycle
# so far is checked in the reopened DB. Native only (not under valgrind).
#
#   1. compiles tests/c/durability.c against the static library (same flags as run.sh),
#   2. runs it in a fresh temporary directory,
#   3. removes the directory on success; keeps it (and prints its path) on failure.
#
# Environment:
#   CARGO_TARGET_DIR            where cargo put the library (default: <repo>/target); the
#                               script links $CARGO_TARGET_DIR/release/libresman.a.
#   RESMAN_DURABILITY_CYCLES    number of kill cycles (default 60; e.g. 1000 for a stress run).
#                               Every reopen checks every key so far, so the cost grows with
#                               the square of the cycles: on two cores, 60 cycles take 5 to
#                               15 s, 200 about 40 s, 1000 about 7.5 minutes.
#   RESMAN_DURABILITY_SEED      seed of the kill points (default: a new one, printed; pass it
#                               back to replay the same sequence of N).
#   CC                          C compiler (default: gcc).
#   TMPDIR                      where the temporary directory goes (default: /tmp).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=../lib.sh
source "$repo/tests/lib.sh"
target="${CARGO_TARGET_DIR:-$repo/target}"
lib="$target/release/libresman.a"
build="$here/build"
cc="${CC:-gcc}"
cycles="${RESMAN_DURABILITY_CYCLES:-60}"
seed="${RESMAN_DURABILITY_SEED:-}"

require_lib durability.sh "$lib" "$repo" "$target"
if ! [[ "$cycles" =~ ^[1-9][0-9]*$ ]]; then
    echo "durability.sh: RESMAN_DURABILITY_CYCLES must be a positive integer, got '$cycles'" >&2
    exit 2
fi
if [[ -z "$seed" ]]; then
    seed=$(( ($(date +%s%N) ^ ($$ << 20)) % 1000000000 ))
elif ! [[ "$seed" =~ ^[0-9]+$ ]]; then
    echo "durability.sh: RESMAN_DURABILITY_SEED must be a decimal number, got '$seed'" >&2
    exit 2
fi
stale="$(find "$repo/src" "$repo/Cargo.toml" "$repo/Cargo.lock" -newer "$lib" -print -quit)"
if [[ -n "$stale" ]]; then
    echo "durability.sh: WARNING: $stale is newer than $lib: testing an old build" >&2
fi

mkdir -p "$build"
cflags=(-std=c11 -Wall -Wextra -Werror -g -I"$repo/include")
libs=("$lib" -lstdc++ -lm -ldl -lpthread)
bin="$build/durability"

echo "== compile ($cc, $lib)"
"$cc" "${cflags[@]}" "$here/durability.c" "${libs[@]}" -o "$bin"

work="$(mktemp -d "${TMPDIR:-/tmp}/resman-durability-XXXXXX")"
out="$work/output.txt"
echo "== durability: $cycles cycles, seed $seed, dir $work"

start=$(ms)
set +e
"$bin" "$work/data" "$cycles" "$seed" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e
elapsed=$(( $(ms) - start ))

# The figures, from the program's summary lines.
summary="$(grep -E '^summary: seed' "$out" || true)"
field() { sed -nE "s/$1/\\1/p" <<<"$summary"; }
echo "== result"
echo "cycles:         $(field '.*cycles ([0-9]+ of [0-9]+),.*') (killed and checked)"
echo "seed:           $seed"
echo "acknowledged:   $(field '.*acknowledged operations ([0-9]+) .*') operations (puts and" \
     "deletes) on $(field '.*acknowledged operations [0-9]+ \(([0-9]+) keys\).*') keys"
echo "keys checked:   $(field '.*key checks ([0-9]+).*') rm_get of acknowledged keys over all" \
     "reopens, + $(field '.*\(\+ ([0-9]+) never-written.*') of never-written keys"
echo "per mode:"
grep -E '^summary:   mode' "$out" | sed -E 's/^summary:   mode /  /' || true
echo "elapsed:        $(( elapsed / 1000 )).$(( elapsed % 1000 / 100 )) s"

if [[ $status -ne 0 ]]; then
    echo "durability.sh: FAILED (exit $status); data kept in $work" >&2
    echo "  (the DB is $work/data/db, the ack logs $work/data/acks-<cycle>.log," \
         "the output $out)" >&2
    echo "  replay the same kill counts: RESMAN_DURABILITY_SEED=$seed" \
         "RESMAN_DURABILITY_CYCLES=$cycles bash $here/durability.sh" >&2
    exit 1
fi
rm -rf "$work"
echo "== durability passed"
