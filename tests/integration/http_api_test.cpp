// POST /v1/respond and GET /v1/usage on a real `parley serve` against the
// real openrouter-sim: authentication (JWT, API key, none), a whole turn
// as JSON and as SSE, errors with their status and Retry-After, and usage
// visible to its owner (everyone's to an admin only).
#include "domain/jwt.hpp"

#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/sim_process.hpp"

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

std::string const secret = "http-api-secret-0123456789abcdef0123";
std::string const service_key = "svc-key-for-tests-1";

struct server {
    parley::test::sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "0", "--answer-tokens", "6"}};
    parley::test::temp_dir data;
    std::unique_ptr<child_process> proc;
    unsigned short port = 0;

    explicit server(std::map<std::string, std::optional<std::string>> extra = {}) {
        std::map<std::string, std::optional<std::string>> env{
            {"OPENROUTER_BASE_URL", "http://127.0.0.1:" + std::to_string(sim.port) + "/api/v1"},
            {"OPENROUTER_API_KEY", "k"},
            {"PARLEY_CONFIG", "/dev/null"},
            {"PARLEY_JWT_SECRET", secret},
            {"PARLEY_AUTH_API_KEY_HASHES", parley::sha256_hex(service_key)},
            {"DATABASE_URL", "sqlite:" + (data.path / "p.db").string()},
            {"PARLEY_DATA_DIR", (data.path / "var").string()},
            {"PARLEY_USAGE_FLUSH_INTERVAL_MS", "10"},
            {"PARLEY_RETRY_INITIAL_BACKOFF_MS", "5"},
            {"PARLEY_RETRY_MAX_BACKOFF_MS", "10"}};
        for (auto& [k, v] : extra) env[k] = v;
        proc = std::make_unique<child_process>(parley::test::bin_path("parley"),
                                               std::vector<std::string>{"serve", "--listen", "127.0.0.1:0"}, env);
        port = static_cast<unsigned short>(
            std::stoi(proc->wait_for_output(R"(listening on http://127\.0\.0\.1:(\d+))", 30s)));
    }
    ~server() {
        if (!proc->wait(0ms)) {
            proc->signal(SIGTERM);
            proc->wait(15s);
        }
    }
    parley::test::http_response post(std::string const& target, std::string body, std::string const& token) {
        http_client c{"127.0.0.1", port};
        parley::test::header_list h;
        if (!token.empty()) h.emplace_back("Authorization", "Bearer " + token);
        return c.post(target, std::move(body), h);
    }
    parley::test::http_response get(std::string const& target, std::string const& token) {
        http_client c{"127.0.0.1", port};
        parley::test::header_list h;
        if (!token.empty()) h.emplace_back("Authorization", "Bearer " + token);
        return c.get(target, h);
    }
    std::int64_t sim_requests() {
        http_client c{"127.0.0.1", sim.port};
        auto r = c.get("/sim/counters", {{"Authorization", "Bearer k"}});
        return json::parse(r.body).at("requests").to_number<std::int64_t>();
    }
};

std::string token(std::string user, std::vector<std::string> perms = {}, std::string lang = "es") {
    parley::jwt_claims c;
    c.sub = std::move(user);
    c.exp = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                .count() +
            600;
    c.lang = std::move(lang);
    c.perms = std::move(perms);
    return parley::mint_jwt(c, secret);
}

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

BOOST_AUTO_TEST_SUITE_END()
