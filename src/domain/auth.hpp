#pragma once
// Who is calling (ARCHITECTURE §4): `Authorization: Bearer <token>`, where
// the token is a JWT (HS256 with the configured secret: `sub`, `exp`,
// optional `name`, `lang`, `perms`) or a service API key whose SHA-256 is
// listed in the configuration. Pure: time injected.
//
// A token with two dots is read as a JWT only; anything else as an API key
// only (so a JWT is never compared with the key hashes). An API key caller
// is user "service-<first 12 hex digits of its hash>" with the permission
// "service". Errors: errc::invalid_token (missing, malformed, bad
// signature, unknown key), errc::token_expired.
#include "domain/i18n.hpp"

#include <boost/system/result.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::domain {

struct principal {
    std::string user_id;
    std::string name;                   // empty: none given
    std::optional<language> lang;       // the token's `lang`, when it is es or en
    std::vector<std::string> permissions;
    bool service = false;               // authenticated by an API key

    bool has(std::string_view permission) const noexcept;
};

struct auth_config {
    std::string jwt_secret;                   // empty: no JWT is valid
    std::vector<std::string> api_key_hashes;  // lower-case hex SHA-256
    std::int64_t leeway_seconds = 30;
};

// The token of an `Authorization` header value: "Bearer" (any case), one or
// more spaces, the token (no spaces); nullopt for anything else.
std::optional<std::string_view> bearer_token(std::string_view authorization) noexcept;

boost::system::result<principal> authenticate(std::string_view token, auth_config const& config,
                                              std::int64_t now_unix);

}  // namespace parley::domain
