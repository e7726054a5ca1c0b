package resmanprom

import (
	"encoding/json"
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

// counter is one of the manager's cumulative totals.
type counter struct {
	desc  *prometheus.Desc
	value func(*resman.Totals) uint64
}

type collector struct {
	m *resman.Manager

	up        *prometheus.Desc
	uptime    *prometheus.Desc
	active    *prometheus.Desc
	closing   *prometheus.Desc
	resources *prometheus.Desc
	counters  []counter

	memTable     *prometheus.Desc
	memUnflushed *prometheus.Desc
	tableReaders *prometheus.Desc
	blockCache   *prometheus.Desc
}

// NewCollector returns a collector of m's status. It keeps no state between scrapes and may
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
	ctr := func(name, help string, value func(*resman.Totals) uint64) counter {
		return counter{desc: desc(name, help), value: value}
	}
	return &collector{
		m:         m,
		up:        desc("up", "Whether the manager's status could be read (1) or not, e.g. after Shutdown (0)."),
		uptime:    desc("uptime_seconds", "Time since the manager was created."),
		active:    desc("resources_active", "Live resources accepting operations."),
		closing:   desc("resources_closing", "Live resources that no longer accept operations (closing, or closed and not yet removed)."),
		resources: desc("resources", "Live resources by kind and lifecycle state.", "kind", "state"),
		counters: []counter{
			ctr("resources_registered_total", "Resources registered since the manager was created.",
				func(t *resman.Totals) uint64 { return t.Registered }),
			ctr("resources_closed_total", "Resources closed successfully.",
				func(t *resman.Totals) uint64 { return t.Closed }),
			ctr("resources_failed_total", "Resource closes that failed.",
				func(t *resman.Totals) uint64 { return t.Failed }),
			ctr("resources_unregistered_total", "Resources handed back with unregister.",
				func(t *resman.Totals) uint64 { return t.Unregistered }),
			ctr("forced_closes_total", "Closes that were forced (asked for, or after a graceful deadline passed).",
				func(t *resman.Totals) uint64 { return t.Forced }),
			ctr("deferred_closes_total", "Closes left to the last in-flight operation.",
				func(t *resman.Totals) uint64 { return t.Deferred }),
			ctr("close_timeouts_total", "Resources reported as not finished by a deadline.",
				func(t *resman.Totals) uint64 { return t.TimedOut }),
			ctr("cleanups_total", "Cleanup runs.",
				func(t *resman.Totals) uint64 { return t.Cleanups }),
			ctr("leaked_iterators_total", "Iterators still open when what they read from was closed (closed by resman).",
				func(t *resman.Totals) uint64 { return t.LeakedIterators }),
			ctr("leaked_snapshots_total", "Snapshots still open when their DB was closed (released by resman).",
				func(t *resman.Totals) uint64 { return t.LeakedSnapshots }),
		},
		memTable:     desc("db_memtable_bytes", "Memory of all memtables of the DB (RocksDB's mem_table_total).", "db"),
		memUnflushed: desc("db_memtable_unflushed_bytes", "Memory of the DB's memtables not yet flushed (RocksDB's mem_table_unflushed).", "db"),
		tableReaders: desc("db_table_readers_bytes", "Memory of the DB's table readers: indexes and filters not in the block cache (RocksDB's table_readers).", "db"),
		blockCache:   desc("db_block_cache_bytes", "Memory used by the DB's block cache (RocksDB's block_cache).", "db"),
	}
}

// Describe sends every descriptor the collector may use.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.uptime
	ch <- c.active
	ch <- c.closing
	ch <- c.resources
	for _, k := range c.counters {
		ch <- k.desc
	}
	ch <- c.memTable
	ch <- c.memUnflushed
	ch <- c.tableReaders
	ch <- c.blockCache
}

// status reads the manager's status; a panic is reported as an error, so a scrape never
// takes the process down.
func (c *collector) status() (s *resman.Status, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("resmanprom: status panicked: %v", r)
		}
	}()
	return c.m.Status()
}

// dbDetails is the part of a DB resource's details the collector reads.
type dbDetails struct {
	Memory *resman.Memory `json:"memory"`
}

// Collect reads the status once and sends it as constant metrics. Safe for concurrent use,
// also during and after the manager's Shutdown or Close.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s, err := c.status()
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(c.uptime, prometheus.GaugeValue, float64(s.UptimeMs)/1e3)
	t := &s.Totals
	ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(t.Active))
	ch <- prometheus.MustNewConstMetric(c.closing, prometheus.GaugeValue, float64(t.Closing))
	for _, k := range c.counters {
		ch <- prometheus.MustNewConstMetric(k.desc, prometheus.CounterValue, float64(k.value(t)))
	}

	type kindState struct{ kind, state string }
	counts := make(map[kindState]int)
	seenDB := make(map[string]bool)
	for i := range s.Resources {
		r := &s.Resources[i]
		counts[kindState{r.Kind, r.State}]++
		// Details are present only for a resource that is open (read under a lease), and
		// "memory" is null when RocksDB could not give the figures. Names are unique among
		// live resources; the check keeps a duplicate from failing the whole scrape.
		if r.Kind != "db" || len(r.Details) == 0 || seenDB[r.Name] {
			continue
		}
		var d dbDetails
		if json.Unmarshal(r.Details, &d) != nil || d.Memory == nil {
			continue
		}
		seenDB[r.Name] = true
		mem := d.Memory
		ch <- prometheus.MustNewConstMetric(c.memTable, prometheus.GaugeValue, float64(mem.MemTableTotal), r.Name)
		ch <- prometheus.MustNewConstMetric(c.memUnflushed, prometheus.GaugeValue, float64(mem.MemTableUnflushed), r.Name)
		ch <- prometheus.MustNewConstMetric(c.tableReaders, prometheus.GaugeValue, float64(mem.TableReaders), r.Name)
		ch <- prometheus.MustNewConstMetric(c.blockCache, prometheus.GaugeValue, float64(mem.BlockCache), r.Name)
	}
	for ks, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.resources, prometheus.GaugeValue, float64(n), ks.kind, ks.state)
	}
}
