#pragma once
// Fallback answers (ARCHITECTURE §5 step 6): canned answers served, marked
// `fallback:true`, when the upstream failed after its retries, its circuit
// is open or the budget is spent. Loaded from conf/fallbacks.json:
//
//   {"fallbacks": [
//     {"id": "greeting",
//      "patterns": {"es": ["hola", "buenos días"], "en": ["hello", "good morning"]},
//      "answer":   {"es": "¡Hola! ...", "en": "Hello! ..."}}
//   ]}
//
// Matching is case- and accent-insensitive on whole words: the message and
// each pattern are normalized (normalize_words) and a pattern matches when
// its words occur in the message's words contiguously, in order. Patterns
// of both languages are tried (people mix languages); the answer is given
// in the session's language. Entries are tried in file order, the first
// match wins.
#include "domain/i18n.hpp"

#include <boost/system/result.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::domain {

// The words of UTF-8 text for matching: letters folded to lower case with
// their accents removed (Latin-1 Supplement and Latin Extended-A letters:
// "Á" "á" "à" "ä" "â" -> "a", "ñ" -> "n", "ç" -> "c", "ß" -> "ss", ...),
// digits kept, everything else (punctuation, spaces, symbols, other
// scripts' characters, invalid bytes) a separator. "¿Qué HORA es?" ->
// {"que", "hora", "es"}.
std::vector<std::string> normalize_words(std::string_view utf8);

struct fallback_entry {
    std::string id;
    std::vector<std::vector<std::string>> patterns;  // normalized words, both languages
    std::string answer_es;
    std::string answer_en;
};

class fallback_catalog {
public:
    fallback_catalog() = default;  // empty: nothing ever matches

    // Parses the file's text. Errors (one line naming the entry): not JSON,
    // no "fallbacks" array, an entry without an id, with no pattern, with a
    // pattern that normalizes to no word, or without both answers (non-empty
    // strings); duplicate ids; more than 1000 entries or 100 patterns per
    // entry; a pattern or answer longer than 4096 bytes.
    static boost::system::result<fallback_catalog, std::string> parse(std::string_view json_text);

    // The answer of the first entry with a pattern in `text`, in `l`; nullopt
    // when none matches.
    std::optional<std::string> match(std::string_view text, language l) const;
    // The id of the first entry that matches (for logs and tests).
    std::optional<std::string> match_id(std::string_view text) const;

    std::vector<fallback_entry> const& entries() const noexcept { return entries_; }

private:
    fallback_entry const* find(std::string_view text) const;
    std::vector<fallback_entry> entries_;
};

}  // namespace parley::domain
