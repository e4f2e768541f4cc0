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

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace parley::domain {

struct principal {
    std::string user_id;
    std::string name;                   // empty: none given
    std::optional<language> lang;       // the token's `lang`, when it is es or en
    std::vector<std::string> permissions;
    bool service = false;               // authenticated by an API key
    std::optional<std::int64_t> expires_at;  // a JWT's `exp` (seconds since the epoch)

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

// authenticate() with memory: a successful verification is remembered by
// the token's exact bytes, so a client reusing its token (every SDK does)
// is not verified again; the HMAC and the claims' JSON were about 37 000
// instructions of each proxied request (bench/results/gateways-profile.md). Only
// successes are kept, a JWT's expiry is checked again on every hit (with
// the config's leeway, as verify_jwt does), and at most `capacity` tokens
// are held: when full, everything is forgotten. The config must be the
// same on every call (it is: settings do not change while serving).
// Thread-safe.
class auth_cache {
public:
    explicit auth_cache(std::size_t capacity = 10'000) : capacity_{capacity} {}
    boost::system::result<principal> authenticate(std::string_view token, auth_config const& config,
                                                  std::int64_t now_unix);
    std::size_t size() const;

private:
    struct hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    std::size_t capacity_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, principal, hash, std::equal_to<>> entries_;
};

}  // namespace parley::domain
