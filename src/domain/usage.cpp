#include "domain/usage.hpp"

#include <ostream>

namespace parley::domain {

std::string_view to_string(cost_source s) noexcept {
    switch (s) {
    case cost_source::provider: return "provider";
    case cost_source::pricing: return "pricing";
    case cost_source::estimate: return "estimate";
    }
    return "pricing";  // LCOV_EXCL_LINE: every enumerator is handled above
}

std::optional<cost_source> parse_cost_source(std::string_view text) noexcept {
    if (text == "provider") return cost_source::provider;
    if (text == "pricing") return cost_source::pricing;
    if (text == "estimate") return cost_source::estimate;
    return std::nullopt;
}

std::string_view to_string(call_status s) noexcept {
    switch (s) {
    case call_status::ok: return "ok";
    case call_status::error: return "error";
    case call_status::cancelled: return "cancelled";
    }
    return "error";  // LCOV_EXCL_LINE: every enumerator is handled above
}

std::optional<call_status> parse_call_status(std::string_view text) noexcept {
    if (text == "ok") return call_status::ok;
    if (text == "error") return call_status::error;
    if (text == "cancelled") return call_status::cancelled;
    return std::nullopt;
}

std::ostream& operator<<(std::ostream& os, cost_source s) { return os << to_string(s); }
std::ostream& operator<<(std::ostream& os, call_status s) { return os << to_string(s); }

}  // namespace parley::domain
