// Two `parley serve` processes sharing one PostgreSQL (started here) with
// limits.backend = postgres: the hourly window admits exactly the limit
// across both, and the global daily budget, leased in slices, is not
// exceeded under concurrent load on both.
#include "net/nats_bus.hpp"

#include "support/io_fixture.hpp"
#include "support/nats_server.hpp"
#include "support/parley_server.hpp"
#include "support/pg_server.hpp"

#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
namespace json = boost::json;
using parley::test::server;
using parley::test::token;

std::string const body = R"({"messages":[{"role":"user","content":"hola"}]})";

std::map<std::string, std::optional<std::string>> shared_env(parley::test::pg_server const& pg,
                                                            std::map<std::string, std::optional<std::string>> more) {
    std::map<std::string, std::optional<std::string>> env{{"DATABASE_URL", pg.url()},
                                                          {"PARLEY_LIMITS_BACKEND", "postgres"},
                                                          {"PARLEY_LIMITS_LEASE_TTL_MS", "2000"}};
    for (auto& [k, v] : more) env[k] = v;
    return env;
}

// `requests` POSTs spread over both servers from `threads` threads; the statuses seen.
std::map<unsigned, int> hammer(server& a, server& b, std::string const& tok, int requests, int threads) {
    std::atomic<int> next{0};
    std::mutex m;
    std::map<unsigned, int> statuses;
    std::vector<std::thread> pool;
    for (int t = 0; t != threads; ++t) {
        pool.emplace_back([&] {
            for (int i = next++; i < requests; i = next++) {
                auto& s = i % 2 == 0 ? a : b;
                unsigned status = 0;
                try {
                    status = s.post("/v1/chat/completions", body, tok).status;
                } catch (std::exception const&) {
                    status = 0;
                }
                std::lock_guard lock{m};
                ++statuses[status];
            }
        });
    }
    for (auto& t : pool) t.join();
    return statuses;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(shared_limits_suite)

BOOST_AUTO_TEST_CASE(two_instances_admit_exactly_the_hourly_limit_of_one_user) {
    parley::test::pg_server pg;
    server a{shared_env(pg, {{"AI_RATE_LIMIT_PER_USER", "50"}})};
    server b{shared_env(pg, {{"AI_RATE_LIMIT_PER_USER", "50"}})};
    auto statuses = hammer(a, b, token("crowd"), 200, 8);
    BOOST_TEST(statuses[200] == 50);
    BOOST_TEST(statuses[429] == 150);
    BOOST_TEST(statuses.size() == 2u);
    // Both took part, and the refusal says when the window opens.
    auto r = a.post("/v1/chat/completions", body, token("crowd"));
    BOOST_TEST(r.status == 429u);
    BOOST_TEST(json::parse(r.body).at("error").at("type").as_string() == "rate_limited");
    BOOST_TEST(std::stoi(r.header("Retry-After")) > 3000);
    soci::session sql{soci::postgresql, pg.url() + "?connect_timeout=5"};
    long long calls = 0;
    sql << "SELECT COUNT(*) FROM limit_calls WHERE user_id = 'crowd'", soci::into(calls);
    BOOST_TEST(calls == 50);
}

BOOST_AUTO_TEST_CASE(the_leased_global_budget_is_not_exceeded_under_load_on_both) {
    parley::test::pg_server pg;
    // About 0.0001 USD a call and a worst case near 0.0012: the budget runs
    // out within the 300 calls, slices of 0.003 at a time.
    std::map<std::string, std::optional<std::string>> more{{"AI_COST_LIMIT_DAILY", "0.01"},
                                                          {"PARLEY_LIMITS_LEASE_USD", "0.003"},
                                                          {"AI_MAX_TOKENS", "50"}};
    server a{shared_env(pg, more)};
    server b{shared_env(pg, more)};
    auto const tok = token("spender", {"unlimited"});  // no hourly window: the budget alone decides
    auto statuses = hammer(a, b, tok, 300, 8);
    BOOST_TEST(statuses[200] > 0);
    BOOST_TEST(statuses[429] > 0);
    BOOST_TEST(statuses[0] == 0);

    // What was spent (the usage rows, once both flushed) is within the limit,
    // and so is what was leased.
    soci::session sql{soci::postgresql, pg.url() + "?connect_timeout=5"};
    long long rows = 0;
    double spent = 0;
    for (int i = 0; i != 200; ++i) {
        sql << "SELECT COUNT(*), COALESCE(SUM(cost_usd), 0) FROM ai_usage", soci::into(rows), soci::into(spent);
        if (rows == statuses[200]) break;
        std::this_thread::sleep_for(25ms);
    }
    BOOST_TEST(rows == statuses[200]);
    BOOST_TEST(spent <= 0.01);
    BOOST_TEST(spent > 0.005);  // most of it could be used
    long long granted = 0;
    sql << "SELECT CAST(COALESCE(SUM(granted_nanos), 0) AS BIGINT) FROM budget_leases", soci::into(granted);
    BOOST_TEST(granted <= 10'000'000);
    long long holders = 0;
    sql << "SELECT COUNT(DISTINCT instance_id) FROM budget_leases", soci::into(holders);
    BOOST_TEST(holders == 2);
}

BOOST_AUTO_TEST_CASE(nats_requests_are_spread_over_both_instances) {
    parley::test::pg_server pg;
    parley::test::nats_server nats;
    std::map<std::string, std::optional<std::string>> more{{"NATS_URL", nats.url()}};
    server a{shared_env(pg, more)};
    server b{shared_env(pg, more)};
    parley::test::io_fixture io;
    parley::net::nats_options client_options;
    client_options.url = nats.url();
    auto bus = parley::net::nats_bus::connect(io.ioc.get_executor(), client_options);
    int done = 0;
    io.run(
        [&]() -> parley::task<void> {
            for (int i = 0; i != 24; ++i) {
                std::string const rq = R"({"token":")" + token("bus" + std::to_string(i)) +
                                       R"(","text":"Hola","stream":false})";
                auto r = co_await bus->request("parley.chat", rq, 10s);
                if (r && json::parse(*r).at("type").as_string() == "done") ++done;
            }
        },
        60s);
    bus->close();
    BOOST_TEST(done == 24);
    auto served = [](server& s) {
        auto m = s.get("/metrics", "").body;
        std::string const key = "parley_nats_requests_total{outcome=\"ok\"} ";
        auto at = m.find(key);
        return at == std::string::npos ? 0 : std::stoi(m.substr(at + key.size()));
    };
    auto const by_a = served(a);
    auto const by_b = served(b);
    BOOST_TEST(by_a + by_b == 24);
    BOOST_TEST(by_a > 0);
    BOOST_TEST(by_b > 0);
}

BOOST_AUTO_TEST_CASE(an_instance_killed_mid_load_fails_its_callers_the_other_serves_and_no_row_is_lost) {
    parley::test::pg_server pg;
    // A keeps its rows in the usage log (a long flush interval) until it dies.
    server a{shared_env(pg, {{"PARLEY_USAGE_FLUSH_INTERVAL_MS", "60000"}}),
             {"--latency-ms", "0", "--tokens-per-second", "100", "--answer-tokens", "20"}};
    server b{shared_env(pg, {}), {"--latency-ms", "0", "--tokens-per-second", "100", "--answer-tokens", "20"}};
    auto const tok = token("steady", {"unlimited"});
    std::atomic<bool> killed{false};
    std::atomic<int> ok_a{0}, ok_b{0}, failed_a{0}, failed_b{0}, ok_b_after{0};
    std::vector<std::thread> pool;
    for (int t = 0; t != 4; ++t) {
        pool.emplace_back([&, t] {
            bool const to_a = t % 2 == 0;
            for (int i = 0; i != 15; ++i) {
                bool const after = killed;
                try {
                    auto r = (to_a ? a : b).post("/v1/chat/completions", body, tok);
                    if (r.status == 200u) {
                        ++(to_a ? ok_a : ok_b);
                        if (!to_a && after) ++ok_b_after;
                    } else {
                        ++(to_a ? failed_a : failed_b);
                    }
                } catch (std::exception const&) {
                    ++(to_a ? failed_a : failed_b);  // the connection was cut or refused
                }
            }
        });
    }
    std::this_thread::sleep_for(1500ms);
    a.proc->signal(SIGKILL);
    killed = true;
    for (auto& t : pool) t.join();
    BOOST_TEST(failed_a > 0);   // A's callers saw it go
    BOOST_TEST(failed_b == 0);  // B never failed
    BOOST_TEST(ok_b == 30);
    BOOST_TEST(ok_b_after > 0);
    BOOST_TEST(ok_a > 0);

    // A again: its log is replayed into the database.
    a.proc->wait(10s);
    a.start();
    soci::session sql{soci::postgresql, pg.url() + "?connect_timeout=5"};
    long long rows = 0, distinct = 0;
    for (int i = 0; i != 400; ++i) {
        sql << "SELECT COUNT(*), COUNT(DISTINCT request_id) FROM ai_usage WHERE status = 'ok'", soci::into(rows),
            soci::into(distinct);
        if (rows >= ok_a + ok_b) break;
        std::this_thread::sleep_for(25ms);
    }
    // Every completed call has its row, once (a call A finished and logged
    // just before it died, whose answer never left, may add one per thread).
    BOOST_TEST(rows == distinct);
    BOOST_TEST(rows >= ok_a + ok_b);
    BOOST_TEST(rows <= ok_a + ok_b + 2);
}

BOOST_AUTO_TEST_SUITE_END()
