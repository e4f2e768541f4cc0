// `parley chat` as a user runs it: the real binary against the real
// openrouter-sim, configured through the environment. stdout and stderr are
// kept apart (a shell redirects stderr to a file, then execs parley).
// Every suite name starts with "parley_chat".
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/sim_process.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
namespace json = boost::json;
using parley::test::child_process;
using parley::test::http_client;

std::string const key = "sk-or-chat-key-55aa";

struct sim_process : parley::test::sim_process {
    using parley::test::sim_process::sim_process;
    std::string base_url(std::string scheme = "http") const {
        return scheme + "://127.0.0.1:" + std::to_string(port) + "/api/v1";
    }
    json::value get(std::string const& target) {
        http_client c{"127.0.0.1", port, tls};
        auto r = c.get(target, {{"Authorization", "Bearer " + key}});
        BOOST_TEST_REQUIRE(r.status == 200u, target << " -> " << r.status << " " << r.body);
        return json::parse(r.body);
    }
    json::object last_request() { return get("/sim/requests?last=1").at("requests").at(0).as_object(); }
    void script(std::string const& doc) {
        http_client c{"127.0.0.1", port, tls};
        BOOST_TEST_REQUIRE(c.post("/sim/script", doc).status == 200u);
    }
};

std::vector<std::string> fast_sim() {
    return {"--latency-ms", "0", "--tokens-per-second", "0", "--answer-tokens", "6"};
}

using env_map = std::map<std::string, std::optional<std::string>>;

// One `parley chat` run; stdout in the child's output, stderr in a file.
struct chat_run {
    parley::test::temp_dir dir;
    std::unique_ptr<child_process> proc;
    std::optional<int> code;
    std::string out, err;

    chat_run(std::vector<std::string> args, env_map env) {
        std::vector<std::string> argv{"-c", R"(exec "$0" "$@" 2>"$PARLEY_TEST_STDERR")",
                                      parley::test::bin_path("parley").string(), "chat"};
        argv.insert(argv.end(), args.begin(), args.end());
        env["PARLEY_TEST_STDERR"] = (dir.path / "stderr").string();
        env.emplace("PARLEY_CONFIG", "/dev/null");  // built-in defaults, whatever the directory
        // Its own database and usage log unless the test shares one between runs.
        env.emplace("DATABASE_URL", "sqlite:" + (dir.path / "parley.db").string());
        env.emplace("PARLEY_DATA_DIR", (dir.path / "var").string());
        proc = std::make_unique<child_process>("/bin/sh", argv, env);
    }
    chat_run& wait(std::chrono::milliseconds limit = 30s) {
        code = proc->wait(limit);
        BOOST_TEST_REQUIRE(code.has_value(), "parley chat did not exit in time");
        out = proc->output();
        err = parley::test::read_file(dir.path / "stderr");
        return *this;
    }
};

// Runs `parley chat ARGS` to its end.
std::unique_ptr<chat_run> chat(std::vector<std::string> args, env_map env) {
    auto r = std::make_unique<chat_run>(std::move(args), std::move(env));
    r->wait();
    return r;
}

env_map env_for(sim_process const& sim, env_map extra = {}) {
    env_map e{{"OPENROUTER_BASE_URL", sim.base_url()},
              {"OPENROUTER_API_KEY", key},
              {"AI_MODEL", "anthropic/claude-3.5-sonnet"},
              {"PARLEY_RETRY_INITIAL_BACKOFF_MS", "5"},
              {"PARLEY_RETRY_MAX_BACKOFF_MS", "20"}};
    for (auto& [k, v] : extra) e[k] = v;
    return e;
}

int lines(std::string const& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

std::string format6(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6f", v);
    return buf;
}

}  // namespace

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(parley_chat)

/// --stream prints the answer while it arrives, then a newline; exit 0.
BOOST_AUTO_TEST_CASE(stream_prints_tokens_as_they_arrive) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "10", "--answer-tokens", "15"}};
    chat_run run{{"--stream", "Hola"}, env_for(sim)};
    bool partial_seen = false;
    for (int i = 0; i < 300 && !run.proc->wait(0ms); ++i) {
        auto so_far = run.proc->output();
        if (so_far.starts_with("Echo: Hola") && so_far.find('\n') == std::string::npos) partial_seen = true;
        std::this_thread::sleep_for(10ms);
    }
    run.wait();
    BOOST_TEST(partial_seen);  // text was on stdout before the answer was complete
    BOOST_TEST(*run.code == 0);
    BOOST_TEST(run.out.starts_with("Echo: Hola"));
    BOOST_TEST(run.out.ends_with(".\n"));
    BOOST_TEST(lines(run.out) == 1);
    BOOST_TEST(run.err.empty());
}

/// Without --stream the answer is printed once complete.
BOOST_AUTO_TEST_CASE(plain_prints_the_answer) {
    sim_process sim{fast_sim()};
    auto r = chat({"¿Qué", "tal?"}, env_for(sim));
    BOOST_TEST(*r->code == 0);
    BOOST_TEST(r->out.starts_with("Echo: ¿Qué tal?"));
    BOOST_TEST(lines(r->out) == 1);
    auto body = sim.last_request().at("body").as_object();
    BOOST_TEST(body.at("stream").as_bool() == false);
}

/// --json: one object with text, tool_calls, model, finish_reason, usage
/// and the exact cost with 6 decimals (the simulator's own figure).
BOOST_AUTO_TEST_CASE(json_prints_one_object) {
    sim_process sim{fast_sim()};
    chat_run run{{"--raw", "--json", "--model", "anthropic/claude-haiku-4.5", "Hola"}, env_for(sim)};
    auto& r = run.wait();
    BOOST_TEST(*r.code == 0);
    BOOST_TEST(lines(r.out) == 1);
    auto o = json::parse(r.out).as_object();
    BOOST_TEST(o.at("text").as_string().starts_with("Echo: Hola"));
    BOOST_TEST(o.at("tool_calls").as_array().empty());
    BOOST_TEST(o.at("model").as_string() == "anthropic/claude-4.5-haiku-20251001");  // the model that served it
    BOOST_TEST(o.at("finish_reason").as_string() == "stop");
    BOOST_TEST(!o.contains("error"));
    auto const& u = o.at("usage").as_object();
    BOOST_TEST(u.at("input_tokens").as_int64() > 0);
    BOOST_TEST(u.at("output_tokens").as_int64() == 6);
    BOOST_TEST(u.at("cached_tokens").as_int64() == 0);
    std::string const cost{u.at("cost_usd").as_string()};
    BOOST_TEST(std::regex_match(cost, std::regex{R"(\d+\.\d{6})"}), cost);
    auto gen = sim.get("/api/v1/generation?id=" + std::string{o.at("generation_id").as_string()});
    BOOST_TEST(cost == format6(gen.at("data").at("total_cost").to_number<double>()));
    BOOST_TEST(u.at("cost_source").as_string() == "provider");
    BOOST_TEST(sim.last_request().at("body").at("model").as_string() == "anthropic/claude-haiku-4.5");
}

/// --stream --json: streamed upstream, one JSON object printed.
BOOST_AUTO_TEST_CASE(stream_and_json_print_only_the_object) {
    sim_process sim{fast_sim()};
    auto r = chat({"--stream", "--json", "Hola"}, env_for(sim));
    BOOST_TEST(*r->code == 0);
    BOOST_TEST(lines(r->out) == 1);
    BOOST_TEST(json::parse(r->out).at("text").as_string().starts_with("Echo: Hola"));
    BOOST_TEST(sim.last_request().at("body").at("stream").as_bool());
}

/// A failure: exit 1, one line on stderr; with --json the error object
/// (code, message, retryable, attempts = requests that reached the upstream).
BOOST_AUTO_TEST_CASE(a_failure_exits_1_with_one_line_and_the_error_object) {
    sim_process sim{fast_sim()};
    auto r = chat({"--raw", "--json", "--model", "sim/fault-502", "Hola"}, env_for(sim));
    BOOST_TEST(*r->code == 1);
    BOOST_TEST(lines(r->err) == 1);
    BOOST_TEST(r->err.starts_with("parley chat: "));
    BOOST_TEST(r->err.find("4 attempts") != std::string::npos);
    auto o = json::parse(r->out).as_object();
    auto const& e = o.at("error").as_object();
    BOOST_TEST(e.at("code").as_string() == "502");
    BOOST_TEST(e.at("status").as_int64() == 502);
    BOOST_TEST(e.at("retryable").as_bool());
    BOOST_TEST(e.at("attempts").as_int64() == 4);
    BOOST_TEST(!e.at("message").as_string().empty());
    // Recorded all the same: nothing was generated, nothing is billed.
    BOOST_TEST(o.at("usage").at("cost_usd").as_string() == "0.000000");
    BOOST_TEST(o.at("usage").at("cost_source").as_string() == "pricing");
    BOOST_TEST(o.at("text").as_string().empty());

    auto plain = chat({"--raw", "--model", "sim/fault-400", "Hola"}, env_for(sim));
    BOOST_TEST(*plain->code == 1);
    BOOST_TEST(plain->out.empty());
    BOOST_TEST(plain->err.find("(400, 1 attempt)") != std::string::npos);
}

/// A wrong key is a 401: one attempt, never retried.
BOOST_AUTO_TEST_CASE(a_wrong_key_is_one_attempt) {
    sim_process sim{{"--latency-ms", "0", "--api-key", "the-right-key"}};
    auto r = chat({"--raw", "--json", "Hola"}, env_for(sim));
    BOOST_TEST(*r->code == 1);
    auto e = json::parse(r->out).at("error").as_object();
    BOOST_TEST(e.at("status").as_int64() == 401);
    BOOST_TEST(e.at("attempts").as_int64() == 1);
    BOOST_TEST(!e.at("retryable").as_bool());
    BOOST_TEST(r->err.find(key) == std::string::npos);
}

/// A mid-stream failure after text: the partial line is ended, the error
/// reported, no retry.
BOOST_AUTO_TEST_CASE(a_mid_stream_failure_ends_the_line_and_fails) {
    sim_process sim{fast_sim()};
    auto r = chat({"--raw", "--stream", "--model", "sim/fault-mid-stream-error", "Hola"}, env_for(sim));
    BOOST_TEST(*r->code == 1);
    BOOST_TEST(r->out.starts_with("Echo: Hola"));
    BOOST_TEST(r->out.ends_with("\n"));
    BOOST_TEST(r->err.find("1 attempt)") != std::string::npos);
}

/// --raw sends the text alone; otherwise a system prompt in the configured
/// language (with the user and permissions) comes first, and --user is sent.
BOOST_AUTO_TEST_CASE(raw_sends_only_the_text) {
    sim_process sim{fast_sim()};
    BOOST_TEST(*chat({"--raw", "Hola"}, env_for(sim))->code == 0);
    auto body = sim.last_request().at("body").as_object();
    BOOST_TEST(json::serialize(body.at("messages")) == R"([{"role":"user","content":"Hola"}])");

    BOOST_TEST(*chat({"--user", "u-42", "--perm", "weather", "--perm", "time", "Hola"}, env_for(sim))->code == 0);
    body = sim.last_request().at("body").as_object();
    auto const& messages = body.at("messages").as_array();
    BOOST_REQUIRE(messages.size() == 2u);
    BOOST_TEST(messages[0].at("role").as_string() == "system");
    auto const system = json::serialize(messages[0].at("content"));
    BOOST_TEST(system.find("español") != std::string::npos);
    BOOST_TEST(system.find("u-42") != std::string::npos);
    BOOST_TEST(system.find("weather, time") != std::string::npos);
    BOOST_TEST(body.at("user").as_string() == "u-42");

    BOOST_TEST(*chat({"--language", "en", "Hello"}, env_for(sim))->code == 0);
    body = sim.last_request().at("body").as_object();
    auto const english = json::serialize(body.at("messages").at(0).at("content"));
    BOOST_TEST(english.find("answer in English") != std::string::npos);
}

/// Tool calls are printed (plain: one line each; JSON: the array).
BOOST_AUTO_TEST_CASE(tool_calls_are_printed) {
    sim_process sim{fast_sim()};
    std::string const turn =
        R"({"tool_calls":[{"id":"call_9","name":"get_weather","arguments":{"city":"Lima"}}]})";
    sim.script(R"({"turns":[)" + turn + "," + turn + R"(,{"text":"Mira:","tool_calls":[{"id":"c2","name":"t2"}]}]})");
    auto plain = chat({"--raw", "weather"}, env_for(sim));
    BOOST_TEST(*plain->code == 0);
    BOOST_TEST(plain->out == "[tool call] get_weather {\"city\":\"Lima\"}\n");
    auto js = chat({"--raw", "--json", "weather"}, env_for(sim));
    auto calls = json::parse(js->out).at("tool_calls").as_array();
    BOOST_REQUIRE(calls.size() == 1u);
    BOOST_TEST(calls[0].at("id").as_string() == "call_9");
    BOOST_TEST(calls[0].at("name").as_string() == "get_weather");
    BOOST_TEST(json::parse(calls[0].at("arguments").as_string()) == json::parse(R"({"city":"Lima"})"));
    BOOST_TEST(json::parse(js->out).at("finish_reason").as_string() == "tool_calls");
    auto mixed = chat({"--raw", "--stream", "weather"}, env_for(sim));
    BOOST_TEST(mixed->out == "Mira:\n[tool call] t2 {}\n");
}

/// SIGINT mid-stream: exit 130 at once, the upstream connection closed
/// (the simulator counts the stream as cancelled).
BOOST_AUTO_TEST_CASE(sigint_mid_stream_closes_the_upstream_connection) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "10", "--answer-tokens", "100"}};
    chat_run run{{"--stream", "Hola"}, env_for(sim)};
    for (int i = 0; i < 300 && run.proc->output().empty(); ++i) std::this_thread::sleep_for(10ms);
    BOOST_TEST_REQUIRE(!run.proc->output().empty());
    run.proc->signal(SIGINT);
    run.wait(5s);
    BOOST_TEST(*run.code == 130);
    BOOST_TEST(run.err == "parley chat: interrupted (the call is recorded as cancelled)\n");
    BOOST_TEST(run.out.ends_with("\n"));
    std::int64_t cancelled = 0;
    for (int i = 0; i < 100 && cancelled == 0; ++i) {
        std::this_thread::sleep_for(20ms);
        cancelled = sim.get("/sim/counters").at("cancelled").to_number<std::int64_t>();
    }
    BOOST_TEST(cancelled == 1);
}

/// Over TLS with the simulator's certificate as the configured CA.
BOOST_AUTO_TEST_CASE(tls_with_the_configured_ca_file) {
    parley::test::temp_dir dir;
    auto cert = dir.path / "cert.pem", pkey = dir.path / "key.pem";
    BOOST_TEST_REQUIRE(std::system(("timeout 60 openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost "
                                    "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -days 2 -keyout " +
                                    pkey.string() + " -out " + cert.string() + " >/dev/null 2>&1")
                                       .c_str()) == 0);
    sim_process sim{{"--tls-cert", cert.string(), "--tls-key", pkey.string(), "--latency-ms", "0",
                     "--tokens-per-second", "0", "--answer-tokens", "4"},
                    http_client::tls_options{cert, "127.0.0.1"}};
    auto env = env_for(sim, {{"OPENROUTER_BASE_URL", sim.base_url("https")}});
    env["PARLEY_OPENROUTER_CA_FILE"] = cert.string();
    auto ok = chat({"--stream", "seguro"}, env);
    BOOST_TEST(*ok->code == 0);
    BOOST_TEST(ok->out.starts_with("Echo: seguro"));
    env.erase("PARLEY_OPENROUTER_CA_FILE");  // the system store does not know this certificate
    auto refused = chat({"--raw", "seguro"}, env);
    BOOST_TEST(*refused->code == 1);
    BOOST_TEST(refused->err.find("tls_error") != std::string::npos);
    env["PARLEY_OPENROUTER_CA_FILE"] = (dir.path / "missing.pem").string();
    auto missing = chat({"seguro"}, env);
    BOOST_TEST(*missing->code == 2);
    BOOST_TEST(lines(missing->err) == 1);
}

/// Usage and configuration errors exit 2 with one line, before any request.
BOOST_AUTO_TEST_CASE(usage_errors_exit_2) {
    sim_process sim{fast_sim()};
    struct bad_case {
        std::vector<std::string> args;
        env_map env;
        std::string says;
    };
    std::vector<bad_case> const cases{
        {{}, env_for(sim), "TEXT is required"},
        {{"  "}, env_for(sim), "TEXT is required"},
        {{"Hola"}, env_for(sim, {{"OPENROUTER_API_KEY", std::nullopt}}), "OPENROUTER_API_KEY"},
        {{"--stream=yes", "Hola"}, env_for(sim), "takes no value"},
        {{"--perm", "", "Hola"}, env_for(sim), "--perm"},
        {{"--user"}, env_for(sim), "needs a value"},
        {{"--language", "fr", "Hola"}, env_for(sim), "language"},
        {{"--context", "[1]", "Hola"}, env_for(sim), "--context"},
        {{"--conversation", "c-1", "Hola"}, env_for(sim), "--conversation needs --user"},
        {{"Hola"}, env_for(sim, {{"PARLEY_TOOLS_FILE", "/nonexistent/tools.json"}}), "tools.file"},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.says) {
            auto r = chat(c.args, c.env);
            BOOST_TEST(*r->code == 2);
            BOOST_TEST(lines(r->err) == 1);
            BOOST_TEST(r->err.find(c.says) != std::string::npos, r->err);
            BOOST_TEST(r->out.empty());
        }
    }
    BOOST_TEST(sim.get("/sim/counters").at("requests").as_int64() == 0);
}

/// An unreachable upstream: exit 1, the failure named, no request counted.
BOOST_AUTO_TEST_CASE(an_unreachable_upstream_fails_with_1) {
    env_map env{{"OPENROUTER_BASE_URL", "http://127.0.0.1:1/api/v1"},
                {"OPENROUTER_API_KEY", key},
                {"PARLEY_RETRY_INITIAL_BACKOFF_MS", "1"},
                {"PARLEY_RETRY_MAX_BACKOFF_MS", "2"}};
    auto r = chat({"--raw", "--json", "Hola"}, env);
    BOOST_TEST(*r->code == 1);
    auto e = json::parse(r->out).at("error").as_object();
    BOOST_TEST(e.at("code").as_string() == "connect_failed");
    BOOST_TEST(e.at("attempts").as_int64() == 0);
    BOOST_TEST(r->err.find("(connect_failed, 0 attempts)") != std::string::npos);
}

/// A full turn with tools (issue #5): --perm gives the terminal user the
/// permissions a tool needs; tools the user may not use are not offered and
/// never run; the turn's usage in --json sums every upstream call.
BOOST_AUTO_TEST_CASE(a_turn_runs_the_tool_loop_with_the_users_permissions) {
    sim_process sim{fast_sim()};
    parley::test::temp_dir dir;
    auto const tools = dir.path / "tools.json";
    parley::test::write_file(tools, R"({"tools":[
        {"name":"current_time","handler":{"type":"builtin","name":"current_time"}},
        {"name":"my_usage","permission":"usage","handler":{"type":"builtin","name":"my_usage"}}]})");
    auto env = env_for(sim, {{"PARLEY_TOOLS_FILE", tools.string()}});
    std::string const usage1 = R"("usage":{"prompt_tokens":100,"completion_tokens":10,"cost":"0.0011"})";
    std::string const usage2 = R"("usage":{"prompt_tokens":200,"completion_tokens":20,"cost":"0.0022"})";
    sim.script(R"({"turns":[{"text":"Miro.","tool_calls":[{"id":"a1","name":"current_time"},{"id":"a2","name":"my_usage"}],)" +
               usage1 + R"(},{"text":"Son las diez.",)" + usage2 + "}]}");
    auto r = chat({"--json", "--user", "ana", "--perm", "usage", "¿Qué hora es?"}, env);
    BOOST_TEST_REQUIRE(*r->code == 0, r->err);
    auto o = json::parse(r->out).as_object();
    BOOST_TEST(o.at("text").as_string() == "Miro.\n\nSon las diez.");
    BOOST_TEST(o.at("fallback").as_bool() == false);
    BOOST_TEST(o.at("usage").at("input_tokens").as_int64() == 300);
    BOOST_TEST(o.at("usage").at("output_tokens").as_int64() == 30);
    BOOST_TEST(o.at("usage").at("cost_usd").as_string() == "0.003300");
    BOOST_TEST(o.at("tools").as_array().size() == 2u);
    for (auto const& t : o.at("tools").as_array()) BOOST_TEST(t.at("status").as_string() == "done");
    auto second = sim.last_request().at("body").as_object();
    auto const& msgs = second.at("messages").as_array();
    BOOST_REQUIRE(msgs.size() == 5u);  // system, user, assistant with calls, two results
    BOOST_TEST(msgs[3].at("role").as_string() == "tool");
    BOOST_TEST(json::parse(msgs[3].at("content").as_string()).as_object().contains("utc"));
    BOOST_TEST(json::parse(msgs[4].at("content").as_string()).at("user").as_string() == "ana");
    BOOST_TEST(second.at("tools").as_array().size() == 2u);

    // Without the permission my_usage is not offered, and a call to it is
    // answered with an error and never run.
    sim.script(R"({"turns":[{"tool_calls":[{"id":"b1","name":"my_usage"}]},{"text":"No puedo."}]})");
    auto refused = chat({"--user", "bea", "¿Cuánto he gastado?"}, env);
    BOOST_TEST_REQUIRE(*refused->code == 0, refused->err);
    BOOST_TEST(refused->out == "No puedo.\n");
    BOOST_TEST(refused->err.find("[tool] my_usage failed") != std::string::npos, refused->err);
    auto body = sim.last_request().at("body").as_object();
    BOOST_TEST(body.at("tools").as_array().size() == 1u);
    auto const result = json::parse(body.at("messages").as_array().back().at("content").as_string());
    BOOST_TEST(std::string(result.at("error").as_string()).find("not allowed") != std::string::npos);
}

/// The turn's context goes into the system prompt; a conversation is
/// resumed by its owner with --conversation, and refused to anyone else.
BOOST_AUTO_TEST_CASE(context_and_conversation_resume) {
    sim_process sim{fast_sim()};
    parley::test::temp_dir dir;
    auto env = env_for(sim, {{"DATABASE_URL", "sqlite:" + (dir.path / "shared.db").string()},
                             {"PARLEY_DATA_DIR", (dir.path / "var").string()}});
    auto first = chat({"--json", "--user", "ana", "--context", R"({"plan":"pro","page":"billing"})", "Primera"}, env);
    BOOST_TEST_REQUIRE(*first->code == 0, first->err);
    auto const system = json::serialize(sim.last_request().at("body").at("messages").at(0).at("content"));
    BOOST_TEST(system.find("plan: pro") != std::string::npos, system);
    BOOST_TEST(system.find("page: billing") != std::string::npos, system);
    std::string const id{json::parse(first->out).at("conversation_id").as_string()};
    BOOST_TEST_REQUIRE(!id.empty());

    auto again = chat({"--json", "--user", "ana", "--conversation", id, "Segunda"}, env);
    BOOST_TEST_REQUIRE(*again->code == 0, again->err);
    BOOST_TEST(json::parse(again->out).at("conversation_id").as_string() == id);
    auto const resumed = sim.last_request();
    auto const& msgs = resumed.at("body").at("messages").as_array();
    BOOST_REQUIRE_MESSAGE(msgs.size() == 4u, json::serialize(msgs));  // system, the first turn (user, assistant), the new message
    BOOST_TEST(msgs[1].at("content").as_string() == "Primera");
    BOOST_TEST(msgs[2].at("role").as_string() == "assistant");
    BOOST_TEST(msgs[3].at("content").as_string() == "Segunda");

    auto const before = sim.get("/sim/counters").at("requests").as_int64();
    auto stranger = chat({"--user", "bob", "--conversation", id, "Hola"}, env);
    BOOST_TEST(*stranger->code == 1);
    BOOST_TEST(stranger->err.find("(conversation_not_found)") != std::string::npos, stranger->err);
    BOOST_TEST(sim.get("/sim/counters").at("requests").as_int64() == before);
}

/// The upstream down: a message with a fallback pattern gets the fallback
/// answer (exit 0, said on stderr); another gets ai_unavailable in the
/// session's language (exit 1).
BOOST_AUTO_TEST_CASE(fallback_answers_when_the_upstream_is_down) {
    env_map env{{"OPENROUTER_BASE_URL", "http://127.0.0.1:1/api/v1"},
                {"OPENROUTER_API_KEY", key},
                {"PARLEY_RETRY_INITIAL_BACKOFF_MS", "1"},
                {"PARLEY_RETRY_MAX_BACKOFF_MS", "2"}};
    auto hello = chat({"--json", "¡Hola!"}, env);
    BOOST_TEST(*hello->code == 0, hello->err);
    auto o = json::parse(hello->out).as_object();
    BOOST_TEST(o.at("fallback").as_bool());
    BOOST_TEST(!o.at("text").as_string().empty());
    BOOST_TEST(hello->err.find("fallback answer") != std::string::npos);
    auto other = chat({"--language", "en", "Explain quantum computing"}, env);
    BOOST_TEST(*other->code == 1);
    BOOST_TEST(other->err.find("(ai_unavailable)") != std::string::npos, other->err);
    BOOST_TEST(other->err.find("not available") != std::string::npos, other->err);
}

/// `parley --help` lists chat.
BOOST_AUTO_TEST_CASE(help_lists_chat) {
    child_process help{parley::test::bin_path("parley"), {"--help"}};
    BOOST_TEST(help.wait(10s).value() == 0);
    BOOST_TEST(help.output().find("chat TEXT") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
