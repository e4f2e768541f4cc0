#pragma once
// RateLimiterActor (ARCHITECTURE §3): the per-user hourly request window and
// the daily budgets (global, and optionally per user), shared by every
// session. An actor on the runtime (actors/runtime.hpp): its windows and
// ledgers are touched only by its handlers, so checks and reservations are
// one atomic step, and no number of concurrent callers can admit more than
// the window allows or reserve past a budget.
//
//   actors::admission_request rq{.user_id = "u1", .worst_case = cost};
//   auto d = co_await limiter->admit(std::move(rq));     // (named: see docs/architecture.md §3.1)
//   if (!d || !d->admitted) { ... d->code ("rate_limited", "budget_exhausted"), d->retry_after ... }
//   ... the upstream call ...
//   co_await limiter->settle(d->ticket, real_cost);
//
//  * admit: the window first (users with `exempt` skip it), then the global
//    budget, then the user's own; a refusal leaves no trace (a refused call
//    does not use up a slot of the window nor reserve anything). Admitted:
//    the window records the call and `worst_case` is reserved in each budget.
//  * settle: the reservation ends and the real cost counts for today (UTC).
//    A ticket settled twice, or unknown, is ignored.
//  * adjust: a later correction of a settled cost (a /generation lookup):
//    a positive difference is added to today's spend; a negative one is
//    ignored (budgets only ever err on the safe side).
//  * load: the state the database knows at start-up (today's spend, the
//    last hour's calls).
#include "actors/runtime.hpp"
#include "domain/budget.hpp"
#include "domain/money.hpp"
#include "domain/rate_window.hpp"

#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace parley::actors {

using sys_clock = std::chrono::system_clock;

struct limiter_options {
    int rate_per_hour = 50;
    std::chrono::seconds window{3600};
    domain::nano_usd daily_global{10 * domain::nanos_per_usd};
    std::optional<domain::nano_usd> daily_per_user{};  // unset: no per-user budget
    std::function<sys_clock::time_point()> now = [] { return sys_clock::now(); };  // injected in tests
    std::size_t mailbox = 4096;
    std::chrono::milliseconds sweep_interval{60'000};  // idle windows and ledgers are dropped this often
};

struct admission_request {
    std::string user_id;
    bool exempt = false;           // skips the hourly window (never the budgets)
    domain::nano_usd worst_case;   // the most the call can cost
};

struct admission_decision {
    bool admitted = false;
    std::uint64_t ticket = 0;                // admitted: settle it after the call
    std::string code;                        // refused: "rate_limited" or "budget_exhausted"
    std::string scope;                       // refused by a budget: "global" or "user"
    std::chrono::seconds retry_after{0};     // refused: the exact wait
};

// What one user has used and has left (for the assistant's my_usage tool and tests).
struct limits_snapshot {
    int window_used = 0;
    int window_limit = 0;
    domain::nano_usd global_spent, global_reserved, global_limit;
    domain::nano_usd user_spent, user_reserved;
    std::optional<domain::nano_usd> user_limit;
    std::size_t open_tickets = 0;
};

struct limiter_load {
    domain::nano_usd global_spent_today;
    std::map<std::string, domain::nano_usd, std::less<>> user_spent_today;
    std::vector<std::pair<std::string, sys_clock::time_point>> recent_calls;  // within the window
};

namespace limiter_msg {
struct admit {
    admission_request request;
    reply<admission_decision> reply_to;
};
struct settle {
    std::uint64_t ticket = 0;
    domain::nano_usd actual;
};
struct adjust {
    std::string user_id;
    domain::nano_usd delta;
};
struct load {
    limiter_load state;
    reply<void> reply_to;
};
struct snapshot {
    std::string user_id;
    reply<limits_snapshot> reply_to;
};
struct set_global_limit {
    domain::nano_usd limit;
    reply<void> reply_to;
};
struct sweep {};
struct close {
    reply<void> reply_to;
};
}  // namespace limiter_msg

class rate_limiter final : public actor<rate_limiter, limiter_msg::admit, limiter_msg::settle, limiter_msg::adjust,
                                        limiter_msg::load, limiter_msg::snapshot, limiter_msg::set_global_limit,
                                        limiter_msg::sweep, limiter_msg::close> {
public:
    rate_limiter(asio::any_io_executor ex, limiter_options options);

    task<result<admission_decision>> admit(admission_request request);
    task<result<void>> settle(std::uint64_t ticket, domain::nano_usd actual);
    task<result<void>> adjust(std::string user_id, domain::nano_usd delta);
    task<result<void>> load(limiter_load state);
    task<result<limits_snapshot>> snapshot(std::string user_id);
    // The global budget's limit from now on (a shared budget's lease: see
    // actors/shared_limits.hpp).
    task<result<void>> set_global_limit(domain::nano_usd limit);
    // Stops the sweep timer and the actor.
    task<void> shutdown();

private:
    friend actor;
    struct ticket_info {
        std::string user_id;
        domain::nano_usd reserved;
    };

    void on(limiter_msg::admit& m);
    void on(limiter_msg::settle& m);
    void on(limiter_msg::adjust& m);
    void on(limiter_msg::load& m);
    void on(limiter_msg::snapshot& m);
    void on(limiter_msg::set_global_limit& m);
    void on(limiter_msg::sweep& m);
    void on(limiter_msg::close& m);

    domain::rate_window& window_of(std::string const& user);
    domain::budget* budget_of(std::string const& user);  // null without a per-user budget
    void arm_sweep();

    limiter_options options_;
    domain::budget global_;
    std::unordered_map<std::string, domain::rate_window> windows_;
    std::unordered_map<std::string, domain::budget> user_budgets_;
    std::unordered_map<std::uint64_t, ticket_info> tickets_;
    std::uint64_t next_ticket_ = 1;
    asio::steady_timer sweep_timer_;
    bool sweep_armed_ = false;
    bool stopping_ = false;
};

}  // namespace parley::actors
