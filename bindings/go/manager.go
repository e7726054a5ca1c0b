package resman

/*
#include <stdlib.h>
#include "resman.h"

rm_result resman_go_register_fwd(uint64_t mgr, const char *name, uintptr_t handle,
                                               const uint64_t *deps, size_t n_deps,
                                               uint64_t *out, rm_error *err);
*/
import "C"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime/cgo"
	"sync"
	"time"
	"unsafe"
)

// Handle names a resource of a manager (a DB, a column family, a registered Go resource):
// pass it as a dependency to Register.
type Handle uint64

// Config is the manager's part of a service's configuration, the `resource_management:`
// block:
//
//	resource_management:
//	  cleanup_timeout: 30s
type Config struct {
	// CleanupTimeout bounds a graceful cleanup (Shutdown without a context deadline) and a
	// DB's Close; what is still busy then is forced. Default 30s.
	CleanupTimeout time.Duration `yaml:"cleanup_timeout" json:"cleanup_timeout"`
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{CleanupTimeout: 30 * time.Second}
}

// Manager owns RocksDB databases and any Go resources registered with it, and closes them
// in dependency order. All methods are safe for concurrent use.
type Manager struct {
	h   C.uint64_t
	cfg Config

	mu        sync.Mutex
	destroyed bool
	logger    cgo.Handle   // the current slog receiver's handle (0: none)
	retired   []cgo.Handle // replaced receivers, released when the manager finishes
}

// NewManager creates a manager. A zero field of cfg takes its default.
func NewManager(cfg Config) (*Manager, error) {
	if cfg.CleanupTimeout == 0 {
		cfg.CleanupTimeout = DefaultConfig().CleanupTimeout
	}
	if cfg.CleanupTimeout < time.Millisecond {
		return nil, &Error{Code: CodeInvalidArgument, Message: "cleanup_timeout must be at least 1ms"}
	}
	var c C.rm_config
	C.rm_config_default(&c)
	c.cleanup_timeout_ms = C.uint64_t(cfg.CleanupTimeout / time.Millisecond)
	var e cerr
	var h C.uint64_t
	if err := check(C.rm_manager_create(&c, &h, &e), &e); err != nil {
		return nil, err
	}
	return &Manager{h: h, cfg: cfg}, nil
}

// goResource is what a registered Go resource's callback context points to.
type goResource struct {
	closer io.Closer
}

// Register adds a Go resource to the manager's cleanup: c.Close() is called exactly once,
// after everything that depends on it and before everything in dependsOn, when the
// resource is closed (Manager.CloseResource), or at Shutdown/Close. A panic in Close is
// recovered and reported as a close failure.
func (m *Manager) Register(name string, c io.Closer, dependsOn ...Handle) (Handle, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	ctx := cgo.NewHandle(&goResource{closer: c})
	var deps *C.uint64_t
	if len(dependsOn) > 0 {
		deps = (*C.uint64_t)(unsafe.Pointer(&dependsOn[0]))
	}
	var e cerr
	var h C.uint64_t
	rc := C.resman_go_register_fwd(m.h, cname, C.uintptr_t(ctx), deps, C.size_t(len(dependsOn)), &h, &e)
	if err := check(rc, &e); err != nil {
		ctx.Delete() // never registered: the callback will not run
		return 0, err
	}
	return Handle(h), nil
}

// CloseResource closes one resource (and first everything that depends on it) gracefully,
// waiting up to the cleanup timeout for operations in flight.
func (m *Manager) CloseResource(h Handle) error {
	var e cerr
	return check(C.rm_close(m.h, C.uint64_t(h), &e), &e)
}

// Shutdown closes everything gracefully, dependents first, waiting for operations in flight
// until ctx's deadline (the cleanup timeout when ctx has none), forcing what is still busy
// then, and destroys the manager. Like http.Server.Shutdown; Close is the forced form.
// A second call returns ErrAlreadyClosed.
func (m *Manager) Shutdown(ctx context.Context) error {
	timeout := m.cfg.CleanupTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
		if timeout < 0 {
			timeout = 0
		}
	}
	return m.finish(timeout, false)
}

// Close closes everything at once: new operations are refused, and each native close runs
// now or when its last in-flight operation ends. Then the manager is destroyed. A second
// call returns ErrAlreadyClosed.
func (m *Manager) Close() error {
	return m.finish(0, true)
}

func (m *Manager) finish(timeout time.Duration, force bool) error {
	m.mu.Lock()
	if m.destroyed {
		m.mu.Unlock()
		return &Error{Code: CodeAlreadyClosed, Message: "the manager was already shut down"}
	}
	m.destroyed = true
	m.mu.Unlock()
	before, _ := m.Status() // to name what failed (best effort)
	var e cerr
	first := check(C.rm_cleanup_timeout(m.h, C.uint64_t(timeout/time.Millisecond), C.bool(force), &e), &e)
	if first != nil && before != nil {
		first = m.perResource(first, before)
	}
	var e2 cerr
	second := check(C.rm_manager_destroy(m.h, &e2), &e2)
	m.releaseLoggers()
	if first != nil {
		return first
	}
	return second
}

// ResourceError is one resource's failure in a Shutdown or Close: errors.Is sees its code
// (ErrCloseFailed, ErrTimeout) and errors.As finds the resource's name.
type ResourceError struct {
	Name   string
	Handle Handle
	Err    *Error
}

func (e *ResourceError) Error() string { return fmt.Sprintf("%s: %v", e.Name, e.Err) }
func (e *ResourceError) Unwrap() error { return e.Err }

// perResource joins the aggregated error with one ResourceError per resource that failed or
// did not finish, read from the status document.
func (m *Manager) perResource(all error, before *Status) error {
	after, err := m.Status()
	if err != nil {
		return all
	}
	live := make(map[uint64]string, len(before.Resources))
	for _, r := range before.Resources {
		live[r.Handle] = r.Name
	}
	errs := []error{all}
	for _, r := range after.RecentlyClosed {
		if _, ok := live[r.Handle]; ok && r.Outcome == "failed" && r.Error != nil {
			errs = append(errs, &ResourceError{r.Name, Handle(r.Handle), &Error{Code: CodeCloseFailed, Message: *r.Error}})
		}
	}
	for _, r := range after.Resources {
		if _, ok := live[r.Handle]; ok && r.State == "closing" {
			errs = append(errs, &ResourceError{r.Name, Handle(r.Handle), &Error{Code: CodeTimeout, Message: "still closing at the deadline"}})
		}
	}
	return errors.Join(errs...)
}

// Status is the manager's status document (see rm_status in include/resman.h).
type Status struct {
	Version          string           `json:"version"`
	Manager          uint64           `json:"manager"`
	UptimeMs         uint64           `json:"uptime_ms"`
	CleanupTimeoutMs uint64           `json:"cleanup_timeout_ms"`
	Totals           Totals           `json:"totals"`
	Resources        []ResourceStatus `json:"resources"`
	RecentlyClosed   []ClosedRecord   `json:"recently_closed"`
}

// Totals are the manager's counters.
type Totals struct {
	Registered      uint64 `json:"registered"`
	Active          uint64 `json:"active"`
	Closing         uint64 `json:"closing"`
	Closed          uint64 `json:"closed"`
	Failed          uint64 `json:"failed"`
	Unregistered    uint64 `json:"unregistered"`
	Forced          uint64 `json:"forced"`
	Deferred        uint64 `json:"deferred"`
	TimedOut        uint64 `json:"timed_out"`
	Cleanups        uint64 `json:"cleanups"`
	LeakedIterators uint64 `json:"leaked_iterators"`
	LeakedSnapshots uint64 `json:"leaked_snapshots"`
}

// ResourceStatus is one live resource.
type ResourceStatus struct {
	Handle          uint64          `json:"handle"`
	Name            string          `json:"name"`
	Kind            string          `json:"kind"`
	State           string          `json:"state"`
	Leases          uint64          `json:"leases"`
	DependsOn       []string        `json:"depends_on"`
	Dependents      []string        `json:"dependents"`
	AgeMs           uint64          `json:"age_ms"`
	CloseDurationMs *float64        `json:"close_duration_ms"`
	CloseDeferred   bool            `json:"close_deferred"`
	LastError       *string         `json:"last_error"`
	Details         json.RawMessage `json:"details,omitempty"`
}

// ClosedRecord is a resource that finished closing.
type ClosedRecord struct {
	Handle          uint64  `json:"handle"`
	Name            string  `json:"name"`
	Kind            string  `json:"kind"`
	Outcome         string  `json:"outcome"`
	CloseDurationMs float64 `json:"close_duration_ms"`
	Forced          bool    `json:"forced"`
	Error           *string `json:"error"`
	LeakedIterators uint64  `json:"leaked_iterators"`
	LeakedSnapshots uint64  `json:"leaked_snapshots"`
}

// StatusJSON returns the status document as resman writes it.
func (m *Manager) StatusJSON() ([]byte, error) {
	buf := make([]byte, 4096)
	for i := 0; i < 4; i++ {
		var e cerr
		var n C.size_t
		rc := C.rm_status(m.h, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), &n, &e)
		if rc == C.RM_ERR_BUFFER_TOO_SMALL {
			buf = make([]byte, int(n)+1+int(n)/4)
			continue
		}
		if err := check(rc, &e); err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
	return nil, &Error{Code: CodeBufferTooSmall, Message: "the status kept growing"}
}

// Status returns the status document, decoded.
func (m *Manager) Status() (*Status, error) {
	raw, err := m.StatusJSON()
	if err != nil {
		return nil, err
	}
	var s Status
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	return &s, nil
}
