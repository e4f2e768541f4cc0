#include "faults.hpp"

#include <array>
#include <charconv>

namespace parley::sim {

namespace {

struct kind_name {
    fault_kind kind;
    std::string_view name;
    int status;
};

constexpr std::array<kind_name, fault_kind_count> kinds{{
    {fault_kind::rate_limited, "429", 429},
    {fault_kind::internal_error, "500", 500},
    {fault_kind::bad_gateway, "502", 502},
    {fault_kind::unavailable, "503", 503},
    {fault_kind::bad_request, "400", 400},
    {fault_kind::unauthorized, "401", 401},
    {fault_kind::payment_required, "402", 402},
    {fault_kind::mid_stream_error, "mid-stream-error", 0},
    {fault_kind::drop, "drop", 0},
    {fault_kind::slow_first_byte, "slow-first-byte", 0},
    {fault_kind::error_200, "error-200", 0},
    {fault_kind::whitespace_only, "whitespace-only", 0},
}};

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

std::optional<std::uint32_t> parse_u32(std::string_view s, std::uint32_t max) {
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size() || s.empty() || v > max) return std::nullopt;
    return static_cast<std::uint32_t>(v);
}

}  // namespace

std::string_view to_string(fault_kind k) {
    for (auto const& e : kinds)
        if (e.kind == k) return e.name;
    return "?";
}

std::optional<fault_kind> parse_fault_kind(std::string_view name) {
    for (auto const& e : kinds)
        if (e.name == name) return e.kind;
    return std::nullopt;
}

std::string fault_kind_list() {
    std::string out;
    for (auto const& e : kinds) {
        if (!out.empty()) out += ',';
        out += e.name;
    }
    return out;
}

int fault_status(fault_kind k) {
    for (auto const& e : kinds)
        if (e.kind == k) return e.status;
    return 0;
}

fault_parse_result parse_fault_spec(std::string_view text, bool allow_times) {
    fault_parse_result r;
    fault_spec spec;
    bool first = true;
    while (true) {
        auto semi = text.find(';');
        auto part = trim(text.substr(0, semi));
        if (first) {
            auto kind = parse_fault_kind(part);
            if (!kind) {
                r.error = "unknown fault kind '" + std::string{part} + "' (kinds: " + fault_kind_list() + ")";
                return r;
            }
            spec.kind = *kind;
            first = false;
        } else if (!part.empty()) {
            auto eq = part.find('=');
            if (eq == std::string_view::npos) {
                r.error = "fault parameter '" + std::string{part} + "' is not name=value";
                return r;
            }
            auto name = trim(part.substr(0, eq));
            auto value = trim(part.substr(eq + 1));
            std::optional<std::uint32_t> n;
            if (name == "times" && allow_times) {
                n = parse_u32(value, 1'000'000);
                if (n) spec.times = *n;
            } else if (name == "retry-after") {
                n = parse_u32(value, 86'400);
                if (n) spec.retry_after = std::chrono::seconds{*n};
            } else if (name == "delay-ms") {
                n = parse_u32(value, 600'000);
                if (n) spec.delay = std::chrono::milliseconds{*n};
            } else if (name == "after-tokens") {
                n = parse_u32(value, 1'000'000);
                if (n) spec.after_tokens = *n;
            } else {
                r.error = "unknown fault parameter '" + std::string{name} + "' (allowed: " +
                          (allow_times ? "times, " : "") + "retry-after, delay-ms, after-tokens)";
                return r;
            }
            if (!n) {
                r.error = "fault parameter " + std::string{name} + ": '" + std::string{value} +
                          "' is not a valid non-negative integer";
                return r;
            }
        }
        if (semi == std::string_view::npos) break;
        text.remove_prefix(semi + 1);
    }
    r.spec = spec;
    return r;
}

}  // namespace parley::sim
