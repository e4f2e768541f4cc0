#pragma once
// The pure part of Parley's retry loop (ARCHITECTURE §3; openrouter-api.md
// §6, §10): which HTTP statuses are transient, and how long to wait before
// the next attempt. The loop itself (timers, cancellation) lives with the
// OpenRouter client; it measures `elapsed` and draws `random` and passes
// them in, so every delay here is exact and testable.
#include <chrono>
#include <cstdint>
#include <optional>

namespace parley::domain {

struct retry_policy {
    int max_retries = 3;                            // after the first try: at most 1 + 3 attempts
    std::chrono::milliseconds initial{500};         // backoff ceiling of the first retry
    std::chrono::milliseconds max_backoff{8'000};   // ceiling of the doubling
    std::chrono::milliseconds max_retry_after{60'000};  // longest Retry-After honoured
    std::chrono::milliseconds total_deadline{300'000};  // from the first attempt's start
};

// How long to wait after `attempt` (1-based: 1 = the first try) failed, or
// nullopt to stop and report the failure. Stops when:
//   - the failure is not retryable;
//   - a token already reached the client (a retry would repeat text);
//   - attempt > max_retries (the first try plus max_retries are used up);
//   - elapsed + delay >= total_deadline: the next attempt must start
//     before the deadline (`elapsed` = time since the first attempt began).
// Delay ("equal jitter"): the ceiling is initial * 2^(attempt-1), capped at
// max_backoff (500, 1000, 2000, 4000, 8000, 8000... ms by default); the
// delay is ceiling - ceiling/2 + random % (ceiling/2 + 1), i.e. uniform in
// [ceiling/2, ceiling] (rounded up), never 0 for a positive ceiling. It is
// then raised to at least min(retry_after, max_retry_after): a Retry-After
// beyond max_retry_after is waited for max_retry_after only (if that fits
// the deadline), not given up on, since the hint is often conservative and
// the deadline still bounds the whole call. Negative durations count as 0.
std::optional<std::chrono::milliseconds> next_delay(retry_policy const& policy, int attempt, bool retryable,
                                                    bool token_sent,
                                                    std::optional<std::chrono::milliseconds> retry_after,
                                                    std::chrono::milliseconds elapsed, std::uint64_t random);

// Which failures are retryable (status table, availability.retryable) is
// decided by the classifier, parley::net::classify (net/openrouter_reader.hpp).

}  // namespace parley::domain
