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
	"sync/atomic"
	"time"
	"unsafe"
)

// Handle names a resource of a manager (a DB, a column family, a registered Go resource):
// pass it as a dependency to Register.
type Handle uint64

// Manager owns RocksDB databases and any Go resources registered with it, and closes them
// in dependency order. All methods are safe for concurrent use.
type Manager struct {
	h   C.uint64_t
	cfg Config // resolved: every field set

	// closes is bumped by every Go Close callback when it returns (on a resman close thread)
	// and read after every close call returns: the Go memory model's happens-before edge
	// from a resource's Close to the return of the Shutdown, Close or CloseResource that
	// waited for it (resman's own synchronisation is invisible to the race detector).
	closes atomic.Uint64

	mu        sync.Mutex
	destroyed bool
	logger    cgo.Handle   // the current slog receiver's handle (0: none)
	retired   []cgo.Handle // replaced receivers, released when the manager finishes
}

// NewManager creates a manager. A zero field of cfg takes its default (see Config); a field
// out of range is ErrInvalidArgument naming it. The manager starts a monitor thread, which
// is one of its resources ("resman.monitor", kind "monitor") until Shutdown or Close.
func NewManager(cfg Config) (*Manager, error) {
	c, err := cfg.toC()
	if err != nil {
		return nil, err
	}
	var e cerr
	var h C.uint64_t
	if err := check(C.rm_manager_create(&c, &h, &e), &e); err != nil {
		return nil, err
	}
	return &Manager{h: h, cfg: fromC(&c)}, nil
}

// Config returns the manager's settings, every default filled in.
func (m *Manager) Config() Config {
	c := m.cfg
	c.MaxRetries = Retries(*m.cfg.MaxRetries) // a copy the caller may change
	return c
}

// goResource is what a registered Go resource's callback context points to.
type goResource struct {
	closer io.Closer
	m      *Manager
	// maxAttempts is 1 + the manager's MaxRetries: after that many failed attempts resman
	// never calls the callback again.
	maxAttempts int32
	attempts    atomic.Int32
}

// Register adds a Go resource to the manager's cleanup: c.Close() is called after everything
// that depends on it has finished closing, when the resource is closed (CloseResource, or the
// close of something in dependsOn), or at Shutdown/Close.
//
// What Close may still use of dependsOn depends on how it is closed. Gracefully (Shutdown,
// CloseResource, DB.Close, within their graceful phase) Close runs before anything in
// dependsOn starts closing, so it may still use them (a worker's last write into its DB
// lands). Under Manager.Close, or once the graceful phase is over, what it depends on refuses
// new operations at once (ErrClosed), but is not closed natively until this Close has
// returned: an operation Close tries on it fails cleanly, nothing is freed under it.
//
// Close runs on one of resman's close threads, never on the goroutine that called Shutdown,
// Close or CloseResource, and possibly at the same time as the Close of resources that do not
// depend on it. A Close that returns an error (a panic is recovered and reported as one) is
// called again, up to Config.MaxRetries more times, Config.RetryDelay apart; after the last
// failure the resource is failed (ErrCloseFailed with every attempt's error) and what it
// depends on goes on closing. A Close that does not return by the caller's deadline is
// reported as ErrTimeout and keeps its thread; when it returns, what it depends on closes.
// Close must not call Shutdown, Close or CloseResource (resman refuses them on its own
// threads). What Close did is visible (happens-before) once the call that waited for it
// returns.
//
// Register returns ErrClosed while a Shutdown or Close of the manager runs (what is closed is
// what was registered when it began) and after it, and ErrDependencyClosed when something in
// dependsOn is closing or closed, or its close has been asked for. Manager.Open is refused the
// same way; a new iterator, snapshot or batch of a DB being closed is ErrClosed.
func (m *Manager) Register(name string, c io.Closer, dependsOn ...Handle) (Handle, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	ctx := cgo.NewHandle(&goResource{closer: c, m: m, maxAttempts: int32(*m.cfg.MaxRetries) + 1})
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

// CloseResource closes one resource, and first everything that (transitively) depends on it:
// a graceful phase bounded by Config.CleanupTimeout (waiting for operations in flight), then
// a forced phase bounded by Config.ForceCleanupTimeout. What has not finished by then is
// reported as ErrTimeout and closes when what holds it lets go.
//
// Exactly one close of a resource returns its result (nil or the error above); every other,
// racing or later, returns ErrAlreadyClosed, and so does the close of a resource that a
// running close or Shutdown already includes (an iterator of a DB being closed) and any close
// after the manager's Shutdown or Close.
func (m *Manager) CloseResource(h Handle) error {
	err := closeHandle(m.h, C.uint64_t(h))
	m.closes.Load() // see Manager.closes
	return err
}

// Shutdown closes everything, dependents first (resources that do not depend on each other
// close concurrently), and destroys the manager. Like http.Server.Shutdown; Close is the
// forced form.
//
// The graceful phase waits for operations in flight and closes with every courtesy (a DB
// flushes its memtables and syncs its WAL) until ctx's deadline, or for Config.CleanupTimeout
// when ctx has none (no graceful phase when ctx is already done). What is unfinished then is
// forced and given Config.ForceCleanupTimeout more. What has still not finished, such as a Go
// Close that hangs and whatever it depends on, is reported as ErrTimeout naming it: Shutdown
// does not wait for it to return, and it closes when whatever holds it lets go. Close
// callbacks never run on the caller's goroutine, so a hung one cannot block Shutdown past its
// bound: Shutdown returns within the graceful phase + ForceCleanupTimeout.
//
// While it runs, registrations are refused with ErrClosed (see Register), so the bound holds
// whatever other goroutines do.
//
// The error joins resman's aggregated error (first) with one ResourceError per resource that
// failed (ErrCloseFailed, with every attempt's error) or did not finish (ErrTimeout, with
// its state and what it waits for), dependents first. At most the first 1000 are listed; when
// there are more, one last error says how many more did not close cleanly. So the work after
// the deadline does not grow with the number of resources. A second call returns
// ErrAlreadyClosed.
func (m *Manager) Shutdown(ctx context.Context) error {
	timeout := m.cfg.CleanupTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), 0)
	}
	if ctx.Err() != nil {
		timeout = 0
	}
	return m.finish(timeout, false)
}

// Close closes everything at once and destroys the manager: new operations are refused,
// operations in flight are not waited for (the last one to end starts its resource's native
// close, on a resman thread), and Close waits up to Config.ForceCleanupTimeout for the closes
// to finish. What has not finished by then (a Go Close that hangs, and whatever it depends on)
// is reported as ErrTimeout naming it, as for Shutdown; it closes when whatever holds it lets
// go. So Close returns within ForceCleanupTimeout. The error is as Shutdown's. A second call
// returns ErrAlreadyClosed.
func (m *Manager) Close() error {
	return m.finish(m.cfg.ForceCleanupTimeout, true)
}

// maxResourceErrors is the most ResourceErrors a Shutdown or Close lists (the first ones
// resman reports, dependents first); the others are counted in one more error. It bounds the
// work done after the cleanup's deadline, whatever the number of resources. A variable so
// that tests can lower it.
var maxResourceErrors = 1000

func (m *Manager) finish(timeout time.Duration, force bool) error {
	m.mu.Lock()
	if m.destroyed {
		m.mu.Unlock()
		return &Error{Code: CodeAlreadyClosed, Message: "the manager was already shut down"}
	}
	m.destroyed = true
	m.mu.Unlock()
	var e cerr
	err := check(C.rm_cleanup_timeout(m.h, C.uint64_t(timeout/time.Millisecond), C.bool(force), &e), &e)
	if err != nil {
		err = m.resourceErrors(err) // while the manager can still be asked
	}
	// What is left was just reported: destroying the manager does not wait for it again.
	var e2 cerr
	second := check(C.rm_manager_destroy_timeout(m.h, 1, true, &e2), &e2)
	m.closes.Load() // see Manager.closes
	m.releaseLoggers()
	if err != nil {
		return err
	}
	return second
}

// ResourceError is one resource's failure in a Shutdown or Close: errors.Is sees its code
// (ErrCloseFailed, ErrTimeout) and errors.As finds the resource's name. Err.Message is
// resman's full reason: every attempt's error for ErrCloseFailed; for ErrTimeout the
// resource's state and what it waits for ("did not finish closing by the deadline (state
// closing: waiting for 'worker' to finish closing first)").
type ResourceError struct {
	Name   string
	Handle Handle
	Err    *Error
}

func (e *ResourceError) Error() string { return fmt.Sprintf("%s: %v", e.Name, e.Err) }
func (e *ResourceError) Unwrap() error { return e.Err }

// cleanupFailures is the document of rm_cleanup_failures.
type cleanupFailures struct {
	Operation *string `json:"operation"`
	Total     int     `json:"total"`
	Failures  []struct {
		Name    string `json:"name"`
		Handle  uint64 `json:"handle"`
		Code    int32  `json:"code"`
		Message string `json:"message"`
	} `json:"failures"`
}

// resourceErrors joins all, the aggregated error of the cleanup of the whole manager that
// just failed, with one ResourceError per resource resman reports for it (at most
// maxResourceErrors, dependents first), and, when there were more, one error counting them.
// The report is read with a fixed cap, so this costs the same for 10 or 100,000 failures.
func (m *Manager) resourceErrors(all error) error {
	var e *Error
	if !errors.As(all, &e) || (e.Code != CodeTimeout && e.Code != CodeCloseFailed && e.Code != CodeCleanupFailed) {
		return all // the cleanup did not run (or panicked): no report of its own to read
	}
	limit := max(maxResourceErrors, 0)
	raw, err := readJSON(func(buf *C.char, capacity C.size_t, n *C.size_t, e *cerr) C.rm_result {
		return C.rm_cleanup_failures(m.h, C.size_t(limit), buf, capacity, n, e)
	})
	if err != nil {
		return all
	}
	var report cleanupFailures
	if json.Unmarshal(raw, &report) != nil || report.Operation == nil {
		return all
	}
	errs := make([]error, 0, len(report.Failures)+2)
	errs = append(errs, all)
	for _, f := range report.Failures {
		errs = append(errs, &ResourceError{f.Name, Handle(f.Handle), &Error{Code: Code(f.Code), Message: f.Message}})
	}
	if more := report.Total - len(report.Failures); more > 0 {
		errs = append(errs, fmt.Errorf("resman: %d more resources did not close cleanly (only the first %d are listed)",
			more, len(report.Failures)))
	}
	return errors.Join(errs...)
}

// Status is the manager's status document (see rm_status in include/resman.h).
type Status struct {
	Version          string       `json:"version"`
	Manager          uint64       `json:"manager"`
	UptimeMs         uint64       `json:"uptime_ms"`
	CleanupTimeoutMs uint64       `json:"cleanup_timeout_ms"`
	Config           ConfigStatus `json:"config"`
	Totals           Totals       `json:"totals"`
	// Seconds per cleanup run and per resource close.
	CleanupDuration Histogram `json:"cleanup_duration"`
	CloseDuration   Histogram `json:"close_duration"`
	// Memory is the monitor's last sample.
	Memory MemorySample `json:"memory"`
	// CloseThreads is the number of close-pool threads now, process-wide (idle ones included).
	CloseThreads uint64 `json:"close_threads"`
	// LastCleanup is the most recent cleanup run (nil before the first).
	LastCleanup    *CleanupRecord   `json:"last_cleanup"`
	Resources      []ResourceStatus `json:"resources"`
	RecentlyClosed []ClosedRecord   `json:"recently_closed"`
}

// ConfigStatus is the manager's settings as the status document shows them.
type ConfigStatus struct {
	CleanupTimeoutMs      uint64 `json:"cleanup_timeout_ms"`
	ForceCleanupTimeoutMs uint64 `json:"force_cleanup_timeout_ms"`
	MonitorIntervalMs     uint64 `json:"monitor_interval_ms"`
	MaxRetries            uint32 `json:"max_retries"`
	RetryDelayMs          uint64 `json:"retry_delay_ms"`
}

// Totals are the manager's counters. Active and Closing are gauges; the others only grow.
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
	Retries         uint64 `json:"retries"`
	CloseErrors     uint64 `json:"close_errors"`
	Cleanups        uint64 `json:"cleanups"`
	CleanupsFailed  uint64 `json:"cleanups_failed"`
	Escalations     uint64 `json:"escalations"`
	LeakedIterators uint64 `json:"leaked_iterators"`
	LeakedSnapshots uint64 `json:"leaked_snapshots"`
}

// CleanupRecord is what one cleanup run (a cleanup, a close, the destroy of Shutdown/Close)
// did.
type CleanupRecord struct {
	// Operation is "cleanup", "close" or "destroy".
	Operation string `json:"operation"`
	// Target is the resource a "close" was asked for.
	Target *string `json:"target"`
	// Mode is "graceful" or "forced", as asked.
	Mode              string `json:"mode"`
	GracefulTimeoutMs uint64 `json:"graceful_timeout_ms"`
	ForceTimeoutMs    uint64 `json:"force_timeout_ms"`
	// AgeMs is the time since the run started.
	AgeMs uint64 `json:"age_ms"`
	// DurationMs is how long the run took to return (nil: still running).
	DurationMs *float64 `json:"duration_ms"`
	// Escalated: the graceful phase ended with something unfinished, which was forced.
	Escalated bool   `json:"escalated"`
	Resources uint64 `json:"resources"`
	// Order is the names in the order their native closes started.
	Order []string      `json:"order"`
	Steps []CleanupStep `json:"steps"`
	// Errors is what did not close cleanly, as "name: message".
	Errors []string `json:"errors"`
}

// CleanupStep is one resource a cleanup run closed. Times are in milliseconds since the run
// started; a dependent's FinishedMs is never later than the StartedMs of what it depends on.
type CleanupStep struct {
	Name       string  `json:"name"`
	Kind       string  `json:"kind"`
	Handle     uint64  `json:"handle"`
	StartedMs  float64 `json:"started_ms"`
	FinishedMs float64 `json:"finished_ms"`
	// Outcome is "closed" or "failed".
	Outcome  string `json:"outcome"`
	Attempts uint32 `json:"attempts"`
	Forced   bool   `json:"forced"`
	// Errors is every failed attempt's error, in order.
	Errors []string `json:"errors"`
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
	// Attempts is 1 + the retries (0 when unregistered).
	Attempts        uint32  `json:"attempts"`
	Error           *string `json:"error"`
	LeakedIterators uint64  `json:"leaked_iterators"`
	LeakedSnapshots uint64  `json:"leaked_snapshots"`
}

// StatusJSON returns the status document as resman writes it.
func (m *Manager) StatusJSON() ([]byte, error) {
	return readJSON(func(buf *C.char, capacity C.size_t, n *C.size_t, e *cerr) C.rm_result {
		return C.rm_status(m.h, buf, capacity, n, e)
	})
}

// readJSON runs a call that writes a JSON document with the two-call buffer protocol
// (RM_ERR_BUFFER_TOO_SMALL with the length needed), growing the buffer as needed.
func readJSON(call func(buf *C.char, capacity C.size_t, n *C.size_t, e *cerr) C.rm_result) ([]byte, error) {
	buf := make([]byte, 4096)
	for i := 0; i < 4; i++ {
		var e cerr
		var n C.size_t
		rc := call((*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), &n, &e)
		if rc == C.RM_ERR_BUFFER_TOO_SMALL {
			buf = make([]byte, int(n)+1+int(n)/4)
			continue
		}
		if err := check(rc, &e); err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
	return nil, &Error{Code: CodeBufferTooSmall, Message: "the document kept growing"}
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
