// Package harness is the driver the three YCSB binaries share: it loads a DB or runs one
// workload on a copy of a loaded DB through go-ycsb's core packages (pkg/client,
// pkg/workload, pkg/measurement), and appends the result to a JSON-lines file. Each binary
// is a main that registers its go-ycsb DB (ycsb.RegisterDBCreator) and calls Main with its
// name; see bench/ycsb/README.md.
package harness

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/magiconair/properties"
	"github.com/pingcap/go-ycsb/pkg/client"
	"github.com/pingcap/go-ycsb/pkg/measurement"
	"github.com/pingcap/go-ycsb/pkg/prop"
	"github.com/pingcap/go-ycsb/pkg/ycsb"

	_ "github.com/pingcap/go-ycsb/pkg/workload" // registers the "core" workload
)

// Properties the bindings read (besides go-ycsb's own).
const (
	// PropDir is the DB directory.
	PropDir = "bench.dir"
	// PropCacheBytes is the block cache size, the same on every engine.
	PropCacheBytes = "bench.cache_bytes"
	// PropWriteBufferBytes is the memtable size, the same on every engine.
	PropWriteBufferBytes = "bench.write_buffer_bytes"
)

// WriteBufferBytes is the memtable size of every engine: resman's default (64 MiB).
const WriteBufferBytes = 64 << 20

// Workloads are YCSB's core workloads A-F as the YCSB distribution defines them
// (workloads/workloada ... workloadf of brianfrankcooper/YCSB); go-ycsb's own copies of
// these files differ (uniform requests everywhere, scans of one record in E). Every
// proportion is given, since go-ycsb's defaults are not 0 (read 0.95, update 0.05). Fields:
// 10 of 100 bytes (go-ycsb's defaults, YCSB's too); reads read every field; an update writes
// one field; new records go to hashed keys.
var Workloads = map[string]map[string]string{
	"a": mix("0.5", "0.5", "0", "0", "0", "zipfian"),
	"b": mix("0.95", "0.05", "0", "0", "0", "zipfian"),
	"c": mix("1", "0", "0", "0", "0", "zipfian"),
	"d": mix("0.95", "0", "0.05", "0", "0", "latest"),
	"e": with(mix("0", "0", "0.05", "0.95", "0", "zipfian"),
		prop.MaxScanLength, "100", prop.ScanLengthDistribution, "uniform"),
	"f": mix("0.5", "0", "0", "0", "0.5", "zipfian"),
}

// mix is a workload's operation mix (the proportions of reads, updates, inserts, scans and
// read-modify-writes) and request distribution.
func mix(read, update, insert, scan, rmw, dist string) map[string]string {
	return map[string]string{
		prop.ReadProportion: read, prop.UpdateProportion: update,
		prop.InsertProportion: insert, prop.ScanProportion: scan,
		prop.ReadModifyWriteProportion: rmw, prop.RequestDistribution: dist,
	}
}

// with adds properties (key, value, key, value, ...) to m.
func with(m map[string]string, kv ...string) map[string]string {
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// Flusher is a DB that can write its memtables to table files. After the load, Main
// flushes the DB (when its Close does not) so that every run starts from table files
// and an empty WAL.
type Flusher interface {
	Flush() error
}

// OpStats are one operation type's figures, from go-ycsb's histogram (1 µs resolution).
type OpStats struct {
	Count int64   `json:"count"`
	AvgUS float64 `json:"avg_us"`
	P50US float64 `json:"p50_us"`
	P99US float64 `json:"p99_us"`
	P999  float64 `json:"p999_us"`
	MaxUS float64 `json:"max_us"`
}

// Result is one line of the results file: a load or a run.
type Result struct {
	Phase    string `json:"phase"` // "load" or "run"
	Engine   string `json:"engine"`
	Workload string `json:"workload,omitempty"`
	Threads  int    `json:"threads"`
	Round    int    `json:"round,omitempty"`
	Records  int64  `json:"records"`
	// Ops is the number of operations the phase ran (inserts for a load).
	Ops int64 `json:"ops"`
	// Seconds is the wall time of go-ycsb's client.Run; OpsPerSec = Ops / Seconds.
	Seconds   float64 `json:"seconds"`
	OpsPerSec float64 `json:"ops_per_sec"`
	// CPUUSPerOp is the process's CPU time (user + system, every thread: the workers, Go's
	// runtime, the engine's background threads) during client.Run, per operation.
	CPUUSPerOp float64 `json:"cpu_us_per_op"`
	// ByOp holds go-ycsb's histograms: READ, UPDATE, INSERT, SCAN, READ_MODIFY_WRITE,
	// TOTAL, and <OP>_ERROR for failed operations.
	ByOp   map[string]OpStats `json:"by_op"`
	Errors int64              `json:"errors"`
	// Set-up and tear-down, outside Seconds.
	CopySeconds  float64 `json:"copy_seconds,omitempty"`
	OpenSeconds  float64 `json:"open_seconds"`
	CloseSeconds float64 `json:"close_seconds"`
	// The DB directory after the close: bytes and table files (loads only).
	DirBytes   int64 `json:"dir_bytes,omitempty"`
	TableFiles int   `json:"table_files,omitempty"`
	// The settings every engine gets.
	CacheBytes       int64 `json:"cache_bytes"`
	WriteBufferBytes int64 `json:"write_buffer_bytes"`
	GoMaxProcs       int   `json:"gomaxprocs"`
}

type config struct {
	phase, workload, dir, seed, out string
	records, ops                    int64
	threads, round                  int
	cacheMB                         int64
}

// Main parses the command line and runs one phase on the engine registered as engine:
//
//	load -dir DIR -records N [-threads T]: a new DB in DIR with N records, flushed and closed
//	run -seed DIR -dir DIR2 -workload w -records N -ops M -threads T: DIR copied into DIR2,
//	    then M operations of workload w
//
// Each phase appends one Result line to -out (stdout when empty).
func Main(engine string) {
	var c config
	fs := flag.NewFlagSet(engine, flag.ExitOnError)
	fs.StringVar(&c.workload, "workload", "a", "workload: a, b, c, d, e or f (run)")
	fs.StringVar(&c.dir, "dir", "", "DB directory (made by load; a run copies -seed into it)")
	fs.StringVar(&c.seed, "seed", "", "loaded DB a run starts from (copied to -dir)")
	fs.StringVar(&c.out, "out", "", "JSON-lines file to append the result to (stdout when empty)")
	fs.Int64Var(&c.records, "records", 100000, "recordcount")
	fs.Int64Var(&c.ops, "ops", 200000, "operationcount (run)")
	fs.IntVar(&c.threads, "threads", 1, "go-ycsb threads (goroutines)")
	fs.IntVar(&c.round, "round", 0, "round number, recorded in the result")
	fs.Int64Var(&c.cacheMB, "cache-mb", 32, "block cache size in MiB (every engine)")
	if len(os.Args) < 2 || (os.Args[1] != "load" && os.Args[1] != "run") {
		fmt.Fprintf(os.Stderr, "usage: %s load|run [flags]\n", os.Args[0])
		fs.PrintDefaults()
		os.Exit(2)
	}
	c.phase = os.Args[1]
	_ = fs.Parse(os.Args[2:]) // ExitOnError
	if err := run(engine, c); err != nil {
		fmt.Fprintf(os.Stderr, "%s %s: %v\n", engine, c.phase, err)
		os.Exit(1)
	}
}

func run(engine string, c config) error {
	creator := ycsb.GetDBCreator(engine)
	if creator == nil {
		return fmt.Errorf("no go-ycsb DB registered as %q", engine)
	}
	if c.dir == "" {
		return errors.New("-dir is required")
	}
	load := c.phase == "load"
	p := map[string]string{
		prop.Workload:       "core",
		prop.RecordCount:    strconv.FormatInt(c.records, 10),
		prop.OperationCount: strconv.FormatInt(c.ops, 10),
		prop.ThreadCount:    strconv.Itoa(c.threads),
		prop.DoTransactions: strconv.FormatBool(!load),
		prop.ReadAllFields:  "true",
		// The histograms go to a file Main reads; no periodic summaries on stdout.
		prop.MeasurementType: "histogram",
		prop.OutputStyle:     "json",
		prop.LogInterval:     "86400",
		PropDir:              c.dir,
		PropCacheBytes:       strconv.FormatInt(c.cacheMB<<20, 10),
		PropWriteBufferBytes: strconv.Itoa(WriteBufferBytes),
	}
	res := Result{Phase: c.phase, Engine: engine, Threads: c.threads, Round: c.round,
		Records: c.records, CacheBytes: c.cacheMB << 20, WriteBufferBytes: WriteBufferBytes,
		GoMaxProcs: runtime.GOMAXPROCS(0)}
	if load {
		res.Ops = c.records
		if err := os.RemoveAll(c.dir); err != nil {
			return err
		}
	} else {
		w, ok := Workloads[c.workload]
		if !ok {
			return fmt.Errorf("unknown workload %q", c.workload)
		}
		for k, v := range w {
			p[k] = v
		}
		res.Workload, res.Ops = c.workload, c.ops
		if c.seed == "" {
			return errors.New("run needs -seed, a loaded DB")
		}
		if err := os.RemoveAll(c.dir); err != nil {
			return err
		}
		t := time.Now()
		if err := copyDB(c.seed, c.dir); err != nil {
			return fmt.Errorf("copying %s: %w", c.seed, err)
		}
		res.CopySeconds = time.Since(t).Seconds()
	}
	histFile, err := os.CreateTemp("", "ycsb-hist-*.json")
	if err != nil {
		return err
	}
	histFile.Close()
	defer os.Remove(histFile.Name())
	p[prop.MeasurementRawOutputFile] = histFile.Name()
	props := properties.LoadMap(p)

	wl, err := ycsb.GetWorkloadCreator("core").Create(props)
	if err != nil {
		return err
	}
	defer wl.Close()
	t := time.Now()
	db, err := creator.Create(props)
	if err != nil {
		return fmt.Errorf("opening %s: %w", c.dir, err)
	}
	res.OpenSeconds = time.Since(t).Seconds()

	measurement.InitMeasure(props)
	cpu0 := cpuTime()
	t = time.Now()
	client.NewClient(props, wl, client.DbWrapper{DB: db}).Run(context.Background())
	res.Seconds = time.Since(t).Seconds()
	cpu := cpuTime() - cpu0
	res.OpsPerSec = float64(res.Ops) / res.Seconds
	res.CPUUSPerOp = float64(cpu.Microseconds()) / float64(res.Ops)

	t = time.Now()
	if f, ok := db.(Flusher); ok && load {
		if err := f.Flush(); err != nil {
			return fmt.Errorf("flush: %w", err)
		}
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	res.CloseSeconds = time.Since(t).Seconds()
	if load {
		if res.DirBytes, res.TableFiles, err = dirStats(c.dir); err != nil {
			return err
		}
	}

	measurement.Output()
	if res.ByOp, err = readHistograms(histFile.Name()); err != nil {
		return err
	}
	for op, s := range res.ByOp {
		if strings.HasSuffix(op, "_ERROR") {
			res.Errors += s.Count
		}
	}
	return appendResult(c.out, &res)
}

// cpuTime is the process's user + system CPU time so far (every thread).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// readHistograms parses go-ycsb's JSON output (outputstyle=json): one object per operation
// type, every figure a string.
func readHistograms(path string) (map[string]OpStats, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rows []map[string]string
	if err := json.Unmarshal(b, &rows); err != nil {
		return nil, fmt.Errorf("go-ycsb's histograms (%s): %w", path, err)
	}
	out := make(map[string]OpStats, len(rows))
	for _, r := range rows {
		num := func(k string) float64 {
			v, _ := strconv.ParseFloat(r[k], 64)
			return v
		}
		out[r["Operation"]] = OpStats{Count: int64(num("Count")), AvgUS: num("Avg(us)"),
			P50US: num("50th(us)"), P99US: num("99th(us)"), P999: num("99.9th(us)"), MaxUS: num("Max(us)")}
	}
	return out, nil
}

func appendResult(path string, r *Result) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	w := io.Writer(os.Stdout)
	if path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	if _, err := w.Write(line); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, summary(r))
	return nil
}

// summary is the one-line report on stderr.
func summary(r *Result) string {
	var b strings.Builder
	what := r.Phase
	if r.Phase == "run" {
		what = "workload " + r.Workload
	}
	fmt.Fprintf(&b, "%-8s %-10s threads %d: %8.0f ops/s, %5.1f µs CPU/op", r.Engine, what,
		r.Threads, r.OpsPerSec, r.CPUUSPerOp)
	ops := make([]string, 0, len(r.ByOp))
	for op := range r.ByOp {
		if op != "TOTAL" {
			ops = append(ops, op)
		}
	}
	sort.Strings(ops)
	for _, op := range ops {
		s := r.ByOp[op]
		fmt.Fprintf(&b, "; %s p50 %.0f p99 %.0f µs", op, s.P50US, s.P99US)
	}
	return b.String()
}

// copyDB copies the loaded DB in from to a new directory to. Table files (*.sst) are
// immutable in RocksDB and Pebble alike (compactions write new ones and delete the old), so
// they are hard-linked; every other file (MANIFEST, WAL, OPTIONS, ...) is copied, since an
// engine may append to it or rewrite it in place.
func copyDB(from, to string) error {
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range entries {
		src, dst := filepath.Join(from, e.Name()), filepath.Join(to, e.Name())
		switch {
		case e.IsDir():
			err = copyDB(src, dst)
		case strings.HasSuffix(e.Name(), ".sst"):
			err = os.Link(src, dst)
		default:
			err = copyFile(src, dst)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// dirStats is the size of dir's files and the number of its table files.
func dirStats(dir string) (bytes int64, tables int, err error) {
	err = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		bytes += info.Size()
		if strings.HasSuffix(path, ".sst") {
			tables++
		}
		return nil
	})
	return bytes, tables, err
}
