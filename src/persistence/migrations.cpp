#include "persistence/migrations.hpp"

#include <soci/into.h>
#include <soci/session.h>
#include <soci/use.h>

#include <spdlog/spdlog.h>

#include <string>

namespace parley::persistence {

namespace {

// Version 1: usage accounting, conversations and their messages. SQLite
// keeps timestamps as ISO-8601 UTC text with milliseconds
// ("2024-05-01T10:00:00.123Z"), which sorts like the time it names.
constexpr std::string_view v1_postgresql = R"sql(
CREATE TABLE ai_usage (
    id bigserial PRIMARY KEY,
    request_id text NOT NULL UNIQUE,
    user_id varchar(255) NULL,
    session_id varchar(255) NOT NULL,
    conversation_id varchar(255) NULL,
    input_tokens integer NOT NULL DEFAULT 0,
    output_tokens integer NOT NULL DEFAULT 0,
    cached_tokens integer NOT NULL DEFAULT 0,
    cost_usd numeric(10,6) NOT NULL DEFAULT 0,
    cost_source varchar(16) NOT NULL CHECK (cost_source IN ('provider', 'pricing', 'estimate')),
    model varchar(100) NOT NULL,
    generation_id varchar(255) NULL,
    status varchar(16) NOT NULL CHECK (status IN ('ok', 'error', 'cancelled')),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ai_usage_created_at_idx ON ai_usage (created_at);
CREATE INDEX ai_usage_user_created_at_idx ON ai_usage (user_id, created_at);
CREATE TABLE ai_conversations (
    id varchar(64) PRIMARY KEY,
    user_id varchar(255) NOT NULL,
    title text NULL,
    language varchar(8) NOT NULL DEFAULT 'es',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ai_conversations_user_idx ON ai_conversations (user_id);
CREATE TABLE ai_messages (
    id bigserial PRIMARY KEY,
    conversation_id varchar(64) NOT NULL REFERENCES ai_conversations (id) ON DELETE CASCADE,
    seq integer NOT NULL,
    role varchar(16) NOT NULL,
    content text NOT NULL,
    tool_calls text NULL,
    tool_call_id varchar(255) NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (conversation_id, seq)
);
)sql";

constexpr std::string_view v1_sqlite = R"sql(
CREATE TABLE ai_usage (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id text NOT NULL UNIQUE,
    user_id varchar(255) NULL,
    session_id varchar(255) NOT NULL,
    conversation_id varchar(255) NULL,
    input_tokens integer NOT NULL DEFAULT 0,
    output_tokens integer NOT NULL DEFAULT 0,
    cached_tokens integer NOT NULL DEFAULT 0,
    cost_usd numeric(10,6) NOT NULL DEFAULT 0,
    cost_source varchar(16) NOT NULL CHECK (cost_source IN ('provider', 'pricing', 'estimate')),
    model varchar(100) NOT NULL,
    generation_id varchar(255) NULL,
    status varchar(16) NOT NULL CHECK (status IN ('ok', 'error', 'cancelled')),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX ai_usage_created_at_idx ON ai_usage (created_at);
CREATE INDEX ai_usage_user_created_at_idx ON ai_usage (user_id, created_at);
CREATE TABLE ai_conversations (
    id varchar(64) PRIMARY KEY,
    user_id varchar(255) NOT NULL,
    title text NULL,
    language varchar(8) NOT NULL DEFAULT 'es',
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX ai_conversations_user_idx ON ai_conversations (user_id);
CREATE TABLE ai_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id varchar(64) NOT NULL REFERENCES ai_conversations (id) ON DELETE CASCADE,
    seq integer NOT NULL,
    role varchar(16) NOT NULL,
    content text NOT NULL,
    tool_calls text NULL,
    tool_call_id varchar(255) NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (conversation_id, seq)
);
)sql";

// Version 2: limits shared by several processes (limits.backend = postgres;
// persistence/limits_repository.hpp). SQLite gets the tables too, unused,
// so both dialects have the same versions.
constexpr std::string_view v2_postgresql = R"sql(
CREATE TABLE limit_calls (
    user_id varchar(255) NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX limit_calls_user_at_idx ON limit_calls (user_id, at);
CREATE TABLE budget_leases (
    instance_id varchar(64) NOT NULL,
    day date NOT NULL,
    granted_nanos bigint NOT NULL DEFAULT 0,
    spent_nanos bigint NOT NULL DEFAULT 0,
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, day)
);
)sql";

constexpr std::string_view v2_sqlite = R"sql(
CREATE TABLE limit_calls (
    user_id varchar(255) NOT NULL,
    at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX limit_calls_user_at_idx ON limit_calls (user_id, at);
CREATE TABLE budget_leases (
    instance_id varchar(64) NOT NULL,
    day TEXT NOT NULL,
    granted_nanos bigint NOT NULL DEFAULT 0,
    spent_nanos bigint NOT NULL DEFAULT 0,
    heartbeat_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (instance_id, day)
);
)sql";

constexpr migration all_migrations[] = {
    {1, "usage, conversations and messages", v1_postgresql, v1_sqlite},
    {2, "shared limits", v2_postgresql, v2_sqlite},
};

// The bookkeeping table, created when missing inside each migration's
// transaction, after the lock (so two processes never both create it).
constexpr std::string_view create_schema_migrations_postgresql =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY,"
    " name varchar(100) NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())";
constexpr std::string_view create_schema_migrations_sqlite =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY,"
    " name varchar(100) NOT NULL,"
    " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))";

// One arbitrary 64-bit key ("parley" in ASCII) for every Parley process.
constexpr std::string_view lock_migrations_postgresql = "SELECT pg_advisory_xact_lock(123563833845113)";

// A catalog query under the statement's snapshot (to_regclass() could answer
// from a stale cache after waiting for the lock, while another process made
// the table).
constexpr std::string_view has_schema_migrations_postgresql =
    "SELECT COUNT(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_migrations'";
constexpr std::string_view has_schema_migrations_sqlite =
    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'";
constexpr std::string_view select_schema_version = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations";
constexpr std::string_view count_version = "SELECT COUNT(*) FROM schema_migrations WHERE version = :version";
constexpr std::string_view insert_version = "INSERT INTO schema_migrations (version, name) VALUES (:version, :name)";

// Splits a script into statements at the ';' outside quotes and comments
// (SQLite prepares one statement at a time and ignores the rest).
std::vector<std::string> split_statements(std::string_view script) {
    std::vector<std::string> out;
    std::string current;
    auto flush = [&] {
        auto const first = current.find_first_not_of(" \t\r\n");
        if (first != std::string::npos) {
            out.push_back(current.substr(first, current.find_last_not_of(" \t\r\n") - first + 1));
        }
        current.clear();
    };
    char quote = 0;  // '\'' or '"' while inside one
    for (std::size_t i = 0; i != script.size(); ++i) {
        char const c = script[i];
        if (quote != 0) {
            current += c;
            if (c == quote) {
                quote = 0;  // a doubled quote closes and reopens: same result
            }
        } else if (c == '\'' || c == '"') {
            quote = c;
            current += c;
        } else if (c == '-' && i + 1 < script.size() && script[i + 1] == '-') {
            i = std::min(script.find('\n', i), script.size() - 1);  // drop the comment
            current += '\n';
        } else if (c == ';') {
            flush();
        } else {
            current += c;
        }
    }
    flush();
    return out;
}

bool has_schema_migrations(soci::session& sql, dialect d) {
    long long n = 0;
    sql << (d == dialect::postgresql ? has_schema_migrations_postgresql : has_schema_migrations_sqlite), soci::into(n);
    return n != 0;
}

}  // namespace

std::span<migration const> migrations() { return all_migrations; }

int latest_schema_version() noexcept { return all_migrations[std::size(all_migrations) - 1].version; }

int schema_version(soci::session& sql, dialect d) {
    if (!has_schema_migrations(sql, d)) {
        return 0;
    }
    int version = 0;
    sql << select_schema_version, soci::into(version);
    return version;
}

std::vector<int> migrate(soci::session& sql, dialect d) {
    std::vector<int> applied;
    // A quick look first, so an up-to-date database takes no lock at all.
    if (schema_version(sql, d) >= latest_schema_version()) {
        return applied;
    }
    for (auto const& m : migrations()) {
        write_transaction tr{sql, d};
        if (d == dialect::postgresql) {
            sql << lock_migrations_postgresql;
        }
        if (!has_schema_migrations(sql, d)) {
            sql << (d == dialect::postgresql ? create_schema_migrations_postgresql : create_schema_migrations_sqlite);
        }
        long long done = 0;
        int version = m.version;
        sql << count_version, soci::use(version, "version"), soci::into(done);
        if (done != 0) {
            continue;  // applied earlier, or by another process while we waited
        }
        for (auto const& stmt : split_statements(d == dialect::postgresql ? m.postgresql_sql : m.sqlite_sql)) {
            sql << stmt;
        }
        std::string name{m.name};
        sql << insert_version, soci::use(version, "version"), soci::use(name, "name");
        tr.commit();
        spdlog::info("database: applied migration {} ({})", m.version, m.name);
        applied.push_back(m.version);
    }
    return applied;
}

}  // namespace parley::persistence
