#pragma once
// Wiring of the assistant (issue #5) for the commands that run turns: the
// prompt templates, the tool registry and the fallback catalog read and
// checked at start-up, the circuit breaker, the tool runner and the
// conversation store, bundled as the services every SessionActor shares.
//
// Files: assistant.prompts_dir (system.es.txt, system.en.txt), tools.file
// and assistant.fallbacks_file, relative to the working directory. When a
// setting still has its default value and the file is not there (a binary
// run outside the checkout), the copy of that conf/ file compiled into the
// binary is used; a path set by the operator must exist. An empty
// tools.file or fallbacks_file means none.
#include "actors/session.hpp"
#include "app/accounting.hpp"
#include "domain/config.hpp"
#include "domain/fallbacks.hpp"
#include "domain/prompt.hpp"
#include "domain/tools.hpp"

#include <memory>
#include <optional>
#include <string_view>

namespace parley::net {
class nats_bus;
}

namespace parley::app {

// The text of a conf/ file ("conf/tools.json") as it was at build time.
std::optional<std::string_view> embedded_conf(std::string_view path);

struct assistant_files {
    domain::prompt_templates prompts;
    domain::tool_registry tools;
    domain::fallback_catalog fallbacks;
};

// Throws startup_error (one line naming the setting and the file).
assistant_files load_assistant_files(domain::settings const& s);

struct assistant_stack {
    actors::assistant_services services;

    // Stops the circuit actor (sessions must be shut down first).
    task<void> shutdown();
};

// `bus` (may be null: the NATS adapter is off) serves tools of type nats.
assistant_stack start_assistant(asio::any_io_executor ex, domain::settings const& s, assistant_files files,
                                std::shared_ptr<actors::openrouter_client> client, accounting_stack const& accounting,
                                std::shared_ptr<net::nats_bus> bus = nullptr);

}  // namespace parley::app
