#include "domain/i18n.hpp"

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <set>
#include <string>
#include <string_view>

namespace bdata = boost::unit_test::data;
using namespace std::chrono_literals;
using parley::domain::language;
using parley::domain::render;

namespace {

// The codes other modules send to people (ARCHITECTURE §4 and the HTTP edge).
constexpr std::string_view required_codes[] = {
    "unauthorized",   "bad_request",        "message_too_long",  "busy",
    "rate_limited",   "budget_exhausted",   "ai_unavailable",    "upstream_error",
    "cancelled",      "internal_error",     "conversation_not_found", "context_too_large",
    "not_found",      "method_not_allowed", "payload_too_large", "timeout",
    "tool_forbidden", "tool_failed",        "tool_invalid_arguments", "tool_timeout",
    "shutting_down",
};

// Whether `s` is well-formed UTF-8 (no overlongs, surrogates or values past U+10FFFF).
bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        auto const c = static_cast<unsigned char>(s[i]);
        std::size_t len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (len == 0 || s.size() - i < len) {
            return false;
        }
        char32_t cp = len == 1 ? c : c & (0x7F >> len);
        for (std::size_t k = 1; k != len; ++k) {
            auto const d = static_cast<unsigned char>(s[i + k]);
            if ((d & 0xC0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (d & 0x3F);
        }
        char32_t const min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false;
        }
        i += len;
    }
    return true;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(i18n_suite)

BOOST_AUTO_TEST_CASE(catalog_has_every_required_code) {
    for (auto const code : required_codes) {
        BOOST_TEST_CONTEXT("code " << code) {
            BOOST_TEST(parley::domain::has_text(code));
            auto const codes = parley::domain::catalog_codes();
            BOOST_TEST((std::find(codes.begin(), codes.end(), code) != codes.end()));
        }
    }
}

BOOST_AUTO_TEST_CASE(every_code_has_distinct_spanish_and_english_text) {
    auto const codes = parley::domain::catalog_codes();
    BOOST_TEST(codes.size() >= std::size(required_codes));
    std::set<std::string_view> unique(codes.begin(), codes.end());
    BOOST_TEST(unique.size() == codes.size());
    for (auto const code : codes) {
        BOOST_TEST_CONTEXT("code " << code) {
            BOOST_TEST(parley::domain::has_text(code));
            auto const es = render(language::es, code);
            auto const en = render(language::en, code);
            BOOST_TEST(!es.empty());
            BOOST_TEST(!en.empty());
            BOOST_TEST(es != en);
            BOOST_TEST(valid_utf8(es));
            BOOST_TEST(valid_utf8(en));
            // Rendered with every parameter, no placeholder is left.
            auto const full = render(language::es, code, {.wait = 90s, .limit = 7});
            BOOST_TEST(full.find('{') == std::string::npos);
            BOOST_TEST(full.find('}') == std::string::npos);
        }
    }
}

BOOST_AUTO_TEST_CASE(texts_use_only_wait_and_limit_placeholders) {
    for (auto const code : parley::domain::catalog_codes()) {
        for (auto const l : {language::es, language::en}) {
            BOOST_TEST_CONTEXT("code " << code << " in " << parley::domain::to_string(l)) {
                // Without parameters placeholders vanish, so nothing brace-like may remain.
                auto const text = render(l, code);
                BOOST_TEST(text.find('{') == std::string::npos);
                BOOST_TEST(text.find('}') == std::string::npos);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(rate_limited_renders_the_wait) {
    BOOST_TEST(render(language::es, "rate_limited", {.wait = 720s}) ==
               "Has alcanzado el límite de mensajes por hora. Podrás escribir de nuevo en 12 minutos.");
    BOOST_TEST(render(language::en, "rate_limited", {.wait = 720s}) ==
               "You have reached the hourly message limit. You can write again in 12 minutes.");
}

BOOST_AUTO_TEST_CASE(budget_exhausted_renders_hours_and_minutes) {
    auto const es = render(language::es, "budget_exhausted", {.wait = 2h + 5min});
    auto const en = render(language::en, "budget_exhausted", {.wait = 2h + 5min});
    BOOST_TEST(es.find("2 horas y 5 minutos") != std::string::npos);
    BOOST_TEST(en.find("2 hours and 5 minutes") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(message_too_long_renders_the_limit) {
    BOOST_TEST(render(language::es, "message_too_long", {.limit = 4000}) ==
               "Tu mensaje es demasiado largo (como máximo 4000 caracteres).");
    BOOST_TEST(render(language::en, "message_too_long", {.limit = 4000}) ==
               "Your message is too long (at most 4000 characters).");
}

BOOST_AUTO_TEST_CASE(context_too_large_renders_the_limit) {
    BOOST_TEST(render(language::es, "context_too_large", {.limit = 16384}) ==
               "El objeto de contexto es demasiado grande (como máximo 16384 bytes).");
    BOOST_TEST(render(language::en, "context_too_large", {.limit = 16384}) ==
               "The context object is too large (at most 16384 bytes).");
}

BOOST_AUTO_TEST_CASE(missing_parameter_renders_as_nothing) {
    BOOST_TEST(render(language::en, "message_too_long") == "Your message is too long (at most  characters).");
    BOOST_TEST(render(language::en, "rate_limited", {.limit = 3}) ==
               "You have reached the hourly message limit. You can write again in .");
}

BOOST_AUTO_TEST_CASE(unused_parameters_are_ignored) {
    BOOST_TEST(render(language::en, "cancelled", {.wait = 5s, .limit = 3}) == render(language::en, "cancelled"));
}

BOOST_AUTO_TEST_CASE(unknown_code_renders_internal_error) {
    BOOST_TEST(!parley::domain::has_text("no_such_code"));
    BOOST_TEST(!parley::domain::has_text(""));
    for (auto const l : {language::es, language::en}) {
        BOOST_TEST(render(l, "no_such_code") == render(l, "internal_error"));
        BOOST_TEST(render(l, "") == render(l, "internal_error"));
        BOOST_TEST(!render(l, "no_such_code").empty());
    }
}

BOOST_AUTO_TEST_CASE(format_wait_rounds_up_for_people) {
    struct {
        std::chrono::seconds wait;
        char const* es;
        char const* en;
    } const cases[] = {
        {-5s, "un momento", "a moment"},
        {0s, "un momento", "a moment"},
        {1s, "1 segundo", "1 second"},
        {45s, "45 segundos", "45 seconds"},
        {59s, "59 segundos", "59 seconds"},
        {60s, "1 minuto", "1 minute"},
        {61s, "2 minutos", "2 minutes"},
        {120s, "2 minutos", "2 minutes"},
        {720s, "12 minutos", "12 minutes"},
        {3540s, "59 minutos", "59 minutes"},
        {3541s, "1 hora", "1 hour"},
        {3599s, "1 hora", "1 hour"},
        {3600s, "1 hora", "1 hour"},
        {3601s, "1 hora y 1 minuto", "1 hour and 1 minute"},
        {3660s, "1 hora y 1 minuto", "1 hour and 1 minute"},
        {3661s, "1 hora y 2 minutos", "1 hour and 2 minutes"},
        {7200s, "2 horas", "2 hours"},
        {7200s + 300s, "2 horas y 5 minutos", "2 hours and 5 minutes"},
        {7200s + 299s, "2 horas y 5 minutos", "2 hours and 5 minutes"},
        {86400s, "24 horas", "24 hours"},
        {std::chrono::seconds{std::chrono::seconds::max()}, nullptr, nullptr},  // must not overflow
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT("wait " << c.wait.count() << " s") {
            auto const es = parley::domain::format_wait(c.wait, language::es);
            auto const en = parley::domain::format_wait(c.wait, language::en);
            if (c.es == nullptr) {
                BOOST_TEST(es.find("horas") != std::string::npos);
                BOOST_TEST(en.find("hours") != std::string::npos);
                BOOST_TEST(es.find('-') == std::string::npos);
                continue;
            }
            BOOST_TEST(es == c.es);
            BOOST_TEST(en == c.en);
        }
    }
}

BOOST_AUTO_TEST_CASE(parse_language_reads_the_primary_subtag) {
    struct {
        char const* tag;
        std::optional<language> lang;
    } const cases[] = {
        {"es", language::es},     {"ES", language::es},    {"Es", language::es},   {"es-MX", language::es},
        {"es_ES", language::es},  {"es-419", language::es}, {"en", language::en},  {"EN", language::en},
        {"en-GB", language::en},  {"en_US", language::en}, {"en-", language::en},  {"", std::nullopt},
        {"e", std::nullopt},      {"esp", std::nullopt},   {"eng", std::nullopt},  {"fr", std::nullopt},
        {"de-DE", std::nullopt},  {"-es", std::nullopt},   {"_en", std::nullopt},  {" es", std::nullopt},
        {"es ", std::nullopt},    {"spanish", std::nullopt}, {"english", std::nullopt},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT("tag '" << c.tag << "'") {
            BOOST_TEST((parley::domain::parse_language(c.tag) == c.lang));
        }
    }
}

BOOST_AUTO_TEST_CASE(language_names_and_codes) {
    BOOST_TEST(parley::domain::to_string(language::es) == "es");
    BOOST_TEST(parley::domain::to_string(language::en) == "en");
    BOOST_TEST(parley::domain::language_name(language::es) == "español");
    BOOST_TEST(parley::domain::language_name(language::en) == "English");
    for (auto const l : {language::es, language::en}) {
        BOOST_TEST((parley::domain::parse_language(parley::domain::to_string(l)) == l));
    }
}

BOOST_AUTO_TEST_SUITE_END()
