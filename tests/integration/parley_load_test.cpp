// parley-load (tools/parley-load, issue #8) driven as a user runs it: the
// real binary against a real simulator and a real `parley serve`, its JSON
// report read back. What it counts must be what the servers did.
#include "support/nats_server.hpp"
#include "support/parley_server.hpp"

#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

namespace {

using namespace parley::test;
using namespace std::chrono_literals;
namespace json = boost::json;

struct run_result {
    int exit_code = -1;
    std::string output;
    json::object report;  // the last output line, when it is JSON
};

run_result run_load(std::vector<std::string> args, std::map<std::string, std::optional<std::string>> env = {}) {
    child_process p{bin_path("parley-load"), std::move(args), std::move(env)};
    run_result r;
    auto code = p.wait(60s);
    BOOST_REQUIRE_MESSAGE(code.has_value(), "parley-load did not finish within 60 s");
    r.exit_code = *code;
    r.output = p.output();
    auto const body = r.output.substr(0, r.output.find_last_not_of('\n') + 1);
    auto const last = body.substr(body.rfind('\n') + 1);  // npos + 1 == 0: the whole text
    boost::system::error_code ec;
    auto v = json::parse(last, ec);
    if (!ec && v.is_object()) r.report = v.as_object();
    return r;
}

std::int64_t num(json::object const& o, char const* key) { return o.at(key).to_number<std::int64_t>(); }

std::string sim_url(sim_process const& s) {
    return "http://127.0.0.1:" + std::to_string(s.port) + "/api/v1/chat/completions";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(parley_load)

BOOST_AUTO_TEST_CASE(a_closed_loop_counts_every_answer_and_its_usage) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "0", "--answer-tokens", "12"}};
    auto r = run_load({"http", "--url", sim_url(sim), "--header", "Authorization: Bearer x", "--concurrency", "4",
                       "--max-requests", "300", "--json", "--quiet", "--watch-pid", std::to_string(sim.proc.pid())});
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
    auto const& o = r.report;
    BOOST_TEST(num(o, "ok") == 300);
    BOOST_TEST(num(o, "failed") == 0);
    BOOST_TEST(num(o, "connections") == 4);  // keep-alive: one connection per caller
    BOOST_TEST(num(o.at("latency_ms").as_object(), "count") == 300);
    BOOST_TEST(num(o, "usage_tokens") == 300 * 12);
    auto const& w = o.at("watched").as_object();
    BOOST_TEST(w.at("cpu_s").to_number<double>() > 0.0);
    BOOST_TEST(num(w, "rss_peak_kib") >= num(w, "rss_start_kib"));
    BOOST_TEST(o.at("latency_ms").at("p50").to_number<double>() <= o.at("latency_ms").at("p99").to_number<double>());
}

BOOST_AUTO_TEST_CASE(an_open_loop_stream_counts_tokens_gaps_and_time_to_first_token) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "200", "--answer-tokens", "10"}};
    auto r = run_load({"http", "--url", sim_url(sim), "--header", "Authorization: Bearer x", "--rate", "50",
                       "--duration-s", "1", "--stream", "--json", "--quiet"});
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
    auto const& o = r.report;
    BOOST_TEST(num(o, "ok") == 50);
    BOOST_TEST(num(o, "tokens") == 50 * 10);
    BOOST_TEST(num(o, "usage_tokens") == 50 * 10);
    BOOST_TEST(num(o.at("ttft_ms").as_object(), "count") == 50);
    BOOST_TEST(num(o.at("gap_ms").as_object(), "count") == 50 * 9);
    // Paced at 200 tokens/s: the gaps are about 5 ms, never near zero for most.
    auto const p50 = o.at("gap_ms").at("p50").to_number<double>();
    BOOST_TEST(p50 > 2.0);
    BOOST_TEST(p50 < 50.0);
    BOOST_TEST(o.at("offered_rps").to_number<double>() == 50.0);
}

BOOST_AUTO_TEST_CASE(failures_are_counted_by_code) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "0"}};
    auto r = run_load({"http", "--url", sim_url(sim), "--header", "Authorization: Bearer x", "--header",
                       "X-Sim-Fault: 503", "--concurrency", "2", "--max-requests", "20", "--json", "--quiet"});
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
    BOOST_TEST(num(r.report, "ok") == 0);
    BOOST_TEST(num(r.report.at("errors").as_object(), "http_503") == 20);
    auto cut = run_load({"http", "--url", sim_url(sim), "--header", "Authorization: Bearer x", "--header",
                         "X-Sim-Fault: mid-stream-error", "--stream", "--concurrency", "1", "--max-requests", "5",
                         "--json", "--quiet"});
    BOOST_TEST(num(cut.report.at("errors").as_object(), "stream_error") == 5);
    // Nothing listening: refused connections, and the run still ends.
    auto const port = free_loopback_port();
    auto none = run_load({"http", "--url", "http://127.0.0.1:" + std::to_string(port) + "/x", "--concurrency", "1",
                          "--max-requests", "3", "--json", "--quiet"});
    BOOST_TEST(num(none.report.at("errors").as_object(), "connect_connection_refused") == 3);
}

BOOST_AUTO_TEST_CASE(bad_options_are_refused_with_one_line) {
    auto r = run_load({"http", "--url", "http://127.0.0.1:1/x", "--rate", "-5"});
    BOOST_TEST(r.exit_code == 2);
    BOOST_TEST(r.output.find("--rate -5: expected a number") != std::string::npos, r.output);
    auto both = run_load({"http", "--url", "http://127.0.0.1:1/x", "--rate", "5", "--concurrency", "2"});
    BOOST_TEST(both.exit_code == 2);
    auto ws = run_load({"ws", "--url", "ws://127.0.0.1:1/v1/ws"});
    BOOST_TEST(ws.exit_code == 2);
    BOOST_TEST(ws.output.find("needs --token or --secret") != std::string::npos, ws.output);
    auto tls = run_load({"http", "--url", "https://127.0.0.1:1/x"});
    BOOST_TEST(tls.exit_code == 2);
    auto env = run_load({"ws", "--url", "ws://127.0.0.1:1/v1/ws", "--secret-env", "PARLEY_LOAD_TEST_UNSET"},
                        {{"PARLEY_LOAD_TEST_UNSET", std::nullopt}});
    BOOST_TEST(env.exit_code == 2);
}

BOOST_AUTO_TEST_CASE(websocket_sessions_against_parley_record_every_turn) {
    serve_detail::server s;
    auto const url = "ws://127.0.0.1:" + std::to_string(s.port) + "/v1/ws";
    auto r = run_load({"ws", "--url", url, "--secret-env", "LOAD_SECRET", "--users", "3", "--sessions", "6",
                       "--messages", "2", "--stream", "--hold-s", "0.2", "--json", "--quiet", "--watch-pid",
                       std::to_string(s.proc->pid())},
                      {{"LOAD_SECRET", serve_detail::secret}});
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
    BOOST_TEST(num(r.report, "sessions_ready") == 6);
    BOOST_TEST(num(r.report, "ok") == 12);
    BOOST_TEST(num(r.report, "failed") == 0);
    BOOST_TEST(num(r.report, "tokens") > 0);
    BOOST_TEST(num(r.report, "usage_tokens") > 0);
    BOOST_TEST(s.sim_requests() == 12);  // each turn reached the upstream once

    auto bad = run_load({"ws", "--url", url, "--secret", "not-the-secret-0123456789abcdef", "--sessions", "3",
                         "--json", "--quiet"});
    BOOST_TEST(num(bad.report.at("errors").as_object(), "hello_unauthorized") == 3);
}

BOOST_AUTO_TEST_CASE(chat_completions_through_parley_and_its_bus) {
    nats_server bus;
    serve_detail::server s{{{"NATS_URL", bus.url()}, {"AI_RATE_LIMIT_PER_USER", "1000"}}};
    auto http = run_load({"http", "--url", "http://127.0.0.1:" + std::to_string(s.port) + "/v1/chat/completions",
                          "--secret-env", "LOAD_SECRET", "--users", "2", "--concurrency", "2", "--max-requests", "20",
                          "--stream", "--json", "--quiet"},
                         {{"LOAD_SECRET", serve_detail::secret}});
    BOOST_TEST_REQUIRE(http.exit_code == 0, http.output);
    BOOST_TEST(num(http.report, "ok") == 20);
    BOOST_TEST(num(http.report, "tokens") == num(http.report, "usage_tokens"));

    auto nats = run_load({"nats", "--url", bus.url(), "--secret-env", "LOAD_SECRET", "--concurrency", "2",
                          "--max-requests", "10", "--stream", "--json", "--quiet"},
                         {{"LOAD_SECRET", serve_detail::secret}});
    BOOST_TEST_REQUIRE(nats.exit_code == 0, nats.output);
    BOOST_TEST(num(nats.report, "ok") == 10);
    BOOST_TEST(num(nats.report, "tokens") > 0);
    BOOST_TEST(s.sim_requests() == 30);
}

BOOST_AUTO_TEST_SUITE_END()
