#include "domain/fallbacks.hpp"

#include <boost/test/unit_test.hpp>

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

using parley::domain::fallback_catalog;
using parley::domain::language;
using parley::domain::normalize_words;
using words = std::vector<std::string>;

namespace {

std::string read_file(std::string const& path) {
    std::ifstream in{path, std::ios::binary};
    BOOST_REQUIRE_MESSAGE(in, "cannot open " << path);
    return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

fallback_catalog parse_ok(std::string_view text) {
    auto r = fallback_catalog::parse(text);
    BOOST_REQUIRE_MESSAGE(r.has_value(), "parse failed: " << (r.has_value() ? std::string{} : r.error()));
    return std::move(*r);
}

std::string parse_error(std::string_view text) {
    auto const r = fallback_catalog::parse(text);
    BOOST_REQUIRE_MESSAGE(!r.has_value(), "parsed but should not: " << text);
    return r.error();
}

// What matched, printable by BOOST_TEST; "<none>" when nothing did.
std::string id_of(fallback_catalog const& c, std::string_view text) { return c.match_id(text).value_or("<none>"); }
std::string answer_of(fallback_catalog const& c, std::string_view text, language l) {
    return c.match(text, l).value_or("<none>");
}

// One entry: `patterns` is the JSON of the patterns object.
std::string entry(std::string const& id, std::string const& patterns, std::string const& es = "ES ",
                  std::string const& en = "EN ") {
    return R"({"id": ")" + id + R"(", "patterns": )" + patterns + R"(, "answer": {"es": ")" + es + id +
           R"(", "en": ")" + en + id + R"("}})";
}

std::string file_of(std::vector<std::string> const& entries) {
    std::string out = R"({"fallbacks": [)";
    for (std::size_t i = 0; i != entries.size(); ++i) {
        out += i == 0 ? "" : ",";
        out += entries[i];
    }
    return out + "]}";
}

// greeting, then a multiword entry, then one that overlaps the first.
std::string const sample = file_of({
    entry("greeting", R"({"es": ["hola", "buenos días"], "en": ["hello", "good morning"]})"),
    entry("hours", R"({"es": ["¿A qué hora abrís?"], "en": ["opening hours"]})"),
    entry("greeting_twice", R"({"es": ["hola hola"]})"),
    entry("thanks", R"({"en": ["thank you"]})"),
});

}  // namespace

BOOST_AUTO_TEST_SUITE(fallback_normalize_suite)

BOOST_AUTO_TEST_CASE(folds_case_accents_and_punctuation) {
    BOOST_TEST(normalize_words("¿Qué HORA es?") == (words{"que", "hora", "es"}), boost::test_tools::per_element());
    BOOST_TEST(normalize_words("ÁÉÍÓÚ ñandú Ça") == (words{"aeiou", "nandu", "ca"}), boost::test_tools::per_element());
    BOOST_TEST(normalize_words("  hello,world!! 42x ") == (words{"hello", "world", "42x"}),
               boost::test_tools::per_element());
    BOOST_TEST(normalize_words("").empty());
    BOOST_TEST(normalize_words(" ¡¿?! ... ").empty());
}

BOOST_AUTO_TEST_CASE(folds_latin_1_and_extended_a) {
    struct {
        char const* text;
        words expected;
    } const cases[] = {
        {"Straße", {"strasse"}},
        {"Æsir Œuvre", {"aesir", "oeuvre"}},
        {"Øresund søster", {"oresund", "soster"}},
        {"Đakovo Łódź", {"dakovo", "lodz"}},
        {"ıİ", {"ii"}},
        {"Þórr ðæ", {"thorr", "dae"}},
        {"àâäãåÀÂÄÃÅ", {"aaaaaaaaaa"}},
        {"çÇćČ", {"cccc"}},
        {"ÿŸýÝ", {"yyyy"}},
        {"Ĳssel", {"ijssel"}},
        {"Šťastný Žižkov", {"stastny", "zizkov"}},
        {"ſ", {"s"}},
        {"2×3÷4", {"2", "3", "4"}},           // × and ÷ are not letters
        {"µm ª º ² ©", {"m"}},               // U+00B5, U+00AA.. : outside the folded ranges
        {"Ɓ ǅ", {}},                          // past Latin Extended-A: separators
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT("text " << c.text) {
            BOOST_TEST(normalize_words(c.text) == c.expected, boost::test_tools::per_element());
        }
    }
}

BOOST_AUTO_TEST_CASE(other_scripts_and_emoji_separate_words) {
    BOOST_TEST(normalize_words("hola👋mundo") == (words{"hola", "mundo"}), boost::test_tools::per_element());
    BOOST_TEST(normalize_words("привет hello 你好") == (words{"hello"}), boost::test_tools::per_element());
    BOOST_TEST(normalize_words("a\u00A0b") == (words{"a", "b"}), boost::test_tools::per_element());  // no-break space
}

BOOST_AUTO_TEST_CASE(invalid_utf8_bytes_are_separators) {
    struct {
        std::string text;
        words expected;
    } const cases[] = {
        {"ho\xFFla", {"ho", "la"}},
        {"ho\x80la", {"ho", "la"}},                // stray continuation byte
        {"ho\xC3la", {"ho", "la"}},                // truncated two-byte sequence
        {"hola\xC3", {"hola"}},                    // truncated at the end
        {"ho\xC0\xB1la", {"ho", "la"}},            // overlong '1'
        {"ho\xE0\x80\xB1la", {"ho", "la"}},        // overlong three-byte
        {"ho\xED\xA0\x80la", {"ho", "la"}},        // UTF-16 surrogate
        {"ho\xF4\x90\x80\x80la", {"ho", "la"}},    // above U+10FFFF
        {"\xC3\xA1\xC3", {"a"}},                   // valid á then a truncated lead
        {"\xC3\xC3\xA1", {"a"}},                   // a broken lead does not swallow the next character
        {"caf\xC3\xA9", {"cafe"}},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT("case " << (&c - cases)) {
            BOOST_TEST(normalize_words(c.text) == c.expected, boost::test_tools::per_element());
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(fallback_match_suite)

BOOST_AUTO_TEST_CASE(empty_catalog_matches_nothing) {
    fallback_catalog const empty;
    BOOST_TEST(empty.entries().empty());
    BOOST_TEST(!empty.match("hola", language::es));
    BOOST_TEST(!empty.match_id("hola"));
    auto const parsed = parse_ok(R"({"fallbacks": []})");
    BOOST_TEST(!parsed.match("hola", language::es));
}

BOOST_AUTO_TEST_CASE(matches_whole_words_only) {
    auto const c = parse_ok(sample);
    BOOST_TEST(id_of(c, "¡Hola!") == "greeting");
    BOOST_TEST(id_of(c, "HOLA amigo") == "greeting");
    BOOST_TEST(id_of(c, "pues hola") == "greeting");
    BOOST_TEST(id_of(c, "hóla") == "greeting");
    BOOST_TEST(!c.match_id("holanda"));
    BOOST_TEST(!c.match_id("cholas"));
    BOOST_TEST(!c.match_id("hol a"));
    BOOST_TEST(!c.match_id(""));
}

BOOST_AUTO_TEST_CASE(multiword_patterns_are_contiguous_and_in_order) {
    auto const c = parse_ok(sample);
    BOOST_TEST(id_of(c, "Buenos dias a todos") == "greeting");
    BOOST_TEST(id_of(c, "¡BUENOS... DÍAS!") == "greeting");
    BOOST_TEST(!c.match_id("buenos y días"));
    BOOST_TEST(!c.match_id("días buenos"));
    BOOST_TEST(!c.match_id("buenos"));
    BOOST_TEST(id_of(c, "a que hora abris") == "hours");  // the pattern's own punctuation is ignored
    BOOST_TEST(id_of(c, "What are your opening hours?") == "hours");
    BOOST_TEST(!c.match_id("hours of opening"));
}

BOOST_AUTO_TEST_CASE(patterns_of_both_languages_are_tried) {
    auto const c = parse_ok(sample);
    BOOST_TEST(id_of(c, "hello") == "greeting");
    BOOST_TEST(answer_of(c, "hello", language::es) == "ES greeting");  // English words, Spanish session
    BOOST_TEST(answer_of(c, "hola", language::en) == "EN greeting");
    BOOST_TEST(answer_of(c, "Thank you!", language::es) == "ES thanks");
    BOOST_TEST(answer_of(c, "Thank you!", language::en) == "EN thanks");
}

BOOST_AUTO_TEST_CASE(first_entry_in_file_order_wins) {
    auto const c = parse_ok(sample);
    // "hola hola" matches greeting_twice too, but greeting comes first.
    BOOST_TEST(id_of(c, "hola hola") == "greeting");
    // Earlier entry wins even when the later one's words come first in the text.
    BOOST_TEST(id_of(c, "thank you, good morning") == "greeting");

    auto const reversed = parse_ok(file_of({
        entry("greeting_twice", R"({"es": ["hola hola"]})"),
        entry("greeting", R"({"es": ["hola"]})"),
    }));
    BOOST_TEST(id_of(reversed, "hola hola") == "greeting_twice");
    BOOST_TEST(id_of(reversed, "hola") == "greeting");
}

BOOST_AUTO_TEST_CASE(parse_keeps_entries_in_order_with_normalized_patterns) {
    auto const c = parse_ok(sample);
    BOOST_REQUIRE(c.entries().size() == 4u);
    auto const& e = c.entries()[0];
    BOOST_TEST(e.id == "greeting");
    BOOST_TEST(e.answer_es == "ES greeting");
    BOOST_TEST(e.answer_en == "EN greeting");
    BOOST_REQUIRE(e.patterns.size() == 4u);
    BOOST_TEST(e.patterns[0] == (words{"hola"}), boost::test_tools::per_element());
    BOOST_TEST(e.patterns[1] == (words{"buenos", "dias"}), boost::test_tools::per_element());
    BOOST_TEST(e.patterns[2] == (words{"hello"}), boost::test_tools::per_element());
    BOOST_TEST(e.patterns[3] == (words{"good", "morning"}), boost::test_tools::per_element());
    BOOST_TEST(c.entries()[1].id == "hours");
    BOOST_TEST(c.entries()[3].id == "thanks");
}

BOOST_AUTO_TEST_CASE(answers_keep_their_text) {
    auto const c = parse_ok(file_of({entry("x", R"({"es": ["x"]})", "¡Hola, \\\"tú\\\"! ", "Hi\\n")}));
    BOOST_TEST(answer_of(c, "x", language::es) == "¡Hola, \"tú\"! x");
    BOOST_TEST(answer_of(c, "x", language::en) == "Hi\nx");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(fallback_parse_suite)

BOOST_AUTO_TEST_CASE(rejects_each_invalid_file_with_a_named_error) {
    auto const long_text = std::string(4097, 'a');
    auto const max_text = std::string(4096, 'a');
    std::string many_patterns = R"({"es": [)";
    for (int i = 0; i != 101; ++i) {
        many_patterns += i == 0 ? R"("p)" : R"(, "p)";
        many_patterns += std::to_string(i) + '"';
    }
    many_patterns += "]}";
    std::vector<std::string> too_many_entries;
    for (int i = 0; i != 1001; ++i) {
        too_many_entries.push_back(entry("e" + std::to_string(i), R"({"es": ["x"]})"));
    }
    std::string const good = entry("ok", R"({"es": ["x"]})");

    struct {
        std::string text;
        std::string error;
    } const cases[] = {
        {"", "fallbacks.json: not valid JSON at line 1, column 1"},
        {"{\"fallbacks\": [\n  {\"id\": }]}", "fallbacks.json: not valid JSON at line 2, column 10"},
        {R"({"fallbacks": []} x)", "fallbacks.json: not valid JSON"},
        {R"({"fallbacks": [],})", "fallbacks.json: not valid JSON"},                 // no trailing commas
        {"{\"fallbacks\": [] // c\n}", "fallbacks.json: not valid JSON"},            // no comments
        {"{\"fallbacks\": [{\"id\": \"a\xFF\"}]}", "fallbacks.json: not valid JSON"},  // invalid UTF-8
        {"[]", R"(fallbacks.json: expected an object with a "fallbacks" array)"},
        {"{}", R"(fallbacks.json: expected an object with a "fallbacks" array)"},
        {R"({"fallbacks": {}})", R"(fallbacks.json: expected an object with a "fallbacks" array)"},
        {R"({"fallback": []})", R"(fallbacks.json: expected an object with a "fallbacks" array)"},
        {R"({"fallbacks": [], "extra": 1})", R"(fallbacks.json: unknown key "extra" at the top level)"},
        {file_of(too_many_entries), "fallbacks.json: more than 1000 entries (1001)"},
        {file_of({good, "3"}), "fallbacks.json: entry 2: must be an object"},
        {file_of({good, R"({"patterns": {"es": ["x"]}, "answer": {"es": "a", "en": "b"}})"}),
         "fallbacks.json: entry 2: id must be a non-empty string"},
        {file_of({R"({"id": "", "patterns": {"es": ["x"]}, "answer": {"es": "a", "en": "b"}})"}),
         "fallbacks.json: entry 1: id must be a non-empty string"},
        {file_of({R"({"id": 7, "patterns": {"es": ["x"]}, "answer": {"es": "a", "en": "b"}})"}),
         "fallbacks.json: entry 1: id must be a non-empty string"},
        {file_of({good, entry("b", R"({"es": ["y"]})"), good}),
         R"(fallbacks.json: entry 3 ("ok"): duplicate id (also entry 1))"},
        {file_of({R"({"id": "a", "patterns": {"es": ["x"]}, "answer": {"es": "a", "en": "b"}, "note": 1})"}),
         R"(fallbacks.json: entry 1 ("a"): unknown key "note")"},
        {file_of({R"({"id": "a", "answer": {"es": "a", "en": "b"}})"}),
         R"(fallbacks.json: entry 1 ("a"): patterns must be an object with "es" and/or "en" arrays)"},
        {file_of({entry("a", R"(["x"])")}),
         R"(fallbacks.json: entry 1 ("a"): patterns must be an object with "es" and/or "en" arrays)"},
        {file_of({entry("a", R"({"es": ["x"], "fr": ["y"]})")}),
         R"(fallbacks.json: entry 1 ("a"): unknown key "fr" in patterns (only "es" and "en"))"},
        {file_of({entry("a", R"({"es": "x"})")}),
         R"(fallbacks.json: entry 1 ("a"): patterns.es must be an array of strings)"},
        {file_of({entry("a", R"({"es": ["x"], "en": ["y", 3]})")}),
         R"(fallbacks.json: entry 1 ("a"): patterns.en[1] must be a string)"},
        {file_of({entry("a", R"({})")}),
         R"(fallbacks.json: entry 1 ("a"): has no pattern (patterns.es and patterns.en are both empty or missing))"},
        {file_of({entry("a", R"({"es": [], "en": []})")}),
         R"(fallbacks.json: entry 1 ("a"): has no pattern (patterns.es and patterns.en are both empty or missing))"},
        {file_of({entry("a", R"({"es": ["x", "¿?¡!"]})")}),
         R"(fallbacks.json: entry 1 ("a"): patterns.es[1] has no words (letters or digits))"},
        {file_of({entry("a", R"({"en": [""]})")}),
         R"(fallbacks.json: entry 1 ("a"): patterns.en[0] has no words (letters or digits))"},
        {file_of({entry("a", R"({"es": [")" + long_text + R"("]})")}),
         R"(fallbacks.json: entry 1 ("a"): patterns.es[0] is longer than 4096 bytes)"},
        {file_of({entry("a", many_patterns)}), R"(fallbacks.json: entry 1 ("a"): more than 100 patterns)"},
        {file_of({R"({"id": "a", "patterns": {"es": ["x"]}})"}),
         R"(fallbacks.json: entry 1 ("a"): answer must be an object with "es" and "en" strings)"},
        {file_of({R"({"id": "a", "patterns": {"es": ["x"]}, "answer": "hi"})"}),
         R"(fallbacks.json: entry 1 ("a"): answer must be an object with "es" and "en" strings)"},
        {file_of({R"({"id": "a", "patterns": {"es": ["x"]}, "answer": {"en": "b"}})"}),
         R"(fallbacks.json: entry 1 ("a"): answer.es must be a non-empty string)"},
        {file_of({good, good, R"({"id": "greeting", "patterns": {"es": ["x"]}, "answer": {"es": "a"}})"}),
         R"(fallbacks.json: entry 2 ("ok"): duplicate id (also entry 1))"},
        {file_of({good, entry("b", R"({"es": ["y"]})"),
                  R"({"id": "greeting", "patterns": {"es": ["x"]}, "answer": {"es": "a"}})"}),
         R"(fallbacks.json: entry 3 ("greeting"): answer.en must be a non-empty string)"},
        {file_of({R"({"id": "a", "patterns": {"es": ["x"]}, "answer": {"es": "a", "en": ""}})"}),
         R"(fallbacks.json: entry 1 ("a"): answer.en must be a non-empty string)"},
        {file_of({R"({"id": "a", "patterns": {"es": ["x"]}, "answer": {"es": "a", "en": 1}})"}),
         R"(fallbacks.json: entry 1 ("a"): answer.en must be a non-empty string)"},
        {file_of({R"({"id": "a", "patterns": {"es": ["x"]}, "answer": {"es": "a", "en": "b", "de": "c"}})"}),
         R"(fallbacks.json: entry 1 ("a"): unknown key "de" in answer (only "es" and "en"))"},
        {file_of({R"({"id": "a", "patterns": {"es": ["x"]}, "answer": {"es": ")" + long_text +
                  R"(", "en": "b"}})"}),
         R"(fallbacks.json: entry 1 ("a"): answer.es is longer than 4096 bytes)"},
        {file_of({R"({"id": "a\"b", "answer": {}})"}),
         R"(fallbacks.json: entry 1 ("a\"b"): patterns must be an object with "es" and/or "en" arrays)"},
        {file_of({R"({"id": ")" + std::string(70, 'x') + R"("})"}),
         "fallbacks.json: entry 1 (\"" + std::string(60, 'x') +
             R"(..."): patterns must be an object with "es" and/or "en" arrays)"},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT("case " << (&c - cases) << ": " << c.text.substr(0, 200)) {
            auto const error = parse_error(c.text);
            BOOST_CHECK_MESSAGE(error.starts_with(c.error), "got: " << error);
            BOOST_TEST(error.find('\n') == std::string::npos);
        }
    }

    // The limits themselves are allowed.
    std::string hundred_patterns = R"({"es": [)";
    for (int i = 0; i != 100; ++i) {
        hundred_patterns += i == 0 ? R"("p)" : R"(, "p)";
        hundred_patterns += std::to_string(i) + '"';
    }
    hundred_patterns += "]}";
    too_many_entries.pop_back();
    too_many_entries.back() = entry("last", hundred_patterns);
    auto const answer = max_text.substr(4); // entry() appends the id "long": 4096 bytes in all
    too_many_entries.push_back(entry("long", R"({"es": [")" + max_text + R"("]})", answer, answer));
    too_many_entries.erase(too_many_entries.begin());
    auto const at_limits = parse_ok(file_of(too_many_entries));
    BOOST_TEST(at_limits.entries().size() == 1000u);
    BOOST_TEST(id_of(at_limits, "p99") == "last");
    BOOST_TEST(id_of(at_limits, max_text) == "long");
}

BOOST_AUTO_TEST_CASE(truncated_long_id_keeps_utf8_whole) {
    // 59 ASCII bytes then "ñ" (2 bytes) straddles the 60-byte cut: the ñ is dropped whole.
    auto const id = std::string(59, 'x') + "ñ" + "yyy";
    auto const error = parse_error(file_of({R"({"id": ")" + id + R"("})"}));
    BOOST_CHECK_MESSAGE(error.starts_with("fallbacks.json: entry 1 (\"" + std::string(59, 'x') + "...\"): "),
                        "got: " << error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(fallback_conf_suite)

BOOST_AUTO_TEST_CASE(shipped_catalog_parses_and_answers_greetings) {
    auto const c = parse_ok(read_file(std::string{PARLEY_SOURCE_DIR} + "/conf/fallbacks.json"));
    BOOST_TEST(c.entries().size() >= 8u);
    BOOST_TEST(id_of(c, "hola") == "greeting");
    BOOST_TEST(id_of(c, "hello") == "greeting");
    BOOST_TEST(id_of(c, "¡Buenos días!") == "greeting");
    BOOST_TEST(id_of(c, "Muchas gracias") == "thanks");
    BOOST_TEST(id_of(c, "¿Qué puedes hacer?") == "help");
    BOOST_TEST(id_of(c, "olvidé mi contraseña") == "password");
    BOOST_TEST(id_of(c, "hola, he olvidado la contraseña") == "password");  // specific before greeting
    BOOST_TEST(id_of(c, "Who are you?") == "who_are_you");
    BOOST_TEST(id_of(c, "adios") == "goodbye");
    BOOST_TEST(id_of(c, "¿cuál es vuestro horario?") == "contact");
    BOOST_TEST(id_of(c, "what's my quota") == "limits");
    BOOST_TEST(!c.match_id("holanda"));
    auto const es = c.match("hola", language::es);
    auto const en = c.match("hola", language::en);
    BOOST_REQUIRE(es.has_value());
    BOOST_REQUIRE(en.has_value());
    BOOST_TEST(es->starts_with("¡Hola!"));
    BOOST_TEST(en->starts_with("Hello!"));
    for (auto const& e : c.entries()) {
        BOOST_TEST_CONTEXT("entry " << e.id) {
            BOOST_TEST(e.answer_es != e.answer_en);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
