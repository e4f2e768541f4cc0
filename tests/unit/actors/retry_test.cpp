// The retry loop (actors/retry.hpp) with an injected clock, random source
// and sleep, so every delay is exact; plus the real sleep's cancellation.
#include "actors/retry.hpp"
#include "support/io_fixture.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

namespace {

using namespace std::chrono_literals;
namespace asio = parley::asio;
namespace actors = parley::actors;
namespace net = parley::net;
using parley::task;
using ms = std::chrono::milliseconds;

// A clock that only moves when the loop sleeps (or an attempt says so).
struct fake_time {
    std::chrono::steady_clock::time_point now{};
    std::vector<ms> slept;
    std::uint64_t random = 0;
    bool sleep_result = true;
};

actors::retry_env fake_env(std::shared_ptr<fake_time> t) {
    return {[t] { return t->now; }, [t] { return t->random; },
            [t](ms d) -> task<bool> {
                t->slept.push_back(d);
                t->now += d;
                co_return t->sleep_result;
            }};
}

net::upstream_error transient(std::optional<ms> retry_after = std::nullopt) {
    net::upstream_error e;
    e.status = 502;
    e.code_text = "502";
    e.message = "Provider returned error";
    e.retryable = true;
    e.retry_after = retry_after;
    return e;
}

net::upstream_error permanent() {
    net::upstream_error e;
    e.status = 401;
    e.code_text = "401";
    e.retryable = false;
    return e;
}

actors::attempt_outcome fail_with(net::upstream_error e, bool token_sent = false) {
    return {net::completion_result{boost::system::in_place_error, std::move(e)}, token_sent, true};
}

actors::attempt_outcome succeed(std::string text) {
    net::completion c;
    c.text = std::move(text);
    return {std::move(c), false, true};
}

// An attempt function that plays `script` in order (the last entry repeats)
// and counts calls.
struct script {
    std::vector<actors::attempt_outcome> steps{};
    int calls = 0;
    std::shared_ptr<fake_time> time{};
    ms attempt_takes{0};
};

actors::attempt_function play(std::shared_ptr<script> s) {
    return [s](int n) -> task<actors::attempt_outcome> {
        BOOST_TEST(n == s->calls + 1);
        ++s->calls;
        if (s->time) {
            s->time->now += s->attempt_takes;
        }
        auto const i = std::min<std::size_t>(static_cast<std::size_t>(n - 1), s->steps.size() - 1);
        co_return s->steps[i];
    };
}

struct retry_fixture : parley::test::io_fixture {
    std::shared_ptr<fake_time> time = std::make_shared<fake_time>();
    parley::domain::retry_policy policy;  // defaults: 3 retries, 500 ms doubling to 8 s

    actors::retry_outcome run_script(std::shared_ptr<script> s) {
        std::optional<actors::retry_outcome> out;
        run([&]() -> task<void> {
            auto attempt = play(s);
            out = co_await actors::run_with_retry(policy, fake_env(time), std::move(attempt));
        });
        return std::move(*out);
    }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(retry_suite, retry_fixture)

/// Success at once: one attempt, no wait.
BOOST_AUTO_TEST_CASE(success_needs_one_attempt) {
    auto s = std::make_shared<script>(script{{succeed("hi")}});
    auto out = run_script(s);
    BOOST_REQUIRE(out.result.has_value());
    BOOST_TEST(out.result->text == "hi");
    BOOST_TEST(out.attempts == 1);
    BOOST_TEST(out.requests == 1);
    BOOST_TEST(out.waits.empty());
}

/// A transient failure then success: two attempts, one wait of
/// ceiling/2 = 250 ms (random 0, equal jitter on 500 ms).
BOOST_AUTO_TEST_CASE(a_transient_failure_is_retried_after_the_backoff) {
    auto s = std::make_shared<script>(script{{fail_with(transient()), succeed("ok")}});
    auto out = run_script(s);
    BOOST_TEST(out.result.has_value());
    BOOST_TEST(out.attempts == 2);
    BOOST_TEST((time->slept == std::vector<ms>{250ms}));
    BOOST_TEST((out.waits == time->slept));
}

/// Always transient: the first try plus 3 retries, then the failure; the
/// waits double (random 0: 250, 500, 1000; random max: 500, 1000, 2000).
BOOST_AUTO_TEST_CASE(four_transient_failures_give_up_with_doubling_waits) {
    auto s = std::make_shared<script>(script{{fail_with(transient())}});
    auto out = run_script(s);
    BOOST_REQUIRE(out.result.has_error());
    BOOST_TEST(out.result.error().status == 502);
    BOOST_TEST(out.attempts == 4);
    BOOST_TEST(out.requests == 4);
    BOOST_TEST(s->calls == 4);
    BOOST_TEST((time->slept == std::vector<ms>{250ms, 500ms, 1000ms}));

    time->slept.clear();
    time->random = 251ull * 501 * 1001 - 1;  // random % (half + 1) == half for half = 250, 500, 1000
    auto again = std::make_shared<script>(script{{fail_with(transient())}});
    run_script(again);
    BOOST_TEST((time->slept == std::vector<ms>{500ms, 1000ms, 2000ms}));
}

/// A permanent failure (401) is not retried.
BOOST_AUTO_TEST_CASE(a_permanent_failure_is_not_retried) {
    auto s = std::make_shared<script>(script{{fail_with(permanent()), succeed("never")}});
    auto out = run_script(s);
    BOOST_TEST(out.result.has_error());
    BOOST_TEST(out.attempts == 1);
    BOOST_TEST(time->slept.empty());
}

/// Once a token reached the client, even a transient failure is final.
BOOST_AUTO_TEST_CASE(nothing_is_retried_once_a_token_was_sent) {
    auto s = std::make_shared<script>(script{{fail_with(transient(), true), succeed("never")}});
    auto out = run_script(s);
    BOOST_TEST(out.result.has_error());
    BOOST_TEST(out.attempts == 1);
}

/// Retry-After raises the wait; one beyond max_retry_after is capped.
BOOST_AUTO_TEST_CASE(retry_after_is_honoured_and_capped) {
    auto s = std::make_shared<script>(script{{fail_with(transient(3000ms)), succeed("ok")}});
    run_script(s);
    BOOST_TEST((time->slept == std::vector<ms>{3000ms}));

    time->slept.clear();
    policy.max_retry_after = 5000ms;
    auto capped = std::make_shared<script>(script{{fail_with(transient(120'000ms)), succeed("ok")}});
    auto out = run_script(capped);
    BOOST_TEST(out.result.has_value());
    BOOST_TEST((time->slept == std::vector<ms>{5000ms}));
}

/// No attempt starts past the total deadline (here: each attempt takes
/// 900 ms of a 1.5 s budget, so the second wait would cross it).
BOOST_AUTO_TEST_CASE(no_attempt_starts_past_the_total_deadline) {
    policy.total_deadline = 1500ms;
    auto s = std::make_shared<script>(script{{fail_with(transient())}, 0, time, 600ms});
    auto out = run_script(s);
    BOOST_TEST(out.result.has_error());
    BOOST_TEST(out.attempts == 2);  // 600 + 250 wait + 600 = 1450; then 1450 + 500 >= 1500
    BOOST_TEST((time->slept == std::vector<ms>{250ms}));
}

/// A wait that reports cancellation ends the loop with "cancelled".
BOOST_AUTO_TEST_CASE(a_cancelled_wait_ends_the_loop) {
    time->sleep_result = false;
    auto s = std::make_shared<script>(script{{fail_with(transient()), succeed("never")}});
    auto out = run_script(s);
    BOOST_REQUIRE(out.result.has_error());
    BOOST_TEST(out.result.error().code_text == "cancelled");
    BOOST_TEST(!out.result.error().retryable);
    BOOST_TEST(out.attempts == 1);
}

/// Requests that never reached the upstream (connect failures) are not
/// counted as requests, only as attempts.
BOOST_AUTO_TEST_CASE(attempts_that_did_not_reach_the_upstream_are_not_requests) {
    auto unreached = fail_with(transient());
    unreached.reached_upstream = false;
    auto s = std::make_shared<script>(script{{unreached, unreached, succeed("ok")}});
    auto out = run_script(s);
    BOOST_TEST(out.attempts == 3);
    BOOST_TEST(out.requests == 1);
}

/// With the real sleep: cancelling the awaiting coroutine during a long
/// wait (Retry-After 10 s) ends the loop at once.
BOOST_AUTO_TEST_CASE(a_cancel_during_a_real_wait_ends_it_at_once) {
    auto s = std::make_shared<script>(script{{fail_with(transient(10'000ms))}});
    asio::cancellation_signal cancel;
    std::optional<actors::retry_outcome> out;
    auto const start = std::chrono::steady_clock::now();
    asio::co_spawn(
        ioc,
        [&]() -> task<void> {
            auto attempt = play(s);
            out = co_await actors::run_with_retry(policy, actors::retry_env::system(), std::move(attempt));
        },
        asio::bind_cancellation_slot(cancel.slot(), [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        }));
    asio::steady_timer t{ioc, 100ms};
    t.async_wait([&](boost::system::error_code) { cancel.emit(asio::cancellation_type::terminal); });
    ioc.run_for(5s);
    BOOST_REQUIRE(out.has_value());
    BOOST_TEST((std::chrono::steady_clock::now() - start < 2s));
    BOOST_REQUIRE(out->result.has_error());
    BOOST_TEST(out->result.error().code_text == "cancelled");
    BOOST_TEST(out->attempts == 1);
    BOOST_TEST((out->waits == std::vector<ms>{10'000ms}));
}

/// A cancellation that arrived while an attempt ran stops the loop before
/// the next attempt, even when the wait itself did not notice it.
BOOST_AUTO_TEST_CASE(a_cancel_seen_before_the_next_attempt_stops_the_loop) {
    asio::cancellation_signal cancel;
    auto calls = std::make_shared<int>(0);
    actors::attempt_function attempt = [&cancel, calls](int) -> task<actors::attempt_outcome> {
        ++*calls;
        cancel.emit(asio::cancellation_type::terminal);  // while no operation waits
        co_return fail_with(transient());
    };
    std::optional<actors::retry_outcome> out;
    asio::co_spawn(
        ioc,
        [&]() -> task<void> {
            co_await asio::this_coro::throw_if_cancelled(false);
            out = co_await actors::run_with_retry(policy, fake_env(time), std::move(attempt));
        },
        asio::bind_cancellation_slot(cancel.slot(), [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        }));
    ioc.run_for(5s);
    BOOST_REQUIRE(out.has_value());
    BOOST_TEST(*calls == 1);
    BOOST_TEST(out->result.error().code_text == "cancelled");
}

/// The system environment: a monotonic clock, a varying random source and
/// a sleep that returns true when it ran its course.
BOOST_AUTO_TEST_CASE(the_system_environment_works) {
    auto env = actors::retry_env::system();
    auto const a = env.now();
    BOOST_TEST((env.now() >= a));
    bool differ = false;
    auto const first = env.random();
    for (int i = 0; i < 4 && !differ; ++i) {
        differ = env.random() != first;
    }
    BOOST_TEST(differ);
    bool slept = false;
    run([&]() -> task<void> { slept = co_await env.sleep(1ms); });
    BOOST_TEST(slept);
}

BOOST_AUTO_TEST_SUITE_END()
