#include "pricing.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>

namespace parley::sim {

namespace {

std::array<model_info, 7> build_table() {
    std::array<model_info, 7> t{{
        {"anthropic/claude-3.5-sonnet", "Anthropic: Claude 3.5 Sonnet", "anthropic/claude-3.5-sonnet", "Anthropic",
         model_family::anthropic, 200'000, 8192, "0.000003", "0.000015", "0", "0.0048", "0.0000003", "0.00000375"},
        {"anthropic/claude-sonnet-4.5", "Anthropic: Claude Sonnet 4.5", "anthropic/claude-4.5-sonnet-20250929",
         "Anthropic", model_family::anthropic, 1'000'000, 64'000, "0.000003", "0.000015", "0", "0.0048", "0.0000003",
         "0.00000375"},
        {"anthropic/claude-haiku-4.5", "Anthropic: Claude Haiku 4.5", "anthropic/claude-4.5-haiku-20251001",
         "Anthropic", model_family::anthropic, 200'000, 64'000, "0.000001", "0.000005", "0", "0", "0.0000001",
         "0.00000125"},
        {"openai/gpt-4o-mini", "OpenAI: GPT-4o-mini", "openai/gpt-4o-mini", "OpenAI", model_family::openai, 128'000,
         16'384, "0.00000015", "0.0000006", "0", "0.000217", "0.000000075", "0"},
        {"openai/gpt-4o", "OpenAI: GPT-4o", "openai/gpt-4o", "OpenAI", model_family::openai, 128'000, 16'384,
         "0.0000025", "0.00001", "0", "0.003613", "0.00000125", "0"},
        {"meta-llama/llama-3.3-70b-instruct", "Meta: Llama 3.3 70B Instruct", "meta-llama/llama-3.3-70b-instruct",
         "DeepInfra", model_family::meta, 131'072, 16'384, "0.00000013", "0.00000039", "0", "0", "0", "0"},
        {"meta-llama/llama-3.3-70b-instruct:free", "Meta: Llama 3.3 70B Instruct (free)",
         "meta-llama/llama-3.3-70b-instruct:free", "Chutes", model_family::meta, 131'072, 2048, "0", "0", "0", "0",
         "0", "0"},
    }};
    for (auto& m : t) {
        // The strings above are the source of truth; a typo aborts at start-up.
        auto p = parse_nano(m.prompt), c = parse_nano(m.completion), r = parse_nano(m.request),
             cr = parse_nano(m.cache_read), cw = parse_nano(m.cache_write);
        if (!p || !c || !r || !cr || !cw || !parse_nano(m.image)) std::abort();
        m.prompt_nano = *p;
        m.completion_nano = *c;
        m.request_nano = *r;
        m.cache_read_nano = *cr;
        m.cache_write_nano = *cw;
    }
    return t;
}

}  // namespace

std::span<model_info const> model_table() {
    static auto const table = build_table();
    return table;
}

model_info const* find_model(std::string_view id) {
    for (auto const& m : model_table())
        if (m.id == id) return &m;
    return nullptr;
}

model_info const& default_model() { return model_table()[0]; }

bool is_plain_decimal(std::string_view s) {
    if (s.empty()) return false;
    auto dot = s.find('.');
    auto whole = s.substr(0, dot);
    if (whole.empty()) return false;
    for (char c : whole)
        if (c < '0' || c > '9') return false;
    if (dot == std::string_view::npos) return true;
    auto frac = s.substr(dot + 1);
    if (frac.empty()) return false;
    for (char c : frac)
        if (c < '0' || c > '9') return false;
    return true;
}

std::optional<std::int64_t> parse_nano(std::string_view s) {
    if (!is_plain_decimal(s)) return std::nullopt;
    auto dot = s.find('.');
    auto whole = s.substr(0, dot);
    std::string_view frac = dot == std::string_view::npos ? std::string_view{} : s.substr(dot + 1);
    if (frac.size() > 9 || whole.size() > 9) return std::nullopt;
    std::int64_t v = 0;
    for (char c : whole) v = v * 10 + (c - '0');
    std::int64_t f = 0;
    for (std::size_t i = 0; i < 9; ++i) f = f * 10 + (i < frac.size() ? frac[i] - '0' : 0);
    return v * 1'000'000'000 + f;
}

std::string format_nano(std::int64_t nano) {
    bool negative = nano < 0;
    std::uint64_t v = negative ? static_cast<std::uint64_t>(-(nano + 1)) + 1 : static_cast<std::uint64_t>(nano);
    std::string out = negative ? "-" : "";
    out += std::to_string(v / 1'000'000'000);
    std::uint64_t frac = v % 1'000'000'000;
    if (frac != 0) {
        std::string digits = std::to_string(frac);
        digits.insert(0, 9 - digits.size(), '0');
        while (!digits.empty() && digits.back() == '0') digits.pop_back();
        out += '.';
        out += digits;
    }
    return out;
}

cost_breakdown compute_cost(model_info const& m, token_counts const& t) {
    std::int64_t cached = std::clamp<std::int64_t>(t.cached, 0, t.prompt);
    std::int64_t written = std::clamp<std::int64_t>(t.cache_write, 0, t.prompt - cached);
    std::int64_t uncached = t.prompt - cached - written;
    cost_breakdown c;
    c.prompt_nano = uncached * m.prompt_nano + cached * m.cache_read_nano + written * m.cache_write_nano + m.request_nano;
    c.completion_nano = t.completion * m.completion_nano;
    return c;
}

}  // namespace parley::sim
