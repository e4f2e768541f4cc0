#include "domain/pricing.hpp"

#include <boost/json/array.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_stack.hpp>

#include <algorithm>
#include <exception>
#include <limits>
#include <utility>

namespace parley::domain {

namespace json = boost::json;

namespace {

// Token counts times pico-dollar prices: each product of two non-negative
// int64 values is below 2^126, so a sum of four stays below 2^128.
__extension__ typedef unsigned __int128 u128;

constexpr std::int64_t max64 = std::numeric_limits<std::int64_t>::max();
constexpr std::size_t exact_decimals = 12;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// |n| without overflow, also for INT64_MIN.
std::uint64_t magnitude(std::int64_t n) {
    return n < 0 ? std::uint64_t{0} - static_cast<std::uint64_t>(n) : static_cast<std::uint64_t>(n);
}

// Negative counts and prices count as 0.
u128 non_negative(std::int64_t n) { return n > 0 ? static_cast<u128>(n) : 0; }

// Nano-dollars beyond int64 become the int64 maximum rather than wrapping.
nano_usd saturate(u128 nanos) {
    return nano_usd{nanos > static_cast<u128>(max64) ? max64 : static_cast<std::int64_t>(nanos)};
}

// ------------------------------------------------------- the models list JSON

// Numbers reach the value tree as strings of their exact source text behind
// this byte. No parsed JSON string can contain it (the parser rejects
// invalid UTF-8, and 0xFF is never valid UTF-8), so a price written as a
// number keeps its decimal text instead of passing through a double, and a
// number is still told apart from a string (an id must be a string).
constexpr char number_mark = '\xff';

// Boost.JSON's own value-building handler (boost/json/detail/handler.hpp),
// except for numbers.
struct exact_number_handler {
    static constexpr std::size_t max_object_size = json::object::max_size();
    static constexpr std::size_t max_array_size = json::array::max_size();
    static constexpr std::size_t max_key_size = json::string::max_size();
    static constexpr std::size_t max_string_size = json::string::max_size();

    json::value_stack st;
    std::string number{number_mark};   // the mark, then the text of the number being read

    bool on_document_begin(json::error_code&) { return true; }
    bool on_document_end(json::error_code&) { return true; }
    bool on_object_begin(json::error_code&) { return true; }
    bool on_object_end(std::size_t n, json::error_code&) {
        st.push_object(n);
        return true;
    }
    bool on_array_begin(json::error_code&) { return true; }
    bool on_array_end(std::size_t n, json::error_code&) {
        st.push_array(n);
        return true;
    }
    bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
        st.push_chars(s);
        return true;
    }
    bool on_key(json::string_view s, std::size_t, json::error_code&) {
        st.push_key(s);
        return true;
    }
    bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
        st.push_chars(s);
        return true;
    }
    bool on_string(json::string_view s, std::size_t, json::error_code&) {
        st.push_string(s);
        return true;
    }
    // A number's text may come in parts; the last part comes with its value.
    bool on_number_part(json::string_view s, json::error_code&) {
        number.append(s.data(), s.size());
        return true;
    }
    bool end_number(json::string_view s) {
        number.append(s.data(), s.size());
        st.push_string(number);
        number.assign(1, number_mark);
        return true;
    }
    bool on_int64(std::int64_t, json::string_view s, json::error_code&) { return end_number(s); }
    bool on_uint64(std::uint64_t, json::string_view s, json::error_code&) { return end_number(s); }
    bool on_double(double, json::string_view s, json::error_code&) { return end_number(s); }
    bool on_bool(bool b, json::error_code&) {
        st.push_bool(b);
        return true;
    }
    bool on_null(json::error_code&) {
        st.push_null();
        return true;
    }
    bool on_comment_part(json::string_view, json::error_code&) { return true; }
    bool on_comment(json::string_view, json::error_code&) { return true; }
};

// A JSON string that was a string in the source (not a marked number).
std::optional<std::string_view> plain_string(json::value const* v) {
    auto const* s = v == nullptr ? nullptr : v->if_string();
    if (s == nullptr || (!s->empty() && s->front() == number_mark)) {
        return std::nullopt;
    }
    return std::string_view{s->data(), s->size()};
}

// pricing[key]: `when_missing` when absent or null; nullopt when present
// but not a parsable price (a decimal string or a plain decimal number).
std::optional<token_price> price_field(json::object const& pricing, std::string_view key,
                                       std::optional<token_price> when_missing) {
    auto const* v = pricing.if_contains(key);
    if (v == nullptr || v->is_null()) {
        return when_missing;
    }
    auto const* s = v->if_string();
    if (s == nullptr) {
        return std::nullopt;
    }
    std::string_view text{s->data(), s->size()};
    if (!text.empty() && text.front() == number_mark) {
        text.remove_prefix(1);
    }
    return parse_token_price(text);
}

// One element of "data", or nullopt when it must be skipped.
std::optional<std::pair<std::string_view, model_price>> read_entry(json::value const& entry) {
    auto const* object = entry.if_object();
    if (object == nullptr) {
        return std::nullopt;
    }
    auto const id = plain_string(object->if_contains("id"));
    auto const* pricing_value = object->if_contains("pricing");
    auto const* pricing = pricing_value == nullptr ? nullptr : pricing_value->if_object();
    if (!id || id->empty() || pricing == nullptr) {
        return std::nullopt;
    }
    auto const prompt = price_field(*pricing, "prompt", std::nullopt);
    auto const completion = price_field(*pricing, "completion", std::nullopt);
    auto const cache_read = price_field(*pricing, "input_cache_read", token_price{});
    auto const cache_write = price_field(*pricing, "input_cache_write", token_price{});
    if (!prompt || !completion || !cache_read || !cache_write) {
        return std::nullopt;
    }
    return std::pair{*id, model_price{*prompt, *completion, *cache_read, *cache_write}};
}

}  // namespace

// ------------------------------------------------------------------- prices

std::optional<token_price> parse_token_price(std::string_view text) {
    auto const dot = text.find('.');
    auto const whole_text = text.substr(0, dot);
    auto const frac_text = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
    if (whole_text.empty() || (dot != std::string_view::npos && frac_text.empty())) {
        return std::nullopt;
    }
    std::int64_t whole = 0;
    for (char c : whole_text) {
        if (!is_digit(c)) {
            return std::nullopt;
        }
        whole = whole * 10 + (c - '0');
        if (whole > max64 / picos_per_usd) {
            return std::nullopt;
        }
    }
    // The first 12 decimals exactly; the 13th decides the rounding (half-up:
    // 5 or more rounds up whatever follows); every one must be a digit.
    std::int64_t frac = 0;
    bool round_up = false;
    for (std::size_t i = 0; i != std::max(frac_text.size(), exact_decimals); ++i) {
        char const c = i < frac_text.size() ? frac_text[i] : '0';
        if (!is_digit(c)) {
            return std::nullopt;
        }
        if (i < exact_decimals) {
            frac = frac * 10 + (c - '0');
        } else if (i == exact_decimals) {
            round_up = c >= '5';
        }
    }
    frac += round_up ? 1 : 0;
    if (frac > max64 - whole * picos_per_usd) {
        return std::nullopt;
    }
    return token_price{whole * picos_per_usd + frac};
}

std::string format_token_price(token_price p) {
    auto const units = magnitude(p.picos);
    auto const per_usd = static_cast<std::uint64_t>(picos_per_usd);
    std::string out = p.picos < 0 ? "-" : "";
    out += std::to_string(units / per_usd);
    if (auto const frac = units % per_usd; frac != 0) {
        std::string digits = std::to_string(frac);
        digits.insert(0, exact_decimals - digits.size(), '0');
        while (digits.back() == '0') {
            digits.pop_back();
        }
        out += '.';
        out += digits;
    }
    return out;
}

nano_usd cost_of(model_price const& price, token_counts const& counts) {
    auto const input = non_negative(counts.input);
    auto const cached = non_negative(counts.cached);
    auto const written = non_negative(counts.cache_write);
    auto const output = non_negative(counts.output);
    // cached + written < 2^64: no overflow in the comparison or the difference.
    auto const uncached = cached + written >= input ? u128{0} : input - cached - written;
    u128 const picos = uncached * non_negative(price.prompt.picos) + cached * non_negative(price.cache_read.picos) +
                       written * non_negative(price.cache_write.picos) +
                       output * non_negative(price.completion.picos);
    // Half-up to nanos; picos < 2^128 - 2^65, so + 500 cannot wrap.
    return saturate((picos + picos_per_nano / 2) / picos_per_nano);
}

nano_usd worst_case_cost(model_price const& price, std::int64_t prompt_upper, std::int64_t max_output) {
    auto const prompt_price = std::max(non_negative(price.prompt.picos), non_negative(price.cache_write.picos));
    u128 const picos =
        non_negative(prompt_upper) * prompt_price + non_negative(max_output) * non_negative(price.completion.picos);
    // Up to whole nanos: a reservation is never below the real cost.
    return saturate((picos + picos_per_nano - 1) / picos_per_nano);
}

// -------------------------------------------------------------- price table

void price_table::set(std::string model, model_price price) { entries_.insert_or_assign(std::move(model), price); }

model_price const* price_table::find(std::string_view model) const {
    if (auto const it = entries_.find(model); it != entries_.end()) {
        return &it->second;
    }
    auto const colon = model.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
        return nullptr;
    }
    auto const it = entries_.find(model.substr(0, colon));
    return it == entries_.end() ? nullptr : &it->second;
}

model_price price_table::highest() const {
    model_price out;
    for (auto const& [model, p] : entries_) {
        out.prompt = std::max(out.prompt, p.prompt);
        out.completion = std::max(out.completion, p.completion);
        out.cache_read = std::max(out.cache_read, p.cache_read);
        out.cache_write = std::max(out.cache_write, p.cache_write);
    }
    return out;
}

bool price_table::empty() const noexcept { return entries_.empty(); }

std::size_t price_table::size() const noexcept { return entries_.size(); }

std::map<std::string, model_price, std::less<>> const& price_table::entries() const noexcept { return entries_; }

price_table default_price_table() {
    price_table table;
    table.set("anthropic/claude-3.5-sonnet", model_price{
                                                 .prompt = token_price{3'000'000},
                                                 .completion = token_price{15'000'000},
                                                 .cache_read = token_price{300'000},
                                                 .cache_write = token_price{3'750'000},
                                             });
    return table;
}

// -------------------------------------------------------------- models list

boost::system::result<models_pricing, std::string> parse_models_pricing(std::string_view json_body) {
    if (json_body.size() > max_models_body_bytes) {
        return "models list too large: " + std::to_string(json_body.size()) + " bytes (the limit is " +
               std::to_string(max_models_body_bytes) + ")";
    }
    json::value doc;
    try {
        json::basic_parser<exact_number_handler> parser{json::parse_options{}};
        parser.handler().st.reset();
        json::error_code ec;
        auto const used = parser.write_some(false, json_body.data(), json_body.size(), ec);
        if (ec) {
            return "models list is not JSON: " + ec.message();
        }
        if (used < json_body.size()) {
            return std::string{"models list is not JSON: extra data after the document"};
        }
        doc = parser.handler().st.release();
    } catch (std::exception const& e) {   // out of memory, or a container beyond its maximum size
        return std::string{"models list could not be read: "} + e.what();
    }

    auto const* root = doc.if_object();
    auto const* data = root == nullptr ? nullptr : root->if_contains("data");
    if (data == nullptr || !data->is_array()) {
        return std::string{"models list has no \"data\" array"};
    }
    models_pricing out;
    for (auto const& entry : data->get_array()) {
        if (auto const read = read_entry(entry)) {
            out.table.set(std::string{read->first}, read->second);
        } else {
            ++out.skipped;
        }
    }
    return out;
}

}  // namespace parley::domain
