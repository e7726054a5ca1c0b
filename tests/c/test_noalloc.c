/*
 * Proves that resman's point read adds no heap allocation to RocksDB's own: rm_get and
 * rm_get_opt (latest data, and at a snapshot), hits and misses, make exactly as many calls to
 * malloc/calloc/realloc as RocksDB's own C API read into a caller buffer
 * (rocksdb_get_into_buffer, called directly on an identical DB). RocksDB 11.8's DB::Get
 * itself allocates: a std::function for its SuperVersion cleanup on every call, and a copy
 * of a memtable value longer than 15 bytes into the PinnableSlice; values read from table
 * files are pinned in the block cache and not copied. Those are RocksDB's, with or without
 * resman; the check is that resman's handle resolution, lease and copy add none.
 *
 * The program interposes malloc/calloc/realloc (forwarding to glibc's __libc_* entry points)
 * and counts the calls the reading thread makes while counting is on. Only that thread's: a
 * manager runs a monitor thread (its memory sample allocates) and closes run on resman's
 * close pool, both of which may run during the count without being part of the read path.
 * Run natively only (valgrind replaces malloc).
 */
#define _GNU_SOURCE

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <unistd.h>

#include "resman.h"

/* RocksDB's C API, linked in through libresman.a (the baseline). */
typedef struct rocksdb_t rocksdb_t;
typedef struct rocksdb_options_t rocksdb_options_t;
typedef struct rocksdb_readoptions_t rocksdb_readoptions_t;
typedef struct rocksdb_writeoptions_t rocksdb_writeoptions_t;
extern rocksdb_options_t *rocksdb_options_create(void);
extern void rocksdb_options_destroy(rocksdb_options_t *);
extern void rocksdb_options_set_create_if_missing(rocksdb_options_t *, unsigned char);
extern rocksdb_t *rocksdb_open(const rocksdb_options_t *, const char *, char **);
extern void rocksdb_close(rocksdb_t *);
extern rocksdb_readoptions_t *rocksdb_readoptions_create(void);
extern void rocksdb_readoptions_destroy(rocksdb_readoptions_t *);
extern rocksdb_writeoptions_t *rocksdb_writeoptions_create(void);
extern void rocksdb_writeoptions_destroy(rocksdb_writeoptions_t *);
extern void rocksdb_put(rocksdb_t *, const rocksdb_writeoptions_t *, const char *, size_t,
                        const char *, size_t, char **);
extern unsigned char rocksdb_get_into_buffer(rocksdb_t *, const rocksdb_readoptions_t *,
                                             const char *, size_t, char *, size_t, size_t *,
                                             unsigned char *, char **);

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);

/* Counting is per thread (initial-exec TLS of the executable: reading it never allocates). */
static _Thread_local bool t_counting;
static _Thread_local long t_allocs;
/* Allocations by other threads while the reading thread counts: reported, not compared. */
static atomic_bool g_counting;
static atomic_long g_other_allocs;

static void count_one(void) {
    if (t_counting) {
        t_allocs++;
    } else if (atomic_load_explicit(&g_counting, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&g_other_allocs, 1, memory_order_relaxed);
    }
}

static void counting_on(void) {
    t_allocs = 0;
    atomic_store(&g_counting, true);
    t_counting = true;
}

static long counting_off(void) {
    t_counting = false;
    atomic_store(&g_counting, false);
    return t_allocs;
}

void *malloc(size_t n) {
    count_one();
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size) {
    count_one();
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n) {
    count_one();
    return __libc_realloc(p, n);
}

static int g_failed;

#define REQUIRE(cond, ...)                                                                      \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                     \
            fprintf(stderr, __VA_ARGS__);                                                       \
            fprintf(stderr, "\n");                                                              \
            g_failed++;                                                                         \
        }                                                                                       \
    } while (0)

enum { KEYS = 2000, ROUNDS = 5 };

static rocksdb_t *g_raw;
static rocksdb_readoptions_t *g_raw_ro;

/* One read through RocksDB's C API: 1 found, 0 missing, -1 error. */
static int raw_get(const char *key, size_t n, char *buf, size_t cap) {
    size_t len = 0;
    unsigned char found = 0;
    char *e = NULL;
    (void)rocksdb_get_into_buffer(g_raw, g_raw_ro, key, n, buf, cap, &len, &found, &e);
    if (e != NULL) {
        return -1;
    }
    return found ? 1 : 0;
}

/* Reads every key ROUNDS times with counting on; returns the allocations seen. `raw`: through
 * RocksDB's C API instead of resman. */
static long count_reads(bool raw, uint64_t cf, uint64_t snapshot, bool hits) {
    char key[32];
    uint8_t buf[256];
    size_t len = 0;
    long errors = 0;
    rm_error e; /* as a Go caller passes it: the NOT_FOUND message is written too */
    counting_on();
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < KEYS; i++) {
            int n = snprintf(key, sizeof key, "%s%06d", hits ? "key" : "nokey", i);
            bool ok;
            if (raw) {
                ok = raw_get(key, (size_t)n, (char *)buf, sizeof buf) == (hits ? 1 : 0);
            } else {
                rm_result rc = snapshot == 0
                                   ? rm_get(cf, (const uint8_t *)key, (size_t)n, buf, sizeof buf,
                                            &len, &e)
                                   : rm_get_opt(cf, snapshot, RM_READ_NO_FILL_CACHE,
                                                (const uint8_t *)key, (size_t)n, buf, sizeof buf,
                                                &len, &e);
                ok = rc == (hits ? RM_OK : RM_ERR_NOT_FOUND);
            }
            if (!ok) {
                errors++;
            }
        }
    }
    long allocs = counting_off();
    REQUIRE(errors == 0, "%ld reads returned an unexpected code", errors);
    return allocs;
}

static void remove_dir(const char *dir) {
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
}

int main(void) {
    char dir[] = "/tmp/resman-noalloc-XXXXXX";
    char raw_dir[] = "/tmp/resman-noalloc-raw-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL, "mkdtemp");
    REQUIRE(mkdtemp(raw_dir) != NULL, "mkdtemp");
    uint64_t mgr = 0, db = 0, cf = 0, snap = 0;
    rm_error err;
    const char *cfs[] = {"default"};
    rm_config config;
    rm_config_default(&config);
    config.monitor_interval_ms = 10; /* so a sample lists the DB soon */
    REQUIRE(rm_manager_create(&config, &mgr, &err) == RM_OK, "%s", err.message);
    REQUIRE(rm_db_open(mgr, "db", dir, NULL, cfs, 1, &db, &cf, &err) == RM_OK, "%s",
            err.message);
    char key[32], value[64];
    for (int i = 0; i < KEYS; i++) {
        int kn = snprintf(key, sizeof key, "key%06d", i);
        int vn = snprintf(value, sizeof value, "value-%d-%0*d", i, 20, i);
        REQUIRE(rm_put(cf, (const uint8_t *)key, (size_t)kn, (const uint8_t *)value, (size_t)vn,
                       &err) == RM_OK,
                "%s", err.message);
    }
    REQUIRE(rm_snapshot_create(db, &snap, &err) == RM_OK, "%s", err.message);

    /* The same data in a DB opened through RocksDB's C API directly. */
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    char *e = NULL;
    g_raw = rocksdb_open(o, raw_dir, &e);
    REQUIRE(g_raw != NULL && e == NULL, "rocksdb_open: %s", e ? e : "?");
    g_raw_ro = rocksdb_readoptions_create();
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    for (int i = 0; i < KEYS; i++) {
        int kn = snprintf(key, sizeof key, "key%06d", i);
        int vn = snprintf(value, sizeof value, "value-%d-%0*d", i, 20, i);
        rocksdb_put(g_raw, wo, key, (size_t)kn, value, (size_t)vn, &e);
        REQUIRE(e == NULL, "rocksdb_put");
    }

    /* Warm up both (thread-local state is created by a thread's first read), then count. */
    (void)count_reads(false, cf, 0, true);
    (void)count_reads(true, 0, 0, true);
    long raw_hit = count_reads(true, 0, 0, true);
    long raw_miss = count_reads(true, 0, 0, false);
    long hit = count_reads(false, cf, 0, true);
    long miss = count_reads(false, cf, 0, false);
    long at_snapshot = count_reads(false, cf, snap, true);
    printf("allocations in %d reads: RocksDB C API: hits %ld, misses %ld; resman: hits %ld, "
           "misses %ld, hits at a snapshot %ld\n",
           KEYS * ROUNDS, raw_hit, raw_miss, hit, miss, at_snapshot);
    fflush(stdout);
    REQUIRE(hit == raw_hit, "rm_get hits: %ld allocations, RocksDB alone %ld", hit, raw_hit);
    REQUIRE(miss == raw_miss, "rm_get misses: %ld allocations, RocksDB alone %ld", miss,
            raw_miss);
    REQUIRE(at_snapshot == raw_hit, "rm_get_opt at a snapshot: %ld allocations, RocksDB alone %ld",
            at_snapshot, raw_hit);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_readoptions_destroy(g_raw_ro);
    rocksdb_close(g_raw);
    rocksdb_options_destroy(o);

    /* Polling the metrics allocates nothing either, also once the monitor's sample lists the
     * DB (its per-DB figures are not copied). */
    rm_metrics mx;
    memset(&mx, 0, sizeof mx);
    for (long i = 0; i < 100000000L && mx.memory_reporting == 0; i++) {
        REQUIRE(rm_manager_metrics(mgr, &mx, &err) == RM_OK, "%s", err.message);
        sched_yield();
    }
    REQUIRE(mx.memory_reporting == 1, "the monitor never sampled the DB");
    counting_on();
    for (int i = 0; i < 1000; i++) {
        (void)rm_manager_metrics(mgr, &mx, &err);
    }
    long metrics_allocs = counting_off();
    printf("allocations in 1000 rm_manager_metrics calls: %ld\n", metrics_allocs);
    REQUIRE(metrics_allocs == 0, "rm_manager_metrics allocated %ld times", metrics_allocs);

    /* The counter itself works: a call known to allocate is seen, and only this thread's
     * calls are counted. */
    counting_on();
    void *p = malloc(16);
    long own = counting_off();
    free(p);
    REQUIRE(own == 1, "the interposed malloc is not counting (%ld)", own);
    printf("allocations by other threads (the monitor, the close pool) while counting: %ld\n",
           atomic_load(&g_other_allocs));

    /* The manager's monitor, the DB, its column family, the snapshot. */
    REQUIRE(rm_live_objects() == 4, "live objects: %llu, expected 4",
            (unsigned long long)rm_live_objects());
    REQUIRE(rm_manager_destroy(mgr, &err) == RM_OK, "%s", err.message);
    REQUIRE(rm_live_objects() == 0, "live objects left: %llu",
            (unsigned long long)rm_live_objects());
    remove_dir(dir);
    remove_dir(raw_dir);
    if (g_failed) {
        fprintf(stderr, "test_noalloc: %d check(s) failed\n", g_failed);
        return 1;
    }
    printf("test_noalloc: ok\n");
    return 0;
}
