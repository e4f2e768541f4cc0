#include "domain/retry_policy.hpp"

#include <algorithm>

namespace parley::domain {

using std::chrono::milliseconds;

std::optional<milliseconds> next_delay(retry_policy const& policy, int attempt, bool retryable, bool token_sent,
                                       std::optional<milliseconds> retry_after, milliseconds elapsed,
                                       std::uint64_t random) {
    if (!retryable || token_sent || attempt > policy.max_retries) {
        return std::nullopt;
    }
    milliseconds const zero{0};
    milliseconds const max_backoff = std::max(policy.max_backoff, zero);
    milliseconds ceiling = std::clamp(policy.initial, zero, max_backoff);
    for (int i = 1; i < attempt && ceiling < max_backoff && ceiling > zero; ++i) {
        ceiling = std::min(ceiling * 2, max_backoff);
    }
    auto const half = static_cast<std::uint64_t>(ceiling.count() / 2);
    milliseconds delay = ceiling - milliseconds{half} + milliseconds{random % (half + 1)};
    if (retry_after) {
        delay = std::max(delay, std::clamp(*retry_after, zero, std::max(policy.max_retry_after, zero)));
    }
    if (elapsed + delay >= policy.total_deadline) {
        return std::nullopt;
    }
    return delay;
}

}  // namespace parley::domain
