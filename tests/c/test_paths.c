/*
 * C test of one open per DB directory per process, whatever the spelling of its path.
 *
 * RocksDB's in-process lock is keyed by the path string: `dir/`, `dir/.`, `dir//`, a symlink
 * to `dir`, a relative path and `p/../x/dir` each opened a second DB on the files of one
 * already open (RM_OK), and 20 synced keys written through each handle left a DB that no
 * longer opened (Corruption: every acknowledged write lost). resman claims the directory by
 * its identity (device, inode) instead: each spelling must be refused with RM_ERR_LOCKED while
 * another manager holds the directory, nothing may stay registered, and the data written
 * through the holder must read back through every spelling once it closed.
 *
 * Self-contained C11, same conventions as test_rocks.c; run natively and under valgrind by
 * tests/c/run.sh. The last line is "N passed, M failed"; the exit status is non-zero when
 * M > 0.
 */
#define _XOPEN_SOURCE 700 /* mkdtemp, nftw, symlink, realpath */

#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMPDIR_TEMPLATE "/tmp/resman-cpaths-XXXXXX"
#include "check.h"

#define N_KEYS 20
#define N_SPELLINGS 6

/* The tree: <root>/x/dir (the DB directory), <root>/p, <root>/link -> <root>/x/dir. */
static char g_root[PATH_MAX];
static char g_dir[PATH_MAX];
static char g_spell[N_SPELLINGS][PATH_MAX];
static const char *const g_spell_name[N_SPELLINGS] = {
    "dir/", "dir/.", "dir//", "symlink to dir", "relative path", "p/../x/dir",
};

/* `to` (absolute, canonical) relative to the working directory, into out. */
static bool relative_to_cwd(const char *to, char *out, size_t cap) {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL) {
        return false;
    }
    char real[PATH_MAX];
    if (realpath(cwd, real) == NULL) {
        return false;
    }
    size_t n = 0;
    out[0] = '\0';
    /* One ".." per component of the working directory, then `to` without its leading '/'. */
    for (const char *p = real; *p != '\0'; p++) {
        if (*p != '/' && (p == real || p[-1] == '/')) {
            int w = snprintf(out + n, cap - n, "../");
            if (w < 0 || (size_t)w >= cap - n) {
                return false;
            }
            n += (size_t)w;
        }
    }
    int w = snprintf(out + n, cap - n, "%s", to + 1);
    return w >= 0 && (size_t)w < cap - n;
}

/* out = a followed by b; false when it does not fit. */
static bool join(char *out, size_t cap, const char *a, const char *b) {
    int w = snprintf(out, cap, "%s%s", a, b);
    return w >= 0 && (size_t)w < cap;
}

static bool make_tree(void) {
    const char *tmp = make_tmpdir();
    if (tmp == NULL || realpath(tmp, g_root) == NULL) {
        return false;
    }
    char p[PATH_MAX], x[PATH_MAX];
    if (!join(p, sizeof p, g_root, "/p") || !join(x, sizeof x, g_root, "/x") ||
        !join(g_dir, sizeof g_dir, g_root, "/x/dir") ||
        !join(g_spell[3], PATH_MAX, g_root, "/link")) {
        return false;
    }
    if (mkdir(p, 0700) != 0 || mkdir(x, 0700) != 0 || mkdir(g_dir, 0700) != 0 ||
        symlink(g_dir, g_spell[3]) != 0) {
        perror("make_tree");
        return false;
    }
    return join(g_spell[0], PATH_MAX, g_dir, "/") && join(g_spell[1], PATH_MAX, g_dir, "/.") &&
           join(g_spell[2], PATH_MAX, g_dir, "//") &&
           relative_to_cwd(g_dir, g_spell[4], PATH_MAX) &&
           join(g_spell[5], PATH_MAX, g_root, "/p/../x/dir");
}

static char g_key[32];
static const char *key(int i) {
    snprintf(g_key, sizeof g_key, "key%03d", i);
    return g_key;
}

/* ------------------------------------------------------------------------------------------ */
/* Tests                                                                                      */

/* While one manager holds the directory, every spelling is refused to another manager (and
 * to the holder's own), naming the holder; nothing stays registered. */
static void test_spellings_refused(void) {
    BEGIN_TEST();
    uint64_t live0 = rm_live_objects();
    uint64_t a = 0, b = 0, db = 0, cf = 0;
    CHECK_RC(rm_manager_create(NULL, &a, &err), RM_OK);
    CHECK_RC(rm_manager_create(NULL, &b, &err), RM_OK);
    const char *cfn[] = {"default"};
    if (!CHECK_RC(rm_db_open(a, "orders", g_dir, NULL, cfn, 1, &db, &cf, &err), RM_OK)) {
        rm_manager_destroy(a, NULL);
        rm_manager_destroy(b, NULL);
        return;
    }
    uint64_t live1 = rm_live_objects();
    for (int i = 0; i < N_SPELLINGS; i++) {
        g_ctx = g_spell_name[i];
        uint64_t db2 = 0, cf2 = 0;
        memset(&err, 0x5a, sizeof err);
        rm_result rc = rm_db_open(b, "other", g_spell[i], NULL, cfn, 1, &db2, &cf2, &err);
        CHECK(rc == RM_ERR_LOCKED && err_consistent(rc, &err));
        CHECK(strstr(err.message, "'orders'") != NULL);
        CHECK(strstr(err.message, "already open in this process") != NULL);
        CHECK(rm_live_objects() == live1);
        if (rc == RM_OK) {
            /* The defect: close what was wrongly opened, so the next spelling is tried alone. */
            rm_close(b, db2, NULL);
        }
        CHECK_RC(rm_db_open(a, "again", g_spell[i], NULL, cfn, 1, &db2, &cf2, &err),
                 RM_ERR_LOCKED);
        CHECK(rm_live_objects() == live1);
    }
    g_ctx = NULL;
    for (int i = 0; i < N_KEYS; i++) {
        CHECK_RC(rm_put_opt(cf, B(key(i)), strlen(key(i)), B("v"), 1, RM_WRITE_SYNC, &err),
                 RM_OK);
    }
    CHECK_RC(rm_close(a, db, &err), RM_OK);
    CHECK_RC(rm_manager_destroy(a, &err), RM_OK);
    CHECK_RC(rm_manager_destroy(b, &err), RM_OK);
    CHECK(rm_live_objects() == live0);
}

/* The hostile tester's sequence: one open under the plain path, one under each spelling,
 * 20 synced keys through every handle that opened, all closed; then every key written through
 * the first open reads back through every spelling, and the DB still opens. */
static void test_synced_keys_survive(void) {
    BEGIN_TEST();
    uint64_t live0 = rm_live_objects();
    const char *cfn[] = {"default"};
    for (int s = 0; s < N_SPELLINGS; s++) {
        g_ctx = g_spell_name[s];
        uint64_t a = 0, b = 0, db = 0, cf = 0, db2 = 0, cf2 = 0;
        CHECK_RC(rm_manager_create(NULL, &a, &err), RM_OK);
        CHECK_RC(rm_manager_create(NULL, &b, &err), RM_OK);
        CHECK_RC(rm_db_open(a, "orders", g_dir, NULL, cfn, 1, &db, &cf, &err), RM_OK);
        memset(&err, 0x5a, sizeof err);
        rm_result second = rm_db_open(b, "orders", g_spell[s], NULL, cfn, 1, &db2, &cf2, &err);
        CHECK(second == RM_ERR_LOCKED && err_consistent(second, &err));
        char val[32];
        for (int i = 0; i < N_KEYS; i++) {
            snprintf(val, sizeof val, "v%d-%d", s, i);
            CHECK_RC(rm_put_opt(cf, B(key(i)), strlen(key(i)), B(val), strlen(val),
                                RM_WRITE_SYNC, &err),
                     RM_OK);
            if (second == RM_OK) {
                snprintf(val, sizeof val, "second-%d", i);
                rm_put_opt(cf2, B(key(100 + i)), strlen(key(100 + i)), B(val), strlen(val),
                           RM_WRITE_SYNC, NULL);
            }
        }
        CHECK_RC(rm_close(a, db, &err), RM_OK);
        if (second == RM_OK) {
            rm_close(b, db2, NULL);
        }
        /* Reopened through the spelling that was refused: every key is there. */
        if (CHECK_RC(rm_db_open(b, "reopened", g_spell[s], NULL, cfn, 1, &db2, &cf2, &err),
                     RM_OK)) {
            int found = 0;
            for (int i = 0; i < N_KEYS; i++) {
                uint8_t buf[64];
                size_t len = 0;
                snprintf(val, sizeof val, "v%d-%d", s, i);
                rm_result rc = rm_get(cf2, B(key(i)), strlen(key(i)), buf, sizeof buf, &len, &err);
                if (rc == RM_OK && len == strlen(val) && memcmp(buf, val, len) == 0) {
                    found++;
                }
            }
            if (!CHECK(found == N_KEYS)) {
                fprintf(stderr, "      %d of %d keys read back\n", found, N_KEYS);
            }
            CHECK_RC(rm_close(b, db2, &err), RM_OK);
        }
        CHECK_RC(rm_manager_destroy(a, &err), RM_OK);
        CHECK_RC(rm_manager_destroy(b, &err), RM_OK);
        CHECK(rm_live_objects() == live0);
    }
    g_ctx = NULL;
}

/* A failed open (RocksDB refuses after the directory was claimed) leaves it free. */
static void test_failed_open_keeps_nothing(void) {
    BEGIN_TEST();
    uint64_t live0 = rm_live_objects();
    uint64_t a = 0, b = 0, db = 0, cfs[2] = {0, 0};
    CHECK_RC(rm_manager_create(NULL, &a, &err), RM_OK);
    CHECK_RC(rm_manager_create(NULL, &b, &err), RM_OK);
    uint64_t live1 = rm_live_objects();
    rm_db_options o;
    CHECK(rm_db_options_default(&o) == RM_OK);
    o.create_missing_column_families = 0;
    const char *two[] = {"default", "missing"};
    CHECK_RC(rm_db_open(a, "bad", g_spell[1], &o, two, 2, &db, cfs, &err),
             RM_ERR_INVALID_ARGUMENT);
    o.create_missing_column_families = 1;
    o.error_if_exists = 1;
    CHECK_RC(rm_db_open(a, "bad", g_spell[3], &o, two, 1, &db, cfs, &err),
             RM_ERR_INVALID_ARGUMENT);
    CHECK(rm_live_objects() == live1);
    CHECK_RC(rm_db_open(b, "good", g_spell[5], NULL, two, 1, &db, cfs, &err), RM_OK);
    CHECK_RC(rm_db_open(a, "late", g_dir, NULL, two, 1, &db, cfs, &err), RM_ERR_LOCKED);
    CHECK(strstr(err.message, "'good'") != NULL);
    CHECK_RC(rm_manager_destroy(b, &err), RM_OK);
    /* Destroying the holder's manager released the directory. */
    CHECK_RC(rm_db_open(a, "late", g_dir, NULL, two, 1, &db, cfs, &err), RM_OK);
    CHECK_RC(rm_manager_destroy(a, &err), RM_OK);
    CHECK(rm_live_objects() == live0);
}

int main(void) {
    setvbuf(stderr, NULL, _IONBF, 0);
    {
        rm_error err;
        memset(&err, 0, sizeof err);
        g_test = "setup";
        if (!CHECK(make_tree())) {
            remove_tmpdirs();
            printf("%d passed, %d failed\n", g_passed, g_failed);
            return 1;
        }
    }
    test_spellings_refused();
    test_synced_keys_survive();
    test_failed_open_keeps_nothing();
    return finish_tests(0);
}
