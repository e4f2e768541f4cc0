#include "domain/circuit_breaker.hpp"

#include <boost/test/unit_test.hpp>

#include <sstream>

namespace d = parley::domain;
using namespace std::chrono_literals;
using clock_type = d::circuit_breaker::clock;

namespace {
std::string name(d::circuit_state s) { return std::string(d::to_string(s)); }
clock_type::time_point at(std::chrono::milliseconds ms) { return clock_type::time_point{} + ms; }
}  // namespace

BOOST_AUTO_TEST_SUITE(circuit_breaker_suite)

BOOST_AUTO_TEST_CASE(opens_after_the_threshold_of_consecutive_failures) {
    d::circuit_breaker cb{{.failure_threshold = 3, .open_for = 1000ms}};
    BOOST_TEST(cb.allow(at(0ms)));
    cb.on_failure(at(0ms));
    cb.on_failure(at(1ms));
    BOOST_TEST(name(cb.state(at(2ms))) == "closed");
    BOOST_TEST(cb.allow(at(2ms)));
    cb.on_failure(at(2ms));
    BOOST_TEST(name(cb.state(at(3ms))) == "open");
    BOOST_TEST(!cb.allow(at(3ms)));
    BOOST_TEST(!cb.allow(at(1001ms)));
    BOOST_TEST((cb.reopens_at() == at(1002ms)));
    BOOST_TEST(cb.consecutive_failures() == 3);
}

BOOST_AUTO_TEST_CASE(a_success_resets_the_count) {
    d::circuit_breaker cb{{.failure_threshold = 2, .open_for = 1000ms}};
    cb.on_failure(at(0ms));
    cb.on_success();
    cb.on_failure(at(1ms));
    BOOST_TEST(name(cb.state(at(2ms))) == "closed");
    BOOST_TEST(cb.consecutive_failures() == 1);
    BOOST_TEST(!cb.reopens_at().has_value());
}

BOOST_AUTO_TEST_CASE(half_open_lets_exactly_one_probe_through) {
    d::circuit_breaker cb{{.failure_threshold = 1, .open_for = 100ms}};
    cb.on_failure(at(0ms));
    BOOST_TEST(!cb.allow(at(99ms)));
    BOOST_TEST(name(cb.state(at(100ms))) == "half_open");
    BOOST_TEST(cb.allow(at(100ms)));
    BOOST_TEST(!cb.allow(at(101ms)));
    BOOST_TEST(!cb.allow(at(500ms)));
    cb.on_success();
    BOOST_TEST(name(cb.state(at(501ms))) == "closed");
    BOOST_TEST(cb.allow(at(501ms)));
    BOOST_TEST(cb.allow(at(502ms)));
}

BOOST_AUTO_TEST_CASE(a_failed_probe_opens_again_for_the_whole_period) {
    d::circuit_breaker cb{{.failure_threshold = 5, .open_for = 100ms}};
    for (int i = 0; i < 5; ++i) cb.on_failure(at(0ms));
    BOOST_TEST(cb.allow(at(150ms)));
    cb.on_failure(at(160ms));
    BOOST_TEST(name(cb.state(at(161ms))) == "open");
    BOOST_TEST(!cb.allow(at(259ms)));
    BOOST_TEST(cb.allow(at(260ms)));
}

BOOST_AUTO_TEST_CASE(an_abandoned_probe_frees_the_slot) {
    d::circuit_breaker cb{{.failure_threshold = 1, .open_for = 10ms}};
    cb.on_failure(at(0ms));
    BOOST_TEST(cb.allow(at(10ms)));
    BOOST_TEST(!cb.allow(at(11ms)));
    cb.on_abandoned();
    BOOST_TEST(cb.allow(at(12ms)));
    BOOST_TEST(name(cb.state(at(12ms))) == "half_open");
}

BOOST_AUTO_TEST_CASE(late_failures_do_not_extend_an_open_circuit) {
    d::circuit_breaker cb{{.failure_threshold = 1, .open_for = 100ms}};
    cb.on_failure(at(0ms));
    cb.on_failure(at(90ms));  // a call that started before it opened
    BOOST_TEST(cb.allow(at(100ms)));
}

BOOST_AUTO_TEST_SUITE_END()
