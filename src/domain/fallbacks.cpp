#include "domain/fallbacks.hpp"

#include <boost/json/parser.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <unordered_map>

namespace parley::domain {

namespace json = boost::json;

namespace {

// ---------------------------------------------------------------- UTF-8 and folding

constexpr char32_t invalid = 0xFFFFFFFF;

// Decodes one code point at `s[i]` and advances `i`. Overlong forms,
// surrogates, values above U+10FFFF and truncated or broken sequences give
// `invalid` and skip only the lead byte, so decoding resynchronizes at the
// next byte (stray continuation bytes are then invalid one by one).
char32_t next_code_point(std::string_view s, std::size_t& i) {
    auto const byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char const lead = byte(i);
    if (lead < 0x80) {
        ++i;
        return lead;
    }
    std::size_t len = 0;
    char32_t cp = 0;
    char32_t min = 0;
    if (lead >= 0xC2 && lead <= 0xDF) {
        len = 2, cp = lead & 0x1F, min = 0x80;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        len = 3, cp = lead & 0x0F, min = 0x800;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        len = 4, cp = lead & 0x07, min = 0x10000;
    } else {
        ++i;  // continuation byte, C0/C1 (always overlong) or F5..FF
        return invalid;
    }
    if (s.size() - i < len) {
        ++i;
        return invalid;
    }
    for (std::size_t k = 1; k != len; ++k) {
        unsigned char const c = byte(i + k);
        if ((c & 0xC0) != 0x80) {
            ++i;
            return invalid;
        }
        cp = (cp << 6) | (c & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        ++i;
        return invalid;
    }
    i += len;
    return cp;
}

struct fold_range {
    char32_t first;
    char32_t last;
    std::string_view ascii;  // empty: a separator
};

// Latin-1 Supplement letters and Latin Extended-A, folded to lower-case
// unaccented ASCII. Ranges are sorted and cover U+00C0..U+017F.
constexpr fold_range folds[] = {
    {0x00C0, 0x00C5, "a"},  {0x00C6, 0x00C6, "ae"}, {0x00C7, 0x00C7, "c"},  {0x00C8, 0x00CB, "e"},
    {0x00CC, 0x00CF, "i"},  {0x00D0, 0x00D0, "d"},  {0x00D1, 0x00D1, "n"},  {0x00D2, 0x00D6, "o"},
    {0x00D7, 0x00D7, ""},   // × multiplication sign
    {0x00D8, 0x00D8, "o"},  {0x00D9, 0x00DC, "u"},  {0x00DD, 0x00DD, "y"},  {0x00DE, 0x00DE, "th"},
    {0x00DF, 0x00DF, "ss"}, {0x00E0, 0x00E5, "a"},  {0x00E6, 0x00E6, "ae"}, {0x00E7, 0x00E7, "c"},
    {0x00E8, 0x00EB, "e"},  {0x00EC, 0x00EF, "i"},  {0x00F0, 0x00F0, "d"},  {0x00F1, 0x00F1, "n"},
    {0x00F2, 0x00F6, "o"},
    {0x00F7, 0x00F7, ""},   // ÷ division sign
    {0x00F8, 0x00F8, "o"},  {0x00F9, 0x00FC, "u"},  {0x00FD, 0x00FD, "y"},  {0x00FE, 0x00FE, "th"},
    {0x00FF, 0x00FF, "y"},  {0x0100, 0x0105, "a"},  {0x0106, 0x010D, "c"},  {0x010E, 0x0111, "d"},
    {0x0112, 0x011B, "e"},  {0x011C, 0x0123, "g"},  {0x0124, 0x0127, "h"},  {0x0128, 0x0131, "i"},
    {0x0132, 0x0133, "ij"}, {0x0134, 0x0135, "j"},  {0x0136, 0x0138, "k"},  {0x0139, 0x0142, "l"},
    {0x0143, 0x014B, "n"},  {0x014C, 0x0151, "o"},  {0x0152, 0x0153, "oe"}, {0x0154, 0x0159, "r"},
    {0x015A, 0x0161, "s"},  {0x0162, 0x0167, "t"},  {0x0168, 0x0173, "u"},  {0x0174, 0x0175, "w"},
    {0x0176, 0x0178, "y"},  {0x0179, 0x017E, "z"},  {0x017F, 0x017F, "s"},  // ſ long s
};

constexpr bool folds_cover_c0_to_17f() {
    char32_t next = 0x00C0;
    for (auto const& r : folds) {
        if (r.first != next || r.last < r.first) {
            return false;
        }
        next = r.last + 1;
    }
    return next == 0x0180;
}
static_assert(folds_cover_c0_to_17f(), "fold ranges must be sorted, contiguous and cover U+00C0..U+017F");

// The ASCII letters `cp` folds to; empty for a separator.
std::string_view fold(char32_t cp) {
    if (cp < 0x80) {
        static constexpr std::string_view lower = "abcdefghijklmnopqrstuvwxyz";
        static constexpr std::string_view digits = "0123456789";
        if (cp >= 'A' && cp <= 'Z') {
            return lower.substr(cp - 'A', 1);
        }
        if (cp >= 'a' && cp <= 'z') {
            return lower.substr(cp - 'a', 1);
        }
        if (cp >= '0' && cp <= '9') {
            return digits.substr(cp - '0', 1);
        }
        return {};
    }
    if (cp < 0x00C0 || cp > 0x017F) {
        return {};
    }
    auto const it = std::find_if(std::begin(folds), std::end(folds), [cp](fold_range const& r) { return cp <= r.last; });
    return it->ascii;  // found: the ranges cover U+00C0..U+017F
}

// ---------------------------------------------------------------- parse helpers

constexpr std::size_t max_entries = 1000;
constexpr std::size_t max_patterns = 100;
constexpr std::size_t max_text_bytes = 4096;
constexpr std::size_t max_shown_id = 60;

std::string_view sv(json::string const& s) { return {s.data(), s.size()}; }
std::string_view sv(json::string_view s) { return {s.data(), s.size()}; }

using parse_result = boost::system::result<fallback_catalog, std::string>;

std::string fail(std::string_view what) {
    std::string out = "fallbacks.json: ";
    out += what;
    return out;
}

// `entry 3 ("greeting")`, 1-based; the id quoted as JSON and cut if long.
std::string entry_name(std::size_t index, std::string_view id) {
    std::string out = "entry " + std::to_string(index + 1);
    if (!id.empty()) {
        bool const cut = id.size() > max_shown_id;
        if (cut) {
            auto end = max_shown_id;
            while (end > 0 && (static_cast<unsigned char>(id[end]) & 0xC0) == 0x80) {
                --end;  // not inside a UTF-8 sequence
            }
            id = id.substr(0, end);
        }
        out += " (";
        out += json::serialize(json::value(json::string_view{id.data(), id.size()}));
        if (cut) {
            out.insert(out.size() - 1, "...");
        }
        out += ')';
    }
    return out;
}

std::string quoted(std::string_view key) { return json::serialize(json::value(json::string_view{key.data(), key.size()})); }

// The first key of `o` not in `allowed`, if any.
std::optional<std::string_view> unknown_key(json::object const& o, std::initializer_list<std::string_view> allowed) {
    for (auto const& kv : o) {
        if (std::find(allowed.begin(), allowed.end(), sv(kv.key())) == allowed.end()) {
            return sv(kv.key());
        }
    }
    return std::nullopt;
}

// "line 3, column 7" of byte offset `at`.
std::string position(std::string_view text, std::size_t at) {
    auto const before = text.substr(0, at);
    auto const line = std::count(before.begin(), before.end(), '\n') + 1;
    auto const line_start = before.rfind('\n');
    auto const column = at - (line_start == std::string_view::npos ? 0 : line_start + 1) + 1;
    return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

}  // namespace

std::vector<std::string> normalize_words(std::string_view utf8) {
    std::vector<std::string> words;
    std::string word;
    for (std::size_t i = 0; i < utf8.size();) {
        auto const folded = fold(next_code_point(utf8, i));
        if (!folded.empty()) {
            word += folded;
        } else if (!word.empty()) {
            words.push_back(std::move(word));
            word.clear();
        }
    }
    if (!word.empty()) {
        words.push_back(std::move(word));
    }
    return words;
}

parse_result fallback_catalog::parse(std::string_view json_text) {
    json::parser parser;
    boost::system::error_code ec;
    auto const consumed = parser.write(json_text.data(), json_text.size(), ec);
    if (ec) {
        return fail("not valid JSON at " + position(json_text, consumed) + " (" + ec.message() + ")");
    }
    auto const root = parser.release();
    auto const* top = root.if_object();
    auto const* list = top != nullptr && top->contains("fallbacks") ? top->at("fallbacks").if_array() : nullptr;
    if (list == nullptr) {
        return fail("expected an object with a \"fallbacks\" array");
    }
    if (auto const key = unknown_key(*top, {"fallbacks"})) {
        return fail("unknown key " + quoted(*key) + " at the top level");
    }
    if (list->size() > max_entries) {
        return fail("more than " + std::to_string(max_entries) + " entries (" + std::to_string(list->size()) + ")");
    }

    fallback_catalog out;
    out.entries_.reserve(list->size());
    std::unordered_map<std::string_view, std::size_t> seen;  // id -> index; views into `root`
    for (std::size_t n = 0; n != list->size(); ++n) {
        auto const* o = (*list)[n].if_object();
        if (o == nullptr) {
            return fail(entry_name(n, {}) + ": must be an object");
        }
        auto const* id_value = o->if_contains("id");
        auto const* id = id_value != nullptr ? id_value->if_string() : nullptr;
        if (id == nullptr || id->empty()) {
            return fail(entry_name(n, {}) + ": id must be a non-empty string");
        }
        auto const name = entry_name(n, sv(*id));
        auto const bad = [&](std::string_view what) { return fail(name + ": " + std::string{what}); };
        if (auto const [it, fresh] = seen.emplace(sv(*id), n); !fresh) {
            return bad("duplicate id (also " + entry_name(it->second, {}) + ")");
        }
        if (auto const key = unknown_key(*o, {"id", "patterns", "answer"})) {
            return bad("unknown key " + quoted(*key));
        }

        fallback_entry e;
        e.id = std::string{sv(*id)};

        auto const* patterns_value = o->if_contains("patterns");
        auto const* patterns = patterns_value != nullptr ? patterns_value->if_object() : nullptr;
        if (patterns == nullptr) {
            return bad("patterns must be an object with \"es\" and/or \"en\" arrays");
        }
        if (auto const key = unknown_key(*patterns, {"es", "en"})) {
            return bad("unknown key " + quoted(*key) + " in patterns (only \"es\" and \"en\")");
        }
        for (std::string_view const lang : {"es", "en"}) {
            auto const* list_value = patterns->if_contains(lang);
            if (list_value == nullptr) {
                continue;
            }
            auto const* items = list_value->if_array();
            if (items == nullptr) {
                return bad("patterns." + std::string{lang} + " must be an array of strings");
            }
            for (std::size_t k = 0; k != items->size(); ++k) {
                auto const where = "patterns." + std::string{lang} + "[" + std::to_string(k) + "]";
                auto const* p = (*items)[k].if_string();
                if (p == nullptr) {
                    return bad(where + " must be a string");
                }
                if (p->size() > max_text_bytes) {
                    return bad(where + " is longer than " + std::to_string(max_text_bytes) + " bytes");
                }
                auto words = normalize_words(sv(*p));
                if (words.empty()) {
                    return bad(where + " has no words (letters or digits)");
                }
                if (e.patterns.size() == max_patterns) {
                    return bad("more than " + std::to_string(max_patterns) + " patterns");
                }
                e.patterns.push_back(std::move(words));
            }
        }
        if (e.patterns.empty()) {
            return bad("has no pattern (patterns.es and patterns.en are both empty or missing)");
        }

        auto const* answer_value = o->if_contains("answer");
        auto const* answer = answer_value != nullptr ? answer_value->if_object() : nullptr;
        if (answer == nullptr) {
            return bad("answer must be an object with \"es\" and \"en\" strings");
        }
        if (auto const key = unknown_key(*answer, {"es", "en"})) {
            return bad("unknown key " + quoted(*key) + " in answer (only \"es\" and \"en\")");
        }
        for (std::string_view const lang : {"es", "en"}) {
            auto const* text_value = answer->if_contains(lang);
            auto const* text = text_value != nullptr ? text_value->if_string() : nullptr;
            if (text == nullptr || text->empty()) {
                return bad("answer." + std::string{lang} + " must be a non-empty string");
            }
            if (text->size() > max_text_bytes) {
                return bad("answer." + std::string{lang} + " is longer than " + std::to_string(max_text_bytes) +
                           " bytes");
            }
            (lang == "es" ? e.answer_es : e.answer_en) = std::string{sv(*text)};
        }
        out.entries_.push_back(std::move(e));
    }
    return out;
}

fallback_entry const* fallback_catalog::find(std::string_view text) const {
    if (entries_.empty()) {
        return nullptr;
    }
    auto const words = normalize_words(text);
    for (auto const& e : entries_) {
        for (auto const& pattern : e.patterns) {
            if (std::search(words.begin(), words.end(), pattern.begin(), pattern.end()) != words.end()) {
                return &e;
            }
        }
    }
    return nullptr;
}

std::optional<std::string> fallback_catalog::match(std::string_view text, language l) const {
    auto const* e = find(text);
    if (e == nullptr) {
        return std::nullopt;
    }
    return l == language::es ? e->answer_es : e->answer_en;
}

std::optional<std::string> fallback_catalog::match_id(std::string_view text) const {
    auto const* e = find(text);
    if (e == nullptr) {
        return std::nullopt;
    }
    return e->id;
}

}  // namespace parley::domain
