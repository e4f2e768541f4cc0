#include "actors/shared_limits.hpp"

#include "domain/budget.hpp"
#include "persistence/database.hpp"
#include "persistence/limits_repository.hpp"

#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace parley::actors {

shared_limits::shared_limits(asio::any_io_executor ex, std::shared_ptr<persistence::database> db,
                             std::shared_ptr<rate_limiter> limiter, shared_limits_options options)
    : ex_(net::make_strand(ex)), db_(std::move(db)), limiter_(std::move(limiter)), options_(std::move(options)) {}

void shared_limits::start() {
    timer_ = std::make_shared<asio::steady_timer>(ex_);
    auto self = shared_from_this();
    auto loop = [self]() -> task<void> { co_await self->heartbeat_loop(); };
    asio::co_spawn(ex_, std::move(loop), asio::detached);
}

domain::nano_usd shared_limits::granted() const {
    std::lock_guard lock{mutex_};
    return granted_;
}

task<bool> shared_limits::grow(domain::nano_usd at_least) {
    auto const slice = std::max(options_.slice, at_least);
    auto const instance = options_.instance_id;
    auto const limit = options_.daily_global;
    auto const ttl = options_.lease_ttl;
    auto acquire = [instance, slice, limit, ttl](soci::session& sql) {
        return persistence::acquire_lease(sql, instance, slice, limit, ttl);
    };
    domain::nano_usd got;
    try {
        got = co_await db_->run(std::move(acquire));
    } catch (persistence::database_error const& e) {
        spdlog::warn("shared limits: no budget slice could be leased ({}); calls beyond the slices held are refused",
                     e.what());
    }
    if (got.nanos <= 0) {
        co_return false;
    }
    domain::nano_usd total;
    {
        std::lock_guard lock{mutex_};
        granted_ += got;
        total = granted_;
    }
    co_await limiter_->set_global_limit(total);
    spdlog::debug("shared limits: leased {} more of today's budget ({} held)", domain::format_usd(got),
                  domain::format_usd(total));
    co_return true;
}

task<result<admission_decision>> shared_limits::admit(admission_request request) {
    bool const windowed = !request.exempt;
    auto const today = domain::utc_day(std::chrono::system_clock::now());
    bool rolled = false;
    {
        std::lock_guard lock{mutex_};
        if (today != day_) {
            // A new UTC day: yesterday's slices are not today's.
            day_ = today;
            granted_ = domain::nano_usd{};
            rolled = true;
        }
    }
    if (rolled) {
        domain::nano_usd const none;
        co_await limiter_->set_global_limit(none);
    }
    request.exempt = true;  // the window is the database's
    auto first = request;
    auto d = co_await limiter_->admit(std::move(first));
    if (d && !d->admitted && d->code == "budget_exhausted" && d->scope == "global") {
        bool const grew = co_await grow(request.worst_case);
        if (grew) {
            auto again = request;
            d = co_await limiter_->admit(std::move(again));
        }
    }
    if (!d || !d->admitted || !windowed) {
        co_return d;
    }
    auto const user = request.user_id;
    auto const limit = options_.rate_per_hour;
    auto const window = options_.window;
    auto take = [user, limit, window](soci::session& sql) {
        return persistence::take_window_slot(sql, user, limit, window);
    };
    persistence::window_slot slot;
    slot.admitted = true;
    try {
        slot = co_await db_->run(std::move(take));
    } catch (persistence::database_error const& e) {
        spdlog::warn("shared limits: the hourly window could not be checked ({}); the call is admitted", e.what());
    }
    if (!slot.admitted) {
        domain::nano_usd const nothing;
        co_await limiter_->settle(d->ticket, nothing);  // the reservation is undone
        admission_decision refused;
        refused.code = "rate_limited";
        refused.retry_after = slot.retry_after;
        co_return refused;
    }
    co_return d;
}

task<void> shared_limits::report(bool give_back) {
    std::string const everyone;
    auto snap = co_await limiter_->snapshot(everyone);
    if (!snap) {
        co_return;  // LCOV_EXCL_LINE: the limiter stops after this
    }
    auto const instance = options_.instance_id;
    auto const spent = snap->global_spent;
    std::optional<domain::nano_usd> keep;
    if (give_back) {
        keep = snap->global_spent + snap->global_reserved;
    }
    auto const window = options_.window;
    auto write = [instance, spent, keep, window](soci::session& sql) {
        persistence::report_lease(sql, instance, spent, keep);
        persistence::sweep_windows(sql, window);
    };
    try {
        co_await db_->run(std::move(write));
    } catch (persistence::database_error const& e) {
        spdlog::warn("shared limits: the lease heartbeat failed: {}", e.what());
    }
}

task<void> shared_limits::heartbeat_loop() {
    while (!stopping_) {
        timer_->expires_after(options_.heartbeat);
        auto [ec] = co_await timer_->async_wait(use_nothrow);
        if (ec || stopping_) {
            break;
        }
        co_await report(false);
    }
}

task<void> shared_limits::shutdown() {
    stopping_ = true;
    if (timer_) {
        auto timer = timer_;
        asio::post(ex_, [timer] { timer->cancel(); });  // on the heartbeat's strand
    }
    co_await report(true);
}

}  // namespace parley::actors
