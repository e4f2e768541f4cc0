#pragma once
// A running openrouter-sim for integration tests, on a free port; SIGTERM at
// scope exit (the child_process destructor SIGKILLs by PID if that did not
// end it). Suites derive from it to add their own helpers.
#include "support/http_client.hpp"
#include "support/process.hpp"

#include <chrono>
#include <csignal>
#include <optional>
#include <string>
#include <vector>

namespace parley::test {

struct sim_process {
    child_process proc;
    unsigned short port;
    std::optional<http_client::tls_options> tls;

    explicit sim_process(std::vector<std::string> args = {}, std::optional<http_client::tls_options> tls_opts = {})
        : proc{bin_path("openrouter-sim"), with_port(std::move(args))},
          port{static_cast<unsigned short>(
              std::stoi(proc.wait_for_output(R"(openrouter-sim listening on https?://127\.0\.0\.1:(\d+))")))},
          tls{std::move(tls_opts)} {}

    ~sim_process() {
        if (!proc.wait(std::chrono::milliseconds(0))) {  // still running (never signal a reaped PID)
            proc.signal(SIGTERM);
            proc.wait(std::chrono::seconds(5));
        }
    }
    sim_process(sim_process const&) = delete;
    sim_process& operator=(sim_process const&) = delete;

    static std::vector<std::string> with_port(std::vector<std::string> args) {
        args.insert(args.begin(), {"--port", "0"});
        return args;
    }
};

}  // namespace parley::test
