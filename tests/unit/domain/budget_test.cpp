#include "domain/budget.hpp"
#include "domain/money.hpp"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdint>
#include <limits>

using namespace std::chrono_literals;
using namespace parley::domain;

namespace {

constexpr std::int64_t max64 = std::numeric_limits<std::int64_t>::max();

// 2024-03-10 00:00:00 UTC, day 19792 since the epoch.
sys_time const day0{std::chrono::sys_days{std::chrono::year{2024} / 3 / 10}};
constexpr std::int64_t day0_number = 19'792;

sys_time const noon = day0 + 12h;
sys_time const next_day = day0 + 24h;

// retry_after in seconds, or -1 when accepted (Boost.Test prints plain numbers).
long long refused_for(budget::decision d) { return d.ok ? -1 : static_cast<long long>(d.retry_after.count()); }

}  // namespace

BOOST_AUTO_TEST_SUITE(budget_suite)

// ---------------------------------------------------------------- UTC days

BOOST_AUTO_TEST_CASE(utc_day_counts_whole_days_rounding_down) {
    sys_time const epoch{};
    BOOST_TEST(utc_day(epoch) == 0);
    BOOST_TEST(utc_day(epoch + 86'399s) == 0);
    BOOST_TEST(utc_day(epoch + 86'400s - 1ns) == 0);
    BOOST_TEST(utc_day(epoch + 86'400s) == 1);
    BOOST_TEST(utc_day(day0) == day0_number);
    BOOST_TEST(utc_day(day0 + 23h + 59min + 59s) == day0_number);
    BOOST_TEST(utc_day(next_day) == day0_number + 1);
}

BOOST_AUTO_TEST_CASE(utc_day_rounds_down_before_1970) {
    sys_time const epoch{};
    BOOST_TEST(utc_day(epoch - 1ns) == -1);
    BOOST_TEST(utc_day(epoch - 1s) == -1);
    BOOST_TEST(utc_day(epoch - 86'400s) == -1);
    BOOST_TEST(utc_day(epoch - 86'400s - 1ns) == -2);
    BOOST_TEST(utc_day(sys_time{std::chrono::sys_days{std::chrono::year{1900} / 1 / 1}} + 6h) == -25'567);
}

BOOST_AUTO_TEST_CASE(utc_midnight_after_is_the_next_midnight_strictly_after) {
    BOOST_TEST((utc_midnight_after(noon) == next_day));
    BOOST_TEST((utc_midnight_after(day0) == next_day));   // at midnight: the next one
    BOOST_TEST((utc_midnight_after(next_day - 1ns) == next_day));
    BOOST_TEST((utc_midnight_after(day0 + 1ns) == next_day));
    sys_time const epoch{};
    BOOST_TEST((utc_midnight_after(epoch - 1ns) == epoch));
    BOOST_TEST((utc_midnight_after(epoch - 36h) == epoch - 24h));
}

// ---------------------------------------------------------- reservations

BOOST_AUTO_TEST_CASE(reservations_that_would_exceed_the_limit_are_refused) {
    budget b{nano_usd{1'000}};
    BOOST_TEST(b.limit().nanos == 1'000);
    BOOST_TEST(b.remaining(noon).nanos == 1'000);
    BOOST_TEST(b.try_reserve(nano_usd{400}, noon).ok);
    BOOST_TEST(b.try_reserve(nano_usd{400}, noon).ok);
    BOOST_TEST(b.reserved().nanos == 800);
    BOOST_TEST(b.remaining(noon).nanos == 200);
    BOOST_TEST(refused_for(b.try_reserve(nano_usd{400}, noon)) == 12 * 3600);
    BOOST_TEST(b.reserved().nanos == 800);   // a refusal reserves nothing
    BOOST_TEST(b.spent(noon).nanos == 0);
    BOOST_TEST(refused_for(b.try_reserve(nano_usd{1'001}, noon)) == 12 * 3600);
}

BOOST_AUTO_TEST_CASE(the_exact_limit_is_accepted) {
    budget b{nano_usd{1'000}};
    b.load(nano_usd{600}, noon);
    BOOST_TEST(b.try_reserve(nano_usd{300}, noon).ok);
    BOOST_TEST(b.try_reserve(nano_usd{100}, noon).ok);   // 600 + 300 + 100 == 1000
    BOOST_TEST(b.remaining(noon).nanos == 0);
    BOOST_TEST(b.try_reserve(nano_usd{0}, noon).ok);      // nothing more is still within the limit
    BOOST_TEST(!b.try_reserve(nano_usd{1}, noon).ok);
    BOOST_TEST(b.reserved().nanos == 400);
}

BOOST_AUTO_TEST_CASE(settling_below_the_reservation_frees_the_rest) {
    budget b{nano_usd{1'000}};
    BOOST_TEST(b.try_reserve(nano_usd{600}, noon).ok);
    BOOST_TEST(!b.try_reserve(nano_usd{500}, noon).ok);
    b.settle(nano_usd{600}, nano_usd{200}, noon);
    BOOST_TEST(b.reserved().nanos == 0);
    BOOST_TEST(b.spent(noon).nanos == 200);
    BOOST_TEST(b.remaining(noon).nanos == 800);
    BOOST_TEST(b.try_reserve(nano_usd{800}, noon).ok);
    BOOST_TEST(!b.try_reserve(nano_usd{1}, noon).ok);
}

BOOST_AUTO_TEST_CASE(settling_above_the_reservation_counts_the_real_cost) {
    budget b{nano_usd{1'000}};
    BOOST_TEST(b.try_reserve(nano_usd{600}, noon).ok);
    BOOST_TEST(b.try_reserve(nano_usd{300}, noon).ok);
    b.settle(nano_usd{600}, nano_usd{1'500}, noon);
    BOOST_TEST(b.spent(noon).nanos == 1'500);
    BOOST_TEST(b.reserved().nanos == 300);
    BOOST_TEST(b.remaining(noon).nanos == 0);   // never negative
    BOOST_TEST(refused_for(b.try_reserve(nano_usd{0}, noon)) == 12 * 3600);   // over the limit: nothing more
    b.settle(nano_usd{300}, nano_usd{0}, noon);
    BOOST_TEST(b.reserved().nanos == 0);
    BOOST_TEST(b.spent(noon).nanos == 1'500);
}

BOOST_AUTO_TEST_CASE(settle_never_drives_reserved_below_zero) {
    budget b{nano_usd{1'000}};
    b.settle(nano_usd{500}, nano_usd{0}, noon);   // nothing was reserved
    BOOST_TEST(b.reserved().nanos == 0);
    BOOST_TEST(b.try_reserve(nano_usd{50}, noon).ok);
    b.settle(nano_usd{100}, nano_usd{20}, noon);
    BOOST_TEST(b.reserved().nanos == 0);
    BOOST_TEST(b.spent(noon).nanos == 20);
    BOOST_TEST(b.remaining(noon).nanos == 980);
    // Negative amounts count as 0.
    BOOST_TEST(b.try_reserve(nano_usd{-100}, noon).ok);
    BOOST_TEST(b.reserved().nanos == 0);
    b.settle(nano_usd{-5}, nano_usd{-5}, noon);
    BOOST_TEST(b.reserved().nanos == 0);
    BOOST_TEST(b.spent(noon).nanos == 20);
}

BOOST_AUTO_TEST_CASE(concurrent_reservations_never_overspend) {
    budget b{nano_usd{1'000}};
    int accepted = 0;
    for (int i = 0; i != 10; ++i) {
        accepted += b.try_reserve(nano_usd{300}, noon).ok ? 1 : 0;
    }
    BOOST_TEST(accepted == 3);
    b.settle(nano_usd{300}, nano_usd{250}, noon);   // one call ends
    BOOST_TEST(b.remaining(noon).nanos == 150);
    BOOST_TEST(!b.try_reserve(nano_usd{300}, noon).ok);
    BOOST_TEST(b.try_reserve(nano_usd{150}, noon).ok);
}

// ------------------------------------------------------------------- days

BOOST_AUTO_TEST_CASE(a_new_utc_day_resets_the_spend_but_keeps_reservations) {
    budget b{nano_usd{1'000}};
    auto const late = day0 + 23h;
    b.load(nano_usd{900}, late);
    BOOST_TEST(b.try_reserve(nano_usd{100}, late).ok);
    BOOST_TEST(!b.try_reserve(nano_usd{1}, late).ok);

    BOOST_TEST(b.spent(next_day).nanos == 0);   // a later day: nothing spent yet
    BOOST_TEST(b.spent(late).nanos == 900);     // spent() changes nothing
    BOOST_TEST(b.remaining(next_day).nanos == 900);

    // The open reservation of 100 still counts in the new day.
    BOOST_TEST(b.try_reserve(nano_usd{800}, next_day).ok);
    BOOST_TEST(!b.try_reserve(nano_usd{101}, next_day).ok);
    BOOST_TEST(b.reserved().nanos == 900);
    // Yesterday's call settles into today.
    b.settle(nano_usd{100}, nano_usd{70}, next_day + 1s);
    BOOST_TEST(b.spent(next_day + 1s).nanos == 70);
    BOOST_TEST(b.reserved().nanos == 800);
    BOOST_TEST(b.remaining(next_day + 1s).nanos == 130);
}

BOOST_AUTO_TEST_CASE(settle_on_a_new_day_rolls_over_first) {
    budget b{nano_usd{1'000}};
    BOOST_TEST(b.try_reserve(nano_usd{500}, noon).ok);
    b.settle(nano_usd{0}, nano_usd{400}, noon);
    BOOST_TEST(b.spent(noon).nanos == 400);
    b.settle(nano_usd{500}, nano_usd{300}, next_day + 5min);   // the day's 400 is dropped, then 300 added
    BOOST_TEST(b.spent(next_day + 5min).nanos == 300);
    BOOST_TEST(b.reserved().nanos == 0);
}

BOOST_AUTO_TEST_CASE(a_clock_set_back_keeps_the_latest_day) {
    budget b{nano_usd{1'000}};
    b.settle(nano_usd{0}, nano_usd{600}, next_day + 1h);
    BOOST_TEST(b.try_reserve(nano_usd{400}, noon).ok);   // yesterday by the clock: still today's spend
    BOOST_TEST(!b.try_reserve(nano_usd{1}, noon).ok);
    BOOST_TEST(b.spent(noon).nanos == 600);
    BOOST_TEST(b.spent(next_day + 2h).nanos == 600);
}

BOOST_AUTO_TEST_CASE(retry_after_is_the_wait_until_utc_midnight) {
    budget b{nano_usd{0}};
    BOOST_TEST(refused_for(b.try_reserve(nano_usd{1}, day0 + 23h + 59min + 30s)) == 30);
    BOOST_TEST(refused_for(b.try_reserve(nano_usd{1}, next_day - 500ms)) == 1);
    BOOST_TEST(refused_for(b.try_reserve(nano_usd{1}, next_day - 1ns)) == 1);
    BOOST_TEST(refused_for(b.try_reserve(nano_usd{1}, day0)) == 86'400);
    BOOST_TEST(refused_for(b.try_reserve(nano_usd{1}, noon + 250ms)) == 43'200);   // 43199.75 s -> 43200
    BOOST_TEST(refused_for(b.try_reserve(nano_usd{1}, sys_time{} - 10s)) == 10);   // before 1970 too
    BOOST_TEST(b.try_reserve(nano_usd{0}, noon).ok);   // a zero limit still admits a free call
}

BOOST_AUTO_TEST_CASE(load_sets_the_spend_of_today) {
    budget b{nano_usd{1'000}};
    b.load(nano_usd{700}, noon);
    BOOST_TEST(b.spent(noon).nanos == 700);
    BOOST_TEST(b.remaining(noon).nanos == 300);
    BOOST_TEST(!b.try_reserve(nano_usd{301}, noon).ok);
    BOOST_TEST(b.try_reserve(nano_usd{300}, noon).ok);
    b.load(nano_usd{100}, noon + 1h);   // replaces, keeps the reservation
    BOOST_TEST(b.spent(noon + 1h).nanos == 100);
    BOOST_TEST(b.reserved().nanos == 300);
    BOOST_TEST(b.remaining(noon + 1h).nanos == 600);
    b.load(nano_usd{999}, noon - 24h);   // an earlier day's total is not today's
    BOOST_TEST(b.spent(noon).nanos == 100);
    b.load(nano_usd{-50}, noon);         // negative: 0
    BOOST_TEST(b.spent(noon).nanos == 0);
    b.load(nano_usd{250}, next_day);     // a later day: that day's total
    BOOST_TEST(b.spent(next_day).nanos == 250);
    BOOST_TEST(b.spent(next_day + 24h).nanos == 0);
}

BOOST_AUTO_TEST_CASE(extreme_amounts_saturate_instead_of_wrapping) {
    budget b{nano_usd{max64}};
    BOOST_TEST(b.try_reserve(nano_usd{max64}, noon).ok);
    BOOST_TEST(!b.try_reserve(nano_usd{1}, noon).ok);
    b.settle(nano_usd{max64}, nano_usd{max64}, noon);
    b.settle(nano_usd{0}, nano_usd{max64}, noon);
    BOOST_TEST(b.spent(noon).nanos == max64);
    BOOST_TEST(b.remaining(noon).nanos == 0);
    BOOST_TEST(!b.try_reserve(nano_usd{1}, noon).ok);
    BOOST_TEST(budget{nano_usd{-5}}.limit().nanos == 0);
}

BOOST_AUTO_TEST_CASE(a_realistic_day_in_usd) {
    budget b{*parse_usd("10")};
    BOOST_TEST(b.try_reserve(*parse_usd("0.01125"), noon).ok);
    b.settle(*parse_usd("0.01125"), nano_usd{12'207'000}, noon);
    BOOST_TEST(format_usd(b.spent(noon)) == "0.012207");
    BOOST_TEST(format_usd(b.remaining(noon)) == "9.987793");
}

BOOST_AUTO_TEST_SUITE_END()
