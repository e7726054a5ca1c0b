/*
 * resman.hpp: a header-only C++17 wrapper of resman's C ABI (include/resman.h).
 *
 * Include path: -Iinclude -Ibindings/cpp; link libresman.a (or libresman.so) as for C:
 *   g++ -std=c++17 -Iinclude -Ibindings/cpp app.cpp target/release/libresman.a \
 *       -lstdc++ -lm -ldl -lpthread
 *
 * ERRORS. Every failing call throws resman::Error, a std::runtime_error carrying the
 * rm_result code (`code()`, `is(RM_ERR_...)`) and the library's detail message (`message()`).
 * Exceptions to that rule, by design: a missing key is not an error (`get` returns
 * std::nullopt, `get_into` returns false, `multi_get` yields std::nullopt for that key), and
 * destructors never throw (see below). A few checks are made by the wrapper itself before
 * calling the library, with the library's codes: an embedded NUL in a name or path
 * (RM_ERR_INVALID_ARGUMENT), a column family of another Db passed to a Db method
 * (RM_ERR_WRONG_DB: the C data calls take only the column-family handle, so without the check
 * `db1.put(cf_of_db2, ...)` would silently write to the other DB), an empty callback.
 *
 * OWNERSHIP. Every type is a thin owner (or view) of u64 handles; the native objects are
 * resman's and are never freed here.
 *  - Manager: owns a manager (settings: resman::Config). Its destructor calls
 *    rm_manager_destroy, which closes everything still registered in it (dependents first,
 *    graceful within the cleanup timeout, then forced within the force cleanup timeout);
 *    errors are swallowed (see "Destructors"). destroy() does the same and throws.
 *  - Db: owns a DB and its column families. Its destructor closes the DB GRACEFULLY with
 *    rm_close: the DB's iterators, snapshots, batches and column families close first, every
 *    column family is flushed and the WAL synced, bounded by the manager's cleanup timeout
 *    (then forced, bounded by its force cleanup timeout).
 *    close() does the same and throws; close(timeout, force) bounds or forces it.
 *  - ColumnFamily: a copyable, non-owning view (its handle and its DB's handle). The Db owns
 *    it: after the Db is closed, calls with it fail with RM_ERR_CLOSED, never crash.
 *  - Iterator, Snapshot, Batch: each owns one handle and closes it (rm_close) in its
 *    destructor. They may outlive their Db or Manager object: closing a DB closes its
 *    iterators, snapshots and batches first, and the destructor then ignores the
 *    RM_ERR_ALREADY_CLOSED / RM_ERR_CLOSED (/ RM_ERR_STALE_HANDLE) it gets.
 *  - Resource (from Manager::register_resource): a copyable, non-owning view of a resource
 *    you registered; the manager owns the resource until it is closed or unregistered.
 *  Objects that close through rm_close keep the manager's handle (a number), never a
 *  reference to the Manager object, so destruction order between wrapper objects does not
 *  matter: destroying the Manager first closes everything, and the other destructors then
 *  find their handles closed.
 *
 * MOVES. Manager, Db, Iterator, Snapshot and Batch are move-only (copy deleted, noexcept
 * move). A moved-from object holds handle 0: its destructor does nothing, and calls on it fail
 * with RM_ERR_INVALID_HANDLE. Move-assigning into an object first releases (closes) what it
 * held, as its destructor would.
 *
 * DESTRUCTORS never throw. They ignore the codes that mean "already gone"
 * (RM_ERR_ALREADY_CLOSED, RM_ERR_CLOSED, RM_ERR_STALE_HANDLE); any other failure (a DB whose
 * flush failed, a close callback that failed, a timeout) is passed to the handler installed
 * with resman::set_destructor_error_handler (none by default: silently dropped). Call close()
 * or destroy() explicitly where the outcome matters.
 *
 * THREADS. resman itself is thread-safe and handles may cross threads. In this wrapper:
 *  - Manager and Db data methods (put, get, get_into, del, multi_get, memory, snapshot,
 *    batch, iterator, status, register_resource, cleanup...) are const and may be called on
 *    one object from many threads at once, including while another thread calls close() (the
 *    operations then fail with RM_ERR_CLOSED). multi_get uses a per-thread scratch
 *    buffer. Do not move, assign or destroy an object while other threads use it, and do not
 *    call close()/destroy() on one object from two threads at once.
 *  - An Iterator or a Batch object must not be used from two threads at once (an Iterator
 *    holds the key/value buffers its views point into). Either may be handed to another thread.
 *  - A close callback given to register_resource runs on one of resman's close threads (never
 *    the thread that called close(), cleanup() or destroy()), possibly concurrently with the
 *    callbacks of unrelated resources; once if it succeeds, up to max_retries + 1 times if it
 *    throws, never twice at once.
 */
#ifndef RESMAN_HPP
#define RESMAN_HPP

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <new>
#include <memory>
#include <optional>
#include <stdexcept>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "resman.h"

namespace resman {

// ------------------------------------------------------------------------------------------
// Errors

/// The exception every failing call throws: the rm_result code and the library's message.
class Error : public std::runtime_error {
public:
    /// `op` names the call that failed (for what()); `message` is the detail text.
    Error(rm_result code, std::string message, const char *op = nullptr)
        : std::runtime_error(format(code, message, op)), code_(code),
          message_(std::move(message)) {}

    /// The code the failing call returned.
    rm_result code() const noexcept { return code_; }
    /// True if the call failed with `c`.
    bool is(rm_result c) const noexcept { return code_ == c; }
    /// The library's detail message (rm_error.message), without the code's text.
    const std::string &message() const noexcept { return message_; }
    /// Static text of the code (rm_result_str).
    const char *code_str() const noexcept { return rm_result_str(static_cast<int32_t>(code_)); }

private:
    static std::string format(rm_result code, const std::string &message, const char *op) {
        std::string s;
        if (op != nullptr) {
            s += op;
            s += ": ";
        }
        s += rm_result_str(static_cast<int32_t>(code));
        if (!message.empty()) {
            s += ": ";
            s += message;
        }
        return s;
    }

    rm_result code_;
    std::string message_;
};

/// Called when a destructor swallows an unexpected error, on the destroying thread (so
/// possibly concurrently). `what` names the object ("Db", "Manager", ...). Must not throw
/// (an exception is caught and dropped).
using DestructorErrorHandler = void (*)(const char *what, rm_result code, const char *message);

namespace detail {

inline std::atomic<DestructorErrorHandler> &destructor_handler() noexcept {
    static std::atomic<DestructorErrorHandler> handler{nullptr};
    return handler;
}

/// The detail text of an rm_error, bounded by the array even if not NUL-terminated.
inline std::string message_of(const rm_error &err) {
    const void *nul = std::memchr(err.message, '\0', sizeof err.message);
    std::size_t n = nul != nullptr ? static_cast<std::size_t>(static_cast<const char *>(nul) -
                                                              err.message)
                                   : sizeof err.message;
    return std::string(err.message, n);
}

[[noreturn]] inline void fail(rm_result rc, const rm_error &err, const char *op) {
    throw Error(rc, message_of(err), op);
}

inline void check(rm_result rc, const rm_error &err, const char *op) {
    if (rc != RM_OK) {
        fail(rc, err, op);
    }
}

/// Codes a destructor expects when its object was already closed by someone else.
inline bool already_gone(rm_result rc) noexcept {
    return rc == RM_ERR_ALREADY_CLOSED || rc == RM_ERR_CLOSED || rc == RM_ERR_STALE_HANDLE;
}

/// Whether a close or destroy call that returned `rc` closed the handle (or found it closed).
/// Only a refusal before anything started leaves it open: RM_ERR_INVALID_ARGUMENT is what
/// resman returns for a close, cleanup or destroy called from inside a close callback.
inline bool close_attempted(rm_result rc) noexcept { return rc != RM_ERR_INVALID_ARGUMENT; }

inline void report_destructor_error(const char *what, rm_result rc,
                                    const rm_error &err) noexcept {
    DestructorErrorHandler h = destructor_handler().load(std::memory_order_acquire);
    if (h == nullptr) {
        return;
    }
    // The message is NUL-terminated inside the array (the library's contract); force it anyway.
    char msg[RM_ERROR_MESSAGE_MAX];
    std::memcpy(msg, err.message, sizeof msg);
    msg[sizeof msg - 1] = '\0';
    try {
        h(what, rc, msg);
    } catch (...) {
    }
}

/// A pointer for `n` bytes of `s` that is never NULL (a default std::string_view has a NULL
/// data(); the C ABI tells a NULL bound from an empty one).
inline const uint8_t *bytes(std::string_view s) noexcept {
    static const char empty[1] = {0};
    return reinterpret_cast<const uint8_t *>(s.data() != nullptr ? s.data() : empty);
}

inline uint8_t *bytes(std::string &s) noexcept {
    return reinterpret_cast<uint8_t *>(&s[0]);
}

/// A NUL-terminated copy of a name or path; an embedded NUL would silently cut it.
inline const std::string &c_string(const std::string &s, const char *what) {
    if (s.find('\0') != std::string::npos) {
        throw Error(RM_ERR_INVALID_ARGUMENT, std::string(what) + " contains a NUL byte");
    }
    return s;
}

/// Starting size of the buffers the two-call pattern fills.
constexpr std::size_t kInitialBuffer = 1024;
/// A per-thread scratch buffer larger than this is given back after the call.
constexpr std::size_t kRetainedScratch = 64 * 1024;
/// A buffer-filling call is retried at most this many times when the value keeps growing
/// between the calls (a concurrent writer); then RM_ERR_BUFFER_TOO_SMALL is thrown.
constexpr int kMaxRetries = 4;

/// The per-thread scratch buffer of multi_get, with the guard that shrinks it back.
inline std::string &scratch() {
    thread_local std::string buf;
    return buf;
}

/// Gives the scratch buffer at least kInitialBuffer bytes of room (its size is its
/// capacity), and gives a large one back to the allocator afterwards.
class ScratchGuard {
public:
    explicit ScratchGuard(std::string &buf) : buf_(buf) {
        buf_.resize(std::max(buf_.capacity(), kInitialBuffer));
    }
    ~ScratchGuard() {
        if (buf_.capacity() > kRetainedScratch) {
            std::string().swap(buf_);
        }
    }
    ScratchGuard(const ScratchGuard &) = delete;
    ScratchGuard &operator=(const ScratchGuard &) = delete;

private:
    std::string &buf_;
};

/// The two-call pattern for calls of the shape f(buf, cap, &len, &err): fills `out` with the
/// result and returns RM_OK, or returns the failing code (err filled). `out`'s capacity is
/// reused; on BUFFER_TOO_SMALL it grows to the needed size and the call is retried.
/// rm_multi_get_alloc's allocator: malloc (the caller frees with FreeBytes).
inline uint8_t *malloc_bytes(void *, size_t len) noexcept {
    return static_cast<uint8_t *>(std::malloc(len));
}

/// Frees what malloc_bytes returned.
struct FreeBytes {
    void operator()(uint8_t *p) const noexcept { std::free(p); }
};

/// rm_get_alloc's allocator: grows the std::string passed as the context to `len` bytes.
/// Never throws through C: an allocation failure is a NULL (the read then reports
/// RM_ERR_BUFFER_TOO_SMALL and `read_value` throws std::bad_alloc).
inline uint8_t *grow_string(void *context, size_t len) noexcept {
    try {
        auto *s = static_cast<std::string *>(context);
        s->resize(len);
        return bytes(*s);
    } catch (...) {
        return nullptr;
    }
}

/// One point read, one RocksDB lookup whatever the value's size: into `out`'s capacity when
/// the value fits, else into a string of its exact size that then replaces `out`. Returns
/// the code (RM_OK, RM_ERR_NOT_FOUND or a failure in `err`); `out` holds the value on RM_OK.
inline rm_result read_value(uint64_t cf, uint64_t snapshot, uint32_t flags,
                            std::string_view key, std::string &out, rm_error &err) {
    out.resize(out.capacity());
    std::string spill; // never overlaps `out`, as rm_get_alloc requires
    uint8_t *value = nullptr;
    size_t len = 0;
    rm_result rc = rm_get_alloc(cf, snapshot, flags, bytes(key), key.size(), bytes(out),
                                out.size(), grow_string, &spill, &value, &len, &err);
    if (rc == RM_OK) {
        if (value == bytes(out)) {
            out.resize(len);
        } else {
            out.swap(spill);
        }
    } else if (rc == RM_ERR_BUFFER_TOO_SMALL) {
        throw std::bad_alloc(); // only when grow_string could not allocate
    }
    return rc;
}

template <class Call> rm_result fill(std::string &out, rm_error &err, Call &&call) {
    if (out.size() < out.capacity()) {
        out.resize(out.capacity());
    }
    for (int attempt = 0;; ++attempt) {
        std::size_t len = 0;
        rm_result rc = call(bytes(out), out.size(), &len, &err);
        if (rc == RM_OK) {
            out.resize(len);
            return rc;
        }
        if (rc != RM_ERR_BUFFER_TOO_SMALL || attempt == kMaxRetries || len <= out.size()) {
            return rc;
        }
        out.resize(len);
    }
}

/// A close callback registered from C++, with its attempts so far.
struct CloseContext {
    std::function<void()> fn;
    /// Calls made (a failed close is retried); calls never overlap, resman serialises them.
    std::atomic<uint32_t> attempts{0};
    /// 1 + the manager's max_retries: resman never calls a callback more often.
    uint32_t max_attempts = 1;
};

/// The close callbacks registered from C++, by id. resman gets the id as its `context`, never
/// a pointer: a failed close is retried, and nothing tells a callback which call is its last,
/// so a context is erased only when no further call can come (a success, the last attempt the
/// manager's max_retries allows, or a successful unregister). A call whose id is gone fails
/// cleanly instead of touching freed memory. Ids are never reused. (resman calls a callback
/// exactly until it succeeds or has failed 1 + max_retries times, so every entry is erased.)
/// Thread-safe.
class CloseRegistry {
public:
    uint64_t add(std::function<void()> fn, uint32_t max_attempts) {
        auto ctx = std::make_shared<CloseContext>();
        ctx->fn = std::move(fn);
        ctx->max_attempts = max_attempts == 0 ? 1 : max_attempts;
        std::lock_guard<std::mutex> lock(mu_);
        uint64_t id = ++next_;
        live_.emplace(id, std::move(ctx));
        return id;
    }
    std::shared_ptr<CloseContext> find(uint64_t id) noexcept {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = live_.find(id);
        return it == live_.end() ? nullptr : it->second;
    }
    /// Erases the entry; the callback (and its captures) is destroyed with the last reference,
    /// outside the lock.
    void remove(uint64_t id) noexcept {
        std::shared_ptr<CloseContext> gone;
        std::lock_guard<std::mutex> lock(mu_);
        auto it = live_.find(id);
        if (it != live_.end()) {
            gone = std::move(it->second);
            live_.erase(it);
        }
    }
    /// Erases the entry and hands its callback back (an empty function if it is gone).
    std::function<void()> take(uint64_t id) {
        std::shared_ptr<CloseContext> ctx;
        {
            std::lock_guard<std::mutex> lock(mu_);
            auto it = live_.find(id);
            if (it == live_.end()) {
                return {};
            }
            ctx = std::move(it->second);
            live_.erase(it);
        }
        return std::move(ctx->fn);
    }

private:
    std::mutex mu_;
    uint64_t next_ = 0;
    std::unordered_map<uint64_t, std::shared_ptr<CloseContext>> live_;
};

/// The process's registry. Never destroyed: resman's close threads may still call a callback
/// while static objects are being destroyed at exit.
inline CloseRegistry &close_registry() {
    static CloseRegistry *registry = new CloseRegistry;
    return *registry;
}

/// Copies `text` into the callback's message buffer, cut at a UTF-8 character boundary.
inline void copy_message(char *message, std::size_t cap, const char *text) noexcept {
    if (message == nullptr || cap == 0) {
        return;
    }
    std::size_t n = std::strlen(text);
    if (n > cap - 1) {
        n = cap - 1;
        while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) {
            --n; // text[n] continues a character: cut before that character
        }
    }
    std::memcpy(message, text, n);
    message[n] = '\0';
}

} // namespace detail

/// Installs the handler for errors swallowed by destructors (nullptr: drop them). Returns the
/// previous handler. Thread-safe.
inline DestructorErrorHandler set_destructor_error_handler(DestructorErrorHandler h) noexcept {
    return detail::destructor_handler().exchange(h, std::memory_order_acq_rel);
}

} // namespace resman

/* The C trampoline of every close callback registered from C++: C language linkage (it is
 * called by resman as an rm_close_fn, on one of its close threads), noexcept, and it never
 * lets an exception out. `context` is the callback's id in the CloseRegistry. */
extern "C" inline int32_t resman_cpp_close_trampoline(void *context, char *message,
                                                      size_t message_cap) noexcept {
    const uint64_t id = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(context));
    resman::detail::CloseRegistry &registry = resman::detail::close_registry();
    std::shared_ptr<resman::detail::CloseContext> ctx = registry.find(id);
    if (!ctx) {
        resman::detail::copy_message(message, message_cap,
                                     "resman.hpp: the close callback was already released");
        return 1;
    }
    int32_t rc = 0;
    try {
        ctx->fn();
    } catch (const std::exception &e) {
        resman::detail::copy_message(message, message_cap, e.what());
        rc = 1;
    } catch (...) {
        resman::detail::copy_message(message, message_cap,
                                     "close callback threw a non-std::exception");
        rc = 1;
    }
    const uint32_t attempts = ctx->attempts.fetch_add(1) + 1;
    if (rc == 0 || attempts >= ctx->max_attempts) {
        registry.remove(id); // resman will not call it again
    }
    return rc;
}

namespace resman {

// ------------------------------------------------------------------------------------------
// Options

/// Write flags for put, del and Batch::write: 0, RM_WRITE_SYNC or RM_WRITE_DISABLE_WAL.
struct WriteOptions {
    uint32_t flags = 0;

    static WriteOptions sync() { return WriteOptions{RM_WRITE_SYNC}; }
    static WriteOptions disable_wal() { return WriteOptions{RM_WRITE_DISABLE_WAL}; }
};

class Snapshot;

/// Read options for get, get_into, multi_get and iterators: a snapshot handle (0: the latest
/// data) and read flags (RM_READ_NO_FILL_CACHE, RM_READ_NO_VERIFY_CHECKSUMS).
struct ReadOptions {
    uint64_t snapshot = 0;
    uint32_t flags = 0;

    ReadOptions() = default;
    ReadOptions(uint64_t snapshot_handle, uint32_t read_flags)
        : snapshot(snapshot_handle), flags(read_flags) {}
    /// Reads at `s` (which must stay open for the reads).
    ReadOptions(const Snapshot &s, uint32_t read_flags = 0); // NOLINT: implicit on purpose
};

/// The default DB options (rm_db_options_default); change fields and pass to Db::open.
inline rm_db_options db_options() {
    rm_db_options o;
    rm_db_options_default(&o);
    return o;
}

/// One column family for Db::open: a name and its compression (RM_COMPRESSION_INHERIT: the
/// DB's). Implicit from a string, so `{"default", "users"}` works.
struct CfSpec {
    std::string name;
    uint32_t compression = RM_COMPRESSION_INHERIT;

    CfSpec(const char *n, uint32_t c = RM_COMPRESSION_INHERIT) : name(n), compression(c) {}
    CfSpec(std::string n, uint32_t c = RM_COMPRESSION_INHERIT)
        : name(std::move(n)), compression(c) {}
};

// ------------------------------------------------------------------------------------------
// Owned handles (the common part of Db, Iterator, Snapshot and Batch)

namespace detail {

/// One handle closed with rm_close(manager, handle) by its destructor.
class OwnedHandle {
public:
    OwnedHandle(const OwnedHandle &) = delete;
    OwnedHandle &operator=(const OwnedHandle &) = delete;

    /// The handle (0 for a moved-from object).
    uint64_t handle() const noexcept { return handle_; }
    /// The handle of the manager the object was created in.
    uint64_t manager() const noexcept { return mgr_; }
    /// False for a moved-from object.
    explicit operator bool() const noexcept { return handle_ != 0; }

    /// Closes gracefully (rm_close): dependents first, waiting for in-flight operations up to
    /// the manager's cleanup timeout, then forced for up to its force cleanup timeout. The
    /// handle is dead afterwards even when this throws
    /// (RM_ERR_CLOSE_FAILED, RM_ERR_TIMEOUT, ...), and the destructor then does nothing; a
    /// second close throws RM_ERR_ALREADY_CLOSED. The one exception: called from inside a close
    /// callback, the close is refused (RM_ERR_INVALID_ARGUMENT) and the object stays open.
    void close() {
        rm_error err;
        rm_result rc = rm_close(mgr_, handle_, &err);
        closed_ = closed_ || detail::close_attempted(rc);
        detail::check(rc, err, "rm_close");
    }

    /// rm_close_timeout. `force` false: a graceful phase of `timeout`, then a forced phase of
    /// the manager's force_cleanup_timeout. `force` true: operations in flight are not waited
    /// for (the last one to end starts the native close, on a resman thread) and the call
    /// waits up to `timeout` for the native closes to finish; what has not finished by then is
    /// reported as RM_ERR_TIMEOUT (a timeout of 0 reports anything not already done). As
    /// close().
    void close(std::chrono::milliseconds timeout, bool force) {
        rm_error err;
        uint64_t ms = timeout.count() < 0 ? 0 : static_cast<uint64_t>(timeout.count());
        rm_result rc = rm_close_timeout(mgr_, handle_, ms, force, &err);
        closed_ = closed_ || detail::close_attempted(rc);
        detail::check(rc, err, "rm_close_timeout");
    }

protected:
    OwnedHandle(uint64_t mgr, uint64_t handle, const char *what) noexcept
        : mgr_(mgr), handle_(handle), what_(what) {}
    OwnedHandle(OwnedHandle &&o) noexcept
        : mgr_(o.mgr_), handle_(std::exchange(o.handle_, 0)),
          closed_(std::exchange(o.closed_, false)), what_(o.what_) {}
    OwnedHandle &operator=(OwnedHandle &&o) noexcept {
        if (this != &o) {
            release();
            mgr_ = o.mgr_;
            handle_ = std::exchange(o.handle_, 0);
            closed_ = std::exchange(o.closed_, false);
            what_ = o.what_;
        }
        return *this;
    }
    ~OwnedHandle() { release(); }

    /// Closes the handle unless it is 0 or was closed explicitly; never throws.
    void release() noexcept {
        if (handle_ != 0 && !closed_) {
            rm_error err;
            rm_result rc = rm_close(mgr_, handle_, &err);
            if (rc != RM_OK && !detail::already_gone(rc)) {
                detail::report_destructor_error(what_, rc, err);
            }
        }
        handle_ = 0;
        closed_ = false;
    }

    uint64_t mgr_ = 0;
    uint64_t handle_ = 0;
    bool closed_ = false;
    const char *what_;
};

} // namespace detail

// ------------------------------------------------------------------------------------------
// Snapshot

/// A snapshot of a DB (Db::snapshot). Read at it with ReadOptions(snapshot). Release it as
/// soon as possible (it holds back compaction): close() or the destructor.
class Snapshot : public detail::OwnedHandle {
public:
    Snapshot() noexcept : OwnedHandle(0, 0, "Snapshot") {}
    Snapshot(Snapshot &&) noexcept = default;
    Snapshot &operator=(Snapshot &&) noexcept = default;
    ~Snapshot() = default;

private:
    friend class Db;
    Snapshot(uint64_t mgr, uint64_t h) noexcept : OwnedHandle(mgr, h, "Snapshot") {}
};

inline ReadOptions::ReadOptions(const Snapshot &s, uint32_t read_flags)
    : snapshot(s.handle()), flags(read_flags) {}

// ------------------------------------------------------------------------------------------
// ColumnFamily

/// A non-owning view of a column family: its handle and its DB's. Owned by the Db.
class ColumnFamily {
public:
    ColumnFamily() noexcept = default;
    uint64_t handle() const noexcept { return handle_; }
    /// The handle of the DB it belongs to.
    uint64_t db() const noexcept { return db_; }
    bool operator==(const ColumnFamily &o) const noexcept {
        return handle_ == o.handle_ && db_ == o.db_;
    }
    bool operator!=(const ColumnFamily &o) const noexcept { return !(*this == o); }

private:
    friend class Db;
    ColumnFamily(uint64_t handle, uint64_t db) noexcept : handle_(handle), db_(db) {}
    uint64_t handle_ = 0;
    uint64_t db_ = 0;
};

// ------------------------------------------------------------------------------------------
// Batch

/// A write batch (Db::batch): operations on any column family of its DB, applied atomically
/// by write(), which empties it. Do not use one Batch object from two threads at once.
class Batch : public detail::OwnedHandle {
public:
    Batch() noexcept : OwnedHandle(0, 0, "Batch") {}
    Batch(Batch &&) noexcept = default;
    Batch &operator=(Batch &&) noexcept = default;
    ~Batch() = default;

    Batch &put(ColumnFamily cf, std::string_view key, std::string_view value) {
        rm_error err;
        detail::check(rm_batch_put(handle_, cf.handle(), detail::bytes(key), key.size(),
                                   detail::bytes(value), value.size(), &err),
                      err, "rm_batch_put");
        return *this;
    }

    Batch &del(ColumnFamily cf, std::string_view key) {
        rm_error err;
        detail::check(
            rm_batch_delete(handle_, cf.handle(), detail::bytes(key), key.size(), &err), err,
            "rm_batch_delete");
        return *this;
    }

    /// Deletes every key in [begin, end).
    Batch &delete_range(ColumnFamily cf, std::string_view begin, std::string_view end) {
        rm_error err;
        detail::check(rm_batch_delete_range(handle_, cf.handle(), detail::bytes(begin),
                                            begin.size(), detail::bytes(end), end.size(), &err),
                      err, "rm_batch_delete_range");
        return *this;
    }

    void clear() {
        rm_error err;
        detail::check(rm_batch_clear(handle_, &err), err, "rm_batch_clear");
    }

    std::size_t count() const {
        rm_error err;
        std::size_t n = 0;
        detail::check(rm_batch_count(handle_, &n, &err), err, "rm_batch_count");
        return n;
    }

    /// Applies every operation atomically and empties the batch. On error nothing was
    /// applied and the content is kept (write may be retried).
    void write(WriteOptions wo = {}) {
        rm_error err;
        detail::check(rm_batch_write(handle_, wo.flags, &err), err, "rm_batch_write");
    }

private:
    friend class Db;
    Batch(uint64_t mgr, uint64_t h) noexcept : OwnedHandle(mgr, h, "Batch") {}
};

// ------------------------------------------------------------------------------------------
// Iterator

/// An iterator over one column family (Db::iterator), within optional bounds, optionally at a
/// snapshot. It starts unpositioned: seek first (or use it in a range-for). The positioning
/// calls return whether it is on an entry. Do not use one Iterator object from two threads at
/// once: entry() and the range-for return views into buffers the object owns, valid until
/// the next call on it.
class Iterator : public detail::OwnedHandle {
public:
    using Entry = std::pair<std::string_view, std::string_view>;

    Iterator() noexcept : OwnedHandle(0, 0, "Iterator") {}
    Iterator(Iterator &&) noexcept = default;
    Iterator &operator=(Iterator &&) noexcept = default;
    ~Iterator() = default;

    bool first() { return position(rm_iter_seek_to_first(handle_, &valid_, &err_), "first"); }
    bool last() { return position(rm_iter_seek_to_last(handle_, &valid_, &err_), "last"); }
    /// The first key at or after `key`.
    bool seek(std::string_view key) {
        return position(
            rm_iter_seek(handle_, detail::bytes(key), key.size(), &valid_, &err_), "seek");
    }
    /// The last key at or before `key`.
    bool seek_for_prev(std::string_view key) {
        return position(rm_iter_seek_for_prev(handle_, detail::bytes(key), key.size(), &valid_,
                                              &err_),
                        "seek_for_prev");
    }
    /// Reads the DB's latest data from now on (RocksDB's Iterator::Refresh), so one Iterator
    /// can serve scan after scan; leaves it unpositioned (seek next). Throws
    /// RM_ERR_INVALID_ARGUMENT for an iterator at a snapshot.
    void refresh() {
        valid_ = false;
        detail::check(rm_iter_refresh(handle_, &err_), err_, "rm_iter_refresh");
    }
    /// Throws RM_ERR_ITERATOR_NOT_VALID when not on an entry.
    bool next() { return position(rm_iter_next(handle_, &valid_, &err_), "next"); }
    bool prev() { return position(rm_iter_prev(handle_, &valid_, &err_), "prev"); }

    /// Whether it is on an entry (throws the RocksDB error that stopped it, if any).
    bool valid() const {
        rm_error err;
        bool v = false;
        detail::check(rm_iter_valid(handle_, &v, &err), err, "rm_iter_valid");
        return v;
    }

    /// A copy of the current key (RM_ERR_ITERATOR_NOT_VALID when not on an entry).
    std::string key() {
        rm_result rc = detail::fill(key_, err_, [this](uint8_t *b, size_t cap, size_t *len,
                                                      rm_error *e) {
            return rm_iter_key(handle_, b, cap, len, e);
        });
        detail::check(rc, err_, "rm_iter_key");
        return key_;
    }

    /// A copy of the current value.
    std::string value() {
        rm_result rc = detail::fill(val_, err_, [this](uint8_t *b, size_t cap, size_t *len,
                                                      rm_error *e) {
            return rm_iter_value(handle_, b, cap, len, e);
        });
        detail::check(rc, err_, "rm_iter_value");
        return val_;
    }

    /// The current key and value, as views into this object's buffers: valid until the next
    /// call on this iterator.
    Entry entry() {
        if (key_.size() < key_.capacity()) {
            key_.resize(key_.capacity());
        }
        if (val_.size() < detail::kInitialBuffer) {
            val_.resize(std::max(val_.capacity(), detail::kInitialBuffer));
        }
        for (int attempt = 0;; ++attempt) {
            std::size_t klen = 0, vlen = 0;
            rm_result rc = rm_iter_entry(handle_, detail::bytes(key_), key_.size(), &klen,
                                         detail::bytes(val_), val_.size(), &vlen, &err_);
            if (rc == RM_OK) {
                return Entry(std::string_view(key_.data(), klen),
                             std::string_view(val_.data(), vlen));
            }
            if (rc != RM_ERR_BUFFER_TOO_SMALL || attempt == detail::kMaxRetries) {
                detail::fail(rc, err_, "rm_iter_entry");
            }
            if (klen > key_.size()) {
                key_.resize(klen);
            }
            if (vlen > val_.size()) {
                val_.resize(vlen);
            }
        }
    }

    /// Appends up to `max` entries to `out`, the current one first and then forwards, and
    /// leaves the iterator on the first entry not read; returns how many were appended (0 when
    /// not on an entry). Each call into resman (rm_iter_read_next) copies as many entries as
    /// fit in this object's buffer, so a scan costs a call per batch, not per entry:
    /// `for (it.first(); it.read_next(batch) > 0;) { ... }`.
    std::size_t read_next(std::vector<std::pair<std::string, std::string>> &out,
                          std::size_t max = 128) {
        return read(out, max, true);
    }
    /// As read_next, backwards: the current entry, then the one before it, and so on.
    std::size_t read_prev(std::vector<std::pair<std::string, std::string>> &out,
                          std::size_t max = 128) {
        return read(out, max, false);
    }

    /// Input iterator of the range-for adaptor; yields entry() (views, see there).
    class Cursor {
    public:
        using iterator_category = std::input_iterator_tag;
        using value_type = Entry;
        using difference_type = std::ptrdiff_t;
        using pointer = void;
        using reference = Entry;

        Entry operator*() const { return it_->entry(); }
        Cursor &operator++() {
            if (!it_->next()) {
                it_ = nullptr;
            }
            return *this;
        }
        bool operator==(const Cursor &o) const noexcept { return it_ == o.it_; }
        bool operator!=(const Cursor &o) const noexcept { return it_ != o.it_; }

    private:
        friend class Iterator;
        explicit Cursor(Iterator *it) noexcept : it_(it) {}
        Iterator *it_; // nullptr: the end
    };

    /// A range starting at the first key at or after a given key (Iterator::from).
    class Range {
    public:
        Cursor begin() { return Cursor(it_->seek(start_) ? it_ : nullptr); }
        Cursor end() noexcept { return Cursor(nullptr); }

    private:
        friend class Iterator;
        Range(Iterator *it, std::string start) : it_(it), start_(std::move(start)) {}
        Iterator *it_;
        std::string start_;
    };

    /// `for (auto [k, v] : iter)`: from the first key (within the bounds) to the last.
    Cursor begin() { return Cursor(first() ? this : nullptr); }
    Cursor end() noexcept { return Cursor(nullptr); }
    /// `for (auto [k, v] : iter.from("m"))`: from the first key at or after `start`.
    Range from(std::string_view start) { return Range(this, std::string(start)); }

private:
    friend class Db;
    Iterator(uint64_t mgr, uint64_t h) noexcept : OwnedHandle(mgr, h, "Iterator") {}

    bool position(rm_result rc, const char *op) {
        if (rc != RM_OK) {
            valid_ = false;
            detail::fail(rc, err_, op);
        }
        return valid_;
    }

    std::size_t read(std::vector<std::pair<std::string, std::string>> &out, std::size_t max,
                     bool forward) {
        if (batch_.size() < 16 * detail::kInitialBuffer) {
            batch_.resize(16 * detail::kInitialBuffer);
        }
        lens_.resize(std::min<std::size_t>(max, 128));
        std::size_t total = 0;
        while (total < max) {
            std::size_t count = 0;
            std::size_t want = std::min(max - total, lens_.size());
            rm_result rc =
                forward ? rm_iter_read_next(handle_, detail::bytes(batch_), batch_.size(),
                                            lens_.data(), want, &count, &valid_, &err_)
                        : rm_iter_read_prev(handle_, detail::bytes(batch_), batch_.size(),
                                            lens_.data(), want, &count, &valid_, &err_);
            if (rc == RM_ERR_BUFFER_TOO_SMALL && count == 0) {
                // The entry alone does not fit: room for it (and twice the buffer).
                batch_.resize(std::max(lens_[0].key_len + lens_[0].value_len, 2 * batch_.size()));
                continue;
            }
            std::size_t at = 0;
            for (std::size_t i = 0; i < count; ++i) {
                const char *p = batch_.data() + at;
                out.emplace_back(std::string(p, lens_[i].key_len),
                                 std::string(p + lens_[i].key_len, lens_[i].value_len));
                at += lens_[i].key_len + lens_[i].value_len;
            }
            total += count;
            if (rc != RM_OK) {
                valid_ = false;
                detail::fail(rc, err_, forward ? "rm_iter_read_next" : "rm_iter_read_prev");
            }
            if (!valid_ || count == 0) {
                break;
            }
        }
        return total;
    }

    bool valid_ = false;
    rm_error err_{};
    std::string key_;
    std::string val_;
    std::string batch_;
    std::vector<rm_entry_len> lens_;
};

// ------------------------------------------------------------------------------------------
// Resource (registered by the caller)

/// A resource you registered with Manager::register_resource: a copyable, non-owning view.
/// The manager owns the resource (and its close callback) until the callback succeeded, failed
/// for the last time, or unregister() succeeded.
class Resource {
public:
    Resource() noexcept = default;
    uint64_t handle() const noexcept { return handle_; }
    uint64_t manager() const noexcept { return mgr_; }

    /// rm_close: closes its dependents, then runs the callback (on a resman thread; retried
    /// up to the manager's max_retries times if it throws). Throws RM_ERR_CLOSE_FAILED with
    /// every attempt's exception text if it kept throwing, RM_ERR_TIMEOUT if it did not
    /// return within the manager's cleanup_timeout + force_cleanup_timeout.
    void close() const {
        rm_error err;
        detail::check(rm_close(mgr_, handle_, &err), err, "rm_close");
    }

    /// rm_unregister: forgets the resource without running its callback and hands the
    /// callback back (ownership returns to you). Throws (RM_ERR_ALREADY_CLOSED once it was
    /// closed or unregistered, RM_ERR_HAS_DEPENDENTS, ...) and then hands nothing back. Safe
    /// on copies: only one unregister can succeed, and the callback is only touched then.
    std::function<void()> unregister() const {
        rm_error err;
        detail::check(rm_unregister(mgr_, handle_, &err), err, "rm_unregister");
        // The callback was not called and never will be: the context is ours again.
        return detail::close_registry().take(ctx_);
    }

private:
    friend class Manager;
    Resource(uint64_t mgr, uint64_t h, uint64_t ctx) noexcept
        : mgr_(mgr), handle_(h), ctx_(ctx) {}
    uint64_t mgr_ = 0;
    uint64_t handle_ = 0;
    uint64_t ctx_ = 0; // the callback's id in the CloseRegistry
};

// ------------------------------------------------------------------------------------------
// Config

/// Manager settings (rm_config) with typed durations. A default-constructed Config holds
/// resman's defaults (rm_config_default); change what you need. Manager's constructor (and
/// validate()) refuse a value out of range with RM_ERR_INVALID_ARGUMENT naming it; the ranges
/// are resman's (see rm_config in resman.h).
struct Config {
    /// Graceful phase of a cleanup, a close and the manager's destruction: waiting for
    /// in-flight operations, closing with every courtesy. Default 30 s; 1 ms to 24 h.
    std::chrono::milliseconds cleanup_timeout;
    /// Forced phase that follows: what has not finished by its end (a hung callback) is
    /// reported as RM_ERR_TIMEOUT. Also the bound of a forced cleanup given no timeout.
    /// Default 5 s; 1 ms to 1 h.
    std::chrono::milliseconds force_cleanup_timeout;
    /// How often the monitor thread samples memory (rm_manager_metrics) and logs stuck closes.
    /// Default 10 s; 10 ms to 24 h.
    std::chrono::milliseconds monitor_interval;
    /// Further attempts after a close fails. Default 3; 0 (no retry) to 100.
    uint32_t max_retries;
    /// Pause between two attempts. Default 1 s; 1 ms to 1 min.
    std::chrono::milliseconds retry_delay;

    /// resman's defaults.
    Config() : Config(defaults_c()) {}
    /// The settings of `c`.
    explicit Config(const rm_config &c)
        : cleanup_timeout(ms(c.cleanup_timeout_ms)),
          force_cleanup_timeout(ms(c.force_cleanup_timeout_ms)),
          monitor_interval(ms(c.monitor_interval_ms)), max_retries(c.max_retries),
          retry_delay(ms(c.retry_delay_ms)) {}

    /// The rm_config to pass to rm_manager_create. Throws RM_ERR_INVALID_ARGUMENT for a
    /// negative duration (the other ranges are checked by resman).
    rm_config to_c() const {
        rm_config c = defaults_c();
        c.cleanup_timeout_ms = to_ms(cleanup_timeout, "cleanup_timeout");
        c.force_cleanup_timeout_ms = to_ms(force_cleanup_timeout, "force_cleanup_timeout");
        c.monitor_interval_ms = to_ms(monitor_interval, "monitor_interval");
        c.max_retries = max_retries;
        c.retry_delay_ms = to_ms(retry_delay, "retry_delay");
        return c;
    }

    /// rm_config_validate: throws RM_ERR_INVALID_ARGUMENT naming the first setting out of
    /// range, as the Manager constructor would.
    void validate() const {
        rm_config c = to_c();
        rm_error err;
        detail::check(rm_config_validate(&c, &err), err, "rm_config_validate");
    }

private:
    static rm_config defaults_c() noexcept {
        rm_config c;
        rm_config_default(&c);
        return c;
    }
    static std::chrono::milliseconds ms(uint64_t v) noexcept {
        return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(v));
    }
    static uint64_t to_ms(std::chrono::milliseconds d, const char *name) {
        if (d.count() < 0) {
            throw Error(RM_ERR_INVALID_ARGUMENT, std::string(name) + " is negative", "Config");
        }
        return static_cast<uint64_t>(d.count());
    }
};

// ------------------------------------------------------------------------------------------
// Manager

/// Owns a resman manager. The destructor destroys it (closing everything it still owns,
/// dependents first, gracefully within the cleanup timeout, then forced), swallowing errors.
/// Every manager has one resource from the start, its monitor thread ("resman.monitor", kind
/// "monitor"), which cleanup() and destroy() stop like any resource.
class Manager {
public:
    /// A manager with the default settings (Config()).
    Manager() : Manager(Config()) {}

    /// A manager with the default settings but a graceful phase of `cleanup_timeout`.
    explicit Manager(std::chrono::milliseconds cleanup_timeout)
        : Manager(with_cleanup_timeout(cleanup_timeout)) {}

    /// A manager with the settings of `config`; throws RM_ERR_INVALID_ARGUMENT naming a
    /// setting out of range.
    explicit Manager(const Config &config) : config_(config) {
        rm_config cfg = config.to_c();
        rm_error err;
        detail::check(rm_manager_create(&cfg, &handle_, &err), err, "rm_manager_create");
    }

    Manager(const Manager &) = delete;
    Manager &operator=(const Manager &) = delete;
    Manager(Manager &&o) noexcept
        : handle_(std::exchange(o.handle_, 0)), destroyed_(std::exchange(o.destroyed_, false)),
          config_(o.config_) {}
    Manager &operator=(Manager &&o) noexcept {
        if (this != &o) {
            release();
            handle_ = std::exchange(o.handle_, 0);
            destroyed_ = std::exchange(o.destroyed_, false);
            config_ = o.config_;
        }
        return *this;
    }
    ~Manager() { release(); }

    uint64_t handle() const noexcept { return handle_; }
    explicit operator bool() const noexcept { return handle_ != 0; }
    /// The settings the manager was created with.
    const Config &config() const noexcept { return config_; }

    /// rm_manager_destroy: closes everything, then the manager. The handle is dead afterwards
    /// even when this throws (the error lists what did not close cleanly); a second call
    /// throws RM_ERR_ALREADY_CLOSED.
    /// Called from inside a close callback it is refused (RM_ERR_INVALID_ARGUMENT) and the
    /// manager stays alive (the destructor destroys it).
    void destroy() {
        rm_error err;
        rm_result rc = rm_manager_destroy(handle_, &err);
        destroyed_ = destroyed_ || detail::close_attempted(rc);
        detail::check(rc, err, "rm_manager_destroy");
    }

    /// rm_cleanup: closes every resource (the monitor included), dependents first; resources
    /// that do not depend on each other close concurrently on resman's threads. Graceful for up
    /// to cleanup_timeout, then forced for up to force_cleanup_timeout: a callback that has not
    /// returned by then is reported as timed out and left running (it never runs on this
    /// thread). The manager stays usable. Throws the aggregated error (RM_ERR_CLOSE_FAILED for
    /// one failure, RM_ERR_TIMEOUT for one resource not finished, RM_ERR_CLEANUP_FAILED for
    /// several).
    void cleanup() const {
        rm_error err;
        detail::check(rm_cleanup(handle_, &err), err, "rm_cleanup");
    }

    /// rm_cleanup_timeout: `force` false: a graceful phase of `timeout`, then the forced phase
    /// (force_cleanup_timeout); `force` true: the forced phase alone, bounded by `timeout`.
    void cleanup(std::chrono::milliseconds timeout, bool force) const {
        rm_error err;
        uint64_t ms = timeout.count() < 0 ? 0 : static_cast<uint64_t>(timeout.count());
        detail::check(rm_cleanup_timeout(handle_, ms, force, &err), err,
                      "rm_cleanup_timeout");
    }

    /// rm_close on any handle of this manager.
    void close(uint64_t handle) const {
        rm_error err;
        detail::check(rm_close(handle_, handle, &err), err, "rm_close");
    }

    /// rm_add_dependency: `dependent` closes before `dependency`.
    void add_dependency(uint64_t dependent, uint64_t dependency) const {
        rm_error err;
        detail::check(rm_add_dependency(handle_, dependent, dependency, &err), err,
                      "rm_add_dependency");
    }

    /// rm_manager_metrics: the manager's counters, duration histograms and the monitor's last memory
    /// sample, without building the status document (cheap enough to poll).
    rm_metrics metrics() const {
        rm_metrics out{};
        rm_error err;
        detail::check(rm_manager_metrics(handle_, &out, &err), err, "rm_manager_metrics");
        return out;
    }

    /// The status document (JSON), read with the two-call pattern.
    std::string status() const {
        std::string out(detail::kInitialBuffer, '\0');
        rm_error err;
        for (int attempt = 0;; ++attempt) {
            std::size_t len = 0;
            rm_result rc = rm_status(handle_, &out[0], out.size(), &len, &err);
            if (rc == RM_OK) {
                out.resize(len);
                return out;
            }
            if (rc != RM_ERR_BUFFER_TOO_SMALL || attempt == detail::kMaxRetries) {
                detail::fail(rc, err, "rm_status");
            }
            // Room for the document, its NUL, and some growth meanwhile.
            out.resize(len + 1 + len / 8);
        }
    }

    /// Registers `close` as a resource named `name` that closes before each of `deps` (handles
    /// of this manager: a Db's handle(), another Resource's handle(), ...). resman calls
    /// `close` when the resource is closed (rm_close, rm_cleanup, destroy), unless it is
    /// unregistered first, on one of resman's close threads (never the caller's), possibly at
    /// the same time as the callbacks of resources it does not depend on. An exception thrown
    /// by `close` never crosses into resman: the attempt fails with the exception's what() as
    /// its message and `close` is called again, up to the manager's max_retries times,
    /// retry_delay apart; then the close is reported as failed (RM_ERR_CLOSE_FAILED) with
    /// every attempt's message. So `close` runs once if it succeeds, at most max_retries + 1
    /// times otherwise, never twice at once. A `close` that does not return is reported as
    /// RM_ERR_TIMEOUT when the caller's bound passes; keep what it uses alive until it returns.
    /// `close` must not call close(), cleanup() or destroy() (resman refuses them inside a
    /// callback with RM_ERR_INVALID_ARGUMENT, which then becomes the close failure).
    ///
    /// Using a dependency from `close`: its dependencies are still open while it runs, whatever
    /// closes it (Resource::close, a Db's close or destructor, cleanup(), destroy()): resman
    /// stops operations on each resource only when its own turn comes, dependents first. A
    /// callback may therefore flush into a Db it depends on.
    Resource register_resource(const std::string &name, std::function<void()> close,
                               const std::vector<uint64_t> &deps = {}) const {
        if (!close) {
            throw Error(RM_ERR_INVALID_ARGUMENT, "the close callback is empty",
                        "register_resource");
        }
        const char *cname = detail::c_string(name, "name").c_str();
        detail::CloseRegistry &registry = detail::close_registry();
        const uint64_t id = registry.add(std::move(close), config_.max_retries + 1);
        rm_error err;
        uint64_t h = 0;
        rm_result rc = rm_register(handle_, cname, &resman_cpp_close_trampoline,
                                   reinterpret_cast<void *>(static_cast<uintptr_t>(id)),
                                   deps.empty() ? nullptr : deps.data(), deps.size(), &h, &err);
        if (rc != RM_OK) {
            registry.remove(id); // nothing was kept: the callback is never called
            detail::fail(rc, err, "rm_register");
        }
        return Resource(handle_, h, id);
    }

private:
    static Config with_cleanup_timeout(std::chrono::milliseconds cleanup_timeout) {
        Config c;
        c.cleanup_timeout = cleanup_timeout;
        return c;
    }

    void release() noexcept {
        if (handle_ != 0 && !destroyed_) {
            rm_error err;
            rm_result rc = rm_manager_destroy(handle_, &err);
            if (rc != RM_OK && !detail::already_gone(rc)) {
                detail::report_destructor_error("Manager", rc, err);
            }
        }
        handle_ = 0;
        destroyed_ = false;
    }

    uint64_t handle_ = 0;
    bool destroyed_ = false;
    Config config_;
};

// ------------------------------------------------------------------------------------------
// Db

/// Owns an open DB and its column families. The destructor closes it gracefully (rm_close:
/// its iterators, snapshots, batches and column families first; every column family flushed,
/// the WAL synced), swallowing errors. Data methods are const and thread-safe.
class Db : public detail::OwnedHandle {
public:
    Db() noexcept : OwnedHandle(0, 0, "Db") {}
    Db(Db &&) noexcept = default;
    Db &operator=(Db &&) noexcept = default;
    ~Db() = default;

    /// Opens (creating if missing, with the default options) the DB at `path`, registered in
    /// `mgr` as `name`, with one handle per column family listed (`name/<cf>`). Missing
    /// column families are created; ones on disk but not listed are opened without a handle.
    static Db open(const Manager &mgr, const std::string &name, const std::string &path,
                   const std::vector<CfSpec> &cfs,
                   const std::optional<rm_db_options> &opts = std::nullopt) {
        std::vector<rm_cf_options> specs;
        specs.reserve(cfs.size());
        for (const CfSpec &c : cfs) {
            specs.push_back(rm_cf_options{detail::c_string(c.name, "column family").c_str(),
                                          c.compression});
        }
        std::vector<uint64_t> handles(cfs.size(), 0);
        uint64_t db = 0;
        rm_error err;
        rm_result rc = rm_db_open_cf(
            mgr.handle(), detail::c_string(name, "name").c_str(),
            detail::c_string(path, "path").c_str(), opts ? &*opts : nullptr,
            specs.empty() ? nullptr : specs.data(), specs.size(), &db,
            handles.empty() ? nullptr : handles.data(), &err);
        detail::check(rc, err, "rm_db_open_cf");
        Db out(mgr.handle(), db, name); // owns the DB from here: closes it if what follows throws
        out.names_.reserve(cfs.size());
        for (const CfSpec &c : cfs) {
            out.names_.push_back(c.name);
        }
        out.cfs_ = std::move(handles);
        return out;
    }

    const std::string &name() const noexcept { return name_; }

    /// The column family opened under `cf_name` (RM_ERR_INVALID_ARGUMENT if none).
    ColumnFamily cf(std::string_view cf_name) const {
        for (std::size_t i = 0; i < names_.size(); ++i) {
            if (names_[i] == cf_name) {
                return ColumnFamily(cfs_[i], handle_);
            }
        }
        throw Error(RM_ERR_INVALID_ARGUMENT,
                    "no column family '" + std::string(cf_name) + "' was opened in DB '" +
                        name_ + "'",
                    "Db::cf");
    }

    /// The i-th column family given to open (RM_ERR_INVALID_ARGUMENT if out of range).
    ColumnFamily cf(std::size_t i) const {
        if (i >= cfs_.size()) {
            throw Error(RM_ERR_INVALID_ARGUMENT, "column family index out of range", "Db::cf");
        }
        return ColumnFamily(cfs_[i], handle_);
    }

    std::size_t cf_count() const noexcept { return cfs_.size(); }
    const std::vector<std::string> &cf_names() const noexcept { return names_; }

    void put(ColumnFamily cf, std::string_view key, std::string_view value,
             WriteOptions wo = {}) const {
        mine(cf, "put");
        rm_error err;
        detail::check(rm_put_opt(cf.handle(), detail::bytes(key), key.size(),
                                 detail::bytes(value), value.size(), wo.flags, &err),
                      err, "rm_put_opt");
    }

    /// Deletes `key` (no error when it does not exist).
    void del(ColumnFamily cf, std::string_view key, WriteOptions wo = {}) const {
        mine(cf, "del");
        rm_error err;
        detail::check(
            rm_delete_opt(cf.handle(), detail::bytes(key), key.size(), wo.flags, &err), err,
            "rm_delete_opt");
    }

    /// The value of `key`, or std::nullopt when it does not exist. One RocksDB lookup and
    /// one copy whatever the value's size (rm_get_alloc: a value larger than the string's
    /// inline room is read straight into a string of its size).
    std::optional<std::string> get(ColumnFamily cf, std::string_view key,
                                   ReadOptions ro = {}) const {
        mine(cf, "get");
        rm_error err;
        std::string out;
        rm_result rc = detail::read_value(cf.handle(), ro.snapshot, ro.flags, key, out, err);
        if (rc == RM_ERR_NOT_FOUND) {
            return std::nullopt;
        }
        detail::check(rc, err, "rm_get_alloc");
        return out;
    }

    /// Reads `key` into `out`, reusing its capacity (no allocation when it is large enough; a
    /// larger value is read straight into a string of its size, which replaces `out`: one
    /// lookup either way); false (and `out` empty) when the key does not exist. `key` may
    /// alias `out`.
    bool get_into(ColumnFamily cf, std::string_view key, std::string &out,
                  ReadOptions ro = {}) const {
        mine(cf, "get_into");
        std::string key_copy;
        if (aliases(key, out)) {
            key_copy.assign(key);
            key = key_copy;
        }
        rm_error err;
        rm_result rc = detail::read_value(cf.handle(), ro.snapshot, ro.flags, key, out, err);
        if (rc == RM_OK) {
            return true;
        }
        out.clear();
        if (rc == RM_ERR_NOT_FOUND) {
            return false;
        }
        detail::fail(rc, err, "rm_get_alloc");
    }

    /// Reads `keys[i]` from `cfs[i]` (all of this DB) in one call. Missing keys are
    /// std::nullopt. One RocksDB lookup per key (rm_multi_get_alloc): the values are packed
    /// into a per-thread buffer, and those that do not fit come back in malloc'd memory.
    std::vector<std::optional<std::string>>
    multi_get(const std::vector<ColumnFamily> &cfs, const std::vector<std::string_view> &keys,
              ReadOptions ro = {}) const {
        for (const ColumnFamily &cf : cfs) {
            mine(cf, "multi_get");
        }
        std::vector<uint64_t> handles;
        handles.reserve(cfs.size());
        for (const ColumnFamily &cf : cfs) {
            handles.push_back(cf.handle());
        }
        return multi_get_handles(handles, keys, ro);
    }

    /// Reads every key from `cf` in one call.
    std::vector<std::optional<std::string>>
    multi_get(ColumnFamily cf, const std::vector<std::string_view> &keys,
              ReadOptions ro = {}) const {
        mine(cf, "multi_get");
        return multi_get_handles(std::vector<uint64_t>{cf.handle()}, keys, ro);
    }

    /// RocksDB's memory figures for this DB.
    rm_memory memory() const {
        rm_memory m{};
        rm_error err;
        detail::check(rm_db_memory(handle_, &m, &err), err, "rm_db_memory");
        return m;
    }

    /// A snapshot of the DB as of now.
    Snapshot snapshot() const {
        uint64_t h = 0;
        rm_error err;
        detail::check(rm_snapshot_create(handle_, &h, &err), err, "rm_snapshot_create");
        return Snapshot(mgr_, h);
    }

    /// An empty write batch for this DB.
    Batch batch() const {
        uint64_t h = 0;
        rm_error err;
        detail::check(rm_batch_create(handle_, &h, &err), err, "rm_batch_create");
        return Batch(mgr_, h);
    }

    /// An iterator over `cf`, limited to [lower, upper) (std::nullopt: unbounded; an empty
    /// string is the empty key), reading at `ro.snapshot` with `ro.flags`. Unpositioned.
    Iterator iterator(ColumnFamily cf, std::optional<std::string_view> lower = std::nullopt,
                      std::optional<std::string_view> upper = std::nullopt,
                      ReadOptions ro = {}) const {
        mine(cf, "iterator");
        uint64_t h = 0;
        rm_error err;
        detail::check(rm_iter_create(cf.handle(), ro.snapshot, ro.flags,
                                     lower ? detail::bytes(*lower) : nullptr,
                                     lower ? lower->size() : 0,
                                     upper ? detail::bytes(*upper) : nullptr,
                                     upper ? upper->size() : 0, &h, &err),
                      err, "rm_iter_create");
        return Iterator(mgr_, h);
    }

private:
    Db(uint64_t mgr, uint64_t h, std::string name) noexcept
        : OwnedHandle(mgr, h, "Db"), name_(std::move(name)) {}

    /// Refuses a column family of another DB (the C data calls take only the CF handle).
    void mine(const ColumnFamily &cf, const char *op) const {
        if (cf.db() == handle_ && handle_ != 0) {
            return;
        }
        if (handle_ == 0) {
            throw Error(RM_ERR_INVALID_HANDLE, "this Db was moved from", op);
        }
        throw Error(RM_ERR_WRONG_DB,
                    "the column family (" + std::to_string(cf.handle()) +
                        ") does not belong to DB '" + name_ + "'",
                    op);
    }

    static bool aliases(std::string_view key, const std::string &out) noexcept {
        if (key.empty() || out.capacity() == 0) {
            return false;
        }
        auto k = reinterpret_cast<std::uintptr_t>(key.data());
        auto o = reinterpret_cast<std::uintptr_t>(out.data());
        return k < o + out.capacity() + 1 && o < k + key.size();
    }

    std::vector<std::optional<std::string>>
    multi_get_handles(const std::vector<uint64_t> &cfs, const std::vector<std::string_view> &keys,
                      const ReadOptions &ro) const {
        std::vector<std::optional<std::string>> result(keys.size());
        if (keys.empty()) {
            return result;
        }
        std::string packed;
        std::vector<std::size_t> lens;
        lens.reserve(keys.size());
        std::size_t total = 0;
        for (std::string_view k : keys) {
            total += k.size();
        }
        packed.reserve(total);
        for (std::string_view k : keys) {
            packed.append(k.data() != nullptr ? k.data() : "", k.size());
            lens.push_back(k.size());
        }
        std::vector<rm_value> values(keys.size());
        std::vector<uint8_t *> spilled(keys.size(), nullptr);
        std::string &buf = detail::scratch();
        detail::ScratchGuard guard(buf);
        rm_error err;
        // One call, one lookup per key: a value that does not fit in the scratch buffer comes
        // back in malloc'd memory (freed below, also if a copy throws).
        rm_result rc = rm_multi_get_alloc(cfs.data(), cfs.size(), ro.snapshot, ro.flags,
                                          detail::bytes(packed), lens.data(), keys.size(),
                                          detail::bytes(buf), buf.size(), detail::malloc_bytes,
                                          nullptr, values.data(), spilled.data(), nullptr, &err);
        std::vector<std::unique_ptr<uint8_t, detail::FreeBytes>> owned;
        for (uint8_t *p : spilled) {
            if (p != nullptr) {
                owned.emplace_back(p);
            }
        }
        if (rc == RM_ERR_BUFFER_TOO_SMALL) {
            throw std::bad_alloc(); // only when malloc failed
        }
        detail::check(rc, err, "rm_multi_get_alloc");
        for (std::size_t i = 0; i < keys.size(); ++i) {
            if (spilled[i] != nullptr) {
                result[i].emplace(reinterpret_cast<const char *>(spilled[i]), values[i].len);
            } else if (values[i].code == RM_OK) {
                result[i].emplace(buf.data() + values[i].offset, values[i].len);
            }
        }
        return result;
    }

    std::string name_;
    std::vector<std::string> names_;
    std::vector<uint64_t> cfs_;
};

} // namespace resman

#endif /* RESMAN_HPP */
