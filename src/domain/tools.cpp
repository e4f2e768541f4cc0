#include "domain/tools.hpp"

#include "domain/claude_format.hpp"

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/parser.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/scheme.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace parley::domain {

namespace json = boost::json;

namespace {

constexpr std::size_t max_tools = 128;
constexpr std::size_t max_name_bytes = 64;
constexpr std::size_t max_description_bytes = 4096;
constexpr std::int64_t max_timeout_ms = 120'000;
constexpr std::int64_t max_response_limit = 16 * 1024 * 1024;

constexpr std::array<std::string_view, 7> type_names{"string", "number",  "integer", "boolean",
                                                     "array",  "object", "null"};

// ---------------------------------------------------------------- text helpers

std::string_view sv(json::string const& s) noexcept { return {s.data(), s.size()}; }
std::string_view sv(json::string_view s) noexcept { return {s.data(), s.size()}; }

bool is_control(char c) noexcept {
    auto const u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
}

// At most `max_bytes` of `s` (cut at a UTF-8 boundary, "..." added), with
// control characters as spaces: safe inside a one-line message.
std::string shown(std::string_view s, std::size_t max_bytes = 64) {
    bool const cut = s.size() > max_bytes;
    if (cut) {
        std::size_t end = max_bytes;
        while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) {
            --end;
        }
        s = s.substr(0, end);
    }
    std::string out;
    for (char c : s) {
        out += is_control(c) ? ' ' : c;
    }
    if (cut) {
        out += "...";
    }
    return out;
}

std::string quoted(std::string_view s) { return "\"" + shown(s) + "\""; }

bool is_blank(std::string_view s) noexcept { return s.find_first_not_of(" \t\r\n") == std::string_view::npos; }

bool is_tool_name(std::string_view s) noexcept {
    return !s.empty() && s.size() <= max_name_bytes && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
}

bool is_type_name(std::string_view s) noexcept {
    return std::find(type_names.begin(), type_names.end(), s) != type_names.end();
}

// A JSON number with no fractional part, as an int64.
std::optional<std::int64_t> whole_number(json::value const& v) noexcept {
    if (v.is_int64()) {
        return v.get_int64();
    }
    if (v.is_uint64()) {
        if (v.get_uint64() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            return std::nullopt;
        }
        return static_cast<std::int64_t>(v.get_uint64());
    }
    if (v.is_double()) {
        double const d = v.get_double();
        if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) < 9.0e15) {
            return static_cast<std::int64_t>(d);
        }
    }
    return std::nullopt;
}

std::optional<std::string> unknown_key(json::object const& o, std::initializer_list<std::string_view> known,
                                       std::string_view where) {
    for (auto const& [key, v] : o) {
        if (std::find(known.begin(), known.end(), sv(key)) == known.end()) {
            return "unknown key " + quoted(sv(key)) + std::string{where};
        }
    }
    return std::nullopt;
}

// ---------------------------------------------------------------- schemas

bool is_type_spec(json::value const& t) noexcept {
    if (t.is_string()) {
        return is_type_name(sv(t.get_string()));
    }
    if (t.is_array()) {
        auto const& a = t.get_array();
        return !a.empty() && std::all_of(a.begin(), a.end(), [](json::value const& e) {
                   return e.is_string() && is_type_name(sv(e.get_string()));
               });
    }
    return false;
}

// The parts of a tool's "parameters" that check_arguments reads.
std::optional<std::string> check_schema(json::value const& parameters) {
    auto const* p = parameters.if_object();
    auto const* type = p ? p->if_contains("type") : nullptr;
    if (!p || !type || !type->is_string() || type->get_string() != "object") {
        return std::string{R"(parameters must be a JSON object with "type": "object")"};
    }
    if (auto const* properties = p->if_contains("properties")) {
        if (!properties->is_object()) {
            return std::string{"parameters.properties must be an object"};
        }
        for (auto const& [name, schema] : properties->get_object()) {
            std::string const where = "parameters.properties." + shown(sv(name));
            auto const* s = schema.if_object();
            if (!s) {
                return where + " must be an object (a JSON schema)";
            }
            if (auto const* t = s->if_contains("type"); t && !is_type_spec(*t)) {
                return where + ".type must be string, number, integer, boolean, array, object, null or an array of those";
            }
            if (auto const* e = s->if_contains("enum"); e && !e->is_array()) {
                return where + ".enum must be an array";
            }
        }
    }
    if (auto const* required = p->if_contains("required")) {
        auto const* a = required->if_array();
        if (!a || !std::all_of(a->begin(), a->end(), [](json::value const& e) { return e.is_string(); })) {
            return std::string{"parameters.required must be an array of property names"};
        }
    }
    if (auto const* extra = p->if_contains("additionalProperties"); extra && !extra->is_bool() && !extra->is_object()) {
        return std::string{"parameters.additionalProperties must be a boolean or an object"};
    }
    return std::nullopt;
}

bool has_type(json::value const& v, std::string_view type) noexcept {
    if (type == "string") {
        return v.is_string();
    }
    if (type == "number") {
        return v.is_number();
    }
    if (type == "integer") {
        if (v.is_int64() || v.is_uint64()) {
            return true;
        }
        return v.is_double() && std::isfinite(v.get_double()) && std::trunc(v.get_double()) == v.get_double();
    }
    if (type == "boolean") {
        return v.is_bool();
    }
    if (type == "array") {
        return v.is_array();
    }
    if (type == "object") {
        return v.is_object();
    }
    if (type == "null") {
        return v.is_null();
    }
    return true;  // not a type name: not checked (the registry refuses such schemas)
}

// "string", "string or null", "string, number or null".
std::string type_list(std::vector<std::string_view> const& types) {
    std::string out;
    for (std::size_t i = 0; i != types.size(); ++i) {
        if (i != 0) {
            out += i + 1 == types.size() ? " or " : ", ";
        }
        out += types[i];
    }
    return out;
}

// Checks one declared argument against its property schema.
std::optional<std::string> check_argument(std::string_view name, json::value const& v, json::object const& schema) {
    if (auto const* t = schema.if_contains("type")) {
        std::vector<std::string_view> types;
        if (t->is_string()) {
            types.push_back(sv(t->get_string()));
        } else if (t->is_array()) {
            for (auto const& e : t->get_array()) {
                if (e.is_string()) {
                    types.push_back(sv(e.get_string()));
                }
            }
        }
        if (!types.empty() &&
            std::none_of(types.begin(), types.end(), [&](std::string_view type) { return has_type(v, type); })) {
            return "argument '" + shown(name) + "' must be " + type_list(types);
        }
    }
    if (auto const* e = schema.if_contains("enum"); e && e->is_array()) {
        auto const& values = e->get_array();
        if (std::find(values.begin(), values.end(), v) == values.end()) {
            std::string listed;
            for (auto const& option : values) {
                listed += listed.empty() ? "" : ", ";
                listed += serialize_request(option);
            }
            return "argument '" + shown(name) + "' must be one of " + shown(listed, 200);
        }
    }
    return std::nullopt;
}

// ---------------------------------------------------------------- handlers

std::optional<std::string> parse_limit(json::object const& h, std::string_view key, std::int64_t max,
                                       std::int64_t& out) {
    auto const* v = h.if_contains(key);
    if (!v) {
        return std::nullopt;
    }
    auto const n = whole_number(*v);
    if (!n || *n < 1 || *n > max) {
        return "handler." + std::string{key} + " must be a whole number from 1 to " + std::to_string(max);
    }
    out = *n;
    return std::nullopt;
}

std::optional<std::string> check_url(std::string_view text) {
    auto const url = boost::urls::parse_uri(text);
    if (!url) {
        return "handler.url " + quoted(text) + " is not a URL";
    }
    if (url->scheme_id() != boost::urls::scheme::http && url->scheme_id() != boost::urls::scheme::https) {
        return "handler.url " + quoted(text) + " must start with http:// or https://";
    }
    if (!url->has_authority() || url->encoded_host().empty()) {
        return "handler.url " + quoted(text) + " has no host";
    }
    if (url->has_userinfo()) {
        return std::string{"handler.url must not hold user info (user:password@)"};  // not shown: a secret
    }
    if (url->has_query()) {
        return "handler.url " + quoted(text) + " must not have a query (?...)";
    }
    if (url->has_fragment()) {
        return "handler.url " + quoted(text) + " must not have a fragment (#...)";
    }
    return std::nullopt;
}

// A NATS subject to publish to: 1..256 bytes of dot-separated non-empty
// tokens of visible ASCII, without the wildcards * and >.
bool plain_subject(std::string_view s) {
    if (s.empty() || s.size() > 256 || s.front() == '.' || s.back() == '.') {
        return false;
    }
    char prev = 0;
    for (char c : s) {
        if (c <= ' ' || c > '~' || c == '*' || c == '>' || (c == '.' && prev == '.')) {
            return false;
        }
        prev = c;
    }
    return true;
}

// An http or nats handler's timeout_ms and max_response_bytes (each optional).
std::optional<std::string> parse_call_limits(json::object const& h, tool_handler& out) {
    std::int64_t timeout = out.timeout.count();
    if (auto e = parse_limit(h, "timeout_ms", max_timeout_ms, timeout)) {
        return e;
    }
    out.timeout = std::chrono::milliseconds{timeout};
    auto bytes = static_cast<std::int64_t>(out.max_response_bytes);
    if (auto e = parse_limit(h, "max_response_bytes", max_response_limit, bytes)) {
        return e;
    }
    out.max_response_bytes = static_cast<std::size_t>(bytes);
    return std::nullopt;
}

std::optional<std::string> parse_handler(json::value const* value, tool_handler& out) {
    auto const* h = value ? value->if_object() : nullptr;
    auto const* type = h ? h->if_contains("type") : nullptr;
    if (!h || !type || !type->is_string()) {
        return std::string{R"(handler must be an object with a "type": builtin, http or nats)"};
    }
    auto const kind = sv(type->get_string());
    if (kind == "builtin") {
        out.kind = tool_handler_kind::builtin;
        if (auto e = unknown_key(*h, {"type", "name"}, " in the handler (builtin: type, name)")) {
            return e;
        }
        auto const* name = h->if_contains("name");
        if (!name || !name->is_string() ||
            (name->get_string() != builtin_current_time && name->get_string() != builtin_my_usage)) {
            return std::string{"handler.name must be current_time or my_usage"};
        }
        out.builtin = std::string{sv(name->get_string())};
        return std::nullopt;
    }
    if (kind == "http") {
        out.kind = tool_handler_kind::http;
        if (auto e = unknown_key(*h, {"type", "url", "timeout_ms", "max_response_bytes"},
                                 " in the handler (http: type, url, timeout_ms, max_response_bytes)")) {
            return e;
        }
        auto const* url = h->if_contains("url");
        if (!url || !url->is_string()) {
            return std::string{"handler.url must be a string, an http:// or https:// URL"};
        }
        if (auto e = check_url(sv(url->get_string()))) {
            return e;
        }
        out.url = std::string{sv(url->get_string())};
        return parse_call_limits(*h, out);
    }
    if (kind == "nats") {
        out.kind = tool_handler_kind::nats;
        if (auto e = unknown_key(*h, {"type", "subject", "timeout_ms", "max_response_bytes"},
                                 " in the handler (nats: type, subject, timeout_ms, max_response_bytes)")) {
            return e;
        }
        auto const* subject = h->if_contains("subject");
        if (!subject || !subject->is_string() || !plain_subject(sv(subject->get_string()))) {
            return std::string{"handler.subject must be a NATS subject: dot-separated tokens, no spaces or wildcards"};
        }
        out.subject = std::string{sv(subject->get_string())};
        return parse_call_limits(*h, out);
    }
    return "unknown handler type " + quoted(kind) + " (builtin, http or nats)";
}

// One tool; on failure the reason, without the "tool N" prefix.
std::optional<std::string> parse_tool(json::object const& t, tool_definition& out) {
    if (auto e = unknown_key(t, {"name", "description", "parameters", "permission", "handler"}, "")) {
        return e;
    }
    if (auto const* d = t.if_contains("description")) {
        if (!d->is_string()) {
            return std::string{"description must be a string"};
        }
        if (d->get_string().size() > max_description_bytes) {
            return "description is " + std::to_string(d->get_string().size()) +
                   " bytes, more than the 4096 allowed";
        }
        out.spec.description = std::string{sv(d->get_string())};
    }
    if (auto const* p = t.if_contains("parameters")) {
        if (auto e = check_schema(*p)) {
            return e;
        }
        out.spec.parameters = p->get_object();
    }
    if (auto const* p = t.if_contains("permission")) {
        if (!p->is_string()) {
            return std::string{R"(permission must be a string ("" for everyone))"};
        }
        out.permission = std::string{sv(p->get_string())};
    }
    return parse_handler(t.if_contains("handler"), out.handler);
}

}  // namespace

// ------------------------------------------------------------------ registry

boost::system::result<tool_registry, std::string> tool_registry::parse(std::string_view json_text) {
    constexpr std::string_view file = "tools.json: ";
    json::parse_options options;
    options.allow_comments = true;
    options.allow_trailing_commas = true;
    json::parser parser{json::storage_ptr{}, options};
    boost::system::error_code ec;
    auto const consumed = parser.write(json_text.data(), json_text.size(), ec);
    if (ec) {
        auto const before = json_text.substr(0, consumed);
        auto const line = std::count(before.begin(), before.end(), '\n') + 1;
        auto const line_start = before.rfind('\n');
        auto const column = consumed - (line_start == std::string_view::npos ? 0 : line_start + 1) + 1;
        return std::string{file} + "not JSON (line " + std::to_string(line) + ", column " + std::to_string(column) +
               ": " + ec.message() + ")";
    }
    auto const root = parser.release();
    auto const* top = root.if_object();
    auto const* list = top ? top->if_contains("tools") : nullptr;
    if (!list || !list->is_array()) {
        return std::string{file} + R"(expected an object with a "tools" array)";
    }
    if (auto e = unknown_key(*top, {"tools"}, R"( at the top level (only "tools"))")) {
        return std::string{file} + *e;
    }
    auto const& items = list->get_array();
    if (items.size() > max_tools) {
        return std::string{file} + std::to_string(items.size()) + " tools, more than the 128 allowed";
    }

    tool_registry registry;
    for (std::size_t i = 0; i != items.size(); ++i) {
        std::string label = std::string{file} + "tool " + std::to_string(i + 1);
        auto const* t = items[i].if_object();
        if (!t) {
            return label + ": must be an object";
        }
        auto const* name = t->if_contains("name");
        if (!name || !name->is_string() || !is_tool_name(sv(name->get_string()))) {
            return label + ": name must be 1 to 64 characters from A-Z, a-z, 0-9, '_' and '-'";
        }
        tool_definition def;
        def.spec.name = std::string{sv(name->get_string())};
        label += " (\"" + def.spec.name + "\")";
        for (std::size_t j = 0; j != registry.tools_.size(); ++j) {
            if (registry.tools_[j].spec.name == def.spec.name) {
                return label + ": the name is already used by tool " + std::to_string(j + 1);
            }
        }
        if (auto e = parse_tool(*t, def)) {
            return label + ": " + *e;
        }
        registry.tools_.push_back(std::move(def));
    }
    return registry;
}

tool_definition const* tool_registry::find(std::string_view name) const noexcept {
    auto const found =
        std::find_if(tools_.begin(), tools_.end(), [&](tool_definition const& t) { return t.spec.name == name; });
    return found == tools_.end() ? nullptr : &*found;
}

std::vector<tool_spec> tool_registry::offered(std::vector<std::string> const& permissions) const {
    std::vector<tool_spec> out;
    for (auto const& t : tools_) {
        if (may_use(t, permissions)) {
            out.push_back(t.spec);
        }
    }
    return out;
}

std::vector<std::string> tool_registry::offered_names(std::vector<std::string> const& permissions) const {
    std::vector<std::string> out;
    for (auto const& t : tools_) {
        if (may_use(t, permissions)) {
            out.push_back(t.spec.name);
        }
    }
    return out;
}

bool may_use(tool_definition const& tool, std::vector<std::string> const& permissions) noexcept {
    return tool.permission.empty() ||
           std::find(permissions.begin(), permissions.end(), tool.permission) != permissions.end();
}

// ------------------------------------------------------------------ arguments

boost::system::result<json::object, std::string> check_arguments(json::object const& schema,
                                                                 std::string_view arguments) {
    json::object args;
    if (!is_blank(arguments)) {
        boost::system::error_code ec;
        auto parsed = json::parse(arguments, ec);
        if (ec) {
            return std::string{"arguments are not valid JSON"};
        }
        if (!parsed.is_object()) {
            return std::string{"arguments are not a JSON object"};
        }
        args = std::move(parsed.get_object());
    }

    if (auto const* required = schema.if_contains("required"); required && required->is_array()) {
        for (auto const& name : required->get_array()) {
            if (name.is_string() && !args.contains(sv(name.get_string()))) {
                return "missing required argument '" + shown(sv(name.get_string())) + "'";
            }
        }
    }

    auto const* p = schema.if_contains("properties");
    auto const* properties = p ? p->if_object() : nullptr;
    auto const* extra = schema.if_contains("additionalProperties");
    bool const closed = extra && extra->is_bool() && !extra->get_bool();
    for (auto const& [key, value] : args) {
        auto const* declared = properties ? properties->if_contains(key) : nullptr;
        if (!declared) {
            if (closed) {
                return "unknown argument '" + shown(sv(key)) + "'";
            }
            continue;
        }
        if (auto const* property = declared->if_object()) {
            if (auto e = check_argument(sv(key), value, *property)) {
                return *e;
            }
        }
    }
    return args;
}

}  // namespace parley::domain
