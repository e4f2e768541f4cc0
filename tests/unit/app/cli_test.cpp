#define BOOST_TEST_MODULE app
#include "app/cli.hpp"
#include "app/logging.hpp"
#include "domain/jwt.hpp"

#include "support/process.hpp"

#include "net/asio.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <unistd.h>

using parley::app::parse_args;
using parley::app::run_cli;

namespace {

std::string const secret = "0123456789abcdef0123456789abcdef";

struct cli_result {
    int code;
    std::string out, err;
};

cli_result cli(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
    std::ostringstream out, err;
    auto lookup = [&](std::string_view name) -> std::optional<std::string> {
        if (auto it = env.find(std::string{name}); it != env.end()) return it->second;
        return std::nullopt;
    };
    // Run from an empty directory so no conf/parley.json is picked up by accident.
    int code = run_cli(args, lookup, out, err);
    return {code, out.str(), err.str()};
}

std::int64_t now_unix() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Changes into a scratch directory for the test's duration.
struct in_temp_dir {
    parley::test::temp_dir dir;
    std::filesystem::path old = std::filesystem::current_path();
    in_temp_dir() { std::filesystem::current_path(dir.path); }
    ~in_temp_dir() { std::filesystem::current_path(old); }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(cli_suite, in_temp_dir)

BOOST_AUTO_TEST_CASE(parse_splits_command_settings_and_command_flags) {
    auto a = parse_args({"token", "--user", "u1", "--perm=admin", "--perm", "x", "--listen=127.0.0.1:0",
                         "--config", "f.json"});
    BOOST_TEST(a.command == "token");
    BOOST_TEST(a.config.value() == "f.json");
    BOOST_TEST(a.command_flags.size() == 3u);
    BOOST_TEST(a.command_flags[1].second == "admin");
    BOOST_REQUIRE(a.settings_flags.size() == 1u);
    BOOST_TEST(a.settings_flags[0].first == "listen");
    BOOST_TEST(a.settings_flags[0].second == "127.0.0.1:0");
}

BOOST_AUTO_TEST_CASE(parse_defaults_to_serve_and_honours_double_dash) {
    auto a = parse_args({"--log-format", "json"});
    BOOST_TEST(a.command == "serve");
    auto b = parse_args({"serve", "--", "--not-a-flag"});
    BOOST_REQUIRE(b.positional.size() == 1u);
    BOOST_TEST(b.positional[0] == "--not-a-flag");
}

BOOST_AUTO_TEST_CASE(parse_rejects_what_it_does_not_know) {
    BOOST_CHECK_THROW(parse_args({"frobnicate"}), std::invalid_argument);
    BOOST_CHECK_THROW(parse_args({"--nope", "1"}), std::invalid_argument);
    BOOST_CHECK_THROW(parse_args({"-x"}), std::invalid_argument);
    BOOST_CHECK_THROW(parse_args({"--listen"}), std::invalid_argument);
    BOOST_CHECK_THROW(parse_args({"serve", "--user", "u"}), std::invalid_argument);  // token-only flag
}

BOOST_AUTO_TEST_CASE(help_lists_commands_and_every_setting) {
    auto r = cli({"--help"});
    BOOST_TEST(r.code == 0);
    BOOST_TEST(r.out.find("Usage: parley") != std::string::npos);
    BOOST_TEST(r.out.find("--listen") != std::string::npos);
    BOOST_TEST(r.out.find("AI_RATE_LIMIT_PER_USER") != std::string::npos);
    BOOST_TEST(r.out.find("OPENROUTER_API_KEY") != std::string::npos);
    BOOST_TEST(cli({"help"}).code == 0);
}

BOOST_AUTO_TEST_CASE(version_prints_the_version) {
    auto r = cli({"version"});
    BOOST_TEST(r.code == 0);
    BOOST_TEST(r.out.rfind("parley ", 0) == 0);
}

BOOST_AUTO_TEST_CASE(bad_usage_exits_2_with_one_line) {
    for (auto args : std::vector<std::vector<std::string>>{{"bogus"}, {"--bogus=1"}, {"serve", "extra"}}) {
        auto r = cli(args);
        BOOST_TEST(r.code == 2);
        BOOST_TEST(r.err.rfind("parley: ", 0) == 0);
        BOOST_TEST(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    }
}

BOOST_AUTO_TEST_CASE(an_invalid_setting_exits_2_naming_it) {
    auto r = cli({"token", "--user", "u"}, {{"AI_MAX_TOKENS", "lots"}, {"PARLEY_JWT_SECRET", secret}});
    BOOST_TEST(r.code == 2);
    BOOST_TEST(r.err.find("AI_MAX_TOKENS=lots") != std::string::npos);
    BOOST_TEST(std::count(r.err.begin(), r.err.end(), '\n') == 1);
}

BOOST_AUTO_TEST_CASE(serve_without_a_jwt_secret_exits_2) {
    auto r = cli({"serve"});
    BOOST_TEST(r.code == 2);
    BOOST_TEST(r.err.find("PARLEY_JWT_SECRET") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(serve_fails_with_1_when_the_port_is_taken) {
    // Occupy a port, then ask parley to listen on it.
    parley::asio::io_context ioc;
    parley::asio::ip::tcp::acceptor a{ioc, {parley::asio::ip::make_address("127.0.0.1"), 0}};
    auto port = std::to_string(a.local_endpoint().port());
    auto r = cli({"serve", "--listen", "127.0.0.1:" + port, "--log-level", "error"},
                 {{"PARLEY_JWT_SECRET", secret}});
    BOOST_TEST(r.code == 1);
}

BOOST_AUTO_TEST_CASE(token_mints_a_verifiable_jwt) {
    auto r = cli({"token", "--user", "ana", "--name", "Ana", "--perm", "admin", "--perm", "tools",
                  "--lang", "en", "--ttl", "120"},
                 {{"PARLEY_JWT_SECRET", secret}});
    BOOST_TEST_REQUIRE(r.code == 0, r.err);
    auto token = r.out.substr(0, r.out.find('\n'));
    auto claims = parley::verify_jwt(token, secret, now_unix());
    BOOST_REQUIRE(claims.has_value());
    BOOST_TEST(claims->sub == "ana");
    BOOST_TEST(claims->name.value() == "Ana");
    BOOST_TEST(claims->lang.value() == "en");
    BOOST_TEST(claims->perms == (std::vector<std::string>{"admin", "tools"}), boost::test_tools::per_element());
    BOOST_TEST(claims->exp - claims->iat.value() == 120);
    BOOST_TEST(!parley::verify_jwt(token, secret + "x", now_unix()).has_value());
}

BOOST_AUTO_TEST_CASE(token_validates_its_flags) {
    std::map<std::string, std::string> env{{"PARLEY_JWT_SECRET", secret}};
    BOOST_TEST(cli({"token"}, env).code == 2);
    BOOST_TEST(cli({"token", "--user", ""}, env).code == 2);
    BOOST_TEST(cli({"token", "--user", std::string(300, 'u')}, env).code == 2);
    BOOST_TEST(cli({"token", "--user", "u", "--ttl", "0"}, env).code == 2);
    BOOST_TEST(cli({"token", "--user", "u", "--ttl", "12x"}, env).code == 2);
    BOOST_TEST(cli({"token", "--user", "u", "--ttl", "31536001"}, env).code == 2);
    BOOST_TEST(cli({"token", "--user", "u", "--lang", "fr"}, env).code == 2);
    BOOST_TEST(cli({"token", "--user", "u", "--perm", ""}, env).code == 2);
    auto no_secret = cli({"token", "--user", "u"});
    BOOST_TEST(no_secret.code == 2);
    BOOST_TEST(no_secret.err.find("PARLEY_JWT_SECRET") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(settings_file_from_flag_env_or_default_location) {
    {
        std::ofstream f{"custom.json"};
        f << "{ // a comment\n \"ai\": {\"max_tokens\": \"many\"} }";
    }
    // A bad value in the chosen file proves which file was read.
    auto by_flag = cli({"token", "--user", "u", "--config", "custom.json"}, {{"PARLEY_JWT_SECRET", secret}});
    BOOST_TEST(by_flag.code == 2);
    BOOST_TEST(by_flag.err.find("ai.max_tokens") != std::string::npos);
    auto by_env = cli({"token", "--user", "u"}, {{"PARLEY_JWT_SECRET", secret}, {"PARLEY_CONFIG", "custom.json"}});
    BOOST_TEST(by_env.code == 2);
    std::filesystem::create_directory("conf");
    std::filesystem::copy_file("custom.json", "conf/parley.json");
    auto by_default = cli({"token", "--user", "u"}, {{"PARLEY_JWT_SECRET", secret}});
    BOOST_TEST(by_default.code == 2);
    BOOST_TEST(by_default.err.find("ai.max_tokens") != std::string::npos);
    auto missing = cli({"token", "--user", "u", "--config", "nope.json"}, {{"PARLEY_JWT_SECRET", secret}});
    BOOST_TEST(missing.code == 2);
    BOOST_TEST(missing.err.find("cannot read the settings file nope.json") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(logging_suite)

// Captures what the default logger writes to stdout.
struct stdout_capture {
    parley::test::temp_dir dir;
    std::filesystem::path file = dir.path / "out.txt";
    int saved = ::dup(STDOUT_FILENO);
    stdout_capture() {
        std::fflush(stdout);
        FILE* f = std::fopen(file.c_str(), "w");
        ::dup2(::fileno(f), STDOUT_FILENO);
        std::fclose(f);
    }
    std::string finish() {
        std::fflush(stdout);
        ::dup2(saved, STDOUT_FILENO);
        ::close(saved);
        return parley::test::read_file(file);
    }
};

BOOST_AUTO_TEST_CASE(json_lines_are_valid_json_with_escaped_messages) {
    stdout_capture cap;
    parley::app::setup_logging(parley::domain::log_format::json, "info");
    spdlog::info("quote \" backslash \\ newline \n end");
    spdlog::debug("not shown at info");
    auto out = cap.finish();
    auto line = out.substr(0, out.find('\n'));
    auto v = boost::json::parse(line);
    BOOST_TEST(v.at("level").as_string() == "info");
    BOOST_TEST(v.at("msg").as_string() == "quote \" backslash \\ newline \n end");
    BOOST_TEST(std::string{v.at("ts").as_string().c_str()}.size() == 24u);  // 2026-11-25T15:32:42.123Z
    BOOST_TEST(out.find("not shown") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(text_lines_have_time_level_and_message) {
    stdout_capture cap;
    parley::app::setup_logging(parley::domain::log_format::text, "debug");
    spdlog::debug("hello {}", 42);
    auto out = cap.finish();
    BOOST_TEST(out.find(" debug hello 42\n") != std::string::npos);
    BOOST_TEST(out[4] == '-');
    BOOST_TEST(out.find('Z') == 23u);
}

BOOST_AUTO_TEST_SUITE_END()
