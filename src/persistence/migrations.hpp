#pragma once
// Versioned schema migrations (ARCHITECTURE §6): the same tables on
// PostgreSQL and SQLite, each version written once per dialect. A version,
// once released, is never edited: a change is a new version.
#include "persistence/database.hpp"

#include <span>
#include <string_view>
#include <vector>

namespace parley::persistence {

struct migration {
    int version;                      // 1, 2, ... in order, no gaps
    std::string_view name;            // short, for schema_migrations and logs
    std::string_view postgresql_sql;  // statements separated by ';'
    std::string_view sqlite_sql;
};

// Every migration, in version order.
std::span<migration const> migrations();

// Applies the pending migrations in order, each in one transaction together
// with its schema_migrations row (version integer primary key, name,
// applied_at); returns the versions this call applied (empty when the
// schema is up to date). On PostgreSQL each transaction first takes
// pg_advisory_xact_lock, so two processes migrating at once take turns and
// the second finds the work done; on SQLite BEGIN IMMEDIATE does the same.
// Throws soci_error (database::run turns it into database_error).
std::vector<int> migrate(soci::session& sql, dialect d);

// The highest applied version; 0 when no migration ran yet.
int schema_version(soci::session& sql, dialect d);

// The version migrate() brings a database to.
int latest_schema_version() noexcept;

}  // namespace parley::persistence
