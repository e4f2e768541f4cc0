#pragma once
// The ai_usage table (ARCHITECTURE §6): functions on a session, run by
// callers inside database::run. They throw soci_error; run() turns it into
// database_error.
//
//  * Timestamps are UTC. created_at is bound from usage_record::created_at
//    (never now()), so a row replayed later keeps its time. Both databases
//    get the same ISO-8601 text "YYYY-MM-DDTHH:MM:SS.mmmZ": SQLite stores it
//    (text order is time order), PostgreSQL parses it into timestamptz and
//    gives it back in the same spelling.
//  * cost_usd is bound as format_usd(cost), 6 decimals rounded half-up.
//    Sums never pass through a float: each row is turned into whole
//    micro-dollars in SQL, SUM(CAST(ROUND(cost_usd * 1000000) AS BIGINT)),
//    exact on PostgreSQL's numeric and on SQLite's REAL of a 6-decimal value.
//  * Strings longer than their column (domain/usage.hpp) are cut at a UTF-8
//    character boundary, invalid UTF-8 and NUL bytes become '?', token counts
//    are clamped to the int column and costs to numeric(10,6): a row is
//    never rejected for its values.
#include "domain/usage.hpp"
#include "persistence/database.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace parley::persistence {

// "2024-05-01T10:00:00.123Z": UTC, milliseconds (truncated toward the past).
std::string iso_utc(std::chrono::system_clock::time_point t);

// Parses "YYYY-MM-DD", optionally followed by 'T' or ' ' and "HH:MM:SS",
// optionally ".f..." (1 to 9 digits; kept to the millisecond), optionally
// 'Z'. Always UTC. nullopt for anything else or an impossible date/time.
std::optional<std::chrono::system_clock::time_point> parse_iso_utc(std::string_view text);

// Inserts the rows in one transaction, skipping those whose request_id is
// already stored (ON CONFLICT (request_id) DO NOTHING: replays never double
// count); returns how many were inserted. A missing user_id and an empty
// conversation_id or generation_id are stored as NULL.
std::size_t insert_usage(soci::session& sql, dialect d, std::span<domain::usage_record const> rows);

// In one transaction: each row named by a correction whose cost_source is
// 'estimate' gets cost_usd = the correction and cost_source = 'provider';
// other rows are left alone. Returns the rows changed.
std::size_t apply_corrections(soci::session& sql, dialect d, std::span<domain::cost_correction const> corrections);

// The stored row, its cost the stored micro-dollars (as nanos).
std::optional<domain::usage_record> find_usage(soci::session& sql, dialect d, std::string_view request_id);

struct spend_totals {
    domain::nano_usd global;                                             // every row, with or without a user
    std::map<std::string, domain::nano_usd, std::less<>> per_user;       // rows with a user id
};

// What the rows with created_at >= since cost (whole micro-dollars, as nanos).
spend_totals spend_since(soci::session& sql, dialect d, std::chrono::system_clock::time_point since);

// (user_id, created_at) of the rows with created_at >= since and a user id,
// ordered by created_at; only `user`'s when it is set. The rate limiter
// reloads its hourly windows from this.
std::vector<std::pair<std::string, std::chrono::system_clock::time_point>> calls_since(
    soci::session& sql, dialect d, std::chrono::system_clock::time_point since, std::optional<std::string> const& user);

enum class usage_group { day, model, user };

struct usage_filter {
    usage_group by = usage_group::day;
    std::optional<std::chrono::system_clock::time_point> since{}, until{};  // [since, until)
    std::optional<std::string> user{};
};

struct usage_row {
    std::string key;  // the day "YYYY-MM-DD" (UTC), the model, or the user ("(none)" for rows without one)
    std::int64_t requests = 0, input_tokens = 0, output_tokens = 0, cached_tokens = 0, cost_micros = 0;

    friend bool operator==(usage_row const&, usage_row const&) = default;
};

// One row per group, ordered by key (byte order, the same on both databases).
std::vector<usage_row> usage_report(soci::session& sql, dialect d, usage_filter const& filter);

// (request_id, generation_id) of the 'estimate' rows that have a generation
// id, oldest first, at most `limit` of them: what the cost corrector asks
// OpenRouter's /generation about.
std::vector<std::pair<std::string, std::string>> estimates_to_correct(soci::session& sql, dialect d,
                                                                      std::size_t limit);

// The number of rows (of one user when `user` is set).
std::int64_t count_usage(soci::session& sql, dialect d, std::optional<std::string> const& user);

}  // namespace parley::persistence
