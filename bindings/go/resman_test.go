package resman

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func openTemp(t *testing.T, cfs ...string) *DB {
	t.Helper()
	db, err := Open(t.TempDir(), DefaultOptions(cfs...))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestDataPath(t *testing.T) {
	db := openTemp(t, "users")
	defer db.Close()
	users := db.CF("users")
	if err := users.Put([]byte("alice"), []byte("admin"), nil); err != nil {
		t.Fatal(err)
	}
	v, err := users.Get([]byte("alice"), nil)
	if err != nil || string(v) != "admin" {
		t.Fatalf("get: %q %v", v, err)
	}
	big := bytes.Repeat([]byte("x"), 10000)
	if err := users.Put([]byte("big"), big, &WriteOptions{Sync: true}); err != nil {
		t.Fatal(err)
	}
	if v, err := users.Get([]byte("big"), nil); err != nil || !bytes.Equal(v, big) {
		t.Fatalf("big value: %d bytes, %v", len(v), err)
	}
	if _, err := users.Get([]byte("nobody"), nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	// One call, no allocation, with room in dst.
	dst := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(100, func() {
		dst, _ = users.GetAppend(dst[:0], []byte("alice"), nil)
	})
	if allocs != 0 {
		t.Errorf("GetAppend with room allocated %v times per call", allocs)
	}

	snap, err := db.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := db.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if err := b.Put(users, []byte(fmt.Sprintf("k%02d", i)), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Delete(users, []byte("alice")); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.Count(); n != 11 {
		t.Fatalf("count %d", n)
	}
	if err := b.Write(nil); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.Count(); n != 0 {
		t.Fatalf("a written batch is empty, has %d", n)
	}
	if v, err := users.Get([]byte("alice"), &ReadOptions{Snapshot: snap}); err != nil || string(v) != "admin" {
		t.Fatalf("at the snapshot: %q %v", v, err)
	}
	if _, err := users.Get([]byte("alice"), nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted by the batch: %v", err)
	}
	vals, err := users.MultiGet([][]byte{[]byte("k01"), []byte("nope"), []byte("big")}, nil)
	if err != nil || string(vals[0]) != "1" || vals[1] != nil || !bytes.Equal(vals[2], big) {
		t.Fatalf("multi-get: %v", err)
	}

	it, err := users.NewIterator(&IterOptions{LowerBound: []byte("k03"), UpperBound: []byte("k06")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for k, v := range it.All() {
		got = append(got, string(k)+"="+string(v))
	}
	if it.Err() != nil || strings.Join(got, ",") != "k03=3,k04=4,k05=5" {
		t.Fatalf("scan: %v %v", got, it.Err())
	}
	if !it.SeekForPrev([]byte("k04x")) || string(it.Key()) != "k04" || !it.Prev() || string(it.Key()) != "k03" {
		t.Fatalf("seek for prev / prev: %q", it.Key())
	}
	for _, c := range []interface{ Close() error }{it, b, snap} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); !errors.Is(err, ErrAlreadyClosed) {
			t.Fatalf("second close: %v", err)
		}
	}
	m, err := db.Memory()
	if err != nil || m.MemTableTotal == 0 {
		t.Fatalf("memory %+v %v", m, err)
	}
}

func TestDoubleCloseAndUseAfterClose(t *testing.T) {
	db := openTemp(t)
	cf := db.Default()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); !errors.Is(err, ErrAlreadyClosed) {
		t.Fatalf("second close: %v", err)
	}
	if _, err := cf.Get([]byte("k"), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("get after close: %v", err)
	}
	if err := cf.Put([]byte("k"), []byte("v"), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("put after close: %v", err)
	}
	if err := db.Manager().Close(); !errors.Is(err, ErrAlreadyClosed) {
		t.Fatalf("manager closed twice: %v", err)
	}
}

type closer struct {
	name  string
	order *[]string
	mu    *sync.Mutex
	err   error
	panic bool
	hang  chan struct{}
	calls atomic.Int32
}

func (c *closer) Close() error {
	c.calls.Add(1)
	c.mu.Lock()
	*c.order = append(*c.order, c.name)
	c.mu.Unlock()
	if c.panic {
		panic("boom in " + c.name)
	}
	return c.err
}

func TestGoResourcesCloseInDependencyOrderAndFailuresAreReported(t *testing.T) {
	// No retry: each Close is called exactly once, failing or not.
	m, err := NewManager(Config{CleanupTimeout: 5 * time.Second, MaxRetries: Retries(0)})
	if err != nil {
		t.Fatal(err)
	}
	db, err := m.Open("db", t.TempDir(), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	var mu sync.Mutex
	mk := func(name string) *closer { return &closer{name: name, order: &order, mu: &mu} }
	worker, failing, panicking := mk("worker"), mk("failing"), mk("panicking")
	failing.err = errors.New("disk on fire")
	panicking.panic = true
	wh, err := m.Register("worker", worker, db.Handle())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Register("failing", failing); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Register("panicking", panicking, wh); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Register("worker", worker); !errors.Is(err, ErrDuplicateName) {
		t.Fatalf("duplicate: %v", err)
	}
	err = m.Shutdown(context.Background())
	if !errors.Is(err, ErrCleanupFailed) || !strings.Contains(err.Error(), "disk on fire") || !strings.Contains(err.Error(), "boom in panicking") {
		t.Fatalf("shutdown: %v", err)
	}
	var re *ResourceError
	if !errors.As(err, &re) {
		t.Fatalf("no ResourceError in %v", err)
	}
	named := map[string]bool{}
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		if errors.As(e, &re) && errors.Is(re, ErrCloseFailed) {
			named[re.Name] = true
		}
	}
	if !named["failing"] || !named["panicking"] || len(named) != 2 {
		t.Fatalf("each failure names its resource: %v", named)
	}
	pos := func(n string) int {
		for i, x := range order {
			if x == n {
				return i
			}
		}
		t.Fatalf("%s never closed: %v", n, order)
		return -1
	}
	if pos("panicking") > pos("worker") {
		t.Fatalf("a dependent closes first: %v", order)
	}
	for _, c := range []*closer{worker, failing, panicking} {
		if c.calls.Load() != 1 {
			t.Fatalf("%s closed %d times", c.name, c.calls.Load())
		}
	}
	if err := m.Shutdown(context.Background()); !errors.Is(err, ErrAlreadyClosed) {
		t.Fatalf("second shutdown: %v", err)
	}
	if _, err := db.Default().Get([]byte("k"), nil); !errors.Is(err, ErrClosed) && !errors.Is(err, ErrStaleHandle) {
		t.Fatalf("after shutdown: %v", err)
	}
}

// Close while 64 goroutines read, write and iterate: nothing crashes, and every operation
// either succeeds or reports ErrClosed.
func TestCloseUnderLoad(t *testing.T) {
	before := runtime.NumGoroutine()
	for round := 0; round < 4; round++ {
		db := openTemp(t, "data")
		cf := db.CF("data")
		for i := 0; i < 100; i++ {
			_ = cf.Put([]byte(fmt.Sprintf("k%03d", i)), []byte("v"), nil)
		}
		var wg sync.WaitGroup
		var started sync.WaitGroup
		var bad atomic.Value
		ok := func(err error) bool {
			if err == nil {
				return true
			}
			if !errors.Is(err, ErrClosed) {
				bad.Store(err)
			}
			return false
		}
		for g := 0; g < 64; g++ {
			wg.Add(1)
			started.Add(1)
			go func(g int) {
				defer wg.Done()
				first := true
				for {
					var err error
					switch g % 4 {
					case 0:
						_, err = cf.Get([]byte("k001"), nil)
					case 1:
						err = cf.Put([]byte(fmt.Sprintf("g%d", g)), []byte("v"), nil)
					case 2:
						var it *Iterator
						if it, err = cf.NewIterator(nil); err == nil {
							for range it.All() {
							}
							err = it.Err()
							if cerr := it.Close(); err == nil && cerr != nil && !errors.Is(cerr, ErrAlreadyClosed) {
								err = cerr
							}
						}
					case 3:
						_, err = cf.MultiGet([][]byte{[]byte("k001"), []byte("k002")}, nil)
					}
					if first {
						started.Done()
						first = false
					}
					if !ok(err) {
						return
					}
				}
			}(g)
		}
		started.Wait()
		var err error
		if round%2 == 0 {
			err = db.Close()
		} else {
			err = db.Manager().Close()
		}
		if err != nil && !errors.Is(err, ErrTimeout) {
			t.Fatalf("round %d: close: %v", round, err)
		}
		wg.Wait()
		if e := bad.Load(); e != nil {
			t.Fatalf("round %d: an operation failed with something else than ErrClosed: %v", round, e)
		}
		if round%2 == 1 {
			continue
		}
	}
	runtime.GC()
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("goroutines: %d before, %d after", before, after)
	}
}
