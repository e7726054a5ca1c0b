package resman

/*
#include "resman.h"
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
	// call allocate huge first buffers (larger values are read in the exact-sized second
	// round).
	mgMaxHint = 4 << 10
	// mgMaxFirstBuf bounds the first buffer whatever the number of keys.
	mgMaxFirstBuf = 64 << 20
	// mgRounds bounds the calls of one MultiGet: the values that did not fit are read again
	// into a buffer of their reported sizes, which fails again only if they grew meanwhile.
	mgRounds = 4
	// The scratch space of calls larger than this is not kept for reuse.
	mgMaxPooledKeys  = 4096
	mgMaxPooledBytes = 256 << 10
)

// multiGetScratch is what a MultiGet passes to C and does not return (the concatenated keys,
// their lengths, the per-key results, the positions of the keys being read), reused across
// calls through multiGetPool. It holds no Go pointers.
type multiGetScratch struct {
	flat []byte
	lens []C.size_t
	vals []C.rm_value
	idx  []int
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
// The values are read into one buffer sized from the values of this column family's recent
// calls, so that usually one call to resman reads them all; values that did not fit are read
// again, alone, into a buffer of their exact sizes.
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
	size := cf.multiGetFirstBuf(len(keys))
	cfh := cf.h
	for round := 0; len(s.idx) > 0; round++ {
		if round == mgRounds {
			return nil, &Error{Code: CodeBufferTooSmall, Message: fmt.Sprintf(
				"multi-get: %d value(s) kept growing between %d reads", len(s.idx), mgRounds)}
		}
		s.fill(keys)
		n := len(s.idx)
		kp := ptr(s.flat)
		if kp == nil { // every key is empty: a valid pointer to no bytes
			kp = (*C.uint8_t)(&emptyKey[0])
		}
		buf := make([]byte, max(size, 1))
		var e cerr
		var needed C.size_t
		rc := C.rm_multi_get(&cfh, 1, snap, flags, kp, &s.lens[0], C.size_t(n),
			ptr(buf), C.size_t(len(buf)), &s.vals[0], &needed, &e)
		if rc != C.RM_OK && rc != C.RM_ERR_BUFFER_TOO_SMALL {
			return nil, check(rc, &e)
		}
		if round == 0 {
			cf.learnMultiGet(int(needed), n)
		}
		// Keep what fit; the keys whose values did not are read again.
		next, want := s.idx[:0], 0
		for j, v := range s.vals {
			i := s.idx[j] // read before next (which shares s.idx, and is never ahead of j) is written
			switch v.code {
			case C.RM_OK:
				end := v.offset + v.len
				out[i] = buf[v.offset:end:end]
			case C.RM_ERR_NOT_FOUND:
			case C.RM_ERR_BUFFER_TOO_SMALL:
				next = append(next, i)
				want += int(v.len)
			default: // a failed key makes rm_multi_get fail as a whole: not expected here
				return nil, &Error{Code: Code(v.code), Message: fmt.Sprintf("multi-get: reading key %d failed", i)}
			}
		}
		s.idx = next
		size = want
		if round > 0 { // the values grew since the previous read: leave them room to grow more
			size += want / 8
		}
	}
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
