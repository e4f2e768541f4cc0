#include "app/db_commands.hpp"

#include "app/logging.hpp"
#include "app/usage_query.hpp"

#include "actors/usage_writer.hpp"
#include "app/accounting.hpp"
#include "domain/money.hpp"
#include "persistence/database.hpp"
#include "persistence/migrations.hpp"
#include "persistence/usage_log.hpp"
#include "persistence/usage_repository.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <chrono>
#include <exception>
#include <ostream>

namespace parley::app {

namespace json = boost::json;

namespace {

struct report_args {
    usage_query q;
    bool as_json = false;
};

std::optional<std::string> read_args(parsed_args const& a, report_args& r) {
    std::vector<std::pair<std::string, std::string>> params;
    for (auto const& [k, v] : a.command_flags) {
        if (k == "json") {
            r.as_json = true;
        } else {
            params.emplace_back(k, v);
        }
    }
    return read_usage_query(params, "--", r.q);
}

std::string micros_text(std::int64_t micros) { return domain::format_usd(domain::nano_usd{micros * 1000}); }

void print_table(std::ostream& out, std::string const& by, std::vector<persistence::usage_row> const& rows,
                 persistence::usage_row const& total) {
    std::vector<std::array<std::string, 6>> cells;
    cells.push_back({by, "requests", "input_tokens", "output_tokens", "cached_tokens", "cost_usd"});
    auto add = [&cells](persistence::usage_row const& r) {
        cells.push_back({r.key, std::to_string(r.requests), std::to_string(r.input_tokens),
                         std::to_string(r.output_tokens), std::to_string(r.cached_tokens), micros_text(r.cost_micros)});
    };
    for (auto const& r : rows) add(r);
    add(total);
    std::array<std::size_t, 6> width{};
    for (auto const& c : cells)
        for (std::size_t i = 0; i != 6; ++i) width[i] = std::max(width[i], c[i].size());
    for (auto const& c : cells) {
        std::string line = c[0] + std::string(width[0] - c[0].size(), ' ');
        for (std::size_t i = 1; i != 6; ++i) line += "  " + std::string(width[i] - c[i].size(), ' ') + c[i];
        out << line << "\n";
    }
}

// Writes what the usage log still holds (unless another process owns it).
task<void> replay_log(domain::settings const& s, std::shared_ptr<persistence::database> db, std::ostream& err) {
    std::shared_ptr<persistence::usage_log> log;
    try {
        log = persistence::usage_log::open({.dir = usage_log_dir(s), .segment_bytes = s.usage.segment_bytes});
    } catch (persistence::usage_log_error const& e) {
        err << "parley usage: note: the usage log was not replayed (" << e.what() << ")\n";
        co_return;
    }
    if (log->backlog() == 0) {
        co_return;
    }
    auto const backlog = log->backlog();
    actors::usage_writer_options wo;
    wo.batch_size = s.usage.batch_size;
    wo.max_pending = s.usage.max_pending;
    auto writer = actors::spawn<actors::usage_writer>(co_await asio::this_coro::executor, log, db, wo);
    writer->kick();
    auto flushed = co_await writer->flush(std::chrono::seconds{30});
    co_await writer->shutdown(std::chrono::seconds{1});
    if (flushed) {
        err << "parley usage: wrote " << backlog << " entries waiting in the usage log to the database\n";
    } else {
        err << "parley usage: note: " << backlog << " entries of the usage log could not be written ("
            << flushed.error().message() << ")\n";
    }
}

}  // namespace

int run_usage(parsed_args const& a, domain::settings const& s, std::ostream& out, std::ostream& err) {
    use_stderr_logging(s.log.level);
    report_args r;
    if (auto bad = read_args(a, r)) {
        err << "parley usage: " << *bad << "\n";
        return 2;
    }
    std::shared_ptr<persistence::database> db;
    try {
        db = persistence::database::open({.url = s.database.url, .pool_size = 1});
    } catch (persistence::database_error const& e) {
        err << "parley usage: " << e.what() << "\n";
        return 2;
    }
    asio::io_context ioc{1};
    int code = 0;
    asio::co_spawn(
        ioc,
        [&]() -> task<void> {
            auto const d = db->kind();
            try {
                auto migrate = [d](soci::session& sql) { return persistence::migrate(sql, d); };
                co_await db->run(std::move(migrate));
            } catch (persistence::database_error const& e) {
                err << "parley usage: " << e.what() << "\n";
                code = 1;
                co_return;
            }
            co_await replay_log(s, db, err);
            try {
                auto query = [d, f = r.q.filter](soci::session& sql) { return persistence::usage_report(sql, d, f); };
                auto rows = co_await db->run(std::move(query));
                if (r.as_json) {
                    out << json::serialize(usage_report_json(r.q, rows)) << "\n";
                } else {
                    print_table(out, r.q.by, rows, usage_total(rows));
                }
            } catch (persistence::database_error const& e) {
                err << "parley usage: " << e.what() << "\n";
                code = 1;
            }
        },
        [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);  // LCOV_EXCL_LINE: failures are caught above
        });
    ioc.run();
    db->close();
    return code;
}

}  // namespace parley::app
