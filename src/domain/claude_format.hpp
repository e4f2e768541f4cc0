#pragma once
// Formatting a conversation for Claude through OpenRouter's chat-completions
// API (ARCHITECTURE §5 step 2; openrouter-api.md §2-§3). Pure.
//
// normalize_history applies the conversation rules on the domain model:
//
//  1. System prompt. Every non-blank system message, in order, joined with
//     "\n\n", becomes one system message at the front (none if there is
//     none). Claude has a single system prompt.
//  2. Start with a user message. Everything before the first non-blank user
//     message is dropped (leading assistant messages, with their tool calls
//     and results): history trimmed to a token budget can start anywhere,
//     and inventing a user turn would put words in the user's mouth.
//  3. No empty content. Blank (empty or whitespace-only) user and assistant
//     text messages are dropped. An assistant message with tool calls keeps
//     its calls; its blank content is sent as `content: null`. A blank tool
//     result is sent as "{}". Blank call arguments are sent as "{}"
//     (non-OpenAI models stream "" for no-argument calls).
//  4. Alternation. Consecutive user messages are merged, and so are
//     consecutive assistant text messages, joined with "\n\n". A text
//     assistant message directly followed by an assistant message with tool
//     calls is merged into the latter (text joined, calls kept). An assistant
//     message with calls is always followed by its results (rule 5), so a
//     later assistant message is never merged into it and calls are never
//     lost. When merged messages carry different `name`s, each named part is
//     prefixed "name: " (what OpenRouter does for non-OpenAI models) and the
//     merged message has no name; equal names are kept.
//  5. Tool results right after their call. Each assistant message with
//     calls is followed by one tool message per call, in the order of the
//     calls, wherever the results were in the history (the first result per
//     call id wins). A call with no result gets the synthetic result
//     {"error":"no result"} so the API never sees an unanswered call. A
//     result whose call id is in no (kept) assistant message is dropped, and
//     so is a call whose id repeats an earlier kept call.
//
// If the history has no non-blank user message, the result holds only the
// system prompt (if any): callers always append the user's message.
//
// build_request renders normalize_history(history) plus the options as an
// OpenRouter chat-completions body, keys in this order:
//   model            when not empty
//   models           [model, fallbacks...] only when there are fallbacks
//                    (blank entries and repeats of `model` or of each other
//                    skipped); `model` is listed first so it is tried first
//                    whether OpenRouter reads `models` alone or after `model`
//   messages         system content: for models "anthropic/..." an array of
//                    one text part with "cache_control":{"type":"ephemeral"}
//                    (the prompt-cache breakpoint), otherwise a plain string;
//                    user {role, content, name?}; assistant {role, content
//                    (string or null), tool_calls?, name?} with calls as
//                    {"id","type":"function","function":{"name","arguments"}};
//                    tool {role, tool_call_id, content}
//   tools            when not empty, {"type":"function","function":{"name",
//                    "description" (when not empty), "parameters" (an empty
//                    schema becomes {"type":"object","properties":{}})}}
//   tool_choice      when set and tools are present: "auto" | "none" |
//                    "required" | {"type":"function","function":{"name"}}
//   max_tokens       when set
//   temperature      when set, rounded to 3 decimals
//   stream           always
//   user, session_id when not empty
// `usage` and `stream_options` are never sent (deprecated; usage always comes).
#include "domain/messages.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace parley::domain {

// The content of the synthetic result of a call that has none.
inline constexpr std::string_view missing_tool_result = R"({"error":"no result"})";

// Rules 1-5 above: the system message (if any) first, then a conversation
// that starts with a user message, alternates, and answers every call.
std::vector<message> normalize_history(std::vector<message> const& history);

// True for OpenRouter model ids of Anthropic models ("anthropic/...").
bool is_anthropic_model(std::string_view model) noexcept;

// The chat-completions body for `history` and `options` (see above).
boost::json::object build_request(std::vector<message> const& history, request_options const& options);

// JSON text of a body, like boost::json::serialize but with doubles written
// the way people write them ("temperature":0.7, where Boost.JSON 1.81 writes
// 7E-1): the shortest text that reads back as the same double, in plain
// decimal notation unless an exponent is shorter (1e-07, 1e+300); integral
// values keep ".0" (1.0) so they read back as doubles. Non-finite doubles
// (not JSON) are written as null.
std::string serialize_request(boost::json::value const& body);

}  // namespace parley::domain
