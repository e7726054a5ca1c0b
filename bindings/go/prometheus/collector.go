package resmanprom

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	resman "github.com/resman-project/resman/bindings/go"
)

// DefaultNamespace prefixes every metric name unless WithNamespace says otherwise.
const DefaultNamespace = "resman"

// Option configures NewCollector.
type Option func(*options)

type options struct {
	namespace   string
	constLabels prometheus.Labels
}

// WithNamespace replaces the "resman" prefix of the metric names ("" for none).
func WithNamespace(namespace string) Option {
	return func(o *options) { o.namespace = namespace }
}

// WithConstLabels adds labels with fixed values to every metric, for example to tell several
// managers apart in one registry. The labels are copied.
func WithConstLabels(labels prometheus.Labels) Option {
	return func(o *options) {
		o.constLabels = make(prometheus.Labels, len(labels))
		for k, v := range labels {
			o.constLabels[k] = v
		}
	}
}

// scalar is one number of resman.Metrics exported as a counter or a gauge.
type scalar struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(*resman.Metrics) float64
}

// dbGauge is one of RocksDB's memory figures of each open DB (labelled db).
type dbGauge struct {
	desc  *prometheus.Desc
	value func(*resman.Memory) uint64
}

type collector struct {
	m *resman.Manager

	up        *prometheus.Desc
	resources *prometheus.Desc // {state}
	scalars   []scalar
	perDB     []dbGauge

	cleanupDuration *prometheus.Desc
	closeDuration   *prometheus.Desc
	memoryAge       *prometheus.Desc
}

// NewCollector returns a collector of m's metrics. It keeps no state between scrapes and may
// outlive m: once m is shut down it reports only resman_up 0. Register it once per manager
// (with distinct const labels when one registry holds several). It panics if m is nil.
func NewCollector(m *resman.Manager, opts ...Option) prometheus.Collector {
	if m == nil {
		panic("resmanprom: NewCollector with a nil *resman.Manager")
	}
	o := options{namespace: DefaultNamespace}
	for _, opt := range opts {
		opt(&o)
	}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(o.namespace, "", name), help, labels, o.constLabels)
	}
	counter := func(name, help string, v func(*resman.Metrics) uint64) scalar {
		return scalar{desc(name, help), prometheus.CounterValue, func(m *resman.Metrics) float64 { return float64(v(m)) }}
	}
	gauge := func(name, help string, v func(*resman.Metrics) float64) scalar {
		return scalar{desc(name, help), prometheus.GaugeValue, v}
	}
	perDB := func(name, help string, v func(*resman.Memory) uint64) dbGauge {
		return dbGauge{desc(name, help, "db"), v}
	}
	return &collector{
		m:         m,
		up:        desc("up", "Whether the manager's metrics could be read (1) or not, e.g. after Shutdown (0)."),
		resources: desc("resources", "Live resources by lifecycle state: active (accepting operations) or closing (close begun, native close not finished).", "state"),
		scalars: []scalar{
			counter("resources_registered_total", "Resources registered since the manager was created (its monitor included).",
				func(m *resman.Metrics) uint64 { return m.Registered }),
			counter("resources_closed_total", "Resources closed successfully (possibly after retries).",
				func(m *resman.Metrics) uint64 { return m.Closed }),
			counter("resources_failed_total", "Resources whose every close attempt failed.",
				func(m *resman.Metrics) uint64 { return m.Failed }),
			counter("resources_unregistered_total", "Resources handed back with unregister.",
				func(m *resman.Metrics) uint64 { return m.Unregistered }),
			counter("close_retries_total", "Close attempts made after a failed one.",
				func(m *resman.Metrics) uint64 { return m.Retries }),
			counter("close_errors_total", "Close attempts that failed, retried or not.",
				func(m *resman.Metrics) uint64 { return m.CloseErrors }),
			counter("close_timeouts_total", "Resources reported as not finished closing by a deadline.",
				func(m *resman.Metrics) uint64 { return m.TimedOut }),
			counter("forced_closes_total", "Closes that were forced (asked for, or after the graceful phase ended).",
				func(m *resman.Metrics) uint64 { return m.Forced }),
			counter("deferred_closes_total", "Closes left to the last in-flight operation.",
				func(m *resman.Metrics) uint64 { return m.Deferred }),
			counter("cleanups_total", "Cleanup runs (a cleanup, a resource's close, a shutdown).",
				func(m *resman.Metrics) uint64 { return m.Cleanups }),
			counter("cleanups_failed_total", "Cleanup runs that returned an error.",
				func(m *resman.Metrics) uint64 { return m.CleanupsFailed }),
			gauge("cleanup_success_ratio", "Share of cleanup runs that succeeded (1 before the first).",
				func(m *resman.Metrics) float64 {
					if m.Cleanups == 0 {
						return 1
					}
					return 1 - float64(m.CleanupsFailed)/float64(m.Cleanups)
				}),
			counter("cleanup_escalations_total", "Cleanup runs whose graceful phase ended with something unfinished, which was then forced.",
				func(m *resman.Metrics) uint64 { return m.Escalations }),
			counter("leaked_iterators_total", "Iterators still open when what they read from was closed (closed by resman).",
				func(m *resman.Metrics) uint64 { return m.LeakedIterators }),
			counter("leaked_snapshots_total", "Snapshots still open when their DB was closed (released by resman).",
				func(m *resman.Metrics) uint64 { return m.LeakedSnapshots }),
			gauge("registry_bytes", "Estimate of the manager's own bookkeeping, at the monitor's last sample.",
				func(m *resman.Metrics) float64 { return float64(m.Memory.RegistryBytes) }),
			gauge("close_threads", "Threads of resman's close pool now, across the process (idle ones included).",
				func(m *resman.Metrics) float64 { return float64(m.CloseThreads) }),
		},
		perDB: []dbGauge{
			perDB("rocksdb_memtable_bytes", "Memory of all memtables of the DB (RocksDB's mem_table_total), at the monitor's last sample.",
				func(m *resman.Memory) uint64 { return m.MemTableTotal }),
			perDB("rocksdb_memtable_unflushed_bytes", "Memory of the DB's memtables not yet flushed (RocksDB's mem_table_unflushed), at the monitor's last sample.",
				func(m *resman.Memory) uint64 { return m.MemTableUnflushed }),
			perDB("rocksdb_table_readers_bytes", "Memory of the DB's table readers: indexes and filters outside the block cache (RocksDB's table_readers), at the monitor's last sample.",
				func(m *resman.Memory) uint64 { return m.TableReaders }),
			perDB("rocksdb_block_cache_bytes", "Memory used by the DB's block cache (RocksDB's block_cache), at the monitor's last sample.",
				func(m *resman.Memory) uint64 { return m.BlockCache }),
		},
		cleanupDuration: desc("cleanup_duration_seconds", "Duration of cleanup runs, from start to return."),
		closeDuration:   desc("close_duration_seconds", "Duration of resource closes, from their begin to the end of their native close."),
		memoryAge:       desc("memory_sample_age_seconds", "Age of the monitor's last memory sample (absent before the first)."),
	}
}

// Describe sends every descriptor the collector may use.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.resources
	for _, s := range c.scalars {
		ch <- s.desc
	}
	for _, g := range c.perDB {
		ch <- g.desc
	}
	ch <- c.cleanupDuration
	ch <- c.closeDuration
	ch <- c.memoryAge
}

// read reads the manager's metrics and memory sample; a panic is reported as an error, so a
// scrape never takes the process down. A sample that cannot be read (the manager shutting
// down between the two calls) is left out.
func (c *collector) read() (m resman.Metrics, sample *resman.MemorySample, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("resmanprom: metrics panicked: %v", r)
		}
	}()
	if m, err = c.m.Metrics(); err != nil {
		return m, nil, err
	}
	if s, serr := c.m.MemorySample(); serr == nil {
		sample = &s
	}
	return m, sample, nil
}

// histogram turns resman's cumulative buckets into a constant Prometheus histogram.
func histogram(desc *prometheus.Desc, h *resman.Histogram) (prometheus.Metric, error) {
	buckets := make(map[float64]uint64, len(h.UpperBounds))
	for i, le := range h.UpperBounds {
		if i < len(h.Buckets) {
			buckets[le] = h.Buckets[i]
		}
	}
	return prometheus.NewConstHistogram(desc, h.Count, h.SumSeconds, buckets)
}

// Collect reads the metrics once (Manager.Metrics: a few atomic loads in resman) and the
// monitor's memory sample (Manager.MemorySample: a small document, no RocksDB call), never
// the status document, and sends them as constant metrics. Safe for concurrent use, also
// during and after the manager's Shutdown or Close.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	m, sample, err := c.read()
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(c.resources, prometheus.GaugeValue, float64(m.Active), "active")
	ch <- prometheus.MustNewConstMetric(c.resources, prometheus.GaugeValue, float64(m.Closing), "closing")
	for _, s := range c.scalars {
		ch <- prometheus.MustNewConstMetric(s.desc, s.kind, s.value(&m))
	}
	for _, h := range []struct {
		desc *prometheus.Desc
		h    *resman.Histogram
	}{{c.cleanupDuration, &m.CleanupDuration}, {c.closeDuration, &m.CloseDuration}} {
		if metric, err := histogram(h.desc, h.h); err == nil {
			ch <- metric
		} else {
			ch <- prometheus.NewInvalidMetric(h.desc, err)
		}
	}
	if age, ok := m.Memory.Age(); ok {
		ch <- prometheus.MustNewConstMetric(c.memoryAge, prometheus.GaugeValue, age.Seconds())
	}
	if sample == nil {
		return
	}
	seen := make(map[string]bool, len(sample.Resources))
	for i := range sample.Resources {
		r := &sample.Resources[i]
		// Names are unique among live resources; the check keeps a duplicate from failing
		// the whole scrape.
		if seen[r.Name] {
			continue
		}
		seen[r.Name] = true
		for _, g := range c.perDB {
			ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(g.value(&r.Memory)), r.Name)
		}
	}
}
