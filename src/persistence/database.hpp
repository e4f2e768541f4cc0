#pragma once
// The database (ARCHITECTURE §2, §6; STYLE 2.6, P17-P19): SOCI sessions on a
// small pool of worker threads of their own, so a blocking statement never
// stalls an io thread. Coroutines hand work over with run(f) and resume on
// their own executor with f's result.
//
//  * One session per worker thread (SQLite: one of each, the single writer),
//    kept in a mutex-guarded free list; a call leases one for its duration.
//  * Sessions connect on first use, not at open(): a process can start
//    during a database outage. A session found dead (the server restarted,
//    an idle timeout, a killed backend) is reconnected and the work runs
//    once more (P19); a second failure is a database_error with
//    connection_lost() true, which callers treat as "try again later".
//  * A session left inside a transaction (a forgotten commit, an exception
//    between begin() and commit()) is rolled back before it is lent again,
//    so one caller's mistake never leaks into the next caller's work.
#include "net/asio.hpp"

#include <boost/asio/thread_pool.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace soci {
class session;
}

namespace parley::persistence {

enum class dialect { postgresql, sqlite };

struct database_options {
    std::string url;            // "sqlite:<path>" (relative to the working directory) or "postgresql://..."/"postgres://..."
    std::size_t pool_size = 4;  // sessions and worker threads; SQLite always uses 1 (one writer)
};

// A failure of the database. The message is one line and never contains a
// password. connection_lost(): the server is unreachable or the session died
// (a caller may retry later); false: the statement itself failed (or the URL
// is unusable), and retrying the same thing will fail the same way.
class database_error : public std::runtime_error {
public:
    database_error(std::string msg, bool connection_lost);
    bool connection_lost() const noexcept { return connection_lost_; }

private:
    bool connection_lost_;
};

class database : public std::enable_shared_from_this<database> {
    struct private_tag {};

public:
    // Parses the URL and starts the workers; connects nothing yet. Throws
    // database_error(false) for a URL it cannot use. SQLite: creates the
    // file's parent directory; every session uses a WAL journal,
    // busy_timeout 5000 ms, synchronous NORMAL and foreign keys on.
    // PostgreSQL: every session runs SET TIME ZONE 'UTC' after connecting;
    // connect_timeout=5 is added to the URL when it has none.
    static std::shared_ptr<database> open(database_options options);

    database(private_tag, database_options options);
    database(database const&) = delete;
    database& operator=(database const&) = delete;
    ~database();  // close()s; must not run on one of its own workers

    dialect kind() const noexcept;
    std::string const& redacted_url() const noexcept;  // the password shown as "(redacted)"
    std::size_t pool_size() const noexcept;            // sessions (and worker threads)

    // Runs f(soci::session&) on a worker thread (never on the caller's io
    // thread) and resumes the caller on its own executor with f's result (R
    // may be void). A session that is not connected is connected first. If
    // f throws a soci_error of the connection category, or the session is
    // found dead after a failure, the session is reconnected and f runs ONE
    // more time; a second failure, or a failed connect, throws
    // database_error(connection_lost=true). Any other soci_error is rethrown
    // as database_error(false). Other exceptions propagate unchanged. f may
    // therefore run twice: it should be one transaction, or idempotent.
    // Once started, the work runs to its end (a cancelled caller still
    // waits for it). The database must outlive the call (callers hold its
    // shared_ptr).
    template <class F>
    auto run(F f) -> task<std::invoke_result_t<F&, soci::session&>>;

    // Like run(), but on the calling thread, which it blocks: for command
    // line tools and tests, never on an io thread (P17).
    template <class F>
    auto run_blocking(F f) -> std::invoke_result_t<F&, soci::session&>;

    // Lets the calls already made finish (including those still queued),
    // then stops the workers and closes the sessions; later run() calls
    // throw database_error(true). Idempotent. Must not be called from
    // inside f (it would wait for itself).
    void close();

private:
    // f without its type: what the non-template part needs to call it.
    class session_fn {
    public:
        template <class G>
        explicit session_fn(G& g) noexcept
            : target_{&g}, call_{[](void* t, soci::session& sql) { (*static_cast<G*>(t))(sql); }} {}
        void operator()(soci::session& sql) const { call_(target_, sql); }

    private:
        void* target_;
        void (*call_)(void*, soci::session&);
    };

    // Counts a call from its start until its work is done (close() waits for
    // the count to fall to zero). Move-only; throws database_error(true) when
    // the database is closed.
    class call_guard {
    public:
        explicit call_guard(database& db);
        call_guard(call_guard&& other) noexcept : db_{std::exchange(other.db_, nullptr)} {}
        call_guard& operator=(call_guard&&) = delete;
        ~call_guard();

    private:
        database* db_;
    };

    // Leases a session, runs fn with the reconnect-once rule, gives it back.
    void execute(session_fn fn);

    struct impl;
    std::unique_ptr<impl> impl_;
    asio::thread_pool workers_;  // declared last: stopped (by close()) before impl_ goes
};

template <class F>
auto database::run(F f) -> task<std::invoke_result_t<F&, soci::session&>> {
    using R = std::invoke_result_t<F&, soci::session&>;
    static_assert(!std::is_reference_v<R>, "database::run: f must return a value, not a reference");
    // The guard travels in the closure, so the count falls on the worker when
    // the work ends, even if this caller's executor is busy (or is the thread
    // blocked in close()).
    auto work = [this, f = std::move(f), guard = call_guard{*this}]() mutable -> task<R> {
        if constexpr (std::is_void_v<R>) {
            execute(session_fn{f});
            co_return;
        } else {
            std::optional<R> result;
            auto store = [&](soci::session& sql) { result.emplace(f(sql)); };
            execute(session_fn{store});
            co_return std::move(*result);
        }
    };
    // A named lambda, and the result in a local: g++ 12.2 miscompiles
    // lambda temporaries inside a co_await expression (ARCHITECTURE §3.1).
    if constexpr (std::is_void_v<R>) {
        co_await asio::co_spawn(workers_.get_executor(), std::move(work), asio::use_awaitable);
    } else {
        auto r = co_await asio::co_spawn(workers_.get_executor(), std::move(work), asio::use_awaitable);
        co_return r;
    }
}

template <class F>
auto database::run_blocking(F f) -> std::invoke_result_t<F&, soci::session&> {
    using R = std::invoke_result_t<F&, soci::session&>;
    static_assert(!std::is_reference_v<R>, "database::run_blocking: f must return a value, not a reference");
    call_guard guard{*this};
    if constexpr (std::is_void_v<R>) {
        execute(session_fn{f});
    } else {
        std::optional<R> result;
        auto store = [&](soci::session& sql) { result.emplace(f(sql)); };
        execute(session_fn{store});
        return std::move(*result);
    }
}

// A write transaction: SQLite "BEGIN IMMEDIATE" (takes the write lock at
// once, waiting up to busy_timeout, so a transaction that reads before it
// writes cannot fail half-way with SQLITE_BUSY); PostgreSQL "BEGIN". Rolls
// back unless commit() was called.
class write_transaction {
public:
    write_transaction(soci::session& sql, dialect d);
    write_transaction(write_transaction const&) = delete;
    write_transaction& operator=(write_transaction const&) = delete;
    ~write_transaction();
    void commit();

private:
    soci::session& sql_;
    bool done_ = false;
};

}  // namespace parley::persistence
