#pragma once
// Parley's own error codes, as a boost::system error category, so domain
// results (boost::system::result<T>) and Asio completions share one type.
#include <boost/system/error_code.hpp>

#include <type_traits>

namespace parley {

enum class errc {
    actor_stopped = 1,   // the actor was stopped before it could answer
    invalid_setting,     // a configuration value failed validation
    invalid_token,       // a JWT failed to parse or verify
    token_expired,       // a JWT's exp is in the past
    usage_log_failed,    // a usage record could not be written to the write-ahead log
    database_unavailable,  // the database refused or could not be reached
};

boost::system::error_category const& parley_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), parley_category()};
}

}  // namespace parley

template <>
struct boost::system::is_error_code_enum<parley::errc> : std::true_type {};
