package resmanprom_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
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
func newManager(t *testing.T) (*resman.Manager, string) {
	t.Helper()
	dir := t.TempDir()
	m, err := resman.NewManager(resman.DefaultConfig())
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

func TestCollector(t *testing.T) {
	m, dir := newManager(t)
	openDB(t, m, dir, "main", 100)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(resmanprom.NewCollector(m))

	lint(t, reg)
	mfs := gather(t, reg)
	for name, want := range map[string]float64{
		"resman_up":                         1,
		"resman_resources_registered_total": 3, // the DB and its two column families
		"resman_resources_active":           3,
		"resman_resources_closing":          0,
		"resman_resources_closed_total":     0,
		"resman_resources_failed_total":     0,
		"resman_leaked_snapshots_total":     0,
	} {
		if got := mustValue(t, mfs, name, nil); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := mustValue(t, mfs, "resman_resources", map[string]string{"kind": "db", "state": "active"}); got != 1 {
		t.Errorf("active DBs: %v", got)
	}
	if got := mustValue(t, mfs, "resman_resources", map[string]string{"kind": "column_family", "state": "active"}); got != 2 {
		t.Errorf("active column families: %v", got)
	}
	if got := mustValue(t, mfs, "resman_db_memtable_bytes", map[string]string{"db": "main"}); got <= 0 {
		t.Errorf("memtable bytes of main: %v", got)
	}
	if got := mustValue(t, mfs, "resman_db_memtable_unflushed_bytes", map[string]string{"db": "main"}); got <= 0 {
		t.Errorf("unflushed memtable bytes of main: %v", got)
	}
	for _, name := range []string{"resman_db_table_readers_bytes", "resman_db_block_cache_bytes"} {
		mustValue(t, mfs, name, map[string]string{"db": "main"})
	}
	if got := mustValue(t, mfs, "resman_uptime_seconds", nil); got < 0 {
		t.Errorf("uptime %v", got)
	}

	// A second DB, closed while a snapshot of it is open: its series go, the totals count it.
	other := openDB(t, m, dir, "other", 10)
	if _, err := other.NewSnapshot(); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "resman_db_memtable_bytes"); err != nil || n != 2 {
		t.Fatalf("memtable series with two DBs: %d, %v", n, err)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	lint(t, reg)
	mfs = gather(t, reg)
	if n, err := testutil.GatherAndCount(reg, "resman_db_memtable_bytes"); err != nil || n != 1 {
		t.Fatalf("memtable series after closing one DB: %d, %v", n, err)
	}
	if _, ok := value(mfs, "resman_db_memtable_bytes", map[string]string{"db": "other"}); ok {
		t.Error("a closed DB still has a memtable series")
	}
	if got := mustValue(t, mfs, "resman_resources_registered_total", nil); got != 7 {
		t.Errorf("registered_total after a second DB and a snapshot: %v, want 7", got)
	}
	if got := mustValue(t, mfs, "resman_leaked_snapshots_total", nil); got != 1 {
		t.Errorf("leaked_snapshots_total: %v, want 1", got)
	}
	if got := mustValue(t, mfs, "resman_resources_active", nil); got != 3 {
		t.Errorf("resources_active after closing other: %v, want 3", got)
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
	m, dir := newManager(t)
	openDB(t, m, dir, "main", 1)
	c := resmanprom.NewCollector(m)
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) != 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	// up, uptime, active, closing, 10 counters, 4 DB gauges, resources{db,active} and
	// resources{column_family,active}.
	if n := testutil.CollectAndCount(c); n != 20 {
		t.Errorf("collected %d metrics, want 20", n)
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

func TestOptions(t *testing.T) {
	a, dirA := newManager(t)
	b, dirB := newManager(t)
	openDB(t, a, dirA, "main", 1)
	openDB(t, b, dirB, "main", 1)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(
		resmanprom.NewCollector(a, resmanprom.WithNamespace("svc"), resmanprom.WithConstLabels(prometheus.Labels{"manager": "a"})),
		resmanprom.NewCollector(b, resmanprom.WithNamespace("svc"), resmanprom.WithConstLabels(prometheus.Labels{"manager": "b"})),
	)
	lint(t, reg)
	mfs := gather(t, reg)
	for _, mgr := range []string{"a", "b"} {
		if got := mustValue(t, mfs, "svc_up", map[string]string{"manager": mgr}); got != 1 {
			t.Errorf("svc_up{manager=%q} = %v", mgr, got)
		}
		mustValue(t, mfs, "svc_db_memtable_bytes", map[string]string{"manager": mgr, "db": "main"})
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
	if n, err := testutil.GatherAndCount(reg, "svc_db_memtable_bytes"); err != nil || n != 1 {
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

// Scrapes running while the manager shuts down: every gather succeeds, reports up 1 with the
// manager's metrics (fewer DBs as they close) or up 0 alone, and once Shutdown returned only
// up 0. Run under -race.
func TestConcurrentGatherDuringShutdown(t *testing.T) {
	m, dir := newManager(t)
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
		midway   [scrapers]atomic.Int64    // gathers with up 1 missing some DB: mid-shutdown
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
				case up == 1 && len(mfs) < 14:
					// up, uptime, active, closing and the 10 counters at least (late in
					// the shutdown no resource is left to report).
					fail(fmt.Errorf("up 1 with only %d families", len(mfs)))
					return
				case done && up != 0:
					fail(errors.New("up 1 after Shutdown returned"))
					return
				}
				ups[g][int(up)].Add(1)
				if up == 1 && countSamples(mfs, "resman_db_memtable_bytes") < 4 {
					midway[g].Add(1)
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
