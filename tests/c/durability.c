/*
 * Durability under SIGKILL: no acknowledged write is lost when the writing process dies.
 *
 * One program, two roles (run through tests/c/durability.sh):
 *
 *   durability <dir> [cycles] [seed]                   the parent (default: 60 cycles)
 *   durability --child <dir> <cycle> <mode>            a writer (started by the parent)
 *
 * Each cycle the parent starts a writer (fork + exec of itself) with its stdout on a pipe.
 * The writer opens <dir>/db through the C ABI (column families "default" and "data") and
 * writes forever. After every write that returned RM_OK it appends the key to the
 * acknowledgement log <dir>/acks-<cycle>.log, fsyncs the log, and only then writes one byte
 * to the pipe. The parent reads N bytes (N drawn from the seeded generator, in [1, 400]),
 * sends SIGKILL, and checks that the writer died of it. There is no sleep anywhere: the pipe
 * is the synchronisation, and the writer keeps writing after each ack byte, so the signal
 * lands anywhere (inside RocksDB's write, its WAL append or sync, a memtable flush or a
 * compaction, the log append or fsync).
 *
 * The parent then reopens the DB itself (the dead writer's LOCK must not block it) and
 * checks every acknowledged key of every cycle so far with rm_get: present with the exact
 * value derived from the key, or absent for an acknowledged delete. It closes the DB
 * gracefully (only the manager's monitor is left live), destroys its manager and checks that
 * rm_live_objects() is 0.
 *
 * Writer modes, rotating with the cycle number:
 *   a  rm_put_opt with RM_WRITE_SYNC
 *   b  rm_put_opt with flags 0 (WAL written, not synced: survives a process crash because
 *      the WAL is in the page cache)
 *   c  write batches of 2 to 8 puts across both column families, rm_batch_write flags 0;
 *      every key of the batch is acknowledged after the write returned
 *   d  puts (flags 0); after each odd-numbered put, rm_delete_opt (flags 0) of the even key
 *      put DELETE_DISTANCE + 1 puts earlier in the same cycle, acknowledged as a delete
 *
 * Acknowledgement log lines ("<tag> <column family> <key>\n"):
 *   P   put acknowledged (the key must be present with its value)
 *   D   delete acknowledged (the key must be absent)
 *   b   intent: the key is in the batch about to be written (not yet acknowledged)
 *   d   intent: the key is about to be deleted (not yet acknowledged)
 * Intent lines are written (not fsynced: only a crash of the process is simulated, and the
 * page cache survives that) before the operation starts, so the parent knows which keys an
 * operation that was cut by the kill may have touched. Such a key may go either way; the
 * parent checks that an unacknowledged batch was applied entirely or not at all, records
 * the outcome it saw first, and requires the same outcome at every later check.
 *
 * Also checked: no key beyond what the writer can have written exists (no phantom writes),
 * the logs hold only well-formed lines (a final line without a newline is ignored and
 * counted, it cannot happen when the line is written before the ack).
 *
 * Exit status: 0 all good, 1 a violation (each printed with cycle, key, mode and seed),
 * 2 a usage or setup error.
 */
#define _GNU_SOURCE /* pipe2, O_CLOEXEC */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "resman.h"

#define DEFAULT_CYCLES 60
#define MAX_ACKS_PER_CYCLE 400
#define MAX_VALUE 2048
#define MAX_PAD 900
#define DELETE_DISTANCE 10 /* mode d: after put seq (odd), delete seq - 1 - DELETE_DISTANCE */
#define MAX_BATCH 8
#define N_MODES 4
#define MAX_VIOLATIONS_SHOWN 25
/* Not a sleep: a bound on waiting for the next ack byte, so a writer that hangs (a write
 * stall, a deadlock) fails the test instead of hanging it. */
#define ACK_TIMEOUT_MS 120000

static const char *const CF_NAMES[2] = {"default", "data"};
static const char MODES[N_MODES] = {'a', 'b', 'c', 'd'};
static const char *const MODE_TEXT[N_MODES] = {
    "a: rm_put_opt RM_WRITE_SYNC",
    "b: rm_put_opt flags 0",
    "c: rm_batch_write flags 0",
    "d: rm_delete_opt flags 0",
};

/* ------------------------------------------------------------------------------------------ */
/* Keys and values: both sides derive them from (cycle, seq)                                  */

static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t mix2(unsigned cycle, unsigned seq) {
    return mix64(((uint64_t)cycle << 32) ^ seq);
}

static size_t make_key(char *buf, size_t cap, unsigned cycle, unsigned seq) {
    int n = snprintf(buf, cap, "c%05u-k%07u", cycle, seq);
    return n < 0 ? 0 : (size_t)n;
}

/* "v:" + key + ":" + cycle + ":" + 0..MAX_PAD letters, all derived from (cycle, seq). The
 * padding makes the values large enough that the writer's 64 KiB memtables flush now and
 * then, so some kills land during a flush (or the compaction it triggers). The letters are a
 * run of the alphabet starting at a key-dependent letter (cheap: the parent rebuilds every
 * value at every check). */
static size_t make_value(char *buf, size_t cap, unsigned cycle, unsigned seq) {
    static char alphabet[MAX_PAD + 26];
    if (alphabet[0] == '\0') {
        for (size_t i = 0; i < sizeof alphabet; i++) {
            alphabet[i] = (char)('a' + i % 26);
        }
    }
    int n = snprintf(buf, cap, "v:c%05u-k%07u:%u:", cycle, seq, cycle);
    if (n < 0 || (size_t)n >= cap) {
        return 0;
    }
    uint64_t h = mix2(cycle, seq);
    size_t len = (size_t)n;
    size_t pad = (size_t)(h % (MAX_PAD + 1));
    if (pad > cap - 1 - len) {
        pad = cap - 1 - len;
    }
    memcpy(buf + len, alphabet + (h >> 32) % 26, pad);
    len += pad;
    buf[len] = '\0';
    return len;
}

static unsigned cf_of(unsigned seq) { return seq & 1u; }

/* Number of puts in the batch that starts at `seq` (mode c). */
static unsigned batch_size(unsigned cycle, unsigned seq) {
    return 2 + (unsigned)(mix2(cycle, seq ^ 0x5a5a5a5au) % (MAX_BATCH - 1));
}

static const char *errmsg(const rm_error *e) {
    return memchr(e->message, '\0', sizeof e->message) ? e->message : "(unterminated)";
}

static int write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The writer                                                                                 */

static int g_log = -1;

static void child_die(const char *what, rm_result rc, const rm_error *err) {
    fprintf(stderr, "durability child: %s: %s: %s\n", what, rm_result_str((int32_t)rc),
            errmsg(err));
    exit(3);
}

static void child_die_errno(const char *what) {
    fprintf(stderr, "durability child: %s: %s\n", what, strerror(errno));
    exit(3);
}

/* Appends intent lines (not synced, not acknowledged). */
static void log_intent(const char *lines, size_t len) {
    if (write_all(g_log, lines, len) != 0) {
        child_die_errno("append intent to the ack log");
    }
}

/* The acknowledgement: the lines reach the log and are fsynced, then one byte per
 * acknowledged operation goes to the parent. */
static void acknowledge(const char *lines, size_t len, unsigned n_acks) {
    static const char dots[MAX_BATCH + 1] = "........";
    if (write_all(g_log, lines, len) != 0) {
        child_die_errno("append to the ack log");
    }
    if (fsync(g_log) != 0) {
        child_die_errno("fsync the ack log");
    }
    if (write_all(STDOUT_FILENO, dots, n_acks) != 0) {
        child_die_errno("write the ack byte");
    }
}

static size_t line(char *buf, size_t cap, char tag, unsigned cycle, unsigned seq) {
    char key[32];
    make_key(key, sizeof key, cycle, seq);
    int n = snprintf(buf, cap, "%c %s %s\n", tag, CF_NAMES[cf_of(seq)], key);
    return n < 0 ? 0 : (size_t)n;
}

static int child_main(const char *dir, unsigned cycle, char mode) {
    rm_error err;
    char path[4096];
    uint64_t mgr = 0, db = 0, cfs[2] = {0, 0};

    snprintf(path, sizeof path, "%s/acks-%u.log", dir, cycle);
    /* O_EXCL: a log left by an earlier run means the directory is not fresh. */
    g_log = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (g_log < 0) {
        child_die_errno(path);
    }

    rm_result rc = rm_manager_create(NULL, &mgr, &err);
    if (rc != RM_OK) {
        child_die("rm_manager_create", rc, &err);
    }
    rm_db_options opts;
    rm_db_options_default(&opts);
    opts.write_buffer_size = RM_MIN_WRITE_BUFFER_SIZE; /* flushes (and compactions) happen */
    snprintf(path, sizeof path, "%s/db", dir);
    rc = rm_db_open(mgr, "durability", path, &opts, CF_NAMES, 2, &db, cfs, &err);
    if (rc != RM_OK) {
        child_die("rm_db_open", rc, &err);
    }
    uint64_t batch = 0;
    if (mode == 'c') {
        rc = rm_batch_create(db, &batch, &err);
        if (rc != RM_OK) {
            child_die("rm_batch_create", rc, &err);
        }
    }

    char key[32], value[MAX_VALUE], lines[MAX_BATCH * 64];
    for (unsigned seq = 0;; ) {
        size_t klen, vlen, n;
        switch (mode) {
        case 'a':
        case 'b':
            klen = make_key(key, sizeof key, cycle, seq);
            vlen = make_value(value, sizeof value, cycle, seq);
            rc = rm_put_opt(cfs[cf_of(seq)], (const uint8_t *)key, klen, (const uint8_t *)value,
                            vlen, mode == 'a' ? RM_WRITE_SYNC : 0, &err);
            if (rc != RM_OK) {
                child_die("rm_put_opt", rc, &err);
            }
            n = line(lines, sizeof lines, 'P', cycle, seq);
            acknowledge(lines, n, 1);
            seq++;
            break;
        case 'c': {
            unsigned count = batch_size(cycle, seq);
            n = 0;
            for (unsigned i = 0; i < count; i++) {
                unsigned s = seq + i;
                klen = make_key(key, sizeof key, cycle, s);
                vlen = make_value(value, sizeof value, cycle, s);
                rc = rm_batch_put(batch, cfs[cf_of(s)], (const uint8_t *)key, klen,
                                  (const uint8_t *)value, vlen, &err);
                if (rc != RM_OK) {
                    child_die("rm_batch_put", rc, &err);
                }
                n += line(lines + n, sizeof lines - n, 'b', cycle, s);
            }
            log_intent(lines, n);
            rc = rm_batch_write(batch, 0, &err);
            if (rc != RM_OK) {
                child_die("rm_batch_write", rc, &err);
            }
            n = 0;
            for (unsigned i = 0; i < count; i++) {
                n += line(lines + n, sizeof lines - n, 'P', cycle, seq + i);
            }
            acknowledge(lines, n, count);
            seq += count;
            break;
        }
        case 'd':
            klen = make_key(key, sizeof key, cycle, seq);
            vlen = make_value(value, sizeof value, cycle, seq);
            rc = rm_put_opt(cfs[cf_of(seq)], (const uint8_t *)key, klen, (const uint8_t *)value,
                            vlen, 0, &err);
            if (rc != RM_OK) {
                child_die("rm_put_opt", rc, &err);
            }
            n = line(lines, sizeof lines, 'P', cycle, seq);
            acknowledge(lines, n, 1);
            if (seq % 2 == 1 && seq > DELETE_DISTANCE) {
                /* seq - 1 - DELETE_DISTANCE is even: each even key is deleted at most once. */
                unsigned victim = seq - 1 - DELETE_DISTANCE;
                n = line(lines, sizeof lines, 'd', cycle, victim);
                log_intent(lines, n);
                klen = make_key(key, sizeof key, cycle, victim);
                rc = rm_delete_opt(cfs[cf_of(victim)], (const uint8_t *)key, klen, 0, &err);
                if (rc != RM_OK) {
                    child_die("rm_delete_opt", rc, &err);
                }
                n = line(lines, sizeof lines, 'D', cycle, victim);
                acknowledge(lines, n, 1);
            }
            seq++;
            break;
        default:
            fprintf(stderr, "durability child: unknown mode '%c'\n", mode);
            return 2;
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* The parent: expected state                                                                 */

enum {
    ST_PRESENT,       /* put acknowledged */
    ST_ABSENT,        /* delete acknowledged */
    ST_BATCH_PENDING, /* in a batch cut by the kill: all of it or none of it */
    ST_DELETE_PENDING /* a delete cut by the kill: present (right value) or absent */
};

typedef struct {
    uint32_t cycle;
    uint32_t seq;
    uint8_t cf;
    uint8_t state;
    uint8_t mode;     /* index in MODES */
    uint8_t resolved; /* pending states: the outcome seen first is what later checks expect */
    uint8_t seen_present;
} record;

static record *g_recs;
static size_t g_nrecs, g_caprecs;

static uint64_t g_seed;
static unsigned g_cycles;
static const char *g_dir;

/* Totals for the summary. */
static uint64_t g_acks_put[N_MODES], g_acks_del[N_MODES];
static uint64_t g_checks;  /* rm_get of acknowledged (or cut) operations' keys, all reopens */
static uint64_t g_phantom_checks;
static uint64_t g_acks_seen_on_pipe, g_acks_logged;
static unsigned g_torn_lines;
static unsigned g_batch_cut_applied, g_batch_cut_dropped, g_del_cut_applied, g_del_cut_dropped;
static unsigned g_violations;
static double g_t_writer, g_t_open, g_t_check, g_t_close; /* seconds, summed over cycles */

static double now_s(void);

static int mode_index(char m) {
    for (int i = 0; i < N_MODES; i++) {
        if (MODES[i] == m) {
            return i;
        }
    }
    return -1;
}

static void violation(unsigned at_cycle, const record *r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void violation(unsigned at_cycle, const record *r, const char *fmt, ...) {
    g_violations++;
    if (g_violations > MAX_VIOLATIONS_SHOWN) {
        return;
    }
    char key[32] = "-";
    if (r != NULL) {
        make_key(key, sizeof key, r->cycle, r->seq);
    }
    fprintf(stderr, "VIOLATION after cycle %u: key %s (written in cycle %u, mode %s, cf %s), "
                    "seed %" PRIu64 ": ",
            at_cycle, key, r ? r->cycle : at_cycle, r ? MODE_TEXT[r->mode] : "-",
            r ? CF_NAMES[r->cf] : "-", g_seed);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void setup_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void setup_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "durability: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (seed %" PRIu64 ", dir %s)\n", g_seed, g_dir);
    exit(2);
}

static record *add_record(unsigned cycle, unsigned seq, unsigned cf, int mode, int state) {
    if (g_nrecs == g_caprecs) {
        g_caprecs = g_caprecs ? g_caprecs * 2 : 4096;
        g_recs = realloc(g_recs, g_caprecs * sizeof *g_recs);
        if (g_recs == NULL) {
            setup_fail("out of memory");
        }
    }
    record *r = &g_recs[g_nrecs++];
    memset(r, 0, sizeof *r);
    r->cycle = cycle;
    r->seq = seq;
    r->cf = (uint8_t)cf;
    r->mode = (uint8_t)mode;
    r->state = (uint8_t)state;
    return r;
}

/* Reads acks-<cycle>.log into records. Returns the highest seq named in the log (-1 for an
 * empty log); counts the acknowledgements in *acks. A malformed complete line is a
 * violation (the log is the test's own; a bad line means a bug in this test or torn I/O). */
static long parse_log(unsigned cycle, int mode, uint64_t *acks) {
    char path[4096];
    snprintf(path, sizeof path, "%s/acks-%u.log", g_dir, cycle);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        setup_fail("cannot open %s: %s", path, strerror(errno));
    }
    size_t first = g_nrecs;
    /* seq -> index into g_recs for this cycle's records (seq is dense from 0). */
    size_t *by_seq = NULL, cap = 0;
    long max_seq = -1;
    *acks = 0;
    char buf[256];
    while (fgets(buf, sizeof buf, f) != NULL) {
        size_t len = strlen(buf);
        if (len == 0 || buf[len - 1] != '\n') {
            if (feof(f)) {
                g_torn_lines++; /* the last line lost its end: never acknowledged */
                fprintf(stderr, "note: cycle %u: ignoring a final line without newline\n", cycle);
                break;
            }
            violation(cycle, NULL, "over-long line in %s", path);
            break;
        }
        char tag, cfname[16];
        unsigned kc, seq;
        int consumed = 0;
        if (sscanf(buf, "%c %15s c%5u-k%7u\n%n", &tag, cfname, &kc, &seq, &consumed) != 4 ||
            (size_t)consumed != len || kc != cycle || strchr("PDbd", tag) == NULL) {
            violation(cycle, NULL, "malformed line in %s: \"%.*s\"", path, (int)len - 1, buf);
            continue;
        }
        unsigned cf = strcmp(cfname, CF_NAMES[0]) == 0 ? 0 : strcmp(cfname, CF_NAMES[1]) == 0 ? 1 : 2;
        if (cf == 2 || cf != cf_of(seq)) {
            violation(cycle, NULL, "bad column family in %s: \"%.*s\"", path, (int)len - 1, buf);
            continue;
        }
        if ((long)seq > max_seq) {
            max_seq = (long)seq;
        }
        if (seq >= cap) {
            size_t ncap = cap ? cap : 1024;
            while (ncap <= seq) {
                ncap *= 2;
            }
            by_seq = realloc(by_seq, ncap * sizeof *by_seq);
            if (by_seq == NULL) {
                setup_fail("out of memory");
            }
            for (size_t i = cap; i < ncap; i++) {
                by_seq[i] = SIZE_MAX;
            }
            cap = ncap;
        }
        size_t idx = by_seq[seq];
        record *r = idx == SIZE_MAX ? NULL : &g_recs[idx];
        bool ok = true;
        switch (tag) {
        case 'b':
            ok = r == NULL && mode == 2;
            if (ok) {
                by_seq[seq] = g_nrecs;
                add_record(cycle, seq, cf, mode, ST_BATCH_PENDING);
            }
            break;
        case 'P':
            if (r == NULL) {
                ok = mode != 2; /* batch puts were announced by an intent line */
                if (ok) {
                    by_seq[seq] = g_nrecs;
                    r = add_record(cycle, seq, cf, mode, ST_PRESENT);
                }
            } else {
                ok = r->state == ST_BATCH_PENDING;
                r->state = ST_PRESENT;
            }
            if (ok) {
                g_acks_put[mode]++;
                (*acks)++;
            }
            break;
        case 'd':
            ok = r != NULL && r->state == ST_PRESENT && mode == 3;
            if (ok) {
                r->state = ST_DELETE_PENDING;
            }
            break;
        case 'D':
            ok = r != NULL && r->state == ST_DELETE_PENDING;
            if (ok) {
                r->state = ST_ABSENT;
                g_acks_del[mode]++;
                (*acks)++;
            }
            break;
        }
        if (!ok) {
            violation(cycle, r, "log line out of order in %s: \"%.*s\"", path, (int)len - 1, buf);
        }
    }
    fclose(f);
    free(by_seq);
    /* At most one batch (the last, contiguous) can have been cut by the kill. */
    unsigned pending = 0;
    for (size_t i = first; i < g_nrecs; i++) {
        if (g_recs[i].state == ST_BATCH_PENDING) {
            pending++;
            if ((long)g_recs[i].seq + (long)MAX_BATCH <= max_seq) {
                violation(cycle, &g_recs[i], "an unacknowledged batch put that is not the last");
            }
        }
    }
    if (pending > MAX_BATCH) {
        violation(cycle, NULL, "%u unacknowledged batch puts (more than one batch)", pending);
    }
    return max_seq;
}

/* ------------------------------------------------------------------------------------------ */
/* The parent: checks                                                                         */

typedef enum { GOT_RIGHT, GOT_ABSENT, GOT_WRONG } got_kind;

static got_kind read_key(const uint64_t cfs[2], unsigned at_cycle, const record *r,
                         uint64_t *counter) {
    char key[32], want[MAX_VALUE];
    uint8_t buf[MAX_VALUE];
    size_t klen = make_key(key, sizeof key, r->cycle, r->seq);
    size_t wlen = make_value(want, sizeof want, r->cycle, r->seq);
    size_t len = 0;
    rm_error err;
    (*counter)++;
    rm_result rc = rm_get(cfs[r->cf], (const uint8_t *)key, klen, buf, sizeof buf, &len, &err);
    if (rc == RM_ERR_NOT_FOUND) {
        return GOT_ABSENT;
    }
    if (rc != RM_OK) {
        violation(at_cycle, r, "rm_get: %s: %s", rm_result_str((int32_t)rc), errmsg(&err));
        return GOT_WRONG;
    }
    if (len != wlen || memcmp(buf, want, wlen) != 0) {
        violation(at_cycle, r, "wrong value: %zu bytes \"%.40s...\", expected %zu bytes \"%.40s...\"",
                  len, (const char *)buf, wlen, want);
        return GOT_WRONG;
    }
    return GOT_RIGHT;
}

/* Checks every record (in order; the records of one cycle are contiguous). */
static void check_all(const uint64_t cfs[2], unsigned at_cycle) {
    for (size_t i = 0; i < g_nrecs; i++) {
        record *r = &g_recs[i];
        got_kind got = read_key(cfs, at_cycle, r, &g_checks);
        if (got == GOT_WRONG) {
            continue;
        }
        bool present = got == GOT_RIGHT;
        switch (r->state) {
        case ST_PRESENT:
            if (!present) {
                violation(at_cycle, r, "acknowledged put LOST (rm_get: not found)");
            }
            break;
        case ST_ABSENT:
            if (present) {
                violation(at_cycle, r, "acknowledged delete LOST (the key is still there)");
            }
            break;
        case ST_DELETE_PENDING:
        case ST_BATCH_PENDING:
            if (!r->resolved) {
                r->resolved = 1;
                r->seen_present = present;
                if (r->state == ST_DELETE_PENDING) {
                    present ? g_del_cut_dropped++ : g_del_cut_applied++;
                }
            } else if (r->seen_present != present) {
                violation(at_cycle, r, "an unacknowledged %s was %s, now %s",
                          r->state == ST_BATCH_PENDING ? "batch put" : "delete",
                          r->seen_present ? "present" : "absent", present ? "present" : "absent");
            }
            break;
        }
    }
}

/* The batch cut by the kill in `cycle` (records [first, end)): all of it or none of it. */
static void check_cut_batch(unsigned cycle, size_t first, size_t end) {
    int applied = -1;
    for (size_t i = first; i < end; i++) {
        const record *r = &g_recs[i];
        if (r->state != ST_BATCH_PENDING) {
            continue;
        }
        if (applied == -1) {
            applied = r->seen_present;
        } else if (applied != r->seen_present) {
            violation(cycle, r, "a batch was applied in part (this put is %s, an earlier one %s)",
                      r->seen_present ? "present" : "absent", applied ? "present" : "absent");
        }
    }
    if (applied == 1) {
        g_batch_cut_applied++;
    } else if (applied == 0) {
        g_batch_cut_dropped++;
    }
}

/* Keys past the log's last seq (+1: an unlogged write may have been in flight) were never
 * written: they must not exist. */
static void check_no_phantom(const uint64_t cfs[2], unsigned at_cycle, unsigned cycle,
                             long max_seq, int mode) {
    for (unsigned k = 2; k <= 3; k++) {
        record r = {.cycle = cycle, .seq = (uint32_t)(max_seq + (long)k), .mode = (uint8_t)mode};
        r.cf = (uint8_t)cf_of(r.seq);
        if (read_key(cfs, at_cycle, &r, &g_phantom_checks) != GOT_ABSENT) {
            violation(at_cycle, &r, "a key that was never written exists");
        }
    }
}

/* After the kill in `cycle`: reopen the DB, check every record so far, the batch cut by this
 * kill and the keys past this cycle's log; close gracefully and check for leaks. */
static void verify(unsigned cycle, long max_seq, int mode, size_t first) {
    rm_error err;
    uint64_t mgr = 0, db = 0, cfs[2] = {0, 0};
    char path[4096];
    snprintf(path, sizeof path, "%s/db", g_dir);
    rm_result rc = rm_manager_create(NULL, &mgr, &err);
    if (rc != RM_OK) {
        setup_fail("rm_manager_create: %s: %s", rm_result_str((int32_t)rc), errmsg(&err));
    }
    double t0 = now_s();
    rc = rm_db_open(mgr, "verify", path, NULL, CF_NAMES, 2, &db, cfs, &err);
    if (rc != RM_OK) {
        violation(cycle, NULL,
                  "rm_db_open after the kill (the dead writer's LOCK?): %s: %s",
                  rm_result_str((int32_t)rc), errmsg(&err));
        rm_manager_destroy(mgr, NULL);
        return;
    }
    double t1 = now_s();
    check_all(cfs, cycle);
    check_cut_batch(cycle, first, g_nrecs);
    check_no_phantom(cfs, cycle, cycle, max_seq, mode);
    double t2 = now_s();
    rc = rm_close(mgr, db, &err);
    if (rc != RM_OK) {
        violation(cycle, NULL, "rm_close (graceful): %s: %s", rm_result_str((int32_t)rc),
                  errmsg(&err));
    }
    /* The DB and its column families are gone; the manager's monitor is what is left. */
    uint64_t left = rm_live_objects();
    if (left != 1) {
        violation(cycle, NULL, "rm_live_objects() is %" PRIu64 " after rm_close of the DB "
                  "(expected 1: the manager's monitor)", left);
    }
    rc = rm_manager_destroy(mgr, &err);
    if (rc != RM_OK) {
        violation(cycle, NULL, "rm_manager_destroy: %s: %s", rm_result_str((int32_t)rc),
                  errmsg(&err));
    }
    uint64_t live = rm_live_objects();
    if (live != 0) {
        violation(cycle, NULL, "rm_live_objects() is %" PRIu64 " after rm_manager_destroy", live);
    }
    g_t_open += t1 - t0;
    g_t_check += t2 - t1;
    g_t_close += now_s() - t2;
}

/* ------------------------------------------------------------------------------------------ */
/* The parent: cycles                                                                         */

static uint64_t g_rng;

static uint64_t rng_next(void) {
    g_rng += 0x9e3779b97f4a7c15ULL;
    return mix64(g_rng);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void describe_status(char *buf, size_t cap, int status) {
    if (WIFEXITED(status)) {
        snprintf(buf, cap, "exited with status %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        snprintf(buf, cap, "died of signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    } else {
        snprintf(buf, cap, "status %#x", (unsigned)status);
    }
}

/* Runs one cycle; returns false when the writer did not get to be killed as planned. */
static bool run_cycle(unsigned cycle, const char *self) {
    int mode = (int)(cycle % N_MODES);
    unsigned n = 1 + (unsigned)(rng_next() % MAX_ACKS_PER_CYCLE);

    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        setup_fail("pipe2: %s", strerror(errno));
    }
    char cycle_arg[16], mode_arg[2] = {MODES[mode], '\0'};
    snprintf(cycle_arg, sizeof cycle_arg, "%u", cycle);
    fflush(NULL);
    double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0) {
        setup_fail("fork: %s", strerror(errno));
    }
    if (pid == 0) {
        if (dup2(fds[1], STDOUT_FILENO) < 0) {
            _exit(126);
        }
        char *const args[] = {(char *)self, "--child", (char *)g_dir, cycle_arg, mode_arg, NULL};
        execv("/proc/self/exe", args);
        fprintf(stderr, "durability: exec /proc/self/exe: %s\n", strerror(errno));
        _exit(127);
    }
    close(fds[1]);

    /* Read exactly n ack bytes (never more: each read asks for what is missing). */
    unsigned seen = 0;
    char buf[MAX_ACKS_PER_CYCLE];
    bool hung = false;
    while (seen < n) {
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        int p = poll(&pfd, 1, ACK_TIMEOUT_MS);
        if (p < 0 && errno == EINTR) {
            continue;
        }
        if (p == 0) {
            hung = true;
            kill(pid, SIGKILL);
            break;
        }
        ssize_t r = read(fds[0], buf, n - seen);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break; /* the writer died or closed stdout */
        }
        seen += (unsigned)r;
    }
    bool reached = seen == n;
    if (reached) {
        kill(pid, SIGKILL);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            setup_fail("waitpid: %s", strerror(errno));
        }
    }
    close(fds[0]);
    g_t_writer += now_s() - t0;
    g_acks_seen_on_pipe += seen;
    char how[96];
    describe_status(how, sizeof how, status);
    if (hung) {
        violation(cycle, NULL,
                  "the writer (mode %s) sent no ack for %d s after %u of %u acknowledgements "
                  "(killed it)",
                  MODE_TEXT[mode], ACK_TIMEOUT_MS / 1000, seen, n);
        return false;
    }
    if (!reached) {
        violation(cycle, NULL,
                  "the writer (mode %s) %s after %u of %u acknowledgements, before the kill",
                  MODE_TEXT[mode], how, seen, n);
        return false;
    }
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
        violation(cycle, NULL, "the writer (mode %s) %s, not of SIGKILL", MODE_TEXT[mode], how);
        return false;
    }

    size_t first = g_nrecs;
    uint64_t logged = 0;
    long max_seq = parse_log(cycle, mode, &logged);
    g_acks_logged += logged;
    if (logged < n) {
        violation(cycle, NULL, "the ack log holds %" PRIu64 " acknowledgements, the pipe said %u",
                  logged, n);
    }
    uint64_t checks_before = g_checks;
    verify(cycle, max_seq, mode, first);
    printf("cycle %4u  mode %c  N=%3u  logged acks %3" PRIu64 "  checked %7" PRIu64
           " keys  total records %zu\n",
           cycle, MODES[mode], n, logged, g_checks - checks_before, g_nrecs);
    return true;
}

static int parent_main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep the order of stdout and stderr in a pipe */
    g_dir = argv[1];
    g_cycles = DEFAULT_CYCLES;
    if (argc >= 3) {
        char *end;
        unsigned long c = strtoul(argv[2], &end, 10);
        if (*end != '\0' || c == 0 || c > 100000) {
            fprintf(stderr, "durability: cycles must be 1..100000, got \"%s\"\n", argv[2]);
            return 2;
        }
        g_cycles = (unsigned)c;
    }
    if (argc >= 4) {
        char *end;
        g_seed = strtoull(argv[3], &end, 10);
        if (*end != '\0' || argv[3][0] == '\0' || argv[3][0] == '-') {
            fprintf(stderr, "durability: seed must be a decimal number, got \"%s\"\n", argv[3]);
            return 2;
        }
    } else {
        g_seed = mix64((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32)) % 1000000000ULL;
    }
    g_rng = g_seed;

    if (mkdir(g_dir, 0755) != 0 && errno != EEXIST) {
        setup_fail("mkdir %s: %s", g_dir, strerror(errno));
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/db", g_dir);
    struct stat st;
    if (stat(path, &st) == 0) {
        setup_fail("%s exists: give a fresh directory", path);
    }
    if (rm_live_objects() != 0) {
        setup_fail("rm_live_objects() is not 0 at start");
    }

    printf("durability: dir %s, %u cycles, seed %" PRIu64 "\n", g_dir, g_cycles, g_seed);
    double start = now_s();
    unsigned done = 0;
    for (unsigned cycle = 0; cycle < g_cycles; cycle++) {
        bool ran = run_cycle(cycle, argv[0]);
        done += ran;
        if (!ran || g_violations > 0) {
            break; /* the first failing cycle is the one to look at */
        }
    }
    double elapsed = now_s() - start;

    uint64_t keys = 0;
    for (int m = 0; m < N_MODES; m++) {
        keys += g_acks_put[m] + g_acks_del[m];
    }
    printf("summary: seed %" PRIu64 ", cycles %u of %u, acknowledged operations %" PRIu64
           " (%zu keys), key checks %" PRIu64 " (+ %" PRIu64 " never-written keys), elapsed %.1f s\n",
           g_seed, done, g_cycles, keys, g_nrecs, g_checks, g_phantom_checks, elapsed);
    for (int m = 0; m < N_MODES; m++) {
        printf("summary:   mode %-28s %6" PRIu64 " puts %6" PRIu64 " deletes acknowledged\n",
               MODE_TEXT[m], g_acks_put[m], g_acks_del[m]);
    }
    printf("summary: ack bytes read %" PRIu64 ", acks logged %" PRIu64
           " (%" PRIu64 " more written before the kill landed); cut batches applied %u / "
           "dropped %u; cut deletes applied %u / not applied %u; torn log lines %u\n",
           g_acks_seen_on_pipe, g_acks_logged, g_acks_logged - g_acks_seen_on_pipe,
           g_batch_cut_applied, g_batch_cut_dropped, g_del_cut_applied, g_del_cut_dropped,
           g_torn_lines);
    printf("summary: time in writers (exec to death) %.1f s, reopens %.1f s, checks %.1f s, "
           "graceful closes %.1f s\n",
           g_t_writer, g_t_open, g_t_check, g_t_close);
    if (g_violations > 0) {
        if (g_violations > MAX_VIOLATIONS_SHOWN) {
            fprintf(stderr, "... %u violations in all (first %d shown)\n", g_violations,
                    MAX_VIOLATIONS_SHOWN);
        }
        fprintf(stderr,
                "durability: FAILED with %u violation(s); seed %" PRIu64
                " (reproduce the N sequence: RESMAN_DURABILITY_SEED=%" PRIu64
                " RESMAN_DURABILITY_CYCLES=%u bash tests/c/durability.sh)\n",
                g_violations, g_seed, g_seed, g_cycles);
        return 1;
    }
    printf("durability: OK\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "--child") == 0) {
        char *end;
        unsigned long cycle = strtoul(argv[3], &end, 10);
        if (*end != '\0' || strlen(argv[4]) != 1 || mode_index(argv[4][0]) < 0) {
            fprintf(stderr, "durability child: bad arguments\n");
            return 2;
        }
        return child_main(argv[2], (unsigned)cycle, argv[4][0]);
    }
    if (argc < 2 || argc > 4 || argv[1][0] == '-') {
        fprintf(stderr, "usage: %s <dir> [cycles] [seed]\n"
                        "       %s --child <dir> <cycle> <a|b|c|d>   (started by the parent)\n",
                argv[0], argv[0]);
        return 2;
    }
    return parent_main(argc, argv);
}
