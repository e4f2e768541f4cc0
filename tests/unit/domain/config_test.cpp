#include "domain/config.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

namespace bdata = boost::unit_test::data;
namespace json = boost::json;
using namespace parley::domain;
using namespace std::chrono_literals;

namespace {

using env_map = std::map<std::string, std::string, std::less<>>;

env_lookup env_of(env_map vars) {
    return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
        if (auto it = vars.find(name); it != vars.end()) {
            return it->second;
        }
        return std::nullopt;
    };
}

boost::system::result<settings, setting_error> load(std::string_view file, env_map env = {}, flag_list flags = {}) {
    return load_settings(file, env_of(std::move(env)), flags);
}

boost::system::result<settings, setting_error> load_flags(flag_list flags) { return load("", {}, std::move(flags)); }

// The one-line message of a load that must fail ("" if it succeeded).
std::string error_of(boost::system::result<settings, setting_error> const& r) {
    BOOST_TEST(!r.has_value());
    return r ? std::string{} : r.error().message();
}

std::string read_file(std::string const& path) {
    std::ifstream in{path};
    BOOST_REQUIRE_MESSAGE(in, "cannot open " << path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string conf_file() { return read_file(std::string{PARLEY_SOURCE_DIR} + "/conf/parley.json"); }

std::string logged(settings const& s, std::string const& path) {
    for (auto const& [key, value] : loggable(s)) {
        if (key == path) {
            return value;
        }
    }
    BOOST_FAIL("no loggable entry " << path);
    return {};
}

std::string path_of_flag(std::string const& flag) {
    for (auto const& info : setting_infos()) {
        if (info.flag == flag) {
            return info.path;
        }
    }
    BOOST_FAIL("no setting with flag " << flag);
    return {};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(config_suite)

// ------------------------------------------------------------ defaults

BOOST_AUTO_TEST_CASE(every_setting_has_its_documented_default) {
    auto const r = load("");
    BOOST_REQUIRE(r.has_value());
    settings const& s = *r;
    BOOST_TEST((s == settings{}));
    BOOST_TEST(s.listen.host == "127.0.0.1");
    BOOST_TEST(s.listen.port == 8080);
    BOOST_TEST((s.log.level == log_level::info));
    BOOST_TEST((s.log.format == log_format::text));
    BOOST_TEST(s.openrouter.base_url == "https://openrouter.ai/api/v1");
    BOOST_TEST(!s.openrouter.api_key.has_value());
    BOOST_TEST(!s.openrouter.ca_file.has_value());
    BOOST_TEST(s.openrouter.referer == "");
    BOOST_TEST(s.openrouter.title == "Parley");
    BOOST_TEST(s.openrouter.connect_timeout.count() == 10'000);
    BOOST_TEST(s.openrouter.first_byte_timeout.count() == 60'000);
    BOOST_TEST(s.openrouter.chunk_gap_timeout.count() == 30'000);
    BOOST_TEST(s.openrouter.total_timeout.count() == 300'000);
    BOOST_TEST(s.openrouter.pool_size == 64u);
    BOOST_TEST(s.ai.model == "anthropic/claude-3.5-sonnet");
    BOOST_TEST(s.ai.fallback_models.empty());
    BOOST_TEST(s.ai.max_tokens == 4096);
    BOOST_TEST(s.ai.temperature == 0.7);
    BOOST_TEST(s.limits.rate_per_user_per_hour == 50);
    BOOST_TEST(s.limits.cost_daily.nanos == 10'000'000'000);
    BOOST_TEST(!s.limits.cost_daily_per_user.has_value());
    BOOST_TEST((s.limits.backend == limits_backend::memory));
    BOOST_TEST(s.retry.max_retries == 3);
    BOOST_TEST(s.retry.initial_backoff.count() == 500);
    BOOST_TEST(s.retry.max_backoff.count() == 8'000);
    BOOST_TEST(s.retry.max_retry_after.count() == 60'000);
    BOOST_TEST(s.database.url == "sqlite:var/parley.db");
    BOOST_TEST(!s.auth.jwt_secret.has_value());
    BOOST_TEST(s.auth.api_key_hashes.empty());
    BOOST_TEST(s.language == "es");
    BOOST_TEST(!s.nats.url.has_value());
    BOOST_TEST(s.nats.subject == "parley.chat");
    BOOST_TEST(s.nats.queue_group == "parley");
    BOOST_TEST(s.server.max_connections == 10'000u);
    BOOST_TEST(s.server.body_limit_bytes == 1'048'576u);
    BOOST_TEST(s.server.header_limit_bytes == 16'384u);
    BOOST_TEST(s.server.read_timeout.count() == 30'000);
    BOOST_TEST(s.server.idle_timeout.count() == 60'000);
    BOOST_TEST(s.server.shutdown_grace.count() == 10'000);
    BOOST_TEST(s.tools.max_rounds == 5);
    BOOST_TEST(s.data_dir == "var");
}

BOOST_AUTO_TEST_CASE(setting_infos_show_defaults_and_names) {
    std::map<std::string, setting_info> by_path;
    for (auto const& info : setting_infos()) {
        by_path[info.path] = info;
    }
    BOOST_TEST(by_path.size() == 72u);
    BOOST_TEST(by_path["listen"].default_value == "127.0.0.1:8080");
    BOOST_TEST(by_path["listen"].env == "PARLEY_LISTEN");
    BOOST_TEST(by_path["listen"].flag == "--listen");
    BOOST_TEST(by_path["ai.temperature"].default_value == "0.7");
    BOOST_TEST(by_path["ai.fallback_models"].default_value == "(empty)");
    BOOST_TEST(by_path["limits.cost_daily_usd"].default_value == "10.00");
    BOOST_TEST(by_path["limits.cost_daily_per_user_usd"].default_value == "(unset)");
    BOOST_TEST(by_path["limits.backend"].default_value == "memory");
    BOOST_TEST(by_path["log.level"].default_value == "info");
    BOOST_TEST(by_path["openrouter.referer"].default_value == "(empty)");
    BOOST_TEST(by_path["openrouter.api_key"].default_value == "(unset)");
    BOOST_TEST(by_path["openrouter.api_key"].secret);
    BOOST_TEST(by_path["openrouter.api_key"].flag == "");
    BOOST_TEST(by_path["auth.jwt_secret"].secret);
    BOOST_TEST(by_path["auth.jwt_secret"].flag == "");
    BOOST_TEST(by_path["server.shutdown_grace_ms"].default_value == "10000");
}

BOOST_AUTO_TEST_CASE(architecture_environment_variables_are_used_verbatim) {
    std::set<std::string> envs;
    for (auto const& info : setting_infos()) {
        envs.insert(info.env);
    }
    for (auto const* name : {"OPENROUTER_API_KEY", "OPENROUTER_BASE_URL", "AI_MODEL", "AI_FALLBACK_MODELS",
                             "AI_MAX_TOKENS", "AI_TEMPERATURE", "AI_RATE_LIMIT_PER_USER", "AI_COST_LIMIT_DAILY",
                             "AI_COST_LIMIT_DAILY_PER_USER", "DATABASE_URL", "PARLEY_LISTEN", "PARLEY_JWT_SECRET",
                             "PARLEY_LANGUAGE", "NATS_URL", "PARLEY_LIMITS_BACKEND"}) {
        BOOST_TEST_CONTEXT(name) { BOOST_TEST(envs.count(name) == 1u); }
    }
}

BOOST_AUTO_TEST_CASE(paths_variables_and_flags_are_unique) {
    std::set<std::string> paths;
    std::set<std::string> envs;
    std::set<std::string> flags;
    std::size_t with_flag = 0;
    auto const infos = setting_infos();
    for (auto const& info : infos) {
        BOOST_TEST_CONTEXT(info.path) {
            BOOST_TEST(!info.help.empty());
            BOOST_TEST(!info.env.empty());
            BOOST_TEST(paths.insert(info.path).second);
            BOOST_TEST(envs.insert(info.env).second);
            if (!info.flag.empty()) {
                ++with_flag;
                BOOST_TEST(info.flag.starts_with("--"));
                BOOST_TEST(flags.insert(info.flag).second);
                BOOST_TEST(is_setting_flag(info.flag));
            }
        }
    }
    BOOST_TEST(with_flag == infos.size() - 4);  // the four secrets have none (JWT secret, API key, NATS password and token)
}

// ------------------------------------------------------------ conf/parley.json

BOOST_AUTO_TEST_CASE(conf_file_parses_and_equals_the_built_in_defaults) {
    auto const r = load(conf_file());
    BOOST_REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message()));
    BOOST_TEST((*r == settings{}));
}

BOOST_AUTO_TEST_CASE(conf_file_lists_every_setting_with_its_variable) {
    auto const text = conf_file();
    json::parse_options options;
    options.allow_comments = true;
    options.allow_trailing_commas = true;
    auto const root = json::parse(text, {}, options);
    for (auto const& info : setting_infos()) {
        BOOST_TEST_CONTEXT(info.path) {
            json::value const* v = &root;
            std::string_view rest = info.path;
            while (v) {
                auto const dot = rest.find('.');
                v = v->as_object().if_contains(rest.substr(0, dot));
                if (dot == std::string_view::npos) {
                    break;
                }
                rest.remove_prefix(dot + 1);
            }
            BOOST_TEST(v != nullptr);
            BOOST_TEST(text.find(info.env) != std::string::npos);
        }
    }
}

// ------------------------------------------------------------ sources and precedence

BOOST_AUTO_TEST_CASE(file_then_environment_then_flags) {
    std::string const file = R"({"ai": {"max_tokens": 100, "model": "openai/gpt-4o"}})";
    env_map const env{{"AI_MAX_TOKENS", "200"}, {"AI_TEMPERATURE", "1.5"}};
    flag_list const flags{{"--max-tokens", "300"}};

    BOOST_TEST(load(file)->ai.max_tokens == 100);
    BOOST_TEST(load(file, env)->ai.max_tokens == 200);
    BOOST_TEST(load(file, env, flags)->ai.max_tokens == 300);
    BOOST_TEST(load("", env, flags)->ai.max_tokens == 300);
    BOOST_TEST(load("", {}, flags)->ai.max_tokens == 300);

    auto const all = load(file, env, flags);
    BOOST_TEST(all->ai.model == "openai/gpt-4o");  // file only
    BOOST_TEST(all->ai.temperature == 1.5);         // environment only
}

BOOST_AUTO_TEST_CASE(precedence_holds_for_lists_money_and_optionals) {
    std::string const file =
        R"({"ai": {"fallback_models": ["a/b"]}, "limits": {"cost_daily_per_user_usd": "1.00"}, "nats": {"url": "nats://file:4222"}})";
    auto const from_file = load(file);
    BOOST_TEST(from_file->ai.fallback_models == std::vector<std::string>{"a/b"});
    BOOST_TEST((from_file->limits.cost_daily_per_user == nano_usd{1'000'000'000}));
    BOOST_TEST(*from_file->nats.url == "nats://file:4222");

    env_map const env{{"AI_FALLBACK_MODELS", "c/d, e/f:free"},
                      {"AI_COST_LIMIT_DAILY_PER_USER", "0.50"},
                      {"NATS_URL", "nats://env:4222"}};
    auto const from_env = load(file, env);
    BOOST_TEST(from_env->ai.fallback_models == (std::vector<std::string>{"c/d", "e/f:free"}));
    BOOST_TEST((from_env->limits.cost_daily_per_user == nano_usd{500'000'000}));
    BOOST_TEST(*from_env->nats.url == "nats://env:4222");

    auto const from_flags = load(file, env, {{"--fallback-models", ""}, {"--cost-limit-daily-per-user", ""}, {"--nats-url", ""}});
    BOOST_TEST(from_flags->ai.fallback_models.empty());
    BOOST_TEST(!from_flags->limits.cost_daily_per_user.has_value());
    BOOST_TEST(!from_flags->nats.url.has_value());
}

BOOST_AUTO_TEST_CASE(empty_environment_variable_is_ignored) {
    auto const r = load(R"({"ai": {"model": "openai/gpt-4o"}, "nats": {"url": "nats://h:1"}})",
                        {{"AI_MODEL", ""}, {"NATS_URL", ""}});
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->ai.model == "openai/gpt-4o");
    BOOST_TEST(*r->nats.url == "nats://h:1");
}

BOOST_AUTO_TEST_CASE(missing_environment_lookup_means_no_environment) {
    auto const r = load_settings("", env_lookup{}, {});
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST((*r == settings{}));
}

BOOST_AUTO_TEST_CASE(flags_may_omit_their_dashes_and_the_last_one_wins) {
    auto const r = load_flags({{"listen", "127.0.0.1:1"}, {"--listen", "127.0.0.1:2"}, {"-max-tokens", "7"}});
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->listen.port == 2);
    BOOST_TEST(r->ai.max_tokens == 7);
    BOOST_TEST(is_setting_flag("listen"));
    BOOST_TEST(is_setting_flag("--model"));
    BOOST_TEST(!is_setting_flag("--json"));
    BOOST_TEST(!is_setting_flag("--jwt-secret"));
}

BOOST_AUTO_TEST_CASE(empty_flag_is_invalid_for_a_required_setting) {
    BOOST_TEST(error_of(load_flags({{"--model", ""}})) ==
               "invalid setting --model=\"\": expected an OpenRouter model id such as anthropic/claude-3.5-sonnet "
               "(author/slug, optional :variant)");
}

BOOST_AUTO_TEST_CASE(file_may_use_comments_and_trailing_commas) {
    auto const r = load(R"(
        // a comment before the object
        {
          /* block comment */ "listen": "0.0.0.0:9000", // trailing comment
          "ai": {"fallback_models": ["a/b", "c/d",],},
        }
    )");
    BOOST_REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message()));
    BOOST_TEST(r->listen.host == "0.0.0.0");
    BOOST_TEST(r->listen.port == 9000);
    BOOST_TEST(r->ai.fallback_models.size() == 2u);
}

BOOST_AUTO_TEST_CASE(blank_file_is_no_file) {
    BOOST_TEST((load(" \n\t ").value() == settings{}));
    BOOST_TEST((load("{}").value() == settings{}));
}

// ------------------------------------------------------------ validators

BOOST_AUTO_TEST_CASE(whole_numbers_accept_their_range_only) {
    struct row {
        char const* flag;
        std::int64_t lo;
        std::int64_t hi;
        char const* unit;
        flag_list extra;  // settings that other rules tie this one to
    };
    flag_list const total_max{{"--openrouter-total-timeout-ms", "3600000"}};
    row const rows[] = {
        {"--openrouter-connect-timeout-ms", 1, 3'600'000, "milliseconds", total_max},
        {"--openrouter-first-byte-timeout-ms", 1, 3'600'000, "milliseconds", total_max},
        {"--openrouter-chunk-gap-timeout-ms", 1, 3'600'000, "milliseconds", total_max},
        {"--openrouter-total-timeout-ms", 1, 3'600'000, "milliseconds",
         {{"--openrouter-connect-timeout-ms", "1"},
          {"--openrouter-first-byte-timeout-ms", "1"},
          {"--openrouter-chunk-gap-timeout-ms", "1"}}},
        {"--openrouter-pool-size", 1, 4096, "", {}},
        {"--max-tokens", 1, 1'000'000, "", {}},
        {"--rate-limit-per-user", 1, 1'000'000, "", {}},
        {"--max-retries", 0, 10, "", {}},
        {"--retry-initial-backoff-ms", 1, 3'600'000, "milliseconds", {{"--retry-max-backoff-ms", "3600000"}}},
        {"--retry-max-backoff-ms", 1, 3'600'000, "milliseconds", {{"--retry-initial-backoff-ms", "1"}}},
        {"--server-max-connections", 1, 1'000'000, "", {}},
        {"--server-body-limit-bytes", 1024, 1 << 30, "bytes", {}},
        {"--server-header-limit-bytes", 1024, 1 << 20, "bytes", {}},
        {"--server-read-timeout-ms", 1, 3'600'000, "milliseconds", {}},
        {"--server-idle-timeout-ms", 1, 3'600'000, "milliseconds", {}},
        {"--server-shutdown-grace-ms", 0, 3'600'000, "milliseconds", {}},
        {"--tools-max-rounds", 1, 20, "", {}},
    };
    for (auto const& r : rows) {
        auto const path = path_of_flag(r.flag);
        std::string const unit = *r.unit ? std::string{" of "} + r.unit : "";
        std::string const allowed =
            "a whole number" + unit + " from " + std::to_string(r.lo) + " to " + std::to_string(r.hi);
        for (std::int64_t good : {r.lo, r.hi}) {
            BOOST_TEST_CONTEXT(r.flag << "=" << good) {
                auto flags = r.extra;
                flags.emplace_back(r.flag, std::to_string(good));
                auto const loaded = load_flags(flags);
                BOOST_REQUIRE_MESSAGE(loaded.has_value(), (loaded ? "" : loaded.error().message()));
                BOOST_TEST(logged(*loaded, path) == std::to_string(good));
            }
        }
        std::vector<std::string> bad{std::to_string(r.lo - 1), std::to_string(r.hi + 1), "abc", "+5", " 5",
                                     "5.0", "1e3", "", "99999999999999999999"};
        for (auto const& value : bad) {
            BOOST_TEST_CONTEXT(r.flag << "=" << value) {
                auto flags = r.extra;
                flags.emplace_back(r.flag, value);
                auto const shown = value.empty() ? std::string{"\"\""} : value;
                BOOST_TEST(error_of(load_flags(flags)) ==
                           "invalid setting " + std::string{r.flag} + "=" + shown + ": expected " + allowed);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(text_settings_accept_and_reject) {
    struct row {
        std::string flag;
        std::string value;
        bool ok;
    };
    row const rows[] = {
        {"--listen", "127.0.0.1:8080", true},
        {"--listen", "0.0.0.0:0", true},
        {"--listen", "localhost:65535", true},
        {"--listen", "[::1]:8080", true},
        {"--listen", "[::]:1", true},
        {"--listen", "127.0.0.1:65536", false},
        {"--listen", "127.0.0.1:", false},
        {"--listen", "127.0.0.1", false},
        {"--listen", "127.0.0.1:80x", false},
        {"--listen", "127.0.0.1:000080", false},
        {"--listen", "256.0.0.1:80", false},
        {"--listen", "example.com:80", false},
        {"--listen", "::1:8080", false},
        {"--listen", "[::1]8080", false},
        {"--listen", "[nope]:8080", false},
        {"--listen", ":8080", false},
        {"--log-level", "trace", true},
        {"--log-level", "debug", true},
        {"--log-level", "warn", true},
        {"--log-level", "error", true},
        {"--log-level", "warning", false},
        {"--log-level", "INFO", false},
        {"--log-format", "json", true},
        {"--log-format", "xml", false},
        {"--openrouter-base-url", "http://127.0.0.1:9999/api/v1", true},
        {"--openrouter-base-url", "HTTPS://openrouter.ai/api/v1", true},
        {"--openrouter-base-url", "ftp://openrouter.ai", false},
        {"--openrouter-base-url", "openrouter.ai/api/v1", false},
        {"--openrouter-base-url", "https://", false},
        {"--openrouter-base-url", "https:///path", false},
        {"--openrouter-base-url", "https://a b", false},
        {"--openrouter-ca-file", "/etc/ssl/ca.pem", true},
        {"--openrouter-ca-file", "bad\npath", false},
        {"--openrouter-referer", "https://example.com/app", true},
        {"--openrouter-referer", "example.com", false},
        {"--openrouter-title", "", true},
        {"--openrouter-title", "My App 2", true},
        {"--openrouter-title", "evil\r\nX-Injected: 1", false},
        {"--openrouter-title", "caf\xc3\xa9", false},
        {"--model", "openai/gpt-4o", true},
        {"--model", "meta-llama/llama-3.1-8b-instruct:free", true},
        {"--model", "~anthropic/claude-sonnet-latest", true},
        {"--model", "openrouter/auto", true},
        {"--model", "gpt-4o", false},
        {"--model", "a/b/c", false},
        {"--model", "/b", false},
        {"--model", "a/", false},
        {"--model", "a/b:", false},
        {"--model", "a/b:c:d", false},
        {"--model", "a b/c", false},
        {"--model", "~/c", false},
        {"--fallback-models", "a/b,c/d", true},
        {"--fallback-models", " a/b , ,c/d ", true},
        {"--fallback-models", "a/b,c", false},
        {"--temperature", "0", true},
        {"--temperature", "2", true},
        {"--temperature", "2.0", true},
        {"--temperature", "0.15", true},
        {"--temperature", "2.01", false},
        {"--temperature", "-0.1", false},
        {"--temperature", "1e0", false},
        {"--temperature", ".5", false},
        {"--temperature", "5.", false},
        {"--temperature", "abc", false},
        {"--temperature", "nan", false},
        {"--cost-limit-daily", "0", true},
        {"--cost-limit-daily", "123.456789012", true},
        {"--cost-limit-daily", "-1", false},
        {"--cost-limit-daily", "1e3", false},
        {"--cost-limit-daily", "", false},
        {"--cost-limit-daily-per-user", "0.25", true},
        {"--cost-limit-daily-per-user", "x", false},
        {"--limits-backend", "memory", true},
        {"--limits-backend", "redis", false},
        {"--database-url", "sqlite:var/parley.db", true},
        {"--database-url", "sqlite::memory:", true},
        {"--database-url", "postgresql://parley:pw@db:5432/parley?sslmode=require", true},
        {"--database-url", "postgres://localhost/parley", true},
        {"--database-url", "postgresql://", true},
        {"--database-url", "sqlite:", false},
        {"--database-url", "mysql://h/db", false},
        {"--database-url", "postgresql://a b/db", false},
        {"--database-url", "var/parley.db", false},
        {"--api-key-hashes", std::string(64, 'a'), true},
        {"--api-key-hashes", std::string(63, 'a'), false},
        {"--api-key-hashes", std::string(65, 'a'), false},
        {"--api-key-hashes", std::string(64, 'g'), false},
        {"--language", "en", true},
        {"--language", "es", true},
        {"--language", "fr", false},
        {"--language", "EN", false},
        {"--nats-url", "nats://127.0.0.1:4222", true},
        {"--nats-url", "tls://nats.example:4222", true},
        {"--nats-url", "nats://a:4222, nats://b:4222", true},
        {"--nats-url", "http://a:4222", false},
        {"--nats-url", "nats://", false},
        {"--nats-url", "nats://a:4222,", false},
        {"--nats-subject", "parley.chat", true},
        {"--nats-subject", "parley.*", true},
        {"--nats-subject", "parley..chat", false},
        {"--nats-subject", ".parley", false},
        {"--nats-subject", "parley chat", false},
        {"--nats-subject", "", false},
        {"--nats-queue-group", "workers", true},
        {"--nats-queue-group", "two words", false},
        {"--data-dir", "/var/lib/parley", true},
        {"--data-dir", "", false},
    };
    for (auto const& [flag, value, ok] : rows) {
        BOOST_TEST_CONTEXT(flag << "=" << value) {
            auto const r = load_flags({{flag, value}});
            BOOST_TEST(r.has_value() == ok);
            if (!r) {
                BOOST_TEST(r.error().setting == flag);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(values_are_normalized) {
    auto const r = load_flags({{"--openrouter-base-url", "https://openrouter.ai/api/v1/"},
                               {"--api-key-hashes", std::string(64, 'A') + "," + std::string(64, 'b')},
                               {"--temperature", "0.12345"},
                               {"--listen", "[::1]:0"}});
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->openrouter.base_url == "https://openrouter.ai/api/v1");
    BOOST_TEST(r->auth.api_key_hashes == (std::vector<std::string>{std::string(64, 'a'), std::string(64, 'b')}));
    BOOST_TEST(r->ai.temperature == 0.123);
    BOOST_TEST(r->listen.host == "::1");
    BOOST_TEST(logged(*r, "listen") == "[::1]:0");
    BOOST_TEST(logged(*r, "ai.temperature") == "0.123");
    BOOST_TEST(load_flags({{"--openrouter-base-url", "http://sim:1"}})->openrouter.base_url == "http://sim:1");
    BOOST_TEST(load_flags({{"--temperature", "2"}}).value().ai.temperature == 2.0);
    BOOST_TEST(logged(load_flags({{"--temperature", "2"}}).value(), "ai.temperature") == "2");
}

BOOST_AUTO_TEST_CASE(file_values_use_json_types) {
    auto const r = load(R"({
        "listen": "127.0.0.1:0",
        "ai": {"max_tokens": 4096.0, "temperature": 1, "fallback_models": ["x/y"]},
        "limits": {"cost_daily_usd": "0.5", "cost_daily_per_user_usd": "", "backend": "postgres"},
        "database": {"url": "postgresql://db/parley"},
        "openrouter": {"api_key": "sk-or-v1-0123", "ca_file": null, "pool_size": 1},
        "auth": {"jwt_secret": "0123456789abcdef0123456789abcdef"}
    })");
    BOOST_REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message()));
    BOOST_TEST(r->ai.max_tokens == 4096);
    BOOST_TEST(r->ai.temperature == 1.0);
    BOOST_TEST(r->limits.cost_daily.nanos == 500'000'000);
    BOOST_TEST(!r->limits.cost_daily_per_user.has_value());
    BOOST_TEST((r->limits.backend == limits_backend::postgres));
    BOOST_TEST(*r->openrouter.api_key == "sk-or-v1-0123");
    BOOST_TEST(r->auth.jwt_secret->size() == 32u);
}

BOOST_AUTO_TEST_CASE(wrong_json_types_are_errors) {
    struct row {
        char const* file;
        char const* message;
    } const rows[] = {
        {R"({"ai": {"max_tokens": "4096"}})",
         "invalid setting ai.max_tokens=\"4096\": expected a whole number from 1 to 1000000, as a JSON number"},
        {R"({"ai": {"max_tokens": 4096.5}})",
         "invalid setting ai.max_tokens=4.0965E3: expected a whole number from 1 to 1000000"},
        {R"({"ai": {"max_tokens": 1e30}})",
         "invalid setting ai.max_tokens=1E30: expected a whole number from 1 to 1000000"},
        {R"({"ai": {"max_tokens": 18446744073709551615}})",
         "invalid setting ai.max_tokens=18446744073709551615: expected a whole number from 1 to 1000000"},
        {R"({"ai": {"max_tokens": -1}})",
         "invalid setting ai.max_tokens=-1: expected a whole number from 1 to 1000000"},
        {R"({"ai": {"temperature": "0.7"}})",
         "invalid setting ai.temperature=\"0.7\": expected a decimal number from 0 to 2 such as 0.7 (no exponent), "
         "as a JSON number"},
        {R"({"ai": {"temperature": 18446744073709551615}})",
         "invalid setting ai.temperature=18446744073709551615: expected a decimal number from 0 to 2 such as 0.7 "
         "(no exponent)"},
        {R"({"limits": {"cost_daily_usd": 10}})",
         "invalid setting limits.cost_daily_usd=10: expected an amount of US dollars such as \"10.00\" (digits, up "
         "to 9 decimals, no sign or exponent), as a JSON string (money never passes through floating point)"},
        {R"({"limits": {"cost_daily_per_user_usd": 1.5}})",
         "invalid setting limits.cost_daily_per_user_usd=1.5E0: expected an amount of US dollars such as \"10.00\" "
         "(digits, up to 9 decimals, no sign or exponent), or empty for none, as null or a JSON string (money "
         "never passes through floating point)"},
        {R"({"ai": {"fallback_models": "a/b"}})",
         "invalid setting ai.fallback_models=\"a/b\": expected a comma-separated list (a JSON array in the file) of "
         "OpenRouter model ids such as anthropic/claude-3.5-sonnet (author/slug, optional :variant), as a JSON "
         "array of strings"},
        {R"({"ai": {"fallback_models": ["a/b", 3]}})",
         "invalid setting ai.fallback_models=[\"a/b\",3]: expected a comma-separated list (a JSON array in the "
         "file) of OpenRouter model ids such as anthropic/claude-3.5-sonnet (author/slug, optional :variant), as "
         "a JSON array of strings"},
        {R"({"ai": {"fallback_models": ["a/b", "nope"]}})",
         "invalid setting ai.fallback_models=[\"a/b\",\"nope\"]: expected a comma-separated list (a JSON array in "
         "the file) of OpenRouter model ids such as anthropic/claude-3.5-sonnet (author/slug, optional "
         ":variant)"},
        {R"({"listen": 8080})",
         "invalid setting listen=8080: expected host:port with an IPv4 address, [IPv6] address or localhost and a "
         "port from 0 to 65535, as a JSON string"},
        {R"({"log": {"level": true}})",
         "invalid setting log.level=true: expected one of trace, debug, info, warn, error, as a JSON string"},
        {R"({"nats": {"url": 5}})",
         "invalid setting nats.url=5: expected nats://host:port or tls://host:port URLs separated by commas, or "
         "empty for none, as null or a JSON string"},
        {R"({"openrouter": {"api_key": 12345}})",
         "invalid setting openrouter.api_key=(redacted): expected an API key without spaces or control characters, "
         "or empty for none, as null or a JSON string"},
        {R"({"openrouter": {"api_key": "has space"}})",
         "invalid setting openrouter.api_key=(redacted, 9 bytes): expected an API key without spaces or control "
         "characters, or empty for none"},
    };
    for (auto const& r : rows) {
        BOOST_TEST_CONTEXT(r.file) { BOOST_TEST(error_of(load(r.file)) == r.message); }
    }
}

// ------------------------------------------------------------ error messages

BOOST_AUTO_TEST_CASE(error_message_names_setting_value_and_allowed) {
    BOOST_TEST(error_of(load("", {{"AI_MAX_TOKENS", "abc"}})) ==
               "invalid setting AI_MAX_TOKENS=abc: expected a whole number from 1 to 1000000");
    BOOST_TEST(error_of(load("", {{"PARLEY_LANGUAGE", "fr"}})) ==
               "invalid setting PARLEY_LANGUAGE=fr: expected one of es, en");
    BOOST_TEST(error_of(load_flags({{"--log-level", "loud"}})) ==
               "invalid setting --log-level=loud: expected one of trace, debug, info, warn, error");
    BOOST_TEST(error_of(load(R"({"limits": {"backend": "redis"}})")) ==
               "invalid setting limits.backend=\"redis\": expected one of memory, postgres");
    BOOST_TEST(error_of(load("", {{"AI_COST_LIMIT_DAILY", "-5"}})) ==
               "invalid setting AI_COST_LIMIT_DAILY=-5: expected an amount of US dollars such as \"10.00\" (digits, up "
               "to 9 decimals, no sign or exponent)");
}

BOOST_AUTO_TEST_CASE(first_error_wins_file_before_environment_before_flags) {
    auto const r = load(R"({"ai": {"max_tokens": 0}})", {{"AI_MODEL", "bad"}}, {{"--listen", "bad"}});
    BOOST_TEST(r.error().setting == "ai.max_tokens");
    auto const r2 = load("", {{"AI_MODEL", "bad"}}, {{"--listen", "bad"}});
    BOOST_TEST(r2.error().setting == "AI_MODEL");
}

BOOST_AUTO_TEST_CASE(error_value_is_one_printable_line) {
    auto const e = load("", {{"AI_MODEL", "a\nb\tc\x01"}}).error();
    BOOST_TEST(e.value == "a\\nb\\tc\\x01");
    auto const long_value = std::string(500, 'x');
    auto const e2 = load("", {{"AI_MODEL", long_value}}).error();
    BOOST_TEST(e2.value == std::string(120, 'x') + "...");
    BOOST_TEST(e2.message().find('\n') == std::string::npos);
}

BOOST_AUTO_TEST_CASE(syntax_error_names_line_and_column) {
    BOOST_TEST(error_of(load("{\n  \"listen\": x}")) ==
               "invalid configuration file at line 2, column 13: expected JSON, comments and trailing commas "
               "allowed (syntax error)");
    BOOST_TEST(error_of(load("{} {}")) ==
               "invalid configuration file at line 1, column 4: expected JSON, comments and trailing commas allowed "
               "(extra data)");
    BOOST_TEST(error_of(load("// nothing but a comment\n")).starts_with("invalid configuration file at line 2, column 1"));
}

BOOST_AUTO_TEST_CASE(top_level_and_sections_must_be_objects) {
    BOOST_TEST(error_of(load("[1, 2]")) == "invalid configuration file: expected a JSON object at the top level");
    BOOST_TEST(error_of(load(R"({"openrouter": "sk-or-secret"})")) ==
               "invalid setting openrouter: expected a JSON object holding the openrouter.* settings");
}

BOOST_AUTO_TEST_CASE(unknown_keys_are_errors_with_a_suggestion) {
    BOOST_TEST(error_of(load(R"({"ai": {"max_token": 1}})")) ==
               "invalid setting ai.max_token: expected a known setting name; did you mean ai.max_tokens?");
    BOOST_TEST(error_of(load(R"({"openroutr": {"api_key": "sk-or-secret"}})")) ==
               "invalid setting openroutr: expected a known setting name; did you mean openrouter?");
    BOOST_TEST(error_of(load(R"({"model": "a/b"})")) ==
               "invalid setting model: expected a known setting name; did you mean ai.model?");
    BOOST_TEST(error_of(load(R"({"completely_unrelated": 1})")) ==
               "invalid setting completely_unrelated: expected a known setting name (parley --help lists them)");
    // A mistyped secret's value is never shown.
    auto const e = load(R"({"openrouter": {"apikey": "sk-or-secret"}})").error();
    BOOST_TEST(e.message().find("sk-or-secret") == std::string::npos);
    BOOST_TEST(e.message() == "invalid setting openrouter.apikey: expected a known setting name; did you mean openrouter.api_key?");
}

BOOST_AUTO_TEST_CASE(unknown_flags_are_errors_with_a_suggestion) {
    BOOST_TEST(error_of(load_flags({{"--max-token", "5"}})) ==
               "invalid setting --max-token: expected a known flag; did you mean --max-tokens?");
    BOOST_TEST(error_of(load_flags({{"--frobnicate", "1"}})) ==
               "invalid setting --frobnicate: expected a known flag (parley --help lists them)");
    BOOST_TEST(error_of(load_flags({{"--listen=127.0.0.1:1", ""}})) ==
               "invalid setting --listen: expected a flag name without \"=value\" (the caller splits --name=value)");
    BOOST_TEST(error_of(load_flags({{"--password=s3cr3t", ""}})).find("s3cr3t") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(secrets_have_no_flag_and_say_where_to_set_them) {
    BOOST_TEST(error_of(load_flags({{"jwt-secret", "s3cr3t"}})) ==
               "invalid setting --jwt-secret: expected a known flag; auth.jwt_secret is a secret and has no flag "
               "(other local users can read command lines): set PARLEY_JWT_SECRET");
    BOOST_TEST(error_of(load_flags({{"--openrouter-api-key", "sk"}})) ==
               "invalid setting --openrouter-api-key: expected a known flag; openrouter.api_key is a secret and has "
               "no flag (other local users can read command lines): set OPENROUTER_API_KEY");
}

BOOST_AUTO_TEST_CASE(settings_that_depend_on_each_other) {
    BOOST_TEST(error_of(load_flags({{"--retry-initial-backoff-ms", "9000"}})) ==
               "invalid setting retry.max_backoff_ms=8000: expected a whole number of milliseconds from "
               "retry.initial_backoff_ms (9000) to 3600000");
    BOOST_TEST(error_of(load("", {{"PARLEY_RETRY_MAX_BACKOFF_MS", "100"}})) ==
               "invalid setting PARLEY_RETRY_MAX_BACKOFF_MS=100: expected a whole number of milliseconds from "
               "retry.initial_backoff_ms (500) to 3600000");
    BOOST_TEST(error_of(load_flags({{"--openrouter-total-timeout-ms", "20000"}})) ==
               "invalid setting openrouter.first_byte_timeout_ms=60000: expected a whole number of milliseconds "
               "from 1 to openrouter.total_timeout_ms (20000)");
    BOOST_TEST(error_of(load_flags({{"--openrouter-total-timeout-ms", "5000"}})) ==
               "invalid setting openrouter.connect_timeout_ms=10000: expected a whole number of milliseconds from "
               "1 to openrouter.total_timeout_ms (5000)");
    BOOST_TEST(error_of(load_flags({{"--openrouter-total-timeout-ms", "29999"},
                                    {"--openrouter-first-byte-timeout-ms", "1"}})) ==
               "invalid setting openrouter.chunk_gap_timeout_ms=30000: expected a whole number of milliseconds "
               "from 1 to openrouter.total_timeout_ms (29999)");
    BOOST_TEST(error_of(load("", {{"PARLEY_LIMITS_BACKEND", "postgres"}})) ==
               "invalid setting PARLEY_LIMITS_BACKEND=postgres: expected memory, or postgres with a postgresql:// "
               "database.url");
    BOOST_TEST(load("", {{"PARLEY_LIMITS_BACKEND", "postgres"}, {"DATABASE_URL", "postgres://db/p"}}).has_value());
    BOOST_TEST(error_of(load("", {{"AI_ALLOWED_MODELS", "openai/gpt-4o"}})) ==
               "invalid setting AI_ALLOWED_MODELS=openai/gpt-4o: expected a list of model ids that includes "
               "ai.model (anthropic/claude-3.5-sonnet)");
    BOOST_TEST(load("", {{"AI_ALLOWED_MODELS", "openai/gpt-4o,anthropic/claude-3.5-sonnet"}}).has_value());
    BOOST_TEST(error_of(load("", {{"PARLEY_DEV_TOKENS", "true"}})).starts_with(
        "invalid setting PARLEY_DEV_TOKENS=true: expected false unless openrouter.base_url is on this machine"));
    for (std::string url : {"http://127.0.0.1:9/api/v1", "http://localhost:9", "http://[::1]:9/api/v1"}) {
        BOOST_TEST(load("", {{"PARLEY_DEV_TOKENS", "true"}, {"OPENROUTER_BASE_URL", url}}).has_value(), url);
    }
    BOOST_TEST(error_of(load("", {{"PARLEY_TLS_CERT_FILE", "/c.pem"}})) ==
               "invalid setting server.tls_key_file=(unset): expected a file path: server.tls_cert_file and "
               "server.tls_key_file are set together");
}

BOOST_AUTO_TEST_CASE(value_throws_a_setting_exception) {
    auto const r = load("", {{"AI_MAX_TOKENS", "0"}});
    try {
        (void)r.value();
        BOOST_FAIL("value() did not throw");
    } catch (setting_exception const& e) {
        BOOST_TEST(e.error().setting == "AI_MAX_TOKENS");
        BOOST_TEST(std::string{e.what()} == "invalid setting AI_MAX_TOKENS=0: expected a whole number from 1 to 1000000");
    }
}

// ------------------------------------------------------------ secrets and serving

BOOST_AUTO_TEST_CASE(serving_requires_a_jwt_secret) {
    auto const without = load("").value();
    auto const e = require_for_serve(without);
    BOOST_REQUIRE(e.has_value());
    BOOST_TEST(e->message() ==
               "invalid setting PARLEY_JWT_SECRET=(unset): expected a secret of at least 32 bytes (or "
               "auth.jwt_secret in the file): parley serve needs it to verify bearer tokens");
    auto const with = load("", {{"PARLEY_JWT_SECRET", std::string(32, 'k')}}).value();
    BOOST_TEST(!require_for_serve(with).has_value());
}

BOOST_AUTO_TEST_CASE(short_jwt_secret_is_rejected_without_showing_it) {
    BOOST_TEST(error_of(load("", {{"PARLEY_JWT_SECRET", "tooshort"}})) ==
               "invalid setting PARLEY_JWT_SECRET=(redacted, 8 bytes): expected a secret of at least 32 bytes, or "
               "empty for none");
    BOOST_TEST(error_of(load(R"({"auth": {"jwt_secret": "tooshort"}})")) ==
               "invalid setting auth.jwt_secret=(redacted, 8 bytes): expected a secret of at least 32 bytes, or empty "
               "for none");
    BOOST_TEST(error_of(load("", {{"OPENROUTER_API_KEY", "sk or"}})) ==
               "invalid setting OPENROUTER_API_KEY=(redacted, 5 bytes): expected an API key without spaces or control "
               "characters, or empty for none");
}

BOOST_AUTO_TEST_CASE(loggable_redacts_secrets_and_url_passwords) {
    std::string const api_key = "sk-or-v1-0123456789abcdef";
    std::string const jwt = "jwt-secret-0123456789-0123456789-xyz";
    auto const s = load("",
                        {{"OPENROUTER_API_KEY", api_key},
                         {"PARLEY_JWT_SECRET", jwt},
                         {"DATABASE_URL", "postgresql://parley:dbpass@db:5432/parley?sslmode=require&password=qpass"},
                         {"NATS_URL", "nats://natstoken@n1:4222,tls://user:natspass@n2:4222"},
                         {"PARLEY_AUTH_API_KEY_HASHES", std::string(64, 'c')}})
                       .value();
    auto const entries = loggable(s);
    BOOST_TEST(entries.size() == setting_infos().size());
    for (auto const& [key, value] : entries) {
        BOOST_TEST_CONTEXT(key << "=" << value) {
            for (auto const* secret : {"sk-or-v1", "jwt-secret", "dbpass", "qpass", "natstoken", "natspass", "cccc"}) {
                BOOST_TEST(value.find(secret) == std::string::npos);
            }
        }
    }
    BOOST_TEST(logged(s, "openrouter.api_key") == "(set)");
    BOOST_TEST(logged(s, "auth.jwt_secret") == "(set)");
    BOOST_TEST(logged(s, "auth.api_key_hashes") == "(set)");
    BOOST_TEST(logged(s, "database.url") ==
               "postgresql://parley:(redacted)@db:5432/parley?sslmode=require&password=(redacted)");
    BOOST_TEST(logged(s, "nats.url") == "nats://(redacted)@n1:4222,tls://user:(redacted)@n2:4222");

    auto const defaults = settings{};
    BOOST_TEST(logged(defaults, "openrouter.api_key") == "(unset)");
    BOOST_TEST(logged(defaults, "auth.api_key_hashes") == "(unset)");
    BOOST_TEST(logged(defaults, "database.url") == "sqlite:var/parley.db");
    BOOST_TEST(logged(defaults, "listen") == "127.0.0.1:8080");
    BOOST_TEST(logged(defaults, "limits.cost_daily_usd") == "10.00");
    BOOST_TEST(logged(defaults, "nats.url") == "(unset)");
}

BOOST_AUTO_TEST_CASE(url_credentials_are_masked_in_errors_too) {
    BOOST_TEST(error_of(load("", {{"DATABASE_URL", "mysql://root:hunter2@db/x"}})) ==
               "invalid setting DATABASE_URL=mysql://root:(redacted)@db/x: expected sqlite:<path>, postgresql://... "
               "or postgres://... (no spaces)");
    BOOST_TEST(error_of(load(R"({"database": {"url": "mysql://root:hunter2@db/x"}})")) ==
               "invalid setting database.url=\"mysql://root:(redacted)@db/x\": expected sqlite:<path>, "
               "postgresql://... or postgres://... (no spaces)");
    BOOST_TEST(error_of(load("", {{"NATS_URL", "nats://tok@h:1, http://x"}})).find("tok") == std::string::npos);
    // A user without a password, and no credentials at all, stay as they are.
    auto const s = load("", {{"DATABASE_URL", "postgresql://parley@db/x"}, {"OPENROUTER_BASE_URL", "http://@sim:1/v1"}}).value();
    BOOST_TEST(logged(s, "database.url") == "postgresql://parley@db/x");
    BOOST_TEST(logged(s, "openrouter.base_url") == "http://@sim:1/v1");
}

// ------------------------------------------------------------ help

// ------------------------------------------------------------ accounting settings

BOOST_AUTO_TEST_CASE(accounting_settings_have_their_defaults) {
    settings const s;
    auto const* sonnet = s.pricing.models.find("anthropic/claude-3.5-sonnet");
    BOOST_REQUIRE(sonnet != nullptr);
    BOOST_TEST(sonnet->prompt.picos == 3'000'000);
    BOOST_TEST(sonnet->completion.picos == 15'000'000);
    BOOST_TEST(s.pricing.refresh == false);
    BOOST_TEST(s.limits.exempt_permission == "unlimited");
    BOOST_TEST(s.database.pool_size == 4u);
    BOOST_TEST(s.usage.log_dir == "");
    BOOST_TEST(s.usage.batch_size == 256u);
    BOOST_TEST(s.usage.fsync_interval.count() == 5);
    BOOST_TEST(s.usage.correction_attempts == 5);
}

BOOST_AUTO_TEST_CASE(the_price_table_is_json_in_the_file_the_environment_and_flags) {
    auto const file = R"({"pricing": {"models": {"openai/gpt-4o": {"prompt": "0.0000025", "completion": "0.00001"}}}})";
    auto const from_file = load(file);
    BOOST_REQUIRE(from_file.has_value());
    BOOST_TEST(from_file->pricing.models.size() == 1u);  // the file replaces the built-in table
    BOOST_TEST(from_file->pricing.models.find("openai/gpt-4o")->prompt.picos == 2'500'000);
    BOOST_TEST(from_file->pricing.models.find("openai/gpt-4o")->cache_read.picos == 0);
    auto const from_env = load("", {{"PARLEY_PRICING_MODELS",
                                     R"({"x/y": {"prompt": "0.000001", "completion": "0.000002", "cache_read": "0.0000001", "cache_write": "0.00000125"}})"}});
    BOOST_REQUIRE(from_env.has_value());
    BOOST_TEST(from_env->pricing.models.find("x/y")->cache_write.picos == 1'250'000);
    auto const from_flag = load_flags({{"--pricing-models", R"({"a/b": {"prompt": "0", "completion": "0"}})"}});
    BOOST_REQUIRE(from_flag.has_value());
    BOOST_TEST(from_flag->pricing.models.find("a/b") != nullptr);
    BOOST_TEST(logged(*from_flag, "pricing.models") ==
               R"({"a/b":{"prompt":"0","completion":"0","cache_read":"0","cache_write":"0"}})");
}

BOOST_AUTO_TEST_CASE(bad_price_tables_are_refused) {
    for (auto const* bad : {
             R"({})",                                                              // no model: nothing to reserve with
             R"({"x/y": {"prompt": "0.000001"}})",                                 // no completion price
             R"({"x/y": {"prompt": 0.000001, "completion": "0.000002"}})",         // a number, not a string
             R"({"x/y": {"prompt": "-1", "completion": "0.000002"}})",             // negative
             R"({"x/y": {"prompt": "0.1", "completion": "0.2", "extra": "0"}})",  // unknown field
             R"({"not a model": {"prompt": "0.1", "completion": "0.2"}})",
             R"({"x/y": "0.1"})",
             R"(not json)",
         }) {
        BOOST_TEST_CONTEXT(bad) {
            auto const msg = error_of(load("", {{"PARLEY_PRICING_MODELS", bad}}));
            BOOST_TEST(msg.find("invalid setting PARLEY_PRICING_MODELS") == 0u);
            BOOST_TEST(msg.find("decimal strings") != std::string::npos);
        }
    }
    BOOST_TEST(error_of(load(R"({"pricing": {"models": []}})")).find("as a JSON object") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(booleans_and_usage_settings_are_validated) {
    BOOST_TEST(load("", {{"PARLEY_PRICING_REFRESH", "true"}})->pricing.refresh);
    BOOST_TEST(!load_flags({{"--pricing-refresh", "0"}})->pricing.refresh);
    BOOST_TEST(load(R"({"pricing": {"refresh": true}})")->pricing.refresh);
    BOOST_TEST(error_of(load("", {{"PARLEY_PRICING_REFRESH", "yes"}})) ==
               "invalid setting PARLEY_PRICING_REFRESH=yes: expected true or false");
    BOOST_TEST(error_of(load(R"({"pricing": {"refresh": "true"}})")).find("as a JSON boolean") != std::string::npos);
    BOOST_TEST(load("", {{"PARLEY_USAGE_FSYNC_INTERVAL_MS", "0"}})->usage.fsync_interval.count() == 0);
    BOOST_TEST(!load("", {{"PARLEY_USAGE_BATCH_SIZE", "0"}}).has_value());
    BOOST_TEST(!load("", {{"PARLEY_USAGE_SEGMENT_BYTES", "100"}}).has_value());
    BOOST_TEST(load_flags({{"--limits-exempt-permission", ""}})->limits.exempt_permission == "");
    BOOST_TEST(!load_flags({{"--limits-exempt-permission", "two words"}}).has_value());
    BOOST_TEST(load_flags({{"--usage-log-dir", "/tmp/x"}})->usage.log_dir == "/tmp/x");
}

BOOST_AUTO_TEST_CASE(help_has_one_aligned_line_per_setting) {
    auto const lines = settings_help();
    auto const infos = setting_infos();
    BOOST_REQUIRE(lines.size() == infos.size());
    auto const env_column = lines.front().find("PARLEY_LISTEN");
    for (std::size_t i = 0; i != lines.size(); ++i) {
        BOOST_TEST_CONTEXT(lines[i]) {
            auto const& info = infos[i];
            BOOST_TEST(lines[i].find(info.flag.empty() ? "(no flag)" : info.flag) == 2u);
            BOOST_TEST(lines[i].find(info.env) == env_column);
            BOOST_TEST(lines[i].find(info.help) != std::string::npos);
            BOOST_TEST(lines[i].ends_with("[default: " + info.default_value + "]"));
        }
    }
    BOOST_TEST(lines.front().starts_with("  --listen "));
}

BOOST_AUTO_TEST_SUITE_END()
