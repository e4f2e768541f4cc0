// The rest of the front doors on a real `parley serve` against the real
// openrouter-sim: the /v1/chat/completions proxy (answers, streams, tool
// calls, refusals, upstream failures, accounting), /metrics, /readyz, the
// dev token, the TLS listener, graceful shutdown, and WebSocket clients
// that misbehave without hurting the others.
#include "support/parley_server.hpp"
#include "support/ws_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
namespace json = boost::json;
using parley::test::http_client;
using parley::test::server;
using parley::test::token;

std::string const hello_body = R"({"messages":[{"role":"user","content":"hola"}]})";

// The `data:` payloads of an SSE body, in order.
std::vector<std::string> sse_data(std::string const& body) {
    std::vector<std::string> out;
    std::size_t at = 0;
    while ((at = body.find("data: ", at)) != std::string::npos) {
        auto end = body.find("\n\n", at);
        out.push_back(body.substr(at + 6, end - at - 6));
        at = end;
    }
    return out;
}

json::object error_of(parley::test::http_response const& r) { return json::parse(r.body).at("error").as_object(); }

// GET /v1/usage until its total has `requests` (the writer flushes every 10 ms).
json::object usage_until(server& s, std::string const& tok, std::int64_t requests, int attempts = 200) {
    json::object u;
    for (int i = 0; i != attempts; ++i) {
        u = json::parse(s.get("/v1/usage?by=user", tok).body).as_object();
        if (u.at("total").at("requests").as_int64() >= requests) break;
        std::this_thread::sleep_for(20ms);
    }
    return u;
}

json::array sim_requests(server& s, int last) {
    http_client c{"127.0.0.1", s.sim.port};
    auto r = c.get("/sim/requests?last=" + std::to_string(last), {{"Authorization", "Bearer k"}});
    return json::parse(r.body).at("requests").as_array();
}

void sim_script(server& s, std::string const& body) {
    http_client c{"127.0.0.1", s.sim.port};
    auto r = c.post("/sim/script", body, {{"Authorization", "Bearer k"}});
    BOOST_TEST_REQUIRE(r.status == 200u, r.body);
}

json::object frame(std::optional<std::string> const& text) {
    BOOST_TEST_REQUIRE(text.has_value(), "no frame");
    return json::parse(*text).as_object();
}

// Frames until one of `type` arrives (bounded).
std::vector<json::object> until(parley::test::ws_client& ws, std::string const& type) {
    std::vector<json::object> got;
    for (int i = 0; i != 2000; ++i) {
        auto text = ws.receive();
        if (!text) break;
        got.push_back(json::parse(*text).as_object());
        if (got.back().at("type").as_string() == type) break;
    }
    return got;
}

// `parley usage --json` on the server's database (after it stopped).
json::object usage_after(server& s, std::string const& user) {
    std::map<std::string, std::optional<std::string>> env{
        {"PARLEY_CONFIG", "/dev/null"},
        {"DATABASE_URL", "sqlite:" + (s.data.path / "p.db").string()},
        {"PARLEY_DATA_DIR", (s.data.path / "var").string()}};
    parley::test::child_process p{parley::test::bin_path("parley"),
                                  std::vector<std::string>{"usage", "--json", "--user", user}, env};
    auto code = p.wait(30s);
    BOOST_TEST_REQUIRE(code.has_value());
    BOOST_TEST_REQUIRE(*code == 0, p.output());
    auto out = p.output();
    return json::parse(out.substr(out.find('{'))).as_object();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(chat_completions)

BOOST_AUTO_TEST_CASE(answers_as_json_and_as_a_stream_with_the_usage_chunk_and_records_both) {
    server s;
    auto r = s.post("/v1/chat/completions", hello_body, token("ana"));
    BOOST_TEST_REQUIRE(r.status == 200u, r.body);
    BOOST_TEST(!r.header("X-Request-Id").empty());
    auto o = json::parse(r.body).as_object();
    BOOST_TEST(o.at("object").as_string() == "chat.completion");
    BOOST_TEST(o.at("model").as_string() == "anthropic/claude-3.5-sonnet");
    auto const& choice = o.at("choices").at(0).as_object();
    BOOST_TEST(std::string(choice.at("message").at("content").as_string()).starts_with("Echo: hola"));
    BOOST_TEST(choice.at("finish_reason").as_string() == "stop");
    BOOST_TEST(o.at("usage").at("completion_tokens").as_int64() == 6);
    BOOST_TEST(o.at("usage").at("cost").to_number<double>() > 0);

    auto st = s.post("/v1/chat/completions",
                     R"({"model":"anthropic/claude-3.5-sonnet","stream":true,"messages":[{"role":"user","content":"hola"}]})",
                     token("ana"));
    BOOST_TEST_REQUIRE(st.status == 200u, st.body);
    BOOST_TEST(st.header("Content-Type") == "text/event-stream");
    auto events = sse_data(st.body);
    BOOST_TEST_REQUIRE(events.size() >= 4u);
    BOOST_TEST(events.back() == "[DONE]");
    std::string text;
    int with_text = 0;
    std::string finish;
    for (std::size_t i = 0; i + 2 < events.size(); ++i) {
        auto c = json::parse(events[i]).as_object();
        BOOST_TEST(c.at("object").as_string() == "chat.completion.chunk");
        auto const& ch = c.at("choices").at(0).as_object();
        if (auto const* content = ch.at("delta").as_object().if_contains("content"); content && content->is_string()) {
            text += content->as_string();
            ++with_text;
        }
        if (ch.at("finish_reason").is_string()) finish = ch.at("finish_reason").as_string();
    }
    BOOST_TEST(with_text >= 2);
    BOOST_TEST(text.starts_with("Echo: hola"));
    BOOST_TEST(finish == "stop");
    auto last = json::parse(events[events.size() - 2]).as_object();
    BOOST_TEST(last.at("choices").as_array().empty());
    BOOST_TEST(last.at("usage").at("completion_tokens").as_int64() == 6);

    auto u = usage_until(s, token("ana"), 2);
    BOOST_TEST(u.at("total").at("requests").as_int64() == 2);
    BOOST_TEST(u.at("total").at("output_tokens").as_int64() == 12);
}

BOOST_AUTO_TEST_CASE(tools_pass_through_and_the_calls_come_back_streamed_or_not) {
    server s{{{"AI_MAX_TOKENS", "50"}}};
    sim_script(s, R"({"key":"tina","turns":[
        {"tool_calls":[{"id":"call_1","name":"weather","arguments":{"city":"Madrid"}}]},
        {"tool_calls":[{"id":"call_2","name":"weather","arguments":{"city":"Lima"}}]}]})");
    std::string const body = R"({"messages":[{"role":"user","content":"tiempo?"}],"max_tokens":1000,
        "tools":[{"type":"function","function":{"name":"weather","parameters":{"type":"object"}}}]})";
    auto r = s.post("/v1/chat/completions", body, token("tina"));
    BOOST_TEST_REQUIRE(r.status == 200u, r.body);
    auto const answer = json::parse(r.body);
    auto const& choice = answer.at("choices").at(0).as_object();
    BOOST_TEST(choice.at("finish_reason").as_string() == "tool_calls");
    BOOST_TEST(choice.at("message").at("content").is_null());
    auto const& call = choice.at("message").at("tool_calls").at(0).as_object();
    BOOST_TEST(call.at("id").as_string() == "call_1");
    BOOST_TEST(call.at("function").at("name").as_string() == "weather");
    BOOST_TEST(json::parse(call.at("function").at("arguments").as_string()).at("city").as_string() == "Madrid");

    // Upstream, the caller's tools went as they were; max_tokens was capped
    // at ai.max_tokens and `user` named the caller.
    auto sent = sim_requests(s, 1).at(0).at("body").as_object();
    BOOST_TEST(sent.at("tools").at(0).at("function").at("name").as_string() == "weather");
    BOOST_TEST(sent.at("max_tokens").as_int64() == 50);
    BOOST_TEST(sent.at("user").as_string() == "tina");

    auto streamed = body;
    streamed.insert(1, R"("stream":true,)");
    auto st = s.post("/v1/chat/completions", streamed, token("tina"));
    BOOST_TEST_REQUIRE(st.status == 200u, st.body);
    std::string name, args, finish;
    for (auto const& e : sse_data(st.body)) {
        if (e == "[DONE]") break;
        auto c = json::parse(e).as_object();
        if (c.at("choices").as_array().empty()) continue;
        auto const& ch = c.at("choices").at(0).as_object();
        if (auto const* calls = ch.at("delta").as_object().if_contains("tool_calls")) {
            name = calls->at(0).at("function").at("name").as_string();
            args += calls->at(0).at("function").at("arguments").as_string();
            BOOST_TEST(calls->at(0).at("index").as_int64() == 0);
        }
        if (ch.at("finish_reason").is_string()) finish = ch.at("finish_reason").as_string();
    }
    BOOST_TEST(name == "weather");
    BOOST_TEST(json::parse(args).at("city").as_string() == "Lima");
    BOOST_TEST(finish == "tool_calls");
}

BOOST_AUTO_TEST_CASE(bad_requests_unknown_models_and_missing_tokens_are_refused_before_the_upstream) {
    server s{{{"AI_FALLBACK_MODELS", "openai/gpt-4o-mini"}}};
    auto check = [&](std::string const& body, unsigned status, std::string const& type, std::string const& says) {
        auto r = s.post("/v1/chat/completions", body, token("ana"));
        BOOST_TEST(r.status == status, body << " -> " << r.status << " " << r.body);
        if (r.status != status) return;
        auto e = error_of(r);
        BOOST_TEST(e.at("type").as_string() == type);
        BOOST_TEST(std::string(e.at("message").as_string()).find(says) != std::string::npos, e.at("message"));
    };
    check(R"({"model":"openai/gpt-4o","messages":[{"role":"user","content":"x"}]})", 400, "bad_request",
          "model openai/gpt-4o is not allowed");
    check(R"({"models":["openai/o1"],"messages":[{"role":"user","content":"x"}]})", 400, "bad_request", "openai/o1");
    check(R"({"messages":[]})", 400, "bad_request", "messages");
    check(R"({"messages":[{"content":"x"}]})", 400, "bad_request", "role");
    check(R"({"messages":[{"role":"wizard","content":"x"}]})", 400, "bad_request", "wizard");
    check(R"({"n":2,"messages":[{"role":"user","content":"x"}]})", 400, "bad_request", "n must be 1");
    check(R"({"plugins":[{"id":"web"}],"messages":[{"role":"user","content":"x"}]})", 400, "bad_request", "plugins");
    check(R"({"max_tokens":0,"messages":[{"role":"user","content":"x"}]})", 400, "bad_request", "max_tokens");
    check(R"({"stream":"yes","messages":[{"role":"user","content":"x"}]})", 400, "bad_request", "stream");
    check("[1,2]", 400, "bad_request", "JSON object");
    BOOST_TEST(s.post("/v1/chat/completions", hello_body, "").status == 401u);
    BOOST_TEST(s.post("/v1/chat/completions", hello_body, "not-a-token").status == 401u);
    BOOST_TEST(s.get("/v1/chat/completions", token("ana")).status == 405u);
    BOOST_TEST(s.sim_requests() == 0);

    // The configured model without `models` gets the fallbacks; a fallback
    // may be asked for by name.
    auto r = s.post("/v1/chat/completions", hello_body, token("ana"));
    BOOST_TEST_REQUIRE(r.status == 200u, r.body);
    auto sent = sim_requests(s, 1).at(0).at("body").as_object();
    BOOST_TEST(sent.at("models").as_array().size() == 2u);
    auto fb = s.post("/v1/chat/completions", R"({"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"x"}]})",
                     token("ana"));
    BOOST_TEST(fb.status == 200u, fb.body);
}

BOOST_AUTO_TEST_CASE(the_hourly_window_and_the_budget_refuse_with_retry_after_and_a_spent_budget_says_do_not_retry) {
    server s{{{"AI_RATE_LIMIT_PER_USER", "1"}}};
    BOOST_TEST(s.post("/v1/chat/completions", hello_body, token("ana", {}, "en")).status == 200u);
    auto r = s.post("/v1/chat/completions", hello_body, token("ana", {}, "en"));
    BOOST_TEST_REQUIRE(r.status == 429u, r.body);
    BOOST_TEST(error_of(r).at("type").as_string() == "rate_limited");
    BOOST_TEST(std::string(error_of(r).at("message").as_string()).find("hourly message limit") != std::string::npos);
    auto const wait = std::stoi(r.header("Retry-After"));
    BOOST_TEST(wait > 3000);
    BOOST_TEST(wait <= 3600);
    BOOST_TEST(r.header("x-should-retry").empty());

    server poor{{{"AI_COST_LIMIT_DAILY", "0.000001"}}};
    auto b = poor.post("/v1/chat/completions", hello_body, token("ana"));
    BOOST_TEST_REQUIRE(b.status == 429u, b.body);
    BOOST_TEST(error_of(b).at("type").as_string() == "budget_exhausted");
    BOOST_TEST(b.header("x-should-retry") == "false");
    BOOST_TEST(std::stoi(b.header("Retry-After")) > 0);
    BOOST_TEST(poor.sim_requests() == 0);
}

BOOST_AUTO_TEST_CASE(upstream_failures_keep_their_meaning_and_are_recorded) {
    server s{{{"AI_ALLOWED_MODELS", "anthropic/claude-3.5-sonnet,sim/fault-400,sim/fault-502,sim/fault-mid-stream-error"}},
             {"--latency-ms", "0", "--tokens-per-second", "0", "--answer-tokens", "8"}};
    auto bad = s.post("/v1/chat/completions", R"({"model":"sim/fault-400","messages":[{"role":"user","content":"x"}]})",
                      token("ana"));
    BOOST_TEST(bad.status == 400u, bad.body);
    BOOST_TEST(error_of(bad).at("type").as_string() == "bad_request");
    auto down = s.post("/v1/chat/completions", R"({"model":"sim/fault-502","messages":[{"role":"user","content":"x"}]})",
                       token("ana"));
    BOOST_TEST(down.status == 502u, down.body);
    BOOST_TEST(error_of(down).at("type").as_string() == "upstream_error");
    BOOST_TEST(s.sim_requests() == 1 + 4);  // the 400 once; the 502 with its 3 retries

    // A failure after the stream began is an error chunk, as OpenRouter sends one.
    auto mid = s.post("/v1/chat/completions",
                      R"({"model":"sim/fault-mid-stream-error","stream":true,"messages":[{"role":"user","content":"x"}]})",
                      token("ana"));
    BOOST_TEST_REQUIRE(mid.status == 200u, mid.body);
    auto events = sse_data(mid.body);
    BOOST_TEST_REQUIRE(!events.empty());
    BOOST_TEST(events.back() != "[DONE]");
    auto last = json::parse(events.back()).as_object();
    BOOST_TEST(last.at("choices").at(0).at("finish_reason").as_string() == "error");
    BOOST_TEST(last.at("error").at("type").as_string() == "upstream_error");

    auto u = usage_until(s, token("ana"), 3);
    BOOST_TEST(u.at("total").at("requests").as_int64() == 3);
}

BOOST_AUTO_TEST_CASE(refusals_of_parleys_key_and_timeouts_have_their_own_statuses_and_odd_bodies_are_checked) {
    server s{{{"AI_ALLOWED_MODELS",
               "anthropic/claude-3.5-sonnet,sim/fault-401,sim/fault-402,sim/fault-slow-first-byte"},
              {"PARLEY_OPENROUTER_FIRST_BYTE_TIMEOUT_MS", "300"},
              {"PARLEY_RETRY_MAX_RETRIES", "0"}}};
    auto call = [&](std::string const& model) {
        return s.post("/v1/chat/completions",
                      R"({"model":")" + model + R"(","messages":[{"role":"user","content":"x"}]})", token("ana", {}, "en"));
    };
    for (std::string m : {"sim/fault-401", "sim/fault-402"}) {
        auto r = call(m);
        BOOST_TEST(r.status == 503u, m << " " << r.body);
        BOOST_TEST(error_of(r).at("type").as_string() == "ai_unavailable");
        BOOST_TEST(std::string(error_of(r).at("message").as_string()).find("not available") != std::string::npos);
    }
    auto slow = call("sim/fault-slow-first-byte");
    BOOST_TEST(slow.status == 504u, slow.body);
    BOOST_TEST(error_of(slow).at("type").as_string() == "upstream_error");

    auto check = [&](std::string const& body, unsigned status) {
        auto r = s.post("/v1/chat/completions", body, token("bob"));
        BOOST_TEST(r.status == status, body << " -> " << r.body);
    };
    std::string const msg = R"("messages":[{"role":"user","content":"x"}])";
    check(R"({"model":5,)" + msg + "}", 400);
    check(R"({"models":"anthropic/claude-3.5-sonnet",)" + msg + "}", 400);
    check(R"({"models":[5],)" + msg + "}", 400);
    check(R"({"plugins":{"id":"web"},)" + msg + "}", 400);
    check(R"({"messages":"hi"})", 400);
    std::string many = R"({"messages":[)";
    for (int i = 0; i != 4097; ++i) many += std::string(i ? "," : "") + R"({"role":"user","content":"x"})";
    check(many + "]}", 400);
    check(R"({"models":["anthropic/claude-3.5-sonnet"],"n":1,"stream":null,"max_completion_tokens":18446744073709551615,)"
          R"("plugins":[{"id":"context-compression"}],)" + msg + "}", 200);
    auto sent = sim_requests(s, 1).at(0).at("body").as_object();
    BOOST_TEST(sent.at("max_tokens").as_int64() == 4096);
    BOOST_TEST(!sent.contains("max_completion_tokens"));
}

BOOST_AUTO_TEST_CASE(a_caller_that_goes_away_mid_stream_cancels_the_upstream_call_which_is_recorded) {
    server s{{}, {"--latency-ms", "0", "--tokens-per-second", "20", "--answer-tokens", "400"}};
    {
        boost::asio::io_context ioc;
        boost::asio::ip::tcp::socket sock{ioc};
        sock.connect({boost::asio::ip::make_address("127.0.0.1"), s.port});
        std::string const body = R"({"stream":true,"messages":[{"role":"user","content":"hola"}]})";
        std::string const req = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                                token("gone") + "\r\nContent-Type: application/json\r\nContent-Length: " +
                                std::to_string(body.size()) + "\r\n\r\n" + body;
        boost::asio::write(sock, boost::asio::buffer(req));
        std::string got;
        char buf[4096];
        while (got.find("data: ") == std::string::npos) {
            auto n = sock.read_some(boost::asio::buffer(buf));
            got.append(buf, n);
        }
        BOOST_TEST(got.starts_with("HTTP/1.1 200"));
    }  // closed mid-stream
    json::object u;
    std::int64_t cancelled = 0;
    for (int i = 0; i != 200 && cancelled == 0; ++i) {
        std::this_thread::sleep_for(25ms);
        http_client c{"127.0.0.1", s.sim.port};
        auto r = c.get("/sim/counters", {{"Authorization", "Bearer k"}});
        cancelled = json::parse(r.body).at("cancelled").to_number<std::int64_t>();
    }
    BOOST_TEST(cancelled == 1);
    u = usage_until(s, token("gone"), 1);
    BOOST_TEST(u.at("total").at("requests").as_int64() == 1);
    BOOST_TEST(u.at("total").at("output_tokens").as_int64() < 400);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(probes_and_metrics)

BOOST_AUTO_TEST_CASE(metrics_count_answers_calls_tokens_and_refusals_and_readyz_reports_ready) {
    server s{{{"AI_RATE_LIMIT_PER_USER", "1"}}};
    BOOST_TEST(s.post("/v1/chat/completions", hello_body, token("ana")).status == 200u);
    BOOST_TEST(s.post("/v1/chat/completions", hello_body, token("ana")).status == 429u);
    auto m = s.get("/metrics", "");
    BOOST_TEST_REQUIRE(m.status == 200u);
    BOOST_TEST(m.header("Content-Type").starts_with("text/plain; version=0.0.4"));
    auto has = [&](std::string const& line) {
        BOOST_TEST(m.body.find(line) != std::string::npos, "missing: " << line);
    };
    has("parley_http_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 1");
    has("parley_http_requests_total{route=\"/v1/chat/completions\",status=\"429\"} 1");
    has("parley_upstream_calls_total{status=\"ok\"} 1");
    has("parley_tokens_total{direction=\"output\"} 6");
    has("parley_refusals_total{reason=\"rate_limited\"} 1");
    has("parley_upstream_latency_seconds_count 1");
    has("parley_active_sessions 0");
    has("parley_circuit_state 0");
    has("parley_usage_database_ok 1");
    has("parley_upstream_pool_connections{state=\"idle\"} 1");
    BOOST_TEST(s.get("/nowhere", "").status == 404u);
    auto again = s.get("/metrics", "");
    BOOST_TEST(again.body.find("parley_http_requests_total{route=\"other\",status=\"404\"} 1") != std::string::npos);

    auto ready = s.get("/readyz", "");
    BOOST_TEST(ready.status == 200u, ready.body);
    BOOST_TEST(json::parse(ready.body).at("status").as_string() == "ready");
    BOOST_TEST(s.post("/readyz", "", "").status == 405u);
    BOOST_TEST(s.get("/healthz", "").body == "ok\n");
}

BOOST_AUTO_TEST_CASE(an_open_circuit_makes_readyz_503_and_the_proxy_refuse) {
    server s{{{"AI_ALLOWED_MODELS", "anthropic/claude-3.5-sonnet,sim/fault-502"},
              {"PARLEY_CIRCUIT_FAILURE_THRESHOLD", "1"},
              {"PARLEY_RETRY_MAX_RETRIES", "0"}}};
    auto down = s.post("/v1/chat/completions", R"({"model":"sim/fault-502","messages":[{"role":"user","content":"x"}]})",
                       token("ana", {}, "en"));
    BOOST_TEST(down.status == 502u, down.body);
    auto ready = s.get("/readyz", "");
    BOOST_TEST(ready.status == 503u, ready.body);
    BOOST_TEST(json::parse(ready.body).at("upstream").as_string() == "open");
    auto refused = s.post("/v1/chat/completions", hello_body, token("ana", {}, "en"));
    BOOST_TEST(refused.status == 503u, refused.body);
    BOOST_TEST(error_of(refused).at("type").as_string() == "ai_unavailable");
    BOOST_TEST(s.get("/metrics", "").body.find("parley_circuit_state 2") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_dev_token_exists_only_when_asked_for) {
    server off;
    BOOST_TEST(off.get("/v1/dev/token", "").status == 404u);
    server on{{{"PARLEY_DEV_TOKENS", "true"}}};
    auto t = on.get("/v1/dev/token?lang=en", "");
    BOOST_TEST_REQUIRE(t.status == 200u, t.body);
    auto const tok = std::string(json::parse(t.body).at("token").as_string());
    auto r = on.post("/v1/respond", R"({"text":"hi"})", tok);
    BOOST_TEST(r.status == 200u, r.body);
    BOOST_TEST(json::parse(on.get("/v1/usage", tok).body).at("user").as_string() == "dev");
    BOOST_TEST(on.post("/v1/dev/token", "", "").status == 405u);
}

BOOST_AUTO_TEST_CASE(the_listener_speaks_tls_with_the_configured_certificate) {
    parley::test::temp_dir dir;
    auto const key = (dir.path / "key.pem").string();
    auto const cert = (dir.path / "cert.pem").string();
    std::string const cmd = "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -addext "
                            "subjectAltName=IP:127.0.0.1 -days 2 -keyout " + key + " -out " + cert + " >/dev/null 2>&1";
    BOOST_TEST_REQUIRE(std::system(cmd.c_str()) == 0);
    server s{{{"PARLEY_TLS_CERT_FILE", cert}, {"PARLEY_TLS_KEY_FILE", key}}};
    BOOST_TEST(s.proc->output().find("listening on https://127.0.0.1:") != std::string::npos);
    http_client::tls_options tls;
    tls.ca_file = cert;
    http_client c{"127.0.0.1", s.port, tls};
    auto r = c.post("/v1/chat/completions", hello_body, {{"Authorization", "Bearer " + token("ana")}});
    BOOST_TEST(r.status == 200u, r.body);

    // A key that is not the certificate's stops start-up, naming the setting.
    auto const other = (dir.path / "other.pem").string();
    std::string const gen = "openssl genrsa -out " + other + " 2048 >/dev/null 2>&1";
    BOOST_TEST_REQUIRE(std::system(gen.c_str()) == 0);
    std::map<std::string, std::optional<std::string>> env{{"PARLEY_CONFIG", "/dev/null"},
                                                          {"PARLEY_JWT_SECRET", parley::test::secret},
                                                          {"DATABASE_URL", "sqlite:" + (dir.path / "p.db").string()},
                                                          {"PARLEY_DATA_DIR", (dir.path / "var").string()},
                                                          {"PARLEY_TLS_CERT_FILE", cert},
                                                          {"PARLEY_TLS_KEY_FILE", other}};
    parley::test::child_process bad{parley::test::bin_path("parley"),
                                    std::vector<std::string>{"serve", "--listen", "127.0.0.1:0"}, env};
    auto code = bad.wait(30s);
    BOOST_TEST_REQUIRE(code.has_value());
    BOOST_TEST(*code == 2);
    BOOST_TEST(bad.output().find("server.tls_cert_file") != std::string::npos, bad.output());
    // Only one of the two: a setting error.
    env.erase("PARLEY_TLS_KEY_FILE");
    parley::test::child_process half{parley::test::bin_path("parley"),
                                     std::vector<std::string>{"serve", "--listen", "127.0.0.1:0"}, env};
    auto half_code = half.wait(30s);
    BOOST_TEST_REQUIRE(half_code.has_value());
    BOOST_TEST(*half_code == 2);
    BOOST_TEST(half.output().find("server.tls_key_file") != std::string::npos, half.output());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(shutdown_and_misbehaving_clients)

BOOST_AUTO_TEST_CASE(sigterm_lets_turns_finish_closes_websockets_with_1001_and_exits_0) {
    server s{{}, {"--latency-ms", "0", "--tokens-per-second", "20", "--answer-tokens", "24"}};
    parley::test::ws_client idle{s.port, "/v1/ws"};
    idle.send(R"({"type":"hello","token":")" + token("ivan") + R"("})");
    BOOST_TEST(frame(idle.receive()).at("type").as_string() == "ready");
    parley::test::ws_client busy{s.port, "/v1/ws"};
    busy.send(R"({"type":"hello","token":")" + token("bea") + R"("})");
    BOOST_TEST(frame(busy.receive()).at("type").as_string() == "ready");
    busy.send(R"({"type":"message","id":"m1","text":"Hola"})");
    BOOST_TEST(frame(busy.receive()).at("type").as_string() == "delta");
    // A proxied stream in flight too.
    auto streamed = std::async(std::launch::async, [&] {
        return s.post("/v1/chat/completions",
                      R"({"stream":true,"messages":[{"role":"user","content":"hola"}]})", token("carl"));
    });
    std::this_thread::sleep_for(200ms);

    s.proc->signal(SIGTERM);
    // The idle connection closes at once with 1001.
    BOOST_TEST(!idle.receive(3s).has_value());
    BOOST_TEST(idle.close_reason().code == 1001);
    // The busy one: a message sent now is refused; the turn finishes, then 1001.
    busy.send(R"({"type":"message","id":"m2","text":"Otra"})");
    auto frames = until(busy, "done");
    BOOST_TEST_REQUIRE(!frames.empty());
    BOOST_TEST(frames.back().at("type").as_string() == "done");
    bool refused = false;
    for (auto const& f : frames) {
        if (f.at("type").as_string() == "error") refused = f.at("code").as_string() == "shutting_down";
    }
    BOOST_TEST(refused);
    BOOST_TEST(!busy.receive(5s).has_value());
    BOOST_TEST(busy.close_reason().code == 1001);
    auto st = streamed.get();
    BOOST_TEST(st.status == 200u);
    BOOST_TEST(sse_data(st.body).back() == "[DONE]");

    auto code = s.proc->wait(20s);
    BOOST_TEST_REQUIRE(code.has_value());
    BOOST_TEST(*code == 0);
    BOOST_TEST(usage_after(s, "bea").at("total").at("requests").as_int64() == 1);
    BOOST_TEST(usage_after(s, "carl").at("total").at("requests").as_int64() == 1);
}

BOOST_AUTO_TEST_CASE(what_outlasts_the_grace_period_is_cancelled_and_still_recorded) {
    server s{{{"PARLEY_SERVER_SHUTDOWN_GRACE_MS", "300"}},
             {"--latency-ms", "0", "--tokens-per-second", "20", "--answer-tokens", "400"}};
    parley::test::ws_client ws{s.port, "/v1/ws"};
    ws.send(R"({"type":"hello","token":")" + token("bea") + R"("})");
    BOOST_TEST(frame(ws.receive()).at("type").as_string() == "ready");
    ws.send(R"({"type":"message","id":"m1","text":"Hola"})");
    BOOST_TEST(frame(ws.receive()).at("type").as_string() == "delta");
    auto streamed = std::async(std::launch::async, [&] {
        return s.post("/v1/chat/completions",
                      R"({"stream":true,"messages":[{"role":"user","content":"hola"}]})", token("carl", {}, "en"));
    });
    std::this_thread::sleep_for(300ms);
    auto const started = std::chrono::steady_clock::now();
    s.proc->signal(SIGTERM);
    auto frames = until(ws, "error");
    BOOST_TEST_REQUIRE(!frames.empty());
    BOOST_TEST(frames.back().at("type").as_string() == "error");
    BOOST_TEST(frames.back().at("code").as_string() == "cancelled");
    BOOST_TEST(!ws.receive(5s).has_value());
    BOOST_TEST(ws.close_reason().code == 1001);
    auto code = s.proc->wait(20s);
    BOOST_TEST_REQUIRE(code.has_value());
    BOOST_TEST(*code == 0);
    BOOST_TEST((std::chrono::steady_clock::now() - started < 10s));
    auto u = usage_after(s, "bea");
    BOOST_TEST(u.at("total").at("requests").as_int64() == 1);
    BOOST_TEST(u.at("total").at("output_tokens").as_int64() > 0);
    // The proxied stream never completes: it ends with an error chunk that
    // says why (or is cut, when the connection closes first), and is recorded.
    auto st = streamed.get();
    BOOST_TEST(st.status == 200u);
    auto events = sse_data(st.body);
    BOOST_TEST_REQUIRE(!events.empty());
    BOOST_TEST(events.back() != "[DONE]");
    auto last = json::parse(events.back()).as_object();
    if (auto const* error = last.if_contains("error")) {
        BOOST_TEST(error->at("type").as_string() == "shutting_down");
    } else {
        BOOST_TEST_MESSAGE("the proxied stream was cut before its error chunk");
    }
    BOOST_TEST(usage_after(s, "carl").at("total").at("requests").as_int64() == 1);
}

BOOST_AUTO_TEST_CASE(garbage_huge_frames_and_silence_never_hurt_another_sessions_answer) {
    server s{{{"PARLEY_SERVER_BODY_LIMIT_BYTES", "65536"}},
             {"--latency-ms", "0", "--tokens-per-second", "40", "--answer-tokens", "60"}};
    parley::test::ws_client good{s.port, "/v1/ws"};
    good.send(R"({"type":"hello","token":")" + token("ana") + R"("})");
    BOOST_TEST(frame(good.receive()).at("type").as_string() == "ready");
    good.send(R"({"type":"message","id":"g1","text":"Hola"})");

    // Garbage after a good hello: errors, and the session goes on.
    parley::test::ws_client noisy{s.port, "/v1/ws"};
    noisy.send(R"({"type":"hello","token":")" + token("bob") + R"("})");
    BOOST_TEST(frame(noisy.receive()).at("type").as_string() == "ready");
    for (std::string junk : {"{", "null", "[]", R"({"type":7})", R"({"type":"message"})", R"({"type":"hello"})"}) {
        noisy.send(junk);
        auto f = frame(noisy.receive());
        BOOST_TEST(f.at("type").as_string() == "error");
        BOOST_TEST(f.at("code").as_string() == "bad_request");
    }
    noisy.send(R"({"type":"ping"})");
    BOOST_TEST(frame(noisy.receive()).at("type").as_string() == "pong");
    // A frame over the limit closes that connection (1009) only.
    parley::test::ws_client huge{s.port, "/v1/ws"};
    huge.send(std::string(100'000, 'x'));
    BOOST_TEST(!huge.receive(5s).has_value());
    // 1009, unless the close frame lost the race with the connection's end
    // (the server closes while the client is still writing its frame, and
    // the client's stream fails before it reads the close).
    BOOST_TEST((huge.close_reason().code == 1009 || huge.last_error == boost::asio::error::connection_reset ||
                huge.last_error == boost::beast::websocket::error::closed ||
                huge.last_error == boost::asio::error::eof || huge.last_error == boost::asio::error::operation_aborted),
               huge.close_reason().code << " " << huge.last_error.message());
    // Text that is not UTF-8 breaks the protocol: that connection closes (1007).
    parley::test::ws_client broken{s.port, "/v1/ws"};
    broken.send(R"({"type":"hello","token":")" + token("eve") + R"("})");
    BOOST_TEST(frame(broken.receive()).at("type").as_string() == "ready");
    broken.send("\xff\xfe");
    BOOST_TEST(!broken.receive(5s).has_value());
    BOOST_TEST(broken.close_reason().code == 1007);
    // Garbage instead of a hello: refused with 1008.
    parley::test::ws_client rude{s.port, "/v1/ws"};
    rude.send("garbage");
    BOOST_TEST(frame(rude.receive()).at("code").as_string() == "unauthorized");
    BOOST_TEST(!rude.receive(5s).has_value());
    BOOST_TEST(rude.close_reason().code == 1008);

    auto frames = until(good, "done");
    BOOST_TEST_REQUIRE(!frames.empty());
    BOOST_TEST(frames.back().at("type").as_string() == "done");
    BOOST_TEST(std::string(frames.back().at("text").as_string()).starts_with("Echo: Hola"));
    BOOST_TEST(s.get("/healthz", "").status == 200u);
}

BOOST_AUTO_TEST_CASE(a_client_too_slow_to_read_is_closed_with_1013_and_its_turn_recorded) {
    server s{{{"AI_MAX_TOKENS", "300000"}}, {"--latency-ms", "0", "--tokens-per-second", "0", "--answer-tokens", "300000"}};
    parley::test::ws_client slow{s.port, "/v1/ws"};
    slow.send(R"({"type":"hello","token":")" + token("sloth") + R"("})");
    BOOST_TEST(frame(slow.receive()).at("type").as_string() == "ready");
    slow.send(R"({"type":"message","id":"m1","text":"Hola"})");
    auto const started = std::chrono::steady_clock::now();
    // Reads nothing until the server gave up on it.
    for (int i = 0; i != 400 && s.proc->output().find("too slow to read") == std::string::npos; ++i) {
        std::this_thread::sleep_for(10ms);
    }
    BOOST_TEST_REQUIRE(s.proc->output().find("too slow to read") != std::string::npos);
    BOOST_TEST_MESSAGE("gave up after " << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count() << " ms");
    std::size_t frames = 0;
    while (slow.receive(5s)) ++frames;
    BOOST_TEST(frames > 0u);
    BOOST_TEST(slow.close_reason().code == 1013);
    auto u = usage_until(s, token("sloth"), 1, 1000);  // the cancelled call ends and is flushed (slower under coverage)
    BOOST_TEST(u.at("total").at("requests").as_int64() == 1);
    BOOST_TEST(u.at("total").at("output_tokens").as_int64() < 300000);  // cut short: the turn was cancelled
}

BOOST_AUTO_TEST_SUITE_END()
