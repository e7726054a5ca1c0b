// Command gojson turns the raw `go test -bench` outputs of resmanbench and grocksbench into
// go.json, the Go suite's part of BENCHMARKS.md (bench/report.py reads it). run.sh calls it.
//
// Each figure is the median of the runs (as benchstat's). A row compares resman with
// grocksdb's plain idiom for the operation (the baseline: Get + Free, MultiGet, Key/Value);
// its note gives the APIs, the per-op figures, the p-value of a two-sided Mann-Whitney U test
// (what benchstat uses), the spread of the per-round ratios (run.sh runs the two sides of a
// benchmark back to back in each round), and resman's ratio to grocksdb's other variants
// (GetPinned, BatchedMultiGetCF, KeySlice/ValueSlice).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
)

// sample is one benchmark line.
type sample struct{ ns, cpu, bytes, allocs float64 }

// results are the samples per benchmark name and GOMAXPROCS.
type results map[string]map[int][]sample

func parse(path string) (results, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := results{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		name, procs := fields[0], 1
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if n, err := strconv.Atoi(name[i+1:]); err == nil {
				name, procs = name[:i], n
			}
		}
		var s sample
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			switch fields[i+1] {
			case "ns/op":
				s.ns = v
			case "cpu-ns/op":
				s.cpu = v
			case "B/op":
				s.bytes = v
			case "allocs/op":
				s.allocs = v
			}
		}
		if s.ns == 0 {
			continue
		}
		if r[name] == nil {
			r[name] = map[int][]sample{}
		}
		r[name][procs] = append(r[name][procs], s)
	}
	return r, sc.Err()
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func field(ss []sample, f func(sample) float64) []float64 {
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i] = f(s)
	}
	return out
}

// mannWhitneyP is the exact two-sided p-value of the Mann-Whitney U test (ties get mid-ranks
// and the tails are taken conservatively).
func mannWhitneyP(a, b []float64) float64 {
	n1, n2 := len(a), len(b)
	if n1 == 0 || n2 == 0 {
		return 1
	}
	type obs struct {
		v     float64
		first bool
	}
	all := make([]obs, 0, n1+n2)
	for _, v := range a {
		all = append(all, obs{v, true})
	}
	for _, v := range b {
		all = append(all, obs{v, false})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v < all[j].v })
	r1 := 0.0
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		rank := float64(i+j+1) / 2 // mid-rank of positions i..j-1 (1-based)
		for k := i; k < j; k++ {
			if all[k].first {
				r1 += rank
			}
		}
		i = j
	}
	u := r1 - float64(n1*(n1+1))/2
	// count(m, n, u): the orderings of m and n observations whose statistic is u.
	maxU := n1 * n2
	memo := map[[3]int]float64{}
	var count func(m, n, u int) float64
	count = func(m, n, u int) float64 {
		if u < 0 || u > m*n {
			return 0
		}
		if m == 0 || n == 0 {
			if u == 0 {
				return 1
			}
			return 0
		}
		k := [3]int{m, n, u}
		if c, ok := memo[k]; ok {
			return c
		}
		c := count(m-1, n, u-n) + count(m, n-1, u)
		memo[k] = c
		return c
	}
	total, lo, hi := 0.0, 0.0, 0.0
	for x := 0; x <= maxU; x++ {
		c := count(n1, n2, x)
		total += c
		if float64(x) <= math.Ceil(u) {
			lo += c
		}
		if float64(x) >= math.Floor(u) {
			hi += c
		}
	}
	return math.Min(1, 2*math.Min(lo, hi)/total)
}

// pairedRange is the range of the per-round speed ratios (resman/grocksdb): the i-th samples
// of the two sides ran back to back (run.sh), so each ratio saw the same load.
func pairedRange(resman, grocksdb []float64) (lo, hi float64, ok bool) {
	if len(resman) != len(grocksdb) || len(resman) == 0 {
		return 0, 0, false
	}
	lo, hi = math.Inf(1), math.Inf(-1)
	for i := range resman {
		q := grocksdb[i] / resman[i]
		lo, hi = math.Min(lo, q), math.Max(hi, q)
	}
	return lo, hi, true
}

// variant is one way of doing an operation in a suite.
type variant struct{ bench, api string }

type spec struct {
	group, name, unit string
	perOp             float64 // keys (or entries) per op: the figures are per second of those
	procs             int
	goal              float64
	resman            variant
	grocksdb          []variant // the first is the baseline; the others are compared in the note
	note              string
	why               string // where the time goes, added to the note when the goal is missed
	// own, when set: resman's other API for the same operation, which this row's must stay
	// within ownGoal of (time ratio), said in the note
	own     *variant
	ownGoal float64
}

type row struct {
	Group          string  `json:"group"`
	Name           string  `json:"name"`
	Unit           string  `json:"unit"`
	HigherIsBetter bool    `json:"higher_is_better"`
	Resman         float64 `json:"resman"`
	Baseline       float64 `json:"baseline"`
	BaselineName   string  `json:"baseline_name"`
	Goal           string  `json:"goal"`
	GoalMet        bool    `json:"goal_met"`
	Ratio          float64 `json:"ratio"`
	Note           string  `json:"note,omitempty"`
}

type output struct {
	Suite    string                                   `json:"suite"`
	Versions map[string]string                        `json:"versions"`
	Rows     []row                                    `json:"rows"`
	Series   map[string]map[string]map[string]float64 `json:"series"`
}

var specs = []spec{
	{group: "data path", name: "put", unit: "ops/s", perOp: 1, procs: 2, goal: 1.0,
		resman:   variant{"BenchmarkPut", "ColumnFamily.Put"},
		grocksdb: []variant{{"BenchmarkPut", "DB.Put"}},
		note:     "16-byte key, 100-byte value, WAL on, no sync, into an empty DB",
		why:      whyWrite},
	{group: "data path", name: "get (hit)", unit: "ops/s", perOp: 1, procs: 2, goal: 1.2,
		resman: variant{"BenchmarkGet/hit", "GetAppend into a reused buffer"},
		grocksdb: []variant{{"BenchmarkGet/hit", "Get + Slice.Free"},
			{"BenchmarkGetPinned/hit", "GetPinned + PinnableSlice.Destroy"}},
		note: "100k preloaded keys in one flushed table, block cache warm",
		why:  whyGet},
	{group: "data path", name: "get (hit), plain Get", unit: "ops/s", perOp: 1, procs: 2, goal: 1.0,
		resman: variant{"BenchmarkGetPlain/hit", "Get (a new slice per value)"},
		grocksdb: []variant{{"BenchmarkGet/hit", "Get + Slice.Free"},
			{"BenchmarkGetPinned/hit", "GetPinned + PinnableSlice.Destroy"}},
		note: "the call a service writes first",
		why:  whyGetPlain,
		own:  &variant{"BenchmarkGet/hit", "GetAppend into a reused buffer"}, ownGoal: 1.05},
	{group: "data path", name: "get (miss)", unit: "ops/s", perOp: 1, procs: 2, goal: 1.2,
		resman: variant{"BenchmarkGet/miss", "GetAppend, errors.Is(err, ErrNotFound)"},
		grocksdb: []variant{{"BenchmarkGet/miss", "Get + Slice.Exists + Free"},
			{"BenchmarkGetPinned/miss", "GetPinned + Exists + Destroy"}},
		note: "absent keys between preloaded ones (no bloom filter on either side)",
		why:  whyGet},
	{group: "data path", name: "batch write (100 puts)", unit: "keys/s", perOp: 100, procs: 2, goal: 1.0,
		resman:   variant{"BenchmarkBatchWrite100", "Batch.Put x100 + Batch.Write (reused)"},
		grocksdb: []variant{{"BenchmarkBatchWrite100", "WriteBatch.Put x100 + DB.Write + Clear (reused)"}},
		why: "101 cgo calls on both sides; each rm_batch_put also resolves and leases two handles " +
			"(batch and column family) and locks the batch, tens of ns (the Rust suite's batch row, " +
			"through the same C calls, is at parity with rust-rocksdb); " + whyWrite},
	{group: "data path", name: "multi-get (100 keys)", unit: "keys/s", perOp: 100, procs: 2, goal: 1.0,
		resman: variant{"BenchmarkMultiGet100", "ColumnFamily.MultiGet"},
		grocksdb: []variant{{"BenchmarkMultiGet100", "MultiGet + Slices.Destroy"},
			{"BenchmarkBatchedMultiGet100", "BatchedMultiGetCF + PinnableSlices.Destroy"}},
		why: "resman makes one cgo call for the 100 keys, their values packed into one buffer (a " +
			"second call only for values that did not fit), grocksdb one call and then a Go slice " +
			"and a free per value; both spend most of the op in RocksDB's MultiGet"},
	{group: "data path", name: "iterate (10k entries)", unit: "entries/s", perOp: 10000, procs: 2, goal: 1.0,
		resman: variant{"BenchmarkIterate10k", "NewIterator, Seek, Next/Key/Value x10k, Close"},
		grocksdb: []variant{{"BenchmarkIterate10k", "NewIterator, Seek, Valid/Next/Key/Value x10k, Close"},
			{"BenchmarkIterate10kSlice", "as Iterate10k with KeySlice/ValueSlice"}},
		note: "iterator creation and close included in each op; resman's Iterator reads ahead (rm_iter_read_next, up to 128 entries per cgo call), grocksdb's makes cgo calls per step (Valid, Next, Key, Value)",
		why:  "resman copies each key and value once, into the batch buffer (one cgo call per batch), where grocksdb's Key/Value copy each into a new Go slice after their own cgo calls and KeySlice/ValueSlice copy nothing; RocksDB's own Next and the iterator's creation and close are common to both"},
	{group: "data path", name: "short scan (new iterator, 1-10 entries)", unit: "scans/s", perOp: 1, procs: 2, goal: 1.0,
		resman:   variant{"BenchmarkShortScan", "NewIterator, Seek, 1-10 x Next/Key/Value, Close"},
		grocksdb: []variant{{"BenchmarkShortScan", "NewIterator, Seek, 1-10 x Valid/Next/Key/Value, Close"}},
		note:     "YCSB E's pattern: a fresh iterator per scan, creation and close included",
		why:      whyShortScan},
	{group: "data path", name: "short scan (one iterator, Refresh)", unit: "scans/s", perOp: 1, procs: 2, goal: 1.0,
		resman:   variant{"BenchmarkShortScanRefresh", "Refresh, Seek, 1-10 x Next/Key/Value"},
		grocksdb: []variant{{"BenchmarkShortScanRefresh", "Refresh, Seek, 1-10 x Valid/Next/Key/Value"}},
		note:     "one iterator serves every scan (Iterator::Refresh on both sides)",
		why:      "per scan both sides make a Refresh and a Seek call; resman then reads ahead in batches that double from one entry, grocksdb makes four cgo calls per entry"},
	{group: "concurrency", name: "parallel get (GOMAXPROCS=2)", unit: "ops/s", perOp: 1, procs: 2, goal: 1.2,
		resman:   variant{"BenchmarkGetParallel", "GetAppend, one buffer per goroutine"},
		grocksdb: []variant{{"BenchmarkGetParallel", "Get + Slice.Free"}},
		note:     "b.RunParallel over the read DB, -cpu 2",
		why:      whyGet},
}

// The reasons a goal can be missed, from what each side does per op.
const (
	whyGetPlain = "Get returns a Go slice of its own: one Go allocation of the value's size per " +
		"hit, where grocksdb's Get returns C memory (malloc'd by RocksDB) and needs a Free; the " +
		"lookup itself is one rm_get_alloc call into a stack buffer for small values"
	whyShortScan = "a resman iterator is a managed resource: creating one registers it (a handle, a " +
		"name, a graph node, a pin on its column family) and closing it runs the close path " +
		"(seal, native close, metrics, history), a few microseconds that grocksdb does not " +
		"spend; reuse one iterator with Refresh (next row) for the short-scan pattern"
	whyWrite = "both sides make one cgo call per write into the same RocksDB write path (WAL " +
		"append, memtable insert), which is most of the op and varies from round to round " +
		"(a memtable flush lands in one round or another), so the rounds' spread is wider than " +
		"what resman adds (handle resolution, a lease, the panic boundary)"
	whyGet = "resman makes one cgo call and no allocation per Get; grocksdb makes two cgo calls " +
		"(Get, then Slice.Free) and 3 allocations. Both spend most of the op in RocksDB's own " +
		"Get (block cache lookup, index and block search), so 1.2x would need grocksdb's extra " +
		"call and allocations to cost a fifth of resman's whole op"
)

// stat is a variant's figures.
type stat struct {
	variant
	ns, cpu, bytes, allocs float64
	samples, cpuSamples    []float64
}

func lookup(r results, v variant, procs int) (stat, bool) {
	ss := r[v.bench][procs]
	if len(ss) == 0 {
		return stat{}, false
	}
	ns := field(ss, func(s sample) float64 { return s.ns })
	cpu := field(ss, func(s sample) float64 { return s.cpu })
	return stat{v, median(ns), median(cpu), median(field(ss, func(s sample) float64 { return s.bytes })),
		median(field(ss, func(s sample) float64 { return s.allocs })), ns, cpu}, true
}

func (s stat) String() string {
	return fmt.Sprintf("%s: %.0f ns/op, %.0f B/op, %.0f allocs/op", s.api, s.ns, s.bytes, s.allocs)
}

func main() {
	resmanPath := flag.String("resman", "", "raw go test -bench output of resmanbench")
	grocksPath := flag.String("grocksdb", "", "raw go test -bench output of grocksbench")
	out := flag.String("out", "go.json", "where to write the JSON")
	goVersion := flag.String("go", "", "Go version")
	grocksVersion := flag.String("grocksdb-version", "", "grocksdb version")
	rocksVersion := flag.String("rocksdb", "", "RocksDB version")
	flag.Parse()

	rr, err := parse(*resmanPath)
	if err != nil {
		fail(err)
	}
	gr, err := parse(*grocksPath)
	if err != nil {
		fail(err)
	}
	doc := output{
		Suite:    "go",
		Versions: map[string]string{"go": *goVersion, "grocksdb": *grocksVersion, "rocksdb": *rocksVersion},
		Series:   map[string]map[string]map[string]float64{},
	}
	missing := false
	for _, sp := range specs {
		rs, ok := lookup(rr, sp.resman, sp.procs)
		if !ok {
			fmt.Fprintf(os.Stderr, "gojson: no resman result for %s (procs %d)\n", sp.resman.bench, sp.procs)
			missing = true
			continue
		}
		var base stat
		var others []stat
		for i, v := range sp.grocksdb {
			gs, ok := lookup(gr, v, sp.procs)
			if !ok {
				fmt.Fprintf(os.Stderr, "gojson: no grocksdb result for %s (procs %d)\n", v.bench, sp.procs)
				missing = true
				continue
			}
			if i == 0 {
				base = gs
			} else {
				others = append(others, gs)
			}
		}
		if base.samples == nil {
			continue
		}
		rv, bv := sp.perOp*1e9/rs.ns, sp.perOp*1e9/base.ns
		ratio := rv / bv
		p := mannWhitneyP(rs.samples, base.samples)
		sig := "significant"
		if p >= 0.05 {
			sig = "not significant"
		}
		notes := []string{fmt.Sprintf("resman %s", rs), fmt.Sprintf("grocksdb %s", base)}
		notes = append(notes, fmt.Sprintf("p=%.3f, n=%d+%d (Mann-Whitney U; difference %s at 0.05)",
			p, len(rs.samples), len(base.samples), sig))
		if lo, hi, ok := pairedRange(rs.samples, base.samples); ok {
			notes = append(notes, fmt.Sprintf("per-round ratios %.2f to %.2f", lo, hi))
		}
		if rs.cpu > 0 && base.cpu > 0 {
			notes = append(notes, fmt.Sprintf("CPU time per op (process, all threads): resman %.0f ns, grocksdb %.0f ns, ratio %.2f (p=%.3f)",
				rs.cpu, base.cpu, base.cpu/rs.cpu, mannWhitneyP(rs.cpuSamples, base.cpuSamples)))
		}
		for _, o := range others {
			notes = append(notes, fmt.Sprintf("grocksdb variant %s (resman/variant %.2f)", o, o.ns/rs.ns))
		}
		if sp.note != "" {
			notes = append(notes, sp.note)
		}
		if sp.own != nil {
			if own, ok := lookup(rr, *sp.own, sp.procs); ok {
				q := rs.ns / own.ns
				verdict := "met"
				if q > sp.ownGoal {
					verdict = "missed: the difference is the Go allocation and copy of the value (GetAppend reuses the caller's buffer)"
				}
				notes = append(notes, fmt.Sprintf("against resman's %s (%.0f ns/op): %.2fx its time (goal: within %.0f%%, %s)",
					own.api, own.ns, q, (sp.ownGoal-1)*100, verdict))
			}
		}
		if ratio < sp.goal && sp.why != "" {
			notes = append(notes, fmt.Sprintf("goal missed: %.1fx needs resman at %.0f ns/op or less, %.0f ns below its time; %s",
				sp.goal, base.ns/sp.goal, rs.ns-base.ns/sp.goal, sp.why))
		}
		doc.Rows = append(doc.Rows, row{
			Group: sp.group, Name: sp.name, Unit: sp.unit, HigherIsBetter: true,
			Resman: round(rv), Baseline: round(bv), BaselineName: "grocksdb",
			Goal:    fmt.Sprintf("resman/grocksdb >= %.1f", sp.goal),
			GoalMet: ratio >= sp.goal, Ratio: math.Round(ratio*1000) / 1000,
			Note: strings.Join(notes, "; "),
		})
	}
	// Get throughput against GOMAXPROCS, for the scaling figure.
	series := map[string]map[string]float64{}
	for name, r := range map[string]results{"resman": rr, "grocksdb": gr} {
		series[name] = map[string]float64{}
		for procs, ss := range r["BenchmarkGetParallel"] {
			series[name][strconv.Itoa(procs)] = round(1e9 / median(field(ss, func(s sample) float64 { return s.ns })))
		}
	}
	doc.Series["get_throughput"] = series

	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		fail(err)
	}
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		fail(err)
	}
	for _, r := range doc.Rows {
		met := "met"
		if !r.GoalMet {
			met = "NOT met"
		}
		fmt.Printf("%-28s resman/grocksdb %5.2f  (goal >= %s: %s)\n", r.Name, r.Ratio,
			strings.TrimPrefix(r.Goal, "resman/grocksdb >= "), met)
	}
	if missing {
		fail(fmt.Errorf("some results are missing (see above); %s is incomplete", *out))
	}
}

// round rounds a throughput to whole units.
func round(x float64) float64 { return math.Round(x) }

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gojson:", err)
	os.Exit(1)
}
