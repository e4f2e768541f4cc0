// The OpenRouter client (actors/openrouter_client) against the real
// openrouter-sim binary, plain and TLS, and against small fake servers for
// what the simulator cannot do (a kept-alive connection closed under the
// client, oversized bodies, a connect that never completes). Retries are
// counted through the simulator's per-X-Request-Id attempt counters.
// Every suite name starts with "openrouter_client".
#include "actors/openrouter_client.hpp"
#include "actors/upstream_pool.hpp"
#include "domain/messages.hpp"
#include "net/upstream_connection.hpp"
#include "support/http_client.hpp"
#include "support/io_fixture.hpp"
#include "support/process.hpp"
#include "support/sim_process.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/test/unit_test.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
namespace asio = parley::asio;
namespace actors = parley::actors;
namespace net = parley::net;
namespace domain = parley::domain;
namespace json = boost::json;
namespace http = boost::beast::http;
namespace beast = boost::beast;
using parley::task;
using parley::use_nothrow;
using parley::test::child_process;
using parley::test::http_client;
using tcp = asio::ip::tcp;
using ms = std::chrono::milliseconds;

std::string const key = "sk-or-test-key-7f3a91c0";

// A running simulator, stopped by PID at scope exit.
struct sim_process : parley::test::sim_process {
    using parley::test::sim_process::sim_process;
    json::value get(std::string const& target, parley::test::header_list const& headers = {}) {
        http_client c{"127.0.0.1", port, tls};
        auto r = c.get(target, headers);
        BOOST_TEST_REQUIRE(r.status == 200u, target << " -> " << r.status);
        return json::parse(r.body);
    }
    json::value counters() { return get("/sim/counters"); }
    std::int64_t attempts(std::string const& request_id) {
        auto c = counters();
        auto const* a = c.at("attempts").as_object().if_contains(request_id);
        return a ? a->to_number<std::int64_t>() : 0;
    }
    void script(std::string const& doc) {
        http_client c{"127.0.0.1", port, tls};
        auto r = c.post("/sim/script", doc);
        BOOST_TEST_REQUIRE(r.status == 200u, r.body);
    }
};

std::vector<std::string> fast_sim() {
    return {"--latency-ms", "0", "--tokens-per-second", "0", "--answer-tokens", "5"};
}

actors::openrouter_options options_for(unsigned short port, std::string scheme = "http") {
    actors::openrouter_options o;
    o.base_url = scheme + "://127.0.0.1:" + std::to_string(port) + "/api/v1";
    o.api_key = key;
    o.referer = "https://parley.example";
    o.title = "Parley Test";
    o.connect_timeout = 2s;
    o.first_byte_timeout = 5s;
    o.chunk_gap_timeout = 5s;
    o.total_timeout = 20s;
    o.retry.initial = 10ms;
    o.retry.max_backoff = 40ms;
    o.retry.max_retry_after = 2s;
    return o;
}

actors::chat_call chat(std::string text, bool stream,
                       std::vector<std::pair<std::string, std::string>> headers = {}) {
    domain::message m;
    m.r = domain::role::user;
    m.content = std::move(text);
    domain::request_options ro;
    ro.model = "anthropic/claude-3.5-sonnet";
    ro.stream = stream;
    auto c = actors::make_chat_call({m}, ro);
    c.extra_headers = std::move(headers);
    return c;
}

// A retry environment whose sleep records and returns at once.
struct recorded_waits {
    std::vector<ms> waits;
};
actors::retry_env instant_env(std::shared_ptr<recorded_waits> w) {
    auto env = actors::retry_env::system();
    env.random = [] { return std::uint64_t{0}; };
    env.sleep = [w](ms d) -> task<bool> {
        w->waits.push_back(d);
        co_return true;
    };
    return env;
}

task<void> sleep_for(ms d) {
    asio::steady_timer t{co_await asio::this_coro::executor, d};
    co_await t.async_wait(use_nothrow);
}

// Runs one test coroutine on a private single-threaded io_context and stops
// it when the coroutine ends (servers and timers may still be pending).
struct client_fixture : parley::test::io_fixture {

    template <class F>
    void run(F body, std::chrono::steady_clock::duration limit = 30s) {
        run_and_stop(std::move(body), limit);
    }

    // One call on a fresh client, shut down afterwards.
    actors::call_result call_once(actors::openrouter_options o, actors::chat_call c,
                                  actors::retry_env env = actors::retry_env::system()) {
        std::optional<actors::call_result> r;
        run([&]() -> task<void> {
            actors::openrouter_client client{ioc.get_executor(), std::move(o), std::move(env)};
            r = co_await client.complete(std::move(c));
            co_await client.shutdown();
        });
        return std::move(*r);
    }
};

std::string error_code_of(actors::call_result const& r) {
    return r.result.has_error() ? r.result.error().code_text : std::string{"ok"};
}

// A scripted HTTP/1.1 server for cases the simulator cannot produce. Each
// request takes the next step: answer (status, body, keep-alive), or close
// the connection without answering.
struct fake_step {
    unsigned status = 200;
    std::string body{};
    bool close_instead = false;
    bool chunked = false;
    std::string raw{};  // when set: these bytes are the whole answer, then the connection is closed
};

struct fake_server {
    tcp::acceptor acceptor;
    std::vector<fake_step> steps;
    std::size_t next = 0;
    int requests = 0;
    int connections = 0;

    explicit fake_server(asio::io_context& ioc, std::vector<fake_step> s)
        : acceptor{ioc, tcp::endpoint{asio::ip::make_address("127.0.0.1"), 0}}, steps{std::move(s)} {}
    unsigned short port() const { return acceptor.local_endpoint().port(); }

    task<void> serve() {
        for (;;) {
            auto [ec, socket] = co_await acceptor.async_accept(use_nothrow);
            if (ec) co_return;
            ++connections;
            beast::tcp_stream stream{std::move(socket)};
            beast::flat_buffer buffer;
            for (;;) {
                http::request<http::string_body> req;
                stream.expires_after(10s);
                auto [rec, n] = co_await http::async_read(stream, buffer, req, use_nothrow);
                if (rec) break;
                ++requests;
                if (next >= steps.size() || steps[next].close_instead) {
                    ++next;
                    break;
                }
                auto const& step = steps[next++];
                if (!step.raw.empty()) {
                    co_await asio::async_write(stream, asio::buffer(step.raw), use_nothrow);
                    break;
                }
                http::response<http::string_body> res{static_cast<http::status>(step.status), 11};
                res.set(http::field::content_type, "application/json");
                res.body() = step.body;
                res.keep_alive(true);
                if (step.chunked) res.chunked(true);
                else res.prepare_payload();
                auto [wec, wn] = co_await http::async_write(stream, res, use_nothrow);
                if (wec) break;
            }
            boost::system::error_code ignored;
            stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
            stream.socket().close(ignored);
        }
    }
};

void spawn_server(asio::io_context& ioc, fake_server& s) {
    asio::co_spawn(ioc, s.serve(), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    });
}

std::string completion_json(std::string const& text) {
    return R"({"id":"gen-fake-1","object":"chat.completion","model":"anthropic/claude-3.5-sonnet",)"
           R"("choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":")" +
           text + R"("}}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,"cost":0.000012}})";
}

// One HTTP/1.1 chunk.
std::string http_chunk(std::string const& data) {
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    return size + data + "\r\n";
}

std::string sse_head(std::string const& generation_id) {
    return "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
           "X-Generation-Id: " +
           generation_id + "\r\n\r\n";
}

std::string sse_chunk(std::string const& delta_json, std::string const& finish) {
    return R"(data: {"object":"chat.completion.chunk","model":"m/x","choices":[{"index":0,"delta":)" + delta_json +
           R"(,"finish_reason":)" + finish + "}]}\n\n";
}

int shell(std::string const& cmd) { return std::system(("timeout 60 " + cmd + " >/dev/null 2>&1").c_str()); }

bool make_cert(std::filesystem::path const& cert, std::filesystem::path const& pkey) {
    return shell("openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost "
                 "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -days 2 -keyout " +
                 pkey.string() + " -out " + cert.string()) == 0;
}

}  // namespace

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(openrouter_client_parts)

/// Base URLs: scheme, host (IPv6 in brackets), port, path; bad ones named.
BOOST_AUTO_TEST_CASE(parse_base_url_accepts_http_and_https_only) {
    auto e = net::parse_base_url("https://openrouter.ai/api/v1");
    BOOST_REQUIRE(e.has_value());
    BOOST_TEST(e->tls);
    BOOST_TEST(e->host == "openrouter.ai");
    BOOST_TEST(e->port == 443);
    BOOST_TEST(e->base_path == "/api/v1");
    BOOST_TEST(e->host_header() == "openrouter.ai");
    e = net::parse_base_url("http://127.0.0.1:8080/api/v1/");
    BOOST_REQUIRE(e.has_value());
    BOOST_TEST(!e->tls);
    BOOST_TEST(e->port == 8080);
    BOOST_TEST(e->base_path == "/api/v1");
    BOOST_TEST(e->host_header() == "127.0.0.1:8080");
    e = net::parse_base_url("http://[::1]:9000");
    BOOST_REQUIRE(e.has_value());
    BOOST_TEST(e->host == "::1");
    BOOST_TEST(e->base_path == "");
    BOOST_TEST(e->host_header() == "[::1]:9000");
    e = net::parse_base_url("https://[::1]/x");
    BOOST_REQUIRE(e.has_value());
    BOOST_TEST(e->host_header() == "[::1]");
    BOOST_TEST((*net::parse_base_url("http://localhost")).port == 80);
    for (auto bad : {"ftp://x", "openrouter.ai", "https://", "https://u:p@host/", "https://h/a?b", "https://h:/",
                     "https://h:0", "https://h:99999", "https://h:8x", "https://[::1", "https://[::1]x",
                     "https://[::1]:"}) {
        BOOST_TEST_CONTEXT(bad) { BOOST_TEST(net::parse_base_url(bad).has_error()); }
    }
}

/// usage.cost text to nano-dollars, rounded at the 9th decimal.
BOOST_AUTO_TEST_CASE(cost_from_text_is_exact) {
    BOOST_TEST(actors::cost_from_text("0.000540").value().nanos == 540'000);
    BOOST_TEST(actors::cost_from_text("12").value().nanos == 12'000'000'000);
    BOOST_TEST(actors::cost_from_text("0.0000000014").value().nanos == 1);
    BOOST_TEST(actors::cost_from_text("0.0000000015").value().nanos == 2);
    BOOST_TEST(!actors::cost_from_text("0.00000000x5"));
    BOOST_TEST(!actors::cost_from_text("0.0000000001x"));
    BOOST_TEST(!actors::cost_from_text("-1"));
}

/// The error category names every failure.
BOOST_AUTO_TEST_CASE(upstream_errors_have_names_and_messages) {
    auto const& cat = net::upstream_category();
    BOOST_TEST(std::string{cat.name()} == "parley.upstream");
    for (int i = 1; i <= 7; ++i) {
        BOOST_TEST(!cat.message(i).empty());
    }
    BOOST_TEST(make_error_code(net::upstream_errc::stale_connection).message().find("closed") != std::string::npos);
}

/// Bad configuration is refused up front; a missing key fails every call
/// without touching the network.
BOOST_AUTO_TEST_CASE(bad_configuration_is_refused) {
    asio::io_context ioc;
    auto o = options_for(1);
    o.base_url = "nope://x";
    BOOST_CHECK_THROW((actors::openrouter_client{ioc.get_executor(), o}), std::invalid_argument);
    o.base_url = "https://127.0.0.1:1/api/v1";
    o.ca_file = "/nonexistent/ca.pem";
    BOOST_CHECK_THROW((actors::openrouter_client{ioc.get_executor(), o}), std::runtime_error);

    client_fixture f;
    auto no_key = options_for(1);
    no_key.api_key.clear();
    auto r = f.call_once(no_key, chat("x", false));
    BOOST_TEST(error_code_of(r) == "no_api_key");
    BOOST_TEST(r.attempts == 0);
    BOOST_TEST(!r.request_id.empty());
}

/// Settings map onto the client's options.
BOOST_AUTO_TEST_CASE(options_come_from_the_settings) {
    domain::settings s;
    s.openrouter.api_key = "k";
    s.openrouter.ca_file = "/ca.pem";
    s.openrouter.pool_size = 7;
    s.retry.max_retries = 2;
    s.retry.initial_backoff = 100ms;
    s.retry.max_backoff = 900ms;
    s.retry.max_retry_after = 2500ms;
    auto o = actors::openrouter_options::from(s);
    BOOST_TEST(o.base_url == s.openrouter.base_url);
    BOOST_TEST(o.api_key == "k");
    BOOST_TEST(o.ca_file.value() == "/ca.pem");
    BOOST_TEST(o.pool_size == 7u);
    BOOST_TEST(o.retry.max_retries == 2);
    BOOST_TEST(o.retry.initial.count() == 100);
    BOOST_TEST(o.retry.max_backoff.count() == 900);
    BOOST_TEST(o.retry.max_retry_after.count() == 2500);
    BOOST_TEST(o.total_timeout == s.openrouter.total_timeout);
}

/// A connection refuses operations out of order.
BOOST_FIXTURE_TEST_CASE(connection_operations_out_of_order_fail, client_fixture) {
    sim_process sim{fast_sim()};
    run([&]() -> task<void> {
        auto opts = std::make_shared<net::connection_options>();
        opts->endpoint = *net::parse_base_url("http://127.0.0.1:" + std::to_string(sim.port));
        auto deadline = std::chrono::steady_clock::now() + 5s;
        auto c = co_await net::upstream_connection::open(ioc.get_executor(), opts, 2s, deadline);
        BOOST_REQUIRE(c.has_value());
        auto& conn = **c;
        BOOST_TEST(conn.status() == 0u);
        BOOST_TEST(!conn.header("x-generation-id"));
        auto early = co_await conn.read_body(1s, deadline);
        BOOST_TEST(early.error() == make_error_code(net::upstream_errc::not_ready));
        BOOST_TEST(conn.endpoint().port == sim.port);
        conn.close();
        BOOST_TEST(!conn.idle_alive());
        BOOST_TEST(!conn.reusable());
        net::outgoing_request req{"/api/v1/models", "", {}};
        auto ec = co_await conn.send(std::move(req), 1s, deadline);
        BOOST_TEST(ec == make_error_code(net::upstream_errc::not_ready));
        // A deadline already passed fails every stage at once.
        auto past = std::chrono::steady_clock::now() - 1s;
        auto late = co_await net::upstream_connection::open(ioc.get_executor(), opts, 2s, past);
        BOOST_TEST(late.error() == make_error_code(net::upstream_errc::deadline_exceeded));
        auto fresh = co_await net::upstream_connection::open(ioc.get_executor(), opts, 2s, deadline);
        net::outgoing_request req2{"/api/v1/models", "", {}};
        ec = co_await (*fresh)->send(std::move(req2), 1s, past);
        BOOST_TEST(ec == make_error_code(net::upstream_errc::deadline_exceeded));
    });
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
BOOST_FIXTURE_TEST_SUITE(openrouter_client_calls, client_fixture)

/// A non-streamed call returns text, finish reason, the model used, the
/// generation id, usage and the exact cost, in one request.
BOOST_AUTO_TEST_CASE(a_non_streamed_call_returns_the_whole_answer) {
    sim_process sim{fast_sim()};
    auto r = call_once(options_for(sim.port), chat("Hola", false));
    BOOST_REQUIRE_MESSAGE(r.result.has_value(), error_code_of(r));
    auto const& c = *r.result;
    BOOST_TEST(c.text.starts_with("Echo: Hola"));
    BOOST_TEST(c.finish_reason == "stop");
    BOOST_TEST(c.model == "anthropic/claude-3.5-sonnet");
    BOOST_TEST(c.generation_id.starts_with("gen-"));
    BOOST_REQUIRE(c.usage.has_value());
    BOOST_TEST(c.usage->prompt_tokens > 0);
    BOOST_TEST(c.usage->completion_tokens == 5);
    BOOST_REQUIRE(r.cost.has_value());
    BOOST_TEST(r.cost->nanos > 0);
    auto gen = sim.get("/api/v1/generation?id=" + c.generation_id, {{"Authorization", "Bearer " + key}});
    BOOST_TEST(r.attempts == 1);
    BOOST_TEST(sim.attempts(r.request_id) == 1);
    BOOST_TEST(gen.at("data").at("id").as_string() == c.generation_id);
}

/// Streamed deltas reach the callback as they arrive, long before the end;
/// joined, they are the text.
BOOST_AUTO_TEST_CASE(streamed_deltas_arrive_before_the_end) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "20", "--answer-tokens", "12"}};
    std::vector<std::chrono::steady_clock::time_point> at;
    std::string joined;
    auto c = chat("stream me", true);
    c.on_text = [&](std::string_view t) {
        at.push_back(std::chrono::steady_clock::now());
        joined += t;
    };
    auto r = call_once(options_for(sim.port), std::move(c));
    auto const end = std::chrono::steady_clock::now();
    BOOST_REQUIRE_MESSAGE(r.result.has_value(), error_code_of(r));
    BOOST_TEST(at.size() >= 5u);
    BOOST_TEST(joined == r.result->text);
    BOOST_TEST(r.result->text.starts_with("Echo: stream me"));
    BOOST_TEST((end - at.front() > 300ms));  // the first delta came well before the end
    BOOST_TEST(r.result->usage.has_value());
    BOOST_TEST(r.cost.has_value());
}

/// Tool calls streamed in fragments, and in a whole body, are assembled.
BOOST_AUTO_TEST_CASE(tool_calls_are_assembled) {
    sim_process sim{fast_sim()};
    auto const turn = R"({"tool_calls":[{"id":"call_1","name":"get_weather","arguments":{"city":"Paris","days":2}},)"
                      R"({"id":"call_2","name":"current_time"}]})";
    sim.script(std::string{R"({"turns":[)"} + turn + "," + turn + "]}");
    for (bool stream : {true, false}) {
        BOOST_TEST_CONTEXT("stream " << stream) {
            auto r = call_once(options_for(sim.port), chat("weather?", stream));
            BOOST_REQUIRE_MESSAGE(r.result.has_value(), error_code_of(r));
            auto const& calls = r.result->tool_calls;
            BOOST_REQUIRE(calls.size() == 2u);
            BOOST_TEST(calls[0].id == "call_1");
            BOOST_TEST(calls[0].name == "get_weather");
            BOOST_TEST(json::parse(calls[0].arguments) == json::parse(R"({"city":"Paris","days":2})"));
            BOOST_TEST(calls[1].name == "current_time");
            BOOST_TEST(calls[1].arguments == "{}");
            BOOST_TEST(r.result->finish_reason == "tool_calls");
        }
    }
}

/// Headers: Authorization, HTTP-Referer, X-OpenRouter-Title, and one
/// X-Request-Id per logical call, the same on every attempt.
BOOST_AUTO_TEST_CASE(headers_and_one_request_id_per_call) {
    sim_process sim{fast_sim()};
    auto c = chat("x", false, {{"X-Sim-Fault", "502;times=1"}});
    c.request_id = "req-fixed-1";
    auto r = call_once(options_for(sim.port), std::move(c));
    BOOST_TEST(r.result.has_value());
    BOOST_TEST(r.request_id == "req-fixed-1");
    BOOST_TEST(sim.attempts("req-fixed-1") == 2);
    auto recorded = sim.get("/sim/requests?last=2").at("requests").as_array();
    BOOST_REQUIRE(recorded.size() == 2u);
    for (auto const& q : recorded) {
        BOOST_TEST(q.at("authorization").as_bool());
        auto const& h = q.at("headers").as_object();
        BOOST_TEST(h.at("x-request-id").as_string() == "req-fixed-1");
        BOOST_TEST(h.at("http-referer").as_string() == "https://parley.example");
        BOOST_TEST(h.at("x-openrouter-title").as_string() == "Parley Test");
    }
    // Without a given id, each call draws a fresh one.
    auto a = call_once(options_for(sim.port), chat("x", false));
    auto b = call_once(options_for(sim.port), chat("x", false));
    BOOST_TEST(a.request_id.size() == 32u);
    BOOST_TEST(a.request_id != b.request_id);
    // Empty referer and title are not sent.
    auto o = options_for(sim.port);
    o.referer.clear();
    o.title.clear();
    call_once(o, chat("x", false));
    auto last = sim.get("/sim/requests?last=1").at("requests").as_array().at(0).at("headers").as_object();
    BOOST_TEST(!last.contains("http-referer"));
    BOOST_TEST(!last.contains("x-openrouter-title"));
}

/// 502 then success: 2 attempts. 502 four times: 4 attempts and the
/// failure. 401: 1 attempt.
BOOST_AUTO_TEST_CASE(retries_are_counted_by_the_simulator) {
    sim_process sim{fast_sim()};
    auto once = call_once(options_for(sim.port), chat("x", true, {{"X-Sim-Fault", "502;times=1"}}));
    BOOST_TEST(once.result.has_value());
    BOOST_TEST(once.attempts == 2);
    BOOST_TEST(sim.attempts(once.request_id) == 2);
    BOOST_TEST(once.waits.size() == 1u);

    auto always = call_once(options_for(sim.port), chat("x", false, {{"X-Sim-Fault", "502"}}));
    BOOST_REQUIRE(always.result.has_error());
    BOOST_TEST(always.result.error().status == 502);
    BOOST_TEST(always.result.error().retryable);
    BOOST_TEST(always.attempts == 4);
    BOOST_TEST(sim.attempts(always.request_id) == 4);

    auto denied = call_once(options_for(sim.port), chat("x", false, {{"X-Sim-Fault", "401"}}));
    BOOST_REQUIRE(denied.result.has_error());
    BOOST_TEST(denied.result.error().status == 401);
    BOOST_TEST(!denied.result.error().retryable);
    BOOST_TEST(denied.attempts == 1);
    BOOST_TEST(sim.attempts(denied.request_id) == 1);
}

/// Retry-After is honoured: exactly (injected sleep) and in real time.
BOOST_AUTO_TEST_CASE(retry_after_is_honoured) {
    sim_process sim{fast_sim()};
    auto w = std::make_shared<recorded_waits>();
    auto r = call_once(options_for(sim.port), chat("x", false, {{"X-Sim-Fault", "429;times=1;retry-after=1"}}),
                       instant_env(w));
    BOOST_TEST(r.result.has_value());
    BOOST_TEST((w->waits == std::vector<ms>{1000ms}));

    auto const start = std::chrono::steady_clock::now();
    auto real = call_once(options_for(sim.port), chat("x", false, {{"X-Sim-Fault", "503;times=1;retry-after=1"}}));
    BOOST_TEST(real.result.has_value());
    BOOST_TEST((std::chrono::steady_clock::now() - start >= 1000ms));
    BOOST_TEST(sim.attempts(real.request_id) == 2);
}

/// Connect timeout: a listener whose backlog is full never completes the
/// TCP handshake; a TLS listener that never answers never completes the
/// TLS handshake. Nothing reaches an upstream.
BOOST_AUTO_TEST_CASE(connect_timeout) {
    run([&]() -> task<void> {
        tcp::acceptor full{ioc, tcp::endpoint{asio::ip::make_address("127.0.0.1"), 0}};
        full.listen(0);
        std::vector<std::unique_ptr<tcp::socket>> fillers;
        for (int i = 0; i < 4; ++i) {
            fillers.push_back(std::make_unique<tcp::socket>(ioc));
            fillers.back()->async_connect(full.local_endpoint(), [](boost::system::error_code) {});
        }
        co_await sleep_for(100ms);
        auto o = options_for(full.local_endpoint().port());
        o.connect_timeout = 300ms;
        o.retry.max_retries = 1;
        actors::openrouter_client client{ioc.get_executor(), o};
        auto const start = std::chrono::steady_clock::now();
        auto r = co_await client.complete(chat("x", false));
        auto const took = std::chrono::steady_clock::now() - start;
        BOOST_TEST(error_code_of(r) == "connect_timeout");
        BOOST_TEST(r.result.error().retryable);
        BOOST_TEST(r.attempts == 0);
        BOOST_TEST((took >= 600ms && took < 3s));
        co_await client.shutdown();

        tcp::acceptor silent{ioc, tcp::endpoint{asio::ip::make_address("127.0.0.1"), 0}};
        tcp::socket accepted{ioc};
        silent.async_accept(accepted, [](boost::system::error_code) {});
        auto t = options_for(silent.local_endpoint().port(), "https");
        t.connect_timeout = 300ms;
        t.retry.max_retries = 0;
        actors::openrouter_client tls_client{ioc.get_executor(), t};
        auto rt = co_await tls_client.complete(chat("x", false));
        BOOST_TEST(error_code_of(rt) == "connect_timeout");
        co_await tls_client.shutdown();
    });
}

/// A refused connection and an unknown host are connect failures, retried.
BOOST_AUTO_TEST_CASE(connect_failures) {
    unsigned short closed_port = 0;
    {
        tcp::acceptor a{ioc, tcp::endpoint{asio::ip::make_address("127.0.0.1"), 0}};
        closed_port = a.local_endpoint().port();
    }
    auto w = std::make_shared<recorded_waits>();
    auto r = call_once(options_for(closed_port), chat("x", false), instant_env(w));
    BOOST_TEST(error_code_of(r) == "connect_failed");
    BOOST_TEST(r.attempts == 0);
    BOOST_TEST(w->waits.size() == 3u);  // 4 attempts

    auto o = options_for(1);
    o.base_url = "http://parley-no-such-host.invalid/api/v1";
    o.retry.max_retries = 0;
    auto unknown = call_once(o, chat("x", false));
    BOOST_TEST(error_code_of(unknown) == "connect_failed");
}

/// A host name is resolved (localhost).
BOOST_AUTO_TEST_CASE(a_host_name_is_resolved) {
    sim_process sim{fast_sim()};
    auto o = options_for(sim.port);
    o.base_url = "http://localhost:" + std::to_string(sim.port) + "/api/v1";
    auto r = call_once(o, chat("x", false));
    BOOST_TEST(r.result.has_value(), error_code_of(r));
}

/// First-byte timeout: the simulator waits before its status line.
BOOST_AUTO_TEST_CASE(first_byte_timeout) {
    sim_process sim{fast_sim()};
    auto o = options_for(sim.port);
    o.first_byte_timeout = 300ms;
    o.retry.max_retries = 1;
    auto r = call_once(o, chat("x", true, {{"X-Sim-Fault", "slow-first-byte;delay-ms=2000"}}));
    BOOST_TEST(error_code_of(r) == "first_byte_timeout");
    BOOST_TEST(r.result.error().retryable);
    BOOST_TEST(r.attempts == 2);  // each request did reach the upstream
    // Within the limit, a slow first byte is just slow.
    auto ok = call_once(options_for(sim.port), chat("x", true, {{"X-Sim-Fault", "slow-first-byte;delay-ms=200"}}));
    BOOST_TEST(ok.result.has_value());
}

/// Chunk-gap timeout: tokens slower than the allowed silence; after the
/// first token the failure is final (never retried).
BOOST_AUTO_TEST_CASE(chunk_gap_timeout) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "2", "--answer-tokens", "10",
                     "--keepalive-comments", "0"}};
    auto o = options_for(sim.port);
    o.chunk_gap_timeout = 250ms;
    std::string seen;
    auto c = chat("x", true);
    c.on_text = [&](std::string_view t) { seen += t; };
    auto r = call_once(o, std::move(c));
    BOOST_TEST(error_code_of(r) == "chunk_gap_timeout");
    BOOST_TEST(r.result.error().mid_stream);
    BOOST_TEST(!seen.empty());
    BOOST_TEST(r.attempts == 1);
}

/// The whole-call deadline cuts a call that would go on too long.
BOOST_AUTO_TEST_CASE(total_deadline) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "5", "--answer-tokens", "50"}};
    auto o = options_for(sim.port);
    o.total_timeout = 600ms;
    auto const start = std::chrono::steady_clock::now();
    auto r = call_once(o, chat("x", true));
    BOOST_TEST(error_code_of(r) == "deadline_exceeded");
    BOOST_TEST((std::chrono::steady_clock::now() - start < 2s));
}

/// Cancelling the awaiting coroutine mid-stream closes the upstream
/// connection at once: the simulator counts the stream as cancelled and
/// the pool does not keep the connection.
BOOST_AUTO_TEST_CASE(cancelling_mid_stream_closes_the_upstream_connection) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "10", "--answer-tokens", "60"}};
    run([&]() -> task<void> {
        using namespace asio::experimental::awaitable_operators;
        actors::openrouter_client client{ioc.get_executor(), options_for(sim.port)};
        int deltas = 0;
        auto c = chat("x", true);
        c.on_text = [&](std::string_view) { ++deltas; };
        auto call = client.complete(std::move(c));
        auto nap = sleep_for(500ms);
        auto first = co_await (std::move(call) || std::move(nap));
        BOOST_TEST(first.index() == 1u);  // the timer won; the call was cancelled
        BOOST_TEST(deltas > 0);
        int cancelled = 0;
        for (int i = 0; i < 100 && cancelled == 0; ++i) {
            co_await sleep_for(20ms);
            cancelled = static_cast<int>(sim.counters().at("cancelled").to_number<std::int64_t>());
        }
        BOOST_TEST(cancelled == 1);
        auto s = co_await client.stats();
        BOOST_TEST(s->open == 0u);
        BOOST_TEST(s->in_use == 0u);
        BOOST_TEST(s->discarded == 1u);
        co_await client.shutdown();
    });
}

/// A cancellation while waiting for a pooled connection ends the call too.
BOOST_AUTO_TEST_CASE(cancelling_while_waiting_for_a_connection) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "10", "--answer-tokens", "20"}};
    run([&]() -> task<void> {
        using namespace asio::experimental::awaitable_operators;
        auto o = options_for(sim.port);
        o.pool_size = 1;
        actors::openrouter_client client{ioc.get_executor(), o};
        std::optional<actors::call_result> first_result;
        auto ex = co_await asio::this_coro::executor;
        asio::co_spawn(
            ex,
            [&]() -> task<void> { first_result = co_await client.complete(chat("busy", true)); },
            [](std::exception_ptr e) {
                if (e) std::rethrow_exception(e);
            });
        co_await sleep_for(100ms);
        auto second = client.complete(chat("waiting", true));
        auto nap = sleep_for(100ms);
        auto which = co_await (std::move(second) || std::move(nap));
        BOOST_TEST(which.index() == 1u);
        for (int i = 0; i < 200 && !first_result; ++i) co_await sleep_for(20ms);
        BOOST_REQUIRE(first_result.has_value());
        BOOST_TEST(first_result->result.has_value());
        co_await client.shutdown();
    });
}

/// Two calls in a row use one kept-alive connection.
BOOST_AUTO_TEST_CASE(keep_alive_reuses_the_connection) {
    sim_process sim{fast_sim()};
    run([&]() -> task<void> {
        actors::openrouter_client client{ioc.get_executor(), options_for(sim.port)};
        auto a = co_await client.complete(chat("one", true));
        auto b = co_await client.complete(chat("two", false));
        BOOST_TEST(a.result.has_value());
        BOOST_TEST(b.result.has_value());
        auto s = co_await client.stats();
        BOOST_TEST(s->opened == 1u);
        BOOST_TEST(s->reused == 1u);
        BOOST_TEST(s->idle == 1u);
        co_await client.shutdown();
        auto after = co_await client.complete(chat("three", false));
        BOOST_TEST(error_code_of(after) == "client_stopped");
    });
}

/// 500 concurrent streams through a pool of 64 connections all complete
/// with their own answers; the pool never opens more than 64.
BOOST_AUTO_TEST_CASE(five_hundred_concurrent_streams_through_a_pool_of_64) {
    sim_process sim{{"--latency-ms", "20", "--tokens-per-second", "200", "--answer-tokens", "8"}};
    run(
        [&]() -> task<void> {
            auto o = options_for(sim.port);
            o.pool_size = 64;
            o.total_timeout = 60s;
            actors::openrouter_client client{ioc.get_executor(), o};
            constexpr int n = 500;
            std::vector<std::optional<actors::call_result>> results(n);
            std::vector<std::string> streamed(n);
            int finished = 0;
            auto ex = co_await asio::this_coro::executor;
            for (int i = 0; i < n; ++i) {
                asio::co_spawn(
                    ex,
                    [&, i]() -> task<void> {
                        auto c = chat("stream " + std::to_string(i), true);
                        c.on_text = [&, i](std::string_view t) { streamed[i] += t; };
                        results[i] = co_await client.complete(std::move(c));
                        ++finished;
                    },
                    [](std::exception_ptr e) {
                        if (e) std::rethrow_exception(e);
                    });
            }
            for (int i = 0; i < 3000 && finished < n; ++i) co_await sleep_for(20ms);
            BOOST_REQUIRE(finished == n);
            int ok = 0;
            for (int i = 0; i < n; ++i) {
                auto const& r = results[i]->result;
                if (r && r->text.starts_with("Echo: stream " + std::to_string(i)) && r->text == streamed[i] &&
                    r->finish_reason == "stop") {
                    ++ok;
                }
            }
            BOOST_TEST(ok == n);
            auto s = co_await client.stats();
            BOOST_TEST(s->opened <= 64u);
            BOOST_TEST(s->open <= 64u);
            BOOST_TEST(s->waited > 0u);
            BOOST_TEST(s->acquired == static_cast<std::uint64_t>(n));
            BOOST_TEST(s->in_use == 0u);
            auto counters = sim.counters();
            BOOST_TEST(counters.at("requests").to_number<int>() == n);
            BOOST_TEST(counters.at("completed").to_number<int>() == n);
            co_await client.shutdown();
        },
        120s);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
BOOST_FIXTURE_TEST_SUITE(openrouter_client_faults, client_fixture)

/// Every fault the simulator can produce ends in its documented outcome
/// (first try + 1 retry allowed, waits injected).
BOOST_AUTO_TEST_CASE(every_fault_ends_in_its_documented_outcome) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "0", "--answer-tokens", "8"}};
    struct expectation {
        std::string fault;
        bool stream;
        std::string outcome;  // "ok" or code_text
        int status;
        bool retryable;
        int attempts;
        bool mid_stream = false;
    };
    std::vector<expectation> const table{
        {"400", false, "400", 400, false, 1},
        {"401", true, "401", 401, false, 1},
        {"402", false, "402", 402, false, 1},
        {"429", true, "429", 429, true, 2},
        {"500", false, "500", 500, true, 2},
        {"502", true, "502", 502, true, 2},
        {"503", false, "503", 503, true, 2},
        {"mid-stream-error", true, "502", 502, true, 1, true},  // after tokens: never retried
        {"mid-stream-error;after-tokens=0", true, "502", 502, true, 2, true},
        {"mid-stream-error", false, "502", 502, true, 2},
        {"drop", true, "stream_ended_early", 0, true, 1, true},
        {"drop;after-tokens=0", true, "stream_ended_early", 0, true, 2, true},
        {"drop", false, "connection_closed", 0, true, 2},
        {"slow-first-byte;delay-ms=50", true, "ok", 0, false, 1},
        {"slow-first-byte;delay-ms=50", false, "ok", 0, false, 1},
        {"error-200", false, "502", 502, true, 2},
        {"error-200", true, "502", 502, true, 2, true},
        {"whitespace-only", false, "connection_closed", 0, true, 2},
        {"whitespace-only", true, "stream_ended_early", 0, true, 2, true},
    };
    for (auto const& e : table) {
        BOOST_TEST_CONTEXT(e.fault << (e.stream ? " streamed" : " whole")) {
            auto o = options_for(sim.port);
            o.retry.max_retries = 1;
            auto w = std::make_shared<recorded_waits>();
            auto r = call_once(o, chat("x", e.stream, {{"X-Sim-Fault", e.fault}}), instant_env(w));
            BOOST_TEST(error_code_of(r) == e.outcome);
            BOOST_TEST(r.attempts == e.attempts);
            BOOST_TEST(sim.attempts(r.request_id) == e.attempts);
            if (r.result.has_error()) {
                BOOST_TEST(r.result.error().status == e.status);
                BOOST_TEST(r.result.error().retryable == e.retryable);
                BOOST_TEST(r.result.error().mid_stream == e.mid_stream);
            }
        }
    }
}

/// A kept-alive connection that the server closes when the next request
/// arrives is replaced once, transparently: still one attempt.
BOOST_AUTO_TEST_CASE(a_stale_kept_alive_connection_is_replaced) {
    fake_server server{ioc, {{200, completion_json("one")}, {0, "", true}, {200, completion_json("two")}}};
    spawn_server(ioc, server);
    run([&]() -> task<void> {
        actors::openrouter_client client{ioc.get_executor(), options_for(server.port())};
        auto a = co_await client.complete(chat("x", false));
        auto b = co_await client.complete(chat("x", false));
        BOOST_TEST(a.result->text == "one");
        BOOST_REQUIRE_MESSAGE(b.result.has_value(), error_code_of(b));
        BOOST_TEST(b.result->text == "two");
        BOOST_TEST(b.attempts == 1);
        BOOST_TEST(b.result->generation_id == "gen-fake-1");
        BOOST_TEST(b.cost.value().nanos == 12'000);
        BOOST_TEST(server.requests == 3);
        BOOST_TEST(server.connections == 2);
        co_await client.shutdown();
    });
}

/// An error body beyond 64 KiB is not read to its end (the connection is
/// closed; the status still classifies it), nor one beyond the body limit;
/// a success body beyond the limit is body_too_large and final.
BOOST_AUTO_TEST_CASE(body_limits) {
    fake_server server{ioc,
                       {{500, std::string(100 * 1024, 'x')}, {503, std::string(3000, 'x')},
                        {200, completion_json(std::string(4000, 'y'))}, {200, completion_json("small"), false, true}}};
    spawn_server(ioc, server);
    run([&]() -> task<void> {
        auto o = options_for(server.port());
        o.retry.max_retries = 0;
        actors::openrouter_client roomy{ioc.get_executor(), o};
        auto big_error = co_await roomy.complete(chat("x", false));
        BOOST_REQUIRE(big_error.result.has_error());
        BOOST_TEST(big_error.result.error().status == 500);
        BOOST_TEST((co_await roomy.stats())->discarded == 1u);
        co_await roomy.shutdown();

        o.body_limit = 2000;
        actors::openrouter_client tight{ioc.get_executor(), o};
        auto long_error = co_await tight.complete(chat("x", false));
        BOOST_REQUIRE(long_error.result.has_error());
        BOOST_TEST(long_error.result.error().status == 503);
        auto big_answer = co_await tight.complete(chat("x", false));
        BOOST_TEST(error_code_of(big_answer) == "body_too_large");
        BOOST_TEST(!big_answer.result.error().retryable);
        auto chunked = co_await tight.complete(chat("x", false));
        BOOST_TEST(chunked.result.has_value());
        auto s = co_await tight.stats();
        BOOST_TEST(s->discarded == 2u);
        BOOST_TEST(s->idle == 1u);
        co_await tight.shutdown();
    });
}

/// Streams that end oddly: [DONE] then a cut before the body's end is a
/// complete answer; a finish reason then a cut (no [DONE]) is complete too;
/// a cut with neither is stream_ended_early. A body without an id takes
/// the X-Generation-Id header.
BOOST_AUTO_TEST_CASE(streams_cut_after_the_answer_are_complete) {
    auto const hi = sse_chunk(R"({"role":"assistant","content":"Hi"})", "null");
    auto const stop = sse_chunk(R"({"role":"assistant","content":""})", R"("stop")");
    std::string const whole_body =
        R"({"choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"Whole"}}]})";
    fake_server server{ioc,
                       {{.raw = sse_head("gen-hdr-1") + http_chunk(hi + stop + "data: [DONE]\n\n")},
                        {.raw = sse_head("gen-hdr-2") + http_chunk(hi + stop)},
                        {.raw = sse_head("gen-hdr-3") + http_chunk(hi)},
                        {.raw = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(whole_body.size()) +
                                "\r\nX-Generation-Id: gen-hdr-4\r\n\r\n" + whole_body}}};
    spawn_server(ioc, server);
    run([&]() -> task<void> {
        auto o = options_for(server.port());
        o.retry.max_retries = 0;
        actors::openrouter_client client{ioc.get_executor(), o};
        auto done = co_await client.complete(chat("x", true));
        BOOST_REQUIRE_MESSAGE(done.result.has_value(), error_code_of(done));
        BOOST_TEST(done.result->text == "Hi");
        BOOST_TEST(done.result->saw_done);
        BOOST_TEST(done.result->generation_id == "gen-hdr-1");
        auto finished = co_await client.complete(chat("x", true));
        BOOST_REQUIRE_MESSAGE(finished.result.has_value(), error_code_of(finished));
        BOOST_TEST(!finished.result->saw_done);
        BOOST_TEST(finished.result->finish_reason == "stop");
        auto cut = co_await client.complete(chat("x", true));
        BOOST_TEST(error_code_of(cut) == "stream_ended_early");
        auto whole = co_await client.complete(chat("x", false));
        BOOST_REQUIRE_MESSAGE(whole.result.has_value(), error_code_of(whole));
        BOOST_TEST(whole.result->text == "Whole");
        BOOST_TEST(whole.result->generation_id == "gen-hdr-4");
        BOOST_TEST(!whole.cost.has_value());
        co_await client.shutdown();
    });
}

/// A call that cannot get a pooled connection before its deadline fails
/// with pool_timeout; a per-call timeout overrides the client's.
BOOST_AUTO_TEST_CASE(waiting_too_long_for_a_pooled_connection) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "10", "--answer-tokens", "10"}};
    run([&]() -> task<void> {
        auto o = options_for(sim.port);
        o.pool_size = 1;
        actors::openrouter_client client{ioc.get_executor(), o};
        std::optional<actors::call_result> first;
        auto ex = co_await asio::this_coro::executor;
        asio::co_spawn(
            ex, [&]() -> task<void> { first = co_await client.complete(chat("busy", true)); },
            [](std::exception_ptr e) {
                if (e) std::rethrow_exception(e);
            });
        co_await sleep_for(50ms);
        auto impatient = chat("impatient", false);
        impatient.total_timeout = 200ms;
        auto const start = std::chrono::steady_clock::now();
        auto r = co_await client.complete(std::move(impatient));
        BOOST_TEST(error_code_of(r) == "pool_timeout");
        BOOST_TEST(r.attempts == 0);
        BOOST_TEST((std::chrono::steady_clock::now() - start < 1s));
        for (int i = 0; i < 200 && !first; ++i) co_await sleep_for(20ms);
        BOOST_TEST(first->result.has_value());
        co_await client.shutdown();
    });
}

/// An attempt never starts once the call's deadline has passed, even when
/// the retry schedule's clock says there is time left.
BOOST_AUTO_TEST_CASE(no_attempt_starts_after_the_deadline) {
    sim_process sim{fast_sim()};
    auto env = actors::retry_env::system();
    auto const frozen = std::chrono::steady_clock::now();
    env.now = [frozen] { return frozen; };
    env.sleep = [](ms) -> task<bool> {
        asio::steady_timer t{co_await asio::this_coro::executor, 300ms};  // real time passes
        co_await t.async_wait(use_nothrow);
        co_return true;
    };
    auto o = options_for(sim.port);
    o.total_timeout = 250ms;
    o.retry.max_retries = 1;
    auto r = call_once(o, chat("x", false, {{"X-Sim-Fault", "502"}}), env);
    BOOST_TEST(error_code_of(r) == "deadline_exceeded");
    BOOST_TEST(r.attempts == 1);
    BOOST_TEST(sim.attempts(r.request_id) == 1);
}

/// The API key never appears in a log line, even at trace level.
BOOST_AUTO_TEST_CASE(the_key_is_never_logged) {
    sim_process sim{fast_sim()};
    std::ostringstream log;
    auto previous = spdlog::default_logger();
    auto logger = std::make_shared<spdlog::logger>("capture", std::make_shared<spdlog::sinks::ostream_sink_st>(log));
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
    call_once(options_for(sim.port), chat("x", false, {{"X-Sim-Fault", "502;times=1"}}));
    call_once(options_for(sim.port), chat("x", true, {{"X-Sim-Fault", "401"}}));
    spdlog::set_default_logger(previous);
    BOOST_TEST(!log.str().empty());
    BOOST_TEST(log.str().find(key) == std::string::npos);
    BOOST_TEST(log.str().find("Bearer") == std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
BOOST_FIXTURE_TEST_SUITE(openrouter_client_tls, client_fixture)

/// Over TLS: trusting the simulator's certificate (ca_file) works, by
/// address and by name; the system store alone refuses it, and that
/// failure is final (not retried) and reaches no upstream.
BOOST_AUTO_TEST_CASE(verified_against_the_configured_ca_only) {
    parley::test::temp_dir dir;
    auto cert = dir.path / "cert.pem", pkey = dir.path / "key.pem";
    BOOST_TEST_REQUIRE(make_cert(cert, pkey));
    sim_process sim{{"--tls-cert", cert.string(), "--tls-key", pkey.string(), "--latency-ms", "0",
                     "--tokens-per-second", "0", "--answer-tokens", "5"},
                    http_client::tls_options{cert, "127.0.0.1"}};
    auto o = options_for(sim.port, "https");
    o.ca_file = cert.string();
    auto r = call_once(o, chat("secure", true));
    BOOST_REQUIRE_MESSAGE(r.result.has_value(), error_code_of(r));
    BOOST_TEST(r.result->text.starts_with("Echo: secure"));
    BOOST_TEST(sim.attempts(r.request_id) == 1);

    o.base_url = "https://localhost:" + std::to_string(sim.port) + "/api/v1";
    auto by_name = call_once(o, chat("secure", false));
    BOOST_TEST(by_name.result.has_value(), error_code_of(by_name));

    auto untrusted = options_for(sim.port, "https");
    auto refused = call_once(untrusted, chat("secure", false));
    BOOST_TEST(error_code_of(refused) == "tls_error");
    BOOST_TEST(!refused.result.error().retryable);
    BOOST_TEST(refused.attempts == 0);
}

BOOST_AUTO_TEST_SUITE_END()
