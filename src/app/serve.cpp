#include "app/serve.hpp"

#include "app/accounting.hpp"
#include "app/assistant.hpp"
#include "app/api_common.hpp"
#include "app/drain.hpp"
#include "app/http_api.hpp"
#include "app/metrics.hpp"
#include "app/nats_front.hpp"
#include "net/nats_bus.hpp"
#include "app/web.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/version.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <thread>

namespace parley::app {
namespace {

namespace http = net::http;

net::response text_response(net::request const& req, http::status status, std::string_view content_type,
                            std::string body) {
    net::response res{status, req.version()};
    res.set(http::field::content_type, content_type);
    res.set(http::field::cache_control, "no-store");
    if (req.method() != http::verb::head) {
        res.body() = std::move(body);
    }
    return res;
}

// GET /readyz: 200 when the database takes usage rows, the upstream circuit
// is not open, NATS (when configured) is connected and the server is not
// shutting down; else 503. The body says which: {"status":"ready"|"not_ready",
// "database":"ok"|"down","upstream":"closed"|"half_open"|"open",
// "draining":bool,"nats"?:"connected"|"connecting"|"reconnecting"|"closed"}.
task<net::response> readiness(std::shared_ptr<http_api const> api, net::request const& req) {
    bool database_ok = true;
    std::string upstream = "closed";
    bool draining = false;
    std::optional<net::nats_state> nats;
    if (api) {
        draining = api->drain && api->drain->draining();
        if (api->bus) {
            nats = api->bus->state();
        }
        if (api->writer) {
            auto w = co_await api->writer->stats();
            database_ok = w && w->database_ok;
        }
        auto c = co_await api->assistant.circuit->status();
        if (c) {
            upstream = std::string{domain::to_string(c->state)};
        }
    }
    bool const ready = database_ok && upstream != "open" && !draining && (!nats || *nats == net::nats_state::connected);
    boost::json::object body;
    body["status"] = ready ? "ready" : "not_ready";
    body["database"] = database_ok ? "ok" : "down";
    body["upstream"] = upstream;
    body["draining"] = draining;
    if (nats) {
        body["nats"] = std::string{net::to_string(*nats)};
    }
    co_return text_response(req, ready ? http::status::ok : http::status::service_unavailable, "application/json",
                            boost::json::serialize(body) + "\n");
}

// GET /metrics: Prometheus text (app/metrics.hpp names the series).
task<net::response> exposition(std::shared_ptr<http_api const> api, net::request const& req) {
    scrape_inputs in;
    auto pool = co_await api->assistant.client->stats();
    if (pool) in.pool = *pool;
    if (api->writer) {
        auto w = co_await api->writer->stats();
        if (w) in.writer = *w;
    }
    auto c = co_await api->assistant.circuit->status();
    if (c) in.circuit = *c;
    if (api->bus) {
        in.nats = api->bus->counters();
        in.nats_connected = api->bus->state() == net::nats_state::connected;
    }
    in.nats_front = api->nats_counters.get();
    co_return text_response(req, http::status::ok, "text/plain; version=0.0.4; charset=utf-8", api->stats->render(in));
}

net::response only_get(net::request const& req, std::string_view path) {
    auto res = net::json_error(req, http::status::method_not_allowed, "method_not_allowed",
                               "use GET " + std::string{path});
    res.set(http::field::allow, "GET, HEAD");
    return res;
}

// The routes of ARCHITECTURE §4. Everything else is a JSON 404 in OpenAI's
// error shape. While shutting down, only the probes and metrics answer;
// the rest gets 503 shutting_down and the connection is closed.
task<void> route(std::shared_ptr<http_api const> api, net::request& req, net::exchange& ex) {
    auto const target = std::string_view{req.target().data(), req.target().size()};
    auto const path = target.substr(0, target.find('?'));
    bool const probe = path == "/healthz" || path == "/readyz" || (path == "/metrics" && api && api->stats);
    if (probe && req.method() != http::verb::get && req.method() != http::verb::head) {
        auto res = only_get(req, path);
        co_await ex.respond(std::move(res));
        co_return;
    }
    if (path == "/healthz") {
        auto res = text_response(req, http::status::ok, "text/plain; charset=utf-8", "ok\n");
        co_await ex.respond(std::move(res));
        co_return;
    }
    if (path == "/readyz") {
        auto res = co_await readiness(api, req);
        co_await ex.respond(std::move(res));
        co_return;
    }
    if (probe) {
        auto res = co_await exposition(api, req);
        co_await ex.respond(std::move(res));
        co_return;
    }
    if (api && api->drain && api->drain->draining()) {
        auto res = error_response(req, "shutting_down", domain::render(api->default_language, "shutting_down"));
        res.keep_alive(false);
        res.set(http::field::connection, "close");
        co_await ex.respond(std::move(res));
        co_return;
    }
    if (api) {
        bool const handled = co_await handle_api(api, req, ex);
        if (handled) {
            co_return;
        }
    }
    if (auto page = web_asset(req)) {
        co_await ex.respond(std::move(*page));
        co_return;
    }
    auto res = net::json_error(req, http::status::not_found, "not_found",
                               "no route for " + std::string{req.method_string()} + " " + std::string{path});
    co_await ex.respond(std::move(res));
}

net::nats_options nats_options_of(domain::settings const& s) {
    net::nats_options o;
    o.url = *s.nats.url;
    o.user = s.nats.user;
    o.password = s.nats.password;
    o.token = s.nats.token;
    o.max_message_bytes = s.server.body_limit_bytes;
    return o;
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
    std::shared_ptr<net::nats_bus> bus;
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
        if (s.nats.url) {
            try {
                bus = net::nats_bus::connect(ioc.get_executor(), nats_options_of(s));
            } catch (net::nats_error const& e) {
                spdlog::critical("invalid setting nats.url={}: {}", *s.nats.url, e.what());
                return 2;
            }
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
                    assistant = start_assistant(ioc.get_executor(), s, std::move(files), client, *accounting, bus);
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
        api->drain = std::make_shared<drain>();
        api->stats = std::make_shared<metrics>();
        api->writer = accounting->writer;
        api->bus = bus;
        accounting->accountant->observe(api->stats);
        api->now_unix = [] {
            return std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                .count();
        };
    }

    std::shared_ptr<http_api const> const routes = api;
    if (bus && api) {
        nats_front_options nf;
        nf.subject = options.accounting->nats.subject;
        nf.queue_group = options.accounting->nats.queue_group;
        nf.request_timeout = options.accounting->nats.request_timeout;
        try {
            api->nats_counters = start_nats_front(ioc.get_executor(), routes, bus, nf);
        } catch (net::nats_error const& e) {
            spdlog::critical("{}", e.what());
            return 2;
        }
    }
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
        auto stats = routes->stats;
        http_options.on_answer = [stats](net::request const& req, unsigned status) {
            stats->request(std::string_view{req.target().data(), req.target().size()}, status);
        };
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
    std::string scheme = http_options.tls ? "https" : "http";
    std::string host = ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string();
    spdlog::info("parley listening on {}://{}:{} ({} threads)", scheme, host, ep.port(), threads);

    asio::signal_set signals{ioc, SIGINT, SIGTERM};
    asio::co_spawn(ioc, [&]() -> task<void> {
        auto [ec, signo] = co_await signals.async_wait(use_nothrow);
        if (ec) co_return;
        spdlog::info("received {}, shutting down (grace period {} ms)", signo == SIGINT ? "SIGINT" : "SIGTERM",
                     options.shutdown_grace.count());
        // No new connections; the work in flight (turns, proxied calls,
        // WebSockets) is told to finish and gets the grace period to do so;
        // new requests on open connections get 503 shutting_down.
        server.stop_accepting();
        asio::steady_timer tick{co_await asio::this_coro::executor};
        auto const tracked = [&] { return api ? api->drain->active() : std::size_t{0}; };
        if (api) {
            api->drain->begin();
        }
        if (bus) {
            bus->stop_serving();  // new chat requests go to the group's other members
        }
        auto deadline = std::chrono::steady_clock::now() + options.shutdown_grace;
        while (tracked() > 0 && std::chrono::steady_clock::now() < deadline) {
            tick.expires_after(std::chrono::milliseconds(10));
            co_await tick.async_wait(use_nothrow);
        }
        if (auto const left = tracked(); left > 0) {
            // What did not finish is cancelled; its usage is still recorded.
            spdlog::warn("shutdown: the grace period is over; cancelling {} turn(s) and call(s) in flight", left);
            api->drain->cancel_all();
            auto const cancel_deadline = std::chrono::steady_clock::now() + std::chrono::seconds{5};
            while (tracked() > 0 && std::chrono::steady_clock::now() < cancel_deadline) {
                tick.expires_after(std::chrono::milliseconds(10));
                co_await tick.async_wait(use_nothrow);
            }
        }
        server.stop();
        // stop() closes every connection; give them a moment to wind down.
        auto const close_deadline = std::chrono::steady_clock::now() + std::chrono::seconds{2};
        while (server.open_connections() > 0 && std::chrono::steady_clock::now() < close_deadline) {
            tick.expires_after(std::chrono::milliseconds(10));
            co_await tick.async_wait(use_nothrow);
        }
        if (auto open = server.open_connections(); open > 0) {
            spdlog::warn("shutdown: {} connection(s) still open are abandoned", open);
        }
        if (assistant) {
            co_await assistant->shutdown();
        }
        if (bus) {
            bus->close();
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
