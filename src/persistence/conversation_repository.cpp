#include "persistence/conversation_repository.hpp"

#include "persistence/text_columns.hpp"
#include "persistence/usage_repository.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <soci/into.h>
#include <soci/session.h>
#include <soci/error.h>
#include <soci/statement.h>
#include <soci/use.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <system_error>
#include <utility>

namespace parley::persistence {

namespace {

namespace chr = std::chrono;
namespace json = boost::json;

// Column sizes (migrations.cpp, version 1).
constexpr std::size_t max_conversation_id_bytes = 64;
constexpr std::size_t max_user_id_bytes = 255;
constexpr std::size_t max_language_bytes = 8;
constexpr std::size_t max_tool_call_id_bytes = 255;

// ---- SQL -----------------------------------------------------------------
// Fragments are joined by the functions below; values are always bound.

constexpr std::string_view create_conversation_sql =
    "INSERT INTO ai_conversations (id, user_id, title, language, created_at, updated_at)"
    " VALUES (:id, :user_id, :title, :language, :created_at, :updated_at)"
    " ON CONFLICT (id) DO NOTHING";

// Timestamps as "YYYY-MM-DDTHH:MM:SS.mmmZ" (as in usage_repository.cpp):
// SQLite stores exactly that; PostgreSQL formats its timestamptz the same
// way, in UTC whatever the session's time zone.
constexpr std::string_view find_conversation_postgresql =
    "SELECT id, user_id, title, language,"
    " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
    " to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
    " FROM ai_conversations WHERE id = :id";
constexpr std::string_view find_conversation_sqlite =
    "SELECT id, user_id, title, language, created_at, updated_at FROM ai_conversations WHERE id = :id";

// PostgreSQL: a row lock on the conversation, so concurrent appends to it
// take turns (the second reads max(seq) after the first has committed).
// SQLite: the write transaction (BEGIN IMMEDIATE) already holds the
// database's write lock.
constexpr std::string_view lock_conversation_postgresql = "SELECT id FROM ai_conversations WHERE id = :id FOR UPDATE";
constexpr std::string_view find_conversation_id_sqlite = "SELECT id FROM ai_conversations WHERE id = :id";

constexpr std::string_view max_seq_sql =
    "SELECT CAST(COALESCE(MAX(seq), 0) AS INTEGER) FROM ai_messages WHERE conversation_id = :id";

constexpr std::string_view insert_message_sql =
    "INSERT INTO ai_messages (conversation_id, seq, role, content, tool_calls, tool_call_id, created_at)"
    " VALUES (:conversation_id, :seq, :role, :content, :tool_calls, :tool_call_id, :created_at)";
constexpr int message_columns = 7;

constexpr std::string_view touch_conversation_sql =
    "UPDATE ai_conversations SET updated_at = :updated_at, language = :language WHERE id = :id";

constexpr std::string_view load_messages_sql =
    "SELECT seq, role, content, tool_calls, tool_call_id FROM ai_messages WHERE conversation_id = :id"
    " ORDER BY seq DESC LIMIT CAST(:limit AS INTEGER)";

constexpr std::string_view count_messages_sql = "SELECT COUNT(*) FROM ai_messages WHERE conversation_id = :id";

constexpr std::size_t rows_per_insert = 64;  // 7 values each: 448 bound parameters a statement

// "INSERT ... VALUES (...), (...) ..." for `n` rows, each value bound by
// name as :v<row>_<column> (bound in order).
std::string multi_row_insert_sql(std::size_t n) {
    std::string out{insert_message_sql.substr(0, insert_message_sql.find(" VALUES"))};
    out += " VALUES ";
    for (std::size_t i = 0; i != n; ++i) {
        out += i == 0 ? "(" : ", (";
        for (int c = 0; c != message_columns; ++c) {
            out += c == 0 ? ":v" : ", :v";
            out += std::to_string(i);
            out += '_';
            out += std::to_string(c);
        }
        out += ')';
    }
    return out;
}

// ---- values ----------------------------------------------------------------

chr::system_clock::time_point stored_time(std::string const& text) {
    // The database wrote this text itself; an unreadable one is a bug
    // elsewhere, and the epoch is an obviously wrong but harmless value.
    return parse_iso_utc(text).value_or(chr::system_clock::time_point{});
}

// The tool_calls column: NULL without calls, else a JSON array of
// {"id","name","arguments"} (every string valid UTF-8, so it parses back).
std::string tool_calls_json(std::vector<domain::tool_call> const& calls) {
    json::array out;
    out.reserve(calls.size());
    for (auto const& c : calls) {
        out.push_back(json::object{{"id", fit(c.id)}, {"name", fit(c.name)}, {"arguments", fit(c.arguments)}});
    }
    return json::serialize(out);
}

// The calls stored by tool_calls_json, or nullopt when the text is not such
// an array (all of it or nothing: a half-read list would be misleading).
std::optional<std::vector<domain::tool_call>> parse_tool_calls(std::string const& text) {
    std::error_code ec;
    json::value const v = json::parse(text, ec);
    if (ec || !v.is_array()) {
        return std::nullopt;
    }
    std::vector<domain::tool_call> out;
    out.reserve(v.get_array().size());
    for (auto const& item : v.get_array()) {
        auto const* o = item.if_object();
        if (o == nullptr) {
            return std::nullopt;
        }
        auto const* id = o->if_contains("id");
        auto const* name = o->if_contains("name");
        auto const* arguments = o->if_contains("arguments");
        if (id == nullptr || !id->is_string() || name == nullptr || !name->is_string() || arguments == nullptr ||
            !arguments->is_string()) {
            return std::nullopt;
        }
        out.push_back({std::string{id->get_string()}, std::string{name->get_string()},
                       std::string{arguments->get_string()}});
    }
    return out;
}

// The bound values of one ai_messages row (soci::use keeps references).
struct message_binding {
    std::string conversation_id, role, content, tool_calls, tool_call_id, created_at;
    soci::indicator tool_calls_ind = soci::i_null, tool_call_id_ind = soci::i_null;
    int seq = 0;

    void assign(std::string const& conversation, int at, domain::message const& m, std::string const& now) {
        conversation_id = conversation;
        seq = at;
        role = domain::to_string(m.r);
        content = fit(m.content);
        tool_calls = m.tool_calls.empty() ? std::string{} : tool_calls_json(m.tool_calls);
        tool_calls_ind = m.tool_calls.empty() ? soci::i_null : soci::i_ok;
        tool_call_id = fit(m.tool_call_id, max_tool_call_id_bytes);
        tool_call_id_ind = tool_call_id.empty() ? soci::i_null : soci::i_ok;
        created_at = now;
    }
};

// SQLite runs in-process: one prepared statement executed per row is its
// cheapest form (as insert_usage does).
void insert_row_by_row(soci::session& sql, std::string const& conversation, int first_seq,
                       std::span<domain::message const> messages, std::string const& now) {
    message_binding b;
    soci::statement st = (sql.prepare << insert_message_sql, soci::use(b.conversation_id, "conversation_id"),
                          soci::use(b.seq, "seq"), soci::use(b.role, "role"), soci::use(b.content, "content"),
                          soci::use(b.tool_calls, b.tool_calls_ind, "tool_calls"),
                          soci::use(b.tool_call_id, b.tool_call_id_ind, "tool_call_id"),
                          soci::use(b.created_at, "created_at"));
    int seq = first_seq;
    for (auto const& m : messages) {
        b.assign(conversation, seq++, m, now);
        st.execute(true);
    }
}

// PostgreSQL: one statement per rows_per_insert rows (a round trip per
// chunk instead of one per row), inside the caller's transaction.
void insert_in_chunks(soci::session& sql, std::string const& conversation, int first_seq,
                      std::span<domain::message const> messages, std::string const& now) {
    std::vector<message_binding> bindings(std::min(messages.size(), rows_per_insert));
    for (std::size_t at = 0; at < messages.size(); at += rows_per_insert) {
        auto const n = std::min(rows_per_insert, messages.size() - at);
        soci::statement st{sql};
        st.alloc();
        st.prepare(multi_row_insert_sql(n));
        for (std::size_t i = 0; i != n; ++i) {
            auto& b = bindings[i];
            b.assign(conversation, first_seq + static_cast<int>(at + i), messages[at + i], now);
            st.exchange(soci::use(b.conversation_id));
            st.exchange(soci::use(b.seq));
            st.exchange(soci::use(b.role));
            st.exchange(soci::use(b.content));
            st.exchange(soci::use(b.tool_calls, b.tool_calls_ind));
            st.exchange(soci::use(b.tool_call_id, b.tool_call_id_ind));
            st.exchange(soci::use(b.created_at));
        }
        st.define_and_bind();
        st.execute(true);
    }
}

}  // namespace

bool create_conversation(soci::session& sql, dialect, conversation_info const& c) {
    std::string id = fit(c.id, max_conversation_id_bytes);
    std::string user = fit(c.user_id, max_user_id_bytes);
    std::string title = fit(c.title);
    soci::indicator title_ind = title.empty() ? soci::i_null : soci::i_ok;
    std::string language = fit(c.language, max_language_bytes);
    std::string created = iso_utc(c.created_at);
    std::string updated = iso_utc(c.updated_at);
    soci::statement st = (sql.prepare << create_conversation_sql, soci::use(id, "id"), soci::use(user, "user_id"),
                          soci::use(title, title_ind, "title"), soci::use(language, "language"),
                          soci::use(created, "created_at"), soci::use(updated, "updated_at"));
    st.execute(true);
    return st.get_affected_rows() > 0;
}

std::optional<conversation_info> find_conversation(soci::session& sql, dialect d, std::string_view id) {
    std::string key = fit(id, max_conversation_id_bytes);
    conversation_info c;
    std::string title, created, updated;
    soci::indicator title_ind = soci::i_ok;
    sql << (d == dialect::postgresql ? find_conversation_postgresql : find_conversation_sqlite), soci::use(key, "id"),
        soci::into(c.id), soci::into(c.user_id), soci::into(title, title_ind), soci::into(c.language),
        soci::into(created), soci::into(updated);
    if (!sql.got_data()) {
        return std::nullopt;
    }
    if (title_ind == soci::i_ok) {
        c.title = std::move(title);
    }
    c.created_at = stored_time(created);
    c.updated_at = stored_time(updated);
    return c;
}

std::vector<domain::message> load_messages(soci::session& sql, dialect, std::string_view conversation_id,
                                           std::size_t limit) {
    std::vector<domain::message> out;
    if (limit == 0) {
        return out;
    }
    std::string key = fit(conversation_id, max_conversation_id_bytes);
    long long n = static_cast<long long>(std::min<std::size_t>(limit, std::numeric_limits<std::int32_t>::max()));
    int seq = 0;
    std::string role, content, tool_calls, tool_call_id;
    soci::indicator content_ind = soci::i_ok, tool_calls_ind = soci::i_ok, tool_call_id_ind = soci::i_ok;
    soci::statement st = (sql.prepare << load_messages_sql, soci::use(key, "id"), soci::use(n, "limit"),
                          soci::into(seq), soci::into(role), soci::into(content, content_ind),
                          soci::into(tool_calls, tool_calls_ind), soci::into(tool_call_id, tool_call_id_ind));
    st.execute();
    while (st.fetch()) {
        auto const r = domain::parse_role(role);
        if (!r) {
            spdlog::warn("conversation {}: message {} has an unknown role, skipped", key, seq);
            continue;
        }
        domain::message m;
        m.r = *r;
        if (content_ind == soci::i_ok) {
            m.content = content;
        }
        if (tool_calls_ind == soci::i_ok) {
            if (auto calls = parse_tool_calls(tool_calls)) {
                m.tool_calls = std::move(*calls);
            } else {
                spdlog::warn("conversation {}: message {} has unreadable tool_calls, loaded without them", key, seq);
            }
        }
        if (tool_call_id_ind == soci::i_ok) {
            m.tool_call_id = tool_call_id;
        }
        out.push_back(std::move(m));
    }
    std::reverse(out.begin(), out.end());
    return out;
}

int append_messages(soci::session& sql, dialect d, std::string_view conversation_id,
                    std::span<domain::message const> messages, std::string_view language,
                    chr::system_clock::time_point now) {
    std::string key = fit(conversation_id, max_conversation_id_bytes);
    std::string lang = fit(language, max_language_bytes);
    std::string now_text = iso_utc(now);
    write_transaction tr{sql, d};
    std::string found;
    sql << (d == dialect::postgresql ? lock_conversation_postgresql : find_conversation_id_sqlite),
        soci::use(key, "id"), soci::into(found);
    if (!sql.got_data()) {
        throw soci::soci_error("append_messages: no conversation " + key);
    }
    int last = 0;
    sql << max_seq_sql, soci::use(key, "id"), soci::into(last);
    if (!messages.empty()) {
        if (d == dialect::sqlite) {
            insert_row_by_row(sql, key, last + 1, messages, now_text);
        } else {
            insert_in_chunks(sql, key, last + 1, messages, now_text);
        }
        last += static_cast<int>(messages.size());
    }
    sql << touch_conversation_sql, soci::use(now_text, "updated_at"), soci::use(lang, "language"),
        soci::use(key, "id");
    tr.commit();
    return last;
}

std::int64_t count_messages(soci::session& sql, dialect, std::string_view conversation_id) {
    std::string key = fit(conversation_id, max_conversation_id_bytes);
    long long n = 0;
    sql << count_messages_sql, soci::use(key, "id"), soci::into(n);
    return n;
}

}  // namespace parley::persistence
