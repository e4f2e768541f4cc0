#include "actors/retry.hpp"

#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <spdlog/spdlog.h>

#include <random>

namespace parley::actors {

namespace {

std::uint64_t thread_random() {
    thread_local std::mt19937_64 engine{std::random_device{}()};
    return engine();
}

task<bool> timer_sleep(std::chrono::milliseconds d) {
    asio::steady_timer timer{co_await asio::this_coro::executor, d};
    auto [ec] = co_await timer.async_wait(use_nothrow);
    co_return !ec;
}

task<bool> is_cancelled() {
    auto cs = co_await asio::this_coro::cancellation_state;
    co_return cs.cancelled() != asio::cancellation_type::none;
}

}  // namespace

retry_env retry_env::system() {
    return {[] { return std::chrono::steady_clock::now(); }, &thread_random, &timer_sleep};
}

net::upstream_error cancelled_error(std::string message) {
    net::upstream_error e;
    e.code_text = "cancelled";
    e.message = std::move(message);
    return e;
}

task<retry_outcome> run_with_retry(domain::retry_policy policy, retry_env env, attempt_function attempt) {
    retry_outcome out;
    auto const start = env.now();
    for (int n = 1;; ++n) {
        // No co_await inside an if condition (GCC 12 miscompiles it, see runtime.hpp).
        bool const cancelled = co_await is_cancelled();
        if (cancelled) {
            out.result = net::completion_result{boost::system::in_place_error,
                                                cancelled_error("the call was cancelled")};
            co_return out;
        }
        auto a = co_await attempt(n);
        out.attempts = n;
        out.requests += a.reached_upstream ? 1 : 0;
        out.result = std::move(a.result);
        out.partial = std::move(a.partial);
        if (out.result) {
            co_return out;
        }
        auto const& err = out.result.error();
        auto const elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(env.now() - start);
        auto const delay =
            domain::next_delay(policy, n, err.retryable, a.token_sent, err.retry_after, elapsed, env.random());
        if (!delay) {
            co_return out;
        }
        spdlog::debug("upstream attempt {} failed ({} {}): retrying in {} ms", n, err.status, err.code_text,
                      delay->count());
        out.waits.push_back(*delay);
        bool const waited = co_await env.sleep(*delay);
        if (!waited) {
            out.result = net::completion_result{boost::system::in_place_error,
                                                cancelled_error("the call was cancelled during a retry wait")};
            co_return out;
        }
    }
}

}  // namespace parley::actors
