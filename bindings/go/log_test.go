package resman

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type recorder struct {
	mu      sync.Mutex
	records []slog.Record
	min     slog.Level
}

func (r *recorder) Enabled(_ context.Context, l slog.Level) bool { return l >= r.min }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) find(level slog.Level, needle string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.records {
		if rec.Level == level && strings.Contains(rec.Message, needle) {
			return true
		}
	}
	return false
}

func TestLibraryEventsGoToSlog(t *testing.T) {
	// One retry, 1ms later: the failing close logs a retry (Warn) and its failure (Error).
	fast := Config{MaxRetries: Retries(1), RetryDelay: time.Millisecond}
	m, err := NewManager(fast)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{min: slog.LevelDebug}
	if err := m.SetLogger(slog.New(rec)); err != nil {
		t.Fatal(err)
	}
	db, err := m.Open("store", t.TempDir(), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	it, err := db.Default().NewIterator(nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = it // left open: a leak the DB's close reports
	var order []string
	var mu sync.Mutex
	bad := &closer{name: "bad", order: &order, mu: &mu, err: errors.New("cannot stop")}
	if _, err := m.Register("bad", bad); err != nil {
		t.Fatal(err)
	}
	if err := m.Shutdown(context.Background()); !errors.Is(err, ErrCloseFailed) {
		t.Fatalf("shutdown: %v", err)
	}
	for _, want := range []struct {
		level  slog.Level
		needle string
	}{
		{slog.LevelDebug, "registered db 'store'"},
		{slog.LevelInfo, "'store'"},
		{slog.LevelError, "cannot stop"},
		{slog.LevelWarn, "1 iterator(s)"},
		{slog.LevelWarn, "retrying"},
		{slog.LevelInfo, "resman.monitor"},
	} {
		if !rec.find(want.level, want.needle) {
			t.Errorf("no %v event containing %q", want.level, want.needle)
		}
	}

	// Only the levels the logger is enabled for are delivered; nil stops them.
	m2, _ := NewManager(fast)
	quiet := &recorder{min: slog.LevelWarn}
	if err := m2.SetLogger(slog.New(quiet)); err != nil {
		t.Fatal(err)
	}
	if _, err := m2.Register("ok", &closer{name: "ok", order: &order, mu: &mu}); err != nil {
		t.Fatal(err)
	}
	if err := m2.SetLogger(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m2.Register("bad", &closer{name: "bad2", order: &order, mu: &mu, err: errors.New("x")}); err != nil {
		t.Fatal(err)
	}
	_ = m2.Shutdown(context.Background())
	quiet.mu.Lock()
	defer quiet.mu.Unlock()
	if len(quiet.records) != 0 {
		t.Fatalf("expected no records, got %d", len(quiet.records))
	}
}
