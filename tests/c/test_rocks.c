/*
 * C test suite for resman's RocksDB surface (include/resman.h): options, per-column-family
 * compression, write flags, batches, snapshots, iterators, multi-get, memory figures, the
 * leak accounting of the status document, every documented refusal of those functions, and
 * a DB closed (gracefully, then forced) while two threads use its handles.
 *
 * Self-contained C11, no framework, same conventions as test_lifecycle.c. Build and run
 * through tests/c/run.sh, which also runs it under valgrind. Every check counts; the last line
 * is "N passed, M failed" and the exit status is non-zero when M > 0. Key counts are small so
 * the valgrind run stays within a few seconds.
 */
#define _XOPEN_SOURCE 700 /* mkdtemp, nftw, nanosleep, clock_gettime */

#include <dirent.h>
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

#define TMPDIR_TEMPLATE "/tmp/resman-crocks-XXXXXX"
#include "check.h"

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                    */

/* A string as the (pointer, length) pair the API takes. */

/* Numbers nobody issued (0 is never valid; the others carry arbitrary tag bits). */
static const uint64_t g_junk[] = {0, UINT64_C(0x123456789abcdef), UINT64_MAX, UINT64_C(0xdeadbeef),
                                  UINT64_C(1) << 40};
#define N_JUNK (sizeof g_junk / sizeof g_junk[0])

/* `key` read from `cf` at `snap` (0: latest) is `want`, or missing when want is NULL. */
static bool value_is(uint64_t cf, uint64_t snap, const char *key, const char *want) {
    uint8_t buf[512];
    size_t len = 0;
    rm_error e;
    memset(&e, 0x5a, sizeof e);
    rm_result rc = rm_get_opt(cf, snap, 0, B(key), strlen(key), buf, sizeof buf, &len, &e);
    bool ok;
    if (want == NULL) {
        ok = rc == RM_ERR_NOT_FOUND && err_consistent(rc, &e);
    } else {
        ok = rc == RM_OK && err_consistent(rc, &e) && len == strlen(want) &&
             memcmp(buf, want, len) == 0;
    }
    if (!ok) {
        fprintf(stderr, "      get '%s' at snapshot %#" PRIx64 ": %s", key, snap,
                rm_result_str((int32_t)rc));
        if (rc == RM_OK) {
            fprintf(stderr, " '%.*s'", (int)(len < sizeof buf ? len : sizeof buf),
                    (const char *)buf);
        }
        fprintf(stderr, ", expected %s%s%s\n", want ? "'" : "not found", want ? want : "",
                want ? "'" : "");
    }
    return ok;
}

/* The iterator is on `want` (its key), or not on an entry when want is NULL. */
static bool at(uint64_t it, const char *want) {
    rm_error e;
    bool valid = !(want != NULL);
    rm_result rc = rm_iter_valid(it, &valid, &e);
    if (rc != RM_OK || valid != (want != NULL)) {
        fprintf(stderr, "      iter_valid: %s, valid=%d, expected %s\n", rm_result_str((int32_t)rc),
                (int)valid, want ? want : "(not valid)");
        return false;
    }
    if (want == NULL) {
        return true;
    }
    uint8_t k[256];
    size_t kl = 0;
    rc = rm_iter_key(it, k, sizeof k, &kl, &e);
    if (rc != RM_OK || kl != strlen(want) || memcmp(k, want, kl) != 0) {
        fprintf(stderr, "      iter_key: %s, key '%.*s', expected '%s'\n",
                rm_result_str((int32_t)rc), (int)(kl < sizeof k ? kl : 0), (const char *)k, want);
        return false;
    }
    return true;
}

/* Seeks ('f' first, 'l' last, 's' seek, 'p' seek_for_prev) and checks both the reported
 * validity and the position: on `want`, or not on an entry when want is NULL. */
static bool seek_at(uint64_t it, char how, const char *key, const char *want) {
    rm_error e;
    bool valid = !(want != NULL);
    rm_result rc;
    switch (how) {
    case 'f': rc = rm_iter_seek_to_first(it, &valid, &e); break;
    case 'l': rc = rm_iter_seek_to_last(it, &valid, &e); break;
    case 's': rc = rm_iter_seek(it, B(key), strlen(key), &valid, &e); break;
    default: rc = rm_iter_seek_for_prev(it, B(key), strlen(key), &valid, &e); break;
    }
    if (rc != RM_OK || valid != (want != NULL) || !err_consistent(rc, &e)) {
        fprintf(stderr, "      seek %c '%s': %s, valid=%d, expected %s\n", how, key ? key : "",
                rm_result_str((int32_t)rc), (int)valid, want ? want : "(not valid)");
        return false;
    }
    return at(it, want);
}

/* Seeks to the first (forward) or last entry and walks to the end, joining the keys with ','.
 * Every value must be "val-<key>" when check_values. */
static bool scan_is(uint64_t it, bool forward, const char *want, bool check_values) {
    char got[1024];
    size_t n = 0;
    got[0] = '\0';
    bool valid = false;
    rm_error e;
    rm_result rc = forward ? rm_iter_seek_to_first(it, &valid, &e)
                           : rm_iter_seek_to_last(it, &valid, &e);
    bool ok = rc == RM_OK;
    int steps = 0;
    while (ok && valid && steps < 200) {
        uint8_t k[128], v[256];
        size_t kl = 0, vl = 0;
        rc = rm_iter_entry(it, k, sizeof k, &kl, v, sizeof v, &vl, &e);
        if (rc != RM_OK) {
            ok = false;
            break;
        }
        if (check_values &&
            (vl != kl + 4 || memcmp(v, "val-", 4) != 0 || memcmp(v + 4, k, kl) != 0)) {
            fprintf(stderr, "      key '%.*s' has value '%.*s'\n", (int)kl, (const char *)k,
                    (int)vl, (const char *)v);
            ok = false;
        }
        if (n + kl + 2 < sizeof got) {
            if (n > 0) {
                got[n++] = ',';
            }
            memcpy(got + n, k, kl);
            n += kl;
            got[n] = '\0';
        }
        rc = forward ? rm_iter_next(it, &valid, &e) : rm_iter_prev(it, &valid, &e);
        if (rc != RM_OK) {
            ok = false;
        }
        steps++;
    }
    if (strcmp(got, want) != 0) {
        ok = false;
    }
    if (!ok) {
        fprintf(stderr, "      %s scan: \"%s\", expected \"%s\" (last call: %s)\n",
                forward ? "forward" : "backward", got, want, rm_result_str((int32_t)rc));
    }
    return ok;
}

/* The "totals" object of a status document, copied into out ("" if absent). */
static void totals_of(const char *doc, char *out, size_t cap) {
    out[0] = '\0';
    const char *p = doc ? strstr(doc, "\"totals\":{") : NULL;
    if (p == NULL) {
        return;
    }
    const char *end = strchr(p, '}');
    if (end == NULL) {
        return;
    }
    size_t n = (size_t)(end + 1 - p);
    if (n >= cap) {
        n = cap - 1;
    }
    memcpy(out, p, n);
    out[n] = '\0';
}

/* The manager's totals.<field>, or -1. */
static long long total(uint64_t m, const char *field) {
    char *doc = status_doc(m);
    char t[1024];
    totals_of(doc, t, sizeof t);
    free(doc);
    return json_num(t, NULL, field);
}

/* recently_closed[<name>].<field> in `doc`, or -1. */
static long long closed_field(const char *doc, const char *name, const char *field) {
    const char *rc = doc ? strstr(doc, "\"recently_closed\":[") : NULL;
    if (rc == NULL) {
        return -1;
    }
    char pat[160];
    snprintf(pat, sizeof pat, "\"name\":\"%s\"", name);
    const char *p = strstr(rc, pat);
    if (p == NULL) {
        return -1;
    }
    const char *start = p;
    while (start > rc && *start != '{') {
        start--;
    }
    const char *end = strchr(p, '}');
    return json_num(start, end, field);
}

/* The `compression=` value of column family `cf` in the newest OPTIONS file RocksDB wrote in
 * `dir`, copied into out ("" when not found). */
static void cf_compression(const char *dir, const char *cf, char *out, size_t cap) {
    out[0] = '\0';
    DIR *d = opendir(dir);
    if (d == NULL) {
        return;
    }
    char newest[256] = "";
    long best = -1;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        if (strncmp(ent->d_name, "OPTIONS-", 8) == 0 && strstr(ent->d_name, ".dbtmp") == NULL) {
            long n = strtol(ent->d_name + 8, NULL, 10);
            if (n > best) {
                best = n;
                snprintf(newest, sizeof newest, "%s", ent->d_name);
            }
        }
    }
    closedir(d);
    if (best < 0) {
        return;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, newest);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return;
    }
    char header[300];
    snprintf(header, sizeof header, "[CFOptions \"%s\"]", cf);
    char line[1024];
    bool in_section = false;
    while (fgets(line, sizeof line, f) != NULL) {
        if (line[0] == '[') {
            in_section = strncmp(line, header, strlen(header)) == 0;
            continue;
        }
        if (!in_section) {
            continue;
        }
        const char *p = line;
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        if (strncmp(p, "compression=", 12) == 0) {
            snprintf(out, cap, "%s", p + 12);
            out[strcspn(out, "\r\n")] = '\0';
            break;
        }
    }
    fclose(f);
}

/* Every call that takes an iterator handle returns `want` for `it`. */
static void iter_all_calls(uint64_t it, rm_result want, const char *ctx) {
    rm_error err;
    const char *saved = g_ctx;
    g_ctx = ctx;
    bool valid = false;
    uint8_t kb[16], vb[16];
    size_t kl = 0, vl = 0;
    CHECK_RC(rm_iter_seek_to_first(it, &valid, &err), want);
    CHECK_RC(rm_iter_seek_to_last(it, &valid, &err), want);
    CHECK_RC(rm_iter_seek(it, S("a"), &valid, &err), want);
    CHECK_RC(rm_iter_seek_for_prev(it, S("a"), &valid, &err), want);
    CHECK_RC(rm_iter_next(it, &valid, &err), want);
    CHECK_RC(rm_iter_prev(it, &valid, &err), want);
    CHECK_RC(rm_iter_next(it, NULL, &err), want);
    CHECK_RC(rm_iter_valid(it, &valid, &err), want);
    CHECK_RC(rm_iter_key(it, kb, sizeof kb, &kl, &err), want);
    CHECK_RC(rm_iter_value(it, vb, sizeof vb, &vl, &err), want);
    CHECK_RC(rm_iter_entry(it, kb, sizeof kb, &kl, vb, sizeof vb, &vl, &err), want);
    rm_entry_len lens[2];
    size_t count = 99;
    CHECK_RC(rm_iter_read_next(it, kb, sizeof kb, lens, 2, &count, &valid, &err), want);
    CHECK(count == 0);
    count = 99;
    CHECK_RC(rm_iter_read_prev(it, kb, sizeof kb, lens, 2, &count, &valid, &err), want);
    CHECK(count == 0);
    g_ctx = saved;
}

/* Every call that takes a batch handle returns `want` for `b` (cf: a valid column family). */
static void batch_all_calls(uint64_t b, uint64_t cf, rm_result want, const char *ctx) {
    rm_error err;
    const char *saved = g_ctx;
    g_ctx = ctx;
    size_t count = 12345;
    CHECK_RC(rm_batch_put(b, cf, S("k"), S("v"), &err), want);
    CHECK_RC(rm_batch_delete(b, cf, S("k"), &err), want);
    CHECK_RC(rm_batch_delete_range(b, cf, S("a"), S("b"), &err), want);
    CHECK_RC(rm_batch_clear(b, &err), want);
    CHECK_RC(rm_batch_count(b, &count, &err), want);
    if (want != RM_OK) {
        CHECK(count == 12345);
    }
    CHECK_RC(rm_batch_write(b, 0, &err), want);
    g_ctx = saved;
}

/* Every read that takes a snapshot returns `want` with `snap` (cf: a valid column family);
 * nothing is created when it fails. */
static void snapshot_param_calls(uint64_t cf, uint64_t snap, rm_result want, const char *ctx) {
    rm_error err;
    const char *saved = g_ctx;
    g_ctx = ctx;
    uint64_t live = rm_live_objects();
    uint8_t buf[64];
    size_t len = 777;
    CHECK_RC(rm_get_opt(cf, snap, 0, S("k"), buf, sizeof buf, &len, &err), want);
    if (want != RM_OK && want != RM_ERR_NOT_FOUND) {
        CHECK(len == 777);
    }
    rm_value v[1];
    memset(v, 0x7b, sizeof v);
    size_t lens[1] = {1};
    size_t needed = 777;
    rm_result mg = want == RM_ERR_NOT_FOUND ? RM_OK : want;
    CHECK_RC(rm_multi_get(&cf, 1, snap, 0, B("k"), lens, 1, buf, sizeof buf, v, &needed, &err),
             mg);
    if (mg != RM_OK) {
        CHECK(needed == 777 && (int)v[0].code == 0x7b7b7b7b); /* untouched */
    }
    uint64_t it = 777;
    CHECK_RC(rm_iter_create(cf, snap, 0, NULL, 0, NULL, 0, &it, &err), mg);
    if (mg != RM_OK) {
        CHECK(it == 777);
        CHECK(rm_live_objects() == live);
    } /* else: an iterator was created; the caller's close of the snapshot or DB closes it */
    g_ctx = saved;
}

/* ------------------------------------------------------------------------------------------ */
/* Tests                                                                                      */

static void test_options(void) {
    BEGIN_TEST();
    uint64_t live0 = rm_live_objects();
    const char *dir = make_tmpdir();
    if (!CHECK(dir != NULL)) {
        return;
    }
    char never[128], a_dir[128], b_dir[128];
    snprintf(never, sizeof never, "%s/never", dir);
    snprintf(a_dir, sizeof a_dir, "%s/a", dir);
    snprintf(b_dir, sizeof b_dir, "%s/b", dir);

    rm_db_options o;
    memset(&o, 0xee, sizeof o);
    CHECK(rm_db_options_default(&o) == RM_OK);
    CHECK(o.create_if_missing == 1 && o.create_missing_column_families == 1 &&
          o.error_if_exists == 0);
    CHECK(o.write_buffer_size == UINT64_C(64) << 20);
    CHECK(o.max_open_files == -1);
    CHECK(o.compression == RM_COMPRESSION_LZ4);
    CHECK(o.block_cache_size == UINT64_C(32) << 20);
    CHECK(rm_db_options_default(NULL) == RM_ERR_NULL_POINTER);
    CHECK(RM_MIN_WRITE_BUFFER_SIZE == 65536);
    CHECK((uint64_t)RM_MAX_WRITE_BUFFER_SIZE == UINT64_C(64) << 30);

    uint64_t m = 0;
    CHECK_RC(rm_manager_create(NULL, &m, &err), RM_OK);
    uint64_t live1 = rm_live_objects();
    char *doc = status_doc(m);
    char totals0[1024];
    totals_of(doc, totals0, sizeof totals0);
    CHECK(totals0[0] != '\0');
    free(doc);

    /* Out-of-range options: INVALID_ARGUMENT from both opens, before the disk is touched. */
    struct {
        const char *what;
        rm_db_options o;
    } bad[16];
    size_t nbad = 0;
#define BAD(label, field, value)                                                               \
    do {                                                                                       \
        bad[nbad].what = label;                                                                \
        rm_db_options_default(&bad[nbad].o);                                                   \
        bad[nbad].o.field = value;                                                             \
        nbad++;                                                                                \
    } while (0)
    BAD("write_buffer_size = RM_MIN_WRITE_BUFFER_SIZE - 1", write_buffer_size,
        RM_MIN_WRITE_BUFFER_SIZE - 1);
    BAD("write_buffer_size = 0", write_buffer_size, 0);
    BAD("write_buffer_size = RM_MAX_WRITE_BUFFER_SIZE + 1", write_buffer_size,
        (uint64_t)RM_MAX_WRITE_BUFFER_SIZE + 1);
    BAD("write_buffer_size = UINT64_MAX", write_buffer_size, UINT64_MAX);
    BAD("max_open_files = 0", max_open_files, 0);
    BAD("max_open_files = -2", max_open_files, -2);
    BAD("max_open_files = INT32_MIN", max_open_files, INT32_MIN);
    BAD("compression = RM_COMPRESSION_INHERIT", compression, RM_COMPRESSION_INHERIT);
    BAD("compression = 4", compression, 4);
    BAD("compression = 99", compression, 99);
    BAD("compression = UINT32_MAX", compression, UINT32_MAX);
    BAD("block_cache_size = 1 TiB + 1", block_cache_size, (UINT64_C(1) << 40) + 1);
    BAD("block_cache_size = UINT64_MAX", block_cache_size, UINT64_MAX);
#undef BAD
    const char *cfn[] = {"default", "data"};
    rm_cf_options cfo[] = {{"default", RM_COMPRESSION_INHERIT}, {"data", RM_COMPRESSION_ZSTD}};
    for (size_t i = 0; i < nbad; i++) {
        g_ctx = bad[i].what;
        uint64_t db = 777, cfs[2] = {777, 777};
        CHECK_RC(rm_db_open(m, "optdb", never, &bad[i].o, cfn, 2, &db, cfs, &err),
                 RM_ERR_INVALID_ARGUMENT);
        CHECK(db == 777 && cfs[0] == 777 && cfs[1] == 777);
        CHECK_RC(rm_db_open_cf(m, "optdb", never, &bad[i].o, cfo, 2, &db, cfs, &err),
                 RM_ERR_INVALID_ARGUMENT);
        CHECK(db == 777 && cfs[0] == 777 && cfs[1] == 777);
        CHECK(access(never, F_OK) != 0);
        CHECK(rm_live_objects() == live1);
    }
    g_ctx = NULL;

    /* Bad per-column-family options. */
    uint32_t bad_cf_compression[] = {4, 99, UINT32_MAX};
    for (size_t i = 0; i < sizeof bad_cf_compression / sizeof bad_cf_compression[0]; i++) {
        rm_cf_options c[] = {{"default", RM_COMPRESSION_NONE}, {"data", bad_cf_compression[i]}};
        uint64_t db = 777, cfs[2] = {777, 777};
        CHECK_RC(rm_db_open_cf(m, "optdb", never, NULL, c, 2, &db, cfs, &err),
                 RM_ERR_INVALID_ARGUMENT);
        CHECK(strstr(err.message, "compression") != NULL);
        CHECK(db == 777 && cfs[0] == 777 && cfs[1] == 777);
    }
    {
        uint64_t db = 777, cfs[2] = {777, 777};
        rm_cf_options null_name[] = {{"default", 0}, {NULL, 0}};
        CHECK_RC(rm_db_open_cf(m, "optdb", never, NULL, null_name, 2, &db, cfs, &err),
                 RM_ERR_NULL_POINTER);
        rm_cf_options empty_name[] = {{"default", 0}, {"", 0}};
        CHECK_RC(rm_db_open_cf(m, "optdb", never, NULL, empty_name, 2, &db, cfs, &err),
                 RM_ERR_INVALID_ARGUMENT);
        rm_cf_options twice[] = {{"x", RM_COMPRESSION_NONE}, {"x", RM_COMPRESSION_ZSTD}};
        CHECK_RC(rm_db_open_cf(m, "optdb", never, NULL, twice, 2, &db, cfs, &err),
                 RM_ERR_INVALID_ARGUMENT);
        CHECK_RC(rm_db_open_cf(m, "optdb", never, NULL, NULL, 2, &db, cfs, &err),
                 RM_ERR_NULL_POINTER);
        CHECK_RC(rm_db_open_cf(m, "optdb", never, NULL, cfo, 2, &db, NULL, &err),
                 RM_ERR_NULL_POINTER);
        CHECK_RC(rm_db_open_cf(m, "optdb", never, NULL, cfo, 2, NULL, cfs, &err),
                 RM_ERR_NULL_POINTER);
        CHECK_RC(rm_db_open_cf(m, "optdb", NULL, NULL, cfo, 2, &db, cfs, &err),
                 RM_ERR_NULL_POINTER);
        CHECK_RC(rm_db_open_cf(m, NULL, never, NULL, cfo, 2, &db, cfs, &err),
                 RM_ERR_NULL_POINTER);
        CHECK_RC(rm_db_open_cf(m, "optdb", never, NULL, cfo, (size_t)RM_MAX_COLUMN_FAMILIES + 1,
                               &db, cfs, &err),
                 RM_ERR_INVALID_ARGUMENT);
        CHECK(db == 777 && cfs[0] == 777 && cfs[1] == 777);
        CHECK(access(never, F_OK) != 0);
    }
    CHECK(rm_live_objects() == live1);
    /* Nothing was registered, closed or counted: the totals are exactly as before. */
    doc = status_doc(m);
    char totals1[1024];
    totals_of(doc, totals1, sizeof totals1);
    CHECK(strcmp(totals0, totals1) == 0);
    CHECK(doc != NULL && strstr(doc, "optdb") == NULL);
    free(doc);

    /* Values at the edges are accepted and applied. The smallest memtable, a small file
     * limit (RocksDB raises it to its own minimum), no compression, no block cache: 200
     * values of 400 bytes overflow the 64 KiB memtable, so reads also come from table files. */
    const char *dflt_only[] = {"default"};
    rm_db_options tiny;
    rm_db_options_default(&tiny);
    tiny.write_buffer_size = RM_MIN_WRITE_BUFFER_SIZE;
    tiny.max_open_files = 16;
    tiny.compression = RM_COMPRESSION_NONE;
    tiny.block_cache_size = 0;
    uint64_t db = 0, cf = 0;
    if (CHECK(open_db(m, "tiny", a_dir, &tiny, dflt_only, 1, &db, &cf))) {
        char key[16], val[401];
        memset(val, 'z', 400);
        val[400] = '\0';
        bool all_ok = true;
        for (int i = 0; i < 200; i++) {
            snprintf(key, sizeof key, "key%04d", i);
            memcpy(val, key, 7);
            all_ok &= rm_put(cf, S(key), S(val), NULL) == RM_OK;
        }
        CHECK(all_ok);
        all_ok = true;
        for (int i = 0; i < 200; i += 7) {
            snprintf(key, sizeof key, "key%04d", i);
            memcpy(val, key, 7);
            all_ok &= value_is(cf, 0, key, val);
        }
        CHECK(all_ok);
        rm_memory mem;
        CHECK_RC(rm_db_memory(db, &mem, &err), RM_OK);
        CHECK(mem.block_cache == 0); /* block caching disabled */
        CHECK(mem.mem_table_total > 0);
        CHECK_RC(rm_close(m, db, &err), RM_OK);
        char comp[64];
        cf_compression(a_dir, "default", comp, sizeof comp);
        if (!CHECK(strcmp(comp, "kNoCompression") == 0)) {
            fprintf(stderr, "      OPTIONS: default compression=%s\n", comp);
        }
    }
    /* The largest values are accepted too (memtables and the cache are allocated lazily),
     * with Zstandard. */
    rm_db_options big;
    rm_db_options_default(&big);
    big.write_buffer_size = RM_MAX_WRITE_BUFFER_SIZE;
    big.block_cache_size = UINT64_C(1) << 40;
    big.max_open_files = INT32_MAX;
    big.compression = RM_COMPRESSION_ZSTD;
    if (CHECK(open_db(m, "big", b_dir, &big, dflt_only, 1, &db, &cf))) {
        CHECK_RC(rm_put(cf, S("k"), S("v"), &err), RM_OK);
        CHECK(value_is(cf, 0, "k", "v"));
        CHECK_RC(rm_close(m, db, &err), RM_OK);
        char comp[64];
        cf_compression(b_dir, "default", comp, sizeof comp);
        if (!CHECK(strcmp(comp, "kZSTD") == 0)) {
            fprintf(stderr, "      OPTIONS: default compression=%s\n", comp);
        }
    }
    CHECK(rm_live_objects() == live1);
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
    CHECK(rm_live_objects() == live0);
}

static void test_open_cf_compression(void) {
    BEGIN_TEST();
    uint64_t live0 = rm_live_objects();
    const char *dir = make_tmpdir();
    if (!CHECK(dir != NULL)) {
        return;
    }
    uint64_t m = 0;
    CHECK_RC(rm_manager_create(NULL, &m, &err), RM_OK);
    uint64_t live1 = rm_live_objects();

    /* Each family chooses, or inherits the DB's compression (Zstandard here). */
    rm_db_options o;
    rm_db_options_default(&o);
    o.compression = RM_COMPRESSION_ZSTD;
    rm_cf_options cfo[] = {{"default", RM_COMPRESSION_LZ4},
                           {"plain", RM_COMPRESSION_NONE},
                           {"inh", RM_COMPRESSION_INHERIT}};
    const char *want1[] = {"kLZ4Compression", "kNoCompression", "kZSTD"};
    enum { NCF = 3 };
    uint64_t db = 0, cfs[NCF] = {0};
    if (!CHECK_RC(rm_db_open_cf(m, "comp", dir, &o, cfo, NCF, &db, cfs, &err), RM_OK)) {
        rm_manager_destroy(m, NULL);
        return;
    }
    CHECK(rm_live_objects() == live1 + 1 + NCF);
    bool distinct = db != 0;
    for (int i = 0; i < NCF; i++) {
        distinct &= cfs[i] != 0 && cfs[i] != db;
        for (int j = 0; j < i; j++) {
            distinct &= cfs[i] != cfs[j];
        }
    }
    CHECK(distinct);
    /* Compressible values in every family. */
    char key[16], val[128];
    bool all_ok = true;
    for (int c = 0; c < NCF; c++) {
        for (int i = 0; i < 12; i++) {
            snprintf(key, sizeof key, "k%02d", i);
            snprintf(val, sizeof val, "%s-%s-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                     cfo[c].name, key);
            all_ok &= rm_put_opt(cfs[c], S(key), S(val), 0, NULL) == RM_OK;
        }
    }
    CHECK(all_ok);
    CHECK(value_is(cfs[2], 0, "k03", "inh-k03-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
    CHECK_RC(rm_close(m, db, &err), RM_OK); /* flushes every family to a table file */
    for (int c = 0; c < NCF; c++) {
        char comp[64];
        cf_compression(dir, cfo[c].name, comp, sizeof comp);
        if (!CHECK(strcmp(comp, want1[c]) == 0)) {
            fprintf(stderr, "      '%s': compression=%s, expected %s\n", cfo[c].name, comp,
                    want1[c]);
        }
    }

    /* Reopen with other choices, listing two of the three families: the data is there, the
     * new choices are applied, and the family not listed is opened with the DB's
     * compression (none here) but gets no handle. */
    rm_db_options_default(&o);
    o.compression = RM_COMPRESSION_NONE;
    rm_cf_options cfo2[] = {{"inh", RM_COMPRESSION_INHERIT}, {"plain", RM_COMPRESSION_ZSTD}};
    uint64_t cfs2[2] = {0, 0};
    if (CHECK_RC(rm_db_open_cf(m, "comp", dir, &o, cfo2, 2, &db, cfs2, &err), RM_OK)) {
        CHECK(rm_live_objects() == live1 + 3);
        all_ok = true;
        for (int c = 0; c < 2; c++) {
            for (int i = 0; i < 12; i += 2) {
                snprintf(key, sizeof key, "k%02d", i);
                snprintf(val, sizeof val,
                         "%s-%s-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                         cfo2[c].name, key);
                all_ok &= value_is(cfs2[c], 0, key, val);
            }
        }
        CHECK(all_ok);
        char *doc = status_doc(m);
        CHECK(doc != NULL && strstr(doc, "\"column_families\":[") != NULL);
        /* Among the live resources: a handle for each family listed, none for the other. */
        const char *res = live_resources(doc);
        const char *closed = res ? strstr(res, "\"recently_closed\":[") : NULL;
        const char *inh = res ? strstr(res, "\"name\":\"comp/inh\"") : NULL;
        const char *dflt = res ? strstr(res, "\"name\":\"comp/default\"") : NULL;
        CHECK(closed != NULL && inh != NULL && inh < closed);
        CHECK(closed != NULL && (dflt == NULL || dflt > closed));
        free(doc);
        CHECK_RC(rm_close(m, db, &err), RM_OK);
        const char *names[] = {"default", "plain", "inh"};
        const char *want2[] = {"kNoCompression", "kZSTD", "kNoCompression"};
        for (int c = 0; c < 3; c++) {
            char comp[64];
            cf_compression(dir, names[c], comp, sizeof comp);
            if (!CHECK(strcmp(comp, want2[c]) == 0)) {
                fprintf(stderr, "      reopen '%s': compression=%s, expected %s\n", names[c],
                        comp, want2[c]);
            }
        }
    }
    CHECK(rm_live_objects() == live1);
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
    CHECK(rm_live_objects() == live0);
}

static void test_write_flags(void) {
    BEGIN_TEST();
    uint64_t live0 = rm_live_objects();
    const char *dir = make_tmpdir();
    if (!CHECK(dir != NULL)) {
        return;
    }
    uint64_t m = 0;
    CHECK_RC(rm_manager_create(NULL, &m, &err), RM_OK);
    const char *cfn[] = {"default"};
    uint64_t db = 0, cfs[1] = {0};
    if (!CHECK(open_db(m, "wf", dir, NULL, cfn, 1, &db, cfs))) {
        rm_manager_destroy(m, NULL);
        return;
    }
    uint64_t d = cfs[0];
    CHECK_RC(rm_put_opt(d, S("plain"), S("p"), 0, &err), RM_OK);
    CHECK_RC(rm_put_opt(d, S("synced"), S("s"), RM_WRITE_SYNC, &err), RM_OK);
    CHECK_RC(rm_put_opt(d, S("nowal"), S("n"), RM_WRITE_DISABLE_WAL, &err), RM_OK);
    CHECK(value_is(d, 0, "plain", "p"));
    CHECK(value_is(d, 0, "synced", "s"));
    CHECK(value_is(d, 0, "nowal", "n"));

    /* Unknown bits and the contradictory pair: refused, nothing written or deleted. */
    uint32_t bad[] = {RM_WRITE_SYNC | RM_WRITE_DISABLE_WAL, 4, 8, 0x100, UINT32_C(0x80000000),
                      UINT32_MAX, RM_WRITE_SYNC | 4};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_RC(rm_put_opt(d, S("bad"), S("x"), bad[i], &err), RM_ERR_INVALID_ARGUMENT);
        CHECK_RC(rm_delete_opt(d, S("plain"), bad[i], &err), RM_ERR_INVALID_ARGUMENT);
    }
    CHECK(value_is(d, 0, "bad", NULL));
    CHECK(value_is(d, 0, "plain", "p"));

    CHECK_RC(rm_put_opt(d, S("del1"), S("1"), 0, &err), RM_OK);
    CHECK_RC(rm_put_opt(d, S("del2"), S("2"), 0, &err), RM_OK);
    CHECK_RC(rm_put_opt(d, S("del3"), S("3"), 0, &err), RM_OK);
    CHECK_RC(rm_delete_opt(d, S("del1"), 0, &err), RM_OK);
    CHECK_RC(rm_delete_opt(d, S("del2"), RM_WRITE_SYNC, &err), RM_OK);
    CHECK_RC(rm_delete_opt(d, S("del3"), RM_WRITE_DISABLE_WAL, &err), RM_OK);
    CHECK_RC(rm_delete_opt(d, S("never-existed"), RM_WRITE_SYNC, &err), RM_OK);
    CHECK(value_is(d, 0, "del1", NULL));
    CHECK(value_is(d, 0, "del2", NULL));
    CHECK(value_is(d, 0, "del3", NULL));

    /* NULL with a length; NULL with length 0 is an empty key or value. */
    CHECK_RC(rm_put_opt(d, NULL, 1, S("v"), 0, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_put_opt(d, S("k"), NULL, 1, 0, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_delete_opt(d, NULL, 1, 0, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_put_opt(d, NULL, 0, NULL, 0, RM_WRITE_SYNC, &err), RM_OK);
    CHECK(value_is(d, 0, "", ""));
    CHECK_RC(rm_delete_opt(d, NULL, 0, RM_WRITE_DISABLE_WAL, &err), RM_OK);
    CHECK(value_is(d, 0, "", NULL));

    /* Lengths over isize::MAX are refused before anything is read. */
    uint8_t small[8] = {0};
    size_t len = 0;
    CHECK_RC(rm_put_opt(d, small, SIZE_MAX, small, 1, 0, &err), RM_ERR_INVALID_ARGUMENT);
    CHECK_RC(rm_put_opt(d, small, 1, small, SIZE_MAX, 0, &err), RM_ERR_INVALID_ARGUMENT);
    CHECK_RC(rm_delete_opt(d, small, SIZE_MAX, 0, &err), RM_ERR_INVALID_ARGUMENT);
    CHECK_RC(rm_get_opt(d, 0, 0, small, SIZE_MAX, NULL, 0, &len, &err), RM_ERR_INVALID_ARGUMENT);
    CHECK_RC(rm_get_opt(d, 0, 0, S("plain"), small, SIZE_MAX, &len, &err),
             RM_ERR_INVALID_ARGUMENT);

    /* A graceful close flushes: the write made without the WAL is there after a reopen. */
    CHECK_RC(rm_put_opt(d, S("nowal2"), S("n2"), RM_WRITE_DISABLE_WAL, &err), RM_OK);
    CHECK_RC(rm_close(m, db, &err), RM_OK);
    CHECK_RC(rm_put_opt(d, S("late"), S("x"), 0, &err), RM_ERR_CLOSED);
    CHECK_RC(rm_delete_opt(d, S("plain"), RM_WRITE_SYNC, &err), RM_ERR_CLOSED);
    if (CHECK(open_db(m, "wf", dir, NULL, cfn, 1, &db, cfs))) {
        d = cfs[0];
        CHECK(value_is(d, 0, "plain", "p"));
        CHECK(value_is(d, 0, "synced", "s"));
        CHECK(value_is(d, 0, "nowal", "n"));
        CHECK(value_is(d, 0, "nowal2", "n2"));
        CHECK(value_is(d, 0, "del1", NULL));
        CHECK(value_is(d, 0, "del3", NULL));
        CHECK(value_is(d, 0, "late", NULL));
    }
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
    CHECK(rm_live_objects() == live0);
}

static void test_batch(void) {
    BEGIN_TEST();
    uint64_t live0 = rm_live_objects();
    const char *dir = make_tmpdir();
    if (!CHECK(dir != NULL)) {
        return;
    }
    uint64_t m = 0;
    CHECK_RC(rm_manager_create(NULL, &m, &err), RM_OK);
    const char *cfn[] = {"default", "b"};
    uint64_t db = 0, cfs[2] = {0, 0};
    if (!CHECK(open_db(m, "bt", dir, NULL, cfn, 2, &db, cfs))) {
        rm_manager_destroy(m, NULL);
        return;
    }
    uint64_t live1 = rm_live_objects();
    uint64_t a = cfs[0], b = cfs[1];
    char key[16], val[32];
    CHECK_RC(rm_put(a, S("old"), S("o"), &err), RM_OK);
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "k%02d", i);
        snprintf(val, sizeof val, "val-%s", key);
        CHECK_RC(rm_put(b, S(key), S(val), &err), RM_OK);
    }

    uint64_t batch = 0;
    CHECK_RC(rm_batch_create(db, &batch, &err), RM_OK);
    CHECK(batch != 0);
    CHECK(rm_live_objects() == live1 + 1);
    size_t count = 99;
    CHECK_RC(rm_batch_count(batch, &count, &err), RM_OK);
    CHECK(count == 0);

    /* Two families, one batch: nothing is visible before the write, everything after. */
    CHECK_RC(rm_batch_put(batch, a, S("x"), S("1"), &err), RM_OK);
    CHECK_RC(rm_batch_put(batch, b, S("y"), S("2"), &err), RM_OK);
    CHECK_RC(rm_batch_delete(batch, a, S("old"), &err), RM_OK);
    CHECK_RC(rm_batch_delete_range(batch, b, S("k03"), S("k07"), &err), RM_OK);
    CHECK_RC(rm_batch_count(batch, &count, &err), RM_OK);
    CHECK(count == 4);
    CHECK(value_is(a, 0, "x", NULL));
    CHECK(value_is(b, 0, "y", NULL));
    CHECK(value_is(a, 0, "old", "o"));
    CHECK(value_is(b, 0, "k03", "val-k03"));
    CHECK_RC(rm_batch_write(batch, 0, &err), RM_OK);
    CHECK(value_is(a, 0, "x", "1"));
    CHECK(value_is(b, 0, "y", "2"));
    CHECK(value_is(a, 0, "old", NULL));
    CHECK(value_is(b, 0, "x", NULL)); /* each put went to its own family */
    CHECK(value_is(a, 0, "y", NULL));
    /* delete_range is [begin, end). */
    CHECK(value_is(b, 0, "k02", "val-k02"));
    CHECK(value_is(b, 0, "k03", NULL));
    CHECK(value_is(b, 0, "k05", NULL));
    CHECK(value_is(b, 0, "k06", NULL));
    CHECK(value_is(b, 0, "k07", "val-k07"));
    /* The write emptied the batch; a second write writes nothing. */
    CHECK_RC(rm_batch_count(batch, &count, &err), RM_OK);
    CHECK(count == 0);
    CHECK_RC(rm_put(a, S("x"), S("changed"), &err), RM_OK);
    CHECK_RC(rm_put(a, S("old"), S("back"), &err), RM_OK);
    CHECK_RC(rm_batch_write(batch, 0, &err), RM_OK);
    CHECK(value_is(a, 0, "x", "changed"));
    CHECK(value_is(a, 0, "old", "back"));
    CHECK_RC(rm_batch_count(batch, &count, &err), RM_OK);
    CHECK(count == 0);

    /* Clear drops what was added. */
    CHECK_RC(rm_batch_put(batch, a, S("c1"), S("c"), &err), RM_OK);
    CHECK_RC(rm_batch_delete(batch, a, S("x"), &err), RM_OK);
    CHECK_RC(rm_batch_count(batch, &count, &err), RM_OK);
    CHECK(count == 2);
    CHECK_RC(rm_batch_clear(batch, &err), RM_OK);
    CHECK_RC(rm_batch_count(batch, &count, &err), RM_OK);
    CHECK(count == 0);
    CHECK_RC(rm_batch_write(batch, 0, &err), RM_OK);
    CHECK(value_is(a, 0, "c1", NULL));
    CHECK(value_is(a, 0, "x", "changed"));

    /* An empty range deletes nothing; begin > end is refused and adds nothing. */
    CHECK_RC(rm_batch_delete_range(batch, b, S("k08"), S("k08"), &err), RM_OK);
    CHECK_RC(rm_batch_delete_range(batch, b, S("k09"), S("k01"), &err), RM_ERR_INVALID_ARGUMENT);
    CHECK_RC(rm_batch_delete_range(batch, b, S("k1"), S("k09"), &err), RM_ERR_INVALID_ARGUMENT);
    CHECK_RC(rm_batch_delete_range(batch, b, S("k08x"), S("k08"), &err), RM_ERR_INVALID_ARGUMENT);
    CHECK_RC(rm_batch_count(batch, &count, &err), RM_OK);
    CHECK(count == 1);
    CHECK_RC(rm_batch_write(batch, RM_WRITE_SYNC, &err), RM_OK);
    CHECK(value_is(b, 0, "k08", "val-k08"));
    /* An empty begin (NULL, 0) is the empty key: everything below end goes. */
    CHECK_RC(rm_batch_delete_range(batch, b, NULL, 0, S("k08"), &err), RM_OK);
    CHECK_RC(rm_batch_write(batch, RM_WRITE_DISABLE_WAL, &err), RM_OK);
    CHECK(value_is(b, 0, "k00", NULL));
    CHECK(value_is(b, 0, "k07", NULL));
    CHECK(value_is(b, 0, "k08", "val-k08"));
    CHECK(value_is(b, 0, "y", "2"));

    /* Bad write flags: refused, the content is kept for a retry. */
    CHECK_RC(rm_batch_put(batch, a, S("retry"), S("r"), &err), RM_OK);
    CHECK_RC(rm_batch_write(batch, RM_WRITE_SYNC | RM_WRITE_DISABLE_WAL, &err),
             RM_ERR_INVALID_ARGUMENT);
    CHECK_RC(rm_batch_write(batch, 4, &err), RM_ERR_INVALID_ARGUMENT);
    CHECK_RC(rm_batch_write(batch, UINT32_MAX, &err), RM_ERR_INVALID_ARGUMENT);
    CHECK_RC(rm_batch_count(batch, &count, &err), RM_OK);
    CHECK(count == 1);
    CHECK(value_is(a, 0, "retry", NULL));
    CHECK_RC(rm_batch_write(batch, 0, &err), RM_OK);
    CHECK(value_is(a, 0, "retry", "r"));

    /* Argument errors add nothing. */
    uint64_t h = 777;
    CHECK_RC(rm_batch_create(db, NULL, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_batch_count(batch, NULL, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_batch_put(batch, a, NULL, 1, S("v"), &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_batch_put(batch, a, S("k"), NULL, 1, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_batch_delete(batch, a, NULL, 1, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_batch_delete_range(batch, a, NULL, 1, S("z"), &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_batch_delete_range(batch, a, S("a"), NULL, 1, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_batch_count(batch, &count, &err), RM_OK);
    CHECK(count == 0);
    CHECK(rm_live_objects() == live1 + 1);
    /* Empty key and value are fine. */
    CHECK_RC(rm_batch_put(batch, a, NULL, 0, NULL, 0, &err), RM_OK);
    /* Many operations. */
    bool all_ok = true;
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "many%03d", i);
        all_ok &= rm_batch_put(batch, i % 2 ? a : b, S(key), S(key), NULL) == RM_OK;
    }
    CHECK(all_ok);
    CHECK_RC(rm_batch_count(batch, &count, &err), RM_OK);
    CHECK(count == 101);
    CHECK_RC(rm_batch_write(batch, 0, &err), RM_OK);
    CHECK(value_is(a, 0, "", ""));
    CHECK(value_is(a, 0, "many099", "many099"));
    CHECK(value_is(b, 0, "many098", "many098"));
    CHECK(value_is(a, 0, "many098", NULL));

    /* Close: twice is ALREADY_CLOSED; every batch call afterwards is CLOSED. */
    CHECK_RC(rm_close(m, batch, &err), RM_OK);
    CHECK(rm_live_objects() == live1);
    CHECK_RC(rm_close(m, batch, &err), RM_ERR_ALREADY_CLOSED);
    batch_all_calls(batch, a, RM_ERR_CLOSED, "batch after its close");

    /* A batch left open closes with its DB. */
    uint64_t b2 = 0;
    CHECK_RC(rm_batch_create(db, &b2, &err), RM_OK);
    CHECK_RC(rm_batch_put(b2, a, S("unwritten"), S("u"), &err), RM_OK);
    CHECK_RC(rm_close(m, db, &err), RM_OK);
    batch_all_calls(b2, a, RM_ERR_CLOSED, "batch after its DB's close");
    CHECK_RC(rm_close(m, b2, &err), RM_ERR_ALREADY_CLOSED);
    CHECK_RC(rm_batch_create(db, &h, &err), RM_ERR_CLOSED);
    CHECK(h == 777);
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
    CHECK(rm_live_objects() == live0);
}

static void test_snapshot(void) {
    BEGIN_TEST();
    uint64_t live0 = rm_live_objects();
    const char *dir = make_tmpdir();
    if (!CHECK(dir != NULL)) {
        return;
    }
    uint64_t m = 0;
    CHECK_RC(rm_manager_create(NULL, &m, &err), RM_OK);
    const char *cfn[] = {"default", "s"};
    uint64_t db = 0, cfs[2] = {0, 0};
    if (!CHECK(open_db(m, "snap", dir, NULL, cfn, 2, &db, cfs))) {
        rm_manager_destroy(m, NULL);
        return;
    }
    uint64_t live1 = rm_live_objects();
    uint64_t s = cfs[1], dflt = cfs[0];
    CHECK_RC(rm_put(s, S("k1"), S("v1"), &err), RM_OK);
    CHECK_RC(rm_put(s, S("k3"), S("three"), &err), RM_OK);

    uint64_t snap = 0;
    CHECK_RC(rm_snapshot_create(db, &snap, &err), RM_OK);
    CHECK(snap != 0);
    CHECK(rm_live_objects() == live1 + 1);

    CHECK_RC(rm_put(s, S("k1"), S("v1-a-longer-one"), &err), RM_OK);
    CHECK_RC(rm_put(s, S("k2"), S("new"), &err), RM_OK);
    CHECK_RC(rm_delete(s, S("k3"), &err), RM_OK);
    CHECK_RC(rm_put(dflt, S("d"), S("1"), &err), RM_OK);
    CHECK_RC(rm_batch_create(db, &(uint64_t){0}, &err), RM_OK); /* closed by the DB close */

    /* get_opt at the snapshot sees the past, without it the present. */
    CHECK(value_is(s, snap, "k1", "v1"));
    CHECK(value_is(s, snap, "k2", NULL));
    CHECK(value_is(s, snap, "k3", "three"));
    CHECK(value_is(dflt, snap, "d", NULL)); /* the snapshot covers every family */
    CHECK(value_is(s, 0, "k1", "v1-a-longer-one"));
    CHECK(value_is(s, 0, "k2", "new"));
    CHECK(value_is(s, 0, "k3", NULL));
    /* Read flags. */
    uint8_t buf[64];
    size_t len = 0;
    for (uint32_t f = 0; f <= 3; f++) {
        CHECK_RC(rm_get_opt(s, snap, f, S("k1"), buf, sizeof buf, &len, &err), RM_OK);
        CHECK(len == 2 && memcmp(buf, "v1", 2) == 0);
    }
    uint32_t bad_flags[] = {4, 8, 0x100, UINT32_C(0x80000000), UINT32_MAX};
    for (size_t i = 0; i < sizeof bad_flags / sizeof bad_flags[0]; i++) {
        len = 777;
        CHECK_RC(rm_get_opt(s, snap, bad_flags[i], S("k1"), buf, sizeof buf, &len, &err),
                 RM_ERR_INVALID_ARGUMENT);
        CHECK_RC(rm_get_opt(s, 0, bad_flags[i], S("k1"), buf, sizeof buf, &len, &err),
                 RM_ERR_INVALID_ARGUMENT);
        CHECK(len == 777);
    }
    /* Too small a buffer: the size at the snapshot, nothing copied; the retry succeeds. */
    memset(buf, '#', sizeof buf);
    len = 0;
    CHECK_RC(rm_get_opt(s, snap, 0, S("k1"), buf, 1, &len, &err), RM_ERR_BUFFER_TOO_SMALL);
    CHECK(len == 2 && buf[0] == '#');
    CHECK_RC(rm_get_opt(s, 0, 0, S("k1"), buf, 2, &len, &err), RM_ERR_BUFFER_TOO_SMALL);
    CHECK(len == 15 && buf[0] == '#');
    CHECK_RC(rm_get_opt(s, 0, RM_READ_NO_FILL_CACHE, S("k1"), NULL, 0, &len, &err),
             RM_ERR_BUFFER_TOO_SMALL);
    CHECK(len == 15);
    CHECK_RC(rm_get_opt(s, 0, 0, S("k1"), buf, 15, &len, &err), RM_OK);
    CHECK(len == 15 && memcmp(buf, "v1-a-longer-one", 15) == 0);
    CHECK_RC(rm_get_opt(s, snap, 0, S("k2"), NULL, 0, &len, &err), RM_ERR_NOT_FOUND);
    /* NULL pointers, overlap. */
    CHECK_RC(rm_get_opt(s, snap, 0, S("k1"), buf, sizeof buf, NULL, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_get_opt(s, snap, 0, NULL, 2, buf, sizeof buf, &len, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_get_opt(s, snap, 0, S("k1"), NULL, 8, &len, &err), RM_ERR_NULL_POINTER);
    memcpy(buf, "k1", 2);
    CHECK_RC(rm_get_opt(s, snap, 0, buf, 2, buf, sizeof buf, &len, &err),
             RM_ERR_INVALID_ARGUMENT);

    /* multi_get at the snapshot. */
    size_t lens[3] = {2, 2, 2};
    rm_value v[3];
    size_t needed = 0;
    CHECK_RC(rm_multi_get(&s, 1, snap, 0, B("k1k2k3"), lens, 3, buf, sizeof buf, v, &needed, &err),
             RM_OK);
    CHECK(v[0].code == RM_OK && v[0].len == 2 && memcmp(buf + v[0].offset, "v1", 2) == 0);
    CHECK(v[1].code == RM_ERR_NOT_FOUND && v[1].len == 0);
    CHECK(v[2].code == RM_OK && v[2].len == 5 && memcmp(buf + v[2].offset, "three", 5) == 0);
    CHECK(needed == 7);
    CHECK_RC(rm_multi_get(&s, 1, 0, 0, B("k1k2k3"), lens, 3, buf, sizeof buf, v, &needed, &err),
             RM_OK);
    CHECK(v[0].code == RM_OK && v[0].len == 15);
    CHECK(v[1].code == RM_OK && v[1].len == 3 && memcmp(buf + v[1].offset, "new", 3) == 0);
    CHECK(v[2].code == RM_ERR_NOT_FOUND);
    CHECK(needed == 18);

    /* Iterators at the snapshot, created before and after later writes. */
    uint64_t it = 0;
    CHECK_RC(rm_iter_create(s, snap, 0, NULL, 0, NULL, 0, &it, &err), RM_OK);
    CHECK(seek_at(it, 'f', NULL, "k1"));
    uint8_t vb[32];
    CHECK_RC(rm_iter_value(it, vb, sizeof vb, &len, &err), RM_OK);
    CHECK(len == 2 && memcmp(vb, "v1", 2) == 0);
    CHECK_RC(rm_iter_next(it, NULL, &err), RM_OK);
    CHECK(at(it, "k3"));
    CHECK_RC(rm_iter_next(it, NULL, &err), RM_OK);
    CHECK(at(it, NULL));
    CHECK_RC(rm_put(s, S("k0"), S("zero"), &err), RM_OK);
    uint64_t it2 = 0;
    CHECK_RC(rm_iter_create(s, snap, RM_READ_NO_FILL_CACHE, NULL, 0, NULL, 0, &it2, &err), RM_OK);
    CHECK(seek_at(it2, 'f', NULL, "k1"));
    CHECK(seek_at(it2, 'l', NULL, "k3"));
    uint64_t it_now = 0;
    CHECK_RC(rm_iter_create(s, 0, 0, NULL, 0, NULL, 0, &it_now, &err), RM_OK);
    CHECK(seek_at(it_now, 'f', NULL, "k0"));
    CHECK(seek_at(it_now, 'l', NULL, "k2"));
    CHECK_RC(rm_close(m, it_now, &err), RM_OK);

    /* A second snapshot sees the present. */
    uint64_t snap2 = 0;
    CHECK_RC(rm_snapshot_create(db, &snap2, &err), RM_OK);
    CHECK(snap2 != 0 && snap2 != snap);
    CHECK_RC(rm_put(s, S("k1"), S("after-2"), &err), RM_OK);
    CHECK(value_is(s, snap2, "k1", "v1-a-longer-one"));
    CHECK(value_is(s, snap2, "k0", "zero"));
    CHECK(value_is(s, snap, "k0", NULL));

    /* Releasing the snapshot closes the iterators reading at it; every read at it is
     * CLOSED; the other snapshot is unaffected. */
    CHECK_RC(rm_close(m, snap, &err), RM_OK);
    iter_all_calls(it, RM_ERR_CLOSED, "iterator at a released snapshot");
    iter_all_calls(it2, RM_ERR_CLOSED, "second iterator at a released snapshot");
    CHECK_RC(rm_close(m, it, &err), RM_ERR_ALREADY_CLOSED);
    snapshot_param_calls(s, snap, RM_ERR_CLOSED, "released snapshot");
    CHECK_RC(rm_close(m, snap, &err), RM_ERR_ALREADY_CLOSED);
    CHECK(value_is(s, snap2, "k1", "v1-a-longer-one"));

    /* Argument and handle errors of rm_snapshot_create. */
    uint64_t h = 777;
    CHECK_RC(rm_snapshot_create(db, NULL, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_snapshot_create(s, &h, &err), RM_ERR_WRONG_KIND);
    CHECK_RC(rm_snapshot_create(0, &h, &err), RM_ERR_INVALID_HANDLE);
    CHECK(h == 777);

    CHECK_RC(rm_close(m, snap2, &err), RM_OK);
    CHECK_RC(rm_close(m, snap2, &err), RM_ERR_ALREADY_CLOSED);
    /* What is left: the batch. */
    CHECK(rm_live_objects() == live1 + 1);
    CHECK_RC(rm_close(m, db, &err), RM_OK);
    CHECK_RC(rm_snapshot_create(db, &h, &err), RM_ERR_CLOSED);
    CHECK(h == 777);
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
    CHECK(rm_live_objects() == live0);
}

static void test_iterators(void) {
    BEGIN_TEST();
    uint64_t live0 = rm_live_objects();
    const char *dir = make_tmpdir();
    if (!CHECK(dir != NULL)) {
        return;
    }
    uint64_t m = 0;
    CHECK_RC(rm_manager_create(NULL, &m, &err), RM_OK);
    const char *cfn[] = {"default", "t"};
    uint64_t db = 0, cfs[2] = {0, 0};
    if (!CHECK(open_db(m, "it", dir, NULL, cfn, 2, &db, cfs))) {
        rm_manager_destroy(m, NULL);
        return;
    }
    uint64_t live1 = rm_live_objects();
    uint64_t t = cfs[1], dflt = cfs[0];
    const char *keys[] = {"a", "b", "c", "d", "e"};
    char val[16];
    for (int i = 0; i < 5; i++) {
        snprintf(val, sizeof val, "val-%s", keys[i]);
        CHECK_RC(rm_put(t, S(keys[i]), S(val), &err), RM_OK);
    }
    CHECK_RC(rm_put(dflt, S("zz-other-family"), S("x"), &err), RM_OK);

    uint64_t it = 0;
    CHECK_RC(rm_iter_create(t, 0, 0, NULL, 0, NULL, 0, &it, &err), RM_OK);
    CHECK(it != 0);
    CHECK(rm_live_objects() == live1 + 1);

    /* Unpositioned: not valid, and moving or reading is refused. */
    bool valid = true;
    uint8_t kb[64], vb[64];
    size_t kl = 0, vl = 0;
    CHECK_RC(rm_iter_valid(it, &valid, &err), RM_OK);
    CHECK(!valid);
    CHECK_RC(rm_iter_next(it, &valid, &err), RM_ERR_ITERATOR_NOT_VALID);
    CHECK_RC(rm_iter_prev(it, &valid, &err), RM_ERR_ITERATOR_NOT_VALID);
    CHECK_RC(rm_iter_next(it, NULL, &err), RM_ERR_ITERATOR_NOT_VALID);
    CHECK_RC(rm_iter_key(it, kb, sizeof kb, &kl, &err), RM_ERR_ITERATOR_NOT_VALID);
    CHECK_RC(rm_iter_value(it, vb, sizeof vb, &vl, &err), RM_ERR_ITERATOR_NOT_VALID);
    CHECK_RC(rm_iter_entry(it, kb, sizeof kb, &kl, vb, sizeof vb, &vl, &err),
             RM_ERR_ITERATOR_NOT_VALID);

    /* Full scans both ways, then off the end. */
    CHECK(scan_is(it, true, "a,b,c,d,e", true));
    CHECK(at(it, NULL));
    CHECK_RC(rm_iter_next(it, &valid, &err), RM_ERR_ITERATOR_NOT_VALID);
    CHECK_RC(rm_iter_prev(it, &valid, &err), RM_ERR_ITERATOR_NOT_VALID);
    CHECK_RC(rm_iter_key(it, kb, sizeof kb, &kl, &err), RM_ERR_ITERATOR_NOT_VALID);
    CHECK_RC(rm_iter_value(it, vb, sizeof vb, &vl, &err), RM_ERR_ITERATOR_NOT_VALID);
    CHECK_RC(rm_iter_entry(it, kb, sizeof kb, &kl, vb, sizeof vb, &vl, &err),
             RM_ERR_ITERATOR_NOT_VALID);
    CHECK(scan_is(it, false, "e,d,c,b,a", true));
    CHECK_RC(rm_iter_prev(it, NULL, &err), RM_ERR_ITERATOR_NOT_VALID);
    /* Off the front with prev. */
    CHECK(seek_at(it, 'f', NULL, "a"));
    valid = true;
    CHECK_RC(rm_iter_prev(it, &valid, &err), RM_OK);
    CHECK(!valid);
    CHECK_RC(rm_iter_next(it, &valid, &err), RM_ERR_ITERATOR_NOT_VALID);

    /* Seek semantics: at or after; at or before. */
    CHECK(seek_at(it, 's', "c", "c"));
    CHECK(seek_at(it, 's', "cc", "d"));
    CHECK(seek_at(it, 's', "", "a"));
    CHECK(seek_at(it, 's', "e", "e"));
    CHECK(seek_at(it, 's', "f", NULL));
    CHECK(seek_at(it, 'p', "cc", "c"));
    CHECK(seek_at(it, 'p', "c", "c"));
    CHECK(seek_at(it, 'p', "zzz", "e"));
    CHECK(seek_at(it, 'p', "A", NULL)); /* 'A' < 'a' */
    CHECK(seek_at(it, 'l', NULL, "e"));
    /* Mixed moves. */
    CHECK(seek_at(it, 's', "c", "c"));
    CHECK_RC(rm_iter_next(it, &valid, &err), RM_OK);
    CHECK(valid && at(it, "d"));
    CHECK_RC(rm_iter_prev(it, &valid, &err), RM_OK);
    CHECK(valid && at(it, "c"));
    CHECK_RC(rm_iter_prev(it, &valid, &err), RM_OK);
    CHECK(valid && at(it, "b"));
    /* out_valid may be NULL everywhere it is an output of a move. */
    CHECK_RC(rm_iter_seek(it, S("b"), NULL, &err), RM_OK);
    CHECK_RC(rm_iter_next(it, NULL, &err), RM_OK);
    CHECK(at(it, "c"));
    CHECK_RC(rm_iter_prev(it, NULL, &err), RM_OK);
    CHECK(at(it, "b"));
    CHECK_RC(rm_iter_seek_to_last(it, NULL, &err), RM_OK);
    CHECK(at(it, "e"));
    CHECK_RC(rm_iter_seek_to_first(it, NULL, &err), RM_OK);
    CHECK(at(it, "a"));
    CHECK_RC(rm_iter_seek_for_prev(it, S("d"), NULL, &err), RM_OK);
    CHECK(at(it, "d"));
    CHECK_RC(rm_iter_seek(it, NULL, 0, NULL, &err), RM_OK); /* the empty key */
    CHECK(at(it, "a"));
    CHECK_RC(rm_iter_seek(it, NULL, 1, &valid, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_iter_seek_for_prev(it, NULL, 1, &valid, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_iter_valid(it, NULL, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_iter_seek(it, kb, SIZE_MAX, &valid, &err), RM_ERR_INVALID_ARGUMENT);
    CHECK_RC(rm_iter_key(it, kb, SIZE_MAX, &kl, &err), RM_ERR_INVALID_ARGUMENT);
    CHECK_RC(rm_iter_value(it, vb, SIZE_MAX, &vl, &err), RM_ERR_INVALID_ARGUMENT);
    CHECK(at(it, "a")); /* the refused calls did not move it */

    /* The iterator reads the data as of its creation. */
    CHECK_RC(rm_put(t, S("bb"), S("val-bb"), &err), RM_OK);
    CHECK(scan_is(it, true, "a,b,c,d,e", true));
    uint64_t it_new = 0;
    CHECK_RC(rm_iter_create(t, 0, 0, NULL, 0, NULL, 0, &it_new, &err), RM_OK);
    CHECK(scan_is(it_new, true, "a,b,bb,c,d,e", true));
    CHECK_RC(rm_close(m, it_new, &err), RM_OK);
    CHECK_RC(rm_delete(t, S("bb"), &err), RM_OK);

    /* Bounds: [lower, upper), upper exclusive. */
    uint64_t bi = 0;
    CHECK_RC(rm_iter_create(t, 0, 0, S("b"), S("d"), &bi, &err), RM_OK);
    CHECK(scan_is(bi, true, "b,c", true));
    CHECK(scan_is(bi, false, "c,b", true));
    CHECK(seek_at(bi, 's', "a", "b"));
    CHECK(seek_at(bi, 's', "c", "c"));
    CHECK(seek_at(bi, 's', "d", NULL));
    CHECK(seek_at(bi, 's', "e", NULL));
    CHECK(seek_at(bi, 'p', "z", "c"));
    CHECK(seek_at(bi, 'p', "d", "c"));
    CHECK(seek_at(bi, 'p', "b", "b"));
    CHECK(seek_at(bi, 'p', "a", NULL));
    CHECK(seek_at(bi, 's', "c", "c"));
    CHECK_RC(rm_iter_next(bi, &valid, &err), RM_OK);
    CHECK(!valid); /* d is the upper bound */
    CHECK(seek_at(bi, 's', "b", "b"));
    CHECK_RC(rm_iter_prev(bi, &valid, &err), RM_OK);
    CHECK(!valid); /* a is below the lower bound */
    CHECK_RC(rm_close(m, bi, &err), RM_OK);

    struct {
        const char *what;
        const char *lower, *upper; /* NULL: no bound */
        const char *want;
    } cases[] = {
        {"lower only", "c", NULL, "c,d,e"},
        {"upper only", NULL, "c", "a,b"},
        {"empty lower bound", "", "c", "a,b"},
        {"empty upper bound", NULL, "", ""},
        {"equal bounds", "c", "c", ""},
        {"bounds between keys", "aa", "cc", "b,c"},
        {"bounds past the keys", "x", "y", ""},
        {"wide bounds", "", "zzzz", "a,b,c,d,e"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        g_ctx = cases[i].what;
        uint64_t ci = 0;
        const char *lo = cases[i].lower, *up = cases[i].upper;
        if (CHECK_RC(rm_iter_create(t, 0, (uint32_t)i % 4, B(lo), lo ? strlen(lo) : 0, B(up),
                                    up ? strlen(up) : 0, &ci, &err),
                     RM_OK)) {
            CHECK(scan_is(ci, true, cases[i].want, true));
            char rev[64] = "";
            /* The same keys backwards. */
            const char *w = cases[i].want;
            size_t wl = strlen(w);
            size_t n = 0;
            for (size_t end = wl; end > 0;) {
                size_t start = end;
                while (start > 0 && w[start - 1] != ',') {
                    start--;
                }
                if (n > 0) {
                    rev[n++] = ',';
                }
                memcpy(rev + n, w + start, end - start);
                n += end - start;
                rev[n] = '\0';
                end = start > 0 ? start - 1 : 0;
            }
            CHECK(scan_is(ci, false, rev, true));
            CHECK_RC(rm_close(m, ci, &err), RM_OK);
        }
    }
    g_ctx = NULL;

    /* Refused creations leave nothing behind. */
    uint64_t h = 777;
    CHECK_RC(rm_iter_create(t, 0, 0, S("d"), S("b"), &h, &err), RM_ERR_INVALID_ARGUMENT);
    CHECK_RC(rm_iter_create(t, 0, 0, S("b"), S(""), &h, &err), RM_ERR_INVALID_ARGUMENT);
    CHECK_RC(rm_iter_create(t, 0, 0, S("bb"), S("b"), &h, &err), RM_ERR_INVALID_ARGUMENT);
    CHECK_RC(rm_iter_create(t, 0, 0, NULL, 3, NULL, 0, &h, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_iter_create(t, 0, 0, NULL, 0, NULL, 3, &h, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_iter_create(t, 0, 0, NULL, 0, NULL, 0, NULL, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_iter_create(t, 0, 0, kb, SIZE_MAX, NULL, 0, &h, &err), RM_ERR_INVALID_ARGUMENT);
    CHECK_RC(rm_iter_create(t, 0, 4, NULL, 0, NULL, 0, &h, &err), RM_ERR_INVALID_ARGUMENT);
    CHECK_RC(rm_iter_create(t, 0, UINT32_MAX, NULL, 0, NULL, 0, &h, &err),
             RM_ERR_INVALID_ARGUMENT);
    CHECK(h == 777);
    CHECK(rm_live_objects() == live1 + 1);

    /* key / value / entry copies and their buffer sizes. */
    const char *K = "entry-key-123456";                  /* 16 bytes */
    const char *V = "an entry value of 35 bytes, exactly"; /* 35 bytes */
    size_t klen = strlen(K), vlen = strlen(V);
    CHECK_RC(rm_put(dflt, S(K), S(V), &err), RM_OK);
    CHECK_RC(rm_put(dflt, S("entry-zero"), NULL, 0, &err), RM_OK);
    uint64_t ei = 0;
    CHECK_RC(rm_iter_create(dflt, 0, 0, S("entry-"), S("entry-~"), &ei, &err), RM_OK);
    CHECK(seek_at(ei, 's', K, K));
    memset(kb, '#', sizeof kb);
    CHECK_RC(rm_iter_key(ei, kb, klen, &kl, &err), RM_OK);
    CHECK(kl == klen && memcmp(kb, K, klen) == 0 && kb[klen] == '#');
    memset(kb, '#', sizeof kb);
    kl = 0;
    CHECK_RC(rm_iter_key(ei, kb, klen - 1, &kl, &err), RM_ERR_BUFFER_TOO_SMALL);
    CHECK(kl == klen && kb[0] == '#');
    kl = 0;
    CHECK_RC(rm_iter_key(ei, NULL, 0, &kl, &err), RM_ERR_BUFFER_TOO_SMALL);
    CHECK(kl == klen);
    CHECK_RC(rm_iter_key(ei, kb, sizeof kb, NULL, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_iter_key(ei, NULL, 8, &kl, &err), RM_ERR_NULL_POINTER);
    memset(vb, '#', sizeof vb);
    CHECK_RC(rm_iter_value(ei, vb, sizeof vb, &vl, &err), RM_OK);
    CHECK(vl == vlen && memcmp(vb, V, vlen) == 0 && vb[vlen] == '#');
    memset(vb, '#', sizeof vb);
    vl = 0;
    CHECK_RC(rm_iter_value(ei, vb, vlen - 1, &vl, &err), RM_ERR_BUFFER_TOO_SMALL);
    CHECK(vl == vlen && vb[0] == '#');
    CHECK_RC(rm_iter_value(ei, NULL, 0, &vl, &err), RM_ERR_BUFFER_TOO_SMALL);
    CHECK(vl == vlen);
    CHECK_RC(rm_iter_value(ei, vb, sizeof vb, NULL, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_iter_value(ei, NULL, 8, &vl, &err), RM_ERR_NULL_POINTER);
    /* entry: both or nothing. */
    memset(kb, '#', sizeof kb);
    memset(vb, '#', sizeof vb);
    kl = vl = 0;
    CHECK_RC(rm_iter_entry(ei, kb, klen, &kl, vb, vlen, &vl, &err), RM_OK);
    CHECK(kl == klen && vl == vlen && memcmp(kb, K, klen) == 0 && memcmp(vb, V, vlen) == 0);
    memset(kb, '#', sizeof kb);
    memset(vb, '#', sizeof vb);
    kl = vl = 0;
    CHECK_RC(rm_iter_entry(ei, kb, klen - 1, &kl, vb, sizeof vb, &vl, &err),
             RM_ERR_BUFFER_TOO_SMALL);
    CHECK(kl == klen && vl == vlen && kb[0] == '#' && vb[0] == '#');
    kl = vl = 0;
    CHECK_RC(rm_iter_entry(ei, kb, sizeof kb, &kl, vb, vlen - 1, &vl, &err),
             RM_ERR_BUFFER_TOO_SMALL);
    CHECK(kl == klen && vl == vlen && kb[0] == '#' && vb[0] == '#');
    kl = vl = 0;
    CHECK_RC(rm_iter_entry(ei, NULL, 0, &kl, NULL, 0, &vl, &err), RM_ERR_BUFFER_TOO_SMALL);
    CHECK(kl == klen && vl == vlen);
    CHECK_RC(rm_iter_entry(ei, kb, sizeof kb, NULL, vb, sizeof vb, &vl, &err),
             RM_ERR_NULL_POINTER);
    CHECK_RC(rm_iter_entry(ei, kb, sizeof kb, &kl, vb, sizeof vb, NULL, &err),
             RM_ERR_NULL_POINTER);
    CHECK_RC(rm_iter_entry(ei, NULL, 4, &kl, vb, sizeof vb, &vl, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_iter_entry(ei, kb, sizeof kb, &kl, NULL, 4, &vl, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_iter_entry(ei, kb, 32, &kl, kb + 16, 32, &vl, &err), RM_ERR_INVALID_ARGUMENT);
    /* The copies are the caller's: moving the iterator does not change them. */
    CHECK_RC(rm_iter_entry(ei, kb, sizeof kb, &kl, vb, sizeof vb, &vl, &err), RM_OK);
    CHECK_RC(rm_iter_next(ei, &valid, &err), RM_OK);
    CHECK(valid && at(ei, "entry-zero"));
    CHECK(kl == klen && memcmp(kb, K, klen) == 0 && vl == vlen && memcmp(vb, V, vlen) == 0);
    /* An empty value: length 0 fits in no buffer at all. */
    vl = 99;
    CHECK_RC(rm_iter_value(ei, NULL, 0, &vl, &err), RM_OK);
    CHECK(vl == 0);
    kl = vl = 99;
    CHECK_RC(rm_iter_entry(ei, kb, sizeof kb, &kl, NULL, 0, &vl, &err), RM_OK);
    CHECK(kl == 10 && vl == 0 && memcmp(kb, "entry-zero", 10) == 0);
    CHECK_RC(rm_iter_next(ei, &valid, &err), RM_OK);
    CHECK(!valid);

    /* Read flags on iterators. */
    uint64_t fi = 0;
    CHECK_RC(rm_iter_create(t, 0, RM_READ_NO_FILL_CACHE | RM_READ_NO_VERIFY_CHECKSUMS, NULL, 0,
                            NULL, 0, &fi, &err),
             RM_OK);
    CHECK(scan_is(fi, true, "a,b,c,d,e", true));

    /* Close: twice is ALREADY_CLOSED, every call afterwards CLOSED. */
    CHECK_RC(rm_close(m, it, &err), RM_OK);
    CHECK_RC(rm_close(m, it, &err), RM_ERR_ALREADY_CLOSED);
    iter_all_calls(it, RM_ERR_CLOSED, "iterator after its close");
    CHECK_RC(rm_close(m, ei, &err), RM_OK);
    CHECK(rm_live_objects() == live1 + 1); /* fi */

    /* Closing the column family closes its iterators. */
    CHECK_RC(rm_close(m, t, &err), RM_OK);
    iter_all_calls(fi, RM_ERR_CLOSED, "iterator after its column family's close");
    CHECK_RC(rm_iter_create(t, 0, 0, NULL, 0, NULL, 0, &h, &err), RM_ERR_CLOSED);
    CHECK(h == 777);
    CHECK(rm_live_objects() == live1 - 1);

    /* Closing the DB closes its iterators, positioned or not. */
    uint64_t pos = 0, unpos = 0;
    CHECK_RC(rm_iter_create(dflt, 0, 0, NULL, 0, NULL, 0, &pos, &err), RM_OK);
    CHECK_RC(rm_iter_create(dflt, 0, 0, NULL, 0, NULL, 0, &unpos, &err), RM_OK);
    CHECK(seek_at(pos, 'f', NULL, K));
    CHECK_RC(rm_close(m, db, &err), RM_OK);
    iter_all_calls(pos, RM_ERR_CLOSED, "positioned iterator after its DB's close");
    iter_all_calls(unpos, RM_ERR_CLOSED, "unpositioned iterator after its DB's close");
    CHECK_RC(rm_close(m, pos, &err), RM_ERR_ALREADY_CLOSED);
    CHECK_RC(rm_close(m, unpos, &err), RM_ERR_ALREADY_CLOSED);
    CHECK(rm_live_objects() == live1 - 3);
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
    CHECK(rm_live_objects() == live0);
}

/* A new manager with one DB ("default" only) in a new temporary directory; false (nothing
 * left open) when that fails. */
static bool one_db(const char *name, uint64_t *m, uint64_t *db, uint64_t *cf) {
    rm_error err;
    const char *dir = make_tmpdir();
    if (!CHECK(dir != NULL)) {
        return false;
    }
    CHECK_RC(rm_manager_create(NULL, m, &err), RM_OK);
    const char *cfn[] = {"default"};
    if (!CHECK(open_db(*m, name, dir, NULL, cfn, 1, db, cf))) {
        rm_manager_destroy(*m, NULL);
        return false;
    }
    return true;
}

/* Reads every entry from the iterator's position on with rm_iter_read_next (or _prev) into
 * a buffer of `cap` bytes, at most `max` per call, as "k=v,k=v"; false on any error. */
static bool read_all(uint64_t it, bool forward, size_t cap, size_t max, char *out, size_t out_cap,
                     int *calls) {
    uint8_t buf[512];
    rm_entry_len lens[32];
    rm_error e;
    size_t n = 0;
    out[0] = '\0';
    *calls = 0;
    bool valid = true;
    while (valid) {
        size_t count = 0;
        rm_result rc = forward ? rm_iter_read_next(it, buf, cap, lens, max, &count, &valid, &e)
                               : rm_iter_read_prev(it, buf, cap, lens, max, &count, &valid, &e);
        (*calls)++;
        if (rc != RM_OK || *calls > 100 || (count == 0 && valid)) {
            return false;
        }
        size_t at = 0;
        for (size_t i = 0; i < count; i++) {
            size_t need = lens[i].key_len + lens[i].value_len + 2;
            if (n + need >= out_cap) {
                return false;
            }
            if (n > 0) {
                out[n++] = ',';
            }
            memcpy(out + n, buf + at, lens[i].key_len);
            n += lens[i].key_len;
            out[n++] = '=';
            memcpy(out + n, buf + at + lens[i].key_len, lens[i].value_len);
            n += lens[i].value_len;
            at += lens[i].key_len + lens[i].value_len;
        }
        out[n] = '\0';
    }
    return true;
}

static void test_iter_read(void) {
    BEGIN_TEST();
    uint64_t live0 = rm_live_objects();
    uint64_t m = 0, db = 0, cf = 0;
    if (!one_db("rd", &m, &db, &cf)) {
        return;
    }
    /* k0=v0 ... k9=v9: 2-byte keys, 2-byte values. */
    char k[4], v[4];
    for (int i = 0; i < 10; i++) {
        snprintf(k, sizeof k, "k%d", i);
        snprintf(v, sizeof v, "v%d", i);
        CHECK_RC(rm_put(cf, S(k), S(v), &err), RM_OK);
    }
    const char *all = "k0=v0,k1=v1,k2=v2,k3=v3,k4=v4,k5=v5,k6=v6,k7=v7,k8=v8,k9=v9";
    const char *rev = "k9=v9,k8=v8,k7=v7,k6=v6,k5=v5,k4=v4,k3=v3,k2=v2,k1=v1,k0=v0";
    uint64_t it = 0;
    CHECK_RC(rm_iter_create(cf, 0, 0, NULL, 0, NULL, 0, &it, &err), RM_OK);

    uint8_t buf[64];
    rm_entry_len lens[8];
    size_t count = 99;
    bool valid = true;
    /* Unpositioned: nothing to read, and that is not an error. */
    CHECK_RC(rm_iter_read_next(it, buf, sizeof buf, lens, 8, &count, &valid, &err), RM_OK);
    CHECK(count == 0 && !valid);

    /* Whole scans, forward and back, in calls of 1, 3 and 8 entries and with buffers that
     * hold 1, 2 and many entries: always the same entries, in order. */
    char got[256];
    int calls = 0;
    size_t maxes[] = {1, 3, 8};
    size_t caps[] = {4, 9, 512};
    for (size_t a = 0; a < 3; a++) {
        for (size_t b = 0; b < 3; b++) {
            CHECK_RC(rm_iter_seek_to_first(it, &valid, &err), RM_OK);
            CHECK(read_all(it, true, caps[b], maxes[a], got, sizeof got, &calls));
            CHECK(strcmp(got, all) == 0);
            size_t per = maxes[a] < caps[b] / 4 ? maxes[a] : caps[b] / 4;
            /* The call that copies the last entry also reports the end. */
            CHECK(calls == (int)((10 + per - 1) / per));
            CHECK_RC(rm_iter_seek_to_last(it, &valid, &err), RM_OK);
            CHECK(read_all(it, false, caps[b], maxes[a], got, sizeof got, &calls));
            CHECK(strcmp(got, rev) == 0);
        }
    }
    /* At the end: count 0, not valid, RM_OK. */
    CHECK_RC(rm_iter_read_next(it, buf, sizeof buf, lens, 8, &count, &valid, &err), RM_OK);
    CHECK(count == 0 && !valid);

    /* The iterator is left on the first entry not copied. */
    CHECK_RC(rm_iter_seek(it, S("k2"), &valid, &err), RM_OK);
    CHECK_RC(rm_iter_read_next(it, buf, sizeof buf, lens, 3, &count, &valid, &err), RM_OK);
    CHECK(count == 3 && valid && at(it, "k5"));
    CHECK(lens[0].key_len == 2 && lens[0].value_len == 2 && memcmp(buf, "k2v2k3v3k4v4", 12) == 0);
    CHECK_RC(rm_iter_read_prev(it, buf, sizeof buf, lens, 2, &count, &valid, &err), RM_OK);
    CHECK(count == 2 && valid && at(it, "k3") && memcmp(buf, "k5v5k4v4", 8) == 0);
    /* Stopped by the buffer: 9 bytes hold two 4-byte entries, not three. */
    CHECK_RC(rm_iter_read_next(it, buf, 9, lens, 8, &count, &valid, &err), RM_OK);
    CHECK(count == 2 && valid && at(it, "k5"));
    /* out_valid may be NULL. */
    CHECK_RC(rm_iter_read_next(it, buf, sizeof buf, lens, 1, &count, NULL, &err), RM_OK);
    CHECK(count == 1 && at(it, "k6"));
    /* max_entries 0 reads nothing and reports the position; out_lens may then be NULL. */
    CHECK_RC(rm_iter_read_next(it, buf, sizeof buf, NULL, 0, &count, &valid, &err), RM_OK);
    CHECK(count == 0 && valid && at(it, "k6"));

    /* The current entry alone does not fit: nothing copied, nothing moved, its size told. */
    memset(buf, '#', sizeof buf);
    lens[0].key_len = lens[0].value_len = 99;
    count = 99;
    CHECK_RC(rm_iter_read_next(it, buf, 3, lens, 8, &count, &valid, &err), RM_ERR_BUFFER_TOO_SMALL);
    CHECK(count == 0 && lens[0].key_len == 2 && lens[0].value_len == 2 && buf[0] == '#');
    CHECK(at(it, "k6"));
    CHECK_RC(rm_iter_read_prev(it, NULL, 0, lens, 8, &count, &valid, &err), RM_ERR_BUFFER_TOO_SMALL);
    CHECK(count == 0 && lens[0].key_len == 2 && at(it, "k6"));

    /* Bad arguments: each refused, the iterator unmoved, the outputs untouched. */
    count = 77;
    valid = false;
    lens[0].key_len = 55;
    CHECK_RC(rm_iter_read_next(it, buf, sizeof buf, lens, 8, NULL, &valid, &err),
             RM_ERR_NULL_POINTER);
    CHECK_RC(rm_iter_read_next(it, buf, sizeof buf, NULL, 1, &count, &valid, &err),
             RM_ERR_NULL_POINTER);
    CHECK_RC(rm_iter_read_next(it, NULL, 8, lens, 8, &count, &valid, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_iter_read_prev(it, (uint8_t *)lens, sizeof lens, lens, 8, &count, &valid, &err),
             RM_ERR_INVALID_ARGUMENT);
    CHECK_RC(rm_iter_read_next(it, (uint8_t *)&lens[4], 16, lens, 8, &count, &valid, &err),
             RM_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "overlap") != NULL);
    uint64_t raw[9];
    CHECK_RC(rm_iter_read_next(it, buf, sizeof buf, (rm_entry_len *)((char *)raw + 1), 2, &count,
                               &valid, &err),
             RM_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "aligned") != NULL);
    CHECK_RC(rm_iter_read_next(it, buf, sizeof buf, lens, SIZE_MAX / 4, &count, &valid, &err),
             RM_ERR_INVALID_ARGUMENT);
    CHECK(at(it, "k6") && count == 77 && !valid && lens[0].key_len == 55);

    /* Bounds hold: [k3, k6). */
    uint64_t bi = 0;
    CHECK_RC(rm_iter_create(cf, 0, 0, S("k3"), S("k6"), &bi, &err), RM_OK);
    CHECK_RC(rm_iter_seek_to_first(bi, &valid, &err), RM_OK);
    CHECK(read_all(bi, true, sizeof buf, 8, got, sizeof got, &calls));
    CHECK(strcmp(got, "k3=v3,k4=v4,k5=v5") == 0 && calls == 1);
    CHECK_RC(rm_iter_seek_to_last(bi, &valid, &err), RM_OK);
    CHECK(read_all(bi, false, sizeof buf, 8, got, sizeof got, &calls));
    CHECK(strcmp(got, "k5=v5,k4=v4,k3=v3") == 0);

    /* Empty keys and values take no room: a NULL buffer of 0 bytes holds them. */
    CHECK_RC(rm_put(cf, NULL, 0, NULL, 0, &err), RM_OK);
    uint64_t ei = 0;
    CHECK_RC(rm_iter_create(cf, 0, 0, NULL, 0, NULL, 0, &ei, &err), RM_OK);
    CHECK_RC(rm_iter_seek_to_first(ei, &valid, &err), RM_OK);
    CHECK_RC(rm_iter_read_next(ei, NULL, 0, lens, 8, &count, &valid, &err), RM_OK);
    CHECK(count == 1 && lens[0].key_len == 0 && lens[0].value_len == 0 && valid && at(ei, "k0"));

    CHECK_RC(rm_close(m, db, &err), RM_OK);
    iter_all_calls(it, RM_ERR_CLOSED, "iterator read after its DB's close");
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
    CHECK(rm_live_objects() == live0);
}

static void test_multi_get(void) {
    BEGIN_TEST();
    uint64_t live0 = rm_live_objects();
    const char *dir = make_tmpdir();
    if (!CHECK(dir != NULL)) {
        return;
    }
    uint64_t m = 0;
    CHECK_RC(rm_manager_create(NULL, &m, &err), RM_OK);
    const char *cfn[] = {"default", "b"};
    uint64_t db = 0, cfs[2] = {0, 0};
    if (!CHECK(open_db(m, "mg", dir, NULL, cfn, 2, &db, cfs))) {
        rm_manager_destroy(m, NULL);
        return;
    }
    uint64_t a = cfs[0], b = cfs[1];
    const char *twenty = "twenty-bytes-value!!";
    CHECK(strlen(twenty) == 20);
    CHECK_RC(rm_put(a, S("k1"), S("one"), &err), RM_OK);
    CHECK_RC(rm_put(a, S("k2"), S(twenty), &err), RM_OK);
    CHECK_RC(rm_put(a, S("k3"), S("xyz"), &err), RM_OK);
    CHECK_RC(rm_put(a, S("e"), NULL, 0, &err), RM_OK);
    CHECK_RC(rm_put(b, S("k1"), S("b-one"), &err), RM_OK);

    /* One family for every key: found, missing, found, found, empty value. */
    const uint8_t *keys = B("k1nopek2k3e");
    size_t lens[5] = {2, 4, 2, 2, 1};
    rm_value v[5];
    uint8_t buf[64];
    size_t needed = 0;
    memset(buf, '#', sizeof buf);
    CHECK_RC(rm_multi_get(&a, 1, 0, 0, keys, lens, 5, buf, sizeof buf, v, &needed, &err), RM_OK);
    CHECK(v[0].code == RM_OK && v[0].len == 3 && memcmp(buf + v[0].offset, "one", 3) == 0);
    CHECK(v[1].code == RM_ERR_NOT_FOUND && v[1].len == 0);
    CHECK(v[2].code == RM_OK && v[2].len == 20 && memcmp(buf + v[2].offset, twenty, 20) == 0);
    CHECK(v[3].code == RM_OK && v[3].len == 3 && memcmp(buf + v[3].offset, "xyz", 3) == 0);
    CHECK(v[4].code == RM_OK && v[4].len == 0);
    CHECK(needed == 26);
    /* Packed: the found values do not overlap and stay inside the needed bytes. */
    bool packed = true;
    int idx[3] = {0, 2, 3};
    for (int i = 0; i < 3; i++) {
        const rm_value *x = &v[idx[i]];
        packed &= x->offset + x->len <= needed;
        for (int j = 0; j < i; j++) {
            const rm_value *y = &v[idx[j]];
            packed &= x->offset + x->len <= y->offset || y->offset + y->len <= x->offset;
        }
    }
    CHECK(packed);
    CHECK(buf[26] == '#');
    /* out_needed may be NULL; flags. */
    for (uint32_t f = 0; f <= 3; f++) {
        CHECK_RC(rm_multi_get(&a, 1, 0, f, keys, lens, 5, buf, sizeof buf, v, NULL, &err), RM_OK);
        CHECK(v[2].code == RM_OK && memcmp(buf + v[2].offset, twenty, 20) == 0);
    }

    /* Too small: what fits is copied, the rest reported with its size; the retry with
     * out_needed bytes gets everything. */
    memset(buf, '#', sizeof buf);
    needed = 0;
    CHECK_RC(rm_multi_get(&a, 1, 0, 0, keys, lens, 5, buf, 10, v, &needed, &err),
             RM_ERR_BUFFER_TOO_SMALL);
    CHECK(needed == 26);
    CHECK(v[0].code == RM_OK && v[0].len == 3 && v[0].offset + 3 <= 10 &&
          memcmp(buf + v[0].offset, "one", 3) == 0);
    CHECK(v[1].code == RM_ERR_NOT_FOUND && v[1].len == 0);
    CHECK(v[2].code == RM_ERR_BUFFER_TOO_SMALL && v[2].len == 20);
    CHECK(v[3].code == RM_OK && v[3].len == 3 && v[3].offset + 3 <= 10 &&
          memcmp(buf + v[3].offset, "xyz", 3) == 0); /* later values still fill the rest */
    CHECK(v[4].code == RM_OK && v[4].len == 0);
    CHECK(buf[10] == '#');
    uint8_t *exact = malloc(needed);
    if (CHECK(exact != NULL)) {
        size_t cap = needed;
        CHECK_RC(rm_multi_get(&a, 1, 0, 0, keys, lens, 5, exact, cap, v, &needed, &err), RM_OK);
        CHECK(needed == cap);
        CHECK(v[0].code == RM_OK && memcmp(exact + v[0].offset, "one", 3) == 0);
        CHECK(v[2].code == RM_OK && memcmp(exact + v[2].offset, twenty, 20) == 0);
        CHECK(v[3].code == RM_OK && memcmp(exact + v[3].offset, "xyz", 3) == 0);
        free(exact);
    }
    /* No buffer at all: a size query. */
    needed = 0;
    CHECK_RC(rm_multi_get(&a, 1, 0, 0, keys, lens, 5, NULL, 0, v, &needed, &err),
             RM_ERR_BUFFER_TOO_SMALL);
    CHECK(needed == 26);
    CHECK(v[0].code == RM_ERR_BUFFER_TOO_SMALL && v[0].len == 3);
    CHECK(v[1].code == RM_ERR_NOT_FOUND);
    CHECK(v[2].code == RM_ERR_BUFFER_TOO_SMALL && v[2].len == 20);
    CHECK(v[3].code == RM_ERR_BUFFER_TOO_SMALL && v[3].len == 3);
    CHECK(v[4].code == RM_OK && v[4].len == 0);
    /* Only missing keys: OK with no buffer. */
    size_t miss_lens[2] = {4, 4};
    needed = 99;
    CHECK_RC(rm_multi_get(&a, 1, 0, 0, B("nonezero"), miss_lens, 2, NULL, 0, v, &needed, &err),
             RM_OK);
    CHECK(needed == 0 && v[0].code == RM_ERR_NOT_FOUND && v[1].code == RM_ERR_NOT_FOUND);

    /* One family per key, the same key in two families; a key twice. */
    uint64_t per[4] = {a, b, b, a};
    size_t plens[4] = {2, 2, 2, 2};
    CHECK_RC(rm_multi_get(per, 4, 0, 0, B("k1k1k2k1"), plens, 4, buf, sizeof buf, v, &needed,
                          &err),
             RM_OK);
    CHECK(v[0].code == RM_OK && v[0].len == 3 && memcmp(buf + v[0].offset, "one", 3) == 0);
    CHECK(v[1].code == RM_OK && v[1].len == 5 && memcmp(buf + v[1].offset, "b-one", 5) == 0);
    CHECK(v[2].code == RM_ERR_NOT_FOUND);
    CHECK(v[3].code == RM_OK && v[3].len == 3 && memcmp(buf + v[3].offset, "one", 3) == 0);
    CHECK(needed == 11);
    uint64_t same[2] = {b, b};
    CHECK_RC(rm_multi_get(same, 2, 0, 0, B("k1k1"), plens, 2, buf, sizeof buf, v, &needed, &err),
             RM_OK);
    CHECK(v[0].code == RM_OK && v[1].code == RM_OK && needed == 10);
    /* Per-key families with too small a buffer: still consistent. */
    CHECK_RC(rm_multi_get(per, 4, 0, 0, B("k1k1k2k1"), plens, 4, buf, 7, v, &needed, &err),
             RM_ERR_BUFFER_TOO_SMALL);
    CHECK(needed == 11);
    size_t used = 0;
    int fit = 0;
    for (int i = 0; i < 4; i++) {
        if (v[i].code == RM_OK) {
            used += v[i].len;
            fit++;
            CHECK(v[i].offset + v[i].len <= 7);
        }
    }
    CHECK(used <= 7 && fit >= 1 && fit <= 2);

    /* Empty key; zero keys. */
    size_t zero_len[1] = {0};
    CHECK_RC(rm_put(a, NULL, 0, S("empty-key"), &err), RM_OK);
    CHECK_RC(rm_multi_get(&a, 1, 0, 0, NULL, zero_len, 1, buf, sizeof buf, v, &needed, &err),
             RM_OK);
    CHECK(v[0].code == RM_OK && v[0].len == 9 && memcmp(buf + v[0].offset, "empty-key", 9) == 0);
    needed = 99;
    CHECK_RC(rm_multi_get(NULL, 0, 0, 0, NULL, NULL, 0, NULL, 0, NULL, &needed, &err), RM_OK);
    CHECK(needed == 0);
    CHECK_RC(rm_multi_get(&a, 1, 0, 0, NULL, NULL, 0, NULL, 0, NULL, NULL, &err), RM_OK);

    /* Argument errors fail the whole call before anything is read or written. */
    const size_t huge_lens[2] = {SIZE_MAX, SIZE_MAX / 2 + 1};
    struct {
        const char *what;
        const uint64_t *cfs;
        size_t n_cfs;
        uint32_t flags;
        const uint8_t *keys;
        const size_t *lens;
        size_t n_keys;
        uint8_t *buf;
        size_t cap;
        rm_value *out;
        rm_result want;
    } bad[] = {
        {"n_cfs 2 for 3 keys", per, 2, 0, keys, lens, 3, buf, sizeof buf, v,
         RM_ERR_INVALID_ARGUMENT},
        {"n_cfs 0 for 3 keys", per, 0, 0, keys, lens, 3, buf, sizeof buf, v,
         RM_ERR_INVALID_ARGUMENT},
        {"n_cfs 4 for 3 keys", per, 4, 0, keys, lens, 3, buf, sizeof buf, v,
         RM_ERR_INVALID_ARGUMENT},
        {"n_cfs 2 for 1 key", per, 2, 0, keys, lens, 1, buf, sizeof buf, v,
         RM_ERR_INVALID_ARGUMENT},
        {"too many keys", &a, 1, 0, keys, lens, (size_t)RM_MAX_MULTI_GET_KEYS + 1, buf,
         sizeof buf, v, RM_ERR_INVALID_ARGUMENT},
        {"read flag 4", &a, 1, 4, keys, lens, 3, buf, sizeof buf, v, RM_ERR_INVALID_ARGUMENT},
        {"read flags ~0", &a, 1, UINT32_MAX, keys, lens, 3, buf, sizeof buf, v,
         RM_ERR_INVALID_ARGUMENT},
        {"cfs NULL", NULL, 1, 0, keys, lens, 3, buf, sizeof buf, v, RM_ERR_NULL_POINTER},
        {"keys NULL", &a, 1, 0, NULL, lens, 3, buf, sizeof buf, v, RM_ERR_NULL_POINTER},
        {"key_lens NULL", &a, 1, 0, keys, NULL, 3, buf, sizeof buf, v, RM_ERR_NULL_POINTER},
        {"out_values NULL", &a, 1, 0, keys, lens, 3, buf, sizeof buf, NULL, RM_ERR_NULL_POINTER},
        {"buf NULL with a capacity", &a, 1, 0, keys, lens, 3, NULL, 16, v, RM_ERR_NULL_POINTER},
        {"keys inside buf", &a, 1, 0, buf, lens, 3, buf, sizeof buf, v,
         RM_ERR_INVALID_ARGUMENT},
        {"key lengths overflow", &a, 1, 0, keys, huge_lens, 2, buf, sizeof buf, v,
         RM_ERR_INVALID_ARGUMENT},
        {"a key over isize::MAX", &a, 1, 0, keys, &huge_lens[1], 1, buf, sizeof buf, v,
         RM_ERR_INVALID_ARGUMENT},
        {"buf_cap over isize::MAX", &a, 1, 0, keys, lens, 3, buf, SIZE_MAX / 2 + 1, v,
         RM_ERR_INVALID_ARGUMENT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        g_ctx = bad[i].what;
        memset(v, 0x7b, sizeof v);
        needed = 777;
        CHECK_RC(rm_multi_get(bad[i].cfs, bad[i].n_cfs, 0, bad[i].flags, bad[i].keys, bad[i].lens,
                              bad[i].n_keys, bad[i].buf, bad[i].cap, bad[i].out, &needed, &err),
                 bad[i].want);
        CHECK(needed == 777 && (int)v[0].code == 0x7b7b7b7b);
    }
    g_ctx = NULL;

    /* At a snapshot. */
    uint64_t snap = 0;
    CHECK_RC(rm_snapshot_create(db, &snap, &err), RM_OK);
    CHECK_RC(rm_put(a, S("k1"), S("changed"), &err), RM_OK);
    CHECK_RC(rm_put(b, S("k2"), S("born-later"), &err), RM_OK);
    CHECK_RC(rm_multi_get(per, 4, snap, 0, B("k1k1k2k1"), plens, 4, buf, sizeof buf, v, &needed,
                          &err),
             RM_OK);
    CHECK(v[0].code == RM_OK && v[0].len == 3 && memcmp(buf + v[0].offset, "one", 3) == 0);
    CHECK(v[2].code == RM_ERR_NOT_FOUND);
    CHECK(needed == 11);
    CHECK_RC(rm_multi_get(per, 4, 0, 0, B("k1k1k2k1"), plens, 4, buf, sizeof buf, v, &needed,
                          &err),
             RM_OK);
    CHECK(v[0].code == RM_OK && v[0].len == 7 && memcmp(buf + v[0].offset, "changed", 7) == 0);
    CHECK(v[2].code == RM_OK && v[2].len == 10);

    /* A closed family, alone or among open ones; a released snapshot. Mixed DBs: see
     * test_cross_db. */
    CHECK_RC(rm_close(m, snap, &err), RM_OK);
    CHECK_RC(rm_close(m, b, &err), RM_OK);
    memset(v, 0x7b, sizeof v);
    needed = 777;
    CHECK_RC(rm_multi_get(&b, 1, 0, 0, B("k1"), plens, 1, buf, sizeof buf, v, &needed, &err),
             RM_ERR_CLOSED);
    CHECK_RC(rm_multi_get(per, 4, 0, 0, B("k1k1k2k1"), plens, 4, buf, sizeof buf, v, &needed,
                          &err),
             RM_ERR_CLOSED);
    CHECK_RC(rm_multi_get(&a, 1, snap, 0, B("k1"), plens, 1, buf, sizeof buf, v, &needed, &err),
             RM_ERR_CLOSED);
    CHECK(needed == 777 && (int)v[0].code == 0x7b7b7b7b);
    CHECK_RC(rm_multi_get(&a, 1, 0, 0, B("k1"), plens, 1, buf, sizeof buf, v, &needed, &err),
             RM_OK);
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
    CHECK(rm_live_objects() == live0);
}

static void test_memory_and_status(void) {
    BEGIN_TEST();
    uint64_t live0 = rm_live_objects();
    const char *dir = make_tmpdir();
    if (!CHECK(dir != NULL)) {
        return;
    }
    uint64_t m = 0;
    rm_config cfg;
    rm_config_default(&cfg);
    cfg.monitor_interval_ms = 10; /* the monitor samples the DB's memory every 10 ms */
    CHECK_RC(rm_manager_create(&cfg, &m, &err), RM_OK);
    const char *cfn[] = {"default"};
    uint64_t db = 0, cfs[1] = {0};
    if (!CHECK(open_db(m, "memdb", dir, NULL, cfn, 1, &db, cfs))) {
        rm_manager_destroy(m, NULL);
        return;
    }
    rm_memory mem;
    memset(&mem, 0xff, sizeof mem);
    CHECK_RC(rm_db_memory(db, &mem, &err), RM_OK);
    CHECK(mem.mem_table_total != UINT64_MAX && mem.block_cache != UINT64_MAX);
    char key[16], val[128];
    memset(val, 'v', sizeof val - 1);
    val[sizeof val - 1] = '\0';
    bool all_ok = true;
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "key%03d", i);
        all_ok &= rm_put(cfs[0], S(key), S(val), NULL) == RM_OK;
    }
    CHECK(all_ok);
    CHECK_RC(rm_db_memory(db, &mem, &err), RM_OK);
    CHECK(mem.mem_table_total > 0);
    CHECK(mem.mem_table_unflushed > 0);
    CHECK(mem.mem_table_total >= mem.mem_table_unflushed);
    CHECK(mem.mem_table_unflushed >= 200 * 127); /* at least the bytes written */
    fprintf(stderr,
            "      memory: mem_table_total %" PRIu64 ", unflushed %" PRIu64
            ", table_readers %" PRIu64 ", block_cache %" PRIu64 "\n",
            mem.mem_table_total, mem.mem_table_unflushed, mem.table_readers, mem.block_cache);

    /* The status document carries the DB's details and memory figures. */
    char *doc = status_doc(m);
    if (CHECK(doc != NULL)) {
        const char *me = strstr(doc, "\"name\":\"memdb\"");
        CHECK(me != NULL);
        const char *details = me ? strstr(me, "\"details\":{") : NULL;
        CHECK(details != NULL);
        const char *memory = details ? strstr(details, "\"memory\":{") : NULL;
        CHECK(memory != NULL);
        CHECK(json_num(memory, NULL, "mem_table_total") > 0);
        CHECK(json_num(memory, NULL, "mem_table_unflushed") > 0);
        CHECK(json_num(memory, NULL, "table_readers") >= 0);
        CHECK(json_num(memory, NULL, "block_cache") >= 0);
        CHECK(details != NULL && strstr(details, "\"default\"") != NULL);
        CHECK(strstr(doc, "\"kind\":\"db\"") != NULL);
        CHECK(strstr(doc, "\"name\":\"memdb/default\"") != NULL);
        free(doc);
    }

    /* The monitor's sample comes to show the DB, with at least the bytes written (polled,
     * bounded: it is taken every 10 ms on the monitor's thread). rm_memory_sample serves it
     * as it is; the status document carries the same sums in "memory". */
    char *sample = NULL;
    bool sampled = false;
    for (long spins = 0; spins < 20000000L && !sampled; spins++) {
        if (spins % 1000 != 0) {
            sched_yield();
            continue;
        }
        free(sample);
        sample = memory_sample_doc(m);
        sampled = sample != NULL && json_num(sample, NULL, "reporting") == 1 &&
                  json_num(sample, NULL, "mem_table_unflushed") >= 200 * 127;
    }
    if (CHECK(sampled)) {
        CHECK(sample[0] == '{' && strstr(sample, "\"name\":\"memdb\"") != NULL);
        CHECK(json_num(sample, NULL, "samples") >= 1);
        CHECK(json_num(sample, NULL, "registry_bytes") > 0);
        const char *res = strstr(sample, "\"resources\":[");
        CHECK(res != NULL && json_num(res, NULL, "mem_table_total") >= 200 * 127);
        doc = status_doc(m);
        const char *memory = doc ? strstr(doc, "\"memory\":{") : NULL;
        CHECK(memory != NULL && json_num(memory, NULL, "reporting") == 1);
        CHECK(json_num(memory, NULL, "mem_table_unflushed") >= 200 * 127);
        free(doc);
    } else if (sample != NULL) {
        fprintf(stderr, "      last sample: %s\n", sample);
    }
    free(sample);
    size_t need = 0;
    CHECK_RC(rm_memory_sample(m, NULL, 0, NULL, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_memory_sample(m, NULL, 16, &need, &err), RM_ERR_NULL_POINTER);
    char tiny[2] = {'#', '#'};
    CHECK_RC(rm_memory_sample(m, tiny, sizeof tiny, &need, &err), RM_ERR_BUFFER_TOO_SMALL);
    CHECK(tiny[0] == '#' && need > sizeof tiny);
    CHECK_RC(rm_memory_sample(db, NULL, 0, &need, &err), RM_ERR_WRONG_KIND);
    CHECK_RC(rm_memory_sample(0, NULL, 0, &need, &err), RM_ERR_INVALID_HANDLE);

    /* Argument and handle errors. */
    CHECK_RC(rm_db_memory(db, NULL, &err), RM_ERR_NULL_POINTER);
    memset(&mem, 0x11, sizeof mem);
    CHECK_RC(rm_db_memory(cfs[0], &mem, &err), RM_ERR_WRONG_KIND);
    CHECK_RC(rm_db_memory(m, &mem, &err), RM_ERR_WRONG_KIND);
    for (size_t i = 0; i < N_JUNK; i++) {
        CHECK_RC(rm_db_memory(g_junk[i], &mem, &err), RM_ERR_INVALID_HANDLE);
    }
    CHECK(mem.mem_table_total == UINT64_C(0x1111111111111111));
    CHECK_RC(rm_close(m, db, &err), RM_OK);
    CHECK_RC(rm_db_memory(db, &mem, &err), RM_ERR_CLOSED);
    CHECK(mem.mem_table_total == UINT64_C(0x1111111111111111));
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
    CHECK_RC(rm_memory_sample(m, NULL, 0, &need, &err), RM_ERR_CLOSED);
    CHECK(rm_live_objects() == live0);
}

/* Handles of one DB used with another DB's: WRONG_DB. Another manager's handles given to
 * rm_close: FOREIGN. */
static void test_cross_db(void) {
    BEGIN_TEST();
    uint64_t live0 = rm_live_objects();
    const char *da = make_tmpdir();
    const char *dbb = make_tmpdir();
    if (!CHECK(da != NULL && dbb != NULL)) {
        return;
    }
    uint64_t m = 0, m2 = 0;
    CHECK_RC(rm_manager_create(NULL, &m, &err), RM_OK);
    CHECK_RC(rm_manager_create(NULL, &m2, &err), RM_OK);
    const char *cfn[] = {"default"};
    uint64_t A = 0, Acf = 0, Bdb = 0, Bcf = 0;
    if (!CHECK(open_db(m, "xa", da, NULL, cfn, 1, &A, &Acf)) ||
        !CHECK(open_db(m, "xb", dbb, NULL, cfn, 1, &Bdb, &Bcf))) {
        rm_manager_destroy(m, NULL);
        rm_manager_destroy(m2, NULL);
        return;
    }
    CHECK_RC(rm_put(Acf, S("k"), S("a"), &err), RM_OK);
    CHECK_RC(rm_put(Bcf, S("k"), S("b"), &err), RM_OK);
    uint64_t snapA = 0, snapB = 0, batchA = 0, batchB = 0, itA = 0;
    CHECK_RC(rm_snapshot_create(A, &snapA, &err), RM_OK);
    CHECK_RC(rm_snapshot_create(Bdb, &snapB, &err), RM_OK);
    CHECK_RC(rm_batch_create(A, &batchA, &err), RM_OK);
    CHECK_RC(rm_batch_create(Bdb, &batchB, &err), RM_OK);
    CHECK_RC(rm_iter_create(Acf, snapA, 0, NULL, 0, NULL, 0, &itA, &err), RM_OK);
    uint64_t live1 = rm_live_objects();

    /* The right pairs work. */
    CHECK(value_is(Acf, snapA, "k", "a"));
    CHECK(value_is(Bcf, snapB, "k", "b"));
    /* A snapshot of one DB with a family of the other: get_opt, multi_get, iter_create. */
    snapshot_param_calls(Bcf, snapA, RM_ERR_WRONG_DB, "snapshot of xa, family of xb");
    snapshot_param_calls(Acf, snapB, RM_ERR_WRONG_DB, "snapshot of xb, family of xa");
    /* A family of one DB in a batch of the other. */
    size_t count = 99;
    CHECK_RC(rm_batch_put(batchA, Bcf, S("k"), S("x"), &err), RM_ERR_WRONG_DB);
    CHECK_RC(rm_batch_delete(batchA, Bcf, S("k"), &err), RM_ERR_WRONG_DB);
    CHECK_RC(rm_batch_delete_range(batchA, Bcf, S("a"), S("z"), &err), RM_ERR_WRONG_DB);
    CHECK_RC(rm_batch_put(batchB, Acf, S("k"), S("x"), &err), RM_ERR_WRONG_DB);
    CHECK_RC(rm_batch_count(batchA, &count, &err), RM_OK);
    CHECK(count == 0);
    CHECK_RC(rm_batch_count(batchB, &count, &err), RM_OK);
    CHECK(count == 0);
    CHECK_RC(rm_batch_write(batchA, 0, &err), RM_OK);
    CHECK_RC(rm_batch_write(batchB, 0, &err), RM_OK);
    CHECK(value_is(Acf, 0, "k", "a"));
    CHECK(value_is(Bcf, 0, "k", "b"));
    /* multi_get over families of two DBs, in any position. */
    uint64_t ab[2] = {Acf, Bcf}, ba[2] = {Bcf, Acf}, aab[3] = {Acf, Acf, Bcf};
    size_t lens[3] = {1, 1, 1};
    rm_value v[3];
    uint8_t buf[32];
    size_t needed = 777;
    memset(v, 0x7b, sizeof v);
    CHECK_RC(rm_multi_get(ab, 2, 0, 0, B("kk"), lens, 2, buf, sizeof buf, v, &needed, &err),
             RM_ERR_WRONG_DB);
    CHECK_RC(rm_multi_get(ba, 2, 0, 0, B("kk"), lens, 2, buf, sizeof buf, v, &needed, &err),
             RM_ERR_WRONG_DB);
    CHECK_RC(rm_multi_get(aab, 3, 0, 0, B("kkk"), lens, 3, buf, sizeof buf, v, &needed, &err),
             RM_ERR_WRONG_DB);
    CHECK_RC(rm_multi_get(aab, 3, snapA, 0, B("kkk"), lens, 3, buf, sizeof buf, v, &needed,
                          &err),
             RM_ERR_WRONG_DB);
    /* Refused before anything is read: no output written. */
    CHECK(needed == 777 && (int)v[0].code == 0x7b7b7b7b && (int)v[2].code == 0x7b7b7b7b);
    CHECK(rm_live_objects() == live1);
    /* Another manager's rm_close refuses them. */
    CHECK_RC(rm_close(m2, itA, &err), RM_ERR_FOREIGN_HANDLE);
    CHECK_RC(rm_close(m2, snapA, &err), RM_ERR_FOREIGN_HANDLE);
    CHECK_RC(rm_close(m2, batchA, &err), RM_ERR_FOREIGN_HANDLE);
    CHECK_RC(rm_close(m2, Acf, &err), RM_ERR_FOREIGN_HANDLE);
    CHECK(seek_at(itA, 'f', NULL, "k"));
    CHECK(rm_live_objects() == live1);
    CHECK_RC(rm_manager_destroy(m2, &err), RM_OK);
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
    CHECK(rm_live_objects() == live0);
}

/* Handles of the wrong kind, forged numbers, and closed handles, for every new function. */
static void test_wrong_handles(void) {
    BEGIN_TEST();
    uint64_t live0 = rm_live_objects();
    const char *dir = make_tmpdir();
    if (!CHECK(dir != NULL)) {
        return;
    }
    uint64_t m = 0;
    CHECK_RC(rm_manager_create(NULL, &m, &err), RM_OK);
    const char *cfn[] = {"default"};
    uint64_t db = 0, cfs[1] = {0};
    if (!CHECK(open_db(m, "wk", dir, NULL, cfn, 1, &db, cfs))) {
        rm_manager_destroy(m, NULL);
        return;
    }
    uint64_t cf = cfs[0];
    CHECK_RC(rm_put(cf, S("a"), S("val-a"), &err), RM_OK);
    uint64_t it = 0, snap = 0, batch = 0;
    CHECK_RC(rm_iter_create(cf, 0, 0, NULL, 0, NULL, 0, &it, &err), RM_OK);
    CHECK_RC(rm_snapshot_create(db, &snap, &err), RM_OK);
    CHECK_RC(rm_batch_create(db, &batch, &err), RM_OK);
    uint64_t live1 = rm_live_objects();

    /* Iterator functions. */
    iter_all_calls(cf, RM_ERR_WRONG_KIND, "column family as iterator");
    iter_all_calls(db, RM_ERR_WRONG_KIND, "DB as iterator");
    iter_all_calls(snap, RM_ERR_WRONG_KIND, "snapshot as iterator");
    iter_all_calls(batch, RM_ERR_WRONG_KIND, "batch as iterator");
    iter_all_calls(m, RM_ERR_WRONG_KIND, "manager as iterator");
    for (size_t i = 0; i < N_JUNK; i++) {
        char what[64];
        snprintf(what, sizeof what, "%#" PRIx64 " as iterator", g_junk[i]);
        iter_all_calls(g_junk[i], RM_ERR_INVALID_HANDLE, what);
    }
    /* Batch functions. */
    batch_all_calls(cf, cf, RM_ERR_WRONG_KIND, "column family as batch");
    batch_all_calls(db, cf, RM_ERR_WRONG_KIND, "DB as batch");
    batch_all_calls(snap, cf, RM_ERR_WRONG_KIND, "snapshot as batch");
    batch_all_calls(it, cf, RM_ERR_WRONG_KIND, "iterator as batch");
    batch_all_calls(m, cf, RM_ERR_WRONG_KIND, "manager as batch");
    for (size_t i = 0; i < N_JUNK; i++) {
        char what[64];
        snprintf(what, sizeof what, "%#" PRIx64 " as batch", g_junk[i]);
        batch_all_calls(g_junk[i], cf, RM_ERR_INVALID_HANDLE, what);
    }
    /* The snapshot argument (0 there means "no snapshot"). */
    snapshot_param_calls(cf, batch, RM_ERR_WRONG_KIND, "batch as snapshot");
    snapshot_param_calls(cf, cf, RM_ERR_WRONG_KIND, "column family as snapshot");
    snapshot_param_calls(cf, db, RM_ERR_WRONG_KIND, "DB as snapshot");
    snapshot_param_calls(cf, it, RM_ERR_WRONG_KIND, "iterator as snapshot");
    snapshot_param_calls(cf, m, RM_ERR_WRONG_KIND, "manager as snapshot");
    for (size_t i = 1; i < N_JUNK; i++) {
        char what[64];
        snprintf(what, sizeof what, "%#" PRIx64 " as snapshot", g_junk[i]);
        snapshot_param_calls(cf, g_junk[i], RM_ERR_INVALID_HANDLE, what);
    }
    snapshot_param_calls(cf, snap, RM_ERR_NOT_FOUND, "a good snapshot"); /* creates an iterator */
    live1++;
    /* The column-family argument. */
    cf_param_calls(db, batch, cf, RM_ERR_WRONG_KIND, "DB as column family");
    cf_param_calls(snap, batch, cf, RM_ERR_WRONG_KIND, "snapshot as column family");
    cf_param_calls(batch, batch, cf, RM_ERR_WRONG_KIND, "batch as column family");
    cf_param_calls(it, batch, cf, RM_ERR_WRONG_KIND, "iterator as column family");
    cf_param_calls(m, batch, cf, RM_ERR_WRONG_KIND, "manager as column family");
    for (size_t i = 0; i < N_JUNK; i++) {
        char what[64];
        snprintf(what, sizeof what, "%#" PRIx64 " as column family", g_junk[i]);
        cf_param_calls(g_junk[i], batch, cf, RM_ERR_INVALID_HANDLE, what);
    }
    /* The DB argument. */
    db_param_calls(cf, RM_ERR_WRONG_KIND, "column family as DB");
    db_param_calls(snap, RM_ERR_WRONG_KIND, "snapshot as DB");
    db_param_calls(batch, RM_ERR_WRONG_KIND, "batch as DB");
    db_param_calls(it, RM_ERR_WRONG_KIND, "iterator as DB");
    db_param_calls(m, RM_ERR_WRONG_KIND, "manager as DB");
    for (size_t i = 0; i < N_JUNK; i++) {
        char what[64];
        snprintf(what, sizeof what, "%#" PRIx64 " as DB", g_junk[i]);
        db_param_calls(g_junk[i], RM_ERR_INVALID_HANDLE, what);
    }
    CHECK(rm_live_objects() == live1);
    /* Everything still works after the refusals. */
    CHECK(seek_at(it, 'f', NULL, "a"));
    CHECK(value_is(cf, snap, "a", "val-a"));
    size_t count = 99;
    CHECK_RC(rm_batch_count(batch, &count, &err), RM_OK);
    CHECK(count == 0);

    /* Double closes, then every call on the closed handles. */
    CHECK_RC(rm_close(m, it, &err), RM_OK);
    CHECK_RC(rm_close(m, it, &err), RM_ERR_ALREADY_CLOSED);
    CHECK_RC(rm_close(m, snap, &err), RM_OK); /* also closes the iterator made at it above */
    CHECK_RC(rm_close(m, snap, &err), RM_ERR_ALREADY_CLOSED);
    CHECK_RC(rm_close(m, batch, &err), RM_OK);
    CHECK_RC(rm_close(m, batch, &err), RM_ERR_ALREADY_CLOSED);
    CHECK_RC(rm_close_timeout(m, batch, 0, true, &err), RM_ERR_ALREADY_CLOSED);
    iter_all_calls(it, RM_ERR_CLOSED, "closed iterator");
    batch_all_calls(batch, cf, RM_ERR_CLOSED, "closed batch");
    snapshot_param_calls(cf, snap, RM_ERR_CLOSED, "closed snapshot");
    CHECK(rm_live_objects() == live1 - 4);
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
    CHECK(rm_live_objects() == live0);
}

/* Iterators and snapshots still open when their DB closes are counted as leaked; closing them
 * yourself first is not leaking. */
static void test_leak_accounting(void) {
    BEGIN_TEST();
    uint64_t live0 = rm_live_objects();
    const char *dir = make_tmpdir();
    if (!CHECK(dir != NULL)) {
        return;
    }
    uint64_t m = 0;
    CHECK_RC(rm_manager_create(NULL, &m, &err), RM_OK);
    const char *cfn[] = {"default"};
    uint64_t db = 0, cfs[1] = {0};
    if (!CHECK(open_db(m, "leaky", dir, NULL, cfn, 1, &db, cfs))) {
        rm_manager_destroy(m, NULL);
        return;
    }
    uint64_t t = cfs[0];
    CHECK_RC(rm_put(t, S("a"), S("val-a"), &err), RM_OK);
    CHECK_RC(rm_put(t, S("b"), S("val-b"), &err), RM_OK);
    CHECK(total(m, "leaked_iterators") == 0);
    CHECK(total(m, "leaked_snapshots") == 0);

    uint64_t it1 = 0, it2 = 0, it3 = 0, s1 = 0, s2 = 0, batch = 0;
    CHECK_RC(rm_snapshot_create(db, &s1, &err), RM_OK);
    CHECK_RC(rm_snapshot_create(db, &s2, &err), RM_OK);
    CHECK_RC(rm_iter_create(t, 0, 0, NULL, 0, NULL, 0, &it1, &err), RM_OK);
    CHECK_RC(rm_iter_create(t, s1, 0, NULL, 0, NULL, 0, &it2, &err), RM_OK);
    CHECK_RC(rm_iter_create(t, s2, 0, NULL, 0, NULL, 0, &it3, &err), RM_OK);
    CHECK_RC(rm_batch_create(db, &batch, &err), RM_OK);
    CHECK(seek_at(it1, 'f', NULL, "a"));
    CHECK(seek_at(it3, 'l', NULL, "b"));
    /* Closed by the caller: not leaked. */
    CHECK_RC(rm_close(m, it3, &err), RM_OK);
    CHECK_RC(rm_close(m, s2, &err), RM_OK);
    CHECK(total(m, "leaked_iterators") == 0);
    CHECK(total(m, "leaked_snapshots") == 0);

    /* Closing the DB sweeps the two iterators and the snapshot still open. */
    CHECK_RC(rm_close(m, db, &err), RM_OK);
    iter_all_calls(it1, RM_ERR_CLOSED, "leaked iterator");
    iter_all_calls(it2, RM_ERR_CLOSED, "leaked iterator at a leaked snapshot");
    snapshot_param_calls(t, s1, RM_ERR_CLOSED, "leaked snapshot (with its closed family)");
    batch_all_calls(batch, t, RM_ERR_CLOSED, "batch closed with its DB");
    CHECK_RC(rm_close(m, it1, &err), RM_ERR_ALREADY_CLOSED);
    CHECK_RC(rm_close(m, it2, &err), RM_ERR_ALREADY_CLOSED);
    CHECK_RC(rm_close(m, s1, &err), RM_ERR_ALREADY_CLOSED);
    CHECK_RC(rm_close(m, batch, &err), RM_ERR_ALREADY_CLOSED);
    char *doc = status_doc(m);
    if (CHECK(doc != NULL)) {
        char totals[1024];
        totals_of(doc, totals, sizeof totals);
        bool its_ok = CHECK(strstr(totals, "\"leaked_iterators\":2") != NULL);
        bool snaps_ok = CHECK(strstr(totals, "\"leaked_snapshots\":1") != NULL);
        if (!its_ok || !snaps_ok) {
            fprintf(stderr, "      totals: %s\n", totals);
        }
        CHECK(closed_field(doc, "leaky", "leaked_iterators") == 2);
        CHECK(closed_field(doc, "leaky", "leaked_snapshots") == 1);
        /* Batches are not counted; the records of the swept children carry no leaks. */
        CHECK(closed_field(doc, "leaky/default", "leaked_iterators") == 0);
        free(doc);
    }

    /* Releasing a snapshot closes the iterators reading at it. The header (rm_iter_create):
     * "Closing the DB (or the snapshot) closes it first and counts it as leaked". */
    if (CHECK(open_db(m, "leaky2", dir, NULL, cfn, 1, &db, cfs))) {
        t = cfs[0];
        CHECK_RC(rm_snapshot_create(db, &s1, &err), RM_OK);
        CHECK_RC(rm_iter_create(t, s1, 0, NULL, 0, NULL, 0, &it1, &err), RM_OK);
        CHECK(seek_at(it1, 'f', NULL, "a"));
        long long before = total(m, "leaked_iterators");
        CHECK_RC(rm_close(m, s1, &err), RM_OK);
        iter_all_calls(it1, RM_ERR_CLOSED, "iterator at a released snapshot");
        long long after = total(m, "leaked_iterators");
        if (!CHECK(after == before + 1)) {
            fprintf(stderr,
                    "      releasing a snapshot swept an open iterator: leaked_iterators %lld -> "
                    "%lld (header: counted as leaked)\n",
                    before, after);
        }

        /* A forced cleanup sweeps what is still open with the DB, and counts it too. It waits
         * (up to its bound, generous here) for the native closes, which run on the pool. */
        CHECK_RC(rm_iter_create(t, 0, 0, NULL, 0, NULL, 0, &it2, &err), RM_OK);
        CHECK_RC(rm_snapshot_create(db, &s2, &err), RM_OK);
        long long its = total(m, "leaked_iterators"), snaps = total(m, "leaked_snapshots");
        CHECK_RC(rm_cleanup_timeout(m, 10000, true, &err), RM_OK);
        CHECK(rm_live_objects() == live0); /* the DB, its children and the monitor closed */
        iter_all_calls(it2, RM_ERR_CLOSED, "iterator swept by a forced cleanup");
        CHECK_RC(rm_close(m, s2, &err), RM_ERR_ALREADY_CLOSED);
        CHECK(total(m, "leaked_iterators") == its + 1);
        CHECK(total(m, "leaked_snapshots") == snaps + 1);
        doc = status_doc(m);
        CHECK(closed_field(doc, "leaky2", "leaked_iterators") == 1);
        CHECK(closed_field(doc, "leaky2", "leaked_snapshots") == 1);
        free(doc);
    }
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
    CHECK(rm_live_objects() == live0);
}

/* Threads reading through iterators, a snapshot, multi-get and a batch while the DB is closed
 * under them (gracefully, then forced): every call returns a documented code, never crashes,
 * and valgrind sees no invalid access and no leak. */
typedef struct {
    uint64_t m, cf, snap, it, batch;
    atomic_int stop;
    atomic_int ops;
    int unexpected;
    rm_result unexpected_rc;
    int unexpected_op;
    int closed_seen;
} worker;

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Calls until it has seen 50 refusals (the DB was closed under it), or is told to stop. */
static void *worker_main(void *arg) {
    worker *w = arg;
    uint8_t buf[64];
    size_t len = 0;
    bool valid = false;
    rm_value v[2];
    size_t lens[2] = {3, 3};
    for (int i = 0; !atomic_load(&w->stop) && w->closed_seen < 50 && i < 100000; i++) {
        if (i % 100 == 99 && w->closed_seen == 0) {
            sleep_ms(1); /* leave the main thread room to close (valgrind runs one thread) */
        }
        int op = i % 7;
        rm_result rc;
        bool ok;
        switch (op) {
        case 0:
            rc = rm_iter_seek_to_first(w->it, &valid, NULL);
            ok = rc == RM_OK || rc == RM_ERR_CLOSED;
            break;
        case 1:
            rc = rm_iter_next(w->it, &valid, NULL);
            ok = rc == RM_OK || rc == RM_ERR_ITERATOR_NOT_VALID || rc == RM_ERR_CLOSED;
            break;
        case 2:
            rc = rm_iter_entry(w->it, buf, 32, &len, buf + 32, 32, &len, NULL);
            /* len is written twice: fine, only the code matters here */
            ok = rc == RM_OK || rc == RM_ERR_ITERATOR_NOT_VALID || rc == RM_ERR_CLOSED;
            break;
        case 3:
            rc = rm_get_opt(w->cf, w->snap, 0, S("k05"), buf, sizeof buf, &len, NULL);
            ok = rc == RM_OK || rc == RM_ERR_CLOSED;
            break;
        case 4:
            rc = rm_multi_get(&w->cf, 1, w->snap, 0, B("k01k09"), lens, 2, buf, sizeof buf, v,
                              NULL, NULL);
            ok = rc == RM_OK || rc == RM_ERR_CLOSED;
            break;
        case 5: {
            uint64_t it = 0;
            rc = rm_iter_create(w->cf, w->snap, 0, S("k02"), S("k08"), &it, NULL);
            ok = rc == RM_OK || rc == RM_ERR_CLOSED;
            if (rc == RM_OK) {
                rm_result r2 = rm_iter_seek_to_last(it, &valid, NULL);
                rm_result r3 = rm_close(w->m, it, NULL);
                ok = (r2 == RM_OK || r2 == RM_ERR_CLOSED) &&
                     (r3 == RM_OK || r3 == RM_ERR_ALREADY_CLOSED);
                if (!ok) {
                    rc = r2 != RM_OK && r2 != RM_ERR_CLOSED ? r2 : r3;
                }
            }
            break;
        }
        default:
            rc = rm_batch_put(w->batch, w->cf, S("bk"), S("bv"), NULL);
            ok = rc == RM_OK || rc == RM_ERR_CLOSED;
            break;
        }
        if (!ok && w->unexpected++ == 0) {
            w->unexpected_rc = rc;
            w->unexpected_op = op;
        }
        if (rc == RM_ERR_CLOSED) {
            w->closed_seen++;
        }
        atomic_fetch_add(&w->ops, 1);
    }
    return NULL;
}

static void test_concurrent_close(void) {
    BEGIN_TEST();
    uint64_t live0 = rm_live_objects();
    const char *dir = make_tmpdir();
    if (!CHECK(dir != NULL)) {
        return;
    }
    uint64_t m = 0;
    CHECK_RC(rm_manager_create(NULL, &m, &err), RM_OK);
    uint64_t live1 = rm_live_objects(); /* with the manager's monitor */
    CHECK(live1 == live0 + 1);
    const char *cfn[] = {"default"};
    /* Round 0: graceful. Round 1: forced, bounded by 10 s: the call returns once every close
     * (deferred to the threads' last calls or not) has run on the pool. Round 2: forced,
     * bounded by 0 ms: the call returns at once, (usually) reporting what had not finished;
     * those closes run on the pool when the threads let go. */
    for (int round = 0; round < 3; round++) {
        bool forced = round > 0;
        g_ctx = round == 0 ? "graceful close"
                : round == 1 ? "forced close (10 s bound)"
                             : "forced close (0 ms bound)";
        uint64_t db = 0, cf = 0;
        if (!CHECK(open_db(m, "conc", dir, NULL, cfn, 1, &db, &cf))) {
            break;
        }
        char key[8];
        for (int i = 0; i < 10; i++) {
            snprintf(key, sizeof key, "k%02d", i);
            CHECK_RC(rm_put(cf, S(key), S(key), &err), RM_OK);
        }
        enum { NW = 2 };
        worker w[NW];
        pthread_t th[NW];
        bool started[NW] = {false, false};
        for (int i = 0; i < NW; i++) {
            memset(&w[i], 0, sizeof w[i]);
            w[i].m = m;
            w[i].cf = cf;
            atomic_init(&w[i].stop, 0);
            atomic_init(&w[i].ops, 0);
            CHECK_RC(rm_snapshot_create(db, &w[i].snap, &err), RM_OK);
            CHECK_RC(rm_iter_create(cf, 0, 0, NULL, 0, NULL, 0, &w[i].it, &err), RM_OK);
            CHECK_RC(rm_batch_create(db, &w[i].batch, &err), RM_OK);
            started[i] = CHECK(pthread_create(&th[i], NULL, worker_main, &w[i]) == 0);
        }
        /* Let both threads get going, then close the DB under them. */
        for (int spins = 0; spins < 2000; spins++) {
            if (atomic_load(&w[0].ops) >= 30 && atomic_load(&w[1].ops) >= 30) {
                break;
            }
            sleep_ms(1);
        }
        CHECK(atomic_load(&w[0].ops) >= 30 && atomic_load(&w[1].ops) >= 30);
        if (round == 2) {
            memset(&err, 0x5a, sizeof err);
            rm_result rc = rm_close_timeout(m, db, 0, true, &err);
            CHECK((rc == RM_OK || rc == RM_ERR_TIMEOUT) && err.code == rc);
            CHECK(rc != RM_ERR_TIMEOUT || strstr(err.message, "did not finish closing by the "
                                                              "deadline (state closing") != NULL);
            CHECK_RC(rm_close(m, db, &err), RM_ERR_ALREADY_CLOSED);
        } else if (forced) {
            CHECK_RC(rm_close_timeout(m, db, 10000, true, &err), RM_OK);
        } else {
            CHECK_RC(rm_close(m, db, &err), RM_OK);
        }
        /* The threads keep calling on the closed handles until each saw 50 refusals. */
        for (int i = 0; i < NW; i++) {
            if (started[i]) {
                pthread_join(th[i], NULL);
            }
            if (!CHECK(w[i].unexpected == 0)) {
                fprintf(stderr, "      thread %d: %d unexpected result(s), first: op %d -> %s\n",
                        i, w[i].unexpected, w[i].unexpected_op,
                        rm_result_str((int32_t)w[i].unexpected_rc));
            }
            CHECK(w[i].closed_seen > 0);
            fprintf(stderr, "      %s, thread %d: %d calls, %d refused as closed\n", g_ctx, i,
                    atomic_load(&w[i].ops), w[i].closed_seen);
            iter_all_calls(w[i].it, RM_ERR_CLOSED, "worker iterator after the close");
            CHECK_RC(rm_close(m, w[i].snap, &err), RM_ERR_ALREADY_CLOSED);
        }
        /* Whatever close was deferred to the threads' last calls has run (round 2: runs on
         * the pool shortly after they let go; waited for, bounded, no sleeping). */
        if (round == 2) {
            long spins = 0;
            while (rm_live_objects() != live1 && spins < 20000000L) {
                sched_yield();
                spins++;
            }
        }
        CHECK(rm_live_objects() == live1);
        CHECK(total(m, "active") == 1); /* the monitor */
        CHECK(total(m, "closing") == 0);
    }
    g_ctx = NULL;
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
    CHECK(rm_live_objects() == live0);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Runs one test and prints how long it took (the valgrind run is the slow one to watch). */
#define RUN(test)                                                                              \
    do {                                                                                       \
        double t0_ = now_ms();                                                                 \
        test();                                                                                \
        fprintf(stderr, "      (%s: %.0f ms)\n", #test, now_ms() - t0_);                        \
    } while (0)

/* rm_get_alloc's allocator for the tests: malloc, counting its calls; refuses when `refuse`. */
struct alloc_ctx {
    int calls;
    size_t last_len;
    bool refuse;
    uint64_t mgr;
    uint64_t close_me; /* when not 0: tries to close it from inside (refused) */
    rm_result close_rc;
};

static uint8_t *test_alloc(void *context, size_t len) {
    struct alloc_ctx *c = context;
    c->calls++;
    c->last_len = len;
    if (c->close_me != 0) {
        rm_error e;
        c->close_rc = rm_close(c->mgr, c->close_me, &e);
    }
    return c->refuse ? NULL : malloc(len);
}

/* rm_get_alloc: one call reads any value, into the buffer when it fits, else into the
 * caller's allocator; every bad argument is refused with nothing allocated. */
static void test_get_alloc(void) {
    BEGIN_TEST();
    uint64_t m = 0, db = 0, cf = 0;
    if (!one_db("alloc", &m, &db, &cf)) {
        return;
    }
    size_t big_len = 100000;
    uint8_t *big = malloc(big_len);
    for (size_t i = 0; i < big_len; i++) {
        big[i] = (uint8_t)(i * 7);
    }
    CHECK_RC(rm_put(cf, S("big"), big, big_len, &err), RM_OK);
    CHECK_RC(rm_put(cf, S("small"), S("tiny"), &err), RM_OK);
    CHECK_RC(rm_put(cf, S("empty"), NULL, 0, &err), RM_OK);

    uint8_t buf[16];
    uint8_t *value = NULL;
    size_t len = 0;
    struct alloc_ctx c = {0};
    /* Fits: in buf, the allocator not called. */
    CHECK_RC(rm_get_alloc(cf, 0, 0, S("small"), buf, sizeof buf, test_alloc, &c, &value, &len, &err), RM_OK);
    CHECK(value == buf && len == 4 && memcmp(buf, "tiny", 4) == 0 && c.calls == 0);
    /* Empty value, no buffer at all. */
    value = buf;
    CHECK_RC(rm_get_alloc(cf, 0, 0, S("empty"), NULL, 0, test_alloc, &c, &value, &len, &err), RM_OK);
    CHECK(value == NULL && len == 0 && c.calls == 0);
    /* Does not fit: one allocation of exactly its size, the whole value in it. */
    CHECK_RC(rm_get_alloc(cf, 0, 0, S("big"), buf, sizeof buf, test_alloc, &c, &value, &len, &err), RM_OK);
    CHECK(len == big_len && c.calls == 1 && c.last_len == big_len && value != buf && value != NULL);
    CHECK(value != NULL && memcmp(value, big, big_len) == 0);
    if (value != buf) {
        free(value);
    }
    /* No allocator: the size, as rm_get_opt. */
    value = NULL;
    len = 0;
    CHECK_RC(rm_get_alloc(cf, 0, 0, S("big"), buf, sizeof buf, NULL, NULL, &value, &len, &err),
             RM_ERR_BUFFER_TOO_SMALL);
    CHECK(len == big_len && value == NULL);
    /* The allocator refuses: the same, nothing else written. */
    c = (struct alloc_ctx){.refuse = true};
    len = 0;
    CHECK_RC(rm_get_alloc(cf, 0, 0, S("big"), buf, sizeof buf, test_alloc, &c, &value, &len, &err),
             RM_ERR_BUFFER_TOO_SMALL);
    CHECK(len == big_len && value == NULL && c.calls == 1);
    /* A miss: RM_ERR_NOT_FOUND, no allocation, nothing written. */
    c = (struct alloc_ctx){0};
    len = 777;
    CHECK_RC(rm_get_alloc(cf, 0, 0, S("absent"), buf, sizeof buf, test_alloc, &c, &value, &len, &err),
             RM_ERR_NOT_FOUND);
    CHECK(len == 777 && value == NULL && c.calls == 0);
    /* At a snapshot: the past value. */
    uint64_t snap = 0;
    CHECK_RC(rm_snapshot_create(db, &snap, &err), RM_OK);
    CHECK_RC(rm_put(cf, S("small"), S("changed"), &err), RM_OK);
    CHECK_RC(rm_get_alloc(cf, snap, RM_READ_NO_FILL_CACHE, S("small"), buf, sizeof buf, NULL, NULL, &value, &len, &err), RM_OK);
    CHECK(value == buf && len == 4 && memcmp(buf, "tiny", 4) == 0);
    CHECK_RC(rm_get_alloc(cf, 0, 0, S("small"), buf, sizeof buf, NULL, NULL, &value, &len, &err), RM_OK);
    CHECK(len == 7 && memcmp(buf, "changed", 7) == 0);
    /* Bad arguments: refused before any read, nothing allocated or written. */
    c = (struct alloc_ctx){0};
    value = NULL;
    len = 777;
    CHECK_RC(rm_get_alloc(cf, 0, 0, S("big"), buf, sizeof buf, test_alloc, &c, NULL, &len, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_get_alloc(cf, 0, 0, S("big"), buf, sizeof buf, test_alloc, &c, &value, NULL, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_get_alloc(cf, 0, 0, NULL, 3, buf, sizeof buf, test_alloc, &c, &value, &len, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_get_alloc(cf, 0, 0, S("big"), NULL, 8, test_alloc, &c, &value, &len, &err), RM_ERR_NULL_POINTER);
    CHECK_RC(rm_get_alloc(cf, 0, 0, buf, 4, buf + 2, 8, test_alloc, &c, &value, &len, &err), RM_ERR_INVALID_ARGUMENT);
    CHECK_RC(rm_get_alloc(cf, 0, 8, S("big"), buf, sizeof buf, test_alloc, &c, &value, &len, &err), RM_ERR_INVALID_ARGUMENT);
    CHECK_RC(rm_get_alloc(cf, db, 0, S("big"), buf, sizeof buf, test_alloc, &c, &value, &len, &err), RM_ERR_WRONG_KIND);
    CHECK_RC(rm_get_alloc(db, 0, 0, S("big"), buf, sizeof buf, test_alloc, &c, &value, &len, &err), RM_ERR_WRONG_KIND);
    CHECK(c.calls == 0 && value == NULL && len == 777);
    /* The allocator may not close what the read holds open: refused, and the read completes. */
    c = (struct alloc_ctx){.mgr = m, .close_me = cf};
    CHECK_RC(rm_get_alloc(cf, 0, 0, S("big"), buf, sizeof buf, test_alloc, &c, &value, &len, &err), RM_OK);
    CHECK(c.calls == 1 && c.close_rc == RM_ERR_INVALID_ARGUMENT && len == big_len);
    CHECK(value != NULL && value != buf && memcmp(value, big, big_len) == 0);
    if (value != buf) {
        free(value);
    }
    CHECK_RC(rm_put(cf, S("still"), S("open"), &err), RM_OK);
    CHECK_RC(rm_close(m, snap, &err), RM_OK);
    /* Closed: RM_ERR_CLOSED. */
    CHECK_RC(rm_close(m, db, &err), RM_OK);
    c = (struct alloc_ctx){0};
    CHECK_RC(rm_get_alloc(cf, 0, 0, S("big"), buf, sizeof buf, test_alloc, &c, &value, &len, &err), RM_ERR_CLOSED);
    CHECK(c.calls == 0);
    free(big);
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
}

/* rm_iter_refresh: one iterator, scan after scan, each seeing the writes before it; refused
 * at a snapshot and on anything that is not a live iterator. */
static void test_iter_refresh(void) {
    BEGIN_TEST();
    uint64_t m = 0, db = 0, cf = 0;
    if (!one_db("refresh", &m, &db, &cf)) {
        return;
    }
    CHECK_RC(rm_put(cf, S("a"), S("1"), &err), RM_OK);
    uint64_t it = 0, at_snap = 0, snap = 0;
    CHECK_RC(rm_iter_create(cf, 0, 0, NULL, 0, NULL, 0, &it, &err), RM_OK);
    CHECK_RC(rm_snapshot_create(db, &snap, &err), RM_OK);
    CHECK_RC(rm_iter_create(cf, snap, 0, NULL, 0, NULL, 0, &at_snap, &err), RM_OK);
    CHECK_RC(rm_put(cf, S("b"), S("2"), &err), RM_OK);
    bool valid = false;
    uint8_t key[8];
    size_t len = 0;
    /* Before the refresh: the data as of creation. */
    CHECK_RC(rm_iter_seek(it, S("b"), &valid, &err), RM_OK);
    CHECK(!valid);
    for (int round = 0; round < 3; round++) {
        CHECK_RC(rm_iter_refresh(it, &err), RM_OK);
        CHECK_RC(rm_iter_valid(it, &valid, &err), RM_OK);
        CHECK(!valid); /* unpositioned until the next seek */
        CHECK_RC(rm_iter_seek(it, S("b"), &valid, &err), RM_OK);
        CHECK(valid);
        CHECK_RC(rm_iter_key(it, key, sizeof key, &len, &err), RM_OK);
        CHECK(len == 1 && key[0] == 'b');
        CHECK_RC(rm_iter_next(it, &valid, &err), RM_OK);
        CHECK(valid == (round > 0)); /* "c" is written after the first round */
        CHECK_RC(rm_put(cf, S("c"), S("3"), &err), RM_OK);
    }
    /* At a snapshot: refused, the iterator keeps reading at it. */
    CHECK_RC(rm_iter_refresh(at_snap, &err), RM_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "snapshot") != NULL);
    CHECK_RC(rm_iter_seek(at_snap, S("b"), &valid, &err), RM_OK);
    CHECK(!valid);
    /* Not an iterator, not a handle, closed. */
    CHECK_RC(rm_iter_refresh(cf, &err), RM_ERR_WRONG_KIND);
    CHECK_RC(rm_iter_refresh(snap, &err), RM_ERR_WRONG_KIND);
    CHECK_RC(rm_iter_refresh(0, &err), RM_ERR_INVALID_HANDLE);
    CHECK_RC(rm_iter_refresh(UINT64_MAX, &err), RM_ERR_INVALID_HANDLE);
    CHECK(rm_iter_refresh(UINT64_MAX, NULL) == RM_ERR_INVALID_HANDLE);
    CHECK_RC(rm_close(m, it, &err), RM_OK);
    CHECK_RC(rm_iter_refresh(it, &err), RM_ERR_CLOSED);
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
}

/* rm_multi_get_alloc: every key looked up once, the values that do not fit in the buffer in
 * memory from the caller's allocator; a refusing allocator leaves those keys too small. */
static void test_multi_get_alloc(void) {
    BEGIN_TEST();
    uint64_t m = 0, db = 0, cf = 0;
    if (!one_db("mga", &m, &db, &cf)) {
        return;
    }
    size_t big_len = 5000;
    uint8_t *big = malloc(big_len);
    memset(big, 'B', big_len);
    CHECK_RC(rm_put(cf, S("a"), S("small"), &err), RM_OK);
    CHECK_RC(rm_put(cf, S("b"), big, big_len, &err), RM_OK);
    CHECK_RC(rm_put(cf, S("d"), S("tiny"), &err), RM_OK);
    size_t lens[4] = {1, 1, 1, 1}; /* a, b, c (absent), d */
    rm_value v[4];
    uint8_t *spilled[4] = {(uint8_t *)1, (uint8_t *)1, (uint8_t *)1, (uint8_t *)1};
    uint8_t buf[16];
    size_t needed = 0;
    struct alloc_ctx c = {0};
    CHECK_RC(rm_multi_get_alloc(&cf, 1, 0, 0, B("abcd"), lens, 4, buf, sizeof buf, test_alloc, &c,
                                v, spilled, &needed, &err),
             RM_OK);
    CHECK(c.calls == 1 && c.last_len == big_len && needed == 5 + big_len + 4);
    CHECK(v[0].code == RM_OK && v[0].len == 5 && spilled[0] == NULL &&
          memcmp(buf + v[0].offset, "small", 5) == 0);
    CHECK(v[1].code == RM_OK && v[1].len == big_len && spilled[1] != NULL);
    CHECK(spilled[1] != NULL && memcmp(spilled[1], big, big_len) == 0);
    CHECK(v[2].code == RM_ERR_NOT_FOUND && spilled[2] == NULL);
    CHECK(v[3].code == RM_OK && v[3].len == 4 && spilled[3] == NULL &&
          memcmp(buf + v[3].offset, "tiny", 4) == 0); /* later values still fill the buffer */
    free(spilled[1]);
    /* A refusing allocator: that key too small, as rm_multi_get. */
    c = (struct alloc_ctx){.refuse = true};
    CHECK_RC(rm_multi_get_alloc(&cf, 1, 0, 0, B("abcd"), lens, 4, buf, sizeof buf, test_alloc, &c,
                                v, spilled, NULL, &err),
             RM_ERR_BUFFER_TOO_SMALL);
    CHECK(v[1].code == RM_ERR_BUFFER_TOO_SMALL && v[1].len == big_len && spilled[1] == NULL);
    CHECK(v[0].code == RM_OK && v[3].code == RM_OK);
    /* Closing from the allocator is refused; the read completes. */
    c = (struct alloc_ctx){.mgr = m, .close_me = cf};
    CHECK_RC(rm_multi_get_alloc(&cf, 1, 0, 0, B("abcd"), lens, 4, buf, sizeof buf, test_alloc, &c,
                                v, spilled, NULL, &err),
             RM_OK);
    CHECK(c.calls == 1 && c.close_rc == RM_ERR_INVALID_ARGUMENT && spilled[1] != NULL);
    free(spilled[1]);
    /* Bad arguments: nothing allocated, out_spilled untouched. */
    c = (struct alloc_ctx){0};
    spilled[0] = (uint8_t *)1;
    CHECK_RC(rm_multi_get_alloc(&cf, 1, 0, 0, B("abcd"), lens, 4, buf, sizeof buf, NULL, NULL, v,
                                spilled, NULL, &err),
             RM_ERR_NULL_POINTER);
    CHECK_RC(rm_multi_get_alloc(&cf, 1, 0, 0, B("abcd"), lens, 4, buf, sizeof buf, test_alloc, &c,
                                v, NULL, NULL, &err),
             RM_ERR_NULL_POINTER);
    CHECK_RC(rm_multi_get_alloc(&cf, 1, 0, 0, B("abcd"), lens, 4, buf, sizeof buf, test_alloc, &c,
                                v, (uint8_t **)((char *)spilled + 1), NULL, &err),
             RM_ERR_INVALID_ARGUMENT);
    CHECK_RC(rm_multi_get_alloc(&db, 1, 0, 0, B("abcd"), lens, 4, buf, sizeof buf, test_alloc, &c,
                                v, spilled, NULL, &err),
             RM_ERR_WRONG_KIND);
    CHECK(c.calls == 0);
    /* No keys: a no-op that reads nothing else. */
    CHECK_RC(rm_multi_get_alloc(&cf, 1, 0, 0, NULL, NULL, 0, NULL, 0, test_alloc, &c, NULL, NULL,
                                &needed, &err),
             RM_OK);
    CHECK(needed == 0 && c.calls == 0);
    free(big);
    CHECK_RC(rm_manager_destroy(m, &err), RM_OK);
}

int main(void) {
    setvbuf(stderr, NULL, _IONBF, 0);
    RUN(test_multi_get_alloc);
    RUN(test_iter_refresh);
    RUN(test_get_alloc);
    RUN(test_options);
    RUN(test_open_cf_compression);
    RUN(test_write_flags);
    RUN(test_batch);
    RUN(test_snapshot);
    RUN(test_iterators);
    RUN(test_iter_read);
    RUN(test_multi_get);
    RUN(test_memory_and_status);
    RUN(test_cross_db);
    RUN(test_wrong_handles);
    RUN(test_leak_accounting);
    RUN(test_concurrent_close);
    /* Every manager is destroyed: nothing may be left. */
    return finish_tests(0);
}
