#include "actors/upstream_pool.hpp"

#include <spdlog/spdlog.h>

#include <exception>

namespace parley::actors {

using clock = std::chrono::steady_clock;

// ------------------------------------------------------------------ lease

upstream_lease& upstream_lease::operator=(upstream_lease&& other) noexcept {
    if (this != &other) {
        release();
        pool_ = std::move(other.pool_);
        conn_ = std::move(other.conn_);
    }
    return *this;
}

upstream_lease::~upstream_lease() { release(); }

void upstream_lease::adopt(std::unique_ptr<net::upstream_connection> c) noexcept { conn_ = std::move(c); }

void upstream_lease::discard() noexcept { conn_.reset(); }

void upstream_lease::release() noexcept {
    if (auto pool = std::move(pool_)) {
        pool->give_back(std::move(conn_));
    }
    conn_.reset();
}

// ------------------------------------------------------------------- pool

upstream_pool::upstream_pool(asio::any_io_executor ex, pool_options options)
    : actor{std::move(ex), {.capacity = options.mailbox, .name = "upstream_pool"}},
      options_{std::move(options)},
      sweep_timer_{get_executor()} {
    counters_.max_connections = options_.max_connections;
}

task<result<upstream_lease>> upstream_pool::acquire(std::chrono::steady_clock::duration timeout) {
    return ask(pool_msg::acquire{}, timeout);
}

task<result<pool_stats>> upstream_pool::stats() { return ask(pool_msg::get_stats{}); }

task<void> upstream_pool::shutdown() {
    auto self = shared_from_this();
    auto closed = ask(pool_msg::close_all{});
    co_await std::move(closed);  // fails only if already stopped
    co_await stop();
}

void upstream_pool::give_back(std::unique_ptr<net::upstream_connection> c) noexcept {
    send_later(pool_msg::give_back{std::move(c)});
}

// A tell from outside a coroutine (a lease's destructor, a timer): a small
// coroutine waits for mailbox space (backpressure, nothing is dropped); it
// fails at once with actor_stopped once the pool has stopped.
void upstream_pool::send_later(pool_msg::give_back m) noexcept {
    asio::co_spawn(
        get_executor(),
        [self = shared_from_this(), m = std::move(m)]() mutable -> task<void> {
            auto sent = self->tell(std::move(m));
            co_await std::move(sent);
        },
        [](std::exception_ptr e) {
            if (e) {  // LCOV_EXCL_START: only bad_alloc can get here
                spdlog::error("upstream_pool: giving a connection back failed");
            }  // LCOV_EXCL_STOP
        });
}

void upstream_pool::send_later(pool_msg::sweep m) noexcept {
    asio::co_spawn(
        get_executor(),
        [self = shared_from_this(), m]() -> task<void> {
            auto sent = self->tell(m);
            co_await std::move(sent);
        },
        [](std::exception_ptr e) {
            if (e) {  // LCOV_EXCL_START
                spdlog::error("upstream_pool: idle sweep failed");
            }  // LCOV_EXCL_STOP
        });
}

upstream_lease upstream_pool::lend(std::unique_ptr<net::upstream_connection> c) {
    ++in_use_;
    ++counters_.acquired;
    if (c) {
        ++counters_.reused;
    } else {
        ++counters_.opened;
    }
    return upstream_lease{shared_from_this(), std::move(c)};
}

void upstream_pool::on(pool_msg::acquire& m) {
    if (closing_) {
        m.reply_to.fail(make_error_code(errc::actor_stopped));
        return;
    }
    expire_idle();
    while (!idle_.empty()) {
        auto entry = std::move(idle_.back());
        idle_.pop_back();
        if (entry.conn->idle_alive()) {
            m.reply_to.set(lend(std::move(entry.conn)));
            return;
        }
        --open_;  // the peer closed it while idle: entry.conn closes here
        ++counters_.discarded;
    }
    if (open_ < options_.max_connections) {
        ++open_;
        m.reply_to.set(lend(nullptr));
        return;
    }
    ++counters_.waited;
    waiters_.push_back(std::move(m.reply_to));
}

void upstream_pool::on(pool_msg::give_back& m) {
    --in_use_;
    put_back(std::move(m.conn));
}

void upstream_pool::put_back(std::unique_ptr<net::upstream_connection> c) {
    if (c && (closing_ || !c->reusable())) {
        c.reset();  // broken, half-read, timed out or shutting down: never lent again
        ++counters_.discarded;
    }
    if (!waiters_.empty()) {  // the slot (with its connection, if any) goes to the earliest waiter
        auto next = std::move(waiters_.front());
        waiters_.pop_front();
        next.set(lend(std::move(c)));  // a waiter that gave up sends it straight back
        return;
    }
    if (c) {
        idle_.push_back({std::move(c), clock::now()});
        arm_sweep();
        return;
    }
    --open_;
}

void upstream_pool::on(pool_msg::sweep&) {
    sweep_armed_ = false;
    expire_idle();
    arm_sweep();
}

void upstream_pool::on(pool_msg::get_stats& m) {
    pool_stats s = counters_;
    s.open = open_;
    s.idle = idle_.size();
    s.in_use = in_use_;
    s.waiting = waiters_.size();
    m.reply_to.set(s);
}

void upstream_pool::on(pool_msg::close_all& m) {
    closing_ = true;
    open_ -= idle_.size();
    idle_.clear();  // closes them
    sweep_timer_.cancel();
    sweep_armed_ = false;
    for (auto& w : waiters_) {
        w.fail(make_error_code(errc::actor_stopped));
    }
    waiters_.clear();
    m.reply_to.set();
}

void upstream_pool::expire_idle() {
    auto const now = clock::now();
    std::erase_if(idle_, [&](idle_entry const& e) {
        if (now - e.since < options_.idle_timeout) {
            return false;
        }
        --open_;
        ++counters_.expired;
        return true;
    });
}

void upstream_pool::arm_sweep() {
    if (sweep_armed_ || idle_.empty() || closing_) {
        return;
    }
    sweep_armed_ = true;
    sweep_timer_.expires_at(idle_.front().since + options_.idle_timeout);  // the oldest idle connection
    sweep_timer_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
        if (ec) {
            return;
        }
        if (auto self = weak.lock()) {
            self->send_later(pool_msg::sweep{});
        }
    });
}

}  // namespace parley::actors
