#pragma once
// Model prices and the cost of one upstream call (ARCHITECTURE §3, §6).
// Per-token prices are integer pico-dollars (1e-12 USD), so OpenRouter's
// decimal price strings ("0.0000000375") are exact; a call's cost is summed
// in pico-dollars without overflow and rounded once, to nano-dollars. No
// double is ever involved, from the models list to the ai_usage row.
#include "domain/money.hpp"

#include <boost/system/result.hpp>

#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace parley::domain {

inline constexpr std::int64_t picos_per_usd = 1'000'000'000'000;
inline constexpr std::int64_t picos_per_nano = 1'000;

// USD per token in pico-dollars (1e-12 USD): prices like 0.0000000375 are exact.
struct token_price {
    std::int64_t picos = 0;

    friend auto operator<=>(token_price, token_price) = default;
};

// What one model charges, per token of each kind.
struct model_price {
    token_price prompt, completion, cache_read, cache_write;   // per token

    friend bool operator==(model_price const&, model_price const&) = default;
};

// A non-negative plain decimal of USD per token ("0.000003", "0", "007.5"):
// digits, optionally a '.' and at least one digit. Up to 12 decimals are
// exact; further decimals are rounded half-up at the 12th ("0.0000000000005"
// -> 1 pico). Rejects signs ("-1" is OpenRouter's "variable price"),
// exponents ("3e-6"), spaces, "", ".", ".5", "5." and values beyond int64
// pico-dollars (about 9.2 million USD per token).
std::optional<token_price> parse_token_price(std::string_view decimal);

// The shortest exact decimal: 3'000'000 picos -> "0.000003", 0 -> "0",
// 1'500'000'000'000 -> "1.5", 37'500 -> "0.0000000375". parse_token_price
// reads it back to the same value. A negative value (never parsed, only
// constructed) is printed with a leading '-'.
std::string format_token_price(token_price p);

// The token counts of one call, as OpenRouter's usage reports them.
struct token_counts {
    std::int64_t input = 0;        // OpenRouter's prompt_tokens: includes cached and cache_write tokens
    std::int64_t output = 0;
    std::int64_t cached = 0;       // cache reads
    std::int64_t cache_write = 0;

    friend bool operator==(token_counts const&, token_counts const&) = default;
};

// (input - cached - cache_write) * prompt + cached * cache_read
//   + cache_write * cache_write + output * completion,
// summed exactly in pico-dollars and rounded half-up to nano-dollars
// (500 picos -> 1 nano, 499 -> 0). Negative counts and negative prices count
// as 0; when cached + cache_write exceed input, the uncached part is 0 (never
// negative) and the cache parts are still charged in full. Exact for every
// int64 count and price (128-bit sums); a result beyond int64 nano-dollars
// saturates at the int64 maximum instead of wrapping.
nano_usd cost_of(model_price const& price, token_counts const& counts);

// The most one call can cost, for a reservation made before the call:
// prompt_upper tokens at max(prompt, cache_write) (a cache write is the
// dearest way to send a prompt token) plus max_output tokens at completion,
// rounded UP to whole nano-dollars, so it is never below cost_of() of any
// call within those bounds. Negative counts and prices count as 0;
// saturates like cost_of.
nano_usd worst_case_cost(model_price const& price, std::int64_t prompt_upper, std::int64_t max_output);

// Prices by OpenRouter model id ("anthropic/claude-3.5-sonnet").
class price_table {
public:
    // Adds or replaces the price of `model`.
    void set(std::string model, model_price price);

    // The exact id, else the id without a ":variant" suffix (from its last
    // ':'): "x/y:free" -> "x/y"; nullptr when neither is known. The pointer
    // is valid until the table is next changed.
    model_price const* find(std::string_view model) const;

    // Field-wise maximum over every entry (all zero when empty): the
    // conservative price for an unknown model.
    model_price highest() const;

    bool empty() const noexcept;
    std::size_t size() const noexcept;
    std::map<std::string, model_price, std::less<>> const& entries() const noexcept;

    friend bool operator==(price_table const&, price_table const&) = default;

private:
    std::map<std::string, model_price, std::less<>> entries_;
};

// The built-in table, used until (or unless) OpenRouter's list is fetched:
// anthropic/claude-3.5-sonnet: prompt 0.000003, completion 0.000015,
// cache_read 0.0000003, cache_write 0.00000375.
price_table default_price_table();

// The largest body parse_models_pricing accepts (16 MiB; OpenRouter's list
// is about 1 MiB).
inline constexpr std::size_t max_models_body_bytes = std::size_t{16} * 1024 * 1024;

// The outcome of reading OpenRouter's models list: the prices, and how many
// entries could not be used.
struct models_pricing {
    price_table table;
    std::size_t skipped = 0;
};

// Reads the body of OpenRouter's GET /api/v1/models:
//   {"data":[{"id":"x/y","pricing":{"prompt":"0.000003","completion":"0.000015",
//             "input_cache_read":"0.0000003","input_cache_write":"0.00000375", ...}, ...}, ...]}
// Prices are decimal strings; a JSON number is accepted too, read from its
// exact source text (so 0.000003 is not rounded through a double; 3e-6 is
// rejected as parse_token_price rejects it). Missing or null cache prices
// are 0. An entry is skipped (and counted in `skipped`) when it is not an
// object, has no string id (or an empty one), has no pricing object, has a
// missing or unparsable prompt or completion ("-1" is OpenRouter's
// "variable"), or has a cache price that is present but unparsable (a wrong
// price is worse than an unknown model, which is priced at highest()).
// A later entry with the same id replaces the earlier one. Error (a one-line
// message) when the body exceeds max_models_body_bytes, is not JSON, or has
// no top-level "data" array. (Use has_value(), * and error(): value() does
// not compile for a std::string error.)
boost::system::result<models_pricing, std::string> parse_models_pricing(std::string_view json_body);

}  // namespace parley::domain
