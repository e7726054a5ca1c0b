package resman

/*
#include <stdlib.h>
#include "resman.h"

// Get's allocator for a value larger than its buffer (rm_get_alloc): C memory, which Get
// copies into a Go slice and frees. A C function: rm_get_alloc stays a nocallback call.
uint8_t *resman_go_malloc(void *context, size_t len) {
    (void)context;
    return (uint8_t *)malloc(len);
}
*/
import "C"

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// Compression of a column family's table files.
type Compression uint32

const (
	// CompressionInherit (for a column family) uses the DB's Options.Compression.
	CompressionInherit Compression = C.RM_COMPRESSION_INHERIT
	CompressionNone    Compression = C.RM_COMPRESSION_NONE
	CompressionLZ4     Compression = C.RM_COMPRESSION_LZ4
	CompressionZstd    Compression = C.RM_COMPRESSION_ZSTD
)

// Options are the DB open options. Start from DefaultOptions.
type Options struct {
	CreateIfMissing             bool
	CreateMissingColumnFamilies bool
	ErrorIfExists               bool
	// WriteBufferSize is the size of one memtable per column family, in bytes (64 MiB).
	WriteBufferSize uint64
	// MaxOpenFiles is -1 (no limit, the default) or positive.
	MaxOpenFiles int32
	// BlockCacheSize is one LRU cache shared by the column families, in bytes (32 MiB); 0
	// disables block caching.
	BlockCacheSize uint64
	// Compression of every column family that does not choose its own (LZ4).
	Compression Compression
	// ColumnFamilies to open ("default" included when listed), with their compression.
	ColumnFamilies []ColumnFamilyOptions
}

// ColumnFamilyOptions names a column family to open.
type ColumnFamilyOptions struct {
	Name        string
	Compression Compression
}

// DefaultOptions are resman's defaults, with the column families "default" and the given
// names.
func DefaultOptions(columnFamilies ...string) Options {
	var c C.rm_db_options
	C.rm_db_options_default(&c)
	o := Options{
		CreateIfMissing:             c.create_if_missing != 0,
		CreateMissingColumnFamilies: c.create_missing_column_families != 0,
		ErrorIfExists:               c.error_if_exists != 0,
		WriteBufferSize:             uint64(c.write_buffer_size),
		MaxOpenFiles:                int32(c.max_open_files),
		BlockCacheSize:              uint64(c.block_cache_size),
		Compression:                 Compression(c.compression),
	}
	o.ColumnFamilies = append(o.ColumnFamilies, ColumnFamilyOptions{Name: "default"})
	for _, n := range columnFamilies {
		if n != "default" {
			o.ColumnFamilies = append(o.ColumnFamilies, ColumnFamilyOptions{Name: n})
		}
	}
	return o
}

func flag(b bool) C.uint8_t {
	if b {
		return 1
	}
	return 0
}

// DB is an open RocksDB database. Its column families, iterators, snapshots and batches are
// closed before it, whatever order Close is called in. Safe for concurrent use.
type DB struct {
	m   *Manager
	own bool // the DB was opened with Open and owns its manager
	// closed is set by the first Close of a DB that owns its manager: after it, the
	// manager is destroyed, so a second Close cannot ask resman and answers here.
	closed atomic.Bool
	h      C.uint64_t
	cfs    map[string]*ColumnFamily
	list   []*ColumnFamily
}

// ColumnFamily is a handle to one column family of a DB. Safe for concurrent use.
type ColumnFamily struct {
	db   *DB
	h    C.uint64_t
	name string
	// mgHint is the bytes per key that MultiGet's recent calls needed (0: no call yet); it
	// sizes the next call's buffer.
	mgHint atomic.Uint32
	// getHint is the size of the values Get read lately (0: none yet); it sizes Get's buffer.
	getHint atomic.Uint32
	// iterHint is the read-ahead buffer recent iterators needed (0: none yet); it sizes the
	// next iterator's.
	iterHint atomic.Uint32
}

// Open opens the DB at path with a manager of its own (default Config): DB.Close closes the
// DB and destroys that manager. Use Manager.Open to put several resources under one manager.
func Open(path string, opts Options) (*DB, error) {
	m, err := NewManager(DefaultConfig())
	if err != nil {
		return nil, err
	}
	db, err := m.Open("db", path, opts)
	if err != nil {
		_ = m.Close()
		return nil, err
	}
	db.own = true
	return db, nil
}

// Open opens the DB at path and registers it as name (its column families as name/cf).
func (m *Manager) Open(name, path string, opts Options) (*DB, error) {
	if len(opts.ColumnFamilies) == 0 {
		opts.ColumnFamilies = DefaultOptions().ColumnFamilies
	}
	co := C.rm_db_options{
		create_if_missing:              flag(opts.CreateIfMissing),
		create_missing_column_families: flag(opts.CreateMissingColumnFamilies),
		error_if_exists:                flag(opts.ErrorIfExists),
		write_buffer_size:              C.uint64_t(opts.WriteBufferSize),
		max_open_files:                 C.int32_t(opts.MaxOpenFiles),
		compression:                    C.uint32_t(opts.Compression),
		block_cache_size:               C.uint64_t(opts.BlockCacheSize),
	}
	n := len(opts.ColumnFamilies)
	// The names are C strings in C memory; the array of rm_cf_options holds C pointers only.
	specs := unsafe.Slice((*C.rm_cf_options)(C.malloc(C.size_t(n)*C.size_t(unsafe.Sizeof(C.rm_cf_options{})))), n)
	defer C.free(unsafe.Pointer(&specs[0]))
	for i, cf := range opts.ColumnFamilies {
		specs[i].name = C.CString(cf.Name)
		specs[i].compression = C.uint32_t(cf.Compression)
	}
	defer func() {
		for i := range specs {
			C.free(unsafe.Pointer(specs[i].name))
		}
	}()
	cname, cpath := C.CString(name), C.CString(path)
	defer C.free(unsafe.Pointer(cname))
	defer C.free(unsafe.Pointer(cpath))
	out := make([]C.uint64_t, n)
	var e cerr
	var h C.uint64_t
	rc := C.rm_db_open_cf(m.h, cname, cpath, &co, &specs[0], C.size_t(n), &h, &out[0], &e)
	if err := check(rc, &e); err != nil {
		return nil, err
	}
	db := &DB{m: m, h: h, cfs: make(map[string]*ColumnFamily, n)}
	for i, cf := range opts.ColumnFamilies {
		c := &ColumnFamily{db: db, h: out[i], name: cf.Name}
		db.cfs[cf.Name] = c
		db.list = append(db.list, c)
	}
	return db, nil
}

// Handle is the DB's handle in its manager (a dependency for Manager.Register).
func (db *DB) Handle() Handle { return Handle(db.h) }

// Manager is the manager the DB is registered in.
func (db *DB) Manager() *Manager { return db.m }

// CF returns the column family opened under name, or nil.
func (db *DB) CF(name string) *ColumnFamily { return db.cfs[name] }

// Default returns the "default" column family (nil if it was not asked for).
func (db *DB) Default() *ColumnFamily { return db.cfs["default"] }

// Close closes the DB gracefully: its iterators, snapshots, batches and column families
// first (and Go resources registered as depending on it), waiting for operations in flight up
// to Config.CleanupTimeout; memtables are flushed and the WAL synced. What is unfinished then
// is forced, for up to Config.ForceCleanupTimeout; what has still not finished is reported as
// ErrTimeout. A DB from Open also destroys its manager. A second Close returns
// ErrAlreadyClosed (of concurrent Closes, exactly one returns the result), and so does a Close
// after the DB's manager was shut down (Manager.Shutdown or Manager.Close closed the DB).
func (db *DB) Close() error {
	if db.own && db.closed.Swap(true) {
		return &Error{Code: CodeAlreadyClosed, Message: "the DB and its manager were closed already"}
	}
	err := closeHandle(db.m.h, db.h)
	if db.own {
		if derr := db.m.Close(); err == nil && derr != nil && !isCode(derr, CodeAlreadyClosed) {
			err = derr
		}
	}
	return err
}

func isCode(err error, c Code) bool {
	e, ok := err.(*Error)
	return ok && e.Code == c
}

// Memory is RocksDB's memory figures for a DB, in bytes.
type Memory struct {
	MemTableTotal     uint64 `json:"mem_table_total"`
	MemTableUnflushed uint64 `json:"mem_table_unflushed"`
	TableReaders      uint64 `json:"table_readers"`
	BlockCache        uint64 `json:"block_cache"`
}

// Memory returns RocksDB's memory figures for the DB.
func (db *DB) Memory() (Memory, error) {
	var e cerr
	var m C.rm_memory
	if err := check(C.rm_db_memory(db.h, &m, &e), &e); err != nil {
		return Memory{}, err
	}
	return Memory{uint64(m.mem_table_total), uint64(m.mem_table_unflushed), uint64(m.table_readers), uint64(m.block_cache)}, nil
}

// WriteOptions are per-write flags.
type WriteOptions struct {
	// Sync fsyncs the WAL before the write returns (survives a power cut).
	Sync bool
	// DisableWAL skips the WAL (lost if the process dies before a flush).
	DisableWAL bool
}

func (o *WriteOptions) flags() C.uint32_t {
	if o == nil {
		return 0
	}
	var f C.uint32_t
	if o.Sync {
		f |= C.RM_WRITE_SYNC
	}
	if o.DisableWAL {
		f |= C.RM_WRITE_DISABLE_WAL
	}
	return f
}

// ReadOptions are per-read settings.
type ReadOptions struct {
	// Snapshot reads the DB as it was when the snapshot was taken.
	Snapshot *Snapshot
	// NoFillCache keeps the blocks this read loads out of the block cache.
	NoFillCache bool
	// NoVerifyChecksums skips block checksum verification.
	NoVerifyChecksums bool
}

func (o *ReadOptions) split() (C.uint64_t, C.uint32_t) {
	if o == nil {
		return 0, 0
	}
	var f C.uint32_t
	if o.NoFillCache {
		f |= C.RM_READ_NO_FILL_CACHE
	}
	if o.NoVerifyChecksums {
		f |= C.RM_READ_NO_VERIFY_CHECKSUMS
	}
	var s C.uint64_t
	if o.Snapshot != nil {
		s = o.Snapshot.h
	}
	return s, f
}

// ptr returns a pointer to b's first byte, or nil for an empty slice.
func ptr(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0]))
}

// Put writes key = value.
func (cf *ColumnFamily) Put(key, value []byte, opts *WriteOptions) error {
	var e cerr
	rc := C.rm_put_opt(cf.h, ptr(key), C.size_t(len(key)), ptr(value), C.size_t(len(value)), opts.flags(), &e)
	return check(rc, &e)
}

// Delete removes key (no error when it does not exist).
func (cf *ColumnFamily) Delete(key []byte, opts *WriteOptions) error {
	var e cerr
	return check(C.rm_delete_opt(cf.h, ptr(key), C.size_t(len(key)), opts.flags(), &e), &e)
}

// Get's buffer sizes.
const (
	// getStackBuf is the room Get reads small values into on its stack (a miss then allocates
	// nothing).
	getStackBuf = 128
	// getMaxHint bounds Get's first buffer: a larger value goes through C memory (one lookup
	// still, plus a copy).
	getMaxHint = 64 << 10
)

// Get returns key's value in a new slice of its own, or ErrNotFound. One cgo call and one
// RocksDB lookup whatever the value's size: the value is read into a buffer sized from the
// values this column family returned lately (on the stack while they are small, so a miss
// allocates nothing), and a value that does not fit is handed over in C memory by the same
// call (rm_get_alloc), copied and freed.
func (cf *ColumnFamily) Get(key []byte, opts *ReadOptions) ([]byte, error) {
	snap, flags := opts.split()
	if hint := int(cf.getHint.Load()); hint > getStackBuf {
		return cf.getSized(key, snap, flags, hint)
	}
	var stack [getStackBuf]byte
	n, heap, err := cf.getInto(key, snap, flags, stack[:])
	if err != nil {
		return nil, err
	}
	cf.learnGet(n, getStackBuf)
	if heap != nil {
		return takeC(heap, n), nil
	}
	v := make([]byte, n)
	copy(v, stack[:n])
	return v, nil
}

// getScratch holds Get's reusable buffers (*[]byte) for values too large for its stack.
var getScratch sync.Pool

// getSized is Get with a pooled buffer of at least hint bytes; the value is copied out into a
// slice of exactly its size (append allocates without zeroing), so a hit allocates only the
// value's own bytes and the Go heap grows no faster than the values returned.
func (cf *ColumnFamily) getSized(key []byte, snap C.uint64_t, flags C.uint32_t, hint int) ([]byte, error) {
	bp, _ := getScratch.Get().(*[]byte)
	if bp == nil || cap(*bp) < hint {
		b := make([]byte, hint)
		bp = &b
	}
	buf := (*bp)[:cap(*bp)]
	n, heap, err := cf.getInto(key, snap, flags, buf)
	var v []byte
	if err == nil {
		cf.learnGet(n, len(buf))
		if heap != nil {
			v = takeC(heap, n)
		} else {
			v = append([]byte(nil), buf[:n]...)
			v = v[:n:n] // append rounds the capacity up to a size class
		}
	}
	getScratch.Put(bp)
	return v, err
}

// getInto reads key's value into buf when it fits; otherwise resman copies it into C memory
// from resman_go_malloc (heap, to be freed). One lookup either way.
func (cf *ColumnFamily) getInto(key []byte, snap C.uint64_t, flags C.uint32_t, buf []byte) (int, *C.uint8_t, error) {
	var e cerr
	var n C.size_t
	var value *C.uint8_t
	rc := C.rm_get_alloc(cf.h, snap, flags, ptr(key), C.size_t(len(key)),
		(*C.uint8_t)(&buf[0]), C.size_t(len(buf)), C.rm_alloc_fn(C.resman_go_malloc), nil,
		&value, &n, &e)
	if rc != C.RM_OK {
		return 0, nil, check(rc, &e)
	}
	if int(n) <= len(buf) {
		return int(n), nil, nil
	}
	return int(n), value, nil
}

// takeC copies n bytes of C memory from resman_go_malloc into a new slice and frees it.
func takeC(p *C.uint8_t, n int) []byte {
	v := make([]byte, n)
	copy(v, unsafe.Slice((*byte)(unsafe.Pointer(p)), n))
	C.free(unsafe.Pointer(p))
	return v
}

// learnGet updates the value-size hint from a read of n bytes into a buffer of `had` bytes.
// The hint for n is the stack buffer up to getStackBuf, else the next power of two (so the
// value fills at least half of it), at most getMaxHint. The hint moves up to it at once and
// down slowly (an eighth of the gap per read, at least a byte), so that a few small values do
// not make the next large one miss. Concurrent reads may overwrite each other's update: it is
// only a hint.
func (cf *ColumnFamily) learnGet(n, had int) {
	want := getStackBuf
	for want < n && want < getMaxHint {
		want *= 2
	}
	switch {
	case want > had:
		cf.getHint.Store(uint32(want))
	case want < had:
		cf.getHint.Store(uint32(had - max((had-want)/8, 1)))
	}
}

// GetAppend appends key's value to dst and returns the extended slice: one cgo call and no
// allocation when dst has room; otherwise it grows dst and retries once.
func (cf *ColumnFamily) GetAppend(dst, key []byte, opts *ReadOptions) ([]byte, error) {
	snap, flags := opts.split()
	for attempt := 0; ; attempt++ {
		if cap(dst)-len(dst) == 0 {
			dst = append(dst, 0)[:len(dst)]
		}
		room := dst[len(dst):cap(dst)]
		var e cerr
		var n C.size_t
		rc := C.rm_get_opt(cf.h, snap, flags, ptr(key), C.size_t(len(key)), ptr(room), C.size_t(len(room)), &n, &e)
		if rc == C.RM_OK {
			return dst[:len(dst)+int(n)], nil
		}
		if rc == C.RM_ERR_BUFFER_TOO_SMALL && attempt < 2 {
			grown := make([]byte, len(dst), len(dst)+int(n))
			copy(grown, dst)
			dst = grown
			continue
		}
		return dst, check(rc, &e)
	}
}
