// RateLimiterActor: the hourly window and the daily budgets under real
// concurrency (callers on a 4-thread io_context), reservations settled to
// real costs, the UTC day rollover through an injected clock, per-user
// budgets, the exempt permission, start-up load, snapshots.
#include "actors/rate_limiter.hpp"

#include "support/io_fixture.hpp"

#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <vector>

namespace {

using namespace std::chrono_literals;
namespace asio = parley::asio;
namespace actors = parley::actors;
namespace domain = parley::domain;
using parley::task;
using domain::nano_usd;
using sys_time = std::chrono::system_clock::time_point;

nano_usd usd(char const* text) { return *domain::parse_usd(text); }

// 2026-12-01 12:00:00 UTC.
sys_time const noon = std::chrono::sys_days{std::chrono::year{2026} / 12 / 1} + 12h;

// A clock the test moves; read from the limiter's strand, set by the test thread.
struct test_clock {
    std::shared_ptr<std::atomic<std::int64_t>> ms =
        std::make_shared<std::atomic<std::int64_t>>(noon.time_since_epoch() / 1ms);
    std::function<sys_time()> fn() const {
        return [ms = ms] { return sys_time{std::chrono::milliseconds{ms->load()}}; };
    }
    void set(sys_time t) { ms->store(t.time_since_epoch() / 1ms); }
};

struct limiter_fixture {
    asio::thread_pool pool{4};
    test_clock clock;

    std::shared_ptr<actors::rate_limiter> make(actors::limiter_options o) {
        o.now = clock.fn();
        return actors::spawn<actors::rate_limiter>(pool.get_executor(), std::move(o));
    }

    // Runs a coroutine on the pool and waits for it (from the test thread,
    // which does not run the pool: no deadlock, STYLE P4).
    template <class T>
    T wait(task<T> t) {
        return asio::co_spawn(pool, std::move(t), asio::use_future).get();
    }

    ~limiter_fixture() { pool.join(); }
};

struct tally {
    std::atomic<int> admitted{0};
    std::atomic<int> refused{0};
    std::mutex m;
    std::vector<actors::admission_decision> decisions;
};

task<void> one_admission(std::shared_ptr<actors::rate_limiter> l, std::shared_ptr<tally> t, std::string user,
                         nano_usd worst, nano_usd actual) {
    // Named first: GCC 12 mishandles a braced temporary inside co_await (docs/architecture.md §3.1).
    actors::admission_request rq{.user_id = std::move(user), .exempt = false, .worst_case = worst};
    auto d = co_await l->admit(std::move(rq));
    if (!d) {
        co_return;
    }
    if (d->admitted) {
        ++t->admitted;
        co_await l->settle(d->ticket, actual);
    } else {
        ++t->refused;
    }
    std::lock_guard lock{t->m};
    t->decisions.push_back(*d);
}

// Starts n admissions at once on the pool's threads and waits for all.
void admit_concurrently(limiter_fixture& f, std::shared_ptr<actors::rate_limiter> l, std::shared_ptr<tally> t, int n,
                        std::function<std::string(int)> user, nano_usd worst, nano_usd actual) {
    std::vector<std::future<void>> done;
    for (int i = 0; i != n; ++i) {
        done.push_back(asio::co_spawn(f.pool, one_admission(l, t, user(i), worst, actual), asio::use_future));
    }
    for (auto& d : done) d.get();
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(rate_limiter_suite, limiter_fixture)

BOOST_AUTO_TEST_CASE(two_hundred_concurrent_admissions_for_one_user_with_limit_fifty_admit_exactly_fifty) {
    auto l = make({.rate_per_hour = 50, .daily_global = usd("1000")});
    auto t = std::make_shared<tally>();
    admit_concurrently(*this, l, t, 200, [](int) { return std::string{"u1"}; }, usd("0.01"), usd("0.001"));
    BOOST_TEST(t->admitted.load() == 50);
    BOOST_TEST(t->refused.load() == 150);
    for (auto const& d : t->decisions) {
        if (!d.admitted) {
            BOOST_TEST(d.code == "rate_limited");
            BOOST_TEST(d.retry_after == 3600s);  // the clock stands still: the oldest frees in exactly an hour
        }
    }
    // Another user has their own window.
    auto other = wait(l->admit({.user_id = "u2", .worst_case = usd("0.01")}));
    BOOST_TEST(other->admitted);
    wait(l->shutdown());
}

BOOST_AUTO_TEST_CASE(the_window_slides_and_retry_after_is_exact) {
    auto l = make({.rate_per_hour = 3, .daily_global = usd("1000")});
    for (int i = 0; i != 3; ++i) {
        clock.set(noon + std::chrono::seconds{10 * i});
        auto d = wait(l->admit({.user_id = "u", .worst_case = {}}));
        BOOST_TEST(d->admitted);
        wait(l->settle(d->ticket, {}));
    }
    clock.set(noon + 25s);
    auto refused = wait(l->admit({.user_id = "u", .worst_case = {}}));
    BOOST_TEST(!refused->admitted);
    BOOST_TEST(refused->retry_after == 3575s);  // noon + 3600 s - (noon + 25 s)
    clock.set(noon + 3600s);  // the first admission no longer counts
    auto again = wait(l->admit({.user_id = "u", .worst_case = {}}));
    BOOST_TEST(again->admitted);
    auto snap = wait(l->snapshot("u"));
    BOOST_TEST(snap->window_used == 3);
    BOOST_TEST(snap->window_limit == 3);
    BOOST_TEST(snap->open_tickets == 1u);
    wait(l->shutdown());
}

BOOST_AUTO_TEST_CASE(a_hundred_concurrent_calls_whose_worst_cases_exceed_the_budget_never_overspend) {
    // Budget 1.00 USD; each call reserves 0.03 (worst case) and really costs
    // 0.02: at most 33 reservations fit at once; as they settle, more fit.
    auto l = make({.rate_per_hour = 1'000, .daily_global = usd("1.00")});
    auto t = std::make_shared<tally>();
    admit_concurrently(*this, l, t, 100, [](int i) { return "user-" + std::to_string(i % 7); }, usd("0.03"),
                       usd("0.02"));
    auto snap = wait(l->snapshot("user-0"));
    BOOST_TEST(snap->global_reserved == nano_usd{});
    BOOST_TEST(snap->global_spent <= usd("1.00"));
    BOOST_TEST(snap->global_spent == usd("0.02") * t->admitted.load());
    BOOST_TEST(t->admitted.load() >= 33);
    BOOST_TEST(t->admitted.load() + t->refused.load() == 100);
    for (auto const& d : t->decisions) {
        if (!d.admitted) {
            BOOST_TEST(d.code == "budget_exhausted");
            BOOST_TEST(d.scope == "global");
            BOOST_TEST(d.retry_after == 12h);  // noon to midnight UTC
        }
    }
    wait(l->shutdown());
}

BOOST_AUTO_TEST_CASE(reservations_held_at_once_never_exceed_the_budget) {
    // Nobody settles: the reservations alone must stay within the budget.
    auto l = make({.rate_per_hour = 1'000, .daily_global = usd("1.00")});
    std::vector<std::future<actors::result<actors::admission_decision>>> all;
    for (int i = 0; i != 100; ++i) {
        all.push_back(asio::co_spawn(pool, l->admit({.user_id = "u" + std::to_string(i), .worst_case = usd("0.07")}),
                                     asio::use_future));
    }
    int admitted = 0;
    for (auto& f : all) admitted += f.get()->admitted ? 1 : 0;
    BOOST_TEST(admitted == 14);  // 14 * 0.07 = 0.98; a 15th would make 1.05
    auto snap = wait(l->snapshot("u0"));
    BOOST_TEST(snap->global_reserved == usd("0.98"));
    wait(l->shutdown());
}

BOOST_AUTO_TEST_CASE(the_utc_day_rollover_resets_the_budgets) {
    clock.set(noon + 11h + 59min);  // 23:59 UTC
    auto l = make({.rate_per_hour = 1'000, .daily_global = usd("0.10"), .daily_per_user = usd("0.05")});
    auto d = wait(l->admit({.user_id = "u", .worst_case = usd("0.05")}));
    BOOST_TEST(d->admitted);
    wait(l->settle(d->ticket, usd("0.05")));
    auto refused = wait(l->admit({.user_id = "u", .worst_case = usd("0.01")}));
    BOOST_TEST(!refused->admitted);
    BOOST_TEST(refused->scope == "user");
    BOOST_TEST(refused->retry_after == 60s);  // to 00:00 UTC
    clock.set(noon + 12h);  // 00:00 UTC, the next day
    auto next_day = wait(l->admit({.user_id = "u", .worst_case = usd("0.05")}));
    BOOST_TEST(next_day->admitted);
    auto snap = wait(l->snapshot("u"));
    BOOST_TEST(snap->user_spent == nano_usd{});
    BOOST_TEST(snap->user_reserved == usd("0.05"));
    wait(l->shutdown());
}

BOOST_AUTO_TEST_CASE(a_user_budget_refusal_undoes_the_global_reservation) {
    auto l = make({.rate_per_hour = 1'000, .daily_global = usd("1.00"), .daily_per_user = usd("0.10")});
    auto big = wait(l->admit({.user_id = "u", .worst_case = usd("0.11")}));
    BOOST_TEST(!big->admitted);
    BOOST_TEST(big->code == "budget_exhausted");
    BOOST_TEST(big->scope == "user");
    auto snap = wait(l->snapshot("u"));
    BOOST_TEST(snap->global_reserved == nano_usd{});
    BOOST_TEST(snap->window_used == 0);  // a refused call does not use a slot
    wait(l->shutdown());
}

BOOST_AUTO_TEST_CASE(exempt_users_skip_the_window_but_not_the_budget) {
    auto l = make({.rate_per_hour = 1, .daily_global = usd("0.05")});
    for (int i = 0; i != 5; ++i) {
        auto d = wait(l->admit({.user_id = "ops", .exempt = true, .worst_case = usd("0.01")}));
        BOOST_TEST(d->admitted);
    }
    auto over = wait(l->admit({.user_id = "ops", .exempt = true, .worst_case = usd("0.01")}));
    BOOST_TEST(!over->admitted);
    BOOST_TEST(over->code == "budget_exhausted");
    wait(l->shutdown());
}

BOOST_AUTO_TEST_CASE(load_restores_spend_and_the_window_from_the_database) {
    auto l = make({.rate_per_hour = 3, .daily_global = usd("1.00"), .daily_per_user = usd("0.50")});
    actors::limiter_load state;
    state.global_spent_today = usd("0.95");
    state.user_spent_today["u"] = usd("0.40");
    state.recent_calls = {{"u", noon - 30min}, {"u", noon - 20min}, {"u", noon - 10min}};
    wait(l->load(state));
    auto limited = wait(l->admit({.user_id = "u", .worst_case = {}}));
    BOOST_TEST(!limited->admitted);
    BOOST_TEST(limited->code == "rate_limited");
    BOOST_TEST(limited->retry_after == 1800s);  // the call of 11:30 frees at 12:30
    auto over = wait(l->admit({.user_id = "v", .worst_case = usd("0.06")}));
    BOOST_TEST(!over->admitted);  // 0.95 + 0.06 > 1.00
    auto fits = wait(l->admit({.user_id = "v", .worst_case = usd("0.05")}));
    BOOST_TEST(fits->admitted);
    auto snap = wait(l->snapshot("u"));
    BOOST_TEST(snap->user_spent == usd("0.40"));
    wait(l->shutdown());
}

BOOST_AUTO_TEST_CASE(settling_an_unknown_ticket_changes_nothing_and_adjust_only_adds) {
    auto l = make({.rate_per_hour = 10, .daily_global = usd("1.00")});
    auto d = wait(l->admit({.user_id = "u", .worst_case = usd("0.10")}));
    wait(l->settle(d->ticket, usd("0.02")));
    wait(l->settle(d->ticket, usd("0.50")));  // twice: ignored
    wait(l->settle(999'999, usd("0.50")));    // unknown: ignored
    wait(l->adjust("u", usd("0.01")));         // a higher real cost found later
    wait(l->adjust("u", nano_usd{-5'000'000}));  // a lower one: ignored (safe side)
    auto snap = wait(l->snapshot("u"));
    BOOST_TEST(snap->global_spent == usd("0.03"));
    BOOST_TEST(snap->global_reserved == nano_usd{});
    BOOST_TEST(snap->open_tickets == 0u);
    wait(l->shutdown());
}

BOOST_AUTO_TEST_CASE(idle_windows_are_swept_and_calls_after_shutdown_fail) {
    auto l = make({.rate_per_hour = 1, .daily_global = usd("1.00"), .sweep_interval = 20ms});
    auto d = wait(l->admit({.user_id = "u", .worst_case = {}}));
    BOOST_TEST(d->admitted);
    clock.set(noon + 2h);  // the window is empty now
    std::this_thread::sleep_for(100ms);  // a few sweeps
    auto again = wait(l->admit({.user_id = "u", .worst_case = {}}));
    BOOST_TEST(again->admitted);
    wait(l->shutdown());
    auto late = wait(l->admit({.user_id = "u", .worst_case = {}}));
    BOOST_TEST(!late);
    BOOST_TEST((late.error() == parley::errc::actor_stopped));
}

BOOST_AUTO_TEST_SUITE_END()
