#include "domain/auth.hpp"

#include "domain/errc.hpp"
#include "domain/jwt.hpp"

#include <boost/test/unit_test.hpp>

namespace d = parley::domain;

namespace {
std::string const secret(40, 's');
std::int64_t const now = 1'796'162'977;  // 2026-12-01

d::auth_config config() {
    d::auth_config c;
    c.jwt_secret = secret;
    c.api_key_hashes.push_back(parley::sha256_hex("svc-key-1"));
    return c;
}

std::string token(std::int64_t exp, std::vector<std::string> perms = {}, std::optional<std::string> lang = {}) {
    parley::jwt_claims c;
    c.sub = "ana";
    c.exp = exp;
    c.name = "Ana Pérez";
    c.lang = std::move(lang);
    c.perms = std::move(perms);
    return parley::mint_jwt(c, secret);
}
}  // namespace

BOOST_AUTO_TEST_SUITE(auth_suite)

BOOST_AUTO_TEST_CASE(bearer_tokens_are_read_from_the_header) {
    BOOST_TEST(d::bearer_token("Bearer abc").value() == "abc");
    BOOST_TEST(d::bearer_token("bearer   abc  ").value() == "abc");
    BOOST_TEST(d::bearer_token("BEARER x.y.z").value() == "x.y.z");
    BOOST_TEST(!d::bearer_token("Bearer").has_value());
    BOOST_TEST(!d::bearer_token("Bearer ").has_value());
    BOOST_TEST(!d::bearer_token("Bearerabc").has_value());
    BOOST_TEST(!d::bearer_token("Basic abc").has_value());
    BOOST_TEST(!d::bearer_token("Bearer a b").has_value());
    BOOST_TEST(!d::bearer_token("").has_value());
}

BOOST_AUTO_TEST_CASE(a_valid_jwt_gives_its_user_name_language_and_permissions) {
    auto p = d::authenticate(token(now + 60, {"admin", "weather"}, "en-GB"), config(), now);
    BOOST_TEST_REQUIRE(p.has_value());
    BOOST_TEST(p->user_id == "ana");
    BOOST_TEST(p->name == "Ana Pérez");
    BOOST_TEST((p->lang == d::language::en));
    BOOST_TEST(p->has("admin"));
    BOOST_TEST(p->has("weather"));
    BOOST_TEST(!p->has("root"));
    BOOST_TEST(!p->service);
    auto fr = d::authenticate(token(now + 60, {}, "fr"), config(), now);
    BOOST_TEST(!fr->lang.has_value());
}

BOOST_AUTO_TEST_CASE(expired_forged_and_unknown_tokens_are_refused) {
    auto expired = d::authenticate(token(now - 31), config(), now);
    BOOST_TEST((expired.error() == parley::errc::token_expired));
    auto within_leeway = d::authenticate(token(now - 29), config(), now);
    BOOST_TEST(within_leeway.has_value());
    auto other = config();
    other.jwt_secret = std::string(40, 'o');
    BOOST_TEST((d::authenticate(token(now + 60), other, now).error() == parley::errc::invalid_token));
    BOOST_TEST((d::authenticate("", config(), now).error() == parley::errc::invalid_token));
    BOOST_TEST((d::authenticate("a.b.c", config(), now).error() == parley::errc::invalid_token));
    BOOST_TEST((d::authenticate("svc-key-2", config(), now).error() == parley::errc::invalid_token));
    BOOST_TEST((d::authenticate(std::string(2000, 'k'), config(), now).error() == parley::errc::invalid_token));
}

BOOST_AUTO_TEST_CASE(a_listed_api_key_is_a_service_caller) {
    auto p = d::authenticate("svc-key-1", config(), now);
    BOOST_TEST_REQUIRE(p.has_value());
    BOOST_TEST(p->service);
    BOOST_TEST(p->user_id == "service-" + parley::sha256_hex("svc-key-1").substr(0, 12));
    BOOST_TEST(p->has("service"));
    BOOST_TEST(!p->has("admin"));
}

BOOST_AUTO_TEST_CASE(the_cache_answers_a_known_token_as_its_first_verification_did) {
    d::auth_cache cache;
    auto const t = token(now + 60, {"admin"}, "es");
    auto first = cache.authenticate(t, config(), now);
    BOOST_TEST_REQUIRE(first.has_value());
    BOOST_TEST(cache.size() == 1u);
    BOOST_TEST((first->expires_at == now + 60));
    auto again = cache.authenticate(t, config(), now + 10);
    BOOST_TEST_REQUIRE(again.has_value());
    BOOST_TEST(again->user_id == "ana");
    BOOST_TEST(again->has("admin"));
    BOOST_TEST((again->lang == d::language::es));
    BOOST_TEST(cache.size() == 1u);
    // API keys are remembered too (they never expire).
    BOOST_TEST(cache.authenticate("svc-key-1", config(), now).value().service);
    BOOST_TEST(cache.size() == 2u);
}

BOOST_AUTO_TEST_CASE(the_cache_still_expires_tokens_and_never_keeps_failures) {
    d::auth_cache cache;
    auto const t = token(now + 60);
    BOOST_TEST(cache.authenticate(t, config(), now).has_value());
    // Within the leeway a remembered token is still good; past it, expired (and forgotten).
    BOOST_TEST(cache.authenticate(t, config(), now + 60 + 30).has_value());
    auto late = cache.authenticate(t, config(), now + 60 + 31);
    BOOST_TEST((late.error() == parley::errc::token_expired));
    BOOST_TEST(cache.size() == 0u);
    auto other = config();
    other.jwt_secret = std::string(40, 'o');
    BOOST_TEST((cache.authenticate(token(now + 60), other, now).error() == parley::errc::invalid_token));
    BOOST_TEST((cache.authenticate("svc-key-2", config(), now).error() == parley::errc::invalid_token));
    BOOST_TEST(cache.size() == 0u);
}

BOOST_AUTO_TEST_CASE(a_full_cache_forgets_everything_and_stays_bounded) {
    d::auth_cache cache{3};
    for (int i = 0; i < 3; ++i) BOOST_TEST(cache.authenticate(token(now + 60 + i), config(), now).has_value());
    BOOST_TEST(cache.size() == 3u);
    BOOST_TEST(cache.authenticate(token(now + 100), config(), now).has_value());
    BOOST_TEST(cache.size() == 1u);
    d::auth_cache none{0};
    BOOST_TEST(none.authenticate(token(now + 60), config(), now).has_value());
    BOOST_TEST(none.size() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
