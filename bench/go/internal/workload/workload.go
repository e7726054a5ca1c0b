// Package workload is the data both benchmark packages use (resmanbench and grocksbench):
// the same keys, values, access order and sizes, so that the two suites differ only in the
// binding under test. It is pure Go (no cgo): each benchmark package links one RocksDB.
package workload

import (
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

const (
	// KeyLen and ValueLen are the sizes of every key and value.
	KeyLen   = 16
	ValueLen = 100
	// Preload is the number of keys written to the read DB before the read benchmarks.
	Preload = 100_000
	// BatchSize is the number of puts in one batch of BatchWrite100 and keys in MultiGet100.
	BatchSize = 100
	// ScanLen is the number of entries one op of Iterate10k reads.
	ScanLen = 10_000
	// WriteBufferSize and BlockCacheSize are resman's defaults (64 MiB memtable, 32 MiB LRU
	// block cache), set explicitly on both sides.
	WriteBufferSize = 64 << 20
	BlockCacheSize  = 32 << 20
)

// Key writes the 16-byte key of n into dst[:KeyLen]: "key" and 13 decimal digits, so byte
// order is numeric order. The read DB holds the keys of the even numbers 0, 2, ...,
// 2*(Preload-1); a miss is the key of an odd number, inside the key range.
func Key(dst []byte, n uint64) []byte {
	dst = dst[:KeyLen]
	copy(dst, "key")
	for i := KeyLen - 1; i >= 3; i-- {
		dst[i] = byte('0' + n%10)
		n /= 10
	}
	return dst
}

// Value writes the 100-byte value of n into dst[:ValueLen] (deterministic, mildly
// compressible, as LZ4 would see real data).
func Value(dst []byte, n uint64) []byte {
	dst = dst[:ValueLen]
	x := n*0x9E3779B97F4A7C15 + 1
	for i := range dst {
		if i%4 == 0 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
		}
		dst[i] = 'a' + byte(x>>(8*(i%4)))%16
	}
	return dst
}

// Keys are precomputed keys in a random order, so that a benchmark loop only slices.
type Keys struct {
	flat []byte
	n    int
}

// Len is the number of keys.
func (k *Keys) Len() int { return k.n }

// At returns key i mod Len (a subslice of shared memory: do not modify).
func (k *Keys) At(i int) []byte {
	i %= k.n
	return k.flat[i*KeyLen : (i+1)*KeyLen : (i+1)*KeyLen]
}

// shuffled returns the keys of f(0..n-1) in a fixed random order.
func shuffled(n int, f func(int) uint64) *Keys {
	r := rand.New(rand.NewPCG(1, 2))
	perm := r.Perm(n)
	k := &Keys{flat: make([]byte, n*KeyLen), n: n}
	for i, p := range perm {
		Key(k.flat[i*KeyLen:], f(p))
	}
	return k
}

// Hits are the preloaded keys in a random order; Misses are as many absent keys interleaved
// with them, in a random order.
var (
	Hits   = shuffled(Preload, func(i int) uint64 { return 2 * uint64(i) })
	Misses = shuffled(Preload, func(i int) uint64 { return 2*uint64(i) + 1 })
)

// PreloadEntry returns the i-th preloaded entry (i in [0, Preload)), in key order.
func PreloadEntry(kbuf, vbuf []byte, i int) (key, value []byte) {
	return Key(kbuf, 2*uint64(i)), Value(vbuf, 2*uint64(i))
}

// ShortScanLen is the number of entries the i-th op of ShortScan reads: 1 to 10.
func ShortScanLen(i int) int { return 1 + (i*7)%10 }

// ScanStart is the number whose key the i-th scan of Iterate10k seeks to: a preloaded key
// with at least ScanLen entries from it on.
func ScanStart(i int) uint64 {
	return 2 * uint64((i*7919)%(Preload-ScanLen+1))
}

// WriteKey is the key of the i-th write of Put and BatchWrite100 (the writes go to a DB of
// their own, so the read DB does not change): a fixed permutation of i, so that the memtable
// sees inserts all over the key space, not appends.
func WriteKey(dst []byte, i uint64) []byte {
	const mask = 1<<40 - 1
	return Key(dst, (i*0x5DEECE66D+11)&mask)
}

// SeedEnv names the environment variable with the directory of the seed DB: the preloaded
// read DB, made once by resmanbench (MakeSeedEnv) and copied by every benchmark process of
// both packages, so that the two read byte-identical table files. Without it, each process
// preloads a DB of its own through its binding.
const (
	SeedEnv     = "RESMAN_BENCH_SEED"
	MakeSeedEnv = "RESMAN_BENCH_MAKE_SEED"
)

// CopyDir copies the regular files of the directory src (a closed DB) into dst.
func CopyDir(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if err := copyFile(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
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
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// TempDir creates a directory for the benchmark DBs, under $RESMAN_BENCH_DIR or the
// system's temporary directory; the caller removes it.
func TempDir(prefix string) (string, error) {
	return os.MkdirTemp(os.Getenv("RESMAN_BENCH_DIR"), prefix)
}

// PrepareDir creates the directory of a benchmark DB (see TempDir) and, for the read DB
// (preload), fills it: with a copy of the seed DB of SeedEnv when it is set, else with
// makeSeed(dir), which preloads it through the binding under test. The directory is returned
// even with an error, for the caller to remove.
func PrepareDir(prefix string, preload bool, makeSeed func(dir string) error) (string, error) {
	dir, err := TempDir(prefix)
	if err != nil || !preload {
		return dir, err
	}
	if seed := os.Getenv(SeedEnv); seed != "" {
		return dir, CopyDir(seed, dir)
	}
	return dir, makeSeed(dir)
}

// CPU is a reading of the process's CPU time (user and system, every thread: the benchmark,
// Go's garbage collector, RocksDB's background threads).
type CPU time.Duration

// StartCPU reads the CPU time; call it where the timed loop starts.
func StartCPU() CPU {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return CPU(time.Duration(ru.Utime.Nano() + ru.Stime.Nano()))
}

// Report adds the CPU time per op since c as the metric cpu-ns/op: unlike ns/op, it does not
// grow while other processes hold the CPU, so it is the steadier figure on a busy machine.
func (c CPU) Report(b *testing.B) {
	b.ReportMetric(float64(StartCPU()-c)/float64(b.N), "cpu-ns/op")
}
