// Package resmanprom exports a resman Manager's status as Prometheus metrics.
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
// Each scrape reads the manager's status document once (Manager.Status) and turns it into
// constant metrics; nothing is kept between scrapes. Scrapes may run concurrently with each
// other and with the manager's use, and may go on after Shutdown/Close: when the status
// cannot be read, a scrape yields only resman_up 0. The metrics (with the default namespace
// "resman"):
//
//	resman_up                                   gauge    1 when the status was read, else 0
//	resman_uptime_seconds                       gauge    time since the manager was created
//	resman_resources_active                     gauge    live resources accepting operations
//	resman_resources_closing                    gauge    live resources no longer accepting operations
//	resman_resources{kind,state}                gauge    live resources by kind and state
//	resman_resources_registered_total           counter  resources registered
//	resman_resources_closed_total               counter  resources closed successfully
//	resman_resources_failed_total               counter  closes that failed
//	resman_resources_unregistered_total         counter  resources handed back with unregister
//	resman_forced_closes_total                  counter  closes that were forced
//	resman_deferred_closes_total                counter  closes left to the last in-flight operation
//	resman_close_timeouts_total                 counter  resources not finished by a deadline
//	resman_cleanups_total                       counter  cleanup runs
//	resman_leaked_iterators_total               counter  iterators closed by resman, not the caller
//	resman_leaked_snapshots_total               counter  snapshots released by resman, not the caller
//	resman_db_memtable_bytes{db}                gauge    all memtables of the DB
//	resman_db_memtable_unflushed_bytes{db}      gauge    memtables not yet flushed
//	resman_db_table_readers_bytes{db}           gauge    table readers (indexes and filters)
//	resman_db_block_cache_bytes{db}             gauge    the DB's block cache
//
// The db label is the name the DB was opened under (Manager.Open). A DB that is closing, or
// whose memory figures RocksDB could not give, has no resman_db_* series in that scrape.
package resmanprom
