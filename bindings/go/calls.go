package resman

// Calls that may call back into Go (a Go close callback, the slog receiver) on the caller's
// thread, so they cannot be marked nocallback (see cgo.go), and an rm_error passed from Go
// would be moved to the heap (576 bytes per call). These wrappers keep the rm_error on the C
// stack and return the result by value; only a failure copies the error to C memory, which
// the Go side frees. No Go pointer is passed but the iterator bounds.

/*
#include <stdlib.h>
#include <string.h>
#include "resman.h"

typedef struct {
	rm_result rc;
	uint64_t out;
	rm_error *err; // a failure's detail, malloc'd (NULL on success or if malloc failed)
} resman_go_ret;

static inline resman_go_ret resman_go_ret_of(rm_result rc, uint64_t out, const rm_error *e) {
	resman_go_ret r = {rc, out, NULL};
	if (rc != RM_OK) {
		r.err = (rm_error *)malloc(sizeof *e);
		if (r.err != NULL) {
			memcpy(r.err, e, sizeof *e);
		}
	}
	return r;
}

static inline resman_go_ret resman_go_close(uint64_t mgr, uint64_t h) {
	rm_error e;
	rm_result rc = rm_close(mgr, h, &e);
	return resman_go_ret_of(rc, 0, &e);
}

static inline resman_go_ret resman_go_batch_create(uint64_t db) {
	rm_error e;
	uint64_t h = 0;
	rm_result rc = rm_batch_create(db, &h, &e);
	return resman_go_ret_of(rc, h, &e);
}

static inline resman_go_ret resman_go_snapshot_create(uint64_t db) {
	rm_error e;
	uint64_t h = 0;
	rm_result rc = rm_snapshot_create(db, &h, &e);
	return resman_go_ret_of(rc, h, &e);
}

static inline resman_go_ret resman_go_iter_create(uint64_t cf, uint64_t snap, uint32_t flags,
                                                  const uint8_t *lower, size_t lower_len,
                                                  const uint8_t *upper, size_t upper_len) {
	rm_error e;
	uint64_t h = 0;
	rm_result rc = rm_iter_create(cf, snap, flags, lower, lower_len, upper, upper_len, &h, &e);
	return resman_go_ret_of(rc, h, &e);
}
*/
import "C"

import "unsafe"

// result turns a wrapper's result into the handle it produced and an error (nil for RM_OK),
// freeing the copied detail.
func result(r C.resman_go_ret) (C.uint64_t, error) {
	if r.rc == C.RM_OK {
		return r.out, nil
	}
	if r.err == nil { // malloc failed: the code alone
		return r.out, &Error{Code: Code(r.rc)}
	}
	err := check(r.rc, r.err)
	C.free(unsafe.Pointer(r.err))
	return r.out, err
}

// closeHandle is rm_close(mgr, h).
func closeHandle(mgr, h C.uint64_t) error {
	_, err := result(C.resman_go_close(mgr, h))
	return err
}

// createBatch is rm_batch_create(db).
func createBatch(db C.uint64_t) (C.uint64_t, error) {
	return result(C.resman_go_batch_create(db))
}

// createSnapshot is rm_snapshot_create(db).
func createSnapshot(db C.uint64_t) (C.uint64_t, error) {
	return result(C.resman_go_snapshot_create(db))
}

// createIter is rm_iter_create. The bounds are Go memory the call copies; they escape to the
// heap like any Go pointer passed to a function without the annotations.
func createIter(cf, snap C.uint64_t, flags C.uint32_t, lower *C.uint8_t, lowerLen int, upper *C.uint8_t, upperLen int) (C.uint64_t, error) {
	return result(C.resman_go_iter_create(cf, snap, flags, lower, C.size_t(lowerLen), upper, C.size_t(upperLen)))
}
