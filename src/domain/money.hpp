#pragma once
// Money as integer nano-dollars (1e-9 USD). Amounts never pass through a
// double: they are parsed from decimal text, added and multiplied as
// integers, and formatted back to decimal text (ARCHITECTURE §6).
#include <compare>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

namespace parley::domain {

inline constexpr std::int64_t nanos_per_usd = 1'000'000'000;

// An amount of US dollars in nano-dollars. An aggregate: nano_usd{12'207'000}
// is 0.012207 USD. Arithmetic is plain int64 (the range is about ±9.2e9 USD);
// callers multiplying untrusted counts must keep them in range.
struct nano_usd {
    std::int64_t nanos = 0;

    friend constexpr auto operator<=>(nano_usd, nano_usd) = default;

    constexpr nano_usd& operator+=(nano_usd other) {
        nanos += other.nanos;
        return *this;
    }
    constexpr nano_usd& operator-=(nano_usd other) {
        nanos -= other.nanos;
        return *this;
    }
    friend constexpr nano_usd operator+(nano_usd a, nano_usd b) { return nano_usd{a.nanos + b.nanos}; }
    friend constexpr nano_usd operator-(nano_usd a, nano_usd b) { return nano_usd{a.nanos - b.nanos}; }
    // A per-token price times a token count: nano_usd{3000} * 1234.
    friend constexpr nano_usd operator*(nano_usd price, std::int64_t count) { return nano_usd{price.nanos * count}; }
    friend constexpr nano_usd operator*(std::int64_t count, nano_usd price) { return nano_usd{price.nanos * count}; }
};

// Parses a non-negative decimal amount of US dollars: digits, optionally a
// '.' followed by 1 to 9 digits ("10", "10.00", "0.000003"). Rejects signs,
// exponents, spaces, a bare "." or "5." or ".5", more than 9 decimals and
// amounts beyond the int64 range. Budgets and prices are never negative.
std::optional<nano_usd> parse_usd(std::string_view text);

// Rounds to whole micro-dollars, half away from zero (half-up for the
// non-negative amounts money usually is): 500 nanos -> 1, 499 -> 0.
std::int64_t round_to_micros(nano_usd amount);

// Exactly 6 decimals, rounded as round_to_micros: 12'207'000 -> "0.012207",
// 500 -> "0.000001", 499 -> "0.000000", -1'500 -> "-0.000002". This is the
// precision of the ai_usage.cost_usd column and of the wire "cost_usd".
std::string format_usd(nano_usd amount);

// Exactly 9 decimals, no rounding: 12'207'000 -> "0.012207000".
std::string format_usd_exact(nano_usd amount);

// Exact, with trailing zeros dropped but at least 2 decimals: 10 USD ->
// "10.00", 3'000 nanos -> "0.000003". For people (configuration, help).
std::string format_usd_compact(nano_usd amount);

// Prints format_usd_compact (for test diagnostics and logs).
std::ostream& operator<<(std::ostream& os, nano_usd amount);

}  // namespace parley::domain
