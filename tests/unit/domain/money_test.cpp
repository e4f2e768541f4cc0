#include "domain/money.hpp"

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <limits>
#include <sstream>
#include <string>

namespace bdata = boost::unit_test::data;
using parley::domain::nano_usd;

namespace {

constexpr std::int64_t max64 = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t min64 = std::numeric_limits<std::int64_t>::min();

}  // namespace

BOOST_AUTO_TEST_SUITE(money_suite)

BOOST_AUTO_TEST_CASE(parse_accepts_plain_decimals) {
    struct {
        char const* text;
        std::int64_t nanos;
    } const cases[] = {
        {"0", 0},
        {"10", 10'000'000'000},
        {"10.00", 10'000'000'000},
        {"0.000003", 3'000},
        {"0.000000001", 1},
        {"1.5", 1'500'000'000},
        {"007.5", 7'500'000'000},
        {"0.123456789", 123'456'789},
        {"9223372036", 9'223'372'036'000'000'000},
        {"9223372036.854775807", max64},
        {"00000000000000000000000001", 1'000'000'000},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT("text " << c.text) {
            auto const parsed = parley::domain::parse_usd(c.text);
            BOOST_REQUIRE(parsed.has_value());
            BOOST_TEST(parsed->nanos == c.nanos);
        }
    }
}

BOOST_DATA_TEST_CASE(parse_rejects_anything_else,
                     bdata::make({"", ".", ".5", "5.", "-1", "+1", "1e3", "1E3", " 1", "1 ", "1.0000000001",
                                  "9223372036.854775808", "9223372037", "99999999999999999999", "1,5", "0x10",
                                  "1.2.3", "1..2", "1.-2", "abc", "1$", "nan", "inf"}),
                     text) {
    BOOST_TEST(!parley::domain::parse_usd(text).has_value());
}

BOOST_AUTO_TEST_CASE(format_rounds_half_up_to_six_decimals) {
    struct {
        std::int64_t nanos;
        char const* text;
    } const cases[] = {
        {0, "0.000000"},
        {12'207'000, "0.012207"},
        {500, "0.000001"},
        {499, "0.000000"},
        {1'499, "0.000001"},
        {1'500, "0.000002"},
        {10'000'000'000, "10.000000"},
        {1'999'999'500, "2.000000"},
        {1'999'999'499, "1.999999"},
        {-1'500, "-0.000002"},
        {-499, "0.000000"},
        {-500, "-0.000001"},
        {max64, "9223372036.854776"},
        {min64, "-9223372036.854776"},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT("nanos " << c.nanos) {
            BOOST_TEST(parley::domain::format_usd(nano_usd{c.nanos}) == c.text);
        }
    }
}

BOOST_AUTO_TEST_CASE(token_cost_example_is_0_012207) {
    // 1234 input tokens at 3 USD/M and 567 output tokens at 15 USD/M.
    nano_usd const cost = 1234 * nano_usd{3'000} + nano_usd{15'000} * 567;
    BOOST_TEST(cost.nanos == 12'207'000);
    BOOST_TEST(parley::domain::format_usd(cost) == "0.012207");
    BOOST_TEST(parley::domain::format_usd_exact(cost) == "0.012207000");
}

BOOST_AUTO_TEST_CASE(round_to_micros_is_half_away_from_zero) {
    BOOST_TEST(parley::domain::round_to_micros(nano_usd{500}) == 1);
    BOOST_TEST(parley::domain::round_to_micros(nano_usd{499}) == 0);
    BOOST_TEST(parley::domain::round_to_micros(nano_usd{-500}) == -1);
    BOOST_TEST(parley::domain::round_to_micros(nano_usd{-499}) == 0);
    BOOST_TEST(parley::domain::round_to_micros(nano_usd{12'207'000}) == 12'207);
    BOOST_TEST(parley::domain::round_to_micros(nano_usd{min64}) == -9'223'372'036'854'776);
}

BOOST_AUTO_TEST_CASE(exact_format_has_nine_decimals) {
    BOOST_TEST(parley::domain::format_usd_exact(nano_usd{0}) == "0.000000000");
    BOOST_TEST(parley::domain::format_usd_exact(nano_usd{1}) == "0.000000001");
    BOOST_TEST(parley::domain::format_usd_exact(nano_usd{-1}) == "-0.000000001");
    BOOST_TEST(parley::domain::format_usd_exact(nano_usd{10'000'000'000}) == "10.000000000");
    BOOST_TEST(parley::domain::format_usd_exact(nano_usd{max64}) == "9223372036.854775807");
    BOOST_TEST(parley::domain::format_usd_exact(nano_usd{min64}) == "-9223372036.854775808");
}

BOOST_AUTO_TEST_CASE(compact_format_keeps_at_least_two_decimals) {
    BOOST_TEST(parley::domain::format_usd_compact(nano_usd{0}) == "0.00");
    BOOST_TEST(parley::domain::format_usd_compact(nano_usd{10'000'000'000}) == "10.00");
    BOOST_TEST(parley::domain::format_usd_compact(nano_usd{1'500'000'000}) == "1.50");
    BOOST_TEST(parley::domain::format_usd_compact(nano_usd{3'000}) == "0.000003");
    BOOST_TEST(parley::domain::format_usd_compact(nano_usd{123'456'789}) == "0.123456789");
    BOOST_TEST(parley::domain::format_usd_compact(nano_usd{-10'000'000}) == "-0.01");
}

BOOST_AUTO_TEST_CASE(exact_and_compact_formats_parse_back) {
    for (std::int64_t n : {std::int64_t{0}, std::int64_t{1}, std::int64_t{3'000}, std::int64_t{12'207'000},
                           std::int64_t{10'000'000'000}, max64}) {
        BOOST_TEST_CONTEXT("nanos " << n) {
            BOOST_TEST((parley::domain::parse_usd(parley::domain::format_usd_exact(nano_usd{n})) == nano_usd{n}));
            BOOST_TEST((parley::domain::parse_usd(parley::domain::format_usd_compact(nano_usd{n})) == nano_usd{n}));
        }
    }
}

BOOST_AUTO_TEST_CASE(arithmetic_and_comparison_are_integer) {
    nano_usd a{1'000};
    a += nano_usd{500};
    BOOST_TEST(a.nanos == 1'500);
    a -= nano_usd{2'000};
    BOOST_TEST(a.nanos == -500);
    BOOST_TEST((nano_usd{7} - nano_usd{2}).nanos == 5);
    BOOST_TEST((nano_usd{7} + nano_usd{2}).nanos == 9);
    BOOST_TEST(nano_usd{1} < nano_usd{2});
    BOOST_TEST(nano_usd{2} >= nano_usd{2});
    BOOST_TEST(nano_usd{} == nano_usd{0});
    BOOST_TEST(parley::domain::nanos_per_usd == 1'000'000'000);
}

BOOST_AUTO_TEST_CASE(streams_the_compact_format) {
    std::ostringstream os;
    os << nano_usd{12'207'000};
    BOOST_TEST(os.str() == "0.012207");
}

BOOST_AUTO_TEST_SUITE_END()
