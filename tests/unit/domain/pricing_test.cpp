#include "domain/money.hpp"
#include "domain/pricing.hpp"

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <limits>
#include <string>

namespace bdata = boost::unit_test::data;
using namespace parley::domain;

namespace {

constexpr std::int64_t max64 = std::numeric_limits<std::int64_t>::max();

// anthropic/claude-3.5-sonnet, as default_price_table() has it.
model_price const sonnet{
    .prompt = token_price{3'000'000},        // 0.000003
    .completion = token_price{15'000'000},   // 0.000015
    .cache_read = token_price{300'000},      // 0.0000003
    .cache_write = token_price{3'750'000},   // 0.00000375
};

// A price from picos per token of each kind (all four fields, so -Wextra sees none missing).
model_price price(std::int64_t prompt, std::int64_t completion = 0, std::int64_t cache_read = 0,
                  std::int64_t cache_write = 0) {
    return model_price{token_price{prompt}, token_price{completion}, token_price{cache_read}, token_price{cache_write}};
}

model_price prompt_only(std::int64_t picos) { return price(picos); }

// Picos of a parsed price, or -1 when it was rejected (Boost.Test cannot print optional<token_price>).
std::int64_t parsed(std::string_view text) {
    auto const p = parse_token_price(text);
    return p ? p->picos : -1;
}

// The OpenRouter /api/v1/models body, abridged from a real one: extra fields
// everywhere, a free variant, a "-1" (variable) router entry, an entry
// without pricing, one without id, and one whose prices are JSON numbers.
constexpr char const* models_body = R"json({
  "data": [
    {
      "id": "anthropic/claude-3.5-sonnet",
      "canonical_slug": "anthropic/claude-3.5-sonnet",
      "name": "Anthropic: Claude 3.5 Sonnet",
      "created": 1729555200,
      "context_length": 200000,
      "architecture": {"modality": "text+image->text", "input_modalities": ["text", "image"],
                       "output_modalities": ["text"], "tokenizer": "Claude", "instruct_type": null},
      "pricing": {"prompt": "0.000003", "completion": "0.000015", "request": "0", "image": "0.0048",
                  "web_search": "0", "internal_reasoning": "0",
                  "input_cache_read": "0.0000003", "input_cache_write": "0.00000375"},
      "top_provider": {"context_length": 200000, "max_completion_tokens": 8192, "is_moderated": true},
      "per_request_limits": null,
      "supported_parameters": ["max_tokens", "temperature", "tools", "tool_choice", "stop"]
    },
    {
      "id": "meta-llama/llama-3.1-8b-instruct:free",
      "name": "Meta: Llama 3.1 8B Instruct (free)",
      "pricing": {"prompt": "0", "completion": "0", "request": "0", "image": "0"}
    },
    {
      "id": "openai/gpt-4o-mini",
      "pricing": {"prompt": "0.00000015", "completion": "0.0000006", "input_cache_read": "0.000000075"}
    },
    {
      "id": "openrouter/auto",
      "name": "Auto Router",
      "pricing": {"prompt": "-1", "completion": "-1"}
    },
    {
      "id": "some/model-without-pricing",
      "name": "No pricing"
    },
    {
      "name": "An entry without an id",
      "pricing": {"prompt": "0.000001", "completion": "0.000002"}
    },
    {
      "id": "x/numbers",
      "pricing": {"prompt": 0.0000000375, "completion": 0.000015, "input_cache_write": 1}
    }
  ]
})json";

}  // namespace

BOOST_AUTO_TEST_SUITE(pricing_suite)

// ---------------------------------------------------------- parse / format

BOOST_AUTO_TEST_CASE(parse_token_price_reads_plain_decimals_exactly) {
    struct {
        char const* text;
        std::int64_t picos;
    } const cases[] = {
        {"0", 0},
        {"0.0", 0},
        {"0.000003", 3'000'000},
        {"0.000015", 15'000'000},
        {"0.0000003", 300'000},
        {"0.00000375", 3'750'000},
        {"0.0000000375", 37'500},
        {"0.000000000001", 1},
        {"1", 1'000'000'000'000},
        {"007.5", 7'500'000'000'000},
        {"0.000003000000000000000000", 3'000'000},
        {"9223372", 9'223'372'000'000'000'000},
        {"9223372.036854775807", max64},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT("text " << c.text) {
            BOOST_TEST(parsed(c.text) == c.picos);
        }
    }
}

BOOST_AUTO_TEST_CASE(parse_token_price_rounds_half_up_at_the_twelfth_decimal) {
    BOOST_TEST(parsed("0.0000000000005") == 1);        // exactly half a pico: up
    BOOST_TEST(parsed("0.0000000000004999999") == 0);  // below half: down, whatever follows
    BOOST_TEST(parsed("0.0000000000014") == 1);
    BOOST_TEST(parsed("0.00000000000150") == 2);
    BOOST_TEST(parsed("0.0000000000019999") == 2);
    BOOST_TEST(parsed("0.0000037500004") == 3'750'000);
    BOOST_TEST(parsed("0.0000037500005") == 3'750'001);
    BOOST_TEST(parsed("0.9999999999995") == 1'000'000'000'000);   // carries into the whole part
    BOOST_TEST(parsed("9223372.0368547758074") == max64);
}

BOOST_DATA_TEST_CASE(parse_token_price_rejects_anything_else,
                     bdata::make({"", ".", ".5", "5.", "-1", "-0.000003", "+1", "3e-6", "1E3", "0.000003e0", " 1",
                                  "1 ", "1,5", "1.2.3", "1..2", "0x10", "abc", "nan", "inf", "1$",
                                  "0.0000000000001x", "9223373", "9223372.036854775808",
                                  "9223372.0368547758075", "99999999999999999999"}),
                     text) {
    BOOST_TEST(parsed(text) == -1);
}

BOOST_AUTO_TEST_CASE(format_token_price_is_the_shortest_exact_decimal) {
    struct {
        std::int64_t picos;
        char const* text;
    } const cases[] = {
        {0, "0"},
        {3'000'000, "0.000003"},
        {15'000'000, "0.000015"},
        {37'500, "0.0000000375"},
        {1, "0.000000000001"},
        {1'000'000'000'000, "1"},
        {1'500'000'000'000, "1.5"},
        {12'000'000'000'010, "12.00000000001"},
        {max64, "9223372.036854775807"},
        {-3'000'000, "-0.000003"},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT("picos " << c.picos) {
            auto const text = format_token_price(token_price{c.picos});
            BOOST_TEST(text == c.text);
            if (c.picos >= 0) {
                BOOST_TEST(parsed(text) == c.picos);   // reads back to the same value
            }
        }
    }
}

// -------------------------------------------------------------------- cost

BOOST_AUTO_TEST_CASE(cost_of_input_and_output_is_exact) {
    // 1234 * 0.000003 + 567 * 0.000015 = 0.003702 + 0.008505
    auto const cost = cost_of(sonnet, token_counts{.input = 1234, .output = 567});
    BOOST_TEST(cost.nanos == 12'207'000);
    BOOST_TEST(format_usd(cost) == "0.012207");
    BOOST_TEST(cost_of(sonnet, token_counts{}).nanos == 0);
}

BOOST_AUTO_TEST_CASE(cost_of_prices_cache_reads_and_writes) {
    // 1000 prompt tokens, of which 600 read from the cache and 200 written to it:
    // 200 * 0.000003 + 600 * 0.0000003 + 200 * 0.00000375 + 100 * 0.000015
    // = 0.0006 + 0.00018 + 0.00075 + 0.0015
    auto const cost = cost_of(sonnet, token_counts{.input = 1000, .output = 100, .cached = 600, .cache_write = 200});
    BOOST_TEST(cost.nanos == 3'030'000);
    // The same prompt uncached costs more, so the cache prices were really used.
    BOOST_TEST(cost_of(sonnet, token_counts{.input = 1000, .output = 100}).nanos == 4'500'000);
    // Only reads, only writes.
    BOOST_TEST(cost_of(sonnet, token_counts{.input = 1000, .cached = 1000}).nanos == 300'000);
    BOOST_TEST(cost_of(sonnet, token_counts{.input = 1000, .cache_write = 1000}).nanos == 3'750'000);
}

BOOST_AUTO_TEST_CASE(cost_of_rounds_half_up_to_nanos_once) {
    BOOST_TEST(cost_of(prompt_only(500), token_counts{.input = 1}).nanos == 1);
    BOOST_TEST(cost_of(prompt_only(499), token_counts{.input = 1}).nanos == 0);
    BOOST_TEST(cost_of(prompt_only(1'499), token_counts{.input = 1}).nanos == 1);
    BOOST_TEST(cost_of(prompt_only(1'500), token_counts{.input = 1}).nanos == 2);
    BOOST_TEST(cost_of(prompt_only(250), token_counts{.input = 2}).nanos == 1);   // 500 picos in all
    // 0.0000000375 * 3 = 112.5 nanos -> 113
    BOOST_TEST(cost_of(prompt_only(37'500), token_counts{.input = 3}).nanos == 113);
    // The sum is rounded, not each part: 400 + 400 picos -> 1 nano (each alone would be 0).
    auto const p = price(400, 400);
    BOOST_TEST(cost_of(p, token_counts{.input = 1, .output = 1}).nanos == 1);
    BOOST_TEST(cost_of(p, token_counts{.input = 1}).nanos == 0);
}

BOOST_AUTO_TEST_CASE(cost_of_never_charges_negative_parts) {
    // More cached + written than input: the uncached part is 0, the cache parts are charged.
    auto const p = price(1'000, 0, 100, 2'000);
    BOOST_TEST(cost_of(p, token_counts{.input = 100, .cached = 80, .cache_write = 50}).nanos == 108);   // 8000 + 100000
    BOOST_TEST(cost_of(p, token_counts{.input = 100, .cached = 100}).nanos == 10);
    // Negative counts count as 0.
    BOOST_TEST(cost_of(sonnet, token_counts{.input = -1000, .output = -5}).nanos == 0);
    BOOST_TEST(cost_of(p, token_counts{.input = 10, .cached = -5, .cache_write = -5}).nanos == 10);
    BOOST_TEST(cost_of(sonnet, token_counts{.input = 10, .output = 10, .cached = -100}).nanos == 180'000);
    // Negative prices count as 0.
    auto const negative = price(-1'000'000, 1'000);
    BOOST_TEST(cost_of(negative, token_counts{.input = 1000, .output = 1}).nanos == 1);
}

BOOST_AUTO_TEST_CASE(cost_of_large_counts_does_not_overflow) {
    // 10^9 tokens of each kind at 1 USD per token: 4 * 10^9 USD = 4 * 10^18 nanos, exactly.
    token_price const one_usd{picos_per_usd};
    model_price const dear{one_usd, one_usd, one_usd, one_usd};
    auto const billion = std::int64_t{1'000'000'000};
    BOOST_TEST(cost_of(dear, token_counts{.input = 3 * billion, .output = billion, .cached = billion,
                                          .cache_write = billion})
                   .nanos == 4'000'000'000'000'000'000);
    // Beyond int64 nanos: saturates, never wraps to a negative or small value.
    model_price const extreme{token_price{max64}, token_price{max64}, token_price{max64}, token_price{max64}};
    BOOST_TEST(cost_of(extreme, token_counts{max64, max64, max64 / 2, max64 / 2}).nanos == max64);
    BOOST_TEST(cost_of(dear, token_counts{.input = 10 * billion}).nanos == max64);   // 10^10 USD
    BOOST_TEST(worst_case_cost(extreme, max64, max64).nanos == max64);
}

BOOST_AUTO_TEST_CASE(worst_case_cost_uses_the_dearest_prompt_price_and_rounds_up) {
    // 1000 * max(0.000003, 0.00000375) + 500 * 0.000015 = 0.00375 + 0.0075
    BOOST_TEST(worst_case_cost(sonnet, 1000, 500).nanos == 11'250'000);
    // The prompt price when it is the dearer one.
    auto const p = price(5'000, 1'000, 0, 2'000);
    BOOST_TEST(worst_case_cost(p, 10, 10).nanos == 60);
    // Rounded up, not half-up.
    BOOST_TEST(worst_case_cost(prompt_only(1), 1, 0).nanos == 1);
    BOOST_TEST(worst_case_cost(prompt_only(1'000), 1, 0).nanos == 1);
    BOOST_TEST(worst_case_cost(prompt_only(1'001), 1, 0).nanos == 2);
    BOOST_TEST(worst_case_cost(prompt_only(37'500), 3, 0).nanos == 113);
    BOOST_TEST(worst_case_cost(prompt_only(37'400), 3, 0).nanos == 113);   // 112.2 -> 113 (cost_of says 112)
    BOOST_TEST(cost_of(prompt_only(37'400), token_counts{.input = 3}).nanos == 112);
    BOOST_TEST(worst_case_cost(sonnet, 0, 0).nanos == 0);
    BOOST_TEST(worst_case_cost(sonnet, -10, -10).nanos == 0);
}

BOOST_AUTO_TEST_CASE(worst_case_cost_is_never_below_a_real_cost_within_its_bounds) {
    model_price const p{token_price{3'333}, token_price{7'777}, token_price{111}, token_price{4'444}};
    for (std::int64_t input : {0, 1, 7, 100, 999}) {
        for (std::int64_t output : {0, 1, 13, 500}) {
            for (std::int64_t cached : {std::int64_t{0}, input / 2, input}) {
                auto const written = input - cached;
                BOOST_TEST_CONTEXT("input " << input << " output " << output << " cached " << cached) {
                    auto const real = cost_of(p, token_counts{input, output, cached, written});
                    BOOST_TEST(worst_case_cost(p, input, output) >= real);
                    BOOST_TEST(worst_case_cost(p, input + 1, output + 1) >= real);
                }
            }
        }
    }
}

// ------------------------------------------------------------- price table

BOOST_AUTO_TEST_CASE(price_table_finds_exact_ids_then_without_variant) {
    price_table t;
    BOOST_TEST(t.empty());
    BOOST_TEST(t.find("x/y") == nullptr);
    t.set("x/y", prompt_only(10));
    t.set("x/y:beta", prompt_only(20));
    BOOST_TEST(t.size() == 2u);
    BOOST_TEST(!t.empty());

    BOOST_REQUIRE(t.find("x/y") != nullptr);
    BOOST_TEST(t.find("x/y")->prompt.picos == 10);
    BOOST_REQUIRE(t.find("x/y:beta") != nullptr);
    BOOST_TEST(t.find("x/y:beta")->prompt.picos == 20);   // exact id wins over the base
    BOOST_REQUIRE(t.find("x/y:free") != nullptr);
    BOOST_TEST(t.find("x/y:free")->prompt.picos == 10);   // ":free" falls back to "x/y"
    BOOST_TEST(t.find("x/z:free") == nullptr);
    BOOST_TEST(t.find("x/y2") == nullptr);
    BOOST_TEST(t.find(":free") == nullptr);
    BOOST_TEST(t.find("") == nullptr);
    BOOST_TEST(t.find("X/Y") == nullptr);   // ids are case-sensitive

    t.set("x/y", prompt_only(30));   // replaces
    BOOST_TEST(t.size() == 2u);
    BOOST_TEST(t.find("x/y:free")->prompt.picos == 30);
    BOOST_TEST(t.entries().count("x/y:beta") == 1u);
}

BOOST_AUTO_TEST_CASE(price_table_highest_is_the_field_wise_maximum) {
    price_table t;
    BOOST_TEST((t.highest() == model_price{}));
    t.set("a", model_price{token_price{5}, token_price{1}, token_price{7}, token_price{2}});
    t.set("b", model_price{token_price{3}, token_price{9}, token_price{4}, token_price{8}});
    auto const h = t.highest();
    BOOST_TEST(h.prompt.picos == 5);
    BOOST_TEST(h.completion.picos == 9);
    BOOST_TEST(h.cache_read.picos == 7);
    BOOST_TEST(h.cache_write.picos == 8);
}

BOOST_AUTO_TEST_CASE(default_price_table_has_claude_sonnet) {
    auto const t = default_price_table();
    BOOST_TEST(t.size() == 1u);
    auto const* p = t.find("anthropic/claude-3.5-sonnet");
    BOOST_REQUIRE(p != nullptr);
    BOOST_TEST((*p == sonnet));
    BOOST_TEST(format_token_price(p->cache_write) == "0.00000375");
    BOOST_TEST((t.highest() == sonnet));
    BOOST_TEST(t.find("anthropic/claude-3.5-sonnet:beta") == p);
}

// ------------------------------------------------------------- models list

BOOST_AUTO_TEST_CASE(parse_models_pricing_reads_the_openrouter_list) {
    auto const r = parse_models_pricing(models_body);
    BOOST_REQUIRE(r.has_value());
    auto const& t = r->table;
    BOOST_TEST(r->skipped == 3u);   // the "-1" router, the one without pricing, the one without id
    BOOST_TEST(t.size() == 4u);

    auto const* s = t.find("anthropic/claude-3.5-sonnet");
    BOOST_REQUIRE(s != nullptr);
    BOOST_TEST((*s == sonnet));

    auto const* gratis = t.find("meta-llama/llama-3.1-8b-instruct:free");
    BOOST_REQUIRE(gratis != nullptr);
    BOOST_TEST((*gratis == model_price{}));

    auto const* mini = t.find("openai/gpt-4o-mini");
    BOOST_REQUIRE(mini != nullptr);
    BOOST_TEST(mini->prompt.picos == 150'000);
    BOOST_TEST(mini->completion.picos == 600'000);
    BOOST_TEST(mini->cache_read.picos == 75'000);
    BOOST_TEST(mini->cache_write.picos == 0);   // missing: 0

    // Numbers are read from their text, not through a double.
    auto const* numbers = t.find("x/numbers");
    BOOST_REQUIRE(numbers != nullptr);
    BOOST_TEST(numbers->prompt.picos == 37'500);
    BOOST_TEST(numbers->completion.picos == 15'000'000);
    BOOST_TEST(numbers->cache_write.picos == picos_per_usd);

    BOOST_TEST(t.find("openrouter/auto") == nullptr);
    BOOST_TEST(t.find("some/model-without-pricing") == nullptr);

    // The cost of the reference call through the parsed table.
    BOOST_TEST(format_usd(cost_of(*s, token_counts{.input = 1234, .output = 567})) == "0.012207");
}

BOOST_AUTO_TEST_CASE(parse_models_pricing_skips_unusable_entries) {
    auto const r = parse_models_pricing(R"({"data":[
        {"id":"ok/a","pricing":{"prompt":"0.000001","completion":"0.000002","input_cache_read":null}},
        {"id":"bad/exponent","pricing":{"prompt":3e-6,"completion":"0.000002"}},
        {"id":"bad/negative-number","pricing":{"prompt":"0.000001","completion":-1}},
        {"id":"bad/no-completion","pricing":{"prompt":"0.000001"}},
        {"id":"bad/null-prompt","pricing":{"prompt":null,"completion":"0.000002"}},
        {"id":"bad/bool","pricing":{"prompt":true,"completion":"0.000002"}},
        {"id":"bad/cache","pricing":{"prompt":"0.000001","completion":"0.000002","input_cache_write":"-1"}},
        {"id":"bad/space","pricing":{"prompt":" 0.000001","completion":"0.000002"}},
        {"id":"bad/pricing-array","pricing":["0.000001","0.000002"]},
        {"id":"","pricing":{"prompt":"0","completion":"0"}},
        {"id":42,"pricing":{"prompt":"0","completion":"0"}},
        {"id":null,"pricing":{"prompt":"0","completion":"0"}},
        "not an object",
        17,
        {"id":"ok/b","pricing":{"prompt":"0","completion":"0.5"}},
        {"id":"ok/a","pricing":{"prompt":"0.000003","completion":"0.000004"}}
    ],"extra":true})");
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->skipped == 13u);
    BOOST_TEST(r->table.size() == 2u);
    auto const* a = r->table.find("ok/a");
    BOOST_REQUIRE(a != nullptr);
    BOOST_TEST(a->prompt.picos == 3'000'000);   // the later entry with the same id replaces
    BOOST_TEST(a->completion.picos == 4'000'000);
    BOOST_REQUIRE(r->table.find("ok/b") != nullptr);
    BOOST_TEST(r->table.find("ok/b")->completion.picos == 500'000'000'000);
    BOOST_TEST(r->table.find("bad/exponent") == nullptr);
    BOOST_TEST(r->table.find("bad/cache") == nullptr);
}

BOOST_AUTO_TEST_CASE(parse_models_pricing_accepts_an_empty_list) {
    auto const r = parse_models_pricing(R"( {"data": []} )");
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->table.empty());
    BOOST_TEST(r->skipped == 0u);
}

BOOST_DATA_TEST_CASE(parse_models_pricing_rejects_garbage,
                     bdata::make({"", "   ", "not json", "<html>502 Bad Gateway</html>", "{", "{\"data\":[",
                                  "[]", "{}", "null", "\"data\"", "{\"data\":{}}", "{\"data\":\"x\"}",
                                  "{\"data\":null}", "{\"models\":[]}", "{\"data\":[]} extra", "{\"data\":[]}{}",
                                  "{\"data\":[{\"id\":\"a\",}]}", "{\"data\":[\"\xff\"]}"}),
                     body) {
    auto const r = parse_models_pricing(body);
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST(!r.error().empty());
    BOOST_TEST(r.error().find('\n') == std::string::npos);
}

BOOST_AUTO_TEST_CASE(parse_models_pricing_limits_the_body_size) {
    // Exactly the limit (a small document padded with whitespace) is read...
    std::string body = R"({"data":[{"id":"a/b","pricing":{"prompt":"0.000001","completion":"0.000002"}}]})";
    body.resize(max_models_body_bytes, ' ');
    auto const at_limit = parse_models_pricing(body);
    BOOST_REQUIRE(at_limit.has_value());
    BOOST_TEST(at_limit->table.size() == 1u);
    // ...one byte more is refused before parsing.
    body.push_back(' ');
    auto const over = parse_models_pricing(body);
    BOOST_REQUIRE(!over.has_value());
    BOOST_TEST(over.error().find("too large") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
