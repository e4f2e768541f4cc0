// database (the worker pool, connect/reconnect, error mapping) and the
// migrations, on SQLite and on the PostgreSQL of PARLEY_TEST_PG_URI.
#include "persistence/database.hpp"
#include "persistence/migrations.hpp"

#include "support/io_fixture.hpp"
#include "support/pg_database.hpp"

#include <soci/into.h>
#include <soci/session.h>
#include <soci/use.h>

#include <boost/asio/io_context.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace parley;
using namespace parley::persistence;

namespace {

long long count_rows(soci::session& sql, std::string const& table) {
    long long n = 0;
    sql << "SELECT COUNT(*) FROM " + table, soci::into(n);
    return n;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(database_suite, test::io_fixture)

BOOST_AUTO_TEST_CASE(open_rejects_unusable_urls) {
    for (std::string url : {"", "mysql://u@h/db", "sqlite:", "sqlite", "postgresql://u:hunter2@[::1/db",
                            "postgresql://u@h/db?no_such_option=1"}) {
        BOOST_TEST_CONTEXT("url " << url) {
            bool threw = false;
            try {
                database::open({url, 2});
            } catch (database_error const& e) {
                threw = true;
                BOOST_TEST(!e.connection_lost());
                BOOST_TEST(std::string{e.what()}.find("hunter2") == std::string::npos);
                BOOST_TEST(std::string{e.what()}.find('\n') == std::string::npos);
            }
            BOOST_TEST(threw);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_refused_connection_is_connection_lost_and_open_does_not_throw) {
    // Nothing listens on port 1: open() succeeds, every call fails as
    // "connection lost", and no message shows the password.
    auto db = database::open({"postgresql://parley:hunter2@127.0.0.1:1/parley", 2});
    BOOST_TEST((db->kind() == dialect::postgresql));
    BOOST_TEST(db->pool_size() == 2u);
    BOOST_TEST(db->redacted_url() == "postgresql://parley:(redacted)@127.0.0.1:1/parley");
    for (int i = 0; i != 2; ++i) {  // the second call tries to connect again
        bool lost = false;
        std::string what;
        run([&]() -> task<> {
            try {
                auto f = [](soci::session&) { return 1; };
                co_await db->run(f);
            } catch (database_error const& e) {
                lost = e.connection_lost();
                what = e.what();
            }
        });
        BOOST_TEST(lost);
        BOOST_TEST(what.find("127.0.0.1:1") != std::string::npos);
        BOOST_TEST(what.find("hunter2") == std::string::npos);
        BOOST_TEST(what.find('\n') == std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(password_query_parameter_is_redacted) {
    auto db = database::open({"postgres://127.0.0.1:1/parley?password=hunter2&sslmode=disable", 1});
    BOOST_TEST(db->redacted_url() == "postgres://127.0.0.1:1/parley?password=(redacted)&sslmode=disable");
}

BOOST_AUTO_TEST_CASE(sqlite_creates_the_directory_uses_one_session_and_sets_its_pragmas) {
    test::temp_sqlite_database tmp;
    auto db = database::open({tmp.url(), 8});
    BOOST_TEST((db->kind() == dialect::sqlite));
    BOOST_TEST(db->pool_size() == 1u);  // one writer
    BOOST_TEST(std::filesystem::is_directory(tmp.dir() / "db"));
    struct pragmas {
        std::string journal;
        int busy = 0, synchronous = 0, foreign_keys = 0;
    };
    auto p = db->run_blocking([](soci::session& sql) {
        pragmas p;
        sql << "PRAGMA journal_mode", soci::into(p.journal);
        sql << "PRAGMA busy_timeout", soci::into(p.busy);
        sql << "PRAGMA synchronous", soci::into(p.synchronous);
        sql << "PRAGMA foreign_keys", soci::into(p.foreign_keys);
        return p;
    });
    BOOST_TEST(p.journal == "wal");
    BOOST_TEST(p.busy == 5000);
    BOOST_TEST(p.synchronous == 2);  // FULL: commits survive a power cut
    BOOST_TEST(p.foreign_keys == 1);
    BOOST_TEST(std::filesystem::exists(tmp.dir() / "db" / "parley.db"));
}

BOOST_AUTO_TEST_CASE(postgresql_sessions_run_in_utc) {
    auto& pg = test::shared_pg_database();
    if (!pg.available()) {
        BOOST_TEST_MESSAGE(test::pg_skip_message);
        return;
    }
    pg.reset_schema();
    auto db = database::open({pg.url(), 3});
    BOOST_TEST(db->pool_size() == 3u);
    auto zone = db->run_blocking([](soci::session& sql) {
        std::string z;
        sql << "SHOW TIME ZONE", soci::into(z);
        return z;
    });
    BOOST_TEST(zone == "UTC");
}

BOOST_AUTO_TEST_CASE(temp_pg_database_makes_a_database_and_drops_it) {
    auto& shared = test::shared_pg_database();
    if (!shared.available()) {
        BOOST_TEST_MESSAGE(test::pg_skip_message);
        return;
    }
    soci::session admin{soci::postgresql, shared.admin_url()};
    auto exists = [&](std::string name) {
        long long n = 0;
        admin << "SELECT COUNT(*) FROM pg_database WHERE datname = :name", soci::use(name, "name"), soci::into(n);
        return n == 1;
    };
    std::string name;
    {
        test::temp_pg_database pg;
        BOOST_REQUIRE(pg.available());
        name = pg.name();
        BOOST_TEST(name.starts_with("parley_t_"));
        BOOST_TEST(pg.url().ends_with("/" + name));
        BOOST_TEST(exists(name));
        auto db = database::open({pg.url(), 1});
        auto current = db->run_blocking([](soci::session& sql) {
            std::string n;
            sql << "SELECT current_database()", soci::into(n);
            return n;
        });
        BOOST_TEST(current == name);
    }  // dropped with the object
    BOOST_TEST(!exists(name));
    BOOST_TEST(test::temp_pg_database::with_database("postgresql://u@h:1/a?sslmode=disable", "b") ==
               "postgresql://u@h:1/b?sslmode=disable");
    BOOST_TEST(test::temp_pg_database::with_database("postgresql://u@h:1", "b") == "postgresql://u@h:1/b");
}

BOOST_AUTO_TEST_CASE(run_works_on_a_worker_and_resumes_on_the_callers_thread) {
    for (auto const& t : test::test_databases()) {
        BOOST_TEST_CONTEXT("database " << t.name) {
            auto db = database::open({t.url, 2});
            std::thread::id const caller = std::this_thread::get_id();
            std::thread::id worker, resumed, void_worker;
            int one = 0;
            run([&]() -> task<> {
                auto f = [&worker](soci::session& sql) {
                    worker = std::this_thread::get_id();
                    int v = 0;
                    sql << "SELECT 1", soci::into(v);
                    return v;
                };
                one = co_await db->run(f);
                resumed = std::this_thread::get_id();
                auto g = [&void_worker](soci::session&) { void_worker = std::this_thread::get_id(); };
                co_await db->run(g);  // R = void
            });
            BOOST_TEST(one == 1);
            BOOST_TEST((worker != caller));
            BOOST_TEST((void_worker != caller));
            BOOST_TEST((resumed == caller));
        }
    }
}

BOOST_AUTO_TEST_CASE(a_failed_statement_is_database_error_not_connection_lost) {
    for (auto const& t : test::test_databases()) {
        BOOST_TEST_CONTEXT("database " << t.name) {
            auto db = database::open({t.url, 1});
            bool threw = false, lost = true;
            run([&]() -> task<> {
                try {
                    auto f = [](soci::session& sql) { sql << "SELECT * FROM no_such_table"; };
                    co_await db->run(f);
                } catch (database_error const& e) {
                    threw = true;
                    lost = e.connection_lost();
                    BOOST_TEST(std::string{e.what()}.find("no_such_table") != std::string::npos);
                }
            });
            BOOST_TEST(threw);
            BOOST_TEST(!lost);
            // The session is still good.
            auto one = db->run_blocking([](soci::session& sql) {
                int v = 0;
                sql << "SELECT 1", soci::into(v);
                return v;
            });
            BOOST_TEST(one == 1);
        }
    }
}

BOOST_AUTO_TEST_CASE(other_exceptions_propagate_unchanged) {
    test::temp_sqlite_database tmp;
    auto db = database::open({tmp.url(), 1});
    bool got_logic_error = false;
    run([&]() -> task<> {
        try {
            auto f = [](soci::session&) -> int { throw std::logic_error{"mine"}; };
            co_await db->run(f);
        } catch (std::logic_error const& e) {
            got_logic_error = std::string{e.what()} == "mine";
        }
    });
    BOOST_TEST(got_logic_error);
    BOOST_CHECK_THROW(db->run_blocking([](soci::session&) { throw std::out_of_range{"x"}; }), std::out_of_range);
}

BOOST_AUTO_TEST_CASE(a_transaction_left_open_is_rolled_back_before_the_session_is_reused) {
    for (auto const& t : test::test_databases()) {
        BOOST_TEST_CONTEXT("database " << t.name) {
            auto db = database::open({t.url, 1});
            db->run_blocking([&](soci::session& sql) { migrate(sql, db->kind()); });
            BOOST_CHECK_THROW(db->run_blocking([](soci::session& sql) {
                sql.begin();
                sql << "INSERT INTO ai_conversations (id, user_id) VALUES ('c1', 'u1')";
                throw std::runtime_error{"forgot to commit"};
            }),
                              std::runtime_error);
            db->run_blocking([](soci::session& sql) {  // no begin(): this would join a leaked transaction
                sql << "INSERT INTO ai_conversations (id, user_id) VALUES ('c2', 'u2')";
            });
            // A second database on the same storage sees only what was committed.
            auto other = database::open({t.url, 1});
            auto n = other->run_blocking([](soci::session& sql) { return count_rows(sql, "ai_conversations"); });
            BOOST_TEST(n == 1);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_killed_postgresql_backend_is_reconnected_once) {
    auto& pg = test::shared_pg_database();
    if (!pg.available()) {
        BOOST_TEST_MESSAGE(test::pg_skip_message);
        return;
    }
    pg.reset_schema();
    auto db = database::open({pg.url(), 1});
    auto backend_pid = [](soci::session& sql) {
        long long pid = 0;
        sql << "SELECT pg_backend_pid()", soci::into(pid);
        return pid;
    };
    long long first = 0, second = 0;
    run([&]() -> task<> { first = co_await db->run(backend_pid); });

    // From another connection, kill every backend of the test database and
    // wait until they are gone.
    soci::session admin{soci::postgresql, pg.admin_url()};
    std::string name = pg.name();
    long long killed = 0;
    admin << "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity"
             " WHERE datname = :db AND pid <> pg_backend_pid()",
        soci::use(name, "db"), soci::into(killed);
    BOOST_TEST(killed == 1);
    for (int i = 0; i != 200; ++i) {
        long long left = 0;
        admin << "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = :db", soci::use(name, "db"), soci::into(left);
        if (left == 0) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }

    run([&]() -> task<> { second = co_await db->run(backend_pid); });
    BOOST_TEST(first != 0);
    BOOST_TEST(second != 0);
    BOOST_TEST(second != first);  // a new backend: the session reconnected
}

BOOST_AUTO_TEST_CASE(a_connection_lost_twice_is_connection_lost) {
    auto& pg = test::shared_pg_database();
    if (!pg.available()) {
        BOOST_TEST_MESSAGE(test::pg_skip_message);
        return;
    }
    pg.reset_schema();
    auto db = database::open({pg.url(), 1});
    int attempts = 0;
    bool lost = false;
    run([&]() -> task<> {
        try {
            auto suicide = [&attempts](soci::session& sql) {  // the backend terminates itself, every time
                ++attempts;
                sql << "SELECT pg_terminate_backend(pg_backend_pid())";
            };
            co_await db->run(suicide);
        } catch (database_error const& e) {
            lost = e.connection_lost();
        }
    });
    BOOST_TEST(attempts == 2);  // once, and once more after reconnecting
    BOOST_TEST(lost);
    // The next call connects afresh.
    auto one = db->run_blocking([](soci::session& sql) {
        int v = 0;
        sql << "SELECT 1", soci::into(v);
        return v;
    });
    BOOST_TEST(one == 1);
}

BOOST_AUTO_TEST_CASE(calls_run_concurrently_on_the_pool) {
    auto& pg = test::shared_pg_database();
    if (!pg.available()) {
        BOOST_TEST_MESSAGE(test::pg_skip_message);
        return;
    }
    pg.reset_schema();
    auto db = database::open({pg.url(), 4});
    std::atomic<int> in_flight{0}, most{0}, done{0};
    auto sleeper = [&](soci::session& sql) {
        int const now = ++in_flight;
        for (int m = most.load(); now > m && !most.compare_exchange_weak(m, now);) {
        }
        sql << "SELECT pg_sleep(0.05)";
        --in_flight;
        ++done;
    };
    for (int i = 0; i != 8; ++i) {
        asio::co_spawn(
            ioc, [&]() -> task<> { co_await db->run(sleeper); }, [](std::exception_ptr e) {
                if (e) std::rethrow_exception(e);
            });
    }
    ioc.run_for(std::chrono::seconds(10));
    ioc.restart();
    BOOST_TEST(done.load() == 8);
    BOOST_TEST(most.load() >= 2);
    BOOST_TEST(most.load() <= 4);
}

BOOST_AUTO_TEST_CASE(close_lets_later_calls_fail_and_is_idempotent) {
    test::temp_sqlite_database tmp;
    auto db = database::open({tmp.url(), 1});
    db->run_blocking([](soci::session& sql) { sql << "SELECT 1"; });
    db->close();
    db->close();
    bool lost = false;
    run([&]() -> task<> {
        try {
            auto f = [](soci::session&) {};
            co_await db->run(f);
        } catch (database_error const& e) {
            lost = e.connection_lost();
        }
    });
    BOOST_TEST(lost);
    BOOST_CHECK_THROW(db->run_blocking([](soci::session&) {}), database_error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(migrations_suite)

BOOST_AUTO_TEST_CASE(migrate_applies_every_version_then_is_a_no_op) {
    BOOST_TEST(latest_schema_version() == 2);
    BOOST_TEST(migrations().size() == 2u);
    for (auto const& t : test::test_databases()) {
        BOOST_TEST_CONTEXT("database " << t.name) {
            auto db = database::open({t.url, 1});
            auto const d = db->kind();
            auto before = db->run_blocking([&](soci::session& sql) { return schema_version(sql, d); });
            auto first = db->run_blocking([&](soci::session& sql) { return migrate(sql, d); });
            auto again = db->run_blocking([&](soci::session& sql) { return migrate(sql, d); });
            auto after = db->run_blocking([&](soci::session& sql) { return schema_version(sql, d); });
            BOOST_TEST(before == 0);
            BOOST_TEST(first == (std::vector<int>{1, 2}), boost::test_tools::per_element());
            BOOST_TEST(again.empty());
            BOOST_TEST(after == 2);
            db->run_blocking([](soci::session& sql) {
                for (auto table : {"ai_usage", "ai_conversations", "ai_messages", "limit_calls", "budget_leases"}) {
                    BOOST_TEST(count_rows(sql, table) == 0);
                }
                std::string name;
                sql << "SELECT name FROM schema_migrations WHERE version = 1", soci::into(name);
                BOOST_TEST(name == std::string{migrations()[0].name});
                // The constraints are there: a bad status is refused.
                bool refused = false;
                try {
                    sql << "INSERT INTO ai_usage (request_id, session_id, cost_source, model, status, created_at)"
                           " VALUES ('r', 's', 'pricing', 'm', 'nope', '2024-01-01T00:00:00.000Z')";
                } catch (soci::soci_error const&) {
                    refused = true;
                }
                BOOST_TEST(refused);
                // Deleting a conversation deletes its messages.
                sql << "INSERT INTO ai_conversations (id, user_id) VALUES ('c', 'u')";
                sql << "INSERT INTO ai_messages (conversation_id, seq, role, content) VALUES ('c', 1, 'user', 'hola')";
                sql << "DELETE FROM ai_conversations WHERE id = 'c'";
                BOOST_TEST(count_rows(sql, "ai_messages") == 0);
            });
        }
    }
}

BOOST_AUTO_TEST_CASE(two_processes_migrating_at_once_apply_each_version_once) {
    for (auto const& t : test::test_databases()) {
        BOOST_TEST_CONTEXT("database " << t.name) {
            auto a = database::open({t.url, 1});
            auto b = database::open({t.url, 1});
            std::vector<int> from_a, from_b;
            std::string error_a, error_b;  // what() of a failure, checked on this thread
            auto migrate_with = [](std::shared_ptr<database> db, std::vector<int>& out, std::string& err) {
                try {
                    out = db->run_blocking([&](soci::session& sql) { return migrate(sql, db->kind()); });
                } catch (std::exception const& e) {
                    err = e.what();
                }
            };
            std::thread ta{migrate_with, a, std::ref(from_a), std::ref(error_a)};
            std::thread tb{migrate_with, b, std::ref(from_b), std::ref(error_b)};
            ta.join();
            tb.join();
            BOOST_TEST(error_a == "");
            BOOST_TEST(error_b == "");
            BOOST_TEST(from_a.size() + from_b.size() == 2u);
            auto version = a->run_blocking([&](soci::session& sql) { return schema_version(sql, a->kind()); });
            BOOST_TEST(version == 2);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
