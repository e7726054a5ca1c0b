/*
 * C test suite for resman's lifecycle and error contract (include/resman.h).
 *
 * Self-contained C11, no framework. Build and run through tests/c/run.sh, which also runs it
 * under valgrind. Every check counts; the last line is "N passed, M failed" and the exit
 * status is non-zero when M > 0.
 *
 */
#define _XOPEN_SOURCE 700 /* mkdtemp, nftw, clock_gettime */

#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TMPDIR_TEMPLATE "/tmp/resman-ctest-XXXXXX"
#include "check.h"

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                    */

/* The thread main() runs on: close callbacks must never run on it (they run on resman's
 * close pool, never on the caller of rm_close / rm_cleanup / rm_manager_destroy). */
static pthread_t g_main_thread;

/* A shared record of which resources were closed, in order. Callbacks of independent
 * resources may run at the same time on different pool threads: the record is locked. */
#define LOG_MAX 64
typedef struct {
    pthread_mutex_t lock;
    int order[LOG_MAX];
    int n;
} close_log;

#define CLOSE_LOG_INIT {PTHREAD_MUTEX_INITIALIZER, {0}, 0}

static void log_reset(close_log *log) {
    pthread_mutex_lock(&log->lock);
    log->n = 0;
    pthread_mutex_unlock(&log->lock);
}

static int log_count(close_log *log) {
    pthread_mutex_lock(&log->lock);
    int n = log->n;
    pthread_mutex_unlock(&log->lock);
    return n;
}

/* The context of one registered resource. */
typedef struct {
    close_log *log;
    int id;
    atomic_int closes;        /* times the callback ran */
    atomic_int on_caller;     /* times it ran on the main thread (must stay 0) */
    int32_t fail_rc;          /* non-zero: the callback fails with this code */
    int fail_times;           /* ... this many times (0: every time), then succeeds */
    const char *fail_msg;     /* and writes this message (may be NULL) */
} tracked;

static int32_t tracked_close(void *context, char *message, size_t message_cap) {
    tracked *t = context;
    int call = atomic_fetch_add(&t->closes, 1) + 1;
    if (pthread_equal(pthread_self(), g_main_thread)) {
        atomic_fetch_add(&t->on_caller, 1);
    }
    if (t->log != NULL) {
        pthread_mutex_lock(&t->log->lock);
        if (t->log->n < LOG_MAX) {
            t->log->order[t->log->n++] = t->id;
        }
        pthread_mutex_unlock(&t->log->lock);
    }
    if (t->fail_rc != 0 && (t->fail_times == 0 || call <= t->fail_times)) {
        if (t->fail_msg != NULL && message != NULL && message_cap > 0) {
            snprintf(message, message_cap, "%s", t->fail_msg);
        }
        return t->fail_rc;
    }
    return 0;
}

static void tracked_init(tracked *t, close_log *log, int id) {
    memset(t, 0, sizeof *t);
    t->log = log;
    t->id = id;
    atomic_init(&t->closes, 0);
    atomic_init(&t->on_caller, 0);
}

static int closes(tracked *t) { return atomic_load(&t->closes); }

/* Position of `id` in the log, -1 if absent. */
static int log_pos(close_log *log, int id) {
    int pos = -1;
    pthread_mutex_lock(&log->lock);
    for (int i = 0; i < log->n; i++) {
        if (log->order[i] == id) {
            pos = i;
            break;
        }
    }
    pthread_mutex_unlock(&log->lock);
    return pos;
}

/* Waiting for something another thread does (a close that runs on the pool after the call
 * that started it returned): polls, yielding the CPU, up to SPIN_MAX times. No sleeping. */
#define SPIN_MAX 20000000L

static bool wait_live(uint64_t want) {
    for (long i = 0; i < SPIN_MAX; i++) {
        if (rm_live_objects() == want) {
            return true;
        }
        sched_yield();
    }
    fprintf(stderr, "      rm_live_objects() is %" PRIu64 ", waited for %" PRIu64 "\n",
            rm_live_objects(), want);
    return false;
}

static bool wait_closes(tracked *t, int want) {
    for (long i = 0; i < SPIN_MAX; i++) {
        if (closes(t) >= want) {
            return true;
        }
        sched_yield();
    }
    fprintf(stderr, "      callback %d ran %d time(s), waited for %d\n", t->id, closes(t), want);
    return false;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The defaults, with failed closes not retried (the default, 3 retries 1 s apart, would
 * make every test with a failing callback take seconds). */
static rm_config no_retry_config(void) {
    rm_config c;
    rm_config_default(&c);
    c.max_retries = 0;
    return c;
}

/* The manager's counters (all 0xff bytes when rm_metrics fails). */
static rm_metrics metrics_of(uint64_t m) {
    rm_metrics out;
    memset(&out, 0xff, sizeof out);
    rm_error e;
    rm_result rc = rm_manager_metrics(m, &out, &e);
    if (rc != RM_OK) {
        fprintf(stderr, "      rm_manager_metrics: %s: %s\n", rm_result_str((int32_t)rc), e.message);
        memset(&out, 0xff, sizeof out);
    }
    return out;
}

/* The object {...} of `last_cleanup.steps` for resource `name` in `doc`: its start in *obj
 * and its end in *obj_end; false if absent. */
static bool step_of(const char *doc, const char *name, const char **obj, const char **obj_end) {
    const char *lc = doc ? strstr(doc, "\"last_cleanup\":{") : NULL;
    const char *steps = lc ? strstr(lc, "\"steps\":[") : NULL;
    if (steps == NULL) {
        return false;
    }
    char pat[160];
    snprintf(pat, sizeof pat, "{\"name\":\"%s\",", name);
    const char *p = strstr(steps, pat);
    if (p == NULL) {
        return false;
    }
    const char *e = strstr(p, "]}"); /* "errors":[...]} closes a step */
    if (e == NULL) {
        return false;
    }
    *obj = p;
    *obj_end = e + 2;
    return true;
}

/* In the last cleanup's record: `dependent` finished closing no later than `dependency`
 * started (both must be there). */
static bool step_before(const char *doc, const char *dependent, const char *dependency) {
    const char *a, *ae, *b, *be;
    if (!step_of(doc, dependent, &a, &ae) || !step_of(doc, dependency, &b, &be)) {
        fprintf(stderr, "      last_cleanup.steps lacks '%s' or '%s'\n", dependent, dependency);
        return false;
    }
    double finished = json_num(a, ae, "finished_ms");
    double started = json_num(b, be, "started_ms");
    if (finished < 0 || started < 0 || finished > started) {
        fprintf(stderr, "      '%s' finished at %.3f ms, '%s' started at %.3f ms\n", dependent,
                finished, dependency, started);
        return false;
    }
    return true;
}

static int32_t noop_close(void *context, char *message, size_t message_cap) {
    (void)context;
    (void)message;
    (void)message_cap;
    return 0;
}

/* Bits 5..15 of a handle: the tag of the table that issued it (see src/handle.rs). */
static unsigned handle_tag(uint64_t h) { return (unsigned)((h >> 5) & 0x3ff); }

/* The handle of the manager's monitor resource, from its status document; 0 if absent. */
static uint64_t monitor_handle(uint64_t m) {
    char *doc = status_doc(m);
    const char *res = live_resources(doc);
    const char *name = res ? strstr(res, "\"name\":\"resman.monitor\"") : NULL;
    uint64_t h = 0;
    if (name != NULL) {
        const char *p = name;
        while (p > res && strncmp(p, "{\"handle\":", 10) != 0) {
            p--;
        }
        if (p > res) {
            h = strtoull(p + 10, NULL, 10);
        }
    }
    free(doc);
    return h;
}


/* ------------------------------------------------------------------------------------------ */
/* Tests                                                                                      */

static void test_version(void) {
    BEGIN_TEST();
    CHECK(rm_version() != NULL);
    CHECK(strcmp(rm_version(), RM_VERSION_STRING) == 0);
    CHECK(rm_version_number() == RM_VERSION_NUMBER);
    CHECK(RM_VERSION_NUMBER == RM_VERSION_MAJOR * 10000 + RM_VERSION_MINOR * 100 + RM_VERSION_PATCH);
    const char *unknown = "unknown result code";
    for (int32_t c = 0; c <= RM_ERR_ITERATOR_NOT_VALID; c++) {
        const char *s = rm_result_str(c);
        if (!CHECK(s != NULL && s[0] != '\0' && strcmp(s, unknown) != 0)) {
            fprintf(stderr, "      code %d\n", (int)c);
        }
    }
    CHECK(strcmp(rm_result_str(RM_OK), "ok") == 0);
    CHECK(strcmp(rm_result_str(RM_ERR_ITERATOR_NOT_VALID + 1), unknown) == 0);
    CHECK(strcmp(rm_result_str(9999), unknown) == 0);
    CHECK(strcmp(rm_result_str(-1), unknown) == 0);
    CHECK(strcmp(rm_result_str(INT32_MIN), unknown) == 0);
    CHECK(strcmp(rm_result_str(INT32_MAX), unknown) == 0);
}

static void test_manager_create_destroy(void) {
    BEGIN_TEST();
    uint64_t m1 = 0, m2 = 0, m3 = 0;
    uint64_t live0 = rm_live_objects();

    CHECK_RC(rm_manager_create(NULL, &m1, &err), RM_OK);
    CHECK(m1 != 0);
    /* Every manager registers its monitor thread as a resource at creation. */
    CHECK(rm_live_objects() == live0 + 1);

    rm_config cfg;
    memset(&cfg, 0xff, sizeof cfg);
    CHECK(rm_config_default(&cfg) == RM_OK);
    CHECK(cfg.cleanup_timeout_ms == 30000);
    CHECK(rm_config_default(NULL) == RM_ERR_NULL_POINTER);
    CHECK_RC(rm_manager_create(&cfg, &m2, &err), RM_OK);
    CHECK(m2 != 0 && m2 != m1);
    CHECK(rm_live_objects() == live0 + 2);

    rm_config zero = cfg;
    zero.cleanup_timeout_ms = 0;
    m3 = 777;
    CHECK_RC(rm_manager_create(&zero, &m3, &err), RM_ERR_INVALID_ARGUMENT);
    CHECK(m3 == 777);
    CHECK(rm_live_objects() == live0 + 2); /* no monitor was started */
    CHECK_RC(rm_manager_create(NULL, NULL, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_manager_create(&cfg, NULL, &err), RM_ERR_NULL_POINTER);
    /* err may be NULL. */
    CHECK(rm_manager_create(NULL, NULL, NULL) == RM_ERR_NULL_POINTER);

    /* A manager handle is not a resource handle. */
    CHECK_RC(rm_close(m1, m2, &err), RM_ERR_WRONG_KIND);
    CHECK_RC(rm_unregister(m1, m2, &err), RM_ERR_WRONG_KIND);
    /* 0 and a resource table number are not managers. */
    CHECK_RC(rm_cleanup(0, &err), RM_ERR_INVALID_HANDLE);
    CHECK_RC(rm_manager_destroy(0, &err), RM_ERR_INVALID_HANDLE);

    /* Destroy twice; later calls on the dead manager. No manager is created in between, so
     * the dead handle's slot is not reused (which would make it STALE instead). */
    CHECK_RC(rm_manager_destroy(m2, &err), RM_OK);
    CHECK(rm_live_objects() == live0 + 1); /* its monitor is closed */
    CHECK_RC(rm_manager_destroy(m2, &err), RM_ERR_ALREADY_CLOSED);
    CHECK(rm_manager_destroy(m2, NULL) == RM_ERR_ALREADY_CLOSED);

    tracked t;
    tracked_init(&t, NULL, 1);
    uint64_t h = 12345;
    CHECK_RC(rm_register(m2, "x", tracked_close, &t, NULL, 0, &h, &err), RM_ERR_CLOSED);
    CHECK(h == 12345);
    CHECK_RC(rm_cleanup(m2, &err), RM_ERR_CLOSED);
    CHECK_RC(rm_cleanup_timeout(m2, 10, false, &err), RM_ERR_CLOSED);
    size_t len = 0;
    CHECK_RC(rm_status(m2, NULL, 0, &len, &err), RM_ERR_CLOSED);

    /* Resource calls on a dead manager: the manager is checked first. */
    uint64_t r = 0;
    CHECK_RC(rm_register(m1, "r", tracked_close, &t, NULL, 0, &r, &err), RM_OK);
    CHECK_RC(rm_close(m2, r, &err), RM_ERR_CLOSED);
    CHECK_RC(rm_close_timeout(m2, r, 10, true, &err), RM_ERR_CLOSED);
    CHECK_RC(rm_unregister(m2, r, &err), RM_ERR_CLOSED);
    CHECK_RC(rm_add_dependency(m2, r, r, &err), RM_ERR_CLOSED);
    uint64_t db = 0, cf = 0;
    const char *cfn[] = {"default"};
    CHECK_RC(rm_db_open(m2, "db", "/tmp/resman-ctest-never-created", NULL, cfn, 1, &db, &cf, &err),
             RM_ERR_CLOSED);
    CHECK(access("/tmp/resman-ctest-never-created", F_OK) != 0);
    CHECK(closes(&t) == 0);
    CHECK(rm_live_objects() == live0 + 2);

    /* Destroy closes what the manager still owns (on a close-pool thread), its monitor
     * included, before it returns. */
    CHECK_RC(rm_manager_destroy(m1, &err), RM_OK);
    CHECK(closes(&t) == 1);
    CHECK(atomic_load(&t.on_caller) == 0);
    CHECK(rm_live_objects() == live0);
    CHECK_RC(rm_manager_destroy(m1, &err), RM_ERR_ALREADY_CLOSED);
    /* r was m1's: its destroy closed it. */
    CHECK_RC(rm_close(m1, r, &err), RM_ERR_ALREADY_CLOSED);
}

/* Manager slots are reused FIFO too: once a new manager takes a destroyed manager's slot, the
 * old handle is STALE (the header's general rule), no longer ALREADY_CLOSED / CLOSED (what
 * rm_manager_destroy's own text says). With one manager at a time that is the very next
 * rm_manager_create. */
static void test_manager_handle_reuse(void) {
    BEGIN_TEST();
    uint64_t old = 0;
    CHECK_RC(rm_manager_create(NULL, &old, &err), RM_OK);
    CHECK_RC(rm_manager_destroy(old, &err), RM_OK);
    int iterations = 0, unexpected = 0;
    rm_result rc = RM_ERR_ALREADY_CLOSED;
    uint64_t taker = 0;
    while (iterations < 100000) {
        uint64_t m = 0;
        if (rm_manager_create(NULL, &m, &err) != RM_OK) {
            CHECK(!"rm_manager_create in the reuse loop failed");
            break;
        }
        iterations++;
        rc = rm_manager_destroy(old, &err);
        if (rc == RM_ERR_STALE_HANDLE) {
            taker = m;
            break;
        }
        if (rc != RM_ERR_ALREADY_CLOSED) {
            unexpected++;
        }
        rm_manager_destroy(m, NULL);
    }
    fprintf(stderr, "      the dead manager's slot was reused after %d create(s)\n", iterations);
    CHECK(unexpected == 0);
    CHECK(rc == RM_ERR_STALE_HANDLE);
    uint64_t h = 0;
    CHECK_RC(rm_register(old, "x", noop_close, NULL, NULL, 0, &h, &err), RM_ERR_STALE_HANDLE);
    CHECK_RC(rm_cleanup(old, &err), RM_ERR_STALE_HANDLE);
    /* The new manager is unaffected. */
    CHECK_RC(rm_register(taker, "x", noop_close, NULL, NULL, 0, &h, &err), RM_OK);
    CHECK_RC(rm_close(old, h, &err), RM_ERR_STALE_HANDLE);
    CHECK_RC(rm_manager_destroy(taker, &err), RM_OK);
}

static void test_register_close_basic(void) {
    BEGIN_TEST();
    uint64_t live_before = rm_live_objects();
    uint64_t m = 0;
    CHECK_RC(rm_manager_create(NULL, &m, &err), RM_OK);
    uint64_t live0 = rm_live_objects();
    CHECK(live0 == live_before + 1); /* the monitor */

    close_log log = CLOSE_LOG_INIT;
    tracked a, b;
    tracked_init(&a, &log, 1);
    tracked_init(&b, &log, 2);
    uint64_t ha = 0, hb = 0;
    CHECK_RC(rm_register(m, "a", tracked_close, &a, NULL, 0, &ha, &err), RM_OK);
    CHECK_RC(rm_register(m, "b", tracked_close, &b, NULL, 0, &hb, &err), RM_OK);
    CHECK(ha != 0 && hb != 0 && ha != hb);
    CHECK(rm_live_objects() == live0 + 2);

    /* Close a: the callback runs once, on a close-pool thread, and has finished when
     * rm_close returns; a second close is ALREADY_CLOSED and runs nothing. */
    CHECK_RC(rm_close(m, ha, &err), RM_OK);
    CHECK(closes(&a) == 1 && closes(&b) == 0);
    CHECK(atomic_load(&a.on_caller) == 0);
    CHECK(log_count(&log) == 1 && log_pos(&log, 1) == 0);
    CHECK_RC(rm_close(m, ha, &err), RM_ERR_ALREADY_CLOSED);
    CHECK(rm_close(m, ha, NULL) == RM_ERR_ALREADY_CLOSED);
    CHECK_RC(rm_close_timeout(m, ha, 0, true, &err), RM_ERR_ALREADY_CLOSED);
    CHECK_RC(rm_close_timeout(m, ha, 0, false, &err), RM_ERR_ALREADY_CLOSED);
    CHECK_RC(rm_unregister(m, ha, &err), RM_ERR_ALREADY_CLOSED);
    CHECK(closes(&a) == 1);
    CHECK(rm_live_objects() == live0 + 1);

    /* The name is free again once the resource is closed. */
    tracked a2;
    tracked_init(&a2, &log, 3);
    uint64_t ha2 = 0;
    CHECK_RC(rm_register(m, "a", tracked_close, &a2, NULL, 0, &ha2, &err), RM_OK);
    CHECK(ha2 != ha);

    /* A forced close with nothing in flight: the native close runs on the pool and the call
     * waits for it up to timeout_ms, so with a generous bound it has run on return. */
    CHECK_RC(rm_close_timeout(m, hb, 10000, true, &err), RM_OK);
    CHECK(closes(&b) == 1);
    CHECK(atomic_load(&b.on_caller) == 0);
    CHECK(rm_live_objects() == live0 + 1);

    /* A forced close bounded by 0 ms: the close is started but the call does not wait for
     * the pool, so it (almost always) reports the resource as not finished by the deadline,
     * by name and state. The close still runs, shortly after. */
    tracked z;
    tracked_init(&z, NULL, 4);
    uint64_t hz = 0;
    CHECK_RC(rm_register(m, "zero-bound", tracked_close, &z, NULL, 0, &hz, &err), RM_OK);
    memset(&err, 0x5a, sizeof err);
    rm_result rc = rm_close_timeout(m, hz, 0, true, &err);
    CHECK((rc == RM_OK || rc == RM_ERR_TIMEOUT) && err.code == rc);
    CHECK(rc != RM_ERR_TIMEOUT || strstr(err.message, "zero-bound") != NULL);
    CHECK(rc != RM_ERR_TIMEOUT ||
          strstr(err.message, "did not finish closing by the deadline (state closing") != NULL);
    if (rc == RM_OK) {
        fprintf(stderr, "      the 0 ms forced close finished in time (allowed)\n");
    }
    CHECK_RC(rm_close(m, hz, &err), RM_ERR_ALREADY_CLOSED); /* closing or closed: dead */
    CHECK(wait_closes(&z, 1));
    CHECK(wait_live(live0 + 1));
    CHECK(closes(&z) == 1 && atomic_load(&z.on_caller) == 0);

    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
    CHECK(closes(&a) == 1 && closes(&b) == 1 && closes(&a2) == 1);
    CHECK(atomic_load(&a2.on_caller) == 0);
    CHECK(rm_live_objects() == live_before);
}

static void test_close_failure(void) {
    BEGIN_TEST();
    uint64_t m = 0;
    rm_config cfg = no_retry_config();
    CHECK_RC(rm_manager_create(&cfg, &m, &err), RM_OK);

    tracked f;
    tracked_init(&f, NULL, 1);
    f.fail_rc = 7;
    f.fail_msg = "disk on fire";
    uint64_t h = 0;
    CHECK_RC(rm_register(m, "flaky-file", tracked_close, &f, NULL, 0, &h, &err), RM_OK);
    CHECK_RC(rm_close(m, h, &err), RM_ERR_CLOSE_FAILED);
    CHECK(strstr(err.message, "disk on fire") != NULL);
    CHECK(strstr(err.message, "flaky-file") != NULL);
    CHECK(closes(&f) == 1); /* max_retries 0: one attempt */
    /* Dead whatever the result: never called again. */
    CHECK_RC(rm_close(m, h, &err), RM_ERR_ALREADY_CLOSED);
    CHECK_RC(rm_cleanup(m, &err), RM_OK);
    CHECK(closes(&f) == 1);

    /* A failing callback that writes no message still fails, with the code in the text. */
    tracked g;
    tracked_init(&g, NULL, 2);
    g.fail_rc = -3;
    CHECK_RC(rm_register(m, "silent", tracked_close, &g, NULL, 0, &h, &err), RM_OK);
    CHECK_RC(rm_close(m, h, &err), RM_ERR_CLOSE_FAILED);
    CHECK(strstr(err.message, "silent") != NULL);
    CHECK(strstr(err.message, "-3") != NULL);
    CHECK(closes(&g) == 1);

    /* A message as long as the buffer given to the callback: cut, still NUL-terminated. */
    static char big[2048];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    tracked l;
    tracked_init(&l, NULL, 3);
    l.fail_rc = 1;
    l.fail_msg = big;
    CHECK_RC(rm_register(m, "long", tracked_close, &l, NULL, 0, &h, &err), RM_OK);
    CHECK_RC(rm_close(m, h, &err), RM_ERR_CLOSE_FAILED);
    CHECK(strlen(err.message) == RM_ERROR_MESSAGE_MAX - 1);
    CHECK(closes(&l) == 1);

    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
    CHECK(closes(&f) == 1 && closes(&g) == 1 && closes(&l) == 1);

    /* With retries: a callback that always fails is called 1 + max_retries times,
     * retry_delay_ms apart, and the error has every attempt's message. */
    cfg = no_retry_config();
    cfg.max_retries = 2;
    cfg.retry_delay_ms = 1;
    CHECK_RC(rm_manager_create(&cfg, &m, &err), RM_OK);
    tracked r;
    tracked_init(&r, NULL, 4);
    r.fail_rc = 5;
    r.fail_msg = "still broken";
    CHECK_RC(rm_register(m, "stubborn", tracked_close, &r, NULL, 0, &h, &err), RM_OK);
    double t0 = now_ms();
    CHECK_RC(rm_close(m, h, &err), RM_ERR_CLOSE_FAILED);
    double took = now_ms() - t0;
    CHECK(closes(&r) == 3);
    CHECK(atomic_load(&r.on_caller) == 0);
    CHECK(strstr(err.message, "stubborn") != NULL);
    CHECK(strstr(err.message, "failed 3 times") != NULL);
    CHECK(strstr(err.message, "[attempt 1]") != NULL && strstr(err.message, "[attempt 3]") != NULL);
    CHECK(strstr(err.message, "still broken") != NULL);
    CHECK(took >= 2.0); /* two pauses of retry_delay_ms */
    /* One that fails once then succeeds: closed, no error. */
    tracked once;
    tracked_init(&once, NULL, 5);
    once.fail_rc = 6;
    once.fail_times = 1;
    CHECK_RC(rm_register(m, "once", tracked_close, &once, NULL, 0, &h, &err), RM_OK);
    CHECK_RC(rm_close(m, h, &err), RM_OK);
    CHECK(closes(&once) == 2);
    CHECK_RC(rm_close(m, h, &err), RM_ERR_ALREADY_CLOSED);
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
    CHECK(closes(&r) == 3 && closes(&once) == 2);
}

static void test_register_argument_errors(void) {
    BEGIN_TEST();
    uint64_t live_before = rm_live_objects();
    uint64_t m = 0, other = 0;
    CHECK_RC(rm_manager_create(NULL, &m, &err), RM_OK);
    CHECK_RC(rm_manager_create(NULL, &other, &err), RM_OK);
    uint64_t live0 = rm_live_objects();
    CHECK(live0 == live_before + 2); /* two monitors */

    tracked t;
    tracked_init(&t, NULL, 1);
    uint64_t h = 777;

    CHECK_RC(rm_register(m, NULL, tracked_close, &t, NULL, 0, &h, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_register(m, "n", NULL, &t, NULL, 0, &h, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_register(m, "n", tracked_close, &t, NULL, 0, NULL, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_register(m, "n", tracked_close, &t, NULL, 1, &h, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_register(m, "", tracked_close, &t, NULL, 0, &h, &err), RM_ERR_INVALID_ARGUMENT);
    CHECK_RC(rm_register(m, "\xff\xfe", tracked_close, &t, NULL, 0, &h, &err),
             RM_ERR_INVALID_UTF8);
    static char longname[1026];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    CHECK_RC(rm_register(m, longname, tracked_close, &t, NULL, 0, &h, &err),
             RM_ERR_INVALID_ARGUMENT);
    longname[1024] = '\0'; /* 1024 bytes: the limit in src/manager.rs, accepted */
    uint64_t hl = 0;
    CHECK_RC(rm_register(m, longname, noop_close, NULL, NULL, 0, &hl, &err), RM_OK);
    CHECK_RC(rm_close(m, hl, &err), RM_OK);
    /* The context is never dereferenced: NULL is fine. */
    CHECK_RC(rm_register(m, "null-context", noop_close, NULL, NULL, 0, &hl, &err), RM_OK);
    CHECK_RC(rm_close(m, hl, &err), RM_OK);

    /* Too many dependencies: refused before the list is read. */
    uint64_t one = 0;
    CHECK_RC(rm_register(m, "many", tracked_close, &t, &one, (size_t)RM_MAX_DEPENDENCIES + 1, &h,
                         &err),
             RM_ERR_INVALID_ARGUMENT);

    CHECK(h == 777);
    CHECK(rm_live_objects() == live0);

    /* Duplicate name. */
    uint64_t a = 0;
    CHECK_RC(rm_register(m, "dup", tracked_close, &t, NULL, 0, &a, &err), RM_OK);
    CHECK_RC(rm_register(m, "dup", tracked_close, &t, NULL, 0, &h, &err), RM_ERR_DUPLICATE_NAME);
    CHECK(strstr(err.message, "dup") != NULL);
    /* Names are per manager. */
    uint64_t o = 0;
    CHECK_RC(rm_register(other, "dup", noop_close, NULL, NULL, 0, &o, &err), RM_OK);

    /* Bad dependencies. */
    uint64_t deps[2];
    deps[0] = 0;
    CHECK_RC(rm_register(m, "d0", tracked_close, &t, deps, 1, &h, &err), RM_ERR_INVALID_HANDLE);
    /* Arbitrary numbers: never issued, whatever table tag their bits happen to carry. */
    uint64_t junk[] = {UINT64_C(0x123456789abcdef), UINT64_MAX, UINT64_C(0xdeadbeef),
                       UINT64_C(1) << 40};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        deps[0] = junk[i];
        if (!CHECK_RC(rm_register(m, "dj", tracked_close, &t, deps, 1, &h, &err),
                      RM_ERR_INVALID_HANDLE)) {
            fprintf(stderr, "      dependency %#" PRIx64 "\n", junk[i]);
        }
        CHECK_RC(rm_close(m, junk[i], &err), RM_ERR_INVALID_HANDLE);
        CHECK_RC(rm_put(junk[i], B("k"), 1, B("v"), 1, &err), RM_ERR_INVALID_HANDLE);
    }
    /* One good dependency and one bad one: nothing is registered, the good one is not pinned. */
    deps[0] = a;
    deps[1] = 0;
    CHECK_RC(rm_register(m, "d2", tracked_close, &t, deps, 2, &h, &err), RM_ERR_INVALID_HANDLE);
    CHECK(strstr(err.message, "dependency 1") != NULL);
    /* A dependency listed twice is fine. */
    deps[1] = a;
    uint64_t twice = 0;
    CHECK_RC(rm_register(m, "twice", noop_close, NULL, deps, 2, &twice, &err), RM_OK);
    CHECK_RC(rm_close(m, twice, &err), RM_OK);

    /* A dependency in another manager. */
    deps[0] = o;
    CHECK_RC(rm_register(m, "df", tracked_close, &t, deps, 1, &h, &err), RM_ERR_FOREIGN_HANDLE);
    /* Closing, unregistering, linking another manager's resource. */
    CHECK_RC(rm_close(m, o, &err), RM_ERR_FOREIGN_HANDLE);
    CHECK_RC(rm_close_timeout(m, o, 0, true, &err), RM_ERR_FOREIGN_HANDLE);
    CHECK_RC(rm_unregister(m, o, &err), RM_ERR_FOREIGN_HANDLE);
    CHECK_RC(rm_add_dependency(m, a, o, &err), RM_ERR_FOREIGN_HANDLE);
    CHECK_RC(rm_add_dependency(m, o, a, &err), RM_ERR_FOREIGN_HANDLE);

    /* Kinds: a manager handle where a resource goes, and the reverse. */
    CHECK_RC(rm_put(m, B("k"), 1, B("v"), 1, &err), RM_ERR_WRONG_KIND);
    size_t len = 0;
    uint8_t buf[8];
    CHECK_RC(rm_get(m, B("k"), 1, buf, sizeof buf, &len, &err), RM_ERR_WRONG_KIND);
    CHECK_RC(rm_delete(m, B("k"), 1, &err), RM_ERR_WRONG_KIND);
    deps[0] = m;
    CHECK_RC(rm_register(m, "dm", tracked_close, &t, deps, 1, &h, &err), RM_ERR_WRONG_KIND);
    CHECK_RC(rm_register(a, "ra", tracked_close, &t, NULL, 0, &h, &err), RM_ERR_WRONG_KIND);
    CHECK_RC(rm_cleanup(a, &err), RM_ERR_WRONG_KIND);
    CHECK_RC(rm_manager_destroy(a, &err), RM_ERR_WRONG_KIND);
    /* A foreign resource where a column family goes. */
    CHECK_RC(rm_put(a, B("k"), 1, B("v"), 1, &err), RM_ERR_WRONG_KIND);
    CHECK_RC(rm_get(a, B("k"), 1, buf, sizeof buf, &len, &err), RM_ERR_WRONG_KIND);
    CHECK_RC(rm_delete(a, B("k"), 1, &err), RM_ERR_WRONG_KIND);

    /* None of the failed registrations left anything behind or called anything. */
    CHECK(h == 777);
    CHECK(closes(&t) == 0);
    CHECK(rm_live_objects() == live0 + 2);

    /* A dependency that is closed (and removed). The header: RM_ERR_DEPENDENCY_CLOSED "A
     * dependency is closing or closed"; rm_register documents RM_ERR_CLOSED only for a
     * destroyed manager. */
    uint64_t dead = 0;
    CHECK_RC(rm_register(m, "dead", noop_close, NULL, NULL, 0, &dead, &err), RM_OK);
    CHECK_RC(rm_close(m, dead, &err), RM_OK);
    deps[0] = dead;
    CHECK_RC(rm_register(m, "on-dead", tracked_close, &t, deps, 1, &h, &err),
             RM_ERR_DEPENDENCY_CLOSED);
    CHECK_RC(rm_add_dependency(m, a, dead, &err), RM_ERR_DEPENDENCY_CLOSED);
    /* A closed dependent: RM_ERR_CLOSED, as documented. */
    CHECK_RC(rm_add_dependency(m, dead, a, &err), RM_ERR_CLOSED);
    CHECK(h == 777 && closes(&t) == 0);

    /* The monitor's name is taken in every manager. */
    CHECK_RC(rm_register(m, "resman.monitor", tracked_close, &t, NULL, 0, &h, &err),
             RM_ERR_DUPLICATE_NAME);
    CHECK(h == 777);

    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
    CHECK(closes(&t) == 1); /* "dup" */
    CHECK_RC(rm_manager_destroy(other, &err), RM_OK);
    CHECK(rm_live_objects() == live_before);
}

/* Numbers that were never issued but carry a live table's tag. */
static void test_forged_handles(void) {
    BEGIN_TEST();
    uint64_t m = 0;
    CHECK_RC(rm_manager_create(NULL, &m, &err), RM_OK);
    uint64_t a = 0, h = 0;
    CHECK_RC(rm_register(m, "a", noop_close, NULL, NULL, 0, &a, &err), RM_OK);

    /* Resource table tag, unknown kind bits (31) or a huge slot index. */
    uint64_t res_tag = (uint64_t)handle_tag(a) << 5;
    uint64_t forged_res_kind = res_tag | 31u | (UINT64_C(1) << 35);
    uint64_t forged_res_index = (a & ~(UINT64_C(0xfffff) << 15)) | (UINT64_C(0xfffff) << 15);
    uint64_t forged_res_gen = a + (UINT64_C(100) << 35);
    uint64_t forged_res_kind2 = (a & ~UINT64_C(31)) | 3u; /* a's slot, column-family kind */
    uint64_t fr[] = {forged_res_kind, forged_res_index, forged_res_gen, forged_res_kind2};
    for (size_t i = 0; i < sizeof fr / sizeof fr[0]; i++) {
        uint64_t deps[1] = {fr[i]};
        if (!CHECK_RC(rm_register(m, "f", noop_close, NULL, deps, 1, &h, &err),
                      RM_ERR_INVALID_HANDLE) ||
            !CHECK_RC(rm_close(m, fr[i], &err), RM_ERR_INVALID_HANDLE)) {
            fprintf(stderr, "      forged %#" PRIx64 " (real %#" PRIx64 ")\n", fr[i], a);
        }
    }

    /* Manager table tag with unknown kind bits: never issued, so INVALID_HANDLE per the header
     * ("the handle is 0, or was never issued (a random or corrupted number)"); WRONG_KIND is
     * "valid but names another kind of object". */
    uint64_t forged_mgr = ((uint64_t)handle_tag(m) << 5) | 31u | (UINT64_C(1) << 35);
    uint64_t deps[1] = {forged_mgr};
    CHECK_RC(rm_register(m, "g", noop_close, NULL, deps, 1, &h, &err), RM_ERR_INVALID_HANDLE);
    CHECK_RC(rm_put(forged_mgr, B("k"), 1, B("v"), 1, &err), RM_ERR_INVALID_HANDLE);
    /* And the same for a resource-table-tagged number with bad kind bits given as manager. */
    CHECK_RC(rm_cleanup(forged_res_kind, &err), RM_ERR_INVALID_HANDLE);

    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
}

/* The close order within one run, as the log recorded it: exactly `want` (a dependency
 * chain, whose order is fixed). */
static bool log_is(close_log *log, const char *want) {
    char got[LOG_MAX + 1];
    pthread_mutex_lock(&log->lock);
    int n = log->n;
    for (int i = 0; i < n; i++) {
        got[i] = (char)log->order[i];
    }
    pthread_mutex_unlock(&log->lock);
    got[n] = '\0';
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "      closed in the order \"%s\", expected \"%s\"\n", got, want);
        return false;
    }
    return true;
}

static void test_cleanup_order(void) {
    BEGIN_TEST();
    uint64_t m = 0;
    CHECK_RC(rm_manager_create(NULL, &m, &err), RM_OK);

    /* A <- B <- C (C depends on B, B on A), D independent. */
    close_log log = CLOSE_LOG_INIT;
    tracked A, Bt, C, D;
    tracked_init(&A, &log, 'A');
    tracked_init(&Bt, &log, 'B');
    tracked_init(&C, &log, 'C');
    tracked_init(&D, &log, 'D');
    uint64_t ha = 0, hb = 0, hc = 0, hd = 0;
    CHECK_RC(rm_register(m, "A", tracked_close, &A, NULL, 0, &ha, &err), RM_OK);
    CHECK_RC(rm_register(m, "B", tracked_close, &Bt, &ha, 1, &hb, &err), RM_OK);
    CHECK_RC(rm_register(m, "C", tracked_close, &C, &hb, 1, &hc, &err), RM_OK);
    CHECK_RC(rm_register(m, "D", tracked_close, &D, NULL, 0, &hd, &err), RM_OK);

    CHECK_RC(rm_cleanup(m, &err), RM_OK);
    CHECK(log_count(&log) == 4);
    /* Dependents finish before what they depend on starts. D (and the monitor) are
     * independent of the chain: they close concurrently with it, in no fixed order. */
    CHECK(log_pos(&log, 'C') >= 0 && log_pos(&log, 'C') < log_pos(&log, 'B'));
    CHECK(log_pos(&log, 'B') >= 0 && log_pos(&log, 'B') < log_pos(&log, 'A'));
    CHECK(log_pos(&log, 'D') >= 0);
    CHECK(closes(&A) == 1 && closes(&Bt) == 1 && closes(&C) == 1 && closes(&D) == 1);
    CHECK(atomic_load(&A.on_caller) + atomic_load(&Bt.on_caller) + atomic_load(&C.on_caller) +
              atomic_load(&D.on_caller) ==
          0);
    /* The status document records the run: every resource (the monitor too), and for each
     * dependency, its dependent finished before it started. */
    char *doc = status_doc(m);
    CHECK(doc != NULL);
    if (doc != NULL) {
        const char *lc = strstr(doc, "\"last_cleanup\":{");
        CHECK(lc != NULL && strstr(lc, "\"operation\":\"cleanup\"") != NULL);
        CHECK(lc != NULL && strstr(lc, "\"mode\":\"graceful\"") != NULL);
        CHECK(lc != NULL && strstr(lc, "\"escalated\":false") != NULL);
        CHECK(json_num(lc, NULL, "resources") == 5);
        const char *order = lc ? strstr(lc, "\"order\":[") : NULL;
        const char *order_end = order ? strchr(order, ']') : NULL;
        CHECK(order != NULL && order_end != NULL);
        if (order != NULL && order_end != NULL) {
            const char *names[] = {"\"A\"", "\"B\"", "\"C\"", "\"D\"", "\"resman.monitor\""};
            for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
                const char *p = strstr(order, names[i]);
                if (!CHECK(p != NULL && p < order_end)) {
                    fprintf(stderr, "      %s missing from last_cleanup.order\n", names[i]);
                }
            }
        }
        CHECK(step_before(doc, "C", "B"));
        CHECK(step_before(doc, "B", "A"));
        const char *st, *st_end;
        CHECK(step_of(doc, "D", &st, &st_end) &&
              strstr(st, "\"outcome\":\"closed\"") != NULL &&
              strstr(st, "\"outcome\":\"closed\"") < st_end &&
              json_num(st, st_end, "attempts") == 1);
        CHECK(step_of(doc, "resman.monitor", &st, &st_end) &&
              strstr(st, "\"kind\":\"monitor\"") != NULL &&
              strstr(st, "\"kind\":\"monitor\"") < st_end);
        free(doc);
    }
    CHECK_RC(rm_close(m, ha, &err), RM_ERR_ALREADY_CLOSED);
    CHECK_RC(rm_close(m, hb, &err), RM_ERR_ALREADY_CLOSED);
    CHECK_RC(rm_close(m, hc, &err), RM_ERR_ALREADY_CLOSED);
    CHECK_RC(rm_close(m, hd, &err), RM_ERR_ALREADY_CLOSED);
    /* The manager stays usable; a second cleanup has nothing to do. */
    CHECK_RC(rm_cleanup(m, &err), RM_OK);
    CHECK(log_count(&log) == 4);

    /* rm_close(A) closes C, then B, then A; D is left alone. */
    log_reset(&log);
    tracked_init(&A, &log, 'A');
    tracked_init(&Bt, &log, 'B');
    tracked_init(&C, &log, 'C');
    tracked_init(&D, &log, 'D');
    CHECK_RC(rm_register(m, "A", tracked_close, &A, NULL, 0, &ha, &err), RM_OK);
    CHECK_RC(rm_register(m, "B", tracked_close, &Bt, &ha, 1, &hb, &err), RM_OK);
    CHECK_RC(rm_register(m, "C", tracked_close, &C, &hb, 1, &hc, &err), RM_OK);
    CHECK_RC(rm_register(m, "D", tracked_close, &D, NULL, 0, &hd, &err), RM_OK);
    CHECK_RC(rm_close(m, ha, &err), RM_OK);
    CHECK(log_is(&log, "CBA"));
    CHECK(closes(&D) == 0);
    CHECK_RC(rm_close(m, hc, &err), RM_ERR_ALREADY_CLOSED);
    CHECK_RC(rm_close(m, hb, &err), RM_ERR_ALREADY_CLOSED);

    /* Closing the middle of a chain leaves what it depends on open. */
    log_reset(&log);
    tracked_init(&A, &log, 'A');
    tracked_init(&Bt, &log, 'B');
    tracked_init(&C, &log, 'C');
    CHECK_RC(rm_register(m, "A", tracked_close, &A, NULL, 0, &ha, &err), RM_OK);
    CHECK_RC(rm_register(m, "B", tracked_close, &Bt, &ha, 1, &hb, &err), RM_OK);
    CHECK_RC(rm_register(m, "C", tracked_close, &C, &hb, 1, &hc, &err), RM_OK);
    CHECK_RC(rm_close(m, hb, &err), RM_OK);
    CHECK(log_is(&log, "CB") && closes(&A) == 0);

    /* Diamond: B and C depend on A, E depends on both. Destroy closes it all, in order. */
    tracked E;
    tracked_init(&Bt, &log, 'b');
    tracked_init(&C, &log, 'c');
    tracked_init(&E, &log, 'e');
    uint64_t he = 0, two[2];
    CHECK_RC(rm_register(m, "b", tracked_close, &Bt, &ha, 1, &hb, &err), RM_OK);
    CHECK_RC(rm_register(m, "c", tracked_close, &C, &ha, 1, &hc, &err), RM_OK);
    two[0] = hb;
    two[1] = hc;
    CHECK_RC(rm_register(m, "e", tracked_close, &E, two, 2, &he, &err), RM_OK);
    log_reset(&log);
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
    CHECK(log_count(&log) == 5);
    CHECK(log_pos(&log, 'e') >= 0 && log_pos(&log, 'e') < log_pos(&log, 'b'));
    CHECK(log_pos(&log, 'e') < log_pos(&log, 'c'));
    CHECK(log_pos(&log, 'b') < log_pos(&log, 'A') && log_pos(&log, 'c') < log_pos(&log, 'A'));
    CHECK(log_pos(&log, 'D') >= 0);
    CHECK(closes(&A) == 1 && closes(&Bt) == 1 && closes(&C) == 1 && closes(&D) == 1 &&
          closes(&E) == 1);
}

/* Two resources that depend on nothing: their callbacks run at the same time, on two pool
 * threads (each waits until the other has started; a bounded wait, so a sequential close
 * shows as a failed rendezvous, not a hang). What they both depend on closes after both. */
typedef struct {
    atomic_int *arrived;  /* callbacks that have started */
    atomic_int met;       /* this callback saw the other one running */
    tracked t;
} rendezvous;

static int32_t rendezvous_close(void *context, char *message, size_t message_cap) {
    rendezvous *r = context;
    atomic_fetch_add(r->arrived, 1);
    for (long i = 0; i < SPIN_MAX; i++) {
        if (atomic_load(r->arrived) >= 2) {
            atomic_store(&r->met, 1);
            break;
        }
        sched_yield();
    }
    return tracked_close(&r->t, message, message_cap);
}

static void test_independent_closes_overlap(void) {
    BEGIN_TEST();
    uint64_t m = 0;
    CHECK_RC(rm_manager_create(NULL, &m, &err), RM_OK);
    close_log log = CLOSE_LOG_INIT;
    atomic_int arrived;
    atomic_init(&arrived, 0);
    rendezvous x, y;
    memset(&x, 0, sizeof x);
    memset(&y, 0, sizeof y);
    x.arrived = y.arrived = &arrived;
    atomic_init(&x.met, 0);
    atomic_init(&y.met, 0);
    tracked_init(&x.t, &log, 'x');
    tracked_init(&y.t, &log, 'y');
    tracked base;
    tracked_init(&base, &log, 'p');
    uint64_t hp = 0, hx = 0, hy = 0;
    CHECK_RC(rm_register(m, "base", tracked_close, &base, NULL, 0, &hp, &err), RM_OK);
    CHECK_RC(rm_register(m, "x", rendezvous_close, &x, &hp, 1, &hx, &err), RM_OK);
    CHECK_RC(rm_register(m, "y", rendezvous_close, &y, &hp, 1, &hy, &err), RM_OK);
    CHECK_RC(rm_close(m, hp, &err), RM_OK);
    CHECK(atomic_load(&x.met) == 1 && atomic_load(&y.met) == 1);
    CHECK(log_count(&log) == 3 && log_pos(&log, 'p') == 2);
    CHECK(atomic_load(&x.t.on_caller) + atomic_load(&y.t.on_caller) == 0);
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
}

static void test_cleanup_continues_past_failures(void) {
    BEGIN_TEST();
    uint64_t m = 0;
    rm_config cfg = no_retry_config();
    CHECK_RC(rm_manager_create(&cfg, &m, &err), RM_OK);

    /* One failure among five, in the middle of a chain: r0 <- r1(fails) <- r2, r3, r4. */
    close_log log = CLOSE_LOG_INIT;
    tracked r[5];
    uint64_t h[5];
    const char *names[5] = {"r0", "r1-broken", "r2", "r3", "r4"};
    for (int i = 0; i < 5; i++) {
        tracked_init(&r[i], &log, i);
    }
    r[1].fail_rc = 42;
    r[1].fail_msg = "r1 could not close";
    CHECK_RC(rm_register(m, names[0], tracked_close, &r[0], NULL, 0, &h[0], &err), RM_OK);
    CHECK_RC(rm_register(m, names[1], tracked_close, &r[1], &h[0], 1, &h[1], &err), RM_OK);
    CHECK_RC(rm_register(m, names[2], tracked_close, &r[2], &h[1], 1, &h[2], &err), RM_OK);
    CHECK_RC(rm_register(m, names[3], tracked_close, &r[3], NULL, 0, &h[3], &err), RM_OK);
    CHECK_RC(rm_register(m, names[4], tracked_close, &r[4], NULL, 0, &h[4], &err), RM_OK);
    CHECK_RC(rm_cleanup(m, &err), RM_ERR_CLOSE_FAILED);
    CHECK(strstr(err.message, "r1-broken") != NULL);
    CHECK(strstr(err.message, "r1 could not close") != NULL);
    for (int i = 0; i < 5; i++) {
        if (!CHECK(closes(&r[i]) == 1)) {
            fprintf(stderr, "      resource %s closed %d times\n", names[i], closes(&r[i]));
        }
    }
    CHECK(log_count(&log) == 5 && log_pos(&log, 2) < log_pos(&log, 1) &&
          log_pos(&log, 1) < log_pos(&log, 0));
    for (int i = 0; i < 5; i++) {
        CHECK_RC(rm_close(m, h[i], &err), RM_ERR_ALREADY_CLOSED);
    }
    CHECK_RC(rm_cleanup(m, &err), RM_OK);

    /* Several failures: CLEANUP_FAILED naming each; the others still run once. */
    log_reset(&log);
    for (int i = 0; i < 5; i++) {
        tracked_init(&r[i], &log, i);
    }
    r[0].fail_rc = 1;
    r[0].fail_msg = "zero failed";
    r[3].fail_rc = 3;
    r[3].fail_msg = "three failed";
    const char *names2[5] = {"s0-broken", "s1", "s2", "s3-broken", "s4"};
    for (int i = 0; i < 5; i++) {
        CHECK_RC(rm_register(m, names2[i], tracked_close, &r[i], i == 2 ? &h[0] : NULL,
                             i == 2 ? 1 : 0, &h[i], &err),
                 RM_OK);
    }
    CHECK_RC(rm_cleanup(m, &err), RM_ERR_CLEANUP_FAILED);
    CHECK(strstr(err.message, "s0-broken") != NULL);
    CHECK(strstr(err.message, "s3-broken") != NULL);
    CHECK(strstr(err.message, "zero failed") != NULL);
    CHECK(strstr(err.message, "three failed") != NULL);
    CHECK(strstr(err.message, "s1") == NULL && strstr(err.message, "s4") == NULL);
    for (int i = 0; i < 5; i++) {
        CHECK(closes(&r[i]) == 1);
    }
    CHECK(log_pos(&log, 2) >= 0 && log_pos(&log, 2) < log_pos(&log, 0));

    /* rm_close of a resource whose dependent fails: the dependency still closes. */
    log_reset(&log);
    for (int i = 0; i < 2; i++) {
        tracked_init(&r[i], &log, i);
    }
    r[1].fail_rc = 9;
    r[1].fail_msg = "child failed";
    CHECK_RC(rm_register(m, "parent", tracked_close, &r[0], NULL, 0, &h[0], &err), RM_OK);
    CHECK_RC(rm_register(m, "child", tracked_close, &r[1], &h[0], 1, &h[1], &err), RM_OK);
    CHECK_RC(rm_close(m, h[0], &err), RM_ERR_CLOSE_FAILED);
    CHECK(strstr(err.message, "child failed") != NULL);
    CHECK(closes(&r[0]) == 1 && closes(&r[1]) == 1);
    CHECK(log_count(&log) == 2 && log_pos(&log, 1) == 0 && log_pos(&log, 0) == 1);

    /* Destroy reports failures too, and the manager is dead anyway. */
    tracked x;
    tracked_init(&x, NULL, 0);
    x.fail_rc = 5;
    x.fail_msg = "x failed at destroy";
    CHECK_RC(rm_register(m, "x", tracked_close, &x, NULL, 0, &h[0], &err), RM_OK);
    CHECK_RC(rm_manager_destroy(m, &err), RM_ERR_CLOSE_FAILED);
    CHECK(strstr(err.message, "x failed at destroy") != NULL);
    CHECK(closes(&x) == 1);
    CHECK_RC(rm_manager_destroy(m, &err), RM_ERR_ALREADY_CLOSED);
    CHECK_RC(rm_cleanup(m, &err), RM_ERR_CLOSED);
}

static void test_add_dependency(void) {
    BEGIN_TEST();
    uint64_t m = 0;
    CHECK_RC(rm_manager_create(NULL, &m, &err), RM_OK);
    close_log log = CLOSE_LOG_INIT;
    tracked A, Bt, C;
    tracked_init(&A, &log, 'A');
    tracked_init(&Bt, &log, 'B');
    tracked_init(&C, &log, 'C');
    uint64_t ha = 0, hb = 0, hc = 0;
    CHECK_RC(rm_register(m, "A", tracked_close, &A, NULL, 0, &ha, &err), RM_OK);
    CHECK_RC(rm_register(m, "B", tracked_close, &Bt, NULL, 0, &hb, &err), RM_OK);
    CHECK_RC(rm_register(m, "C", tracked_close, &C, NULL, 0, &hc, &err), RM_OK);

    CHECK_RC(rm_add_dependency(m, ha, ha, &err), RM_ERR_CYCLE);
    CHECK_RC(rm_add_dependency(m, ha, hb, &err), RM_OK); /* A depends on B */
    CHECK_RC(rm_add_dependency(m, ha, hb, &err), RM_OK); /* again: no-op */
    CHECK_RC(rm_add_dependency(m, hb, ha, &err), RM_ERR_CYCLE);
    CHECK(strstr(err.message, "'A'") != NULL && strstr(err.message, "'B'") != NULL);
    CHECK_RC(rm_add_dependency(m, hb, hc, &err), RM_OK); /* B depends on C */
    CHECK_RC(rm_add_dependency(m, hc, ha, &err), RM_ERR_CYCLE); /* C -> A -> B -> C */
    CHECK_RC(rm_add_dependency(m, 0, ha, &err), RM_ERR_INVALID_HANDLE);
    CHECK_RC(rm_add_dependency(m, ha, 0, &err), RM_ERR_INVALID_HANDLE);

    /* The added edges order closes: closing C closes A, then B, then C. */
    CHECK_RC(rm_close(m, hc, &err), RM_OK);
    CHECK(log_is(&log, "ABC"));
    CHECK(closes(&A) == 1 && closes(&Bt) == 1 && closes(&C) == 1);

    /* An added dependency blocks unregistering the dependency. */
    uint64_t hx = 0, hy = 0;
    CHECK_RC(rm_register(m, "X", noop_close, NULL, NULL, 0, &hx, &err), RM_OK);
    CHECK_RC(rm_register(m, "Y", noop_close, NULL, NULL, 0, &hy, &err), RM_OK);
    CHECK_RC(rm_add_dependency(m, hy, hx, &err), RM_OK);
    CHECK_RC(rm_unregister(m, hx, &err), RM_ERR_HAS_DEPENDENTS);
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
}

static void test_unregister(void) {
    BEGIN_TEST();
    uint64_t live_before = rm_live_objects();
    uint64_t m = 0;
    CHECK_RC(rm_manager_create(NULL, &m, &err), RM_OK);
    uint64_t live0 = rm_live_objects();
    CHECK(live0 == live_before + 1);
    tracked u, p, c;
    tracked_init(&u, NULL, 1);
    tracked_init(&p, NULL, 2);
    tracked_init(&c, NULL, 3);
    uint64_t hu = 0, hp = 0, hc = 0;
    CHECK_RC(rm_register(m, "u", tracked_close, &u, NULL, 0, &hu, &err), RM_OK);
    CHECK_RC(rm_unregister(m, hu, &err), RM_OK);
    CHECK(closes(&u) == 0);
    CHECK(rm_live_objects() == live0);
    CHECK_RC(rm_unregister(m, hu, &err), RM_ERR_ALREADY_CLOSED);
    CHECK_RC(rm_close(m, hu, &err), RM_ERR_ALREADY_CLOSED);
    /* The monitor is resman's: it cannot be unregistered (only closed). */
    uint64_t mon = monitor_handle(m);
    CHECK(mon != 0 && (mon & 31) == 8);
    CHECK_RC(rm_unregister(m, mon, &err), RM_ERR_OWNED_RESOURCE);
    CHECK(rm_live_objects() == live0);
    /* The cleanup closes the monitor too. */
    CHECK_RC(rm_cleanup(m, &err), RM_OK);
    CHECK(closes(&u) == 0);
    CHECK(rm_live_objects() == live_before);
    CHECK_RC(rm_unregister(m, mon, &err), RM_ERR_ALREADY_CLOSED);
    /* The name is free again. */
    CHECK_RC(rm_register(m, "u", tracked_close, &u, NULL, 0, &hu, &err), RM_OK);
    CHECK_RC(rm_unregister(m, hu, &err), RM_OK);

    /* With a dependent: refused, nothing changes; after the dependent goes, allowed. */
    CHECK_RC(rm_register(m, "p", tracked_close, &p, NULL, 0, &hp, &err), RM_OK);
    CHECK_RC(rm_register(m, "c", tracked_close, &c, &hp, 1, &hc, &err), RM_OK);
    CHECK_RC(rm_unregister(m, hp, &err), RM_ERR_HAS_DEPENDENTS);
    CHECK(strstr(err.message, "'p'") != NULL);
    CHECK_RC(rm_unregister(m, hc, &err), RM_OK); /* a dependent can be unregistered */
    CHECK_RC(rm_unregister(m, hp, &err), RM_OK);
    CHECK_RC(rm_unregister(m, 0, &err), RM_ERR_INVALID_HANDLE);
    CHECK_RC(rm_unregister(m, m, &err), RM_ERR_WRONG_KIND);

    /* DB and column family handles: owned by resman. */
    const char *dir = make_tmpdir();
    CHECK(dir != NULL);
    if (dir != NULL) {
        const char *cfn[] = {"default", "users"};
        uint64_t db = 0, cfs[2] = {0, 0};
        CHECK_RC(rm_db_open(m, "owned", dir, NULL, cfn, 2, &db, cfs, &err), RM_OK);
        CHECK_RC(rm_unregister(m, db, &err), RM_ERR_OWNED_RESOURCE);
        CHECK_RC(rm_unregister(m, cfs[0], &err), RM_ERR_OWNED_RESOURCE);
        CHECK_RC(rm_unregister(m, cfs[1], &err), RM_ERR_OWNED_RESOURCE);
        /* Still usable after the refusals. */
        CHECK_RC(rm_put(cfs[1], B("k"), 1, B("v"), 1, &err), RM_OK);
        /* A foreign resource may depend on a column family; unregistering it is fine. */
        uint64_t hf = 0;
        CHECK_RC(rm_register(m, "on-cf", tracked_close, &u, &cfs[1], 1, &hf, &err), RM_OK);
        CHECK_RC(rm_unregister(m, hf, &err), RM_OK);
    }

    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
    CHECK(closes(&u) == 0 && closes(&p) == 0 && closes(&c) == 0);
    CHECK(rm_live_objects() == live_before);
}

static void test_stale_handle(void) {
    BEGIN_TEST();
    uint64_t m = 0;
    CHECK_RC(rm_manager_create(NULL, &m, &err), RM_OK);
    uint64_t keep = 0;
    CHECK_RC(rm_register(m, "keep", noop_close, NULL, NULL, 0, &keep, &err), RM_OK);

    tracked x;
    tracked_init(&x, NULL, 1);
    uint64_t hx = 0;
    CHECK_RC(rm_register(m, "X", tracked_close, &x, NULL, 0, &hx, &err), RM_OK);
    CHECK_RC(rm_close(m, hx, &err), RM_OK);
    CHECK_RC(rm_close(m, hx, &err), RM_ERR_ALREADY_CLOSED);
    CHECK_RC(rm_put(hx, B("k"), 1, B("v"), 1, &err), RM_ERR_WRONG_KIND); /* foreign, not a CF */

    int iterations = 0;
    rm_result rc = RM_ERR_ALREADY_CLOSED;
    int unexpected = 0;
    uint64_t reused = 0;
    while (iterations < 100000) {
        uint64_t y = 0;
        if (rm_register(m, "y", noop_close, NULL, NULL, 0, &y, &err) != RM_OK) {
            CHECK(!"rm_register in the reuse loop failed");
            break;
        }
        iterations++;
        rc = rm_close(m, hx, &err);
        if (rc == RM_ERR_STALE_HANDLE) {
            reused = y; /* y took X's slot */
            break;
        }
        if (rc != RM_ERR_ALREADY_CLOSED) {
            unexpected++;
        }
        if (rm_close(m, y, &err) != RM_OK) {
            CHECK(!"rm_close in the reuse loop failed");
            break;
        }
    }
    fprintf(stderr, "      X's slot reused after %d register/close cycle(s)\n", iterations);
    CHECK(unexpected == 0);
    CHECK(rc == RM_ERR_STALE_HANDLE);
    CHECK(reused != 0 && reused != hx);
    CHECK((reused & ((UINT64_C(1) << 35) - 1)) == (hx & ((UINT64_C(1) << 35) - 1))); /* same slot */

    /* Every operation on the stale handle says so. */
    CHECK_RC(rm_close(m, hx, &err), RM_ERR_STALE_HANDLE);
    CHECK_RC(rm_close_timeout(m, hx, 0, true, &err), RM_ERR_STALE_HANDLE);
    CHECK_RC(rm_unregister(m, hx, &err), RM_ERR_STALE_HANDLE);
    CHECK_RC(rm_add_dependency(m, hx, keep, &err), RM_ERR_STALE_HANDLE);
    CHECK_RC(rm_add_dependency(m, keep, hx, &err), RM_ERR_STALE_HANDLE);
    uint64_t h = 0;
    CHECK_RC(rm_register(m, "on-stale", noop_close, NULL, &hx, 1, &h, &err), RM_ERR_STALE_HANDLE);
    CHECK_RC(rm_put(hx, B("k"), 1, B("v"), 1, &err), RM_ERR_STALE_HANDLE);
    size_t len = 0;
    CHECK_RC(rm_get(hx, B("k"), 1, NULL, 0, &len, &err), RM_ERR_STALE_HANDLE);
    CHECK_RC(rm_delete(hx, B("k"), 1, &err), RM_ERR_STALE_HANDLE);
    CHECK(closes(&x) == 1);

    /* The slot's new occupant is unaffected. */
    CHECK_RC(rm_add_dependency(m, reused, keep, &err), RM_OK);
    CHECK_RC(rm_close(m, reused, &err), RM_OK);
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
}

/* Re-entrant calls from a close callback, made while the resource is closing. */
typedef struct {
    uint64_t manager;
    uint64_t self;
    uint64_t other;
    int closes;
    rm_result register_rc;
    rm_result add_dep_rc;
    rm_result close_self_rc;
    uint64_t registered;
    bool on_caller;
} reentrant;

static int32_t reentrant_close(void *context, char *message, size_t message_cap) {
    (void)message;
    (void)message_cap;
    reentrant *r = context;
    r->closes++;
    r->on_caller = pthread_equal(pthread_self(), g_main_thread);
    r->registered = 0;
    r->register_rc = rm_register(r->manager, "late", noop_close, NULL, &r->self, 1,
                                 &r->registered, NULL);
    r->add_dep_rc = rm_add_dependency(r->manager, r->other, r->self, NULL);
    r->close_self_rc = rm_close(r->manager, r->self, NULL);
    return 0;
}

static void test_dependency_closing(void) {
    BEGIN_TEST();
    uint64_t m = 0;
    CHECK_RC(rm_manager_create(NULL, &m, &err), RM_OK);
    reentrant r;
    memset(&r, 0, sizeof r);
    r.manager = m;
    CHECK_RC(rm_register(m, "other", noop_close, NULL, NULL, 0, &r.other, &err), RM_OK);
    CHECK_RC(rm_register(m, "self", reentrant_close, &r, NULL, 0, &r.self, &err), RM_OK);
    CHECK_RC(rm_close(m, r.self, &err), RM_OK);
    CHECK(r.closes == 1);
    CHECK(!r.on_caller); /* on a close-pool thread, where the refusal below still applies */
    /* While its close callback runs the resource is closing: DEPENDENCY_CLOSED. */
    CHECK(r.register_rc == RM_ERR_DEPENDENCY_CLOSED);
    CHECK(r.add_dep_rc == RM_ERR_DEPENDENCY_CLOSED);
    CHECK(r.close_self_rc == RM_ERR_INVALID_ARGUMENT); /* refused inside a callback */
    if (r.register_rc == RM_OK) {
        fprintf(stderr, "      registered %#" PRIx64 " on a closing dependency\n", r.registered);
    }
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
}

static void test_db(void) {
    BEGIN_TEST();
    const char *dir = make_tmpdir();
    if (!CHECK(dir != NULL)) {
        return;
    }
    uint64_t live_before = rm_live_objects();
    uint64_t m = 0, m2 = 0;
    CHECK_RC(rm_manager_create(NULL, &m, &err), RM_OK);
    CHECK_RC(rm_manager_create(NULL, &m2, &err), RM_OK);
    uint64_t live0 = rm_live_objects();
    CHECK(live0 == live_before + 2); /* their monitors */

    const char *cfn[] = {"default", "users"};
    uint64_t db = 0, cfs[2] = {0, 0};
    uint64_t db2 = 0, cfs2[2] = {0, 0};

    /* Argument errors: nothing opened or registered. */
    CHECK_RC(rm_db_open(m, "maindb", NULL, NULL, cfn, 2, &db, cfs, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_db_open(m, NULL, dir, NULL, cfn, 2, &db, cfs, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_db_open(m, "maindb", dir, NULL, cfn, 2, NULL, cfs, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_db_open(m, "maindb", dir, NULL, cfn, 2, &db, NULL, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_db_open(m, "maindb", dir, NULL, NULL, 2, &db, cfs, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_db_open(m, "maindb", "", NULL, cfn, 2, &db, cfs, &err), RM_ERR_INVALID_ARGUMENT);
    CHECK_RC(rm_db_open(m, "maindb", "/tmp/\xff\xfe", NULL, cfn, 2, &db, cfs, &err),
             RM_ERR_INVALID_UTF8);
    CHECK_RC(rm_db_open(m, "", dir, NULL, cfn, 2, &db, cfs, &err), RM_ERR_INVALID_ARGUMENT);
    const char *dup[] = {"users", "default", "users"};
    uint64_t cfs3[3];
    CHECK_RC(rm_db_open(m, "maindb", dir, NULL, dup, 3, &db, cfs3, &err), RM_ERR_INVALID_ARGUMENT);
    const char *empty_cf[] = {"default", ""};
    CHECK_RC(rm_db_open(m, "maindb", dir, NULL, empty_cf, 2, &db, cfs, &err),
             RM_ERR_INVALID_ARGUMENT);
    const char *null_cf[] = {"default", NULL};
    CHECK_RC(rm_db_open(m, "maindb", dir, NULL, null_cf, 2, &db, cfs, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_db_open(m, "maindb", dir, NULL, cfn, (size_t)RM_MAX_COLUMN_FAMILIES + 1, &db, cfs,
                        &err),
             RM_ERR_INVALID_ARGUMENT);
    /* A column family's resource name ("maindb/users") taken by another resource: refused
     * before anything is created on disk. */
    uint64_t squatter = 0;
    CHECK_RC(rm_register(m, "maindb/users", noop_close, NULL, NULL, 0, &squatter, &err), RM_OK);
    const char *never = "/tmp/resman-ctest-never-created-2";
    CHECK_RC(rm_db_open(m, "maindb", never, NULL, cfn, 2, &db, cfs, &err), RM_ERR_DUPLICATE_NAME);
    CHECK(strstr(err.message, "maindb/users") != NULL);
    CHECK(access(never, F_OK) != 0);
    CHECK_RC(rm_close(m, squatter, &err), RM_OK);
    CHECK(db == 0 && cfs[0] == 0 && cfs[1] == 0);
    CHECK(rm_live_objects() == live0);

    /* Open. */
    rm_db_options opts;
    memset(&opts, 0xee, sizeof opts);
    CHECK(rm_db_options_default(&opts) == RM_OK);
    CHECK(opts.create_if_missing == 1 && opts.create_missing_column_families == 1 &&
          opts.error_if_exists == 0);
    CHECK(rm_db_options_default(NULL) == RM_ERR_NULL_POINTER);
    if (!CHECK_RC(rm_db_open(m, "maindb", dir, &opts, cfn, 2, &db, cfs, &err), RM_OK)) {
        rm_manager_destroy(m, NULL);
        rm_manager_destroy(m2, NULL);
        return;
    }
    CHECK(db != 0 && cfs[0] != 0 && cfs[1] != 0 && cfs[0] != cfs[1]);
    CHECK(rm_live_objects() == live0 + 3);

    /* Put / get / delete round trip. */
    uint8_t buf[64];
    size_t len = 0;
    CHECK_RC(rm_put(cfs[1], B("alice"), 5, B("admin"), 5, &err), RM_OK);
    CHECK_RC(rm_get(cfs[1], B("alice"), 5, buf, sizeof buf, &len, &err), RM_OK);
    CHECK(len == 5 && memcmp(buf, "admin", 5) == 0);
    /* Column families are separate. */
    CHECK_RC(rm_get(cfs[0], B("alice"), 5, buf, sizeof buf, &len, &err), RM_ERR_NOT_FOUND);
    CHECK_RC(rm_put(cfs[0], B("alice"), 5, B("default-value"), 13, &err), RM_OK);
    CHECK_RC(rm_put(cfs[1], B("bob"), 3, B("x"), 1, &err), RM_OK);
    CHECK_RC(rm_delete(cfs[1], B("bob"), 3, &err), RM_OK);
    CHECK_RC(rm_get(cfs[1], B("bob"), 3, buf, sizeof buf, &len, &err), RM_ERR_NOT_FOUND);
    CHECK_RC(rm_delete(cfs[1], B("bob"), 3, &err), RM_OK); /* missing: still OK */
    CHECK_RC(rm_get(cfs[1], B("nobody"), 6, buf, sizeof buf, &len, &err), RM_ERR_NOT_FOUND);

    /* Too small a buffer: the needed size, nothing copied; then the retry succeeds. */
    const char *long_value = "a value longer than eight bytes";
    size_t lv = strlen(long_value);
    CHECK_RC(rm_put(cfs[1], B("long"), 4, B(long_value), lv, &err), RM_OK);
    uint8_t small[8];
    memset(small, '#', sizeof small);
    len = 0;
    CHECK_RC(rm_get(cfs[1], B("long"), 4, small, sizeof small, &len, &err),
             RM_ERR_BUFFER_TOO_SMALL);
    CHECK(len == lv);
    CHECK(small[0] == '#' && small[7] == '#');
    uint8_t *exact = malloc(len);
    CHECK(exact != NULL);
    if (exact != NULL) {
        size_t need = len;
        CHECK_RC(rm_get(cfs[1], B("long"), 4, exact, need, &len, &err), RM_OK);
        CHECK(len == lv && memcmp(exact, long_value, lv) == 0);
        free(exact);
    }
    /* NULL buffer, capacity 0: a size query. */
    len = 0;
    CHECK_RC(rm_get(cfs[1], B("long"), 4, NULL, 0, &len, &err), RM_ERR_BUFFER_TOO_SMALL);
    CHECK(len == lv);
    CHECK_RC(rm_get(cfs[1], B("nobody"), 6, NULL, 0, &len, &err), RM_ERR_NOT_FOUND);
    /* NULL pointers with non-zero lengths. */
    CHECK_RC(rm_put(cfs[1], NULL, 3, B("v"), 1, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_put(cfs[1], B("k"), 1, NULL, 1, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_get(cfs[1], NULL, 3, buf, sizeof buf, &len, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_get(cfs[1], B("alice"), 5, NULL, 8, &len, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_get(cfs[1], B("alice"), 5, buf, sizeof buf, NULL, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_delete(cfs[1], NULL, 3, &err), RM_ERR_NULL_POINTER);
    /* Overlapping key and buffer. */
    memcpy(buf, "alice", 5);
    CHECK_RC(rm_get(cfs[1], buf, 5, buf, sizeof buf, &len, &err), RM_ERR_INVALID_ARGUMENT);
    /* Empty key and empty value are allowed, NULL with length 0 too. */
    CHECK_RC(rm_put(cfs[1], NULL, 0, B("empty-key"), 9, &err), RM_OK);
    CHECK_RC(rm_get(cfs[1], B(""), 0, buf, sizeof buf, &len, &err), RM_OK);
    CHECK(len == 9 && memcmp(buf, "empty-key", 9) == 0);
    CHECK_RC(rm_put(cfs[1], B("nothing"), 7, NULL, 0, &err), RM_OK);
    len = 99;
    CHECK_RC(rm_get(cfs[1], B("nothing"), 7, NULL, 0, &len, &err), RM_OK);
    CHECK(len == 0);
    CHECK_RC(rm_delete(cfs[1], NULL, 0, &err), RM_OK);
    CHECK_RC(rm_get(cfs[1], NULL, 0, buf, sizeof buf, &len, &err), RM_ERR_NOT_FOUND);
    /* Binary keys and values. */
    const uint8_t bin_key[4] = {0, 0xff, 0, 1};
    const uint8_t bin_val[3] = {0, 0, 0};
    CHECK_RC(rm_put(cfs[1], bin_key, 4, bin_val, 3, &err), RM_OK);
    CHECK_RC(rm_get(cfs[1], bin_key, 4, buf, sizeof buf, &len, &err), RM_OK);
    CHECK(len == 3 && memcmp(buf, bin_val, 3) == 0);
    /* A DB handle is not a column family. */
    CHECK_RC(rm_put(db, B("k"), 1, B("v"), 1, &err), RM_ERR_WRONG_KIND);

    /* Status: the two-call pattern. */
    size_t need = 0;
    CHECK_RC(rm_status(m, NULL, 0, &need, &err), RM_ERR_BUFFER_TOO_SMALL);
    CHECK(need > 0);
    CHECK_RC(rm_status(m, NULL, 0, NULL, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_status(m, NULL, 16, &len, &err), RM_ERR_NULL_POINTER);
    char tiny[4] = {'#', '#', '#', '#'};
    CHECK_RC(rm_status(m, tiny, sizeof tiny, &len, &err), RM_ERR_BUFFER_TOO_SMALL);
    CHECK(tiny[0] == '#');
    /* Exactly out_len bytes is one too few (no room for the NUL). */
    char *doc = malloc(need + 1);
    CHECK(doc != NULL);
    if (doc != NULL) {
        size_t got = 0;
        rm_result rc = rm_status(m, doc, need, &got, &err);
        CHECK(rc == RM_ERR_BUFFER_TOO_SMALL);
        /* out_len + 1 bytes. The document holds timings and may grow between two calls (the
         * header says so): retry a few times with the new size if it did. */
        for (int attempt = 0; attempt < 5; attempt++) {
            rc = rm_status(m, doc, need + 1, &got, &err);
            if (rc != RM_ERR_BUFFER_TOO_SMALL) {
                break;
            }
            fprintf(stderr, "      status grew from %zu to %zu bytes, retrying\n", need, got);
            need = got;
            free(doc);
            doc = malloc(need + 1);
            if (doc == NULL) {
                break;
            }
        }
        CHECK(rc == RM_OK && err.code == RM_OK);
        if (rc == RM_OK && doc != NULL) {
            CHECK(strlen(doc) == got);
            CHECK(doc[0] == '{' && doc[got - 1] == '}');
            CHECK(strstr(doc, "\"maindb\"") != NULL);
            CHECK(strstr(doc, "\"maindb/users\"") != NULL);
            CHECK(strstr(doc, "\"maindb/default\"") != NULL);
            CHECK(strstr(doc, "\"version\":\"" RM_VERSION_STRING "\"") != NULL);
            CHECK(strstr(doc, "\"cleanup_timeout_ms\":30000") != NULL);
            /* The configuration, the monitor among the resources, the new sections. */
            CHECK(strstr(doc, "\"config\":{\"cleanup_timeout_ms\":30000,"
                              "\"force_cleanup_timeout_ms\":5000,\"monitor_interval_ms\":10000,"
                              "\"max_retries\":3,\"retry_delay_ms\":1000}") != NULL);
            const char *res = live_resources(doc);
            const char *mon = res ? strstr(res, "\"name\":\"resman.monitor\",\"kind\":\"monitor\"")
                                  : NULL;
            CHECK(mon != NULL);
            CHECK(strstr(doc, "\"memory\":{") != NULL);
            CHECK(strstr(doc, "\"close_duration\":{") != NULL);
            CHECK(strstr(doc, "\"cleanup_duration\":{") != NULL);
            CHECK(strstr(doc, "\"last_cleanup\":") != NULL);
        }
        free(doc);
    }

    /* The directory is locked: by another manager, and by this one under another name. */
    CHECK_RC(rm_db_open(m2, "maindb", dir, NULL, cfn, 2, &db2, cfs2, &err), RM_ERR_LOCKED);
    CHECK_RC(rm_db_open(m, "again", dir, NULL, cfn, 2, &db2, cfs2, &err), RM_ERR_LOCKED);
    /* Same name in the same manager: refused before touching the disk. */
    CHECK_RC(rm_db_open(m, "maindb", dir, NULL, cfn, 2, &db2, cfs2, &err), RM_ERR_DUPLICATE_NAME);
    CHECK(db2 == 0);
    CHECK(rm_live_objects() == live0 + 3);

    /* Close one column family: the other and the DB keep working. */
    CHECK_RC(rm_close(m, cfs[0], &err), RM_OK);
    CHECK_RC(rm_put(cfs[0], B("k"), 1, B("v"), 1, &err), RM_ERR_CLOSED);
    CHECK_RC(rm_get(cfs[1], B("alice"), 5, buf, sizeof buf, &len, &err), RM_OK);

    /* Close the DB: its column families close first; all of its handles are dead. */
    CHECK_RC(rm_close(m, db, &err), RM_OK);
    CHECK(rm_live_objects() == live0);
    CHECK_RC(rm_put(cfs[1], B("k"), 1, B("v"), 1, &err), RM_ERR_CLOSED);
    CHECK_RC(rm_get(cfs[1], B("alice"), 5, buf, sizeof buf, &len, &err), RM_ERR_CLOSED);
    CHECK_RC(rm_delete(cfs[1], B("alice"), 5, &err), RM_ERR_CLOSED);
    CHECK_RC(rm_close(m, cfs[1], &err), RM_ERR_ALREADY_CLOSED);
    CHECK_RC(rm_close(m, cfs[0], &err), RM_ERR_ALREADY_CLOSED);
    CHECK_RC(rm_close(m, db, &err), RM_ERR_ALREADY_CLOSED);
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);

    /* The lock went with the close: a new manager reopens the directory, and what was written
     * before the graceful close is there. */
    uint64_t m3 = 0;
    CHECK_RC(rm_manager_create(NULL, &m3, &err), RM_OK);
    uint64_t db3 = 0, cfs3b[2] = {0, 0};
    if (CHECK_RC(rm_db_open(m3, "maindb", dir, NULL, cfn, 2, &db3, cfs3b, &err), RM_OK)) {
        CHECK_RC(rm_get(cfs3b[1], B("alice"), 5, buf, sizeof buf, &len, &err), RM_OK);
        CHECK(len == 5 && memcmp(buf, "admin", 5) == 0);
        CHECK_RC(rm_get(cfs3b[0], B("alice"), 5, buf, sizeof buf, &len, &err), RM_OK);
        CHECK(len == 13 && memcmp(buf, "default-value", 13) == 0);
        CHECK_RC(rm_get(cfs3b[1], B("long"), 4, buf, sizeof buf, &len, &err), RM_OK);
        CHECK(len == lv && memcmp(buf, long_value, lv) == 0);
        CHECK_RC(rm_get(cfs3b[1], B("bob"), 3, buf, sizeof buf, &len, &err), RM_ERR_NOT_FOUND);
        /* Written now, closed by rm_manager_destroy (graceful as well). */
        CHECK_RC(rm_put(cfs3b[1], B("carol"), 5, B("ops"), 3, &err), RM_OK);
    }
    CHECK_RC(rm_manager_destroy(m3, &err), RM_OK);
    CHECK(rm_live_objects() == live0 - 1); /* m and m3 destroyed, with their monitors */

    /* Options. The header gives no code for these; they must fail and leave nothing behind. */
    uint64_t m4 = 0;
    CHECK_RC(rm_manager_create(NULL, &m4, &err), RM_OK);
    uint64_t db4 = 0, cfs4[2] = {0, 0};
    rm_db_options o;
    rm_db_options_default(&o);
    o.error_if_exists = 1;
    rm_result rc = rm_db_open(m4, "maindb", dir, &o, cfn, 2, &db4, cfs4, &err);
    CHECK(rc != RM_OK && err.code == rc);
    fprintf(stderr, "      error_if_exists on an existing DB: %s (%s)\n",
            rm_result_str((int32_t)rc), err.message);
    rm_db_options_default(&o);
    o.create_missing_column_families = 0;
    const char *extra[] = {"default", "users", "extra"};
    uint64_t cfs4x[3];
    rc = rm_db_open(m4, "maindb", dir, &o, extra, 3, &db4, cfs4x, &err);
    CHECK(rc != RM_OK && err.code == rc);
    fprintf(stderr, "      missing column family without create_missing: %s (%s)\n",
            rm_result_str((int32_t)rc), err.message);
    const char *fresh = make_tmpdir();
    if (fresh != NULL) {
        rm_db_options_default(&o);
        o.create_if_missing = 0;
        rc = rm_db_open(m4, "fresh", fresh, &o, cfn, 2, &db4, cfs4, &err);
        CHECK(rc != RM_OK && err.code == rc);
        fprintf(stderr, "      create_if_missing=0 on an empty directory: %s (%s)\n",
                rm_result_str((int32_t)rc), err.message);
    }
    CHECK(db4 == 0);
    CHECK(rm_live_objects() == live0);

    /* No column family handles asked for: only the DB handle; every family is still opened,
     * and data written through rm_manager_destroy above is there on the next open. */
    CHECK_RC(rm_db_open(m4, "bare", dir, NULL, NULL, 0, &db4, NULL, &err), RM_OK);
    CHECK(rm_live_objects() == live0 + 1);
    CHECK_RC(rm_close(m4, db4, &err), RM_OK);
    const char *users_only[] = {"users"};
    uint64_t users = 0;
    if (CHECK_RC(rm_db_open(m4, "maindb", dir, NULL, users_only, 1, &db4, &users, &err), RM_OK)) {
        CHECK_RC(rm_get(users, B("carol"), 5, buf, sizeof buf, &len, &err), RM_OK);
        CHECK(len == 3 && memcmp(buf, "ops", 3) == 0);
        CHECK_RC(rm_get(users, B("alice"), 5, buf, sizeof buf, &len, &err), RM_OK);
    }
    /* A cleanup closes the DB too (and m4's monitor); the manager stays usable. */
    CHECK_RC(rm_cleanup(m4, &err), RM_OK);
    CHECK_RC(rm_get(users, B("carol"), 5, buf, sizeof buf, &len, &err), RM_ERR_CLOSED);
    CHECK(rm_live_objects() == live0 - 1);
    CHECK_RC(rm_db_open(m4, "after-cleanup", dir, NULL, cfn, 2, &db4, cfs4, &err), RM_OK);
    CHECK(rm_live_objects() == live0 + 2);

    CHECK_RC(rm_manager_destroy(m4, &err), RM_OK);
    CHECK_RC(rm_manager_destroy(m2, &err), RM_OK);
    CHECK(rm_live_objects() == live_before);
}

/* ------------------------------------------------------------------------------------------ */
/* The configuration, the metrics and the monitor                                             */

static void test_config(void) {
    BEGIN_TEST();
    rm_config d;
    memset(&d, 0xff, sizeof d);
    CHECK(rm_config_default(&d) == RM_OK);
    CHECK(d.cleanup_timeout_ms == 30000);
    CHECK(d.force_cleanup_timeout_ms == 5000);
    CHECK(d.monitor_interval_ms == 10000);
    CHECK(d.retry_delay_ms == 1000);
    CHECK(d.max_retries == 3);
    CHECK(rm_config_default(NULL) == RM_ERR_NULL_POINTER);
    CHECK_RC(rm_config_validate(&d, &err), RM_OK);
    CHECK(rm_config_validate(&d, NULL) == RM_OK);
    CHECK_RC(rm_config_validate(NULL, &err), RM_ERR_NULL_POINTER);
    CHECK(rm_config_validate(NULL, NULL) == RM_ERR_NULL_POINTER);

    /* Every field out of range, at 0 (where 0 is not allowed) and one past its maximum:
     * refused by rm_config_validate and rm_manager_create alike, with the field named, and
     * nothing created. `stem` is the field's name without "_ms"; `not` a longer name that
     * contains it (the message must not name that one instead). */
    struct {
        const char *label;
        const char *stem;
        const char *not;
        rm_config c;
    } bad[16];
    size_t nbad = 0;
#define BAD(field, value, stem_, not_)                                                         \
    do {                                                                                       \
        bad[nbad].label = #field " = " #value;                                                 \
        bad[nbad].stem = stem_;                                                                \
        bad[nbad].not = not_;                                                                  \
        bad[nbad].c = d;                                                                       \
        bad[nbad].c.field = value;                                                             \
        nbad++;                                                                                \
    } while (0)
    BAD(cleanup_timeout_ms, 0, "cleanup_timeout", "force_cleanup_timeout");
    BAD(cleanup_timeout_ms, 86400001, "cleanup_timeout", "force_cleanup_timeout");
    BAD(cleanup_timeout_ms, UINT64_MAX, "cleanup_timeout", "force_cleanup_timeout");
    BAD(force_cleanup_timeout_ms, 0, "force_cleanup_timeout", NULL);
    BAD(force_cleanup_timeout_ms, 3600001, "force_cleanup_timeout", NULL);
    BAD(monitor_interval_ms, 0, "monitor_interval", NULL);
    BAD(monitor_interval_ms, 9, "monitor_interval", NULL);
    BAD(monitor_interval_ms, 86400001, "monitor_interval", NULL);
    BAD(retry_delay_ms, 0, "retry_delay", NULL);
    BAD(retry_delay_ms, 60001, "retry_delay", NULL);
    BAD(max_retries, 101, "max_retries", NULL);
    BAD(max_retries, UINT32_MAX, "max_retries", NULL);
#undef BAD
    uint64_t live0 = rm_live_objects();
    for (size_t i = 0; i < nbad; i++) {
        bool ok = CHECK_RC(rm_config_validate(&bad[i].c, &err), RM_ERR_INVALID_ARGUMENT);
        ok &= CHECK(strstr(err.message, bad[i].stem) != NULL);
        ok &= CHECK(bad[i].not == NULL || strstr(err.message, bad[i].not) == NULL);
        char first[RM_ERROR_MESSAGE_MAX];
        memcpy(first, err.message, sizeof first);
        uint64_t m = 777;
        ok &= CHECK_RC(rm_manager_create(&bad[i].c, &m, &err), RM_ERR_INVALID_ARGUMENT);
        ok &= CHECK(strcmp(err.message, first) == 0); /* the same refusal */
        ok &= CHECK(m == 777);
        ok &= CHECK(rm_live_objects() == live0); /* no monitor started */
        if (!ok) {
            fprintf(stderr, "      case: %s\n", bad[i].label);
        }
    }

    /* The edges of every range are accepted; rm_config_validate does not create anything. */
    rm_config lo = d, hi = d;
    lo.cleanup_timeout_ms = 1;
    lo.force_cleanup_timeout_ms = 1;
    lo.monitor_interval_ms = 10;
    lo.retry_delay_ms = 1;
    lo.max_retries = 0;
    hi.cleanup_timeout_ms = 86400000;
    hi.force_cleanup_timeout_ms = 3600000;
    hi.monitor_interval_ms = 86400000;
    hi.retry_delay_ms = 60000;
    hi.max_retries = 100;
    CHECK_RC(rm_config_validate(&lo, &err), RM_OK);
    CHECK_RC(rm_config_validate(&hi, &err), RM_OK);
    CHECK(rm_live_objects() == live0);
    uint64_t m1 = 0, m2 = 0;
    CHECK_RC(rm_manager_create(&lo, &m1, &err), RM_OK);
    CHECK_RC(rm_manager_create(&hi, &m2, &err), RM_OK);
    CHECK(rm_live_objects() == live0 + 2);
    /* The status document shows the configuration in use. */
    char *doc = status_doc(m2);
    CHECK(doc != NULL &&
          strstr(doc, "\"config\":{\"cleanup_timeout_ms\":86400000,"
                      "\"force_cleanup_timeout_ms\":3600000,\"monitor_interval_ms\":86400000,"
                      "\"max_retries\":100,\"retry_delay_ms\":60000}") != NULL);
    free(doc);
    CHECK_RC(rm_manager_destroy(m2, &err), RM_OK);
    /* m1's bounds are 1 ms + 1 ms: its destroy may report its monitor as not finished by
     * then (a busy machine, valgrind); the monitor then finishes closing shortly after. */
    memset(&err, 0x5a, sizeof err);
    rm_result rc = rm_manager_destroy(m1, &err);
    CHECK((rc == RM_OK || rc == RM_ERR_TIMEOUT) && err.code == rc);
    CHECK(rc != RM_ERR_TIMEOUT || strstr(err.message, "resman.monitor") != NULL);
    if (rc == RM_ERR_TIMEOUT) {
        fprintf(stderr, "      destroy with 1 ms bounds: %s\n", err.message);
    }
    CHECK_RC(rm_manager_destroy(m1, &err), RM_ERR_ALREADY_CLOSED);
    CHECK(wait_live(live0));
}

static void check_histogram(const rm_histogram *h, uint64_t count, const char *what) {
    rm_error err;
    memset(&err, 0, sizeof err);
    bool ok = CHECK(h->count == count);
    ok &= CHECK(h->le[0] == 0.001 && h->le[RM_HISTOGRAM_BUCKETS - 1] == 30.0);
    bool ascending = true, cumulative = true;
    for (int i = 1; i < RM_HISTOGRAM_BUCKETS; i++) {
        ascending &= h->le[i - 1] < h->le[i];
        cumulative &= h->buckets[i - 1] <= h->buckets[i];
    }
    ok &= CHECK(ascending);
    ok &= CHECK(cumulative);
    ok &= CHECK(h->buckets[RM_HISTOGRAM_BUCKETS - 1] <= h->count);
    ok &= CHECK(h->sum_seconds >= 0.0 && (h->count > 0 || h->sum_seconds == 0.0));
    if (!ok) {
        fprintf(stderr, "      histogram %s: count %" PRIu64 ", sum %.6f s\n", what, h->count,
                h->sum_seconds);
    }
}

static void test_metrics(void) {
    BEGIN_TEST();
    uint64_t live0 = rm_live_objects();
    rm_config cfg;
    rm_config_default(&cfg);
    cfg.max_retries = 3;
    cfg.retry_delay_ms = 1;
    uint64_t m = 0;
    CHECK_RC(rm_manager_create(&cfg, &m, &err), RM_OK);

    /* Argument and handle errors; *out untouched. */
    rm_metrics x;
    memset(&x, 0x3c, sizeof x);
    CHECK_RC(rm_manager_metrics(m, NULL, &err), RM_ERR_NULL_POINTER);
    CHECK(rm_manager_metrics(m, NULL, NULL) == RM_ERR_NULL_POINTER);
    CHECK_RC(rm_manager_metrics(0, &x, &err), RM_ERR_INVALID_HANDLE);
    CHECK_RC(rm_manager_metrics(UINT64_C(0xdeadbeef), &x, &err), RM_ERR_INVALID_HANDLE);
    uint64_t mon = monitor_handle(m); /* a resource handle */
    CHECK(mon != 0);
    CHECK_RC(rm_manager_metrics(mon, &x, &err), RM_ERR_WRONG_KIND);
    CHECK(x.registered == UINT64_C(0x3c3c3c3c3c3c3c3c) &&
          x.close_threads == UINT64_C(0x3c3c3c3c3c3c3c3c));
    uint64_t dead = 0;
    CHECK_RC(rm_manager_create(NULL, &dead, &err), RM_OK);
    CHECK_RC(rm_manager_destroy(dead, &err), RM_OK);
    CHECK_RC(rm_manager_metrics(dead, &x, &err), RM_ERR_CLOSED);
    CHECK(x.registered == UINT64_C(0x3c3c3c3c3c3c3c3c));
    CHECK(rm_manager_metrics(m, &x, NULL) == RM_OK);

    /* A fresh manager: its monitor, nothing closed yet. */
    rm_metrics a = metrics_of(m);
    CHECK(a.registered == 1 && a.active == 1 && a.closing == 0);
    CHECK(a.closed == 0 && a.cleanups == 0 && a.failed == 0 && a.retries == 0);
    check_histogram(&a.cleanup_duration, 0, "cleanup_duration");
    check_histogram(&a.close_duration, 0, "close_duration");
    CHECK(a.memory_samples <= 1); /* the monitor samples at start, then every 10 s */
    CHECK((a.memory_samples == 0) == (a.memory_age_ms == UINT64_MAX));

    /* Three callbacks, one failing twice then succeeding (retried 1 ms apart). */
    uint64_t h[3];
    tracked t[3];
    const char *names[3] = {"m-one", "m-flaky", "m-three"};
    for (int i = 0; i < 3; i++) {
        tracked_init(&t[i], NULL, i);
    }
    t[1].fail_rc = 4;
    t[1].fail_times = 2;
    t[1].fail_msg = "not yet";
    for (int i = 0; i < 3; i++) {
        CHECK_RC(rm_register(m, names[i], tracked_close, &t[i], i == 2 ? &h[0] : NULL,
                             i == 2 ? 1 : 0, &h[i], &err),
                 RM_OK);
    }
    rm_metrics b = metrics_of(m);
    CHECK(b.registered == 4 && b.active == 4 && b.closing == 0 && b.closed == 0);
    CHECK(rm_live_objects() == live0 + 4);

    CHECK_RC(rm_cleanup(m, &err), RM_OK);
    CHECK(closes(&t[0]) == 1 && closes(&t[1]) == 3 && closes(&t[2]) == 1);
    CHECK(rm_live_objects() == live0); /* the monitor closed too */
    rm_metrics c = metrics_of(m);
    CHECK(c.registered == 4);
    CHECK(c.active == 0 && c.closing == 0);
    CHECK(c.closed == 4); /* the three and the monitor */
    CHECK(c.failed == 0 && c.unregistered == 0);
    CHECK(c.retries == 2);
    CHECK(c.close_errors == 2);
    CHECK(c.cleanups == 1 && c.cleanups_failed == 0);
    CHECK(c.escalations == 0 && c.timed_out == 0 && c.deferred == 0 && c.forced == 0);
    CHECK(c.leaked_iterators == 0 && c.leaked_snapshots == 0);
    check_histogram(&c.cleanup_duration, 1, "cleanup_duration");
    check_histogram(&c.close_duration, 4, "close_duration");
    /* The flaky close took two pauses of 1 ms at least, and the cleanup as long. */
    CHECK(c.close_duration.buckets[0] <= 3);
    CHECK(c.close_duration.sum_seconds >= 0.002);
    CHECK(c.cleanup_duration.sum_seconds >= 0.002);
    CHECK(c.cleanup_duration.buckets[0] == 0); /* not within 1 ms */
    if (c.closed != 4 || c.retries != 2 || c.close_errors != 2) {
        fprintf(stderr,
                "      closed %" PRIu64 ", retries %" PRIu64 ", close_errors %" PRIu64 "\n",
                c.closed, c.retries, c.close_errors);
    }
    /* The status document says the same, and records the attempts of the flaky close. */
    char *doc = status_doc(m);
    CHECK(doc != NULL);
    if (doc != NULL) {
        const char *tot = strstr(doc, "\"totals\":{");
        const char *tot_end = tot ? strchr(tot, '}') : NULL;
        CHECK(json_num(tot, tot_end, "closed") == 4);
        CHECK(json_num(tot, tot_end, "retries") == 2);
        CHECK(json_num(tot, tot_end, "close_errors") == 2);
        CHECK(json_num(tot, tot_end, "cleanups") == 1);
        const char *cd = strstr(doc, "\"close_duration\":{");
        CHECK(json_num(cd, NULL, "count") == 4);
        const char *st, *st_end;
        if (CHECK(step_of(doc, "m-flaky", &st, &st_end))) {
            CHECK(json_num(st, st_end, "attempts") == 3);
            const char *out = strstr(st, "\"outcome\":\"closed\"");
            CHECK(out != NULL && out < st_end);
            const char *msg = strstr(st, "not yet");
            CHECK(msg != NULL && msg < st_end); /* the failed attempts' errors */
        }
        CHECK(step_before(doc, "m-three", "m-one"));
        free(doc);
    }

    /* A close that fails for good: failed, and every attempt counted. */
    tracked bad;
    tracked_init(&bad, NULL, 9);
    bad.fail_rc = 2;
    uint64_t hb = 0;
    CHECK_RC(rm_register(m, "m-bad", tracked_close, &bad, NULL, 0, &hb, &err), RM_OK);
    CHECK_RC(rm_close(m, hb, &err), RM_ERR_CLOSE_FAILED);
    CHECK(closes(&bad) == 4);
    rm_metrics d = metrics_of(m);
    CHECK(d.failed == 1 && d.closed == 4);
    CHECK(d.retries == 2 + 3 && d.close_errors == 2 + 4);
    CHECK(d.cleanups == 2 && d.cleanups_failed == 1);
    check_histogram(&d.close_duration, 5, "close_duration");
    /* Unregistered: counted as such, not as closed. */
    CHECK_RC(rm_register(m, "m-handed-back", noop_close, NULL, NULL, 0, &hb, &err), RM_OK);
    CHECK_RC(rm_unregister(m, hb, &err), RM_OK);
    rm_metrics e = metrics_of(m);
    CHECK(e.unregistered == 1 && e.registered == 6 && e.active == 0);
    check_histogram(&e.close_duration, 5, "close_duration");

    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
    CHECK_RC(rm_manager_metrics(m, &x, &err), RM_ERR_CLOSED);
    CHECK(rm_live_objects() == live0);
}

/* The monitor: a resource of its manager, sampling every monitor_interval_ms; closed by
 * rm_close like any resource, and by rm_cleanup and rm_manager_destroy. */
static void test_monitor(void) {
    BEGIN_TEST();
    uint64_t live0 = rm_live_objects();
    rm_config cfg;
    rm_config_default(&cfg);
    cfg.monitor_interval_ms = 10;
    uint64_t m = 0;
    CHECK_RC(rm_manager_create(&cfg, &m, &err), RM_OK);
    CHECK(rm_live_objects() == live0 + 1);
    uint64_t mon = monitor_handle(m);
    CHECK(mon != 0 && (mon & 31) == 8); /* kind 8: monitor */
    char *doc = status_doc(m);
    CHECK(doc != NULL && strstr(doc, "\"name\":\"resman.monitor\",\"kind\":\"monitor\",\"state\":"
                                     "\"active\"") != NULL);
    free(doc);

    /* It samples at its interval: the sample count grows (waited for, bounded). */
    rm_metrics s = metrics_of(m);
    uint64_t first = s.memory_samples;
    long spins = 0;
    while (spins < SPIN_MAX && s.memory_samples < first + 3) {
        sched_yield();
        spins++;
        if (spins % 1000 == 0) {
            s = metrics_of(m);
        }
    }
    CHECK(s.memory_samples >= first + 3);
    CHECK(s.memory_age_ms != UINT64_MAX);
    CHECK(s.memory_reporting == 0); /* no DB */
    CHECK(s.registry_bytes > 0);

    /* Not a column family, not unregistrable, and its name is taken. */
    CHECK_RC(rm_put(mon, B("k"), 1, B("v"), 1, &err), RM_ERR_WRONG_KIND);
    CHECK_RC(rm_unregister(m, mon, &err), RM_ERR_OWNED_RESOURCE);
    uint64_t h = 0;
    CHECK_RC(rm_register(m, "resman.monitor", noop_close, NULL, NULL, 0, &h, &err),
             RM_ERR_DUPLICATE_NAME);
    /* A resource may depend on it; closing the monitor closes that dependent first. */
    close_log log = CLOSE_LOG_INIT;
    tracked dep;
    tracked_init(&dep, &log, 'd');
    CHECK_RC(rm_register(m, "on-monitor", tracked_close, &dep, &mon, 1, &h, &err), RM_OK);
    CHECK_RC(rm_close(m, mon, &err), RM_OK);
    CHECK(closes(&dep) == 1);
    CHECK(rm_live_objects() == live0);
    CHECK_RC(rm_close(m, mon, &err), RM_ERR_ALREADY_CLOSED);
    /* Closed (its thread joined), it samples no more: nothing changes over five intervals.
     * (An observation window for something that must not happen, not a synchronisation.) */
    uint64_t after = metrics_of(m).memory_samples;
    double t0 = now_ms();
    while (now_ms() - t0 < 5.0 * (double)cfg.monitor_interval_ms) {
        sched_yield();
    }
    CHECK(metrics_of(m).memory_samples == after);
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
    CHECK(rm_live_objects() == live0);
}

/* ------------------------------------------------------------------------------------------ */
/* Deferred and bounded closes                                                                 */

/* A close callback held by the test: it signals that it started, then blocks until released
 * (a condition variable, no polling), then closes like `tracked`. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cv;
    bool started;
    bool released;
    tracked t;
} held;

static void held_init(held *h, close_log *log, int id) {
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->started = false;
    h->released = false;
    tracked_init(&h->t, log, id);
}

static void held_destroy(held *h) {
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->lock);
}

static int32_t held_close(void *context, char *message, size_t message_cap) {
    held *h = context;
    pthread_mutex_lock(&h->lock);
    h->started = true;
    pthread_cond_broadcast(&h->cv);
    while (!h->released) {
        pthread_cond_wait(&h->cv, &h->lock);
    }
    pthread_mutex_unlock(&h->lock);
    return tracked_close(&h->t, message, message_cap);
}

static bool held_wait_started(held *h) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60; /* a bound far from "never"; normally immediate */
    pthread_mutex_lock(&h->lock);
    int rc = 0;
    while (!h->started && rc == 0) {
        rc = pthread_cond_timedwait(&h->cv, &h->lock, &until);
    }
    bool started = h->started;
    pthread_mutex_unlock(&h->lock);
    return started;
}

static void held_release(held *h) {
    pthread_mutex_lock(&h->lock);
    h->released = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->lock);
}

/* A close callback that releases a held one. */
static int32_t release_close(void *context, char *message, size_t message_cap) {
    (void)message;
    (void)message_cap;
    held_release(context);
    return 0;
}

/* "parent" <- "child" (the child depends on the parent), the child's callback held. Closing
 * the parent cannot finish while the child's close runs: the parent's native close is
 * deferred to the child's letting go, and the call reports both as not finished by its
 * bound. Once released, the child finishes and the parent's close runs on a pool thread,
 * after the call returned. Three ways to bound the call: forced (timeout_ms), graceful then
 * forced (force_cleanup_timeout_ms), graceful 0 = forced at once with the forced bound. */
static void test_deferred_close(void) {
    BEGIN_TEST();
    uint64_t live0 = rm_live_objects();
    rm_config cfg = no_retry_config();
    cfg.force_cleanup_timeout_ms = 100;
    uint64_t m = 0;
    CHECK_RC(rm_manager_create(&cfg, &m, &err), RM_OK);
    for (int round = 0; round < 3; round++) {
        const char *mode = round == 0 ? "forced, timeout_ms 150"
                           : round == 1 ? "graceful 50 ms, then forced 100 ms"
                                        : "graceful 0 ms: forced at once, bound 100 ms";
        fprintf(stderr, "      round: %s\n", mode);
        close_log log = CLOSE_LOG_INIT;
        tracked parent;
        held child;
        tracked_init(&parent, &log, 'p');
        held_init(&child, &log, 'c');
        uint64_t hp = 0, hc = 0;
        CHECK_RC(rm_register(m, "parent", tracked_close, &parent, NULL, 0, &hp, &err), RM_OK);
        CHECK_RC(rm_register(m, "child", held_close, &child, &hp, 1, &hc, &err), RM_OK);
        rm_metrics before = metrics_of(m);

        double t0 = now_ms();
        if (round == 0) {
            CHECK_RC(rm_close_timeout(m, hp, 150, true, &err), RM_ERR_TIMEOUT);
        } else {
            CHECK_RC(rm_close_timeout(m, hp, round == 1 ? 50 : 0, false, &err), RM_ERR_TIMEOUT);
        }
        double took = now_ms() - t0;
        /* Both named, with their state; the parent waits for the child. */
        CHECK(strstr(err.message, "2 resource(s) did not close cleanly (0 failed, 2 timed out)") !=
              NULL);
        CHECK(strstr(err.message, "child (") != NULL && strstr(err.message, "parent (") != NULL);
        CHECK(strstr(err.message, "did not finish closing by the deadline (state closing") !=
              NULL);
        CHECK(strstr(err.message, "waiting for 'child' to finish closing first") != NULL);
        /* The call returned at its bound, not before. */
        double bound = round == 0 ? 150 : round == 1 ? 150 : 100;
        if (!CHECK(took >= bound - 1 && took < 30000)) {
            fprintf(stderr, "      returned after %.1f ms, bound %.0f ms\n", took, bound);
        }
        CHECK(held_wait_started(&child));
        CHECK(closes(&parent) == 0 && closes(&child.t) == 0);
        CHECK(rm_live_objects() == live0 + 3);
        /* Both are dead to callers already. */
        CHECK_RC(rm_close(m, hp, &err), RM_ERR_ALREADY_CLOSED);
        CHECK_RC(rm_close(m, hc, &err), RM_ERR_ALREADY_CLOSED);
        uint64_t h = 0;
        CHECK_RC(rm_register(m, "late", noop_close, NULL, &hp, 1, &h, &err),
                 RM_ERR_DEPENDENCY_CLOSED);
        rm_metrics during = metrics_of(m);
        CHECK(during.closing == 2 && during.active == 1);
        CHECK(during.timed_out == before.timed_out + 2);
        CHECK(during.cleanups_failed == before.cleanups_failed + 1);
        if (round == 1) {
            CHECK(during.escalations == before.escalations + 1);
        }

        /* Let go: the child finishes, then the parent closes on a pool thread. */
        held_release(&child);
        CHECK(wait_closes(&parent, 1));
        CHECK(wait_live(live0 + 1));
        CHECK(closes(&child.t) == 1 && closes(&parent) == 1);
        CHECK(atomic_load(&parent.on_caller) == 0 && atomic_load(&child.t.on_caller) == 0);
        CHECK(log_is(&log, "cp"));
        rm_metrics after = metrics_of(m);
        CHECK(after.closing == 0 && after.active == 1);
        CHECK(after.closed == before.closed + 2);
        CHECK(after.deferred >= before.deferred + 1); /* the parent's close */
        CHECK(after.forced >= before.forced + 1);
        /* The name is free again. */
        CHECK_RC(rm_register(m, "parent", noop_close, NULL, NULL, 0, &h, &err), RM_OK);
        CHECK_RC(rm_close(m, h, &err), RM_OK);
        held_destroy(&child);
    }

    /* A cleanup bounded the same way: what is held is reported, everything else closed. */
    tracked other, parent;
    held child;
    tracked_init(&other, NULL, 'o');
    tracked_init(&parent, NULL, 'p');
    held_init(&child, NULL, 'c');
    uint64_t ho = 0, hp = 0, hc = 0;
    CHECK_RC(rm_register(m, "other", tracked_close, &other, NULL, 0, &ho, &err), RM_OK);
    CHECK_RC(rm_register(m, "parent", tracked_close, &parent, NULL, 0, &hp, &err), RM_OK);
    CHECK_RC(rm_register(m, "child", held_close, &child, &hp, 1, &hc, &err), RM_OK);
    CHECK_RC(rm_cleanup_timeout(m, 200, true, &err), RM_ERR_TIMEOUT);
    CHECK(strstr(err.message, "child (") != NULL && strstr(err.message, "parent (") != NULL);
    CHECK(strstr(err.message, "other") == NULL && strstr(err.message, "resman.monitor") == NULL);
    CHECK(closes(&other) == 1 && closes(&parent) == 0);
    CHECK(rm_live_objects() == live0 + 2); /* the monitor and "other" are gone */
    /* rm_cleanup waits for closes already under way (up to its bounds). The child is
     * released from inside the cleanup, by the close of a resource of that cleanup, so the
     * cleanup has chosen what to close (the child and the parent among them) before. */
    uint64_t hs = 0;
    CHECK_RC(rm_register(m, "releaser", release_close, &child, NULL, 0, &hs, &err), RM_OK);
    CHECK_RC(rm_cleanup(m, &err), RM_OK);
    CHECK(closes(&parent) == 1 && closes(&child.t) == 1);
    /* Holds on return: a cleanup is told a close finished only once its handle is gone. */
    CHECK(rm_live_objects() == live0);
    held_destroy(&child);

    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
    CHECK(rm_live_objects() == live0);
}

int main(void) {
    setvbuf(stderr, NULL, _IONBF, 0);
    g_main_thread = pthread_self();
    test_version();
    test_manager_create_destroy();
    test_manager_handle_reuse();
    test_register_close_basic();
    test_close_failure();
    test_register_argument_errors();
    test_forged_handles();
    test_cleanup_order();
    test_independent_closes_overlap();
    test_cleanup_continues_past_failures();
    test_add_dependency();
    test_unregister();
    test_stale_handle();
    test_dependency_closing();
    test_db();
    test_config();
    test_metrics();
    test_monitor();
    test_deferred_close();
    /* Every manager is destroyed: nothing may be left. */
    return finish_tests(0);
}
