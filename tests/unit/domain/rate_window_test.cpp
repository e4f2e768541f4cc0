#include "domain/rate_window.hpp"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <stdexcept>

using namespace std::chrono_literals;
using parley::domain::rate_window;

namespace {

// An arbitrary instant (2024-03-10 12:00:00 UTC); the window does not care which.
rate_window::time_point const t0{std::chrono::sys_days{std::chrono::year{2024} / 3 / 10} + 12h};

// retry_after in seconds, or -1 when admitted (Boost.Test prints plain numbers).
long long refused_for(rate_window::decision d) { return d.admitted ? -1 : static_cast<long long>(d.retry_after.count()); }

}  // namespace

BOOST_AUTO_TEST_SUITE(rate_window_suite)

BOOST_AUTO_TEST_CASE(admits_up_to_the_limit_then_refuses_with_the_exact_wait) {
    rate_window w{3};
    BOOST_TEST(w.limit() == 3);
    BOOST_TEST(w.window().count() == 3600);
    for (auto offset : {0s, 10s, 20s}) {
        auto const d = w.admit(t0 + offset);
        BOOST_TEST(d.admitted);
        BOOST_TEST(d.retry_after.count() == 0);
    }
    BOOST_TEST(w.used(t0 + 20s) == 3);
    // The oldest (t0) frees its slot at t0 + 3600 s.
    BOOST_TEST(refused_for(w.admit(t0 + 20s)) == 3580);
    BOOST_TEST(refused_for(w.admit(t0 + 30s)) == 3570);
    BOOST_TEST(refused_for(w.check(t0 + 30s)) == 3570);
    BOOST_TEST(w.used(t0 + 30s) == 3);   // refusals are not recorded
}

BOOST_AUTO_TEST_CASE(retry_after_rounds_up_to_whole_seconds_and_is_at_least_one) {
    rate_window w{1};
    BOOST_TEST(w.admit(t0 + 500ms).admitted);
    BOOST_TEST(refused_for(w.check(t0 + 1s)) == 3600);          // 3599.5 s -> 3600
    BOOST_TEST(refused_for(w.check(t0 + 3600s)) == 1);          // 0.5 s -> 1
    BOOST_TEST(refused_for(w.check(t0 + 3600s + 499ms)) == 1);  // 1 ms -> 1
    BOOST_TEST(refused_for(w.check(t0 + 3600s + 500ms - 1ns)) == 1);   // 1 ns -> 1, never 0
    BOOST_TEST(w.check(t0 + 3600s + 500ms).admitted);
}

BOOST_AUTO_TEST_CASE(a_slot_frees_exactly_at_t_plus_window) {
    rate_window w{1};
    BOOST_TEST(w.admit(t0).admitted);
    BOOST_TEST(w.used(t0 + 3600s - 1ns) == 1);
    BOOST_TEST(refused_for(w.admit(t0 + 3600s - 1ns)) == 1);
    BOOST_TEST(w.used(t0 + 3600s) == 0);
    BOOST_TEST(w.idle(t0 + 3600s));
    BOOST_TEST(w.admit(t0 + 3600s).admitted);
    BOOST_TEST(refused_for(w.admit(t0 + 3601s)) == 3599);
}

BOOST_AUTO_TEST_CASE(the_window_slides) {
    rate_window w{2};
    BOOST_TEST(w.admit(t0).admitted);
    BOOST_TEST(w.admit(t0 + 30min).admitted);
    BOOST_TEST(refused_for(w.admit(t0 + 59min)) == 60);
    BOOST_TEST(w.admit(t0 + 60min).admitted);   // t0 left; t0 + 30 min and t0 + 60 min count
    BOOST_TEST(w.used(t0 + 60min) == 2);
    // Now the oldest counting one is t0 + 30 min, free at t0 + 90 min.
    BOOST_TEST(refused_for(w.admit(t0 + 60min + 1s)) == 1799);
    BOOST_TEST(w.used(t0 + 90min) == 1);
    BOOST_TEST(w.admit(t0 + 90min).admitted);
    BOOST_TEST(w.used(t0 + 90min) == 2);
    BOOST_TEST(w.used(t0 + 150min) == 0);
}

BOOST_AUTO_TEST_CASE(a_shorter_window) {
    rate_window w{2, 60s};
    BOOST_TEST(w.window().count() == 60);
    BOOST_TEST(w.admit(t0).admitted);
    BOOST_TEST(w.admit(t0 + 1s).admitted);
    BOOST_TEST(refused_for(w.admit(t0 + 2s)) == 58);
    BOOST_TEST(w.admit(t0 + 60s).admitted);
}

BOOST_AUTO_TEST_CASE(check_gives_the_answer_without_recording) {
    rate_window w{2};
    for (int i = 0; i != 10; ++i) {
        BOOST_TEST(w.check(t0).admitted);
    }
    BOOST_TEST(w.used(t0) == 0);
    BOOST_TEST(w.idle(t0));
    BOOST_TEST(w.admit(t0).admitted);
    BOOST_TEST(w.admit(t0 + 5s).admitted);
    BOOST_TEST(refused_for(w.check(t0 + 5s)) == 3595);
    BOOST_TEST(w.check(t0 + 3600s).admitted);
    BOOST_TEST(w.used(t0 + 5s) == 2);
}

BOOST_AUTO_TEST_CASE(add_reloads_unordered_admissions_and_keeps_the_newest) {
    rate_window w{3};
    for (auto offset : {50s, 10s, 40s, 20s, 30s}) {   // five, out of order, for a limit of three
        w.add(t0 + offset);
    }
    BOOST_TEST(w.used(t0 + 60s) == 3);
    // Kept: t0+30, t0+40, t0+50. Had t0+10 been kept, the wait would be 3550 s.
    BOOST_TEST(refused_for(w.check(t0 + 60s)) == 3570);
    BOOST_TEST(w.used(t0 + 3630s) == 2);
    BOOST_TEST(w.admit(t0 + 3630s).admitted);
    BOOST_TEST(refused_for(w.check(t0 + 3630s)) == 10);   // t0+40 frees at t0+3640
}

BOOST_AUTO_TEST_CASE(add_of_old_admissions_changes_nothing) {
    rate_window w{2};
    w.add(t0 - 2h);
    w.add(t0 - 1h);   // leaves the window at t0 exactly
    BOOST_TEST(w.used(t0) == 0);
    BOOST_TEST(w.idle(t0));
    BOOST_TEST(w.admit(t0).admitted);
    BOOST_TEST(w.admit(t0).admitted);   // two at the same instant both count
    BOOST_TEST(w.used(t0) == 2);
    BOOST_TEST(refused_for(w.admit(t0)) == 3600);
    // An old admission reloaded later never displaces a newer one.
    w.add(t0 - 30min);
    BOOST_TEST(w.used(t0 + 1s) == 2);
    BOOST_TEST(refused_for(w.check(t0 + 1s)) == 3599);
}

BOOST_AUTO_TEST_CASE(idle_when_nothing_counts) {
    rate_window w{5};
    BOOST_TEST(w.idle(t0));
    w.admit(t0);
    BOOST_TEST(!w.idle(t0));
    BOOST_TEST(!w.idle(t0 + 3599s));
    BOOST_TEST(w.idle(t0 + 3600s));
}

BOOST_AUTO_TEST_CASE(time_passed_backwards_never_breaks_it) {
    rate_window w{2};
    BOOST_TEST(w.admit(t0 + 100s).admitted);
    BOOST_TEST(w.admit(t0).admitted);   // the clock was set back 100 s
    BOOST_TEST(w.used(t0) == 2);        // the "future" admission still counts
    // Both count at t0 - 50 s; the oldest (t0) frees at t0 + 3600 s: 3650 s away, positive.
    BOOST_TEST(refused_for(w.check(t0 - 50s)) == 3650);
    BOOST_TEST(refused_for(w.check(t0 - 10h)) == 36'000 + 3600);
    // Still sorted: at t0 + 3600 s only t0 + 100 s counts.
    BOOST_TEST(w.used(t0 + 3600s) == 1);
    BOOST_TEST(w.admit(t0 + 3600s).admitted);
    BOOST_TEST(refused_for(w.check(t0 + 3600s)) == 100);
    // Far back, a reloaded admission, and forward again: never a negative or zero wait.
    w.add(t0 + 10h);
    for (auto now : {t0 - 24h, t0, t0 + 1h, t0 + 10h, t0 + 11h - 1ns}) {
        auto const d = w.check(now);
        BOOST_TEST((d.admitted || d.retry_after.count() >= 1));
        BOOST_TEST(d.retry_after.count() >= 0);
    }
    BOOST_TEST(w.used(t0 + 11h) == 0);
}

BOOST_AUTO_TEST_CASE(rejects_an_impossible_limit_or_window) {
    BOOST_CHECK_THROW(rate_window(0), std::invalid_argument);
    BOOST_CHECK_THROW(rate_window(-1), std::invalid_argument);
    BOOST_CHECK_THROW(rate_window(1, 0s), std::invalid_argument);
    BOOST_CHECK_THROW(rate_window(1, -5s), std::invalid_argument);
    BOOST_CHECK_NO_THROW(rate_window(1, 1s));
}

BOOST_AUTO_TEST_SUITE_END()
