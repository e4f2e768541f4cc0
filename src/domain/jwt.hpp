#pragma once
// JWT (RFC 7519) minting and verification, HS256 only (ARCHITECTURE §4),
// plus the SHA-256 used for service API keys. Pure: no I/O, time injected.
//
// verify_jwt checks, in this order: size (max_jwt_size), exactly three
// segments, the HMAC-SHA256 signature (constant-time, before any JSON is
// parsed, so unauthenticated input never reaches the JSON parser), the
// header (a JSON object whose "alg" is exactly "HS256", no "crit"), then
// the claims. Every failure is errc::invalid_token except a past "exp",
// which is errc::token_expired.
#include <boost/system/result.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley {

// Longest token verify_jwt looks at; longer input is rejected unread.
inline constexpr std::size_t max_jwt_size = 8 * 1024;
// Longest "sub" (user id) accepted, in bytes.
inline constexpr std::size_t max_jwt_sub_size = 255;

struct jwt_claims {
    std::string sub;                   // user id; required, 1..max_jwt_sub_size bytes
    std::int64_t exp = 0;              // expiry, seconds since the Unix epoch; required
    std::optional<std::int64_t> iat;   // issued at, seconds since the epoch
    std::optional<std::string> name;   // display name
    std::optional<std::string> lang;   // preferred language, e.g. "es"
    std::vector<std::string> perms;    // permission names ("admin", ...); absent = empty

    friend bool operator==(jwt_claims const&, jwt_claims const&) = default;
};

// A signed compact JWS: header {"alg":"HS256","typ":"JWT"}, payload with
// "sub", "exp" and each optional claim that is set ("perms" only when not
// empty), base64url without padding. Throws std::runtime_error if the
// secret is empty (a configuration error) or OpenSSL fails.
std::string mint_jwt(jwt_claims const& claims, std::string_view secret);

// Verifies `token` against `secret` at `now_unix` (seconds since the
// epoch), allowing `leeway_seconds` (>= 0) of clock skew on "exp" and
// "nbf": expired when exp + leeway < now; not yet valid when
// nbf > now + leeway. An empty secret verifies nothing.
boost::system::result<jwt_claims> verify_jwt(std::string_view token, std::string_view secret,
                                             std::int64_t now_unix,
                                             std::int64_t leeway_seconds = 30);

// Lower-case hex SHA-256 of `data` (service API keys are stored hashed).
std::string sha256_hex(std::string_view data);

// RFC 4648 §5 base64url without padding.
std::string base64url_encode(std::string_view data);
// Strict inverse of base64url_encode: only [A-Za-z0-9_-], no '=', no
// length of 1 mod 4, unused trailing bits zero (one encoding per value).
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace parley
