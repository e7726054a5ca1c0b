package resman

/*
#include <stdint.h>
*/
import "C"

import (
	"context"
	"log/slog"
	"runtime/cgo"
	"unsafe"
)

// resmanGoLog receives a manager's log events and hands them to its slog.Logger.
//
//export resmanGoLog
func resmanGoLog(ctx unsafe.Pointer, level C.int32_t, message *C.char) {
	defer func() {
		// A handle released by a late event after the manager finished: drop the event.
		_ = recover()
	}()
	l, ok := cgo.Handle(uintptr(ctx)).Value().(*slog.Logger)
	if !ok {
		return
	}
	lvl := slog.LevelDebug
	switch level {
	case C.int32_t(1):
		lvl = slog.LevelError
	case C.int32_t(2):
		lvl = slog.LevelWarn
	case C.int32_t(3):
		lvl = slog.LevelInfo
	}
	l.Log(context.Background(), lvl, C.GoString(message), "source", "resman")
}
