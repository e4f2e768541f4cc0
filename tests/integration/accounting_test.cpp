// Limits and accounting end to end (issue #4): the real `parley` binary, the
// real openrouter-sim, real SQLite files and real PostgreSQL servers:
//  * the hourly window through `parley chat`: the fourth call within the
//    hour fails with rate_limited and its retry_after, and the database
//    holds exactly three rows with the simulator's exact costs (SQLite and
//    PostgreSQL);
//  * a daily budget that a call's worst case does not fit;
//  * `parley usage`: totals equal the sum of the rows to the micro-dollar;
//  * SIGKILL after calls completed: after the restart every row is present
//    exactly once (the write-ahead log's replay);
//  * PostgreSQL stopped during a run of recorded calls and started again:
//    every row present exactly once;
//  * a stream cut before its usage chunk: an `estimate` row, corrected from
//    /generation to the provider's cost.
// Every suite name starts with "accounting".
#include "actors/accountant.hpp"
#include "actors/openrouter_client.hpp"
#include "actors/usage_writer.hpp"
#include "domain/money.hpp"
#include "persistence/database.hpp"
#include "persistence/migrations.hpp"
#include "persistence/usage_log.hpp"
#include "persistence/usage_repository.hpp"

#include "support/http_client.hpp"
#include "support/io_fixture.hpp"
#include "support/pg_database.hpp"
#include "support/pg_server.hpp"
#include "support/process.hpp"
#include "support/sim_process.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/test/unit_test.hpp>
#include <soci/soci.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace {

using namespace std::chrono_literals;
namespace json = boost::json;
namespace actors = parley::actors;
namespace domain = parley::domain;
namespace persistence = parley::persistence;
using parley::task;
using parley::test::child_process;
using parley::test::http_client;

std::string const key = "sk-or-accounting-key";

using env_map = std::map<std::string, std::optional<std::string>>;

struct sim_process : parley::test::sim_process {
    using parley::test::sim_process::sim_process;
    std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port) + "/api/v1"; }
    json::value get(std::string const& target) {
        http_client c{"127.0.0.1", port, tls};
        auto r = c.get(target, {{"Authorization", "Bearer " + key}});
        BOOST_TEST_REQUIRE(r.status == 200u, target << " -> " << r.status << " " << r.body);
        return json::parse(r.body);
    }
    // The simulator's own record of a generation's cost, as exact text.
    std::string generation_cost(std::string const& id) {
        http_client c{"127.0.0.1", port, tls};
        auto r = c.get("/api/v1/generation?id=" + id, {{"Authorization", "Bearer " + key}});
        BOOST_TEST_REQUIRE(r.status == 200u);
        auto const at = r.body.find("\"total_cost\":");
        BOOST_TEST_REQUIRE(at != std::string::npos);
        auto const start = at + 13;
        return r.body.substr(start, r.body.find_first_of(",}", start) - start);
    }
};

std::vector<std::string> fast_sim() {
    return {"--latency-ms", "0", "--tokens-per-second", "0", "--answer-tokens", "6"};
}

// A `parley` command run to its end, stdout and stderr apart.
struct parley_run {
    std::optional<int> code;
    std::string out, err;
};

parley_run run_parley(std::vector<std::string> args, env_map env, std::chrono::milliseconds limit = 60s) {
    parley::test::temp_dir dir;
    std::vector<std::string> argv{"-c", R"(exec "$0" "$@" 2>"$PARLEY_TEST_STDERR")",
                                  parley::test::bin_path("parley").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    env["PARLEY_TEST_STDERR"] = (dir.path / "stderr").string();
    env.emplace("PARLEY_CONFIG", "/dev/null");
    child_process p{"/bin/sh", argv, env};
    parley_run r;
    r.code = p.wait(limit);
    BOOST_TEST_REQUIRE(r.code.has_value(), "parley did not exit in time: " << p.output());
    r.out = p.output();
    r.err = parley::test::read_file(dir.path / "stderr");
    return r;
}

// The environment of one installation: its database and its data directory.
env_map install_env(sim_process const& sim, std::string const& database_url, std::filesystem::path const& data) {
    return {{"OPENROUTER_BASE_URL", sim.base_url()},
            {"OPENROUTER_API_KEY", key},
            {"AI_MODEL", "anthropic/claude-3.5-sonnet"},
            {"DATABASE_URL", database_url},
            {"PARLEY_DATA_DIR", data.string()},
            {"PARLEY_RETRY_INITIAL_BACKOFF_MS", "5"},
            {"PARLEY_RETRY_MAX_BACKOFF_MS", "20"}};
}

domain::nano_usd usd(std::string_view text) {
    auto v = domain::parse_usd(text);
    BOOST_TEST_REQUIRE(v.has_value(), text);
    return *v;
}

// Rate window, exact costs and the report, on one database.
void rate_limit_and_report(std::string const& database_url) {
    sim_process sim{fast_sim()};
    parley::test::temp_dir data;
    auto env = install_env(sim, database_url, data.path);
    env["AI_RATE_LIMIT_PER_USER"] = "3";
    domain::nano_usd sum;
    std::vector<std::string> generation_ids;
    for (int i = 0; i != 3; ++i) {
        auto r = run_parley({"chat", "--raw", "--json", "--user", "ana", i == 1 ? "--stream" : "--json", "Hola"}, env);
        BOOST_TEST_REQUIRE(*r.code == 0, r.err);
        BOOST_TEST_REQUIRE(r.out.starts_with("{"), r.out);
        auto o = json::parse(r.out).as_object();
        auto const& u = o.at("usage").as_object();
        BOOST_TEST(u.at("cost_source").as_string() == "provider");
        std::string const id{o.at("generation_id").as_string()};
        // The row's cost is the simulator's, to the micro-dollar.
        BOOST_TEST(usd(u.at("cost_usd").as_string()) ==
                   domain::nano_usd{domain::round_to_micros(usd(sim.generation_cost(id))) * 1000});
        sum += usd(u.at("cost_usd").as_string());
        generation_ids.push_back(id);
    }
    auto fourth = run_parley({"chat", "--raw", "--json", "--user", "ana", "Hola"}, env);
    BOOST_TEST(*fourth.code == 1);
    auto err = json::parse(fourth.out).at("error").as_object();
    BOOST_TEST(err.at("code").as_string() == "rate_limited");
    auto const retry_after = err.at("retry_after").as_int64();
    BOOST_TEST(retry_after > 3500);  // the first call of the hour frees its slot in an hour
    BOOST_TEST(retry_after <= 3600);
    BOOST_TEST(fourth.err.find("rate limited") != std::string::npos);
    BOOST_TEST(fourth.err.find("(rate_limited)") != std::string::npos);
    BOOST_TEST(sim.get("/sim/counters").at("requests").to_number<std::int64_t>() == 3);  // never sent upstream

    // Another user is not limited by ana's calls.
    auto other = run_parley({"chat", "--raw", "--json", "--user", "bea", "Hola"}, env);
    BOOST_TEST(*other.code == 0, other.err);

    auto report = run_parley({"usage", "--json", "--by", "user", "--user", "ana"}, env);
    BOOST_TEST_REQUIRE(*report.code == 0, report.err);
    auto rj = json::parse(report.out).as_object();
    auto rows = rj.at("rows").as_array();
    BOOST_TEST_REQUIRE(rows.size() == 1u);
    BOOST_TEST(rows[0].at("key").as_string() == "ana");
    BOOST_TEST(rows[0].at("requests").as_int64() == 3);
    BOOST_TEST(std::string{rows[0].at("cost_usd").as_string()} == domain::format_usd(sum));
    BOOST_TEST(rj.at("total").at("cost_usd") == rows[0].at("cost_usd"));

    auto everyone = run_parley({"usage", "--json", "--by", "user"}, env);
    auto all = json::parse(everyone.out).as_object();
    BOOST_TEST(all.at("rows").as_array().size() == 2u);
    domain::nano_usd total_of_rows;
    for (auto const& row : all.at("rows").as_array()) total_of_rows += usd(row.at("cost_usd").as_string());
    BOOST_TEST(usd(all.at("total").at("cost_usd").as_string()) == total_of_rows);
    BOOST_TEST(all.at("total").at("requests").as_int64() == 4);

    auto table = run_parley({"usage", "--by", "model"}, env);
    BOOST_TEST(*table.code == 0);
    BOOST_TEST(table.out.find("anthropic/claude-3.5-sonnet") != std::string::npos);
    BOOST_TEST(table.out.find("total") != std::string::npos);
}

// SIGKILL after calls completed; the restart replays the log.
void sigkill_after_calls(std::string const& url) {
    sim_process sim{fast_sim()};
    parley::test::temp_dir data;
    auto env = install_env(sim, url, data.path);
    env["PARLEY_USAGE_FLUSH_INTERVAL_MS"] = "3600000";  // the rows stay in the log...
    env["PARLEY_USAGE_BATCH_SIZE"] = "10000";           // ...until the process is gone
    int const calls = 12;
    std::string costs;
    {
        child_process helper{parley::test::bin_path("usage_crash_helper"), {std::to_string(calls), "carl"}, env};
        costs = helper.wait_for_output(R"(recorded 12((?: \d+\.\d{6})+))", 60s);
        helper.signal(SIGKILL);
        BOOST_TEST(helper.wait(5s).value_or(0) == 128 + SIGKILL);
    }
    auto db = persistence::database::open({.url = url, .pool_size = 1});
    auto const d = db->kind();
    auto count = [&] {
        return db->run_blocking([d](soci::session& sql) { return persistence::count_usage(sql, d, std::string{"carl"}); });
    };
    BOOST_TEST(count() == 0);  // nothing reached the database before the kill

    // The next start (here `parley usage`) replays the log: every row once.
    auto report = run_parley({"usage", "--json", "--user", "carl", "--by", "user"}, env);
    BOOST_TEST_REQUIRE(*report.code == 0, report.err);
    BOOST_TEST(report.err.find("wrote 12 entries") != std::string::npos, report.err);
    BOOST_TEST(count() == calls);
    domain::nano_usd sum;
    for (std::size_t at = 0; at < costs.size();) {
        auto const next = costs.find(' ', at + 1);
        sum += usd(costs.substr(at + 1, next - at - 1));
        at = next == std::string::npos ? costs.size() : next;
    }
    auto row = json::parse(report.out).at("rows").at(0);
    BOOST_TEST(row.at("requests").as_int64() == calls);
    BOOST_TEST(std::string{row.at("cost_usd").as_string()} == domain::format_usd(sum));

    // A second restart finds nothing more to write, and nothing doubles.
    auto again = run_parley({"usage", "--json", "--user", "carl"}, env);
    BOOST_TEST(again.err.find("wrote") == std::string::npos, again.err);
    BOOST_TEST(count() == calls);
    db->close();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(accounting)

BOOST_AUTO_TEST_CASE(the_fourth_call_in_the_hour_is_rate_limited_and_three_rows_hold_exact_costs_sqlite) {
    parley::test::temp_dir db;
    rate_limit_and_report("sqlite:" + (db.path / "parley.db").string());
}

BOOST_AUTO_TEST_CASE(the_fourth_call_in_the_hour_is_rate_limited_and_three_rows_hold_exact_costs_postgresql) {
    parley::test::temp_pg_database pg;
    if (!pg.available()) {
        BOOST_TEST_MESSAGE("skipped: PARLEY_TEST_PG_URI unset");
        return;
    }
    rate_limit_and_report(pg.url());
}

BOOST_AUTO_TEST_CASE(a_call_whose_worst_case_exceeds_the_daily_budget_is_refused_before_the_upstream) {
    sim_process sim{fast_sim()};
    parley::test::temp_dir data;
    auto env = install_env(sim, "sqlite:" + (data.path / "p.db").string(), data.path);
    env["AI_COST_LIMIT_DAILY"] = "0.01";  // 4096 tokens at 0.000015 alone are 0.06
    auto r = run_parley({"chat", "--raw", "--json", "--user", "ana", "Hola"}, env);
    BOOST_TEST(*r.code == 1);
    auto err = json::parse(r.out).at("error").as_object();
    BOOST_TEST(err.at("code").as_string() == "budget_exhausted");
    BOOST_TEST(err.at("retry_after").as_int64() >= 1);
    BOOST_TEST(err.at("retry_after").as_int64() <= 86400);
    BOOST_TEST(r.err.find("AI_COST_LIMIT_DAILY") != std::string::npos);
    BOOST_TEST(sim.get("/sim/counters").at("requests").to_number<std::int64_t>() == 0);
    env["AI_MAX_TOKENS"] = "100";  // a worst case that fits
    auto fits = run_parley({"chat", "--raw", "--json", "--user", "ana", "Hola"}, env);
    BOOST_TEST(*fits.code == 0, fits.err);
}

BOOST_AUTO_TEST_CASE(sigkill_after_calls_completed_loses_no_row_and_duplicates_none_sqlite) {
    parley::test::temp_dir db;
    sigkill_after_calls("sqlite:" + (db.path / "p.db").string());
}

BOOST_AUTO_TEST_CASE(sigkill_after_calls_completed_loses_no_row_and_duplicates_none_postgresql) {
    parley::test::temp_pg_database pg;
    if (!pg.available()) {
        BOOST_TEST_MESSAGE("skipped: PARLEY_TEST_PG_URI unset");
        return;
    }
    sigkill_after_calls(pg.url());
}

BOOST_AUTO_TEST_SUITE_END()

// ------------------------------------------------------------ in-process

namespace {

struct stack_fixture : parley::test::io_fixture {
    parley::test::temp_dir dir;

    std::shared_ptr<persistence::usage_log> open_log() {
        return persistence::usage_log::open({.dir = dir.path / "usage-log", .segment_bytes = 4096});
    }
};

domain::usage_record make_row(int i, std::string const& user) {
    domain::usage_record r;
    r.request_id = "req-" + user + "-" + std::to_string(i);
    r.user_id = user;
    r.session_id = "s";
    r.input_tokens = 1234;
    r.output_tokens = 567;
    r.cost = domain::nano_usd{12'207'000};
    r.source = domain::cost_source::provider;
    r.model = "anthropic/claude-3.5-sonnet";
    r.created_at = std::chrono::system_clock::now();
    return r;
}

task<void> sleep_for(std::chrono::milliseconds d) {
    parley::asio::steady_timer t{co_await parley::asio::this_coro::executor, d};
    co_await t.async_wait(parley::use_nothrow);
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(accounting_outage, stack_fixture)

BOOST_AUTO_TEST_CASE(postgresql_stopped_during_a_run_and_started_again_keeps_every_row_exactly_once) {
    parley::test::pg_server pg;
    auto db = persistence::database::open({.url = pg.url(), .pool_size = 2});
    actors::usage_writer_options o;
    o.batch_size = 16;
    o.flush_interval = 10ms;
    o.retry_initial = 20ms;
    o.retry_max = 100ms;
    auto writer = actors::spawn<actors::usage_writer>(ioc.get_executor(), open_log(), db, o);
    writer->kick();
    run_and_stop([&]() -> task<void> {
        for (int i = 0; i != 40; ++i) {
            auto ok = co_await writer->record(make_row(i, "pat"));
            BOOST_TEST(ok.has_value());
        }
        auto first = co_await writer->flush(10s);
        BOOST_TEST(first.has_value());
        pg.stop();
        for (int i = 40; i != 80; ++i) {
            auto ok = co_await writer->record(make_row(i, "pat"));  // the log takes them: the turn goes on
            BOOST_TEST(ok.has_value());
        }
        auto during = co_await writer->flush(10s);
        BOOST_TEST(!during.has_value());  // the database is down
        auto stats = co_await writer->stats();
        BOOST_TEST(!stats->database_ok);
        BOOST_TEST(stats->write_failures >= 1u);
        BOOST_TEST(stats->log_backlog == 40u);
        pg.start();
        // The writer retries on its own; wait for it to catch up.
        for (int i = 0; i != 500; ++i) {
            auto s = co_await writer->stats();
            if (s->log_backlog == 0) break;
            co_await sleep_for(20ms);
        }
        auto after = co_await writer->flush(10s);
        BOOST_TEST(after.has_value());
        stats = co_await writer->stats();
        BOOST_TEST(stats->database_ok);
        BOOST_TEST(stats->inserted == 80u);
        co_await writer->shutdown(1s);
    }, 60s);
    auto const d = db->kind();
    auto n = db->run_blocking([d](soci::session& sql) { return persistence::count_usage(sql, d, std::string{"pat"}); });
    BOOST_TEST(n == 80);
    for (int i : {0, 39, 40, 79}) {
        auto row = db->run_blocking([d, i](soci::session& sql) {
            return persistence::find_usage(sql, d, "req-pat-" + std::to_string(i));
        });
        BOOST_TEST_REQUIRE(row.has_value());
        BOOST_TEST(row->cost == domain::nano_usd{12'207'000});
    }
    db->close();
}

BOOST_AUTO_TEST_CASE(a_database_down_at_start_up_gets_the_rows_and_its_tables_when_it_comes_back) {
    parley::test::pg_server pg;
    pg.stop();
    auto db = persistence::database::open({.url = pg.url(), .pool_size = 1});
    actors::usage_writer_options o;
    o.flush_interval = 10ms;
    o.retry_initial = 20ms;
    o.retry_max = 50ms;
    o.max_pending = 5;  // most rows wait in the log only, and are read back from it
    auto writer = actors::spawn<actors::usage_writer>(ioc.get_executor(), open_log(), db, o);
    run_and_stop([&]() -> task<void> {
        for (int i = 0; i != 30; ++i) {
            auto ok = co_await writer->record(make_row(i, "quin"));
            BOOST_TEST(ok.has_value());
        }
        auto s = co_await writer->stats();
        BOOST_TEST(s->queue_depth == 5u);
        BOOST_TEST(s->log_backlog == 30u);
        pg.start();  // a new, empty database: the writer migrates it first
        auto done = co_await writer->flush(20s);
        for (int i = 0; i != 200 && !done; ++i) {
            co_await sleep_for(20ms);
            done = co_await writer->flush(20s);
        }
        BOOST_TEST(done.has_value());
        co_await writer->shutdown(1s);
    }, 60s);
    auto const d = db->kind();
    BOOST_TEST(db->run_blocking([d](soci::session& sql) { return persistence::count_usage(sql, d, std::string{"quin"}); }) == 30);
    db->close();
}

BOOST_AUTO_TEST_CASE(a_stream_cut_before_its_usage_chunk_is_an_estimate_corrected_from_generation) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "0", "--answer-tokens", "20"}};
    auto const url = "sqlite:" + (dir.path / "p.db").string();
    auto db = persistence::database::open({.url = url, .pool_size = 1});
    db->run_blocking([d = db->kind()](soci::session& sql) { persistence::migrate(sql, d); });
    actors::openrouter_options oo;
    oo.base_url = sim.base_url();
    oo.api_key = key;
    oo.retry.max_retries = 0;
    auto client = std::make_shared<actors::openrouter_client>(ioc.get_executor(), oo);
    actors::usage_writer_options wo;
    wo.flush_interval = 5ms;
    auto writer = actors::spawn<actors::usage_writer>(ioc.get_executor(), open_log(), db, wo);
    auto limiter = actors::spawn<actors::rate_limiter>(ioc.get_executor(), actors::limiter_options{});
    actors::accounting_options ao;
    ao.correction_delay = 50ms;
    ao.correction_attempts = 3;
    auto acct = std::make_shared<actors::accountant>(ioc.get_executor(), limiter, writer, client, ao);
    std::optional<domain::usage_record> row;
    run_and_stop([&]() -> task<void> {
        domain::request_options ro;
        ro.model = "anthropic/claude-3.5-sonnet";
        ro.stream = true;
        domain::message m;
        m.content = "cut me";
        std::vector<domain::message> history;  // no braced list in a coroutine: GCC 12 rejects it
        history.push_back(std::move(m));
        auto call = actors::make_chat_call(history, ro);
        call.extra_headers.emplace_back("X-Sim-Fault", "drop;after-tokens=5");
        auto const bytes = call.body.size();
        actors::call_identity who;
        who.user_id = "dan";
        who.session_id = "s1";
        std::vector<std::string> models;
        models.push_back(ro.model);
        auto const worst = acct->worst_case(bytes, models, 4096);
        auto adm = co_await acct->admit(who, worst);
        BOOST_TEST_REQUIRE(adm->admitted);
        auto r = co_await client->complete(std::move(call));
        BOOST_TEST(!r.result.has_value());
        BOOST_TEST_REQUIRE(r.partial.has_value());
        auto recorded = co_await acct->record(who, *adm, ro.model, bytes, r);
        BOOST_TEST_REQUIRE(recorded.has_value());
        row = *recorded;
        // Wait for the lookup and the corrected row.
        for (int i = 0; i != 200; ++i) {
            auto s = co_await writer->stats();
            if (s->corrected == 1u) break;
            co_await sleep_for(10ms);
        }
        co_await acct->shutdown();
        co_await writer->shutdown(2s);
        co_await limiter->shutdown();
        co_await client->shutdown();
    }, 30s);
    BOOST_TEST_REQUIRE(row.has_value());
    BOOST_TEST(row->source == domain::cost_source::estimate);
    BOOST_TEST(row->status == domain::call_status::error);
    BOOST_TEST(!row->generation_id.empty());
    BOOST_TEST(row->output_tokens > 0);
    auto const d = db->kind();
    auto stored = db->run_blocking([d, id = row->request_id](soci::session& sql) { return persistence::find_usage(sql, d, id); });
    BOOST_TEST_REQUIRE(stored.has_value());
    BOOST_TEST(stored->source == domain::cost_source::provider);
    BOOST_TEST(stored->request_id == row->request_id);
    auto const real = usd(sim.generation_cost(row->generation_id));
    BOOST_TEST(stored->cost == domain::nano_usd{domain::round_to_micros(real) * 1000});
    db->close();
}

BOOST_AUTO_TEST_SUITE_END()

// ------------------------------------------------------------ the commands

BOOST_AUTO_TEST_SUITE(accounting_commands)

BOOST_AUTO_TEST_CASE(a_usage_without_cost_is_priced_from_the_table_exactly) {
    sim_process sim{fast_sim()};
    parley::test::temp_dir data;
    auto env = install_env(sim, "sqlite:" + (data.path / "p.db").string(), data.path);
    http_client c{"127.0.0.1", sim.port};
    auto turn = R"({"text":"ok","usage":{"prompt_tokens":1234,"completion_tokens":567,"cost":null}})";
    BOOST_TEST_REQUIRE(c.post("/sim/script", std::string{R"({"turns":[)"} + turn + "," + turn + "," + turn + "]}").status == 200u);
    auto r = run_parley({"chat", "--raw", "--json", "--user", "eva", "Hola"}, env);
    BOOST_TEST_REQUIRE(*r.code == 0, r.err);
    auto u = json::parse(r.out).at("usage").as_object();
    BOOST_TEST(u.at("cost_usd").as_string() == "0.012207");  // 1234 x 0.000003 + 567 x 0.000015
    BOOST_TEST(u.at("cost_source").as_string() == "pricing");
    BOOST_TEST(u.at("input_tokens").as_int64() == 1234);

    // A model the table does not list is priced at its dearest entry...
    env["AI_MODEL"] = "openai/gpt-4o";
    auto unknown = run_parley({"chat", "--raw", "--json", "--user", "eva", "Hola"}, env);
    BOOST_TEST_REQUIRE(*unknown.code == 0, unknown.err);
    BOOST_TEST(json::parse(unknown.out).at("usage").at("cost_usd").as_string() == "0.012207");
    // ...unless pricing.refresh adds OpenRouter's price for it (0.0000025 / 0.00001).
    env["PARLEY_PRICING_REFRESH"] = "true";
    auto refreshed = run_parley({"chat", "--raw", "--json", "--user", "eva", "Hola"}, env);
    BOOST_TEST_REQUIRE(*refreshed.code == 0, refreshed.err);
    BOOST_TEST(json::parse(refreshed.out).at("usage").at("cost_usd").as_string() == "0.008755");
}

BOOST_AUTO_TEST_CASE(migrate_applies_once_then_reports_the_schema_up_to_date) {
    parley::test::temp_dir data;
    env_map env{{"DATABASE_URL", "sqlite:" + (data.path / "m.db").string()}};
    auto first = run_parley({"migrate"}, env);
    BOOST_TEST(*first.code == 0, first.err);
    BOOST_TEST(first.out.find("applied migration 1") != std::string::npos, first.out);
    BOOST_TEST(first.out.find("applied migration 2") != std::string::npos, first.out);
    BOOST_TEST(first.out.find("schema now at version 2") != std::string::npos, first.out);
    auto again = run_parley({"migrate"}, env);
    BOOST_TEST(*again.code == 0);
    BOOST_TEST(again.out.find("schema up to date at version 2") != std::string::npos, again.out);
    auto unreachable = run_parley({"migrate"}, {{"DATABASE_URL", "postgresql://postgres@127.0.0.1:1/none"}});
    BOOST_TEST(*unreachable.code == 1);
    BOOST_TEST(unreachable.err.starts_with("parley migrate: "));
    auto bad = run_parley({"migrate"}, {{"DATABASE_URL", "mysql://x"}});
    BOOST_TEST(*bad.code == 2);
}

BOOST_AUTO_TEST_CASE(usage_rejects_bad_arguments_with_one_line_and_exit_2) {
    parley::test::temp_dir data;
    env_map env{{"DATABASE_URL", "sqlite:" + (data.path / "u.db").string()}, {"PARLEY_DATA_DIR", data.path.string()}};
    for (auto const& [args, says] : std::vector<std::pair<std::vector<std::string>, std::string>>{
             {{"usage", "--by", "week"}, "invalid --by week"},
             {{"usage", "--since", "2026-13-01"}, "invalid --since 2026-13-01"},
             {{"usage", "--until", "yesterday"}, "invalid --until yesterday"},
             {{"usage", "--since", "2026-12-02", "--until", "2026-12-01"}, "is before --since"},
         }) {
        auto r = run_parley(args, env);
        BOOST_TEST(*r.code == 2);
        BOOST_TEST(r.err.find(says) != std::string::npos, r.err);
    }
    auto empty = run_parley({"usage", "--json", "--since", "2026-12-01", "--until", "2026-12-01"}, env);
    BOOST_TEST(*empty.code == 0, empty.err);
    auto o = json::parse(empty.out).as_object();
    BOOST_TEST(o.at("rows").as_array().empty());
    BOOST_TEST(o.at("since").as_string() == "2026-12-01");
    BOOST_TEST(o.at("total").at("cost_usd").as_string() == "0.000000");
    auto unreachable = run_parley({"usage"}, {{"DATABASE_URL", "postgresql://postgres@127.0.0.1:1/none"}});
    BOOST_TEST(*unreachable.code == 1);
}

BOOST_AUTO_TEST_CASE(a_cancelled_stream_is_recorded_as_cancelled_and_a_log_in_use_is_refused) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "10", "--answer-tokens", "100"}};
    parley::test::temp_dir data;
    auto const url = "sqlite:" + (data.path / "p.db").string();
    auto env = install_env(sim, url, data.path);
    {
        parley::test::temp_dir io;
        env["PARLEY_TEST_STDERR"] = (io.path / "stderr").string();
        env["PARLEY_CONFIG"] = "/dev/null";
        child_process chat{"/bin/sh",
                           {"-c", R"(exec "$0" "$@" 2>"$PARLEY_TEST_STDERR")", parley::test::bin_path("parley").string(),
                            "chat", "--stream", "--user", "fay", "Hola"},
                           env};
        chat.wait_for_output("Echo", 20s);
        // While it runs, the usage log is its own: another command refuses it...
        auto second = run_parley({"chat", "--user", "gil", "Hola"}, env);
        BOOST_TEST(*second.code == 2);
        BOOST_TEST(second.err.find("in use by another process") != std::string::npos, second.err);
        // ...and a report leaves it alone.
        auto report = run_parley({"usage", "--json"}, env);
        BOOST_TEST(*report.code == 0);
        BOOST_TEST(report.err.find("was not replayed") != std::string::npos, report.err);
        chat.signal(SIGINT);
        BOOST_TEST(chat.wait(10s).value_or(-1) == 130);
    }
    auto db = persistence::database::open({.url = url, .pool_size = 1});
    auto const d = db->kind();
    auto rows = db->run_blocking([](soci::session& sql) {
        std::string status, source;
        long long output = 0;
        sql << "SELECT status, cost_source, output_tokens FROM ai_usage WHERE user_id = 'fay'", soci::into(status),
            soci::into(source), soci::into(output);
        return std::tuple{status, source, output};
    });
    BOOST_TEST(std::get<0>(rows) == "cancelled");
    BOOST_TEST(std::get<1>(rows) == "estimate");  // cut before its usage chunk
    BOOST_TEST(std::get<2>(rows) > 0);
    BOOST_TEST(db->run_blocking([d](soci::session& sql) { return persistence::count_usage(sql, d, std::nullopt); }) == 1);
    db->close();
}

BOOST_AUTO_TEST_CASE(a_cancelled_non_streamed_call_is_an_estimate_with_its_generation_id) {
    // OpenRouter bills a non-streamed request in full even when the client
    // goes away: the row keeps the generation id, for the cost lookup.
    sim_process sim{{"--latency-ms", "20000", "--tokens-per-second", "0", "--answer-tokens", "6"}};
    parley::test::temp_dir data;
    auto const url = "sqlite:" + (data.path / "p.db").string();
    auto env = install_env(sim, url, data.path);
    {
        parley::test::temp_dir io;
        env["PARLEY_TEST_STDERR"] = (io.path / "stderr").string();
        env["PARLEY_CONFIG"] = "/dev/null";
        child_process chat{"/bin/sh",
                           {"-c", R"(exec "$0" "$@" 2>"$PARLEY_TEST_STDERR")", parley::test::bin_path("parley").string(),
                            "chat", "--user", "hal", "Hola"},
                           env};
        for (int i = 0; i != 200 && sim.get("/sim/counters").at("active").to_number<std::int64_t>() == 0; ++i) {
            std::this_thread::sleep_for(20ms);
        }
        std::this_thread::sleep_for(300ms);  // the 200 and its first padding are out
        chat.signal(SIGINT);
        BOOST_TEST(chat.wait(10s).value_or(-1) == 130);
    }
    auto db = persistence::database::open({.url = url, .pool_size = 1});
    auto row = db->run_blocking([](soci::session& sql) {
        std::string status, source, generation;
        long long input = 0;
        soci::indicator gen_ind = soci::i_ok;
        sql << "SELECT status, cost_source, generation_id, input_tokens FROM ai_usage WHERE user_id = 'hal'",
            soci::into(status), soci::into(source), soci::into(generation, gen_ind), soci::into(input);
        return std::tuple{status, source, gen_ind == soci::i_ok ? generation : std::string{}, input};
    });
    BOOST_TEST(std::get<0>(row) == "cancelled");
    BOOST_TEST(std::get<1>(row) == "estimate");
    BOOST_TEST(std::get<2>(row).starts_with("gen-"));
    BOOST_TEST(std::get<3>(row) > 0);  // the prompt was sent: bytes / 4
    db->close();
}

BOOST_AUTO_TEST_SUITE_END()
