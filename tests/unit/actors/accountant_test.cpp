// The accountant: make_usage_record (pure) for every cost source and every
// fallback, worst_case over the price table, admission with the exempt
// permission, and record/correct_later/shutdown against a real rate limiter,
// a real usage writer (its log in a fresh temporary directory, a real SQLite
// file) and, for the /generation lookups, an OpenRouter client talking to a
// loopback net::http_server. call_results are built by hand.
#include "actors/accountant.hpp"

#include "actors/openrouter_client.hpp"
#include "actors/rate_limiter.hpp"
#include "actors/usage_writer.hpp"
#include "domain/errc.hpp"
#include "domain/pricing.hpp"
#include "domain/usage.hpp"
#include "net/http_server.hpp"
#include "net/openrouter_reader.hpp"
#include "persistence/database.hpp"
#include "persistence/migrations.hpp"
#include "persistence/usage_log.hpp"
#include "persistence/usage_repository.hpp"

#include "support/io_fixture.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/test/unit_test.hpp>

#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace asio = parley::asio;
namespace actors = parley::actors;
namespace domain = parley::domain;
namespace net = parley::net;
namespace persistence = parley::persistence;
namespace http = boost::beast::http;
using parley::task;
using domain::nano_usd;
using sys_time = std::chrono::system_clock::time_point;

sys_time const when = std::chrono::sys_days{std::chrono::year{2026} / 3 / 1} + 9h + 123ms;

// Prices in pico-dollars per token.
domain::model_price price(std::int64_t prompt, std::int64_t completion, std::int64_t cache_read,
                          std::int64_t cache_write) {
    domain::model_price p;
    p.prompt.picos = prompt;
    p.completion.picos = completion;
    p.cache_read.picos = cache_read;
    p.cache_write.picos = cache_write;
    return p;
}

// highest(): prompt 10e-6, completion 50e-6, cache_read 1e-6, cache_write 12.5e-6 USD
// per token, a mix that no single model has.
domain::price_table test_prices() {
    domain::price_table t;
    t.set("t/cheap", price(1'000'000, 2'000'000, 100'000, 1'250'000));
    t.set("t/long-prompt", price(8'000'000, 2'000'000, 0, 0));
    t.set("t/long-output", price(1'000'000, 50'000'000, 0, 0));
    t.set("t/dearest", price(10'000'000, 40'000'000, 1'000'000, 12'500'000));
    return t;
}

nano_usd nanos(std::int64_t n) { return nano_usd{n}; }

net::usage make_usage(int prompt, int completion, std::optional<int> cached = std::nullopt,
                      std::optional<int> cache_write = std::nullopt, std::optional<std::string> cost = std::nullopt) {
    net::usage u;
    u.prompt_tokens = prompt;
    u.completion_tokens = completion;
    u.total_tokens = prompt + completion;
    u.cached_tokens = cached;
    u.cache_write_tokens = cache_write;
    u.cost = std::move(cost);
    return u;
}

net::completion make_completion(std::string model, std::optional<net::usage> usage, std::string text = "hello") {
    net::completion c;
    c.text = std::move(text);
    c.finish_reason = "stop";
    c.model = std::move(model);
    c.generation_id = "gen-1";
    c.provider = "Test";
    c.usage = std::move(usage);
    return c;
}

// A call that succeeded; `cost` is call_result.cost (usage.cost parsed by the client).
actors::call_result succeeded(net::completion c, std::optional<nano_usd> cost = std::nullopt) {
    actors::call_result r;
    r.result = std::move(c);
    r.cost = cost;
    r.request_id = "req-1";
    r.attempts = 1;
    return r;
}

// A call that failed with `code_text`, with what arrived before (if anything).
actors::call_result failed(std::string code_text, std::optional<net::completion> partial = std::nullopt) {
    net::upstream_error e;
    e.code_text = std::move(code_text);
    e.message = "the call failed";
    actors::call_result r;
    r.result = net::completion_result{boost::system::in_place_error, std::move(e)};
    r.partial = std::move(partial);
    r.request_id = "req-1";
    r.attempts = 1;
    return r;
}

actors::call_identity identity(std::string user = "u1") {
    actors::call_identity who;
    who.user_id = std::move(user);
    who.permissions.push_back("chat");
    who.session_id = "sess-1";
    who.conversation_id = "conv-1";
    return who;
}

domain::usage_record record_of(actors::call_result const& r, std::string const& requested = "t/cheap",
                               std::size_t prompt_bytes = 400, actors::call_identity const& who = identity()) {
    return actors::make_usage_record(who, r.request_id, requested, prompt_bytes, r, test_prices(), when);
}

template <class T>
boost::system::error_code error_of(actors::result<T> const& r) {
    return r.has_error() ? r.error() : boost::system::error_code{};
}

}  // namespace

// ------------------------------------------------------------ make_usage_record

BOOST_AUTO_TEST_SUITE(accountant_make_usage_record)

BOOST_AUTO_TEST_CASE(a_success_with_a_provider_cost_is_recorded_at_that_cost) {
    // call_result.cost is what counts for a success (usage.cost text differs on purpose).
    auto r = succeeded(make_completion("t/cheap", make_usage(100, 20, 10, std::nullopt, "0.5")), nanos(123'456'789));
    auto row = record_of(r);
    BOOST_TEST(row.cost == nanos(123'456'789));
    BOOST_TEST(row.source == domain::cost_source::provider);
    BOOST_TEST(row.status == domain::call_status::ok);
    BOOST_TEST(row.request_id == "req-1");
    BOOST_TEST(row.user_id.value_or("(null)") == "u1");
    BOOST_TEST(row.session_id == "sess-1");
    BOOST_TEST(row.conversation_id == "conv-1");
    BOOST_TEST(row.input_tokens == 100);
    BOOST_TEST(row.output_tokens == 20);
    BOOST_TEST(row.cached_tokens == 10);
    BOOST_TEST(row.model == "t/cheap");
    BOOST_TEST(row.generation_id == "gen-1");
    BOOST_TEST((row.created_at == when));
}

BOOST_AUTO_TEST_CASE(usage_without_a_cost_is_priced_from_the_table_with_cached_and_cache_write_tokens) {
    auto r = succeeded(make_completion("t/cheap", make_usage(1000, 200, 300, 100)));
    auto row = record_of(r);
    // (1000 - 300 - 100) x 1e-6 + 300 x 1e-7 + 100 x 1.25e-6 + 200 x 2e-6 = 0.001155 USD
    BOOST_TEST(row.cost == nanos(1'155'000));
    BOOST_TEST(row.source == domain::cost_source::pricing);
    BOOST_TEST(row.status == domain::call_status::ok);
    BOOST_TEST(row.input_tokens == 1000);
    BOOST_TEST(row.output_tokens == 200);
    BOOST_TEST(row.cached_tokens == 300);
}

BOOST_AUTO_TEST_CASE(a_failed_stream_whose_partial_has_usage_with_a_cost_is_recorded_at_the_provider_cost) {
    auto r = failed("stream_ended_early", make_completion("t/cheap", make_usage(50, 7, std::nullopt, std::nullopt, "0.012207")));
    auto row = record_of(r);
    BOOST_TEST(row.cost == nanos(12'207'000));
    BOOST_TEST(row.source == domain::cost_source::provider);
    BOOST_TEST(row.status == domain::call_status::error);
    BOOST_TEST(row.input_tokens == 50);
    BOOST_TEST(row.output_tokens == 7);
    BOOST_TEST(row.cached_tokens == 0);
    BOOST_TEST(row.generation_id == "gen-1");
}

BOOST_AUTO_TEST_CASE(a_failed_stream_whose_partial_usage_cost_does_not_parse_is_priced_from_the_table) {
    auto r = failed("stream_ended_early", make_completion("t/cheap", make_usage(50, 7, std::nullopt, std::nullopt, "-1")));
    auto row = record_of(r);
    BOOST_TEST(row.cost == nanos(64'000));  // 50 x 1e-6 + 7 x 2e-6
    BOOST_TEST(row.source == domain::cost_source::pricing);
}

BOOST_AUTO_TEST_CASE(a_partial_without_usage_is_estimated_from_bytes_over_four_rounded_up) {
    auto partial = make_completion("t/cheap", std::nullopt, "abcdefghi");  // 9 bytes
    partial.reasoning = "xy";                                             // 2
    net::tool_call t;
    t.id = "call-1";
    t.name = "get";       // 3
    t.arguments = "{\"\"}";  // 4
    partial.tool_calls.push_back(t);
    auto r = failed("chunk_gap_timeout", partial);
    auto row = record_of(r, "t/cheap", 401);
    BOOST_TEST(row.input_tokens == 101);  // ceil(401 / 4)
    BOOST_TEST(row.output_tokens == 5);   // ceil(18 / 4)
    BOOST_TEST(row.cached_tokens == 0);
    BOOST_TEST(row.cost == nanos(111'000));  // 101 x 1e-6 + 5 x 2e-6
    BOOST_TEST(row.source == domain::cost_source::estimate);
    BOOST_TEST(row.status == domain::call_status::error);
    BOOST_TEST(row.generation_id == "gen-1");  // kept for the later correction

    auto exact = record_of(failed("chunk_gap_timeout", make_completion("t/cheap", std::nullopt, "abcdefgh")), "t/cheap", 400);
    BOOST_TEST(exact.input_tokens == 100);  // multiples of four are not rounded up
    BOOST_TEST(exact.output_tokens == 2);
}

BOOST_AUTO_TEST_CASE(a_cancelled_call_with_a_partial_is_an_estimate_with_status_cancelled) {
    auto row = record_of(failed("cancelled", make_completion("t/cheap", std::nullopt, "abcde")), "t/cheap", 8);
    BOOST_TEST(row.status == domain::call_status::cancelled);
    BOOST_TEST(row.source == domain::cost_source::estimate);
    BOOST_TEST(row.input_tokens == 2);
    BOOST_TEST(row.output_tokens == 2);
    BOOST_TEST(row.cost == nanos(6'000));  // 2 x 1e-6 + 2 x 2e-6
}

BOOST_AUTO_TEST_CASE(a_success_without_usage_is_an_estimate_with_status_ok) {
    auto row = record_of(succeeded(make_completion("t/cheap", std::nullopt, "abcd")), "t/cheap", 4);
    BOOST_TEST(row.status == domain::call_status::ok);
    BOOST_TEST(row.source == domain::cost_source::estimate);
    BOOST_TEST(row.cost == nanos(3'000));  // 1 x 1e-6 + 1 x 2e-6
}

BOOST_AUTO_TEST_CASE(a_failure_before_anything_was_read_costs_nothing_and_names_the_requested_model) {
    for (auto const* code : {"connect_failed", "cancelled"}) {
        BOOST_TEST_CONTEXT(code) {
            auto row = record_of(failed(code), "t/long-output", 1000);
            BOOST_TEST(row.cost == nanos(0));
            BOOST_TEST(row.source == domain::cost_source::pricing);
            BOOST_TEST(row.model == "t/long-output");
            BOOST_TEST(row.input_tokens == 0);
            BOOST_TEST(row.output_tokens == 0);
            BOOST_TEST(row.generation_id.empty());
            BOOST_TEST(row.status == (std::string{code} == "cancelled" ? domain::call_status::cancelled
                                                                        : domain::call_status::error));
        }
    }
}

BOOST_AUTO_TEST_CASE(an_answer_naming_no_model_is_recorded_and_priced_as_the_requested_model) {
    auto row = record_of(failed("connection_closed", make_completion("", std::nullopt, "abcd")), "t/long-output", 8);
    BOOST_TEST(row.model == "t/long-output");
    BOOST_TEST(row.cost == nanos(52'000));  // 2 x 1e-6 + 1 x 50e-6
}

BOOST_AUTO_TEST_CASE(the_price_is_the_served_models_then_the_requested_models_then_the_highest) {
    auto const usage = make_usage(10, 10);
    auto served = record_of(succeeded(make_completion("t/dearest", usage)), "t/cheap");
    BOOST_TEST(served.cost == nanos(500'000));  // 10 x 10e-6 + 10 x 40e-6
    BOOST_TEST(served.model == "t/dearest");
    auto variant = record_of(succeeded(make_completion("t/dearest:beta", usage)), "t/cheap");
    BOOST_TEST(variant.cost == nanos(500'000));  // the ":variant" suffix is dropped for the lookup
    BOOST_TEST(variant.model == "t/dearest:beta");
    auto requested = record_of(succeeded(make_completion("x/unknown", usage)), "t/cheap");
    BOOST_TEST(requested.cost == nanos(30'000));  // 10 x 1e-6 + 10 x 2e-6
    BOOST_TEST(requested.model == "x/unknown");   // the row still names what served
    auto highest = record_of(succeeded(make_completion("x/unknown", usage)), "y/unknown");
    BOOST_TEST(highest.cost == nanos(600'000));  // 10 x 10e-6 + 10 x 50e-6: the field-wise maximum
}

BOOST_AUTO_TEST_CASE(values_longer_than_their_columns_are_cut_to_the_limits) {
    actors::call_identity who;
    who.user_id = std::string(300, 'u');
    who.session_id = std::string(300, 's');
    who.conversation_id = std::string(300, 'c');
    auto c = make_completion(std::string(150, 'm'), make_usage(1, 1));
    c.generation_id = std::string(300, 'g');
    auto r = succeeded(c, nanos(1'000));
    r.request_id = std::string(300, 'r');
    auto row = record_of(r, "t/cheap", 4, who);
    BOOST_TEST(row.request_id == std::string(domain::max_request_id_bytes, 'r'));
    BOOST_TEST(row.user_id.value_or("") == std::string(domain::max_user_id_bytes, 'u'));
    BOOST_TEST(row.session_id == std::string(domain::max_session_id_bytes, 's'));
    BOOST_TEST(row.conversation_id == std::string(domain::max_conversation_id_bytes, 'c'));
    BOOST_TEST(row.model == std::string(domain::max_model_bytes, 'm'));
    BOOST_TEST(row.generation_id == std::string(domain::max_generation_id_bytes, 'g'));

    // Values at the limit are kept whole.
    who.user_id = std::string(domain::max_user_id_bytes, 'v');
    auto at_limit = record_of(r, "t/cheap", 4, who);
    BOOST_TEST(at_limit.user_id.value_or("") == who.user_id);
}

BOOST_AUTO_TEST_CASE(values_are_cut_at_a_utf8_character_boundary) {
    actors::call_identity who;
    std::string e_acute = "\xc3\xa9";  // é, two bytes
    for (int i = 0; i != 128; ++i) who.user_id += e_acute;  // 256 bytes: one byte over the column
    who.session_id = "s";
    auto r = succeeded(make_completion("t/cheap", make_usage(1, 1)), nanos(1'000));
    r.request_id = "req";
    auto row = record_of(r, "t/cheap", 4, who);
    BOOST_TEST(row.user_id->size() == 254u);  // 127 whole characters, not 255 bytes ending in half of one
    BOOST_TEST(row.user_id->substr(252) == e_acute);
}

BOOST_AUTO_TEST_CASE(an_anonymous_call_has_no_user_and_a_call_without_a_session_uses_the_request_id) {
    actors::call_identity who;  // no user, no session, no conversation
    auto r = succeeded(make_completion("t/cheap", make_usage(1, 1)), nanos(1'000));
    r.request_id = "req-anon";
    auto row = record_of(r, "t/cheap", 4, who);
    BOOST_TEST(!row.user_id.has_value());
    BOOST_TEST(row.session_id == "req-anon");
    BOOST_TEST(row.conversation_id.empty());

    r.request_id = std::string(300, 'q');  // the fallback is cut to the session column
    auto longer = record_of(r, "t/cheap", 4, who);
    BOOST_TEST(longer.session_id == std::string(domain::max_session_id_bytes, 'q'));
}

BOOST_AUTO_TEST_SUITE_END()

// ------------------------------------------------------------ worst_case

namespace {

struct pricing_fixture {
    asio::io_context ioc;
    actors::accountant acct{ioc.get_executor(), nullptr, nullptr, nullptr, options()};

    static actors::accounting_options options() {
        actors::accounting_options o;
        o.prices = test_prices();
        return o;
    }
    nano_usd worst(std::size_t bytes, std::vector<std::string> const& models, std::int64_t max_tokens) const {
        return acct.worst_case(bytes, models, max_tokens);
    }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(accountant_worst_case, pricing_fixture)

BOOST_AUTO_TEST_CASE(one_known_model_costs_each_prompt_byte_at_its_dearer_prompt_or_cache_write_price) {
    // 1000 x max(1e-6, 1.25e-6) + 100 x 2e-6 = 0.00145 USD
    BOOST_TEST(worst(1000, {"t/cheap"}, 100) == nanos(1'450'000));
    BOOST_TEST(worst(1000, {"t/long-prompt"}, 100) == nanos(8'200'000));  // 1000 x 8e-6 + 100 x 2e-6
    BOOST_TEST(worst(0, {"t/cheap"}, 0) == nanos(0));
}

BOOST_AUTO_TEST_CASE(several_models_are_priced_at_the_dearest_of_each_price) {
    // max prompt 8e-6 (long-prompt), max completion 50e-6 (long-output):
    // 1000 x 8e-6 + 100 x 50e-6 = 0.013 USD, dearer than either model alone.
    BOOST_TEST(worst(1000, {"t/long-prompt", "t/long-output"}, 100) == nanos(13'000'000));
    BOOST_TEST(worst(1000, {"t/long-output", "t/long-prompt"}, 100) == nanos(13'000'000));
    BOOST_TEST(worst(1000, {"t/cheap", "t/cheap"}, 100) == nanos(1'450'000));
}

BOOST_AUTO_TEST_CASE(an_unknown_model_and_an_empty_list_are_priced_at_the_highest_prices) {
    // 1000 x max(10e-6, 12.5e-6) + 100 x 50e-6 = 0.0175 USD
    BOOST_TEST(worst(1000, {"x/unknown"}, 100) == nanos(17'500'000));
    BOOST_TEST(worst(1000, {"t/cheap", "x/unknown"}, 100) == nanos(17'500'000));
    BOOST_TEST(worst(1000, {}, 100) == nanos(17'500'000));
    BOOST_TEST(worst(1000, {"t/dearest:beta"}, 100) == nanos(16'500'000));  // a variant is its base model: 12.5e-3 + 4e-3
}

BOOST_AUTO_TEST_CASE(the_worst_case_is_never_below_the_priced_cost_of_a_call_within_its_bounds) {
    // 400 prompt bytes may be 400 tokens, all of them cache writes: the dearest call there is.
    auto const bound = worst(400, {"t/cheap"}, 50);
    auto r = succeeded(make_completion("t/cheap", make_usage(400, 50, 0, 400)));
    auto row = record_of(r);
    BOOST_TEST(row.cost <= bound);
    BOOST_TEST(row.cost == nanos(600'000));  // 400 x 1.25e-6 + 50 x 2e-6
    BOOST_TEST(bound == nanos(600'000));
}

BOOST_AUTO_TEST_SUITE_END()

// ------------------------------------------------------------ admission, record, corrections

namespace {

task<void> sleep_for(std::chrono::milliseconds d) {
    asio::steady_timer t{co_await asio::this_coro::executor, d};
    co_await t.async_wait(parley::use_nothrow);
}

// A loopback stand-in for OpenRouter's GET /api/v1/generation: the first
// `misses` requests are answered 404 (no cost yet), later ones with
// total_cost 0.5 (0.25 for gen-old).
struct generation_server {
    std::shared_ptr<std::atomic<int>> hits = std::make_shared<std::atomic<int>>(0);
    std::unique_ptr<net::http_server> server;

    generation_server(asio::any_io_executor ex, int misses) {
        auto counter = hits;
        net::handler h = [counter, misses](net::request& req, net::exchange& ex) -> task<void> {
            int const n = ++*counter;
            std::string const target{req.target()};
            bool const old = target.find("gen-old") != std::string::npos;
            bool const generation = target.starts_with("/api/v1/generation?id=");
            if (!generation || n <= misses) {
                net::response res{http::status::not_found, 11};
                res.body() = R"({"error":{"code":404,"message":"Generation not found"}})";
                co_await ex.respond(std::move(res));
                co_return;
            }
            net::response res{http::status::ok, 11};
            res.set(http::field::content_type, "application/json");
            res.body() = old ? R"({"data":{"id":"gen-old","total_cost":0.25}})"
                             : R"({"data":{"id":"gen-est","total_cost":0.5}})";
            co_await ex.respond(std::move(res));
        };
        server = std::make_unique<net::http_server>(ex, net::server_options{}, std::move(h));
        server->start();
    }
    std::string base_url() const {
        return "http://127.0.0.1:" + std::to_string(server->local_endpoint().port()) + "/api/v1";
    }
};

// A real limiter, writer (usage log and SQLite in a fresh temporary
// directory) and accountant on the fixture's io_context.
struct stack_fixture : parley::test::io_fixture {
    fs::path root;
    std::shared_ptr<persistence::database> db;
    std::shared_ptr<persistence::usage_log> log;
    std::shared_ptr<actors::usage_writer> writer;
    std::shared_ptr<actors::rate_limiter> limiter;

    stack_fixture() {
        std::string pattern = (fs::temp_directory_path() / "parley-accountant-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) {
            throw std::runtime_error("cannot create a temporary directory from " + pattern);
        }
        root = pattern;
        db = persistence::database::open({.url = "sqlite:" + (root / "usage.db").string(), .pool_size = 1});
        db->run_blocking([d = db->kind()](soci::session& sql) { persistence::migrate(sql, d); });
        log = persistence::usage_log::open({.dir = root / "log"});
        actors::usage_writer_options wo;
        wo.flush_interval = 5ms;
        wo.fsync_interval = 1ms;
        writer = actors::spawn<actors::usage_writer>(ioc.get_executor(), log, db, wo);
        writer->schema_ready();
        actors::limiter_options lo;
        lo.rate_per_hour = 100;
        lo.daily_global = nanos(10 * domain::nanos_per_usd);
        lo.daily_per_user = nanos(domain::nanos_per_usd);
        limiter = actors::spawn<actors::rate_limiter>(ioc.get_executor(), lo);
    }
    ~stack_fixture() {
        writer.reset();
        limiter.reset();
        log.reset();
        if (db) {
            db->close();
        }
        db.reset();
        std::error_code ec;
        fs::remove_all(root, ec);
    }

    std::shared_ptr<actors::accountant> make(std::shared_ptr<actors::openrouter_client> client = nullptr,
                                             actors::accounting_options o = pricing_fixture::options()) {
        return std::make_shared<actors::accountant>(ioc.get_executor(), limiter, writer, std::move(client), std::move(o));
    }
    std::shared_ptr<actors::openrouter_client> make_client(std::string base_url) {
        actors::openrouter_options oo;
        oo.base_url = std::move(base_url);
        oo.api_key = "sk-test";
        oo.connect_timeout = 2s;
        oo.first_byte_timeout = 2s;
        return std::make_shared<actors::openrouter_client>(ioc.get_executor(), oo);
    }
    std::optional<domain::usage_record> stored(std::string const& id) {
        auto const d = db->kind();
        return db->run_blocking([d, id](soci::session& sql) { return persistence::find_usage(sql, d, id); });
    }
    // Stops the actors of the fixture (from the test coroutine).
    task<void> stop_all() {
        co_await writer->shutdown(5s);
        co_await limiter->shutdown();
    }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(accountant_calls, stack_fixture)

BOOST_AUTO_TEST_CASE(the_exempt_permission_skips_the_hourly_window_but_nobody_else_does) {
    actors::limiter_options lo;
    lo.rate_per_hour = 1;
    lo.daily_global = nanos(domain::nanos_per_usd);
    auto strict = actors::spawn<actors::rate_limiter>(ioc.get_executor(), lo);
    auto plain = identity("plain");
    auto exempt = identity("boss");
    exempt.permissions.push_back("unlimited");
    actors::accountant acct{ioc.get_executor(), strict, writer, nullptr, pricing_fixture::options()};
    auto no_exempt_options = pricing_fixture::options();
    no_exempt_options.exempt_permission.clear();
    actors::accountant nobody_exempt{ioc.get_executor(), strict, writer, nullptr, no_exempt_options};
    auto empty_permission = identity("empty");
    empty_permission.permissions.push_back("");  // an empty exempt_permission matches nothing, not even ""
    auto exempt_elsewhere = identity("boss2");
    exempt_elsewhere.permissions.push_back("unlimited");
    run([&]() -> task<void> {
        for (int i = 0; i != 3; ++i) {
            auto d = co_await acct.admit(exempt, nanos(1'000));
            BOOST_TEST_REQUIRE(d.has_value());
            BOOST_TEST(d->admitted, "exempt admission " << i);
        }
        auto first = co_await acct.admit(plain, nanos(1'000));
        BOOST_TEST(first->admitted);
        auto second = co_await acct.admit(plain, nanos(1'000));
        BOOST_TEST(!second->admitted);
        BOOST_TEST(second->code == "rate_limited");
        auto e1 = co_await nobody_exempt.admit(empty_permission, nanos(1'000));
        BOOST_TEST(e1->admitted);
        auto e2 = co_await nobody_exempt.admit(empty_permission, nanos(1'000));
        BOOST_TEST(!e2->admitted);
        auto b1 = co_await nobody_exempt.admit(exempt_elsewhere, nanos(1'000));
        BOOST_TEST(b1->admitted);
        auto b2 = co_await nobody_exempt.admit(exempt_elsewhere, nanos(1'000));
        BOOST_TEST(!b2->admitted);  // "unlimited" means nothing to this accountant
        BOOST_TEST(b2->code == "rate_limited");
        // The budgets apply to the exempt too.
        auto dear = co_await acct.admit(exempt, nanos(2 * domain::nanos_per_usd));
        BOOST_TEST(!dear->admitted);
        BOOST_TEST(dear->code == "budget_exhausted");
        co_await strict->shutdown();
        co_await stop_all();
    });
}

BOOST_AUTO_TEST_CASE(record_logs_the_row_and_settles_the_reservation_to_its_cost) {
    auto acct = make();
    std::string const user = "u1";
    auto who = identity(user);
    auto r = succeeded(make_completion("t/cheap", make_usage(100, 20)), nanos(123'000));
    r.request_id = "req-acct-1";
    std::vector<std::string> models;
    models.push_back("t/cheap");
    std::string const requested = "t/cheap";
    std::optional<domain::usage_record> row;
    run([&]() -> task<void> {
        auto const worst = acct->worst_case(400, models, 100);
        auto adm = co_await acct->admit(who, worst);
        BOOST_TEST_REQUIRE(adm.has_value());
        BOOST_TEST_REQUIRE(adm->admitted);
        auto held = co_await limiter->snapshot(user);
        BOOST_TEST(held->global_reserved == worst);
        BOOST_TEST(held->user_reserved == worst);
        BOOST_TEST(held->open_tickets == 1u);
        auto recorded = co_await acct->record(who, *adm, requested, 400, r);
        BOOST_TEST_REQUIRE(recorded.has_value());
        row = *recorded;
        auto settled = co_await limiter->snapshot(user);
        BOOST_TEST(settled->global_reserved == nanos(0));
        BOOST_TEST(settled->user_reserved == nanos(0));
        BOOST_TEST(settled->global_spent == nanos(123'000));
        BOOST_TEST(settled->user_spent == nanos(123'000));
        BOOST_TEST(settled->open_tickets == 0u);
        BOOST_TEST(settled->window_used == 1);
        auto s = co_await writer->stats();
        BOOST_TEST(s->logged == 1u);  // in the log when record() returned
        auto flushed = co_await writer->flush(10s);
        BOOST_TEST(flushed.has_value());
        co_await acct->shutdown();
        co_await stop_all();
    });
    BOOST_TEST_REQUIRE(row.has_value());
    BOOST_TEST(row->cost == nanos(123'000));
    BOOST_TEST(row->source == domain::cost_source::provider);
    BOOST_TEST(row->user_id.value_or("") == "u1");
    auto got = stored("req-acct-1");
    BOOST_TEST_REQUIRE(got.has_value());
    BOOST_TEST(got->cost == row->cost);
    BOOST_TEST(got->source == domain::cost_source::provider);
    BOOST_TEST(got->session_id == "sess-1");
    BOOST_TEST(got->model == "t/cheap");
}

BOOST_AUTO_TEST_CASE(record_with_the_writer_stopped_returns_its_error_and_still_settles_the_reservation) {
    auto acct = make();
    std::string const user = "u2";
    auto who = identity(user);
    auto r = succeeded(make_completion("t/cheap", make_usage(100, 20)), nanos(77'000));
    r.request_id = "req-lost";
    std::string const requested = "t/cheap";
    run([&]() -> task<void> {
        co_await writer->shutdown(5s);
        auto adm = co_await acct->admit(who, nanos(500'000));
        BOOST_TEST_REQUIRE(adm->admitted);
        auto recorded = co_await acct->record(who, *adm, requested, 400, r);
        BOOST_TEST(!recorded.has_value());
        auto const ec = error_of(recorded);
        BOOST_TEST((ec == make_error_code(parley::errc::actor_stopped) ||
                    ec == make_error_code(parley::errc::usage_log_failed)),
                   ec.message());
        auto snap = co_await limiter->snapshot(user);
        BOOST_TEST(snap->global_reserved == nanos(0));
        BOOST_TEST(snap->user_reserved == nanos(0));
        BOOST_TEST(snap->global_spent == nanos(77'000));  // the spend is real even if its row is lost
        BOOST_TEST(snap->open_tickets == 0u);
        co_await acct->shutdown();
        co_await limiter->shutdown();
    });
    BOOST_TEST(!stored("req-lost").has_value());
}

BOOST_AUTO_TEST_CASE(without_a_client_estimates_are_never_looked_up_and_shutdown_returns_at_once) {
    auto acct = make();
    auto who = identity("u3");
    auto r = failed("stream_ended_early", make_completion("t/cheap", std::nullopt, "abcd"));
    r.request_id = "req-est";
    std::string const requested = "t/cheap";
    std::vector<std::pair<std::string, std::string>> earlier;
    earlier.emplace_back("req-older", "gen-older");
    run([&]() -> task<void> {
        auto adm = co_await acct->admit(who, nanos(500'000));
        BOOST_TEST_REQUIRE(adm->admitted);
        auto recorded = co_await acct->record(who, *adm, requested, 8, r);
        BOOST_TEST_REQUIRE(recorded.has_value());
        BOOST_TEST(recorded->source == domain::cost_source::estimate);
        BOOST_TEST(recorded->generation_id == "gen-1");
        acct->correct_later(std::move(earlier));  // a no-op without a client
        auto const start = std::chrono::steady_clock::now();
        co_await acct->shutdown(30s);
        BOOST_TEST((std::chrono::steady_clock::now() - start < 30s));  // nothing ran: no wait
        auto flushed = co_await writer->flush(10s);
        BOOST_TEST(flushed.has_value());
        auto s = co_await writer->stats();
        BOOST_TEST(s->logged == 1u);  // the record, no correction
        BOOST_TEST(s->corrected == 0u);
        co_await stop_all();
    });
    auto got = stored("req-est");
    BOOST_TEST_REQUIRE(got.has_value());
    BOOST_TEST(got->source == domain::cost_source::estimate);
}

BOOST_AUTO_TEST_CASE(an_estimate_is_corrected_from_generation_and_a_higher_real_cost_is_added_to_the_budgets) {
    generation_server gen{ioc.get_executor(), 1};  // the first lookup finds no cost yet
    // An estimate left by an earlier run, corrected without touching the budgets.
    auto old = record_of(failed("stream_ended_early", make_completion("t/cheap", std::nullopt, "abcd")), "t/cheap", 8);
    old.request_id = "req-old";
    old.generation_id = "gen-old";
    db->run_blocking([d = db->kind(), &old](soci::session& sql) {
        std::vector<domain::usage_record> rows{old};
        persistence::insert_usage(sql, d, rows);
    });
    std::shared_ptr<actors::openrouter_client> client = make_client(gen.base_url());
    auto o = pricing_fixture::options();
    o.correction_delay = 1ms;
    o.correction_attempts = 4;
    auto acct = make(client, o);
    std::string const user = "u4";
    auto who = identity(user);
    auto r = failed("stream_ended_early", make_completion("t/cheap", std::nullopt, "abcd"));
    r.request_id = "req-est";
    r.partial->generation_id = "gen-est";
    std::string const requested = "t/cheap";
    std::vector<std::pair<std::string, std::string>> earlier;
    earlier.emplace_back("req-old", "gen-old");
    std::optional<domain::usage_record> row;
    run_and_stop([&]() -> task<void> {
        auto adm = co_await acct->admit(who, nanos(domain::nanos_per_usd / 2));
        BOOST_TEST_REQUIRE(adm->admitted);
        auto recorded = co_await acct->record(who, *adm, requested, 8, r);
        BOOST_TEST_REQUIRE(recorded.has_value());
        row = *recorded;
        // The correction is logged, then the budgets get the difference.
        nano_usd const real = nanos(domain::nanos_per_usd / 2);
        std::optional<actors::limits_snapshot> snap;
        for (int i = 0; i != 2000; ++i) {
            auto got = co_await limiter->snapshot(user);
            snap = *got;
            bool const done = snap->global_spent == real;
            if (done) {
                break;
            }
            co_await sleep_for(2ms);
        }
        BOOST_TEST(snap->global_spent == real);  // the estimate settled, then (0.5 - estimate) added
        BOOST_TEST(snap->user_spent == real);
        auto logged = co_await writer->stats();
        BOOST_TEST(logged->logged == 2u);
        acct->correct_later(std::move(earlier));
        auto both = [](actors::usage_writer_stats const& s) { return s.logged == 3; };
        for (int i = 0; i != 2000; ++i) {
            auto s = co_await writer->stats();
            bool const done = both(*s);
            if (done) {
                break;
            }
            co_await sleep_for(2ms);
        }
        co_await acct->shutdown();  // no lookup runs any more: whatever it told the limiter is queued
        auto flushed = co_await writer->flush(10s);
        BOOST_TEST(flushed.has_value());
        auto s = co_await writer->stats();
        BOOST_TEST(s->logged == 3u);
        BOOST_TEST(s->corrected == 2u);
        auto after = co_await limiter->snapshot(user);
        BOOST_TEST(after->global_spent == real);  // an earlier run's row: the budgets are not adjusted
        co_await client->shutdown();
        co_await stop_all();
        gen.server->stop();
    }, 20s);
    BOOST_TEST(gen.hits->load() == 3);  // one miss, then one lookup per estimate
    BOOST_TEST_REQUIRE(row.has_value());
    BOOST_TEST(row->source == domain::cost_source::estimate);
    BOOST_TEST(row->cost == nanos(4'000));  // 2 x 1e-6 + 1 x 2e-6
    auto est = stored("req-est");
    BOOST_TEST_REQUIRE(est.has_value());
    BOOST_TEST(est->source == domain::cost_source::provider);
    BOOST_TEST(est->cost == nanos(domain::nanos_per_usd / 2));
    auto older = stored("req-old");
    BOOST_TEST_REQUIRE(older.has_value());
    BOOST_TEST(older->source == domain::cost_source::provider);
    BOOST_TEST(older->cost == nanos(domain::nanos_per_usd / 4));
}

BOOST_AUTO_TEST_CASE(shutdown_cancels_the_lookups_still_waiting_and_later_ones_are_not_started) {
    generation_server gen{ioc.get_executor(), 0};
    auto client = make_client(gen.base_url());
    auto o = pricing_fixture::options();
    o.correction_delay = 1h;  // never reached: shutdown cancels the wait
    auto acct = make(client, o);
    auto who = identity("u5");
    auto r = failed("cancelled", make_completion("t/cheap", std::nullopt, "abcd"));
    r.request_id = "req-wait";
    std::string const requested = "t/cheap";
    std::vector<std::pair<std::string, std::string>> earlier;
    earlier.emplace_back("req-old", "gen-old");
    std::vector<std::pair<std::string, std::string>> too_late;
    too_late.emplace_back("req-late", "gen-late");
    run_and_stop([&]() -> task<void> {
        auto adm = co_await acct->admit(who, nanos(500'000));
        BOOST_TEST_REQUIRE(adm->admitted);
        auto recorded = co_await acct->record(who, *adm, requested, 8, r);
        BOOST_TEST_REQUIRE(recorded.has_value());
        BOOST_TEST(recorded->status == domain::call_status::cancelled);
        acct->correct_later(std::move(earlier));
        auto const start = std::chrono::steady_clock::now();
        co_await acct->shutdown(10s);
        BOOST_TEST((std::chrono::steady_clock::now() - start < 10s));  // cancelled, not abandoned after the wait
        acct->correct_later(std::move(too_late));  // after shutdown: not scheduled
        auto again = co_await writer->stats();
        BOOST_TEST(again->logged == 1u);
        co_await acct->shutdown(10s);  // a second shutdown has nothing to wait for
        co_await client->shutdown();
        co_await stop_all();
        gen.server->stop();
    }, 20s);
    BOOST_TEST(gen.hits->load() == 0);  // no lookup was made
}

BOOST_AUTO_TEST_SUITE_END()
