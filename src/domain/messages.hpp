#pragma once
// The conversation model used across Parley (sessions, the conversation
// store, the OpenRouter client) and the options of one chat-completions
// request. Plain values; claude_format.hpp turns them into a request body.
#include <boost/json/object.hpp>

#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::domain {

enum class role { system, user, assistant, tool };

// "system", "user", "assistant", "tool": the wire names.
std::string_view to_string(role r) noexcept;
// The inverse of to_string (exact, lower case); nullopt for anything else.
std::optional<role> parse_role(std::string_view text) noexcept;
std::ostream& operator<<(std::ostream& os, role r);

// One function call the model asked for.
struct tool_call {
    std::string id;         // the model's call id ("toolu_..."), echoed by the result
    std::string name;       // the tool's name
    std::string arguments;  // JSON text of the arguments object ("" means "{}")

    friend bool operator==(tool_call const&, tool_call const&) = default;
};

struct message {
    role r = role::user;
    std::string content;               // text; may be empty for an assistant message with calls
    std::vector<tool_call> tool_calls; // assistant only
    std::string tool_call_id;          // tool only: the id of the call this answers
    std::string name;                  // optional speaker name; empty = none

    friend bool operator==(message const&, message const&) = default;
};

// A tool the model may call, in OpenAI function shape.
struct tool_spec {
    std::string name;
    std::string description;         // empty: not sent
    boost::json::object parameters;  // JSON schema of the arguments; empty: a no-argument object schema

    friend bool operator==(tool_spec const&, tool_spec const&) = default;
};

// OpenRouter's tool_choice: "auto", "none", "required" or one named function.
struct tool_choice_spec {
    enum class kind { automatic, none, required, function };
    kind k = kind::automatic;
    std::string function_name;  // kind::function only

    friend bool operator==(tool_choice_spec const&, tool_choice_spec const&) = default;
};

// Everything of a chat-completions body except the messages. Unset fields
// are not sent, so OpenRouter (or the provider) applies its default.
struct request_options {
    std::string model;                          // "author/slug"; empty: not sent (account default)
    std::vector<std::string> fallback_models;   // OpenRouter's `models`, tried in order after `model`
    std::optional<int> max_tokens;
    std::optional<double> temperature;          // 0..2; sent rounded to 3 decimals
    bool stream = false;                        // always sent
    std::vector<tool_spec> tools;               // sent on every call when not empty
    std::optional<tool_choice_spec> tool_choice; // sent only together with tools
    std::string user;                           // end-user id; empty: not sent
    std::string session_id;                     // OpenRouter session (sticky routing); empty: not sent

    friend bool operator==(request_options const&, request_options const&) = default;
};

}  // namespace parley::domain
