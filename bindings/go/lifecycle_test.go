package resman

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// waitUntil polls cond for up to d, failing the test with what when it never holds.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// flagCloser records its Close calls; the first `failures` calls fail.
type flagCloser struct {
	failures int32
	calls    atomic.Int32
}

func (c *flagCloser) Close() error {
	n := c.calls.Add(1)
	if n <= c.failures {
		return fmt.Errorf("attempt %d failed", n)
	}
	return nil
}

// hangingCloser blocks in Close until release is closed.
type hangingCloser struct {
	release  chan struct{}
	entered  atomic.Bool
	returned atomic.Bool
}

func (c *hangingCloser) Close() error {
	c.entered.Store(true)
	<-c.release
	c.returned.Store(true)
	return nil
}

// resourceErrors returns the ResourceErrors joined in err, by name.
func resourceErrors(err error) map[string]*ResourceError {
	out := map[string]*ResourceError{}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return out
	}
	for _, e := range j.Unwrap() {
		var re *ResourceError
		if errors.As(e, &re) {
			out[re.Name] = re
		}
	}
	return out
}

func TestConfig(t *testing.T) {
	d := DefaultConfig()
	if d.CleanupTimeout != 30*time.Second || d.ForceCleanupTimeout != 5*time.Second ||
		d.MonitorInterval != 10*time.Second || d.MaxRetries == nil || *d.MaxRetries != 3 ||
		d.RetryDelay != time.Second {
		t.Fatalf("defaults: %+v (max_retries %v)", d, d.MaxRetries)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}

	// Zero fields are the defaults.
	m, err := NewManager(Config{})
	if err != nil {
		t.Fatal(err)
	}
	got := m.Config()
	if got.CleanupTimeout != d.CleanupTimeout || got.ForceCleanupTimeout != d.ForceCleanupTimeout ||
		got.MonitorInterval != d.MonitorInterval || *got.MaxRetries != *d.MaxRetries ||
		got.RetryDelay != d.RetryDelay {
		t.Fatalf("Config{} resolved to %+v", got)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// Every field reaches resman (the status document shows what it uses); 0 retries is
	// expressible; a fraction of a millisecond is dropped.
	m, err = NewManager(Config{
		CleanupTimeout:      1500 * time.Microsecond,
		ForceCleanupTimeout: 250 * time.Millisecond,
		MonitorInterval:     time.Minute,
		MaxRetries:          Retries(0),
		RetryDelay:          5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.Status()
	if err != nil {
		t.Fatal(err)
	}
	want := ConfigStatus{CleanupTimeoutMs: 1, ForceCleanupTimeoutMs: 250, MonitorIntervalMs: 60000, MaxRetries: 0, RetryDelayMs: 5}
	if st.Config != want || st.CleanupTimeoutMs != 1 {
		t.Fatalf("status config %+v, want %+v", st.Config, want)
	}
	if *m.Config().MaxRetries != 0 {
		t.Fatalf("MaxRetries %d", *m.Config().MaxRetries)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// Refusals name the field (Go name and YAML key); the ranges are resman's.
	for _, c := range []struct {
		cfg  Config
		name string
	}{
		{Config{CleanupTimeout: -time.Second}, "Config.CleanupTimeout (cleanup_timeout)"},
		{Config{CleanupTimeout: 25 * time.Hour}, "Config.CleanupTimeout (cleanup_timeout)"},
		{Config{ForceCleanupTimeout: 500 * time.Microsecond}, "Config.ForceCleanupTimeout (force_cleanup_timeout)"},
		{Config{ForceCleanupTimeout: 2 * time.Hour}, "Config.ForceCleanupTimeout (force_cleanup_timeout)"},
		{Config{MonitorInterval: 5 * time.Millisecond}, "Config.MonitorInterval (monitor_interval)"},
		{Config{MonitorInterval: -1}, "Config.MonitorInterval (monitor_interval)"},
		{Config{MaxRetries: Retries(-1)}, "Config.MaxRetries (max_retries)"},
		{Config{MaxRetries: Retries(101)}, "Config.MaxRetries (max_retries)"},
		{Config{MaxRetries: Retries(1 << 40)}, "Config.MaxRetries (max_retries)"},
		{Config{RetryDelay: 2 * time.Minute}, "Config.RetryDelay (retry_delay)"},
		{Config{RetryDelay: time.Nanosecond}, "Config.RetryDelay (retry_delay)"},
	} {
		m, err := NewManager(c.cfg)
		if err == nil {
			_ = m.Close()
			t.Errorf("%+v: accepted", c.cfg)
			continue
		}
		if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%+v: %v (want ErrInvalidArgument naming %s)", c.cfg, err, c.name)
		}
		if verr := c.cfg.Validate(); verr == nil || verr.Error() != err.Error() {
			t.Errorf("Validate: %v, NewManager: %v", verr, err)
		}
	}
}

// Every manager has one resource from the start: its monitor thread.
func TestMonitorIsAResource(t *testing.T) {
	m, err := NewManager(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.Status()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Resources) != 1 || st.Resources[0].Name != "resman.monitor" || st.Resources[0].Kind != "monitor" ||
		st.Resources[0].State != "active" {
		t.Fatalf("resources of a new manager: %+v", st.Resources)
	}
	if st.Totals.Registered != 1 || st.Totals.Active != 1 || st.LastCleanup != nil {
		t.Fatalf("totals %+v, last cleanup %+v", st.Totals, st.LastCleanup)
	}
	if _, err := m.Register("resman.monitor", &flagCloser{}); !errors.Is(err, ErrDuplicateName) {
		t.Fatalf("the monitor's name is taken: %v", err)
	}
	db, err := m.Open("db", t.TempDir(), DefaultOptions("users"))
	if err != nil {
		t.Fatal(err)
	}
	met, err := m.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if met.Registered != 4 || met.Active != 4 { // the monitor, the DB, two column families
		t.Fatalf("after opening a DB: %+v", met.Totals)
	}
	_ = db
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A Go Close that hangs: Shutdown returns within its bound with ErrTimeout naming it (and
// what waits for it), while unrelated resources, Go and DB, still close.
func TestHungGoCloseIsReportedAsTimeout(t *testing.T) {
	m, err := NewManager(Config{CleanupTimeout: 200 * time.Millisecond, ForceCleanupTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	db, err := m.Open("db", t.TempDir(), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	cf := db.Default()
	if err := cf.Put([]byte("k"), []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	hung := &hangingCloser{release: make(chan struct{})}
	unblocked := false
	defer func() { // whatever happens, no goroutine is left blocked in Close
		if !unblocked {
			close(hung.release)
		}
	}()
	// "held" is a dependency of the hung resource: it cannot close before it.
	held := &flagCloser{}
	hh, err := m.Register("held", held)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Register("hung", hung, hh); err != nil {
		t.Fatal(err)
	}
	other := &flagCloser{}
	if _, err := m.Register("other", other); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	err = m.Shutdown(context.Background())
	took := time.Since(start)
	t.Logf("Shutdown took %v: %v", took, err)
	if took > 10*time.Second {
		t.Fatalf("Shutdown took %v with a hung Close", took)
	}
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "hung") {
		t.Fatalf("Shutdown: %v", err)
	}
	res := resourceErrors(err)
	for _, name := range []string{"hung", "held"} {
		if re := res[name]; re == nil || !errors.Is(re, ErrTimeout) {
			t.Errorf("no ErrTimeout ResourceError for %q in %v", name, err)
		}
	}
	if len(res) != 2 {
		t.Errorf("resource errors: %v", res)
	}
	if !hung.entered.Load() || hung.returned.Load() {
		t.Fatal("the hung Close should be running")
	}
	if other.calls.Load() != 1 {
		t.Errorf("the unrelated Go resource was closed %d times", other.calls.Load())
	}
	if held.calls.Load() != 0 {
		t.Errorf("closed before what depends on it finished")
	}
	if _, err := cf.Get([]byte("k"), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("the DB after Shutdown: %v", err)
	}
	if err := cf.Put([]byte("k"), []byte("v2"), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("the DB after Shutdown: %v", err)
	}

	// Let go: the hung Close returns, then what it held closes (after the manager is gone).
	close(hung.release)
	unblocked = true
	waitUntil(t, 10*time.Second, "the hung Close to return", hung.returned.Load)
	waitUntil(t, 10*time.Second, "the held resource to close", func() bool { return held.calls.Load() == 1 })
}

// Close (forced) with a hung Go Close: ErrTimeout naming it, the unrelated resource closed,
// within a bound.
//
// Close is bounded by ForceCleanupTimeout (200ms here); the assertion's bound is generous,
// and the measured time is logged.
func TestForcedCloseWithHungGoClose(t *testing.T) {
	m, err := NewManager(Config{CleanupTimeout: 3 * time.Second, ForceCleanupTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	hung := &hangingCloser{release: make(chan struct{})}
	defer func() {
		close(hung.release)
		waitUntil(t, 10*time.Second, "the hung Close to return", hung.returned.Load)
	}()
	if _, err := m.Register("hung", hung); err != nil {
		t.Fatal(err)
	}
	other := &flagCloser{}
	if _, err := m.Register("other", other); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = m.Close()
	took := time.Since(start)
	t.Logf("Close took %v: %v", took, err)
	if !errors.Is(err, ErrTimeout) || resourceErrors(err)["hung"] == nil {
		t.Fatalf("Close: %v", err)
	}
	if other.calls.Load() != 1 {
		t.Errorf("the unrelated Go resource was closed %d times", other.calls.Load())
	}
	if took > 10*time.Second {
		t.Errorf("Close took %v with a hung Close", took)
	}
}

// A Close that fails twice then succeeds, with MaxRetries 3: the close succeeds after two
// retries.
func TestFailingCloseIsRetried(t *testing.T) {
	m, err := NewManager(Config{MaxRetries: Retries(3), RetryDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	flaky := &flagCloser{failures: 2}
	h, err := m.Register("flaky", flaky)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.CloseResource(h); err != nil {
		t.Fatalf("CloseResource: %v", err)
	}
	if n := flaky.calls.Load(); n != 3 {
		t.Fatalf("Close called %d times, want 3", n)
	}
	met, err := m.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if met.Retries != 2 || met.CloseErrors != 2 || met.Failed != 0 {
		t.Fatalf("metrics: %+v", met.Totals)
	}
	st, err := m.Status()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(st.RecentlyClosed, func(r ClosedRecord) bool { return r.Name == "flaky" })
	if i < 0 || st.RecentlyClosed[i].Attempts != 3 || st.RecentlyClosed[i].Outcome != "closed" {
		t.Fatalf("recently closed: %+v", st.RecentlyClosed)
	}
	lc := st.LastCleanup
	if lc == nil || lc.Operation != "close" || lc.Target == nil || *lc.Target != "flaky" || len(lc.Steps) != 1 ||
		lc.Steps[0].Attempts != 3 || len(lc.Steps[0].Errors) != 2 || lc.Steps[0].Outcome != "closed" {
		t.Fatalf("last cleanup: %+v", lc)
	}

	// Out of retries: failed, with every attempt's error; Close is not called again.
	always := &flagCloser{failures: 1 << 30}
	h, err = m.Register("always", always)
	if err != nil {
		t.Fatal(err)
	}
	err = m.CloseResource(h)
	if !errors.Is(err, ErrCloseFailed) || !strings.Contains(err.Error(), "attempt 1 failed") ||
		!strings.Contains(err.Error(), "attempt 4 failed") {
		t.Fatalf("CloseResource: %v", err)
	}
	if n := always.calls.Load(); n != 4 {
		t.Fatalf("Close called %d times, want 4", n)
	}

	// The same through Shutdown: it succeeds after the retries.
	flaky2 := &flagCloser{failures: 2}
	if _, err := m.Register("flaky2", flaky2); err != nil {
		t.Fatal(err)
	}
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := flaky2.calls.Load(); n != 3 || always.calls.Load() != 4 {
		t.Fatalf("Close called %d times, want 3", n)
	}
}

// rendezvousCloser's Close waits (up to 5s) until every closer of its group has entered
// Close: it can only succeed when they run at the same time.
type rendezvousCloser struct {
	arrived *atomic.Int32
	group   int32
	start   atomic.Int64
	end     atomic.Int64
}

func (c *rendezvousCloser) Close() error {
	c.start.Store(time.Now().UnixNano())
	defer func() { c.end.Store(time.Now().UnixNano()) }()
	c.arrived.Add(1)
	deadline := time.Now().Add(5 * time.Second)
	for c.arrived.Load() < c.group {
		if time.Now().After(deadline) {
			return errors.New("ran alone: the independent closes did not overlap")
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// Independent resources close concurrently; a dependent finishes before its dependency
// starts.
func TestIndependentClosesRunConcurrently(t *testing.T) {
	m, err := NewManager(Config{MaxRetries: Retries(0)})
	if err != nil {
		t.Fatal(err)
	}
	var arrived atomic.Int32
	a := &rendezvousCloser{arrived: &arrived, group: 3}
	b := &rendezvousCloser{arrived: &arrived, group: 3}
	c := &rendezvousCloser{arrived: &arrived, group: 3}
	ah, err := m.Register("a", a)
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*rendezvousCloser{"b": b, "c": c} {
		if _, err := m.Register(name, r); err != nil {
			t.Fatal(err)
		}
	}
	var alone atomic.Int32
	dependent := &rendezvousCloser{arrived: &alone, group: 1}
	if _, err := m.Register("a-dependent", dependent, ah); err != nil {
		t.Fatal(err)
	}
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if dependent.end.Load() > a.start.Load() {
		t.Fatal("a started closing before its dependent finished")
	}
}

// Metrics and the status document after a close: counters, histograms, memory, last_cleanup.
func TestMetricsAndLastCleanup(t *testing.T) {
	m, err := NewManager(Config{MonitorInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	db, err := m.Open("db", t.TempDir(), DefaultOptions("users"))
	if err != nil {
		t.Fatal(err)
	}
	users := db.CF("users")
	for i := 0; i < 100; i++ {
		if err := users.Put([]byte(fmt.Sprintf("k%03d", i)), []byte("value"), nil); err != nil {
			t.Fatal(err)
		}
	}
	// The monitor samples every 10ms: it soon counts the DB.
	waitUntil(t, 10*time.Second, "a memory sample with the DB", func() bool {
		met, err := m.Metrics()
		return err == nil && met.Memory.Reporting == 1 && met.Memory.MemTableTotal > 0
	})
	if st, err := m.Status(); err != nil || len(st.Memory.Resources) != 1 || st.Memory.Resources[0].Name != "db" ||
		st.Memory.Resources[0].Handle != uint64(db.Handle()) || st.Memory.Resources[0].MemTableTotal == 0 {
		t.Fatalf("per-resource memory in the status: %+v %v", st.Memory, err)
	}
	sample, err := m.MemorySample()
	if err != nil || len(sample.Resources) != 1 || sample.Resources[0].Name != "db" || sample.Reporting != 1 ||
		sample.Resources[0].MemTableTotal != sample.MemTableTotal || sample.AgeMs == nil || sample.Samples == 0 {
		t.Fatalf("MemorySample: %+v %v", sample, err)
	}
	met, err := m.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if met.Memory.Resources != nil {
		t.Fatalf("Metrics has no per-resource memory: %+v", met.Memory.Resources)
	}
	if age, ok := met.Memory.Age(); !ok || age > 10*time.Second || met.Memory.Samples == 0 || met.Memory.RegistryBytes == 0 {
		t.Fatalf("memory sample: %+v", met.Memory)
	}
	if met.Registered != 4 || met.Active != 4 || met.Cleanups != 0 || met.CloseDuration.Count != 0 {
		t.Fatalf("before any close: %+v", met.Totals)
	}

	it, err := users.NewIterator(nil) // left open: closed (and counted as leaked) by the DB's close
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.NewSnapshot(); err != nil {
		t.Fatal(err)
	}
	if err := m.CloseResource(db.Handle()); err != nil {
		t.Fatal(err)
	}
	if _, err := it.cf.Get([]byte("k001"), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("after the DB's close: %v", err)
	}

	met, err = m.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	// Closed: the iterator, the snapshot, two column families and the DB.
	if met.Registered != 6 || met.Active != 1 || met.Closing != 0 || met.Closed != 5 || met.Failed != 0 ||
		met.Cleanups != 1 || met.CleanupsFailed != 0 || met.LeakedIterators != 1 || met.LeakedSnapshots != 1 ||
		met.TimedOut != 0 || met.Retries != 0 {
		t.Fatalf("after the DB's close: %+v", met.Totals)
	}
	checkHistogram(t, "close_duration", met.CloseDuration, 5)
	checkHistogram(t, "cleanup_duration", met.CleanupDuration, 1)

	st, err := m.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Totals != met.Totals {
		t.Errorf("status totals %+v, metrics %+v", st.Totals, met.Totals)
	}
	checkHistogram(t, "status close_duration", st.CloseDuration, 5)
	if st.Memory.Samples == 0 || st.Memory.AgeMs == nil {
		t.Errorf("status memory %+v", st.Memory)
	}
	lc := st.LastCleanup
	if lc == nil || lc.Operation != "close" || lc.Target == nil || *lc.Target != "db" || lc.Mode != "graceful" ||
		lc.Resources != 5 || len(lc.Order) != 5 || len(lc.Steps) != 5 || len(lc.Errors) != 0 || lc.Escalated ||
		lc.DurationMs == nil || lc.GracefulTimeoutMs != 30000 || lc.ForceTimeoutMs != 5000 {
		t.Fatalf("last cleanup: %+v", lc)
	}
	if lc.Order[len(lc.Order)-1] != "db" {
		t.Errorf("the DB closes last: %v", lc.Order)
	}
	var dbStep *CleanupStep
	for i := range lc.Steps {
		s := &lc.Steps[i]
		if s.Outcome != "closed" || s.Attempts != 1 || len(s.Errors) != 0 {
			t.Errorf("step %+v", s)
		}
		if s.Name == "db" {
			dbStep = s
		}
	}
	if dbStep == nil || dbStep.Kind != "db" || dbStep.Handle != uint64(db.Handle()) {
		t.Fatalf("no step for the DB: %+v", lc.Steps)
	}
	for _, s := range lc.Steps {
		if s.Name != "db" && s.FinishedMs > dbStep.StartedMs {
			t.Errorf("%s finished at %vms, after the DB's close started (%vms)", s.Name, s.FinishedMs, dbStep.StartedMs)
		}
	}
	for _, r := range st.RecentlyClosed {
		if r.Attempts != 1 {
			t.Errorf("recently closed %+v", r)
		}
	}

	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Metrics(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Metrics after Shutdown: %v", err)
	}
	if _, err := m.MemorySample(); !errors.Is(err, ErrClosed) {
		t.Fatalf("MemorySample after Shutdown: %v", err)
	}
}

func checkHistogram(t *testing.T, name string, h Histogram, count uint64) {
	t.Helper()
	if h.Count != count || len(h.UpperBounds) != 12 || len(h.Buckets) != 12 || h.SumSeconds < 0 {
		t.Errorf("%s: %+v, want count %d and 12 buckets", name, h, count)
		return
	}
	for i := 1; i < len(h.Buckets); i++ {
		if h.UpperBounds[i] <= h.UpperBounds[i-1] || h.Buckets[i] < h.Buckets[i-1] {
			t.Errorf("%s: not ascending and cumulative: %+v", name, h)
		}
	}
	if h.Buckets[len(h.Buckets)-1] > h.Count {
		t.Errorf("%s: a bucket counts more than the total: %+v", name, h)
	}
}
