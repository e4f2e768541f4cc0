#pragma once
// The ai_conversations and ai_messages tables (ARCHITECTURE §6): functions
// on a session, run by callers inside database::run (like
// usage_repository.hpp). They throw soci_error; run() turns it into
// database_error.
//
//  * Timestamps are UTC ISO-8601 text bound from the caller's clock
//    (iso_utc), the same spelling on both databases.
//  * A message row: role (to_string(role)), content (text, "" when none),
//    tool_calls (NULL, or JSON text of an array of
//    {"id","name","arguments"} objects, arguments as the model's text),
//    tool_call_id (NULL unless a tool result). The message's `name` is not
//    stored.
//  * Strings longer than their column are cut at a UTF-8 boundary and
//    invalid UTF-8 / NUL bytes become '?', as in usage_repository.
#include "domain/messages.hpp"
#include "persistence/database.hpp"

#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace soci {
class session;
}

namespace parley::persistence {

struct conversation_info {
    std::string id;        // <= 64 bytes
    std::string user_id;   // the owner
    std::string title;     // empty: NULL
    std::string language;  // "es" / "en"
    std::chrono::system_clock::time_point created_at{};
    std::chrono::system_clock::time_point updated_at{};

    friend bool operator==(conversation_info const&, conversation_info const&) = default;
};

// Inserts the conversation; false (nothing changed) when the id exists.
bool create_conversation(soci::session& sql, dialect d, conversation_info const& c);

// The conversation with this id, whoever owns it; nullopt when there is none.
std::optional<conversation_info> find_conversation(soci::session& sql, dialect d, std::string_view id);

// The last `limit` messages of the conversation, oldest first (seq order).
std::vector<domain::message> load_messages(soci::session& sql, dialect d, std::string_view conversation_id,
                                           std::size_t limit);

// In one transaction: the messages appended after the conversation's last
// (seq = max seq + 1, ...), and the conversation's updated_at and language
// set. Returns the seq of the last message appended (0 when none were and
// the conversation is empty). The conversation must exist.
int append_messages(soci::session& sql, dialect d, std::string_view conversation_id,
                    std::span<domain::message const> messages, std::string_view language,
                    std::chrono::system_clock::time_point now);

// The number of messages of a conversation (for tests and reports).
std::int64_t count_messages(soci::session& sql, dialect d, std::string_view conversation_id);

}  // namespace parley::persistence
