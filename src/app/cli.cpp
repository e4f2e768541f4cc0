#include "app/cli.hpp"

#include "app/chat.hpp"
#include "app/db_commands.hpp"
#include "app/logging.hpp"
#include "app/serve.hpp"
#include "domain/jwt.hpp"

#include <spdlog/spdlog.h>

#include <charconv>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <set>
#include <sstream>
#include <stdexcept>

#ifndef PARLEY_VERSION
#define PARLEY_VERSION "0.1.0"
#endif

namespace parley::app {
namespace {

std::set<std::string, std::less<>> const commands{"serve", "token", "chat", "migrate", "usage", "help", "version"};
// Flags that belong to a command rather than to the settings.
std::set<std::string, std::less<>> const token_flags{"user", "name", "perm", "lang", "ttl"};
// `chat` flags; --model and --language are settings flags. The first three take no value.
std::set<std::string, std::less<>> const chat_flags{"stream", "json", "raw", "user", "perm", "context", "conversation"};
std::set<std::string, std::less<>> const usage_flags{"by", "since", "until", "user", "json"};
std::set<std::string, std::less<>> const boolean_flags{"stream", "json", "raw"};

std::string const default_config = "conf/parley.json";

void print_help(std::ostream& out) {
    out << "Usage: parley [COMMAND] [OPTIONS]\n"
           "\n"
           "Parley: an AI service layer in front of OpenRouter (streaming, tools, limits,\n"
           "budgets, exact cost accounting).\n"
           "\n"
           "Commands:\n"
           "  serve        run the server (the default)\n"
           "  token        print a JWT signed with the configured secret, for trying things:\n"
           "                 --user ID (required)  --name NAME  --perm P (repeatable)\n"
           "                 --lang es|en  --ttl SECONDS (default 3600, at most 31536000)\n"
           "  chat TEXT    one turn against the configured upstream (OPENROUTER_BASE_URL,\n"
           "               OPENROUTER_API_KEY, AI_MODEL): --stream (print tokens as they\n"
           "               arrive)  --json (one JSON object)  --raw (no system prompt, no tools)\n"
           "               --user ID  --perm P (repeatable)  --model M  --language es|en\n"
           "               The call is admitted by the rate window and budgets first and\n"
           "               recorded in the database (DATABASE_URL) with its exact cost.\n"
           "  migrate      apply the database migrations (also done at start-up)\n"
           "  usage        usage and cost from the database: --by day|model|user\n"
           "               --since YYYY-MM-DD  --until YYYY-MM-DD (UTC, both included)\n"
           "               --user ID  --json\n"
           "  help         this text\n"
           "  version      the version\n"
           "\n"
           "Options:\n"
           "  --config FILE   settings file (default: $PARLEY_CONFIG, else " << default_config
        << " when it\n"
           "                  exists, else the built-in defaults)\n"
           "  --help, -h      this text\n"
           "\n"
           "Settings (flag, environment variable, default; flags override the\n"
           "environment, which overrides the file):\n";
    for (auto const& line : domain::settings_help()) out << "  " << line << "\n";
    out << "\nExit codes: 0 ok, 1 failure, 2 invalid usage or setting.\n";
}

std::optional<std::string> read_text(std::filesystem::path const& p) {
    std::ifstream in{p, std::ios::binary};
    if (!in) return std::nullopt;
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::vector<std::string> all_values(domain::flag_list const& flags, std::string_view name) {
    std::vector<std::string> v;
    for (auto const& [k, val] : flags)
        if (k == name) v.push_back(val);
    return v;
}

std::optional<std::string> last_value(domain::flag_list const& flags, std::string_view name) {
    std::optional<std::string> v;
    for (auto const& [k, val] : flags)
        if (k == name) v = val;
    return v;
}

int run_token(parsed_args const& a, domain::settings const& s, std::ostream& out, std::ostream& err) {
    if (!s.auth.jwt_secret) {
        err << "parley token: PARLEY_JWT_SECRET is not set; set it (at least 32 bytes) to mint tokens\n";
        return 2;
    }
    auto user = last_value(a.command_flags, "user");
    if (!user || user->empty() || user->size() > max_jwt_sub_size) {
        err << "parley token: --user ID is required (1 to " << max_jwt_sub_size << " bytes)\n";
        return 2;
    }
    std::int64_t ttl = 3600;
    if (auto t = last_value(a.command_flags, "ttl")) {
        auto [p, ec] = std::from_chars(t->data(), t->data() + t->size(), ttl);
        if (ec != std::errc{} || p != t->data() + t->size() || ttl < 1 || ttl > 31'536'000) {
            err << "parley token: invalid --ttl=" << *t << ": expected whole seconds from 1 to 31536000\n";
            return 2;
        }
    }
    jwt_claims c;
    c.sub = *user;
    auto now = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    c.iat = now;
    c.exp = now + ttl;
    c.name = last_value(a.command_flags, "name");
    if (auto l = last_value(a.command_flags, "lang")) {
        if (*l != "es" && *l != "en") {
            err << "parley token: invalid --lang=" << *l << ": expected es or en\n";
            return 2;
        }
        c.lang = *l;
    }
    c.perms = all_values(a.command_flags, "perm");
    for (auto const& p : c.perms) {
        if (p.empty()) {
            err << "parley token: invalid --perm: a permission name cannot be empty\n";
            return 2;
        }
    }
    out << mint_jwt(c, *s.auth.jwt_secret) << "\n";
    return 0;
}

serve_options to_serve_options(domain::settings const& s) {
    serve_options o;
    o.http.host = s.listen.host == "localhost" ? "127.0.0.1" : s.listen.host;
    o.http.port = s.listen.port;
    o.http.body_limit = s.server.body_limit_bytes;
    o.http.header_limit = s.server.header_limit_bytes;
    o.http.read_timeout = s.server.read_timeout;
    o.http.idle_timeout = s.server.idle_timeout;
    o.http.max_connections = s.server.max_connections;
    o.threads = s.server.threads;
    o.shutdown_grace = s.server.shutdown_grace;
    o.summary = domain::loggable(s);
    o.accounting = s;
    return o;
}

char const* level_text(domain::log_level l) {
    switch (l) {
    case domain::log_level::trace: return "trace";
    case domain::log_level::debug: return "debug";
    case domain::log_level::info: return "info";
    case domain::log_level::warn: return "warn";
    case domain::log_level::error: break;
    }
    return "err";
}

}  // namespace

parsed_args parse_args(std::vector<std::string> const& args) {
    parsed_args a;
    bool command_seen = false;
    bool flags_done = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string const& arg = args[i];
        if (flags_done || arg.size() < 2 || arg[0] != '-') {
            if (!command_seen && !flags_done && commands.contains(arg)) {
                a.command = arg;
                command_seen = true;
            } else if (!command_seen && !flags_done) {
                throw std::invalid_argument("unknown command '" + arg + "' (try parley --help)");
            } else {
                a.positional.push_back(arg);
            }
            continue;
        }
        if (arg == "--") {
            flags_done = true;
            continue;
        }
        if (arg == "-h" || arg == "--help") {
            a.command = "help";
            command_seen = true;
            continue;
        }
        if (arg.rfind("--", 0) != 0) throw std::invalid_argument("unknown option '" + arg + "' (try parley --help)");
        std::string name = arg.substr(2);
        std::optional<std::string> value;
        if (auto eq = name.find('='); eq != std::string::npos) {
            value = name.substr(eq + 1);
            name.resize(eq);
        }
        bool is_command_flag = (a.command == "token" && token_flags.contains(name)) ||
                               (a.command == "chat" && chat_flags.contains(name)) ||
                               (a.command == "usage" && usage_flags.contains(name));
        bool is_boolean = is_command_flag && boolean_flags.contains(name);
        if (is_boolean && value) throw std::invalid_argument("option '--" + name + "' takes no value");
        if (is_boolean) value = "true";
        if (name != "config" && !is_command_flag && !domain::is_setting_flag(name))
            throw std::invalid_argument("unknown option '--" + name + "' (try parley --help)");
        if (!value) {
            if (i + 1 >= args.size()) throw std::invalid_argument("option '--" + name + "' needs a value");
            value = args[++i];
        }
        if (name == "config") a.config = *value;
        else if (is_command_flag) a.command_flags.emplace_back(name, *value);
        else a.settings_flags.emplace_back(name, *value);
    }
    return a;
}

int run_cli(std::vector<std::string> const& args, domain::env_lookup const& env, std::ostream& out,
            std::ostream& err) {
    parsed_args a;
    try {
        a = parse_args(args);
    } catch (std::invalid_argument const& e) {
        err << "parley: " << e.what() << "\n";
        return 2;
    }
    if (a.command == "help") {
        print_help(out);
        return 0;
    }
    if (a.command == "version") {
        out << "parley " << PARLEY_VERSION << "\n";
        return 0;
    }
    if (!a.positional.empty() && a.command != "chat") {
        err << "parley: unexpected argument '" << a.positional.front() << "' (try parley --help)\n";
        return 2;
    }

    // The settings file: --config, else $PARLEY_CONFIG, else conf/parley.json
    // when present (running from a checkout), else built-in defaults.
    std::string config_text;
    std::string config_source = "built-in defaults";
    std::optional<std::string> path = a.config;
    if (!path) {
        if (auto p = env("PARLEY_CONFIG"); p && !p->empty()) path = *p;
    }
    if (path) {
        auto text = read_text(*path);
        if (!text) {
            err << "parley: cannot read the settings file " << *path << "\n";
            return 2;
        }
        config_text = std::move(*text);
        config_source = *path;
    } else if (auto text = read_text(default_config)) {
        config_text = std::move(*text);
        config_source = default_config;
    }

    auto loaded = domain::load_settings(config_text, env, a.settings_flags);
    if (!loaded) {
        err << "parley: " << loaded.error().message() << "\n";
        return 2;
    }
    domain::settings const& s = *loaded;

    if (a.command == "token") return run_token(a, s, out, err);
    if (a.command == "chat") return run_chat(a, s, out, err);
    if (a.command == "migrate") return run_migrate(s, out, err);
    if (a.command == "usage") return run_usage(a, s, out, err);

    // serve
    if (auto missing = domain::require_for_serve(s)) {
        err << "parley: " << missing->message() << "\n";
        return 2;
    }
    setup_logging(s.log.format, level_text(s.log.level));
    spdlog::info("parley {} starting (settings from {})", PARLEY_VERSION, config_source);
    if (!s.openrouter.api_key)
        spdlog::warn("no OPENROUTER_API_KEY: upstream calls to {} will be refused", s.openrouter.base_url);
    return serve(to_serve_options(s));
}

}  // namespace parley::app
