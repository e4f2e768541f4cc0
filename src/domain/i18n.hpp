#pragma once
// The catalog of user-facing text in Spanish and English (ARCHITECTURE §4:
// every error code has a message in both languages). One table: every code
// has both texts (a unit test walks it). The session's language picks the
// text; waits are written for people ("12 minutos", "12 minutes").
//
//   auto lang = parse_language("en-GB");                    // language::en
//   std::string m = render(language::es, "rate_limited", {.wait = 720s});
//   // "Has alcanzado el límite de mensajes por hora. Podrás escribir de nuevo en 12 minutos."
//
// Placeholders in catalog texts: {wait} (format_wait of text_params::wait)
// and {limit} (text_params::limit as a whole number). A placeholder whose
// parameter is not given renders as nothing.
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::domain {

enum class language { es, en };

// "es" / "en".
std::string_view to_string(language l) noexcept;
// The primary subtag of a language tag, case-insensitively: "es", "ES",
// "es-MX", "en_US" -> es / en; nullopt for anything else (empty included).
std::optional<language> parse_language(std::string_view tag) noexcept;

// The language's own name, in that language ("español", "English").
std::string_view language_name(language l) noexcept;

struct text_params {
    // Default member initializers keep GCC 12's -Wmissing-field-initializers
    // quiet on designated initializers such as {.wait = 720s}.
    std::optional<std::chrono::seconds> wait{};  // {wait}
    std::optional<std::size_t> limit{};          // {limit}
};

// A wait for people, rounded up so nobody retries too early:
//   0 s            "un momento" / "a moment"
//   1..59 s        "1 segundo", "45 segundos" / "1 second", "45 seconds"
//   1..59 min      "1 minuto", "12 minutos" / "1 minute", "12 minutes" (seconds rounded up to the minute)
//   1 h and more   "1 hora", "2 horas y 5 minutos" / "1 hour", "2 hours and 5 minutes" (minutes rounded up)
// Negative waits are treated as 0.
std::string format_wait(std::chrono::seconds wait, language l);

// True when `code` is in the catalog.
bool has_text(std::string_view code) noexcept;

// The catalog text of `code` in `l` with its placeholders filled. An
// unknown code renders the text of "internal_error" (never an empty string).
std::string render(language l, std::string_view code, text_params const& params = {});

// Every code of the catalog, in table order (for tests and documentation).
std::vector<std::string_view> catalog_codes();

}  // namespace parley::domain
