// The OpenRouter response reader: streams (openrouter-api.md §5, §9, §10),
// whole bodies (§4), error classification (§6, ARCHITECTURE §3) and the
// exact text of usage.cost.
#include "net/openrouter_reader.hpp"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

using namespace std::chrono_literals;
using parley::net::classify;
using parley::net::completion;
using parley::net::completion_result;
using parley::net::openrouter_stream;
using parley::net::parse_completion;
using parley::net::stream_options;
using parley::net::upstream_error;
using sys_clock = std::chrono::system_clock;

namespace {

std::string fixture(std::string const& name) {
    std::ifstream in{std::string{PARLEY_SOURCE_DIR} + "/tests/data/" + name, std::ios::binary};
    BOOST_REQUIRE_MESSAGE(in, "missing fixture " << name);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

std::string opt(std::optional<std::string> const& v) { return v ? *v : "<none>"; }
std::string opt(std::optional<int> const& v) { return v ? std::to_string(*v) : "<none>"; }
std::string opt(std::optional<bool> const& v) { return v ? (*v ? "true" : "false") : "<none>"; }
long long opt_ms(std::optional<std::chrono::milliseconds> const& v) { return v ? v->count() : -1; }

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
    for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
        s.replace(at, from.size(), to);
    }
    return s;
}

// Everything a stream produced, as one comparable string.
std::string summary(completion_result const& r, openrouter_stream const& s, std::string const& forwarded) {
    std::ostringstream os;
    os << "forwarded=" << forwarded << "\n";
    if (!r) {
        os << "error: " << r.error() << " partial=" << s.partial().text << "\n";
        return os.str();
    }
    auto const& c = *r;
    os << "text=" << c.text << "\nreasoning=" << c.reasoning << "\n";
    for (auto const& t : c.tool_calls) {
        os << "call id=" << t.id << " name=" << t.name << " args=" << t.arguments << " valid=" << t.arguments_valid
           << "\n";
    }
    os << "finish=" << c.finish_reason << "/" << c.native_finish_reason << " model=" << c.model
       << " gen=" << c.generation_id << " provider=" << c.provider << " done=" << c.saw_done << "\n";
    if (c.usage) {
        auto const& u = *c.usage;
        os << "usage " << u.prompt_tokens << "/" << u.completion_tokens << "/" << u.total_tokens
           << " cached=" << opt(u.cached_tokens) << " write=" << opt(u.cache_write_tokens)
           << " reasoning=" << opt(u.reasoning_tokens) << " cost=" << opt(u.cost) << "\n";
    }
    return os.str();
}

// Feeds the pieces, then finishes.
std::string run_pieces(std::vector<std::string_view> const& pieces) {
    std::string forwarded;
    stream_options options;
    options.on_text = [&forwarded](std::string_view t) { forwarded.append(t).append("|"); };
    openrouter_stream s{std::move(options)};
    for (auto p : pieces) {
        s.feed(p);
    }
    auto const r = s.finish();
    return summary(r, s, forwarded);
}

std::string run_whole(std::string_view body) { return run_pieces({body}); }

struct stream_run {
    completion_result result;
    std::vector<std::string> forwarded;
    openrouter_stream::status last = openrouter_stream::status::reading;
    std::size_t ignored = 0;
    std::size_t comments = 0;
    completion partial;
};

stream_run run(std::string_view body, std::size_t max_event_bytes = parley::net::sse_decoder::default_max_event_bytes) {
    std::vector<std::string> forwarded;
    stream_options options;
    options.max_event_bytes = max_event_bytes;
    options.on_text = [&forwarded](std::string_view t) { forwarded.emplace_back(t); };
    openrouter_stream s{std::move(options)};
    auto const last = s.feed(body);
    completion partial = s.partial();
    auto result = s.finish();
    return stream_run{std::move(result), std::move(forwarded), last, s.ignored_events(), s.comments(), std::move(partial)};
}

// One chunk in the REC-2604 shape around `choice_rest` (the members of the
// choice after "index":0) and `extra` (more top-level members).
std::string chunk(std::string_view delta, std::string_view finish = "null", std::string_view extra = "") {
    std::string out =
        R"(data: {"id":"gen-1","object":"chat.completion.chunk","created":1776000000,"model":"m/x","provider":"P",)"
        R"("choices":[{"index":0,"delta":)";
    out += delta;
    out += R"(,"finish_reason":)";
    out += finish;
    out += R"(,"native_finish_reason":null,"logprobs":null}])";
    out += extra;
    out += "}\n\n";
    return out;
}

std::string text_chunk(std::string_view text) {
    return chunk(R"({"content":")" + std::string{text} + R"(","role":"assistant"})");
}

std::string call_chunk(std::string_view fragments) {
    return chunk(R"({"content":null,"role":"assistant","tool_calls":[)" + std::string{fragments} + "]}");
}

std::string const finish_stop = chunk(R"({"content":"","role":"assistant"})", R"("stop")");
std::string const finish_calls = chunk(R"({"content":"","role":"assistant"})", R"("tool_calls")");
std::string const done = "data: [DONE]\n\n";

std::string usage_json(std::string_view cost) {
    return R"({"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"cost":)" + std::string{cost} + "}";
}

}  // namespace

// ====================================================================== streams

BOOST_AUTO_TEST_SUITE(openrouter_stream_suite)

BOOST_AUTO_TEST_CASE(recorded_tool_call_stream_decodes) {
    auto const r = run(fixture("stream_tool_calls.sse"));
    BOOST_TEST((r.last == openrouter_stream::status::done));
    BOOST_REQUIRE(r.result.has_value());
    auto const& c = *r.result;
    BOOST_TEST(c.text == "Voy a consultar el tiempo en Málaga y París — un momento.");
    BOOST_REQUIRE_EQUAL(c.tool_calls.size(), 2u);
    BOOST_TEST(c.tool_calls[0].id == "toolu_vrtx_01A");
    BOOST_TEST(c.tool_calls[0].name == "get_weather");
    BOOST_TEST(c.tool_calls[0].arguments == R"({"city": "Málaga", "note": "say \"hola\""})");
    BOOST_TEST(c.tool_calls[0].arguments_valid);
    BOOST_TEST(c.tool_calls[1].id == "toolu_vrtx_01B");
    BOOST_TEST(c.tool_calls[1].name == "get_time");
    BOOST_TEST(c.tool_calls[1].arguments == "{}");
    BOOST_TEST(c.finish_reason == "tool_calls");
    BOOST_TEST(c.native_finish_reason == "tool_use");
    BOOST_TEST(c.model == "anthropic/claude-sonnet-4");
    BOOST_TEST(c.generation_id == "gen-1758884882-qvQRbKQ9pvC3XNTxxfOe");
    BOOST_TEST(c.provider == "Google");
    BOOST_TEST(c.saw_done);
    BOOST_REQUIRE(c.usage.has_value());
    BOOST_TEST(c.usage->prompt_tokens == 502);
    BOOST_TEST(c.usage->completion_tokens == 137);
    BOOST_TEST(c.usage->total_tokens == 639);
    BOOST_TEST(opt(c.usage->cost) == "0.003561");
    BOOST_TEST(opt(c.usage->cached_tokens) == "0");
    BOOST_TEST(opt(c.usage->cache_write_tokens) == "<none>");
    BOOST_TEST(opt(c.usage->reasoning_tokens) == "0");
    BOOST_TEST(r.comments == 2u);
    BOOST_TEST(r.forwarded == (std::vector<std::string>{"Voy a consultar el tiempo en Málaga", " y París — un momento."}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(every_two_way_split_of_each_recorded_stream_gives_the_same_result) {
    for (auto const* name : {"stream_tool_calls.sse", "stream_finish_usage.sse", "stream_usage_empty_choices.sse",
                             "stream_midstream_error.sse"}) {
        BOOST_TEST_CONTEXT(name) {
            auto const body = fixture(name);
            std::string_view const all = body;
            auto const expected = run_whole(all);
            for (std::size_t cut = 0; cut <= all.size(); ++cut) {
                auto const got = run_pieces({all.substr(0, cut), all.substr(cut)});
                if (got != expected) {
                    BOOST_TEST(got == expected, "split at byte " << cut);
                    break;
                }
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(one_byte_at_a_time_gives_the_same_result) {
    for (auto const* name : {"stream_tool_calls.sse", "stream_finish_usage.sse", "stream_midstream_error.sse"}) {
        BOOST_TEST_CONTEXT(name) {
            auto const body = fixture(name);
            std::string_view const all = body;
            std::vector<std::string_view> bytes;
            for (std::size_t i = 0; i < all.size(); ++i) {
                bytes.push_back(all.substr(i, 1));
            }
            BOOST_TEST(run_pieces(bytes) == run_whole(all));
        }
    }
}

BOOST_AUTO_TEST_CASE(crlf_and_cr_line_ends_give_the_same_result) {
    auto const body = fixture("stream_tool_calls.sse");
    auto const expected = run_whole(body);
    BOOST_TEST(run_whole(replace_all(body, "\n", "\r\n")) == expected);
    BOOST_TEST(run_whole(replace_all(body, "\n", "\r")) == expected);
}

// §9.1: comments before the first data event and between events.
BOOST_AUTO_TEST_CASE(keep_alive_comments_are_skipped_never_parsed) {
    auto const r = run(": OPENROUTER PROCESSING\n\n: OPENROUTER PROCESSING\n\n" + text_chunk("Hi") +
                       ": OPENROUTER PROCESSING\n\n" + text_chunk(" there") + finish_stop + done);
    BOOST_REQUIRE(r.result.has_value());
    BOOST_TEST(r.result->text == "Hi there");
    BOOST_TEST(r.comments == 3u);
    BOOST_TEST(r.ignored == 0u);
}

// §9.1: a proxy re-emits the comment as data. Decision: a data event that is
// empty or starts with ':' is a keep-alive, counted and ignored.
BOOST_AUTO_TEST_CASE(a_comment_re_emitted_as_data_is_ignored) {
    auto const r = run("data: : OPENROUTER PROCESSING\n\n" + text_chunk("Hi") + "data: : OPENROUTER PROCESSING\n\n" +
                       "data:\n\n" + finish_stop + done);
    BOOST_REQUIRE(r.result.has_value());
    BOOST_TEST(r.result->text == "Hi");
    BOOST_TEST(r.ignored == 3u);
}

// Any other data event that is not a JSON object fails the stream (nothing
// after it can be trusted).
BOOST_AUTO_TEST_CASE(a_non_json_data_event_fails_the_stream) {
    auto const r = run(text_chunk("Hi") + "data: OPENROUTER PROCESSING\n\n" + finish_stop + done);
    BOOST_TEST((r.last == openrouter_stream::status::failed));
    BOOST_REQUIRE(!r.result.has_value());
    BOOST_TEST(r.result.error().code_text == "invalid_json");
    BOOST_TEST(r.result.error().status == 0);
    BOOST_TEST(r.result.error().mid_stream);
    BOOST_TEST(r.result.error().retryable);
    BOOST_TEST(r.result.error().message.find("OPENROUTER PROCESSING") != std::string::npos);
    BOOST_TEST(r.partial.text == "Hi");
}

BOOST_AUTO_TEST_CASE(a_json_event_that_is_not_an_object_fails_the_stream) {
    auto const r = run(text_chunk("Hi") + "data: [1,2]\n\n" + done);
    BOOST_REQUIRE(!r.result.has_value());
    BOOST_TEST(r.result.error().code_text == "invalid_json");
    BOOST_TEST(r.result.error().message.find("not a JSON object") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(done_ends_the_stream_and_later_bytes_are_ignored) {
    openrouter_stream s;
    BOOST_TEST((s.feed(text_chunk("A") + done + text_chunk("B") + "data: not json\n\n") ==
                openrouter_stream::status::done));
    BOOST_TEST((s.feed(text_chunk("C")) == openrouter_stream::status::done));
    BOOST_TEST((s.state() == openrouter_stream::status::done));
    auto const r = s.finish();
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->text == "A");
    BOOST_TEST(r->saw_done);
    BOOST_TEST(r->finish_reason == "");  // [DONE] alone is enough
}

BOOST_AUTO_TEST_CASE(done_is_recognised_with_surrounding_whitespace) {
    auto const r = run(finish_stop + "data: [DONE] \n\n");
    BOOST_REQUIRE(r.result.has_value());
    BOOST_TEST(r.result->saw_done);
}

// §5 usage shapes and §9.2, §9.4.
BOOST_AUTO_TEST_CASE(usage_with_empty_choices_mar_2026) {
    auto const r = run(fixture("stream_usage_empty_choices.sse"));
    BOOST_REQUIRE(r.result.has_value());
    BOOST_TEST(r.result->text == "Paris is the capital of France.");
    BOOST_TEST(r.result->finish_reason == "stop");
    BOOST_REQUIRE(r.result->usage.has_value());
    BOOST_TEST(r.result->usage->total_tokens == 22);
    BOOST_TEST(opt(r.result->usage->cost) == "0.00001");  // sent as 1e-05
}

BOOST_AUTO_TEST_CASE(usage_with_the_finish_choice_repeated_apr_2026) {
    auto const r = run(fixture("stream_finish_usage.sse"));
    BOOST_REQUIRE(r.result.has_value());
    auto const& c = *r.result;
    BOOST_TEST(c.text == "¡Hola! El precio es 12 € (日本円で約2000円).");
    BOOST_TEST(c.finish_reason == "stop");
    BOOST_TEST(c.native_finish_reason == "end_turn");
    BOOST_REQUIRE(c.usage.has_value());
    BOOST_TEST(c.usage->prompt_tokens == 10339);
    BOOST_TEST(opt(c.usage->cached_tokens) == "10318");
    BOOST_TEST(opt(c.usage->cache_write_tokens) == "21");
    BOOST_TEST(opt(c.usage->cost) == "0.00110835");
    BOOST_TEST(c.model == "anthropic/claude-4.5-haiku-20251001");
    BOOST_TEST(c.provider == "Anthropic");
}

BOOST_AUTO_TEST_CASE(usage_with_a_delta_of_empty_content_sep_2025) {
    auto const r = run(text_chunk("Hi") + finish_stop +
                       chunk(R"({"role":"assistant","content":""})", "null", ",\"usage\":" + usage_json("0.012207")) +
                       done);
    BOOST_REQUIRE(r.result.has_value());
    BOOST_REQUIRE(r.result->usage.has_value());
    BOOST_TEST(opt(r.result->usage->cost) == "0.012207");
    BOOST_TEST(r.result->finish_reason == "stop");
    BOOST_TEST(r.result->text == "Hi");
}

// §9.4: usage arrives after the finish chunk; keep reading.
BOOST_AUTO_TEST_CASE(usage_after_the_finish_chunk_is_read) {
    openrouter_stream s;
    BOOST_TEST((s.feed(text_chunk("Hi") + finish_stop) == openrouter_stream::status::reading));
    BOOST_TEST(!s.partial().usage.has_value());
    s.feed(R"(data: {"id":"gen-1","choices":[],"usage":)" + usage_json("0") + "}\n\n" + done);
    auto const r = s.finish();
    BOOST_REQUIRE(r.has_value());
    BOOST_REQUIRE(r->usage.has_value());
    BOOST_TEST(opt(r->usage->cost) == "0");
}

BOOST_AUTO_TEST_CASE(the_last_usage_seen_wins) {
    auto const r = run(chunk(R"({"content":"a"})", "null", ",\"usage\":" + usage_json("1")) + finish_stop +
                       R"(data: {"choices":[],"usage":)" + usage_json("12.5") + "}\n\n" + done);
    BOOST_REQUIRE(r.result.has_value());
    BOOST_TEST(opt(r.result->usage->cost) == "12.5");
}

// §9.3: two finish chunks; the repeat must not duplicate tool calls.
BOOST_AUTO_TEST_CASE(a_duplicated_finish_chunk_keeps_the_first_reason_and_calls_once) {
    std::string const call = R"({"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}})";
    auto const r = run(call_chunk(call) + finish_calls +
                       // The repeat carries a different reason and even the whole call again.
                       chunk(R"({"content":"late","tool_calls":[)" + std::string{call} + "]}", R"("stop")",
                             ",\"usage\":" + usage_json("0.5")) +
                       done);
    BOOST_REQUIRE(r.result.has_value());
    BOOST_TEST(r.result->finish_reason == "tool_calls");
    BOOST_REQUIRE_EQUAL(r.result->tool_calls.size(), 1u);
    BOOST_TEST(r.result->tool_calls[0].arguments == R"({"a":1})");
    BOOST_TEST(r.result->text == "");
    BOOST_TEST(opt(r.result->usage->cost) == "0.5");
}

BOOST_AUTO_TEST_CASE(native_finish_reason_is_the_first_non_null_one) {
    auto const r = run(chunk(R"({"content":""})", R"("stop")") +
                       R"(data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop","native_finish_reason":"end_turn"}]})"
                       "\n\n" +
                       R"(data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop","native_finish_reason":"other"}]})"
                       "\n\n" + done);
    BOOST_REQUIRE(r.result.has_value());
    BOOST_TEST(r.result->native_finish_reason == "end_turn");
}

// §9.5: id only in the first fragment; key on index.
BOOST_AUTO_TEST_CASE(tool_call_id_and_name_come_from_whichever_fragment_has_them) {
    auto const r = run(call_chunk(R"({"index":0,"function":{"arguments":"{\"q\":"}})") +
                       call_chunk(R"({"index":0,"id":"call_9","type":"function","function":{"name":"search","arguments":""}})") +
                       call_chunk(R"({"index":0,"function":{"arguments":"\"x\"}"}})") + finish_calls + done);
    BOOST_REQUIRE(r.result.has_value());
    BOOST_REQUIRE_EQUAL(r.result->tool_calls.size(), 1u);
    BOOST_TEST(r.result->tool_calls[0].id == "call_9");
    BOOST_TEST(r.result->tool_calls[0].name == "search");
    BOOST_TEST(r.result->tool_calls[0].arguments == R"({"q":"x"})");
}

// §9.6
BOOST_AUTO_TEST_CASE(empty_arguments_become_an_empty_object) {
    auto const r = run(call_chunk(R"({"index":0,"id":"a","function":{"name":"now","arguments":""}})") +
                       call_chunk(R"({"index":1,"id":"b","function":{"name":"later","arguments":"  "}})") +
                       call_chunk(R"({"index":2,"id":"c","function":{"name":"never"}})") + finish_calls + done);
    BOOST_REQUIRE(r.result.has_value());
    BOOST_REQUIRE_EQUAL(r.result->tool_calls.size(), 3u);
    for (auto const& t : r.result->tool_calls) {
        BOOST_TEST(t.arguments == "{}");
        BOOST_TEST(t.arguments_valid);
    }
}

// §9.7: indexes are not positions.
BOOST_AUTO_TEST_CASE(non_dense_tool_indexes_starting_at_one) {
    auto const r = run(call_chunk(R"({"index":5,"id":"c5","function":{"name":"five","arguments":"{}"}})") +
                       call_chunk(R"({"index":1,"id":"c1","function":{"name":"one","arguments":""}})") +
                       call_chunk(R"({"index":1,"function":{"arguments":"{\"n\":1}"}})") + finish_calls + done);
    BOOST_REQUIRE(r.result.has_value());
    BOOST_REQUIRE_EQUAL(r.result->tool_calls.size(), 2u);
    BOOST_TEST(r.result->tool_calls[0].name == "one");  // ordered by index
    BOOST_TEST(r.result->tool_calls[0].arguments == R"({"n":1})");
    BOOST_TEST(r.result->tool_calls[1].name == "five");
}

// §9.7: some upstreams reuse one index for parallel calls.
BOOST_AUTO_TEST_CASE(a_new_id_on_a_used_index_starts_a_new_call) {
    auto const r = run(call_chunk(R"({"index":0,"id":"x1","function":{"name":"f","arguments":"{\"a\":1}"}})") +
                       call_chunk(R"({"index":0,"id":"x2","function":{"name":"g","arguments":"{\"b\":"}})") +
                       call_chunk(R"({"index":0,"function":{"arguments":"2}"}})") +
                       call_chunk(R"({"id":"x3","function":{"name":"h","arguments":"{}"}})") +  // no index: 0
                       finish_calls + done);
    BOOST_REQUIRE(r.result.has_value());
    BOOST_REQUIRE_EQUAL(r.result->tool_calls.size(), 3u);
    BOOST_TEST(r.result->tool_calls[0].id == "x1");
    BOOST_TEST(r.result->tool_calls[0].arguments == R"({"a":1})");
    BOOST_TEST(r.result->tool_calls[1].id == "x2");
    BOOST_TEST(r.result->tool_calls[1].arguments == R"({"b":2})");
    BOOST_TEST(r.result->tool_calls[2].name == "h");
}

BOOST_AUTO_TEST_CASE(several_calls_in_one_delta_and_stray_fragments) {
    auto const r = run(call_chunk(R"({"index":0,"id":"a","function":{"name":"f","arguments":"{}"}},42,)"
                                  R"({"index":1,"id":"b","function":{"name":"g","arguments":{"k":"v"}}})") +
                       chunk(R"({"content":null,"tool_calls":"nonsense"})") + finish_calls + done);
    BOOST_REQUIRE(r.result.has_value());
    BOOST_REQUIRE_EQUAL(r.result->tool_calls.size(), 2u);
    BOOST_TEST(r.result->tool_calls[1].arguments == R"({"k":"v"})");  // an object, not a string: kept as JSON
}

// §5: argument pieces may be cut anywhere, even mid-escape (the recorded
// fixture does that); the JSON is parsed only at the end.
BOOST_AUTO_TEST_CASE(arguments_cut_mid_escape_are_joined_before_parsing) {
    auto const r = run(call_chunk(R"({"index":0,"id":"a","function":{"name":"say","arguments":"{\"t\":\"a\\"}})") +
                       call_chunk(R"({"index":0,"function":{"arguments":"\"b\\u00"}})") +
                       call_chunk(R"({"index":0,"function":{"arguments":"e9\"}"}})") + finish_calls + done);
    BOOST_REQUIRE(r.result.has_value());
    BOOST_REQUIRE_EQUAL(r.result->tool_calls.size(), 1u);
    BOOST_TEST(r.result->tool_calls[0].arguments == R"({"t":"a\"b\u00e9"})");
    BOOST_TEST(r.result->tool_calls[0].arguments_valid);
}

// Decision: invalid arguments do not fail the response (its text and usage
// are real); the call is flagged so the tool loop can answer the model.
BOOST_AUTO_TEST_CASE(invalid_or_cut_arguments_are_flagged_not_fatal) {
    auto const r = run(call_chunk(R"({"index":0,"id":"a","function":{"name":"f","arguments":"{\"t\":\"a\\"}})") +
                       call_chunk(R"({"index":1,"id":"b","function":{"name":"g","arguments":"[1,2]"}})") +
                       finish_calls);  // cut: no more pieces, no [DONE]
    BOOST_REQUIRE(r.result.has_value());
    BOOST_REQUIRE_EQUAL(r.result->tool_calls.size(), 2u);
    BOOST_TEST(!r.result->tool_calls[0].arguments_valid);
    BOOST_TEST(r.result->tool_calls[0].arguments == R"({"t":"a\)");
    BOOST_TEST(!r.result->tool_calls[1].arguments_valid);  // JSON, but not an object
    BOOST_TEST(!r.result->saw_done);
}

// §9.8, DER: the mid-stream error chunk.
BOOST_AUTO_TEST_CASE(a_mid_stream_error_chunk_with_an_int_code_fails) {
    auto const r = run(fixture("stream_midstream_error.sse"));
    BOOST_TEST((r.last == openrouter_stream::status::failed));
    BOOST_REQUIRE(!r.result.has_value());
    auto const& e = r.result.error();
    BOOST_TEST(e.status == 502);
    BOOST_TEST(e.code_text == "502");
    BOOST_TEST(e.message == "Provider disconnected mid-stream");
    BOOST_TEST(opt(e.error_type) == "provider_unavailable");
    BOOST_TEST(opt(e.provider_code) == "overloaded_error");
    BOOST_TEST(e.retryable);
    BOOST_TEST(e.mid_stream);
    BOOST_TEST(r.partial.text == "Once upon a time");
    BOOST_TEST(r.forwarded.size() == 2u);
}

// DST's example: error.code is the string "server_error".
BOOST_AUTO_TEST_CASE(a_mid_stream_error_chunk_with_a_string_code_fails) {
    auto const r = run(text_chunk("Hi") +
                       R"(data: {"id":"gen-1","error":{"code":"server_error","message":"Provider disconnected"},)"
                       R"("choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]})"
                       "\n\n");
    BOOST_REQUIRE(!r.result.has_value());
    BOOST_TEST(r.result.error().code_text == "server_error");
    BOOST_TEST(r.result.error().status == 500);
    BOOST_TEST(r.result.error().retryable);
    BOOST_TEST(r.result.error().mid_stream);
}

BOOST_AUTO_TEST_CASE(a_string_code_takes_its_status_from_the_error_type) {
    auto const r = run(R"(data: {"error":{"code":"server_error","message":"slow down",)"
                       R"("metadata":{"error_type":"rate_limit_exceeded"}},"choices":[]})"
                       "\n\n");
    BOOST_REQUIRE(!r.result.has_value());
    BOOST_TEST(r.result.error().status == 429);
    BOOST_TEST(r.result.error().retryable);
}

// §9.8: some error chunks carry empty choices and only a top-level error.
BOOST_AUTO_TEST_CASE(a_bare_error_chunk_with_empty_choices_fails) {
    auto const r = run(text_chunk("Hi") + R"(data: {"error":{"message":"Internal Server Error","code":500},"choices":[]})"
                                          "\n\n" + done);
    BOOST_REQUIRE(!r.result.has_value());
    BOOST_TEST(r.result.error().status == 500);
    BOOST_TEST(r.result.error().message == "Internal Server Error");
}

// §9.8: the free-tier limit inside a stream (aider#3550).
BOOST_AUTO_TEST_CASE(an_error_chunk_with_user_id_fails) {
    auto const r = run(R"(data: {"error":{"message":"Rate limit exceeded: free-models-per-day","code":429,)"
                       R"("metadata":{"headers":{"X-RateLimit-Limit":"50","X-RateLimit-Remaining":"0",)"
                       R"("X-RateLimit-Reset":"1743292800000"},"provider_name":null}},"user_id":"user_2abc"})"
                       "\n\n");
    BOOST_REQUIRE(!r.result.has_value());
    auto const& e = r.result.error();
    BOOST_TEST(e.status == 429);
    BOOST_TEST(e.retryable);
    BOOST_TEST(opt_ms(e.retry_after) == -1);  // the reset is informational only
    BOOST_REQUIRE(e.rate_limit_reset.has_value());
    BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(e.rate_limit_reset->time_since_epoch()).count() ==
               1743292800000LL);
}

// §9.8: finish_reason "error" without an error object is a failure too.
BOOST_AUTO_TEST_CASE(finish_reason_error_without_an_error_object_fails) {
    auto const r = run(text_chunk("Hi") + chunk(R"({"content":""})", R"("error")") + done);
    BOOST_REQUIRE(!r.result.has_value());
    BOOST_TEST(r.result.error().code_text == "finish_reason_error");
    BOOST_TEST(r.result.error().retryable);
    BOOST_TEST(r.result.error().mid_stream);
}

BOOST_AUTO_TEST_CASE(an_error_inside_the_choice_fails) {
    auto const r = run(text_chunk("Hi") +
                       R"(data: {"choices":[{"index":0,"delta":{},"finish_reason":"error",)"
                       R"("error":{"code":504,"message":"timed out","metadata":{"error_type":"timeout"}}}]})"
                       "\n\n");
    BOOST_REQUIRE(!r.result.has_value());
    BOOST_TEST(r.result.error().status == 504);
    BOOST_TEST(opt(r.result.error().error_type) == "timeout");
}

BOOST_AUTO_TEST_CASE(error_values_that_are_not_objects) {
    {
        auto const r = run(R"(data: {"error":"quota gone"})" "\n\n");
        BOOST_REQUIRE(!r.result.has_value());
        BOOST_TEST(r.result.error().message == "quota gone");
        BOOST_TEST(r.result.error().status == 200);
        BOOST_TEST(!r.result.error().retryable);
    }
    {
        auto const r = run(R"(data: {"error":true})" "\n\n");
        BOOST_REQUIRE(!r.result.has_value());
        BOOST_TEST(r.result.error().message == "true");
    }
    {
        // null, false and "" are no error.
        auto const r = run(R"(data: {"error":null,"choices":[{"delta":{"content":"a"},"error":false}]})" "\n\n"
                           R"(data: {"error":"","choices":[]})" "\n\n" + finish_stop + done);
        BOOST_REQUIRE(r.result.has_value());
        BOOST_TEST(r.result->text == "a");
    }
}

// §9.9: reasoning and reasoning_details carry the same text; keep one.
BOOST_AUTO_TEST_CASE(reasoning_is_kept_once) {
    auto const r = run(chunk(R"({"content":"","reasoning":"Let me think",)"
                             R"("reasoning_details":[{"type":"reasoning.text","text":"Let me think"}]})") +
                       chunk(R"({"content":"Answer","reasoning":null,"reasoning_details":[]})") + finish_stop + done);
    BOOST_REQUIRE(r.result.has_value());
    BOOST_TEST(r.result->reasoning == "Let me think");
    BOOST_TEST(r.result->text == "Answer");
}

// §10: end of body without [DONE].
BOOST_AUTO_TEST_CASE(end_of_body_without_done_after_a_finish_reason_is_success) {
    auto const r = run(text_chunk("Hi") + finish_stop);
    BOOST_TEST((r.last == openrouter_stream::status::reading));
    BOOST_REQUIRE(r.result.has_value());
    BOOST_TEST(r.result->text == "Hi");
    BOOST_TEST(!r.result->saw_done);
}

BOOST_AUTO_TEST_CASE(end_of_body_without_done_or_finish_reason_fails) {
    {
        auto const r = run(text_chunk("Hi"));
        BOOST_REQUIRE(!r.result.has_value());
        BOOST_TEST(r.result.error().code_text == "stream_ended_early");
        BOOST_TEST(r.result.error().retryable);
        BOOST_TEST(r.result.error().mid_stream);
        BOOST_TEST(r.result.error().message.find("no [DONE]") != std::string::npos);
    }
    {
        auto const r = run(text_chunk("Hi") + R"(data: {"choices":[{"delta":{"content":"cut)");
        BOOST_REQUIRE(!r.result.has_value());
        BOOST_TEST(r.result.error().code_text == "stream_ended_early");
        BOOST_TEST(r.result.error().message.find("inside an event") != std::string::npos);
    }
    {
        auto const r = run("");
        BOOST_REQUIRE(!r.result.has_value());
        BOOST_TEST(r.result.error().code_text == "stream_ended_early");
    }
}

BOOST_AUTO_TEST_CASE(text_deltas_are_forwarded_as_they_arrive) {
    std::vector<std::string> seen;
    stream_options options;
    options.on_text = [&seen](std::string_view t) { seen.emplace_back(t); };
    openrouter_stream s{std::move(options)};
    s.feed(text_chunk("Hel"));
    BOOST_TEST(seen == (std::vector<std::string>{"Hel"}), boost::test_tools::per_element());
    s.feed(text_chunk("") + text_chunk("lo").substr(0, 40));  // "" is not forwarded; half an event is not either
    BOOST_TEST(seen.size() == 1u);
    BOOST_TEST(s.partial().text == "Hel");
    s.feed(text_chunk("lo").substr(40));
    BOOST_TEST(seen == (std::vector<std::string>{"Hel", "lo"}), boost::test_tools::per_element());
    s.feed(finish_stop + done);
    BOOST_TEST(s.finish()->text == "Hello");
}

BOOST_AUTO_TEST_CASE(a_stream_without_a_text_callback_works) {
    openrouter_stream s;
    s.feed(text_chunk("x") + finish_stop + done);
    BOOST_TEST(s.finish()->text == "x");
}

// §9.2: never index choices[0] without checking.
BOOST_AUTO_TEST_CASE(odd_choices_never_crash) {
    auto const r = run(R"(data: {"id":"gen-1","choices":[]})" "\n\n"
                       R"(data: {"id":"gen-1"})" "\n\n"
                       R"(data: {"choices":"none"})" "\n\n"
                       R"(data: {"choices":[null,7,"x"]})" "\n\n"
                       R"(data: {"choices":[{"index":1,"delta":{"content":"B"}},{"index":0,"delta":{"content":"A"}}]})" "\n\n"
                       R"(data: {"choices":[{"index":3,"delta":{"content":"C"}}]})" "\n\n"
                       R"(data: {"choices":[{"index":null,"delta":"text"}]})" "\n\n"
                       R"(data: {"choices":[{"delta":{"content":7,"reasoning":["x"]},"finish_reason":"stop"}]})" "\n\n" +
                       done);
    BOOST_REQUIRE(r.result.has_value());
    BOOST_TEST(r.result->text == "AC");  // choice 0 when there is one, else the first
    BOOST_TEST(r.result->finish_reason == "stop");
}

// The debug chunk (debug.echo_upstream_body) has empty choices.
BOOST_AUTO_TEST_CASE(a_debug_chunk_is_ignored) {
    auto const r = run(R"(data: {"id":"gen-x","provider":"Anthropic","model":"a/b","choices":[],)"
                       R"("debug":{"echo_upstream_body":{"stream":true}}})"
                       "\n\n" + text_chunk("ok") + finish_stop + done);
    BOOST_REQUIRE(r.result.has_value());
    BOOST_TEST(r.result->text == "ok");
    BOOST_TEST(r.result->generation_id == "gen-x");  // ids from the first chunk that has them
    BOOST_TEST(r.result->model == "a/b");
    BOOST_TEST(r.result->provider == "Anthropic");
}

BOOST_AUTO_TEST_CASE(an_oversize_event_fails_the_stream) {
    auto const r = run(text_chunk("Hi") + text_chunk(std::string(400, 'x')) + finish_stop + done, 300);
    BOOST_TEST((r.last == openrouter_stream::status::failed));
    BOOST_REQUIRE(!r.result.has_value());
    BOOST_TEST(r.result.error().code_text == "event_too_large");
    BOOST_TEST(!r.result.error().retryable);
    BOOST_TEST(r.result.error().message.find("300 bytes") != std::string::npos);
    BOOST_TEST(r.partial.text == "Hi");
}

BOOST_AUTO_TEST_CASE(an_oversize_event_after_done_does_not_matter) {
    auto const r = run(finish_stop + done + text_chunk(std::string(400, 'x')), 300);
    BOOST_REQUIRE(r.result.has_value());
    BOOST_TEST(r.result->saw_done);
}

BOOST_AUTO_TEST_CASE(feeding_after_a_failure_changes_nothing) {
    openrouter_stream s;
    BOOST_TEST((s.feed(R"(data: {"error":{"code":503,"message":"down"}})" "\n\n") == openrouter_stream::status::failed));
    BOOST_TEST((s.feed(text_chunk("more") + done) == openrouter_stream::status::failed));
    auto const r = s.finish();
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().status == 503);
    BOOST_TEST(s.partial().text == "");
}

BOOST_AUTO_TEST_CASE(usage_in_the_error_chunk_is_kept_for_accounting) {
    auto const r = run(text_chunk("Hi") + R"(data: {"error":{"code":502,"message":"x"},"usage":)" + usage_json("0.000912") +
                       "}\n\n");
    BOOST_REQUIRE(!r.result.has_value());
    BOOST_REQUIRE(r.partial.usage.has_value());
    BOOST_TEST(opt(r.partial.usage->cost) == "0.000912");
}

BOOST_AUTO_TEST_CASE(result_value_throws_the_upstream_error) {
    auto r = run(text_chunk("Hi"));
    BOOST_CHECK_THROW(r.result.value(), std::runtime_error);
    try {
        r.result.value();
    } catch (std::runtime_error const& e) {
        BOOST_TEST(std::string{e.what()}.find("stream_ended_early") != std::string::npos);
    }
}

BOOST_AUTO_TEST_SUITE_END()

// ================================================================ whole bodies

BOOST_AUTO_TEST_SUITE(parse_completion_suite)

// §4, §9.10: padding before the JSON.
BOOST_AUTO_TEST_CASE(a_padded_body_parses) {
    auto const body = fixture("completion_padded.json");
    BOOST_TEST(body.front() == '\n');
    auto const r = parse_completion(body);
    BOOST_REQUIRE(r.has_value());
    auto const& c = *r;
    BOOST_TEST(c.text == "Consulto el tiempo.");
    BOOST_REQUIRE_EQUAL(c.tool_calls.size(), 1u);
    BOOST_TEST(c.tool_calls[0].id == "toolu_01XyZ");
    BOOST_TEST(c.tool_calls[0].name == "get_weather");
    BOOST_TEST(c.tool_calls[0].arguments == R"({"city":"Málaga"})");
    BOOST_TEST(c.finish_reason == "tool_calls");
    BOOST_TEST(c.native_finish_reason == "tool_use");
    BOOST_TEST(c.generation_id == "gen-1776000100-PqRsTuVwXyZaBcDeFgHi");
    BOOST_TEST(c.model == "anthropic/claude-4.5-haiku-20251001");
    BOOST_TEST(c.provider == "Anthropic");
    BOOST_TEST(!c.saw_done);
    BOOST_REQUIRE(c.usage.has_value());
    BOOST_TEST(c.usage->total_tokens == 674);
    BOOST_TEST(opt(c.usage->cost) == "0.00089");
}

// §9.10: only whitespace arrived.
BOOST_AUTO_TEST_CASE(a_whitespace_only_body_is_a_retryable_failure) {
    for (std::string_view body : {"\n         \n\n         \n", "", " \t\r\n"}) {
        auto const r = parse_completion(body);
        BOOST_REQUIRE(!r.has_value());
        BOOST_TEST(r.error().code_text == "empty_body");
        BOOST_TEST(r.error().retryable);
        BOOST_TEST(!r.error().mid_stream);
        BOOST_TEST(r.error().status == 0);
    }
}

// §6, §9.8: a bare error body on a 200.
BOOST_AUTO_TEST_CASE(an_error_body_on_200_fails) {
    auto const r = parse_completion("\n         \n" R"({"error":{"message":"Provider returned error","code":502,)"
                                    R"("metadata":{"raw":"...","provider_name":"Fireworks"}},"user_id":"u1"})");
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().status == 502);
    BOOST_TEST(r.error().message == "Provider returned error");
    BOOST_TEST(r.error().retryable);
    BOOST_TEST(!r.error().mid_stream);
}

// DER: a choice with finish_reason "error", an error object and partial content.
BOOST_AUTO_TEST_CASE(an_error_inside_the_choice_fails) {
    auto const r = parse_completion(R"({"choices":[{"message":{"role":"assistant","content":"partial output..."},)"
                                    R"("finish_reason":"error","error":{"code":502,"message":"Provider disconnected mid-stream",)"
                                    R"("metadata":{"error_type":"provider_unavailable"}}}]})");
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().status == 502);
    BOOST_TEST(opt(r.error().error_type) == "provider_unavailable");
    BOOST_TEST(r.error().retryable);
}

BOOST_AUTO_TEST_CASE(finish_reason_error_without_an_error_object_fails) {
    auto const r = parse_completion(R"({"choices":[{"message":{"content":"x"},"finish_reason":"error"}]})");
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().code_text == "finish_reason_error");
    BOOST_TEST(r.error().retryable);
}

BOOST_AUTO_TEST_CASE(null_content_with_tool_calls) {
    auto const r = parse_completion(
        R"({"id":"gen-2","choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant","content":null,)"
        R"("tool_calls":[{"type":"function","index":1,"id":"c1","function":{"name":"f","arguments":""}}]}}]})");
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->text == "");
    BOOST_REQUIRE_EQUAL(r->tool_calls.size(), 1u);  // §9.7: index 1 alone, non-stream too
    BOOST_TEST(r->tool_calls[0].arguments == "{}");
    BOOST_TEST(!r->usage.has_value());
}

BOOST_AUTO_TEST_CASE(tool_calls_are_ordered_by_index_then_position) {
    auto const r = parse_completion(
        R"({"choices":[{"message":{"content":"","tool_calls":[)"
        R"({"index":2,"id":"c","function":{"name":"third","arguments":"{\"x\":"}},)"
        R"("junk",)"
        R"({"index":0,"id":"a","function":{"name":"first","arguments":{"y":1}}},)"
        R"({"id":"b","type":"function"}]}}]})");
    BOOST_REQUIRE(r.has_value());
    BOOST_REQUIRE_EQUAL(r->tool_calls.size(), 3u);
    BOOST_TEST(r->tool_calls[0].name == "first");
    BOOST_TEST(r->tool_calls[0].arguments == R"({"y":1})");
    BOOST_TEST(r->tool_calls[1].name == "third");
    BOOST_TEST(!r->tool_calls[1].arguments_valid);
    BOOST_TEST(r->tool_calls[2].id == "b");  // no index: its position among the calls (2), after "third"
    BOOST_TEST(r->tool_calls[2].arguments == "{}");
    auto const plain = parse_completion(R"({"choices":[{"message":{"tool_calls":[)"
                                        R"({"id":"p","function":{"name":"one"}},{"id":"q","function":{"name":"two"}}]}}]})");
    BOOST_REQUIRE(plain.has_value());
    BOOST_REQUIRE_EQUAL(plain->tool_calls.size(), 2u);
    BOOST_TEST(plain->tool_calls[0].id == "p");  // no indexes at all: array order
    BOOST_TEST(plain->tool_calls[1].id == "q");
}

BOOST_AUTO_TEST_CASE(content_as_parts_and_reasoning) {
    auto const r = parse_completion(R"({"choices":[{"message":{"content":[{"type":"text","text":"Hello"},)"
                                    R"(7,{"type":"text","text":", world"}],"reasoning":"thought"},"finish_reason":"stop"}]})");
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->text == "Hello, world");
    BOOST_TEST(r->reasoning == "thought");
    BOOST_TEST(r->finish_reason == "stop");
}

BOOST_AUTO_TEST_CASE(a_body_without_choices_fails) {
    for (std::string_view body : {R"({"id":"gen-1","choices":[]})", R"({"id":"gen-1"})"}) {
        auto const r = parse_completion(body);
        BOOST_REQUIRE(!r.has_value());
        BOOST_TEST(r.error().code_text == "no_choices");
        BOOST_TEST(r.error().retryable);
    }
}

BOOST_AUTO_TEST_CASE(a_choice_without_a_message_is_empty) {
    auto const r = parse_completion(R"({"choices":[{"finish_reason":"length"}]})");
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->text == "");
    BOOST_TEST(r->finish_reason == "length");
}

BOOST_AUTO_TEST_CASE(invalid_json_bodies_fail) {
    {
        auto const r = parse_completion(R"({"choices":[{"message":{"content":"cut)");  // the connection died
        BOOST_REQUIRE(!r.has_value());
        BOOST_TEST(r.error().code_text == "invalid_json");
        BOOST_TEST(r.error().retryable);
    }
    {
        auto const r = parse_completion(": OPENROUTER PROCESSING\n\n");  // a proxy forced streaming (§9.1)
        BOOST_REQUIRE(!r.has_value());
        BOOST_TEST(r.error().code_text == "invalid_json");
    }
    {
        auto const r = parse_completion("[1]");
        BOOST_REQUIRE(!r.has_value());
        BOOST_TEST(r.error().message.find("not a JSON object") != std::string::npos);
    }
}

// §9.11: every usage subfield is optional.
BOOST_AUTO_TEST_CASE(usage_subfields_are_all_optional) {
    auto const r =
        parse_completion(R"({"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":3,"completion_tokens":4}})");
    BOOST_REQUIRE(r.has_value());
    BOOST_REQUIRE(r->usage.has_value());
    BOOST_TEST(r->usage->total_tokens == 7);  // computed when missing
    BOOST_TEST(opt(r->usage->cost) == "<none>");
    BOOST_TEST(opt(r->usage->cached_tokens) == "<none>");
    BOOST_TEST(opt(r->usage->reasoning_tokens) == "<none>");
    auto const odd = parse_completion(
        R"({"choices":[{"message":{}}],"usage":{"prompt_tokens":-1,"completion_tokens":2.0,"total_tokens":1e20,)"
        R"("cost":null,"prompt_tokens_details":{"cached_tokens":"5"},)"
        R"("completion_tokens_details":{"reasoning_tokens":18446744073709551615}}})");
    BOOST_REQUIRE(odd.has_value());
    BOOST_TEST(odd->usage->prompt_tokens == 0);
    BOOST_TEST(odd->usage->completion_tokens == 2);
    BOOST_TEST(odd->usage->total_tokens == 2);
    BOOST_TEST(opt(odd->usage->cost) == "<none>");
    BOOST_TEST(opt(odd->usage->cached_tokens) == "<none>");
    BOOST_TEST(opt(odd->usage->reasoning_tokens) == "<none>");
    auto const fractional = parse_completion(R"({"choices":[{"message":{}}],"usage":{"completion_tokens":2.5}})");
    BOOST_TEST(fractional->usage->completion_tokens == 0);
}

BOOST_AUTO_TEST_SUITE_END()

// ========================================================================= cost

BOOST_AUTO_TEST_SUITE(usage_cost_suite)

BOOST_AUTO_TEST_CASE(plain_decimal_keeps_or_expands_exactly) {
    std::vector<std::pair<std::string_view, std::string>> const cases{
        {"0.012207", "0.012207"}, {"1e-05", "0.00001"}, {"0", "0"}, {"12.5", "12.5"},
        {"1.5E+3", "1500"},       {"2.5e-7", "0.00000025"}, {"-1e2", "-100"}, {"0e5", "0"},
        {"1.50e1", "15.0"},       {"0.05e-1", "0.005"}, {"12e-1", "1.2"}, {"1E0", "1"},
        {"1e+0", "1"},            {"0.1234567890123456789", "0.1234567890123456789"},
        {"5e-64", "0." + std::string(63, '0') + "5"},
    };
    for (auto const& [in, out] : cases) {
        BOOST_TEST_CONTEXT(in) {
            BOOST_TEST(opt(parley::net::plain_decimal(in)) == out);
        }
    }
    for (std::string_view bad : {"", "-", "01", "1.", ".5", "1e", "1e+", "abc", "1x", "1e65", "1e-99999999999", "+1", "1.e5"}) {
        BOOST_TEST_CONTEXT("bad " << bad) {
            BOOST_TEST(!parley::net::plain_decimal(bad).has_value());
        }
    }
}

BOOST_AUTO_TEST_CASE(raw_usage_cost_reads_only_root_usage_cost) {
    using parley::net::raw_usage_cost;
    BOOST_TEST(opt(raw_usage_cost(R"({"usage":{"prompt_tokens":1,"cost":0.012207,"cost_details":{"cost":9}}})")) ==
               "0.012207");
    BOOST_TEST(opt(raw_usage_cost(R"({"other":{"cost":1},"choices":[{"usage":{"cost":2}}],)"
                                  R"("usage":{"x":[{"cost":3}],"cost":4}})")) ==
               "4");
    BOOST_TEST(opt(raw_usage_cost(R"({"usage":{"cost":"0.5"}})")) == "0.5");
    BOOST_TEST(opt(raw_usage_cost(R"({"usage":{"cost":"cheap"}})")) == "<none>");
    BOOST_TEST(opt(raw_usage_cost(R"({"usage":{"cost":null}})")) == "<none>");
    BOOST_TEST(opt(raw_usage_cost(R"({"usage":{"cost":true}})")) == "<none>");
    BOOST_TEST(opt(raw_usage_cost(R"({"usage":{"cost":{"usd":1}}})")) == "<none>");
    BOOST_TEST(opt(raw_usage_cost(R"({"usage":[{"cost":1}]})")) == "<none>");
    BOOST_TEST(opt(raw_usage_cost(R"({"usage":{"cost":1},"usage":{"total":2}})")) == "<none>");  // the last usage wins
    BOOST_TEST(opt(raw_usage_cost(R"([{"usage":{"cost":1}}])")) == "<none>");
    BOOST_TEST(opt(raw_usage_cost(R"({"usage":{"cost":1)")) == "<none>");  // not a whole document
    BOOST_TEST(opt(raw_usage_cost(R"({"usage":{"cost":18446744073709551615}})")) == "18446744073709551615");
    BOOST_TEST(opt(raw_usage_cost(R"({"usage":{"cost":-3}})")) == "-3");
    // Escapes make the parser hand keys and strings over in parts.
    BOOST_TEST(opt(raw_usage_cost(R"({"us\u0061ge":{"co\u0073t":"0.\u0031\u0032"}})")) == "0.12");
    BOOST_TEST(opt(raw_usage_cost(R"({"usage":{"cost":-)")) == "<none>");  // a number cut short
    BOOST_TEST(opt(raw_usage_cost(R"({/* c */"usage":{"cost":1}})")) == "1");  // comments are tolerated
    BOOST_TEST(opt(raw_usage_cost(R"({"usage":{"cost":1 /* cut)")) == "<none>");
    // Long keys and strings.
    std::string const long_key(5000, 'k');
    std::string const escaped = std::string(3000, 'a') + "\\n" + std::string(3000, 'b');
    BOOST_TEST(opt(raw_usage_cost(R"({")" + long_key + R"(":1,"usage":{")" + long_key + R"(":")" + escaped +
                                  R"(","cost":"0.)" + std::string(5000, '1') + R"("}})")) ==
               "0." + std::string(5000, '1'));
}

BOOST_AUTO_TEST_CASE(cost_text_is_exact_through_a_stream) {
    for (std::string_view cost : {"0.012207", "1e-05", "0", "12.5", "0.30000000000000004", "1.2E-3"}) {
        BOOST_TEST_CONTEXT(cost) {
            auto const r = run(finish_stop + R"(data: {"choices":[],"usage":)" + usage_json(cost) + "}\n\n" + done);
            BOOST_REQUIRE(r.result.has_value());
            BOOST_REQUIRE(r.result->usage.has_value());
            BOOST_TEST(opt(r.result->usage->cost) == opt(parley::net::plain_decimal(cost)));
        }
    }
    auto const r = run(finish_stop + R"(data: {"choices":[],"usage":)" + usage_json("1e-05") + "}\n\n" + done);
    BOOST_TEST(opt(r.result->usage->cost) == "0.00001");
}

BOOST_AUTO_TEST_SUITE_END()

// =============================================================== classification

BOOST_AUTO_TEST_SUITE(classify_suite)

BOOST_AUTO_TEST_CASE(each_status_classifies_per_architecture_section_3) {
    std::map<int, bool> const table{
        {400, false}, {401, false}, {402, false}, {403, false}, {404, false}, {408, true},  {413, false},
        {422, false}, {429, true},  {500, true},  {502, true},  {503, true},  {504, true},  {524, true},
        {529, true},  {405, false}, {418, false}, {501, false}, {520, false},
    };
    for (auto const& [status, retryable] : table) {
        BOOST_TEST_CONTEXT("HTTP " << status) {
            auto const body = R"({"error":{"code":)" + std::to_string(status) + R"(,"message":"m"}})";
            auto const e = classify(status, body);
            BOOST_TEST(e.status == status);
            BOOST_TEST(e.retryable == retryable);
            BOOST_TEST(!e.mid_stream);
            BOOST_TEST(e.message == "m");
            BOOST_TEST(parley::net::is_retryable_status(status) == retryable);
        }
    }
}

// §6: real bodies put message before code.
BOOST_AUTO_TEST_CASE(message_before_code_is_tolerated) {
    auto const e = classify(401, R"({"error":{"message":"No auth credentials found","code":401}})");
    BOOST_TEST(e.status == 401);
    BOOST_TEST(e.code_text == "401");
    BOOST_TEST(e.message == "No auth credentials found");
    BOOST_TEST(!e.retryable);
}

// §6: the docs' payloads put error_type and http_status directly in error, without code.
BOOST_AUTO_TEST_CASE(error_type_and_http_status_inside_error_are_tolerated) {
    auto const e = classify(200, R"({"error":{"message":"Overloaded","error_type":"provider_overloaded","http_status":503}})");
    BOOST_TEST(e.status == 503);
    BOOST_TEST(opt(e.error_type) == "provider_overloaded");
    BOOST_TEST(e.code_text == "");
    BOOST_TEST(e.retryable);
    auto const typed = classify(200, R"({"error":{"message":"x","error_type":"payment_required"}})");
    BOOST_TEST(typed.status == 402);
    BOOST_TEST(!typed.retryable);
    auto const unknown = classify(200, R"({"error":{"message":"x","error_type":"brand_new"}})");
    BOOST_TEST(unknown.status == 200);
    BOOST_TEST(!unknown.retryable);
    auto const unmapped = classify(200, R"({"error":{"message":"x","metadata":{"error_type":"unmapped"}}})");
    BOOST_TEST(unmapped.status == 500);
}

BOOST_AUTO_TEST_CASE(the_http_status_wins_over_the_body_code_on_an_error_response) {
    auto const e = classify(503, R"({"error":{"code":400,"message":"m"}})");
    BOOST_TEST(e.status == 503);
    BOOST_TEST(e.code_text == "400");
    BOOST_TEST(e.retryable);
}

// §6: availability.retryable wins when present, either way.
BOOST_AUTO_TEST_CASE(availability_retryable_overrides_the_status) {
    auto const yes = classify(404, R"({"error":{"code":404,"message":"busy","availability":{"code":"capacity_exhausted",)"
                                   R"("retryable":true,"retry_after":2.5}}})");
    BOOST_TEST(yes.retryable);
    BOOST_TEST(opt(yes.availability_retryable) == "true");
    BOOST_TEST(opt(yes.availability_code) == "capacity_exhausted");
    BOOST_TEST(opt_ms(yes.retry_after) == 2500);
    auto const no = classify(503, R"({"error":{"code":503,"message":"gone","availability":{"code":"model_deprecated",)"
                                  R"("retryable":false}}})");
    BOOST_TEST(!no.retryable);
    BOOST_TEST(opt(no.availability_retryable) == "false");
    auto const in_metadata = classify(429, R"({"error":{"code":429,"message":"m","metadata":{"availability":)"
                                           R"({"retryable":false,"retry_after":"30","code":7}}}})");
    BOOST_TEST(!in_metadata.retryable);
    BOOST_TEST(opt_ms(in_metadata.retry_after) == 30000);
    BOOST_TEST(opt(in_metadata.availability_code) == "<none>");
    auto const odd = classify(503, R"({"error":{"availability":{"retryable":"yes","retry_after":-4}}})");
    BOOST_TEST(odd.retryable);  // not a bool: the status decides
    BOOST_TEST(opt_ms(odd.retry_after) == -1);
    BOOST_TEST(odd.message == "upstream error without a message");
    auto const big = classify(503, R"({"error":{"availability":{"retry_after":1e300}}})");
    BOOST_TEST(opt_ms(big.retry_after) == 1'000'000'000'000);
}

BOOST_AUTO_TEST_CASE(retry_after_in_seconds) {
    auto const now = sys_clock::time_point{} + std::chrono::hours{24 * 365 * 50};
    std::map<std::string, std::string> headers{{"retry-after", "120"}};
    auto lookup = [&](std::string_view name) -> std::optional<std::string_view> {
        auto it = headers.find(std::string{name});
        if (it == headers.end()) {
            return std::nullopt;
        }
        return std::string_view{it->second};
    };
    BOOST_TEST(opt_ms(classify(429, "", lookup, now).retry_after) == 120000);
    headers["retry-after"] = " 1.5 ";
    BOOST_TEST(opt_ms(classify(429, "", lookup, now).retry_after) == 1500);
    headers["retry-after"] = "soon";
    BOOST_TEST(opt_ms(classify(429, "", lookup, now).retry_after) == -1);
    headers["retry-after"] = "99999999999999999999";
    BOOST_TEST(opt_ms(classify(429, "", lookup, now).retry_after) == 1'000'000'000'000);
}

BOOST_AUTO_TEST_CASE(retry_after_as_an_http_date) {
    auto const date = parley::net::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT");
    BOOST_REQUIRE(date.has_value());
    BOOST_TEST(std::chrono::duration_cast<std::chrono::seconds>(date->time_since_epoch()).count() == 784111777);
    auto const now = *date - 90s - 250ms;
    auto lookup = [](std::string_view name) -> std::optional<std::string_view> {
        if (name == "retry-after") {
            return std::string_view{"Sun, 06 Nov 1994 08:49:37 GMT"};
        }
        return std::nullopt;
    };
    auto const e = classify(503, R"({"error":{"code":503,"message":"busy"}})", lookup, now);
    BOOST_TEST(opt_ms(e.retry_after) == 90250);
    BOOST_TEST(opt_ms(classify(503, "", lookup, *date + 10s).retry_after) == 0);  // already past
    // Sub-millisecond remainders round up: never retry early.
    BOOST_TEST(opt_ms(parley::net::parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", *date - 1us)) == 1);
}

BOOST_AUTO_TEST_CASE(http_dates_in_all_three_forms) {
    using parley::net::parse_http_date;
    auto const expected = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT");
    BOOST_REQUIRE(expected.has_value());
    BOOST_TEST((parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == expected));
    BOOST_TEST((parse_http_date("Sun Nov  6 08:49:37 1994") == expected));
    BOOST_TEST((parse_http_date("  Sun, 06 Nov 1994 08:49:37 GMT  ") == expected));
    auto const y2k = parse_http_date("Thursday, 01-Jan-26 00:00:00 GMT");
    BOOST_REQUIRE(y2k.has_value());
    BOOST_TEST(std::chrono::duration_cast<std::chrono::seconds>(y2k->time_since_epoch()).count() == 1767225600);
    BOOST_TEST((parse_http_date("Fri Dec 31 23:59:60 1999") ==
                parse_http_date("Sat, 01 Jan 2000 00:00:00 GMT")));  // a leap second
    for (std::string_view bad : {
             "", "Sun, 06 Nov 1994 08:49:37", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Nov 1994 08:49:37 GMT x",
             "Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 06 Nox 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT",
             "Sun, 06 Nov 1994 08:60:00 GMT", "Sun, 06 Nov 1994 08:49:61 GMT", "Sun, 6 Nov 1994 08:49:37 GMT",
             "Sun, 06 Nov 94 08:49:37 GMT", "Sun, 06 Nov 1994 08-49:37 GMT", "Sun, 06 Nov 1994 08:49-37 GMT",
             "Sun, 06 Nov 1994 8:49:37 GMT", ", 06 Nov 1994 08:49:37 GMT", "Sun 06 Nov 1994 08:49:37 GMT",
             "Sun, 06 Nov1994 08:49:37 GMT", "Sun, 06 Nov 199408:49:37 GMT", "Sun, 06-Nov 1994 08:49:37 GMT",
             "Sunday, 06-Nov-94 08:49:37", "Sunday, 06-Nov94 08:49:37 GMT", "Sunday, 06-Nov-9408:49:37 GMT",
             "Sunday, 06-Nov-94 08:49 GMT", "Sunday, 0x-Nov-94 08:49:37 GMT", "Sunday, 06-Nox-94 08:49:37 GMT",
             "Sun Nov  6 08:49:37", "Sun Nov  6 08:49:37 1994 GMT", "Sun Nov 6 08:49:37 1994",
             "Sun Nov  6 08:49:371994", "Sun Nox  6 08:49:37 1994", "Sun Nov  608:49:37 1994", "SunNov  6 08:49:37 1994",
             "Sun Nov  6 08:49 1994", "Sun Nov  6 08:49:37 94",
         }) {
        BOOST_TEST_CONTEXT("bad date '" << bad << "'") {
            BOOST_TEST(!parse_http_date(bad).has_value());
        }
    }
}

BOOST_AUTO_TEST_CASE(retry_after_ms_wins_over_retry_after) {
    std::map<std::string, std::string> headers{{"retry-after", "120"}, {"retry-after-ms", "1500"}};
    auto lookup = [&](std::string_view name) -> std::optional<std::string_view> {
        auto it = headers.find(std::string{name});
        if (it == headers.end()) {
            return std::nullopt;
        }
        return std::string_view{it->second};
    };
    auto const now = sys_clock::now();
    BOOST_TEST(opt_ms(classify(429, "", lookup, now).retry_after) == 1500);
    headers["retry-after-ms"] = "250.9";
    BOOST_TEST(opt_ms(classify(429, "", lookup, now).retry_after) == 250);
    headers["retry-after-ms"] = "later";  // unusable: fall back to Retry-After
    BOOST_TEST(opt_ms(classify(429, "", lookup, now).retry_after) == 120000);
    // Headers win over the body's availability.retry_after.
    BOOST_TEST(opt_ms(classify(429, R"({"error":{"code":429,"availability":{"retry_after":5}}})", lookup, now)
                          .retry_after) == 120000);
    headers.clear();
    BOOST_TEST(opt_ms(classify(429, R"({"error":{"code":429,"availability":{"retry_after":5}}})", lookup, now)
                          .retry_after) == 5000);
}

// DLI, aider#3550: X-RateLimit-Reset (epoch ms) is informational only.
BOOST_AUTO_TEST_CASE(x_ratelimit_reset_is_informational) {
    auto ms_lookup = [](std::string_view name) -> std::optional<std::string_view> {
        if (name == "x-ratelimit-reset") {
            return std::string_view{"1743292800000"};
        }
        return std::nullopt;
    };
    auto const e = classify(429, R"({"error":{"code":429,"message":"Rate limit exceeded"}})", ms_lookup, sys_clock::now());
    BOOST_TEST(opt_ms(e.retry_after) == -1);
    BOOST_REQUIRE(e.rate_limit_reset.has_value());
    BOOST_TEST(std::chrono::duration_cast<std::chrono::seconds>(e.rate_limit_reset->time_since_epoch()).count() ==
               1743292800);
    auto s_lookup = [](std::string_view name) -> std::optional<std::string_view> {
        if (name == "x-ratelimit-reset") {
            return std::string_view{"1743292800"};
        }
        return std::nullopt;
    };
    auto const s = classify(429, "", s_lookup, sys_clock::now());
    BOOST_REQUIRE(s.rate_limit_reset.has_value());
    BOOST_TEST(std::chrono::duration_cast<std::chrono::seconds>(s.rate_limit_reset->time_since_epoch()).count() ==
               1743292800);
    auto bad_lookup = [](std::string_view name) -> std::optional<std::string_view> {
        if (name == "x-ratelimit-reset") {
            return std::string_view{"tomorrow"};
        }
        return std::nullopt;
    };
    BOOST_TEST(!classify(429, "", bad_lookup, sys_clock::now()).rate_limit_reset.has_value());
}

// aider#3550: the 429's headers copied into error.metadata.headers.
BOOST_AUTO_TEST_CASE(headers_copied_into_metadata_are_read) {
    auto const e = classify(429, R"({"error":{"message":"Rate limit exceeded: free-models-per-min","code":429,)"
                                 R"("metadata":{"headers":{"X-RateLimit-Limit":20,"X-RateLimit-Reset":"1743292800000",)"
                                 R"("Retry-After":"7"},"provider_name":null}},"user_id":"user_x"})");
    BOOST_TEST(opt_ms(e.retry_after) == 7000);
    BOOST_TEST(e.rate_limit_reset.has_value());
    // availability.retry_after comes first.
    auto const a = classify(429, R"({"error":{"code":429,"availability":{"retry_after":3},)"
                                 R"("metadata":{"headers":{"retry-after":"7"}}}})");
    BOOST_TEST(opt_ms(a.retry_after) == 3000);
}

// A Cloudflare HTML page instead of JSON.
BOOST_AUTO_TEST_CASE(a_non_json_error_body_classifies_by_status) {
    std::string const html = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\xC3\xA9\x01"
                             "<center>cloudflare</center></body></html>";
    auto const e = classify(502, html);
    BOOST_TEST(e.status == 502);
    BOOST_TEST(e.retryable);
    BOOST_TEST(e.code_text == "");
    BOOST_TEST(e.message.find("HTTP 502 from upstream without a JSON error: <html>") == 0u);
    BOOST_TEST(e.message.find('\n') == std::string::npos);
    BOOST_TEST(e.message.find("??") != std::string::npos);  // non-ASCII bytes never reach a log line raw
    auto const empty = classify(503, "  ");
    BOOST_TEST(empty.message == "HTTP 503 from upstream with an empty body");
    BOOST_TEST(empty.retryable);
    auto const no_error = classify(400, R"({"detail":"bad"})");
    BOOST_TEST(no_error.message.find("without a JSON error") != std::string::npos);
    BOOST_TEST(!no_error.retryable);
    auto const not_object = classify(500, R"({"error":"boom"} trailing)");
    BOOST_TEST(not_object.message.find("without a JSON error") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(messages_and_bodies_are_size_bounded) {
    std::string const long_text = std::string(600, 'a') + "\xE2\x82\xAC";  // a multi-byte char after the cut
    auto const e = classify(400, R"({"error":{"code":400,"message":")" + std::string(508, 'a') + "\xE2\x82\xAC" +
                                     std::string(100, 'b') + R"("}})");
    BOOST_TEST(e.message.size() <= parley::net::max_error_message_bytes);
    BOOST_TEST(e.message.substr(e.message.size() - 3) == "...");
    BOOST_TEST(e.message.find('\xE2') == std::string::npos);  // cut before the character, never inside it
    auto const lines = classify(400, R"({"error":{"code":400,"message":"line1\nline2\ttab"}})");
    BOOST_TEST(lines.message == "line1 line2 tab");
    // A huge body is not parsed at all.
    std::string huge = R"({"error":{"code":429,"message":")" + std::string(parley::net::max_error_body_bytes, 'x') +
                       R"("}})";
    auto const h = classify(503, huge);
    BOOST_TEST(h.message.size() <= parley::net::max_error_message_bytes);
    BOOST_TEST(h.message.find("without a JSON error") != std::string::npos);
    BOOST_TEST(h.retryable);
    auto const long_code = classify(200, R"({"error":{"code":")" + long_text + R"(","message":"m"}})");
    BOOST_TEST(long_code.code_text.size() <= 128u);
}

BOOST_AUTO_TEST_CASE(odd_codes_and_messages) {
    auto const digits = classify(200, R"({"error":{"code":"429","message":"m"}})");
    BOOST_TEST(digits.status == 429);
    BOOST_TEST(digits.code_text == "429");
    auto const not_status = classify(200, R"({"error":{"code":1234567,"message":"m"}})");
    BOOST_TEST(not_status.status == 200);
    BOOST_TEST(not_status.code_text == "1234567");
    auto const boolean = classify(200, R"({"error":{"code":true,"message":{"detail":"nested"}}})");
    BOOST_TEST(boolean.code_text == "true");
    BOOST_TEST(boolean.message == R"({"detail":"nested"})");
    auto const short_digits = classify(200, R"({"error":{"code":"42","message":"m"}})");
    BOOST_TEST(short_digits.status == 200);
    auto const double_code = classify(200, R"({"error":{"code":502.0,"message":"m","metadata":{"provider_code":529}}})");
    BOOST_TEST(double_code.status == 502);
    BOOST_TEST(opt(double_code.provider_code) == "529");
    auto const huge_code = classify(200, R"({"error":{"code":18446744073709551615,"message":"m"}})");
    BOOST_TEST(huge_code.status == 200);
}

BOOST_AUTO_TEST_CASE(classify_without_headers) {
    auto const e = classify(429, R"({"error":{"code":429,"message":"m"}})", parley::net::header_lookup{}, sys_clock::now());
    BOOST_TEST(e.retryable);
    BOOST_TEST(opt_ms(e.retry_after) == -1);
}

BOOST_AUTO_TEST_CASE(an_upstream_error_prints_for_logs) {
    auto const e = classify(503, R"({"error":{"code":503,"message":"busy","metadata":{"error_type":"provider_overloaded"}}})");
    std::ostringstream os;
    os << e;
    BOOST_TEST(os.str() ==
               R"(upstream_error{status=503 code=503 type=provider_overloaded retryable=true mid_stream=false message="busy"})");
    std::ostringstream plain;
    plain << classify(400, "");
    BOOST_TEST(plain.str().find("type=") == std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
