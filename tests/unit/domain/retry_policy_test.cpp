#include "domain/retry_policy.hpp"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>

using namespace std::chrono_literals;
using parley::domain::next_delay;
using parley::domain::retry_policy;
using std::chrono::milliseconds;

namespace {

constexpr std::uint64_t max_random = std::numeric_limits<std::uint64_t>::max();
constexpr long long stop = -1;  // next_delay said nullopt

// Milliseconds (or `stop`): Boost.Test can print these, not optional<duration>.
long long ms(std::optional<milliseconds> d) { return d ? static_cast<long long>(d->count()) : stop; }

// A retryable failure before any token, optionally with Retry-After, at `elapsed`.
long long delay(retry_policy const& p, int attempt, std::uint64_t random,
                std::optional<milliseconds> retry_after = std::nullopt, milliseconds elapsed = 0ms) {
    return ms(next_delay(p, attempt, true, false, retry_after, elapsed, random));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(retry_policy_suite)

BOOST_AUTO_TEST_CASE(defaults_match_the_architecture) {
    retry_policy const p;
    BOOST_TEST(p.max_retries == 3);
    BOOST_TEST(p.initial.count() == 500);
    BOOST_TEST(p.max_backoff.count() == 8'000);
    BOOST_TEST(p.max_retry_after.count() == 60'000);
    BOOST_TEST(p.total_deadline.count() == 300'000);
}

BOOST_AUTO_TEST_CASE(first_retries_wait_exact_equal_jitter_delays) {
    retry_policy const p;
    struct {
        int attempt;
        std::uint64_t random;
        long long expected;
    } const cases[] = {
        {1, 0, 250},      // ceiling 500: 250 + random % 251
        {1, 250, 500},    // the top of [250, 500]
        {1, 251, 250},    // wraps
        {1, 1000, 497},   // 250 + 1000 % 251
        {2, 100, 600},    // ceiling 1000: 500 + random % 501
        {3, 0, 1000},     // ceiling 2000: 1000 + random % 1001
        {3, 1000, 2000},
        {1, max_random, 318},  // 250 + 68
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT("attempt " << c.attempt << " random " << c.random) {
            BOOST_TEST(delay(p, c.attempt, c.random) == c.expected);
        }
    }
}

BOOST_AUTO_TEST_CASE(fourth_attempt_waits_when_retries_remain) {
    retry_policy p;
    p.max_retries = 4;
    BOOST_TEST(delay(p, 4, 7) == 2'007);  // ceiling 4000: 2000 + 7
}

BOOST_AUTO_TEST_CASE(the_first_try_plus_max_retries_are_all_there_is) {
    retry_policy p;
    BOOST_TEST(delay(p, 3, 0) != stop);
    BOOST_TEST(delay(p, 4, 0) == stop);  // 1 + 3 attempts made
    p.max_retries = 0;
    BOOST_TEST(delay(p, 1, 0) == stop);
}

BOOST_AUTO_TEST_CASE(backoff_stops_doubling_at_the_cap) {
    retry_policy p;
    p.max_retries = 100;
    BOOST_TEST(delay(p, 5, 0) == 4'000);  // ceiling 8000
    BOOST_TEST(delay(p, 5, 4'000) == 8'000);
    BOOST_TEST(delay(p, 6, 0) == 4'000);  // still 8000
    BOOST_TEST(delay(p, 100, max_random) == 4'000 + 2'498);  // no overflow

    p.initial = 5'000ms;
    p.max_backoff = 3'000ms;  // a cap below the initial delay wins
    BOOST_TEST(delay(p, 1, 1'500) == 3'000);
}

BOOST_AUTO_TEST_CASE(a_zero_initial_delay_stays_zero) {
    retry_policy p;
    p.initial = 0ms;
    BOOST_TEST(delay(p, 3, 12'345) == 0);
}

BOOST_AUTO_TEST_CASE(retry_after_raises_the_delay_but_never_lowers_it) {
    retry_policy const p;
    BOOST_TEST(delay(p, 1, 0, 2'000ms) == 2'000);
    BOOST_TEST(delay(p, 1, 0, 100ms) == 250);
    BOOST_TEST(delay(p, 1, 0, -5'000ms) == 250);
    BOOST_TEST(delay(p, 3, 1'000, 1'500ms) == 2'000);
}

BOOST_AUTO_TEST_CASE(retry_after_over_the_cap_waits_the_cap_if_it_fits_the_deadline) {
    retry_policy const p;
    BOOST_TEST(delay(p, 1, 0, 120'000ms) == 60'000);
    BOOST_TEST(delay(p, 1, 0, 120'000ms, 239'999ms) == 60'000);
    BOOST_TEST(delay(p, 1, 0, 120'000ms, 240'000ms) == stop);
}

BOOST_AUTO_TEST_CASE(the_next_attempt_must_start_before_the_total_deadline) {
    retry_policy const p;
    BOOST_TEST(delay(p, 1, 0, std::nullopt, 299'749ms) == 250);
    BOOST_TEST(delay(p, 1, 0, std::nullopt, 299'750ms) == stop);
    BOOST_TEST(delay(p, 1, 0, std::nullopt, 400'000ms) == stop);
    BOOST_TEST(delay(p, 1, 250, std::nullopt, 299'499ms) == 500);
    BOOST_TEST(delay(p, 1, 250, std::nullopt, 299'500ms) == stop);
}

BOOST_AUTO_TEST_CASE(a_token_already_sent_stops_retrying) {
    retry_policy const p;
    BOOST_TEST(ms(next_delay(p, 1, true, true, std::nullopt, 0ms, 0)) == stop);
    BOOST_TEST(ms(next_delay(p, 1, true, true, 1'000ms, 0ms, 0)) == stop);
}

BOOST_AUTO_TEST_CASE(a_non_retryable_failure_stops_retrying) {
    retry_policy const p;
    BOOST_TEST(ms(next_delay(p, 1, false, false, std::nullopt, 0ms, 0)) == stop);
    BOOST_TEST(ms(next_delay(p, 1, false, false, 1'000ms, 0ms, 0)) == stop);
}

BOOST_AUTO_TEST_SUITE_END()
