/*
 * C++ test of the header-only wrapper bindings/cpp/resman.hpp.
 *
 * Self-contained C++17, no framework. Build and run through tests/cpp/run.sh, which also runs
 * it under valgrind. Every check counts; the last line is "N passed, M failed" and the exit
 * status is non-zero when M > 0.
 */
#include <stdlib.h> // mkdtemp

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "resman.hpp"

using namespace std::string_literals;
using namespace std::string_view_literals;
using resman::ColumnFamily;
using resman::Db;
using resman::Error;
using resman::Manager;
using resman::ReadOptions;
using resman::WriteOptions;

// ------------------------------------------------------------------------------------------
// Checking

static int g_passed;
static int g_failed;
static const char *g_test = "?";

static bool check_impl(bool ok, const char *file, int line, const char *expr) {
    if (ok) {
        g_passed++;
        return true;
    }
    g_failed++;
    std::fprintf(stderr, "FAIL %s:%d [%s]: %s\n", file, line, g_test, expr);
    return false;
}

#define CHECK(cond) check_impl(static_cast<bool>(cond), __FILE__, __LINE__, #cond)

/* Runs `stmt`; passes when it throws resman::Error with `want`. The error is kept in
 * g_last_error for further checks. */
static std::optional<Error> g_last_error;

static bool check_throws_impl(const std::function<void()> &f, rm_result want, const char *file,
                              int line, const char *expr) {
    g_last_error.reset();
    try {
        f();
    } catch (const Error &e) {
        g_last_error = e;
        if (e.code() == want && e.is(want)) {
            g_passed++;
            return true;
        }
        g_failed++;
        std::fprintf(stderr, "FAIL %s:%d [%s]: %s\n      threw %d (%s), expected %d (%s): %s\n",
                     file, line, g_test, expr, static_cast<int>(e.code()), e.code_str(),
                     static_cast<int>(want), rm_result_str(static_cast<int32_t>(want)),
                     e.what());
        return false;
    } catch (const std::exception &e) {
        g_failed++;
        std::fprintf(stderr, "FAIL %s:%d [%s]: %s\n      threw a non-resman exception: %s\n",
                     file, line, g_test, expr, e.what());
        return false;
    }
    g_failed++;
    std::fprintf(stderr, "FAIL %s:%d [%s]: %s\n      did not throw (expected %s)\n", file, line,
                 g_test, expr, rm_result_str(static_cast<int32_t>(want)));
    return false;
}

#define CHECK_THROWS(stmt, want)                                                               \
    check_throws_impl([&]() { stmt; }, (want), __FILE__, __LINE__, #stmt)

/* Runs `stmt`; passes when it does not throw (the exception is printed otherwise). */
static bool check_ok_impl(const std::function<void()> &f, const char *file, int line,
                          const char *expr) {
    try {
        f();
    } catch (const std::exception &e) {
        g_failed++;
        std::fprintf(stderr, "FAIL %s:%d [%s]: %s\n      threw: %s\n", file, line, g_test, expr,
                     e.what());
        return false;
    }
    g_passed++;
    return true;
}

#define CHECK_OK(stmt) check_ok_impl([&]() { stmt; }, __FILE__, __LINE__, #stmt)

#define BEGIN_TEST()                                                                           \
    g_test = __func__;                                                                         \
    std::fprintf(stderr, "--- %s\n", __func__)

static bool contains(std::string_view hay, std::string_view needle) {
    return hay.find(needle) != std::string_view::npos;
}

/* The top-level "resources" array of a status document (the live resources, not the history;
 * "memory" and "last_cleanup" have keys of that name too, earlier in the document). */
static std::string_view resources_of(std::string_view json) {
    std::size_t b = json.find("\"recently_closed\":");
    std::size_t a = json.rfind("\"resources\":[", b);
    if (a == std::string_view::npos || b == std::string_view::npos || b < a) {
        return {};
    }
    return json.substr(a, b - a);
}

/* The last record of `name` in the "recently_closed" history, "" if none. */
static std::string_view closed_record_of(std::string_view json, const std::string &name) {
    std::size_t from = json.find("\"recently_closed\":");
    if (from == std::string_view::npos) {
        return {};
    }
    std::string needle = "\"name\":\"" + name + "\"";
    std::size_t at = json.rfind(needle);
    if (at == std::string_view::npos || at < from) {
        return {};
    }
    std::size_t end = json.find('}', at);
    return json.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
}

/* Errors that destructors swallowed and passed to the handler. */
struct SwallowedError {
    std::string what;
    rm_result code;
    std::string message;
};
static std::mutex g_swallowed_mu;
static std::vector<SwallowedError> g_swallowed;

static void on_destructor_error(const char *what, rm_result code, const char *message) {
    std::lock_guard<std::mutex> lock(g_swallowed_mu);
    g_swallowed.push_back(SwallowedError{what, code, message});
}

static std::size_t swallowed_count() {
    std::lock_guard<std::mutex> lock(g_swallowed_mu);
    return g_swallowed.size();
}

static std::string g_root; // the temporary directory of the whole run

/* Default settings, but a failed close is retried 1 ms later (not 1 s): tests with throwing
 * callbacks stay fast, natively and under valgrind. */
static resman::Config fast_retries() {
    resman::Config c;
    c.retry_delay = std::chrono::milliseconds(1);
    return c;
}

/* The number after `"key":` in `json` (the first occurrence at or after `from`), or -1. */
static double number_after(std::string_view json, const std::string &key, std::size_t from = 0) {
    std::string needle = "\"" + key + "\":";
    std::size_t at = json.find(needle, from);
    if (at == std::string_view::npos) {
        return -1;
    }
    return std::strtod(std::string(json.substr(at + needle.size(), 32)).c_str(), nullptr);
}

/* Waits up to 10 s for `cond`. */
static bool eventually(const std::function<bool()> &cond) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!cond()) {
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

static std::string dir_for(const char *name) { return g_root + "/" + name; }

/* A value of `n` bytes that is not one repeated byte (so truncation or shifting shows). */
static std::string pattern(std::size_t n, char seed) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; i++) {
        s[i] = static_cast<char>(seed + static_cast<char>(i % 61));
    }
    return s;
}

// ------------------------------------------------------------------------------------------
// Tests

static void test_version_and_errors() {
    BEGIN_TEST();
    CHECK(std::strcmp(rm_version(), RM_VERSION_STRING) == 0);
    Error e(RM_ERR_CLOSED, "detail text", "op");
    CHECK(e.code() == RM_ERR_CLOSED);
    CHECK(e.is(RM_ERR_CLOSED) && !e.is(RM_ERR_ALREADY_CLOSED));
    CHECK(e.message() == "detail text");
    CHECK(std::string(e.what()) == "op: closed: detail text");
    const std::runtime_error &base = e; // catchable as a std::runtime_error
    CHECK(contains(base.what(), "detail text"));
}

/* put / get / get_into / del on two column families, the retry path, binary data. */
static void test_data(const Db &db) {
    BEGIN_TEST();
    ColumnFamily def = db.cf("default");
    ColumnFamily users = db.cf("users");
    CHECK(db.cf_count() == 2);
    CHECK(db.cf(std::size_t{1}) == users);
    CHECK(def != users && def.db() == db.handle() && users.db() == db.handle());
    CHECK(db.cf_names() == (std::vector<std::string>{"default", "users"}));
    CHECK_THROWS(db.cf("nope"), RM_ERR_INVALID_ARGUMENT);
    CHECK_THROWS(db.cf(std::size_t{2}), RM_ERR_INVALID_ARGUMENT);

    CHECK_OK(db.put(users, "alice", "admin"));
    CHECK_OK(db.put(def, "alice", "default-alice"));
    CHECK(db.get(users, "alice") == "admin"s);
    CHECK(db.get(def, "alice") == "default-alice"s);

    // A missing key is std::nullopt / false, never an exception.
    std::optional<std::string> missing;
    CHECK_OK(missing = db.get(users, "nobody"));
    CHECK(!missing.has_value());
    std::string out = "leftover";
    bool found = true;
    CHECK_OK(found = db.get_into(users, "nobody", out));
    CHECK(!found && out.empty());

    // An empty value is a value, not a missing key; binary keys and values with NULs.
    CHECK_OK(db.put(def, "empty", ""));
    std::optional<std::string> empty = db.get(def, "empty");
    CHECK(empty.has_value() && empty->empty());
    const std::string bin_key("k\0ey"s), bin_val("\0v\0al\0"s);
    CHECK_OK(db.put(def, bin_key, bin_val));
    CHECK(db.get(def, bin_key) == bin_val);
    CHECK(!db.get(def, "k").has_value()); // the key is not cut at its NUL
    CHECK_OK(db.put(def, "", "empty key"));
    CHECK(db.get(def, std::string_view()) == "empty key"s); // NULL data, length 0

    // Larger than the string's inline room: read in the same call into a string of its size.
    const std::string big = pattern(100000, 'a');
    CHECK_OK(db.put(users, "big", big));
    std::optional<std::string> got_big = db.get(users, "big");
    CHECK(got_big.has_value() && got_big->size() == big.size() && *got_big == big);
    CHECK(db.get(users, "alice") == "admin"s);
    for (std::size_t n : {15u, 16u, 17u, 1000u, 4096u}) { // around SSO and page sizes
        const std::string v = pattern(n, 'q');
        CHECK_OK(db.put(users, "sized", v));
        CHECK(db.get(users, "sized") == v);
        std::string small_into = "x";
        CHECK(db.get_into(users, "sized", small_into) && small_into == v);
    }

    // get_into: grows `out` once, then reuses its buffer.
    std::string into;
    CHECK(db.get_into(users, "big", into) && into == big);
    const char *buffer_before = into.data();
    std::size_t capacity_before = into.capacity();
    CHECK(db.get_into(users, "alice", into) && into == "admin");
    CHECK(db.get_into(users, "big", into) && into == big);
    CHECK(into.data() == buffer_before && into.capacity() == capacity_before);
    // The key may alias the output string.
    std::string alias = "alice";
    CHECK(db.get_into(users, alias, alias) && alias == "admin");

    // Write flags.
    CHECK_OK(db.put(def, "synced", "1", WriteOptions::sync()));
    CHECK_OK(db.put(def, "nowal", "2", WriteOptions::disable_wal()));
    CHECK(db.get(def, "synced") == "1"s && db.get(def, "nowal") == "2"s);
    CHECK_THROWS(db.put(def, "k", "v", WriteOptions{RM_WRITE_SYNC | RM_WRITE_DISABLE_WAL}),
                 RM_ERR_INVALID_ARGUMENT);
    CHECK_THROWS(db.get(def, "k", ReadOptions(0, 0x80)), RM_ERR_INVALID_ARGUMENT);
    CHECK(db.get(def, "synced", ReadOptions(0, RM_READ_NO_FILL_CACHE)) == "1"s);

    // Delete.
    CHECK_OK(db.put(def, "gone", "soon"));
    CHECK_OK(db.del(def, "gone"));
    CHECK(!db.get(def, "gone").has_value());
    CHECK_OK(db.del(def, "never-existed"));

    rm_memory mem{};
    CHECK_OK(mem = db.memory());
    CHECK(mem.mem_table_total > 0);
}

/* One batch across both column families: put, delete, delete_range, count, write, clear. */
static void test_batch(const Db &db) {
    BEGIN_TEST();
    ColumnFamily def = db.cf("default");
    ColumnFamily users = db.cf("users");
    for (const char *k : {"r1", "r2", "r3", "r9"}) {
        db.put(def, k, "x");
    }
    db.put(users, "to-delete", "x");

    resman::Batch b = db.batch();
    CHECK(b.handle() != 0);
    CHECK_OK(b.put(def, "b-def", "1").put(users, "b-users", "2"));
    CHECK_OK(b.del(users, "to-delete"));
    CHECK_OK(b.delete_range(def, "r1", "r3")); // r1, r2 (r3 is the end, excluded)
    CHECK(b.count() == 4);
    // Nothing is applied before write.
    CHECK(!db.get(def, "b-def").has_value());
    CHECK_OK(b.write());
    CHECK(b.count() == 0);
    CHECK(db.get(def, "b-def") == "1"s);
    CHECK(db.get(users, "b-users") == "2"s);
    CHECK(!db.get(users, "to-delete").has_value());
    CHECK(!db.get(def, "r1").has_value() && !db.get(def, "r2").has_value());
    CHECK(db.get(def, "r3") == "x"s && db.get(def, "r9") == "x"s);

    // Writing the emptied batch again applies nothing.
    db.put(def, "b-def", "changed");
    CHECK_OK(b.write(WriteOptions::sync()));
    CHECK(db.get(def, "b-def") == "changed"s);

    // clear() drops what was added.
    b.put(def, "cleared", "1");
    CHECK(b.count() == 1);
    CHECK_OK(b.clear());
    CHECK(b.count() == 0);
    b.write();
    CHECK(!db.get(def, "cleared").has_value());

    CHECK_THROWS(b.delete_range(def, "z", "a"), RM_ERR_INVALID_ARGUMENT);

    // Explicit close; the destructor then does nothing, a second close is an error.
    CHECK_OK(b.close());
    CHECK_THROWS(b.put(def, "k", "v"), RM_ERR_CLOSED);
    CHECK_THROWS(b.close(), RM_ERR_ALREADY_CLOSED);
}

/* Reads at a snapshot see the data as it was; a released snapshot is refused. */
static void test_snapshot(const Db &db) {
    BEGIN_TEST();
    ColumnFamily def = db.cf("default");
    ColumnFamily users = db.cf("users");
    db.put(def, "snap", "v1");
    db.put(users, "snap-u", "u1");
    resman::Snapshot s = db.snapshot();
    CHECK(s.handle() != 0);
    db.put(def, "snap", "v2");
    db.del(users, "snap-u");
    db.put(def, "snap-new", "n");

    CHECK(db.get(def, "snap") == "v2"s);
    CHECK(db.get(def, "snap", s) == "v1"s);
    CHECK(db.get(def, "snap", ReadOptions(s, RM_READ_NO_VERIFY_CHECKSUMS)) == "v1"s);
    CHECK(db.get(users, "snap-u", s) == "u1"s);
    CHECK(!db.get(users, "snap-u").has_value());
    CHECK(!db.get(def, "snap-new", s).has_value());
    std::string out;
    CHECK(db.get_into(def, "snap", out, s) && out == "v1");

    std::vector<std::optional<std::string>> at = db.multi_get({def, users, def},
                                                              {"snap", "snap-u", "snap-new"}, s);
    CHECK(at.size() == 3 && at[0] == "v1"s && at[1] == "u1"s && !at[2].has_value());

    resman::Iterator it = db.iterator(def, "snap"sv, "snap\xff"sv, s);
    std::vector<std::string> keys;
    for (auto [k, v] : it) {
        keys.emplace_back(k);
        CHECK(v == "v1");
    }
    CHECK(keys == std::vector<std::string>{"snap"});
    CHECK_THROWS(it.refresh(), RM_ERR_INVALID_ARGUMENT); // it would leave its snapshot behind

    // Releasing the snapshot closes its iterator first; reads at it are refused.
    CHECK_OK(s.close());
    CHECK_THROWS(db.get(def, "snap", ReadOptions(s.handle(), 0)), RM_ERR_CLOSED);
    CHECK_THROWS(it.first(), RM_ERR_CLOSED);
    CHECK_THROWS(s.close(), RM_ERR_ALREADY_CLOSED);
}

/* Positioning, bounds, the range-for adaptor, the two-call pattern on keys and values. */
static void test_iterator(const Db &db) {
    BEGIN_TEST();
    ColumnFamily def = db.cf("default");
    ColumnFamily users = db.cf("users");
    for (const char *k : {"i:a", "i:b", "i:c", "i:d", "i:e"}) {
        db.put(def, k, std::string("val-") + k);
    }

    resman::Iterator it = db.iterator(def, "i:b"sv, "i:e"sv);
    std::vector<std::pair<std::string, std::string>> seen;
    for (auto [k, v] : it) {
        seen.emplace_back(std::string(k), std::string(v));
    }
    CHECK(seen.size() == 3);
    CHECK(seen.size() == 3 && seen[0].first == "i:b" && seen[1].first == "i:c" &&
          seen[2].first == "i:d");
    CHECK(seen.size() == 3 && seen[2].second == "val-i:d");

    std::vector<std::string> from_c;
    for (auto entry : it.from("i:c")) {
        from_c.emplace_back(entry.first);
    }
    CHECK(from_c == (std::vector<std::string>{"i:c", "i:d"}));

    CHECK(it.last() && it.key() == "i:d");
    CHECK(it.prev() && it.key() == "i:c" && it.value() == "val-i:c");
    CHECK(it.valid());
    CHECK(it.seek_for_prev("i:cz") && it.key() == "i:c");
    CHECK(it.seek("i:a") && it.key() == "i:b"); // below the lower bound: clamped
    CHECK(!it.seek("i:z"));
    CHECK(!it.valid());
    CHECK_THROWS(it.next(), RM_ERR_ITERATOR_NOT_VALID);
    CHECK_THROWS(it.key(), RM_ERR_ITERATOR_NOT_VALID);
    CHECK_THROWS(it.entry(), RM_ERR_ITERATOR_NOT_VALID);
    std::size_t n = 0;
    for (auto e : it.from("i:zz")) { // an empty range
        (void)e;
        n++;
    }
    CHECK(n == 0);

    // refresh: the same iterator sees a later write after it, unpositioned until a seek.
    db.put(def, "i:c2", "late");
    CHECK(it.seek("i:c") && it.next() && it.key() == "i:d"); // not yet
    it.refresh();
    CHECK(!it.valid());
    CHECK(it.seek("i:c") && it.next() && it.key() == "i:c2" && it.value() == "late");
    db.del(def, "i:c2"); // the checks below expect the five keys alone
    it.refresh();
    CHECK(it.seek("i:c") && it.next() && it.key() == "i:d");

    // An empty upper bound is the empty key (nothing is below it), not "no bound".
    resman::Iterator none = db.iterator(def, std::nullopt, std::string_view());
    CHECK(!none.first());
    // No bounds at all: every key, including the empty one.
    resman::Iterator all = db.iterator(def);
    CHECK(all.first() && all.key().empty());

    // A value larger than the iterator's first buffers: entry(), key() and value() retry.
    const std::string big = pattern(100000, 'a'); // written by test_data
    const std::string long_key = pattern(3000, 'K');
    db.put(users, long_key, "long-key-value");
    resman::Iterator u = db.iterator(users);
    CHECK(u.seek("big"));
    auto [k, v] = u.entry();
    CHECK(k == "big" && v.size() == big.size() && v == big);
    CHECK(u.value() == big);
    CHECK(u.seek(long_key) && u.key() == long_key);
    auto e2 = u.entry();
    CHECK(e2.first == long_key && e2.second == "long-key-value");

    // Batched reads: the same entries as stepping, across buffer growth, both ways.
    std::vector<std::pair<std::string, std::string>> got;
    CHECK(it.first() && it.read_next(got, 2) == 2 && it.valid() && it.key() == "i:d");
    CHECK(it.read_next(got) == 1 && !it.valid() && it.read_next(got) == 0);
    CHECK(got == seen);
    got.clear();
    CHECK(it.last() && it.read_prev(got) == 3 && !it.valid());
    CHECK(got.size() == 3 && got[0].first == "i:d" && got[2].first == "i:b");
    got.clear();
    CHECK(u.seek("big") && u.read_next(got, 1) == 1);
    CHECK(got.size() == 1 && got[0].first == "big" && got[0].second == big);
    CHECK(u.seek(long_key) && u.read_prev(got, 1) == 1 && got.back().first == long_key);
    resman::Iterator closed = db.iterator(def);
    CHECK(closed.first());
    closed.close();
    CHECK_THROWS(closed.read_next(got), RM_ERR_CLOSED);

    CHECK_THROWS(db.iterator(def, "b"sv, "a"sv), RM_ERR_INVALID_ARGUMENT);
}

/* multi_get over several column families and one, a missing key, a value that needs a retry. */
static void test_multi_get(const Db &db) {
    BEGIN_TEST();
    ColumnFamily def = db.cf("default");
    ColumnFamily users = db.cf("users");
    const std::string big = pattern(100000, 'a'); // written by test_data
    db.put(def, "mg-1", "one");
    db.put(users, "mg-2", "two");

    std::vector<std::optional<std::string>> r;
    CHECK_OK(r = db.multi_get({def, users, users, def}, {"mg-1", "nope", "big", "mg-1"}));
    CHECK(r.size() == 4);
    if (r.size() == 4) {
        CHECK(r[0] == "one"s);
        CHECK(!r[1].has_value());
        CHECK(r[2].has_value() && r[2]->size() == big.size() && *r[2] == big);
        CHECK(r[3] == "one"s);
    }
    CHECK_OK(r = db.multi_get(users, {"mg-2", "big", "nope", "alice"}));
    CHECK(r.size() == 4 && r[0] == "two"s && r[1] == big && !r[2].has_value() &&
          r[3] == "admin"s);
    CHECK_OK(r = db.multi_get(users, {}));
    CHECK(r.empty());
    // Neither one column family nor one per key: refused by the library.
    CHECK_THROWS(db.multi_get({def, users}, {"a", "b", "c"}), RM_ERR_INVALID_ARGUMENT);
}

static void test_status(const Manager &m, const Db &db) {
    BEGIN_TEST();
    std::string json;
    CHECK_OK(json = m.status());
    CHECK(!json.empty() && json.front() == '{' && json.back() == '}');
    CHECK(std::strlen(json.c_str()) == json.size()); // no NUL kept inside
    CHECK(json.size() > 1024); // larger than the first buffer: the retry path was taken
    CHECK(contains(resources_of(json), "\"name\":\"" + db.name() + "\""));
    CHECK(contains(resources_of(json), "\"name\":\"main/users\""));
    // Every manager has its monitor thread as a resource.
    CHECK(contains(resources_of(json), "\"name\":\"resman.monitor\",\"kind\":\"monitor\""));
    CHECK(contains(json, "\"config\":{\"cleanup_timeout_ms\":30000,"));
    CHECK(contains(json, "\"last_cleanup\":"));
}

/* The codes of misuse: wrong DB, double close, use after close, moved-from objects. */
static void test_error_codes(const Manager &m, const Db &db) {
    BEGIN_TEST();
    ColumnFamily users = db.cf("users");
    Db other = Db::open(m, "other", dir_for("other"), {"default"});
    ColumnFamily ocf = other.cf("default");
    other.put(ocf, "o", "1");

    // Wrong DB, caught by the library: a batch, a snapshot, an iterator at a snapshot.
    resman::Batch b = db.batch();
    CHECK_THROWS(b.put(ocf, "k", "v"), RM_ERR_WRONG_DB);
    resman::Snapshot os = other.snapshot();
    CHECK_THROWS(db.get(users, "alice", os), RM_ERR_WRONG_DB);
    CHECK_THROWS(db.iterator(users, std::nullopt, std::nullopt, os), RM_ERR_WRONG_DB);
    CHECK_THROWS(db.multi_get(users, {"alice"}, os), RM_ERR_WRONG_DB);
    // ... and by the wrapper, where the C call takes only the column family.
    CHECK_THROWS(db.put(ocf, "k", "v"), RM_ERR_WRONG_DB);
    CHECK_THROWS(db.get(ocf, "o"), RM_ERR_WRONG_DB);
    CHECK_THROWS(db.multi_get({users, ocf}, {"a", "o"}), RM_ERR_WRONG_DB);
    CHECK(other.get(ocf, "o") == "1"s);

    // Objects of `other` still open when it closes: the close sweeps them.
    resman::Iterator oit = other.iterator(ocf);
    resman::Batch ob = other.batch();
    CHECK(oit.first());

    // Double close and use after close. A forced close does not wait for operations in flight
    // (there are none) but waits up to its timeout for the native closes to finish.
    CHECK_OK(other.close(std::chrono::seconds(10), true));
    CHECK_THROWS(other.close(), RM_ERR_ALREADY_CLOSED);
    if (g_last_error) {
        CHECK(contains(g_last_error->what(), "rm_close: already closed"));
        CHECK(!g_last_error->message().empty());
    }
    CHECK_THROWS(other.put(ocf, "o", "2"), RM_ERR_CLOSED);
    CHECK_THROWS(other.get(ocf, "o"), RM_ERR_CLOSED);
    std::string out;
    CHECK_THROWS(other.get_into(ocf, "o", out), RM_ERR_CLOSED);
    CHECK_THROWS(other.multi_get(ocf, {"o"}), RM_ERR_CLOSED);
    CHECK_THROWS(other.snapshot(), RM_ERR_CLOSED);
    CHECK_THROWS(other.batch(), RM_ERR_CLOSED);
    CHECK_THROWS(other.memory(), RM_ERR_CLOSED);
    CHECK_THROWS(oit.next(), RM_ERR_CLOSED);
    CHECK_THROWS(ob.put(ocf, "k", "v"), RM_ERR_CLOSED);
    CHECK_THROWS(ob.close(), RM_ERR_ALREADY_CLOSED);
    CHECK_THROWS(os.close(), RM_ERR_ALREADY_CLOSED);
    CHECK_THROWS(db.get(users, "alice", ReadOptions(os.handle(), 0)), RM_ERR_CLOSED);
    // The destructors of oit, os and other now meet closed handles: silently.
    std::string json = m.status();
    std::string_view rec = closed_record_of(json, "other");
    CHECK(contains(rec, "\"outcome\":\"closed\"") && contains(rec, "\"forced\":true"));
    CHECK(contains(rec, "\"leaked_iterators\":1") && contains(rec, "\"leaked_snapshots\":1"));
}

/* Moved-from objects are inert; move assignment releases what the target held. */
static void test_moves(Db &db) {
    BEGIN_TEST();
    ColumnFamily def = db.cf("default");
    const uint64_t live0 = rm_live_objects();

    {
        Manager a;
        const uint64_t h = a.handle();
        Manager b(std::move(a));
        CHECK(a.handle() == 0 && !a && b.handle() == h);
        Manager c;
        c = std::move(b); // destroys c's first manager
        CHECK(b.handle() == 0 && c.handle() == h);
    } // c destroys h; a and b do nothing

    {
        resman::Iterator a = db.iterator(def);
        CHECK(rm_live_objects() == live0 + 1);
        resman::Iterator b(std::move(a));
        CHECK(a.handle() == 0 && !a && b.handle() != 0);
        CHECK(rm_live_objects() == live0 + 1);
        CHECK_THROWS(a.first(), RM_ERR_INVALID_HANDLE);
        CHECK(b.first());
        resman::Iterator c;
        c = std::move(b);
        CHECK(c.first() && rm_live_objects() == live0 + 1);
    }
    CHECK(rm_live_objects() == live0);

    {
        resman::Batch b1 = db.batch();
        resman::Batch b2 = db.batch();
        const uint64_t old = b1.handle();
        CHECK(rm_live_objects() == live0 + 2);
        b1 = std::move(b2); // closes the batch b1 held
        CHECK(rm_live_objects() == live0 + 1);
        std::size_t n = 0;
        CHECK(rm_batch_count(old, &n, nullptr) == RM_ERR_CLOSED);
        CHECK(b2.handle() == 0 && b1.handle() != old);
        CHECK_THROWS(b2.count(), RM_ERR_INVALID_HANDLE);
        CHECK(b1.count() == 0);
        resman::Snapshot s1 = db.snapshot();
        resman::Snapshot s2(std::move(s1));
        CHECK(s1.handle() == 0 && s2.handle() != 0);
        CHECK(db.get(def, "synced", s2) == "1"s);
        resman::Snapshot empty;
        CHECK_THROWS(empty.close(), RM_ERR_INVALID_HANDLE);
    }
    CHECK(rm_live_objects() == live0);

    // The Db itself: the moved-from one refuses, and does not close the DB when destroyed.
    {
        Db moved(std::move(db));
        CHECK(!db && db.handle() == 0 && moved.handle() == def.db());
        CHECK_THROWS(db.put(def, "k", "v"), RM_ERR_INVALID_HANDLE);
        CHECK_THROWS(db.memory(), RM_ERR_INVALID_HANDLE);
        CHECK(moved.get(def, "synced") == "1"s);
        db = std::move(moved);
    } // moved is empty again: nothing closed
    CHECK(db.get(def, "synced") == "1"s);
    CHECK(rm_live_objects() == live0);
}

/* Handles cross threads; each thread has its own scratch buffer. */
static void test_threads(const Db &db) {
    BEGIN_TEST();
    ColumnFamily users = db.cf("users");
    std::atomic<int> bad{0};
    auto work = [&](int id) {
        try {
            for (int i = 0; i < 40; i++) {
                std::string key = "t" + std::to_string(id) + "-" + std::to_string(i);
                std::string val = pattern(1500 + static_cast<std::size_t>(i), 'A');
                db.put(users, key, val);
                if (db.get(users, key) != val) {
                    bad++;
                }
            }
        } catch (...) {
            bad++;
        }
    };
    std::thread t1(work, 1), t2(work, 2);
    t1.join();
    t2.join();
    CHECK(bad.load() == 0);
    CHECK(db.get(users, "t2-39") == pattern(1539, 'A'));
}

/* A registered C++ resource whose callback throws: the failure comes back with its text. */
static void test_throwing_callbacks() {
    BEGIN_TEST();
    Manager m(fast_retries()); // max_retries 3: a throwing callback runs 4 times
    // A capture big enough for valgrind to see it leak if the context were not freed.
    auto payload = std::make_shared<std::vector<char>>(4096, 'p');
    std::atomic<int> thrower_runs{0};

    resman::Resource thrower = m.register_resource("thrower", [payload, &thrower_runs] {
        thrower_runs++;
        throw std::runtime_error("disk on fire: " + std::to_string(payload->size()));
    });
    CHECK_THROWS(m.cleanup(), RM_ERR_CLOSE_FAILED);
    if (g_last_error) {
        CHECK(contains(g_last_error->message(), "disk on fire: 4096"));
        CHECK(contains(g_last_error->message(), "thrower"));
        CHECK(contains(g_last_error->message(), "failed 4 times"));
        CHECK(contains(g_last_error->what(), "rm_cleanup: close failed: "));
    }
    CHECK(thrower_runs.load() == 4);
    CHECK_THROWS(thrower.close(), RM_ERR_ALREADY_CLOSED);
    CHECK(thrower_runs.load() == 4);

    // Not a std::exception; closed on its own.
    resman::Resource int_thrower = m.register_resource("int-thrower", [] { throw 42; });
    CHECK_THROWS(int_thrower.close(), RM_ERR_CLOSE_FAILED);
    if (g_last_error) {
        CHECK(contains(g_last_error->message(), "non-std::exception"));
        CHECK(contains(g_last_error->message(), "int-thrower"));
    }

    // Two failures in one cleanup aggregate; one is the wrapper refusing a re-entrant cleanup.
    m.register_resource("a", [] { throw std::logic_error("first failure"); });
    m.register_resource("b", [&m] { m.cleanup(); });
    CHECK_THROWS(m.cleanup(), RM_ERR_CLEANUP_FAILED);
    if (g_last_error) {
        // The message lists every attempt of both (4 each) and is cut at RM_ERROR_MESSAGE_MAX;
        // the status document's record of the run has them all.
        CHECK(contains(g_last_error->message(), "2 resource(s) did not close cleanly (2 failed"));
        std::string json = m.status();
        std::string_view run = std::string_view(json).substr(json.find("\"last_cleanup\":"));
        CHECK(contains(run, "first failure"));
        CHECK(contains(run, "inside a close callback"));
    }

    // A destroy refused inside a callback leaves the manager alive; its destructor destroys it.
    uint64_t victim_handle = 0;
    {
        Manager victim;
        victim_handle = victim.handle();
        m.register_resource("reentrant", [&victim] { victim.destroy(); });
        CHECK_THROWS(m.cleanup(), RM_ERR_CLOSE_FAILED);
        if (g_last_error) {
            CHECK(contains(g_last_error->message(), "rm_manager_destroy: invalid argument"));
        }
        CHECK_OK(victim.status());
    }
    std::size_t len = 0;
    rm_result rc = rm_status(victim_handle, nullptr, 0, &len, nullptr);
    CHECK(rc == RM_ERR_CLOSED || rc == RM_ERR_STALE_HANDLE);

    // A message longer than the callback's buffer is cut, at a character boundary.
    std::string long_text;
    for (int i = 0; i < 400; i++) {
        long_text += "\xc3\xa9"; // é
    }
    m.register_resource("long", [long_text] { throw std::runtime_error(long_text); });
    CHECK_THROWS(m.cleanup(), RM_ERR_CLOSE_FAILED);
    if (g_last_error) {
        CHECK(contains(g_last_error->message(), "\xc3\xa9\xc3\xa9"));
        CHECK(!contains(g_last_error->message(), "\xef\xbf\xbd")); // no U+FFFD from a cut
    }

    // A failing callback in the destructor's destroy: swallowed, passed to the handler.
    const std::size_t before = swallowed_count();
    {
        Manager scoped(fast_retries());
        scoped.register_resource("at-exit", [payload] { throw std::runtime_error("late"); });
    }
    CHECK(swallowed_count() == before + 1);
    {
        std::lock_guard<std::mutex> lock(g_swallowed_mu);
        if (g_swallowed.size() == before + 1) {
            const SwallowedError &s = g_swallowed.back();
            CHECK(s.what == "Manager" && s.code == RM_ERR_CLOSE_FAILED &&
                  contains(s.message, "late"));
            g_swallowed.pop_back(); // expected: not counted as unexpected at the end
        }
    }
    CHECK(payload.use_count() == 1); // every callback (and its capture) is gone

    CHECK_THROWS(m.register_resource("empty", std::function<void()>()),
                 RM_ERR_INVALID_ARGUMENT);
    CHECK_THROWS(m.register_resource("bad\0name"s, [] {}), RM_ERR_INVALID_ARGUMENT);
    CHECK_OK(m.destroy());
    CHECK_THROWS(m.destroy(), RM_ERR_ALREADY_CLOSED);
    CHECK_THROWS(m.status(), RM_ERR_CLOSED);
    CHECK_THROWS(m.register_resource("late", [] {}), RM_ERR_CLOSED);
}

/* resman::Config: resman's defaults, every field passed on, ranges checked by resman. */
static void test_config() {
    BEGIN_TEST();
    using std::chrono::milliseconds;
    resman::Config d;
    CHECK(d.cleanup_timeout == milliseconds(30000) && d.force_cleanup_timeout == milliseconds(5000));
    CHECK(d.monitor_interval == milliseconds(10000) && d.max_retries == 3 &&
          d.retry_delay == milliseconds(1000));
    CHECK_OK(d.validate());
    {
        Manager legacy(milliseconds(1234)); // the cleanup timeout alone, the rest default
        CHECK(legacy.config().cleanup_timeout == milliseconds(1234));
        CHECK(legacy.config().force_cleanup_timeout == milliseconds(5000));
    }

    resman::Config c;
    c.cleanup_timeout = milliseconds(1500);
    c.force_cleanup_timeout = milliseconds(250);
    c.monitor_interval = milliseconds(60000);
    c.max_retries = 0;
    c.retry_delay = milliseconds(7);
    Manager m(c);
    CHECK(m.config().max_retries == 0 && m.config().retry_delay == milliseconds(7));
    std::string json = m.status();
    CHECK(contains(json, "\"config\":{\"cleanup_timeout_ms\":1500,\"force_cleanup_timeout_ms\":250,"
                         "\"monitor_interval_ms\":60000,\"max_retries\":0,\"retry_delay_ms\":7}"));

    // Out of range: refused by resman, naming the setting; negative: refused by the wrapper.
    struct Bad {
        std::function<void(resman::Config &)> set;
        const char *name;
    };
    const Bad bad[] = {
        {[](resman::Config &x) { x.cleanup_timeout = milliseconds(0); }, "cleanup_timeout"},
        {[](resman::Config &x) { x.force_cleanup_timeout = std::chrono::hours(2); },
         "force_cleanup_timeout"},
        {[](resman::Config &x) { x.monitor_interval = milliseconds(5); }, "monitor_interval"},
        {[](resman::Config &x) { x.max_retries = 101; }, "max_retries"},
        {[](resman::Config &x) { x.retry_delay = milliseconds(-1); }, "retry_delay"},
    };
    for (const Bad &b : bad) {
        resman::Config x;
        b.set(x);
        if (CHECK_THROWS(x.validate(), RM_ERR_INVALID_ARGUMENT) && g_last_error) {
            CHECK(contains(g_last_error->message(), b.name));
        }
        if (CHECK_THROWS(Manager bad_manager(x), RM_ERR_INVALID_ARGUMENT) && g_last_error) {
            CHECK(contains(g_last_error->message(), b.name));
        }
    }
}

/* rm_metrics through Manager::metrics(), after cleanups: counters, retries, histograms. */
static void test_metrics() {
    BEGIN_TEST();
    resman::Config c = fast_retries();
    c.monitor_interval = std::chrono::milliseconds(10);
    Manager m(c);
    rm_metrics before = m.metrics();
    CHECK(before.registered == 1 && before.active == 1); // the monitor
    CHECK(before.cleanups == 0 && before.close_duration.count == 0);

    {
        Db db = Db::open(m, "metrics", dir_for("metrics"), {"default"});
        for (int i = 0; i < 50; i++) {
            db.put(db.cf("default"), "k" + std::to_string(i), pattern(100, 'm'));
        }
        // The monitor samples every 10 ms: it soon counts the open DB.
        CHECK(eventually([&] {
            rm_metrics x = m.metrics();
            return x.memory_reporting == 1 && x.mem_table_total > 0;
        }));
        rm_metrics open = m.metrics();
        CHECK(open.memory_age_ms != UINT64_MAX && open.memory_samples > 0 &&
              open.registry_bytes > 0);
        CHECK(open.registered == 3 && open.active == 3);
    } // the Db's destructor: a close run (db and its column family)

    int flaky_runs = 0;
    m.register_resource("flaky", [&flaky_runs] {
        if (++flaky_runs < 3) {
            throw std::runtime_error("not yet");
        }
    });
    CHECK_OK(m.cleanup()); // the monitor and flaky (closed on the third attempt)
    CHECK(flaky_runs == 3);

    rm_metrics x = m.metrics();
    CHECK(x.registered == 4 && x.active == 0 && x.closing == 0);
    CHECK(x.closed == 4 && x.failed == 0 && x.timed_out == 0);
    CHECK(x.retries == 2 && x.close_errors == 2);
    CHECK(x.cleanups == 2 && x.cleanups_failed == 0 && x.escalations == 0);
    CHECK(x.cleanup_duration.count == 2 && x.close_duration.count == 4);
    for (const rm_histogram *h : {&x.cleanup_duration, &x.close_duration}) {
        CHECK(h->sum_seconds >= 0 && h->buckets[RM_HISTOGRAM_BUCKETS - 1] <= h->count);
        for (int i = 1; i < RM_HISTOGRAM_BUCKETS; i++) {
            CHECK(h->le[i] > h->le[i - 1] && h->buckets[i] >= h->buckets[i - 1]);
        }
    }
    // The status document's totals and last run agree.
    std::string json = m.status();
    std::size_t totals = json.find("\"totals\":");
    CHECK(number_after(json, "retries", totals) == 2);
    CHECK(number_after(json, "cleanups", totals) == 2);
    std::size_t last = json.find("\"last_cleanup\":{");
    CHECK(last != std::string::npos);
    CHECK(contains(json.substr(last), "\"operation\":\"cleanup\""));
    CHECK(number_after(json, "attempts", json.find("\"name\":\"flaky\"", last)) == 3);

    CHECK_OK(m.destroy());
    CHECK_THROWS(m.metrics(), RM_ERR_CLOSED);
}

/* A callback that hangs: the cleanup returns within its bound with RM_ERR_TIMEOUT naming it,
 * an unrelated resource still closes, and the callback is not run on the caller's thread. */
static void test_hung_callback() {
    BEGIN_TEST();
    resman::Config c;
    c.cleanup_timeout = std::chrono::milliseconds(200);
    c.force_cleanup_timeout = std::chrono::milliseconds(200);
    Manager m(c);
    std::atomic<bool> release{false}, entered{false}, returned{false}, other_ran{false};
    std::atomic<bool> on_caller_thread{false};
    const std::thread::id caller = std::this_thread::get_id();
    m.register_resource("hung", [&] {
        entered = true;
        on_caller_thread = on_caller_thread || std::this_thread::get_id() == caller;
        while (!release.load()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        returned = true;
    });
    m.register_resource("other", [&] {
        other_ran = true;
        on_caller_thread = on_caller_thread || std::this_thread::get_id() == caller;
    });
    auto start = std::chrono::steady_clock::now();
    CHECK_THROWS(m.cleanup(), RM_ERR_TIMEOUT);
    auto took = std::chrono::steady_clock::now() - start;
    if (g_last_error) {
        CHECK(contains(g_last_error->message(), "hung"));
        CHECK(!contains(g_last_error->message(), "other"));
    }
    CHECK(took < std::chrono::seconds(10));
    CHECK(entered.load() && !returned.load() && other_ran.load());
    CHECK(!on_caller_thread.load());
    rm_metrics x = m.metrics();
    CHECK(x.timed_out == 1 && x.escalations == 1 && x.cleanups_failed == 1);

    release = true; // it returns, and closes: the manager's destruction finds nothing left
    CHECK(eventually([&] { return returned.load(); }));
    CHECK(eventually([&] { return m.metrics().closed == 3; })); // monitor, other, hung
    CHECK_OK(m.destroy());
}

/* Callbacks that succeed: exactly once, in dependency order; unregister hands them back. */
static void test_callbacks(const Manager &m, const Db &db) {
    BEGIN_TEST();
    auto payload = std::make_shared<std::vector<char>>(4096, 'q');
    std::vector<std::string> order;
    int before_runs = 0, after_runs = 0, unreg_runs = 0, at_destroy_runs = 0;
    bool db_open_in_before = false, db_gone_in_after = false;
    const std::string db_entry = "\"name\":\"" + db.name() + "\"";

    // Closes before the DB (a dependent of it): the DB is still registered when it runs.
    resman::Resource before = m.register_resource(
        "before-db",
        [&, payload] {
            before_runs++;
            order.push_back("before-db");
            db_open_in_before = contains(resources_of(m.status()), db_entry);
        },
        {db.handle()});
    // Closes after the DB (the DB depends on it): the DB is gone when it runs.
    resman::Resource after = m.register_resource("after-db", [&, payload] {
        after_runs++;
        order.push_back("after-db");
        db_gone_in_after = !contains(resources_of(m.status()), db_entry);
    });
    CHECK_OK(m.add_dependency(db.handle(), after.handle()));
    CHECK_THROWS(m.add_dependency(after.handle(), db.handle()), RM_ERR_CYCLE);

    // Unregister hands the callback back without running it; only once.
    resman::Resource unreg = m.register_resource("unreg", [&, payload] { unreg_runs++; });
    resman::Resource copy = unreg; // a non-owning view: copies are fine
    std::function<void()> back;
    CHECK_OK(back = unreg.unregister());
    CHECK(static_cast<bool>(back) && unreg_runs == 0);
    CHECK_THROWS(copy.unregister(), RM_ERR_ALREADY_CLOSED);
    CHECK_THROWS(unreg.close(), RM_ERR_ALREADY_CLOSED);
    back(); // ours now
    CHECK(unreg_runs == 1);
    back = nullptr;

    // A resource with a dependent cannot be unregistered; duplicate names are refused.
    resman::Resource parent = m.register_resource("parent", [&, payload] {});
    resman::Resource child = m.register_resource("child", [&, payload] {}, {parent.handle()});
    CHECK_THROWS(parent.unregister(), RM_ERR_HAS_DEPENDENTS);
    CHECK_THROWS(m.register_resource("parent", [payload] {}), RM_ERR_DUPLICATE_NAME);
    CHECK_OK(child.unregister());
    CHECK_OK(parent.unregister());
    // Handle 0 is never valid.
    CHECK_THROWS(m.close(0), RM_ERR_INVALID_HANDLE);

    // A close refused inside a callback leaves the object open; its destructor closes it.
    {
        resman::Snapshot snap = db.snapshot();
        const uint64_t live = rm_live_objects();
        resman::Resource re = m.register_resource("reentrant", [&snap] { snap.close(); });
        CHECK_THROWS(re.close(), RM_ERR_CLOSE_FAILED);
        if (g_last_error) {
            CHECK(contains(g_last_error->message(), "inside a close callback"));
        }
        CHECK(db.get(db.cf("users"), "alice", snap) == "admin"s);
        CHECK(rm_live_objects() == live);
    }
    {
        std::string json = m.status();
        CHECK(!contains(resources_of(json), "\"kind\":\"snapshot\""));
    }

    // One that is never closed explicitly: its manager's destruction runs it.
    {
        Manager own;
        own.register_resource("at-destroy", [&, payload] { at_destroy_runs++; });
        CHECK(at_destroy_runs == 0);
    }
    CHECK(at_destroy_runs == 1);

    // The cleanup closes before-db, the DB (and its column families), then after-db.
    CHECK_OK(m.cleanup());
    CHECK(before_runs == 1 && after_runs == 1);
    CHECK(order == (std::vector<std::string>{"before-db", "after-db"}));
    CHECK(db_open_in_before);
    CHECK(db_gone_in_after);
    CHECK_THROWS(db.get(db.cf("users"), "alice"), RM_ERR_CLOSED);
    CHECK_THROWS(before.close(), RM_ERR_ALREADY_CLOSED);
    CHECK_THROWS(before.unregister(), RM_ERR_ALREADY_CLOSED);
    CHECK_OK(m.cleanup()); // nothing left: no callback runs twice
    CHECK(before_runs == 1 && after_runs == 1 && unreg_runs == 1);
    CHECK(payload.use_count() == 1); // every context was freed exactly once
    CHECK_THROWS(m.register_resource("needs-db", [] {}, {db.handle()}),
                 RM_ERR_DEPENDENCY_CLOSED);
}

/* The Db destructor closes gracefully: the DB can be reopened and kept its data. */
static void test_destructor_closes(const Manager &m) {
    BEGIN_TEST();
    const std::string path = dir_for("graceful");
    {
        Db d = Db::open(m, "graceful", path, {"default", {"zstd", RM_COMPRESSION_ZSTD}});
        d.put(d.cf("zstd"), "k", "not in the WAL", WriteOptions::disable_wal());
        resman::Iterator left_open = d.iterator(d.cf("zstd"));
        CHECK(left_open.first());
    } // left_open, then d: closed in their destructors
    std::string json = m.status();
    std::string_view rec = closed_record_of(json, "graceful");
    CHECK(contains(rec, "\"outcome\":\"closed\"") && contains(rec, "\"forced\":false"));
    CHECK(contains(rec, "\"leaked_iterators\":0"));

    // Reopened in a manager that is destroyed before the Db and Iterator objects: destroying
    // the manager closes them, and their destructors then find closed handles (silently).
    const std::size_t swallowed = swallowed_count();
    Db again;
    resman::Iterator it;
    {
        Manager m2;
        rm_db_options opts = resman::db_options();
        opts.create_if_missing = 0;
        again = Db::open(m2, "graceful", path, {"default", "zstd"}, opts);
        CHECK(again.get(again.cf("zstd"), "k") == "not in the WAL"s);
        it = again.iterator(again.cf("zstd"));
        CHECK(it.first() && it.key() == "k");
    }
    CHECK_THROWS(again.get(again.cf("zstd"), "k"), RM_ERR_CLOSED);
    CHECK_THROWS(it.first(), RM_ERR_CLOSED);
    CHECK_THROWS(again.close(), RM_ERR_ALREADY_CLOSED); // the manager's destroy closed it
    it = resman::Iterator();                   // releases the old one: silently
    CHECK(swallowed_count() == swallowed);

    CHECK_THROWS(Db::open(m, "x", "bad\0path"s, {"default"}), RM_ERR_INVALID_ARGUMENT);
    CHECK_THROWS(Db::open(m, "x", dir_for("x"), {"default", "default"}), RM_ERR_INVALID_ARGUMENT);
}

int main() {
    std::setvbuf(stderr, nullptr, _IONBF, 0);
    resman::set_destructor_error_handler(on_destructor_error);

    char tmpl[] = "/tmp/resman-cpptest-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
        std::perror("mkdtemp");
        return 2;
    }
    g_root = tmpl;

    test_version_and_errors();
    test_config();
    test_metrics();
    test_hung_callback();
    try {
        Manager m(fast_retries());
        Db db = Db::open(m, "main", dir_for("main"), {"default", "users"});
        test_data(db);
        test_batch(db);
        test_snapshot(db);
        test_iterator(db);
        test_multi_get(db);
        test_status(m, db);
        test_error_codes(m, db);
        test_moves(db);
        test_threads(db);
        test_throwing_callbacks();
        test_callbacks(m, db); // closes db (cleanup)
        test_destructor_closes(m);
    } catch (const std::exception &e) {
        g_failed++;
        std::fprintf(stderr, "FAIL [%s]: unexpected exception: %s\n", g_test, e.what());
    }

    g_test = "main";
    // Every wrapper object is destroyed: nothing may be left, and no destructor met an
    // unexpected error.
    uint64_t live = rm_live_objects();
    if (!CHECK(live == 0)) {
        std::fprintf(stderr, "      rm_live_objects() = %" PRIu64 "\n", live);
    }
    CHECK(swallowed_count() == 0);
    for (const SwallowedError &s : g_swallowed) {
        std::fprintf(stderr, "      swallowed by %s: %s: %s\n", s.what.c_str(),
                     rm_result_str(static_cast<int32_t>(s.code)), s.message.c_str());
    }

    std::error_code ec;
    std::filesystem::remove_all(g_root, ec);
    if (ec) {
        std::fprintf(stderr, "warning: could not remove %s: %s\n", g_root.c_str(),
                     ec.message().c_str());
    }
    std::printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed > 0 ? 1 : 0;
}
