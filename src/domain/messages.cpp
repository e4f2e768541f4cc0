#include "domain/messages.hpp"

#include <ostream>

namespace parley::domain {

std::string_view to_string(role r) noexcept {
    switch (r) {
    case role::system:
        return "system";
    case role::user:
        return "user";
    case role::assistant:
        return "assistant";
    case role::tool:
        return "tool";
    }
    return "unknown";  // only for a value outside the enumerators
}

std::optional<role> parse_role(std::string_view text) noexcept {
    for (role r : {role::system, role::user, role::assistant, role::tool}) {
        if (text == to_string(r)) {
            return r;
        }
    }
    return std::nullopt;
}

std::ostream& operator<<(std::ostream& os, role r) { return os << to_string(r); }

}  // namespace parley::domain
