// `parley serve` as an operator runs it: a real process on a real port.
#include "domain/jwt.hpp"

#include "support/process.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <map>
#include <memory>
#include <sstream>

namespace asio = boost::asio;
using parley::test::child_process;

namespace {

std::string const secret = "integration-secret-0123456789abcdef";

// One request on a fresh connection ("Connection: close"); the raw answer.
std::string http_raw(unsigned short port, std::string const& request) {
    asio::io_context ioc;
    asio::ip::tcp::socket s{ioc};
    s.connect({asio::ip::make_address("127.0.0.1"), port});
    asio::write(s, asio::buffer(request));
    std::string out;
    boost::system::error_code ec;
    asio::read(s, asio::dynamic_buffer(out), ec);
    return out;
}

std::string http_get(unsigned short port, std::string const& path) {
    return http_raw(port, "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
}

struct parley_process {
    std::shared_ptr<parley::test::temp_dir> data;  // its database and usage log
    child_process proc;
    unsigned short port;
    explicit parley_process(std::vector<std::string> args = {},
                            std::map<std::string, std::optional<std::string>> env = {},
                            std::shared_ptr<parley::test::temp_dir> dir = std::make_shared<parley::test::temp_dir>())
        : data{std::move(dir)},
          proc{parley::test::bin_path("parley"), with_listen(std::move(args)), with_secret(std::move(env), *data)},
          port{static_cast<unsigned short>(std::stoi(proc.wait_for_output(R"(listening on http://127\.0\.0\.1:(\d+))")))} {}

    static std::vector<std::string> with_listen(std::vector<std::string> args) {
        args.insert(args.begin(), {"serve", "--listen", "127.0.0.1:0"});
        return args;
    }
    static std::map<std::string, std::optional<std::string>> with_secret(std::map<std::string, std::optional<std::string>> env,
                                                                         parley::test::temp_dir const& data) {
        env.emplace("DATABASE_URL", "sqlite:" + (data.path / "parley.db").string());
        env.emplace("PARLEY_DATA_DIR", (data.path / "var").string());
        env.emplace("PARLEY_JWT_SECRET", secret);
        env.emplace("PARLEY_CONFIG", parley::test::source_path("conf/parley.json").string());
        env.emplace("OPENROUTER_API_KEY", "sk-or-v1-do-not-log-me");
        return env;
    }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(parley_serve)

BOOST_AUTO_TEST_CASE(healthz_answers_ok_and_sigterm_exits_0) {
    parley_process p;
    auto res = http_get(p.port, "/healthz");
    BOOST_TEST(res.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    BOOST_TEST(res.substr(res.size() - 3) == "ok\n");
    p.proc.signal(SIGTERM);
    auto code = p.proc.wait(std::chrono::seconds(15));
    BOOST_REQUIRE(code.has_value());
    BOOST_TEST(*code == 0);
    auto out = p.proc.output();
    BOOST_TEST(out.find("received SIGTERM, shutting down") != std::string::npos);
    BOOST_TEST(out.find("parley stopped") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(sigint_exits_0_even_with_a_connection_open) {
    parley_process p;
    asio::io_context ioc;
    asio::ip::tcp::socket idle{ioc};
    idle.connect({asio::ip::make_address("127.0.0.1"), p.port});
    BOOST_TEST(http_get(p.port, "/healthz").find("200 OK") != std::string::npos);
    p.proc.signal(SIGINT);
    auto code = p.proc.wait(std::chrono::seconds(15));
    BOOST_REQUIRE(code.has_value());
    BOOST_TEST(*code == 0);
    BOOST_TEST(p.proc.output().find("received SIGINT") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(head_and_wrong_methods_and_unknown_routes) {
    parley_process p;
    auto head = http_raw(p.port, "HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    BOOST_TEST(head.rfind("HTTP/1.1 200", 0) == 0);
    auto post = http_raw(p.port, "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    BOOST_TEST(post.rfind("HTTP/1.1 405", 0) == 0);
    BOOST_TEST(post.find("Allow: GET, HEAD") != std::string::npos);
    auto missing = http_get(p.port, "/nope?x=1");
    BOOST_TEST(missing.rfind("HTTP/1.1 404", 0) == 0);
    auto body = boost::json::parse(missing.substr(missing.find("\r\n\r\n") + 4));
    BOOST_TEST(body.at("error").at("message").as_string() == "no route for GET /nope");
    p.proc.signal(SIGTERM);
    BOOST_TEST(p.proc.wait().value_or(-1) == 0);
}

BOOST_AUTO_TEST_CASE(logs_settings_without_secrets) {
    parley_process p;
    p.proc.signal(SIGTERM);
    BOOST_TEST(p.proc.wait().value_or(-1) == 0);
    auto out = p.proc.output();
    BOOST_TEST(out.find("setting ai.model = anthropic/claude-3.5-sonnet") != std::string::npos);
    BOOST_TEST(out.find("setting openrouter.api_key = (set)") != std::string::npos);
    BOOST_TEST(out.find(secret) == std::string::npos);
    BOOST_TEST(out.find("sk-or-v1-do-not-log-me") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(json_log_format_writes_one_json_object_per_line) {
    parley_process p{{"--log-format", "json"}};
    p.proc.signal(SIGTERM);
    BOOST_TEST(p.proc.wait().value_or(-1) == 0);
    std::istringstream lines{p.proc.output()};
    std::string line;
    int n = 0;
    while (std::getline(lines, line)) {
        if (line.empty()) continue;
        auto v = boost::json::parse(line);  // throws on a non-JSON line
        BOOST_TEST(v.at("msg").is_string());
        ++n;
    }
    BOOST_TEST(n >= 3);
}

BOOST_AUTO_TEST_CASE(an_invalid_setting_stops_startup_with_exit_2_and_one_line) {
    child_process proc{parley::test::bin_path("parley"), {"serve"},
                       {{"PARLEY_JWT_SECRET", secret}, {"AI_RATE_LIMIT_PER_USER", "-5"}}};
    auto code = proc.wait(std::chrono::seconds(15));
    BOOST_REQUIRE(code.has_value());
    BOOST_TEST(*code == 2);
    auto out = proc.output();
    BOOST_TEST(out.find("AI_RATE_LIMIT_PER_USER=-5") != std::string::npos);
    BOOST_TEST(std::count(out.begin(), out.end(), '\n') == 1);
}

BOOST_AUTO_TEST_CASE(serve_migrates_the_database_at_start_up_and_owns_its_usage_log) {
    auto data = std::make_shared<parley::test::temp_dir>();
    parley_process p{{}, {}, data};
    // A second server on the same data directory cannot take the usage log.
    child_process second{parley::test::bin_path("parley"), parley_process::with_listen({}),
                         parley_process::with_secret({}, *data)};
    auto code = second.wait(std::chrono::seconds(15));
    BOOST_REQUIRE(code.has_value());
    BOOST_TEST(*code == 2);
    BOOST_TEST(second.output().find("in use by another process") != std::string::npos, second.output());
    p.proc.signal(SIGTERM);
    BOOST_TEST(p.proc.wait(std::chrono::seconds(15)).value_or(-1) == 0);
    child_process migrate{parley::test::bin_path("parley"), {"migrate"},
                          {{"DATABASE_URL", "sqlite:" + (data->path / "parley.db").string()}}};
    BOOST_TEST(migrate.wait(std::chrono::seconds(15)).value_or(-1) == 0);
    BOOST_TEST(migrate.output().find("schema up to date at version 2") != std::string::npos, migrate.output());
}

BOOST_AUTO_TEST_CASE(missing_jwt_secret_stops_startup_with_exit_2) {
    child_process proc{parley::test::bin_path("parley"), {"serve"}, {{"PARLEY_JWT_SECRET", std::nullopt}}};
    auto code = proc.wait(std::chrono::seconds(15));
    BOOST_REQUIRE(code.has_value());
    BOOST_TEST(*code == 2);
    BOOST_TEST(proc.output().find("PARLEY_JWT_SECRET") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
