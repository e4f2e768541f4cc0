#include "domain/money.hpp"

#include <limits>
#include <ostream>

namespace parley::domain {
namespace {

constexpr std::int64_t max_nanos = std::numeric_limits<std::int64_t>::max();
constexpr int max_decimals = 9;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// |n| without overflow, also for INT64_MIN.
std::uint64_t magnitude(std::int64_t n) {
    return n < 0 ? std::uint64_t{0} - static_cast<std::uint64_t>(n) : static_cast<std::uint64_t>(n);
}

// "<sign><whole>.<frac>" with frac zero-padded to `decimals` digits.
std::string fixed(bool negative, std::uint64_t units, std::uint64_t per_unit, int decimals) {
    std::string frac = std::to_string(units % per_unit);
    frac.insert(0, static_cast<std::size_t>(decimals) - frac.size(), '0');
    std::string out = negative ? "-" : "";
    out += std::to_string(units / per_unit);
    out += '.';
    out += frac;
    return out;
}

}  // namespace

std::optional<nano_usd> parse_usd(std::string_view text) {
    auto const dot = text.find('.');
    auto const whole_text = text.substr(0, dot);
    auto const frac_text = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
    if (whole_text.empty() || (dot != std::string_view::npos && frac_text.empty()) ||
        frac_text.size() > max_decimals) {
        return std::nullopt;
    }
    std::int64_t whole = 0;
    for (char c : whole_text) {
        if (!is_digit(c)) {
            return std::nullopt;
        }
        whole = whole * 10 + (c - '0');
        if (whole > max_nanos / nanos_per_usd) {
            return std::nullopt;
        }
    }
    std::int64_t frac = 0;
    for (int i = 0; i != max_decimals; ++i) {
        char const c = static_cast<std::size_t>(i) < frac_text.size() ? frac_text[static_cast<std::size_t>(i)] : '0';
        if (!is_digit(c)) {
            return std::nullopt;
        }
        frac = frac * 10 + (c - '0');
    }
    if (frac > max_nanos - whole * nanos_per_usd) {
        return std::nullopt;
    }
    return nano_usd{whole * nanos_per_usd + frac};
}

std::int64_t round_to_micros(nano_usd amount) {
    // (|n| + 500) / 1000 cannot overflow an uint64 and fits back in int64.
    auto const micros = static_cast<std::int64_t>((magnitude(amount.nanos) + 500) / 1000);
    return amount.nanos < 0 ? -micros : micros;
}

std::string format_usd(nano_usd amount) {
    auto const micros = round_to_micros(amount);
    return fixed(micros < 0, magnitude(micros), 1'000'000, 6);
}

std::string format_usd_exact(nano_usd amount) {
    return fixed(amount.nanos < 0, magnitude(amount.nanos), nanos_per_usd, max_decimals);
}

std::string format_usd_compact(nano_usd amount) {
    std::string out = format_usd_exact(amount);
    auto const keep = out.size() - (max_decimals - 2);   // through 2 decimals
    while (out.size() > keep && out.back() == '0') {
        out.pop_back();
    }
    return out;
}

std::ostream& operator<<(std::ostream& os, nano_usd amount) { return os << format_usd_compact(amount); }

}  // namespace parley::domain
