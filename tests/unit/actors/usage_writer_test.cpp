// UsageWriterActor on real files and real databases: each test gets a fresh
// temporary directory (its usage log and SQLite file), and PostgreSQL
// through PARLEY_TEST_PG_URI where a test runs on both dialects. An
// unreachable database is a PostgreSQL URL to a closed port. Cases: rows in
// the database exactly once and the stats that count them, size-triggered
// batches, flush, start-up replay, duplicates, overflow and refill from the
// log, corrections, a log that cannot be written, shutdown, fdatasync.
#include "actors/usage_writer.hpp"

#include "domain/errc.hpp"
#include "persistence/database.hpp"
#include "persistence/migrations.hpp"
#include "persistence/usage_log.hpp"
#include "persistence/usage_repository.hpp"

#include "support/io_fixture.hpp"
#include "support/pg_database.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/test/unit_test.hpp>
#include <soci/soci.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace asio = parley::asio;
namespace actors = parley::actors;
namespace domain = parley::domain;
namespace persistence = parley::persistence;
using parley::task;
using actors::usage_writer;
using actors::usage_writer_options;
using actors::usage_writer_stats;

// Nothing listens on port 1: every connection is refused at once.
std::string const unreachable_url = "postgresql://postgres@127.0.0.1:1/x";

// 2026-03-01 10:00:00 UTC, plus i seconds (whole milliseconds survive the database).
std::chrono::system_clock::time_point at(int i) {
    return std::chrono::sys_days{std::chrono::year{2026} / 3 / 1} + 10h + std::chrono::seconds{i};
}

// Row i: every column set; the cost whole micro-dollars, so the table keeps it exactly.
domain::usage_record make_row(int i, domain::cost_source source = domain::cost_source::provider) {
    domain::usage_record r;
    r.request_id = "req-" + std::to_string(i);
    r.user_id = "ann";
    r.session_id = "sess-" + std::to_string(i % 3);
    r.conversation_id = "conv-1";
    r.input_tokens = 1000 + i;
    r.output_tokens = 100 + i;
    r.cached_tokens = i;
    r.cost = domain::nano_usd{1'000 * (i + 1)};
    r.source = source;
    r.model = "anthropic/claude-3.5-sonnet";
    r.generation_id = "gen-" + std::to_string(i);
    r.status = domain::call_status::ok;
    r.created_at = at(i);
    return r;
}

task<void> sleep_for(std::chrono::milliseconds d) {
    asio::steady_timer t{co_await asio::this_coro::executor, d};
    co_await t.async_wait(parley::use_nothrow);
}

// The writer's stats once `done` holds, polled at most 2000 times 2 ms apart
// (the last stats otherwise, for the assertions to report). Pass a named
// lambda: GCC 12 destroys a lambda temporary inside co_await twice.
template <class Done>
task<usage_writer_stats> stats_when(std::shared_ptr<usage_writer> w, Done done) {
    usage_writer_stats last;
    for (int i = 0; i != 2000; ++i) {
        auto s = co_await w->stats();
        BOOST_TEST_REQUIRE(s.has_value());
        last = *s;
        bool const ok = done(last);
        if (ok) {
            break;
        }
        co_await sleep_for(2ms);
    }
    co_return last;
}

domain::cost_correction correction(std::string id, std::int64_t nanos) {
    domain::cost_correction c;
    c.request_id = std::move(id);
    c.cost = domain::nano_usd{nanos};
    return c;
}

// Swaps spdlog's default logger for one writing into memory.
struct captured_log {
    std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(32);
    std::shared_ptr<spdlog::logger> previous = spdlog::default_logger();
    captured_log() { spdlog::set_default_logger(std::make_shared<spdlog::logger>("captured", sink)); }
    ~captured_log() { spdlog::set_default_logger(previous); }
    std::string text() const {
        std::string all;
        for (auto const& line : sink->last_formatted()) {
            all += line;
        }
        return all;
    }
};

// While alive, write(2) past `bytes` of any file fails with EFBIG (SIGXFSZ
// ignored): a real write failure of the log, even for root.
struct file_size_limit {
    rlimit saved{};
    void (*old_handler)(int) = nullptr;
    explicit file_size_limit(rlim_t bytes) {
        old_handler = ::signal(SIGXFSZ, SIG_IGN);
        ::getrlimit(RLIMIT_FSIZE, &saved);
        rlimit limited = saved;
        limited.rlim_cur = bytes;
        if (::setrlimit(RLIMIT_FSIZE, &limited) != 0) {
            throw std::runtime_error("setrlimit(RLIMIT_FSIZE) failed");
        }
    }
    ~file_size_limit() {
        ::setrlimit(RLIMIT_FSIZE, &saved);
        ::signal(SIGXFSZ, old_handler);
    }
    file_size_limit(file_size_limit const&) = delete;
    file_size_limit& operator=(file_size_limit const&) = delete;
};

struct writer_fixture : parley::test::io_fixture {
    fs::path root;

    writer_fixture() {
        std::string pattern = (fs::temp_directory_path() / "parley-usage-writer-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) {
            throw std::runtime_error("cannot create a temporary directory from " + pattern);
        }
        root = pattern;
    }
    ~writer_fixture() {
        std::error_code ec;
        fs::remove_all(root, ec);
    }

    fs::path log_dir(std::string const& name = "log") const { return root / name; }
    std::string sqlite_url(std::string const& name = "usage.db") const { return "sqlite:" + (root / "db" / name).string(); }

    std::shared_ptr<persistence::usage_log> open_log(std::string const& name = "log") const {
        return persistence::usage_log::open({.dir = log_dir(name)});
    }
    static std::shared_ptr<persistence::database> open_db(std::string const& url) {
        return persistence::database::open({.url = url, .pool_size = 1});
    }
    std::shared_ptr<usage_writer> make(std::shared_ptr<persistence::usage_log> log,
                                       std::shared_ptr<persistence::database> db, usage_writer_options o) {
        return actors::spawn<usage_writer>(ioc.get_executor(), std::move(log), std::move(db), o);
    }
    // The test body on the io_context, stopped as soon as it ends.
    template <class F>
    void go(F body) {
        run_and_stop(std::move(body), 20s);
    }
};

usage_writer_options fast_options() {
    usage_writer_options o;
    o.flush_interval = 5ms;
    o.fsync_interval = 1ms;
    o.retry_initial = 5ms;
    o.retry_max = 20ms;
    return o;
}

// A writer that only writes when asked (flush, a full batch, shutdown).
usage_writer_options lazy_options() {
    auto o = fast_options();
    o.flush_interval = 1h;
    return o;
}

std::int64_t count_rows(persistence::database& db) {
    auto const d = db.kind();
    return db.run_blocking([d](soci::session& sql) { return persistence::count_usage(sql, d, std::nullopt); });
}

std::optional<domain::usage_record> find_row(persistence::database& db, std::string const& id) {
    auto const d = db.kind();
    return db.run_blocking([d, id](soci::session& sql) { return persistence::find_usage(sql, d, id); });
}

// The request ids in insertion order.
std::vector<std::string> ids_in_order(persistence::database& db) {
    return db.run_blocking([](soci::session& sql) {
        std::vector<std::string> out;
        soci::rowset<std::string> rs = (sql.prepare << "SELECT request_id FROM ai_usage ORDER BY id");
        for (auto const& id : rs) {
            out.push_back(id);
        }
        return out;
    });
}

std::vector<std::string> expected_ids(int from, int to) {
    std::vector<std::string> out;
    for (int i = from; i != to; ++i) {
        out.push_back("req-" + std::to_string(i));
    }
    return out;
}

void check_row(persistence::database& db, domain::usage_record const& want) {
    auto got = find_row(db, want.request_id);
    BOOST_TEST_REQUIRE(got.has_value(), want.request_id << " is not in the database");
    BOOST_TEST((*got == want), want.request_id << " differs: cost " << got->cost << " vs " << want.cost
                                              << ", source " << got->source << " vs " << want.source);
}

template <class T>
boost::system::error_code error_of(actors::result<T> const& r) {
    return r.has_error() ? r.error() : boost::system::error_code{};
}

boost::system::error_code const log_failed_ec = make_error_code(parley::errc::usage_log_failed);
boost::system::error_code const unavailable_ec = make_error_code(parley::errc::database_unavailable);
boost::system::error_code const stopped_ec = make_error_code(parley::errc::actor_stopped);

}  // namespace

BOOST_FIXTURE_TEST_SUITE(usage_writer_tests, writer_fixture)

BOOST_AUTO_TEST_CASE(records_reach_the_database_exactly_once_and_the_stats_count_them) {
    for (auto const& t : parley::test::test_databases()) {
        BOOST_TEST_CONTEXT(t.name) {
            auto db = open_db(t.url);
            auto log = open_log("log-" + t.name);
            auto w = make(log, db, lazy_options());
            std::vector<domain::usage_record> rows;
            for (int i = 0; i != 5; ++i) {
                rows.push_back(make_row(i));
            }
            rows[1].user_id.reset();  // NULL columns come back as they went in
            rows[2].conversation_id.clear();
            rows[2].generation_id.clear();
            rows[3].status = domain::call_status::cancelled;
            rows[3].source = domain::cost_source::estimate;
            run([&]() -> task<void> {
                for (auto const& r : rows) {
                    auto ok = co_await w->record(r);
                    BOOST_TEST(ok.has_value());
                }
                auto before = co_await w->stats();
                BOOST_TEST(before->logged == 5u);
                BOOST_TEST(before->queue_depth == 5u);
                BOOST_TEST(before->log_backlog == 5u);
                BOOST_TEST(before->inserted == 0u);  // flush_interval is an hour: nothing written yet
                auto flushed = co_await w->flush(10s);
                BOOST_TEST(flushed.has_value());
                auto s = co_await w->stats();
                BOOST_TEST(s->inserted == 5u);
                BOOST_TEST(s->batches == 1u);
                BOOST_TEST(s->duplicates == 0u);
                BOOST_TEST(s->queue_depth == 0u);
                BOOST_TEST(s->log_backlog == 0u);
                BOOST_TEST(s->database_ok);
                BOOST_TEST(s->write_failures == 0u);
                BOOST_TEST(s->log_failures == 0u);
                BOOST_TEST(s->replayed == 0u);
                // Everything written: a second flush answers without another transaction.
                auto again = co_await w->flush(10s);
                BOOST_TEST(again.has_value());
                auto s2 = co_await w->stats();
                BOOST_TEST(s2->batches == 1u);
                co_await w->shutdown(5s);
            });
            BOOST_TEST(count_rows(*db) == 5);
            for (auto const& r : rows) {
                check_row(*db, r);
            }
            BOOST_TEST(log->checkpointed() == 5u);
            BOOST_TEST(log->backlog() == 0u);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_full_batch_is_written_at_once_without_waiting_for_the_flush_interval) {
    auto db = open_db(sqlite_url());
    auto o = lazy_options();  // the timer alone would wait an hour
    o.batch_size = 3;
    auto w = make(open_log(), db, o);
    run([&]() -> task<void> {
        for (int i = 0; i != 3; ++i) {
            auto ok = co_await w->record(make_row(i));
            BOOST_TEST(ok.has_value());
        }
        auto three_in = [](usage_writer_stats const& st) { return st.inserted == 3; };
        auto s = co_await stats_when(w, three_in);
        BOOST_TEST(s.inserted == 3u);
        BOOST_TEST(s.batches == 1u);
        BOOST_TEST(s.queue_depth == 0u);
        auto fourth = co_await w->record(make_row(3));
        BOOST_TEST(fourth.has_value());
        auto waiting = co_await w->stats();
        BOOST_TEST(waiting->queue_depth == 1u);  // below batch_size: it waits for the timer or a flush
        BOOST_TEST(waiting->inserted == 3u);
        auto flushed = co_await w->flush(10s);
        BOOST_TEST(flushed.has_value());
        auto after = co_await w->stats();
        BOOST_TEST(after.value().inserted == 4u);
        BOOST_TEST(after.value().batches == 2u);
        co_await w->shutdown(5s);
    });
    BOOST_TEST(ids_in_order(*db) == expected_ids(0, 4), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(the_flush_interval_writes_a_partial_batch_on_its_own) {
    auto db = open_db(sqlite_url());
    auto w = make(open_log(), db, fast_options());  // flush_interval 5 ms, batch_size 256
    run([&]() -> task<void> {
        auto ok = co_await w->record(make_row(0));
        BOOST_TEST(ok.has_value());
        auto one_in = [](usage_writer_stats const& st) { return st.inserted == 1; };
        auto s = co_await stats_when(w, one_in);
        BOOST_TEST(s.inserted == 1u);
        BOOST_TEST(s.log_backlog == 0u);
        co_await w->shutdown(5s);
    });
    BOOST_TEST(count_rows(*db) == 1);
}

BOOST_AUTO_TEST_CASE(a_flush_with_nothing_logged_succeeds_at_once_even_when_the_database_is_unreachable) {
    auto db = open_db(unreachable_url);
    auto w = make(open_log(), db, lazy_options());
    run([&]() -> task<void> {
        auto flushed = co_await w->flush(10s);
        BOOST_TEST(flushed.has_value());  // a write would have failed: none was attempted
        auto s = co_await w->stats();
        BOOST_TEST(s->write_failures == 0u);
        BOOST_TEST(s->batches == 0u);
        BOOST_TEST(s->database_ok);
        co_await w->shutdown(1s);
    });
}

BOOST_AUTO_TEST_CASE(a_flush_while_the_database_is_unreachable_fails_with_database_unavailable_instead_of_hanging) {
    auto db = open_db(unreachable_url);
    auto log = open_log();
    auto w = make(log, db, lazy_options());
    run([&]() -> task<void> {
        for (int i = 0; i != 2; ++i) {
            auto ok = co_await w->record(make_row(i));
            BOOST_TEST(ok.has_value());  // the log takes them while the database is down
        }
        auto flushed = co_await w->flush(10s);
        BOOST_TEST(error_of(flushed) == unavailable_ec);
        auto s = co_await w->stats();
        BOOST_TEST(!s->database_ok);
        BOOST_TEST(s->write_failures >= 1u);
        BOOST_TEST(s->inserted == 0u);
        BOOST_TEST(s->batches == 0u);
        BOOST_TEST(s->queue_depth == 2u);
        BOOST_TEST(s->log_backlog == 2u);
        co_await w->shutdown(50ms);  // its last flush fails too; shutdown goes on
    });
    BOOST_TEST(log->backlog() == 2u);  // kept for the next start
    BOOST_TEST(log->checkpointed() == 0u);
}

BOOST_AUTO_TEST_CASE(a_log_written_while_the_database_was_unreachable_is_replayed_by_the_next_writer) {
    std::vector<domain::usage_record> rows;
    for (int i = 0; i != 4; ++i) {
        rows.push_back(make_row(i));
    }
    rows[2].user_id.reset();
    {
        auto log = open_log();
        auto w = make(log, open_db(unreachable_url), lazy_options());
        run([&]() -> task<void> {
            for (auto const& r : rows) {
                auto ok = co_await w->record(r);
                BOOST_TEST(ok.has_value());
            }
            co_await w->shutdown(50ms);
        });
    }
    auto log = open_log();  // the first writer's lock is gone with it
    BOOST_TEST_REQUIRE(log->backlog() == 4u);
    auto db = open_db(sqlite_url());
    auto w = make(log, db, lazy_options());
    run([&]() -> task<void> {
        auto s = co_await w->stats();
        BOOST_TEST(s->replayed == 4u);
        BOOST_TEST(s->queue_depth == 4u);
        BOOST_TEST(s->log_backlog == 4u);
        BOOST_TEST(s->logged == 0u);
        BOOST_TEST(s->inserted == 0u);  // nothing before kick()
        w->kick();
        // inserted, not log_backlog: the checkpoint moves on the database's
        // thread just before the writer hears that the batch is in.
        auto caught_up = [](usage_writer_stats const& st) { return st.inserted == 4; };
        auto done = co_await stats_when(w, caught_up);
        BOOST_TEST(done.log_backlog == 0u);
        BOOST_TEST(done.inserted == 4u);
        BOOST_TEST(done.duplicates == 0u);
        BOOST_TEST(done.queue_depth == 0u);
        co_await w->shutdown(5s);
    });
    BOOST_TEST(count_rows(*db) == 4);
    for (auto const& r : rows) {
        check_row(*db, r);  // every column survived the log
    }
    BOOST_TEST(ids_in_order(*db) == expected_ids(0, 4), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(rows_already_in_the_database_are_counted_once_when_the_log_is_replayed) {
    for (auto const& t : parley::test::test_databases()) {
        BOOST_TEST_CONTEXT(t.name) {
            std::vector<domain::usage_record> rows;
            for (int i = 0; i != 4; ++i) {
                rows.push_back(make_row(i));
            }
            auto log = open_log("log-" + t.name);
            for (auto const& r : rows) {
                log->append(persistence::log_item{r});
            }
            // A crash after the database took the first two rows, before the checkpoint moved.
            std::vector<domain::usage_record> stored{rows[0], rows[1]};
            stored[0].cost = domain::nano_usd{42'000};
            auto db = open_db(t.url);
            auto const d = db->kind();
            auto inserted = db->run_blocking([d, &stored](soci::session& sql) {
                persistence::migrate(sql, d);
                return persistence::insert_usage(sql, d, stored);
            });
            BOOST_TEST_REQUIRE(inserted == 2u);
            BOOST_TEST_REQUIRE(log->checkpointed() == 0u);
            auto w = make(log, db, lazy_options());
            w->schema_ready();
            run([&]() -> task<void> {
                auto flushed = co_await w->flush(10s);
                BOOST_TEST(flushed.has_value());
                auto s = co_await w->stats();
                BOOST_TEST(s->replayed == 4u);
                BOOST_TEST(s->inserted == 2u);
                BOOST_TEST(s->duplicates == 2u);
                BOOST_TEST(s->log_backlog == 0u);
                co_await w->shutdown(5s);
            });
            BOOST_TEST(count_rows(*db) == 4);
            check_row(*db, stored[0]);  // the stored row wins (ON CONFLICT DO NOTHING)
            check_row(*db, rows[1]);
            check_row(*db, rows[2]);
            check_row(*db, rows[3]);
            BOOST_TEST(log->checkpointed() == 4u);
        }
    }
}

BOOST_AUTO_TEST_CASE(an_overflow_beyond_max_pending_is_read_back_from_the_log_in_order) {
    auto o = lazy_options();
    o.max_pending = 3;
    {
        auto w = make(open_log(), open_db(unreachable_url), o);
        run([&]() -> task<void> {
            for (int i = 0; i != 10; ++i) {
                auto ok = co_await w->record(make_row(i));
                BOOST_TEST(ok.has_value());
            }
            auto s = co_await w->stats();
            BOOST_TEST(s->logged == 10u);
            BOOST_TEST(s->queue_depth == 3u);  // the rest waits in the log only
            BOOST_TEST(s->log_backlog == 10u);
            co_await w->shutdown(50ms);
        });
    }
    o.batch_size = 2;  // several batches and several refills
    auto log = open_log();
    auto db = open_db(sqlite_url());
    auto w = make(log, db, o);
    run([&]() -> task<void> {
        auto s = co_await w->stats();
        BOOST_TEST(s->replayed == 10u);
        BOOST_TEST(s->queue_depth == 3u);  // start-up reads at most max_pending
        for (int i = 10; i != 12; ++i) {
            auto ok = co_await w->record(make_row(i));  // behind the overflow: into the log only
            BOOST_TEST(ok.has_value());
        }
        auto mid = co_await w->stats();
        BOOST_TEST(mid->queue_depth == 3u);
        BOOST_TEST(mid->log_backlog == 12u);
        auto flushed = co_await w->flush(10s);
        BOOST_TEST(flushed.has_value());
        auto after = co_await w->stats();
        BOOST_TEST(after->inserted == 12u);
        BOOST_TEST(after->duplicates == 0u);
        BOOST_TEST(after->batches >= 6u);  // at most batch_size rows each
        BOOST_TEST(after->queue_depth == 0u);
        BOOST_TEST(after->log_backlog == 0u);
        co_await w->shutdown(5s);
    });
    BOOST_TEST(ids_in_order(*db) == expected_ids(0, 12), boost::test_tools::per_element());
    BOOST_TEST(log->checkpointed() == 12u);
}

BOOST_AUTO_TEST_CASE(corrections_logged_after_their_record_turn_the_row_into_a_provider_cost) {
    auto db = open_db(sqlite_url());
    auto w = make(open_log(), db, lazy_options());
    auto r0 = make_row(0, domain::cost_source::estimate);
    auto r1 = make_row(1, domain::cost_source::estimate);
    auto r2 = make_row(2, domain::cost_source::provider);
    std::vector<domain::usage_record> three{r0, r1, r2};
    run([&]() -> task<void> {
        for (auto const& r : three) {
            auto ok = co_await w->record(r);
            BOOST_TEST(ok.has_value());
        }
        // In the same batch as its record.
        auto c0 = correction("req-0", 2'500'000);
        auto ok0 = co_await w->correct(std::move(c0));
        BOOST_TEST(ok0.has_value());
        auto first = co_await w->flush(10s);
        BOOST_TEST(first.has_value());
        auto s = co_await w->stats();
        BOOST_TEST(s->corrected == 1u);
        // In a later batch than its record; a provider row and an unknown id are left alone.
        auto c1 = correction("req-1", 7'000'000);
        auto c2 = correction("req-2", 9'000'000);
        auto c3 = correction("req-unknown", 1'000'000);
        auto ok1 = co_await w->correct(std::move(c1));
        auto ok2 = co_await w->correct(std::move(c2));
        auto ok3 = co_await w->correct(std::move(c3));
        BOOST_TEST((ok1.has_value() && ok2.has_value() && ok3.has_value()));
        auto second = co_await w->flush(10s);
        BOOST_TEST(second.has_value());
        auto s2 = co_await w->stats();
        BOOST_TEST(s2->corrected == 2u);
        BOOST_TEST(s2->inserted == 3u);
        BOOST_TEST(s2->logged == 7u);
        BOOST_TEST(s2->batches == 2u);
        co_await w->shutdown(5s);
    });
    r0.source = domain::cost_source::provider;
    r0.cost = domain::nano_usd{2'500'000};
    r1.source = domain::cost_source::provider;
    r1.cost = domain::nano_usd{7'000'000};
    check_row(*db, r0);
    check_row(*db, r1);
    check_row(*db, r2);  // unchanged
    BOOST_TEST(count_rows(*db) == 3);
}

BOOST_AUTO_TEST_CASE(a_record_the_log_cannot_take_fails_with_usage_log_failed_and_is_counted) {
    captured_log captured;
    auto db = open_db(sqlite_url());
    auto w = make(open_log(), db, lazy_options());
    boost::system::error_code failed;
    run([&]() -> task<void> {
        auto ok = co_await w->record(make_row(0));
        BOOST_TEST(ok.has_value());
        auto flushed = co_await w->flush(10s);  // the database idle: only the log writes while limited
        BOOST_TEST(flushed.has_value());
        {
            // No Boost.Test output while the limit is on: its log may be a file.
            file_size_limit limit{1};
            auto r = co_await w->record(make_row(1));
            failed = error_of(r);
        }
        BOOST_TEST(failed == log_failed_ec);
        auto later = co_await w->record(make_row(2));  // the log goes on (in a new segment)
        BOOST_TEST(later.has_value());
        auto again = co_await w->flush(10s);
        BOOST_TEST(again.has_value());
        auto s = co_await w->stats();
        BOOST_TEST(s->log_failures == 1u);
        BOOST_TEST(s->logged == 2u);
        BOOST_TEST(s->inserted == 2u);
        BOOST_TEST(s->log_backlog == 0u);
        co_await w->shutdown(5s);
    });
    BOOST_TEST(count_rows(*db) == 2);
    BOOST_TEST(!find_row(*db, "req-1").has_value());
    BOOST_TEST(find_row(*db, "req-2").has_value());
    BOOST_TEST(captured.text().find("NOT saved") != std::string::npos, captured.text());
}

BOOST_AUTO_TEST_CASE(calls_after_shutdown_fail_with_actor_stopped) {
    auto w = make(open_log(), open_db(sqlite_url()), lazy_options());
    run([&]() -> task<void> {
        co_await w->shutdown(5s);
        auto r = co_await w->record(make_row(0));
        BOOST_TEST(error_of(r) == stopped_ec);
        auto c = correction("req-0", 1'000);
        auto corrected = co_await w->correct(std::move(c));
        BOOST_TEST(error_of(corrected) == stopped_ec);
        auto flushed = co_await w->flush(1s);
        BOOST_TEST(error_of(flushed) == stopped_ec);
        auto s = co_await w->stats();
        BOOST_TEST(error_of(s) == stopped_ec);
    });
}

BOOST_AUTO_TEST_CASE(shutdown_writes_what_is_pending_and_leaves_an_empty_backlog) {
    auto db = open_db(sqlite_url());
    auto log = open_log();
    auto w = make(log, db, lazy_options());
    run([&]() -> task<void> {
        for (int i = 0; i != 3; ++i) {
            auto ok = co_await w->record(make_row(i));
            BOOST_TEST(ok.has_value());
        }
        co_await w->shutdown(5s);  // no flush before: the last flush is shutdown's
    });
    BOOST_TEST(count_rows(*db) == 3);
    BOOST_TEST(log->checkpointed() == 3u);
    BOOST_TEST(log->backlog() == 0u);
}

BOOST_AUTO_TEST_CASE(appends_are_fdatasynced_with_a_zero_and_with_a_positive_fsync_interval) {
    for (auto interval : {0ms, 3ms}) {
        BOOST_TEST_CONTEXT("fsync_interval " << interval.count() << " ms") {
            auto o = lazy_options();
            o.fsync_interval = interval;
            auto w = make(open_log("log-" + std::to_string(interval.count())), open_db(sqlite_url()), o);
            run([&]() -> task<void> {
                auto ok = co_await w->record(make_row(0));
                BOOST_TEST(ok.has_value());
                auto synced = [](usage_writer_stats const& st) { return st.syncs > 0; };
                auto s = co_await stats_when(w, synced);
                BOOST_TEST(s.syncs > 0u);
                auto next = co_await w->record(make_row(1));  // dirty again: another fdatasync
                BOOST_TEST(next.has_value());
                auto first = s.syncs;
                auto synced_again = [first](usage_writer_stats const& st) { return st.syncs > first; };
                auto s2 = co_await stats_when(w, synced_again);
                BOOST_TEST(s2.syncs > first);
                co_await w->shutdown(5s);
            });
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
