#include "domain/jwt.hpp"

#include "domain/errc.hpp"

#include <boost/assert.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <climits>
#include <limits>
#include <stdexcept>
#include <utility>

namespace parley {
namespace {

namespace json = boost::json;
using digest = std::array<unsigned char, SHA256_DIGEST_LENGTH>;
using i64_limits = std::numeric_limits<std::int64_t>;

constexpr std::string_view b64_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// Character -> 6-bit value, -1 for anything outside the base64url alphabet.
constexpr std::array<std::int8_t, 256> b64_values = [] {
    std::array<std::int8_t, 256> t{};
    t.fill(-1);
    for (std::size_t i = 0; i != b64_alphabet.size(); ++i) {
        t[static_cast<unsigned char>(b64_alphabet[i])] = static_cast<std::int8_t>(i);
    }
    return t;
}();

// {"alg":"HS256","typ":"JWT"}, the only header mint_jwt writes.
constexpr std::string_view encoded_header = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

std::uint32_t byte_at(std::string_view s, std::size_t i) {
    return static_cast<unsigned char>(s[i]);
}

void require(bool ok, char const* what) {
    if (!ok) {
        throw std::runtime_error{what};
    }
}

// False for an empty key, so nothing is ever signed or verified with one.
bool hmac_sha256(std::string_view key, std::string_view data, digest& out) {
    unsigned int size = 0;
    return !key.empty() && key.size() <= INT_MAX &&
           HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                reinterpret_cast<unsigned char const*>(data.data()), data.size(), out.data(),
                &size) != nullptr &&
           size == out.size();
}

// A base64url segment holding a JSON object, or nothing.
std::optional<json::object> decode_object(std::string_view segment) {
    auto const text = base64url_decode(segment);
    if (!text) {
        return std::nullopt;
    }
    boost::system::error_code ec;
    json::value v = json::parse(*text, ec);
    if (ec || !v.is_object()) {
        return std::nullopt;
    }
    return std::move(v.get_object());
}

// Optional members: absent leaves `out` alone; false if present with another type.
bool read_member(json::object const& o, std::string_view key, std::optional<std::int64_t>& out) {
    auto const* v = o.if_contains(key);
    if (v == nullptr) {
        return true;
    }
    if (!v->is_int64()) {  // also rejects 1.7e9 and integers above INT64_MAX
        return false;
    }
    out = v->get_int64();
    return true;
}

bool read_member(json::object const& o, std::string_view key, std::optional<std::string>& out) {
    auto const* v = o.if_contains(key);
    if (v == nullptr) {
        return true;
    }
    if (!v->is_string()) {
        return false;
    }
    out.emplace(v->get_string());
    return true;
}

bool read_member(json::object const& o, std::string_view key, std::vector<std::string>& out) {
    auto const* v = o.if_contains(key);
    if (v == nullptr) {
        return true;
    }
    if (!v->is_array()) {
        return false;
    }
    for (auto const& item : v->get_array()) {
        if (!item.is_string()) {
            return false;
        }
        out.emplace_back(item.get_string());
    }
    return true;
}

boost::system::result<jwt_claims> read_claims(json::object const& payload, std::int64_t now,
                                              std::int64_t leeway) {
    jwt_claims c;
    std::optional<std::string> sub;
    std::optional<std::int64_t> exp;
    std::optional<std::int64_t> nbf;
    if (!read_member(payload, "sub", sub) || !read_member(payload, "exp", exp) ||
        !read_member(payload, "nbf", nbf) || !read_member(payload, "iat", c.iat) ||
        !read_member(payload, "name", c.name) || !read_member(payload, "lang", c.lang) ||
        !read_member(payload, "perms", c.perms) || !sub || sub->empty() ||
        sub->size() > max_jwt_sub_size || !exp) {
        return errc::invalid_token;
    }
    c.sub = std::move(*sub);
    c.exp = *exp;
    // exp + leeway < now and nbf > now + leeway, written so nothing overflows.
    if (now >= i64_limits::min() + leeway && c.exp < now - leeway) {
        return errc::token_expired;
    }
    if (nbf && now <= i64_limits::max() - leeway && *nbf > now + leeway) {
        return errc::invalid_token;
    }
    return c;
}

}  // namespace

std::string base64url_encode(std::string_view data) {
    std::string out;
    out.reserve((data.size() * 4 + 2) / 3);
    std::size_t i = 0;
    for (; i + 3 <= data.size(); i += 3) {
        std::uint32_t const n = byte_at(data, i) << 16 | byte_at(data, i + 1) << 8 | byte_at(data, i + 2);
        out += b64_alphabet[n >> 18 & 63];
        out += b64_alphabet[n >> 12 & 63];
        out += b64_alphabet[n >> 6 & 63];
        out += b64_alphabet[n & 63];
    }
    if (std::size_t const rest = data.size() - i; rest != 0) {
        std::uint32_t const n = byte_at(data, i) << 16 | (rest == 2 ? byte_at(data, i + 1) << 8 : 0U);
        out += b64_alphabet[n >> 18 & 63];
        out += b64_alphabet[n >> 12 & 63];
        if (rest == 2) {
            out += b64_alphabet[n >> 6 & 63];
        }
    }
    return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
    if (text.size() % 4 == 1) {  // 6 bits cannot end a byte
        return std::nullopt;
    }
    std::string out;
    out.reserve(text.size() / 4 * 3 + 2);
    std::uint32_t bits = 0;  // the low `pending` bits are not yet written
    int pending = 0;
    for (char const ch : text) {
        auto const v = b64_values[static_cast<unsigned char>(ch)];
        if (v < 0) {
            return std::nullopt;
        }
        bits = bits << 6 | static_cast<std::uint32_t>(v);
        pending += 6;
        if (pending >= 8) {
            pending -= 8;
            out += static_cast<char>(bits >> pending & 0xFF);
        }
    }
    if ((bits & ((1U << pending) - 1)) != 0) {  // unused trailing bits must be zero
        return std::nullopt;
    }
    return out;
}

std::string mint_jwt(jwt_claims const& claims, std::string_view secret) {
    json::object payload;
    payload["sub"] = claims.sub;
    payload["exp"] = claims.exp;
    if (claims.iat) {
        payload["iat"] = *claims.iat;
    }
    if (claims.name) {
        payload["name"] = *claims.name;
    }
    if (claims.lang) {
        payload["lang"] = *claims.lang;
    }
    if (!claims.perms.empty()) {
        payload["perms"] = json::array(claims.perms.begin(), claims.perms.end());
    }
    std::string token{encoded_header};
    token += '.';
    token += base64url_encode(json::serialize(payload));
    digest mac{};
    require(hmac_sha256(secret, token, mac), "mint_jwt: empty secret or HMAC-SHA256 failure");
    token += '.';
    token += base64url_encode({reinterpret_cast<char const*>(mac.data()), mac.size()});
    return token;
}

boost::system::result<jwt_claims> verify_jwt(std::string_view token, std::string_view secret,
                                             std::int64_t now_unix, std::int64_t leeway_seconds) {
    BOOST_ASSERT(leeway_seconds >= 0);
    auto const leeway = std::max(leeway_seconds, std::int64_t{0});
    if (token.size() > max_jwt_size) {
        return errc::invalid_token;
    }
    auto const npos = std::string_view::npos;
    auto const dot1 = token.find('.');
    auto const dot2 = dot1 == npos ? npos : token.find('.', dot1 + 1);
    if (dot2 == npos || token.find('.', dot2 + 1) != npos) {
        return errc::invalid_token;
    }
    // The signature first: nothing unauthenticated reaches the JSON parser.
    auto const signature = base64url_decode(token.substr(dot2 + 1));
    digest expected{};
    if (!signature || signature->size() != expected.size() ||
        !hmac_sha256(secret, token.substr(0, dot2), expected) ||
        CRYPTO_memcmp(signature->data(), expected.data(), expected.size()) != 0) {
        return errc::invalid_token;
    }
    auto const header = decode_object(token.substr(0, dot1));
    if (!header) {
        return errc::invalid_token;
    }
    auto const* alg = header->if_contains("alg");
    if (alg == nullptr || !alg->is_string() || alg->get_string() != "HS256" ||
        header->contains("crit")) {
        return errc::invalid_token;
    }
    auto const payload = decode_object(token.substr(dot1 + 1, dot2 - dot1 - 1));
    if (!payload) {
        return errc::invalid_token;
    }
    return read_claims(*payload, now_unix, leeway);
}

std::string sha256_hex(std::string_view data) {
    digest md{};
    require(SHA256(reinterpret_cast<unsigned char const*>(data.data()), data.size(), md.data()) != nullptr,
            "sha256_hex: SHA-256 failure");
    static constexpr std::string_view hex = "0123456789abcdef";
    std::string out;
    out.reserve(md.size() * 2);
    for (unsigned char const b : md) {
        out += hex[b >> 4];
        out += hex[b & 15];
    }
    return out;
}

}  // namespace parley
