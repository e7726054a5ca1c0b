package resman

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// closeFunc is an io.Closer from a function.
type closeFunc func() error

func (f closeFunc) Close() error { return f() }

// releaseAll lets every hung Close return and waits until they have.
func releaseAll(t *testing.T, hung ...*hangingCloser) {
	t.Helper()
	for _, h := range hung {
		select {
		case <-h.release:
		default:
			close(h.release)
		}
	}
	for _, h := range hung {
		if h.entered.Load() {
			waitUntil(t, 30*time.Second, "a released Close to return", h.returned.Load)
		}
	}
}

// joined returns the errors joined in err (err alone when it is not a join).
func joined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// racingCloses runs closeFn from n goroutines at once and returns their errors.
func racingCloses(n int, closeFn func() error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = closeFn()
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// 16 goroutines close one iterator, snapshot, batch or Go resource at once: exactly one close
// returns nil, every other ErrAlreadyClosed, and a Go resource's Close runs once.
func TestConcurrentCloseExactlyOneWins(t *testing.T) {
	m, err := NewManager(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	db, err := m.Open("db", t.TempDir(), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	cf := db.Default()
	if err := cf.Put([]byte("k"), []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	kinds := []struct {
		name string
		open func(round int) (close func() error, calls func() int32, err error)
	}{
		{"iterator", func(int) (func() error, func() int32, error) {
			it, err := cf.NewIterator(nil)
			if err != nil {
				return nil, nil, err
			}
			it.SeekToFirst()
			return it.Close, nil, nil
		}},
		{"snapshot", func(int) (func() error, func() int32, error) {
			s, err := db.NewSnapshot()
			if err != nil {
				return nil, nil, err
			}
			return s.Close, nil, nil
		}},
		{"batch", func(int) (func() error, func() int32, error) {
			b, err := db.NewBatch()
			if err != nil {
				return nil, nil, err
			}
			return b.Close, nil, nil
		}},
		{"go resource", func(round int) (func() error, func() int32, error) {
			c := &flagCloser{}
			h, err := m.Register(fmt.Sprintf("go-%d", round), c, db.Handle())
			if err != nil {
				return nil, nil, err
			}
			return func() error { return m.CloseResource(h) }, c.calls.Load, nil
		}},
	}
	for _, k := range kinds {
		for round := range 50 {
			closeIt, calls, err := k.open(round)
			if err != nil {
				t.Fatalf("%s round %d: %v", k.name, round, err)
			}
			wins := 0
			for _, err := range racingCloses(16, closeIt) {
				switch {
				case err == nil:
					wins++
				case !errors.Is(err, ErrAlreadyClosed):
					t.Fatalf("%s round %d: a losing close returned %v, want ErrAlreadyClosed", k.name, round, err)
				}
			}
			if wins != 1 {
				t.Fatalf("%s round %d: %d closes returned nil, want exactly 1", k.name, round, wins)
			}
			if calls != nil && calls() != 1 {
				t.Fatalf("%s round %d: Close ran %d times", k.name, round, calls())
			}
		}
	}
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A resource that waits for a hung Close is reported with resman's full reason: what it waits
// for, not a summary of its state.
func TestShutdownReportsWhatAResourceWaitsFor(t *testing.T) {
	m, err := NewManager(Config{CleanupTimeout: 50 * time.Millisecond, ForceCleanupTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	hung := &hangingCloser{release: make(chan struct{})}
	defer releaseAll(t, hung)
	held := &flagCloser{}
	hh, err := m.Register("held", held)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Register("hung-worker", hung, hh); err != nil {
		t.Fatal(err)
	}
	err = m.Shutdown(context.Background())
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Shutdown: %v", err)
	}
	var agg *Error
	if first := joined(err)[0]; !errors.As(first, &agg) || errors.As(first, new(*ResourceError)) {
		t.Fatalf("the aggregated error is not first: %v", joined(err))
	}
	res := resourceErrors(err)
	re := res["held"]
	if re == nil || !errors.Is(re, ErrTimeout) || !strings.Contains(re.Err.Message, "waiting for 'hung-worker' to finish closing first") {
		t.Fatalf("the dependency's ResourceError: %v (all: %v)", re, err)
	}
	if re.Handle != hh {
		t.Errorf("handle %v, want %v", re.Handle, hh)
	}
	if re := res["hung-worker"]; re == nil || !errors.Is(re, ErrTimeout) {
		t.Fatalf("the hung resource's ResourceError: %v", re)
	}
	if len(res) != 2 {
		t.Errorf("resource errors: %v", res)
	}
}

// The ResourceErrors are capped (maxResourceErrors), dependents first; one more error counts
// the rest. The 20 hung resources form a chain (each depends on the one registered before it),
// so one close thread is taken whatever the pool does and exactly 20 are reported.
func TestShutdownCapsResourceErrors(t *testing.T) {
	defer func(n int) { maxResourceErrors = n }(maxResourceErrors)
	maxResourceErrors = 5
	m, err := NewManager(Config{CleanupTimeout: 50 * time.Millisecond, ForceCleanupTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var hung []*hangingCloser
	defer func() {
		releaseAll(t, hung...)
		// Released, each Close returns and lets the one it depends on close: all of them run.
		for _, h := range hung {
			waitUntil(t, 30*time.Second, "every released Close to return", h.returned.Load)
		}
	}()
	var prev []Handle
	for i := range 20 {
		h := &hangingCloser{release: make(chan struct{})}
		hung = append(hung, h)
		hh, err := m.Register(fmt.Sprintf("hung-%02d", i), h, prev...)
		if err != nil {
			t.Fatal(err)
		}
		prev = []Handle{hh}
	}
	err = m.Shutdown(context.Background())
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Shutdown: %v", err)
	}
	errs := joined(err)
	if len(errs) != 1+5+1 {
		t.Fatalf("%d errors joined, want the aggregate, 5 ResourceErrors and the count: %v", len(errs), errs)
	}
	var agg *Error
	if !errors.As(errs[0], &agg) {
		t.Fatalf("the aggregated error is not first: %v", errs[0])
	}
	for i, e := range errs[1:6] {
		var re *ResourceError
		if !errors.As(e, &re) || re.Name != fmt.Sprintf("hung-%02d", 19-i) || !errors.Is(re, ErrTimeout) {
			t.Fatalf("ResourceError %d: %v, want hung-%02d's ErrTimeout (dependents first)", i, e, 19-i)
		}
		if i > 0 && !strings.Contains(re.Err.Message, fmt.Sprintf("waiting for 'hung-%02d' to finish closing first", 20-i)) {
			t.Errorf("ResourceError %d: %v", i, re)
		}
	}
	if len(resourceErrors(err)) != 5 {
		t.Fatalf("resource errors: %v", resourceErrors(err))
	}
	if last := errs[6].Error(); !strings.Contains(last, "15 more") || !strings.Contains(last, "first 5") {
		t.Fatalf("the count of the others: %q", last)
	}
}

// While a Shutdown is under way (blocked in a Close), registrations are refused with
// ErrClosed; the Shutdown then finishes normally.
func TestRegisterDuringShutdownIsRefused(t *testing.T) {
	m, err := NewManager(Config{CleanupTimeout: time.Minute, ForceCleanupTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	hung := &hangingCloser{release: make(chan struct{})}
	defer releaseAll(t, hung)
	dbh, err := m.Open("db", t.TempDir(), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Register("hung", hung, dbh.Handle()); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Shutdown(context.Background()) }()
	waitUntil(t, 30*time.Second, "Shutdown to call the hung Close", hung.entered.Load)

	late := &flagCloser{}
	if _, err := m.Register("late", late); !errors.Is(err, ErrClosed) {
		t.Errorf("Register during Shutdown: %v, want ErrClosed", err)
	}
	if _, err := m.Open("db2", t.TempDir(), DefaultOptions()); !errors.Is(err, ErrClosed) {
		t.Errorf("Open during Shutdown: %v, want ErrClosed", err)
	}
	if _, err := dbh.NewSnapshot(); !errors.Is(err, ErrClosed) {
		t.Errorf("NewSnapshot of a DB being closed: %v, want ErrClosed", err)
	}

	close(hung.release)
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if late.calls.Load() != 0 {
		t.Errorf("a refused resource was closed")
	}
	if _, err := m.Register("later", late); !errors.Is(err, ErrClosed) {
		t.Errorf("Register after Shutdown: %v, want ErrClosed", err)
	}
}

// A Go resource that depends on a DB writes into it from its Close: gracefully the write
// lands (the DB closes after it); under Manager.Close the DB refuses it at once with
// ErrClosed, and nothing crashes.
func TestDependentCloseWritesIntoItsDB(t *testing.T) {
	for _, forced := range []bool{false, true} {
		t.Run(fmt.Sprintf("forced=%v", forced), func(t *testing.T) {
			dir := t.TempDir()
			m, err := NewManager(DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			db, err := m.Open("db", dir, DefaultOptions("users"))
			if err != nil {
				t.Fatal(err)
			}
			users := db.CF("users")
			var putErr, getErr error
			ran := false
			if _, err := m.Register("writer", closeFunc(func() error {
				ran = true
				putErr = users.Put([]byte("last"), []byte("words"), nil)
				_, getErr = users.Get([]byte("last"), nil)
				return nil
			}), db.Handle()); err != nil {
				t.Fatal(err)
			}
			if forced {
				err = m.Close()
			} else {
				err = m.Shutdown(context.Background())
			}
			if err != nil {
				t.Fatalf("forced %v: %v", forced, err)
			}
			if !ran {
				t.Fatal("the writer's Close did not run")
			}
			if forced {
				if !errors.Is(putErr, ErrClosed) || !errors.Is(getErr, ErrClosed) {
					t.Fatalf("under Manager.Close: put %v, get %v, want ErrClosed", putErr, getErr)
				}
			} else if putErr != nil || getErr != nil {
				t.Fatalf("under Shutdown: put %v, get %v", putErr, getErr)
			}

			db2, err := Open(dir, DefaultOptions("users"))
			if err != nil {
				t.Fatal(err)
			}
			defer db2.Close()
			v, err := db2.CF("users").Get([]byte("last"), nil)
			if forced {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("after a forced close the refused write is absent: %q %v", v, err)
				}
			} else if err != nil || string(v) != "words" {
				t.Fatalf("the write from Close after reopening: %q %v", v, err)
			}
		})
	}
}

// A DB (and its iterators, snapshots, batches) closed by its manager's Shutdown or Close:
// their Close returns ErrAlreadyClosed, as a second close does.
func TestCloseAfterManagerFinished(t *testing.T) {
	for _, forced := range []bool{false, true} {
		m, err := NewManager(DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		db, err := m.Open("db", t.TempDir(), DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		it, err := db.Default().NewIterator(nil)
		if err != nil {
			t.Fatal(err)
		}
		snap, err := db.NewSnapshot()
		if err != nil {
			t.Fatal(err)
		}
		b, err := db.NewBatch()
		if err != nil {
			t.Fatal(err)
		}
		if forced {
			err = m.Close()
		} else {
			err = m.Shutdown(context.Background())
		}
		if err != nil {
			t.Fatal(err)
		}
		for name, c := range map[string]func() error{"db": db.Close, "iterator": it.Close, "snapshot": snap.Close, "batch": b.Close} {
			if err := c(); !errors.Is(err, ErrAlreadyClosed) {
				t.Errorf("forced %v: %s.Close after the manager finished: %v, want ErrAlreadyClosed", forced, name, err)
			}
		}
	}

	// A DB with its own manager: the second Close.
	db := openTemp(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); !errors.Is(err, ErrAlreadyClosed) {
		t.Fatalf("second Close of a DB from Open: %v", err)
	}
}
