#!/usr/bin/env bash
# YCSB workloads A-F (issue 17, item 3) through go-ycsb's core packages on three engines: the
# resman Go binding, github.com/linxGnu/grocksdb on the same RocksDB (the rocksdb crate's
# bundled build: its headers, librocksdb.a, liblz4.a and libzstd.a), and Pebble, the pure-Go
# LSM. See bench/ycsb/README.md.
#
# Builds the three binaries (resman and grocksdb cannot share one: libresman.a contains
# RocksDB), loads one DB per engine, then runs every workload at every thread count on a fresh
# copy of that engine's loaded DB, the engines back to back (their order rotated each round),
# and writes, in $CARGO_TARGET_DIR/bench:
#   ycsb.json         the loads and runs, for the report generator (bench/report.py)
#   ycsb-runs.jsonl   one line per load and per run, as the binaries wrote them
#   ycsb.log          the binaries' output
#
# Knobs: RESMAN_YCSB_RECORDS (recordcount, 100000), RESMAN_YCSB_OPS (operationcount,
# 200000), RESMAN_YCSB_OPS_E (operationcount of workload E, whose scans read 50 records on
# average: RESMAN_YCSB_OPS / 5), RESMAN_YCSB_ROUNDS (3), RESMAN_YCSB_THREADS ("1 2 8"),
# RESMAN_YCSB_WORKLOADS ("a b c d e f"), RESMAN_YCSB_ENGINES ("resman grocksdb pebble"),
# RESMAN_YCSB_CACHE_MB (block cache of every engine, 32: resman's default).
# RESMAN_YCSB_NO_CARGO=1 skips the cargo build and takes the libraries from
# RESMAN_YCSB_RESMAN_LIB (the directory of libresman.a), RESMAN_YCSB_RESMAN_INCLUDE (of
# resman.h; default include/), RESMAN_YCSB_ROCKSDB_LIB (of librocksdb.a), RESMAN_YCSB_LZ4_LIB,
# RESMAN_YCSB_ZSTD_LIB and RESMAN_YCSB_ROCKSDB_INCLUDE (RocksDB's include/ directory).
# About 8-9 minutes on two cores with the defaults, plus about 2 for the first build of the binaries.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
out="$CARGO_TARGET_DIR/bench"
records="${RESMAN_YCSB_RECORDS:-100000}"
ops="${RESMAN_YCSB_OPS:-200000}"
ops_e="${RESMAN_YCSB_OPS_E:-$((ops / 5))}"
rounds="${RESMAN_YCSB_ROUNDS:-3}"
read -ra threads <<<"${RESMAN_YCSB_THREADS:-1 2 8}"
read -ra workloads <<<"${RESMAN_YCSB_WORKLOADS:-a b c d e f}"
read -ra engines <<<"${RESMAN_YCSB_ENGINES:-resman grocksdb pebble}"
cache_mb="${RESMAN_YCSB_CACHE_MB:-32}"
bin="$out/ycsb-bin"
tmp="$out/ycsb-tmp"
runs="$out/ycsb-runs.jsonl"
log="$out/ycsb.log"
start=$(date +%s)
mkdir -p "$bin" "$tmp"

# libresman.a and resman.h; librocksdb.a, liblz4.a and libzstd.a of the bundled build, and the
# RocksDB headers: from cargo's messages (bench/bundled.sh, as bench/go/run.sh), or given.
# shellcheck source=../bundled.sh
source "$repo/bench/bundled.sh"
if [[ -n "${RESMAN_YCSB_NO_CARGO:-}" ]]; then
    resman_lib="${RESMAN_YCSB_RESMAN_LIB:?RESMAN_YCSB_NO_CARGO needs RESMAN_YCSB_RESMAN_LIB}"
    librocksdb_sys="${RESMAN_YCSB_ROCKSDB_LIB:?RESMAN_YCSB_NO_CARGO needs RESMAN_YCSB_ROCKSDB_LIB}"
    lz4_sys="${RESMAN_YCSB_LZ4_LIB:?RESMAN_YCSB_NO_CARGO needs RESMAN_YCSB_LZ4_LIB}"
    zstd_sys="${RESMAN_YCSB_ZSTD_LIB:?RESMAN_YCSB_NO_CARGO needs RESMAN_YCSB_ZSTD_LIB}"
    rocksdb_include="${RESMAN_YCSB_ROCKSDB_INCLUDE:?RESMAN_YCSB_NO_CARGO needs RESMAN_YCSB_ROCKSDB_INCLUDE}"
else
    bundled_build "$repo"
    resman_lib="$CARGO_TARGET_DIR/release"
fi
resman_include="${RESMAN_YCSB_RESMAN_INCLUDE:-$repo/include}"
for f in "${librocksdb_sys:-}/librocksdb.a" "${lz4_sys:-}/liblz4.a" "${zstd_sys:-}/libzstd.a" \
         "${rocksdb_include:-}/rocksdb/c.h" "$resman_lib/libresman.a" "$resman_include/resman.h"; do
    [[ -f "$f" ]] || { echo "run.sh: $f not found" >&2; exit 2; }
done
rocksdb_version="$(rocksdb_version_of "$rocksdb_include")"

cd "$repo/bench/ycsb"
# Removing the binaries first makes go relink them: it does not notice a rebuilt .a by itself.
rm -f "$bin"/ycsb-*
echo "== building ycsb-resman (libresman.a from $resman_lib)"
CGO_CFLAGS="-I$resman_include" CGO_LDFLAGS="-L$resman_lib" \
    go build -o "$bin/ycsb-resman" ./cmd/ycsb-resman
echo "== building ycsb-grocksdb (grocksdb against the bundled RocksDB $rocksdb_version)"
CGO_CFLAGS="-I$rocksdb_include" \
CGO_LDFLAGS="-L$librocksdb_sys -L$lz4_sys -L$zstd_sys -llz4 -lzstd -lm" \
    go build -tags grocksdb_clean_link -o "$bin/ycsb-grocksdb" ./cmd/ycsb-grocksdb
echo "== building ycsb-pebble"
go build -o "$bin/ycsb-pebble" ./cmd/ycsb-pebble
built=$(date +%s)

rm -rf "${tmp:?}"/* # DBs left by an interrupted run
: >"$runs"
: >"$log"
ycsb() { # ycsb ENGINE ARGS...: one load or run, its result appended to $runs
    local engine="$1"
    shift
    "$bin/ycsb-$engine" "$@" -records "$records" -cache-mb "$cache_mb" -out "$runs" 2>&1 |
        tee -a "$log" | sed '/^Using request distribution/d'
}

# One load per engine, with one thread: the seed every run of that engine starts from. The
# load is the same for every workload (YCSB's core workloads share it).
echo "== loading $records records"
for engine in "${engines[@]}"; do
    ycsb "$engine" load -dir "$tmp/seed-$engine" -threads 1
done
loaded=$(date +%s)

# Rounds: each workload at each thread count on every engine back to back, the engines in an
# order rotated each round; every run starts from a fresh copy of its engine's seed (D and E
# insert, A, B and F update).
for ((round = 1; round <= rounds; round++)); do
    echo "== round $round/$rounds"
    n=${#engines[@]}
    order=()
    for ((i = 0; i < n; i++)); do order+=("${engines[$(((i + round - 1) % n))]}"); done
    for w in "${workloads[@]}"; do
        wops=$ops
        [[ "$w" == e ]] && wops=$ops_e
        for t in "${threads[@]}"; do
            for engine in "${order[@]}"; do
                ycsb "$engine" run -seed "$tmp/seed-$engine" -dir "$tmp/run" -workload "$w" \
                    -threads "$t" -ops "$wops" -round "$round"
                rm -rf "${tmp:?}/run"
            done
        done
    done
done
ran=$(date +%s)
rm -rf "${tmp:?}"

mod_version() { go list -m -f '{{.Version}}' "$1"; }
RUNS="$runs" OUT="$out/ycsb.json" \
VERSIONS="$(printf '%s\n' "go=$(go env GOVERSION)" \
    "go-ycsb=$(mod_version github.com/pingcap/go-ycsb)" \
    "grocksdb=$(mod_version github.com/linxGnu/grocksdb)" \
    "pebble=$(mod_version github.com/cockroachdb/pebble/v2)" \
    "rocksdb=$rocksdb_version")" \
CONFIG="records=$records ops=$ops ops_e=$ops_e rounds=$rounds cache_mib=$cache_mb" \
LISTS="threads=${threads[*]};workloads=${workloads[*]};engines=${engines[*]}" \
SECONDS_="build=$((built - start)) load=$((loaded - built)) runs=$((ran - loaded)) total=$((ran - start))" \
    python3 -c 'import json, os
env = os.environ
rows = [json.loads(l) for l in open(env["RUNS"]) if l.strip()]
config = {k: int(v) for k, v in (kv.split("=") for kv in env["CONFIG"].split())}
loads = [r for r in rows if r["phase"] == "load"]
if loads:
    config["write_buffer_mib"] = loads[0]["write_buffer_bytes"] >> 20
config["cpus"] = os.cpu_count()
for kv in env["LISTS"].split(";"):
    k, v = kv.split("=")
    config[k] = [int(x) for x in v.split()] if k == "threads" else v.split()
doc = {
    "suite": "ycsb",
    "versions": dict(l.split("=", 1) for l in env["VERSIONS"].splitlines()),
    "config": config,
    "seconds": {k: int(v) for k, v in (kv.split("=") for kv in env["SECONDS_"].split())},
    "loads": loads,
    "runs": [r for r in rows if r["phase"] == "run"],
}
with open(env["OUT"], "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")'
echo "run.sh: build $((built - start)) s, load $((loaded - built)) s, runs $((ran - loaded)) s," \
    "total $(($(date +%s) - start)) s; results in $out/ycsb.json"
