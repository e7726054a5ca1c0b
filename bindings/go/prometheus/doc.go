// Package resmanprom exports a resman Manager's metrics to Prometheus.
//
// It is a separate module so that the core binding (github.com/resman-project/resman/bindings/go)
// keeps no third-party dependency. Register one collector per manager:
//
//	mgr, err := resman.NewManager(resman.DefaultConfig())
//	...
//	prometheus.MustRegister(resmanprom.NewCollector(mgr))
//
// Several managers in one registry need distinct const labels (or namespaces), for example
// resmanprom.NewCollector(mgr, resmanprom.WithConstLabels(prometheus.Labels{"manager": "cache"})).
//
// Each scrape reads the manager's metrics once (Manager.Metrics: resman's counters and two
// duration histograms, a few atomic loads) and the monitor's last memory sample
// (Manager.MemorySample: a small document, no RocksDB call), never the status document, and
// turns them into constant metrics; nothing is kept between scrapes. Scrapes may run concurrently with each other and with the manager's use, and may
// go on after Shutdown/Close: when the metrics cannot be read, a scrape yields only resman_up
// 0. The metrics (with the default namespace "resman"):
//
//	resman_up                                 gauge      1 when the metrics were read, else 0
//	resman_resources{state}                   gauge      live resources: state "active" or "closing"
//	resman_resources_registered_total         counter    resources registered (the monitor included)
//	resman_resources_closed_total             counter    resources closed successfully
//	resman_resources_failed_total             counter    resources whose every close attempt failed
//	resman_resources_unregistered_total       counter    resources handed back with unregister
//	resman_close_retries_total                counter    close attempts after a failed one
//	resman_close_errors_total                 counter    close attempts that failed
//	resman_close_timeouts_total               counter    resources not finished closing by a deadline
//	resman_forced_closes_total                counter    closes that were forced
//	resman_deferred_closes_total              counter    closes left to the last in-flight operation
//	resman_cleanups_total                     counter    cleanup runs
//	resman_cleanups_failed_total              counter    cleanup runs that returned an error
//	resman_cleanup_success_ratio              gauge      1 - failed/cleanups (1 before the first)
//	resman_cleanup_escalations_total          counter    runs whose graceful phase had to be forced
//	resman_leaked_iterators_total             counter    iterators closed by resman, not the caller
//	resman_leaked_snapshots_total             counter    snapshots released by resman, not the caller
//	resman_cleanup_duration_seconds           histogram  cleanup runs, start to return
//	resman_close_duration_seconds             histogram  resource closes, begin to native close's end
//	resman_rocksdb_memtable_bytes{db}         gauge      all memtables of the DB
//	resman_rocksdb_memtable_unflushed_bytes{db} gauge    memtables not yet flushed
//	resman_rocksdb_table_readers_bytes{db}    gauge      table readers (indexes and filters)
//	resman_rocksdb_block_cache_bytes{db}      gauge      the DB's block cache
//	resman_registry_bytes                     gauge      the manager's own bookkeeping (estimate)
//	resman_memory_sample_age_seconds          gauge      age of the memory sample (absent before the first)
//	resman_close_threads                      gauge      close-pool threads, idle included (process-wide)
//
// The memory figures are taken by the manager's monitor thread every
// resman.Config.MonitorInterval (10s by default), not at scrape time: a DB has resman_rocksdb_*
// series (its db label is the name it was opened under, Manager.Open) from the first sample
// after it opened until the first sample after it closed; sum by the other labels for a
// manager's total. For one DB's figures read now, use resman.DB.Memory.
package resmanprom
