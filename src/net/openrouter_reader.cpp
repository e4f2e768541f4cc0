#include "net/openrouter_reader.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/throw_exception.hpp>

#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <sstream>
#include <stdexcept>

namespace parley::net {

namespace json = boost::json;
using std::chrono::milliseconds;
using time_point = std::chrono::system_clock::time_point;

namespace {

constexpr std::size_t max_error_field_bytes = 128;  // code_text, error_type, provider_code, availability code
constexpr std::size_t max_snippet_bytes = 200;      // of a non-JSON error body, in the message
constexpr std::int64_t max_delay_ms = 1'000'000'000'000;  // delays saturate here (about 31 years)
constexpr int max_plain_exponent = 64;

// ------------------------------------------------------------------ text

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_space(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool all_digits(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_digit); }

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

// One line of at most `max` bytes (max >= 4): control characters become
// spaces; a longer text is cut at a UTF-8 character boundary and ends "...".
std::string bounded(std::string_view s, std::size_t max = max_error_message_bytes) {
    bool const cut = s.size() > max;
    if (cut) {
        std::size_t n = max - 3;
        while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) {
            --n;  // s[n] continues a character: cut before that character
        }
        s = s.substr(0, n);
    }
    std::string out;
    out.reserve(s.size() + 3);
    for (char c : s) {
        auto const u = static_cast<unsigned char>(c);
        out.push_back(u < 0x20 || u == 0x7F ? ' ' : c);
    }
    if (cut) {
        out += "...";
    }
    return out;
}

// Bytes of an unknown (maybe binary, maybe HTML) body, as printable ASCII.
std::string ascii_snippet(std::string_view s) {
    std::string out = bounded(s, max_snippet_bytes);
    for (char& c : out) {
        if (static_cast<unsigned char>(c) >= 0x80) {
            c = '?';
        }
    }
    return out;
}

// "123", "1.5": a non-negative decimal times `scale` milliseconds, saturating.
std::optional<milliseconds> parse_decimal_ms(std::string_view s, std::int64_t scale) {
    s = trim(s);
    auto const dot = s.find('.');
    auto const whole = s.substr(0, dot);
    auto const frac = dot == std::string_view::npos ? std::string_view{} : s.substr(dot + 1);
    if (!all_digits(whole) || (dot != std::string_view::npos && !all_digits(frac))) {
        return std::nullopt;
    }
    std::int64_t ms = 0;
    for (char c : whole) {
        ms = std::min(ms * 10 + (c - '0') * scale, max_delay_ms);
    }
    std::int64_t unit = scale;
    for (char c : frac) {
        unit /= 10;
        ms = std::min(ms + (c - '0') * unit, max_delay_ms);
    }
    return milliseconds{ms};
}

// X-RateLimit-Reset: epoch seconds, or epoch milliseconds (13 digits today).
std::optional<time_point> parse_reset(std::string_view s) {
    s = trim(s);
    if (!all_digits(s) || s.size() > 15) {
        return std::nullopt;
    }
    std::int64_t const v = std::stoll(std::string{s});
    milliseconds const since_epoch = v >= 100'000'000'000 ? milliseconds{v} : milliseconds{v * 1000};
    return time_point{std::chrono::duration_cast<time_point::duration>(since_epoch)};
}

// ------------------------------------------------------------------ JSON

std::string_view sv(json::string const& s) { return {s.data(), s.size()}; }

// A member that is present and not null.
json::value const* member(json::object const& o, std::string_view key) {
    auto const* v = o.if_contains(key);
    return v != nullptr && !v->is_null() ? v : nullptr;
}

json::object const* object_member(json::object const& o, std::string_view key) {
    auto const* v = o.if_contains(key);
    return v != nullptr && v->is_object() ? &v->get_object() : nullptr;
}

std::string_view string_member(json::object const& o, std::string_view key) {
    auto const* v = o.if_contains(key);
    return v != nullptr && v->is_string() ? sv(v->get_string()) : std::string_view{};
}

// A JSON integer (or integral double) within [lo, hi].
std::optional<std::int64_t> integer(json::value const* v, std::int64_t lo, std::int64_t hi) {
    if (v == nullptr) {
        return std::nullopt;
    }
    std::int64_t x = 0;
    if (v->is_int64()) {
        x = v->get_int64();
    } else if (v->is_uint64()) {
        return std::nullopt;  // parsed integers are uint64 only above INT64_MAX: beyond every range used here
    } else if (v->is_double()) {
        double const d = v->get_double();
        if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || d != std::floor(d)) {
            return std::nullopt;
        }
        x = static_cast<std::int64_t>(d);
    } else {
        return std::nullopt;
    }
    if (x < lo || x > hi) {
        return std::nullopt;
    }
    return x;
}

std::optional<int> token_count(json::value const* v) {
    auto const x = integer(v, 0, INT_MAX);
    return x ? std::optional<int>{static_cast<int>(*x)} : std::nullopt;
}

// An HTTP-like status in an error body: an integer or a string of digits.
std::optional<int> as_status(json::value const& v) {
    if (v.is_string()) {
        auto const s = sv(v.get_string());
        if (!all_digits(s) || s.size() != 3 || s.front() == '0') {
            return std::nullopt;
        }
        return std::stoi(std::string{s});
    }
    auto const x = integer(&v, 100, 999);
    return x ? std::optional<int>{static_cast<int>(*x)} : std::nullopt;
}

// A present error: anything but null, false and "".
bool is_error(json::value const* v) {
    return v != nullptr && !(v->is_bool() && !v->get_bool()) && !(v->is_string() && v->get_string().empty());
}

// The choice with index 0 (or without an index), else the first object.
json::object const* pick_choice(json::object const& chunk) {
    auto const* choices = chunk.if_contains("choices");
    if (choices == nullptr || !choices->is_array()) {
        return nullptr;
    }
    json::object const* first = nullptr;
    for (auto const& c : choices->get_array()) {
        if (!c.is_object()) {
            continue;
        }
        auto const& o = c.get_object();
        auto const* index = member(o, "index");
        if (index == nullptr || integer(index, 0, 0)) {
            return &o;
        }
        if (first == nullptr) {
            first = &o;
        }
    }
    return first;
}

void set_if_empty(std::string& field, json::object const& o, std::string_view key) {
    if (field.empty()) {
        field = string_member(o, key);
    }
}

// A tool call's `arguments`: normally a JSON string; an object (seen from
// some providers) is taken as its JSON text.
void append_arguments(std::string& out, json::value const* v) {
    if (v == nullptr) {
        return;
    }
    if (v->is_string()) {
        out += sv(v->get_string());
    } else {
        out += json::serialize(*v);
    }
}

// ------------------------------------------------------ usage and its cost

// A SAX handler that keeps the text of the scalar at <root>.usage.cost.
struct cost_handler {
    static constexpr std::size_t max_object_size = std::size_t(-1);
    static constexpr std::size_t max_array_size = std::size_t(-1);
    static constexpr std::size_t max_key_size = std::size_t(-1);
    static constexpr std::size_t max_string_size = std::size_t(-1);

    std::string_view outer = "usage";  // the root's member holding the number ...
    std::string_view inner = "cost";   // ... and the number's key inside it
    int depth = 0;          // containers open
    bool usage_key = false; // the last key of the root object was `outer`
    bool in_usage = false;  // the container at depth 2 is the root's usage object
    bool cost_key = false;  // the last key of the usage object was "cost"
    std::string key;
    std::string text;       // the parts of the cost scalar read so far
    std::optional<std::string> cost;

    bool at_cost() const { return depth == 2 && in_usage && cost_key; }
    void scalar(std::string_view last) {
        if (at_cost()) {
            text += last;
            cost = std::move(text);
        }
        text.clear();
    }
    void other_scalar() {
        if (at_cost()) {
            cost.reset();
        }
    }
    void open(bool object) {
        if (depth == 1 && usage_key && object) {
            in_usage = true;
            cost.reset();
        }
        ++depth;
    }
    void close() {
        --depth;
        if (depth == 1) {
            in_usage = false;
        }
    }

    bool on_document_begin(json::error_code&) { return true; }
    bool on_document_end(json::error_code&) { return true; }
    bool on_object_begin(json::error_code&) {
        open(true);
        return true;
    }
    bool on_object_end(std::size_t, json::error_code&) {
        close();
        return true;
    }
    bool on_array_begin(json::error_code&) {
        open(false);
        return true;
    }
    bool on_array_end(std::size_t, json::error_code&) {
        close();
        return true;
    }
    bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
        key.append(s.data(), s.size());
        return true;
    }
    bool on_key(json::string_view s, std::size_t, json::error_code&) {
        key.append(s.data(), s.size());
        if (depth == 1) {
            usage_key = key == outer;
        } else if (depth == 2 && in_usage) {
            cost_key = key == inner;
        }
        key.clear();
        return true;
    }
    bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
        if (at_cost()) {
            text.append(s.data(), s.size());
        }
        return true;
    }
    bool on_string(json::string_view s, std::size_t, json::error_code&) {
        scalar({s.data(), s.size()});
        return true;
    }
    bool on_number_part(json::string_view s, json::error_code&) {
        if (at_cost()) {
            text.append(s.data(), s.size());
        }
        return true;
    }
    bool on_int64(std::int64_t, json::string_view s, json::error_code&) {
        scalar({s.data(), s.size()});
        return true;
    }
    bool on_uint64(std::uint64_t, json::string_view s, json::error_code&) {
        scalar({s.data(), s.size()});
        return true;
    }
    bool on_double(double, json::string_view s, json::error_code&) {
        scalar({s.data(), s.size()});
        return true;
    }
    bool on_bool(bool, json::error_code&) {
        other_scalar();
        return true;
    }
    bool on_null(json::error_code&) {
        other_scalar();
        return true;
    }
    bool on_comment_part(json::string_view, json::error_code&) { return true; }
    bool on_comment(json::string_view, json::error_code&) { return true; }
};

parley::net::usage read_usage(json::object const& u, std::string_view document) {
    parley::net::usage out;
    out.prompt_tokens = token_count(member(u, "prompt_tokens")).value_or(0);
    out.completion_tokens = token_count(member(u, "completion_tokens")).value_or(0);
    auto const sum = static_cast<std::int64_t>(out.prompt_tokens) + out.completion_tokens;
    out.total_tokens =
        token_count(member(u, "total_tokens")).value_or(static_cast<int>(std::min<std::int64_t>(sum, INT_MAX)));
    if (auto const* d = object_member(u, "prompt_tokens_details")) {
        out.cached_tokens = token_count(member(*d, "cached_tokens"));
        out.cache_write_tokens = token_count(member(*d, "cache_write_tokens"));
    }
    if (auto const* d = object_member(u, "completion_tokens_details")) {
        out.reasoning_tokens = token_count(member(*d, "reasoning_tokens"));
    }
    if (auto const* cost = member(u, "cost"); cost != nullptr && (cost->is_number() || cost->is_string())) {
        out.cost = raw_usage_cost(document);
    }
    return out;
}

// ------------------------------------------------------------------ errors

// The status metadata.error_type stands for (DER's table), 0 if unknown.
int status_for_error_type(std::string_view t) {
    struct entry {
        std::string_view type;
        int status;
    };
    static constexpr std::array<entry, 27> table{{
        {"context_length_exceeded", 400}, {"max_tokens_exceeded", 400}, {"token_limit_exceeded", 400},
        {"string_too_long", 400},         {"authentication", 401},      {"permission_denied", 403},
        {"payment_required", 402},        {"rate_limit_exceeded", 429}, {"provider_overloaded", 503},
        {"provider_unavailable", 502},    {"invalid_request", 400},     {"invalid_prompt", 400},
        {"not_found", 404},               {"precondition_failed", 412}, {"payload_too_large", 413},
        {"unprocessable", 422},           {"content_policy_violation", 400}, {"refusal", 400},
        {"invalid_image", 400},           {"image_too_large", 400},     {"image_too_small", 400},
        {"unsupported_image_format", 400}, {"image_not_found", 404},   {"image_download_failed", 400},
        {"server", 500},                  {"timeout", 504},             {"unmapped", 500},
    }};
    for (auto const& e : table) {
        if (e.type == t) {
            return e.status;
        }
    }
    return 0;
}

void read_copied_headers(upstream_error& e, json::object const& headers, bool retry_after_unset) {
    for (auto const& kv : headers) {
        if (!kv.value().is_string()) {
            continue;
        }
        std::string_view const name{kv.key().data(), kv.key().size()};
        auto const value = sv(kv.value().get_string());
        if (retry_after_unset && iequals(name, "retry-after")) {
            e.retry_after = parse_decimal_ms(value, 1000);
        } else if (iequals(name, "x-ratelimit-reset")) {
            e.rate_limit_reset = parse_reset(value);
        }
    }
}

void read_availability(upstream_error& e, json::object const& a) {
    if (auto const code = string_member(a, "code"); !code.empty()) {
        e.availability_code = bounded(code, max_error_field_bytes);
    }
    if (auto const* r = a.if_contains("retryable"); r != nullptr && r->is_bool()) {
        e.availability_retryable = r->get_bool();
    }
    if (auto const* r = member(a, "retry_after")) {
        if (r->is_string()) {
            e.retry_after = parse_decimal_ms(sv(r->get_string()), 1000);
        } else if (r->is_number()) {
            double const seconds = r->to_number<double>();
            if (seconds >= 0) {
                e.retry_after = milliseconds{std::llround(std::min(seconds * 1000, static_cast<double>(max_delay_ms)))};
            }
        }
    }
}

// An `error` value from a body or chunk. `http_status` >= 400 is the status;
// below that (a 200) the status comes from the error itself.
upstream_error error_from_value(json::value const& err, int http_status, bool mid_stream) {
    upstream_error e;
    e.mid_stream = mid_stream;
    std::optional<int> code_status;
    std::optional<int> body_http_status;
    if (err.is_object()) {
        auto const& o = err.get_object();
        if (auto const* code = member(o, "code")) {
            code_status = as_status(*code);
            if (code->is_string()) {
                e.code_text = bounded(sv(code->get_string()), max_error_field_bytes);
            } else if (code_status) {
                e.code_text = std::to_string(*code_status);
            } else {
                e.code_text = bounded(json::serialize(*code), max_error_field_bytes);
            }
        }
        if (auto const* hs = member(o, "http_status")) {
            body_http_status = as_status(*hs);
        }
        if (auto const* m = member(o, "message")) {
            e.message = m->is_string() ? bounded(sv(m->get_string())) : bounded(json::serialize(*m));
        }
        auto const* meta = object_member(o, "metadata");
        auto const* availability = object_member(o, "availability");
        if (meta != nullptr) {
            if (auto const t = string_member(*meta, "error_type"); !t.empty()) {
                e.error_type = bounded(t, max_error_field_bytes);
            }
            if (auto const* pc = member(*meta, "provider_code")) {
                e.provider_code = bounded(pc->is_string() ? sv(pc->get_string()) : json::serialize(*pc),
                                          max_error_field_bytes);
            }
            if (availability == nullptr) {
                availability = object_member(*meta, "availability");
            }
        }
        if (!e.error_type) {
            if (auto const t = string_member(o, "error_type"); !t.empty()) {
                e.error_type = bounded(t, max_error_field_bytes);
            }
        }
        if (availability != nullptr) {
            read_availability(e, *availability);
        }
        if (meta != nullptr) {
            if (auto const* headers = object_member(*meta, "headers")) {
                read_copied_headers(e, *headers, !e.retry_after);
            }
        }
    } else if (err.is_string()) {
        e.message = bounded(sv(err.get_string()));
    } else {
        e.message = bounded(json::serialize(err));
    }

    if (http_status >= 400) {
        e.status = http_status;
    } else if (code_status) {
        e.status = *code_status;
    } else if (body_http_status) {
        e.status = *body_http_status;
    } else if (int const s = e.error_type ? status_for_error_type(*e.error_type) : 0; s != 0) {
        e.status = s;
    } else if (e.code_text == "server_error") {
        e.status = 500;
    } else {
        e.status = http_status;
    }
    if (e.message.empty()) {
        e.message = "upstream error without a message";
    }
    e.retryable = e.availability_retryable.value_or(is_retryable_status(e.status));
    return e;
}

// A failure Parley detected itself (status 0).
upstream_error local_error(std::string code, std::string message, bool retryable, bool mid_stream) {
    upstream_error e;
    e.code_text = std::move(code);
    e.message = bounded(message);
    e.retryable = retryable;
    e.mid_stream = mid_stream;
    return e;
}

completion_result failure(upstream_error e) { return completion_result{boost::system::in_place_error, std::move(e)}; }

// ------------------------------------------------------------- tool calls

struct indexed_call {
    std::int64_t index = 0;
    tool_call call;
};

void check_arguments(tool_call& c) {
    if (trim(c.arguments).empty()) {
        c.arguments = "{}";  // parameterless tools: "" from non-OpenAI models
        c.arguments_valid = true;
        return;
    }
    json::error_code ec;
    json::monotonic_resource mr;
    auto const v = json::parse(c.arguments, ec, &mr);
    c.arguments_valid = !ec && v.is_object();
}

std::vector<tool_call> finish_calls(std::vector<indexed_call>& calls) {
    std::stable_sort(calls.begin(), calls.end(),
                     [](indexed_call const& a, indexed_call const& b) { return a.index < b.index; });
    std::vector<tool_call> out;
    out.reserve(calls.size());
    for (auto& c : calls) {
        check_arguments(c.call);
        out.push_back(std::move(c.call));
    }
    return out;
}

// ------------------------------------------------------------- HTTP dates

struct cursor {
    std::string_view s;
    std::size_t i = 0;

    bool lit(std::string_view t) {
        if (s.substr(i, t.size()) != t) {
            return false;
        }
        i += t.size();
        return true;
    }
    std::optional<int> digits(std::size_t n) {
        if (i + n > s.size()) {
            return std::nullopt;
        }
        int v = 0;
        for (std::size_t k = 0; k < n; ++k) {
            if (!is_digit(s[i + k])) {
                return std::nullopt;
            }
            v = v * 10 + (s[i + k] - '0');
        }
        i += n;
        return v;
    }
    bool letters() {
        std::size_t const start = i;
        while (i < s.size() && ((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z'))) {
            ++i;
        }
        return i > start;
    }
    std::optional<unsigned> month() {
        static constexpr std::array<std::string_view, 12> names{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        for (unsigned m = 0; m < names.size(); ++m) {
            if (lit(names[m])) {
                return m + 1;
            }
        }
        return std::nullopt;
    }
    // HH:MM:SS as seconds since midnight (a leap second 60 is accepted).
    std::optional<int> time_of_day() {
        auto const h = digits(2);
        if (!h || !lit(":")) {
            return std::nullopt;
        }
        auto const m = digits(2);
        if (!m || !lit(":")) {
            return std::nullopt;
        }
        auto const sec = digits(2);
        if (!sec || *h > 23 || *m > 59 || *sec > 60) {
            return std::nullopt;
        }
        return *h * 3600 + *m * 60 + *sec;
    }
    bool done() const { return i == s.size(); }
};

std::optional<time_point> make_time(int year, unsigned month, int day, int seconds) {
    std::chrono::year_month_day const ymd{std::chrono::year{year}, std::chrono::month{month},
                                          std::chrono::day{static_cast<unsigned>(day)}};
    if (!ymd.ok()) {
        return std::nullopt;
    }
    return time_point{std::chrono::sys_days{ymd}} + std::chrono::seconds{seconds};
}

// Sun, 06 Nov 1994 08:49:37 GMT
std::optional<time_point> imf_fixdate(std::string_view s) {
    cursor c{s};
    if (!c.letters() || !c.lit(", ")) {
        return std::nullopt;
    }
    auto const day = c.digits(2);
    if (!day || !c.lit(" ")) {
        return std::nullopt;
    }
    auto const month = c.month();
    if (!month || !c.lit(" ")) {
        return std::nullopt;
    }
    auto const year = c.digits(4);
    if (!year || !c.lit(" ")) {
        return std::nullopt;
    }
    auto const tod = c.time_of_day();
    if (!tod || !c.lit(" GMT") || !c.done()) {
        return std::nullopt;
    }
    return make_time(*year, *month, *day, *tod);
}

// Sunday, 06-Nov-94 08:49:37 GMT (two-digit years: 70-99 -> 19xx, else 20xx)
std::optional<time_point> rfc850_date(std::string_view s) {
    cursor c{s};
    if (!c.letters() || !c.lit(", ")) {
        return std::nullopt;
    }
    auto const day = c.digits(2);
    if (!day || !c.lit("-")) {
        return std::nullopt;
    }
    auto const month = c.month();
    if (!month || !c.lit("-")) {
        return std::nullopt;
    }
    auto const yy = c.digits(2);
    if (!yy || !c.lit(" ")) {
        return std::nullopt;
    }
    auto const tod = c.time_of_day();
    if (!tod || !c.lit(" GMT") || !c.done()) {
        return std::nullopt;
    }
    return make_time(*yy >= 70 ? 1900 + *yy : 2000 + *yy, *month, *day, *tod);
}

// Sun Nov  6 08:49:37 1994
std::optional<time_point> asctime_date(std::string_view s) {
    cursor c{s};
    if (!c.letters() || !c.lit(" ")) {
        return std::nullopt;
    }
    auto const month = c.month();
    if (!month || !c.lit(" ")) {
        return std::nullopt;
    }
    auto const day = c.lit(" ") ? c.digits(1) : c.digits(2);
    if (!day || !c.lit(" ")) {
        return std::nullopt;
    }
    auto const tod = c.time_of_day();
    if (!tod || !c.lit(" ")) {
        return std::nullopt;
    }
    auto const year = c.digits(4);
    if (!year || !c.done()) {
        return std::nullopt;
    }
    return make_time(*year, *month, *day, *tod);
}

}  // namespace

// ------------------------------------------------------------ public: misc

void throw_exception_from_error(upstream_error const& e, boost::source_location const& loc) {
    std::ostringstream os;
    os << e;
    boost::throw_exception(std::runtime_error(os.str()), loc);
}

std::ostream& operator<<(std::ostream& os, upstream_error const& e) {
    os << "upstream_error{status=" << e.status << " code=" << e.code_text;
    if (e.error_type) {
        os << " type=" << *e.error_type;
    }
    os << " retryable=" << (e.retryable ? "true" : "false") << " mid_stream=" << (e.mid_stream ? "true" : "false")
       << " message=\"" << e.message << "\"}";
    return os;
}

bool is_retryable_status(int status) noexcept {
    switch (status) {
    case 408:
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
    case 524:
    case 529:
        return true;
    default:
        return false;
    }
}

std::optional<time_point> parse_http_date(std::string_view value) {
    value = trim(value);
    if (auto t = imf_fixdate(value)) {
        return t;
    }
    if (auto t = rfc850_date(value)) {
        return t;
    }
    return asctime_date(value);
}

std::optional<milliseconds> parse_retry_after(std::string_view value, time_point now) {
    if (auto const delay = parse_decimal_ms(value, 1000)) {
        return delay;
    }
    auto const at = parse_http_date(value);
    if (!at) {
        return std::nullopt;
    }
    if (*at <= now) {
        return milliseconds{0};
    }
    return std::chrono::ceil<milliseconds>(*at - now);
}

std::optional<std::string> plain_decimal(std::string_view n) {
    // -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
    std::size_t i = 0;
    bool const negative = i < n.size() && n[i] == '-';
    if (negative) {
        ++i;
    }
    std::size_t const int_start = i;
    while (i < n.size() && is_digit(n[i])) {
        ++i;
    }
    auto const int_part = n.substr(int_start, i - int_start);
    if (int_part.empty() || (int_part.size() > 1 && int_part.front() == '0')) {
        return std::nullopt;
    }
    std::string_view frac_part;
    if (i < n.size() && n[i] == '.') {
        std::size_t const start = ++i;
        while (i < n.size() && is_digit(n[i])) {
            ++i;
        }
        frac_part = n.substr(start, i - start);
        if (frac_part.empty()) {
            return std::nullopt;
        }
    }
    if (i == n.size()) {
        return std::string{n};  // no exponent: the text is already plain
    }
    if (n[i] != 'e' && n[i] != 'E') {
        return std::nullopt;
    }
    ++i;
    bool const negative_exp = i < n.size() && n[i] == '-';
    if (i < n.size() && (n[i] == '-' || n[i] == '+')) {
        ++i;
    }
    auto const exp_text = n.substr(i);
    if (!all_digits(exp_text)) {
        return std::nullopt;
    }
    int exp = 0;
    for (char c : exp_text) {
        exp = exp * 10 + (c - '0');
        if (exp > max_plain_exponent) {
            return std::nullopt;
        }
    }
    if (negative_exp) {
        exp = -exp;
    }
    std::string const digits = std::string{int_part} + std::string{frac_part};
    auto const point = static_cast<std::ptrdiff_t>(int_part.size()) + exp;  // digits before the decimal point
    auto const size = static_cast<std::ptrdiff_t>(digits.size());
    std::string out;
    if (point <= 0) {
        out = "0." + std::string(static_cast<std::size_t>(-point), '0') + digits;
    } else if (point >= size) {
        out = digits + std::string(static_cast<std::size_t>(point - size), '0');
    } else {
        out = digits.substr(0, static_cast<std::size_t>(point)) + "." + digits.substr(static_cast<std::size_t>(point));
    }
    while (out.size() > 1 && out[0] == '0' && out[1] != '.') {
        out.erase(0, 1);  // "05" -> "5", "00.5" -> "0.5"
    }
    return negative ? "-" + out : out;
}

std::optional<std::string> raw_usage_cost(std::string_view json_text) {
    return raw_member_number(json_text, "usage", "cost");
}

std::optional<std::string> raw_member_number(std::string_view json_text, std::string_view outer, std::string_view inner) {
    json::parse_options options;
    options.allow_comments = true;  // harmless leniency: the reader only passes documents it already parsed
    json::basic_parser<cost_handler> p{options};
    p.handler().outer = outer;
    p.handler().inner = inner;
    json::error_code ec;
    p.write_some(false, json_text.data(), json_text.size(), ec);
    if (ec || !p.handler().cost) {
        return std::nullopt;
    }
    return plain_decimal(*p.handler().cost);
}

// ---------------------------------------------------------- public: classify

upstream_error classify(int http_status, std::string_view body, header_lookup const& headers, time_point now) {
    auto const text = trim(body);
    std::optional<upstream_error> from_body;
    if (!text.empty() && text.front() == '{' && text.size() <= max_error_body_bytes) {
        json::error_code ec;
        json::monotonic_resource mr;
        auto const v = json::parse(text, ec, &mr);
        if (!ec && v.is_object()) {
            if (auto const* err = member(v.get_object(), "error"); is_error(err)) {
                from_body = error_from_value(*err, http_status, false);
            }
        }
    }
    upstream_error e;
    if (from_body) {
        e = std::move(*from_body);
    } else {
        e.status = http_status;
        std::string const detail =
            text.empty() ? std::string{" with an empty body"} : " without a JSON error: " + ascii_snippet(text);
        e.message = bounded("HTTP " + std::to_string(http_status) + " from upstream" + detail);
        e.retryable = is_retryable_status(http_status);
    }
    if (headers) {
        std::optional<milliseconds> delay;
        if (auto const v = headers("retry-after-ms")) {
            delay = parse_decimal_ms(*v, 1);
        }
        if (!delay) {
            if (auto const v = headers("retry-after")) {
                delay = parse_retry_after(*v, now);
            }
        }
        if (delay) {
            e.retry_after = delay;
        }
        if (auto const v = headers("x-ratelimit-reset")) {
            if (auto const reset = parse_reset(*v)) {
                e.rate_limit_reset = reset;
            }
        }
    }
    return e;
}

upstream_error classify(int http_status, std::string_view body) {
    return classify(http_status, body, header_lookup{}, time_point{});
}

// ---------------------------------------------------- public: whole bodies

completion_result parse_completion(std::string_view body) {
    auto const text = trim(body);
    if (text.empty()) {
        return failure(local_error("empty_body", "the response body was empty or only whitespace", true, false));
    }
    json::error_code ec;
    json::monotonic_resource mr;
    auto const v = json::parse(text, ec, &mr);
    if (ec) {
        return failure(
            local_error("invalid_json", "the response body is not valid JSON: " + ec.message(), true, false));
    }
    if (!v.is_object()) {
        return failure(local_error("invalid_json", "the response body is not a JSON object", true, false));
    }
    auto const& root = v.get_object();
    if (auto const* err = member(root, "error"); is_error(err)) {
        return failure(error_from_value(*err, 200, false));
    }
    auto const* choice = pick_choice(root);
    if (choice == nullptr) {
        return failure(local_error("no_choices", "the response has no choices", true, false));
    }
    if (auto const* err = member(*choice, "error"); is_error(err)) {
        return failure(error_from_value(*err, 200, false));
    }
    completion c;
    c.finish_reason = string_member(*choice, "finish_reason");
    c.native_finish_reason = string_member(*choice, "native_finish_reason");
    if (c.finish_reason == "error") {
        return failure(local_error("finish_reason_error", "the response's finish_reason is \"error\"", true, false));
    }
    c.generation_id = string_member(root, "id");
    c.model = string_member(root, "model");
    c.provider = string_member(root, "provider");
    if (auto const* u = object_member(root, "usage")) {
        c.usage = read_usage(*u, text);
    }
    if (auto const* message = object_member(*choice, "message")) {
        if (auto const* content = member(*message, "content")) {
            if (content->is_string()) {
                c.text = sv(content->get_string());
            } else if (content->is_array()) {
                for (auto const& part : content->get_array()) {  // [{"type":"text","text":...}]
                    if (part.is_object()) {
                        c.text += string_member(part.get_object(), "text");
                    }
                }
            }
        }
        c.reasoning = string_member(*message, "reasoning");
        if (auto const* calls = member(*message, "tool_calls"); calls != nullptr && calls->is_array()) {
            std::vector<indexed_call> pending;
            for (auto const& item : calls->get_array()) {
                if (!item.is_object()) {
                    continue;
                }
                auto const& o = item.get_object();
                indexed_call ic;
                ic.index = integer(member(o, "index"), INT_MIN, INT_MAX)
                               .value_or(static_cast<std::int64_t>(pending.size()));
                ic.call.id = string_member(o, "id");
                if (auto const* fn = object_member(o, "function")) {
                    ic.call.name = string_member(*fn, "name");
                    append_arguments(ic.call.arguments, member(*fn, "arguments"));
                }
                pending.push_back(std::move(ic));
            }
            c.tool_calls = finish_calls(pending);
        }
    }
    return c;
}

// -------------------------------------------------------- public: streams

openrouter_stream::openrouter_stream(stream_options options)
    : options_{std::move(options)}, decoder_{options_.max_event_bytes} {}

openrouter_stream::status openrouter_stream::feed(std::string_view bytes) {
    if (status_ != status::reading) {
        return status_;
    }
    bool const ok = decoder_.feed(bytes, [this](sse_event const& ev) { on_event(ev); });
    if (!ok && status_ == status::reading) {
        fail(local_error("event_too_large",
                         "a stream event exceeded " + std::to_string(decoder_.max_event_bytes()) + " bytes", false,
                         true));
    }
    return status_;
}

void openrouter_stream::on_event(sse_event const& ev) {
    if (status_ != status::reading) {
        return;  // after [DONE] or a failure
    }
    ++data_events_;
    auto const data = trim(ev.data);
    if (data == "[DONE]") {
        result_.saw_done = true;
        status_ = status::done;
        return;
    }
    if (data.empty() || data.front() == ':') {
        ++ignored_events_;  // "data: : OPENROUTER PROCESSING" from a proxy: a keep-alive
        return;
    }
    on_chunk(data);
}

void openrouter_stream::on_chunk(std::string_view text) {
    std::array<unsigned char, 4096> buffer;  // most chunks fit: no heap allocation for the DOM
    json::monotonic_resource mr{buffer.data(), buffer.size()};
    json::error_code ec;
    auto const v = json::parse(text, ec, &mr);
    if (ec) {
        fail(local_error("invalid_json",
                         "a stream event is not valid JSON (" + ec.message() + "): " + ascii_snippet(text), true,
                         true));
        return;
    }
    if (!v.is_object()) {
        fail(local_error("invalid_json", "a stream event is not a JSON object: " + ascii_snippet(text), true, true));
        return;
    }
    auto const& chunk = v.get_object();
    set_if_empty(result_.generation_id, chunk, "id");
    set_if_empty(result_.model, chunk, "model");
    set_if_empty(result_.provider, chunk, "provider");
    if (auto const* u = object_member(chunk, "usage")) {
        result_.usage = read_usage(*u, text);
    }
    if (auto const* err = member(chunk, "error"); is_error(err)) {
        fail(error_from_value(*err, 200, true));
        return;
    }
    auto const* choice = pick_choice(chunk);
    if (choice == nullptr) {
        return;  // the usage chunk of Mar 2026, a debug chunk
    }
    if (auto const* err = member(*choice, "error"); is_error(err)) {
        fail(error_from_value(*err, 200, true));
        return;
    }
    auto const* delta = object_member(*choice, "delta");
    if (delta != nullptr && !finished_) {
        if (auto const content = string_member(*delta, "content"); !content.empty()) {
            result_.text += content;
            if (options_.on_text) {
                options_.on_text(content);
            }
        }
        result_.reasoning += string_member(*delta, "reasoning");
        if (auto const* calls = member(*delta, "tool_calls"); calls != nullptr && calls->is_array()) {
            for (auto const& item : calls->get_array()) {
                if (!item.is_object()) {
                    continue;
                }
                auto const& f = item.get_object();
                auto const index = static_cast<int>(integer(member(f, "index"), INT_MIN, INT_MAX).value_or(0));
                auto const id = string_member(f, "id");
                auto it = current_call_.find(index);
                if (it == current_call_.end() || (!id.empty() && !calls_[it->second].call.id.empty() &&
                                                  calls_[it->second].call.id != id)) {
                    // A new index, or a new id on a used index (parallel calls sharing one index).
                    calls_.push_back(pending_call{index, {}});
                    it = current_call_.insert_or_assign(index, calls_.size() - 1).first;
                }
                auto& call = calls_[it->second].call;
                if (call.id.empty()) {
                    call.id = id;
                }
                if (auto const* fn = object_member(f, "function")) {
                    set_if_empty(call.name, *fn, "name");
                    append_arguments(call.arguments, member(*fn, "arguments"));
                }
            }
        }
    }
    auto const finish_reason = string_member(*choice, "finish_reason");
    if (!finished_ && !finish_reason.empty()) {
        result_.finish_reason = finish_reason;
        finished_ = true;
    }
    set_if_empty(result_.native_finish_reason, *choice, "native_finish_reason");
    if (finish_reason == "error") {
        fail(local_error("finish_reason_error", "the stream ended with finish_reason \"error\" and no error object",
                         true, true));
    }
}

void openrouter_stream::fail(upstream_error e) {
    status_ = status::failed;
    error_ = std::move(e);
}

completion_result openrouter_stream::finish() {
    if (status_ == status::reading) {
        auto const end = decoder_.finish();
        if (!finished_) {
            fail(local_error("stream_ended_early",
                             end == sse_end::truncated
                                 ? "stream ended early: the body ended inside an event, before any finish reason"
                                 : "stream ended early: no [DONE] and no finish reason",
                             true, true));
        } else {
            status_ = status::done;
        }
    }
    if (status_ == status::failed) {
        return failure(*error_);
    }
    std::vector<indexed_call> calls;
    calls.reserve(calls_.size());
    for (auto& c : calls_) {
        calls.push_back(indexed_call{c.index, std::move(c.call)});
    }
    calls_.clear();
    current_call_.clear();
    result_.tool_calls = finish_calls(calls);
    return completion_result{boost::system::in_place_value, std::move(result_)};
}

}  // namespace parley::net
