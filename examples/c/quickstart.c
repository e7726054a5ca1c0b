/* resman C quick-start: open a DB, write, read, close, and see misuse come back as errors. */
#include <stdio.h>
#include <stdlib.h>
#include "resman.h"

static void check(rm_result rc, const rm_error *err, const char *what) {
    if (rc != RM_OK) {
        fprintf(stderr, "%s: %s: %s\n", what, rm_result_str(rc), err->message);
        exit(1);
    }
}

int main(void) {
    rm_error err;
    uint64_t mgr, db, cfs[2];
    const char *cf_names[] = {"default", "users"};

    check(rm_manager_create(NULL, &mgr, &err), &err, "create manager");
    check(rm_db_open(mgr, "main", "/tmp/resman-quickstart", NULL, cf_names, 2, &db, cfs, &err),
          &err, "open");

    check(rm_put(cfs[1], (const uint8_t *)"alice", 5, (const uint8_t *)"admin", 5, &err), &err,
          "put");
    uint8_t value[64];
    size_t len = 0;
    check(rm_get(cfs[1], (const uint8_t *)"alice", 5, value, sizeof value, &len, &err), &err,
          "get");
    printf("alice = %.*s\n", (int)len, (const char *)value);

    /* Closing the DB closes its column families first (flushing and syncing the WAL). */
    check(rm_close(mgr, db, &err), &err, "close");

    /* Misuse is an error code, never a crash. */
    rm_result rc = rm_close(mgr, db, &err);
    printf("close again:     %s\n", rm_result_str(rc));
    rc = rm_get(cfs[1], (const uint8_t *)"alice", 5, value, sizeof value, &len, &err);
    printf("get after close: %s\n", rm_result_str(rc));
    rc = rm_put(12345, (const uint8_t *)"k", 1, (const uint8_t *)"v", 1, &err);
    printf("forged handle:   %s\n", rm_result_str(rc));

    /* Closes whatever is still open, dependents first, within the cleanup timeout (30 s). */
    check(rm_manager_destroy(mgr, &err), &err, "destroy");
    return 0;
}
