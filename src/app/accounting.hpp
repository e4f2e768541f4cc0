#pragma once
// Wiring of the accounting stack (issue #4) for the commands that call the
// upstream (`parley serve`, `parley chat`): the database (migrated), the
// usage log (replayed), the usage writer, the rate limiter (loaded with
// today's spend and the last hour's calls) and the accountant.
#include "actors/accountant.hpp"
#include "actors/shared_limits.hpp"
#include "actors/openrouter_client.hpp"
#include "actors/rate_limiter.hpp"
#include "actors/usage_writer.hpp"
#include "domain/config.hpp"
#include "persistence/database.hpp"
#include "persistence/usage_log.hpp"

#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace parley::app {

// A start-up failure the operator must fix (bad URL, a log in use by
// another process, an unwritable directory): one line, exit code 2.
class startup_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct accounting_stack {
    std::shared_ptr<persistence::database> db;
    std::shared_ptr<persistence::usage_log> log;
    std::shared_ptr<actors::usage_writer> writer;
    std::shared_ptr<actors::rate_limiter> limiter;
    std::shared_ptr<actors::accountant> accountant;
    std::shared_ptr<actors::shared_limits> shared;  // limits.backend = postgres only
    bool database_reachable = false;  // migrations ran at start-up

    // Corrections cancelled, the shared lease given back, a last flush (bounded by flush_timeout), the
    // writer and the limiter stopped, the database closed.
    task<void> shutdown(std::chrono::milliseconds flush_timeout);
};

std::filesystem::path usage_log_dir(domain::settings const& s);

// Throws startup_error. A database that cannot be reached is not an error:
// rows wait in the usage log and the limits are loaded from the log alone
// (logged as a warning). `only_user`: load the rate window of that user only.
task<accounting_stack> start_accounting(domain::settings const& s, std::shared_ptr<actors::openrouter_client> client,
                                        std::optional<std::string> only_user);

}  // namespace parley::app
