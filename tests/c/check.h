/*
 * What the C test programs share (tests/c/test_*.c): the CHECK harness, the status and
 * memory-sample documents read with the two-call protocol, a tiny JSON number reader,
 * temporary directories, and the RocksDB calls refused alike for a bad handle. Include after the system headers; a program defines
 * TMPDIR_TEMPLATE (a mkdtemp template) before including it.
 *
 * Everything is static (inline for functions, so a program need not use all of it).
 */
#ifndef RESMAN_TESTS_C_CHECK_H
#define RESMAN_TESTS_C_CHECK_H

#include <ftw.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resman.h"

/* ------------------------------------------------------------------------------------------ */
/* Checking                                                                                   */

static int g_passed;
static int g_failed;
static const char *g_test = "?";
/* Printed with a failure when set: which case of a table or helper was running. */
static const char *g_ctx;

static inline void report_error(const rm_error *e) {
    if (e == NULL) {
        return;
    }
    const char *nul = memchr(e->message, '\0', sizeof e->message);
    fprintf(stderr, "      rm_error: code %d (%s), message \"%.*s\"\n", (int)e->code,
            rm_result_str((int32_t)e->code),
            nul ? (int)(nul - e->message) : (int)sizeof e->message, e->message);
}

static inline void report_ctx(void) {
    if (g_ctx != NULL) {
        fprintf(stderr, "      case: %s\n", g_ctx);
    }
}

static inline bool check_impl(bool ok, const char *file, int line, const char *expr, const rm_error *e) {
    if (ok) {
        g_passed++;
        return true;
    }
    g_failed++;
    fprintf(stderr, "FAIL %s:%d [%s]: %s\n", file, line, g_test, expr);
    report_ctx();
    report_error(e);
    return false;
}

/* The rm_error contract: same code as the return value, NUL-terminated inside the array, and
 * "" on success. */
static inline bool err_consistent(rm_result got, const rm_error *e) {
    if (e->code != got) {
        return false;
    }
    if (memchr(e->message, '\0', sizeof e->message) == NULL) {
        return false;
    }
    return got != RM_OK || e->message[0] == '\0';
}

static inline bool check_rc_impl(rm_result got, rm_result want, const char *file, int line,
                          const char *expr, const rm_error *e) {
    bool ok = got == want && err_consistent(got, e);
    if (ok) {
        g_passed++;
        return true;
    }
    g_failed++;
    fprintf(stderr, "FAIL %s:%d [%s]: %s\n      returned %d (%s), expected %d (%s)%s\n", file,
            line, g_test, expr, (int)got, rm_result_str((int32_t)got), (int)want,
            rm_result_str((int32_t)want),
            got == want ? "; rm_error does not match the return value" : "");
    report_ctx();
    report_error(e);
    return false;
}

/* Every test function declares `rm_error err;`: the checks print it on failure. */
#define CHECK(cond) check_impl((cond), __FILE__, __LINE__, #cond, &err)
/* `call` must pass &err: err is scribbled on first, so a call that does not fill it fails. */
#define CHECK_RC(call, want)                                                                   \
    (memset(&err, 0x5a, sizeof err),                                                           \
     check_rc_impl((call), (want), __FILE__, __LINE__, #call, &err))

#define BEGIN_TEST()                                                                           \
    rm_error err;                                                                              \
    memset(&err, 0, sizeof err);                                                               \
    g_test = __func__;                                                                         \
    g_ctx = NULL;                                                                              \
    fprintf(stderr, "--- %s\n", __func__)

/* ------------------------------------------------------------------------------------------ */
/* Documents                                                                                  */

/* A JSON document read with the two-call protocol (`get` is rm_status or rm_memory_sample);
 * malloc'ed and NUL-terminated, or NULL. */
static inline char *json_document(rm_result (*get)(uint64_t, char *, size_t, size_t *, rm_error *),
                                  const char *what, uint64_t m) {
    for (int attempt = 0; attempt < 5; attempt++) {
        size_t need = 0;
        rm_result rc = get(m, NULL, 0, &need, NULL);
        if (rc != RM_ERR_BUFFER_TOO_SMALL) {
            fprintf(stderr, "      %s size query: %s\n", what, rm_result_str((int32_t)rc));
            return NULL;
        }
        size_t cap = need + 256; /* it may have grown meanwhile */
        char *doc = malloc(cap);
        if (doc == NULL) {
            return NULL;
        }
        size_t got = 0;
        rc = get(m, doc, cap, &got, NULL);
        if (rc == RM_OK) {
            return doc;
        }
        free(doc);
    }
    return NULL;
}

/* The manager's status document (malloc'ed, NUL-terminated), or NULL. */
static inline char *status_doc(uint64_t m) { return json_document(rm_status, "rm_status", m); }

/* The monitor's last memory sample (rm_memory_sample; malloc'ed, NUL-terminated), or NULL. */
static inline char *memory_sample_doc(uint64_t m) {
    return json_document(rm_memory_sample, "rm_memory_sample", m);
}

/* The top-level "resources" array of a status document (the live resources), or NULL. Other
 * objects have a "resources" member too ("memory": the DBs of the monitor's sample;
 * "last_cleanup": a count): the live resources are the last "resources" array before
 * "recently_closed". */
static inline const char *live_resources(const char *doc) {
    const char *closed = doc ? strstr(doc, "\"recently_closed\":[") : NULL;
    const char *found = NULL;
    for (const char *p = doc ? strstr(doc, "\"resources\":[") : NULL; p != NULL && p < closed;
         p = strstr(p + 1, "\"resources\":[")) {
        found = p;
    }
    return found;
}

/* The number after "field": in [from, end) (end NULL: to the NUL), or -1. */
static inline double json_num(const char *from, const char *end, const char *field) {
    if (from == NULL) {
        return -1;
    }
    char pat[96];
    snprintf(pat, sizeof pat, "\"%s\":", field);
    const char *p = strstr(from, pat);
    if (p == NULL || (end != NULL && p >= end)) {
        return -1;
    }
    p += strlen(pat);
    if (*p < '0' || *p > '9') {
        return -1;
    }
    return strtod(p, NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* Temporary directories                                                                      */

static inline int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void rm_rf(const char *dir) {
    if (dir != NULL && dir[0] != '\0') {
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
}

#define MAX_TMPDIRS 64
static char g_tmpdirs[MAX_TMPDIRS][64];
static int g_ntmpdirs;

/* A fresh empty directory (from TMPDIR_TEMPLATE), removed by remove_tmpdirs. */
static inline const char *make_tmpdir(void) {
    if (g_ntmpdirs == MAX_TMPDIRS) {
        return NULL;
    }
    char *d = g_tmpdirs[g_ntmpdirs];
    snprintf(d, sizeof g_tmpdirs[0], "%s", TMPDIR_TEMPLATE);
    if (mkdtemp(d) == NULL) {
        perror("mkdtemp");
        return NULL;
    }
    g_ntmpdirs++;
    return d;
}

/* Removes every directory make_tmpdir made. */
static inline void remove_tmpdirs(void) {
    for (int i = 0; i < g_ntmpdirs; i++) {
        rm_rf(g_tmpdirs[i]);
    }
}

static inline const uint8_t *B(const char *s) { return (const uint8_t *)s; }
/* A string as a (pointer, length) argument pair. */
#define S(s) B(s), strlen(s)

/* The end of every program: `want_live` handles are left (every manager destroyed, every
 * deferred close run), the temporary directories go, and the closing line the suite reads is
 * printed. Returns the exit status. */
static inline int finish_tests(uint64_t want_live) {
    rm_error err;
    memset(&err, 0, sizeof err);
    g_test = "main";
    g_ctx = NULL;
    uint64_t live = rm_live_objects();
    if (!CHECK(live == want_live)) {
        fprintf(stderr, "      rm_live_objects() = %" PRIu64 ", expected %" PRIu64 "\n", live,
                want_live);
    }
    remove_tmpdirs();
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed > 0 ? 1 : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* RocksDB calls                                                                              */

/* Opens `name` at `dir` with the column families `cfn` (`o` NULL: the defaults); false (and a
 * message) on failure. */
static inline bool open_db(uint64_t m, const char *name, const char *dir, const rm_db_options *o,
                           const char *const *cfn, size_t n, uint64_t *db, uint64_t *cfs) {
    rm_error e;
    rm_result rc = rm_db_open(m, name, dir, o, cfn, n, db, cfs, &e);
    if (rc != RM_OK) {
        fprintf(stderr, "      open '%s' at %s: %s: %s\n", name, dir, rm_result_str((int32_t)rc),
                e.message);
        return false;
    }
    return true;
}

/* Every call that takes a column family returns `want` for `cf`, and none of them creates,
 * changes or writes anything. `batch` is a live batch of a DB; `other` a live column family of
 * that DB (the per-key multi-get, with the bad handle second). */
static inline void cf_param_calls(uint64_t cf, uint64_t batch, uint64_t other, rm_result want,
                                  const char *ctx) {
    rm_error err;
    const char *saved = g_ctx;
    g_ctx = ctx;
    uint64_t live = rm_live_objects();
    uint8_t buf[32];
    size_t len = 777;
    CHECK_RC(rm_put(cf, S("k"), S("v"), &err), want);
    CHECK_RC(rm_put_opt(cf, S("k"), S("v"), RM_WRITE_SYNC, &err), want);
    CHECK_RC(rm_delete(cf, S("k"), &err), want);
    CHECK_RC(rm_delete_opt(cf, S("k"), 0, &err), want);
    CHECK_RC(rm_get(cf, S("k"), buf, sizeof buf, &len, &err), want);
    CHECK_RC(rm_get_opt(cf, 0, RM_READ_NO_FILL_CACHE, S("k"), buf, sizeof buf, &len, &err), want);
    uint8_t *value = NULL;
    CHECK_RC(rm_get_alloc(cf, 0, 0, S("k"), buf, sizeof buf, NULL, NULL, &value, &len, &err), want);
    CHECK(len == 777 && value == NULL);
    uint64_t two[2] = {other, cf};
    size_t lens[2] = {1, 1};
    rm_value v[2];
    size_t needed = 777;
    CHECK_RC(rm_multi_get(&cf, 1, 0, 0, B("kk"), lens, 1, buf, sizeof buf, v, &needed, &err), want);
    CHECK_RC(rm_multi_get(two, 2, 0, 0, B("kk"), lens, 2, buf, sizeof buf, v, &needed, &err), want);
    CHECK(needed == 777);
    uint64_t it = 777;
    CHECK_RC(rm_iter_create(cf, 0, 0, NULL, 0, NULL, 0, &it, &err), want);
    CHECK(it == 777);
    size_t before = 99, after = 98;
    rm_batch_count(batch, &before, NULL);
    CHECK_RC(rm_batch_put(batch, cf, S("k"), S("v"), &err), want);
    CHECK_RC(rm_batch_delete(batch, cf, S("k"), &err), want);
    CHECK_RC(rm_batch_delete_range(batch, cf, S("a"), S("b"), &err), want);
    rm_batch_count(batch, &after, NULL);
    CHECK(after == before);
    CHECK(rm_live_objects() == live);
    g_ctx = saved;
}

/* Every call that takes a DB returns `want` for `db`; nothing is created or written. */
static inline void db_param_calls(uint64_t db, rm_result want, const char *ctx) {
    rm_error err;
    const char *saved = g_ctx;
    g_ctx = ctx;
    uint64_t live = rm_live_objects();
    uint64_t h = 777;
    CHECK_RC(rm_batch_create(db, &h, &err), want);
    CHECK_RC(rm_snapshot_create(db, &h, &err), want);
    CHECK(h == 777);
    rm_memory mem;
    memset(&mem, 0x11, sizeof mem);
    CHECK_RC(rm_db_memory(db, &mem, &err), want);
    CHECK(mem.mem_table_total == UINT64_C(0x1111111111111111));
    CHECK(mem.block_cache == UINT64_C(0x1111111111111111));
    CHECK(rm_live_objects() == live);
    g_ctx = saved;
}

#endif
