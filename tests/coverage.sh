#!/usr/bin/env bash
# Line coverage of the library by the Rust tests plus the C and Go drivers, with
# cargo-llvm-cov and Debian's llvm-19 tools. Not part of `make test`; tests/reliability.sh
# runs it.
#
#   bash tests/coverage.sh
#
# Steps: an instrumented build in its own target directory (RESMAN_COV_TARGET_DIR, default
# /var/tmp/resman-cov; RocksDB is the main release build's, linked as it is), then
#   1. `cargo test --release --lib --tests`,
#   2. the C tests (tests/c/run.sh, without valgrind) against the instrumented libresman.a,
#   3. the Go binding's tests (bindings/go, its Prometheus collector, go-example) against it,
# and one report over all their profiles. It prints every source file's line coverage and
# fails unless each resource-management module (handle, lifecycle, manager, cleanup,
# executor, monitor; a module is its file or its folder) reaches RESMAN_COV_MIN percent
# (default 85).
# An HTML report is written to $RESMAN_COV_TARGET_DIR/html/index.html.
#
# Needs cargo-llvm-cov (`cargo install cargo-llvm-cov --locked`, done when missing) and
# llvm-19 (`apt-get install llvm-19`, done when missing and running as root).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"
main_target="${CARGO_TARGET_DIR:-$repo/target}"
cov_target="${RESMAN_COV_TARGET_DIR:-/var/tmp/resman-cov}"
llvm="${RESMAN_LLVM_BIN:-/usr/lib/llvm-19/bin}"
min="${RESMAN_COV_MIN:-85}"
core=(handle lifecycle manager cleanup executor monitor)

if [[ ! -x "$llvm/llvm-cov" ]]; then
    if [[ $(id -u) == 0 ]]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq llvm-19
    else
        echo "coverage.sh: $llvm/llvm-cov not found: apt-get install llvm-19" >&2
        exit 2
    fi
fi
command -v cargo-llvm-cov >/dev/null 2>&1 || cargo install cargo-llvm-cov --locked

use_prebuilt_rocksdb "$repo" "$main_target"
export LLVM_COV="$llvm/llvm-cov" LLVM_PROFDATA="$llvm/llvm-profdata"
export CARGO_TARGET_DIR="$cov_target"
cd "$repo"
# The instrumenting rustc wrapper, LLVM_PROFILE_FILE, and where the profiles go.
eval "$(cargo llvm-cov show-env --sh 2>/dev/null)"
cargo llvm-cov clean --workspace

echo "== 1. Rust tests (instrumented, $cov_target)"
cargo test --release --lib --tests
cargo build --release
lib_dir="$cov_target/release"

# A program linked by rustc gets `-u __llvm_profile_runtime`, which pulls in the part of the
# profiler runtime that writes the profile at exit; C and Go links must ask for it.
hook="-Wl,-u,__llvm_profile_runtime"

echo "== 2. C tests against the instrumented libresman.a"
RESMAN_NO_VALGRIND=1 LDFLAGS="$hook" bash "$here/c/run.sh"

echo "== 3. Go tests against the instrumented libresman.a"
for dir in bindings/go bindings/go/prometheus go-example; do
    (cd "$dir" && CGO_LDFLAGS="-L$lib_dir $hook" go test -count=1 ./...)
done

echo "== report"
json="$cov_target/coverage.json"
cargo llvm-cov report --release --json --summary-only --output-path "$json"
cargo llvm-cov report --release --html --output-dir "$cov_target" >/dev/null
python3 - "$json" "$repo" "$min" "${core[@]}" <<'PY'
import json, sys
path, repo, minimum, core = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
files = json.load(open(path))["data"][0]["files"]
rows = []
for f in files:
    name = f["filename"]
    if not name.startswith(repo + "/src/"):
        continue
    lines = f["summary"]["lines"]
    rows.append((name[len(repo) + 1:], lines["covered"], lines["count"], lines["percent"]))
rows.sort()
print(f"{'file':<28} {'lines':>7} {'covered':>8} {'percent':>8}")
for name, covered, count, pct in rows:
    print(f"{name:<28} {count:>7} {covered:>8} {pct:>7.1f}%")
total_c = sum(r[1] for r in rows)
total_n = sum(r[2] for r in rows)
print(f"{'all of src/':<28} {total_n:>7} {total_c:>8} {100 * total_c / max(total_n, 1):>7.1f}%")
# A module is its file (src/m.rs) or its folder (src/m/), its unit-test files left out.
def module_of(name):
    for m in core:
        if name == f"src/{m}.rs" or (name.startswith(f"src/{m}/") and not name.endswith("/tests.rs")):
            return m
    return None
per_module = {}
for name, covered, count, _ in rows:
    m = module_of(name)
    if m is not None:
        c, n = per_module.get(m, (0, 0))
        per_module[m] = (c + covered, n + count)
core_rows = [(m, c, n, 100 * c / max(n, 1)) for m, (c, n) in sorted(per_module.items())]
for m, c, n, pct in core_rows:
    print(f"{'module ' + m:<28} {n:>7} {c:>8} {pct:>7.1f}%")
core_c = sum(r[1] for r in core_rows)
core_n = sum(r[2] for r in core_rows)
print(f"{'resource management':<28} {core_n:>7} {core_c:>8} {100 * core_c / max(core_n, 1):>7.1f}%")
low = [r for r in core_rows if r[3] < minimum]
missing = set(core) - set(per_module)
if missing:
    sys.exit(f"coverage.sh: no coverage data for {sorted(missing)}")
if low:
    sys.exit("coverage.sh: below %.0f%%: %s" % (minimum, ", ".join(f"{r[0]} {r[3]:.1f}%" for r in low)))
print(f"coverage.sh: every resource-management module is at {minimum:.0f}% or more")
PY
