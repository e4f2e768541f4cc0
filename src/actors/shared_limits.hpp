#pragma once
// Limits shared by several Parley processes over one PostgreSQL
// (limits.backend = postgres; issue #7). The accountant admits through it
// instead of the rate limiter alone:
//
//  * the hourly window of each user is in the database
//    (persistence/limits_repository.hpp): exactly `rate_per_hour` calls per
//    user per window, whichever process admits them;
//  * the global daily budget is leased: this process's rate limiter holds,
//    as its global limit, the slices of today's budget the database granted
//    it, and reserves against them locally; a reservation that does not
//    fit asks for one more slice (the larger of `slice` and the call's worst
//    case). A heartbeat reports what this process spent; at shutdown the
//    unused rest is given back; a process that stops heartbeating (crashed)
//    has its unused grant counted free again after `lease_ttl`.
//
// The bound: spend can pass the daily limit only by what crashed processes
// had reserved for calls in flight when they died, which their lease still
// covered as "granted" until it expired and then counts only their last
// reported spend: at most the slices they held (slice, or a call's worst case).
// Per-user daily budgets stay per process.
//
// A database that cannot be reached: the window admits (the budget still
// protects the spend) and no new slice is granted (calls beyond the slices
// held are refused, budget_exhausted).
#include "actors/rate_limiter.hpp"

#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>

namespace parley::persistence {
class database;
}

namespace parley::actors {

struct shared_limits_options {
    std::string instance_id;                        // unique per process (a random one by default)
    int rate_per_hour = 50;
    std::chrono::seconds window{3600};
    domain::nano_usd daily_global{10 * domain::nanos_per_usd};
    domain::nano_usd slice{50'000'000};             // 0.05 USD
    std::chrono::seconds lease_ttl{30};
    std::chrono::milliseconds heartbeat{5'000};
};

class shared_limits : public std::enable_shared_from_this<shared_limits> {
public:
    shared_limits(asio::any_io_executor ex, std::shared_ptr<persistence::database> db,
                  std::shared_ptr<rate_limiter> limiter, shared_limits_options options);

    // Starts the heartbeat.
    void start();
    // The window (unless exempt) and the budgets, as rate_limiter::admit.
    task<result<admission_decision>> admit(admission_request request);
    // A last heartbeat that gives the unused lease back; stops the heartbeat.
    task<void> shutdown();

    domain::nano_usd granted() const;  // today's slices held
    std::string const& instance_id() const noexcept { return options_.instance_id; }

private:
    task<bool> grow(domain::nano_usd at_least);
    task<void> heartbeat_loop();
    task<void> report(bool give_back);

    asio::any_io_executor ex_;  // a strand: the heartbeat's timer lives on it
    std::shared_ptr<persistence::database> db_;
    std::shared_ptr<rate_limiter> limiter_;
    shared_limits_options options_;
    mutable std::mutex mutex_;
    domain::nano_usd granted_;  // today's (UTC) slices
    std::int64_t day_ = 0;      // the UTC day granted_ is for
    std::shared_ptr<asio::steady_timer> timer_;
    std::atomic<bool> stopping_{false};
};

}  // namespace parley::actors
