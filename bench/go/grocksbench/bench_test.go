// Package grocksbench is the baseline of resmanbench: the same benchmarks, with the same
// names, options and data, over github.com/linxGnu/grocksdb, linked against the RocksDB that
// the rocksdb crate's bundled build produced (see run.sh for the link line). The benchmarks
// of resmanbench's names use grocksdb's plain idiom, the baseline; where grocksdb offers a
// variant that may be faster, it is a benchmark of its own (GetPinned, BatchedMultiGet100,
// Iterate10kSlice), which go.json's notes compare with resman too.
package grocksbench

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/linxGnu/grocksdb"
	"github.com/resman-project/resman/bench/go/internal/workload"
)

// open opens the DB at dir with resman's options (resmanbench's options()): create if
// missing, 64 MiB write buffer, LZ4, no open-file limit, a 32 MiB LRU block cache, RocksDB's
// defaults otherwise.
func open(dir string) (*grocksdb.DB, *grocksdb.Cache, error) {
	o := grocksdb.NewDefaultOptions()
	defer o.Destroy()
	o.SetCreateIfMissing(true)
	o.SetWriteBufferSize(workload.WriteBufferSize)
	o.SetCompression(grocksdb.LZ4Compression)
	o.SetMaxOpenFiles(-1)
	t := grocksdb.NewDefaultBlockBasedTableOptions()
	defer t.Destroy()
	cache := grocksdb.NewLRUCache(workload.BlockCacheSize)
	t.SetBlockCache(cache)
	o.SetBlockBasedTableFactory(t)
	db, err := grocksdb.OpenDb(o, dir)
	if err != nil {
		cache.Destroy()
		return nil, nil, err
	}
	return db, cache, nil
}

// A lazily opened DB, closed and removed by TestMain.
type lazyDB struct {
	once  sync.Once
	dir   string
	db    *grocksdb.DB
	cache *grocksdb.Cache
	err   error
}

var (
	readDB, writeDB lazyDB
	ro              = grocksdb.NewDefaultReadOptions()
	wo              = grocksdb.NewDefaultWriteOptions()
	sink            int
)

func (l *lazyDB) get(b *testing.B, prefix string, preload bool) *grocksdb.DB {
	b.Helper()
	l.once.Do(func() {
		// The read DB is a copy of the seed resmanbench made, or else made by makeSeed.
		if l.dir, l.err = workload.PrepareDir(prefix, preload, makeSeed); l.err != nil {
			return
		}
		if l.db, l.cache, l.err = open(l.dir); l.err != nil || !preload {
			return
		}
		l.err = warm(l.db)
	})
	if l.err != nil {
		b.Fatal(l.err)
	}
	return l.db
}

// makeSeed creates the read DB in dir when no seed is given: the preloaded keys, flushed to
// one L0 table file (resman's graceful close flushes; here Flush does), then closed.
func makeSeed(dir string) error {
	db, cache, err := open(dir)
	if err != nil {
		return err
	}
	defer cache.Destroy()
	defer db.Close()
	if err := load(db); err != nil {
		return err
	}
	fo := grocksdb.NewDefaultFlushOptions()
	defer fo.Destroy()
	fo.SetWait(true)
	return db.Flush(fo)
}

func (l *lazyDB) close() {
	l.db.Close()
	l.db = nil
	l.cache.Destroy()
	l.cache = nil
}

// load writes the preloaded keys in batches of 1000.
func load(db *grocksdb.DB) error {
	batch := grocksdb.NewWriteBatch()
	defer batch.Destroy()
	kbuf, vbuf := make([]byte, workload.KeyLen), make([]byte, workload.ValueLen)
	for i := 0; i < workload.Preload; i++ {
		batch.Put(workload.PreloadEntry(kbuf, vbuf, i))
		if i%1000 == 999 || i == workload.Preload-1 {
			if err := db.Write(wo, batch); err != nil {
				return err
			}
			batch.Clear()
		}
	}
	return nil
}

// warm reads every key once (the block cache holds the whole table) and checks the values.
func warm(db *grocksdb.DB) error {
	want := make([]byte, workload.ValueLen)
	for i := 0; i < workload.Preload; i++ {
		k, _ := workload.PreloadEntry(make([]byte, workload.KeyLen), want, i)
		v, err := db.Get(ro, k)
		if err != nil {
			return fmt.Errorf("warm-up read %d: %w", i, err)
		}
		ok := v.Exists() && string(v.Data()) == string(want)
		v.Free()
		if !ok {
			return fmt.Errorf("warm-up read %d: missing or wrong value", i)
		}
	}
	return nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, l := range []*lazyDB{&readDB, &writeDB} {
		if l.db != nil {
			l.close()
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
	db := writeDB.get(b, "grocksdb-write-", false)
	key, value := make([]byte, workload.KeyLen), workload.Value(make([]byte, workload.ValueLen), 1)
	b.ReportAllocs()
	b.ResetTimer()
	defer workload.StartCPU().Report(b) // cpu-ns/op
	for i := 0; i < b.N; i++ {
		writes++
		if err := db.Put(wo, workload.WriteKey(key, writes), value); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGet: a point read of a preloaded key (hit) or of an absent key between two of
// them (miss), with grocksdb's idiom: Get returns a Slice of C memory (a copy RocksDB
// mallocs), freed with Free.
func BenchmarkGet(b *testing.B) {
	db := readDB.get(b, "grocksdb-read-", true)
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		defer workload.StartCPU().Report(b) // cpu-ns/op
		for i := 0; i < b.N; i++ {
			v, err := db.Get(ro, workload.Hits.At(i))
			if err != nil || !v.Exists() {
				b.Fatal("missing key", err)
			}
			sink += len(v.Data())
			v.Free()
		}
	})
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		defer workload.StartCPU().Report(b) // cpu-ns/op
		for i := 0; i < b.N; i++ {
			v, err := db.Get(ro, workload.Misses.At(i))
			if err != nil || v.Exists() {
				b.Fatal("want a miss", err)
			}
			v.Free()
		}
	})
}

// BenchmarkGetPinned: Get with GetPinned, which returns a handle to RocksDB's pinned value
// (no value copy in RocksDB), destroyed with Destroy.
func BenchmarkGetPinned(b *testing.B) {
	db := readDB.get(b, "grocksdb-read-", true)
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		defer workload.StartCPU().Report(b) // cpu-ns/op
		for i := 0; i < b.N; i++ {
			v, err := db.GetPinned(ro, workload.Hits.At(i))
			if err != nil || !v.Exists() {
				b.Fatal("missing key", err)
			}
			sink += len(v.Data())
			v.Destroy()
		}
	})
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		defer workload.StartCPU().Report(b) // cpu-ns/op
		for i := 0; i < b.N; i++ {
			v, err := db.GetPinned(ro, workload.Misses.At(i))
			if err != nil || v.Exists() {
				b.Fatal("want a miss", err)
			}
			v.Destroy()
		}
	})
}

// BenchmarkBatchWrite100: 100 puts into a batch, then one write (the batch is reused and
// cleared).
func BenchmarkBatchWrite100(b *testing.B) {
	db := writeDB.get(b, "grocksdb-write-", false)
	batch := grocksdb.NewWriteBatch()
	defer batch.Destroy()
	key, value := make([]byte, workload.KeyLen), workload.Value(make([]byte, workload.ValueLen), 1)
	b.ReportAllocs()
	b.ResetTimer()
	defer workload.StartCPU().Report(b) // cpu-ns/op
	for i := 0; i < b.N; i++ {
		for j := 0; j < workload.BatchSize; j++ {
			writes++
			batch.Put(workload.WriteKey(key, writes), value)
		}
		if err := db.Write(wo, batch); err != nil {
			b.Fatal(err)
		}
		batch.Clear()
	}
}

// BenchmarkMultiGet100: one MultiGet of 100 preloaded keys (rocksdb_multi_get: a malloc'd
// copy of each value, freed with Destroy).
func BenchmarkMultiGet100(b *testing.B) {
	db := readDB.get(b, "grocksdb-read-", true)
	keys := make([][]byte, workload.BatchSize)
	b.ReportAllocs()
	b.ResetTimer()
	defer workload.StartCPU().Report(b) // cpu-ns/op
	for i := 0; i < b.N; i++ {
		for j := range keys {
			keys[j] = workload.Hits.At(i*workload.BatchSize + j)
		}
		vals, err := db.MultiGet(ro, keys...)
		if err != nil {
			b.Fatal(err)
		}
		for _, v := range vals {
			if !v.Exists() {
				b.Fatal("missing key")
			}
			sink += len(v.Data())
		}
		vals.Destroy()
	}
}

// BenchmarkBatchedMultiGet100: MultiGet100 with BatchedMultiGetCF (RocksDB's batched
// MultiGet, pinned values, destroyed with Destroy).
func BenchmarkBatchedMultiGet100(b *testing.B) {
	db := readDB.get(b, "grocksdb-read-", true)
	cf := db.GetDefaultColumnFamily()
	keys := make([][]byte, workload.BatchSize)
	b.ReportAllocs()
	b.ResetTimer()
	defer workload.StartCPU().Report(b) // cpu-ns/op
	for i := 0; i < b.N; i++ {
		for j := range keys {
			keys[j] = workload.Hits.At(i*workload.BatchSize + j)
		}
		vals, err := db.BatchedMultiGetCF(ro, cf, false, keys...)
		if err != nil {
			b.Fatal(err)
		}
		for _, v := range vals {
			if !v.Exists() {
				b.Fatal("missing key")
			}
			sink += len(v.Data())
		}
		vals.Destroy()
	}
}

// BenchmarkIterate10k: create an iterator, seek to a preloaded key, read 10,000 entries (key
// and value, with Key and Value: a Slice each), close it.
func BenchmarkIterate10k(b *testing.B) {
	db := readDB.get(b, "grocksdb-read-", true)
	start := make([]byte, workload.KeyLen)
	b.ReportAllocs()
	b.ResetTimer()
	defer workload.StartCPU().Report(b) // cpu-ns/op
	for i := 0; i < b.N; i++ {
		it := db.NewIterator(ro)
		n := 0
		for it.Seek(workload.Key(start, workload.ScanStart(i))); it.Valid() && n < workload.ScanLen; it.Next() {
			sink += len(it.Key().Data()) + len(it.Value().Data())
			n++
		}
		if err := it.Err(); err != nil || n != workload.ScanLen {
			b.Fatal("scan:", n, err)
		}
		it.Close()
	}
}

// BenchmarkShortScan: the short-scan pattern, a fresh iterator per scan: NewIterator, Seek,
// 1 to 10 entries (Key and Value), Close.
func BenchmarkShortScan(b *testing.B) {
	db := readDB.get(b, "grocksdb-read-", true)
	start := make([]byte, workload.KeyLen)
	b.ReportAllocs()
	b.ResetTimer()
	defer workload.StartCPU().Report(b) // cpu-ns/op
	for i := 0; i < b.N; i++ {
		it := db.NewIterator(ro)
		shortScan(b, it, workload.Key(start, workload.ScanStart(i)), workload.ShortScanLen(i))
		it.Close()
	}
}

// BenchmarkShortScanRefresh: ShortScan with one iterator for every scan: Refresh, Seek, 1 to
// 10 entries.
func BenchmarkShortScanRefresh(b *testing.B) {
	db := readDB.get(b, "grocksdb-read-", true)
	start := make([]byte, workload.KeyLen)
	it := db.NewIterator(ro)
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

func shortScan(b *testing.B, it *grocksdb.Iterator, from []byte, want int) {
	n := 0
	for it.Seek(from); it.Valid() && n < want; it.Next() {
		sink += len(it.Key().Data()) + len(it.Value().Data())
		n++
	}
	if err := it.Err(); err != nil || n != want {
		b.Fatal("scan:", n, err)
	}
}

// BenchmarkIterate10kSlice: Iterate10k with KeySlice and ValueSlice (no Go allocation per
// entry).
func BenchmarkIterate10kSlice(b *testing.B) {
	db := readDB.get(b, "grocksdb-read-", true)
	start := make([]byte, workload.KeyLen)
	b.ReportAllocs()
	b.ResetTimer()
	defer workload.StartCPU().Report(b) // cpu-ns/op
	for i := 0; i < b.N; i++ {
		it := db.NewIterator(ro)
		n := 0
		for it.Seek(workload.Key(start, workload.ScanStart(i))); it.Valid() && n < workload.ScanLen; it.Next() {
			sink += len(it.KeySlice().Data()) + len(it.ValueSlice().Data())
			n++
		}
		if err := it.Err(); err != nil || n != workload.ScanLen {
			b.Fatal("scan:", n, err)
		}
		it.Close()
	}
}

// BenchmarkGetParallel: Get (hit) from GOMAXPROCS goroutines (run.sh passes -cpu 1,2).
func BenchmarkGetParallel(b *testing.B) {
	db := readDB.get(b, "grocksdb-read-", true)
	var next atomic.Int64
	var failed atomic.Pointer[error]
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)) * (workload.Preload / 7)
		for pb.Next() {
			v, err := db.Get(ro, workload.Hits.At(i))
			if err == nil && v.Size() != workload.ValueLen {
				err = errors.New("wrong value length")
			}
			if err != nil {
				stored := err // only the failing path allocates
				failed.Store(&stored)
				return
			}
			v.Free()
			i++
		}
	})
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
}
