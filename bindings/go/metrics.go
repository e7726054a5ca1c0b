package resman

/*
#include "resman.h"
*/
import "C"

import (
	"encoding/json"
	"math"
	"time"
)

// Metrics are a manager's counters, histograms and the monitor's last memory sample, read
// with one cheap call (Manager.Metrics): no JSON and no walk over the resources, so they may
// be polled often (a Prometheus scrape). The counters in Totals only grow, except Active and
// Closing, which are gauges.
type Metrics struct {
	Totals
	// CleanupDuration: seconds per cleanup run (Shutdown, Close, CloseResource, DB.Close),
	// from its start to its return.
	CleanupDuration Histogram
	// CloseDuration: seconds per resource close, from its begin to its native close's end.
	CloseDuration Histogram
	// Memory is the monitor's last sample (taken every Config.MonitorInterval).
	Memory MemorySample
	// CloseThreads is the number of threads of resman's close pool now, across the process
	// (busy, stalled on a hung callback, or idle; idle ones exit after 2 s).
	CloseThreads uint64
}

// Histogram is a duration histogram, Prometheus style: Buckets[i] counts the observations of
// at most UpperBounds[i] seconds (cumulative); Count is the +Inf bucket.
type Histogram struct {
	Count       uint64    `json:"count"`
	SumSeconds  float64   `json:"sum_seconds"`
	UpperBounds []float64 `json:"le"`
	Buckets     []uint64  `json:"buckets"`
}

// MemorySample is the monitor's last sample of the manager's memory: the sums of RocksDB's
// figures (as DB.Memory reports them) over the open DBs, and the manager's own bookkeeping.
type MemorySample struct {
	// Reporting is the number of resources (open DBs) the sample counted.
	Reporting uint64 `json:"reporting"`
	Memory
	// RegistryBytes estimates what the manager's own bookkeeping takes.
	RegistryBytes uint64 `json:"registry_bytes"`
	// Resources are the figures of each reporting resource (one per open DB), in the status
	// document and MemorySample; Metrics leaves it nil.
	Resources []NamedMemory `json:"resources,omitempty"`
	// AgeMs is the sample's age in milliseconds; nil before the first sample.
	AgeMs *uint64 `json:"age_ms"`
	// Samples is the number of samples taken since the manager was created.
	Samples uint64 `json:"samples"`
}

// NamedMemory is one resource's figures in a memory sample.
type NamedMemory struct {
	Name   string `json:"name"`
	Handle uint64 `json:"handle"`
	Memory
}

// Age returns the sample's age, and false before the first sample.
func (s MemorySample) Age() (time.Duration, bool) {
	if s.AgeMs == nil {
		return 0, false
	}
	return time.Duration(*s.AgeMs) * time.Millisecond, true
}

func histogramFromC(h *C.rm_histogram) Histogram {
	n := len(h.le)
	out := Histogram{
		Count:       uint64(h.count),
		SumSeconds:  float64(h.sum_seconds),
		UpperBounds: make([]float64, n),
		Buckets:     make([]uint64, n),
	}
	for i := 0; i < n; i++ {
		out.UpperBounds[i] = float64(h.le[i])
		out.Buckets[i] = uint64(h.buckets[i])
	}
	return out
}

// MemorySample returns the monitor's last memory sample with each open DB's figures in
// Resources (rm_memory_sample): no RocksDB call and no walk over the resources, so it may be
// polled often. A DB opened since the last sample is not in it yet (the monitor samples every
// Config.MonitorInterval). After Shutdown or Close it returns ErrClosed (or ErrStaleHandle).
func (m *Manager) MemorySample() (MemorySample, error) {
	raw, err := readJSON(func(buf *C.char, capacity C.size_t, n *C.size_t, e *cerr) C.rm_result {
		return C.rm_memory_sample(m.h, buf, capacity, n, e)
	})
	if err != nil {
		return MemorySample{}, err
	}
	var s MemorySample
	if err := json.Unmarshal(raw, &s); err != nil {
		return MemorySample{}, err
	}
	return s, nil
}

// Metrics returns the manager's counters (rm_manager_metrics). After Shutdown or Close it returns
// ErrClosed (or ErrStaleHandle).
func (m *Manager) Metrics() (Metrics, error) {
	var c C.rm_metrics
	var e cerr
	if err := check(C.rm_manager_metrics(m.h, &c, &e), &e); err != nil {
		return Metrics{}, err
	}
	out := Metrics{
		Totals: Totals{
			Registered:      uint64(c.registered),
			Active:          uint64(c.active),
			Closing:         uint64(c.closing),
			Closed:          uint64(c.closed),
			Failed:          uint64(c.failed),
			Unregistered:    uint64(c.unregistered),
			Forced:          uint64(c.forced),
			Deferred:        uint64(c.deferred),
			TimedOut:        uint64(c.timed_out),
			Retries:         uint64(c.retries),
			CloseErrors:     uint64(c.close_errors),
			Cleanups:        uint64(c.cleanups),
			CleanupsFailed:  uint64(c.cleanups_failed),
			Escalations:     uint64(c.escalations),
			LeakedIterators: uint64(c.leaked_iterators),
			LeakedSnapshots: uint64(c.leaked_snapshots),
		},
		CleanupDuration: histogramFromC(&c.cleanup_duration),
		CloseDuration:   histogramFromC(&c.close_duration),
		Memory: MemorySample{
			Reporting: uint64(c.memory_reporting),
			Memory: Memory{
				MemTableTotal:     uint64(c.mem_table_total),
				MemTableUnflushed: uint64(c.mem_table_unflushed),
				TableReaders:      uint64(c.table_readers),
				BlockCache:        uint64(c.block_cache),
			},
			RegistryBytes: uint64(c.registry_bytes),
			Samples:       uint64(c.memory_samples),
		},
		CloseThreads: uint64(c.close_threads),
	}
	if age := uint64(c.memory_age_ms); age != math.MaxUint64 {
		out.Memory.AgeMs = &age
	}
	return out, nil
}
