package resman

// The link line. libresman.a is linked statically (one binary, nothing to install); its
// directory comes from CGO_LDFLAGS="-L<dir>" (the Makefile passes $CARGO_TARGET_DIR/release),
// falling back to the checkout's target/release. "-l:libresman.a" picks the static library
// even where libresman.so sits next to it. RocksDB's C++ runtime and system libraries follow.

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: -L${SRCDIR}/../../target/release -l:libresman.a -lstdc++ -lm -ldl -lpthread
#cgo noescape rm_get_opt
#cgo nocallback rm_get_opt
#cgo noescape rm_put_opt
#cgo nocallback rm_put_opt
#cgo noescape rm_delete_opt
#cgo nocallback rm_delete_opt
#cgo noescape rm_multi_get
#cgo nocallback rm_multi_get
#cgo noescape rm_batch_put
#cgo nocallback rm_batch_put
#cgo noescape rm_iter_entry
#cgo nocallback rm_iter_entry
#cgo noescape rm_iter_next
#cgo nocallback rm_iter_next
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
