package resman

/*
#include "resman.h"
*/
import "C"

import (
	"iter"
)

// Batch collects writes to any column families of one DB and applies them atomically.
// Not for concurrent use (calls are serialised by resman, but building one batch from two
// goroutines is rarely meaningful).
type Batch struct {
	db *DB
	h  C.uint64_t
}

// NewBatch creates an empty batch. Close it when done (the DB's Close does otherwise).
func (db *DB) NewBatch() (*Batch, error) {
	h, err := createBatch(db.h)
	if err != nil {
		return nil, err
	}
	return &Batch{db: db, h: h}, nil
}

// Put adds key = value in cf.
func (b *Batch) Put(cf *ColumnFamily, key, value []byte) error {
	var e cerr
	return check(C.rm_batch_put(b.h, cf.h, ptr(key), C.size_t(len(key)), ptr(value), C.size_t(len(value)), &e), &e)
}

// Delete adds the removal of key from cf.
func (b *Batch) Delete(cf *ColumnFamily, key []byte) error {
	var e cerr
	return check(C.rm_batch_delete(b.h, cf.h, ptr(key), C.size_t(len(key)), &e), &e)
}

// DeleteRange adds the removal of every key in [begin, end) of cf.
func (b *Batch) DeleteRange(cf *ColumnFamily, begin, end []byte) error {
	var e cerr
	return check(C.rm_batch_delete_range(b.h, cf.h, ptr(begin), C.size_t(len(begin)), ptr(end), C.size_t(len(end)), &e), &e)
}

// Clear removes every operation.
func (b *Batch) Clear() error {
	var e cerr
	return check(C.rm_batch_clear(b.h, &e), &e)
}

// Count is the number of operations in the batch.
func (b *Batch) Count() (int, error) {
	var e cerr
	var n C.size_t
	err := check(C.rm_batch_count(b.h, &n, &e), &e)
	return int(n), err
}

// Write applies the batch atomically and empties it.
func (b *Batch) Write(opts *WriteOptions) error {
	var e cerr
	return check(C.rm_batch_write(b.h, opts.flags(), &e), &e)
}

// Close releases the batch.
func (b *Batch) Close() error { return b.db.m.CloseResource(Handle(b.h)) }

// Snapshot is a point-in-time view of a DB, for ReadOptions.Snapshot.
type Snapshot struct {
	db *DB
	h  C.uint64_t
}

// NewSnapshot takes a snapshot. Close it as soon as it is not needed.
func (db *DB) NewSnapshot() (*Snapshot, error) {
	h, err := createSnapshot(db.h)
	if err != nil {
		return nil, err
	}
	return &Snapshot{db: db, h: h}, nil
}

// Close releases the snapshot (and closes the iterators reading at it).
func (s *Snapshot) Close() error { return s.db.m.CloseResource(Handle(s.h)) }

// IterOptions bound an iterator.
type IterOptions struct {
	ReadOptions
	// LowerBound is the smallest key returned (inclusive); nil for none.
	LowerBound []byte
	// UpperBound is the key iteration stops before (exclusive); nil for none.
	UpperBound []byte
}

// Iterator walks a column family in key order. Not for concurrent use. Key and Value are
// valid until the next move.
type Iterator struct {
	cf    *ColumnFamily
	h     C.uint64_t
	valid bool
	err   error
	key   []byte
	value []byte
	kbuf  []byte
	vbuf  []byte
}

// NewIterator creates an iterator over cf; position it with SeekToFirst, Seek, ....
func (cf *ColumnFamily) NewIterator(opts *IterOptions) (*Iterator, error) {
	var ro *ReadOptions
	var lower, upper []byte
	if opts != nil {
		ro, lower, upper = &opts.ReadOptions, opts.LowerBound, opts.UpperBound
	}
	snap, flags := ro.split()
	lp, up := boundPtr(lower), boundPtr(upper)
	h, err := createIter(cf.h, snap, flags, lp, len(lower), up, len(upper))
	if err != nil {
		return nil, err
	}
	// One allocation for both entry buffers (load grows each on its own when needed).
	buf := make([]byte, iterKeyBuf+iterValueBuf)
	return &Iterator{cf: cf, h: h, kbuf: buf[:iterKeyBuf:iterKeyBuf], vbuf: buf[iterKeyBuf:]}, nil
}

// The initial sizes of an iterator's key and value buffers.
const (
	iterKeyBuf   = 64
	iterValueBuf = 256
)

// emptyKey gives a non-nil empty bound a valid pointer (NULL would mean "no bound").
var emptyKey [1]byte

// boundPtr: nil for no bound; a non-nil empty bound is the empty key.
func boundPtr(b []byte) *C.uint8_t {
	if b == nil {
		return nil
	}
	if len(b) == 0 {
		return (*C.uint8_t)(&emptyKey[0])
	}
	return ptr(b)
}

func (it *Iterator) moved(rc C.rm_result, valid C.bool, e *cerr) bool {
	if err := check(rc, e); err != nil {
		it.err, it.valid = err, false
		return false
	}
	it.valid = bool(valid)
	if it.valid {
		it.load()
	}
	return it.valid
}

// load copies the current entry into the iterator's buffers (growing them once if needed).
func (it *Iterator) load() {
	for attempt := 0; attempt < 2; attempt++ {
		var e cerr
		var kl, vl C.size_t
		rc := C.rm_iter_entry(it.h, ptr(it.kbuf), C.size_t(len(it.kbuf)), &kl, ptr(it.vbuf), C.size_t(len(it.vbuf)), &vl, &e)
		if rc == C.RM_ERR_BUFFER_TOO_SMALL {
			if int(kl) > len(it.kbuf) {
				it.kbuf = make([]byte, int(kl))
			}
			if int(vl) > len(it.vbuf) {
				it.vbuf = make([]byte, int(vl))
			}
			continue
		}
		if err := check(rc, &e); err != nil {
			it.err, it.valid = err, false
			return
		}
		it.key, it.value = it.kbuf[:kl], it.vbuf[:vl]
		return
	}
}

// SeekToFirst moves to the first key; it reports whether there is one.
func (it *Iterator) SeekToFirst() bool {
	var e cerr
	var v C.bool
	return it.moved(C.rm_iter_seek_to_first(it.h, &v, &e), v, &e)
}

// SeekToLast moves to the last key.
func (it *Iterator) SeekToLast() bool {
	var e cerr
	var v C.bool
	return it.moved(C.rm_iter_seek_to_last(it.h, &v, &e), v, &e)
}

// Seek moves to the first key at or after key.
func (it *Iterator) Seek(key []byte) bool {
	var e cerr
	var v C.bool
	return it.moved(C.rm_iter_seek(it.h, ptr(key), C.size_t(len(key)), &v, &e), v, &e)
}

// SeekForPrev moves to the last key at or before key.
func (it *Iterator) SeekForPrev(key []byte) bool {
	var e cerr
	var v C.bool
	return it.moved(C.rm_iter_seek_for_prev(it.h, ptr(key), C.size_t(len(key)), &v, &e), v, &e)
}

// Next moves to the next key (false at the end, or on an error: see Err).
func (it *Iterator) Next() bool {
	if !it.valid {
		return false
	}
	var e cerr
	var v C.bool
	return it.moved(C.rm_iter_next(it.h, &v, &e), v, &e)
}

// Prev moves to the previous key.
func (it *Iterator) Prev() bool {
	if !it.valid {
		return false
	}
	var e cerr
	var v C.bool
	return it.moved(C.rm_iter_prev(it.h, &v, &e), v, &e)
}

// Valid reports whether the iterator is on an entry.
func (it *Iterator) Valid() bool { return it.valid }

// Key is the current key (valid until the next move).
func (it *Iterator) Key() []byte { return it.key }

// Value is the current value (valid until the next move).
func (it *Iterator) Value() []byte { return it.value }

// Err is the error that stopped the iteration, if any (ErrClosed when the DB closed under it).
func (it *Iterator) Err() error { return it.err }

// Close releases the iterator.
func (it *Iterator) Close() error { return it.cf.db.m.CloseResource(Handle(it.h)) }

// All iterates from the first key on (for k, v := range it.All()); check Err afterwards.
// The slices are valid until the next step.
func (it *Iterator) All() iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		for ok := it.SeekToFirst(); ok; ok = it.Next() {
			if !yield(it.key, it.value) {
				return
			}
		}
	}
}
