#pragma once
// The `parley` command line: the command, its own flags, and settings flags.
#include "domain/config.hpp"

#include <iosfwd>
#include <string>
#include <vector>

namespace parley::app {

struct parsed_args {
    std::string command = "serve";        // serve | token | help | version
    std::optional<std::string> config;    // --config FILE
    domain::flag_list settings_flags;     // --listen X, --log-format json, ...
    domain::flag_list command_flags;      // the command's own: --user, --perm, ...
    std::vector<std::string> positional;  // anything after the command that is not a flag
};

// Splits argv (without argv[0]). "--name=value" and "--name value" both work;
// "--" ends the flags. Throws std::invalid_argument with a one-line message
// naming the bad argument.
parsed_args parse_args(std::vector<std::string> const& args);

// Runs the command line: writes normal output to `out`, errors (one line) to
// `err`, and returns the process exit code (0 ok, 1 failure, 2 bad usage or
// invalid setting). `env` looks up environment variables.
int run_cli(std::vector<std::string> const& args, domain::env_lookup const& env, std::ostream& out,
            std::ostream& err);

}  // namespace parley::app
