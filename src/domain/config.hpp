#pragma once
// The configuration model: every setting Parley has, its default, where it
// can be set and how it is validated (ARCHITECTURE §7).
//
// One table of setting descriptors drives everything: the JSON file
// (conf/parley.json, comments and trailing commas allowed), the environment,
// the command-line flags, the --help lines and the loggable summary. Later
// sources win: built-in default < file < environment < flag.
//
// Pure: the caller reads the file, looks the environment up and splits the
// command line; this code only sees text.
#include "domain/money.hpp"
#include "domain/pricing.hpp"

#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace parley::domain {

enum class log_level { trace, debug, info, warn, error };
enum class log_format { text, json };
enum class limits_backend { memory, postgres };

// "127.0.0.1:8080", "[::1]:0", "localhost:8080". host is an IPv4 or IPv6
// literal (without the brackets) or "localhost"; port 0 asks for a free port.
struct host_port {
    std::string host;
    std::uint16_t port = 0;
    bool operator==(host_port const&) const = default;
};

// Typed settings. The member initializers ARE the built-in defaults (the
// table in config.cpp and conf/parley.json must agree; a test checks it).
// Optional values are std::nullopt when unset; strings documented as
// "empty = off" are plain strings.
struct settings {
    host_port listen{"127.0.0.1", 8080};

    struct log_settings {
        log_level level = log_level::info;
        log_format format = log_format::text;
        bool operator==(log_settings const&) const = default;
    } log;

    struct openrouter_settings {
        std::string base_url = "https://openrouter.ai/api/v1";  // no trailing '/'
        std::optional<std::string> api_key;                      // secret
        std::optional<std::string> ca_file;                      // unset: system CA store
        std::string referer;                                     // HTTP-Referer; empty: not sent
        std::string title = "Parley";                            // X-OpenRouter-Title; empty: not sent
        std::chrono::milliseconds connect_timeout{10'000};
        std::chrono::milliseconds first_byte_timeout{60'000};
        std::chrono::milliseconds chunk_gap_timeout{30'000};
        std::chrono::milliseconds total_timeout{300'000};
        std::size_t pool_size = 64;
        bool operator==(openrouter_settings const&) const = default;
    } openrouter;

    struct ai_settings {
        std::string model = "anthropic/claude-3.5-sonnet";
        std::vector<std::string> fallback_models;
        int max_tokens = 4096;
        double temperature = 0.7;  // rounded to 3 decimals when parsed
        // Models /v1/chat/completions callers may ask for; empty: model and fallback_models.
        std::vector<std::string> allowed_models;
        bool operator==(ai_settings const&) const = default;
    } ai;

    struct limits_settings {
        int rate_per_user_per_hour = 50;
        nano_usd cost_daily{10 * nanos_per_usd};
        std::optional<nano_usd> cost_daily_per_user;  // unset: no per-user budget
        limits_backend backend = limits_backend::memory;
        std::string exempt_permission = "unlimited";  // users with it skip the hourly window; empty: nobody
        nano_usd lease{50'000'000};                    // postgres backend: a slice of the daily budget
        std::chrono::milliseconds lease_ttl{30'000};  // postgres backend: a silent process's lease expires
        bool operator==(limits_settings const&) const = default;
    } limits;

    struct retry_settings {
        int max_retries = 3;  // after the first try
        std::chrono::milliseconds initial_backoff{500};
        std::chrono::milliseconds max_backoff{8'000};
        std::chrono::milliseconds max_retry_after{60'000};  // cap on an honoured Retry-After
        bool operator==(retry_settings const&) const = default;
    } retry;

    struct database_settings {
        std::string url = "sqlite:var/parley.db";  // "sqlite:<path>" or postgres[ql]://...
        std::size_t pool_size = 4;                 // sessions and worker threads (SQLite: always 1)
        bool operator==(database_settings const&) const = default;
    } database;

    struct pricing_settings {
        price_table models = default_price_table();  // USD per token, by model id
        bool refresh = false;  // at start-up, add OpenRouter's /api/v1/models prices (configured ones win)
        bool operator==(pricing_settings const&) const = default;
    } pricing;

    // The usage write-ahead log and the writer that moves it into the database.
    struct usage_settings {
        std::string log_dir;                          // empty: <data_dir>/usage-log
        std::size_t batch_size = 256;                 // rows per database transaction
        std::chrono::milliseconds flush_interval{200};  // longest a row waits in the log before a write is tried
        std::chrono::milliseconds fsync_interval{5};  // appends are fdatasync'ed at most this long after their write
        std::uint64_t segment_bytes = 16 * 1024 * 1024;  // log segment size before a new one starts
        std::size_t max_pending = 100'000;            // rows held in memory while the database is down (the rest wait in the log)
        std::chrono::milliseconds correction_delay{5'000};  // first /generation lookup for an estimated cost
        int correction_attempts = 5;                  // lookups before an estimate is left as it is
        bool operator==(usage_settings const&) const = default;
    } usage;

    struct auth_settings {
        std::optional<std::string> jwt_secret;     // secret; >= 32 bytes when set
        std::vector<std::string> api_key_hashes;   // SHA-256, 64 lowercase hex digits each
        bool operator==(auth_settings const&) const = default;
    } auth;

    std::string language = "es";  // "es" or "en"

    struct nats_settings {
        std::optional<std::string> url;  // unset: the NATS adapter is off
        std::string subject = "parley.chat";
        std::string queue_group = "parley";
        std::optional<std::string> user;      // with password; or both in the URL
        std::optional<std::string> password;  // secret
        std::optional<std::string> token;     // secret; instead of user and password
        std::chrono::milliseconds request_timeout{120'000};  // a chat request's turn, at most
        bool operator==(nats_settings const&) const = default;
    } nats;

    struct server_settings {
        std::size_t max_connections = 10'000;
        std::size_t threads = 0;  // I/O threads; 0: one per core
        std::size_t body_limit_bytes = 1'048'576;
        std::size_t header_limit_bytes = 16'384;
        std::chrono::milliseconds read_timeout{30'000};
        std::chrono::milliseconds idle_timeout{60'000};
        std::chrono::milliseconds shutdown_grace{10'000};
        std::optional<std::string> tls_cert_file;  // PEM chain; set with tls_key_file: the listener speaks TLS
        std::optional<std::string> tls_key_file;   // PEM private key
        bool dev_tokens = false;  // GET /v1/dev/token mints a token (the simulator only; never in production)
        bool operator==(server_settings const&) const = default;
    } server;

    struct tools_settings {
        int max_rounds = 5;
        int max_calls_per_round = 16;  // calls of one answer beyond it are refused, not run
        std::string file = "conf/tools.json";  // the tool registry; empty: no tools
        bool operator==(tools_settings const&) const = default;
    } tools;

    // The assistant's turn (issue #5): prompts, fallbacks, history, input limits.
    struct assistant_settings {
        std::string prompts_dir = "conf/prompts";           // system.es.txt and system.en.txt
        std::string fallbacks_file = "conf/fallbacks.json";  // empty: no fallback answers
        std::size_t history_tokens = 8'000;   // estimated tokens of history sent with a turn
        std::size_t max_message_chars = 8'000;  // longest user message, in characters
        std::size_t max_context_bytes = 16'384;  // largest `context` object, as JSON text
        bool operator==(assistant_settings const&) const = default;
    } assistant;

    // The upstream circuit breaker.
    struct circuit_settings {
        int failure_threshold = 5;                   // consecutive failed calls that open it
        std::chrono::milliseconds open_for{30'000};  // how long it stays open before a probe
        bool operator==(circuit_settings const&) const = default;
    } circuit;

    std::string data_dir = "var";

    bool operator==(settings const&) const = default;
};

// What is wrong with one setting. `setting` names it the way the operator
// set it: the JSON path ("ai.max_tokens"), the environment variable
// ("AI_MAX_TOKENS") or the flag ("--max-tokens"); empty for the file as a
// whole. `value` is printable and one line: secrets are "(redacted)", URL
// passwords are masked, control characters escaped, long values cut; it is
// empty when the value is deliberately not shown (unknown keys and flags,
// whose values might be secrets). `allowed` says what would be accepted.
struct setting_error {
    std::string setting;
    std::string value;
    std::string allowed;

    // One line, e.g.
    //   invalid setting AI_MAX_TOKENS=abc: expected a whole number from 1 to 1000000
    //   invalid setting ai.max_token: expected a known setting name; did you mean ai.max_tokens?
    //   invalid configuration file at line 3, column 5: expected JSON (...): syntax error
    std::string message() const;

    bool operator==(setting_error const&) const = default;
};

// Thrown by result<settings, setting_error>::value() on an error.
class setting_exception : public std::runtime_error {
public:
    explicit setting_exception(setting_error e) : std::runtime_error(e.message()), error_(std::move(e)) {}
    setting_error const& error() const noexcept { return error_; }

private:
    setting_error error_;
};

// Found by argument-dependent lookup from boost::system::result::value().
[[noreturn]] void throw_exception_from_error(setting_error const& e, boost::source_location const& loc);

using env_lookup = std::function<std::optional<std::string>(std::string_view)>;
using flag_list = std::vector<std::pair<std::string, std::string>>;

// Builds the settings: built-in defaults, then `json_text` (the file's
// contents; empty or all whitespace = no file), then the environment through
// `env` (an unset or EMPTY variable is ignored, so `VAR=` in a compose file
// does not clobber the file), then `flags` in order (the last of a repeated
// flag wins). A flag name may be given with or without its leading "--"
// ("listen" or "--listen"); the value is separate (the caller splits
// "--listen=x" and "--listen x"). An empty flag value is passed through as
// such: it unsets an optional setting and is invalid for a required one.
// In the file and in flags, null (file) or "" means unset for optional
// settings. Lists are JSON arrays in the file and comma-separated in the
// environment and flags. Unknown file keys, unknown flags, values of the
// wrong JSON type and invalid values are errors; the first one is returned.
// Secrets have no flag (a command line is visible to every local user).
boost::system::result<settings, setting_error> load_settings(std::string_view json_text, env_lookup const& env,
                                                              flag_list const& flags);

// Checks what `parley serve` needs beyond a valid configuration: a JWT
// secret (its length is already checked by load_settings).
std::optional<setting_error> require_for_serve(settings const& s);

// True when `name` (with or without "--") is a settings flag, so a CLI can
// tell settings flags from its own command flags.
bool is_setting_flag(std::string_view name);

// Static facts about one setting, in table order.
struct setting_info {
    std::string path;           // JSON path, "openrouter.base_url"
    std::string env;            // environment variable, "OPENROUTER_BASE_URL"
    std::string flag;           // "--openrouter-base-url"; empty: no flag (secrets)
    std::string default_value;  // as shown in --help ("(unset)", "(empty)" included)
    std::string help;           // one line
    bool secret = false;
};
std::vector<setting_info> setting_infos();

// One line per setting for --help: flag (or "(no flag)"), environment
// variable, default and help text, in aligned columns.
std::vector<std::string> settings_help();

// (JSON path, value) per setting, in table order, safe to log: secrets are
// "(set)" or "(unset)", passwords inside URLs are "(redacted)".
std::vector<std::pair<std::string, std::string>> loggable(settings const& s);

}  // namespace parley::domain
