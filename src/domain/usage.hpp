#pragma once
// One upstream call as accounting sees it (ARCHITECTURE §6): the row of
// ai_usage, and the later correction of an estimated cost. Plain values,
// shared by the usage log, the repository, the writer and the limiter.
#include "domain/money.hpp"

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

namespace parley::domain {

// Where a row's cost came from.
enum class cost_source {
    provider,  // OpenRouter's usage.cost (or its /generation record)
    pricing,   // tokens times the configured price table
    estimate,  // a stream cut before its usage chunk: tokens seen so far times the price table
};

enum class call_status { ok, error, cancelled };

std::string_view to_string(cost_source s) noexcept;
std::optional<cost_source> parse_cost_source(std::string_view text) noexcept;
std::string_view to_string(call_status s) noexcept;
std::optional<call_status> parse_call_status(std::string_view text) noexcept;
std::ostream& operator<<(std::ostream& os, cost_source s);
std::ostream& operator<<(std::ostream& os, call_status s);

// Column limits of ai_usage (ARCHITECTURE §6). Longer values are cut by
// the code that builds a record (never rejected: a row is never lost).
inline constexpr std::size_t max_request_id_bytes = 128;
inline constexpr std::size_t max_user_id_bytes = 255;
inline constexpr std::size_t max_session_id_bytes = 255;
inline constexpr std::size_t max_conversation_id_bytes = 255;
inline constexpr std::size_t max_model_bytes = 100;
inline constexpr std::size_t max_generation_id_bytes = 255;

struct usage_record {
    std::string request_id;                 // unique, not empty
    std::optional<std::string> user_id;     // null for anonymous/service calls
    std::string session_id;                 // not empty
    std::string conversation_id;            // empty: NULL
    std::int64_t input_tokens = 0;          // prompt tokens, cached included
    std::int64_t output_tokens = 0;
    std::int64_t cached_tokens = 0;
    nano_usd cost;                          // exact; the table keeps it rounded half-up to 6 decimals
    domain::cost_source source = cost_source::pricing;
    std::string model;                      // the model that served (or was asked for)
    std::string generation_id;              // OpenRouter's gen-...; empty: NULL
    call_status status = call_status::ok;
    std::chrono::system_clock::time_point created_at;  // when the call ended (UTC; millisecond precision kept)

    friend bool operator==(usage_record const&, usage_record const&) = default;
};

// The real cost of a row that was recorded as an estimate, from
// OpenRouter's GET /api/v1/generation: the row keeps its request_id, its
// cost becomes `cost` and its cost_source `provider`.
struct cost_correction {
    std::string request_id;
    nano_usd cost;

    friend bool operator==(cost_correction const&, cost_correction const&) = default;
};

}  // namespace parley::domain
