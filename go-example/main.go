// Command go-example is a small key-value HTTP service on resman, written the way a real
// service would use it: a YAML config with a resource_management block, one DB with column
// families, a background worker registered as a dependent of the DB, /status, and a graceful
// shutdown on SIGINT/SIGTERM that drains requests and closes everything in dependency order.
//
//	PUT    /kv/{key}   body is the value
//	GET    /kv/{key}
//	DELETE /kv/{key}
//	GET    /status     resman's status document (JSON)
//	GET    /metrics    Prometheus metrics (resman's, and Go's)
//	GET    /healthz
package main

import (
	"context"
	_ "embed"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	resman "github.com/resman-project/resman/bindings/go"
	resmanprom "github.com/resman-project/resman/bindings/go/prometheus"
	"gopkg.in/yaml.v3"
)

//go:embed config.yaml
var defaultConfig []byte

// Config is the service's configuration file.
type Config struct {
	Listen             string        `yaml:"listen"`
	DataDir            string        `yaml:"data_dir"`
	ColumnFamilies     []string      `yaml:"column_families"`
	WorkerInterval     time.Duration `yaml:"worker_interval"`
	Limits             Limits        `yaml:"limits"`
	Timeouts           Timeouts      `yaml:"timeouts"`
	ResourceManagement resman.Config `yaml:"resource_management"`
}

// Limits bound what a request may store: a larger key or value is refused (400, 413) and
// nothing is written.
type Limits struct {
	MaxKeyBytes   int   `yaml:"max_key_bytes"`
	MaxValueBytes int64 `yaml:"max_value_bytes"`
}

// Timeouts are the HTTP server's: a client that sends or reads too slowly, or idles, is cut
// off, so it cannot hold a connection (and its buffers) indefinitely.
type Timeouts struct {
	ReadHeader time.Duration `yaml:"read_header"`
	Read       time.Duration `yaml:"read"`
	Write      time.Duration `yaml:"write"`
	Idle       time.Duration `yaml:"idle"`
}

func loadConfig(path string) (Config, error) {
	var c Config
	if err := yaml.Unmarshal(defaultConfig, &c); err != nil {
		return c, fmt.Errorf("embedded config: %w", err)
	}
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return c, err
		}
		if err := yaml.Unmarshal(raw, &c); err != nil {
			return c, fmt.Errorf("%s: %w", path, err)
		}
	}
	if c.WorkerInterval <= 0 {
		return c, errors.New("worker_interval must be positive")
	}
	if len(c.ColumnFamilies) == 0 {
		return c, errors.New("column_families must name at least one column family")
	}
	if c.Limits.MaxKeyBytes <= 0 || c.Limits.MaxValueBytes <= 0 {
		return c, errors.New("limits: max_key_bytes and max_value_bytes must be positive")
	}
	for name, d := range map[string]time.Duration{"read_header": c.Timeouts.ReadHeader,
		"read": c.Timeouts.Read, "write": c.Timeouts.Write, "idle": c.Timeouts.Idle} {
		if d <= 0 {
			return c, fmt.Errorf("timeouts: %s must be positive", name)
		}
	}
	// Refuse a bad resource_management block now, naming the key, rather than at NewManager.
	if err := c.ResourceManagement.Validate(); err != nil {
		return c, fmt.Errorf("resource_management: %w", err)
	}
	return c, nil
}

func main() {
	configPath := flag.String("config", "", "YAML config file (default: the embedded config.yaml)")
	listen := flag.String("listen", "", "listen address (overrides the config)")
	dataDir := flag.String("data", "", "data directory (overrides the config)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*configPath, *listen, *dataDir, log); err != nil {
		log.Error("exiting", "err", err)
		os.Exit(1)
	}
}

func run(configPath, listen, dataDir string, log *slog.Logger) error {
	cfg, err := loadConfig(configPath)
	if err != nil {
		return err
	}
	if listen != "" {
		cfg.Listen = listen
	}
	if dataDir != "" {
		cfg.DataDir = dataDir
	}
	mgr, err := resman.NewManager(cfg.ResourceManagement)
	if err != nil {
		return err
	}
	rm := mgr.Config() // the settings in use, defaults filled in
	log.Info("resource management", "cleanup_timeout", rm.CleanupTimeout, "force_cleanup_timeout", rm.ForceCleanupTimeout,
		"monitor_interval", rm.MonitorInterval, "max_retries", *rm.MaxRetries, "retry_delay", rm.RetryDelay)
	// resman's own events (closes, failures, timeouts, leaks) go to the service's log.
	if err := mgr.SetLogger(log); err != nil {
		_ = mgr.Close()
		return err
	}
	db, err := mgr.Open("kv", cfg.DataDir, resman.DefaultOptions(cfg.ColumnFamilies...))
	if err != nil {
		_ = mgr.Close()
		return fmt.Errorf("open %s: %w", cfg.DataDir, err)
	}
	kv, meta := db.CF(cfg.ColumnFamilies[0]), db.CF(cfg.ColumnFamilies[len(cfg.ColumnFamilies)-1])

	// The worker writes into the DB until it is closed: registered as a dependent of the DB,
	// it is stopped (and records its last beat) before the DB closes.
	w := startWorker(meta, cfg.WorkerInterval, log)
	workerHandle, err := mgr.Register("heartbeat-worker", w, db.Handle())
	if err != nil {
		_ = w.Close()
		_ = mgr.Close()
		return err
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		_ = mgr.Shutdown(context.Background())
		return err
	}
	srv := &http.Server{
		Handler:           routes(mgr, kv, cfg.Limits),
		ReadHeaderTimeout: cfg.Timeouts.ReadHeader,
		ReadTimeout:       cfg.Timeouts.Read,
		WriteTimeout:      cfg.Timeouts.Write,
		IdleTimeout:       cfg.Timeouts.Idle,
	}
	// The HTTP server depends on the DB and the worker: cleanup drains it first.
	// Its close runs on a resman thread, within the cleanup's graceful phase.
	if _, err := mgr.Register("http-server", closerFunc(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), rm.CleanupTimeout)
		defer cancel()
		return srv.Shutdown(ctx)
	}), db.Handle(), workerHandle); err != nil {
		_ = ln.Close()
		_ = mgr.Shutdown(context.Background())
		return err
	}
	// The smoke test and operators read the address from this line.
	fmt.Printf("listening on %s (data in %s)\n", ln.Addr(), cfg.DataDir)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case sig := <-stop:
		log.Info("shutting down", "signal", sig.String())
	case err := <-served:
		log.Error("server stopped", "err", err)
	}
	// Dependency order: HTTP server (drains requests), worker, column families, DB (flushed).
	// Graceful for up to cleanup_timeout, then forced for up to force_cleanup_timeout: a close
	// that hangs is reported as timed out (resman.ErrTimeout), it does not keep the service up.
	if err := mgr.Shutdown(context.Background()); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("shut down cleanly")
	return nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

func routes(mgr *resman.Manager, kv *resman.ColumnFamily, lim Limits) http.Handler {
	mux := http.NewServeMux()
	reg := prometheus.NewRegistry()
	reg.MustRegister(resmanprom.NewCollector(mgr), prometheus.NewGoCollector())
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		doc, err := mgr.StatusJSON()
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	})
	key := func(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
		k := r.PathValue("key")
		if len(k) > lim.MaxKeyBytes {
			http.Error(w, fmt.Sprintf("key longer than %d bytes", lim.MaxKeyBytes), http.StatusBadRequest)
			return nil, false
		}
		return []byte(k), true
	}
	mux.HandleFunc("GET /kv/{key}", func(w http.ResponseWriter, r *http.Request) {
		k, ok := key(w, r)
		if !ok {
			return
		}
		v, err := kv.Get(k, nil)
		if err != nil {
			httpError(w, err)
			return
		}
		_, _ = w.Write(v)
	})
	mux.HandleFunc("PUT /kv/{key}", func(w http.ResponseWriter, r *http.Request) {
		k, ok := key(w, r)
		if !ok {
			return
		}
		// The whole body or nothing: a body over the limit is refused before it is read
		// (declared) or as soon as it passes the limit, and one cut short (the client gave up,
		// the read timed out) is an error; either way nothing is written.
		tooLarge := fmt.Sprintf("value larger than %d bytes", lim.MaxValueBytes)
		if r.ContentLength > lim.MaxValueBytes {
			http.Error(w, tooLarge, http.StatusRequestEntityTooLarge)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, lim.MaxValueBytes))
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			http.Error(w, tooLarge, http.StatusRequestEntityTooLarge)
			return
		case err != nil:
			http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := kv.Put(k, body, &resman.WriteOptions{Sync: true}); err != nil {
			httpError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /kv/{key}", func(w http.ResponseWriter, r *http.Request) {
		k, ok := key(w, r)
		if !ok {
			return
		}
		if err := kv.Delete(k, &resman.WriteOptions{Sync: true}); err != nil {
			httpError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func httpError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, resman.ErrNotFound):
		http.Error(w, "not found", http.StatusNotFound)
	case errors.Is(err, resman.ErrClosed):
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
	default:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// worker records a heartbeat counter in the meta column family every interval.
type worker struct {
	stop chan struct{}
	done sync.WaitGroup
	once sync.Once
}

func startWorker(meta *resman.ColumnFamily, every time.Duration, log *slog.Logger) *worker {
	w := &worker{stop: make(chan struct{})}
	w.done.Add(1)
	go func() {
		defer w.done.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		var beats uint64
		beat := func() {
			beats++
			var b [8]byte
			binary.BigEndian.PutUint64(b[:], beats)
			if err := meta.Put([]byte("heartbeats"), b[:], nil); err != nil {
				log.Warn("heartbeat", "err", err)
			}
		}
		for {
			select {
			case <-t.C:
				beat()
			case <-w.stop:
				beat() // the last beat, written while the DB is still open
				return
			}
		}
	}()
	return w
}

// Close stops the worker and waits for it (called by the manager, before the DB closes).
func (w *worker) Close() error {
	w.once.Do(func() { close(w.stop) })
	w.done.Wait()
	return nil
}
