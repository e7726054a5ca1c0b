#!/usr/bin/env python3
"""Writes BENCHMARKS.md and its charts from the suites' JSON (`make bench` runs it last).

Inputs, in $CARGO_TARGET_DIR/bench (or --bench-dir):
  rust.json   written by `cargo bench --bench data_path --bench lifecycle` (benches/)
  go.json     written by `bash bench/go/run.sh`; optional ("Go suite not run" without it)
  ycsb.json   written by `bash bench/ycsb/run.sh`; optional (the YCSB section says it was not
              run); its own schema: {"suite", "versions", "config", "seconds", "loads": [...],
              "runs": [{"engine", "workload", "threads", "round", "ops_per_sec",
              "cpu_us_per_op", "by_op": {OP: {"count", "p50_us", "p99_us", ...}}, ...}]}
With --started EPOCH (make bench passes the second it started), the wall time is stated.

rust.json and go.json follow one schema:
  {"suite", "versions": {...}, "rows": [{"group", "name", "unit", "higher_is_better",
   "resman", "baseline", "baseline_name", "goal", "goal_met", "note"}], "series": {...}}

Every figure in BENCHMARKS.md comes from those files or from the machine (/proc, the
toolchains' --version); nothing is typed here. The ratio is resman's speed relative to the
baseline: > 1 means resman is faster, whichever way the unit goes.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RESMAN = "#1f77b4"
BASELINE = "#ff7f0e"


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def first_line(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout else None


def machine():
    """CPU model, cores, memory and kernel, from /proc."""
    info = {}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        models = [
            l.split(":", 1)[1].strip() for l in cpuinfo.splitlines() if l.startswith("model name")
        ]
        info["CPU"] = models[0] if models else "unknown"
        info["logical CPUs"] = str(len(models) or os.cpu_count())
    except OSError:
        info["CPU"] = "unknown"
        info["logical CPUs"] = str(os.cpu_count())
    try:
        for l in Path("/proc/meminfo").read_text().splitlines():
            if l.startswith("MemTotal:"):
                info["memory"] = "%.1f GiB" % (int(l.split()[1]) / (1 << 20))
    except OSError:
        pass
    try:
        info["kernel"] = "Linux " + Path("/proc/sys/kernel/osrelease").read_text().strip()
    except OSError:
        pass
    idle = idle_percent()
    if idle is not None:
        info["CPU idle in the second before the report was written"] = "%.0f%%" % idle
    return info


def idle_percent():
    """The share of CPU time spent idle over one second, from /proc/stat (None if unreadable)."""
    def sample():
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("cpu "):
                v = [int(x) for x in line.split()[1:9]]
                return v[3] + v[4], sum(v)
        raise OSError("no cpu line")
    try:
        i0, t0 = sample()
        time.sleep(1)
        i1, t1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 100.0 * (i1 - i0) / (t1 - t0) if t1 > t0 else None


def fmt(v, unit):
    """A figure with its unit, to three significant digits or so."""
    if v is None:
        return ""
    if unit.endswith("/s"):
        for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(v) >= div:
                return "%.3g %s%s" % (v / div, suffix, unit)
        return "%.3g %s" % (v, unit)
    if unit == "x":
        return "%.2fx" % v
    if abs(v) >= 100:
        return "%.0f %s" % (v, unit)
    if abs(v) >= 10:
        return "%.1f %s" % (v, unit)
    return "%.2f %s" % (v, unit)


def ratio(row):
    """resman's speed relative to the baseline (> 1: resman faster), or None."""
    r, b = row.get("resman"), row.get("baseline")
    if r is None or b is None or r == 0 or b == 0:
        return None
    if row.get("unit") == "x":
        return r / b
    return r / b if row.get("higher_is_better", True) else b / r


def met(row):
    m = row.get("goal_met")
    if not row.get("goal"):
        return ""
    return "met" if m else "**not met**"


def cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def suite_table(doc):
    lines = [
        "| group | benchmark | resman | baseline | ratio | goal | met |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for row in doc.get("rows", []):
        unit = row.get("unit", "")
        b = row.get("baseline")
        bname = row.get("baseline_name") or ""
        q = ratio(row)
        lines.append(
            "| %s | %s | %s | %s | %s | %s | %s |"
            % (
                cell(row.get("group", "")),
                cell(row.get("name", "")),
                fmt(row.get("resman"), unit),
                (fmt(b, unit) + (" (%s)" % bname if bname else "")) if b is not None else "-",
                "%.2f" % q if q is not None else "-",
                cell(row.get("goal") or ""),
                met(row),
            )
        )
    return "\n".join(lines)


def notes(doc):
    out = []
    for row in doc.get("rows", []):
        if row.get("note"):
            out.append("- **%s**: %s" % (cell(row["name"]), cell(row["note"])))
    return "\n".join(out)


def goals(suites):
    lines = ["| suite | benchmark | goal | figure | met | why / notes |", "| --- | --- | --- | ---: | --- | --- |"]
    for name, doc in suites:
        for row in doc.get("rows", []):
            if not row.get("goal"):
                continue
            unit = row.get("unit", "")
            # A goal on the ratio ("resman/baseline >= 0.95") shows the ratio.
            if "resman/" in row.get("goal", "") and ratio(row) is not None:
                figure = "%.2f" % ratio(row)
            else:
                figure = fmt(row.get("resman"), unit)
            why = row.get("note") or ""
            if not row.get("goal_met") and not why:
                why = "no reason recorded by the suite"
            lines.append(
                "| %s | %s | %s | %s | %s | %s |"
                % (name, cell(row["name"]), cell(row["goal"]), figure, met(row), cell(why))
            )
    return "\n".join(lines)


def chart_close(suites, path):
    fig, ax = plt.subplots(figsize=(7, 4.2))
    drawn = False
    for name, doc in suites:
        pts = sorted(doc.get("series", {}).get("close_vs_memtable", []), key=lambda p: p["mib"])
        if not pts:
            continue
        base = doc_baseline_name(doc)
        xs = [p["mib"] for p in pts]
        style = "-" if name == "rust" else "--"
        label = "resman" if name == "rust" else "resman (%s)" % name
        if all("graceful_ms" in p for p in pts):
            ax.plot(xs, [p["graceful_ms"] for p in pts], style, marker="o", color=RESMAN,
                    label=label)
            drawn = True
        if all(p.get("baseline_ms") is not None for p in pts):
            ax.plot(xs, [p["baseline_ms"] for p in pts], style, marker="s", color=BASELINE,
                    label="%s, same steps" % (base or "baseline"))
    if not drawn:
        plt.close(fig)
        return False
    ax.set_xlabel("unflushed memtable (MiB)")
    ax.set_ylabel("graceful close time (ms)")
    ax.set_title("Graceful close time against unflushed memtable size")
    ax.set_xticks(sorted({p["mib"] for _, d in suites
                          for p in d.get("series", {}).get("close_vs_memtable", [])}))
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save(fig, path)
    return True


def doc_baseline_name(doc):
    for row in doc.get("rows", []):
        if row.get("baseline_name"):
            return row["baseline_name"]
    return None


def get_rows(doc):
    """The point-read throughput rows that have a baseline (ops/s; not multi-get)."""
    return [
        r for r in doc.get("rows", [])
        if "get" in r.get("name", "").lower() and "multi" not in r.get("name", "").lower()
        and r.get("unit") == "ops/s" and r.get("baseline") is not None
    ]


def chart_get(suites, path):
    panels = [(name, doc, get_rows(doc)) for name, doc in suites if get_rows(doc)]
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.5), squeeze=False)
    for ax, (name, doc, rows) in zip(axes[0], panels):
        xs = range(len(rows))
        w = 0.38
        base = doc_baseline_name(doc) or "baseline"
        ax.bar([x - w / 2 for x in xs], [r["resman"] / 1e3 for r in rows], w, color=RESMAN,
               label="resman" if name == "rust" else "resman (%s)" % name)
        ax.bar([x + w / 2 for x in xs], [r["baseline"] / 1e3 for r in rows], w, color=BASELINE,
               label=base)
        ax.set_xticks(list(xs))
        ax.set_xticklabels([r["name"] for r in rows], rotation=20, ha="right", fontsize=8)
        ax.set_ylabel("thousand gets per second")
        ax.set_title("%s suite: resman against %s" % (name.capitalize(), base))
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, path)
    return True


# YCSB (bench/ycsb): three engines, resman first, grocksdb its baseline.
YCSB_ENGINES = ("resman", "grocksdb", "pebble")
YCSB_COLORS = {"resman": RESMAN, "grocksdb": BASELINE, "pebble": "#2ca02c"}


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    if not n:
        return None
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def ycsb_cells(doc):
    """{(workload, threads): {engine: [runs]}}, in workload then thread order."""
    cells = {}
    for r in doc.get("runs", []):
        cells.setdefault((r["workload"], r["threads"]), {}).setdefault(r["engine"], []).append(r)
    return dict(sorted(cells.items()))


def ycsb_engines(doc):
    seen = {r["engine"] for r in doc.get("runs", [])}
    return [e for e in YCSB_ENGINES if e in seen] + sorted(seen - set(YCSB_ENGINES))


YCSB_OPS = ("READ", "UPDATE", "INSERT", "SCAN", "READ_MODIFY_WRITE")


def ycsb_main_ops(runs, n=2):
    """A cell's n most frequent operation types (not TOTAL, not the errors), in YCSB_OPS order."""
    counts = {}
    for r in runs:
        for op, st in r.get("by_op", {}).items():
            if op != "TOTAL" and not op.endswith("_ERROR"):
                counts[op] = counts.get(op, 0) + st.get("count", 0)
    top = sorted(counts, key=lambda op: -counts[op])[:n]
    rank = {op: i for i, op in enumerate(YCSB_OPS)}
    return sorted(top, key=lambda op: (rank.get(op, len(rank)), op))


def ycsb_round_ratios(runs_a, runs_b, key="ops_per_sec"):
    """a/b per round (the rounds both engines ran)."""
    b = {r["round"]: r[key] for r in runs_b}
    return [r[key] / b[r["round"]] for r in runs_a if b.get(r["round"])]


def kops(v):
    """Operations per second in thousands, to three digits or so ("54.9k")."""
    return "-" if v is None else "%.3gk" % (v / 1e3)


def ycsb_table(doc):
    engines = ycsb_engines(doc)
    has_pair = "resman" in engines and "grocksdb" in engines
    head = ["workload", "threads"] + ["%s ops/s" % e for e in engines]
    if has_pair:
        head += ["resman/grocksdb (rounds' range)", "CPU µs/op (%s)" % " / ".join(engines),
                 "resman/grocksdb CPU"]
    else:
        head += ["CPU µs/op (%s)" % " / ".join(engines)]
    head += ["p50 / p99 µs (%s)" % " · ".join(engines)]
    lines = ["| " + " | ".join(head) + " |",
             "| " + " | ".join(["---", "---:"] + ["---:"] * (len(head) - 3) + ["---"]) + " |"]
    for (w, t), by in ycsb_cells(doc).items():
        ops = {e: median([r["ops_per_sec"] for r in by.get(e, [])]) for e in engines}
        cpu = {e: median([r["cpu_us_per_op"] for r in by.get(e, [])]) for e in engines}
        row = [w.upper(), str(t)] + [kops(ops[e]) for e in engines]
        cpu_cell = " / ".join("%.1f" % cpu[e] if cpu[e] is not None else "-" for e in engines)
        if has_pair:
            q = (ops["resman"] / ops["grocksdb"]) if ops["resman"] and ops["grocksdb"] else None
            rr = ycsb_round_ratios(by.get("resman", []), by.get("grocksdb", []))
            rng = " (%.2f-%.2f)" % (min(rr), max(rr)) if len(rr) > 1 else ""
            row.append("%.2f%s" % (q, rng) if q else "-")
            row.append(cpu_cell)
            # CPU per op: grocksdb's over resman's, so that above 1 means resman is cheaper.
            qc = (cpu["grocksdb"] / cpu["resman"]) if cpu["resman"] and cpu["grocksdb"] else None
            row.append("%.2f" % qc if qc else "-")
        else:
            row.append(cpu_cell)
        lat = []
        for op in ycsb_main_ops([r for e in engines for r in by.get(e, [])]):
            per = []
            for e in engines:
                st = [r["by_op"][op] for r in by.get(e, []) if op in r.get("by_op", {})]
                p50, p99 = median([x["p50_us"] for x in st]), median([x["p99_us"] for x in st])
                per.append("%.0f/%.0f" % (p50, p99) if st else "-")
            lat.append("%s %s" % (op, " · ".join(per)))
        row.append("; ".join(lat))
        lines.append("| " + " | ".join(cell(x) for x in row) + " |")
    return "\n".join(lines)


def go_row(go, name):
    """The Go suite's row called `name`, or None."""
    for r in (go or {}).get("rows", []):
        if r.get("name") == name:
            return r
    return None


def ycsb_goal(doc, go):
    """The goal (resman/grocksdb >= 1.0 on every cell) and, for each miss, where the time goes,
    from the figures of this run and of the Go suite's rows."""
    met, noise, missed = [], [], []
    for (w, t), by in ycsb_cells(doc).items():
        r, g = by.get("resman", []), by.get("grocksdb", [])
        if not r or not g:
            continue
        q = median([x["ops_per_sec"] for x in r]) / median([x["ops_per_sec"] for x in g])
        rr = ycsb_round_ratios(r, g) or [q]
        label = "%s/%d %.2f (rounds %.2f-%.2f)" % (w.upper(), t, q, min(rr), max(rr))
        if q >= 1.0:
            met.append(label)
        elif max(rr) >= 1.0:
            noise.append(label)
        else:
            missed.append((w, t, label, ycsb_main_ops(r + g)))
    total = len(met) + len(noise) + len(missed)
    if not total:
        return []
    out = ["**Goal: resman/grocksdb >= 1.0 on every workload.** Met in %d of %d cells; below "
           "1.0 but with a round at or above it (within the run-to-run spread) in %d%s; missed "
           "in %d%s." % (len(met), total, len(noise),
                         ": " + ", ".join(noise) if noise else "", len(missed),
                         ": " + ", ".join(m[2] for m in missed) if missed else "")]
    scans = [m for m in missed if "SCAN" in m[3]]
    if scans:
        fresh = go_row(go, "short scan (new iterator, 1-10 entries)")
        reuse = go_row(go, "short scan (one iterator, Refresh)")
        why = ("Where the time goes in %s: every SCAN creates an iterator, reads and closes it, "
               "and a resman iterator is a managed resource (registered with a handle, a name, "
               "a graph node and a pin on its column family; closed through the close path)."
               % ", ".join("%s/%d" % (m[0].upper(), m[1]) for m in scans))
        if fresh and fresh.get("resman") and fresh.get("baseline"):
            why += (" The Go suite measures that pattern alone (a new iterator, a seek, 1-10 "
                    "entries, the close): %.0f ns per scan on resman, %.0f ns on grocksdb."
                    % (1e9 / fresh["resman"], 1e9 / fresh["baseline"]))
        if reuse and reuse.get("resman") and reuse.get("baseline"):
            why += (" With one iterator refreshed for every scan (`Iterator.Refresh`, which a "
                    "service can use where YCSB's binding creates one per scan) it is %.0f ns "
                    "on resman and %.0f ns on grocksdb." % (1e9 / reuse["resman"],
                                                          1e9 / reuse["baseline"]))
        out.append(why)
    rest = [m for m in missed if "SCAN" not in m[3]]
    if rest:
        out.append("Where the time goes in %s: the same RocksDB calls on both sides; resman adds "
                   "a handle lookup and a lease per call and, for `Get`, a Go allocation of the "
                   "value (see the Go suite's Get rows); the CPU per op column shows how much of "
                   "the gap is work rather than scheduling noise."
                   % ", ".join("%s/%d" % (m[0].upper(), m[1]) for m in rest))
    return out


def ycsb_section(doc, chart, go=None):
    cfg = doc.get("config", {})
    vers = doc.get("versions", {})
    engines = ycsb_engines(doc)
    out = ["## YCSB (`bench/ycsb`)\n"]
    secs = doc.get("seconds", {})
    out.append(
        "YCSB's core workloads A-F run by go-ycsb %s's core packages (`bench/ycsb/README.md`) "
        "on %s: %s records of 10 fields × 100 bytes, %s operations per run (workload E: %s), "
        "%s round(s), %s thread(s), a %s MiB block cache and a %s MiB memtable on every "
        "engine. resman and grocksdb (%s) both run the bundled RocksDB %s; Pebble is %s. Every run "
        "starts from a copy of its engine's loaded DB. The figures are medians over the "
        "rounds; the ratio is resman's throughput over grocksdb's (above 1: resman is faster), "
        "with the range of the per-round ratios; CPU µs/op is the process's CPU time (every "
        "thread) per operation, less sensitive to other load on the machine than ops/s. "
        "Latencies are go-ycsb's histograms (1 µs resolution) for the cell's two most frequent "
        "operation types; an UPDATE is a read and a write of the record. The suite ran %.1f "
        "minutes (%s s building, %s s loading, %s s running)."
        % (vers.get("go-ycsb", "?"), ", ".join(engines), cfg.get("records", "?"),
           cfg.get("ops", "?"), cfg.get("ops_e", "?"), cfg.get("rounds", "?"),
           ", ".join(str(t) for t in cfg.get("threads", [])), cfg.get("cache_mib", "?"),
           cfg.get("write_buffer_mib", "?"), vers.get("grocksdb", "?"),
           vers.get("rocksdb", "?"), vers.get("pebble", "?"),
           secs.get("total", 0) / 60, secs.get("build", "?"), secs.get("load", "?"),
           secs.get("runs", "?"))
    )
    out.append("")
    out.append(ycsb_table(doc))
    out.append("")
    for para in ycsb_goal(doc, go):
        out.append(para)
        out.append("")
    loads = doc.get("loads", [])
    if loads:
        out.append("The loads (one thread, then flushed and closed: the DB every run copies):\n")
        out.append("| engine | inserts/s | CPU µs/op | DB size | table files |")
        out.append("| --- | ---: | ---: | ---: | ---: |")
        for l in loads:
            out.append("| %s | %s | %.1f | %.1f MiB | %d |" % (
                l["engine"], kops(l["ops_per_sec"]),
                l["cpu_us_per_op"], l.get("dir_bytes", 0) / (1 << 20), l.get("table_files", 0)))
        out.append("")
    errors = {}
    for r in doc.get("runs", []):
        for op, st in r.get("by_op", {}).items():
            if op.endswith("_ERROR"):
                key = (r["engine"], op)
                errors[key] = errors.get(key, 0) + st.get("count", 0)
    if errors:
        out.append(
            "Failed operations over all runs, go-ycsb's `*_ERROR` counts (a read of a missing "
            "record fails; without inserts, go-ycsb's zipfian draws keys up to one past the "
            "last loaded record, as YCSB's does): %s.\n"
            % ", ".join("%s %s %d" % (e, op, n) for (e, op), n in sorted(errors.items())))
    if chart:
        out.append("![YCSB throughput per workload and thread count](%s)\n" % chart)
    return out


def chart_ycsb(doc, path):
    cells = ycsb_cells(doc)
    if not cells:
        return False
    engines = ycsb_engines(doc)
    workloads = sorted({w for w, _ in cells})
    cols = min(3, len(workloads))
    rows = (len(workloads) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    w = 0.8 / len(engines)
    for ax, wl in zip(axes.flat, workloads):
        threads = sorted(t for ww, t in cells if ww == wl)
        for i, e in enumerate(engines):
            xs, ys, lo, hi = [], [], [], []
            for j, t in enumerate(threads):
                v = [r["ops_per_sec"] / 1e3 for r in cells[(wl, t)].get(e, [])]
                if not v:
                    continue
                m = median(v)
                xs.append(j + (i - (len(engines) - 1) / 2) * w)
                ys.append(m)
                lo.append(m - min(v))
                hi.append(max(v) - m)
            ax.bar(xs, ys, w, yerr=[lo, hi], capsize=2, color=YCSB_COLORS.get(e), label=e,
                   error_kw={"elinewidth": 0.8, "alpha": 0.7})
        ax.set_xticks(range(len(threads)))
        ax.set_xticklabels([str(t) for t in threads])
        ax.set_xlabel("threads")
        ax.set_title("workload %s" % wl.upper())
        ax.grid(True, axis="y", alpha=0.3)
    for ax in axes.flat[len(workloads):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("thousand ops per second")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle("YCSB: median throughput over the rounds (bars: the rounds' range)")
    fig.tight_layout()
    save(fig, path)
    return True


def save(fig, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    # No date and a fixed hash salt: the same figures give the same file.
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)


def main():
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench-dir", type=Path, default=target / "bench")
    ap.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md")
    ap.add_argument("--charts", type=Path, default=REPO / "bench" / "charts")
    ap.add_argument("--started", type=int, help="epoch second `make bench` started")
    args = ap.parse_args()
    plt.rcParams["svg.hashsalt"] = "resman"

    rust = read_json(args.bench_dir / "rust.json")
    go = read_json(args.bench_dir / "go.json")
    ycsb = read_json(args.bench_dir / "ycsb.json")
    if rust is None:
        sys.exit("%s is missing: run `make bench` (or cargo bench) first" % (args.bench_dir / "rust.json"))
    suites = [("rust", rust)] + ([("go", go)] if go else [])

    close_svg = args.charts / "close_vs_memtable.svg"
    get_svg = args.charts / "get_throughput.svg"
    has_close = chart_close(suites, close_svg)
    has_get = chart_get(suites, get_svg)
    ycsb_svg = args.charts / "ycsb.svg"
    has_ycsb = ycsb is not None and chart_ycsb(ycsb, ycsb_svg)

    out = []
    out.append("# resman benchmarks\n")
    out.append(
        "Generated by `make bench` (`bench/report.py`) from the suites' JSON; do not edit: "
        "every figure below comes from a measurement of the last run. The ratio is resman's "
        "speed relative to the baseline (above 1: resman is faster), whichever way the unit "
        "goes.\n"
    )
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    written = "Written %s." % now
    if args.started:
        secs = datetime.datetime.now().timestamp() - args.started
        written += (
            " `make bench` ran for %.1f minutes up to this report (the build, both suites and "
            "their set-up included)." % (secs / 60)
        )
    out.append(written)
    runs = {k.split("/", 1)[1]: v for k, v in rust.get("series", {}).items()
            if k.startswith("run/") and isinstance(v, dict)}
    if any(v.get("quick") for v in runs.values()):
        out.append(
            "\n**Quick mode (`RESMAN_BENCH_QUICK=1`): the Rust figures below are from shortened "
            "measurements, for checking the harness only.**"
        )
    out.append("\n")

    out.append("## How it is measured\n")
    out.append(
        "- **Rust suite** (`benches/`, `cargo bench --bench data_path --bench lifecycle`). "
        "resman is called through its C ABI (`rm_get` into a caller buffer with an `rm_error`, "
        "`rm_put`, `rm_batch_*`, `rm_iter_*`), as C and Go callers call it; the baseline is "
        "rust-rocksdb called directly. Both open byte-identical copies of one seed DB with the "
        "same options (resman's defaults), use default read and write options (WAL on, no "
        "sync) built once, and have warm block caches. The data path is measured with "
        "criterion, the two sides in interleaved rounds after both DBs have finished their "
        "background work, keeping each side's best round. Latency percentiles, cleanup, close "
        "and scaling are timed call by call with `Instant` (`benches/lifecycle.rs`)."
    )
    out.append(
        "- **Go suite** (`bench/go`, `bash bench/go/run.sh`): the Go binding against grocksdb "
        "on the same RocksDB build; see `bench/go/README.md`."
    )
    out.append(
        "- **YCSB** (`bench/ycsb`, `bash bench/ycsb/run.sh`): YCSB's workloads A-F through "
        "go-ycsb on the Go binding, grocksdb (the same RocksDB) and Pebble; see "
        "`bench/ycsb/README.md`."
    )
    out.append(
        "- Each row's note says what exactly is compared and, for a goal that is missed, where "
        "the time goes. `RESMAN_BENCH_QUICK=1` shortens the Rust suite for checking the "
        "harness; its figures are not meant to be published.\n"
    )

    out.append("## Machine\n")
    out.append("| | |\n| --- | --- |")
    for k, v in machine().items():
        out.append("| %s | %s |" % (k, cell(v)))
    out.append("")

    if runs:
        out.append("")
        out.append("Rust suite runs (CPU idle: the share of both CPUs' time spent idle, from "
                   "`/proc/stat`, in the second before the part started and the second after "
                   "it ended; well below 100%, something else was running):\n")
        out.append("| part | seconds | CPU idle before | after |")
        out.append("| --- | ---: | ---: | ---: |")
        pct = lambda x: "" if x is None else "%.0f%%" % x
        for part, v in sorted(runs.items()):
            out.append("| %s | %.0f | %s | %s |" % (
                part, v.get("seconds", 0), pct(v.get("idle_before")), pct(v.get("idle_after"))))
    out.append("")

    out.append("## Versions\n")
    out.append("| | |\n| --- | --- |")
    rustc = first_line(["rustc", "--version"])
    gov = first_line(["go", "version"])
    if rustc:
        out.append("| rustc | %s |" % rustc)
    if gov:
        out.append("| go | %s |" % gov)
    for name, doc in suites + ([("ycsb", ycsb)] if ycsb else []):
        for k, v in (doc.get("versions") or {}).items():
            out.append("| %s (%s suite) | %s |" % (k, name, cell(v)))
    out.append("")

    out.append("## Goals\n")
    for name, doc in suites:
        with_goal = [r for r in doc.get("rows", []) if r.get("goal")]
        if with_goal:
            out.append("- %s suite: %d of %d goals met." % (
                name.capitalize(), sum(1 for r in with_goal if r.get("goal_met")), len(with_goal)))
    out.append("")
    out.append(goals(suites))
    out.append("")
    if go is None:
        out.append(
            "The Go suite was not run (`%s` is absent): its goals are not measured here.\n"
            % (args.bench_dir / "go.json")
        )

    out.append("## Charts\n")
    if has_close:
        out.append("![graceful close time against unflushed memtable size](%s)\n"
                   % os.path.relpath(close_svg, args.out.parent))
    if has_get:
        out.append("![get throughput, resman against the direct bindings](%s)\n"
                   % os.path.relpath(get_svg, args.out.parent))

    for name, doc in suites:
        title = {"rust": "Rust suite (criterion and `benches/lifecycle.rs`)",
                 "go": "Go suite (`bench/go`)"}.get(name, name)
        out.append("## %s\n" % title)
        out.append(suite_table(doc))
        out.append("")
        n = notes(doc)
        if n:
            out.append("What each row measures:\n")
            out.append(n)
            out.append("")
    if go is None:
        out.append("## Go suite\n")
        out.append("Go suite not run: `bash bench/go/run.sh` wrote no `go.json`.\n")
    if ycsb is not None:
        out.extend(ycsb_section(ycsb, os.path.relpath(ycsb_svg, args.out.parent)
                                if has_ycsb else None, go))
    else:
        out.append("## YCSB (`bench/ycsb`)\n")
        out.append("YCSB not run: `bash bench/ycsb/run.sh` wrote no `ycsb.json`.\n")

    args.out.write_text("\n".join(out).rstrip() + "\n")
    print("wrote %s, %s, %s, %s" % (args.out, close_svg if has_close else "-",
                                    get_svg if has_get else "-", ycsb_svg if has_ycsb else "-"))


if __name__ == "__main__":
    main()
