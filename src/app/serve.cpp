#include "app/serve.hpp"

#include "app/accounting.hpp"
#include "app/assistant.hpp"
#include "app/http_api.hpp"
#include "app/web.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/version.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <thread>

namespace parley::app {
namespace {

namespace http = net::http;

// The routes of ARCHITECTURE §4 that exist so far. Everything else is a JSON
// 404 in OpenAI's error shape.
task<void> route(std::shared_ptr<http_api const> api, net::request& req, net::exchange& ex) {
    if (api) {
        bool const handled = co_await handle_api(api, req, ex);
        if (handled) {
            co_return;
        }
    }
    auto target = std::string_view{req.target()};
    auto path = target.substr(0, target.find('?'));
    if (auto page = web_asset(req)) {
        co_await ex.respond(std::move(*page));
        co_return;
    }
    if (path == "/healthz") {
        if (req.method() != http::verb::get && req.method() != http::verb::head) {
            auto res = net::json_error(req, http::status::method_not_allowed, "invalid_request_error",
                                       "use GET /healthz");
            res.set(http::field::allow, "GET, HEAD");
            co_await ex.respond(std::move(res));
            co_return;
        }
        net::response res{http::status::ok, req.version()};
        res.set(http::field::content_type, "text/plain; charset=utf-8");
        res.set(http::field::cache_control, "no-store");
        if (req.method() == http::verb::get) res.body() = "ok\n";
        co_await ex.respond(std::move(res));
        co_return;
    }
    co_await ex.respond(net::json_error(req, http::status::not_found, "not_found",
                                        "no route for " + std::string{req.method_string()} + " " +
                                            std::string{path}));
}

// The listener's TLS context: TLS 1.2 and later, the chain and key from PEM
// files; throws when they cannot be read or do not match.
std::shared_ptr<asio::ssl::context> load_tls(std::string const& cert_file, std::string const& key_file) {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1 |
                     asio::ssl::context::single_dh_use);
    ctx->use_certificate_chain_file(cert_file);
    ctx->use_private_key_file(key_file, asio::ssl::context::pem);
    if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
        throw std::runtime_error{"the private key does not match the certificate"};
    }
    return ctx;
}

}  // namespace

int serve(serve_options const& options) {
    std::size_t threads = options.threads ? options.threads : std::max(1u, std::thread::hardware_concurrency());
    asio::io_context ioc{static_cast<int>(threads)};

    // The accounting stack first: migrations and the usage log's replay
    // happen before anything is served; then the assistant.
    std::optional<accounting_stack> accounting;
    std::shared_ptr<actors::openrouter_client> client;
    std::optional<assistant_stack> assistant;
    std::shared_ptr<http_api> api;
    if (options.accounting) {
        auto const& s = *options.accounting;
        // The assistant's files (prompts, tools, fallbacks) first: a bad one
        // stops start-up before the database is touched.
        assistant_files files;
        try {
            files = load_assistant_files(s);
        } catch (startup_error const& e) {
            spdlog::critical("{}", e.what());
            return 2;
        }
        bool started = false;
        std::string failure;
        try {
            client = std::make_shared<actors::openrouter_client>(ioc.get_executor(), actors::openrouter_options::from(s));
        } catch (std::exception const& e) {
            spdlog::critical("{}", e.what());
            return 2;
        }
        asio::co_spawn(
            ioc,
            [&]() -> task<void> {
                try {
                    std::optional<std::string> const everyone;
                    accounting = co_await start_accounting(s, client, everyone);
                    assistant = start_assistant(ioc.get_executor(), s, std::move(files), client, *accounting);
                } catch (std::exception const& e) {
                    failure = e.what();  // startup_error: one line the operator can act on
                }
                started = true;
            },
            asio::detached);
        while (!started && ioc.run_one() != 0) {
        }
        if (!failure.empty()) {
            spdlog::critical("{}", failure);
            return 2;
        }
        api = std::make_shared<http_api>();
        api->assistant = assistant->services;
        api->db = accounting->db;
        api->auth.jwt_secret = s.auth.jwt_secret.value_or("");
        api->auth.api_key_hashes = s.auth.api_key_hashes;
        api->default_language = domain::parse_language(s.language).value_or(domain::language::es);
        api->default_model = s.ai.model;
        api->fallback_models = s.ai.fallback_models;
        api->allowed_models = s.ai.allowed_models;
        if (api->allowed_models.empty()) {
            api->allowed_models.push_back(s.ai.model);
            api->allowed_models.insert(api->allowed_models.end(), s.ai.fallback_models.begin(),
                                       s.ai.fallback_models.end());
        }
        api->max_tokens = s.ai.max_tokens;
        api->dev_tokens = s.server.dev_tokens;
        if (api->dev_tokens) {
            spdlog::warn("server.dev_tokens is on: GET /v1/dev/token hands out tokens to anyone who asks "
                         "(for the simulator only; never in production)");
        }
        api->now_unix = [] {
            return std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                .count();
        };
    }

    std::shared_ptr<http_api const> const routes = api;
    auto http_options = options.http;
    if (!http_options.tls && options.accounting && options.accounting->server.tls_cert_file) {
        auto const& srv = options.accounting->server;
        try {
            http_options.tls = load_tls(*srv.tls_cert_file, *srv.tls_key_file);
        } catch (std::exception const& e) {
            spdlog::critical("invalid setting server.tls_cert_file={} / server.tls_key_file={}: {}",
                             *srv.tls_cert_file, *srv.tls_key_file, e.what());
            return 2;
        }
    }
    net::websocket_handler ws_door;
    if (routes) {
        http_options.websocket_path = "/v1/ws";
        ws_door = [routes](net::request const& req, net::websocket_connection& ws) {
            return serve_websocket(routes, req, ws);
        };
    }
    net::http_server server{ioc.get_executor(), http_options,
                            [routes](net::request& req, net::exchange& ex) { return route(routes, req, ex); },
                            std::move(ws_door)};
    try {
        server.start();
    } catch (boost::system::system_error const& e) {
        spdlog::critical("cannot listen on {}:{}: {}", options.http.host, options.http.port, e.code().message());
        return 1;
    }
    for (auto const& [name, value] : options.summary) spdlog::info("setting {} = {}", name, value);
    auto ep = server.local_endpoint();
    std::string scheme = options.http.tls ? "https" : "http";
    std::string host = ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string();
    spdlog::info("parley listening on {}://{}:{} ({} threads)", scheme, host, ep.port(), threads);

    asio::signal_set signals{ioc, SIGINT, SIGTERM};
    asio::co_spawn(ioc, [&]() -> task<void> {
        auto [ec, signo] = co_await signals.async_wait(use_nothrow);
        if (ec) co_return;
        spdlog::info("received {}, shutting down", signo == SIGINT ? "SIGINT" : "SIGTERM");
        server.stop();
        // stop() closes the listener and every connection; wait for them to
        // wind down, at most the grace period, then abandon the rest.
        auto deadline = std::chrono::steady_clock::now() + options.shutdown_grace;
        asio::steady_timer tick{co_await asio::this_coro::executor};
        while (server.open_connections() > 0 && std::chrono::steady_clock::now() < deadline) {
            tick.expires_after(std::chrono::milliseconds(10));
            co_await tick.async_wait(use_nothrow);
        }
        if (auto open = server.open_connections(); open > 0) {
            spdlog::warn("shutdown grace period over with {} connections open", open);
        }
        if (assistant) {
            co_await assistant->shutdown();
        }
        if (accounting) {
            co_await accounting->shutdown(std::chrono::seconds{5});
        }
        if (client) {
            co_await client->shutdown();
        }
        ioc.stop();
    }, asio::detached);

    std::vector<std::thread> pool;
    for (std::size_t i = 1; i < threads; ++i) pool.emplace_back([&] { ioc.run(); });
    ioc.run();
    for (auto& t : pool) t.join();
    spdlog::info("parley stopped");
    return 0;
}

}  // namespace parley::app
