package resman

/*
#include "resman.h"

// Defined in db.go's preamble: C memory for the values that do not fit.
extern uint8_t *resman_go_malloc(void *context, size_t len);
*/
import "C"

import (
	"fmt"
	"sync"
)

// MultiGet tuning.
const (
	// mgFirstHint is the bytes per key of a column family's first MultiGet buffer, before
	// any call has shown its values' sizes.
	mgFirstHint = 64
	// mgMaxHint bounds the learnt bytes per key: a few huge values must not make every later
	// call allocate huge buffers (larger values come back in C memory, one copy more).
	mgMaxHint = 4 << 10
	// mgMaxFirstBuf bounds the buffer whatever the number of keys.
	mgMaxFirstBuf = 64 << 20
	// The scratch space of calls larger than this is not kept for reuse.
	mgMaxPooledKeys  = 4096
	mgMaxPooledBytes = 256 << 10
)

// multiGetScratch is what a MultiGet passes to C and does not return (the concatenated keys,
// their lengths, the per-key results and C pointers, the positions of the keys being read),
// reused across calls through multiGetPool. It holds no Go pointers.
type multiGetScratch struct {
	flat    []byte
	lens    []C.size_t
	vals    []C.rm_value
	idx     []int
	spilled []*C.uint8_t // C memory, copied and reset to nil before the scratch is reused
}

var multiGetPool = sync.Pool{New: func() any { return new(multiGetScratch) }}

// fill prepares the arguments for the keys at s.idx.
func (s *multiGetScratch) fill(keys [][]byte) {
	n := len(s.idx)
	if cap(s.lens) < n {
		s.lens = make([]C.size_t, n)
		s.vals = make([]C.rm_value, n)
	}
	s.lens, s.vals = s.lens[:n], s.vals[:n]
	s.flat = s.flat[:0]
	for j, i := range s.idx {
		s.flat = append(s.flat, keys[i]...)
		s.lens[j] = C.size_t(len(keys[i]))
	}
}

func (s *multiGetScratch) release() {
	if cap(s.idx) > mgMaxPooledKeys || cap(s.flat) > mgMaxPooledBytes {
		return
	}
	multiGetPool.Put(s)
}

// MultiGet reads keys from cf in one call; missing keys give nil values. Each value is a
// slice of its own (its capacity ends where it does).
//
// One cgo call and one RocksDB lookup per key whatever the values' sizes
// (rm_multi_get_alloc): the values are packed into one buffer sized from this column family's
// recent calls, and a value that does not fit in it comes back in C memory from the same call,
// copied and freed.
func (cf *ColumnFamily) MultiGet(keys [][]byte, opts *ReadOptions) ([][]byte, error) {
	out := make([][]byte, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	snap, flags := opts.split()
	s := multiGetPool.Get().(*multiGetScratch)
	defer s.release()
	s.idx = s.idx[:0]
	for i := range keys {
		s.idx = append(s.idx, i)
	}
	s.fill(keys)
	n := len(keys)
	if cap(s.spilled) < n {
		s.spilled = make([]*C.uint8_t, n)
	}
	s.spilled = s.spilled[:n]
	kp := ptr(s.flat)
	if kp == nil { // every key is empty: a valid pointer to no bytes
		kp = (*C.uint8_t)(&emptyKey[0])
	}
	buf := make([]byte, max(cf.multiGetFirstBuf(n), 1))
	cfh := cf.h
	var e cerr
	var needed C.size_t
	rc := C.rm_multi_get_alloc(&cfh, 1, snap, flags, kp, &s.lens[0], C.size_t(n),
		ptr(buf), C.size_t(len(buf)), C.rm_alloc_fn(C.resman_go_malloc), nil,
		&s.vals[0], &s.spilled[0], &needed, &e)
	// What C allocated is copied and freed whatever the result (a call refused before it
	// read left every pointer nil).
	for i, p := range s.spilled {
		if p != nil {
			out[i] = takeC(p, int(s.vals[i].len))
			s.spilled[i] = nil
		}
	}
	if rc != C.RM_OK { // s.vals may be stale: not read
		return nil, check(rc, &e)
	}
	for i, v := range s.vals {
		switch {
		case out[i] != nil:
		case v.code == C.RM_OK:
			end := v.offset + v.len
			out[i] = buf[v.offset:end:end]
		case v.code != C.RM_ERR_NOT_FOUND: // not expected: a failed key fails the call
			return nil, &Error{Code: Code(v.code), Message: fmt.Sprintf("multi-get: reading key %d failed", i)}
		}
	}
	cf.learnMultiGet(int(needed), n)
	return out, nil
}

// multiGetFirstBuf is the size of the first buffer of a MultiGet of n keys: the bytes per key
// recent calls needed, and an eighth more.
func (cf *ColumnFamily) multiGetFirstBuf(n int) int {
	per := int(cf.mgHint.Load())
	if per == 0 {
		per = mgFirstHint
	}
	size := per * n
	return min(size+size/8, mgMaxFirstBuf)
}

// learnMultiGet updates the bytes-per-key hint from a call of n keys whose found values needed
// `needed` bytes: at once upwards, slowly (an eighth of the gap per call) downwards, so that a
// call with a few misses or smaller values does not make the next one too small. Concurrent
// calls may overwrite each other's update: it is only a hint.
func (cf *ColumnFamily) learnMultiGet(needed, n int) {
	seen := min((needed+n-1)/n, mgMaxHint)
	seen = max(seen, 1)
	cur := int(cf.mgHint.Load())
	switch {
	case seen > cur:
		cf.mgHint.Store(uint32(seen))
	case seen < cur:
		cf.mgHint.Store(uint32(cur - max((cur-seen)/8, 1)))
	}
}
