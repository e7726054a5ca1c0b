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

// resmanGoClose is the close callback of every Go resource registered with a manager. It
// runs on a resman close thread, once per attempt (a failed close is retried up to the
// manager's MaxRetries times), never twice at once for one resource, and never lets a panic
// cross into C.
//
//export resmanGoClose
func resmanGoClose(context unsafe.Pointer, message *C.char, capacity C.size_t) (rc C.int32_t) {
	h := cgo.Handle(uintptr(context))
	var res *goResource
	func() {
		defer func() { _ = recover() }() // a released handle: see below, cannot happen
		res, _ = h.Value().(*goResource)
	}()
	if res == nil {
		return writeMessage(message, capacity, "resman: Go resource already released")
	}
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("Close panicked: %v", p)
			}
		}()
		err = res.closer.Close()
	}()
	res.m.closes.Add(1) // see Manager.closes
	// The handle is released once resman is done with it: after a success, or after the last
	// attempt the manager's MaxRetries allows (resman calls exactly that often, see
	// rm_register).
	if err == nil || res.attempts.Add(1) >= res.maxAttempts {
		h.Delete()
	}
	if err == nil {
		return 0
	}
	return writeMessage(message, capacity, err.Error())
}

// writeMessage copies msg (cut to fit, NUL-terminated) into the callback's message buffer and
// returns the failure code.
func writeMessage(message *C.char, capacity C.size_t, msg string) C.int32_t {
	if capacity > 0 && message != nil {
		n := len(msg)
		if n > int(capacity)-1 {
			n = int(capacity) - 1
			for n > 0 && msg[n]&0xC0 == 0x80 {
				n-- // msg[n] continues a UTF-8 character: cut before that character
			}
		}
		dst := unsafe.Slice((*byte)(unsafe.Pointer(message)), int(capacity))
		copy(dst, msg[:n])
		dst[n] = 0
	}
	return 1
}
