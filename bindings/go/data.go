package resman

/*
#include "resman.h"
*/
import "C"

import (
	"bytes"
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

// Close releases the batch. Exactly one Close returns nil (or the close's error); any other,
// racing or later, returns ErrAlreadyClosed.
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

// Close releases the snapshot (and closes the iterators reading at it). Exactly one Close
// returns nil (or the close's error); any other, racing or later, returns ErrAlreadyClosed.
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
//
// It reads ahead: each call into resman (rm_iter_read_next / rm_iter_read_prev) copies a
// batch of entries into the iterator's buffer, and Next and Prev serve from it. The batch
// starts at one entry after every seek and doubles with each further read up to
// maxIterBatch, so a seek that reads one entry copies one, and a long scan makes one call
// per maxIterBatch entries. The iterator reads at the DB as of its creation or last Refresh (a RocksDB
// iterator's implicit snapshot), so reading ahead never shows anything a step-by-step read
// would not.
type Iterator struct {
	cf    *ColumnFamily
	h     C.uint64_t
	valid bool
	err   error
	key   []byte
	value []byte

	buf     []byte // the batch: packed key, value, key, value, ...
	n       int    // entries in the batch
	i       int    // the current entry's index in the batch
	off     int    // where the current entry starts in buf
	fwd     bool   // the batch was read forwards (else backwards: entry 0 is the largest key)
	more    bool   // the C iterator is on an entry: the one after the batch
	want    int    // entries to ask for in the next read
	grow    bool   // the last read was cut short by the buffer: double it before the next
	pending error  // an error met after the batch's entries were copied: reported after them
	scratch []byte // a copy of the current key when the direction turns
	// lens receives the batch's entry sizes; it grows with want (up to maxIterBatch), so a
	// short scan does not pay for a long one's array.
	lens []C.rm_entry_len
	// peak is the most bytes one read filled: on Close it teaches the column family the
	// buffer its next iterators start with.
	peak int
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
	return &Iterator{cf: cf, h: h}, nil
}

// Read-ahead limits: entries per call, and the initial and largest batch buffer (a single
// entry larger than iterMaxBuf gets a buffer of its own size).
const (
	maxIterBatch = 128
	iterBuf      = 1 << 10
	iterMaxBuf   = 64 << 10
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

// seeked handles a seek's result: on an entry, it reads a first batch in the direction the
// seek suggests (forwards after SeekToFirst and Seek, backwards after SeekToLast and
// SeekForPrev).
func (it *Iterator) seeked(rc C.rm_result, valid C.bool, e *cerr, forward bool) bool {
	it.n, it.pending, it.want = 0, nil, 1
	if err := check(rc, e); err != nil {
		return it.fail(err)
	}
	if !valid {
		return it.end()
	}
	return it.read(forward, false)
}

func (it *Iterator) fail(err error) bool {
	it.err, it.valid, it.n = err, false, 0
	return false
}

func (it *Iterator) end() bool {
	it.valid, it.n, it.key, it.value = false, 0, nil, nil
	return false
}

// size is the packed size of batch entry i.
func (it *Iterator) size(i int) int {
	return int(it.lens[i].key_len + it.lens[i].value_len)
}

// set points Key and Value at the current batch entry.
func (it *Iterator) set() bool {
	kl := int(it.lens[it.i].key_len)
	end := it.off + it.size(it.i)
	it.key = it.buf[it.off : it.off+kl : it.off+kl]
	it.value = it.buf[it.off+kl : end : end]
	it.valid = true
	return true
}

// read copies the next batch in direction forward, starting at the C iterator's entry. With
// skip the C iterator was sought back to the current entry (its key is in it.scratch), which
// the batch then starts with and which is passed over.
func (it *Iterator) read(forward, skip bool) bool {
	switch {
	case it.buf == nil:
		// As large as the column family's recent iterators needed, so a scan of large
		// entries does not start with reads cut short by a small buffer.
		it.buf = make([]byte, max(iterBuf, int(it.cf.iterHint.Load())))
	case it.grow:
		it.buf, it.grow = make([]byte, 2*len(it.buf)), false
	}
	if len(it.lens) < it.want {
		it.lens = make([]C.rm_entry_len, min(2*it.want, maxIterBatch))
	}
	for {
		var e cerr
		var count C.size_t
		var more C.bool
		var rc C.rm_result
		if forward {
			rc = C.rm_iter_read_next(it.h, ptr(it.buf), C.size_t(len(it.buf)), &it.lens[0], C.size_t(it.want), &count, &more, &e)
		} else {
			rc = C.rm_iter_read_prev(it.h, ptr(it.buf), C.size_t(len(it.buf)), &it.lens[0], C.size_t(it.want), &count, &more, &e)
		}
		if rc == C.RM_ERR_BUFFER_TOO_SMALL && count == 0 {
			// The entry alone does not fit: a buffer that holds it (and twice as much).
			it.buf = make([]byte, max(it.size(0), 2*len(it.buf)))
			continue
		}
		n := int(count)
		if err := check(rc, &e); err != nil {
			if n == 0 {
				return it.fail(err)
			}
			it.pending, more = err, false
		}
		it.n, it.i, it.off, it.fwd, it.more = n, 0, 0, forward, bool(more)
		used := 0
		for j := range n {
			used += it.size(j)
		}
		it.peak = max(it.peak, used)
		if n == it.want {
			it.want = min(2*it.want, maxIterBatch)
		} else if it.more && len(it.buf) < iterMaxBuf {
			it.grow = true
		}
		if skip && n > 0 && bytes.Equal(it.buf[:it.lens[0].key_len], it.scratch) {
			if n == 1 {
				if !it.more {
					return it.end()
				}
				skip = false
				continue
			}
			it.i, it.off = 1, it.size(0)
		}
		if n == 0 {
			return it.end()
		}
		return it.set()
	}
}

// move steps to the next (forward) or previous entry: from the batch when it holds it, else
// by reading the next batch; turning around at the batch's first entry seeks the C iterator
// back to the current entry first.
func (it *Iterator) move(forward bool) bool {
	if !it.valid {
		return false
	}
	if forward == it.fwd {
		if it.i+1 < it.n {
			it.off += it.size(it.i)
			it.i++
			return it.set()
		}
		if it.pending != nil {
			return it.fail(it.pending)
		}
		if !it.more {
			return it.end()
		}
		return it.read(forward, false)
	}
	if it.i > 0 {
		it.i--
		it.off -= it.size(it.i)
		return it.set()
	}
	// The entry wanted comes before the batch: seek back to the current entry (the C
	// iterator has moved past the batch) and read on from there the other way.
	it.scratch = append(it.scratch[:0], it.key...)
	var e cerr
	var v C.bool
	rc := C.rm_iter_seek(it.h, ptr(it.scratch), C.size_t(len(it.scratch)), &v, &e)
	it.n, it.pending = 0, nil
	if err := check(rc, &e); err != nil {
		return it.fail(err)
	}
	if !v {
		return it.end()
	}
	return it.read(forward, true)
}

// SeekToFirst moves to the first key; it reports whether there is one.
func (it *Iterator) SeekToFirst() bool {
	var e cerr
	var v C.bool
	return it.seeked(C.rm_iter_seek_to_first(it.h, &v, &e), v, &e, true)
}

// SeekToLast moves to the last key.
func (it *Iterator) SeekToLast() bool {
	var e cerr
	var v C.bool
	return it.seeked(C.rm_iter_seek_to_last(it.h, &v, &e), v, &e, false)
}

// Seek moves to the first key at or after key.
func (it *Iterator) Seek(key []byte) bool {
	var e cerr
	var v C.bool
	return it.seeked(C.rm_iter_seek(it.h, ptr(key), C.size_t(len(key)), &v, &e), v, &e, true)
}

// SeekForPrev moves to the last key at or before key.
func (it *Iterator) SeekForPrev(key []byte) bool {
	var e cerr
	var v C.bool
	return it.seeked(C.rm_iter_seek_for_prev(it.h, ptr(key), C.size_t(len(key)), &v, &e), v, &e, false)
}

// Next moves to the next key (false at the end, or on an error: see Err).
func (it *Iterator) Next() bool { return it.move(true) }

// Prev moves to the previous key.
func (it *Iterator) Prev() bool { return it.move(false) }

// Valid reports whether the iterator is on an entry.
func (it *Iterator) Valid() bool { return it.valid }

// Key is the current key (valid until the next move).
func (it *Iterator) Key() []byte { return it.key }

// Value is the current value (valid until the next move).
func (it *Iterator) Value() []byte { return it.value }

// Err is the error that stopped the iteration, if any (ErrClosed when the DB closed under it).
func (it *Iterator) Err() error { return it.err }

// Refresh makes the iterator read the DB's latest data (RocksDB's Iterator::Refresh): the
// writes made since it was created or last refreshed become visible. So one iterator can
// serve scan after scan (Refresh, Seek, Next...) without a NewIterator and a Close per scan.
// It leaves the iterator unpositioned (seek next) and clears Err. An iterator at a snapshot
// cannot be refreshed (an *Error with CodeInvalidArgument: it would read past its snapshot).
func (it *Iterator) Refresh() error {
	var e cerr
	rc := C.rm_iter_refresh(it.h, &e)
	it.end()
	it.err, it.pending = nil, nil
	return check(rc, &e)
}

// Close releases the iterator. Exactly one Close returns nil (or the close's error); any
// other, racing or later, returns ErrAlreadyClosed.
func (it *Iterator) Close() error {
	if it.peak > 0 {
		it.cf.learnIterBuf(it.peak)
	}
	return it.cf.db.m.CloseResource(Handle(it.h))
}

// learnIterBuf updates the starting buffer of cf's iterators from an iterator whose fullest
// read took `peak` bytes: up at once (to a power of two, at most iterMaxBuf), down slowly (an
// eighth of the gap per iterator). Concurrent updates may overwrite each other: a hint.
func (cf *ColumnFamily) learnIterBuf(peak int) {
	want := iterBuf
	for want < peak && want < iterMaxBuf {
		want *= 2
	}
	cur := max(int(cf.iterHint.Load()), iterBuf)
	switch {
	case want > cur:
		cf.iterHint.Store(uint32(want))
	case want < cur:
		cf.iterHint.Store(uint32(cur - max((cur-want)/8, 1)))
	}
}

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
