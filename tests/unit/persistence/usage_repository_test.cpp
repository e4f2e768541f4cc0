// The ai_usage repository, every case on SQLite and on the PostgreSQL of
// PARLEY_TEST_PG_URI (through database::run_blocking, on a migrated schema).
#include "persistence/migrations.hpp"
#include "persistence/usage_repository.hpp"

#include "support/pg_database.hpp"

#include <soci/into.h>
#include <soci/session.h>
#include <soci/use.h>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <limits>
#include <memory>
#include <numeric>
#include <ostream>
#include <string>
#include <vector>

using namespace parley;
using namespace parley::persistence;
using domain::cost_source;
using domain::nano_usd;
using domain::usage_record;
namespace chr = std::chrono;
using namespace std::string_literals;
using time_point = chr::system_clock::time_point;

namespace parley::persistence {
std::ostream& operator<<(std::ostream& os, usage_row const& r) {
    return os << "{" << r.key << " n=" << r.requests << " in=" << r.input_tokens << " out=" << r.output_tokens
              << " cached=" << r.cached_tokens << " micros=" << r.cost_micros << "}";
}
}  // namespace parley::persistence

namespace {

// 2024-05-01T10:00:00Z, a fixed point for every test.
time_point const t0 = chr::sys_days{chr::year{2024} / chr::May / 1} + chr::hours{10};

usage_record make_record(std::string request_id, std::optional<std::string> user, time_point at,
                         nano_usd cost = nano_usd{1'000}, std::string model = "anthropic/claude-3.5-sonnet",
                         cost_source source = cost_source::pricing, std::string generation_id = {}) {
    usage_record r;
    r.request_id = std::move(request_id);
    r.user_id = std::move(user);
    r.session_id = "s-1";
    r.conversation_id = "conv-1";
    r.input_tokens = 100;
    r.output_tokens = 20;
    r.cached_tokens = 5;
    r.cost = cost;
    r.source = source;
    r.model = std::move(model);
    r.generation_id = std::move(generation_id);
    r.status = domain::call_status::ok;
    r.created_at = at;
    return r;
}

// Runs body(db) on a migrated database of each dialect with an empty
// ai_usage: a new SQLite file, and the shared PostgreSQL database (kept
// migrated between tests, which is quicker than resetting it).
template <class Body>
void on_each_database(Body body) {
    std::vector<test::test_database> dbs;
    auto lite = std::make_shared<test::temp_sqlite_database>();
    dbs.push_back({"sqlite", lite->url(), lite});
    if (auto& pg = test::shared_pg_database(); pg.available()) {
        dbs.push_back({"postgresql", pg.url(), nullptr});
    } else {
        BOOST_TEST_MESSAGE("postgresql " << test::pg_skip_message);
    }
    for (auto const& t : dbs) {
        BOOST_TEST_CONTEXT("database " << t.name) {
            auto db = database::open({t.url, 2});
            db->run_blocking([&](soci::session& sql) {
                migrate(sql, db->kind());
                sql << "DELETE FROM ai_usage";
            });
            body(*db);
        }
    }
}

std::size_t insert(database& db, std::vector<usage_record> const& rows) {
    return db.run_blocking([&](soci::session& sql) { return insert_usage(sql, db.kind(), rows); });
}

std::optional<usage_record> find(database& db, std::string const& request_id) {
    return db.run_blocking([&](soci::session& sql) { return find_usage(sql, db.kind(), request_id); });
}

}  // namespace

BOOST_AUTO_TEST_SUITE(usage_repository_suite)

BOOST_AUTO_TEST_CASE(iso_utc_text_round_trips_to_the_millisecond) {
    auto const t = t0 + chr::microseconds{123'456};
    BOOST_TEST(iso_utc(t) == "2024-05-01T10:00:00.123Z");
    BOOST_TEST(iso_utc(time_point{}) == "1970-01-01T00:00:00.000Z");
    BOOST_TEST(iso_utc(time_point{} - chr::milliseconds{1}) == "1969-12-31T23:59:59.999Z");
    BOOST_TEST((parse_iso_utc("2024-05-01T10:00:00.123Z") == t0 + chr::milliseconds{123}));
    BOOST_TEST((parse_iso_utc("2024-05-01 10:00:00.1234567") == t0 + chr::milliseconds{123}));
    BOOST_TEST((parse_iso_utc("2024-05-01T10:00:00Z") == t0));
    BOOST_TEST((parse_iso_utc("2024-05-01T10:00:00.5Z") == t0 + chr::milliseconds{500}));
    BOOST_TEST((parse_iso_utc("2024-05-01") == chr::sys_days{chr::year{2024} / chr::May / 1}));
    for (auto bad : {"", "2024-05-01T", "2024-02-30", "2024-05-01T24:00:00Z", "2024-05-01T10:00:00.Z",
                     "2024-05-01T10:00:00.1234567890Z", "2024-05-01T10:00:00+01:00", "x024-05-01"}) {
        BOOST_TEST_CONTEXT("text " << bad) { BOOST_TEST(!parse_iso_utc(bad).has_value()); }
    }
}

BOOST_AUTO_TEST_CASE(a_request_id_is_stored_once) {
    on_each_database([](database& db) {
        auto const r = make_record("req-1", "u1", t0);
        BOOST_TEST(insert(db, {r}) == 1u);
        BOOST_TEST(insert(db, {r}) == 0u);  // a replay
        BOOST_TEST(insert(db, {make_record("req-2", "u1", t0), make_record("req-2", "u1", t0),
                               make_record("req-3", "u2", t0)}) == 2u);
        BOOST_TEST(insert(db, {}) == 0u);
        auto n = db.run_blocking([&](soci::session& sql) { return count_usage(sql, db.kind(), std::nullopt); });
        auto n1 = db.run_blocking([&](soci::session& sql) { return count_usage(sql, db.kind(), "u1"); });
        BOOST_TEST(n == 3);
        BOOST_TEST(n1 == 2);
    });
}

BOOST_AUTO_TEST_CASE(a_batch_longer_than_one_statement_is_stored_whole_and_once) {
    on_each_database([](database& db) {
        std::vector<usage_record> some;
        for (int i = 0; i != 5; ++i) some.push_back(make_record("big-" + std::to_string(i * 29), "u1", t0));
        BOOST_TEST(insert(db, some) == 5u);
        std::vector<usage_record> batch;  // 130 rows: three statements of up to 64 rows
        for (int i = 0; i != 130; ++i) batch.push_back(make_record("big-" + std::to_string(i), "u1", t0));
        BOOST_TEST(insert(db, batch) == 125u);  // the 5 already there are skipped
        auto n = db.run_blocking([&](soci::session& sql) { return count_usage(sql, db.kind(), "u1"); });
        BOOST_TEST(n == 130);
        auto last = find(db, "big-129");
        BOOST_TEST_REQUIRE(last.has_value());
        BOOST_TEST(last->request_id == "big-129");
    });
}

BOOST_AUTO_TEST_CASE(a_row_round_trips_with_its_nulls_time_and_cost) {
    on_each_database([](database& db) {
        auto full = make_record("full", "u1", t0 + chr::milliseconds{123}, nano_usd{12'207'000}, "m/full",
                                cost_source::provider, "gen-1");
        full.status = domain::call_status::cancelled;
        auto bare = make_record("bare", std::nullopt, t0 + chr::microseconds{999'999}, nano_usd{0});
        bare.conversation_id.clear();
        bare.generation_id.clear();
        bare.status = domain::call_status::error;
        BOOST_TEST(insert(db, {full, bare}) == 2u);

        auto got_full = find(db, "full");
        BOOST_REQUIRE(got_full.has_value());
        BOOST_TEST((*got_full == full));

        auto got_bare = find(db, "bare");
        BOOST_REQUIRE(got_bare.has_value());
        BOOST_TEST(!got_bare->user_id.has_value());
        BOOST_TEST(got_bare->conversation_id.empty());
        BOOST_TEST(got_bare->generation_id.empty());
        BOOST_TEST((got_bare->status == domain::call_status::error));
        BOOST_TEST((got_bare->created_at == t0 + chr::milliseconds{999}));  // kept to the millisecond
        BOOST_TEST(got_bare->cost == nano_usd{0});

        BOOST_TEST(!find(db, "missing").has_value());
        // NULL really is NULL in the table.
        auto nulls = db.run_blocking([](soci::session& sql) {
            long long n = 0;
            sql << "SELECT COUNT(*) FROM ai_usage WHERE user_id IS NULL AND conversation_id IS NULL"
                   " AND generation_id IS NULL",
                soci::into(n);
            return n;
        });
        BOOST_TEST(nulls == 1);
    });
}

BOOST_AUTO_TEST_CASE(costs_are_stored_rounded_half_up_to_the_micro) {
    on_each_database([](database& db) {
        BOOST_TEST(insert(db, {make_record("exact", "u", t0, nano_usd{12'207'000}),
                               make_record("half", "u", t0, nano_usd{12'206'500}),
                               make_record("below", "u", t0, nano_usd{12'206'499}),
                               make_record("big", "u", t0, nano_usd{9'876'543'210'999})}) == 4u);
        BOOST_TEST(find(db, "exact")->cost == nano_usd{12'207'000});
        BOOST_TEST(find(db, "half")->cost == nano_usd{12'207'000});
        BOOST_TEST(find(db, "below")->cost == nano_usd{12'206'000});
        BOOST_TEST(find(db, "big")->cost == nano_usd{9'876'543'211'000});
        auto text = db.run_blocking([](soci::session& sql) {
            std::string t;
            sql << "SELECT CAST(cost_usd AS TEXT) FROM ai_usage WHERE request_id = 'exact'", soci::into(t);
            return t;
        });
        BOOST_TEST(text == "0.012207");
    });
}

BOOST_AUTO_TEST_CASE(values_beyond_the_columns_are_cut_not_rejected) {
    on_each_database([](database& db) {
        std::string accents;
        for (int i = 0; i != 300; ++i) {
            accents += "\xc3\xa9";  // é: two bytes
        }
        auto r = make_record("long", accents, t0, nano_usd{20'000'000'000'000}, std::string(150, 'm'));
        r.session_id = "bad\xff utf8\x00!"s;
        r.input_tokens = std::numeric_limits<std::int64_t>::max();
        r.output_tokens = -5;
        BOOST_TEST(insert(db, {r}) == 1u);
        auto got = find(db, "long");
        BOOST_REQUIRE(got.has_value());
        BOOST_TEST(got->user_id->size() == 254u);  // 127 whole characters
        BOOST_TEST(*got->user_id == accents.substr(0, 254));
        BOOST_TEST(got->model == std::string(100, 'm'));
        BOOST_TEST(got->session_id == "bad? utf8?!");
        BOOST_TEST(got->input_tokens == std::numeric_limits<std::int32_t>::max());
        BOOST_TEST(got->output_tokens == -5);
        BOOST_TEST(got->cost == nano_usd{9'999'999'999'000});
    });
}

BOOST_AUTO_TEST_CASE(spend_since_sums_exactly_overall_and_per_user) {
    on_each_database([](database& db) {
        std::vector<usage_record> rows;
        for (int i = 0; i != 1000; ++i) {
            std::optional<std::string> user;
            if (i % 10 < 6) {
                user = "u1";
            } else if (i % 10 < 9) {
                user = "u2";
            }  // every tenth row has no user
            rows.push_back(make_record("r" + std::to_string(i), user, t0 + chr::seconds{i}, nano_usd{1'000}));
        }
        rows.push_back(make_record("old", "u1", t0 - chr::milliseconds{1}, nano_usd{5'000'000}));  // before `since`
        BOOST_TEST(insert(db, rows) == 1001u);

        auto totals = db.run_blocking([&](soci::session& sql) { return spend_since(sql, db.kind(), t0); });
        BOOST_TEST(totals.global == nano_usd{1'000'000});  // 1000 x 0.000001 = 0.001000 exactly
        BOOST_TEST(totals.per_user.size() == 2u);
        BOOST_TEST(totals.per_user["u1"] == nano_usd{600'000});
        BOOST_TEST(totals.per_user["u2"] == nano_usd{300'000});

        auto later = db.run_blocking(
            [&](soci::session& sql) { return spend_since(sql, db.kind(), t0 + chr::seconds{999}); });
        BOOST_TEST(later.global == nano_usd{1'000});
        auto none = db.run_blocking(
            [&](soci::session& sql) { return spend_since(sql, db.kind(), t0 + chr::hours{1}); });
        BOOST_TEST(none.global == nano_usd{0});
        BOOST_TEST(none.per_user.empty());
    });
}

BOOST_AUTO_TEST_CASE(calls_since_filters_and_orders_by_time) {
    on_each_database([](database& db) {
        // Inserted out of time order.
        BOOST_TEST(insert(db, {make_record("c", "u1", t0 + chr::seconds{30}),
                               make_record("a", "u2", t0 + chr::seconds{10}),
                               make_record("anon", std::nullopt, t0 + chr::seconds{15}),
                               make_record("b", "u1", t0 + chr::milliseconds{20'001}),
                               make_record("early", "u1", t0 - chr::seconds{1})}) == 5u);
        auto all = db.run_blocking([&](soci::session& sql) { return calls_since(sql, db.kind(), t0, std::nullopt); });
        using call = std::pair<std::string, time_point>;
        std::vector<call> const want_all{{"u2", t0 + chr::seconds{10}},
                                         {"u1", t0 + chr::milliseconds{20'001}},
                                         {"u1", t0 + chr::seconds{30}}};
        BOOST_TEST((all == want_all));
        auto u1 = db.run_blocking([&](soci::session& sql) { return calls_since(sql, db.kind(), t0, "u1"); });
        std::vector<call> const want_u1{{"u1", t0 + chr::milliseconds{20'001}}, {"u1", t0 + chr::seconds{30}}};
        BOOST_TEST((u1 == want_u1));
        auto nobody = db.run_blocking([&](soci::session& sql) { return calls_since(sql, db.kind(), t0, "u9"); });
        BOOST_TEST(nobody.empty());
    });
}

BOOST_AUTO_TEST_CASE(usage_report_groups_by_day_model_and_user) {
    on_each_database([](database& db) {
        auto const day1 = t0;                   // 2024-05-01
        auto const day2 = t0 + chr::hours{24};  // 2024-05-02
        auto const late = t0 + chr::hours{13} + chr::minutes{59};  // 2024-05-01T23:59Z: still day 1 in UTC
        auto r = [](std::string id, std::optional<std::string> user, time_point at, std::int64_t micros,
                    std::string model) {
            auto rec = make_record(std::move(id), std::move(user), at, nano_usd{micros * 1000}, std::move(model));
            return rec;
        };
        BOOST_TEST(insert(db, {r("1", "ana", day1, 10, "m/a"), r("2", "ana", late, 20, "m/b"),
                               r("3", "bob", day1, 30, "m/a"), r("4", std::nullopt, day2, 40, "m/a"),
                               r("5", "bob", day2, 50, "m/b")}) == 5u);
        auto report = [&](usage_filter const& f) {
            return db.run_blocking([&](soci::session& sql) { return usage_report(sql, db.kind(), f); });
        };
        auto const rows_of = [](std::string key, std::int64_t n, std::int64_t micros) {
            return usage_row{std::move(key), n, 100 * n, 20 * n, 5 * n, micros};
        };

        auto by_day = report({.by = usage_group::day});
        std::vector<usage_row> const want_day{rows_of("2024-05-01", 3, 60), rows_of("2024-05-02", 2, 90)};
        BOOST_TEST(by_day == want_day, boost::test_tools::per_element());

        auto by_model = report({.by = usage_group::model});
        std::vector<usage_row> const want_model{rows_of("m/a", 3, 80), rows_of("m/b", 2, 70)};
        BOOST_TEST(by_model == want_model, boost::test_tools::per_element());

        auto by_user = report({.by = usage_group::user});
        std::vector<usage_row> const want_user{rows_of("(none)", 1, 40), rows_of("ana", 2, 30), rows_of("bob", 2, 80)};
        BOOST_TEST(by_user == want_user, boost::test_tools::per_element());

        // The totals of every grouping are the same sums.
        for (auto const* rows : {&by_day, &by_model, &by_user}) {
            auto const micros = std::accumulate(rows->begin(), rows->end(), std::int64_t{0},
                                                [](std::int64_t s, usage_row const& x) { return s + x.cost_micros; });
            auto const n = std::accumulate(rows->begin(), rows->end(), std::int64_t{0},
                                           [](std::int64_t s, usage_row const& x) { return s + x.requests; });
            BOOST_TEST(micros == 150);
            BOOST_TEST(n == 5);
        }

        // [since, until): day 1 from 10:00 (inclusive) to 23:59 (exclusive).
        auto window = report({.by = usage_group::user, .since = day1, .until = late});
        std::vector<usage_row> const want_window{rows_of("ana", 1, 10), rows_of("bob", 1, 30)};
        BOOST_TEST(window == want_window, boost::test_tools::per_element());

        auto bob = report({.by = usage_group::model, .since = day1 + chr::seconds{1}, .user = "bob"});
        std::vector<usage_row> const want_bob{rows_of("m/b", 1, 50)};
        BOOST_TEST(bob == want_bob, boost::test_tools::per_element());

        auto empty = report({.by = usage_group::day, .since = day2 + chr::hours{1}});
        BOOST_TEST(empty.empty());
    });
}

BOOST_AUTO_TEST_CASE(corrections_change_only_estimates) {
    on_each_database([](database& db) {
        BOOST_TEST(insert(db, {make_record("est", "u", t0, nano_usd{1'000}, "m", cost_source::estimate, "gen-e"),
                               make_record("priced", "u", t0, nano_usd{2'000}, "m", cost_source::pricing, "gen-p"),
                               make_record("prov", "u", t0, nano_usd{3'000}, "m", cost_source::provider, "gen-v")}) ==
                   3u);
        std::vector<domain::cost_correction> const fixes{{"est", nano_usd{12'206'500}},
                                                         {"priced", nano_usd{9'000'000}},
                                                         {"prov", nano_usd{9'000'000}},
                                                         {"missing", nano_usd{9'000'000}}};
        auto changed = db.run_blocking([&](soci::session& sql) { return apply_corrections(sql, db.kind(), fixes); });
        BOOST_TEST(changed == 1u);
        BOOST_TEST(find(db, "est")->cost == nano_usd{12'207'000});
        BOOST_TEST((find(db, "est")->source == cost_source::provider));
        BOOST_TEST(find(db, "priced")->cost == nano_usd{2'000});
        BOOST_TEST((find(db, "priced")->source == cost_source::pricing));
        BOOST_TEST(find(db, "prov")->cost == nano_usd{3'000});
        // Applying them again changes nothing.
        auto again = db.run_blocking([&](soci::session& sql) { return apply_corrections(sql, db.kind(), fixes); });
        BOOST_TEST(again == 0u);
    });
}

BOOST_AUTO_TEST_CASE(estimates_to_correct_lists_the_oldest_with_a_generation_id) {
    on_each_database([](database& db) {
        auto est = [](std::string id, time_point at, std::string gen) {
            return make_record(std::move(id), "u", at, nano_usd{1'000}, "m", cost_source::estimate, std::move(gen));
        };
        BOOST_TEST(insert(db, {est("e3", t0 + chr::seconds{3}, "g3"), est("e1", t0 + chr::seconds{1}, "g1"),
                               est("nogen", t0, ""), est("e2", t0 + chr::seconds{2}, "g2"),
                               make_record("priced", "u", t0, nano_usd{1'000}, "m", cost_source::pricing, "gp")}) ==
                   5u);
        using pair = std::pair<std::string, std::string>;
        auto two = db.run_blocking([&](soci::session& sql) { return estimates_to_correct(sql, db.kind(), 2); });
        BOOST_TEST((two == std::vector<pair>{{"e1", "g1"}, {"e2", "g2"}}));
        auto all = db.run_blocking([&](soci::session& sql) { return estimates_to_correct(sql, db.kind(), 100); });
        BOOST_TEST((all == std::vector<pair>{{"e1", "g1"}, {"e2", "g2"}, {"e3", "g3"}}));
        auto none = db.run_blocking([&](soci::session& sql) { return estimates_to_correct(sql, db.kind(), 0); });
        BOOST_TEST(none.empty());
        std::vector<domain::cost_correction> const fix{{"e1", nano_usd{5'000}}};
        db.run_blocking([&](soci::session& sql) { apply_corrections(sql, db.kind(), fix); });
        auto rest = db.run_blocking([&](soci::session& sql) { return estimates_to_correct(sql, db.kind(), 100); });
        BOOST_TEST((rest == std::vector<pair>{{"e2", "g2"}, {"e3", "g3"}}));
    });
}

BOOST_AUTO_TEST_SUITE_END()
