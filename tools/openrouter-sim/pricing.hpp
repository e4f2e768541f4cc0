#pragma once
// The simulator's model and price table, and exact money arithmetic in
// integer nano-dollars (1e-9 USD).
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace parley::sim {

enum class model_family { anthropic, openai, meta };

struct model_info {
    std::string_view id;          // what clients ask for
    std::string_view name;        // display name
    std::string_view served_as;   // the "model" reported in answers (often dated)
    std::string_view provider;    // provider name in answers
    model_family family;
    std::uint32_t context_length;
    std::uint32_t max_completion_tokens;
    // Pricing, as OpenRouter lists it: decimal strings of USD per token
    // (per request for `request`, per image for `image`).
    std::string_view prompt, completion, request, image, cache_read, cache_write;
    // The same in nano-dollars, filled in from the strings.
    std::int64_t prompt_nano = 0, completion_nano = 0, request_nano = 0, cache_read_nano = 0,
                 cache_write_nano = 0;
};

std::span<model_info const> model_table();
model_info const* find_model(std::string_view id);
model_info const& default_model();

// "0.000003" -> 3000. Only plain decimals with at most 9 fraction digits.
std::optional<std::int64_t> parse_nano(std::string_view decimal);
// 12207000 -> "0.012207"; 0 -> "0"; at most 9 decimals, no trailing zeros.
std::string format_nano(std::int64_t nano);
// A plain non-negative decimal number ("12", "0.5", "0.000000001234")?
bool is_plain_decimal(std::string_view s);

struct token_counts {
    std::int64_t prompt = 0;       // includes cached
    std::int64_t completion = 0;
    std::int64_t cached = 0;       // prompt tokens read from the cache
    std::int64_t cache_write = 0;  // prompt tokens written to the cache
};

struct cost_breakdown {
    std::int64_t prompt_nano = 0;      // uncached + cache read + cache write + request
    std::int64_t completion_nano = 0;
    std::int64_t total_nano() const { return prompt_nano + completion_nano; }
};

cost_breakdown compute_cost(model_info const& m, token_counts const& t);

}  // namespace parley::sim
