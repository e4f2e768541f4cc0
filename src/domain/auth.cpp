#include "domain/auth.hpp"

#include "domain/errc.hpp"
#include "domain/jwt.hpp"

#include <algorithm>

namespace parley::domain {

bool principal::has(std::string_view permission) const noexcept {
    return std::find(permissions.begin(), permissions.end(), permission) != permissions.end();
}

std::optional<std::string_view> bearer_token(std::string_view authorization) noexcept {
    constexpr std::string_view scheme = "bearer";
    if (authorization.size() <= scheme.size()) {
        return std::nullopt;
    }
    for (std::size_t i = 0; i != scheme.size(); ++i) {
        char c = authorization[i];
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
        if (c != scheme[i]) {
            return std::nullopt;
        }
    }
    auto rest = authorization.substr(scheme.size());
    if (rest.front() != ' ') {
        return std::nullopt;
    }
    rest.remove_prefix(std::min(rest.find_first_not_of(' '), rest.size()));
    while (!rest.empty() && rest.back() == ' ') {
        rest.remove_suffix(1);
    }
    if (rest.empty() || rest.find_first_of(" \t\r\n") != std::string_view::npos) {
        return std::nullopt;
    }
    return rest;
}

boost::system::result<principal> authenticate(std::string_view token, auth_config const& config,
                                              std::int64_t now_unix) {
    if (token.empty()) {
        return make_error_code(errc::invalid_token);
    }
    if (std::count(token.begin(), token.end(), '.') == 2) {
        auto claims = verify_jwt(token, config.jwt_secret, now_unix, config.leeway_seconds);
        if (!claims) {
            return claims.error();
        }
        principal p;
        p.user_id = std::move(claims->sub);
        p.name = claims->name.value_or("");
        if (claims->lang) {
            p.lang = parse_language(*claims->lang);
        }
        p.permissions = std::move(claims->perms);
        p.expires_at = claims->exp;
        return p;
    }
    if (token.size() > 1024) {
        return make_error_code(errc::invalid_token);
    }
    auto const hash = sha256_hex(token);
    if (std::find(config.api_key_hashes.begin(), config.api_key_hashes.end(), hash) == config.api_key_hashes.end()) {
        return make_error_code(errc::invalid_token);
    }
    principal p;
    p.user_id = "service-" + hash.substr(0, 12);
    p.permissions.emplace_back("service");
    p.service = true;
    return p;
}

boost::system::result<principal> auth_cache::authenticate(std::string_view token, auth_config const& config,
                                                          std::int64_t now_unix) {
    {
        std::lock_guard lock{mutex_};
        if (auto it = entries_.find(token); it != entries_.end()) {
            auto const& p = it->second;
            if (p.expires_at && *p.expires_at + config.leeway_seconds < now_unix) {
                entries_.erase(it);
                return make_error_code(errc::token_expired);
            }
            return p;
        }
    }
    auto p = domain::authenticate(token, config, now_unix);
    if (p && capacity_ > 0) {
        std::lock_guard lock{mutex_};
        if (entries_.size() >= capacity_) entries_.clear();
        entries_.emplace(std::string{token}, *p);
    }
    return p;
}

std::size_t auth_cache::size() const {
    std::lock_guard lock{mutex_};
    return entries_.size();
}

}  // namespace parley::domain
