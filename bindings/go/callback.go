package resman

/*
#include <stddef.h>
#include <stdint.h>
*/
import "C"

import (
	"fmt"
	"runtime/cgo"
	"unsafe"
)

// resmanGoClose is the close callback of every Go resource registered with a manager. It runs
// once per resource, on whatever thread closes it, and never lets a panic cross into C.
//
//export resmanGoClose
func resmanGoClose(context unsafe.Pointer, message *C.char, capacity C.size_t) (rc C.int32_t) {
	h := cgo.Handle(uintptr(context))
	res := h.Value().(*goResource)
	h.Delete() // called exactly once: the handle's job is done
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("Close panicked: %v", p)
			}
		}()
		err = res.closer.Close()
	}()
	if err == nil {
		return 0
	}
	msg := err.Error()
	if capacity > 0 {
		n := len(msg)
		if n > int(capacity)-1 {
			n = int(capacity) - 1
		}
		dst := unsafe.Slice((*byte)(unsafe.Pointer(message)), int(capacity))
		copy(dst, msg[:n])
		dst[n] = 0
	}
	return 1
}
