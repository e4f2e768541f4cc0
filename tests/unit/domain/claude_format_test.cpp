#include "domain/claude_format.hpp"
#include "domain/messages.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/test/unit_test.hpp>

#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace json = boost::json;
using namespace parley::domain;

namespace {

message user(std::string text, std::string name = {}) {
    return message{role::user, std::move(text), {}, {}, std::move(name)};
}
message assistant(std::string text, std::vector<tool_call> calls = {}, std::string name = {}) {
    return message{role::assistant, std::move(text), std::move(calls), {}, std::move(name)};
}
message system_msg(std::string text) { return message{role::system, std::move(text), {}, {}, {}}; }
message tool(std::string call_id, std::string content) {
    return message{role::tool, std::move(content), {}, std::move(call_id), {}};
}
tool_call call(std::string id, std::string name = "weather", std::string arguments = R"({"city":"Lima"})") {
    return tool_call{std::move(id), std::move(name), std::move(arguments)};
}

// The rendered "messages" array of a request for `history`.
json::value messages_of(std::vector<message> const& history, std::string model = "openai/gpt-4o") {
    request_options options;
    options.model = std::move(model);
    return build_request(history, options).at("messages");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(claude_format_suite)

// ---- the message model ------------------------------------------------------

BOOST_AUTO_TEST_CASE(role_names_round_trip) {
    for (role r : {role::system, role::user, role::assistant, role::tool}) {
        BOOST_TEST((parse_role(to_string(r)) == r));
        std::ostringstream os;
        os << r;
        BOOST_TEST(os.str() == to_string(r));
    }
    BOOST_TEST(to_string(role::assistant) == "assistant");
    BOOST_TEST(!parse_role("Assistant").has_value());
    BOOST_TEST(!parse_role("developer").has_value());
    BOOST_TEST(!parse_role("").has_value());
    BOOST_TEST(to_string(static_cast<role>(42)) == "unknown");
}

// ---- rule 1: one system prompt ----------------------------------------------

BOOST_AUTO_TEST_CASE(system_messages_are_joined_into_one_at_the_front) {
    auto const out = normalize_history({user("hi"), system_msg("You are Parley."), system_msg("   "),
                                        assistant("hello"), system_msg("Today is Monday.")});
    std::vector<message> const expected{system_msg("You are Parley.\n\nToday is Monday."), user("hi"),
                                        assistant("hello")};
    BOOST_TEST((out == expected));
}

BOOST_AUTO_TEST_CASE(no_system_message_when_all_are_blank) {
    auto const out = normalize_history({system_msg(""), system_msg("\n\t "), user("hi")});
    BOOST_TEST((out == std::vector<message>{user("hi")}));
}

// ---- rule 2: start with a user message --------------------------------------

BOOST_AUTO_TEST_CASE(leading_assistant_messages_are_dropped_with_their_calls_and_results) {
    auto const out = normalize_history({system_msg("sys"), assistant("¡Hola! ¿En qué te ayudo?"),
                                        assistant("", {call("c0")}), tool("c0", "sunny"), user("hi"),
                                        assistant("hello")});
    std::vector<message> const expected{system_msg("sys"), user("hi"), assistant("hello")};
    BOOST_TEST((out == expected));
}

BOOST_AUTO_TEST_CASE(history_without_a_user_message_keeps_only_the_system_prompt) {
    BOOST_TEST((normalize_history({system_msg("sys"), assistant("hello"), user("  ")}) ==
                std::vector<message>{system_msg("sys")}));
    BOOST_TEST(normalize_history({}).empty());
}

// ---- rule 3: no empty content -----------------------------------------------

BOOST_AUTO_TEST_CASE(blank_text_messages_are_dropped) {
    auto const out = normalize_history({user("one"), assistant(" \n "), user(""), user("two"), assistant("ok"),
                                        assistant("\t"), user("three")});
    std::vector<message> const expected{user("one\n\ntwo"), assistant("ok"), user("three")};
    BOOST_TEST((out == expected));
}

BOOST_AUTO_TEST_CASE(assistant_with_calls_keeps_them_and_blank_content_becomes_null) {
    auto const out = normalize_history({user("weather?"), assistant("  ", {call("c1")}), tool("c1", "sunny")});
    std::vector<message> const expected{user("weather?"), assistant("", {call("c1")}), tool("c1", "sunny")};
    BOOST_TEST((out == expected));

    auto const rendered = messages_of({user("weather?"), assistant("  ", {call("c1")}), tool("c1", "sunny")});
    BOOST_TEST(rendered.at(1) == json::parse(R"({"role":"assistant","content":null,"tool_calls":[
        {"id":"c1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Lima\"}"}}]})"));
}

BOOST_AUTO_TEST_CASE(blank_tool_result_and_blank_arguments_become_an_empty_object) {
    auto const out =
        normalize_history({user("time?"), assistant("", {call("c1", "clock", "")}), tool("c1", " ")});
    std::vector<message> const expected{user("time?"), assistant("", {call("c1", "clock", "{}")}),
                                        tool("c1", "{}")};
    BOOST_TEST((out == expected));
}

// ---- rule 4: alternation ----------------------------------------------------

BOOST_AUTO_TEST_CASE(consecutive_user_messages_are_merged) {
    auto const out = normalize_history({user("first"), user("second"), user("third")});
    BOOST_TEST((out == std::vector<message>{user("first\n\nsecond\n\nthird")}));
}

BOOST_AUTO_TEST_CASE(consecutive_assistant_text_messages_are_merged) {
    auto const out = normalize_history({user("q"), assistant("part one"), assistant("part two")});
    BOOST_TEST((out == std::vector<message>{user("q"), assistant("part one\n\npart two")}));
}

BOOST_AUTO_TEST_CASE(assistant_text_is_merged_into_a_following_message_with_calls) {
    auto const out = normalize_history(
        {user("q"), assistant("Let me check."), assistant("Checking now.", {call("c1")}), tool("c1", "sunny")});
    std::vector<message> const expected{user("q"), assistant("Let me check.\n\nChecking now.", {call("c1")}),
                                        tool("c1", "sunny")};
    BOOST_TEST((out == expected));

    auto const blank = normalize_history({user("q"), assistant("Let me check."), assistant("", {call("c1")}),
                                          tool("c1", "sunny")});
    BOOST_TEST((blank[1] == assistant("Let me check.", {call("c1")})));
}

BOOST_AUTO_TEST_CASE(assistant_text_after_calls_stays_after_the_results_and_calls_are_kept) {
    auto const out = normalize_history({user("q"), assistant("", {call("c1")}), assistant("It is sunny."),
                                        tool("c1", "sunny"), assistant("Anything else?")});
    std::vector<message> const expected{user("q"), assistant("", {call("c1")}), tool("c1", "sunny"),
                                        assistant("It is sunny.\n\nAnything else?")};
    BOOST_TEST((out == expected));
}

BOOST_AUTO_TEST_CASE(merged_messages_keep_an_equal_name_and_inline_different_ones) {
    auto const same = normalize_history({user("a", "ana"), user("b", "ana")});
    BOOST_TEST((same == std::vector<message>{user("a\n\nb", "ana")}));

    auto const different = normalize_history({user("a", "ana"), user("b", "bob"), user("c"), user("d", "ana")});
    BOOST_TEST((different == std::vector<message>{user("ana: a\n\nbob: b\n\nc\n\nana: d")}));
}

// ---- rule 5: tool results right after their call ----------------------------

BOOST_AUTO_TEST_CASE(tool_results_follow_their_call_in_the_order_of_the_calls) {
    auto const out =
        normalize_history({user("q"), tool("c2", "r2"), assistant("", {call("c1"), call("c2"), call("c3")}),
                           user("still there?"), tool("c3", "r3"), tool("c1", "r1")});
    std::vector<message> const expected{user("q"),
                                        assistant("", {call("c1"), call("c2"), call("c3")}),
                                        tool("c1", "r1"),
                                        tool("c2", "r2"),
                                        tool("c3", "r3"),
                                        user("still there?")};
    BOOST_TEST((out == expected));
}

BOOST_AUTO_TEST_CASE(a_call_without_a_result_gets_a_synthetic_error_result) {
    auto const out = normalize_history({user("q"), assistant("", {call("c1"), call("c2")}), tool("c2", "r2")});
    std::vector<message> const expected{user("q"), assistant("", {call("c1"), call("c2")}),
                                        tool("c1", R"({"error":"no result"})"), tool("c2", "r2")};
    BOOST_TEST((out == expected));
    BOOST_TEST(missing_tool_result == R"({"error":"no result"})");
}

BOOST_AUTO_TEST_CASE(a_result_whose_call_is_nowhere_is_dropped) {
    auto const out = normalize_history({user("q"), tool("ghost", "boo"), assistant("a")});
    BOOST_TEST((out == std::vector<message>{user("q"), assistant("a")}));
}

BOOST_AUTO_TEST_CASE(first_result_wins_and_repeated_call_ids_are_dropped) {
    auto const out = normalize_history({user("q"), assistant("", {call("c1"), call("c1")}), tool("c1", "first"),
                                        tool("c1", "second"), user("again"), assistant("", {call("c1")})});
    std::vector<message> const expected{user("q"), assistant("", {call("c1")}), tool("c1", "first"),
                                        user("again")};
    BOOST_TEST((out == expected));
}

BOOST_AUTO_TEST_CASE(many_calls_in_one_message_all_get_their_results) {
    std::vector<tool_call> calls;
    std::vector<message> history{user("q"), assistant("", {})};
    std::vector<message> expected{user("q"), assistant("", {})};
    for (int i = 0; i != 50; ++i) {
        calls.push_back(call("c" + std::to_string(i)));
        expected.push_back(tool("c" + std::to_string(i), "r" + std::to_string(i)));
    }
    for (int i = 49; i >= 0; --i) {
        history.push_back(tool("c" + std::to_string(i), "r" + std::to_string(i)));
    }
    history[1].tool_calls = calls;
    expected[1].tool_calls = calls;
    BOOST_TEST((normalize_history(history) == expected));
}

BOOST_AUTO_TEST_CASE(successive_tool_rounds_alternate) {
    auto const out = normalize_history({user("q"), assistant("", {call("c1")}), tool("c1", "r1"),
                                        assistant("", {call("c2")}), tool("c2", "r2"), assistant("done")});
    std::vector<message> const expected{user("q"),
                                        assistant("", {call("c1")}),
                                        tool("c1", "r1"),
                                        assistant("", {call("c2")}),
                                        tool("c2", "r2"),
                                        assistant("done")};
    BOOST_TEST((out == expected));
}

// ---- rendering: messages ----------------------------------------------------

BOOST_AUTO_TEST_CASE(anthropic_models_get_a_cache_breakpoint_on_the_system_prompt) {
    BOOST_TEST(is_anthropic_model("anthropic/claude-3.5-sonnet"));
    BOOST_TEST(!is_anthropic_model("openai/gpt-4o"));
    BOOST_TEST(!is_anthropic_model("anthropic"));
    BOOST_TEST(!is_anthropic_model(""));

    auto const cached = messages_of({system_msg("You are Parley."), user("hi")}, "anthropic/claude-3.5-sonnet");
    BOOST_TEST(cached.at(0) == json::parse(R"({"role":"system","content":[
        {"type":"text","text":"You are Parley.","cache_control":{"type":"ephemeral"}}]})"));
}

BOOST_AUTO_TEST_CASE(other_models_get_the_system_prompt_as_a_plain_string) {
    for (char const* model : {"openai/gpt-4o", ""}) {
        BOOST_TEST_CONTEXT("model " << model) {
            auto const plain = messages_of({system_msg("You are Parley."), user("hi")}, model);
            BOOST_TEST(plain.at(0) == json::parse(R"({"role":"system","content":"You are Parley."})"));
        }
    }
}

BOOST_AUTO_TEST_CASE(messages_render_in_openai_shape) {
    auto const rendered = messages_of({user("weather in Lima?", "ana"), assistant("Checking.", {call("c1")}, "bot"),
                                       tool("c1", R"({"temp":21})"), assistant("21 °C.")});
    BOOST_TEST(rendered == json::parse(R"([
        {"role":"user","content":"weather in Lima?","name":"ana"},
        {"role":"assistant","content":"Checking.","name":"bot","tool_calls":[
            {"id":"c1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Lima\"}"}}]},
        {"role":"tool","tool_call_id":"c1","content":"{\"temp\":21}"},
        {"role":"assistant","content":"21 °C."}])"));
}

// ---- rendering: options -----------------------------------------------------

BOOST_AUTO_TEST_CASE(minimal_options_send_only_messages_and_stream) {
    auto const body = build_request({user("hi")}, request_options{});
    BOOST_TEST(json::value(body) == json::parse(R"({"messages":[{"role":"user","content":"hi"}],"stream":false})"));
}

BOOST_AUTO_TEST_CASE(options_are_sent_as_given_and_usage_never) {
    request_options options;
    options.model = "anthropic/claude-3.5-sonnet";
    options.max_tokens = 4096;
    options.temperature = 0.7;
    options.stream = true;
    options.user = "u-42";
    options.session_id = "s-7";
    auto const body = build_request({user("hi")}, options);
    BOOST_TEST(body.at("model") == "anthropic/claude-3.5-sonnet");
    BOOST_TEST(body.at("max_tokens") == 4096);
    BOOST_TEST(body.at("temperature") == 0.7);
    BOOST_TEST(body.at("stream") == true);
    BOOST_TEST(body.at("user") == "u-42");
    BOOST_TEST(body.at("session_id") == "s-7");
    BOOST_TEST(!body.contains("models"));
    BOOST_TEST(!body.contains("tools"));
    BOOST_TEST(!body.contains("usage"));
    BOOST_TEST(!body.contains("stream_options"));
}

BOOST_AUTO_TEST_CASE(temperature_is_rounded_to_three_decimals) {
    request_options options;
    for (auto [given, sent] : {std::pair{0.1 + 0.2, 0.3}, std::pair{0.69999999, 0.7}, std::pair{1.23456, 1.235},
                               std::pair{0.0, 0.0}, std::pair{2.0, 2.0}}) {
        options.temperature = given;
        BOOST_TEST(build_request({user("hi")}, options).at("temperature").as_double() == sent);
    }
}

BOOST_AUTO_TEST_CASE(fallback_models_are_sent_after_the_primary_only_when_present) {
    request_options options;
    options.model = "anthropic/claude-3.5-sonnet";
    BOOST_TEST(!build_request({user("hi")}, options).contains("models"));

    options.fallback_models = {"", "anthropic/claude-3.5-sonnet", " "};
    BOOST_TEST(!build_request({user("hi")}, options).contains("models"));

    options.fallback_models = {"openai/gpt-4o", "anthropic/claude-3.5-sonnet", "", "google/gemini-pro",
                               "openai/gpt-4o"};
    BOOST_TEST(build_request({user("hi")}, options).at("models") ==
               json::parse(R"(["anthropic/claude-3.5-sonnet","openai/gpt-4o","google/gemini-pro"])"));

    options.model.clear();
    auto const body = build_request({user("hi")}, options);
    BOOST_TEST(!body.contains("model"));
    BOOST_TEST(body.at("models") ==
               json::parse(R"(["openai/gpt-4o","anthropic/claude-3.5-sonnet","google/gemini-pro"])"));
}

BOOST_AUTO_TEST_CASE(tools_are_sent_in_function_shape) {
    request_options options;
    options.tools = {
        tool_spec{"weather", "Current weather in a city",
                  json::parse(R"({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]})")
                      .as_object()},
        tool_spec{"clock", "", {}},
    };
    BOOST_TEST(build_request({user("hi")}, options).at("tools") == json::parse(R"([
        {"type":"function","function":{"name":"weather","description":"Current weather in a city",
            "parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}},
        {"type":"function","function":{"name":"clock","parameters":{"type":"object","properties":{}}}}])"));
}

BOOST_AUTO_TEST_CASE(tool_choice_is_sent_only_with_tools) {
    request_options options;
    options.tool_choice = tool_choice_spec{tool_choice_spec::kind::required, {}};
    BOOST_TEST(!build_request({user("hi")}, options).contains("tool_choice"));

    options.tools = {tool_spec{"clock", "", {}}};
    struct {
        tool_choice_spec choice;
        char const* json;
    } const cases[] = {
        {{tool_choice_spec::kind::automatic, {}}, R"("auto")"},
        {{tool_choice_spec::kind::none, {}}, R"("none")"},
        {{tool_choice_spec::kind::required, {}}, R"("required")"},
        {{tool_choice_spec::kind::function, "clock"}, R"({"type":"function","function":{"name":"clock"}})"},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT("tool_choice " << c.json) {
            options.tool_choice = c.choice;
            BOOST_TEST(build_request({user("hi")}, options).at("tool_choice") == json::parse(c.json));
        }
    }
    options.tool_choice.reset();
    BOOST_TEST(!build_request({user("hi")}, options).contains("tool_choice"));
}

// ---- serialization ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(whole_request_serializes_in_order_with_decimal_temperature) {
    request_options options;
    options.model = "anthropic/claude-3.5-sonnet";
    options.fallback_models = {"openai/gpt-4o"};
    options.max_tokens = 4096;
    options.temperature = 0.7;
    options.stream = true;
    options.tools = {tool_spec{"clock", "Current time", {}}};
    options.tool_choice = tool_choice_spec{};
    options.user = "u-42";
    options.session_id = "s-7";
    auto const text = serialize_request(build_request({system_msg("Sé breve."), user("¿Hora?")}, options));
    BOOST_TEST(text ==
               R"({"model":"anthropic/claude-3.5-sonnet","models":["anthropic/claude-3.5-sonnet","openai/gpt-4o"],)"
               R"("messages":[{"role":"system","content":[{"type":"text","text":"Sé breve.",)"
               R"("cache_control":{"type":"ephemeral"}}]},{"role":"user","content":"¿Hora?"}],)"
               R"("tools":[{"type":"function","function":{"name":"clock","description":"Current time",)"
               R"("parameters":{"type":"object","properties":{}}}}],"tool_choice":"auto",)"
               R"("max_tokens":4096,"temperature":0.7,"stream":true,"user":"u-42","session_id":"s-7"})");
    BOOST_TEST(json::parse(text) == json::value(build_request({system_msg("Sé breve."), user("¿Hora?")}, options)));
}

BOOST_AUTO_TEST_CASE(serialize_writes_doubles_in_plain_decimal_notation) {
    json::value const v = json::parse(R"({"a":[0.7,1.0,-2.5,0.001,1e-7,123456789012.5,1e300,0,-0.0],
                                          "b":"x\"y\n","c":null,"d":true,"e":-3,"f":{},"g":[]})");
    auto const text = serialize_request(v);
    BOOST_TEST(text == R"({"a":[0.7,1.0,-2.5,0.001,1e-07,123456789012.5,1e+300,0,-0.0],)"
                       R"("b":"x\"y\n","c":null,"d":true,"e":-3,"f":{},"g":[]})");
    BOOST_TEST(json::parse(text) == v);  // same values, same kinds

    json::array const odd{std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN(),
                          std::numeric_limits<double>::max()};
    BOOST_TEST(serialize_request(odd) == "[null,null,1.7976931348623157e+308]");
}

BOOST_AUTO_TEST_SUITE_END()
