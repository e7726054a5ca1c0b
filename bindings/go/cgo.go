package resman

// The link line. libresman.a is linked statically (one binary, nothing to install); its
// directory comes from CGO_LDFLAGS="-L<dir>" (the Makefile passes $CARGO_TARGET_DIR/release),
// falling back to the checkout's target/release. "-l:libresman.a" picks the static library
// even where libresman.so sits next to it. RocksDB's C++ runtime and system libraries follow.

// The annotations. Without them, cgo moves every Go pointer passed to C to the heap: the
// caller's rm_error (576 bytes) and out-parameters would be allocated on every call. A pointer
// may stay on the goroutine's stack only when the C function neither keeps it (noescape) nor
// calls back into Go (nocallback: a callback may grow, hence move, the stack under C's
// pointer; cgo keeps arguments on the stack only when both are given). So both go on the data
// functions alone: they copy their inputs, write their outputs before returning, and run no
// Go code (the release that starts a deferred close hands it to resman's close pool; it runs
// on the caller's thread only if not a single pool thread can be started). Never on a
// function that registers or closes a resource (rm_*_create, rm_register, rm_close,
// rm_cleanup*, rm_manager_destroy*): those may call a Go close callback or the slog receiver
// on the caller's thread, and a nocallback function that calls back panics. Those go through
// the wrappers of calls.go, whose rm_error lives on the C stack.

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: -L${SRCDIR}/../../target/release -l:libresman.a -lstdc++ -lm -ldl -lpthread
#cgo noescape rm_get_opt
#cgo nocallback rm_get_opt
#cgo noescape rm_get_alloc
#cgo nocallback rm_get_alloc
#cgo noescape rm_put_opt
#cgo nocallback rm_put_opt
#cgo noescape rm_delete_opt
#cgo nocallback rm_delete_opt
#cgo noescape rm_multi_get_alloc
#cgo nocallback rm_multi_get_alloc
#cgo noescape rm_batch_put
#cgo nocallback rm_batch_put
#cgo noescape rm_iter_read_next
#cgo nocallback rm_iter_read_next
#cgo noescape rm_iter_read_prev
#cgo nocallback rm_iter_read_prev
#cgo noescape rm_iter_seek
#cgo nocallback rm_iter_seek
#cgo noescape rm_iter_refresh
#cgo nocallback rm_iter_refresh
#cgo noescape rm_iter_seek_for_prev
#cgo nocallback rm_iter_seek_for_prev
#cgo noescape rm_iter_seek_to_first
#cgo nocallback rm_iter_seek_to_first
#cgo noescape rm_iter_seek_to_last
#cgo nocallback rm_iter_seek_to_last
#cgo noescape rm_batch_delete
#cgo nocallback rm_batch_delete
#cgo noescape rm_batch_delete_range
#cgo nocallback rm_batch_delete_range
#cgo noescape rm_batch_clear
#cgo nocallback rm_batch_clear
#cgo noescape rm_batch_count
#cgo nocallback rm_batch_count
#cgo noescape rm_batch_write
#cgo nocallback rm_batch_write
#cgo noescape rm_db_memory
#cgo nocallback rm_db_memory
#include <stdlib.h>
#include "resman.h"

// Defined in callback.go (exported from Go).
extern int32_t resmanGoClose(void *context, char *message, size_t message_cap);

// The handle of a Go object (runtime/cgo.Handle) travels as the callback's context.
rm_result resman_go_register_fwd(uint64_t mgr, const char *name, uintptr_t handle,
                                           const uint64_t *deps, size_t n_deps,
                                           uint64_t *out, rm_error *err) {
    return rm_register(mgr, name, resmanGoClose, (void *)handle, deps, n_deps, out, err);
}
*/
import "C"
