package resman

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// checkMultiGet compares MultiGet's values with want (nil: missing) and checks that each is a
// slice of its own: appending to one must not overwrite another.
func checkMultiGet(t *testing.T, cf *ColumnFamily, keys [][]byte, want [][]byte) {
	t.Helper()
	got, err := cf.MultiGet(keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(keys) {
		t.Fatalf("%d values for %d keys", len(got), len(keys))
	}
	for i := range keys {
		switch {
		case want[i] == nil && got[i] != nil:
			t.Fatalf("key %q: missing, got %d bytes", keys[i], len(got[i]))
		case want[i] != nil && (got[i] == nil || !bytes.Equal(got[i], want[i])):
			t.Fatalf("key %q: want %d bytes, got %d (nil %v)", keys[i], len(want[i]), len(got[i]), got[i] == nil)
		case cap(got[i]) != len(got[i]):
			t.Fatalf("key %q: capacity %d beyond the value's %d bytes", keys[i], cap(got[i]), len(got[i]))
		}
	}
}

func TestMultiGetBuffers(t *testing.T) {
	db := openTemp(t, "big", "mixed")
	defer db.Close()

	// Values larger than the first buffer of a column family (64 bytes per key): every value
	// comes back in C memory from the same call, and the hint learns their size.
	big := db.CF("big")
	var keys, want [][]byte
	for i := 0; i < 50; i++ {
		k, v := []byte(fmt.Sprintf("k%03d", i)), bytes.Repeat([]byte{byte(i)}, 1000+i)
		if err := big.Put(k, v, nil); err != nil {
			t.Fatal(err)
		}
		keys, want = append(keys, k), append(want, v)
	}
	checkMultiGet(t, big, keys, want)
	if need, first := 1000*len(keys), big.multiGetFirstBuf(len(keys)); first < need {
		t.Fatalf("after a call needing %d bytes, the next first buffer is %d", need, first)
	}
	checkMultiGet(t, big, keys, want)

	// Mixed sizes around the first buffer's, empty values, missing and repeated keys, an
	// empty key.
	mixed := db.CF("mixed")
	keys, want = nil, nil
	for i, n := range []int{0, 1, 63, 64, 65, 100, 500, 10000, 3, 200000, 64, 0} {
		k, v := []byte(fmt.Sprintf("m%02d", i)), bytes.Repeat([]byte{'a' + byte(i)}, n)
		if err := mixed.Put(k, v, nil); err != nil {
			t.Fatal(err)
		}
		keys, want = append(keys, k), append(want, v)
		keys, want = append(keys, []byte(fmt.Sprintf("m%02d-absent", i))), append(want, nil)
	}
	keys, want = append(keys, keys[7], keys[0]), append(want, want[7], want[0])
	keys, want = append(keys, []byte{}), append(want, nil)
	for round := 0; round < 3; round++ { // the hint changes between the rounds
		checkMultiGet(t, mixed, keys, want)
	}
	if err := mixed.Put(nil, []byte("empty key"), nil); err != nil {
		t.Fatal(err)
	}
	checkMultiGet(t, mixed, [][]byte{{}, nil}, [][]byte{[]byte("empty key"), []byte("empty key")})

	// Every key missing, and no key.
	checkMultiGet(t, mixed, [][]byte{[]byte("x"), []byte("y")}, [][]byte{nil, nil})
	if vals, err := mixed.MultiGet(nil, nil); err != nil || len(vals) != 0 {
		t.Fatalf("no keys: %v %v", vals, err)
	}

	// Appending to a value leaves the next one alone.
	vals, err := mixed.MultiGet([][]byte{keys[2], keys[4]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = append(vals[0], 'z')
	if !bytes.Equal(vals[1], want[4]) {
		t.Fatal("appending to one value overwrote the next")
	}
}

// Values growing while MultiGet reads them: each value read is one that was written, whole,
// in one call (a value larger than the buffer comes back in C memory: never ErrBufferTooSmall).
func TestMultiGetGrowingValues(t *testing.T) {
	db := openTemp(t)
	defer db.Close()
	cf := db.Default()
	keys := [][]byte{[]byte("a"), []byte("b"), []byte("c")}
	value := func(n int) []byte { return bytes.Repeat([]byte{'v'}, n) }
	for _, k := range keys {
		if err := cf.Put(k, value(10), nil); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 10; ; n = n*2%50000 + 10 {
			select {
			case <-stop:
				return
			default:
			}
			for _, k := range keys {
				if err := cf.Put(k, value(n), nil); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	for i := 0; i < 300; i++ {
		vals, err := cf.MultiGet(keys, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			if len(v) < 10 || !bytes.Equal(v, value(len(v))) || cap(v) != len(v) {
				t.Fatalf("torn value: %d bytes, capacity %d", len(v), cap(v))
			}
		}
	}
	close(stop)
	wg.Wait()
}

// A miss allocates nothing, and its error keeps the contract: errors.Is(err, ErrNotFound),
// errors.As to an *Error with CodeNotFound and resman's message.
func TestMissAllocatesNothing(t *testing.T) {
	db := openTemp(t)
	defer db.Close()
	cf := db.Default()
	key := []byte("absent")
	_, err := cf.Get(key, nil)
	var re *Error
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &re) || re.Code != CodeNotFound ||
		re.Message != "key not found" || err.Error() != "resman: not found: key not found" {
		t.Fatalf("miss: %#v (%v)", err, err)
	}
	if errors.Is(err, ErrClosed) || errors.Is(err, &Error{Code: CodeNotFound, Message: "other"}) {
		t.Fatal("a miss matches another error")
	}
	if !errors.Is(fmt.Errorf("wrapped: %w", err), ErrNotFound) {
		t.Fatal("a wrapped miss is not ErrNotFound")
	}
	dst := make([]byte, 0, 16)
	for name, miss := range map[string]func() error{
		"Get": func() error { _, err := cf.Get(key, nil); return err },
		"GetAppend": func() error {
			_, err := cf.GetAppend(dst[:0], key, nil)
			return err
		},
	} {
		if allocs := testing.AllocsPerRun(100, func() {
			if err := miss(); !errors.Is(err, ErrNotFound) {
				panic(err)
			}
		}); allocs != 0 {
			t.Errorf("%s: a miss allocated %v times", name, allocs)
		}
	}
}

// The data calls keep their rm_error and out-parameters on the stack.
func TestDataCallsAllocateNothing(t *testing.T) {
	db := openTemp(t)
	defer db.Close()
	cf := db.Default()
	for i := 0; i < 10; i++ {
		if err := cf.Put([]byte(fmt.Sprint(i)), []byte("v"), nil); err != nil {
			t.Fatal(err)
		}
	}
	b, err := db.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	it, err := cf.NewIterator(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	key, begin, end := []byte("k"), []byte("a"), []byte("b")
	for name, f := range map[string]func(){
		"Batch.Put":         func() { must(b.Put(cf, key, key)) },
		"Batch.Delete":      func() { must(b.Delete(cf, key)) },
		"Batch.DeleteRange": func() { must(b.DeleteRange(cf, begin, end)) },
		"Batch.Count":       func() { _, err := b.Count(); must(err) },
		"Batch.Write":       func() { must(b.Put(cf, key, key)); must(b.Write(nil)) },
		"Batch.Clear":       func() { must(b.Clear()) },
		"Iterator.Seek": func() {
			if !it.Seek([]byte("5")) || !it.Prev() || !it.SeekForPrev([]byte("5")) || !it.Next() {
				panic("seek")
			}
		},
		"Iterator.SeekToFirst/Last": func() {
			if !it.SeekToFirst() || !it.SeekToLast() {
				panic("seek")
			}
		},
	} {
		if allocs := testing.AllocsPerRun(50, f); allocs != 0 {
			t.Errorf("%s allocated %v times per call", name, allocs)
		}
	}
	// NewIterator and Close: the Iterator and its buffers only.
	if allocs := testing.AllocsPerRun(20, func() {
		it, err := cf.NewIterator(nil)
		must(err)
		must(it.Close())
	}); allocs > 2 {
		t.Errorf("NewIterator + Close allocated %v times", allocs)
	}
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// The calls that go through calls.go's wrappers still report resman's detail.
func TestWrappedCallErrors(t *testing.T) {
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
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	var re *Error
	if _, err := db.NewBatch(); !errors.As(err, &re) || re.Message == "" {
		t.Fatalf("NewBatch on a closed DB: %v", err)
	}
	if _, err := db.NewSnapshot(); !errors.As(err, &re) || re.Message == "" {
		t.Fatalf("NewSnapshot on a closed DB: %v", err)
	}
	if _, err := cf.NewIterator(nil); !errors.As(err, &re) || re.Message == "" {
		t.Fatalf("NewIterator on a closed DB: %v", err)
	}
	if err := db.Close(); !errors.Is(err, ErrAlreadyClosed) {
		t.Fatalf("second Close: %v", err)
	}
}

// go test -run '^$' -bench . -benchmem: the allocations of the hot paths.
func BenchmarkHotPaths(b *testing.B) {
	db, err := Open(b.TempDir(), DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	cf := db.Default()
	value := bytes.Repeat([]byte{'v'}, 100)
	keys := make([][]byte, 100)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("key%05d", i))
		must(cf.Put(keys[i], value, nil))
	}
	miss, buf := []byte("key00000x"), make([]byte, 0, 128)
	b.Run("GetAppend/miss", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := cf.GetAppend(buf[:0], miss, nil); !errors.Is(err, ErrNotFound) {
				b.Fatal(err)
			}
		}
	})
	b.Run("Get/miss", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := cf.Get(miss, nil); !errors.Is(err, ErrNotFound) {
				b.Fatal(err)
			}
		}
	})
	b.Run("Get/hit", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := cf.Get(keys[i%len(keys)], nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("MultiGet100", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := cf.MultiGet(keys, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	batch, err := db.NewBatch()
	if err != nil {
		b.Fatal(err)
	}
	defer batch.Close()
	b.Run("BatchWrite10", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			for _, k := range keys[:10] {
				must(batch.Put(cf, k, value))
			}
			must(batch.Write(nil))
		}
	})
	b.Run("Iterate100", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			it, err := cf.NewIterator(nil)
			if err != nil {
				b.Fatal(err)
			}
			for ok := it.Seek(keys[0]); ok; ok = it.Next() {
			}
			must(it.Close())
		}
	})
}

// Get returns every value whole, in a slice of its own, whatever its size and whatever the
// sizes read before it (the buffer hint grows and shrinks); a steady hit allocates the value
// only.
func TestGetAnySize(t *testing.T) {
	db := openTemp(t)
	defer db.Close()
	cf := db.Default()
	sizes := []int{0, 1, 127, 128, 129, 255, 256, 1000, 1100, 5000, getMaxHint, getMaxHint + 1, 1 << 20}
	value := func(n int) []byte {
		v := make([]byte, n)
		for i := range v {
			v[i] = byte(i*7 + n)
		}
		return v
	}
	for _, n := range sizes {
		must(cf.Put([]byte(fmt.Sprint("k", n)), value(n), nil))
	}
	// Up, down, and up again: every transition of the hint.
	order := append(append(append([]int{}, sizes...), sizes...), 1<<20, 0, 5000, 1, 1000, 1000, 129)
	for i := len(sizes) - 1; i >= 0; i-- {
		order = append(order, sizes[i])
	}
	for _, n := range order {
		v, err := cf.Get([]byte(fmt.Sprint("k", n)), nil)
		if err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		if !bytes.Equal(v, value(n)) || cap(v) != len(v) {
			t.Fatalf("size %d: got %d bytes (cap %d)", n, len(v), cap(v))
		}
		if h := cf.getHint.Load(); h > getMaxHint {
			t.Fatalf("hint %d over getMaxHint", h)
		}
	}
	for _, n := range []int{100, 1100, 5000} {
		key := []byte(fmt.Sprint("k", n))
		if n == 100 {
			must(cf.Put(key, value(n), nil))
		}
		for i := 0; i < 200; i++ { // let the hint settle on this size
			_, err := cf.Get(key, nil)
			must(err)
		}
		if allocs := testing.AllocsPerRun(50, func() {
			_, err := cf.Get(key, nil)
			must(err)
		}); allocs != 1 {
			t.Errorf("Get of %d bytes allocated %v times", n, allocs)
		}
	}
	if _, err := cf.Get([]byte("absent"), nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("miss after large values: %v", err)
	}
}

// A MultiGet refused (its DB closed) after calls that filled the reused scratch returns the
// error; it does not read the previous call's results.
func TestMultiGetAfterCloseReturnsTheError(t *testing.T) {
	db := openTemp(t)
	cf := db.Default()
	var keys [][]byte
	for i := 0; i < 20; i++ {
		k := []byte(fmt.Sprintf("k%02d", i))
		must(cf.Put(k, bytes.Repeat([]byte{'v'}, 5000), nil))
		keys = append(keys, k)
	}
	for i := 0; i < 3; i++ {
		if _, err := cf.MultiGet(keys, nil); err != nil {
			t.Fatal(err)
		}
	}
	must(db.Close())
	for i := 0; i < 3; i++ {
		if vals, err := cf.MultiGet(keys, nil); !errors.Is(err, ErrClosed) || vals != nil {
			t.Fatalf("MultiGet after Close: %v, %d values", err, len(vals))
		}
	}
}
