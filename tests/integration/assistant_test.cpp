// The assistant's turn (issue #5; ARCHITECTURE §4-§5) in-process: the real
// SessionActor, the real accounting stack (SQLite file, usage log), the
// real assistant wiring (prompts, tools, fallbacks from conf/ and a
// tools.json of the test's own), the real openrouter-sim process, and a
// real HTTP server in the test for the webhook tools. Frames arrive through
// the session's sink on the io thread; a turn is over when idle() returns.
// Every suite name starts with "assistant".
#include "actors/openrouter_client.hpp"
#include "actors/session.hpp"
#include "app/accounting.hpp"
#include "app/assistant.hpp"
#include "domain/config.hpp"
#include "domain/i18n.hpp"
#include "domain/money.hpp"
#include "domain/usage.hpp"
#include "net/http_server.hpp"
#include "persistence/database.hpp"
#include "persistence/usage_repository.hpp"

#include "support/http_client.hpp"
#include "support/io_fixture.hpp"
#include "support/process.hpp"
#include "support/sim_process.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/test/unit_test.hpp>
#include <soci/soci.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
namespace json = boost::json;
namespace asio = parley::asio;
namespace actors = parley::actors;
namespace app = parley::app;
namespace domain = parley::domain;
namespace net = parley::net;
namespace persistence = parley::persistence;
namespace http = boost::beast::http;
using parley::task;
using parley::use_nothrow;
using parley::test::http_client;
using steady = std::chrono::steady_clock;

std::string const key = "sk-or-assistant-key";

// ------------------------------------------------------------ the simulator

struct sim_process : parley::test::sim_process {
    using parley::test::sim_process::sim_process;
    std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port) + "/api/v1"; }
    json::value get(std::string const& target) {
        http_client c{"127.0.0.1", port, tls};
        auto r = c.get(target, {{"Authorization", "Bearer " + key}});
        BOOST_TEST_REQUIRE(r.status == 200u, target << " -> " << r.status << " " << r.body);
        return json::parse(r.body);
    }
    std::int64_t counter(std::string const& name) { return get("/sim/counters").at(name).to_number<std::int64_t>(); }
    std::int64_t requests() { return counter("requests"); }
    // The bodies of the last n chat requests, oldest first.
    std::vector<json::object> bodies(int n) {
        std::vector<json::object> out;
        auto const got = get("/sim/requests?last=" + std::to_string(n));
        for (auto const& r : got.at("requests").as_array()) {
            out.push_back(r.at("body").as_object());
        }
        return out;
    }
    json::object last_body() {
        auto b = bodies(1);
        BOOST_TEST_REQUIRE(b.size() == 1u);
        return b.front();
    }
    void script(std::string const& doc) {
        http_client c{"127.0.0.1", port, tls};
        auto r = c.post("/sim/script", doc, {{"Authorization", "Bearer " + key}});
        BOOST_TEST_REQUIRE(r.status == 200u, r.body);
    }
};

std::vector<std::string> fast_sim() {
    return {"--latency-ms", "0", "--tokens-per-second", "0", "--answer-tokens", "6"};
}

// The text of a message's content: a string, or the text parts of an array
// (the system prompt carries a cache breakpoint for anthropic/* models).
std::string content_text(json::value const& content) {
    if (content.is_string()) {
        return std::string{content.get_string()};
    }
    std::string out;
    if (content.is_array()) {
        for (auto const& part : content.get_array()) {
            if (auto const* t = part.as_object().if_contains("text")) {
                out += t->as_string();
            }
        }
    }
    return out;
}

std::string system_prompt_of(json::object const& body) {
    auto const& first = body.at("messages").as_array().at(0).as_object();
    BOOST_TEST(first.at("role").as_string() == "system");
    return content_text(first.at("content"));
}

std::vector<json::object> messages_with_role(json::object const& body, std::string_view role) {
    std::vector<json::object> out;
    for (auto const& m : body.at("messages").as_array()) {
        if (m.as_object().at("role").as_string() == role) {
            out.push_back(m.as_object());
        }
    }
    return out;
}

std::vector<std::string> tool_names_offered(json::object const& body) {
    std::vector<std::string> out;
    if (auto const* tools = body.if_contains("tools")) {
        for (auto const& t : tools->as_array()) {
            out.emplace_back(t.at("function").at("name").as_string());
        }
    }
    return out;
}

bool contains(std::vector<std::string> const& v, std::string const& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
}

bool has(std::string_view haystack, std::string_view needle) { return haystack.find(needle) != std::string_view::npos; }

std::string str(json::value const& v) { return std::string{v.as_string()}; }

// ------------------------------------------------------------ webhook tools

struct webhook_call {
    std::string path;
    json::object body;  // {"tool","arguments","user"}
};

struct webhooks;
task<void> answer_webhook(webhooks* self, net::request& req, net::exchange& ex);

// An HTTP server on 127.0.0.1:0 answering per path:
//   /ok    JSON {"forecast":"sunny","city":<arguments.city>}
//   /slow  waits arguments.ms (default 300) ms, then JSON {"tool","slept_ms"}
//   /fail  HTTP 500
//   /big   a 10 000-byte JSON answer
//   /text  plain text "sunny and mild"
struct webhooks {
    std::vector<webhook_call> calls;  // touched on the io thread only
    std::unique_ptr<net::http_server> server;

    explicit webhooks(asio::any_io_executor ex) {
        server = std::make_unique<net::http_server>(
            std::move(ex), net::server_options{},
            [this](net::request& req, net::exchange& x) { return answer_webhook(this, req, x); });
        server->start();
    }
    unsigned short port() const { return server->local_endpoint().port(); }
    std::string url(std::string_view path) const { return "http://127.0.0.1:" + std::to_string(port()) + std::string{path}; }
};

task<void> answer_webhook(webhooks* self, net::request& req, net::exchange& ex) {
    webhook_call c;
    c.path = std::string{req.target()};
    boost::system::error_code ec;
    auto parsed = json::parse(req.body(), ec);
    if (!ec && parsed.is_object()) {
        c.body = parsed.as_object();
    }
    self->calls.push_back(c);
    json::object args;
    if (auto const* a = c.body.if_contains("arguments"); a && a->is_object()) {
        args = a->as_object();
    }
    net::response res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    if (c.path == "/ok") {
        json::object o;
        o["forecast"] = "sunny";
        if (auto const* city = args.if_contains("city")) {
            o["city"] = *city;
        }
        res.body() = json::serialize(o);
    } else if (c.path == "/slow") {
        std::int64_t ms = 300;
        if (auto const* m = args.if_contains("ms"); m && m->is_int64()) {
            ms = m->as_int64();
        }
        asio::steady_timer t{co_await asio::this_coro::executor, std::chrono::milliseconds{ms}};
        co_await t.async_wait(use_nothrow);
        json::object o;
        if (auto const* tool = c.body.if_contains("tool")) {
            o["tool"] = *tool;
        }
        o["slept_ms"] = ms;
        res.body() = json::serialize(o);
    } else if (c.path == "/fail") {
        res.result(http::status::internal_server_error);
        res.body() = R"({"error":"boom"})";
    } else if (c.path == "/big") {
        res.body() = "{\"blob\":\"" + std::string(10'000, 'x') + "\"}";
    } else if (c.path == "/text") {
        res.set(http::field::content_type, "text/plain");
        res.body() = "sunny and mild";
    } else {
        res.result(http::status::not_found);
        res.body() = R"({"error":"no such path"})";
    }
    co_await ex.respond(std::move(res));
}

std::string http_tool(std::string const& name, std::string const& url, std::string const& parameters,
                      std::string const& permission = "", int timeout_ms = 2000, int max_bytes = 65536) {
    return R"({"name":")" + name + R"(","description":"A test tool","parameters":)" + parameters +
           R"(,"permission":")" + permission + R"(","handler":{"type":"http","url":")" + url +
           R"(","timeout_ms":)" + std::to_string(timeout_ms) + R"(,"max_response_bytes":)" +
           std::to_string(max_bytes) + "}}";
}

std::string tools_json(webhooks const& h) {
    std::string const none = R"({"type":"object","properties":{}})";
    std::string const city = R"({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]})";
    std::string const ms = R"({"type":"object","properties":{"ms":{"type":"integer"}}})";
    std::vector<std::string> tools{
        R"({"name":"current_time","description":"The current date and time in UTC","parameters":)" + none +
            R"(,"permission":"","handler":{"type":"builtin","name":"current_time"}})",
        http_tool("weather", h.url("/ok"), city),
        http_tool("slow_a", h.url("/slow"), ms),
        http_tool("slow_b", h.url("/slow"), ms),
        http_tool("admin_reset", h.url("/ok"), none, "admin"),
        http_tool("broken", h.url("/fail"), none),
        http_tool("too_slow", h.url("/slow"), ms, "", 100),
        http_tool("too_big", h.url("/big"), none, "", 2000, 1024),
        http_tool("plain_text", h.url("/text"), none),
    };
    std::string out = R"({"tools":[)";
    for (std::size_t i = 0; i < tools.size(); ++i) {
        out += (i ? "," : "") + tools[i];
    }
    return out + "]}";
}

// ------------------------------------------------------------ the stack

struct world {
    std::shared_ptr<actors::openrouter_client> client;
    app::accounting_stack stack;
    app::assistant_stack assistant;
    std::vector<std::shared_ptr<actors::session>> sessions;
};

task<std::shared_ptr<world>> start_world(domain::settings s) {
    auto ex = co_await asio::this_coro::executor;
    auto files = app::load_assistant_files(s);
    auto w = std::make_shared<world>();
    w->client = std::make_shared<actors::openrouter_client>(ex, actors::openrouter_options::from(s));
    w->stack = co_await app::start_accounting(s, w->client, std::nullopt);
    w->assistant = app::start_assistant(ex, s, std::move(files), w->client, w->stack);
    co_return w;
}

task<void> stop_world(std::shared_ptr<world> w) {
    for (auto& s : w->sessions) {
        co_await s->shutdown(true);
    }
    w->sessions.clear();
    co_await w->assistant.shutdown();
    co_await w->stack.shutdown(5s);
    co_await w->client->shutdown();
}

task<void> sleep_for(std::chrono::milliseconds d) {
    asio::steady_timer t{co_await asio::this_coro::executor, d};
    co_await t.async_wait(use_nothrow);
}

// The frames a session sent, with their arrival times.
struct tap {
    std::vector<json::object> frames;
    std::vector<steady::time_point> at;

    std::vector<json::object> of(std::string const& id) const {
        std::vector<json::object> out;
        for (auto const& f : frames) {
            if (auto const* i = f.if_contains("id"); i && i->as_string() == id) {
                out.push_back(f);
            }
        }
        return out;
    }
    std::size_t count(std::string const& id, std::string_view type) const {
        std::size_t n = 0;
        for (auto const& f : of(id)) {
            n += f.at("type").as_string() == type;
        }
        return n;
    }
};

struct chat {
    std::shared_ptr<actors::session> session;
    std::shared_ptr<tap> frames;
    std::string error_code;
};

task<chat> open_chat(std::shared_ptr<world> w, actors::session_user user,
                     domain::language lang = domain::language::es, std::optional<std::string> resume = std::nullopt) {
    chat c;
    c.frames = std::make_shared<tap>();
    actors::session_options so;
    so.user = std::move(user);
    so.lang = lang;
    so.resume = std::move(resume);
    so.sink = [t = c.frames](json::object f) {
        t->frames.push_back(std::move(f));
        t->at.push_back(steady::now());
    };
    auto ex = co_await asio::this_coro::executor;
    auto opened = co_await actors::open_session(ex, w->assistant.services, std::move(so));
    c.session = opened.session;
    c.error_code = opened.error_code;
    if (c.session) {
        w->sessions.push_back(c.session);
    }
    co_return c;
}

// (One permission at most: GCC 12 rejects braced lists in coroutines.)
actors::session_user user_named(std::string id, std::string name = "", std::string permission = "") {
    actors::session_user u;
    u.id = std::move(id);
    u.name = name.empty() ? u.id : std::move(name);
    if (!permission.empty()) {
        u.permissions.push_back(std::move(permission));
    }
    return u;
}

actors::turn_request request(std::string id, std::string text, bool stream = false, json::object context = {}) {
    actors::turn_request rq;
    rq.id = std::move(id);
    rq.text = std::move(text);
    rq.stream = stream;
    rq.context = std::move(context);
    return rq;
}

// Waits (bounded) until no turn is in flight.
task<void> wait_idle(std::shared_ptr<actors::session> s, std::chrono::milliseconds limit = 20s) {
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer t{co_await asio::this_coro::executor, limit};
    auto r = co_await (s->idle() || t.async_wait(use_nothrow));
    BOOST_TEST_REQUIRE(r.index() == 0u, "the turn did not end within " << limit.count() << " ms");
    BOOST_TEST_REQUIRE(std::get<0>(r).has_value());
}

// One turn: send, wait for it to end, the frames of its id.
task<std::vector<json::object>> turn(chat c, actors::turn_request rq) {
    auto const id = rq.id;
    auto sent = co_await c.session->send(std::move(rq));
    BOOST_TEST_REQUIRE(sent.has_value());
    co_await wait_idle(c.session);
    co_return c.frames->of(id);
}

// The single frame that ends a turn (done or error).
json::object final_frame(std::vector<json::object> const& frames) {
    json::object last;
    int enders = 0;
    for (auto const& f : frames) {
        auto const type = f.at("type").as_string();
        if (type == "done" || type == "error") {
            last = f;
            ++enders;
        }
    }
    BOOST_TEST(enders == 1, "frames: " << json::serialize(json::value_from(frames)));
    return last;
}

json::object done_of(std::vector<json::object> const& frames) {
    auto f = final_frame(frames);
    BOOST_TEST_REQUIRE(f.at("type").as_string() == "done", json::serialize(f));
    return f;
}

json::object error_of(std::vector<json::object> const& frames) {
    auto f = final_frame(frames);
    BOOST_TEST_REQUIRE(f.at("type").as_string() == "error", json::serialize(f));
    return f;
}

std::vector<json::object> of_type(std::vector<json::object> const& frames, std::string_view type) {
    std::vector<json::object> out;
    for (auto const& f : frames) {
        if (f.at("type").as_string() == type) {
            out.push_back(f);
        }
    }
    return out;
}

// The rows of a conversation, oldest first, once the writer flushed them.
task<std::vector<domain::usage_record>> usage_rows(std::shared_ptr<world> w, std::string conversation_id) {
    auto flushed = co_await w->stack.writer->flush(5s);
    BOOST_TEST_REQUIRE(flushed.has_value());
    auto const d = w->stack.db->kind();
    // Named first: GCC 12 destroys a capturing lambda temporary twice when it
    // is an argument of a co_await'ed call.
    auto select = [d, conversation_id](soci::session& sql) mutable {
        std::vector<std::string> ids;
        soci::rowset<std::string> rs =
            (sql.prepare << "SELECT request_id FROM ai_usage WHERE conversation_id = :c ORDER BY id",
             soci::use(conversation_id));
        for (auto const& id : rs) {
            ids.push_back(id);
        }
        std::vector<domain::usage_record> out;
        for (auto const& id : ids) {
            if (auto r = persistence::find_usage(sql, d, id)) {
                out.push_back(*r);
            }
        }
        return out;
    };
    auto rows = co_await w->stack.db->run(std::move(select));
    co_return rows;
}

task<std::string> conversation_of(chat c) {
    auto info = co_await c.session->info();  // answered after the last turn was stored
    BOOST_TEST_REQUIRE(info.has_value());
    co_return info->conversation_id;
}

domain::nano_usd usd(std::string_view text) {
    auto v = domain::parse_usd(text);
    BOOST_TEST_REQUIRE(v.has_value(), text);
    return *v;
}

bool six_decimals(std::string const& s) { return std::regex_match(s, std::regex{R"(\d+\.\d{6})"}); }

std::string utc_today() {
    auto const tt = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return buf;
}

unsigned short closed_port() {
    asio::io_context ioc;
    asio::ip::tcp::acceptor a{ioc, asio::ip::tcp::endpoint{asio::ip::make_address("127.0.0.1"), 0}};
    auto const port = a.local_endpoint().port();
    a.close();
    return port;
}

json::object parse_object(std::string_view text) { return json::parse(text).as_object(); }

// ------------------------------------------------------------ the fixture

struct assistant_fixture : parley::test::io_fixture {
    parley::test::temp_dir dir;
    webhooks hooks{ioc.get_executor()};
    std::unique_ptr<sim_process> sim;
    domain::settings s;

    assistant_fixture() {
        auto const tools = dir.path / "tools.json";
        std::ofstream{tools} << tools_json(hooks);
        s.openrouter.api_key = key;
        s.openrouter.connect_timeout = 2s;
        s.openrouter.first_byte_timeout = 10s;
        s.database.url = "sqlite:" + (dir.path / "p.db").string();
        s.data_dir = (dir.path / "var").string();
        s.retry.initial_backoff = 5ms;
        s.retry.max_backoff = 20ms;
        s.usage.flush_interval = 10ms;
        s.tools.file = tools.string();
        s.assistant.prompts_dir = PARLEY_SOURCE_DIR "/conf/prompts";
        s.assistant.fallbacks_file = PARLEY_SOURCE_DIR "/conf/fallbacks.json";
    }

    sim_process& start_sim(std::vector<std::string> args = fast_sim()) {
        sim = std::make_unique<sim_process>(std::move(args));
        s.openrouter.base_url = sim->base_url();
        return *sim;
    }

    template <class F>
    void go(F body, std::chrono::steady_clock::duration limit = 60s) {
        run_and_stop(std::move(body), limit);
    }

    std::string fallback(std::string_view text, domain::language l) const {
        auto f = app::load_assistant_files(s).fallbacks.match(text, l);
        BOOST_TEST_REQUIRE(f.has_value(), "no fallback matches " << text);
        return *f;
    }
};

}  // namespace

// ===================================================================== turns

BOOST_FIXTURE_TEST_SUITE(assistant_turn, assistant_fixture)

/// 1. A successful turn: the sim's text, its model, no fallback, and usage
/// whose cost is that of the one ai_usage row of the conversation.
BOOST_AUTO_TEST_CASE(a_successful_turn_answers_the_sims_text_and_its_cost_is_the_one_usage_row) {
    auto& sim = start_sim();
    sim.script(R"({"turns":[{"text":"Hola, soy Parley. ¿En qué te ayudo?"}]})");
    go([&]() -> task<void> {
        auto w = co_await start_world(s);
        auto c = co_await open_chat(w, user_named("ana", "Ana"));
        BOOST_TEST_REQUIRE(c.session != nullptr);
        auto frames = co_await turn(c, request("c1", "Hola"));
        auto done = done_of(frames);
        BOOST_TEST(str(done.at("text")) == "Hola, soy Parley. ¿En qué te ayudo?");
        BOOST_TEST(str(done.at("model")) == "anthropic/claude-3.5-sonnet");
        BOOST_TEST(done.at("fallback").as_bool() == false);
        auto const& u = done.at("usage").as_object();
        BOOST_TEST(u.at("input_tokens").as_int64() > 0);
        BOOST_TEST(u.at("output_tokens").as_int64() > 0);
        auto const cost = str(u.at("cost_usd"));
        BOOST_TEST(six_decimals(cost), cost);
        BOOST_TEST(usd(cost) > domain::nano_usd{});

        auto const conversation = co_await conversation_of(c);
        auto rows = co_await usage_rows(w, conversation);
        BOOST_TEST_REQUIRE(rows.size() == 1u);
        BOOST_TEST(domain::format_usd(rows[0].cost) == cost);
        BOOST_TEST(rows[0].input_tokens == u.at("input_tokens").as_int64());
        BOOST_TEST(rows[0].output_tokens == u.at("output_tokens").as_int64());
        BOOST_TEST(rows[0].user_id.value_or("") == "ana");
        BOOST_TEST((rows[0].status == domain::call_status::ok));
        BOOST_TEST((rows[0].source == domain::cost_source::provider));
        BOOST_TEST(sim.requests() == 1);
        co_await stop_world(w);
    });
}

/// 2. stream=true against a paced simulator: several deltas at distinct
/// times, the first well before done, concatenated equal to done.text.
BOOST_AUTO_TEST_CASE(streaming_delivers_tokens_incrementally_before_done) {
    start_sim({"--latency-ms", "0", "--tokens-per-second", "20", "--answer-tokens", "10"});
    go([&]() -> task<void> {
        auto w = co_await start_world(s);
        auto c = co_await open_chat(w, user_named("ana"));
        auto frames = co_await turn(c, request("c1", "Cuéntame algo", true));
        auto done = done_of(frames);
        std::vector<steady::time_point> delta_at;
        std::string joined;
        steady::time_point done_at{};
        auto const& all = c.frames->frames;
        for (std::size_t i = 0; i < all.size(); ++i) {
            if (all[i].at("type").as_string() == "delta") {
                delta_at.push_back(c.frames->at[i]);
                joined += all[i].at("text").as_string();
            } else if (all[i].at("type").as_string() == "done") {
                done_at = c.frames->at[i];
            }
        }
        BOOST_TEST_REQUIRE(delta_at.size() >= 5u);
        BOOST_TEST(joined == str(done.at("text")));
        BOOST_TEST(str(done.at("text")).starts_with("Echo: Cuéntame algo"));
        BOOST_TEST((done_at - delta_at.front() > 250ms), "first delta only "
                       << std::chrono::duration_cast<std::chrono::milliseconds>(done_at - delta_at.front()).count()
                       << " ms before done");
        int spaced = 0;  // deltas that came at least 20 ms after the previous one
        for (std::size_t i = 1; i < delta_at.size(); ++i) {
            spaced += delta_at[i] - delta_at[i - 1] >= 20ms;
        }
        BOOST_TEST(spaced >= 4);
        co_await stop_world(w);
    });
}

BOOST_AUTO_TEST_SUITE_END()

// ===================================================================== tools

BOOST_FIXTURE_TEST_SUITE(assistant_tools, assistant_fixture)

/// 3a. A builtin call then a text answer: tool frames, and the second
/// upstream request carries the call and its result.
BOOST_AUTO_TEST_CASE(a_builtin_tool_call_is_run_and_its_result_sent_back_with_the_call) {
    auto& sim = start_sim();
    sim.script(R"({"turns":[{"tool_calls":[{"id":"call_time_1","name":"current_time","arguments":{}}]},
                            {"text":"Son las diez."}]})");
    go([&]() -> task<void> {
        auto w = co_await start_world(s);
        auto c = co_await open_chat(w, user_named("ana"));
        auto frames = co_await turn(c, request("c1", "¿Qué hora es?", true));
        auto done = done_of(frames);
        BOOST_TEST(str(done.at("text")) == "Son las diez.");
        auto tools = of_type(frames, "tool");
        BOOST_TEST_REQUIRE(tools.size() == 2u);
        BOOST_TEST(str(tools[0].at("name")) == "current_time");
        BOOST_TEST(str(tools[0].at("status")) == "started");
        BOOST_TEST(str(tools[1].at("name")) == "current_time");
        BOOST_TEST(str(tools[1].at("status")) == "done");

        BOOST_TEST_REQUIRE(sim.requests() == 2);
        auto bodies = sim.bodies(2);
        BOOST_TEST(contains(tool_names_offered(bodies[0]), "current_time"));
        auto assistant = messages_with_role(bodies[1], "assistant");
        BOOST_TEST_REQUIRE(assistant.size() == 1u);
        auto const& calls = assistant[0].at("tool_calls").as_array();
        BOOST_TEST_REQUIRE(calls.size() == 1u);
        BOOST_TEST(str(calls[0].at("id")) == "call_time_1");
        BOOST_TEST(str(calls[0].at("function").at("name")) == "current_time");
        auto results = messages_with_role(bodies[1], "tool");
        BOOST_TEST_REQUIRE(results.size() == 1u);
        BOOST_TEST(str(results[0].at("tool_call_id")) == "call_time_1");
        auto const content = parse_object(content_text(results[0].at("content")));
        BOOST_TEST(content.contains("utc"));
        BOOST_TEST(str(content.at("date")) == utc_today());
        co_await stop_world(w);
    });
}

/// 3b. The calls of one round run concurrently; results go back in call order.
BOOST_AUTO_TEST_CASE(the_calls_of_one_round_run_concurrently_and_results_keep_call_order) {
    auto& sim = start_sim();
    // slow_a takes 500 ms, slow_b 300 ms: one after the other, 800 ms.
    sim.script(R"({"turns":[{"tool_calls":[{"id":"call_a","name":"slow_a","arguments":{"ms":500}},
                                           {"id":"call_b","name":"slow_b","arguments":{"ms":300}}]},
                            {"text":"Hecho."}]})");
    go([&]() -> task<void> {
        auto w = co_await start_world(s);
        auto c = co_await open_chat(w, user_named("ana"));
        auto frames = co_await turn(c, request("c1", "Haz las dos cosas", true));
        done_of(frames);
        // From the first "started" to the last "done".
        steady::time_point first_start{}, last_done{};
        std::vector<std::string> done_order;
        auto const& all = c.frames->frames;
        for (std::size_t i = 0; i < all.size(); ++i) {
            if (all[i].at("type").as_string() != "tool") continue;
            if (all[i].at("status").as_string() == "started" && first_start == steady::time_point{}) {
                first_start = c.frames->at[i];
            }
            if (all[i].at("status").as_string() == "done") {
                last_done = c.frames->at[i];
                done_order.push_back(str(all[i].at("name")));
            }
        }
        auto const took = std::chrono::duration_cast<std::chrono::milliseconds>(last_done - first_start);
        BOOST_TEST(took.count() >= 490);
        BOOST_TEST(took.count() < 750, "the round took " << took.count() << " ms");
        BOOST_TEST_REQUIRE(done_order.size() == 2u);
        BOOST_TEST(done_order[0] == "slow_b");  // the shorter one ended first...
        BOOST_TEST(done_order[1] == "slow_a");
        auto results = messages_with_role(sim.last_body(), "tool");
        BOOST_TEST_REQUIRE(results.size() == 2u);  // ...but the results are in call order
        BOOST_TEST(str(results[0].at("tool_call_id")) == "call_a");
        BOOST_TEST(str(parse_object(content_text(results[0].at("content"))).at("tool")) == "slow_a");
        BOOST_TEST(str(results[1].at("tool_call_id")) == "call_b");
        BOOST_TEST(str(parse_object(content_text(results[1].at("content"))).at("tool")) == "slow_b");
        BOOST_TEST(hooks.calls.size() == 2u);
        co_await stop_world(w);
    });
}

/// 3c. Several rounds: calls, calls, text: three upstream calls, then done.
BOOST_AUTO_TEST_CASE(several_rounds_of_tools_make_one_upstream_call_each) {
    auto& sim = start_sim();
    sim.script(R"({"turns":[{"tool_calls":[{"id":"call_r1","name":"current_time","arguments":{}}]},
                            {"tool_calls":[{"id":"call_r2","name":"weather","arguments":{"city":"Madrid"}}]},
                            {"text":"Hace sol en Madrid."}]})");
    go([&]() -> task<void> {
        auto w = co_await start_world(s);
        auto c = co_await open_chat(w, user_named("ana"));
        auto frames = co_await turn(c, request("c1", "¿Qué tiempo hace en Madrid?"));
        auto done = done_of(frames);
        BOOST_TEST(str(done.at("text")) == "Hace sol en Madrid.");
        BOOST_TEST(of_type(frames, "tool").size() == 4u);
        BOOST_TEST(sim.requests() == 3);
        auto bodies = sim.bodies(3);
        BOOST_TEST(messages_with_role(bodies[0], "tool").size() == 0u);
        BOOST_TEST(messages_with_role(bodies[1], "tool").size() == 1u);
        BOOST_TEST(messages_with_role(bodies[2], "tool").size() == 2u);
        for (auto const& b : bodies) {
            BOOST_TEST(!b.contains("tool_choice"));  // max_rounds (5) not reached
        }
        BOOST_TEST_REQUIRE(hooks.calls.size() == 1u);
        BOOST_TEST(str(hooks.calls[0].body.at("tool")) == "weather");
        BOOST_TEST(str(hooks.calls[0].body.at("arguments").at("city")) == "Madrid");
        BOOST_TEST(str(hooks.calls[0].body.at("user").at("id")) == "ana");
        auto const conversation = co_await conversation_of(c);
        auto const rows = co_await usage_rows(w, conversation);
        BOOST_TEST(rows.size() == 3u);
        co_await stop_world(w);
    });
}

/// 3c. With tools.max_rounds = 1 the second call is made with
/// tool_choice "none", and calls the model makes anyway are not run.
BOOST_AUTO_TEST_CASE(after_max_rounds_the_last_call_is_sent_with_tool_choice_none) {
    auto& sim = start_sim();
    s.tools.max_rounds = 1;
    sim.script(R"({"turns":[{"tool_calls":[{"id":"call_m1","name":"current_time","arguments":{}}]},
                            {"text":"Resumen.","tool_calls":[{"id":"call_m2","name":"weather","arguments":{"city":"Lima"}}]}]})");
    go([&]() -> task<void> {
        auto w = co_await start_world(s);
        auto c = co_await open_chat(w, user_named("ana"));
        auto frames = co_await turn(c, request("c1", "Dime la hora y el tiempo"));
        auto done = done_of(frames);
        BOOST_TEST(str(done.at("text")) == "Resumen.");
        BOOST_TEST(sim.requests() == 2);
        auto bodies = sim.bodies(2);
        BOOST_TEST(!bodies[0].contains("tool_choice"));
        BOOST_TEST_REQUIRE(bodies[1].contains("tool_choice"));
        BOOST_TEST(bodies[1].at("tool_choice") == json::value("none"));
        BOOST_TEST(hooks.calls.empty());  // the last round's call was not run
        BOOST_TEST(of_type(frames, "tool").size() == 2u);  // current_time started + done only
        co_await stop_world(w);
    });
}

/// More calls in one answer than tools.max_calls_per_round: the first ones
/// run, the rest are answered with an error without running.
BOOST_AUTO_TEST_CASE(calls_beyond_the_per_round_limit_are_answered_without_running) {
    auto& sim = start_sim();
    s.tools.max_calls_per_round = 2;
    sim.script(R"({"turns":[{"tool_calls":[{"id":"k1","name":"weather","arguments":{"city":"Lima"}},
                                           {"id":"k2","name":"weather","arguments":{"city":"Quito"}},
                                           {"id":"k3","name":"weather","arguments":{"city":"Cusco"}}]},
                            {"text":"Dos de tres."}]})");
    go([&]() -> task<void> {
        auto w = co_await start_world(s);
        auto c = co_await open_chat(w, user_named("ana"));
        auto frames = co_await turn(c, request("c1", "El tiempo en tres ciudades"));
        BOOST_TEST(str(done_of(frames).at("text")) == "Dos de tres.");
        BOOST_TEST(hooks.calls.size() == 2u);  // k3 never reached the webhook
        auto results = messages_with_role(sim.last_body(), "tool");
        BOOST_REQUIRE(results.size() == 3u);
        BOOST_TEST(str(results[2].at("tool_call_id")) == "k3");
        BOOST_TEST(has(str(results[2].at("content")), "at most 2 tool calls"));
        co_await stop_world(w);
    });
}

/// Text of an earlier round already reached the client: when the next call
/// fails, the turn ends with the error (a canned answer would not match
/// what the client saw), and the history keeps each round's text once.
BOOST_AUTO_TEST_CASE(no_fallback_after_text_was_streamed_in_an_earlier_round) {
    auto& sim = start_sim();
    s.retry.max_retries = 0;
    sim.script(R"({"turns":[{"text":"Voy a mirar.","tool_calls":[{"id":"n1","name":"current_time","arguments":{}}]},
                            {"fault":"502"},
                            {"text":"Sigo."}]})");
    go([&]() -> task<void> {
        auto w = co_await start_world(s);
        auto c = co_await open_chat(w, user_named("ana"));
        auto frames = co_await turn(c, request("c1", "hola", true));
        auto err = error_of(frames);
        BOOST_TEST(str(err.at("code")) == "ai_unavailable");
        BOOST_TEST(err.at("usage").at("input_tokens").as_int64() > 0);  // the first call's usage
        for (auto const& f : frames) BOOST_TEST(!f.contains("fallback"));
        auto next = co_await turn(c, request("c2", "otra", true));
        done_of(next);
        auto assistant = messages_with_role(sim.last_body(), "assistant");
        BOOST_REQUIRE(assistant.size() == 1u);  // "Voy a mirar." once, with its call
        BOOST_TEST(content_text(assistant[0].at("content")) == "Voy a mirar.");
        co_await stop_world(w);
    });
}

/// 3d. A tool the user may not use is not offered; called anyway, it is
/// refused to the model and never executed. Invalid arguments likewise.
BOOST_AUTO_TEST_CASE(forbidden_tools_and_invalid_arguments_are_refused_and_never_executed) {
    auto& sim = start_sim();
    sim.script(R"({"turns":[{"tool_calls":[{"id":"call_f1","name":"admin_reset","arguments":{}},
                                           {"id":"call_f2","name":"weather","arguments":{}},
                                           {"id":"call_f3","name":"weather","arguments":{"city":7}}]},
                            {"text":"No he podido."},
                            {"tool_calls":[{"id":"call_f4","name":"weather","arguments":{"city":"Quito"}}]},
                            {"text":"Sol en Quito."}]})");
    go([&]() -> task<void> {
        auto w = co_await start_world(s);
        auto c = co_await open_chat(w, user_named("ana", "Ana", "billing"));
        auto info = co_await c.session->info();
        BOOST_TEST_REQUIRE(info.has_value());
        BOOST_TEST(!contains(info->tools, "admin_reset"));
        BOOST_TEST(contains(info->tools, "weather"));

        auto frames = co_await turn(c, request("c1", "Reinicia todo"));
        auto done = done_of(frames);
        BOOST_TEST(str(done.at("text")) == "No he podido.");
        auto bodies = sim.bodies(2);
        auto offered = tool_names_offered(bodies[0]);
        BOOST_TEST(!contains(offered, "admin_reset"));
        BOOST_TEST(contains(offered, "weather"));
        auto results = messages_with_role(bodies[1], "tool");
        BOOST_TEST_REQUIRE(results.size() == 3u);
        auto const forbidden = parse_object(content_text(results[0].at("content")));
        BOOST_TEST(str(results[0].at("tool_call_id")) == "call_f1");
        BOOST_TEST(has(str(forbidden.at("error")), "not allowed"), json::serialize(forbidden));
        auto const missing = parse_object(content_text(results[1].at("content")));
        BOOST_TEST(has(str(missing.at("error")), "missing required argument 'city'"), json::serialize(missing));
        auto const wrong_type = parse_object(content_text(results[2].at("content")));
        BOOST_TEST(has(str(wrong_type.at("error")), "city"), json::serialize(wrong_type));
        for (auto const& f : of_type(frames, "tool")) {
            BOOST_TEST((str(f.at("status")) == "started" || str(f.at("status")) == "failed"));
        }
        BOOST_TEST(hooks.calls.empty());  // NOTHING reached the webhook server

        // The same tool with valid arguments does reach it.
        auto next = co_await turn(c, request("c2", "¿Y en Quito?"));
        BOOST_TEST(str(done_of(next).at("text")) == "Sol en Quito.");
        BOOST_TEST_REQUIRE(hooks.calls.size() == 1u);
        BOOST_TEST(hooks.calls[0].path == "/ok");

        // An admin is offered the tool.
        auto admin = co_await open_chat(w, user_named("root", "Root", "admin"));
        auto admin_info = co_await admin.session->info();
        BOOST_TEST_REQUIRE(admin_info.has_value());
        BOOST_TEST(contains(admin_info->tools, "admin_reset"));
        co_await stop_world(w);
    });
}

/// 3e. A tool that fails (HTTP 500, timeout, too big) is reported to the
/// model as {"error":...}; the turn still ends with done.
BOOST_AUTO_TEST_CASE(failing_tools_are_reported_to_the_model_as_errors_and_the_turn_completes) {
    auto& sim = start_sim();
    sim.script(R"({"turns":[{"tool_calls":[{"id":"call_e1","name":"broken","arguments":{}},
                                           {"id":"call_e2","name":"too_slow","arguments":{}},
                                           {"id":"call_e3","name":"too_big","arguments":{}},
                                           {"id":"call_e4","name":"plain_text","arguments":{}}]},
                            {"text":"Te cuento lo que pude averiguar."}]})");
    go([&]() -> task<void> {
        auto w = co_await start_world(s);
        auto c = co_await open_chat(w, user_named("ana"));
        auto const t0 = steady::now();
        auto frames = co_await turn(c, request("c1", "Prueba las herramientas", true));
        auto const took = steady::now() - t0;
        auto done = done_of(frames);
        BOOST_TEST(str(done.at("text")) == "Te cuento lo que pude averiguar.");
        BOOST_TEST((took < 2s));  // too_slow was cut at its 100 ms timeout
        int failed = 0, ok = 0;
        for (auto const& f : of_type(frames, "tool")) {
            failed += f.at("status").as_string() == "failed";
            ok += f.at("status").as_string() == "done";
        }
        BOOST_TEST(failed == 3);
        BOOST_TEST(ok == 1);
        auto results = messages_with_role(sim.last_body(), "tool");
        BOOST_TEST_REQUIRE(results.size() == 4u);
        auto const e500 = parse_object(content_text(results[0].at("content")));
        BOOST_TEST(has(str(e500.at("error")), "500"), json::serialize(e500));
        auto const timeout = parse_object(content_text(results[1].at("content")));
        BOOST_TEST(has(str(timeout.at("error")), "100 ms"), json::serialize(timeout));
        auto const big = parse_object(content_text(results[2].at("content")));
        BOOST_TEST(has(str(big.at("error")), "1024"), json::serialize(big));
        auto const text = parse_object(content_text(results[3].at("content")));
        BOOST_TEST(!text.contains("error"));
        BOOST_TEST(str(text.at("result")) == "sunny and mild");
        BOOST_TEST(hooks.calls.size() == 4u);  // all four were executed
        co_await stop_world(w);
    });
}

BOOST_AUTO_TEST_SUITE_END()

// ===================================================================== limits and failures

BOOST_FIXTURE_TEST_SUITE(assistant_limits, assistant_fixture)

/// 4. The hourly window: the third turn of the user is rate_limited with
/// retry_after near an hour, in Spanish; it never reaches the sim.
BOOST_AUTO_TEST_CASE(the_third_turn_in_the_hour_is_rate_limited_in_spanish) {
    auto& sim = start_sim();
    s.limits.rate_per_user_per_hour = 2;
    go([&]() -> task<void> {
        auto w = co_await start_world(s);
        auto c = co_await open_chat(w, user_named("ana"));
        done_of(co_await turn(c, request("c1", "uno")));
        done_of(co_await turn(c, request("c2", "dos")));
        auto third = co_await turn(c, request("c3", "tres"));
        auto err = error_of(third);
        BOOST_TEST(str(err.at("code")) == "rate_limited");
        auto const retry_after = err.at("retry_after").as_int64();
        BOOST_TEST(retry_after > 3500);
        BOOST_TEST(retry_after <= 3600);
        auto const message = str(err.at("message"));
        BOOST_TEST_MESSAGE("rate_limited after " << retry_after << " s: " << message);
        BOOST_TEST(has(message, "Has alcanzado el límite de mensajes por hora"), message);
        // The wait is rounded up: 3501..3540 s are "59 minutos", 3541..3600 s "1 hora".
        BOOST_TEST(has(message, domain::format_wait(std::chrono::seconds{retry_after}, domain::language::es)), message);
        BOOST_TEST((has(message, "minutos") || has(message, "1 hora")), message);
        BOOST_TEST(sim.requests() == 2);
        auto const conversation = co_await conversation_of(c);
        auto const rows = co_await usage_rows(w, conversation);
        BOOST_TEST(rows.size() == 2u);  // the refused turn has no row
        // Another user is not limited by ana's turns.
        auto bea = co_await open_chat(w, user_named("bea"));
        done_of(co_await turn(bea, request("b1", "hola")));
        BOOST_TEST(sim.requests() == 3);
        co_await stop_world(w);
    });
}

/// 5. A transient 502 is retried: done, and the call's usage row.
BOOST_AUTO_TEST_CASE(a_transient_upstream_error_is_retried_and_the_turn_is_answered) {
    auto& sim = start_sim();
    sim.script(R"({"turns":[{"fault":"502"},{"text":"Ya estoy aquí."}]})");
    go([&]() -> task<void> {
        auto w = co_await start_world(s);
        auto c = co_await open_chat(w, user_named("ana"));
        auto done = done_of(co_await turn(c, request("c1", "¿Estás?")));
        BOOST_TEST(str(done.at("text")) == "Ya estoy aquí.");
        BOOST_TEST(done.at("fallback").as_bool() == false);
        BOOST_TEST(sim.requests() == 2);  // the 502, then the retry
        auto const conversation = co_await conversation_of(c);
        auto rows = co_await usage_rows(w, conversation);
        BOOST_TEST_REQUIRE(rows.size() == 1u);  // one call, one row (retries included)
        BOOST_TEST((rows[0].status == domain::call_status::ok));
        BOOST_TEST(domain::format_usd(rows[0].cost) == str(done.at("usage").at("cost_usd")));
        co_await stop_world(w);
    });
}

/// 5. An upstream that always fails: after the retries a matching fallback
/// answers (fallback:true), else ai_unavailable in the session's language.
BOOST_AUTO_TEST_CASE(an_upstream_that_always_fails_gets_the_fallback_or_ai_unavailable) {
    auto& sim = start_sim();
    s.ai.model = "sim/fault-502";
    s.retry.max_retries = 2;
    go([&]() -> task<void> {
        auto w = co_await start_world(s);
        auto c = co_await open_chat(w, user_named("ana"));
        auto frames = co_await turn(c, request("c1", "¡Hola!", true));
        auto done = done_of(frames);
        BOOST_TEST(done.at("fallback").as_bool() == true);
        BOOST_TEST(str(done.at("text")) == fallback("hola", domain::language::es));
        BOOST_TEST(sim.requests() == 3);  // the first try and two retries

        auto err = error_of(co_await turn(c, request("c2", "Explícame la factura 7")));
        BOOST_TEST(str(err.at("code")) == "ai_unavailable");
        BOOST_TEST(str(err.at("message")) == domain::render(domain::language::es, "ai_unavailable"));
        BOOST_TEST(sim.requests() == 6);

        auto en = co_await open_chat(w, user_named("eve"), domain::language::en);
        auto en_err = error_of(co_await turn(en, request("e1", "Explain invoice 7")));
        BOOST_TEST(str(en_err.at("code")) == "ai_unavailable");
        BOOST_TEST(str(en_err.at("message")) == domain::render(domain::language::en, "ai_unavailable"));
        BOOST_TEST(str(en_err.at("message")) != str(err.at("message")));
        // The failed calls are recorded too.
        auto const conversation = co_await conversation_of(c);
        auto rows = co_await usage_rows(w, conversation);
        BOOST_TEST_REQUIRE(rows.size() == 2u);
        BOOST_TEST((rows[0].status == domain::call_status::error));
        co_await stop_world(w);
    });
}

/// 9. An upstream that cannot be reached (connect fails): fallback or
/// ai_unavailable.
BOOST_AUTO_TEST_CASE(an_unreachable_upstream_gets_the_fallback_or_ai_unavailable) {
    s.openrouter.base_url = "http://127.0.0.1:" + std::to_string(closed_port()) + "/api/v1";
    go([&]() -> task<void> {
        auto w = co_await start_world(s);
        auto c = co_await open_chat(w, user_named("ana"));
        auto done = done_of(co_await turn(c, request("c1", "hola, ¿qué tal?")));
        BOOST_TEST(done.at("fallback").as_bool() == true);
        BOOST_TEST(str(done.at("text")) == fallback("hola", domain::language::es));
        auto err = error_of(co_await turn(c, request("c2", "xyz")));
        BOOST_TEST(str(err.at("code")) == "ai_unavailable");
        BOOST_TEST(str(err.at("message")) == domain::render(domain::language::es, "ai_unavailable"));
        co_await stop_world(w);
    });
}

/// 9. The circuit: two failed turns open it; the third is answered from the
/// fallbacks without reaching the sim; after open_for one probe goes
/// through and, succeeding, closes it.
BOOST_AUTO_TEST_CASE(an_open_circuit_answers_from_the_fallbacks_without_the_upstream_then_probes) {
    auto& sim = start_sim();
    s.circuit.failure_threshold = 2;
    s.circuit.open_for = 300ms;
    s.retry.max_retries = 0;
    sim.script(R"({"turns":[{"fault":"502"},{"fault":"502"},{"text":"De vuelta."}]})");
    go([&]() -> task<void> {
        auto w = co_await start_world(s);
        auto c = co_await open_chat(w, user_named("ana"));
        auto const greeting = fallback("hola", domain::language::es);
        auto d1 = done_of(co_await turn(c, request("c1", "hola")));
        BOOST_TEST(d1.at("fallback").as_bool() == true);
        auto d2 = done_of(co_await turn(c, request("c2", "hola")));
        BOOST_TEST(d2.at("fallback").as_bool() == true);
        BOOST_TEST(sim.requests() == 2);
        auto st = co_await w->assistant.services.circuit->status();
        BOOST_TEST_REQUIRE(st.has_value());
        BOOST_TEST((st->state == domain::circuit_state::open));

        auto const before = sim.requests();
        auto d3 = done_of(co_await turn(c, request("c3", "hola")));
        BOOST_TEST(d3.at("fallback").as_bool() == true);
        BOOST_TEST(str(d3.at("text")) == greeting);
        auto e4 = error_of(co_await turn(c, request("c4", "xyz")));
        BOOST_TEST(str(e4.at("code")) == "ai_unavailable");
        BOOST_TEST(sim.requests() == before);  // nothing reached the sim while open

        co_await sleep_for(350ms);
        auto d5 = done_of(co_await turn(c, request("c5", "hola")));  // the probe
        BOOST_TEST(d5.at("fallback").as_bool() == false);
        BOOST_TEST(str(d5.at("text")) == "De vuelta.");
        BOOST_TEST(sim.requests() == before + 1);
        st = co_await w->assistant.services.circuit->status();
        BOOST_TEST((st->state == domain::circuit_state::closed));
        auto d6 = done_of(co_await turn(c, request("c6", "hola otra vez")));
        BOOST_TEST(d6.at("fallback").as_bool() == false);
        BOOST_TEST(sim.requests() == before + 2);
        auto const conversation = co_await conversation_of(c);
        auto const rows = co_await usage_rows(w, conversation);
        BOOST_TEST(rows.size() == 4u);  // one row per upstream call
        co_await stop_world(w);
    });
}

/// 13. Input limits, checked before anything else: none reaches the sim.
BOOST_AUTO_TEST_CASE(blank_too_long_and_oversized_context_are_refused_before_the_upstream) {
    auto& sim = start_sim();
    s.assistant.max_message_chars = 50;
    s.assistant.max_context_bytes = 64;
    go([&]() -> task<void> {
        auto w = co_await start_world(s);
        auto c = co_await open_chat(w, user_named("ana"));
        auto blank = error_of(co_await turn(c, request("b1", "  \n\t ")));
        BOOST_TEST(str(blank.at("code")) == "bad_request");
        BOOST_TEST(str(blank.at("message")) == domain::render(domain::language::es, "bad_request"));
        std::string longer;
        for (int i = 0; i != 51; ++i) {
            longer += "ñ";
        }
        auto too_long = error_of(co_await turn(c, request("b2", longer)));
        BOOST_TEST(str(too_long.at("code")) == "message_too_long");
        BOOST_TEST(has(str(too_long.at("message")), "50"), str(too_long.at("message")));
        json::object context;
        context["notes"] = std::string(80, 'n');
        auto big = error_of(co_await turn(c, request("b3", "hola", false, context)));
        BOOST_TEST(str(big.at("code")) == "bad_request");
        BOOST_TEST(has(str(big.at("message")), "64"), str(big.at("message")));
        BOOST_TEST(sim.requests() == 0);
        // 50 characters (100 bytes) is within the limit: characters are counted, not bytes.
        auto fits = co_await turn(c, request("b4", longer.substr(2)));
        done_of(fits);
        BOOST_TEST(sim.requests() == 1);
        co_await stop_world(w);
    });
}

BOOST_AUTO_TEST_SUITE_END()

// ===================================================================== cost

BOOST_FIXTURE_TEST_SUITE(assistant_cost, assistant_fixture)

/// 6. A three-call tool loop: done.usage is the exact sum of the scripted
/// figures, and there are three rows for the conversation.
BOOST_AUTO_TEST_CASE(a_tool_loops_usage_is_the_exact_sum_of_its_calls) {
    auto& sim = start_sim();
    sim.script(R"({"turns":[
        {"tool_calls":[{"id":"call_c1","name":"current_time","arguments":{}}],
         "usage":{"prompt_tokens":1000,"completion_tokens":10,"cost":"0.000123"}},
        {"tool_calls":[{"id":"call_c2","name":"weather","arguments":{"city":"Bogotá"}}],
         "usage":{"prompt_tokens":1500,"completion_tokens":20,"cost":"0.004567"}},
        {"text":"Listo.","usage":{"prompt_tokens":2100,"completion_tokens":30,"cost":"0.010001"}}]})");
    go([&]() -> task<void> {
        auto w = co_await start_world(s);
        auto c = co_await open_chat(w, user_named("ana"));
        auto done = done_of(co_await turn(c, request("c1", "Hora y tiempo en Bogotá", true)));
        BOOST_TEST(str(done.at("text")) == "Listo.");
        auto const& u = done.at("usage").as_object();
        BOOST_TEST(u.at("input_tokens").as_int64() == 4600);
        BOOST_TEST(u.at("output_tokens").as_int64() == 60);
        BOOST_TEST(str(u.at("cost_usd")) == "0.014691");
        auto const conversation = co_await conversation_of(c);
        auto rows = co_await usage_rows(w, conversation);
        BOOST_TEST_REQUIRE(rows.size() == 3u);
        domain::nano_usd sum;
        for (auto const& r : rows) {
            sum += r.cost;
            BOOST_TEST(r.conversation_id == conversation);
        }
        BOOST_TEST(domain::format_usd(sum) == "0.014691");
        BOOST_TEST(rows[0].input_tokens == 1000);
        BOOST_TEST(rows[2].output_tokens == 30);
        co_await stop_world(w);
    });
}

/// 6. The turn's cost is what its rows say, also when each call costs a
/// fraction of a micro-dollar (the table keeps 6 decimals per row).
BOOST_AUTO_TEST_CASE(a_turns_cost_equals_the_sum_of_its_stored_rows_below_a_micro_dollar) {
    auto& sim = start_sim();
    sim.script(R"({"turns":[
        {"tool_calls":[{"id":"call_s1","name":"current_time","arguments":{}}],
         "usage":{"prompt_tokens":10,"completion_tokens":1,"cost":"0.0000014"}},
        {"tool_calls":[{"id":"call_s2","name":"current_time","arguments":{}}],
         "usage":{"prompt_tokens":10,"completion_tokens":1,"cost":"0.0000014"}},
        {"text":"Listo.","usage":{"prompt_tokens":10,"completion_tokens":1,"cost":"0.0000014"}}]})");
    go([&]() -> task<void> {
        auto w = co_await start_world(s);
        auto c = co_await open_chat(w, user_named("ana"));
        auto done = done_of(co_await turn(c, request("c1", "Dos veces la hora")));
        auto const conversation = co_await conversation_of(c);
        auto rows = co_await usage_rows(w, conversation);
        BOOST_TEST_REQUIRE(rows.size() == 3u);
        domain::nano_usd sum;
        for (auto const& r : rows) {
            sum += r.cost;
        }
        BOOST_TEST(str(done.at("usage").at("cost_usd")) == domain::format_usd(sum),
                   "done says " << str(done.at("usage").at("cost_usd")) << ", the rows sum to "
                                << domain::format_usd(sum));
        co_await stop_world(w);
    });
}

BOOST_AUTO_TEST_SUITE_END()

// ===================================================================== prompt and language

BOOST_FIXTURE_TEST_SUITE(assistant_prompt, assistant_fixture)

/// 7. The user's name, permissions, the turn's context and today's date are
/// in the system prompt the sim received.
BOOST_AUTO_TEST_CASE(the_system_prompt_carries_the_user_the_context_and_todays_date) {
    auto& sim = start_sim();
    go([&]() -> task<void> {
        auto w = co_await start_world(s);
        auto c = co_await open_chat(w, user_named("u-42", "Ana Pérez", "billing_read"));
        json::object context;
        context["plan"] = "pro";
        context["page"] = "billing";
        auto const day_before = utc_today();
        done_of(co_await turn(c, request("c1", "¿Cuánto debo?", false, context)));
        auto const day_after = utc_today();
        auto const body = sim.last_body();
        auto const prompt = system_prompt_of(body);
        BOOST_TEST(has(prompt, "plan: pro"), prompt);
        BOOST_TEST(has(prompt, "page: billing"), prompt);
        BOOST_TEST(has(prompt, "Ana Pérez"), prompt);
        BOOST_TEST(has(prompt, "billing_read"), prompt);
        BOOST_TEST((has(prompt, day_before) || has(prompt, day_after)), prompt);
        BOOST_TEST(has(prompt, "Responde siempre en español"), prompt);
        auto const users = messages_with_role(body, "user");
        BOOST_TEST_REQUIRE(users.size() == 1u);
        BOOST_TEST(content_text(users[0].at("content")) == "¿Cuánto debo?");
        BOOST_TEST(str(body.at("user")) == "u-42");
        // A turn without context has no context section.
        done_of(co_await turn(c, request("c2", "Gracias")));
        auto const plain = system_prompt_of(sim.last_body());
        BOOST_TEST(!has(plain, "plan: pro"), plain);
        BOOST_TEST(!has(plain, "Contexto de esta conversación"), plain);
        co_await stop_world(w);
    });
}

/// 8. set_language switches the system prompt and the error messages.
BOOST_AUTO_TEST_CASE(switching_the_language_switches_the_prompt_and_the_error_messages) {
    auto& sim = start_sim();
    s.limits.rate_per_user_per_hour = 2;
    go([&]() -> task<void> {
        auto w = co_await start_world(s);
        auto c = co_await open_chat(w, user_named("ana"), domain::language::es);
        auto blank_es = error_of(co_await turn(c, request("c0", " ")));
        done_of(co_await turn(c, request("c1", "hola")));
        auto const es_prompt = system_prompt_of(sim.last_body());
        BOOST_TEST(has(es_prompt, "español"), es_prompt);
        BOOST_TEST(!has(es_prompt, "English"), es_prompt);

        auto switched = co_await c.session->set_language(domain::language::en);
        BOOST_TEST_REQUIRE(switched.has_value());
        auto info = co_await c.session->info();
        BOOST_TEST_REQUIRE(info.has_value());
        BOOST_TEST((info->lang == domain::language::en));
        done_of(co_await turn(c, request("c2", "hello")));
        auto const en_prompt = system_prompt_of(sim.last_body());
        BOOST_TEST(has(en_prompt, "Always answer in English"), en_prompt);
        BOOST_TEST(!has(en_prompt, "español"), en_prompt);

        auto blank_en = error_of(co_await turn(c, request("c3", " ")));
        BOOST_TEST(str(blank_en.at("message")) == domain::render(domain::language::en, "bad_request"));
        BOOST_TEST(str(blank_en.at("message")) != str(blank_es.at("message")));
        auto limited = error_of(co_await turn(c, request("c4", "again")));
        BOOST_TEST(str(limited.at("code")) == "rate_limited");
        auto const message = str(limited.at("message"));
        BOOST_TEST(has(message, "You have reached the hourly message limit"), message);
        auto const wait = std::chrono::seconds{limited.at("retry_after").as_int64()};
        BOOST_TEST(message == domain::render(domain::language::en, "rate_limited", {.wait = wait}));
        BOOST_TEST(message != domain::render(domain::language::es, "rate_limited", {.wait = wait}));
        co_await stop_world(w);
    });
}

BOOST_AUTO_TEST_SUITE_END()

// ===================================================================== the session

BOOST_FIXTURE_TEST_SUITE(assistant_session, assistant_fixture)

/// 10. A message sent during a turn gets busy; the turn goes on.
BOOST_AUTO_TEST_CASE(a_message_during_a_turn_gets_busy_and_the_turn_completes) {
    auto& sim = start_sim({"--latency-ms", "0", "--tokens-per-second", "20", "--answer-tokens", "10"});
    go([&]() -> task<void> {
        auto w = co_await start_world(s);
        auto c = co_await open_chat(w, user_named("ana"));
        auto first = co_await c.session->send(request("c1", "Primero", true));
        BOOST_TEST_REQUIRE(first.has_value());
        auto second = co_await c.session->send(request("c2", "Segundo", true));
        BOOST_TEST_REQUIRE(second.has_value());
        co_await wait_idle(c.session);
        auto busy = error_of(c.frames->of("c2"));
        BOOST_TEST(str(busy.at("code")) == "busy");
        BOOST_TEST(str(busy.at("message")) == domain::render(domain::language::es, "busy"));
        auto done = done_of(c.frames->of("c1"));
        BOOST_TEST(str(done.at("text")).starts_with("Echo: Primero"));
        BOOST_TEST(c.frames->count("c1", "delta") >= 5u);
        // busy came while c1 was streaming, before its done.
        std::size_t busy_at = 0, done_at = 0;
        for (std::size_t i = 0; i < c.frames->frames.size(); ++i) {
            auto const& f = c.frames->frames[i];
            if (f.at("id").as_string() == "c2") busy_at = i;
            if (f.at("type").as_string() == "done") done_at = i;
        }
        BOOST_TEST(busy_at < done_at);
        BOOST_TEST(sim.requests() == 1);
        // After the turn, the next message is accepted.
        sim.script(R"({"turns":[{"text":"Vale."}]})");
        auto const next = co_await turn(c, request("c3", "Ahora sí"));
        BOOST_TEST(str(done_of(next).at("text")) == "Vale.");
        co_await stop_world(w);
    });
}

/// 11. cancel mid-stream: the cancelled error, a 'cancelled' usage row, and
/// the sim saw the stream cut.
BOOST_AUTO_TEST_CASE(cancel_mid_stream_ends_the_turn_records_it_cancelled_and_cuts_the_stream) {
    auto& sim = start_sim({"--latency-ms", "0", "--tokens-per-second", "10", "--answer-tokens", "100"});
    go([&]() -> task<void> {
        auto w = co_await start_world(s);
        auto c = co_await open_chat(w, user_named("ana"));
        auto const t0 = steady::now();
        auto sent = co_await c.session->send(request("c1", "Cuéntame una historia larga", true));
        BOOST_TEST_REQUIRE(sent.has_value());
        for (int i = 0; i != 500 && c.frames->count("c1", "delta") < 2; ++i) {
            co_await sleep_for(10ms);
        }
        BOOST_TEST_REQUIRE(c.frames->count("c1", "delta") >= 2u);
        auto cancelled = co_await c.session->cancel("c1");
        BOOST_TEST_REQUIRE(cancelled.has_value());
        co_await wait_idle(c.session);
        BOOST_TEST((steady::now() - t0 < 5s));  // the 10 s answer was cut
        auto frames = c.frames->of("c1");
        auto err = error_of(frames);
        BOOST_TEST(str(err.at("code")) == "cancelled");
        BOOST_TEST(str(err.at("message")) == domain::render(domain::language::es, "cancelled"));
        BOOST_TEST(of_type(frames, "done").empty());

        auto const conversation = co_await conversation_of(c);
        auto rows = co_await usage_rows(w, conversation);
        BOOST_TEST_REQUIRE(rows.size() == 1u);
        BOOST_TEST((rows[0].status == domain::call_status::cancelled));
        BOOST_TEST(rows[0].output_tokens > 0);
        std::int64_t cut = 0;
        for (int i = 0; i != 100 && (cut = sim.counter("cancelled")) == 0; ++i) {
            co_await sleep_for(20ms);
        }
        BOOST_TEST(cut == 1);
        BOOST_TEST(sim.counter("completed") == 0);

        // The session takes the next message.
        sim.script(R"({"turns":[{"text":"Vale."}]})");
        auto const next = co_await turn(c, request("c2", "Otra cosa", true));
        BOOST_TEST(str(done_of(next).at("text")) == "Vale.");
        co_await stop_world(w);
    });
}

/// 12. Resuming a conversation: its owner gets the history (sent with the
/// next request); anyone else gets conversation_not_found.
BOOST_AUTO_TEST_CASE(a_conversation_is_resumed_by_its_owner_only) {
    auto& sim = start_sim();
    sim.script(R"({"turns":[{"text":"Anotado: tu color es el verde."},{"text":"Es el verde."}]})");
    go([&]() -> task<void> {
        auto w = co_await start_world(s);
        auto ana = co_await open_chat(w, user_named("ana"));
        done_of(co_await turn(ana, request("c1", "Mi color favorito es el verde")));
        auto const conversation = co_await conversation_of(ana);
        BOOST_TEST(!conversation.empty());

        auto again = co_await open_chat(w, user_named("ana"), domain::language::es, conversation);
        BOOST_TEST_REQUIRE(again.session != nullptr, again.error_code);
        auto info = co_await again.session->info();
        BOOST_TEST_REQUIRE(info.has_value());
        BOOST_TEST(info->conversation_id == conversation);
        BOOST_TEST(info->history_messages == 2u);
        auto done = done_of(co_await turn(again, request("r1", "¿Cuál es mi color?")));
        BOOST_TEST(str(done.at("text")) == "Es el verde.");
        auto const body = sim.last_body();
        auto const users = messages_with_role(body, "user");
        BOOST_TEST_REQUIRE(users.size() == 2u);
        BOOST_TEST(content_text(users[0].at("content")) == "Mi color favorito es el verde");
        BOOST_TEST(content_text(users[1].at("content")) == "¿Cuál es mi color?");
        auto const answers = messages_with_role(body, "assistant");
        BOOST_TEST_REQUIRE(answers.size() == 1u);
        BOOST_TEST(content_text(answers[0].at("content")) == "Anotado: tu color es el verde.");

        auto bob = co_await open_chat(w, user_named("bob"), domain::language::es, conversation);
        BOOST_TEST(bob.session == nullptr);
        BOOST_TEST(bob.error_code == "conversation_not_found");
        auto unknown = co_await open_chat(w, user_named("ana"), domain::language::es, std::string{"c-nope"});
        BOOST_TEST(unknown.session == nullptr);
        BOOST_TEST(unknown.error_code == "conversation_not_found");
        co_await stop_world(w);
    });
}

BOOST_AUTO_TEST_SUITE_END()
