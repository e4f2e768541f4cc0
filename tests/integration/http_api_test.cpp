// POST /v1/respond and GET /v1/usage on a real `parley serve` against the
// real openrouter-sim: authentication (JWT, API key, none), a whole turn
// as JSON and as SSE, errors with their status and Retry-After, and usage
// visible to its owner (everyone's to an admin only).
#include "domain/jwt.hpp"

#include "support/http_client.hpp"
#include "support/parley_server.hpp"
#include "support/process.hpp"
#include "support/sim_process.hpp"
#include "support/ws_client.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <thread>

namespace {

using namespace std::chrono_literals;
namespace json = boost::json;
using parley::test::child_process;
using parley::test::http_client;

using parley::test::fast_sim;
using parley::test::secret;
using parley::test::server;
using parley::test::service_key;
using parley::test::token;

}  // namespace

BOOST_AUTO_TEST_SUITE(http_api)

BOOST_AUTO_TEST_CASE(respond_answers_a_turn_as_json) {
    server s;
    auto r = s.post("/v1/respond", R"({"text":"Hola","context":{"plan":"pro"}})", token("ana"));
    BOOST_TEST_REQUIRE(r.status == 200u, r.body);
    auto o = json::parse(r.body).as_object();
    BOOST_TEST(std::string(o.at("text").as_string()).starts_with("Echo: Hola"));
    BOOST_TEST(o.at("fallback").as_bool() == false);
    BOOST_TEST(o.at("usage").at("output_tokens").as_int64() == 6);
    BOOST_TEST(!o.at("conversation_id").as_string().empty());
    // The conversation goes on with its id.
    std::string const id{o.at("conversation_id").as_string()};
    auto again = s.post("/v1/respond", R"({"text":"Otra","conversation_id":")" + id + R"("})", token("ana"));
    BOOST_TEST_REQUIRE(again.status == 200u, again.body);
    BOOST_TEST(json::parse(again.body).at("conversation_id").as_string() == id);
    auto stranger = s.post("/v1/respond", R"({"text":"Otra","conversation_id":")" + id + R"("})", token("bob"));
    BOOST_TEST(stranger.status == 404u);
    BOOST_TEST(json::parse(stranger.body).at("error").at("type").as_string() == "conversation_not_found");
}

BOOST_AUTO_TEST_CASE(respond_streams_the_frames_as_server_sent_events) {
    server s;
    auto r = s.post("/v1/respond", R"({"text":"Hello","stream":true,"language":"en"})", token("ana"));
    BOOST_TEST_REQUIRE(r.status == 200u, r.body);
    BOOST_TEST(r.header("Content-Type") == "text/event-stream");
    std::string text;
    int deltas = 0;
    std::optional<json::object> done;
    std::size_t at = 0;
    while ((at = r.body.find("data: ", at)) != std::string::npos) {
        auto end = r.body.find("\n\n", at);
        auto f = json::parse(r.body.substr(at + 6, end - at - 6)).as_object();
        if (f.at("type").as_string() == "delta") {
            ++deltas;
            text += f.at("text").as_string();
        } else if (f.at("type").as_string() == "done") {
            done = f;
        }
        at = end;
    }
    BOOST_TEST(deltas >= 2);
    BOOST_TEST_REQUIRE(done.has_value());
    BOOST_TEST(done->at("text").as_string() == text);
    BOOST_TEST(r.body.find("event: delta\n") != std::string::npos);
    BOOST_TEST(r.body.find("event: done\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(callers_without_a_valid_token_get_401_and_bad_bodies_400) {
    server s;
    auto none = s.post("/v1/respond", R"({"text":"Hola"})", "");
    BOOST_TEST(none.status == 401u);
    BOOST_TEST(none.header("WWW-Authenticate") == "Bearer");
    BOOST_TEST(s.post("/v1/respond", R"({"text":"Hola"})", "not-a-key").status == 401u);
    parley::jwt_claims forged;
    forged.sub = "ana";
    forged.exp = 4'000'000'000;
    BOOST_TEST(s.post("/v1/respond", R"({"text":"Hola"})", parley::mint_jwt(forged, std::string(40, 'x'))).status ==
               401u);
    auto const t = token("ana");
    for (std::string body : {"[1]", "{}", R"({"text":1})", R"({"text":"a","stream":"yes"})",
                             R"({"text":"a","language":"fr"})", R"({"text":"a","extra":1})", "{", R"({"text":" "})"}) {
        auto r = s.post("/v1/respond", body, t);
        BOOST_TEST(r.status == 400u, body << " -> " << r.status << " " << r.body);
        BOOST_TEST(json::parse(r.body).at("error").at("type").as_string() == "bad_request");
    }
    auto wrong = s.get("/v1/respond", t);
    BOOST_TEST(wrong.status == 405u);
    BOOST_TEST(wrong.header("Allow") == "POST");
    BOOST_TEST(s.post("/v1/usage", "", t).status == 405u);
    BOOST_TEST(s.sim_requests() == 0);
    // A service API key is a caller too.
    auto svc = s.post("/v1/respond", R"({"text":"Hola"})", service_key);
    BOOST_TEST(svc.status == 200u, svc.body);
}

BOOST_AUTO_TEST_CASE(a_rate_limited_turn_is_429_with_retry_after_in_the_users_language) {
    server s{{{"AI_RATE_LIMIT_PER_USER", "1"}}};
    BOOST_TEST(s.post("/v1/respond", R"({"text":"Una pregunta"})", token("ana")).status == 200u);
    auto r = s.post("/v1/respond", R"({"text":"Otra pregunta"})", token("ana", {}, "en"));
    BOOST_TEST(r.status == 429u, r.body);
    auto const wait = std::stoi(r.header("Retry-After"));
    BOOST_TEST(wait > 3500);
    BOOST_TEST(wait <= 3600);
    auto e = json::parse(r.body).as_object();
    BOOST_TEST(e.at("error").at("type").as_string() == "rate_limited");
    BOOST_TEST(std::string(e.at("error").at("message").as_string()).find("hour") != std::string::npos);
    BOOST_TEST(e.at("retry_after").as_int64() == wait);
}

BOOST_AUTO_TEST_CASE(usage_is_the_callers_own_unless_admin) {
    server s;
    BOOST_TEST(s.post("/v1/respond", R"({"text":"Hola"})", token("ana")).status == 200u);
    BOOST_TEST(s.post("/v1/respond", R"({"text":"Hola"})", token("bob")).status == 200u);
    BOOST_TEST(s.post("/v1/respond", R"({"text":"Hola"})", token("bob")).status == 200u);
    json::object mine;
    for (int i = 0; i != 100; ++i) {  // the rows reach the database within the flush interval
        auto r = s.get("/v1/usage?by=user", token("ana"));
        BOOST_TEST_REQUIRE(r.status == 200u, r.body);
        mine = json::parse(r.body).as_object();
        if (mine.at("total").at("requests").as_int64() == 1) break;
        std::this_thread::sleep_for(20ms);
    }
    BOOST_TEST(mine.at("user").as_string() == "ana");
    BOOST_TEST(mine.at("rows").as_array().size() == 1u);
    BOOST_TEST(mine.at("total").at("requests").as_int64() == 1);
    auto forbidden = s.get("/v1/usage?user=bob", token("ana"));
    BOOST_TEST(forbidden.status == 403u);
    json::object all;
    for (int i = 0; i != 100; ++i) {
        all = json::parse(s.get("/v1/usage?by=user", token("root", {"admin"})).body).as_object();
        if (all.at("total").at("requests").as_int64() == 3) break;
        std::this_thread::sleep_for(20ms);
    }
    BOOST_TEST(all.at("rows").as_array().size() == 2u);
    BOOST_TEST(all.at("total").at("requests").as_int64() == 3);
    auto bob = json::parse(s.get("/v1/usage?user=bob&by=model", token("root", {"admin"})).body).as_object();
    BOOST_TEST(bob.at("total").at("requests").as_int64() == 2);
    auto bad = s.get("/v1/usage?by=week", token("ana"));
    BOOST_TEST(bad.status == 400u);
    BOOST_TEST(std::string(json::parse(bad.body).at("error").at("message").as_string()).find("by week") !=
               std::string::npos);
    BOOST_TEST(s.get("/v1/usage", "").status == 401u);
}

// --- /v1/ws ---------------------------------------------------------------

namespace {
json::object frame(std::optional<std::string> const& text, int line = __builtin_LINE()) {
    BOOST_TEST_REQUIRE(text.has_value(), "no frame (line " << line << ")");
    return json::parse(*text).as_object();
}
// Frames until one of `type` arrives (bounded); all of them in order.
std::vector<json::object> until(parley::test::ws_client& ws, std::string const& type) {
    std::vector<json::object> got;
    for (int i = 0; i != 1000; ++i) {
        got.push_back(frame(ws.receive()));
        if (got.back().at("type").as_string() == type) break;
    }
    return got;
}
}  // namespace

BOOST_AUTO_TEST_CASE(ws_hello_then_a_streamed_turn_ping_and_a_bad_frame) {
    server s;
    parley::test::ws_client ws{s.port, "/v1/ws"};
    BOOST_TEST_REQUIRE(!ws.handshake_error, ws.handshake_error.message());
    BOOST_TEST_REQUIRE(ws.send(R"({"type":"hello","token":")" + token("ana", {}, "en") + R"(","language":"es"})"));
    auto ready = frame(ws.receive());
    BOOST_TEST(ready.at("type").as_string() == "ready");
    BOOST_TEST(ready.at("language").as_string() == "es");
    BOOST_TEST(!ready.at("session_id").as_string().empty());
    BOOST_TEST(!ready.at("conversation_id").as_string().empty());
    BOOST_TEST(ready.at("tools").as_array().size() == 2u);  // conf/tools.json's builtins

    ws.send(R"({"type":"message","id":"c1","text":"Hola"})");
    auto frames = until(ws, "done");
    std::string text;
    for (auto const& f : frames) {
        BOOST_TEST(f.at("id").as_string() == "c1");
        if (f.at("type").as_string() == "delta") text += f.at("text").as_string();
    }
    BOOST_TEST(frames.size() >= 3u);
    BOOST_TEST(frames.back().at("text").as_string() == text);
    BOOST_TEST(frames.back().at("usage").at("output_tokens").as_int64() == 6);

    ws.send(R"({"type":"ping"})");
    BOOST_TEST(frame(ws.receive()).at("type").as_string() == "pong");
    ws.send("this is not json");
    auto bad = frame(ws.receive());
    BOOST_TEST(bad.at("type").as_string() == "error");
    BOOST_TEST(bad.at("code").as_string() == "bad_request");
    ws.send(R"({"type":"message","text":"sin id"})");
    BOOST_TEST(frame(ws.receive()).at("code").as_string() == "bad_request");
    ws.send(R"({"type":"language","language":"en"})");
    ws.send(R"({"type":"teleport","id":"x"})");
    auto unknown = frame(ws.receive());
    BOOST_TEST(unknown.at("id").as_string() == "x");
    BOOST_TEST(std::string(unknown.at("message").as_string()).find("request") != std::string::npos);  // English now
    // The session goes on after all that.
    ws.send(R"({"type":"message","id":"c2","text":"Otra","stream":false})");
    auto second = until(ws, "done");
    BOOST_TEST(second.size() == 1u);  // not streamed: done alone
    ws.close();
}

BOOST_AUTO_TEST_CASE(ws_token_in_the_header_and_refusals_close_with_1008) {
    server s;
    parley::test::ws_client with_header{s.port, "/v1/ws", {{"Authorization", "Bearer " + token("ana")}}};
    with_header.send(R"({"type":"hello"})");
    BOOST_TEST(frame(with_header.receive()).at("type").as_string() == "ready");

    parley::test::ws_client forged{s.port, "/v1/ws"};
    forged.send(R"({"type":"hello","token":"nope"})");
    auto err = frame(forged.receive());
    BOOST_TEST(err.at("code").as_string() == "unauthorized");
    BOOST_TEST(!forged.receive().has_value());
    BOOST_TEST(forged.close_reason().code == 1008);

    parley::test::ws_client not_hello{s.port, "/v1/ws"};
    not_hello.send(R"({"type":"message","id":"m","text":"Hola"})");
    BOOST_TEST(frame(not_hello.receive()).at("code").as_string() == "unauthorized");

    parley::test::ws_client stranger{s.port, "/v1/ws"};
    stranger.send(R"({"type":"hello","token":")" + token("bob") + R"(","conversation_id":"c-nobody"})");
    BOOST_TEST(frame(stranger.receive()).at("code").as_string() == "conversation_not_found");

    // Nothing at all: closed after the hello timeout (5 s).
    parley::test::ws_client silent{s.port, "/v1/ws"};
    auto const t0 = std::chrono::steady_clock::now();
    auto timeout_err = frame(silent.receive(8s));
    BOOST_TEST(timeout_err.at("code").as_string() == "unauthorized");
    BOOST_TEST(!silent.receive(3s).has_value());
    BOOST_TEST(silent.close_reason().code == 1008);
    BOOST_TEST((std::chrono::steady_clock::now() - t0 >= 4500ms));
    BOOST_TEST(s.sim_requests() == 0);
    // The server is still fine.
    BOOST_TEST(s.post("/v1/respond", R"({"text":"Hola"})", token("ana")).status == 200u);
}

BOOST_AUTO_TEST_CASE(ws_cancel_and_a_dropped_connection_record_their_calls) {
    server s{{}, {"--latency-ms", "0", "--tokens-per-second", "20", "--answer-tokens", "200"}};
    parley::test::ws_client ws{s.port, "/v1/ws"};
    ws.send(R"({"type":"hello","token":")" + token("ana") + R"("})");
    BOOST_TEST(frame(ws.receive()).at("type").as_string() == "ready");
    ws.send(R"({"type":"message","id":"c1","text":"Hola"})");
    BOOST_TEST(frame(ws.receive()).at("type").as_string() == "delta");
    ws.send(R"({"type":"message","id":"c2","text":"Otra"})");
    ws.send(R"({"type":"cancel","id":"c1"})");
    auto frames = until(ws, "error");
    bool busy = false;
    for (auto const& f : frames) {
        if (f.at("type").as_string() == "error" && f.at("id").as_string() == "c2") busy = f.at("code").as_string() == "busy";
    }
    if (frames.back().at("id").as_string() == "c2") {
        BOOST_TEST(frames.back().at("code").as_string() == "busy");
        frames = until(ws, "error");
    } else {
        BOOST_TEST(busy);
    }
    BOOST_TEST(frames.back().at("id").as_string() == "c1");
    BOOST_TEST(frames.back().at("code").as_string() == "cancelled");

    // A connection dropped mid-turn: the turn is cancelled and recorded.
    ws.send(R"({"type":"message","id":"c3","text":"Y otra"})");
    BOOST_TEST(frame(ws.receive()).at("type").as_string() == "delta");
    ws.drop();
    json::object mine;
    for (int i = 0; i != 200; ++i) {
        mine = json::parse(s.get("/v1/usage?by=user", token("ana")).body).as_object();
        if (mine.at("total").at("requests").as_int64() == 2) break;
        std::this_thread::sleep_for(25ms);
    }
    BOOST_TEST(mine.at("total").at("requests").as_int64() == 2);
    BOOST_TEST(mine.at("total").at("output_tokens").as_int64() > 0);
}

BOOST_AUTO_TEST_SUITE_END()
