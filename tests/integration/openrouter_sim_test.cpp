// openrouter-sim as tests, demos and benchmarks use it: the real binary on a
// real port, spoken to over sockets (plain and TLS) with tests/support/http_client.hpp.
// Every suite name contains "sim": run them with --run_test='*sim*'.
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/sim_process.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace json = boost::json;
using namespace std::chrono_literals;
using parley::test::child_process;
using parley::test::header_list;
using parley::test::http_client;
using parley::test::http_response;
namespace http = boost::beast::http;

namespace {

std::string const key = "sk-or-test-key-7f3a";
header_list const auth{{"Authorization", "Bearer " + key}};

header_list with_auth(header_list extra) {
    extra.insert(extra.begin(), auth.begin(), auth.end());
    return extra;
}

// A running simulator; SIGTERM at scope exit (the child_process destructor
// SIGKILLs by PID if that did not end it).
struct sim_process : parley::test::sim_process {
    using parley::test::sim_process::sim_process;

    std::unique_ptr<http_client> client() { return std::make_unique<http_client>("127.0.0.1", port, tls); }

    json::value get_json(std::string const& target, header_list const& headers = {}) {
        auto r = client()->get(target, headers);
        BOOST_TEST_REQUIRE(r.status == 200u, target << " -> " << r.status << " " << r.body);
        return json::parse(r.body);
    }
    http_response post(std::string const& target, std::string body, header_list const& headers = auth) {
        return client()->post(target, std::move(body), headers);
    }
    void script(json::value turns_doc) {
        auto r = client()->post("/sim/script", json::serialize(turns_doc));
        BOOST_TEST_REQUIRE(r.status == 200u, r.body);
    }
};

std::string chat(std::string const& text, json::object extra = {}) {
    json::object body{{"model", "anthropic/claude-3.5-sonnet"},
                      {"messages", json::array{json::object{{"role", "user"}, {"content", text}}}}};
    for (auto const& [k, v] : extra) body[k] = v;
    return json::serialize(body);
}

std::string stream_chat(std::string const& text, json::object extra = {}) {
    extra["stream"] = true;
    return chat(text, std::move(extra));
}

// The JSON after OpenRouter's leading whitespace.
json::value parse_padded(std::string const& body) {
    auto start = body.find_first_not_of(" \n\r\t");
    BOOST_TEST_REQUIRE(start != std::string::npos, "body is only whitespace");
    return json::parse(std::string_view{body}.substr(start));
}

// SSE events of a body: each event's text without its blank line.
std::vector<std::string> sse_events(std::string const& body) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos < body.size()) {
        auto end = body.find("\n\n", pos);
        if (end == std::string::npos) {
            out.push_back(body.substr(pos));
            break;
        }
        out.push_back(body.substr(pos, end - pos));
        pos = end + 2;
    }
    return out;
}

// The parsed data events (comments and [DONE] left out).
std::vector<json::object> data_chunks(std::string const& body) {
    std::vector<json::object> out;
    for (auto const& e : sse_events(body)) {
        if (!e.starts_with("data: ") || e == "data: [DONE]") continue;
        out.push_back(json::parse(e.substr(6)).as_object());
    }
    return out;
}

std::string joined_content(std::vector<json::object> const& chunks) {
    std::string text;
    for (auto const& c : chunks) {
        auto const& choices = c.at("choices").as_array();
        if (choices.empty()) continue;
        auto const& delta = choices[0].at("delta").as_object();
        if (auto const* content = delta.if_contains("content"); content && content->is_string())
            text += content->get_string();
    }
    return text;
}

std::int64_t num(json::value const& v) { return v.to_number<std::int64_t>(); }

json::value tools_doc() {
    return json::parse(R"([
      {"type":"function","function":{"name":"get_weather","description":"Weather for a city",
        "parameters":{"type":"object","properties":{"city":{"type":"string"},"units":{"type":"string","enum":["c","f"]},
        "days":{"type":"integer"}},"required":["city","units"]}}},
      {"type":"function","function":{"name":"current_time","parameters":{"type":"object","properties":{}}}}])");
}

struct assembled_call {
    std::string id, type, name, arguments;
    int fragments = 0;
};

// Joins streamed tool-call fragments per index, checking the §5 fragment shape.
std::map<int, assembled_call> assemble_calls(std::vector<json::object> const& chunks, std::vector<std::string>* pieces = nullptr) {
    std::map<int, assembled_call> calls;
    for (auto const& c : chunks) {
        auto const& choices = c.at("choices").as_array();
        if (choices.empty()) continue;
        auto const& delta = choices[0].at("delta").as_object();
        auto const* tc = delta.if_contains("tool_calls");
        if (!tc) continue;
        BOOST_TEST(delta.at("content").is_null());
        BOOST_TEST(delta.at("role").as_string() == "assistant");
        for (auto const& f : tc->as_array()) {
            auto const& o = f.as_object();
            int index = static_cast<int>(num(o.at("index")));
            auto& call = calls[index];
            auto const& fn = o.at("function").as_object();
            if (call.fragments == 0) {
                call.id = o.at("id").as_string();
                call.type = o.at("type").as_string();
                call.name = fn.at("name").as_string();
                BOOST_TEST(fn.at("arguments").as_string() == "");
            } else {
                BOOST_TEST(!o.contains("id"));
                BOOST_TEST(!o.contains("type"));
                BOOST_TEST(!fn.contains("name"));
                BOOST_TEST(o.size() == 2u);  // index + function
                if (pieces) pieces->emplace_back(fn.at("arguments").as_string());
            }
            call.arguments += fn.at("arguments").as_string();
            ++call.fragments;
        }
    }
    return calls;
}

std::string nano_to_decimal(std::int64_t nano) {
    std::string out = std::to_string(nano / 1'000'000'000);
    if (auto frac = nano % 1'000'000'000) {
        std::string d = std::to_string(frac);
        d.insert(0, 9 - d.size(), '0');
        while (d.back() == '0') d.pop_back();
        out += "." + d;
    }
    return out;
}

std::string raw_cost(std::string const& body) {
    std::smatch m;
    std::regex re{R"re("cost":([0-9.]+))re"};
    BOOST_TEST_REQUIRE(std::regex_search(body, m, re), "no cost in " << body);
    return m[1].str();
}

// Runs a command through the shell with a time cap; its exit status.
int shell(std::string const& cmd) { return std::system(("timeout 60 " + cmd + " >/dev/null 2>&1").c_str()); }

}  // namespace

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(openrouter_sim_cli)

BOOST_AUTO_TEST_CASE(prints_one_listening_line_then_exits_0_on_sigterm_and_sigint) {
    for (int sig : {SIGTERM, SIGINT}) {
        child_process p{parley::test::bin_path("openrouter-sim"), {"--port", "0"}};
        auto port = p.wait_for_output(R"(listening on http://127\.0\.0\.1:(\d+)\n)");
        {
            http_client c{"127.0.0.1", static_cast<unsigned short>(std::stoi(port))};
            BOOST_TEST(c.get("/api/v1/models").status == 200u);
        }
        BOOST_TEST(p.output() == "openrouter-sim listening on http://127.0.0.1:" + port + "\n");
        p.signal(sig);
        auto rc = p.wait(10s);
        BOOST_TEST_REQUIRE(rc.has_value(), "did not exit on signal " << sig);
        BOOST_TEST(*rc == 0);
    }
}

BOOST_AUTO_TEST_CASE(exits_0_on_sigterm_with_streams_in_flight) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "5", "--answer-tokens", "100"}};
    auto c = sim.client();
    c->send(http::verb::post, "/api/v1/chat/completions", stream_chat("hold on"), auth);
    BOOST_TEST(c->read_header().status == 200u);
    BOOST_TEST(c->read_piece().has_value());
    sim.proc.signal(SIGTERM);
    auto rc = sim.proc.wait(10s);
    BOOST_TEST_REQUIRE(rc.has_value());
    BOOST_TEST(*rc == 0);
}

BOOST_AUTO_TEST_CASE(invalid_options_exit_2_with_one_line) {
    std::vector<std::vector<std::string>> cases{
        {"--port", "70000"},          {"--bogus"},
        {"--latency-ms"},             {"--latency-ms", "-5"},
        {"--tokens-per-second", "x"}, {"--answer-tokens", "0"},
        {"--fault-rate", "nope=0.5"}, {"--fault-rate", "502=1.5"},
        {"--fault-rate", "502=0.7,429=0.6"}, {"--usage-shape", "weird"},
        {"--tls-cert", "/tmp/x.pem"}, {"--threads", "0"},
        {"--seed", "-1"},             {"--api-key", ""},
        {"positional"},               {"--host", "not a host"},
    };
    for (auto const& args : cases) {
        std::string joined;
        for (auto const& a : args) joined += a + " ";
        BOOST_TEST_CONTEXT("args: " << joined) {
            child_process p{parley::test::bin_path("openrouter-sim"), args};
            auto rc = p.wait(10s);
            BOOST_TEST_REQUIRE(rc.has_value());
            BOOST_TEST(*rc == 2);
            auto out = p.output();
            BOOST_TEST(out.starts_with("openrouter-sim: "));
            BOOST_TEST(std::count(out.begin(), out.end(), '\n') == 1);
        }
    }
}

BOOST_AUTO_TEST_CASE(unreadable_tls_files_exit_2_and_help_exits_0) {
    child_process bad{parley::test::bin_path("openrouter-sim"),
                      {"--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"}};
    auto rc = bad.wait(10s);
    BOOST_TEST_REQUIRE(rc.has_value());
    BOOST_TEST(*rc == 2);
    auto bad_out = bad.output();
    BOOST_TEST(std::count(bad_out.begin(), bad_out.end(), '\n') == 1);

    child_process help{parley::test::bin_path("openrouter-sim"), {"--help"}};
    rc = help.wait(10s);
    BOOST_TEST_REQUIRE(rc.has_value());
    BOOST_TEST(*rc == 0);
    BOOST_TEST(help.output().find("--fault-rate") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(openrouter_sim_completions)

BOOST_AUTO_TEST_CASE(non_stream_answer_is_padded_chunked_json_in_openrouter_shape) {
    sim_process sim{{"--latency-ms", "1100", "--tokens-per-second", "0", "--answer-tokens", "20"}};
    std::string const text = "Hello simulator, please answer";
    auto before = std::chrono::system_clock::now();
    auto r = sim.post("/api/v1/chat/completions", chat(text));
    BOOST_TEST_REQUIRE(r.status == 200u);
    BOOST_TEST(r.complete);
    BOOST_TEST(r.chunked);
    BOOST_TEST(r.header("Content-Type") == "application/json");
    BOOST_TEST(r.chunk_sizes.size() >= 3u);  // padding blocks arrive as their own chunks

    // Leading whitespace: blocks of "\n" + 9 spaces + "\n", one per 500 ms of work.
    std::string const block = "\n         \n";
    auto brace = r.body.find('{');
    BOOST_TEST_REQUIRE(brace != std::string::npos);
    std::string lead = r.body.substr(0, brace);
    BOOST_TEST(lead.size() % block.size() == 0u);
    BOOST_TEST(lead.size() / block.size() >= 3u);
    for (std::size_t i = 0; i + block.size() <= lead.size(); i += block.size()) BOOST_TEST(lead.substr(i, block.size()) == block);

    auto doc = parse_padded(r.body).as_object();
    std::string id{doc.at("id").as_string()};
    BOOST_TEST(std::regex_match(id, std::regex{R"(gen-\d+-[A-Za-z0-9]{20})"}));
    BOOST_TEST(r.header("X-Generation-Id") == id);
    BOOST_TEST(doc.at("object").as_string() == "chat.completion");
    auto now_s = std::chrono::duration_cast<std::chrono::seconds>(before.time_since_epoch()).count();
    BOOST_TEST(std::abs(num(doc.at("created")) - now_s) <= 5);
    BOOST_TEST(doc.at("model").as_string() == "anthropic/claude-3.5-sonnet");
    BOOST_TEST(doc.at("provider").as_string() == "Anthropic");
    BOOST_TEST(doc.at("system_fingerprint").is_null());
    auto const& choice = doc.at("choices").as_array().at(0).as_object();
    BOOST_TEST(choice.at("finish_reason").as_string() == "stop");
    BOOST_TEST(choice.at("native_finish_reason").as_string() == "end_turn");
    auto const& msg = choice.at("message").as_object();
    BOOST_TEST(msg.at("role").as_string() == "assistant");
    BOOST_TEST(msg.at("refusal").is_null());
    BOOST_TEST(msg.at("reasoning").is_null());
    BOOST_TEST(!msg.contains("tool_calls"));
    std::string content{msg.at("content").as_string()};
    BOOST_TEST(content.starts_with("Echo: " + text));

    auto const& u = doc.at("usage").as_object();
    std::int64_t prompt = (std::string{"user"}.size() + text.size() + 3) / 4;
    BOOST_TEST(num(u.at("prompt_tokens")) == prompt);
    BOOST_TEST(num(u.at("completion_tokens")) == 20);
    BOOST_TEST(num(u.at("total_tokens")) == prompt + 20);
    // $3 / $15 per million tokens, exact: nano-dollars.
    std::string expected = nano_to_decimal(prompt * 3000 + 20 * 15000);
    BOOST_TEST(raw_cost(r.body) == expected);
    BOOST_TEST(u.at("prompt_tokens_details").at("cached_tokens").as_int64() == 0);
    BOOST_TEST(u.at("cost_details").at("upstream_inference_cost") == u.at("cost"));
    BOOST_TEST(u.at("is_byok").as_bool() == false);
}

BOOST_AUTO_TEST_CASE(keep_alive_connection_serves_several_answers) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "0"}};
    auto c = sim.client();
    std::set<std::string> ids;
    for (int i = 0; i < 3; ++i) {
        auto r = c->post("/api/v1/chat/completions", i == 1 ? stream_chat("again") : chat("again"), auth);
        BOOST_TEST_REQUIRE(r.status == 200u);
        BOOST_TEST(r.complete);
        ids.insert(r.header("X-Generation-Id"));
    }
    BOOST_TEST(ids.size() == 3u);
    BOOST_TEST(c->get("/sim/counters").status == 200u);
}

BOOST_AUTO_TEST_CASE(stream_sends_comments_deltas_finish_usage_then_done) {
    sim_process sim{{"--latency-ms", "300", "--tokens-per-second", "100", "--answer-tokens", "12",
                     "--keepalive-comments", "2"}};
    auto c = sim.client();
    c->send(http::verb::post, "/api/v1/chat/completions", stream_chat("Tell me a story"), auth);
    auto head = c->read_header();
    BOOST_TEST_REQUIRE(head.status == 200u);
    BOOST_TEST(head.chunked);
    BOOST_TEST(head.header("Content-Type") == "text/event-stream");
    std::string gen_id = head.header("X-Generation-Id");
    BOOST_TEST(!gen_id.empty());
    std::string body;
    std::vector<std::chrono::milliseconds> arrivals;
    while (auto p = c->read_piece()) {
        body += p->data;
        arrivals.push_back(p->at);
    }
    BOOST_TEST(c->complete());
    BOOST_TEST(arrivals.back() >= 300ms + 100ms);  // latency + 11 paced tokens

    auto events = sse_events(body);
    BOOST_TEST_REQUIRE(events.size() == 2u + 12u + 3u);
    BOOST_TEST(events[0] == ": OPENROUTER PROCESSING");
    BOOST_TEST(events[1] == ": OPENROUTER PROCESSING");
    BOOST_TEST(events.back() == "data: [DONE]");
    BOOST_TEST(body.ends_with("data: [DONE]\n\n"));

    auto chunks = data_chunks(body);
    BOOST_TEST_REQUIRE(chunks.size() == 14u);
    for (auto const& ch : chunks) {
        BOOST_TEST(ch.at("id").as_string() == gen_id);
        BOOST_TEST(ch.at("model").as_string() == "anthropic/claude-3.5-sonnet");
        BOOST_TEST(ch.at("provider").as_string() == "Anthropic");
        BOOST_TEST(ch.at("object").as_string() == "chat.completion.chunk");
    }
    // 2025 recordings order the keys id, provider, model, object, created.
    auto first_event = events[2];
    BOOST_TEST(first_event.find("{\"id\":") < first_event.find("\"provider\":"));
    BOOST_TEST(first_event.find("\"provider\":") < first_event.find("\"model\":"));
    for (std::size_t i = 0; i < 12; ++i) {
        auto const& ch = chunks[i].at("choices").as_array().at(0).as_object();
        BOOST_TEST(ch.at("delta").at("role").as_string() == "assistant");
        BOOST_TEST(ch.at("finish_reason").is_null());
        BOOST_TEST(!chunks[i].contains("usage"));
    }
    auto const& fin = chunks[12];
    auto const& fin_choice = fin.at("choices").as_array().at(0).as_object();
    BOOST_TEST(fin_choice.at("finish_reason").as_string() == "stop");
    BOOST_TEST(fin_choice.at("native_finish_reason").as_string() == "end_turn");
    BOOST_TEST(fin_choice.at("delta").at("content").as_string() == "");
    BOOST_TEST(!fin.contains("usage"));
    auto const& usage_chunk = chunks[13];
    BOOST_TEST(usage_chunk.at("choices").as_array().empty());
    BOOST_TEST(num(usage_chunk.at("usage").at("completion_tokens")) == 12);
    BOOST_TEST(usage_chunk.at("usage").as_object().contains("cost"));

    // The same prompt, not streamed, gives the same text.
    auto plain = c->post("/api/v1/chat/completions", chat("Tell me a story"), auth);
    auto text = parse_padded(plain.body).at("choices").at(0).at("message").at("content").as_string();
    BOOST_TEST(joined_content(chunks) == std::string{text});
}

BOOST_AUTO_TEST_CASE(usage_chunk_takes_each_observed_shape) {
    for (std::string shape : {"empty", "finish", "delta"}) {
        BOOST_TEST_CONTEXT("--usage-shape " << shape) {
            sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "0", "--answer-tokens", "5",
                             "--keepalive-comments", "0", "--usage-shape", shape}};
            auto r = sim.post("/api/v1/chat/completions", stream_chat("shape"));
            auto chunks = data_chunks(r.body);
            BOOST_TEST_REQUIRE(chunks.size() == 7u);
            BOOST_TEST(!chunks[5].contains("usage"));  // the finish chunk is its own
            auto const& u = chunks[6];
            BOOST_TEST(num(u.at("usage").at("completion_tokens")) == 5);
            auto const& choices = u.at("choices").as_array();
            if (shape == "empty") {
                BOOST_TEST(choices.empty());
            } else if (shape == "finish") {
                BOOST_TEST_REQUIRE(choices.size() == 1u);
                BOOST_TEST(choices[0].at("finish_reason").as_string() == "stop");
                BOOST_TEST(choices[0].at("native_finish_reason").as_string() == "end_turn");
            } else {
                BOOST_TEST_REQUIRE(choices.size() == 1u);
                BOOST_TEST(choices[0].at("finish_reason").is_null());
                BOOST_TEST(choices[0].at("delta").at("role").as_string() == "assistant");
                BOOST_TEST(choices[0].at("delta").at("content").as_string() == "");
            }
            BOOST_TEST(r.body.ends_with("data: [DONE]\n\n"));
            // The per-request header overrides the option.
            auto o = sim.post("/api/v1/chat/completions", stream_chat("shape"), with_auth({{"X-Sim-Usage-Shape", "finish"}}));
            auto oc = data_chunks(o.body);
            BOOST_TEST(oc.back().at("choices").as_array().at(0).at("finish_reason").as_string() == "stop");
        }
    }
}

BOOST_AUTO_TEST_CASE(max_tokens_truncates_with_length) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "0", "--answer-tokens", "30"}};
    auto r = sim.post("/api/v1/chat/completions", chat("short please", {{"max_tokens", 4}}));
    auto doc = parse_padded(r.body);
    BOOST_TEST(doc.at("choices").at(0).at("finish_reason").as_string() == "length");
    BOOST_TEST(doc.at("choices").at(0).at("native_finish_reason").as_string() == "max_tokens");
    BOOST_TEST(num(doc.at("usage").at("completion_tokens")) == 4);
}

BOOST_AUTO_TEST_CASE(request_errors_use_openrouter_bodies) {
    sim_process sim{{"--latency-ms", "0", "--api-key", key}};
    auto r = sim.post("/api/v1/chat/completions", chat("hi"), {});
    BOOST_TEST(r.status == 401u);
    BOOST_TEST(r.body == R"({"error":{"message":"No auth credentials found","code":401}})");
    BOOST_TEST(!r.header("X-Generation-Id").empty());

    r = sim.post("/api/v1/chat/completions", chat("hi"), {{"Authorization", "Bearer sk-or-wrong"}});
    BOOST_TEST(r.status == 401u);
    BOOST_TEST(json::parse(r.body).at("error").at("code").as_int64() == 401);

    r = sim.post("/api/v1/chat/completions", "{\"messages\": [", auth);
    BOOST_TEST(r.status == 400u);
    BOOST_TEST(json::parse(r.body).at("error").at("code").as_int64() == 400);

    r = sim.post("/api/v1/chat/completions", R"({"model":"anthropic/claude-3.5-sonnet"})", auth);
    BOOST_TEST(r.status == 400u);
    BOOST_TEST(json::parse(r.body).at("error").at("code").as_int64() == 400);

    r = sim.post("/api/v1/chat/completions", R"({"model":"acme/nope","messages":[{"role":"user","content":"x"}]})", auth);
    BOOST_TEST(r.status == 400u);
    BOOST_TEST(json::parse(r.body).at("error").at("message").as_string() == "acme/nope is not a valid model ID");

    r = sim.client()->get("/api/v1/nothing-here");
    BOOST_TEST(r.status == 404u);
    BOOST_TEST(json::parse(r.body).at("error").at("code").as_int64() == 404);

    r = sim.client()->get("/api/v1/chat/completions");
    BOOST_TEST(r.status == 405u);

    // The right key works.
    r = sim.post("/api/v1/chat/completions", chat("hi"), auth);
    BOOST_TEST(r.status == 200u);
    auto counters = sim.get_json("/sim/counters");
    BOOST_TEST(num(counters.at("requests")) == 6);
    BOOST_TEST(num(counters.at("errors")) == 5);
}

BOOST_AUTO_TEST_CASE(models_endpoint_lists_the_price_table) {
    sim_process sim;
    auto doc = sim.get_json("/api/v1/models");
    std::map<std::string, json::object> models;
    for (auto const& m : doc.at("data").as_array()) models[std::string{m.at("id").as_string()}] = m.as_object();
    for (auto id : {"anthropic/claude-3.5-sonnet", "anthropic/claude-haiku-4.5", "openai/gpt-4o-mini",
                    "meta-llama/llama-3.3-70b-instruct:free"}) {
        BOOST_TEST_CONTEXT(id) {
            BOOST_TEST_REQUIRE(models.count(id) == 1u);
            auto const& m = models[id];
            BOOST_TEST(m.at("name").is_string());
            BOOST_TEST(m.at("context_length").as_int64() > 0);
            auto const& p = m.at("pricing").as_object();
            for (auto k : {"prompt", "completion", "request", "image", "input_cache_read", "input_cache_write"})
                BOOST_TEST(p.at(k).is_string());
            BOOST_TEST(m.at("top_provider").as_object().contains("max_completion_tokens"));
            BOOST_TEST(!m.at("supported_parameters").as_array().empty());
        }
    }
    auto const& sonnet = models["anthropic/claude-3.5-sonnet"].at("pricing");
    BOOST_TEST(sonnet.at("prompt").as_string() == "0.000003");
    BOOST_TEST(sonnet.at("completion").as_string() == "0.000015");
    BOOST_TEST(sonnet.at("input_cache_read").as_string() == "0.0000003");
    BOOST_TEST(sonnet.at("input_cache_write").as_string() == "0.00000375");
    auto const& free = models["meta-llama/llama-3.3-70b-instruct:free"].at("pricing");
    BOOST_TEST(free.at("prompt").as_string() == "0");
    BOOST_TEST(free.at("completion").as_string() == "0");

    // A free model costs exactly 0; gpt-4o-mini uses its own prices.
    auto r = sim.post("/api/v1/chat/completions",
                      R"({"model":"meta-llama/llama-3.3-70b-instruct:free","messages":[{"role":"user","content":"hi"}]})");
    BOOST_TEST(raw_cost(r.body) == "0");
    r = sim.post("/api/v1/chat/completions",
                 R"({"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"12345678"}]})",
                 with_auth({{"X-Sim-Answer-Tokens", "10"}, {"X-Sim-Latency-Ms", "0"}}));
    auto doc2 = parse_padded(r.body);
    BOOST_TEST(doc2.at("choices").at(0).at("native_finish_reason").as_string() == "stop");
    std::int64_t prompt = num(doc2.at("usage").at("prompt_tokens"));
    BOOST_TEST(prompt == 3);  // ("user" + 8 characters) / 4
    BOOST_TEST(raw_cost(r.body) == nano_to_decimal(prompt * 150 + 10 * 600));
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(openrouter_sim_tools)

BOOST_AUTO_TEST_CASE(streamed_tool_call_fragments_reassemble_to_json) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "0"}};
    auto r = sim.post("/api/v1/chat/completions", stream_chat("what is current_time", {{"tools", tools_doc()}}));
    auto chunks = data_chunks(r.body);
    auto calls = assemble_calls(chunks);
    BOOST_TEST_REQUIRE(calls.size() == 1u);
    auto const& call = calls.begin()->second;
    BOOST_TEST(calls.begin()->first == 0);
    BOOST_TEST(call.name == "current_time");
    BOOST_TEST(call.type == "function");
    BOOST_TEST(call.id.starts_with("toolu_"));
    BOOST_TEST(json::parse(call.arguments) == json::object{});
    auto const& fin = chunks[chunks.size() - 2].at("choices").as_array().at(0);
    BOOST_TEST(fin.at("finish_reason").as_string() == "tool_calls");
    BOOST_TEST(fin.at("native_finish_reason").as_string() == "tool_use");
    BOOST_TEST(r.body.ends_with("data: [DONE]\n\n"));

    // Required parameters get sample values from the schema (an enum: its first value).
    r = sim.post("/api/v1/chat/completions", stream_chat("use get_weather for Madrid", {{"tools", tools_doc()}}));
    calls = assemble_calls(data_chunks(r.body));
    BOOST_TEST_REQUIRE(calls.size() == 1u);
    BOOST_TEST(calls[0].name == "get_weather");
    BOOST_TEST(calls[0].fragments > 2);
    BOOST_TEST(json::parse(calls[0].arguments) == json::parse(R"({"city":"sample","units":"c"})"));

    // Both named: two parallel calls, indexes 0 and 1; OpenAI models use call_ ids.
    r = sim.post("/api/v1/chat/completions",
                 json::serialize(json::object{
                     {"model", "openai/gpt-4o-mini"}, {"stream", true}, {"tools", tools_doc()},
                     {"messages", json::array{json::object{{"role", "user"}, {"content", "get_weather and current_time"}}}}}));
    calls = assemble_calls(data_chunks(r.body));
    BOOST_TEST_REQUIRE(calls.size() == 2u);
    BOOST_TEST(calls[0].name == "get_weather");
    BOOST_TEST(calls[1].name == "current_time");
    BOOST_TEST(calls[0].id.starts_with("call_"));
    BOOST_TEST(calls[0].id != calls[1].id);
}

BOOST_AUTO_TEST_CASE(scripted_parallel_calls_keep_sparse_indexes_and_cut_inside_escapes) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "0"}};
    std::string const tricky = R"({"q":"say \"hi\" \\ then\nnew line \u00e9 \"quoted\" \\\\ end \"x\" \"y\" \"z\""})";
    sim.script(json::object{
        {"turns", json::array{json::object{
                      {"tool_calls", json::array{json::object{{"index", 1}, {"id", "toolu_fixed"}, {"name", "search"},
                                                              {"arguments", tricky}},
                                                 json::object{{"index", 3}, {"name", "lookup"},
                                                              {"arguments", json::object{{"id", 42}}}}}}}}}});
    std::vector<std::string> pieces;
    auto r = sim.post("/api/v1/chat/completions", stream_chat("go", {{"tools", tools_doc()}}));
    auto calls = assemble_calls(data_chunks(r.body), &pieces);
    BOOST_TEST_REQUIRE(calls.size() == 2u);
    BOOST_TEST(calls.count(1) == 1u);
    BOOST_TEST(calls.count(3) == 1u);
    BOOST_TEST(calls[1].id == "toolu_fixed");
    BOOST_TEST(calls[1].arguments == tricky);  // raw strings are sent as given
    BOOST_TEST(json::parse(calls[1].arguments).at("q").is_string());
    BOOST_TEST(json::parse(calls[3].arguments) == json::parse(R"({"id":42})"));
    bool mid_escape = false;
    for (auto const& p : pieces) mid_escape = mid_escape || (!p.empty() && p.back() == '\\');
    BOOST_TEST(mid_escape, "no argument piece ends inside an escape sequence");
}

BOOST_AUTO_TEST_CASE(non_stream_tool_calls_and_tool_results) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "0"}};
    auto r = sim.post("/api/v1/chat/completions", chat("please call get_weather", {{"tools", tools_doc()}}));
    auto doc = parse_padded(r.body);
    auto const& choice = doc.at("choices").at(0);
    BOOST_TEST(choice.at("finish_reason").as_string() == "tool_calls");
    auto const& tc = choice.at("message").at("tool_calls").as_array();
    BOOST_TEST_REQUIRE(tc.size() == 1u);
    BOOST_TEST(tc[0].at("type").as_string() == "function");
    BOOST_TEST(tc[0].at("index").as_int64() == 0);
    std::string call_id{tc[0].at("id").as_string()};
    BOOST_TEST(tc[0].at("function").at("name").as_string() == "get_weather");
    BOOST_TEST(json::parse(tc[0].at("function").at("arguments").as_string()).at("units").as_string() == "c");

    // The tool result comes back: the answer quotes it.
    json::array messages{
        json::object{{"role", "user"}, {"content", "please call get_weather"}},
        json::object{{"role", "assistant"}, {"content", nullptr}, {"tool_calls", tc}},
        json::object{{"role", "tool"}, {"tool_call_id", call_id}, {"content", "22 degrees and sunny"}}};
    r = sim.post("/api/v1/chat/completions",
                 json::serialize(json::object{{"model", "anthropic/claude-3.5-sonnet"}, {"tools", tools_doc()}, {"messages", messages}}));
    doc = parse_padded(r.body);
    BOOST_TEST(doc.at("choices").at(0).at("finish_reason").as_string() == "stop");
    std::string content{doc.at("choices").at(0).at("message").at("content").as_string()};
    BOOST_TEST(content.find("\"22 degrees and sunny\"") != std::string::npos, content);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(openrouter_sim_faults)

BOOST_AUTO_TEST_CASE(status_faults_answer_with_openrouter_error_bodies) {
    sim_process sim{{"--latency-ms", "0"}};
    struct expectation {
        std::string fault;
        unsigned status;
        std::string error_type;
    };
    std::vector<expectation> cases{{"429", 429, "rate_limit_exceeded"}, {"500", 500, "server"},
                                   {"502", 502, "provider_unavailable"}, {"503", 503, "provider_overloaded"},
                                   {"400", 400, "invalid_request"},      {"401", 401, "authentication"},
                                   {"402", 402, "payment_required"}};
    for (auto const& e : cases) {
        for (bool stream : {false, true}) {
            BOOST_TEST_CONTEXT("fault " << e.fault << (stream ? " stream" : "")) {
                auto r = sim.post("/api/v1/chat/completions", stream ? stream_chat("x") : chat("x"),
                                  with_auth({{"X-Sim-Fault", e.fault}}));
                BOOST_TEST(r.status == e.status);
                BOOST_TEST(r.header("Content-Type") == "application/json");
                BOOST_TEST(!r.header("X-Generation-Id").empty());
                auto doc = json::parse(r.body);
                BOOST_TEST(num(doc.at("error").at("code")) == static_cast<std::int64_t>(e.status));
                BOOST_TEST(doc.at("error").at("message").is_string());
                BOOST_TEST(doc.at("error").at("metadata").at("error_type").as_string() == e.error_type);
                if (e.status == 429) {
                    BOOST_TEST(r.header("Retry-After") == "1");
                    BOOST_TEST(r.header("X-RateLimit-Limit") == "20");
                    BOOST_TEST(r.header("X-RateLimit-Remaining") == "0");
                    BOOST_TEST(r.header("X-RateLimit-Reset").size() == 13u);  // epoch milliseconds
                    BOOST_TEST(doc.at("error").at("metadata").at("headers").at("X-RateLimit-Reset").as_string() ==
                               r.header("X-RateLimit-Reset"));
                }
                if (e.status == 503) {
                    BOOST_TEST(r.header("Retry-After") == "1");
                    BOOST_TEST(doc.at("error").at("availability").at("retryable").as_bool());
                    BOOST_TEST(doc.at("error").at("availability").at("code").as_string() == "temporarily_unavailable");
                }
            }
        }
    }
    auto r = sim.post("/api/v1/chat/completions", chat("x"), with_auth({{"X-Sim-Fault", "429; retry-after=7"}}));
    BOOST_TEST(r.status == 429u);
    BOOST_TEST(r.header("Retry-After") == "7");
    r = sim.post("/api/v1/chat/completions", chat("x"), with_auth({{"X-Sim-Fault", "teapot"}}));
    BOOST_TEST(r.status == 400u);
    BOOST_TEST(std::string{json::parse(r.body).at("error").at("message").as_string()}.find("X-Sim-Fault") == 0u);
    auto counters = sim.get_json("/sim/counters");
    BOOST_TEST(num(counters.at("faults_injected").at("429")) == 3);
    BOOST_TEST(num(counters.at("faults_injected").at("402")) == 2);
}

BOOST_AUTO_TEST_CASE(times_n_faults_only_the_first_attempts_of_a_request_id) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "0"}};
    std::vector<unsigned> statuses;
    for (int i = 0; i < 4; ++i) {
        auto r = sim.post("/api/v1/chat/completions", chat("retry me"),
                          with_auth({{"X-Sim-Fault", "502;times=2"}, {"X-Request-Id", "req-1"}}));
        statuses.push_back(r.status);
    }
    BOOST_TEST((statuses == std::vector<unsigned>{502, 502, 200, 200}));
    // Another request id starts again.
    auto r = sim.post("/api/v1/chat/completions", chat("retry me"),
                      with_auth({{"X-Sim-Fault", "503;times=1;retry-after=2"}, {"X-Request-Id", "req-2"}}));
    BOOST_TEST(r.status == 503u);
    BOOST_TEST(r.header("Retry-After") == "2");
    auto counters = sim.get_json("/sim/counters");
    BOOST_TEST(num(counters.at("attempts").at("req-1")) == 4);
    BOOST_TEST(num(counters.at("attempts").at("req-2")) == 1);
    BOOST_TEST(num(counters.at("faults_injected").at("502")) == 2);
    BOOST_TEST(num(counters.at("faults_injected").at("503")) == 1);
    BOOST_TEST(num(counters.at("completed")) == 2);
}

BOOST_AUTO_TEST_CASE(mid_stream_error_sends_the_error_chunk_after_some_tokens) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "0", "--answer-tokens", "10"}};
    auto r = sim.post("/api/v1/chat/completions", stream_chat("x"), with_auth({{"X-Sim-Fault", "mid-stream-error;after-tokens=3"}}));
    BOOST_TEST(r.status == 200u);
    BOOST_TEST(r.complete);
    BOOST_TEST(r.body.find("[DONE]") == std::string::npos);
    auto chunks = data_chunks(r.body);
    BOOST_TEST_REQUIRE(chunks.size() == 4u);
    auto const& err = chunks.back();
    BOOST_TEST(err.at("id").as_string() == r.header("X-Generation-Id"));
    BOOST_TEST(num(err.at("error").at("code")) == 502);
    BOOST_TEST(err.at("error").at("metadata").at("error_type").as_string() == "provider_unavailable");
    BOOST_TEST(err.at("choices").at(0).at("finish_reason").as_string() == "error");

    // Without after-tokens: half the answer.
    r = sim.post("/api/v1/chat/completions", stream_chat("x"), with_auth({{"X-Sim-Fault", "mid-stream-error"}}));
    BOOST_TEST(data_chunks(r.body).size() == 6u);

    // Not streamed: a 200 whose choice has finish_reason "error", an error and the partial text.
    r = sim.post("/api/v1/chat/completions", chat("x"), with_auth({{"X-Sim-Fault", "mid-stream-error;after-tokens=2"}}));
    BOOST_TEST(r.status == 200u);
    auto doc = parse_padded(r.body);
    auto const& choice = doc.at("choices").at(0);
    BOOST_TEST(choice.at("finish_reason").as_string() == "error");
    BOOST_TEST(num(choice.at("error").at("code")) == 502);
    BOOST_TEST(choice.at("message").at("content").as_string() == "Echo: x.");
    BOOST_TEST(num(doc.at("usage").at("completion_tokens")) == 2);
}

BOOST_AUTO_TEST_CASE(drop_cuts_the_connection_mid_stream_and_mid_body) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "0", "--answer-tokens", "10"}};
    auto r = sim.post("/api/v1/chat/completions", stream_chat("x"), with_auth({{"X-Sim-Fault", "drop;after-tokens=4"}}));
    BOOST_TEST(r.status == 200u);
    BOOST_TEST(!r.complete);
    BOOST_TEST(r.body.find("[DONE]") == std::string::npos);
    BOOST_TEST(data_chunks(r.body).size() == 4u);

    r = sim.post("/api/v1/chat/completions", chat("x"), with_auth({{"X-Sim-Fault", "drop"}}));
    BOOST_TEST(r.status == 200u);
    BOOST_TEST(!r.complete);
    auto start = r.body.find('{');
    BOOST_TEST_REQUIRE(start != std::string::npos);  // part of the JSON arrived
    boost::system::error_code ec;
    json::parse(r.body.substr(start), ec);
    BOOST_TEST(ec.failed());
}

BOOST_AUTO_TEST_CASE(slow_first_byte_delays_the_status_line) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "0"}};
    auto c = sim.client();
    c->send(http::verb::post, "/api/v1/chat/completions", chat("x"), with_auth({{"X-Sim-Fault", "slow-first-byte;delay-ms=600"}}));
    auto head = c->read_header();
    BOOST_TEST(head.status == 200u);
    BOOST_TEST(c->header_at() >= 600ms);
    auto rest = c->read_rest();
    BOOST_TEST(rest.complete);
    BOOST_TEST(parse_padded(rest.body).at("object").as_string() == "chat.completion");

    c->send(http::verb::post, "/api/v1/chat/completions", stream_chat("x"), with_auth({{"X-Sim-Fault", "slow-first-byte"}}));
    c->read_header();
    BOOST_TEST(c->header_at() >= 3000ms);  // the default delay
    BOOST_TEST(c->read_rest().body.ends_with("data: [DONE]\n\n"));
}

BOOST_AUTO_TEST_CASE(error_200_and_whitespace_only_bodies) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "0"}};
    auto r = sim.post("/api/v1/chat/completions", chat("x"), with_auth({{"X-Sim-Fault", "error-200"}}));
    BOOST_TEST(r.status == 200u);
    BOOST_TEST(r.complete);
    BOOST_TEST(r.body.starts_with("\n         \n"));
    BOOST_TEST(parse_padded(r.body) == json::parse(R"({"error":{"message":"Provider returned error","code":502}})"));

    r = sim.post("/api/v1/chat/completions", stream_chat("x"), with_auth({{"X-Sim-Fault", "error-200"}}));
    BOOST_TEST(r.status == 200u);
    auto chunks = data_chunks(r.body);
    BOOST_TEST_REQUIRE(chunks.size() == 1u);
    BOOST_TEST(num(chunks[0].at("error").at("code")) == 502);

    r = sim.post("/api/v1/chat/completions", chat("x"), with_auth({{"X-Sim-Fault", "whitespace-only"}}));
    BOOST_TEST(r.status == 200u);
    BOOST_TEST(!r.complete);
    BOOST_TEST(!r.body.empty());
    BOOST_TEST(r.body.find_first_not_of(" \n") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(scenario_models_always_fault) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "0", "--answer-tokens", "6"}};
    for (int i = 0; i < 2; ++i) {
        auto r = sim.post("/api/v1/chat/completions",
                          R"({"model":"sim/fault-503","messages":[{"role":"user","content":"x"}]})");
        BOOST_TEST(r.status == 503u);
    }
    auto r = sim.post("/api/v1/chat/completions",
                      R"({"model":"sim/fault-mid-stream-error","stream":true,"messages":[{"role":"user","content":"x"}]})");
    auto chunks = data_chunks(r.body);
    BOOST_TEST_REQUIRE(!chunks.empty());
    BOOST_TEST(chunks.front().at("model").as_string() == "anthropic/claude-3.5-sonnet");
    BOOST_TEST(chunks.back().contains("error"));
    r = sim.post("/api/v1/chat/completions", R"({"model":"sim/fault-nonsense","messages":[{"role":"user","content":"x"}]})");
    BOOST_TEST(r.status == 400u);
}

BOOST_AUTO_TEST_CASE(random_fault_rates_follow_the_seed) {
    auto run = [](std::string const& seed) {
        sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "0", "--fault-rate", "502=0.3,429=0.2",
                         "--seed", seed}};
        auto c = sim.client();
        std::vector<unsigned> out;
        for (int i = 0; i < 30; ++i) out.push_back(c->post("/api/v1/chat/completions", chat("x"), auth).status);
        return out;
    };
    auto a = run("7"), b = run("7"), other = run("8");
    BOOST_TEST(a == b);
    BOOST_TEST(a != other);
    auto n502 = std::count(a.begin(), a.end(), 502u);
    auto n429 = std::count(a.begin(), a.end(), 429u);
    auto n200 = std::count(a.begin(), a.end(), 200u);
    BOOST_TEST(n502 > 0);
    BOOST_TEST(n429 > 0);
    BOOST_TEST(n200 > 0);
    BOOST_TEST(n502 + n429 + n200 == 30);

    sim_process always{{"--latency-ms", "0", "--fault-rate", "whitespace-only=1"}};
    auto r = always.post("/api/v1/chat/completions", chat("x"));
    BOOST_TEST(!r.complete);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(openrouter_sim_scripts)

BOOST_AUTO_TEST_CASE(turns_are_served_in_order_then_the_default_answer) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "0"}};
    sim.script(json::parse(R"({"turns":[{"text":"first scripted"},{"text":"second scripted"}]})"));
    auto pending = sim.get_json("/sim/script");
    BOOST_TEST(num(pending.at("unkeyed")) == 2);
    auto content = [&](std::string const& body) {
        return std::string{parse_padded(body).at("choices").at(0).at("message").at("content").as_string()};
    };
    BOOST_TEST(content(sim.post("/api/v1/chat/completions", chat("a")).body) == "first scripted");
    auto streamed = sim.post("/api/v1/chat/completions", stream_chat("b"));
    BOOST_TEST(joined_content(data_chunks(streamed.body)) == "second scripted");
    BOOST_TEST(content(sim.post("/api/v1/chat/completions", chat("c")).body).starts_with("Echo: c"));
}

BOOST_AUTO_TEST_CASE(keyed_scripts_are_chosen_by_header_then_user) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "0"}};
    sim.script(json::parse(R"({"key":"conv-a","turns":[{"text":"for a"}]})"));
    sim.script(json::parse(R"({"key":"user-b","turns":[{"text":"for b"}]})"));
    sim.script(json::parse(R"({"turns":[{"text":"for anyone"}]})"));
    auto content = [&](std::string const& body) {
        return std::string{parse_padded(body).at("choices").at(0).at("message").at("content").as_string()};
    };
    BOOST_TEST(content(sim.post("/api/v1/chat/completions", chat("x", {{"user", "user-b"}})).body) == "for b");
    BOOST_TEST(content(sim.post("/api/v1/chat/completions", chat("x"), with_auth({{"X-Sim-Script", "conv-a"}})).body) == "for a");
    // An explicit key whose queue is empty gets the default answer, not the unkeyed queue.
    BOOST_TEST(content(sim.post("/api/v1/chat/completions", chat("x"), with_auth({{"X-Sim-Script", "conv-a"}})).body).starts_with("Echo:"));
    BOOST_TEST(content(sim.post("/api/v1/chat/completions", chat("x", {{"user", "someone"}})).body) == "for anyone");
}

BOOST_AUTO_TEST_CASE(scripted_usage_faults_and_clearing) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "0"}};
    sim.script(json::parse(R"({"turns":[
        {"fault":"502"},
        {"text":"cached answer","usage":{"prompt_tokens":2000,"completion_tokens":7,"cached_tokens":1500,"cost":"0.00123"},
         "finish_reason":"stop","native_finish_reason":"STOP"}]})"));
    auto r = sim.post("/api/v1/chat/completions", chat("x"));
    BOOST_TEST(r.status == 502u);
    r = sim.post("/api/v1/chat/completions", stream_chat("x"));
    auto chunks = data_chunks(r.body);
    auto const& u = chunks.back().at("usage");
    BOOST_TEST(num(u.at("prompt_tokens")) == 2000);
    BOOST_TEST(num(u.at("completion_tokens")) == 7);
    BOOST_TEST(num(u.at("total_tokens")) == 2007);
    BOOST_TEST(num(u.at("prompt_tokens_details").at("cached_tokens")) == 1500);
    BOOST_TEST(raw_cost(r.body) == "0.00123");
    BOOST_TEST(chunks[chunks.size() - 2].at("choices").at(0).at("native_finish_reason").as_string() == "STOP");

    // Cached tokens without a scripted cost are priced at the cache-read rate.
    sim.script(json::parse(R"({"turns":[{"text":"ok","usage":{"prompt_tokens":1000,"cached_tokens":800}}]})"));
    r = sim.post("/api/v1/chat/completions", chat("x"));
    BOOST_TEST(raw_cost(r.body) == nano_to_decimal(200 * 3000 + 800 * 300 + 1 * 15000));

    sim.script(json::parse(R"({"turns":[{"text":"never served"}]})"));
    BOOST_TEST(sim.client()->request(http::verb::delete_, "/sim/script").status == 200u);
    BOOST_TEST(num(sim.get_json("/sim/script").at("unkeyed")) == 0);

    auto bad = sim.client()->post("/sim/script", R"({"turns":[{"tool_calls":[{"arguments":{}}]}]})");
    BOOST_TEST(bad.status == 400u);
    bad = sim.client()->post("/sim/script", R"({"turns":[{"text":"x","fault":"418"}]})");
    BOOST_TEST(bad.status == 400u);
    bad = sim.client()->post("/sim/script", R"({"turns":[]})");
    BOOST_TEST(bad.status == 400u);
}

BOOST_AUTO_TEST_CASE(requests_are_recorded_without_the_key_and_reset_clears) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "0"}};
    std::string const secret = "sk-or-v1-secret-never-echoed";
    auto r = sim.post("/api/v1/chat/completions", chat("record me"),
                      {{"Authorization", "Bearer " + secret},
                       {"X-Request-Id", "rid-77"},
                       {"HTTP-Referer", "https://parley.example"},
                       {"X-OpenRouter-Title", "Parley"}});
    BOOST_TEST(r.status == 200u);
    sim.post("/api/v1/chat/completions", stream_chat("second"), {});
    auto raw = sim.client()->get("/sim/requests?last=2");
    BOOST_TEST(raw.body.find(secret) == std::string::npos);
    auto doc = json::parse(raw.body);
    auto const& reqs = doc.at("requests").as_array();
    BOOST_TEST_REQUIRE(reqs.size() == 2u);
    auto const& first = reqs[0];
    BOOST_TEST(first.at("authorization").as_bool());
    BOOST_TEST(first.at("headers").at("x-request-id").as_string() == "rid-77");
    BOOST_TEST(first.at("headers").at("http-referer").as_string() == "https://parley.example");
    BOOST_TEST(first.at("headers").at("x-openrouter-title").as_string() == "Parley");
    BOOST_TEST(first.at("body").at("messages").at(0).at("content").as_string() == "record me");
    BOOST_TEST(first.at("generation_id").as_string() == r.header("X-Generation-Id"));
    BOOST_TEST(!reqs[1].at("authorization").as_bool());
    BOOST_TEST(reqs[1].at("body").at("stream").as_bool());
    BOOST_TEST(sim.get_json("/sim/requests?last=1").at("requests").as_array().size() == 1u);

    auto counters = sim.get_json("/sim/counters");
    BOOST_TEST(num(counters.at("requests")) == 2);
    BOOST_TEST(num(counters.at("streams")) == 0);  // the second was refused (no key)
    BOOST_TEST(num(counters.at("completed")) == 1);
    BOOST_TEST(num(counters.at("attempts").at("rid-77")) == 1);

    BOOST_TEST(sim.client()->post("/sim/reset", "").status == 200u);
    counters = sim.get_json("/sim/counters");
    BOOST_TEST(num(counters.at("requests")) == 0);
    BOOST_TEST(counters.at("attempts").as_object().empty());
    BOOST_TEST(sim.get_json("/sim/requests").at("requests").as_array().empty());
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(openrouter_sim_generations)

BOOST_AUTO_TEST_CASE(generation_lookup_matches_the_answer) {
    sim_process sim{{"--latency-ms", "50", "--tokens-per-second", "0", "--answer-tokens", "9"}};
    auto r = sim.post("/api/v1/chat/completions", chat("audit me"));
    auto doc = parse_padded(r.body);
    std::string id{doc.at("id").as_string()};
    auto g = sim.get_json("/api/v1/generation?id=" + id, auth).at("data");
    BOOST_TEST(g.at("id").as_string() == id);
    BOOST_TEST(g.at("model").as_string() == "anthropic/claude-3.5-sonnet");
    BOOST_TEST(g.at("provider_name").as_string() == "Anthropic");
    BOOST_TEST(num(g.at("tokens_prompt")) == num(doc.at("usage").at("prompt_tokens")));
    BOOST_TEST(num(g.at("tokens_completion")) == 9);
    BOOST_TEST(num(g.at("native_tokens_completion")) == 9);
    BOOST_TEST(g.at("total_cost") == doc.at("usage").at("cost"));
    BOOST_TEST(g.at("streamed").as_bool() == false);
    BOOST_TEST(g.at("cancelled").as_bool() == false);
    BOOST_TEST(g.at("finish_reason").as_string() == "stop");
    BOOST_TEST(num(g.at("latency")) >= 50);
    BOOST_TEST(g.at("created_at").is_string());

    auto missing = sim.client()->get("/api/v1/generation?id=gen-0-nope", auth);
    BOOST_TEST(missing.status == 404u);
    BOOST_TEST(num(json::parse(missing.body).at("error").at("code")) == 404);
    BOOST_TEST(sim.client()->get("/api/v1/generation?id=" + id).status == 401u);
}

BOOST_AUTO_TEST_CASE(stream_cancelled_by_the_client_is_billed_up_to_the_cut) {
    sim_process sim{{"--latency-ms", "0", "--tokens-per-second", "40", "--answer-tokens", "400"}};
    auto c = sim.client();
    c->send(http::verb::post, "/api/v1/chat/completions", stream_chat("long story"), auth);
    auto head = c->read_header();
    std::string id = head.header("X-Generation-Id");
    std::string body;
    while (auto p = c->read_piece()) {
        body += p->data;
        if (data_chunks(body.substr(0, body.rfind("\n\n") + 2)).size() >= 5) break;
    }
    auto seen = data_chunks(body.substr(0, body.rfind("\n\n") + 2)).size();
    c->close();

    json::value g;
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
        auto r = sim.client()->get("/api/v1/generation?id=" + id, auth);
        if (r.status == 200u) {
            g = json::parse(r.body).at("data");
            break;
        }
        std::this_thread::sleep_for(50ms);
    }
    BOOST_TEST_REQUIRE(g.is_object(), "no generation record after the cancel");
    BOOST_TEST(g.at("cancelled").as_bool());
    BOOST_TEST(g.at("streamed").as_bool());
    auto tokens = num(g.at("tokens_completion"));
    BOOST_TEST(tokens >= static_cast<std::int64_t>(seen));
    BOOST_TEST(tokens < 400);
    auto prompt = num(g.at("tokens_prompt"));
    BOOST_TEST(g.at("total_cost").to_number<double>() ==
               json::parse(nano_to_decimal(prompt * 3000 + tokens * 15000)).to_number<double>());
    auto counters = sim.get_json("/sim/counters");
    BOOST_TEST(num(counters.at("cancelled")) == 1);
    BOOST_TEST(num(counters.at("completed")) == 0);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(openrouter_sim_tls)

BOOST_AUTO_TEST_CASE(serves_https_verified_against_its_self_signed_certificate) {
    parley::test::temp_dir dir;
    auto cert = dir.path / "cert.pem", pkey = dir.path / "key.pem";
    auto other = dir.path / "other.pem", other_key = dir.path / "other-key.pem";
    auto make = [](std::filesystem::path const& c, std::filesystem::path const& k) {
        return shell("openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost "
                     "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -days 2 -keyout " +
                     k.string() + " -out " + c.string());
    };
    BOOST_TEST_REQUIRE(make(cert, pkey) == 0);
    BOOST_TEST_REQUIRE(make(other, other_key) == 0);

    sim_process sim{{"--tls-cert", cert.string(), "--tls-key", pkey.string(), "--latency-ms", "0",
                     "--tokens-per-second", "0", "--answer-tokens", "5"},
                    http_client::tls_options{cert, "127.0.0.1"}};
    BOOST_TEST(sim.proc.output().starts_with("openrouter-sim listening on https://127.0.0.1:"));

    auto r = sim.post("/api/v1/chat/completions", chat("secure"));
    BOOST_TEST(r.status == 200u);
    BOOST_TEST(parse_padded(r.body).at("object").as_string() == "chat.completion");
    r = sim.post("/api/v1/chat/completions", stream_chat("secure"));
    BOOST_TEST(r.complete);
    BOOST_TEST(data_chunks(r.body).size() == 7u);

    // By name as well as by address.
    http_client by_name{"127.0.0.1", sim.port, http_client::tls_options{cert, "localhost"}};
    BOOST_TEST(by_name.get("/api/v1/models").status == 200u);

    // A client that trusts another certificate refuses the connection.
    BOOST_CHECK_THROW((http_client{"127.0.0.1", sim.port, http_client::tls_options{other, "127.0.0.1"}}),
                      std::runtime_error);
}

BOOST_AUTO_TEST_SUITE_END()
