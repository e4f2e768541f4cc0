#pragma once
// spdlog set-up: one line per event, as text or as JSON objects.
#include "domain/config.hpp"

#include <string_view>

namespace parley::app {

// Installs the default logger (stdout). `level` is one of
// trace|debug|info|warn|error; it has been validated by the configuration.
void setup_logging(domain::log_format format, std::string_view level);

// For the one-shot commands (chat, usage, migrate), whose stdout is their
// output: logs go to stderr, warnings and up unless `level` is debug or trace.
void use_stderr_logging(domain::log_level level);

}  // namespace parley::app
