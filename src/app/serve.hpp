#pragma once
// `parley serve`: the long-running server process.
#include "net/http_server.hpp"

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
};

// Runs until SIGINT or SIGTERM; returns the process exit code.
int serve(serve_options const& options);

}  // namespace parley::app
