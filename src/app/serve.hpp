#pragma once
// `parley serve`: the long-running server process.
#include "domain/config.hpp"
#include "net/http_server.hpp"

#include <optional>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace parley::app {

struct serve_options {
    net::server_options http;
    std::size_t threads = 0;  // 0: one per core
    std::chrono::milliseconds shutdown_grace{10'000};
    // Lines logged at start-up (settings with secrets redacted, notes).
    std::vector<std::pair<std::string, std::string>> summary;
    // Set: the accounting stack (database migrations, the usage log's
    // replay, writer, limiter) starts before the listener and stops after it.
    std::optional<domain::settings> accounting;
};

// Runs until SIGINT or SIGTERM; returns the process exit code (2: the
// accounting stack could not start, 1: the port could not be bound).
int serve(serve_options const& options);

}  // namespace parley::app
