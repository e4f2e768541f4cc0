// ToolRunner: the checks before a call runs (unknown tool, permission,
// arguments), the builtins, a webhook that cannot be reached, and a round
// of calls run concurrently with its outcomes in call order. The circuit
// actor's state transitions. (Webhooks against a real server are in
// tests/integration/assistant_test.cpp.)
#include "actors/circuit.hpp"
#include "actors/rate_limiter.hpp"
#include "actors/tool_runner.hpp"

#include "support/io_fixture.hpp"

#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <memory>

namespace {

using namespace std::chrono_literals;
namespace asio = parley::asio;
namespace actors = parley::actors;
namespace domain = parley::domain;
namespace json = boost::json;
using parley::task;

char const* const registry_text = R"({"tools":[
  {"name":"current_time","handler":{"type":"builtin","name":"current_time"}},
  {"name":"my_usage","permission":"usage","handler":{"type":"builtin","name":"my_usage"}},
  {"name":"weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]},
   "handler":{"type":"http","url":"http://127.0.0.1:1/weather","timeout_ms":500}}
]})";

std::shared_ptr<domain::tool_registry const> registry() {
    auto r = domain::tool_registry::parse(registry_text);
    BOOST_TEST_REQUIRE(r.has_value(), (r ? "" : r.error()));
    return std::make_shared<domain::tool_registry const>(std::move(*r));
}

domain::tool_call call(std::string id, std::string name, std::string args = "") {
    domain::tool_call c;
    c.id = std::move(id);
    c.name = std::move(name);
    c.arguments = std::move(args);
    return c;
}

actors::tool_user user(std::vector<std::string> perms = {}) {
    actors::tool_user u;
    u.id = "ana";
    u.name = "Ana";
    u.permissions = std::move(perms);
    return u;
}

std::string error_of(actors::tool_outcome const& o) {
    return std::string(json::parse(o.content).at("error").as_string());
}

// 2026-12-01 21:57:19 UTC, a Tuesday.
std::chrono::system_clock::time_point const fixed_now =
    std::chrono::sys_days{std::chrono::year{2026} / 12 / 1} + 21h + 57min + 19s;

}  // namespace

BOOST_FIXTURE_TEST_SUITE(tool_runner_suite, parley::test::io_fixture)

BOOST_AUTO_TEST_CASE(calls_that_fail_the_checks_are_refused_and_never_run) {
    run([&]() -> task<void> {
        actors::tool_runner runner{ioc.get_executor(), registry(), {}};
        auto unknown_call = call("1", "rm_rf");
        auto unknown = co_await runner.run(std::move(unknown_call), user());
        BOOST_TEST(!unknown.executed);
        BOOST_TEST(!unknown.ok);
        BOOST_TEST(error_of(unknown).find("unknown tool") != std::string::npos);
        auto forbidden_call = call("2", "my_usage");
        auto forbidden = co_await runner.run(std::move(forbidden_call), user());
        BOOST_TEST(!forbidden.executed);
        BOOST_TEST(error_of(forbidden).find("not allowed") != std::string::npos);
        auto missing_call = call("3", "weather", "{}");
        auto missing = co_await runner.run(std::move(missing_call), user());
        BOOST_TEST(!missing.executed);
        BOOST_TEST(error_of(missing).find("city") != std::string::npos);
        auto garbage_call = call("4", "weather", "{\"city\":");
        auto garbage = co_await runner.run(std::move(garbage_call), user());
        BOOST_TEST(!garbage.executed);
        BOOST_TEST(garbage.call_id == "4");
        BOOST_TEST(garbage.name == "weather");
    });
}

BOOST_AUTO_TEST_CASE(current_time_answers_from_the_clock) {
    run([&]() -> task<void> {
        actors::tool_runner_services ts;
        ts.now = [] { return fixed_now; };
        actors::tool_runner runner{ioc.get_executor(), registry(), ts};
        auto o_call = call("t", "current_time");
        auto o = co_await runner.run(std::move(o_call), user());
        BOOST_TEST(o.ok);
        BOOST_TEST(o.executed);
        auto v = json::parse(o.content);
        BOOST_TEST(v.at("utc").as_string() == "2026-12-01T21:57:19Z");
        BOOST_TEST(v.at("date").as_string() == "2026-12-01");
        BOOST_TEST(v.at("weekday").as_string() == "Tuesday");
        BOOST_TEST(v.at("unix").as_int64() == std::chrono::duration_cast<std::chrono::seconds>(
                                                   fixed_now.time_since_epoch()).count());
    });
}

BOOST_AUTO_TEST_CASE(my_usage_reports_the_callers_window_and_budgets) {
    run([&]() -> task<void> {
        actors::limiter_options lo;
        lo.rate_per_hour = 5;
        lo.daily_per_user = domain::nano_usd{2 * domain::nanos_per_usd};
        auto limiter = actors::spawn<actors::rate_limiter>(ioc.get_executor(), lo);
        actors::admission_request rq;
        rq.user_id = "ana";
        rq.worst_case = domain::nano_usd{domain::nanos_per_usd / 2};
        auto d = co_await limiter->admit(rq);
        BOOST_TEST_REQUIRE(d->admitted);
        co_await limiter->settle(d->ticket, domain::nano_usd{domain::nanos_per_usd / 4});
        actors::tool_runner_services ts;
        ts.limiter = limiter;
        actors::tool_runner runner{ioc.get_executor(), registry(), ts};
        auto o_call = call("u", "my_usage");
        std::vector<std::string> perms;
        perms.emplace_back("usage");
        auto const u = user(perms);
        auto o = co_await runner.run(std::move(o_call), u);
        BOOST_TEST(o.ok);
        auto v = json::parse(o.content);
        BOOST_TEST(v.at("user").as_string() == "ana");
        BOOST_TEST(v.at("requests_last_hour").as_int64() == 1);
        BOOST_TEST(v.at("requests_per_hour_limit").as_int64() == 5);
        BOOST_TEST(v.at("requests_left_this_hour").as_int64() == 4);
        BOOST_TEST(v.at("daily_budget_usd").as_string() == "2.000000");
        BOOST_TEST(v.at("daily_budget_left_usd").as_string() == "1.750000");
        BOOST_TEST(v.at("service_budget_left_today_usd").as_string() == "9.750000");
        BOOST_TEST(!v.as_object().contains("spent_today_usd"));  // no database given
        co_await limiter->shutdown();
    });
}

BOOST_AUTO_TEST_CASE(an_unreachable_webhook_is_a_failure_reported_to_the_model) {
    run([&]() -> task<void> {
        actors::tool_runner runner{ioc.get_executor(), registry(), {}};
        auto o_call = call("w", "weather", R"({"city":"Lima"})");
        auto o = co_await runner.run(std::move(o_call), user());
        BOOST_TEST(o.executed);
        BOOST_TEST(!o.ok);
        BOOST_TEST(error_of(o).find("could not be reached") != std::string::npos, o.content);
    });
}

BOOST_AUTO_TEST_CASE(a_round_keeps_the_call_order_and_reports_each_outcome) {
    run([&]() -> task<void> {
        actors::tool_runner runner{ioc.get_executor(), registry(), {}};
        std::vector<domain::tool_call> calls;
        calls.push_back(call("a", "weather", R"({"city":"Lima"})"));
        calls.push_back(call("b", "current_time"));
        calls.push_back(call("c", "nope"));
        std::vector<std::string> reported;
        auto on_done = [&reported](actors::tool_outcome const& o) { reported.push_back(o.call_id); };
        auto outcomes = co_await runner.run_all(calls, user(), on_done);
        BOOST_REQUIRE(outcomes.size() == 3u);
        BOOST_TEST(outcomes[0].call_id == "a");
        BOOST_TEST(outcomes[1].call_id == "b");
        BOOST_TEST(outcomes[2].call_id == "c");
        BOOST_TEST(outcomes[1].ok);
        BOOST_TEST(!outcomes[2].executed);
        BOOST_TEST(reported.size() == 3u);
        BOOST_TEST(reported.back() == "a");  // the webhook's connect failure comes last
    });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(circuit_actor_suite, parley::test::io_fixture)

BOOST_AUTO_TEST_CASE(failures_open_it_and_a_probe_closes_it) {
    run([&]() -> task<void> {
        auto t = std::make_shared<std::atomic<std::int64_t>>(0);
        auto now = [t] { return actors::circuit::clock::time_point{} + std::chrono::milliseconds{t->load()}; };
        auto c = actors::spawn<actors::circuit>(ioc.get_executor(),
                                                domain::circuit_options{.failure_threshold = 2, .open_for = 100ms}, now);
        bool allowed = co_await c->allow();
        BOOST_TEST(allowed);
        co_await c->report(actors::call_verdict::failure);
        co_await c->report(actors::call_verdict::failure);
        auto st = co_await c->status();
        BOOST_TEST(domain::to_string(st->state) == "open");
        BOOST_TEST(st->consecutive_failures == 2);
        allowed = co_await c->allow();
        BOOST_TEST(!allowed);
        t->store(100);
        allowed = co_await c->allow();
        BOOST_TEST(allowed);  // the probe
        allowed = co_await c->allow();
        BOOST_TEST(!allowed);  // only one
        co_await c->report(actors::call_verdict::abandoned);
        allowed = co_await c->allow();
        BOOST_TEST(allowed);
        co_await c->report(actors::call_verdict::success);
        st = co_await c->status();
        BOOST_TEST(domain::to_string(st->state) == "closed");
        co_await c->stop();
        allowed = co_await c->allow();
        BOOST_TEST(allowed);  // a stopped breaker never blocks calls
    });
}

BOOST_AUTO_TEST_SUITE_END()
