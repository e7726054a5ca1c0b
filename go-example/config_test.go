package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	resman "github.com/resman-project/resman/bindings/go"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func sameConfig(a, b resman.Config) bool {
	return a.CleanupTimeout == b.CleanupTimeout && a.ForceCleanupTimeout == b.ForceCleanupTimeout &&
		a.MonitorInterval == b.MonitorInterval && a.RetryDelay == b.RetryDelay &&
		(a.MaxRetries == nil) == (b.MaxRetries == nil) && (a.MaxRetries == nil || *a.MaxRetries == *b.MaxRetries)
}

// The embedded config.yaml spells out resman's defaults, all five keys.
func TestEmbeddedConfigShowsTheDefaults(t *testing.T) {
	c, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.ResourceManagement, resman.DefaultConfig(); !sameConfig(got, want) {
		t.Fatalf("embedded resource_management %+v (max_retries %v), resman's defaults %+v", got, *got.MaxRetries, want)
	}
	for _, key := range []string{"cleanup_timeout:", "force_cleanup_timeout:", "monitor_interval:", "max_retries:", "retry_delay:"} {
		if !strings.Contains(string(defaultConfig), key) {
			t.Errorf("config.yaml does not document %s", key)
		}
	}
}

// A config file sets every key of resource_management; 0 retries is kept as 0.
func TestConfigFileSetsEveryKey(t *testing.T) {
	c, err := loadConfig(writeConfig(t, `
resource_management:
  cleanup_timeout: 12s
  force_cleanup_timeout: 1500ms
  monitor_interval: 1m
  max_retries: 0
  retry_delay: 250ms
`))
	if err != nil {
		t.Fatal(err)
	}
	want := resman.Config{
		CleanupTimeout:      12 * time.Second,
		ForceCleanupTimeout: 1500 * time.Millisecond,
		MonitorInterval:     time.Minute,
		MaxRetries:          resman.Retries(0),
		RetryDelay:          250 * time.Millisecond,
	}
	if !sameConfig(c.ResourceManagement, want) {
		t.Fatalf("parsed %+v (max_retries %v)", c.ResourceManagement, *c.ResourceManagement.MaxRetries)
	}
	m, err := resman.NewManager(c.ResourceManagement)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got := m.Config(); !sameConfig(got, want) {
		t.Fatalf("the manager uses %+v", got)
	}

	// Keys left out keep the embedded defaults.
	c, err = loadConfig(writeConfig(t, "resource_management:\n  retry_delay: 5ms\n"))
	if err != nil {
		t.Fatal(err)
	}
	want = resman.DefaultConfig()
	want.RetryDelay = 5 * time.Millisecond
	if !sameConfig(c.ResourceManagement, want) {
		t.Fatalf("parsed %+v", c.ResourceManagement)
	}
}

// A value out of range is refused at load time, naming the key.
func TestConfigFileOutOfRange(t *testing.T) {
	for text, key := range map[string]string{
		"resource_management:\n  monitor_interval: 1ms\n":      "monitor_interval",
		"resource_management:\n  max_retries: 1000\n":          "max_retries",
		"resource_management:\n  force_cleanup_timeout: -1s\n": "force_cleanup_timeout",
		"resource_management:\n  retry_delay: 10us\n":          "retry_delay",
		"resource_management:\n  cleanup_timeout: 48h\n":       "cleanup_timeout",
	} {
		_, err := loadConfig(writeConfig(t, text))
		if !errors.Is(err, resman.ErrInvalidArgument) || !strings.Contains(err.Error(), "("+key+")") {
			t.Errorf("%q: %v", text, err)
		}
	}
}

// The limits and timeouts come from the embedded config and can be overridden; zero or
// negative values stop the service at start-up, naming the block.
func TestLimitsAndTimeouts(t *testing.T) {
	c, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.MaxKeyBytes != 1024 || c.Limits.MaxValueBytes != 16<<20 || c.Timeouts.Write != time.Minute {
		t.Fatalf("embedded limits %+v, timeouts %+v", c.Limits, c.Timeouts)
	}
	c, err = loadConfig(writeConfig(t, "limits:\n  max_value_bytes: 1048576\ntimeouts:\n  idle: 5s\n"))
	if err != nil || c.Limits.MaxValueBytes != 1<<20 || c.Limits.MaxKeyBytes != 1024 || c.Timeouts.Idle != 5*time.Second {
		t.Fatalf("override: %+v %+v %v", c.Limits, c.Timeouts, err)
	}
	for text, want := range map[string]string{
		"limits:\n  max_value_bytes: 0\n": "limits:",
		"limits:\n  max_key_bytes: -1\n":  "limits:",
		"timeouts:\n  write: 0s\n":        "timeouts: write",
		"timeouts:\n  read_header: -1s\n": "timeouts: read_header",
	} {
		if _, err := loadConfig(writeConfig(t, text)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error containing %q", text, err, want)
		}
	}
}
