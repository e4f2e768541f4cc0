#include "domain/claude_format.hpp"

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <iterator>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace parley::domain {

namespace json = boost::json;

namespace {

constexpr std::string_view separator = "\n\n";

bool is_blank(std::string_view text) noexcept {
    return text.find_first_not_of(" \t\n\r\f\v") == std::string_view::npos;
}

// Writes "name: " in front of a named message's content and forgets the name.
void inline_name(message& m) {
    if (!m.name.empty()) {
        m.content = m.name + ": " + m.content;
        m.name.clear();
    }
}

// Appends the text of `from` to `into` (rule 4), keeping into's calls and
// taking from's calls if it has any.
void merge_into(message& into, message from) {
    if (into.name != from.name) {
        inline_name(into);
        inline_name(from);
    }
    if (!is_blank(from.content)) {
        into.content += separator;
        into.content += from.content;
    }
    if (!from.tool_calls.empty()) {
        into.tool_calls = std::move(from.tool_calls);
    }
}

}  // namespace

std::vector<message> normalize_history(std::vector<message> const& history) {
    // Rule 1: one system prompt.
    message system{role::system, {}, {}, {}, {}};
    // Rule 5: the first result of each call id, wherever it is.
    std::unordered_map<std::string_view, std::string_view> results;
    for (auto const& m : history) {
        if (m.r == role::system && !is_blank(m.content)) {
            if (!system.content.empty()) {
                system.content += separator;
            }
            system.content += m.content;
        } else if (m.r == role::tool) {
            results.try_emplace(m.tool_call_id, m.content);
        }
    }

    std::vector<message> out;
    if (!system.content.empty()) {
        out.push_back(std::move(system));
    }
    std::size_t const first_turn = out.size();
    std::unordered_set<std::string_view> call_ids;  // of calls already kept
    for (auto const& m : history) {
        bool const started = out.size() > first_turn;
        if (m.r == role::user) {
            if (is_blank(m.content)) {
                continue;  // rule 3
            }
            message turn{role::user, m.content, {}, {}, m.name};
            if (started && out.back().r == role::user) {
                merge_into(out.back(), std::move(turn));  // rule 4
            } else {
                out.push_back(std::move(turn));
            }
        } else if (m.r == role::assistant && started) {  // rule 2: nothing before the first user message
            message turn{role::assistant, m.content, {}, {}, m.name};
            for (auto const& call : m.tool_calls) {
                if (call_ids.insert(call.id).second) {
                    turn.tool_calls.push_back(call);
                    if (is_blank(call.arguments)) {
                        turn.tool_calls.back().arguments = "{}";
                    }
                }
            }
            if (turn.tool_calls.empty() && is_blank(turn.content)) {
                continue;  // rule 3
            }
            if (is_blank(turn.content)) {
                turn.content.clear();  // sent as null
            }
            // An assistant message with calls is followed by tool messages,
            // so the previous message is assistant only if it is text.
            if (out.back().r == role::assistant) {
                merge_into(out.back(), std::move(turn));  // rule 4
            } else {
                out.push_back(std::move(turn));
            }
            // Rule 5: the results, in the order of the calls (collected
            // first: appending to `out` while reading its back() would not be safe).
            std::vector<message> answers;
            for (auto const& call : out.back().tool_calls) {
                auto const found = results.find(call.id);
                std::string content = found == results.end() ? std::string{missing_tool_result}
                                      : is_blank(found->second) ? std::string{"{}"}
                                                                : std::string{found->second};
                answers.push_back(message{role::tool, std::move(content), {}, call.id, {}});
            }
            std::move(answers.begin(), answers.end(), std::back_inserter(out));
        }
        // System and tool messages were placed above; a leading assistant is dropped.
    }
    return out;
}

bool is_anthropic_model(std::string_view model) noexcept { return model.starts_with("anthropic/"); }

namespace {

json::object render(message const& m, bool cache_system) {
    json::object o;
    o["role"] = to_string(m.r);
    switch (m.r) {
    case role::system:
        if (cache_system) {
            o["content"] = json::array{json::object{
                {"type", "text"},
                {"text", m.content},
                {"cache_control", json::object{{"type", "ephemeral"}}},
            }};
        } else {
            o["content"] = m.content;
        }
        break;
    case role::tool:
        o["tool_call_id"] = m.tool_call_id;
        o["content"] = m.content;
        break;
    case role::assistant:
        if (m.content.empty()) {
            o["content"] = nullptr;
        } else {
            o["content"] = m.content;
        }
        if (!m.tool_calls.empty()) {
            json::array calls;
            for (auto const& call : m.tool_calls) {
                calls.push_back(json::object{
                    {"id", call.id},
                    {"type", "function"},
                    {"function", json::object{{"name", call.name}, {"arguments", call.arguments}}},
                });
            }
            o["tool_calls"] = std::move(calls);
        }
        break;
    case role::user:
        o["content"] = m.content;
        break;
    }
    if (!m.name.empty() && m.r != role::tool) {
        o["name"] = m.name;
    }
    return o;
}

json::object render(tool_spec const& t) {
    json::object function{{"name", t.name}};
    if (!t.description.empty()) {
        function["description"] = t.description;
    }
    if (t.parameters.empty()) {
        function["parameters"] = json::object{{"type", "object"}, {"properties", json::object{}}};
    } else {
        function["parameters"] = t.parameters;
    }
    return json::object{{"type", "function"}, {"function", std::move(function)}};
}

json::value render(tool_choice_spec const& c) {
    switch (c.k) {
    case tool_choice_spec::kind::none:
        return "none";
    case tool_choice_spec::kind::required:
        return "required";
    case tool_choice_spec::kind::function:
        return json::object{{"type", "function"}, {"function", json::object{{"name", c.function_name}}}};
    case tool_choice_spec::kind::automatic:
        break;
    }
    return "auto";
}

}  // namespace

json::object build_request(std::vector<message> const& history, request_options const& options) {
    json::object body;
    if (!options.model.empty()) {
        body["model"] = options.model;
    }

    json::array models;
    std::unordered_set<std::string_view> listed{options.model};
    for (auto const& fallback : options.fallback_models) {
        if (!is_blank(fallback) && listed.insert(fallback).second) {
            models.emplace_back(fallback);
        }
    }
    if (!models.empty()) {
        if (!options.model.empty()) {
            models.insert(models.begin(), json::value(options.model));
        }
        body["models"] = std::move(models);
    }

    bool const cache_system = is_anthropic_model(options.model);
    json::array messages;
    for (auto const& m : normalize_history(history)) {
        messages.push_back(render(m, cache_system));
    }
    body["messages"] = std::move(messages);

    if (!options.tools.empty()) {
        json::array tools;
        for (auto const& t : options.tools) {
            tools.push_back(render(t));
        }
        body["tools"] = std::move(tools);
        if (options.tool_choice) {
            body["tool_choice"] = render(*options.tool_choice);
        }
    }
    if (options.max_tokens) {
        body["max_tokens"] = *options.max_tokens;
    }
    if (options.temperature) {
        body["temperature"] = std::round(*options.temperature * 1000.0) / 1000.0;
    }
    body["stream"] = options.stream;
    if (!options.user.empty()) {
        body["user"] = options.user;
    }
    if (!options.session_id.empty()) {
        body["session_id"] = options.session_id;
    }
    return body;
}

namespace {

void write_json(std::string& out, json::value const& v) {
    switch (v.kind()) {
    case json::kind::double_: {
        double const d = v.get_double();
        if (!std::isfinite(d)) {
            out += "null";
            break;
        }
        char buf[32];  // shortest round-trip form: at most 24 characters ("-2.2250738585072014e-308")
        char* const end = std::to_chars(buf, buf + sizeof buf, d).ptr;
        out.append(buf, end);
        if (std::string_view{buf, end}.find_first_of(".e") == std::string_view::npos) {
            out += ".0";  // still a double when read back
        }
        break;
    }
    case json::kind::array: {
        out += '[';
        char const* sep = "";
        for (auto const& e : v.get_array()) {
            out += sep;
            sep = ",";
            write_json(out, e);
        }
        out += ']';
        break;
    }
    case json::kind::object: {
        out += '{';
        char const* sep = "";
        for (auto const& [key, e] : v.get_object()) {
            out += sep;
            sep = ",";
            out += json::serialize(json::string_view{key});
            out += ':';
            write_json(out, e);
        }
        out += '}';
        break;
    }
    default:
        out += json::serialize(v);
        break;
    }
}

}  // namespace

std::string serialize_request(json::value const& body) {
    std::string out;
    write_json(out, body);
    return out;
}

}  // namespace parley::domain
