package resmanprom_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	resman "github.com/resman-project/resman/bindings/go"
	"github.com/resman-project/resman/bindings/go/prometheus"
)

// newManager returns a manager that the test shuts down at the end unless it did already,
// and a directory for its DBs, removed after that shutdown (cleanups run last-in first-out).
func newManager(t *testing.T, cfg resman.Config) (*resman.Manager, string) {
	t.Helper()
	dir := t.TempDir()
	m, err := resman.NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Shutdown(context.Background()); err != nil && !errors.Is(err, resman.ErrAlreadyClosed) {
			t.Errorf("shutdown: %v", err)
		}
	})
	return m, dir
}

// openDB opens the DB dir/name with the column families "default" and "users" (3 resources)
// and writes n keys to "users".
func openDB(t *testing.T, m *resman.Manager, dir, name string, n int) *resman.DB {
	t.Helper()
	db, err := m.Open(name, filepath.Join(dir, name), resman.DefaultOptions("users"))
	if err != nil {
		t.Fatal(err)
	}
	users := db.CF("users")
	for i := 0; i < n; i++ {
		if err := users.Put([]byte(fmt.Sprintf("user-%04d", i)), []byte("some value"), nil); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// gather gathers reg, failing the test on an error.
func gather(t *testing.T, reg prometheus.Gatherer) []*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	return mfs
}

// value finds the sample of the family name whose labels include want.
func value(mfs []*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue metrics
				}
			}
			switch {
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			case m.Counter != nil:
				return m.GetCounter().GetValue(), true
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func countSamples(mfs []*dto.MetricFamily, name string) int {
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

func mustValue(t *testing.T, mfs []*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	v, ok := value(mfs, name, labels)
	if !ok {
		t.Fatalf("no sample %s%v", name, labels)
	}
	return v
}

func lint(t *testing.T, reg prometheus.Gatherer) {
	t.Helper()
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// gatherWithin gathers in a goroutine and fails the test if that takes longer than d.
func gatherWithin(t *testing.T, reg prometheus.Gatherer, d time.Duration) []*dto.MetricFamily {
	t.Helper()
	type result struct {
		mfs []*dto.MetricFamily
		err error
	}
	done := make(chan result, 1)
	go func() {
		mfs, err := reg.Gather()
		done <- result{mfs, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("gather: %v", r.err)
		}
		return r.mfs
	case <-time.After(d):
		t.Fatalf("gather blocked for more than %v", d)
		return nil
	}
}

// family returns the family name, or nil.
func family(mfs []*dto.MetricFamily, name string) *dto.MetricFamily {
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	return nil
}

// failing is a Go resource whose first `failures` closes fail.
type failing struct {
	failures int32
	calls    atomic.Int32
}

func (f *failing) Close() error {
	if f.calls.Add(1) <= f.failures {
		return errors.New("not yet")
	}
	return nil
}

// fast is a config for scenarios: the monitor samples every 10ms, retries come 1ms apart.
var fast = resman.Config{MonitorInterval: 10 * time.Millisecond, MaxRetries: resman.Retries(3), RetryDelay: time.Millisecond}

// After a scenario (a DB, a leaked snapshot, a close retried once, a close that fails for
// good, a second DB closed), every metric has its conventional name, its type and the
// manager's value.
func TestCollector(t *testing.T) {
	m, dir := newManager(t, fast)
	main := openDB(t, m, dir, "main", 100)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(resmanprom.NewCollector(m))
	lint(t, reg)

	// The memory figures are the monitor's sample: it soon counts the DB.
	waitFor(t, func() bool {
		v, ok := value(gather(t, reg), "resman_rocksdb_memtable_unflushed_bytes", nil)
		return ok && v > 0
	})
	mfs := gather(t, reg)
	for _, name := range []string{"resman_rocksdb_memtable_bytes", "resman_rocksdb_memtable_unflushed_bytes", "resman_registry_bytes"} {
		if v := mustValue(t, mfs, name, nil); v <= 0 {
			t.Errorf("%s = %v", name, v)
		}
	}
	if v := mustValue(t, mfs, "resman_cleanup_success_ratio", nil); v != 1 {
		t.Errorf("success ratio before any cleanup: %v", v)
	}

	if _, err := main.NewSnapshot(); err != nil { // left open
		t.Fatal(err)
	}
	flaky := &failing{failures: 1}
	h, err := m.Register("flaky", flaky)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.CloseResource(h); err != nil {
		t.Fatal(err)
	}
	broken := &failing{failures: 1 << 30}
	h, err = m.Register("broken", broken)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.CloseResource(h); !errors.Is(err, resman.ErrCloseFailed) {
		t.Fatalf("broken: %v", err)
	}
	other := openDB(t, m, dir, "other", 10)
	if _, err := other.NewSnapshot(); err != nil {
		t.Fatal(err)
	}
	// One series per open DB, labelled with its name, once the monitor sampled it.
	waitFor(t, func() bool {
		n, err := testutil.GatherAndCount(reg, "resman_rocksdb_memtable_bytes")
		return err == nil && n == 2
	})
	mfs = gather(t, reg)
	for _, db := range []string{"main", "other"} {
		if v := mustValue(t, mfs, "resman_rocksdb_memtable_bytes", map[string]string{"db": db}); v <= 0 {
			t.Errorf("memtable bytes of %s: %v", db, v)
		}
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	// Gone with the first sample after its close.
	waitFor(t, func() bool {
		_, ok := value(gather(t, reg), "resman_rocksdb_memtable_bytes", map[string]string{"db": "other"})
		return !ok
	})

	lint(t, reg)
	mfs = gather(t, reg)
	counter, gauge, histogram := dto.MetricType_COUNTER, dto.MetricType_GAUGE, dto.MetricType_HISTOGRAM
	for _, c := range []struct {
		name   string
		typ    dto.MetricType
		labels map[string]string
		want   float64
	}{
		{"resman_up", gauge, nil, 1},
		// monitor, main (3), its snapshot, flaky, broken, other (3), its snapshot
		{"resman_resources_registered_total", counter, nil, 11},
		// monitor, main (3), its snapshot
		{"resman_resources", gauge, map[string]string{"state": "active"}, 5},
		{"resman_resources", gauge, map[string]string{"state": "closing"}, 0},
		// flaky, other (3), its snapshot
		{"resman_resources_closed_total", counter, nil, 5},
		{"resman_resources_failed_total", counter, nil, 1},
		{"resman_resources_unregistered_total", counter, nil, 0},
		// flaky once, broken 3 times
		{"resman_close_retries_total", counter, nil, 4},
		{"resman_close_errors_total", counter, nil, 5},
		{"resman_close_timeouts_total", counter, nil, 0},
		{"resman_forced_closes_total", counter, nil, 0},
		{"resman_deferred_closes_total", counter, nil, 0},
		{"resman_cleanups_total", counter, nil, 3},
		{"resman_cleanups_failed_total", counter, nil, 1},
		{"resman_cleanup_success_ratio", gauge, nil, 2.0 / 3}, // 1 failed of 3
		{"resman_cleanup_escalations_total", counter, nil, 0},
		{"resman_leaked_iterators_total", counter, nil, 0},
		{"resman_leaked_snapshots_total", counter, nil, 1},
		{"resman_cleanup_duration_seconds", histogram, nil, 3},
		{"resman_close_duration_seconds", histogram, nil, -1}, // checked below
		{"resman_rocksdb_memtable_bytes", gauge, nil, -1},
		{"resman_rocksdb_memtable_unflushed_bytes", gauge, nil, -1},
		{"resman_rocksdb_table_readers_bytes", gauge, nil, -1},
		{"resman_rocksdb_block_cache_bytes", gauge, nil, -1},
		{"resman_registry_bytes", gauge, nil, -1},
		{"resman_memory_sample_age_seconds", gauge, nil, -1},
		{"resman_close_threads", gauge, nil, -1},
	} {
		mf := family(mfs, c.name)
		if mf == nil {
			t.Errorf("no family %s", c.name)
			continue
		}
		if mf.GetType() != c.typ {
			t.Errorf("%s is a %v, want %v", c.name, mf.GetType(), c.typ)
		}
		got := mustValue(t, mfs, c.name, c.labels)
		if c.want >= 0 && math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
		if c.want < 0 && got < 0 {
			t.Errorf("%s = %v", c.name, got)
		}
	}
	if n := len(mfs); n != 26 {
		t.Errorf("%d families, want 26", n)
	}

	// The histograms are resman's own, bucket for bucket.
	met, err := m.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		h    resman.Histogram
	}{{"resman_cleanup_duration_seconds", met.CleanupDuration}, {"resman_close_duration_seconds", met.CloseDuration}} {
		ph := family(mfs, c.name).GetMetric()[0].GetHistogram()
		if ph.GetSampleCount() != c.h.Count || ph.GetSampleSum() != c.h.SumSeconds || len(ph.GetBucket()) != len(c.h.UpperBounds) {
			t.Errorf("%s: %v, resman: %+v", c.name, ph, c.h)
			continue
		}
		for i, b := range ph.GetBucket() {
			if b.GetUpperBound() != c.h.UpperBounds[i] || b.GetCumulativeCount() != c.h.Buckets[i] {
				t.Errorf("%s bucket %d: %v, resman le %v count %v", c.name, i, b, c.h.UpperBounds[i], c.h.Buckets[i])
			}
		}
	}
	if met.CloseDuration.Count < 5 {
		t.Errorf("close_duration count %d", met.CloseDuration.Count)
	}

	// After Shutdown: only resman_up 0, no error, no panic, no blocking.
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		mfs = gatherWithin(t, reg, 10*time.Second)
		if len(mfs) != 1 || mfs[0].GetName() != "resman_up" {
			t.Fatalf("after shutdown the gather has %d families, first %q", len(mfs), mfs[0].GetName())
		}
		if got := mustValue(t, mfs, "resman_up", nil); got != 0 {
			t.Fatalf("resman_up after shutdown: %v", got)
		}
	}
	lint(t, reg)
}

func TestCollectorUnregistered(t *testing.T) {
	m, dir := newManager(t, fast)
	openDB(t, m, dir, "main", 1)
	c := resmanprom.NewCollector(m)
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) != 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	waitFor(t, func() bool { return testutil.CollectAndCount(c, "resman_rocksdb_block_cache_bytes") == 1 })
	// up, resources{active}, resources{closing}, 14 counters, the success ratio, registry
	// bytes, close threads, 2 histograms, the sample's age and the DB's 4 memory gauges.
	if n := testutil.CollectAndCount(c); n != 27 {
		t.Errorf("collected %d metrics, want 27", n)
	}
	if n := testutil.CollectAndCount(c, "resman_resources_registered_total"); n != 1 {
		t.Errorf("registered_total: %d samples", n)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c); n != 1 {
		t.Errorf("collected %d metrics after Close, want 1", n)
	}
	if got := testutil.ToFloat64(c); got != 0 {
		t.Errorf("resman_up after Close: %v", got)
	}
}

// The exposition of a fresh manager's counters, names, help and types included.
func TestExposition(t *testing.T) {
	m, _ := newManager(t, resman.DefaultConfig())
	c := resmanprom.NewCollector(m)
	want := `
# HELP resman_resources Live resources by lifecycle state: active (accepting operations) or closing (close begun, native close not finished).
# TYPE resman_resources gauge
resman_resources{state="active"} 1
resman_resources{state="closing"} 0
# HELP resman_resources_registered_total Resources registered since the manager was created (its monitor included).
# TYPE resman_resources_registered_total counter
resman_resources_registered_total 1
# HELP resman_cleanup_success_ratio Share of cleanup runs that succeeded (1 before the first).
# TYPE resman_cleanup_success_ratio gauge
resman_cleanup_success_ratio 1
# HELP resman_close_retries_total Close attempts made after a failed one.
# TYPE resman_close_retries_total counter
resman_close_retries_total 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"resman_resources", "resman_resources_registered_total", "resman_cleanup_success_ratio", "resman_close_retries_total"); err != nil {
		t.Error(err)
	}
}

func TestOptions(t *testing.T) {
	a, dirA := newManager(t, fast)
	b, dirB := newManager(t, fast)
	openDB(t, a, dirA, "main", 1)
	openDB(t, b, dirB, "main", 1)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(
		resmanprom.NewCollector(a, resmanprom.WithNamespace("svc"), resmanprom.WithConstLabels(prometheus.Labels{"manager": "a"})),
		resmanprom.NewCollector(b, resmanprom.WithNamespace("svc"), resmanprom.WithConstLabels(prometheus.Labels{"manager": "b"})),
	)
	waitFor(t, func() bool {
		n, err := testutil.GatherAndCount(reg, "svc_rocksdb_memtable_bytes")
		return err == nil && n == 2
	})
	lint(t, reg)
	mfs := gather(t, reg)
	for _, mgr := range []string{"a", "b"} {
		if got := mustValue(t, mfs, "svc_up", map[string]string{"manager": mgr}); got != 1 {
			t.Errorf("svc_up{manager=%q} = %v", mgr, got)
		}
		mustValue(t, mfs, "svc_rocksdb_memtable_bytes", map[string]string{"manager": mgr, "db": "main"})
		mustValue(t, mfs, "svc_close_duration_seconds", map[string]string{"manager": mgr})
	}
	if _, ok := value(mfs, "resman_up", nil); ok {
		t.Error("the namespace option did not replace resman_")
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	mfs = gather(t, reg)
	if got := mustValue(t, mfs, "svc_up", map[string]string{"manager": "a"}); got != 0 {
		t.Errorf("svc_up of the shut down manager: %v", got)
	}
	if got := mustValue(t, mfs, "svc_up", map[string]string{"manager": "b"}); got != 1 {
		t.Errorf("svc_up of the live manager: %v", got)
	}
	if n, err := testutil.GatherAndCount(reg, "svc_rocksdb_memtable_bytes"); err != nil || n != 1 {
		t.Errorf("memtable series with one manager down: %d, %v", n, err)
	}
}

func TestNilManagerPanicsAtConstruction(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewCollector(nil) did not panic")
		}
	}()
	resmanprom.NewCollector(nil)
}

// Scrapes running while the manager shuts down: every gather succeeds, reports up 1 with all
// the manager's metrics or up 0 alone, and once Shutdown returned only up 0. Run under -race.
func TestConcurrentGatherDuringShutdown(t *testing.T) {
	m, dir := newManager(t, fast)
	for i := 0; i < 4; i++ {
		openDB(t, m, dir, fmt.Sprintf("db%d", i), 500)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(resmanprom.NewCollector(m))

	const scrapers = 4
	var (
		wg       sync.WaitGroup
		stop     atomic.Bool
		shutDown atomic.Bool
		ups      [scrapers][2]atomic.Int64 // gathers seeing up 0 and up 1
		after    [scrapers]atomic.Int64    // gathers begun after Shutdown returned
		failed   [scrapers]atomic.Bool     // the scraper stopped on an error
		midway   [scrapers]atomic.Int64    // gathers with up 1 and some resource closing or closed
		errs     = make(chan error, scrapers)
	)
	defer func() { // also when the test fails early: no scraper outlives it
		stop.Store(true)
		wg.Wait()
	}()
	for g := 0; g < scrapers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fail := func(err error) {
				errs <- err
				failed[g].Store(true)
			}
			for !stop.Load() {
				done := shutDown.Load()
				mfs, err := reg.Gather()
				if err != nil {
					fail(err)
					return
				}
				up, ok := value(mfs, "resman_up", nil)
				switch {
				case !ok:
					fail(errors.New("no resman_up"))
					return
				case up == 0 && len(mfs) != 1:
					fail(fmt.Errorf("up 0 with %d families", len(mfs)))
					return
				case up == 1 && len(mfs) < 21:
					// Every family but the memory sample's age and the per-DB memory
					// gauges, which may be absent.
					fail(fmt.Errorf("up 1 with only %d families", len(mfs)))
					return
				case done && up != 0:
					fail(errors.New("up 1 after Shutdown returned"))
					return
				}
				ups[g][int(up)].Add(1)
				if up == 1 {
					if v, _ := value(mfs, "resman_resources_closed_total", nil); v > 0 {
						midway[g].Add(1)
					}
				}
				if done {
					after[g].Add(1)
				}
			}
		}()
	}
	// Let every scraper see the live manager, then shut down under them.
	waitFor(t, func() bool {
		for g := range ups {
			if ups[g][1].Load() == 0 && !failed[g].Load() {
				return false
			}
		}
		return true
	})
	start := time.Now()
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("shutdown took %v", time.Since(start))
	shutDown.Store(true)
	waitFor(t, func() bool {
		for g := range after {
			if after[g].Load() < 3 && !failed[g].Load() {
				return false
			}
		}
		return true
	})
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for g := range ups {
		t.Logf("scraper %d: %d gathers with up 1 (%d of them mid-shutdown), %d with up 0",
			g, ups[g][1].Load(), midway[g].Load(), ups[g][0].Load())
	}
}

// waitFor polls cond for up to 30s (a scraper that blocks fails the test here).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting (a gather blocked?)")
		}
		time.Sleep(time.Millisecond)
	}
}
