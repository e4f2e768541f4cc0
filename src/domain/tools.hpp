#pragma once
// The tool registry and the checks made before a tool runs (issue #5;
// ARCHITECTURE §5 step 4). Loaded from conf/tools.json:
//
//   {"tools": [
//     {"name": "current_time",
//      "description": "The current date and time (UTC).",
//      "parameters": {"type": "object", "properties": {}},
//      "permission": "",                                   // "" or absent: everyone
//      "handler": {"type": "builtin", "name": "current_time"}},
//     {"name": "weather", "description": "...",
//      "parameters": {"type": "object",
//                     "properties": {"city": {"type": "string"}},
//                     "required": ["city"]},
//      "permission": "weather",
//      "handler": {"type": "http", "url": "http://127.0.0.1:9000/weather",
//                  "timeout_ms": 5000, "max_response_bytes": 65536}}
//   ]}
//
// Comments and trailing commas are allowed, as in parley.json. Each tool
// has the keys shown (only those); "description" and "parameters" may be
// left out ("" and no arguments), and so may "timeout_ms" and
// "max_response_bytes" of an http handler (5000 and 65536).
//
// Handlers: builtin (`current_time`, `my_usage`), http (a POST of
// {"tool","arguments","user"} to the URL) and nats (the same JSON as a NATS
// request on "subject": dot-separated tokens, no wildcards; "timeout_ms"
// and "max_response_bytes" as http's).
//
// Arguments are checked before a call runs: the arguments text must be a
// JSON object ("" is {}); every name in the schema's "required" must be
// present; each present property declared in "properties" must have its
// declared "type" (string, number, integer, boolean, array, object, null,
// or an array of those) and, when the schema lists an "enum", one of its
// values. Undeclared properties are allowed unless
// "additionalProperties" is false. Nested schemas are not checked beyond
// their top-level type.
#include "domain/messages.hpp"

#include <boost/json/object.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::domain {

enum class tool_handler_kind { builtin, http, nats };

struct tool_handler {
    tool_handler_kind kind = tool_handler_kind::builtin;
    std::string builtin;   // builtin: "current_time" or "my_usage"
    std::string url;       // http: http:// or https:// URL, no user info, query or fragment
    std::string subject;   // nats
    std::chrono::milliseconds timeout{5'000};  // 1 ms .. 120 s
    std::size_t max_response_bytes = 64 * 1024;  // 1 .. 16 MiB

    friend bool operator==(tool_handler const&, tool_handler const&) = default;
};

struct tool_definition {
    tool_spec spec;          // name, description, parameters (as offered to the model)
    std::string permission;  // empty: every user may call it
    tool_handler handler;

    friend bool operator==(tool_definition const&, tool_definition const&) = default;
};

// The builtin handler names.
inline constexpr std::string_view builtin_current_time = "current_time";
inline constexpr std::string_view builtin_my_usage = "my_usage";

class tool_registry {
public:
    tool_registry() = default;  // no tools

    // Errors (one line naming the tool): not JSON, no "tools" array, a name
    // not matching [A-Za-z0-9_-]{1,64}, a repeated name, "parameters" not a
    // JSON object or with "type" other than "object", an unknown builtin, an
    // http handler with a bad URL, a timeout or size limit out of range, a
    // nats handler (not available yet), an unknown handler type or key,
    // more than 128 tools, a description over 4096 bytes. Also the parts of
    // "parameters" that check_arguments reads: "properties" not an object of
    // objects, a property "type" that is not a type name or an array of
    // them, an "enum" that is not an array, "required" not an array of
    // strings, "additionalProperties" neither a boolean nor an object.
    //   tools.json: tool 2 ("weather"): handler.timeout_ms must be a whole number from 1 to 120000
    static boost::system::result<tool_registry, std::string> parse(std::string_view json_text);

    std::vector<tool_definition> const& all() const noexcept { return tools_; }
    tool_definition const* find(std::string_view name) const noexcept;

    // The tools a user with `permissions` may call, in file order.
    std::vector<tool_spec> offered(std::vector<std::string> const& permissions) const;
    std::vector<std::string> offered_names(std::vector<std::string> const& permissions) const;

private:
    std::vector<tool_definition> tools_;
};

// True when the tool needs no permission or `permissions` holds it.
bool may_use(tool_definition const& tool, std::vector<std::string> const& permissions) noexcept;

// Parses and checks `arguments` (the model's JSON text) against `schema`
// (see above). On success, the arguments object; on failure, a one-line
// reason meant for the model ("missing required argument 'city'",
// "argument 'days' must be integer", "arguments are not a JSON object").
boost::system::result<boost::json::object, std::string> check_arguments(boost::json::object const& schema,
                                                                         std::string_view arguments);

}  // namespace parley::domain
