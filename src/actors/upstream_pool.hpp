#pragma once
// UpstreamPool (ARCHITECTURE §3): lends keep-alive upstream connections,
// bounded in number. An actor on the runtime (actors/runtime.hpp): its state
// (idle connections, the waiter queue, the counters) is touched only by its
// handlers. It never does I/O on a lent connection: the borrowing coroutine
// does (and, when handed the right to open a new one, opens it itself).
//
//  * acquire(): an idle connection if one is alive (most recently used
//    first), else the right to open a new one while fewer than
//    max_connections are open, else the caller waits in a FIFO queue
//    (fair: the earliest waiter is served first) until a connection is
//    given back or a slot frees, up to its timeout.
//  * A lease gives its connection back when released or destroyed. Only a
//    connection that finished its exchange cleanly (reusable(): whole body
//    read, keep-alive) is kept; a broken, half-read or timed-out one is
//    closed and its slot freed. An idle connection is checked again before
//    it is lent (idle_alive(): the peer has not closed it) and is closed
//    after idle_timeout without use.
//  * A lease that reaches nobody (its asker timed out or was cancelled) gives
//    itself back when the reply slot is destroyed, so no slot leaks.
//  * shutdown(): closes the idle connections, answers the waiters with
//    actor_stopped, then stops; connections given back later are closed.
#include "actors/runtime.hpp"
#include "net/upstream_connection.hpp"

#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

namespace parley::actors {

class upstream_pool;

struct pool_options {
    std::size_t max_connections = 64;
    std::chrono::milliseconds idle_timeout{30'000};  // an idle connection is closed after this
    std::size_t mailbox = 1024;
};

// Gauges and counters (for metrics).
struct pool_stats {
    std::size_t max_connections = 0;
    std::size_t open = 0;     // idle + lent (a lent slot may still be opening its connection)
    std::size_t idle = 0;
    std::size_t in_use = 0;   // lent
    std::size_t waiting = 0;  // acquirers queued now
    std::uint64_t acquired = 0;   // leases handed out
    std::uint64_t reused = 0;     // ... of them with an idle connection
    std::uint64_t opened = 0;     // ... of them as the right to open a new one
    std::uint64_t waited = 0;     // acquires that had to queue
    std::uint64_t expired = 0;    // idle connections closed after idle_timeout
    std::uint64_t discarded = 0;  // connections closed: given back unusable, or found dead when idle
};

// A lent slot: a connection, or (connection() == nullptr) the right to open
// one and adopt() it. Move-only; gives the slot back when released or
// destroyed, keeping the connection only if it is reusable().
class upstream_lease {
public:
    upstream_lease() noexcept = default;
    upstream_lease(upstream_lease&&) noexcept = default;
    upstream_lease& operator=(upstream_lease&& other) noexcept;
    upstream_lease(upstream_lease const&) = delete;
    upstream_lease& operator=(upstream_lease const&) = delete;
    ~upstream_lease();

    [[nodiscard]] net::upstream_connection* connection() const noexcept { return conn_.get(); }
    // The connection the borrower opened on this slot (replaces, and
    // closes, any connection held).
    void adopt(std::unique_ptr<net::upstream_connection> c) noexcept;
    // Closes the held connection and keeps the slot (to open a fresh one).
    void discard() noexcept;
    // Gives the slot back now.
    void release() noexcept;
    // Holds a slot (not yet released, not moved from).
    [[nodiscard]] bool valid() const noexcept { return pool_ != nullptr; }

private:
    friend class upstream_pool;
    upstream_lease(std::shared_ptr<upstream_pool> pool, std::unique_ptr<net::upstream_connection> c) noexcept
        : pool_{std::move(pool)}, conn_{std::move(c)} {}

    std::shared_ptr<upstream_pool> pool_;
    std::unique_ptr<net::upstream_connection> conn_;
};

namespace pool_msg {
struct acquire {
    reply<upstream_lease> reply_to;
};
struct give_back {
    std::unique_ptr<net::upstream_connection> conn;  // null: only the slot comes back
};
struct sweep {};
struct get_stats {
    reply<pool_stats> reply_to;
};
struct close_all {
    reply<void> reply_to;
};
}  // namespace pool_msg

class upstream_pool final : public actor<upstream_pool, pool_msg::acquire, pool_msg::give_back, pool_msg::sweep,
                                         pool_msg::get_stats, pool_msg::close_all> {
public:
    upstream_pool(asio::any_io_executor ex, pool_options options);

    // A lease within `timeout` (asio::error::timed_out after it),
    // actor_stopped after shutdown, operation_aborted if the caller is cancelled.
    task<result<upstream_lease>> acquire(std::chrono::steady_clock::duration timeout);
    task<result<pool_stats>> stats();
    // Closes idle connections, fails waiters, stops the actor.
    task<void> shutdown();

    // Used by leases: gives a slot back (never blocks, from any thread).
    void give_back(std::unique_ptr<net::upstream_connection> c) noexcept;

private:
    friend actor;
    struct idle_entry {
        std::unique_ptr<net::upstream_connection> conn;
        std::chrono::steady_clock::time_point since;
    };

    void on(pool_msg::acquire& m);
    void on(pool_msg::give_back& m);
    void on(pool_msg::sweep& m);
    void on(pool_msg::get_stats& m);
    void on(pool_msg::close_all& m);

    // Hands a slot to the first waiter, or keeps the connection idle, or
    // frees the slot. c may be null (a slot without a connection).
    void put_back(std::unique_ptr<net::upstream_connection> c);
    void expire_idle();
    void arm_sweep();
    void send_later(pool_msg::give_back m) noexcept;
    void send_later(pool_msg::sweep m) noexcept;
    upstream_lease lend(std::unique_ptr<net::upstream_connection> c);

    pool_options options_;
    std::vector<idle_entry> idle_;                  // most recently used last
    std::deque<reply<upstream_lease>> waiters_;     // FIFO
    std::size_t open_ = 0;
    std::size_t in_use_ = 0;
    bool closing_ = false;
    bool sweep_armed_ = false;
    asio::steady_timer sweep_timer_;
    pool_stats counters_;
};

}  // namespace parley::actors
