#include "app/db_commands.hpp"

#include "app/logging.hpp"

#include "persistence/database.hpp"
#include "persistence/migrations.hpp"

#include <boost/asio/io_context.hpp>

#include <exception>
#include <ostream>

namespace parley::app {

int run_migrate(domain::settings const& s, std::ostream& out, std::ostream& err) {
    use_stderr_logging(s.log.level);
    std::shared_ptr<persistence::database> db;
    try {
        db = persistence::database::open({.url = s.database.url, .pool_size = 1});
    } catch (persistence::database_error const& e) {
        err << "parley migrate: " << e.what() << "\n";
        return 2;
    }
    asio::io_context ioc{1};
    int code = 0;
    asio::co_spawn(
        ioc,
        [&]() -> task<void> {
            auto const d = db->kind();
            try {
                auto work = [d](soci::session& sql) {
                    auto applied = persistence::migrate(sql, d);
                    return std::pair{applied, persistence::schema_version(sql, d)};
                };
                auto const [applied, version] = co_await db->run(std::move(work));
                for (int v : applied) {
                    out << "applied migration " << v << "\n";
                }
                out << (applied.empty() ? "schema up to date" : "schema now") << " at version " << version << " ("
                    << db->redacted_url() << ")\n";
            } catch (persistence::database_error const& e) {
                err << "parley migrate: " << e.what() << "\n";
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
