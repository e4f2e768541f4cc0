// usage_writer_bench: the usage writer end to end (issue #4). The real
// components: a persistence::usage_log in a fresh directory on the real disk,
// a persistence::database (a SQLite file, and PostgreSQL when a URL is given),
// and an actors::usage_writer between them, on a 2-thread io_context.
//
// For each backend, batch size and producer count: C producer coroutines send
// N usage records (shaped like real ones: ~40-byte ids, a model name,
// created_at now) through usage_writer::record(), then flush() waits until
// every one is in the database. Reported:
//   * records/s end to end: from the first record() to flush() returning
//     (every row in the database, checked with COUNT(*));
//   * records/s of the record() phase alone (the log side);
//   * record() latency, the time the log adds to a turn (the write(2) on the
//     writer's strand plus the actor round trip): p50/p90/p99/max over every
//     sample, sorted (nearest rank, no approximation);
//   * the writer's own counters (batches, fdatasyncs).
// Then the same with fsync_interval 0 and 5 ms (the group fdatasync is not on
// the record() path by design), and the log alone (append(), sync(),
// checkpoint() timed one by one, no actor; then append() while another
// thread runs sync() non-stop), to split the figures up.
//
// Bounded: N records per run; producers stop issuing after --max-seconds
// (the run is then marked "capped"), flush() waits at most --max-seconds
// more; a watchdog ends the process (exit 1) if everything together takes
// far longer. Exit 1 when a record() fails, a flush fails or the row count is
// wrong. Starts no process; removes its temporary directories.
//
//   usage_writer_bench [--records 50000] [--producers 1,64] [--batches 64,256,1024]
//                      [--pg postgresql://user@host:port/db | env PARLEY_BENCH_PG_URI]
//                      [--backends sqlite,pg] [--dir /tmp] [--max-seconds 120] [--json]
#include "actors/usage_writer.hpp"
#include "domain/usage.hpp"
#include "persistence/database.hpp"
#include "persistence/migrations.hpp"
#include "persistence/usage_log.hpp"
#include "persistence/usage_repository.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <soci/into.h>
#include <soci/session.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/utsname.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

namespace asio = parley::asio;
namespace actors = parley::actors;
namespace domain = parley::domain;
namespace persistence = parley::persistence;
namespace fs = std::filesystem;
using parley::task;
using parley::use_nothrow;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

// ---- arguments --------------------------------------------------------------------------------

struct args {
    long records = 50'000;
    std::vector<long> producers{1, 64};
    std::vector<long> batches{64, 256, 1024};
    std::string pg_url;
    bool want_sqlite = true;
    bool want_pg = true;
    std::string dir = "/tmp";
    long max_seconds = 120;
    bool json = false;
};

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: usage_writer_bench [--records N] [--producers C[,C...]] [--batches B[,B...]]\n"
                 "                          [--pg URL] [--backends sqlite,pg] [--dir DIR] [--max-seconds S] [--json]\n"
                 "       PostgreSQL: --pg URL or env PARLEY_BENCH_PG_URI (skipped when neither is set)\n");
    std::exit(2);
}

long number(char const* v) {
    char* end = nullptr;
    long n = std::strtol(v, &end, 10);
    if (end == v || *end != '\0' || n <= 0) usage();
    return n;
}

std::vector<long> numbers(std::string_view v) {
    std::vector<long> out;
    while (!v.empty()) {
        auto const comma = v.find(',');
        std::string part{v.substr(0, comma)};
        out.push_back(number(part.c_str()));
        v = comma == std::string_view::npos ? std::string_view{} : v.substr(comma + 1);
    }
    if (out.empty()) usage();
    return out;
}

args parse(int argc, char** argv) {
    args a;
    if (char const* env = std::getenv("PARLEY_BENCH_PG_URI"); env != nullptr) a.pg_url = env;
    for (int i = 1; i < argc; ++i) {
        std::string_view k = argv[i];
        if (k == "--json") {
            a.json = true;
            continue;
        }
        if (i + 1 >= argc) usage();
        char const* v = argv[++i];
        if (k == "--records") a.records = number(v);
        else if (k == "--producers") a.producers = numbers(v);
        else if (k == "--batches") a.batches = numbers(v);
        else if (k == "--pg") a.pg_url = v;
        else if (k == "--dir") a.dir = v;
        else if (k == "--max-seconds") a.max_seconds = number(v);
        else if (k == "--backends") {
            std::string_view b = v;
            a.want_sqlite = b.find("sqlite") != std::string_view::npos;
            a.want_pg = b.find("pg") != std::string_view::npos || b.find("postgres") != std::string_view::npos;
            if (!a.want_sqlite && !a.want_pg) usage();
        } else usage();
    }
    return a;
}

// ---- the machine and the backends -----------------------------------------------------------------

std::string fs_type(fs::path const& p) {
    struct statfs s {};
    if (::statfs(p.c_str(), &s) != 0) return "unknown";
    switch (static_cast<unsigned long>(s.f_type)) {
        case 0xEF53: return "ext2/3/4";
        case 0x01021994: return "tmpfs";
        case 0x58465342: return "xfs";
        case 0x9123683E: return "btrfs";
        case 0x794C7630: return "overlayfs";
        default: {
            char buf[32];
            std::snprintf(buf, sizeof buf, "0x%lx", static_cast<unsigned long>(s.f_type));
            return buf;
        }
    }
}

std::string now_utc() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

fs::path make_temp_dir(fs::path const& base, char const* what) {
    std::string tmpl = (base / (std::string{"usage-writer-bench-"} + what + "-XXXXXX")).string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
        throw std::runtime_error("cannot create a temporary directory under " + base.string() + ": " +
                                 std::strerror(errno));
    }
    return tmpl;
}

std::shared_ptr<persistence::database> open_db(std::string const& url) {
    persistence::database_options o;
    o.url = url;
    o.pool_size = 4;
    return persistence::database::open(o);
}

std::shared_ptr<persistence::usage_log> open_log(fs::path const& dir) {
    persistence::usage_log_options o;
    o.dir = dir;
    return persistence::usage_log::open(o);
}

// PostgreSQL's version and the settings that decide its commit cost.
std::string describe_pg(std::string const& url) {
    auto db = open_db(url);
    auto q = [](soci::session& sql) {
        std::string version, fsync, sync_commit, wal_sync;
        sql << "SELECT version()", soci::into(version);
        sql << "SHOW fsync", soci::into(fsync);
        sql << "SHOW synchronous_commit", soci::into(sync_commit);
        sql << "SHOW wal_sync_method", soci::into(wal_sync);
        return version.substr(0, version.find(" on ")) + "; fsync=" + fsync + ", synchronous_commit=" + sync_commit +
               ", wal_sync_method=" + wal_sync;
    };
    auto text = db->run_blocking(q);
    db->close();
    return text;
}

// ---- records --------------------------------------------------------------------------------------

// An id of the usual shape, 36 characters after the prefix ("req-" + 36 = 40 bytes).
std::string uuidish(char const* prefix, unsigned tag, unsigned long n) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s%08x-%04lx-4%03lx-8%03lx-%012lx", prefix, tag, (n >> 24) & 0xFFFFUL,
                  (n >> 12) & 0xFFFUL, n & 0xFFFUL, n);
    return buf;
}

domain::usage_record make_record(unsigned tag, long i) {
    auto const n = static_cast<unsigned long>(i);
    domain::usage_record r;
    r.request_id = uuidish("req-", tag, n);                  // 40 bytes
    r.user_id = uuidish("user-", 0x5eed, n % 500);            // 41 bytes; 500 users
    r.session_id = uuidish("sess-", tag, n / 4);             // a few turns per session
    r.conversation_id = uuidish("conv-", tag, n / 4);
    r.input_tokens = 1200 + i % 800;
    r.output_tokens = 300 + i % 200;
    r.cached_tokens = i % 3 == 0 ? 1024 : 0;
    r.cost = domain::nano_usd{r.input_tokens * 3'000 + r.output_tokens * 15'000};  // $3 / $15 per Mtok
    r.source = domain::cost_source::provider;
    r.model = "anthropic/claude-3.5-sonnet";
    char gen[64];
    std::snprintf(gen, sizeof gen, "gen-1718000000-%08x%012lx", tag, n);  // 35 bytes
    r.generation_id = gen;
    r.status = domain::call_status::ok;
    r.created_at = std::chrono::system_clock::now();
    return r;
}

// ---- one run --------------------------------------------------------------------------------------

enum class backend { sqlite, postgresql };

char const* name(backend b) { return b == backend::sqlite ? "SQLite" : "PostgreSQL"; }

struct run_config {
    backend b = backend::sqlite;
    std::size_t batch = 256;
    long producers = 1;
    long records = 50'000;
    std::chrono::milliseconds fsync{5};
    bool measured = true;
};

struct run_result {
    run_config cfg;
    long sent = 0;
    long failed = 0;
    bool capped = false;
    bool flushed = false;
    std::string error;
    double record_phase_s = 0;
    double total_s = 0;
    double cpu_s = 0;  // this process (io threads, writer, database workers, fdatasync thread), first record() to flush()
    std::vector<std::int64_t> lat;  // ns, sorted
    actors::usage_writer_stats stats;
    std::int64_t rows = -1;
    bool ok() const { return failed == 0 && flushed && rows == sent && error.empty(); }
};

struct producer_state {
    actors::usage_writer* writer = nullptr;
    long n = 0;
    unsigned tag = 0;
    clock_type::time_point deadline;
    std::atomic<long> next{0};
    std::atomic<long> failed{0};
    std::atomic<bool> capped{false};
    std::vector<std::int64_t> lat;
    std::mutex m;  // first_error (several io threads)
    std::string first_error;
};

std::unique_ptr<producer_state> make_state(actors::usage_writer* w, run_config const& cfg, unsigned tag,
                                           clock_type::time_point deadline) {
    auto s = std::make_unique<producer_state>();
    s->writer = w;
    s->n = cfg.records;
    s->tag = tag;
    s->deadline = deadline;
    s->lat.assign(static_cast<std::size_t>(cfg.records), 0);
    return s;
}

actors::usage_writer_options writer_options(run_config const& cfg) {
    actors::usage_writer_options o;  // the defaults, but for these two
    o.batch_size = cfg.batch;
    o.fsync_interval = cfg.fsync;
    return o;
}

run_result make_result(run_config const& cfg) {
    run_result r;
    r.cfg = cfg;
    return r;
}

void note_error(producer_state& s, std::string text) {
    std::lock_guard lock(s.m);
    if (s.first_error.empty()) s.first_error = std::move(text);
}

// Claims record numbers until N are claimed or the deadline passes; times each record().
task<void> producer(producer_state& s) {
    for (;;) {
        if (clock_type::now() >= s.deadline) {
            s.capped.store(true);
            co_return;
        }
        long const i = s.next.fetch_add(1);
        if (i >= s.n) co_return;
        domain::usage_record r = make_record(s.tag, i);
        auto const t0 = clock_type::now();
        auto res = co_await s.writer->record(std::move(r));
        auto const t1 = clock_type::now();
        s.lat[static_cast<std::size_t>(i)] = std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
        if (!res) {
            s.failed.fetch_add(1);
            note_error(s, "record(): " + res.error().message());
        }
    }
}

struct bench_env {
    asio::io_context& ioc;
    fs::path base;
    std::string pg_url;
    long max_seconds = 120;
    unsigned next_tag = 1;
};

double seconds(clock_type::duration d) { return std::chrono::duration<double>(d).count(); }

double cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    auto tv = [](timeval t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return tv(u.ru_utime) + tv(u.ru_stime);
}

// Runs on the coordinator's strand; the producers and the writer run on the io_context's 2 threads.
task<run_result> run_one(bench_env& e, run_config cfg) {
    run_result res = make_result(cfg);
    auto ex = co_await asio::this_coro::executor;
    fs::path const dir = make_temp_dir(e.base, cfg.b == backend::sqlite ? "sqlite" : "pg");
    std::string const url = cfg.b == backend::sqlite ? "sqlite:" + (dir / "usage.sqlite").string() : e.pg_url;
    std::shared_ptr<persistence::database> db = open_db(url);
    auto const d = db->kind();
    // A fresh schema (SQLite: a new file; PostgreSQL: an empty table).
    auto prepare = [d](soci::session& sql) {
        persistence::migrate(sql, d);
        if (d == persistence::dialect::postgresql) sql << "TRUNCATE ai_usage";
    };
    co_await db->run(std::move(prepare));
    std::shared_ptr<persistence::usage_log> log = open_log(dir / "usage-log");
    auto const wo = writer_options(cfg);
    auto writer = actors::spawn<actors::usage_writer>(e.ioc.get_executor(), log, db, wo);
    writer->schema_ready();
    writer->kick();

    auto const cap = std::chrono::seconds(e.max_seconds);
    double const cpu0 = cpu_seconds();
    auto const t0 = clock_type::now();
    auto st = make_state(writer.get(), cfg, e.next_tag++, t0 + cap);
    long running = cfg.producers;
    std::string spawn_error;
    asio::steady_timer all_done(ex, t0 + cap + 30s);  // the producers stop at the cap; a hang is fatal
    auto on_end = [&running, &all_done, &spawn_error](std::exception_ptr ep) {
        if (ep && spawn_error.empty()) spawn_error = "a producer threw";
        if (--running == 0) all_done.cancel();
    };
    for (long k = 0; k < cfg.producers; ++k) {
        asio::co_spawn(e.ioc.get_executor(), producer(*st), asio::bind_executor(ex, on_end));
    }
    auto waited = co_await all_done.async_wait(use_nothrow);
    (void)waited;
    if (running != 0) {
        std::fprintf(stderr, "usage_writer_bench: record() calls hang (%ld producers still running); abort\n", running);
        std::fflush(stderr);
        std::_Exit(1);
    }
    auto const t_records = clock_type::now();
    auto flushed = co_await writer->flush(cap);
    auto const t_end = clock_type::now();
    res.cpu_s = cpu_seconds() - cpu0;

    res.sent = std::min(st->next.load(), cfg.records);
    res.failed = st->failed.load();
    res.capped = st->capped.load();
    res.flushed = flushed.has_value();
    res.record_phase_s = seconds(t_records - t0);
    res.total_s = seconds(t_end - t0);
    if (!spawn_error.empty()) res.error = spawn_error;
    else if (!st->first_error.empty()) res.error = st->first_error;
    else if (!flushed) res.error = "flush(): " + flushed.error().message();
    res.lat.assign(st->lat.begin(), st->lat.begin() + res.sent);
    std::sort(res.lat.begin(), res.lat.end());

    auto stats = co_await writer->stats();
    if (stats) res.stats = *stats;
    auto count = [d](soci::session& sql) {
        std::optional<std::string> everyone;
        return persistence::count_usage(sql, d, everyone);
    };
    res.rows = co_await db->run(std::move(count));
    co_await writer->shutdown(5s);
    writer.reset();
    log.reset();
    db->close();
    db.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
    co_return res;
}

// ---- the log alone --------------------------------------------------------------------------------

struct log_figures {
    std::vector<std::int64_t> append, sync, checkpoint;  // ns, sorted
    std::vector<std::int64_t> append_syncing;            // append() while another thread runs sync() non-stop
    long concurrent_syncs = 0;
};

// One append(), then (every 10th time) a sync() and a checkpoint(), each timed alone.
log_figures measure_log(fs::path const& base, long appends) {
    fs::path const dir = make_temp_dir(base, "log");
    log_figures f;
    {
        auto log = open_log(dir / "usage-log");
        auto const ns = [](clock_type::duration d) {
            return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
        };
        for (long i = 0; i < appends; ++i) {
            persistence::log_item item{make_record(0xfeed, i)};
            auto const t0 = clock_type::now();
            log->append(item);
            auto const t1 = clock_type::now();
            f.append.push_back(ns(t1 - t0));
            if (i % 10 == 9) {
                auto const t2 = clock_type::now();
                log->sync();
                auto const t3 = clock_type::now();
                log->checkpoint(log->last_seq());
                auto const t4 = clock_type::now();
                f.sync.push_back(ns(t3 - t2));
                f.checkpoint.push_back(ns(t4 - t3));
            }
        }
    }
    // Does an fdatasync in flight hold up a write(2) to the same file? (The
    // writer's design assumes not: its sync runs on another thread.)
    {
        auto log = open_log(dir / "usage-log-concurrent");
        std::atomic<bool> stop{false};
        std::thread syncer([&] {
            std::uint64_t synced = 0;
            while (!stop.load()) {
                auto const last = log->last_seq();
                if (last == synced) {
                    std::this_thread::yield();
                    continue;
                }
                log->sync();  // an fdatasync of what was appended since the previous one
                synced = last;
                ++f.concurrent_syncs;
            }
        });
        for (long i = 0; i < appends; ++i) {
            persistence::log_item item{make_record(0xfeed, i)};
            auto const t0 = clock_type::now();
            log->append(item);
            auto const t1 = clock_type::now();
            f.append_syncing.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
        }
        stop.store(true);
        syncer.join();
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
    std::sort(f.append_syncing.begin(), f.append_syncing.end());
    std::sort(f.append.begin(), f.append.end());
    std::sort(f.sync.begin(), f.sync.end());
    std::sort(f.checkpoint.begin(), f.checkpoint.end());
    return f;
}

// ---- output ---------------------------------------------------------------------------------------

// Nearest rank over sorted samples, in microseconds.
double pct_us(std::vector<std::int64_t> const& s, double p) {
    if (s.empty()) return 0;
    auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(s.size())));
    rank = std::clamp<std::size_t>(rank, 1, s.size());
    return static_cast<double>(s[rank - 1]) / 1e3;
}

double max_us(std::vector<std::int64_t> const& s) { return s.empty() ? 0 : static_cast<double>(s.back()) / 1e3; }

void print_header_row() {
    std::printf("| backend | batch | producers | fsync_interval | records | end-to-end rec/s | record() phase rec/s "
                "| flush wait ms | record() p50 µs | p90 µs | p99 µs | max µs | batches | fdatasyncs | CPU µs/rec | rows |\n");
    std::printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
}

void print_row(run_result const& r) {
    double const n = static_cast<double>(r.sent);
    std::printf("| %s | %zu | %ld | %lld ms | %ld%s | %.0f | %.0f | %.1f | %.1f | %.1f | %.1f | %.1f | %llu | %llu | %.1f | %lld%s |\n",
                name(r.cfg.b), r.cfg.batch, r.cfg.producers, static_cast<long long>(r.cfg.fsync.count()), r.sent,
                r.capped ? " (capped)" : "", n / r.total_s, n / r.record_phase_s,
                (r.total_s - r.record_phase_s) * 1e3, pct_us(r.lat, 0.50), pct_us(r.lat, 0.90), pct_us(r.lat, 0.99),
                max_us(r.lat), static_cast<unsigned long long>(r.stats.batches),
                static_cast<unsigned long long>(r.stats.syncs), r.cpu_s * 1e6 / n, static_cast<long long>(r.rows),
                r.ok() ? "" : " FAILED");
}

void print_json(run_result const& r, char const* section) {
    double const n = static_cast<double>(r.sent);
    std::printf("{\"section\":\"%s\",\"backend\":\"%s\",\"batch\":%zu,\"producers\":%ld,\"fsync_interval_ms\":%lld,"
                "\"records\":%ld,\"capped\":%s,\"ok\":%s,\"end_to_end_per_s\":%.1f,\"record_phase_per_s\":%.1f,"
                "\"total_s\":%.6f,\"record_phase_s\":%.6f,\"cpu_s\":%.6f,\"record_us\":{\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f,"
                "\"max\":%.2f},\"batches\":%llu,\"syncs\":%llu,\"inserted\":%llu,\"write_failures\":%llu,"
                "\"log_failures\":%llu,\"rows\":%lld,\"error\":\"%s\"}\n",
                section, name(r.cfg.b), r.cfg.batch, r.cfg.producers, static_cast<long long>(r.cfg.fsync.count()),
                r.sent, r.capped ? "true" : "false", r.ok() ? "true" : "false", n / r.total_s, n / r.record_phase_s,
                r.total_s, r.record_phase_s, r.cpu_s, pct_us(r.lat, 0.50), pct_us(r.lat, 0.90), pct_us(r.lat, 0.99),
                max_us(r.lat), static_cast<unsigned long long>(r.stats.batches),
                static_cast<unsigned long long>(r.stats.syncs), static_cast<unsigned long long>(r.stats.inserted),
                static_cast<unsigned long long>(r.stats.write_failures),
                static_cast<unsigned long long>(r.stats.log_failures), static_cast<long long>(r.rows),
                r.ok() ? "" : "see stderr");
}

void print_log_row(char const* what, std::vector<std::int64_t> const& s) {
    std::printf("| %s | %zu | %.1f | %.1f | %.1f | %.1f |\n", what, s.size(), pct_us(s, 0.50), pct_us(s, 0.90),
                pct_us(s, 0.99), max_us(s));
}

}  // namespace

int main(int argc, char** argv) {
    args const a = parse(argc, argv);
    // The writer's log lines go to stderr, warnings and worse only: stdout is the table.
    auto logger = spdlog::stderr_logger_mt("bench");
    spdlog::set_default_logger(logger);
    spdlog::set_level(spdlog::level::warn);

    fs::path const base = a.dir;
    std::error_code ec;
    fs::create_directories(base, ec);
    std::string const fstype = fs_type(base);
    bool const use_pg = a.want_pg && !a.pg_url.empty();
    std::string pg_text;
    if (use_pg) {
        try {
            pg_text = describe_pg(a.pg_url);
        } catch (std::exception const& e) {
            std::fprintf(stderr, "usage_writer_bench: PostgreSQL at the given URL is unusable: %s\n", e.what());
            return 1;
        }
    }

    // The runs, in order.
    std::vector<backend> backends;
    if (a.want_sqlite) backends.push_back(backend::sqlite);
    if (use_pg) backends.push_back(backend::postgresql);
    std::vector<run_config> matrix, fsync_runs;
    for (auto b : backends) {
        for (long batch : a.batches) {
            for (long c : a.producers) {
                run_config r;
                r.b = b;
                r.batch = static_cast<std::size_t>(batch);
                r.producers = c;
                r.records = a.records;
                matrix.push_back(r);
            }
        }
        for (long c : a.producers) {
            for (auto fsync : {0ms, 5ms}) {
                run_config r;
                r.b = b;
                r.batch = 256;
                r.producers = c;
                r.records = a.records;
                r.fsync = fsync;
                fsync_runs.push_back(r);
            }
        }
    }

    // The log alone first (blocking, on this thread, before the io threads start).
    log_figures const lf = measure_log(base, std::min(a.records, 20'000L));

    asio::io_context ioc{2};
    bench_env env{ioc, base, a.pg_url, a.max_seconds};
    std::vector<run_result> matrix_results, fsync_results;
    bool finished = false;
    std::string fatal;
    auto strand = asio::make_strand(ioc);
    auto body = [&]() -> task<void> {
        // Warm-up, not reported: code and allocator faulted in, a first segment and database file made.
        run_config warm;
        warm.b = backends.empty() ? backend::sqlite : backends.front();
        warm.producers = 8;
        warm.records = std::min(a.records, 2'000L);
        auto w = co_await run_one(env, warm);
        (void)w;
        for (auto const& cfg : matrix) {
            auto r = co_await run_one(env, cfg);
            std::fprintf(stderr, "usage_writer_bench: %s batch %zu producers %ld fsync %lld ms: %ld records in %.3f s%s\n",
                         name(cfg.b), cfg.batch, cfg.producers, static_cast<long long>(cfg.fsync.count()), r.sent,
                         r.total_s, r.ok() ? "" : (" FAILED: " + r.error).c_str());
            matrix_results.push_back(std::move(r));
        }
        for (auto const& cfg : fsync_runs) {
            auto r = co_await run_one(env, cfg);
            std::fprintf(stderr, "usage_writer_bench: %s batch %zu producers %ld fsync %lld ms: %ld records in %.3f s%s\n",
                         name(cfg.b), cfg.batch, cfg.producers, static_cast<long long>(cfg.fsync.count()), r.sent,
                         r.total_s, r.ok() ? "" : (" FAILED: " + r.error).c_str());
            fsync_results.push_back(std::move(r));
        }
    };
    asio::co_spawn(strand, std::move(body), [&](std::exception_ptr e) {
        finished = true;
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (std::exception const& ex) {
                fatal = ex.what();
            }
        }
        ioc.stop();
    });
    // Watchdog: every run is bounded (cap + flush bound + slack); all of them together even more so.
    auto const runs = static_cast<long>(matrix.size() + fsync_runs.size() + 1);
    asio::steady_timer watchdog(ioc, std::chrono::seconds(runs * (2 * a.max_seconds + 60)));
    watchdog.async_wait([](boost::system::error_code wec) {
        if (!wec) {
            std::fprintf(stderr, "usage_writer_bench: did not finish in time; abort\n");
            std::fflush(stderr);
            std::_Exit(1);
        }
    });
    std::thread second([&ioc] { ioc.run(); });
    ioc.run();
    second.join();
    if (!finished || !fatal.empty()) {
        std::fprintf(stderr, "usage_writer_bench: %s\n", fatal.empty() ? "did not finish" : fatal.c_str());
        return 1;
    }

    bool all_ok = true;
    for (auto const& r : matrix_results) all_ok = all_ok && r.ok();
    for (auto const& r : fsync_results) all_ok = all_ok && r.ok();

    if (a.json) {
        for (auto const& r : matrix_results) print_json(r, "matrix");
        for (auto const& r : fsync_results) print_json(r, "fsync");
        std::printf("{\"section\":\"log\",\"append_us\":{\"p50\":%.2f,\"p99\":%.2f},\"sync_us\":{\"p50\":%.2f,"
                    "\"p99\":%.2f},\"checkpoint_us\":{\"p50\":%.2f,\"p99\":%.2f},\"append_while_syncing_us\":{\"p50\":%.2f,"
                    "\"p99\":%.2f,\"max\":%.2f}}\n",
                    pct_us(lf.append, 0.5), pct_us(lf.append, 0.99), pct_us(lf.sync, 0.5), pct_us(lf.sync, 0.99),
                    pct_us(lf.checkpoint, 0.5), pct_us(lf.checkpoint, 0.99), pct_us(lf.append_syncing, 0.5),
                    pct_us(lf.append_syncing, 0.99), max_us(lf.append_syncing));
        return all_ok ? 0 : 1;
    }

    utsname u{};
    ::uname(&u);
    std::printf("usage_writer_bench: %s, %u hardware threads, kernel %s, io_context with 2 threads\n",
                now_utc().c_str(), std::thread::hardware_concurrency(), u.release);
    std::printf("usage log and SQLite files under %s (%s)%s\n", base.c_str(), fstype.c_str(),
                fstype == "tmpfs" ? "  WARNING: tmpfs, fdatasync costs nothing here" : "");
    std::printf("SQLite %s (WAL, synchronous=FULL as the database opens it)\n", sqlite3_libversion());
    if (use_pg) std::printf("%s\n", pg_text.c_str());
    else if (a.want_pg) std::printf("PostgreSQL: skipped (no --pg URL and no PARLEY_BENCH_PG_URI)\n");
    std::printf("records per run %ld; writer defaults but batch_size and fsync_interval (flush_interval 200 ms, "
                "mailbox 4096, max_pending 100000)\n\n",
                a.records);

    std::printf("### Throughput and record() latency (fsync_interval 5 ms)\n\n");
    print_header_row();
    for (auto const& r : matrix_results) print_row(r);
    std::printf("\n### fsync_interval 0 vs 5 ms (batch 256)\n\n");
    print_header_row();
    for (auto const& r : fsync_results) print_row(r);
    std::printf("\n### The log alone (no actor; one thread; sync() and checkpoint() after every 10th append)\n\n");
    std::printf("| call | samples | p50 µs | p90 µs | p99 µs | max µs |\n| --- | ---: | ---: | ---: | ---: | ---: |\n");
    print_log_row("append() of one record (one write(2))", lf.append);
    print_log_row("sync() after 10 appends (fdatasync)", lf.sync);
    print_log_row("checkpoint() (write, fsync, rename, fsync dir)", lf.checkpoint);
    std::string const concurrent = "append() while another thread runs sync() non-stop (" +
                                   std::to_string(lf.concurrent_syncs) + " fdatasyncs meanwhile)";
    print_log_row(concurrent.c_str(), lf.append_syncing);
    if (!all_ok) {
        std::printf("\nFAILED: see stderr\n");
        return 1;
    }
    return 0;
}
