package resman

/*
#include "resman.h"
*/
import "C"

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Config is the manager's part of a service's configuration, the `resource_management:`
// block, shown here with the defaults:
//
//	resource_management:
//	  cleanup_timeout: 30s        # graceful phase of Shutdown, CloseResource and DB.Close
//	  force_cleanup_timeout: 5s   # forced phase that follows it; the whole bound of Close
//	  monitor_interval: 10s       # memory sampling and stuck-close warnings
//	  max_retries: 3              # further attempts after a close fails (0: none)
//	  retry_delay: 1s             # pause between two attempts
//
// A zero field means "the default", so a Config literal (or a YAML block) only names what it
// changes: Config{CleanupTimeout: 10 * time.Second} keeps the other defaults. MaxRetries is a
// pointer for the same reason, so that 0 (no retry) stays expressible: nil is the default,
// Retries(0) disables retries (in YAML, `max_retries: 0`).
//
// Durations are used in whole milliseconds (a fraction of a millisecond is dropped). A
// negative value, a non-zero duration under 1ms, or a value outside the range resman
// accepts is an error from NewManager (and Validate) naming the field; the ranges are
// resman's own (rm_config_validate):
//
//	CleanupTimeout       1ms .. 24h
//	ForceCleanupTimeout  1ms .. 1h
//	MonitorInterval      10ms .. 24h
//	MaxRetries           0 .. 100
//	RetryDelay           1ms .. 1m
type Config struct {
	// CleanupTimeout bounds the graceful phase of Shutdown (when its context has no deadline),
	// of CloseResource and of DB.Close: waiting for operations in flight, then closing with
	// every courtesy (a DB flushes its memtables and syncs its WAL). What is unfinished then
	// is forced. Default 30s.
	CleanupTimeout time.Duration `yaml:"cleanup_timeout" json:"cleanup_timeout"`
	// ForceCleanupTimeout bounds the forced phase that follows the graceful one, and the
	// whole of Close: what has not finished closing by then (a Go Close that hangs, and
	// whatever waits for it) is reported as timed out (ErrTimeout). Default 5s.
	ForceCleanupTimeout time.Duration `yaml:"force_cleanup_timeout" json:"force_cleanup_timeout"`
	// MonitorInterval is how often the manager's monitor thread samples memory (see
	// Metrics.Memory) and logs closes that are stuck. Default 10s.
	MonitorInterval time.Duration `yaml:"monitor_interval" json:"monitor_interval"`
	// MaxRetries is the number of further attempts after a close fails; then the resource
	// is marked failed with every attempt's error. nil: the default, 3. Retries(0): none.
	MaxRetries *int `yaml:"max_retries" json:"max_retries"`
	// RetryDelay is the pause between two attempts at a close that failed. Default 1s.
	RetryDelay time.Duration `yaml:"retry_delay" json:"retry_delay"`
}

// Retries returns a pointer to n, for Config.MaxRetries: Config{MaxRetries: Retries(0)}.
func Retries(n int) *int { return &n }

// DefaultConfig returns the documented defaults, every field set (resman's own defaults,
// rm_config_default).
func DefaultConfig() Config {
	var c C.rm_config
	C.rm_config_default(&c)
	return fromC(&c)
}

func fromC(c *C.rm_config) Config {
	ms := func(v C.uint64_t) time.Duration { return time.Duration(v) * time.Millisecond }
	return Config{
		CleanupTimeout:      ms(c.cleanup_timeout_ms),
		ForceCleanupTimeout: ms(c.force_cleanup_timeout_ms),
		MonitorInterval:     ms(c.monitor_interval_ms),
		MaxRetries:          Retries(int(c.max_retries)),
		RetryDelay:          ms(c.retry_delay_ms),
	}
}

// configField names a field for error messages: its Go name and its YAML key (which is
// also the name resman's own messages use).
type configField struct{ goName, key string }

var (
	fieldCleanupTimeout      = configField{"CleanupTimeout", "cleanup_timeout"}
	fieldForceCleanupTimeout = configField{"ForceCleanupTimeout", "force_cleanup_timeout"}
	fieldMonitorInterval     = configField{"MonitorInterval", "monitor_interval"}
	fieldMaxRetries          = configField{"MaxRetries", "max_retries"}
	fieldRetryDelay          = configField{"RetryDelay", "retry_delay"}
	// Longest key first: "cleanup_timeout" is a suffix of "force_cleanup_timeout".
	configFields = []configField{fieldForceCleanupTimeout, fieldCleanupTimeout,
		fieldMonitorInterval, fieldMaxRetries, fieldRetryDelay}
)

func (f configField) errorf(format string, args ...any) error {
	return &Error{Code: CodeInvalidArgument,
		Message: fmt.Sprintf("Config.%s (%s): %s", f.goName, f.key, fmt.Sprintf(format, args...))}
}

// toC maps the config onto an rm_config (defaults for zero fields) and has resman check the
// ranges. The error is ErrInvalidArgument naming the field.
func (cfg Config) toC() (C.rm_config, error) {
	var c C.rm_config
	C.rm_config_default(&c)
	durations := []struct {
		f   configField
		d   time.Duration
		dst *C.uint64_t
	}{
		{fieldCleanupTimeout, cfg.CleanupTimeout, &c.cleanup_timeout_ms},
		{fieldForceCleanupTimeout, cfg.ForceCleanupTimeout, &c.force_cleanup_timeout_ms},
		{fieldMonitorInterval, cfg.MonitorInterval, &c.monitor_interval_ms},
		{fieldRetryDelay, cfg.RetryDelay, &c.retry_delay_ms},
	}
	for _, x := range durations {
		switch {
		case x.d == 0: // the default, already there
		case x.d < 0:
			return c, x.f.errorf("%v is negative", x.d)
		case x.d < time.Millisecond:
			return c, x.f.errorf("%v is less than 1ms, resman's resolution", x.d)
		default:
			*x.dst = C.uint64_t(x.d / time.Millisecond)
		}
	}
	if cfg.MaxRetries != nil {
		n := *cfg.MaxRetries
		switch {
		case n < 0:
			return c, fieldMaxRetries.errorf("%d is negative (use Retries(0) for no retry)", n)
		case uint64(n) > math.MaxUint32:
			n = math.MaxUint32 // out of range either way: resman's message says so
		}
		c.max_retries = C.uint32_t(n)
	}
	var e cerr
	if err := check(C.rm_config_validate(&c, &e), &e); err != nil {
		// resman's message starts with the setting's name, which is the YAML key.
		if re, ok := err.(*Error); ok {
			for _, f := range configFields {
				if strings.HasPrefix(re.Message, f.key+" ") {
					re.Message = fmt.Sprintf("Config.%s (%s): %s", f.goName, f.key, re.Message)
					break
				}
			}
		}
		return c, err
	}
	return c, nil
}

// Validate checks cfg as NewManager would, without creating anything: nil, or
// ErrInvalidArgument naming the field (a service can refuse a bad configuration file at
// start-up).
func (cfg Config) Validate() error {
	_, err := cfg.toC()
	return err
}

// resolved is cfg with every zero field replaced by its default (cfg valid).
func (cfg Config) resolved() Config {
	c, _ := cfg.toC()
	return fromC(&c)
}
