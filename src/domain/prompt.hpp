#pragma once
// The system prompt and the history of a turn (ARCHITECTURE §5 step 2).
//
// Templates are per-language text files (conf/prompts/system.es.txt and
// system.en.txt) with placeholders:
//   {language}     the answer language's own name ("español", "English")
//   {user_name}    the user's display name (their id when they have none)
//   {permissions}  the user's permissions, comma-separated
//   {context}      the turn's context object, rendered by render_context
//   {date}         today's date, "YYYY-MM-DD" (UTC)
// "{{" and "}}" are literal braces; any other text outside placeholders is
// kept as written, except for these line rules (a line ends at "\n"; a "\r"
// before it is dropped):
//  1. A line with placeholders that all render empty is left out
//     ("Permisos: {permissions}" for a user with none; "{context}" alone
//     when there is no context).
//  2. A heading, a line without placeholders whose text ends in ":"
//     (trailing blanks aside), is left out when the lines under it, up to
//     the next blank line or the end, are all left out by rule 1 (and there
//     is at least one). So the two lines
//         Contexto de esta conversación:
//         {context}
//     vanish together when there is no context.
//  3. Blank lines (empty or only spaces and tabs) do not pile up: a run of
//     them is written as one empty line, and none starts or ends the prompt.
// The prompt is the kept lines joined by "\n", with no "\n" at the end.
// {context} renders as several lines, so it belongs on a line of its own.
// Control characters in the user's name and permissions become spaces (they
// cannot add lines to the prompt); values are not scanned for placeholders.
//
// History trimming: the history is cut to a token budget by dropping whole
// turns, oldest first. A turn starts at a user message and runs to the next
// one, so an assistant message's tool calls and their results are dropped
// together (a result never survives without its call). The system prompt is
// not part of the history (it is built fresh every call), and the newest
// turn is always kept, even when it alone is over the budget.
#include "domain/i18n.hpp"
#include "domain/messages.hpp"

#include <boost/json/object.hpp>
#include <boost/system/result.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace parley::domain {

class prompt_template {
public:
    // Errors (one line): an unknown placeholder ("{nme}"), an unclosed "{",
    // a stray "}", more than 64 KiB of text.
    static boost::system::result<prompt_template, std::string> parse(std::string_view text);

    std::string const& text() const noexcept { return text_; }

private:
    std::string text_;
};

struct prompt_templates {
    prompt_template es;
    prompt_template en;
    prompt_template const& of(language l) const noexcept { return l == language::es ? es : en; }
};

struct prompt_inputs {
    language lang = language::es;
    std::string user_name;                 // empty: the user id is used
    std::string user_id;
    std::vector<std::string> permissions;
    boost::json::object context;           // the turn's context; empty: none
    std::string date;                      // "YYYY-MM-DD"
};

std::string render_system_prompt(prompt_template const& t, prompt_inputs const& in);

// A context object for a person to read, one "- key: value" line per
// member in the object's order, nested objects indented by two spaces under
// their key, arrays of scalars as comma-separated values, arrays of objects
// as nested items (an array holding an object or an array is written like an
// object whose keys are "#1", "#2", ...), strings without quotes, null as
// "null" / numbers and booleans as JSON writes them (doubles in their
// shortest form, as serialize_request does), empty objects and arrays as
// "{}" and "[]". Control characters in keys and values become spaces.
// Nesting deeper than 8 levels (the context object is level 1) is written
// as compact JSON. Lines are joined by "\n", with no "\n" at the end; an
// empty object renders as "". A result longer than `max_bytes` is cut to at
// most `max_bytes` bytes (at a UTF-8 boundary) and "…" is added after it.
//
//   {"plan": "pro", "account": {"id": 7, "tags": ["a", "b"]},
//    "orders": [{"id": 1}, {"id": 2}]}
//   - plan: pro
//   - account:
//     - id: 7
//     - tags: a, b
//   - orders:
//     - #1:
//       - id: 1
//     - #2:
//       - id: 2
std::string render_context(boost::json::object const& context, std::size_t max_bytes = 8192);

// The token estimate used for trimming: one token per 4 bytes of text (the
// content, and the name and arguments of each tool call), rounded up, plus
// 4 per message for the role and framing.
std::size_t estimate_tokens(message const& m) noexcept;
std::size_t estimate_tokens(std::vector<message> const& ms) noexcept;

// Drops whole turns, oldest first, until estimate_tokens(history) <=
// token_budget or only the newest turn is left; a history within the budget
// is returned as it is. Messages before the first user message (there
// should be none) are dropped first, as if they were a turn (they are not
// the newest turn, so a history with no user message can lose them all).
// System messages in `history` are kept where they are and not counted.
std::vector<message> trim_history(std::vector<message> history, std::size_t token_budget);

}  // namespace parley::domain
