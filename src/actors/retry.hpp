#pragma once
// The retry loop (ARCHITECTURE §3, STYLE 2.8): one coroutine that runs an
// attempt, asks the pure schedule (domain::next_delay) whether and how long
// to wait, waits, and tries again. The clock, the random source and the
// sleep are injected, so tests see exact delays without waiting.
//
//  * first try + policy.max_retries retries, transient failures only
//    (upstream_error::retryable), never once a token reached the client;
//  * the wait: policy.initial doubling to policy.max_backoff, jittered,
//    never shorter than Retry-After (capped by policy.max_retry_after);
//  * the next attempt must start before policy.total_deadline;
//  * a cancellation (of the awaiting coroutine) during a wait ends the loop
//    at once with a "cancelled" failure; one seen before an attempt, too.
#include "domain/retry_policy.hpp"
#include "net/asio.hpp"
#include "net/openrouter_reader.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace parley::actors {

struct retry_env {
    std::function<std::chrono::steady_clock::time_point()> now;
    std::function<std::uint64_t()> random;
    // Waits; false when the wait was cancelled.
    std::function<task<bool>(std::chrono::milliseconds)> sleep;

    // steady_clock, a per-thread mt19937_64 seeded from random_device, and
    // a steady_timer on the awaiting coroutine's executor.
    static retry_env system();
};

struct attempt_outcome {
    net::completion_result result;
    bool token_sent = false;        // a text delta already reached the client
    bool reached_upstream = false;  // the request was written to the upstream
    std::optional<net::completion> partial{};  // a failed stream: what it delivered before failing (for accounting)
};

struct retry_outcome {
    net::completion_result result;
    int attempts = 0;  // attempts made
    int requests = 0;  // ... whose request reached the upstream
    std::vector<std::chrono::milliseconds> waits;  // the delays waited, in order
    std::optional<net::completion> partial{};  // the last attempt's, when it failed
};

using attempt_function = std::function<task<attempt_outcome>(int attempt)>;

// Runs `attempt` (1-based attempt number) until it succeeds or the policy
// says stop. The attempt function owns what it needs (STYLE 2.3).
task<retry_outcome> run_with_retry(domain::retry_policy policy, retry_env env, attempt_function attempt);

// An upstream_error for a cancelled call (code_text "cancelled", not retryable).
net::upstream_error cancelled_error(std::string message);

}  // namespace parley::actors
