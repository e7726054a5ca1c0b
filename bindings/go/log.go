package resman

/*
#include "resman.h"

extern void resmanGoLog(void *context, int32_t level, char *message);

static inline rm_result resman_go_set_log(uint64_t mgr, uintptr_t handle, int32_t max_level,
                                          rm_error *err) {
    if (handle == 0) {
        return rm_manager_set_log(mgr, NULL, NULL, max_level, err);
    }
    return rm_manager_set_log(mgr, (rm_log_fn)resmanGoLog, (void *)handle, max_level, err);
}
*/
import "C"

import (
	"context"
	"log/slog"
	"runtime/cgo"
)

// SetLogger routes the manager's events to l: registrations at Debug, closes at Info,
// timeouts, deferred closes and leaked iterators/snapshots at Warn, close failures at Error.
// Only events l is enabled for are built. nil stops the events (the default: no output).
func (m *Manager) SetLogger(l *slog.Logger) error {
	max := C.int32_t(C.RM_LOG_DEBUG)
	var h cgo.Handle
	if l != nil {
		switch {
		case l.Enabled(context.Background(), slog.LevelDebug):
		case l.Enabled(context.Background(), slog.LevelInfo):
			max = C.RM_LOG_INFO
		case l.Enabled(context.Background(), slog.LevelWarn):
			max = C.RM_LOG_WARN
		default:
			max = C.RM_LOG_ERROR
		}
		h = cgo.NewHandle(l)
	}
	var e cerr
	err := check(C.resman_go_set_log(m.h, C.uintptr_t(h), max, &e), &e)
	m.mu.Lock()
	old := m.logger
	if err == nil {
		m.logger = h
	}
	m.mu.Unlock()
	switch {
	case err != nil && h != 0:
		h.Delete()
	case err == nil && old != 0:
		// Replaced: a call already inside the old receiver may still be running; its handle
		// is released when the manager finishes (see finish).
		m.mu.Lock()
		m.retired = append(m.retired, old)
		m.mu.Unlock()
	}
	return err
}

func (m *Manager) releaseLoggers() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, h := range m.retired {
		h.Delete()
	}
	m.retired = nil
	if m.logger != 0 {
		m.logger.Delete()
		m.logger = 0
	}
}
