// Package resmanbench benchmarks the resman Go binding. grocksbench has the same benchmarks,
// with the same names, options and data, over github.com/linxGnu/grocksdb; run.sh runs both
// and compares them with benchstat. The two cannot share a binary: libresman.a contains
// RocksDB, which grocksdb links too.
package resmanbench

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/resman-project/resman/bench/go/internal/workload"
	resman "github.com/resman-project/resman/bindings/go"
)

// options are the DB options of both DBs; grocksbench sets the same through grocksdb.
func options() resman.Options {
	o := resman.DefaultOptions() // the "default" column family only
	o.CreateIfMissing = true
	o.WriteBufferSize = workload.WriteBufferSize
	o.BlockCacheSize = workload.BlockCacheSize
	o.Compression = resman.CompressionLZ4
	o.MaxOpenFiles = -1
	return o
}

// A lazily opened DB, closed and removed by TestMain.
type lazyDB struct {
	once sync.Once
	dir  string
	db   *resman.DB
	err  error
}

var (
	readDB, writeDB lazyDB
	sink            int
)

func (l *lazyDB) get(b *testing.B, prefix string, preload bool) *resman.DB {
	b.Helper()
	l.once.Do(func() {
		if l.dir, l.err = workload.PrepareDir(prefix, preload, makeSeed); l.err != nil {
			return
		}
		if l.db, l.err = resman.Open(l.dir, options()); l.err != nil || !preload {
			return
		}
		l.err = warm(l.db.Default())
	})
	if l.err != nil {
		b.Fatal(l.err)
	}
	return l.db
}

// makeSeed creates the read DB in dir: the preloaded keys, flushed to one L0 table file by
// resman's graceful close.
func makeSeed(dir string) error {
	db, err := resman.Open(dir, options())
	if err != nil {
		return err
	}
	if err := load(db); err != nil {
		db.Close()
		return err
	}
	return db.Close()
}

// load writes the preloaded keys in batches of 1000.
func load(db *resman.DB) error {
	batch, err := db.NewBatch()
	if err != nil {
		return err
	}
	defer batch.Close()
	cf := db.Default()
	kbuf, vbuf := make([]byte, workload.KeyLen), make([]byte, workload.ValueLen)
	for i := 0; i < workload.Preload; i++ {
		k, v := workload.PreloadEntry(kbuf, vbuf, i)
		if err := batch.Put(cf, k, v); err != nil {
			return err
		}
		if i%1000 == 999 || i == workload.Preload-1 {
			if err := batch.Write(nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// warm reads every key once (the block cache holds the whole table) and checks the values.
func warm(cf *resman.ColumnFamily) error {
	want := make([]byte, workload.ValueLen)
	buf := make([]byte, 0, 128)
	for i := 0; i < workload.Preload; i++ {
		k, _ := workload.PreloadEntry(make([]byte, workload.KeyLen), want, i)
		v, err := cf.GetAppend(buf[:0], k, nil)
		if err != nil {
			return fmt.Errorf("warm-up read %d: %w", i, err)
		}
		if string(v) != string(want) {
			return fmt.Errorf("warm-up read %d: wrong value", i)
		}
	}
	return nil
}

func TestMain(m *testing.M) {
	if dir := os.Getenv(workload.MakeSeedEnv); dir != "" {
		// run.sh's first step: the seed DB that every benchmark process copies.
		if err := makeSeed(dir); err != nil {
			fmt.Fprintln(os.Stderr, "seed:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	for _, l := range []*lazyDB{&readDB, &writeDB} {
		if l.db != nil {
			if err := l.db.Close(); err != nil {
				fmt.Fprintln(os.Stderr, "close:", err)
				code = 1
			}
		}
		if l.dir != "" {
			os.RemoveAll(l.dir)
		}
	}
	os.Exit(code)
}

// writes numbers the writes of Put and BatchWrite100 across runs, so that no key repeats.
var writes uint64

// BenchmarkPut: one 16-byte key, 100-byte value put (WAL on, no sync) into an empty DB of
// its own.
func BenchmarkPut(b *testing.B) {
	cf := writeDB.get(b, "resman-write-", false).Default()
	key, value := make([]byte, workload.KeyLen), workload.Value(make([]byte, workload.ValueLen), 1)
	b.ReportAllocs()
	b.ResetTimer()
	defer workload.StartCPU().Report(b) // cpu-ns/op
	for i := 0; i < b.N; i++ {
		writes++
		if err := cf.Put(workload.WriteKey(key, writes), value, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGet: a point read of a preloaded key (hit) or of an absent key between two of
// them (miss), with GetAppend into a reused buffer: the binding's allocation-free path.
func BenchmarkGet(b *testing.B) {
	cf := readDB.get(b, "resman-read-", true).Default()
	b.Run("hit", func(b *testing.B) {
		buf := make([]byte, 0, 128)
		b.ReportAllocs()
		b.ResetTimer()
		defer workload.StartCPU().Report(b) // cpu-ns/op
		for i := 0; i < b.N; i++ {
			v, err := cf.GetAppend(buf[:0], workload.Hits.At(i), nil)
			if err != nil {
				b.Fatal(err)
			}
			sink += len(v)
		}
	})
	b.Run("miss", func(b *testing.B) {
		buf := make([]byte, 0, 128)
		b.ReportAllocs()
		b.ResetTimer()
		defer workload.StartCPU().Report(b) // cpu-ns/op
		for i := 0; i < b.N; i++ {
			_, err := cf.GetAppend(buf[:0], workload.Misses.At(i), nil)
			if !errors.Is(err, resman.ErrNotFound) {
				b.Fatal("want ErrNotFound, got", err)
			}
		}
	})
}

// BenchmarkGetPlain: BenchmarkGet with the plain Get (a new slice per value), the call a
// service writes first.
func BenchmarkGetPlain(b *testing.B) {
	cf := readDB.get(b, "resman-read-", true).Default()
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		defer workload.StartCPU().Report(b) // cpu-ns/op
		for i := 0; i < b.N; i++ {
			v, err := cf.Get(workload.Hits.At(i), nil)
			if err != nil {
				b.Fatal(err)
			}
			sink += len(v)
		}
	})
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		defer workload.StartCPU().Report(b) // cpu-ns/op
		for i := 0; i < b.N; i++ {
			if _, err := cf.Get(workload.Misses.At(i), nil); !errors.Is(err, resman.ErrNotFound) {
				b.Fatal("want ErrNotFound, got", err)
			}
		}
	})
}

// BenchmarkShortScan: the short-scan pattern, a fresh iterator per scan: NewIterator, Seek,
// 1 to 10 entries (key and value), Close.
func BenchmarkShortScan(b *testing.B) {
	cf := readDB.get(b, "resman-read-", true).Default()
	start := make([]byte, workload.KeyLen)
	b.ReportAllocs()
	b.ResetTimer()
	defer workload.StartCPU().Report(b) // cpu-ns/op
	for i := 0; i < b.N; i++ {
		it, err := cf.NewIterator(nil)
		if err != nil {
			b.Fatal(err)
		}
		shortScan(b, it, workload.Key(start, workload.ScanStart(i)), workload.ShortScanLen(i))
		if err := it.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkShortScanRefresh: ShortScan with one iterator for every scan: Refresh, Seek, 1 to
// 10 entries.
func BenchmarkShortScanRefresh(b *testing.B) {
	cf := readDB.get(b, "resman-read-", true).Default()
	start := make([]byte, workload.KeyLen)
	it, err := cf.NewIterator(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer it.Close()
	b.ReportAllocs()
	b.ResetTimer()
	defer workload.StartCPU().Report(b) // cpu-ns/op
	for i := 0; i < b.N; i++ {
		if err := it.Refresh(); err != nil {
			b.Fatal(err)
		}
		shortScan(b, it, workload.Key(start, workload.ScanStart(i)), workload.ShortScanLen(i))
	}
}

func shortScan(b *testing.B, it *resman.Iterator, from []byte, want int) {
	n := 0
	for ok := it.Seek(from); ok && n < want; ok = it.Next() {
		sink += len(it.Key()) + len(it.Value())
		n++
	}
	if err := it.Err(); err != nil || n != want {
		b.Fatal("scan:", n, err)
	}
}

// BenchmarkBatchWrite100: 100 puts into a batch, then one write (the batch is reused: Write
// empties it).
func BenchmarkBatchWrite100(b *testing.B) {
	db := writeDB.get(b, "resman-write-", false)
	cf := db.Default()
	batch, err := db.NewBatch()
	if err != nil {
		b.Fatal(err)
	}
	defer batch.Close()
	key, value := make([]byte, workload.KeyLen), workload.Value(make([]byte, workload.ValueLen), 1)
	b.ReportAllocs()
	b.ResetTimer()
	defer workload.StartCPU().Report(b) // cpu-ns/op
	for i := 0; i < b.N; i++ {
		for j := 0; j < workload.BatchSize; j++ {
			writes++
			if err := batch.Put(cf, workload.WriteKey(key, writes), value); err != nil {
				b.Fatal(err)
			}
		}
		if err := batch.Write(nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMultiGet100: one MultiGet of 100 preloaded keys.
func BenchmarkMultiGet100(b *testing.B) {
	cf := readDB.get(b, "resman-read-", true).Default()
	keys := make([][]byte, workload.BatchSize)
	b.ReportAllocs()
	b.ResetTimer()
	defer workload.StartCPU().Report(b) // cpu-ns/op
	for i := 0; i < b.N; i++ {
		for j := range keys {
			keys[j] = workload.Hits.At(i*workload.BatchSize + j)
		}
		vals, err := cf.MultiGet(keys, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, v := range vals {
			if v == nil {
				b.Fatal("missing key")
			}
			sink += len(v)
		}
	}
}

// BenchmarkIterate10k: create an iterator, seek to a preloaded key, read 10,000 entries (key
// and value), close it.
func BenchmarkIterate10k(b *testing.B) {
	cf := readDB.get(b, "resman-read-", true).Default()
	start := make([]byte, workload.KeyLen)
	b.ReportAllocs()
	b.ResetTimer()
	defer workload.StartCPU().Report(b) // cpu-ns/op
	for i := 0; i < b.N; i++ {
		it, err := cf.NewIterator(nil)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for ok := it.Seek(workload.Key(start, workload.ScanStart(i))); ok && n < workload.ScanLen; ok = it.Next() {
			sink += len(it.Key()) + len(it.Value())
			n++
		}
		if err := it.Err(); err != nil || n != workload.ScanLen {
			b.Fatal("scan:", n, err)
		}
		if err := it.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetParallel: Get (hit) from GOMAXPROCS goroutines (run.sh passes -cpu 1,2).
func BenchmarkGetParallel(b *testing.B) {
	cf := readDB.get(b, "resman-read-", true).Default()
	var next atomic.Int64
	var failed atomic.Pointer[error]
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)) * (workload.Preload / 7)
		buf := make([]byte, 0, 128)
		for pb.Next() {
			v, err := cf.GetAppend(buf[:0], workload.Hits.At(i), nil)
			if err == nil && len(v) != workload.ValueLen {
				err = errors.New("wrong value length")
			}
			if err != nil {
				stored := err // only the failing path allocates
				failed.Store(&stored)
				return
			}
			i++
		}
	})
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
}
