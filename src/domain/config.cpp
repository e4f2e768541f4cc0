#include "domain/config.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/parser.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/throw_exception.hpp>
#include <boost/url/ipv4_address.hpp>
#include <boost/url/ipv6_address.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <concepts>
#include <cstdio>
#include <numeric>
#include <type_traits>

namespace parley::domain {

namespace json = boost::json;

std::string setting_error::message() const {
    std::string out = setting.empty() ? "invalid configuration file" : "invalid setting " + setting;
    if (!value.empty()) {
        out += setting.empty() ? " at " : "=";
        out += value;
    }
    out += ": expected ";
    out += allowed;
    return out;
}

void throw_exception_from_error(setting_error const& e, boost::source_location const& loc) {
    boost::throw_exception(setting_exception{e}, loc);
}

namespace {

// ---------------------------------------------------------------- text helpers

std::string_view sv(json::string const& s) { return {s.data(), s.size()}; }
std::string_view sv(json::string_view s) { return {s.data(), s.size()}; }

constexpr std::size_t max_shown = 120;

std::string_view trim(std::string_view s) {
    auto const first = s.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) {
        return {};
    }
    return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

bool is_control(char c) {
    auto const u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
}

bool has_control(std::string_view s) { return std::any_of(s.begin(), s.end(), is_control); }

// Printable ASCII without spaces: tokens, keys, subjects.
bool is_token(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool all_digits(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_digit); }

bool starts_with_ci(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() &&
           std::equal(prefix.begin(), prefix.end(), s.begin(), [](char a, char b) {
               return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
           });
}

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    for (;;) {
        auto const at = s.find(sep);
        out.push_back(s.substr(0, at));
        if (at == std::string_view::npos) {
            return out;
        }
        s.remove_prefix(at + 1);
    }
}

// One line, whatever the value holds: control bytes escaped, long values cut.
std::string printable(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, max_shown)) {
        if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (is_control(c)) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(static_cast<unsigned char>(c)));
            out += buf;
        } else {
            out += c;
        }
    }
    if (s.size() > max_shown) {
        out += "...";
    }
    return out;
}

// Masks credentials in one URL: "scheme://user:pass@host" keeps the user,
// "nats://token@host" (token authentication) hides the token, and a
// "password=" query parameter (libpq) hides its value.
std::string redact_one_url(std::string_view url) {
    std::string out{url};
    auto const scheme_end = out.find("://");
    if (scheme_end == std::string::npos) {
        return out;
    }
    auto const start = scheme_end + 3;
    auto const end = std::min(out.find_first_of("/?#", start), out.size());
    auto const at = out.rfind('@', end == 0 ? 0 : end - 1);
    if (at != std::string::npos && at >= start) {
        auto const colon = out.find(':', start);
        if (colon < at) {
            out.replace(colon + 1, at - colon - 1, "(redacted)");
        } else if (starts_with_ci(out, "nats://") || starts_with_ci(out, "tls://")) {
            out.replace(start, at - start, "(redacted)");
        }
    }
    for (auto pos = out.find('?'); pos != std::string::npos; pos = out.find('&', pos)) {
        ++pos;
        if (starts_with_ci(std::string_view{out}.substr(pos), "password=")) {
            auto const value = pos + 9;
            out.replace(value, std::min(out.find('&', value), out.size()) - value, "(redacted)");
        }
    }
    return out;
}

// URL lists ("nats://a,nats://b") and multi-host libpq URLs both split on ','.
std::string redact_urls(std::string_view text) {
    std::string out;
    auto const parts = split(text, ',');
    for (std::size_t i = 0; i != parts.size(); ++i) {
        out += i == 0 ? "" : ",";
        out += redact_one_url(parts[i]);
    }
    return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    std::iota(row.begin(), row.end(), std::size_t{0});
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t const above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

std::string_view last_segment(std::string_view path) {
    auto const dot = path.rfind('.');
    return dot == std::string_view::npos ? path : path.substr(dot + 1);
}

// The candidate an operator most likely meant: the same last segment under
// another section, else the nearest by edit distance if it is near enough.
std::optional<std::string> suggest(std::string_view name, std::vector<std::string> const& candidates) {
    for (auto const& c : candidates) {
        if (last_segment(c) == last_segment(name)) {
            return c;
        }
    }
    std::optional<std::string> best;
    std::size_t best_distance = std::max<std::size_t>(2, name.size() / 4) + 1;
    for (auto const& c : candidates) {
        if (auto const d = edit_distance(name, c); d < best_distance) {
            best = c;
            best_distance = d;
        }
    }
    return best;
}

// ---------------------------------------------------------------- validators

bool valid_listen_host(std::string_view host) {
    return host == "localhost" || boost::urls::parse_ipv4_address(host).has_value();
}

std::optional<host_port> parse_host_port(std::string_view text) {
    host_port out;
    std::string_view port;
    if (text.starts_with('[')) {
        auto const close = text.find("]:");
        if (close == std::string_view::npos || !boost::urls::parse_ipv6_address(text.substr(1, close - 1))) {
            return std::nullopt;
        }
        out.host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        auto const colon = text.rfind(':');
        if (colon == std::string_view::npos || !valid_listen_host(text.substr(0, colon))) {
            return std::nullopt;
        }
        out.host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    unsigned value = 0;
    if (!all_digits(port) || port.size() > 5 ||
        std::from_chars(port.data(), port.data() + port.size(), value).ec != std::errc{} || value > 65535) {
        return std::nullopt;
    }
    out.port = static_cast<std::uint16_t>(value);
    return out;
}

std::string show_host_port(host_port const& hp) {
    bool const v6 = hp.host.find(':') != std::string::npos;
    return (v6 ? "[" + hp.host + "]" : hp.host) + ":" + std::to_string(hp.port);
}

bool is_http_url(std::string_view text) {
    auto const url = boost::urls::parse_absolute_uri(text);
    return url && (url->scheme_id() == boost::urls::scheme::http || url->scheme_id() == boost::urls::scheme::https) &&
           url->has_authority() && !url->encoded_host().empty();
}

// An http(s) URL whose host is this machine (127.0.0.0/8, localhost, ::1).
bool is_loopback_url(std::string_view text) {
    auto const url = boost::urls::parse_absolute_uri(text);
    if (!url || !is_http_url(text)) {
        return false;
    }
    auto const host = std::string{url->encoded_host()};
    return host == "localhost" || host.starts_with("127.") || url->encoded_host_address() == "::1";
}

// An http(s) URL, stored without trailing slashes so callers can append
// "/chat/completions".
std::optional<std::string> base_url(std::string_view text) {
    if (!is_http_url(text)) {
        return std::nullopt;
    }
    auto const path_start = text.find('/', text.find("://") + 3);
    while (path_start != std::string_view::npos && text.size() > path_start && text.ends_with('/')) {
        text.remove_suffix(1);
    }
    return std::string{text};
}

bool is_model_part(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
    });
}

// OpenRouter model ids: "author/slug" with an optional ":variant"; an author
// may start with '~' (OpenRouter's "latest" aliases).
bool is_model_id(std::string_view id) {
    auto const slash = id.find('/');
    if (slash == std::string_view::npos || id.size() > 200) {
        return false;
    }
    auto author = id.substr(0, slash);
    if (author.starts_with('~')) {
        author.remove_prefix(1);
    }
    auto const rest = id.substr(slash + 1);
    auto const colon = rest.find(':');
    return is_model_part(author) && is_model_part(rest.substr(0, colon)) &&
           (colon == std::string_view::npos || is_model_part(rest.substr(colon + 1)));
}

std::optional<std::string> database_url(std::string_view text) {
    bool const ok = (text.starts_with("sqlite:") && text.size() > 7 && !has_control(text)) ||
                    ((text.starts_with("postgresql://") || text.starts_with("postgres://")) && is_token(text));
    return ok ? std::optional<std::string>{text} : std::nullopt;
}

std::optional<std::string> nats_urls(std::string_view text) {
    for (auto part : split(text, ',')) {
        part = trim(part);
        auto const rest = part.starts_with("nats://") ? part.substr(7)
                          : part.starts_with("tls://") ? part.substr(6)
                                                       : std::string_view{};
        if (!is_token(rest)) {
            return std::nullopt;
        }
    }
    return std::string{text};
}

std::optional<std::string> nats_subject(std::string_view text) {
    auto const tokens = split(text, '.');
    bool const ok = std::all_of(tokens.begin(), tokens.end(), is_token);
    return ok ? std::optional<std::string>{text} : std::nullopt;
}

std::optional<std::string> sha256_hex(std::string_view text) {
    if (text.size() != 64 || !std::all_of(text.begin(), text.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); })) {
        return std::nullopt;
    }
    std::string out{text};
    std::transform(out.begin(), out.end(), out.begin(), [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
    return out;
}

// ---------------------------------------------------------------- kinds

// How one type of value is read from text (environment, flags) and from
// JSON, and shown. `from_json` sets wrong_type when the JSON type itself is
// wrong (as opposed to a bad value of the right type).
template <class T>
struct kind {
    std::string allowed;    // what is accepted, for error messages
    std::string json_type;  // the JSON type the file must use
    std::function<std::optional<T>(std::string_view)> parse;
    std::function<std::optional<T>(json::value const&, bool& wrong_type)> from_json;
    std::function<std::string(T const&)> show;
};

// JSON strings are read with the text parser.
template <class T>
auto string_json(std::function<std::optional<T>(std::string_view)> parse) {
    return [parse = std::move(parse)](json::value const& v, bool& wrong_type) -> std::optional<T> {
        if (!v.is_string()) {
            wrong_type = true;
            return std::nullopt;
        }
        return parse(sv(v.get_string()));
    };
}

template <class T>
concept duration = requires(T t) { t.count(); };

template <class T>
std::int64_t to_count(T v) {
    if constexpr (duration<T>) {
        return static_cast<std::int64_t>(v.count());
    } else {
        return static_cast<std::int64_t>(v);
    }
}

template <class T>
T from_count(std::int64_t n) {
    if constexpr (duration<T>) {
        return T{n};
    } else {
        return static_cast<T>(n);
    }
}

// Whole numbers: plain digits in text; a JSON number with no fraction.
template <class T>
kind<T> whole(std::int64_t lo, std::int64_t hi, std::string_view unit = "") {
    std::string allowed = "a whole number";
    if (!unit.empty()) {
        allowed += " of ";
        allowed += unit;
    }
    allowed += " from " + std::to_string(lo) + " to " + std::to_string(hi);
    auto in_range = [lo, hi](std::int64_t n) -> std::optional<T> {
        if (n < lo || n > hi) {
            return std::nullopt;
        }
        return from_count<T>(n);
    };
    return {
        .allowed = std::move(allowed),
        .json_type = "a JSON number",
        .parse = [in_range](std::string_view text) -> std::optional<T> {
            std::int64_t n = 0;
            if (!all_digits(text) || text.size() > 18) {
                return std::nullopt;
            }
            std::from_chars(text.data(), text.data() + text.size(), n);
            return in_range(n);
        },
        .from_json = [in_range](json::value const& v, bool& wrong_type) -> std::optional<T> {
            if (v.is_int64()) {
                return in_range(v.get_int64());
            }
            if (v.is_uint64()) {
                return std::nullopt;  // beyond int64: beyond every range
            }
            if (v.is_double()) {
                double const d = v.get_double();
                if (d != std::trunc(d) || std::fabs(d) > 1e18) {
                    return std::nullopt;
                }
                return in_range(static_cast<std::int64_t>(d));
            }
            wrong_type = true;
            return std::nullopt;
        },
        .show = [](T const& v) { return std::to_string(to_count(v)); },
    };
}

// Decimal numbers without exponent ("0.7", "2"), rounded to 3 decimals so
// the same text gives the same double from every source.
kind<double> decimal(double lo, double hi, std::string allowed) {
    auto in_range = [lo, hi](double d) -> std::optional<double> {
        double const r = std::round(d * 1000.0) / 1000.0;
        if (!(r >= lo && r <= hi)) {
            return std::nullopt;
        }
        return r;
    };
    return {
        .allowed = std::move(allowed),
        .json_type = "a JSON number",
        .parse = [in_range](std::string_view text) -> std::optional<double> {
            auto const dot = text.find('.');
            if (!all_digits(text.substr(0, dot)) ||
                (dot != std::string_view::npos && !all_digits(text.substr(dot + 1)))) {
                return std::nullopt;
            }
            double d = 0;
            std::from_chars(text.data(), text.data() + text.size(), d, std::chars_format::fixed);
            return in_range(d);
        },
        .from_json = [in_range](json::value const& v, bool& wrong_type) -> std::optional<double> {
            if (!v.is_number()) {
                wrong_type = true;
                return std::nullopt;
            }
            return in_range(v.is_double() ? v.get_double()
                            : v.is_int64() ? static_cast<double>(v.get_int64())
                                           : static_cast<double>(v.get_uint64()));
        },
        .show = [](double const& d) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.3f", d);
            std::string s = buf;
            while (s.back() == '0') {
                s.pop_back();
            }
            if (s.back() == '.') {
                s.pop_back();
            }
            return s;
        },
    };
}

kind<nano_usd> usd() {
    std::function<std::optional<nano_usd>(std::string_view)> parse = parse_usd;
    return {
        .allowed = "an amount of US dollars such as \"10.00\" (digits, up to 9 decimals, no sign or exponent)",
        .json_type = "a JSON string (money never passes through floating point)",
        .parse = parse,
        .from_json = string_json(parse),
        .show = [](nano_usd const& v) { return format_usd_compact(v); },
    };
}

template <class E>
kind<E> choice(std::vector<std::pair<std::string_view, E>> names) {
    std::string allowed = "one of ";
    for (auto const& [name, value] : names) {
        allowed += allowed.size() > 7 ? ", " : "";
        allowed += name;
    }
    std::function<std::optional<E>(std::string_view)> parse = [names](std::string_view text) -> std::optional<E> {
        for (auto const& [name, value] : names) {
            if (name == text) {
                return value;
            }
        }
        return std::nullopt;
    };
    return {
        .allowed = std::move(allowed),
        .json_type = "a JSON string",
        .parse = parse,
        .from_json = string_json(parse),
        .show = [names](E const& v) {
            auto const it = std::find_if(names.begin(), names.end(), [&](auto const& n) { return n.second == v; });
            return std::string{it->first};
        },
    };
}

// Strings, checked (and possibly normalized) by `check`.
kind<std::string> text(std::string allowed, std::function<std::optional<std::string>(std::string_view)> check) {
    return {
        .allowed = std::move(allowed),
        .json_type = "a JSON string",
        .parse = check,
        .from_json = string_json(check),
        .show = [](std::string const& s) { return s; },
    };
}

kind<std::string> text_if(std::string allowed, std::function<bool(std::string_view)> ok) {
    return text(std::move(allowed), [ok = std::move(ok)](std::string_view s) -> std::optional<std::string> {
        return ok(s) ? std::optional<std::string>{s} : std::nullopt;
    });
}

// Lists: comma-separated in text (items trimmed, empty items skipped), a JSON
// array of strings in the file; each item checked by `item`.
kind<std::vector<std::string>> list(kind<std::string> item, std::string_view items) {
    auto parse_item = item.parse;
    return {
        .allowed = "a comma-separated list (a JSON array in the file) of " + std::string{items},
        .json_type = "a JSON array of strings",
        .parse = [parse_item](std::string_view text) -> std::optional<std::vector<std::string>> {
            std::vector<std::string> out;
            for (auto part : split(text, ',')) {
                if (part = trim(part); part.empty()) {
                    continue;
                }
                auto v = parse_item(part);
                if (!v) {
                    return std::nullopt;
                }
                out.push_back(std::move(*v));
            }
            return out;
        },
        .from_json = [parse_item](json::value const& v, bool& wrong_type) -> std::optional<std::vector<std::string>> {
            if (!v.is_array()) {
                wrong_type = true;
                return std::nullopt;
            }
            std::vector<std::string> out;
            for (auto const& e : v.get_array()) {
                if (!e.is_string()) {
                    wrong_type = true;
                    return std::nullopt;
                }
                auto item_value = parse_item(sv(e.get_string()));
                if (!item_value) {
                    return std::nullopt;
                }
                out.push_back(std::move(*item_value));
            }
            return out;
        },
        .show = [](std::vector<std::string> const& v) {
            std::string out;
            for (auto const& s : v) {
                out += out.empty() ? "" : ",";
                out += s;
            }
            return out;
        },
    };
}

kind<bool> boolean() {
    std::function<std::optional<bool>(std::string_view)> parse = [](std::string_view text) -> std::optional<bool> {
        if (text == "true" || text == "1") {
            return true;
        }
        if (text == "false" || text == "0") {
            return false;
        }
        return std::nullopt;
    };
    return {
        .allowed = "true or false",
        .json_type = "a JSON boolean",
        .parse = parse,
        .from_json = [](json::value const& v, bool& wrong_type) -> std::optional<bool> {
            if (!v.is_bool()) {
                wrong_type = true;
                return std::nullopt;
            }
            return v.get_bool();
        },
        .show = [](bool const& b) { return std::string{b ? "true" : "false"}; },
    };
}

// The price table: a JSON object {"author/slug": {"prompt": "0.000003", "completion": "0.000015",
// "cache_read": "0.0000003", "cache_write": "0.00000375"}}, prices as decimal strings of USD per token
// (prompt and completion required, cache prices default to 0); the same JSON as text in the environment.
std::optional<price_table> prices_from_json(json::value const& v, bool& wrong_type) {
    if (!v.is_object()) {
        wrong_type = true;
        return std::nullopt;
    }
    price_table out;
    for (auto const& [key, entry] : v.get_object()) {
        if (!is_model_id(sv(key)) || !entry.is_object()) {
            return std::nullopt;
        }
        model_price p;
        auto const* fields = &entry.get_object();
        if (fields->size() > 4) {
            return std::nullopt;
        }
        for (auto const& [field, price] : *fields) {
            if (!price.is_string()) {
                return std::nullopt;
            }
            auto const parsed = parse_token_price(sv(price.get_string()));
            if (!parsed) {
                return std::nullopt;
            }
            if (field == "prompt") {
                p.prompt = *parsed;
            } else if (field == "completion") {
                p.completion = *parsed;
            } else if (field == "cache_read") {
                p.cache_read = *parsed;
            } else if (field == "cache_write") {
                p.cache_write = *parsed;
            } else {
                return std::nullopt;
            }
        }
        if (!fields->contains("prompt") || !fields->contains("completion")) {
            return std::nullopt;
        }
        out.set(std::string{sv(key)}, p);
    }
    if (out.empty()) {
        return std::nullopt;  // reservations need a price
    }
    return out;
}

kind<price_table> prices() {
    return {
        .allowed = "an object of model ids to {\"prompt\", \"completion\", \"cache_read\", \"cache_write\"}: "
                   "USD per token as decimal strings such as \"0.000003\" (prompt and completion required), at least one model",
        .json_type = "a JSON object",
        .parse = [](std::string_view text) -> std::optional<price_table> {
            boost::system::error_code ec;
            auto const v = json::parse(text, ec);
            if (ec) {
                return std::nullopt;
            }
            bool wrong_type = false;
            return prices_from_json(v, wrong_type);
        },
        .from_json = prices_from_json,
        .show = [](price_table const& t) {
            json::object o;
            for (auto const& [model, p] : t.entries()) {
                o[model] = json::object{{"prompt", format_token_price(p.prompt)},
                                        {"completion", format_token_price(p.completion)},
                                        {"cache_read", format_token_price(p.cache_read)},
                                        {"cache_write", format_token_price(p.cache_write)}};
            }
            return json::serialize(o);
        },
    };
}

// Optional values: "" in text, "" or null in the file mean unset.
template <class T>
kind<std::optional<T>> optional_kind(kind<T> inner) {
    auto parse = inner.parse;
    auto from_json = inner.from_json;
    auto show = inner.show;
    return {
        .allowed = inner.allowed + ", or empty for none",
        .json_type = "null or " + inner.json_type,
        .parse = [parse](std::string_view text) -> std::optional<std::optional<T>> {
            if (text.empty()) {
                return std::optional<T>{};
            }
            auto v = parse(text);
            if (!v) {
                return std::nullopt;
            }
            return std::optional<T>{std::move(*v)};
        },
        .from_json = [parse, from_json](json::value const& v, bool& wrong_type) -> std::optional<std::optional<T>> {
            if (v.is_null() || (v.is_string() && v.get_string().empty())) {
                return std::optional<T>{};
            }
            auto r = from_json(v, wrong_type);
            if (!r) {
                return std::nullopt;
            }
            return std::optional<T>{std::move(*r)};
        },
        .show = [show](std::optional<T> const& v) { return v ? show(*v) : std::string{"(unset)"}; },
    };
}

// ---------------------------------------------------------------- the table

enum class json_status { ok, bad_value, bad_type };

struct meta {
    std::string_view path;
    std::string_view env;
    std::string_view flag;  // with "--"; empty: none
    std::string_view help;
    bool secret = false;
    bool url = false;  // shown with credentials masked
};

struct descriptor {
    meta m;
    std::string allowed;
    std::string json_type;
    std::function<bool(settings&, std::string_view)> set_text;
    std::function<json_status(settings&, json::value const&)> set_json;
    std::function<std::string(settings const&)> show;
};

// `get` is a generic lambda returning a reference to the field in a
// settings, const or not.
template <class T, class Get>
descriptor make(meta m, Get get, kind<T> k) {
    static_assert(std::is_same_v<std::remove_cvref_t<decltype(get(std::declval<settings&>()))>, T>);
    return {
        .m = m,
        .allowed = k.allowed,
        .json_type = k.json_type,
        .set_text = [get, parse = k.parse](settings& s, std::string_view text) {
            auto v = parse(text);
            if (v) {
                get(s) = std::move(*v);
            }
            return v.has_value();
        },
        .set_json = [get, from_json = k.from_json](settings& s, json::value const& value) {
            bool wrong_type = false;
            auto v = from_json(value, wrong_type);
            if (!v) {
                return wrong_type ? json_status::bad_type : json_status::bad_value;
            }
            get(s) = std::move(*v);
            return json_status::ok;
        },
        .show = [get, show = k.show](settings const& s) { return show(get(s)); },
    };
}

#define PARLEY_FIELD(member) [](auto& s) -> auto& { return s.member; }

constexpr std::int64_t max_ms = 3'600'000;
using ms = std::chrono::milliseconds;

std::vector<descriptor> build_table() {
    auto const printable_ascii = [](std::size_t max) {
        return [max](std::string_view s) {
            return s.size() <= max && std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
        };
    };
    auto const non_empty_path = [](std::string_view s) { return !s.empty() && !has_control(s); };
    auto const model = text_if("an OpenRouter model id such as anthropic/claude-3.5-sonnet (author/slug, optional :variant)",
                               is_model_id);
    std::vector<descriptor> t;
    t.push_back(make({"listen", "PARLEY_LISTEN", "--listen",
                      "address and port to serve on; port 0 picks a free one"},
                     PARLEY_FIELD(listen),
                     kind<host_port>{
                         .allowed = "host:port with an IPv4 address, [IPv6] address or localhost and a port "
                                    "from 0 to 65535",
                         .json_type = "a JSON string",
                         .parse = parse_host_port,
                         .from_json = string_json<host_port>(parse_host_port),
                         .show = show_host_port,
                     }));
    t.push_back(make({"log.level", "PARLEY_LOG_LEVEL", "--log-level", "least severe log level written"},
                     PARLEY_FIELD(log.level),
                     choice<log_level>({{"trace", log_level::trace},
                                        {"debug", log_level::debug},
                                        {"info", log_level::info},
                                        {"warn", log_level::warn},
                                        {"error", log_level::error}})));
    t.push_back(make({"log.format", "PARLEY_LOG_FORMAT", "--log-format", "log lines as text for people or json for machines"},
                     PARLEY_FIELD(log.format),
                     choice<log_format>({{"text", log_format::text}, {"json", log_format::json}})));
    t.push_back(make({"openrouter.base_url", "OPENROUTER_BASE_URL", "--openrouter-base-url",
                      "OpenRouter API base URL (the simulator's for tests)", false, true},
                     PARLEY_FIELD(openrouter.base_url),
                     text("an http:// or https:// URL", base_url)));
    t.push_back(make({"openrouter.api_key", "OPENROUTER_API_KEY", "",
                      "OpenRouter API key (secret; no flag)", true},
                     PARLEY_FIELD(openrouter.api_key),
                     optional_kind(text_if("an API key without spaces or control characters", is_token))));
    t.push_back(make({"openrouter.ca_file", "PARLEY_OPENROUTER_CA_FILE", "--openrouter-ca-file",
                      "PEM file of CAs to trust instead of the system store"},
                     PARLEY_FIELD(openrouter.ca_file),
                     optional_kind(text_if("a file path", non_empty_path))));
    t.push_back(make({"openrouter.referer", "PARLEY_OPENROUTER_REFERER", "--openrouter-referer",
                      "HTTP-Referer sent to OpenRouter (app attribution); empty: not sent"},
                     PARLEY_FIELD(openrouter.referer),
                     text_if("an http:// or https:// URL, or empty",
                             [](std::string_view s) { return s.empty() || is_http_url(s); })));
    t.push_back(make({"openrouter.title", "PARLEY_OPENROUTER_TITLE", "--openrouter-title",
                      "X-OpenRouter-Title sent to OpenRouter (app name); empty: not sent"},
                     PARLEY_FIELD(openrouter.title),
                     text_if("printable ASCII text of at most 200 characters", printable_ascii(200))));
    t.push_back(make({"openrouter.connect_timeout_ms", "PARLEY_OPENROUTER_CONNECT_TIMEOUT_MS",
                      "--openrouter-connect-timeout-ms", "time to resolve, connect and finish TLS"},
                     PARLEY_FIELD(openrouter.connect_timeout), whole<ms>(1, max_ms, "milliseconds")));
    t.push_back(make({"openrouter.first_byte_timeout_ms", "PARLEY_OPENROUTER_FIRST_BYTE_TIMEOUT_MS",
                      "--openrouter-first-byte-timeout-ms", "time from sending a request to the first response byte"},
                     PARLEY_FIELD(openrouter.first_byte_timeout), whole<ms>(1, max_ms, "milliseconds")));
    t.push_back(make({"openrouter.chunk_gap_timeout_ms", "PARLEY_OPENROUTER_CHUNK_GAP_TIMEOUT_MS",
                      "--openrouter-chunk-gap-timeout-ms", "longest silence allowed inside a streamed response"},
                     PARLEY_FIELD(openrouter.chunk_gap_timeout), whole<ms>(1, max_ms, "milliseconds")));
    t.push_back(make({"openrouter.total_timeout_ms", "PARLEY_OPENROUTER_TOTAL_TIMEOUT_MS",
                      "--openrouter-total-timeout-ms", "deadline for one upstream call, retries included"},
                     PARLEY_FIELD(openrouter.total_timeout), whole<ms>(1, max_ms, "milliseconds")));
    t.push_back(make({"openrouter.pool_size", "PARLEY_OPENROUTER_POOL_SIZE", "--openrouter-pool-size",
                      "most keep-alive connections to OpenRouter"},
                     PARLEY_FIELD(openrouter.pool_size), whole<std::size_t>(1, 4096)));
    t.push_back(make({"ai.model", "AI_MODEL", "--model", "OpenRouter model to ask"}, PARLEY_FIELD(ai.model), model));
    t.push_back(make({"ai.fallback_models", "AI_FALLBACK_MODELS", "--fallback-models",
                      "models OpenRouter may fall back to, in order"},
                     PARLEY_FIELD(ai.fallback_models),
                     list(model, "OpenRouter model ids such as anthropic/claude-3.5-sonnet (author/slug, optional "
                                 ":variant)")));
    t.push_back(make({"ai.allowed_models", "AI_ALLOWED_MODELS", "--allowed-models",
                      "models /v1/chat/completions callers may ask for; empty: ai.model and ai.fallback_models"},
                     PARLEY_FIELD(ai.allowed_models),
                     list(model, "OpenRouter model ids such as anthropic/claude-3.5-sonnet (author/slug, optional "
                                 ":variant)")));
    t.push_back(make({"ai.max_tokens", "AI_MAX_TOKENS", "--max-tokens", "most tokens in one answer"},
                     PARLEY_FIELD(ai.max_tokens), whole<int>(1, 1'000'000)));
    t.push_back(make({"ai.temperature", "AI_TEMPERATURE", "--temperature", "sampling temperature"},
                     PARLEY_FIELD(ai.temperature),
                     decimal(0.0, 2.0, "a decimal number from 0 to 2 such as 0.7 (no exponent)")));
    t.push_back(make({"limits.rate_per_user_per_hour", "AI_RATE_LIMIT_PER_USER", "--rate-limit-per-user",
                      "requests one user may make in any hour"},
                     PARLEY_FIELD(limits.rate_per_user_per_hour), whole<int>(1, 1'000'000)));
    t.push_back(make({"limits.cost_daily_usd", "AI_COST_LIMIT_DAILY", "--cost-limit-daily",
                      "USD the whole service may spend per UTC day"},
                     PARLEY_FIELD(limits.cost_daily), usd()));
    t.push_back(make({"limits.cost_daily_per_user_usd", "AI_COST_LIMIT_DAILY_PER_USER", "--cost-limit-daily-per-user",
                      "USD one user may spend per UTC day; unset: no per-user budget"},
                     PARLEY_FIELD(limits.cost_daily_per_user), optional_kind(usd())));
    t.push_back(make({"limits.backend", "PARLEY_LIMITS_BACKEND", "--limits-backend",
                      "where limits live: memory (one instance) or postgres (shared)"},
                     PARLEY_FIELD(limits.backend),
                     choice<limits_backend>({{"memory", limits_backend::memory}, {"postgres", limits_backend::postgres}})));
    t.push_back(make({"limits.exempt_permission", "PARLEY_LIMITS_EXEMPT_PERMISSION", "--limits-exempt-permission",
                      "permission that exempts a user from the hourly request window; empty: none"},
                     PARLEY_FIELD(limits.exempt_permission),
                     text_if("a permission name without spaces, or empty for none",
                             [](std::string_view s) { return s.empty() || (is_token(s) && s.size() <= 64); })));
    t.push_back(make({"limits.lease_usd", "PARLEY_LIMITS_LEASE_USD", "--limits-lease",
                      "postgres backend: the slice of the daily budget a process leases at a time"},
                     PARLEY_FIELD(limits.lease), usd()));
    t.push_back(make({"limits.lease_ttl_ms", "PARLEY_LIMITS_LEASE_TTL_MS", "--limits-lease-ttl-ms",
                      "postgres backend: a process silent this long has its unused lease counted free"},
                     PARLEY_FIELD(limits.lease_ttl), whole<ms>(1'000, max_ms, "milliseconds")));
    t.push_back(make({"retry.max_retries", "PARLEY_RETRY_MAX_RETRIES", "--max-retries",
                      "retries after the first try of an upstream call"},
                     PARLEY_FIELD(retry.max_retries), whole<int>(0, 10)));
    t.push_back(make({"retry.initial_backoff_ms", "PARLEY_RETRY_INITIAL_BACKOFF_MS", "--retry-initial-backoff-ms",
                      "first retry backoff cap, doubled per retry"},
                     PARLEY_FIELD(retry.initial_backoff), whole<ms>(1, max_ms, "milliseconds")));
    t.push_back(make({"retry.max_backoff_ms", "PARLEY_RETRY_MAX_BACKOFF_MS", "--retry-max-backoff-ms",
                      "largest retry backoff"},
                     PARLEY_FIELD(retry.max_backoff), whole<ms>(1, max_ms, "milliseconds")));
    t.push_back(make({"retry.max_retry_after_ms", "PARLEY_RETRY_MAX_RETRY_AFTER_MS", "--retry-max-retry-after-ms",
                      "longest Retry-After from OpenRouter that is honoured; longer ones wait this long"},
                     PARLEY_FIELD(retry.max_retry_after), whole<ms>(1, max_ms, "milliseconds")));
    t.push_back(make({"database.url", "DATABASE_URL", "--database-url",
                      "sqlite:<path> or postgresql://user:password@host/db", false, true},
                     PARLEY_FIELD(database.url),
                     text("sqlite:<path>, postgresql://... or postgres://... (no spaces)", database_url)));
    t.push_back(make({"database.pool_size", "PARLEY_DATABASE_POOL_SIZE", "--database-pool-size",
                      "database sessions and their worker threads (SQLite uses one)"},
                     PARLEY_FIELD(database.pool_size), whole<std::size_t>(1, 64)));
    t.push_back(make({"pricing.models", "PARLEY_PRICING_MODELS", "--pricing-models",
                      "USD per token by model (JSON), for costs OpenRouter does not report and for reservations"},
                     PARLEY_FIELD(pricing.models), prices()));
    t.push_back(make({"pricing.refresh", "PARLEY_PRICING_REFRESH", "--pricing-refresh",
                      "at start-up, add OpenRouter's /models prices to the table (configured ones win)"},
                     PARLEY_FIELD(pricing.refresh), boolean()));
    t.push_back(make({"usage.log_dir", "PARLEY_USAGE_LOG_DIR", "--usage-log-dir",
                      "directory of the usage write-ahead log; empty: <data_dir>/usage-log"},
                     PARLEY_FIELD(usage.log_dir),
                     text_if("a directory path, or empty", [](std::string_view s) { return !has_control(s); })));
    t.push_back(make({"usage.batch_size", "PARLEY_USAGE_BATCH_SIZE", "--usage-batch-size",
                      "usage rows per database transaction"},
                     PARLEY_FIELD(usage.batch_size), whole<std::size_t>(1, 10'000)));
    t.push_back(make({"usage.flush_interval_ms", "PARLEY_USAGE_FLUSH_INTERVAL_MS", "--usage-flush-interval-ms",
                      "longest a usage row waits in the log before a database write is tried"},
                     PARLEY_FIELD(usage.flush_interval), whole<ms>(1, max_ms, "milliseconds")));
    t.push_back(make({"usage.fsync_interval_ms", "PARLEY_USAGE_FSYNC_INTERVAL_MS", "--usage-fsync-interval-ms",
                      "appended usage rows reach the disk (fdatasync) at most this long after their write"},
                     PARLEY_FIELD(usage.fsync_interval), whole<ms>(0, 1'000, "milliseconds")));
    t.push_back(make({"usage.segment_bytes", "PARLEY_USAGE_SEGMENT_BYTES", "--usage-segment-bytes",
                      "size of a usage log segment before the next one starts"},
                     PARLEY_FIELD(usage.segment_bytes), whole<std::uint64_t>(4096, 1 << 30, "bytes")));
    t.push_back(make({"usage.max_pending", "PARLEY_USAGE_MAX_PENDING", "--usage-max-pending",
                      "usage rows kept in memory while the database is down (the rest wait in the log)"},
                     PARLEY_FIELD(usage.max_pending), whole<std::size_t>(100, 10'000'000)));
    t.push_back(make({"usage.correction_delay_ms", "PARLEY_USAGE_CORRECTION_DELAY_MS", "--usage-correction-delay-ms",
                      "wait before asking OpenRouter's /generation for the real cost of an estimated row"},
                     PARLEY_FIELD(usage.correction_delay), whole<ms>(1, max_ms, "milliseconds")));
    t.push_back(make({"usage.correction_attempts", "PARLEY_USAGE_CORRECTION_ATTEMPTS", "--usage-correction-attempts",
                      "/generation lookups (doubling waits) before an estimated cost is left as it is; 0: none"},
                     PARLEY_FIELD(usage.correction_attempts), whole<int>(0, 20)));
    t.push_back(make({"auth.jwt_secret", "PARLEY_JWT_SECRET", "",
                      "HS256 key for bearer tokens, at least 32 bytes; required to serve (secret; no flag)", true},
                     PARLEY_FIELD(auth.jwt_secret),
                     optional_kind(text_if("a secret of at least 32 bytes", [](std::string_view s) { return s.size() >= 32; }))));
    t.push_back(make({"auth.api_key_hashes", "PARLEY_AUTH_API_KEY_HASHES", "--api-key-hashes",
                      "SHA-256 (hex) of each service API key accepted as a bearer token", true},
                     PARLEY_FIELD(auth.api_key_hashes),
                     list(text("", sha256_hex), "SHA-256 hashes of 64 hexadecimal digits")));
    t.push_back(make({"language", "PARLEY_LANGUAGE", "--language", "default language of user-facing messages"},
                     PARLEY_FIELD(language),
                     text_if("one of es, en", [](std::string_view s) { return s == "es" || s == "en"; })));
    t.push_back(make({"nats.url", "NATS_URL", "--nats-url", "NATS server(s), comma-separated; unset: the bus adapter is off",
                      false, true},
                     PARLEY_FIELD(nats.url),
                     optional_kind(text("nats://host:port or tls://host:port URLs separated by commas", nats_urls))));
    t.push_back(make({"nats.subject", "PARLEY_NATS_SUBJECT", "--nats-subject", "subject chat requests arrive on"},
                     PARLEY_FIELD(nats.subject),
                     text("a NATS subject: dot-separated tokens without spaces", nats_subject)));
    t.push_back(make({"nats.queue_group", "PARLEY_NATS_QUEUE_GROUP", "--nats-queue-group",
                      "queue group shared by Parley processes"},
                     PARLEY_FIELD(nats.queue_group), text_if("a name without spaces", is_token)));
    t.push_back(make({"nats.user", "NATS_USER", "--nats-user", "user name for the NATS server (with NATS_PASSWORD)"},
                     PARLEY_FIELD(nats.user), optional_kind(text_if("a user name without spaces", is_token))));
    t.push_back(make({"nats.password", "NATS_PASSWORD", "", "password for the NATS server (secret; no flag)", true},
                     PARLEY_FIELD(nats.password),
                     optional_kind(text_if("a password without control characters",
                                           [](std::string_view v) { return !v.empty() && !has_control(v); }))));
    t.push_back(make({"nats.token", "NATS_TOKEN", "", "token for the NATS server (secret; no flag)", true},
                     PARLEY_FIELD(nats.token), optional_kind(text_if("a token without spaces", is_token))));
    t.push_back(make({"nats.request_timeout_ms", "PARLEY_NATS_REQUEST_TIMEOUT_MS", "--nats-request-timeout-ms",
                      "longest turn of one NATS chat request (then it is cancelled)"},
                     PARLEY_FIELD(nats.request_timeout), whole<ms>(1'000, max_ms, "milliseconds")));
    t.push_back(make({"server.max_connections", "PARLEY_SERVER_MAX_CONNECTIONS", "--server-max-connections",
                      "most open client connections"},
                     PARLEY_FIELD(server.max_connections), whole<std::size_t>(1, 1'000'000)));
    t.push_back(make({"server.threads", "PARLEY_SERVER_THREADS", "--server-threads",
                      "threads running the I/O and the actors; 0: one per core"},
                     PARLEY_FIELD(server.threads), whole<std::size_t>(0, 256)));
    t.push_back(make({"server.body_limit_bytes", "PARLEY_SERVER_BODY_LIMIT_BYTES", "--server-body-limit-bytes",
                      "largest request body and WebSocket message"},
                     PARLEY_FIELD(server.body_limit_bytes), whole<std::size_t>(1024, 1 << 30, "bytes")));
    t.push_back(make({"server.header_limit_bytes", "PARLEY_SERVER_HEADER_LIMIT_BYTES", "--server-header-limit-bytes",
                      "largest request header block"},
                     PARLEY_FIELD(server.header_limit_bytes), whole<std::size_t>(1024, 1 << 20, "bytes")));
    t.push_back(make({"server.read_timeout_ms", "PARLEY_SERVER_READ_TIMEOUT_MS", "--server-read-timeout-ms",
                      "time to receive a whole request once it started"},
                     PARLEY_FIELD(server.read_timeout), whole<ms>(1, max_ms, "milliseconds")));
    t.push_back(make({"server.idle_timeout_ms", "PARLEY_SERVER_IDLE_TIMEOUT_MS", "--server-idle-timeout-ms",
                      "keep-alive wait for the next request"},
                     PARLEY_FIELD(server.idle_timeout), whole<ms>(1, max_ms, "milliseconds")));
    t.push_back(make({"server.shutdown_grace_ms", "PARLEY_SERVER_SHUTDOWN_GRACE_MS", "--server-shutdown-grace-ms",
                      "time given to turns in flight on shutdown"},
                     PARLEY_FIELD(server.shutdown_grace), whole<ms>(0, max_ms, "milliseconds")));
    t.push_back(make({"server.tls_cert_file", "PARLEY_TLS_CERT_FILE", "--tls-cert-file",
                      "PEM certificate chain of the listener; with server.tls_key_file the listener speaks TLS"},
                     PARLEY_FIELD(server.tls_cert_file), optional_kind(text_if("a file path", non_empty_path))));
    t.push_back(make({"server.tls_key_file", "PARLEY_TLS_KEY_FILE", "--tls-key-file",
                      "PEM private key of the listener's certificate"},
                     PARLEY_FIELD(server.tls_key_file), optional_kind(text_if("a file path", non_empty_path))));
    t.push_back(make({"server.dev_tokens", "PARLEY_DEV_TOKENS", "--dev-tokens",
                      "GET /v1/dev/token hands out tokens (for the simulator only; never in production)"},
                     PARLEY_FIELD(server.dev_tokens), boolean()));
    t.push_back(make({"tools.max_rounds", "PARLEY_TOOLS_MAX_ROUNDS", "--tools-max-rounds",
                      "most tool-calling rounds in one turn"},
                     PARLEY_FIELD(tools.max_rounds), whole<int>(1, 20)));
    t.push_back(make({"tools.max_calls_per_round", "PARLEY_TOOLS_MAX_CALLS_PER_ROUND", "--tools-max-calls-per-round",
                      "most tool calls run from one answer (the others are refused)"},
                     PARLEY_FIELD(tools.max_calls_per_round), whole<int>(1, 128)));
    t.push_back(make({"tools.file", "PARLEY_TOOLS_FILE", "--tools-file", "tool registry (JSON); empty: no tools"},
                     PARLEY_FIELD(tools.file),
                     text_if("a file path, or empty", [](std::string_view s) { return !has_control(s); })));
    t.push_back(make({"assistant.prompts_dir", "PARLEY_PROMPTS_DIR", "--prompts-dir",
                      "directory of the system prompt templates system.es.txt and system.en.txt"},
                     PARLEY_FIELD(assistant.prompts_dir), text_if("a directory path", non_empty_path)));
    t.push_back(make({"assistant.fallbacks_file", "PARLEY_FALLBACKS_FILE", "--fallbacks-file",
                      "fallback answers (JSON) served when the AI is unavailable; empty: none"},
                     PARLEY_FIELD(assistant.fallbacks_file),
                     text_if("a file path, or empty", [](std::string_view s) { return !has_control(s); })));
    t.push_back(make({"assistant.history_tokens", "PARLEY_HISTORY_TOKENS", "--history-tokens",
                      "estimated tokens of conversation history sent with a turn (oldest turns dropped first)"},
                     PARLEY_FIELD(assistant.history_tokens), whole<std::size_t>(100, 1'000'000, "tokens")));
    t.push_back(make({"assistant.max_message_chars", "PARLEY_MAX_MESSAGE_CHARS", "--max-message-chars",
                      "longest user message in characters"},
                     PARLEY_FIELD(assistant.max_message_chars), whole<std::size_t>(1, 1'000'000, "characters")));
    t.push_back(make({"assistant.max_context_bytes", "PARLEY_MAX_CONTEXT_BYTES", "--max-context-bytes",
                      "largest context object of a turn, as JSON text"},
                     PARLEY_FIELD(assistant.max_context_bytes), whole<std::size_t>(0, 1 << 20, "bytes")));
    t.push_back(make({"circuit.failure_threshold", "PARLEY_CIRCUIT_FAILURE_THRESHOLD", "--circuit-failure-threshold",
                      "consecutive failed upstream calls that open the circuit"},
                     PARLEY_FIELD(circuit.failure_threshold), whole<int>(1, 1000)));
    t.push_back(make({"circuit.open_ms", "PARLEY_CIRCUIT_OPEN_MS", "--circuit-open-ms",
                      "milliseconds an open circuit skips the upstream before one probe"},
                     PARLEY_FIELD(circuit.open_for), whole<ms>(0, max_ms, "milliseconds")));
    t.push_back(make({"data_dir", "PARLEY_DATA_DIR", "--data-dir", "directory for the spool and other state"},
                     PARLEY_FIELD(data_dir), text_if("a directory path", non_empty_path)));
    return t;
}

#undef PARLEY_FIELD

std::vector<descriptor> const& table() {
    static std::vector<descriptor> const t = build_table();
    return t;
}

std::size_t index_of_path(std::string_view path) {
    auto const& t = table();
    return static_cast<std::size_t>(
        std::find_if(t.begin(), t.end(), [&](auto const& d) { return d.m.path == path; }) - t.begin());
}

std::string_view strip_dashes(std::string_view name) {
    while (name.starts_with('-')) {
        name.remove_prefix(1);
    }
    return name;
}

descriptor const* find_flag(std::string_view name) {
    name = strip_dashes(name);
    for (auto const& d : table()) {
        if (!d.m.flag.empty() && strip_dashes(d.m.flag) == name) {
            return &d;
        }
    }
    return nullptr;
}

bool is_section(std::string_view path) {
    return std::any_of(table().begin(), table().end(), [&](auto const& d) {
        return d.m.path.size() > path.size() && d.m.path.starts_with(path) && d.m.path[path.size()] == '.';
    });
}

// ---------------------------------------------------------------- loading

std::string shown_text(descriptor const& d, std::string_view value) {
    if (d.m.secret) {
        return "(redacted, " + std::to_string(value.size()) + " bytes)";
    }
    if (value.empty()) {
        return "\"\"";
    }
    return printable(d.m.url ? redact_urls(value) : std::string{value});
}

std::string shown_json(descriptor const& d, json::value const& value) {
    if (d.m.secret) {
        return value.is_string() ? shown_text(d, sv(value.get_string())) : "(redacted)";
    }
    if (d.m.url && value.is_string()) {
        return printable(json::serialize(json::value(redact_urls(sv(value.get_string())))));
    }
    return printable(json::serialize(value));
}

std::vector<std::string> all_paths_and_sections() {
    std::vector<std::string> out;
    for (auto const& d : table()) {
        out.emplace_back(d.m.path);
        if (auto const dot = d.m.path.rfind('.'); dot != std::string_view::npos) {
            out.emplace_back(d.m.path.substr(0, dot));
        }
    }
    return out;
}

// An unknown flag: never shows its value (or anything after a '='), which
// might be a secret; points secrets to their environment variable.
setting_error unknown_flag(std::string_view name) {
    auto const bare = strip_dashes(name.substr(0, name.find('=')));
    std::string const flag = "--" + std::string{bare};
    if (name.find('=') != std::string_view::npos) {
        return {flag, "", "a flag name without \"=value\" (the caller splits --name=value)"};
    }
    std::string underscored{bare};
    std::replace(underscored.begin(), underscored.end(), '-', '_');
    std::vector<std::string> known;
    for (auto const& d : table()) {
        std::string path{d.m.path};
        std::replace(path.begin(), path.end(), '.', '_');
        if (d.m.flag.empty() && (underscored == path || underscored == last_segment(d.m.path))) {
            return {flag, "",
                    "a known flag; " + std::string{d.m.path} + " is a secret and has no flag (other local users "
                    "can read command lines): set " + std::string{d.m.env}};
        }
        if (!d.m.flag.empty()) {
            known.emplace_back(d.m.flag);
        }
    }
    auto const hint = suggest(flag, known);
    return {flag, "", hint ? "a known flag; did you mean " + *hint + "?" : "a known flag (parley --help lists them)"};
}

struct loader {
    settings s;
    std::vector<std::string> origin;  // per table row: how it was last set

    std::optional<setting_error> apply_object(json::object const& object, std::string const& prefix) {
        for (auto const& [key, value] : object) {
            std::string const path = prefix.empty() ? std::string{sv(key)} : prefix + "." + std::string{sv(key)};
            auto const i = index_of_path(path);
            if (i != table().size()) {
                auto const& d = table()[i];
                switch (d.set_json(s, value)) {
                case json_status::ok: origin[i] = path; continue;
                case json_status::bad_value: return setting_error{path, shown_json(d, value), d.allowed};
                case json_status::bad_type:
                    return setting_error{path, shown_json(d, value), d.allowed + ", as " + d.json_type};
                }
            }
            if (!is_section(path)) {
                auto const hint = suggest(path, all_paths_and_sections());
                return setting_error{path, "",
                                     hint ? "a known setting name; did you mean " + *hint + "?"
                                          : "a known setting name (parley --help lists them)"};
            }
            if (!value.is_object()) {
                return setting_error{path, "", "a JSON object holding the " + path + ".* settings"};
            }
            if (auto e = apply_object(value.get_object(), path)) {
                return e;
            }
        }
        return std::nullopt;
    }

    std::optional<setting_error> apply_file(std::string_view text) {
        if (trim(text).empty()) {
            return std::nullopt;
        }
        json::parse_options options;
        options.allow_comments = true;
        options.allow_trailing_commas = true;
        json::parser parser{json::storage_ptr{}, options};
        boost::system::error_code ec;
        auto const consumed = parser.write(text.data(), text.size(), ec);
        if (ec) {
            auto const before = text.substr(0, consumed);
            auto const line = std::count(before.begin(), before.end(), '\n') + 1;
            auto const line_start = before.rfind('\n');
            auto const column = consumed - (line_start == std::string_view::npos ? 0 : line_start + 1) + 1;
            return setting_error{"", "line " + std::to_string(line) + ", column " + std::to_string(column),
                                 "JSON, comments and trailing commas allowed (" + ec.message() + ")"};
        }
        auto const root = parser.release();
        if (!root.is_object()) {
            return setting_error{"", "", "a JSON object at the top level"};
        }
        return apply_object(root.get_object(), "");
    }

    std::optional<setting_error> apply_env(env_lookup const& env) {
        if (!env) {
            return std::nullopt;
        }
        for (std::size_t i = 0; i != table().size(); ++i) {
            auto const& d = table()[i];
            auto const value = env(d.m.env);
            if (!value || value->empty()) {
                continue;
            }
            if (!d.set_text(s, *value)) {
                return setting_error{std::string{d.m.env}, shown_text(d, *value), d.allowed};
            }
            origin[i] = d.m.env;
        }
        return std::nullopt;
    }

    std::optional<setting_error> apply_flags(flag_list const& flags) {
        for (auto const& [name, value] : flags) {
            auto const* d = find_flag(name);
            if (!d) {
                return unknown_flag(name);
            }
            if (!d->set_text(s, value)) {
                return setting_error{std::string{d->m.flag}, shown_text(*d, value), d->allowed};
            }
            origin[static_cast<std::size_t>(d - table().data())] = d->m.flag;
        }
        return std::nullopt;
    }

    setting_error cross_error(std::string_view path, std::string allowed) const {
        auto const i = index_of_path(path);
        auto const& d = table()[i];
        return {origin[i], printable(d.show(s)), std::move(allowed)};
    }

    // Rules that involve more than one setting; the error names the one
    // that has to give.
    std::optional<setting_error> check_together() const {
        auto const& o = s.openrouter;
        auto const total = std::to_string(o.total_timeout.count());
        for (auto const& [path, value] : {std::pair{"openrouter.connect_timeout_ms", o.connect_timeout},
                                          std::pair{"openrouter.first_byte_timeout_ms", o.first_byte_timeout},
                                          std::pair{"openrouter.chunk_gap_timeout_ms", o.chunk_gap_timeout}}) {
            if (value > o.total_timeout) {
                return cross_error(path, "a whole number of milliseconds from 1 to openrouter.total_timeout_ms (" +
                                             total + ")");
            }
        }
        if (s.retry.initial_backoff > s.retry.max_backoff) {
            return cross_error("retry.max_backoff_ms",
                               "a whole number of milliseconds from retry.initial_backoff_ms (" +
                                   std::to_string(s.retry.initial_backoff.count()) + ") to " + std::to_string(max_ms));
        }
        auto const& allowed = s.ai.allowed_models;
        if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), s.ai.model) == allowed.end()) {
            return cross_error("ai.allowed_models", "a list of model ids that includes ai.model (" + s.ai.model + ")");
        }
        if (s.server.dev_tokens && !is_loopback_url(s.openrouter.base_url)) {
            return cross_error("server.dev_tokens",
                               "false unless openrouter.base_url is on this machine (the simulator): tokens for "
                               "anyone must never reach a real upstream");
        }
        if (s.nats.token && (s.nats.user || s.nats.password)) {
            return cross_error("nats.token", "unset when nats.user or nats.password is set (one way to sign in)");
        }
        if (s.nats.user.has_value() != s.nats.password.has_value()) {
            return cross_error(s.nats.user ? "nats.password" : "nats.user",
                               "set together with " + std::string{s.nats.user ? "nats.user" : "nats.password"});
        }
        if (s.server.tls_cert_file.has_value() != s.server.tls_key_file.has_value()) {
            return cross_error(s.server.tls_cert_file ? "server.tls_key_file" : "server.tls_cert_file",
                               "a file path: server.tls_cert_file and server.tls_key_file are set together");
        }
        if (s.limits.backend == limits_backend::postgres && s.database.url.starts_with("sqlite:")) {
            return cross_error("limits.backend", "memory, or postgres with a postgresql:// database.url");
        }
        return std::nullopt;
    }
};

}  // namespace

boost::system::result<settings, setting_error> load_settings(std::string_view json_text, env_lookup const& env,
                                                              flag_list const& flags) {
    loader l;
    for (auto const& d : table()) {
        l.origin.emplace_back(d.m.path);
    }
    if (auto e = l.apply_file(json_text)) {
        return *e;
    }
    if (auto e = l.apply_env(env)) {
        return *e;
    }
    if (auto e = l.apply_flags(flags)) {
        return *e;
    }
    if (auto e = l.check_together()) {
        return *e;
    }
    return std::move(l.s);
}

std::optional<setting_error> require_for_serve(settings const& s) {
    if (s.auth.jwt_secret) {
        return std::nullopt;
    }
    return setting_error{"PARLEY_JWT_SECRET", "(unset)",
                         "a secret of at least 32 bytes (or auth.jwt_secret in the file): parley serve needs it "
                         "to verify bearer tokens"};
}

bool is_setting_flag(std::string_view name) { return find_flag(name) != nullptr; }

std::vector<setting_info> setting_infos() {
    settings const defaults;
    std::vector<setting_info> out;
    for (auto const& d : table()) {
        auto shown = d.show(defaults);
        out.push_back({
            .path = std::string{d.m.path},
            .env = std::string{d.m.env},
            .flag = std::string{d.m.flag},
            .default_value = shown.empty() ? "(empty)" : std::move(shown),
            .help = std::string{d.m.help},
            .secret = d.m.secret,
        });
    }
    return out;
}

std::vector<std::string> settings_help() {
    auto const infos = setting_infos();
    std::size_t flag_width = 0;
    std::size_t env_width = 0;
    for (auto const& i : infos) {
        flag_width = std::max(flag_width, std::max<std::size_t>(i.flag.size(), 9));
        env_width = std::max(env_width, i.env.size());
    }
    std::vector<std::string> out;
    for (auto const& i : infos) {
        std::string line = "  ";
        line += i.flag.empty() ? "(no flag)" : i.flag;
        line.resize(2 + flag_width + 2, ' ');
        line += i.env;
        line.resize(2 + flag_width + 2 + env_width + 2, ' ');
        line += i.help + " [default: " + i.default_value + "]";
        out.push_back(std::move(line));
    }
    return out;
}

std::vector<std::pair<std::string, std::string>> loggable(settings const& s) {
    std::vector<std::pair<std::string, std::string>> out;
    for (auto const& d : table()) {
        auto shown = d.show(s);
        if (d.m.secret) {
            shown = shown.empty() || shown == "(unset)" ? "(unset)" : "(set)";
        } else if (d.m.url) {
            shown = redact_urls(shown);
        }
        out.emplace_back(d.m.path, std::move(shown));
    }
    return out;
}

}  // namespace parley::domain
