#pragma once
// A real `parley serve` against a real openrouter-sim for the front-door
// tests: started on free loopback ports with a SQLite database in a
// temporary directory, stopped with SIGTERM (SIGKILL by PID if it hangs).
#include "domain/jwt.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/sim_process.hpp"

#include <boost/json/parse.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace parley::test {

namespace serve_detail {
using namespace std::chrono_literals;
namespace json = boost::json;
inline std::string const secret = "http-api-secret-0123456789abcdef0123";
inline std::string const service_key = "svc-key-for-tests-1";

inline std::vector<std::string> fast_sim() { return {"--latency-ms", "0", "--tokens-per-second", "0", "--answer-tokens", "6"}; }

struct server {
    sim_process sim;
    temp_dir data;
    std::unique_ptr<child_process> proc;
    unsigned short port = 0;
    std::map<std::string, std::optional<std::string>> env;

    explicit server(std::map<std::string, std::optional<std::string>> extra = {},
                    std::vector<std::string> sim_args = fast_sim())
        : sim{std::move(sim_args)} {
        env = std::map<std::string, std::optional<std::string>>{
            {"OPENROUTER_BASE_URL", "http://127.0.0.1:" + std::to_string(sim.port) + "/api/v1"},
            {"OPENROUTER_API_KEY", "k"},
            {"PARLEY_CONFIG", "/dev/null"},
            {"PARLEY_JWT_SECRET", secret},
            {"PARLEY_AUTH_API_KEY_HASHES", parley::sha256_hex(service_key)},
            {"DATABASE_URL", "sqlite:" + (data.path / "p.db").string()},
            {"PARLEY_DATA_DIR", (data.path / "var").string()},
            {"PARLEY_USAGE_FLUSH_INTERVAL_MS", "10"},
            {"PARLEY_RETRY_INITIAL_BACKOFF_MS", "5"},
            {"PARLEY_RETRY_MAX_BACKOFF_MS", "10"}};
        for (auto& [k, v] : extra) env[k] = v;
        start();
    }
    // Starts the process (again, after it stopped: same settings, same data
    // directory, a new port).
    void start() {
        proc = std::make_unique<child_process>(bin_path("parley"),
                                               std::vector<std::string>{"serve", "--listen", "127.0.0.1:0"}, env);
        port = static_cast<unsigned short>(
            std::stoi(proc->wait_for_output(R"(listening on https?://127\.0\.0\.1:(\d+))", 30s)));
    }
    ~server() {
        if (!proc->wait(0ms)) {
            proc->signal(SIGTERM);
            proc->wait(15s);
        }
    }
    http_response post(std::string const& target, std::string body, std::string const& token) {
        http_client c{"127.0.0.1", port};
        header_list h;
        if (!token.empty()) h.emplace_back("Authorization", "Bearer " + token);
        return c.post(target, std::move(body), h);
    }
    http_response get(std::string const& target, std::string const& token) {
        http_client c{"127.0.0.1", port};
        header_list h;
        if (!token.empty()) h.emplace_back("Authorization", "Bearer " + token);
        return c.get(target, h);
    }
    std::int64_t sim_requests() {
        http_client c{"127.0.0.1", sim.port};
        auto r = c.get("/sim/counters", {{"Authorization", "Bearer k"}});
        return json::parse(r.body).at("requests").to_number<std::int64_t>();
    }
};

inline std::string token(std::string user, std::vector<std::string> perms = {}, std::string lang = "es") {
    parley::jwt_claims c;
    c.sub = std::move(user);
    c.exp = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                .count() +
            600;
    c.lang = std::move(lang);
    c.perms = std::move(perms);
    return parley::mint_jwt(c, secret);
}

}  // namespace serve_detail

using serve_detail::fast_sim;
using serve_detail::secret;
using serve_detail::server;
using serve_detail::service_key;
using serve_detail::token;

}  // namespace parley::test
