#!/usr/bin/env bash
# The Go benchmarks (item 2 of issue 8): the resman Go binding against
# github.com/linxGnu/grocksdb, both on the RocksDB that the rocksdb crate's bundled build
# produced (grocksdb is compiled against that build's headers and links its librocksdb.a,
# liblz4.a and libzstd.a), with the same options and data. See bench/go/README.md.
#
# Builds the two benchmark binaries (they cannot be one: libresman.a contains RocksDB too),
# runs them in rounds (the two sides of each benchmark back to back), compares them with benchstat and writes, in
# $CARGO_TARGET_DIR/bench:
#   go.json             the rows and series the report generator reads
#   go-resman.txt       raw `go test -bench` output of resmanbench
#   go-grocksdb.txt     raw `go test -bench` output of grocksbench
#   go-benchstat.txt    benchstat -ignore pkg resman=go-resman.txt grocksdb=go-grocksdb.txt
#
# Knobs: RESMAN_GO_BENCH_COUNT (rounds: samples per benchmark, 10; benchstat needs at least
# 6 for a 95% confidence interval), RESMAN_GO_BENCH_TIME (-benchtime, 800ms). Many short
# samples rather than a few long ones: on a busy machine the medians hold better. About 4-5
# minutes on two cores with the defaults, the first build of grocksdb included.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
out="$CARGO_TARGET_DIR/bench"
count="${RESMAN_GO_BENCH_COUNT:-10}"
benchtime="${RESMAN_GO_BENCH_TIME:-800ms}"
benchstat_version=v0.0.0-20260908200009-22c9c6c9d4da # golang.org/x/perf
start=$(date +%s)
mkdir -p "$out/go-bin" "$out/go-tmp"

# The release build and where the bundled build put librocksdb.a, liblz4.a, libzstd.a and the
# RocksDB headers (bench/bundled.sh).
# shellcheck source=../bundled.sh
source "$repo/bench/bundled.sh"
bundled_build "$repo"
for lib in "${librocksdb_sys:-}/librocksdb.a" "${lz4_sys:-}/liblz4.a" "${zstd_sys:-}/libzstd.a" \
           "${rocksdb_include:-}/rocksdb/c.h" "$CARGO_TARGET_DIR/release/libresman.a"; do
    [[ -f "$lib" ]] || { echo "run.sh: $lib not found (see the cargo build above)" >&2; exit 2; }
done
rocksdb_version="$(rocksdb_version_of "$rocksdb_include")"

# benchstat, pinned, installed next to the results.
benchstat="$out/bin/benchstat"
if ! go version -m "$benchstat" 2>/dev/null | grep -q "golang.org/x/perf[[:space:]]*$benchstat_version"; then
    GOBIN="$out/bin" go install "golang.org/x/perf/cmd/benchstat@$benchstat_version"
fi

cd "$repo/bench/go"
# Removing the binaries first makes go relink them: it does not notice a rebuilt .a by itself.
rm -f "$out/go-bin/resmanbench.test" "$out/go-bin/grocksbench.test"
echo "== building resmanbench (libresman.a from $CARGO_TARGET_DIR/release)"
CGO_LDFLAGS="-L$CARGO_TARGET_DIR/release" go test -c -o "$out/go-bin/resmanbench.test" ./resmanbench
echo "== building grocksbench (grocksdb against the bundled RocksDB $rocksdb_version)"
CGO_CFLAGS="-I$rocksdb_include" \
CGO_LDFLAGS="-L$librocksdb_sys -L$lz4_sys -L$zstd_sys -llz4 -lzstd -lm" \
    go test -tags grocksdb_clean_link -c -o "$out/go-bin/grocksbench.test" ./grocksbench
built=$(date +%s)

# The seed: the preloaded read DB (100k keys, flushed to one table file), made once by
# resmanbench; every benchmark process copies it, so both sides read the same table file.
export RESMAN_BENCH_DIR="$out/go-tmp"
rm -rf "${RESMAN_BENCH_DIR:?}"/* # DBs left by an interrupted run
export RESMAN_BENCH_SEED="$RESMAN_BENCH_DIR/seed"
RESMAN_BENCH_MAKE_SEED="$RESMAN_BENCH_SEED" "$out/go-bin/resmanbench.test"

# Rounds: each round runs every group of benchmarks on both sides back to back (resman first
# in odd rounds, grocksdb first in even ones), so that both sides of a comparison see the same
# load; each round adds one sample of every benchmark. Every benchmark but the parallel Get
# runs at GOMAXPROCS=2; the parallel Get at GOMAXPROCS 1 and 2.
groups=("Put|BatchWrite100" "Get|GetPlain|GetPinned" "ShortScan|ShortScanRefresh" "MultiGet100|BatchedMultiGet100"
        "Iterate10k|Iterate10kSlice" "GetParallel")
: >"$out/go-resman.txt"
: >"$out/go-grocksdb.txt"
run() { # run SIDE GROUP: GROUP's benchmarks of SIDE, appended to its raw output
    local bin="$out/go-bin/${1/grocksdb/grocks}bench.test" raw="$out/go-$1.txt" cpu=2
    [[ "$2" == GetParallel ]] && cpu=1,2
    "$bin" -test.run '^$' -test.bench "^Benchmark($2)\$" -test.benchmem \
        -test.benchtime "$benchtime" -test.cpu "$cpu" | tee -a "$raw" | grep '^Benchmark' |
        sed "s/^/$1 /"
}
for ((round = 1; round <= count; round++)); do
    echo "== round $round/$count"
    if ((round % 2)); then sides=(resman grocksdb); else sides=(grocksdb resman); fi
    for group in "${groups[@]}"; do
        for side in "${sides[@]}"; do
            run "$side" "$group"
        done
    done
done
ran=$(date +%s)
rm -rf "$RESMAN_BENCH_SEED"

"$benchstat" -ignore pkg resman="$out/go-resman.txt" grocksdb="$out/go-grocksdb.txt" >"$out/go-benchstat.txt"
cat "$out/go-benchstat.txt"
go run ./cmd/gojson -resman "$out/go-resman.txt" -grocksdb "$out/go-grocksdb.txt" -out "$out/go.json" \
    -go "$(go env GOVERSION)" \
    -grocksdb-version "$(go list -m -f '{{.Version}}' github.com/linxGnu/grocksdb)" \
    -rocksdb "$rocksdb_version"
echo "run.sh: build $((built - start)) s, benchmarks $((ran - built)) s, total $(($(date +%s) - start)) s; results in $out/go.json"
