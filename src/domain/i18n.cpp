#include "domain/i18n.hpp"

#include <array>
#include <cstdint>

namespace parley::domain {
namespace {

struct entry {
    std::string_view code;
    std::string_view es;
    std::string_view en;
};

// Short, friendly, addressed to the person ("tú" in Spanish). Only {wait}
// and {limit} are placeholders; a test checks both texts of every code.
constexpr std::array catalog{
    entry{"unauthorized",
          "No has iniciado sesión o tu sesión ha caducado. Vuelve a identificarte.",
          "You are not signed in or your session has expired. Please sign in again."},
    entry{"bad_request",
          "No he podido entender la solicitud. Revísala e inténtalo de nuevo.",
          "The request could not be understood. Please check it and try again."},
    entry{"message_too_long",
          "Tu mensaje es demasiado largo (como máximo {limit} caracteres).",
          "Your message is too long (at most {limit} characters)."},
    entry{"busy",
          "Todavía estoy respondiendo a tu mensaje anterior. Espera a que termine o cancélalo.",
          "I'm still answering your previous message. Wait for it to finish or cancel it."},
    entry{"rate_limited",
          "Has alcanzado el límite de mensajes por hora. Podrás escribir de nuevo en {wait}.",
          "You have reached the hourly message limit. You can write again in {wait}."},
    entry{"budget_exhausted",
          "El asistente ha agotado su presupuesto de hoy. Volverá a estar disponible en {wait}.",
          "The assistant has used up today's budget. It will be back in {wait}."},
    entry{"ai_unavailable",
          "El asistente no está disponible en este momento. Inténtalo de nuevo en unos minutos.",
          "The assistant is not available right now. Please try again in a few minutes."},
    entry{"upstream_error",
          "El servicio de IA ha devuelto un error o la respuesta se ha interrumpido. Inténtalo de nuevo.",
          "The AI service returned an error or the answer was interrupted. Please try again."},
    entry{"cancelled",
          "Respuesta cancelada.",
          "Answer cancelled."},
    entry{"internal_error",
          "Algo ha fallado por nuestra parte. Inténtalo de nuevo dentro de un rato.",
          "Something went wrong on our side. Please try again in a little while."},
    entry{"conversation_not_found",
          "Esa conversación no existe o no es tuya.",
          "That conversation does not exist or is not yours."},
    entry{"context_too_large",
          "El objeto de contexto es demasiado grande (como máximo {limit} bytes).",
          "The context object is too large (at most {limit} bytes)."},
    entry{"forbidden",
          "No tienes permiso para ver eso.",
          "You are not allowed to see that."},
    entry{"not_found",
          "No existe nada en esa dirección.",
          "There is nothing at that address."},
    entry{"method_not_allowed",
          "Esa operación no está permitida en esta dirección.",
          "That method is not allowed at this address."},
    entry{"payload_too_large",
          "La solicitud es demasiado grande.",
          "The request is too large."},
    entry{"timeout",
          "La operación ha tardado demasiado. Inténtalo de nuevo.",
          "That took too long. Please try again."},
    entry{"tool_forbidden",
          "No tienes permiso para usar esa herramienta.",
          "You are not allowed to use that tool."},
    entry{"tool_failed",
          "La herramienta ha fallado. Inténtalo de nuevo más tarde.",
          "The tool failed. Please try again later."},
    entry{"tool_invalid_arguments",
          "La herramienta ha recibido datos no válidos.",
          "The tool received invalid arguments."},
    entry{"tool_timeout",
          "La herramienta ha tardado demasiado en responder.",
          "The tool took too long to respond."},
    entry{"shutting_down",
          "El servidor se está reiniciando. Inténtalo de nuevo en unos instantes.",
          "The server is restarting. Please try again shortly."},
};

entry const* lookup(std::string_view code) noexcept {
    for (auto const& e : catalog) {
        if (e.code == code) {
            return &e;
        }
    }
    return nullptr;
}

entry const& internal_error() noexcept {
    auto const* e = lookup("internal_error");
    return *e;  // in the table above; a unit test checks it
}

char ascii_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// "1 minuto", "12 minutos".
std::string count_of(std::int64_t n, std::string_view one, std::string_view many) {
    std::string out = std::to_string(n);
    out += ' ';
    out += n == 1 ? one : many;
    return out;
}

struct units {
    std::string_view second, seconds, minute, minutes, hour, hours, and_, moment;
};

constexpr units es_units{"segundo", "segundos", "minuto", "minutos", "hora", "horas", " y ", "un momento"};
constexpr units en_units{"second", "seconds", "minute", "minutes", "hour", "hours", " and ", "a moment"};

}  // namespace

std::string_view to_string(language l) noexcept { return l == language::es ? "es" : "en"; }

std::optional<language> parse_language(std::string_view tag) noexcept {
    auto const primary = tag.substr(0, tag.find_first_of("-_"));
    if (primary.size() != 2) {
        return std::nullopt;
    }
    char const a = ascii_lower(primary[0]);
    char const b = ascii_lower(primary[1]);
    if (a == 'e' && b == 's') {
        return language::es;
    }
    if (a == 'e' && b == 'n') {
        return language::en;
    }
    return std::nullopt;
}

std::string_view language_name(language l) noexcept { return l == language::es ? "español" : "English"; }

std::string format_wait(std::chrono::seconds wait, language l) {
    auto const& u = l == language::es ? es_units : en_units;
    auto const s = wait.count();
    if (s <= 0) {
        return std::string{u.moment};
    }
    if (s < 60) {
        return count_of(s, u.second, u.seconds);
    }
    auto const minutes = s / 60 + (s % 60 != 0 ? 1 : 0);  // rounded up, no overflow
    if (minutes < 60) {
        return count_of(minutes, u.minute, u.minutes);
    }
    std::string out = count_of(minutes / 60, u.hour, u.hours);
    if (auto const rest = minutes % 60; rest != 0) {
        out += u.and_;
        out += count_of(rest, u.minute, u.minutes);
    }
    return out;
}

bool has_text(std::string_view code) noexcept { return lookup(code) != nullptr; }

std::string render(language l, std::string_view code, text_params const& params) {
    auto const* e = lookup(code);
    if (e == nullptr) {
        e = &internal_error();
    }
    std::string_view const text = l == language::es ? e->es : e->en;
    constexpr std::string_view wait_key = "{wait}";
    constexpr std::string_view limit_key = "{limit}";
    std::string out;
    out.reserve(text.size() + 16);
    for (std::size_t i = 0; i < text.size();) {
        auto const rest = text.substr(i);
        if (rest.starts_with(wait_key)) {
            if (params.wait) {
                out += format_wait(*params.wait, l);
            }
            i += wait_key.size();
        } else if (rest.starts_with(limit_key)) {
            if (params.limit) {
                out += std::to_string(*params.limit);
            }
            i += limit_key.size();
        } else {
            out += text[i];
            ++i;
        }
    }
    return out;
}

std::vector<std::string_view> catalog_codes() {
    std::vector<std::string_view> out;
    out.reserve(catalog.size());
    for (auto const& e : catalog) {
        out.push_back(e.code);
    }
    return out;
}

}  // namespace parley::domain
