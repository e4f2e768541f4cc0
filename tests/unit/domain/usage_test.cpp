// The usage record's vocabulary: cost sources and call statuses as the
// ai_usage table spells them, and Parley's accounting error codes.
#include "domain/errc.hpp"
#include "domain/usage.hpp"

#include <boost/test/unit_test.hpp>

#include <sstream>

namespace domain = parley::domain;

BOOST_AUTO_TEST_SUITE(usage_vocabulary_suite)

BOOST_AUTO_TEST_CASE(cost_sources_round_trip_through_their_column_text) {
    for (auto s : {domain::cost_source::provider, domain::cost_source::pricing, domain::cost_source::estimate}) {
        BOOST_TEST((domain::parse_cost_source(domain::to_string(s)) == s));
    }
    BOOST_TEST(domain::to_string(domain::cost_source::estimate) == "estimate");
    BOOST_TEST(!domain::parse_cost_source("Provider").has_value());
    BOOST_TEST(!domain::parse_cost_source("").has_value());
    std::ostringstream os;
    os << domain::cost_source::pricing;
    BOOST_TEST(os.str() == "pricing");
}

BOOST_AUTO_TEST_CASE(call_statuses_round_trip_through_their_column_text) {
    for (auto s : {domain::call_status::ok, domain::call_status::error, domain::call_status::cancelled}) {
        BOOST_TEST((domain::parse_call_status(domain::to_string(s)) == s));
    }
    BOOST_TEST(domain::to_string(domain::call_status::cancelled) == "cancelled");
    BOOST_TEST(!domain::parse_call_status("canceled").has_value());
    std::ostringstream os;
    os << domain::call_status::error;
    BOOST_TEST(os.str() == "error");
}

BOOST_AUTO_TEST_CASE(accounting_error_codes_say_what_failed) {
    BOOST_TEST(make_error_code(parley::errc::usage_log_failed).message() == "the usage log could not be written");
    BOOST_TEST(make_error_code(parley::errc::database_unavailable).message() == "the database is unavailable");
    BOOST_TEST(make_error_code(parley::errc::actor_stopped).message() == "actor stopped");
    BOOST_TEST(make_error_code(parley::errc::invalid_setting).message() == "invalid setting");
    BOOST_TEST(make_error_code(parley::errc::invalid_token).message() == "invalid token");
    BOOST_TEST(make_error_code(parley::errc::token_expired).message() == "token expired");
    BOOST_TEST(std::string{parley::parley_category().name()} == "parley");
    BOOST_TEST(parley::parley_category().message(999).find("999") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
