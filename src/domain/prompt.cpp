#include "domain/prompt.hpp"

#include "domain/claude_format.hpp"

#include <boost/json/array.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace parley::domain {

namespace json = boost::json;

namespace {

// ---------------------------------------------------------------- text helpers

constexpr std::size_t max_template_bytes = 64 * 1024;

bool is_control(char c) noexcept {
    auto const u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
}

// Appends `s` with every control character written as a space.
void append_printable(std::string& out, std::string_view s) {
    for (char c : s) {
        out += is_control(c) ? ' ' : c;
    }
}

std::string printable(std::string_view s) {
    std::string out;
    append_printable(out, s);
    return out;
}

bool is_blank(std::string_view s) noexcept { return s.find_first_not_of(" \t") == std::string_view::npos; }

std::string_view trim_right(std::string_view s) noexcept {
    auto const last = s.find_last_not_of(" \t");
    return last == std::string_view::npos ? std::string_view{} : s.substr(0, last + 1);
}

// The lines of a template: split at "\n", a "\r" before it dropped, and a
// final "\n" ends the last line rather than starting an empty one.
std::vector<std::string_view> split_lines(std::string_view text) {
    std::vector<std::string_view> lines;
    while (!text.empty()) {
        auto const end = text.find('\n');
        auto line = text.substr(0, end);
        if (line.ends_with('\r')) {
            line.remove_suffix(1);
        }
        lines.push_back(line);
        if (end == std::string_view::npos) {
            break;
        }
        text.remove_prefix(end + 1);
    }
    return lines;
}

// ---------------------------------------------------------------- placeholders

enum class placeholder { language, user_name, permissions, context, date };

constexpr std::array<std::pair<std::string_view, placeholder>, 5> placeholders{{
    {"language", placeholder::language},
    {"user_name", placeholder::user_name},
    {"permissions", placeholder::permissions},
    {"context", placeholder::context},
    {"date", placeholder::date},
}};

std::optional<placeholder> find_placeholder(std::string_view name) noexcept {
    for (auto const& [text, p] : placeholders) {
        if (text == name) {
            return p;
        }
    }
    return std::nullopt;
}

// One piece of a template line: literal text, or a placeholder.
struct piece {
    std::string text;  // literal text (braces unescaped); empty for a placeholder
    std::optional<placeholder> slot;
};

// Splits one line into pieces; on a syntax error, the reason (without the
// line number).
boost::system::result<std::vector<piece>, std::string> scan_line(std::string_view line) {
    std::vector<piece> pieces;
    std::string literal;
    for (std::size_t i = 0; i < line.size(); ++i) {
        char const c = line[i];
        bool const doubled = i + 1 < line.size() && line[i + 1] == c;
        if (c == '{' && !doubled) {
            auto const close = line.find('}', i + 1);
            if (close == std::string_view::npos) {
                return std::string{R"(unclosed "{" (write "{{" for a literal brace))"};
            }
            auto const name = line.substr(i + 1, close - i - 1);
            auto const slot = find_placeholder(name);
            if (!slot) {
                constexpr std::size_t max_shown = 40;
                std::string shown = printable(name.substr(0, max_shown));
                if (name.size() > max_shown) {
                    shown += "...";
                }
                return "unknown placeholder {" + shown +
                       "} (known: {language}, {user_name}, {permissions}, {context}, {date})";
            }
            if (!literal.empty()) {
                pieces.push_back(piece{std::move(literal), std::nullopt});
                literal.clear();
            }
            pieces.push_back(piece{{}, slot});
            i = close;
        } else if (c == '}' && !doubled) {
            return std::string{R"(stray "}" (write "}}" for a literal brace))"};
        } else {
            literal += c;
            if (c == '{' || c == '}') {
                ++i;  // the second brace of "{{" or "}}"
            }
        }
    }
    if (!literal.empty()) {
        pieces.push_back(piece{std::move(literal), std::nullopt});
    }
    return pieces;
}

std::string join_permissions(std::vector<std::string> const& permissions) {
    std::string out;
    for (auto const& p : permissions) {
        if (p.empty()) {
            continue;
        }
        if (!out.empty()) {
            out += ", ";
        }
        append_printable(out, p);
    }
    return out;
}

// ---------------------------------------------------------------- context

constexpr std::size_t max_expanded_level = 8;

bool is_container(json::value const& v) noexcept { return v.is_object() || v.is_array(); }

void append_scalar(std::string& out, json::value const& v) {
    if (v.is_string()) {
        auto const& s = v.get_string();
        append_printable(out, std::string_view{s.data(), s.size()});
    } else {
        out += serialize_request(v);  // null, booleans, numbers (doubles in shortest form)
    }
}

void start_line(std::string& out, std::size_t level) {
    if (!out.empty()) {
        out += '\n';
    }
    out.append(2 * (level - 1), ' ');
    out += "- ";
}

void append_members(std::string& out, json::object const& o, std::size_t level);
void append_items(std::string& out, json::array const& a, std::size_t level);

// One "- key: value" entry at `level` (the level of the object holding it);
// a container value is level + 1.
void append_entry(std::string& out, std::string_view key, json::value const& v, std::size_t level) {
    start_line(out, level);
    append_printable(out, key);
    out += ':';
    if (!is_container(v)) {
        out += ' ';
        append_scalar(out, v);
    } else if (level + 1 > max_expanded_level) {
        out += ' ';
        out += serialize_request(v);  // compact, control characters escaped
    } else if (v.is_object()) {
        if (v.get_object().empty()) {
            out += " {}";
        } else {
            append_members(out, v.get_object(), level + 1);
        }
    } else {
        auto const& a = v.get_array();
        if (a.empty()) {
            out += " []";
        } else if (std::none_of(a.begin(), a.end(), is_container)) {
            char const* sep = " ";
            for (auto const& e : a) {
                out += sep;
                sep = ", ";
                append_scalar(out, e);
            }
        } else {
            append_items(out, a, level + 1);
        }
    }
}

void append_members(std::string& out, json::object const& o, std::size_t level) {
    for (auto const& [key, v] : o) {
        append_entry(out, std::string_view{key.data(), key.size()}, v, level);
    }
}

void append_items(std::string& out, json::array const& a, std::size_t level) {
    for (std::size_t i = 0; i != a.size(); ++i) {
        append_entry(out, "#" + std::to_string(i + 1), a[i], level);
    }
}

// The longest prefix of `s` of at most `max_bytes` that ends at a UTF-8
// character boundary.
std::string_view utf8_prefix(std::string_view s, std::size_t max_bytes) noexcept {
    if (s.size() <= max_bytes) {
        return s;
    }
    std::size_t end = max_bytes;
    while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) {
        --end;  // s[end] continues a character: cut before that character
    }
    return s.substr(0, end);
}

// ---------------------------------------------------------------- history

constexpr std::size_t tokens_per_message = 4;
constexpr std::size_t bytes_per_token = 4;

std::size_t counted_tokens(message const& m) noexcept {
    return m.r == role::system ? 0 : estimate_tokens(m);
}

}  // namespace

// ------------------------------------------------------------------ templates

boost::system::result<prompt_template, std::string> prompt_template::parse(std::string_view text) {
    if (text.size() > max_template_bytes) {
        return "prompt template is " + std::to_string(text.size()) + " bytes, more than the 64 KiB allowed";
    }
    auto const lines = split_lines(text);
    for (std::size_t i = 0; i != lines.size(); ++i) {
        auto const scanned = scan_line(lines[i]);
        if (!scanned) {
            return "prompt template line " + std::to_string(i + 1) + ": " + scanned.error();
        }
    }
    prompt_template t;
    t.text_ = std::string{text};
    return t;
}

std::string render_system_prompt(prompt_template const& t, prompt_inputs const& in) {
    std::string const values[] = {
        std::string{language_name(in.lang)},
        printable(in.user_name.empty() ? in.user_id : in.user_name),
        join_permissions(in.permissions),
        in.context.empty() ? std::string{} : render_context(in.context),
        in.date,
    };
    auto value_of = [&](placeholder p) -> std::string const& { return values[static_cast<std::size_t>(p)]; };

    enum class kind { text, blank, heading, dropped };
    struct rendered_line {
        std::string text;
        kind k = kind::text;
    };
    std::vector<rendered_line> lines;
    for (auto const line : split_lines(t.text())) {
        auto const pieces = scan_line(line);
        if (!pieces) {
            continue;  // parse() accepted the text, so this cannot happen
        }
        rendered_line out;
        bool has_slot = false;
        bool all_empty = true;
        for (auto const& p : *pieces) {
            if (p.slot) {
                has_slot = true;
                auto const& v = value_of(*p.slot);
                all_empty = all_empty && v.empty();
                out.text += v;
            } else {
                out.text += p.text;
            }
        }
        if (has_slot) {
            out.k = all_empty ? kind::dropped : kind::text;  // rule 1
        } else if (is_blank(out.text)) {
            out.k = kind::blank;
        } else if (trim_right(out.text).ends_with(':')) {
            out.k = kind::heading;
        }
        lines.push_back(std::move(out));
    }

    // Rule 2: a heading over nothing but dropped lines is dropped.
    for (std::size_t i = 0; i != lines.size(); ++i) {
        if (lines[i].k != kind::heading) {
            continue;
        }
        std::size_t j = i + 1;
        while (j != lines.size() && lines[j].k == kind::dropped) {
            ++j;
        }
        if (j > i + 1 && (j == lines.size() || lines[j].k == kind::blank)) {
            lines[i].k = kind::dropped;
        }
    }

    // Rule 3: one empty line for a run of blank lines, none at either end.
    std::string prompt;
    bool blank_pending = false;
    for (auto const& line : lines) {
        if (line.k == kind::dropped) {
            continue;
        }
        if (line.k == kind::blank) {
            blank_pending = !prompt.empty();
            continue;
        }
        if (!prompt.empty()) {
            prompt += blank_pending ? "\n\n" : "\n";
        }
        blank_pending = false;
        prompt += line.text;
    }
    return prompt;
}

// -------------------------------------------------------------------- context

std::string render_context(json::object const& context, std::size_t max_bytes) {
    std::string out;
    append_members(out, context, 1);
    if (out.size() <= max_bytes) {
        return out;
    }
    std::string cut{utf8_prefix(out, max_bytes)};
    cut += "…";
    return cut;
}

// -------------------------------------------------------------------- history

std::size_t estimate_tokens(message const& m) noexcept {
    std::size_t bytes = m.content.size();
    for (auto const& call : m.tool_calls) {
        bytes += call.name.size() + call.arguments.size();
    }
    return (bytes + bytes_per_token - 1) / bytes_per_token + tokens_per_message;
}

std::size_t estimate_tokens(std::vector<message> const& ms) noexcept {
    std::size_t total = 0;
    for (auto const& m : ms) {
        total += estimate_tokens(m);
    }
    return total;
}

std::vector<message> trim_history(std::vector<message> history, std::size_t token_budget) {
    std::size_t total = 0;
    for (auto const& m : history) {
        total += counted_tokens(m);
    }
    if (total <= token_budget) {
        return history;
    }

    // Where the newest turn starts (history.size() when there is no user
    // message: then nothing is a turn and everything may go).
    auto const last_user = std::find_if(history.rbegin(), history.rend(),
                                        [](message const& m) { return m.r == role::user; });
    std::size_t const newest = last_user == history.rend() ? history.size()
                                                           : static_cast<std::size_t>(history.rend() - last_user) - 1;

    // Drop groups (the messages before the first user message, then one turn
    // at a time) from the front; `cut` is where the kept part starts.
    std::size_t cut = 0;
    while (total > token_budget && cut < newest) {
        std::size_t end = cut + 1;  // the group runs to the next user message
        while (end < newest && history[end].r != role::user) {
            ++end;
        }
        for (std::size_t i = cut; i != end; ++i) {
            total -= counted_tokens(history[i]);
        }
        cut = end;
    }

    std::vector<message> kept;
    kept.reserve(history.size());
    for (std::size_t i = 0; i != history.size(); ++i) {
        if (i >= cut || history[i].r == role::system) {
            kept.push_back(std::move(history[i]));
        }
    }
    return kept;
}

}  // namespace parley::domain
