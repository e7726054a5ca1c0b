/*
 * C tests of the close protocol under concurrency (include/resman.h): exactly one caller wins
 * each close (against other closes and against rm_unregister); what a close or cleanup chose
 * is fixed when it is asked for (new dependents, children and registrations are refused);
 * many leaked iterators close within the bound; a cleanup's failures are listed by resource.
 *
 * Built and run by tests/c/run.sh, natively and under valgrind. Synchronisation is on state
 * (a gate a close callback blocks in), never on time. The last line is "N passed, M failed".
 */
#define _XOPEN_SOURCE 700 /* mkdtemp, nftw */

#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TMPDIR_TEMPLATE "/tmp/resman-races-XXXXXX"
#include "check.h"

/* ------------------------------------------------------------------------------------------ */
/* Resources                                                                                  */

/* A close callback that counts its calls. */
static int32_t counting_close(void *ctx, char *msg, size_t cap) {
    (void)msg;
    (void)cap;
    atomic_fetch_add((atomic_int *)ctx, 1);
    return 0;
}

/* A close callback that blocks until the test opens the gate. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cv;
    bool entered;
    bool open;
    int exited; /* callbacks that have returned */
} gate;

#define GATE_INIT {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, 0}

static int32_t gated_close(void *ctx, char *msg, size_t cap) {
    (void)msg;
    (void)cap;
    gate *g = ctx;
    pthread_mutex_lock(&g->lock);
    g->entered = true;
    pthread_cond_broadcast(&g->cv);
    while (!g->open) {
        pthread_cond_wait(&g->cv, &g->lock);
    }
    g->exited++;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->lock);
    return 0;
}

/* Waits until `n` callbacks have left the gate (so it may go out of scope). */
static void gate_wait_exited(gate *g, int n) {
    pthread_mutex_lock(&g->lock);
    while (g->exited < n) {
        pthread_cond_wait(&g->cv, &g->lock);
    }
    pthread_mutex_unlock(&g->lock);
}

static void gate_wait_entered(gate *g) {
    pthread_mutex_lock(&g->lock);
    while (!g->entered) {
        pthread_cond_wait(&g->cv, &g->lock);
    }
    pthread_mutex_unlock(&g->lock);
}

static void gate_open(gate *g) {
    pthread_mutex_lock(&g->lock);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->lock);
}

static uint64_t new_manager(uint64_t cleanup_ms, uint64_t force_ms) {
    rm_config c;
    rm_config_default(&c);
    c.cleanup_timeout_ms = cleanup_ms;
    c.force_cleanup_timeout_ms = force_ms;
    c.max_retries = 0;
    uint64_t m = 0;
    if (rm_manager_create(&c, &m, NULL) != RM_OK) {
        fprintf(stderr, "rm_manager_create failed\n");
        exit(2);
    }
    return m;
}

/* ------------------------------------------------------------------------------------------ */
/* Racing closers                                                                             */

#define CLOSERS 8

typedef struct {
    uint64_t m, h;
    atomic_int *ready;
    rm_result rc;
} closer_arg;

static void *closer(void *p) {
    closer_arg *a = p;
    atomic_fetch_add(a->ready, 1);
    while (atomic_load(a->ready) < CLOSERS) {
        sched_yield();
    }
    a->rc = rm_close(a->m, a->h, NULL);
    return NULL;
}

static void test_one_of_eight_racing_closes_wins(void) {
    BEGIN_TEST();
    uint64_t m = new_manager(30000, 5000);
    atomic_int closes = 0;
    int bad_rounds = 0;
    for (int round = 0; round < 40; round++) {
        char name[32];
        snprintf(name, sizeof name, "r%d", round);
        uint64_t h = 0;
        CHECK_RC(rm_register(m, name, counting_close, &closes, NULL, 0, &h, &err), RM_OK);
        atomic_int ready = 0;
        pthread_t t[CLOSERS];
        closer_arg a[CLOSERS];
        for (int i = 0; i < CLOSERS; i++) {
            a[i] = (closer_arg){m, h, &ready, RM_ERR_PANIC};
            pthread_create(&t[i], NULL, closer, &a[i]);
        }
        int ok = 0, already = 0;
        for (int i = 0; i < CLOSERS; i++) {
            pthread_join(t[i], NULL);
            ok += a[i].rc == RM_OK;
            already += a[i].rc == RM_ERR_ALREADY_CLOSED;
        }
        if (ok != 1 || already != CLOSERS - 1) {
            bad_rounds++;
            fprintf(stderr, "      round %d: %d OK, %d ALREADY_CLOSED\n", round, ok, already);
        }
    }
    CHECK(bad_rounds == 0);
    CHECK(atomic_load(&closes) == 40);
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
}

typedef struct {
    uint64_t m, h;
    atomic_int *go;
    rm_result rc;
} pair_arg;

static void *pair_closer(void *p) {
    pair_arg *a = p;
    atomic_fetch_add(a->go, 1);
    while (atomic_load(a->go) < 2) {
        sched_yield();
    }
    a->rc = rm_close(a->m, a->h, NULL);
    return NULL;
}

static void test_close_and_unregister_have_one_winner(void) {
    BEGIN_TEST();
    uint64_t m = new_manager(30000, 5000);
    int bad = 0;
    for (int round = 0; round < 200; round++) {
        char name[32];
        snprintf(name, sizeof name, "r%d", round);
        atomic_int closes = 0;
        uint64_t h = 0;
        CHECK_RC(rm_register(m, name, counting_close, &closes, NULL, 0, &h, &err), RM_OK);
        atomic_int go = 0;
        pair_arg a = {m, h, &go, RM_ERR_PANIC};
        pthread_t t;
        pthread_create(&t, NULL, pair_closer, &a);
        atomic_fetch_add(&go, 1);
        while (atomic_load(&go) < 2) {
            sched_yield();
        }
        rm_result un = rm_unregister(m, h, NULL);
        pthread_join(t, NULL);
        bool close_won = a.rc == RM_OK && un == RM_ERR_ALREADY_CLOSED && atomic_load(&closes) == 1;
        bool unregister_won =
            un == RM_OK && a.rc == RM_ERR_ALREADY_CLOSED && atomic_load(&closes) == 0;
        if (!close_won && !unregister_won) {
            bad++;
            fprintf(stderr, "      round %d: close %s, unregister %s, %d callback(s)\n", round,
                    rm_result_str((int32_t)a.rc), rm_result_str((int32_t)un),
                    atomic_load(&closes));
        }
    }
    CHECK(bad == 0);
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
}

/* ------------------------------------------------------------------------------------------ */
/* What a running close or cleanup chose is fixed                                             */

typedef struct {
    uint64_t m, h; /* h 0: rm_cleanup */
    rm_result rc;
} bg_arg;

static void *bg_close(void *p) {
    bg_arg *a = p;
    a->rc = a->h == 0 ? rm_cleanup(a->m, NULL) : rm_close(a->m, a->h, NULL);
    return NULL;
}

static void test_registrations_are_refused_while_a_cleanup_runs(void) {
    BEGIN_TEST();
    uint64_t m = new_manager(60000, 5000);
    atomic_int closes = 0;
    gate g = GATE_INIT;
    uint64_t parent = 0, hung = 0, late = 0;
    CHECK_RC(rm_register(m, "parent", counting_close, &closes, NULL, 0, &parent, &err), RM_OK);
    CHECK_RC(rm_register(m, "gated", gated_close, &g, &parent, 1, &hung, &err), RM_OK);
    bg_arg a = {m, 0, RM_ERR_PANIC};
    pthread_t t;
    pthread_create(&t, NULL, bg_close, &a);
    gate_wait_entered(&g);
    CHECK_RC(rm_register(m, "late", counting_close, &closes, NULL, 0, &late, &err),
             RM_ERR_CLOSED);
    CHECK(strstr(err.message, "cleaning up") != NULL);
    CHECK_RC(rm_register(m, "late-child", counting_close, &closes, &parent, 1, &late, &err),
             RM_ERR_CLOSED);
    /* What the cleanup chose: closing it is somebody else's job now. */
    CHECK_RC(rm_close(m, parent, &err), RM_ERR_ALREADY_CLOSED);
    CHECK_RC(rm_unregister(m, hung, &err), RM_ERR_ALREADY_CLOSED);
    gate_open(&g);
    pthread_join(t, NULL);
    CHECK(a.rc == RM_OK);
    CHECK(atomic_load(&closes) == 1);
    /* The manager takes new resources again. */
    CHECK_RC(rm_register(m, "after", counting_close, &closes, NULL, 0, &late, &err), RM_OK);
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
    CHECK(atomic_load(&closes) == 2);
}

static void test_a_closing_db_takes_no_new_children(void) {
    BEGIN_TEST();
    const char *dir = make_tmpdir();
    uint64_t m = new_manager(60000, 5000);
    const char *cfn[] = {"default"};
    uint64_t db = 0, cf = 0, worker = 0, x = 0;
    CHECK_RC(rm_db_open(m, "db", dir, NULL, cfn, 1, &db, &cf, &err), RM_OK);
    gate g = GATE_INIT;
    CHECK_RC(rm_register(m, "worker", gated_close, &g, &db, 1, &worker, &err), RM_OK);
    bg_arg a = {m, db, RM_ERR_PANIC};
    pthread_t t;
    pthread_create(&t, NULL, bg_close, &a);
    gate_wait_entered(&g);
    /* The DB's close was asked for: no new iterator, snapshot, batch or dependent... */
    CHECK_RC(rm_iter_create(cf, 0, 0, NULL, 0, NULL, 0, &x, &err), RM_ERR_CLOSED);
    CHECK_RC(rm_snapshot_create(db, &x, &err), RM_ERR_CLOSED);
    CHECK_RC(rm_batch_create(db, &x, &err), RM_ERR_CLOSED);
    CHECK_RC(rm_register(m, "late", counting_close, NULL, &db, 1, &x, &err),
             RM_ERR_DEPENDENCY_CLOSED);
    CHECK_RC(rm_register(m, "late-cf", counting_close, NULL, &cf, 1, &x, &err),
             RM_ERR_DEPENDENCY_CLOSED);
    /* ... but it still serves operations until its own close begins: the worker's close
     * (running now) may write into it. */
    CHECK_RC(rm_put(cf, B("k"), 1, B("v"), 1, &err), RM_OK);
    CHECK_RC(rm_close(m, cf, &err), RM_ERR_ALREADY_CLOSED);
    gate_open(&g);
    pthread_join(t, NULL);
    CHECK(a.rc == RM_OK);
    CHECK_RC(rm_put(cf, B("k"), 1, B("v"), 1, &err), RM_ERR_CLOSED);
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
}

#define LEAKED 3000

static void test_closing_a_db_with_many_leaked_iterators(void) {
    BEGIN_TEST();
    const char *dir = make_tmpdir();
    uint64_t m = new_manager(30000, 30000);
    const char *cfn[] = {"default"};
    uint64_t db = 0, cf = 0;
    CHECK_RC(rm_db_open(m, "db", dir, NULL, cfn, 1, &db, &cf, &err), RM_OK);
    int made = 0;
    for (int i = 0; i < LEAKED; i++) {
        uint64_t it = 0, snap = 0;
        if (i % 3 == 0) {
            made += rm_snapshot_create(db, &snap, NULL) == RM_OK;
        } else {
            made += rm_iter_create(cf, 0, 0, NULL, 0, NULL, 0, &it, NULL) == RM_OK;
        }
    }
    CHECK(made == LEAKED);
    CHECK_RC(rm_close(m, db, &err), RM_OK);
    char *doc = status_doc(m);
    CHECK(doc != NULL);
    CHECK(json_num(doc, NULL, "leaked_iterators") == LEAKED - LEAKED / 3);
    CHECK(json_num(doc, NULL, "leaked_snapshots") == LEAKED / 3);
    free(doc);
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
}

/* ------------------------------------------------------------------------------------------ */
/* A cleanup's failures by resource                                                           */

static char *failures_doc(uint64_t m, size_t max) {
    size_t need = 0;
    rm_error e;
    if (rm_cleanup_failures(m, max, NULL, 0, &need, &e) != RM_ERR_BUFFER_TOO_SMALL) {
        return NULL;
    }
    char *doc = malloc(need + 1);
    size_t got = 0;
    if (doc == NULL || rm_cleanup_failures(m, max, doc, need + 1, &got, &e) != RM_OK) {
        free(doc);
        return NULL;
    }
    return doc;
}

static void test_cleanup_failures_name_each_resource_in_full(void) {
    BEGIN_TEST();
    uint64_t m = new_manager(20, 20);
    size_t len = 0;
    CHECK_RC(rm_cleanup_failures(m, 10, NULL, 0, NULL, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_cleanup_failures(m, 10, NULL, 8, &len, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_cleanup_failures(0, 10, NULL, 0, &len, &err), RM_ERR_INVALID_HANDLE);
    char *doc = failures_doc(m, 10);
    CHECK(doc != NULL && strstr(doc, "\"operation\":null") != NULL);
    free(doc);

    gate g = GATE_INIT;
    atomic_int parent_closes = 0;
    enum { N = 30 };
    uint64_t parent = 0, h = 0;
    CHECK_RC(rm_register(m, "a-parent-with-a-rather-long-name-to-fill-the-message", counting_close,
                         &parent_closes, NULL, 0, &parent, &err),
             RM_OK);
    for (int i = 0; i < N; i++) {
        char name[64];
        snprintf(name, sizeof name, "hung-resource-number-%02d", i);
        CHECK_RC(rm_register(m, name, gated_close, &g, &parent, 1, &h, &err), RM_OK);
    }
    CHECK_RC(rm_cleanup(m, &err), RM_ERR_TIMEOUT);
    /* The aggregated message is cut after a whole word and says so. */
    size_t n = strlen(err.message);
    CHECK(n < sizeof err.message && n > 4 && strcmp(err.message + n - 4, " \xe2\x80\xa6") == 0);
    /* 30 hung, their parent, and maybe the monitor (the hung closes hold the pool). */
    CHECK(strstr(err.message, " resource(s) did not close cleanly (0 failed, ") != NULL);

    doc = failures_doc(m, 1000);
    CHECK(doc != NULL);
    CHECK(doc && strstr(doc, "\"operation\":\"cleanup\"") != NULL);
    CHECK(json_num(doc, NULL, "total") >= N + 1);
    CHECK(doc && strstr(doc, "waiting for 'hung-resource-number-00'") != NULL);
    CHECK(doc && strstr(doc, "and 25 more to finish closing first") != NULL);
    free(doc);
    doc = failures_doc(m, 2);
    CHECK(json_num(doc, NULL, "total") >= N + 1);
    int listed = 0;
    for (const char *p = doc; p && (p = strstr(p, "\"message\":")) != NULL; p++) {
        listed++;
    }
    CHECK(listed == 2);
    free(doc);
    gate_open(&g);
    gate_wait_exited(&g, N);
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
    CHECK(atomic_load(&parent_closes) == 1);
}

int main(void) {
    setvbuf(stderr, NULL, _IONBF, 0);
    uint64_t live_before = rm_live_objects();
    test_one_of_eight_racing_closes_wins();
    test_close_and_unregister_have_one_winner();
    test_registrations_are_refused_while_a_cleanup_runs();
    test_a_closing_db_takes_no_new_children();
    test_closing_a_db_with_many_leaked_iterators();
    test_cleanup_failures_name_each_resource_in_full();
    return finish_tests(live_before);
}
