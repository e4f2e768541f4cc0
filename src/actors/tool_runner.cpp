#include "actors/tool_runner.hpp"

#include "net/nats_bus.hpp"

#include "domain/money.hpp"
#include "net/upstream_connection.hpp"
#include "persistence/database.hpp"
#include "persistence/usage_repository.hpp"

#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/asio/this_coro.hpp>
#include <spdlog/spdlog.h>

#include <ctime>
#include <exception>

namespace parley::actors {

namespace json = boost::json;

namespace {

// A model-supplied name as it may appear in a message or a log line: at
// most 64 bytes, control characters as spaces.
std::string shown(std::string_view name) {
    std::string s{name.substr(0, 64)};
    for (auto& c : s) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
            c = ' ';
        }
    }
    return s;
}

tool_outcome refused(domain::tool_call const& call, std::string reason) {
    tool_outcome o;
    o.call_id = call.id;
    o.name = call.name;
    o.content = json::serialize(json::object{{"error", reason}});
    o.error = std::move(reason);
    return o;
}

tool_outcome failed(domain::tool_call const& call, std::string reason) {
    auto o = refused(call, std::move(reason));
    o.executed = true;
    return o;
}

tool_outcome answered(domain::tool_call const& call, std::string content) {
    tool_outcome o;
    o.call_id = call.id;
    o.name = call.name;
    o.executed = true;
    o.ok = true;
    o.content = std::move(content);
    return o;
}

std::string utc_text(std::chrono::system_clock::time_point t, char const* format) {
    auto const tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, format, &tm);
    return buf;
}

std::chrono::system_clock::time_point utc_midnight(std::chrono::system_clock::time_point t) {
    return std::chrono::floor<std::chrono::days>(t);
}

json::object user_json(tool_user const& user) {
    json::array perms;
    for (auto const& p : user.permissions) {
        perms.emplace_back(p);
    }
    return json::object{{"id", user.id},
                        {"name", user.name},
                        {"permissions", std::move(perms)},
                        {"language", domain::to_string(user.lang)}};
}

// (Built outside the coroutines: GCC 12 mishandles initializer lists in coroutine bodies.)
std::string current_time_json(std::chrono::system_clock::time_point now) {
    json::object o{{"utc", utc_text(now, "%Y-%m-%dT%H:%M:%SZ")},
                   {"date", utc_text(now, "%Y-%m-%d")},
                   {"weekday", utc_text(now, "%A")},
                   {"unix", std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count()}};
    return json::serialize(o);
}

std::string webhook_body(domain::tool_call const& call, json::object const& arguments, tool_user const& user) {
    return json::serialize(json::object{{"tool", call.name}, {"arguments", arguments}, {"user", user_json(user)}});
}

std::string wrapped_text(std::string const& body) { return json::serialize(json::object{{"result", body}}); }

std::string ms_text(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

}  // namespace

tool_runner::tool_runner(asio::any_io_executor ex, std::shared_ptr<domain::tool_registry const> registry,
                         tool_runner_services services)
    : ex_(std::move(ex)), registry_(std::move(registry)), services_(std::move(services)) {
    for (auto const& t : registry_->all()) {
        if (t.handler.kind == domain::tool_handler_kind::http && t.handler.url.starts_with("https:")) {
            tls_ = net::make_tls_client_context(std::nullopt);
            break;
        }
    }
}

task<tool_outcome> tool_runner::run(domain::tool_call call, tool_user user) {
    auto const* tool = registry_->find(call.name);
    if (tool == nullptr) {
        co_return refused(call, "unknown tool '" + shown(call.name) + "'");
    }
    if (!domain::may_use(*tool, user.permissions)) {
        co_return refused(call, "the user is not allowed to use the tool '" + shown(call.name) + "'");
    }
    auto args = domain::check_arguments(tool->spec.parameters, call.arguments);
    if (!args) {
        co_return refused(call, "invalid arguments for '" + shown(call.name) + "': " + args.error());
    }
    switch (tool->handler.kind) {
    case domain::tool_handler_kind::builtin:
        if (tool->handler.builtin == domain::builtin_current_time) {
            co_return answered(call, current_time_json(services_.now()));
        }
        co_return co_await run_my_usage(call, user);
    case domain::tool_handler_kind::http: co_return co_await run_http(*tool, call, *args, user);
    case domain::tool_handler_kind::nats: break;
    }
    co_return co_await run_nats(*tool, call, *args, user);
}

task<tool_outcome> tool_runner::run_nats(domain::tool_definition const& tool, domain::tool_call const& call,
                                         json::object const& arguments, tool_user const& user) {
    auto const& h = tool.handler;
    auto bus = services_.bus;
    if (!bus) {
        co_return failed(call, "the tool needs the NATS adapter, which is off (NATS_URL is not set)");
    }
    auto reply = co_await bus->request(h.subject, webhook_body(call, arguments, user), h.timeout);
    if (!reply) {
        auto const ec = reply.error();
        if (ec == asio::error::operation_aborted) {
            co_return failed(call, "cancelled");
        }
        if (ec == asio::error::timed_out) {
            co_return failed(call, "the tool did not answer within " + ms_text(h.timeout));
        }
        if (ec == asio::error::host_unreachable) {
            co_return failed(call, "no service answers on " + h.subject);
        }
        co_return failed(call, "the tool could not be reached (NATS is not connected)");
    }
    if (reply->size() > h.max_response_bytes) {
        co_return failed(call, "the tool's answer is larger than " + std::to_string(h.max_response_bytes) + " bytes");
    }
    boost::system::error_code jec;
    auto parsed = json::parse(*reply, jec);
    if (!jec) {
        co_return answered(call, json::serialize(parsed));
    }
    co_return answered(call, wrapped_text(*reply));
}

task<tool_outcome> tool_runner::run_my_usage(domain::tool_call const& call, tool_user const& user) {
    json::object o;
    o["user"] = user.id;
    if (services_.limiter) {
        auto snap = co_await services_.limiter->snapshot(user.id);
        if (snap) {
            o["requests_last_hour"] = snap->window_used;
            o["requests_per_hour_limit"] = snap->window_limit;
            o["requests_left_this_hour"] = std::max(0, snap->window_limit - snap->window_used);
            auto const global_left = snap->global_limit - snap->global_spent - snap->global_reserved;
            o["service_budget_left_today_usd"] = domain::format_usd(std::max(global_left, domain::nano_usd{}));
            if (snap->user_limit) {
                auto const left = *snap->user_limit - snap->user_spent - snap->user_reserved;
                o["daily_budget_usd"] = domain::format_usd(*snap->user_limit);
                o["daily_budget_left_usd"] = domain::format_usd(std::max(left, domain::nano_usd{}));
            }
        }
    }
    if (services_.db) {
        auto const since = utc_midnight(services_.now());
        persistence::usage_filter filter;
        filter.by = persistence::usage_group::user;
        filter.since = since;
        filter.user = user.id;
        auto const d = services_.db->kind();
        std::vector<persistence::usage_row> rows;
        bool reachable = true;
        auto report = [d, filter](soci::session& sql) { return persistence::usage_report(sql, d, filter); };
        try {
            rows = co_await services_.db->run(std::move(report));
        } catch (std::exception const& e) {
            spdlog::warn("my_usage: the database is unreachable: {}", e.what());
            reachable = false;
        }
        if (reachable) {
            std::int64_t requests = 0;
            std::int64_t micros = 0;
            for (auto const& r : rows) {
                requests += r.requests;
                micros += r.cost_micros;
            }
            o["requests_today"] = requests;
            o["spent_today_usd"] = domain::format_usd(domain::nano_usd{micros * 1000});
        }
    }
    co_return answered(call, json::serialize(o));
}

task<tool_outcome> tool_runner::run_http(domain::tool_definition const& tool, domain::tool_call const& call,
                                         json::object const& arguments, tool_user const& user) {
    auto const& h = tool.handler;
    auto endpoint = net::parse_base_url(h.url);
    if (!endpoint) {
        co_return failed(call, "the tool's URL is invalid: " + endpoint.error());  // LCOV_EXCL_LINE: checked at load
    }
    auto options = std::make_shared<net::connection_options>();
    options->endpoint = *endpoint;
    options->tls = tls_;
    options->body_limit = h.max_response_bytes;
    options->user_agent = "parley-tools";
    auto const deadline = net::upstream_connection::clock::now() + h.timeout;

    std::shared_ptr<net::connection_options const> const shared_options = options;
    auto opened = co_await net::upstream_connection::open(ex_, shared_options, h.timeout, deadline);
    if (!opened) {
        auto const ec = opened.error();
        if (ec == asio::error::operation_aborted) {
            co_return failed(call, "cancelled");
        }
        if (ec == net::upstream_errc::connect_timeout || ec == net::upstream_errc::deadline_exceeded) {
            co_return failed(call, "the tool did not answer within " + ms_text(h.timeout));
        }
        co_return failed(call, "the tool could not be reached (" + ec.message() + ")");
    }
    auto conn = std::move(*opened);
    net::outgoing_request rq;
    rq.target = endpoint->base_path.empty() ? "/" : endpoint->base_path;
    rq.body = webhook_body(call, arguments, user);
    rq.headers.emplace_back("X-Parley-Tool", call.name);
    auto const sent = co_await conn->send(std::move(rq), h.timeout, deadline);
    std::string body;
    boost::system::error_code ec = sent;
    while (!ec) {
        auto piece = co_await conn->read_body(h.timeout, deadline);
        if (!piece) {
            ec = piece.error();
            break;
        }
        if (piece->empty()) {
            break;
        }
        body.append(piece->data(), piece->size());
    }
    conn->close();
    if (ec) {
        if (ec == asio::error::operation_aborted) {
            co_return failed(call, "cancelled");
        }
        if (ec == net::upstream_errc::first_byte_timeout || ec == net::upstream_errc::chunk_gap_timeout ||
            ec == net::upstream_errc::deadline_exceeded) {
            co_return failed(call, "the tool did not answer within " + ms_text(h.timeout));
        }
        if (ec == boost::beast::http::error::body_limit) {
            co_return failed(call, "the tool's answer is larger than " + std::to_string(h.max_response_bytes) +
                                       " bytes");
        }
        co_return failed(call, "the tool's answer could not be read (" + ec.message() + ")");
    }
    auto const status = conn->status();
    if (status < 200 || status > 299) {
        co_return failed(call, "the tool answered HTTP " + std::to_string(status));
    }
    boost::system::error_code jec;
    auto parsed = json::parse(body, jec);
    if (!jec) {
        co_return answered(call, json::serialize(parsed));
    }
    co_return answered(call, wrapped_text(body));
}

task<std::vector<tool_outcome>> tool_runner::run_all(std::vector<domain::tool_call> calls, tool_user user,
                                                     std::function<void(tool_outcome const&)> on_done) {
    if (calls.empty()) {
        co_return std::vector<tool_outcome>{};  // a ranged parallel_group of nothing never completes
    }
    auto ex = co_await asio::this_coro::executor;
    auto one = [this, on_done](domain::tool_call c, tool_user u) -> task<tool_outcome> {
        auto o = co_await run(std::move(c), std::move(u));
        if (on_done) {
            on_done(o);
        }
        co_return o;
    };
    using op_type = decltype(asio::co_spawn(ex, one(domain::tool_call{}, tool_user{}), asio::deferred));
    std::vector<op_type> ops;
    ops.reserve(calls.size());
    for (auto const& c : calls) {
        ops.push_back(asio::co_spawn(ex, one(c, user), asio::deferred));
    }
    auto group = asio::experimental::make_parallel_group(std::move(ops));
    auto [order, errors, outcomes] =
        co_await group.async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
    for (std::size_t i = 0; i < calls.size(); ++i) {
        if (errors[i]) {
            std::string what = "the tool failed";
            try {
                std::rethrow_exception(errors[i]);
            } catch (std::exception const& e) {
                what = e.what();
            } catch (...) {  // LCOV_EXCL_LINE
            }
            spdlog::error("tool {}: {}", shown(calls[i].name), what);
            outcomes[i] = failed(calls[i], "the tool failed unexpectedly");
        }
    }
    co_return std::move(outcomes);
}

}  // namespace parley::actors
