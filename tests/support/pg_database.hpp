#pragma once
// Throwaway databases for tests (header-only; link parley_persistence).
//
//  * temp_pg_database: a fresh PostgreSQL database on the server named by
//    PARLEY_TEST_PG_URI (scripts/test starts one: a trust-auth superuser),
//    called parley_t_<pid>_<counter>_<random>, dropped WITH (FORCE) when the
//    object goes. Without PARLEY_TEST_PG_URI, available() is false and the
//    test says "skipped: PARLEY_TEST_PG_URI unset" (pg_skip_message).
//  * temp_sqlite_database: an SQLite file in a fresh temporary directory,
//    removed with the directory.
//  * shared_pg_database(): one temp_pg_database per test executable;
//    test_databases(): an empty database of each dialect (PostgreSQL only
//    when available), for running one test body against both.
#include <boost/test/unit_test.hpp>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/session.h>

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <system_error>
#include <vector>

namespace parley::test {

inline constexpr char const* pg_skip_message = "skipped: PARLEY_TEST_PG_URI unset";

// A random-enough suffix for names that several test processes may race on.
inline std::string unique_suffix() {
    static std::atomic<unsigned> counter{0};
    std::random_device rd;
    return std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" + std::to_string(rd() % 1'000'000);
}

class temp_pg_database {
public:
    temp_pg_database() {
        char const* admin = std::getenv("PARLEY_TEST_PG_URI");
        if (admin == nullptr || *admin == '\0') {
            return;
        }
        admin_url_ = with_connect_timeout(admin);
        name_ = "parley_t_" + unique_suffix();
        url_ = with_database(admin, name_);
        soci::session sql{soci::postgresql, admin_url_};
        // An identifier cannot be bound; the name is ours ([a-z0-9_]).
        sql << "CREATE DATABASE " + name_;
    }
    temp_pg_database(temp_pg_database const&) = delete;
    temp_pg_database& operator=(temp_pg_database const&) = delete;
    ~temp_pg_database() {
        if (name_.empty()) {
            return;
        }
        try {
            soci::session sql{soci::postgresql, admin_url_};
            sql << "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)";
        } catch (...) {  // a leftover database on a throwaway server is harmless
        }
    }

    bool available() const noexcept { return !name_.empty(); }

    // Empties the database: drops the public schema with everything in it
    // and makes a new one (much faster than a new database). No session of
    // the database may be in a transaction.
    void reset_schema() const {
        if (!available()) {
            return;
        }
        soci::session sql{soci::postgresql, with_connect_timeout(url_)};
        sql << "SET client_min_messages = warning";  // no "drop cascades to ..." notices on stderr
        sql << "DROP SCHEMA IF EXISTS public CASCADE";
        sql << "CREATE SCHEMA public";
    }
    // postgresql://.../<name>[?query of PARLEY_TEST_PG_URI], for database::open (a
    // soci::session of its own needs with_connect_timeout(url())).
    std::string const& url() const noexcept { return url_; }
    std::string const& name() const noexcept { return name_; }
    // PARLEY_TEST_PG_URI, usable by a soci::session of its own.
    std::string const& admin_url() const noexcept { return admin_url_; }

    // SOCI 4.0's PostgreSQL backend splits its connect string into
    // "key=value" words: a URI without any '=' gets one appended to its
    // database name. A query parameter avoids that (database.cpp does the same).
    static std::string with_connect_timeout(std::string url) {
        if (url.find("connect_timeout=") == std::string::npos) {
            url += url.find('?') == std::string::npos ? "?" : "&";
            url += "connect_timeout=5";
        }
        return url;
    }

    // The same URL naming another database: the path is replaced, the
    // query (libpq parameters) kept.
    static std::string with_database(std::string const& url, std::string const& db) {
        auto const authority = url.find("://");
        auto const start = authority == std::string::npos ? 0 : authority + 3;
        auto const path = url.find_first_of("/?", start);
        if (path == std::string::npos) {
            return url + "/" + db;
        }
        auto const query = url.find('?', path);
        return url.substr(0, path) + "/" + db + (query == std::string::npos ? "" : url.substr(query));
    }

private:
    std::string admin_url_, name_, url_;
};

class temp_sqlite_database {
public:
    temp_sqlite_database() : dir_{std::filesystem::temp_directory_path() / ("parley_t_" + unique_suffix())} {}
    temp_sqlite_database(temp_sqlite_database const&) = delete;
    temp_sqlite_database& operator=(temp_sqlite_database const&) = delete;
    ~temp_sqlite_database() {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    std::filesystem::path const& dir() const noexcept { return dir_; }
    // "sqlite:<dir>/db/parley.db"; the database creates the db/ directory.
    std::string url() const { return "sqlite:" + (dir_ / "db" / "parley.db").string(); }

private:
    std::filesystem::path dir_;
};

// One PostgreSQL database for the whole test executable, made on first use
// and dropped at exit (creating a database takes a few tenths of a second).
inline temp_pg_database& shared_pg_database() {
    static temp_pg_database db;
    return db;
}

// One database of a dialect, for test bodies that run on both.
struct test_database {
    std::string name;  // "sqlite" or "postgresql", for BOOST_TEST_CONTEXT
    std::string url;
    std::shared_ptr<void> keep;  // the temp_* object that owns it (none for the shared one)
};

// Empty databases: a new SQLite file always; when PARLEY_TEST_PG_URI is set,
// also the shared PostgreSQL database, reset (reset_schema()).
inline std::vector<test_database> test_databases() {
    std::vector<test_database> out;
    auto lite = std::make_shared<temp_sqlite_database>();
    out.push_back({"sqlite", lite->url(), lite});
    auto& pg = shared_pg_database();
    if (pg.available()) {
        pg.reset_schema();
        out.push_back({"postgresql", pg.url(), nullptr});
    } else {
        BOOST_TEST_MESSAGE("postgresql " << pg_skip_message);
    }
    return out;
}

}  // namespace parley::test
