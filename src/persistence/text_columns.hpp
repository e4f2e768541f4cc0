#pragma once
// Text bound into a column (internal to persistence/): valid UTF-8 that
// fits, so a row is never rejected for its strings. Invalid UTF-8 and NUL
// bytes (which neither PostgreSQL text nor a C string can hold) become '?',
// and text longer than its column is cut at a character boundary.
#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

namespace parley::persistence {

// The length of the valid UTF-8 sequence at text[i], or 0 (overlong forms,
// surrogates and code points past U+10FFFF are invalid).
inline std::size_t utf8_sequence(std::string_view text, std::size_t i) {
    auto const at = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    auto const in = [](unsigned char c, unsigned lo, unsigned hi) { return c >= lo && c <= hi; };
    unsigned char const c = at(i);
    std::size_t const left = text.size() - i;
    if (c < 0x80) {
        return 1;
    }
    if (in(c, 0xC2, 0xDF)) {
        return left >= 2 && in(at(i + 1), 0x80, 0xBF) ? 2 : 0;
    }
    if (in(c, 0xE0, 0xEF)) {
        if (left < 3) {
            return 0;
        }
        unsigned const lo = c == 0xE0 ? 0xA0 : 0x80;
        unsigned const hi = c == 0xED ? 0x9F : 0xBF;
        return in(at(i + 1), lo, hi) && in(at(i + 2), 0x80, 0xBF) ? 3 : 0;
    }
    if (in(c, 0xF0, 0xF4)) {
        if (left < 4) {
            return 0;
        }
        unsigned const lo = c == 0xF0 ? 0x90 : 0x80;
        unsigned const hi = c == 0xF4 ? 0x8F : 0xBF;
        return in(at(i + 1), lo, hi) && in(at(i + 2), 0x80, 0xBF) && in(at(i + 3), 0x80, 0xBF) ? 4 : 0;
    }
    return 0;
}

// Valid UTF-8 of at most max_bytes: invalid bytes and NUL become '?', and
// the text is cut at a character boundary.
inline std::string fit(std::string_view text, std::size_t max_bytes) {
    std::string out;
    out.reserve(std::min(text.size(), max_bytes));
    for (std::size_t i = 0; i < text.size();) {
        std::size_t const n = utf8_sequence(text, i);
        std::size_t const take = n == 0 ? 1 : n;
        if (out.size() + take > max_bytes) {
            break;
        }
        if (n == 0 || text[i] == '\0') {
            out += '?';
        } else {
            out.append(text.substr(i, n));
        }
        i += take;
    }
    return out;
}

// fit() for a column without a length (text): only the bytes are replaced.
inline std::string fit(std::string_view text) { return fit(text, std::string_view::npos); }

}  // namespace parley::persistence
