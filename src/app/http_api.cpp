#include "app/http_api.hpp"

#include "app/api_common.hpp"
#include "app/drain.hpp"
#include "app/frame_queue.hpp"
#include "app/metrics.hpp"
#include "app/usage_query.hpp"
#include "domain/errc.hpp"
#include "domain/jwt.hpp"
#include "persistence/database.hpp"

#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>
#include <spdlog/spdlog.h>


namespace parley::app {

namespace json = boost::json;
namespace http = net::http;

http::status status_of(std::string_view code) {
    if (code == "bad_request") return http::status::bad_request;
    if (code == "message_too_long") return http::status::payload_too_large;
    if (code == "unauthorized") return http::status::unauthorized;
    if (code == "forbidden") return http::status::forbidden;
    if (code == "conversation_not_found" || code == "not_found") return http::status::not_found;
    if (code == "rate_limited" || code == "budget_exhausted") return http::status::too_many_requests;
    if (code == "ai_unavailable" || code == "shutting_down") return http::status::service_unavailable;
    if (code == "upstream_error") return http::status::bad_gateway;
    return http::status::internal_server_error;
}

net::response error_response(net::request const& req, std::string_view code, std::string const& message,
                             std::optional<std::int64_t> retry_after, std::optional<http::status> status_override) {
    auto const status = status_override.value_or(status_of(code));
    if (!retry_after) {
        return net::json_error(req, status, code, message);
    }
    json::object error;
    error["message"] = message;
    error["type"] = code;
    error["code"] = static_cast<int>(status);
    json::object body;
    body["error"] = std::move(error);
    body["retry_after"] = *retry_after;
    net::response res{status, req.version()};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::retry_after, std::to_string(*retry_after));
    res.body() = json::serialize(body) + "\n";
    return res;
}

net::response json_response(net::request const& req, json::object const& body) {
    net::response res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::cache_control, "no-store");
    res.body() = json::serialize(body) + "\n";
    return res;
}

http::response_header<> sse_header() {
    http::response_header<> h;
    h.result(http::status::ok);
    h.set(http::field::content_type, "text/event-stream");
    h.set(http::field::cache_control, "no-store");
    return h;
}

net::response method_not_allowed(net::request const& req, char const* allow) {
    auto res = net::json_error(req, http::status::method_not_allowed, "method_not_allowed",
                               std::string{"use "} + allow);
    res.set(http::field::allow, allow);
    return res;
}

namespace {

// The caller, or nullopt (the 401 is then the caller's to send).
std::optional<domain::principal> caller(http_api const& api, net::request const& req) {
    auto const header = req[http::field::authorization];
    auto token = domain::bearer_token(std::string_view{header.data(), header.size()});
    if (!token) {
        return std::nullopt;
    }
    auto p = api.verified->authenticate(*token, api.auth, api.now_unix());
    if (!p) {
        return std::nullopt;
    }
    return std::move(*p);
}

struct respond_request {
    actors::turn_request turn;
    std::optional<domain::language> lang;
    std::optional<std::string> conversation_id;
};

// The body of POST /v1/respond, or the reason it is not one.
std::variant<respond_request, std::string> parse_respond(std::string const& body) {
    boost::system::error_code ec;
    auto v = json::parse(body, ec);
    if (ec || !v.is_object()) {
        return std::string{"the body must be a JSON object"};
    }
    auto const& o = v.as_object();
    respond_request r;
    r.turn.id = "r1";
    r.turn.stream = false;
    for (auto const& [k, value] : o) {
        if (k == "text") {
            if (!value.is_string()) return std::string{"text must be a string"};
            r.turn.text = value.as_string();
        } else if (k == "context") {
            if (!value.is_object() && !value.is_null()) return std::string{"context must be an object"};
            if (value.is_object()) r.turn.context = value.as_object();
        } else if (k == "language") {
            if (!value.is_string()) return std::string{"language must be es or en"};
            r.lang = domain::parse_language(value.as_string());
            if (!r.lang) return std::string{"language must be es or en"};
        } else if (k == "conversation_id") {
            if (!value.is_string() || value.as_string().empty() || value.as_string().size() > 64) {
                return std::string{"conversation_id must be a string of 1 to 64 bytes"};
            }
            r.conversation_id = std::string{value.as_string()};
        } else if (k == "stream") {
            if (!value.is_bool()) return std::string{"stream must be a boolean"};
            r.turn.stream = value.as_bool();
        } else if (k == "id") {
            if (!value.is_string() || value.as_string().size() > 64) return std::string{"id must be a short string"};
            r.turn.id = value.as_string();
        } else {
            return "unknown field " + std::string{k.substr(0, 64)};
        }
    }
    if (!o.contains("text")) {
        return std::string{"text is required"};
    }
    return r;
}

std::string sse_event(json::object const& f) {
    std::string s = "event: ";
    s += f.at("type").as_string();
    s += "\ndata: ";
    s += json::serialize(f);
    s += "\n\n";
    return s;
}

task<void> respond(std::shared_ptr<http_api const> api, net::request& req, net::exchange& ex,
                   domain::principal who) {
    auto parsed = parse_respond(req.body());
    auto const lang_default = who.lang.value_or(api->default_language);
    if (auto const* reason = std::get_if<std::string>(&parsed)) {
        auto res = error_response(req, "bad_request", domain::render(lang_default, "bad_request") + " (" + *reason + ")");
        co_await ex.respond(std::move(res));
        co_return;
    }
    auto& rq = std::get<respond_request>(parsed);
    auto const lang = rq.lang.value_or(lang_default);
    bool const stream = rq.turn.stream;

    auto executor = co_await asio::this_coro::executor;
    auto queue = std::make_shared<frame_queue>(executor, api->max_pending_frames);
    actors::session_options so;
    so.user.id = who.user_id;
    so.user.name = who.name;
    so.user.permissions = who.permissions;
    so.lang = lang;
    so.resume = rq.conversation_id;
    so.sink = [queue](json::object f) { queue->push(std::move(f)); };
    auto opened = co_await actors::open_session(executor, api->assistant, std::move(so));
    if (!opened.session) {
        auto res = error_response(req, opened.error_code, domain::render(lang, opened.error_code));
        co_await ex.respond(std::move(res));
        co_return;
    }
    auto session = opened.session;
    // Graceful shutdown lets the turn finish within the grace period, then cancels it.
    std::shared_ptr<drain::ticket> ticket;
    if (api->drain) {
        auto on_cancel = [session, executor] { cancel_turn_soon(session, executor); };
        std::function<void()> const no_drain_step;
        ticket = api->drain->enter(no_drain_step, std::move(on_cancel));
        if (!ticket) {
            co_await session->shutdown(false);
            auto res = error_response(req, "shutting_down", domain::render(lang, "shutting_down"));
            co_await ex.respond(std::move(res));
            co_return;
        }
    }
    session_gauge gauge(api->stats);
    auto info = co_await session->info();
    co_await session->send(std::move(rq.turn));

    bool writing = stream;
    if (stream) {
        auto header = sse_header();
        writing = co_await ex.begin_stream(std::move(header));
    }
    bool cancelled = false;
    json::object last;
    json::array tools;
    for (;;) {
        auto f = co_await queue->pop();
        auto const type = std::string{f.at("type").as_string()};
        bool const final = type == "done" || type == "error";
        if (type == "tool" && f.at("status").as_string() != "started") {
            json::object t;
            t["name"] = f.at("name");
            t["status"] = f.at("status");
            tools.push_back(std::move(t));
        }
        if (writing) {
            auto event = sse_event(f);
            writing = co_await ex.write(event);
        }
        if (final) {
            last = std::move(f);
            break;
        }
        // The client went away, or reads too slowly: the turn is cancelled
        // (its calls are recorded) and its remaining frames drained.
        bool const gone = (stream && !writing) || queue->overflowed();
        if (gone && !cancelled) {
            cancelled = true;
            std::string const this_turn = "";
            co_await session->cancel(this_turn);
        }
    }
    // The turn is stored before the answer ends, so a request that follows
    // it (resuming the conversation) sees it.
    co_await session->shutdown(false);
    if (stream) {
        if (writing) {
            co_await ex.end_stream();
        }
    } else if (last.at("type").as_string() == "done") {
        json::object body;
        body["text"] = last.at("text");
        body["model"] = last.at("model");
        body["fallback"] = last.at("fallback");
        body["usage"] = last.at("usage");
        body["tools"] = std::move(tools);
        body["conversation_id"] = info ? info->conversation_id : "";
        body["session_id"] = info ? info->session_id : "";
        auto res = json_response(req, body);
        co_await ex.respond(std::move(res));
    } else {
        std::optional<std::int64_t> retry_after;
        if (auto const* ra = last.if_contains("retry_after")) {
            retry_after = ra->to_number<std::int64_t>();
        }
        auto const code = std::string{last.at("code").as_string()};
        auto const message = std::string{last.at("message").as_string()};
        auto res = error_response(req, code, message, retry_after);
        co_await ex.respond(std::move(res));
    }
}

task<void> usage(std::shared_ptr<http_api const> api, net::request& req, net::exchange& ex, domain::principal who) {
    auto const lang = who.lang.value_or(api->default_language);
    std::vector<std::pair<std::string, std::string>> params;
    auto parsed = boost::urls::parse_origin_form(std::string_view{req.target().data(), req.target().size()});
    if (!parsed) {
        auto res = error_response(req, "bad_request", domain::render(lang, "bad_request"));
        co_await ex.respond(std::move(res));
        co_return;
    }
    for (auto const& p : parsed->params()) {
        params.emplace_back(p.key, p.value);
    }
    usage_query q;
    if (auto bad = read_usage_query(params, "", q)) {
        auto res = error_response(req, "bad_request", domain::render(lang, "bad_request") + " (" + *bad + ")");
        co_await ex.respond(std::move(res));
        co_return;
    }
    bool const admin = who.has("admin");
    if (q.filter.user && *q.filter.user != who.user_id && !admin) {
        auto res = error_response(req, "forbidden", domain::render(lang, "forbidden"));
        co_await ex.respond(std::move(res));
        co_return;
    }
    if (!admin) {
        q.filter.user = who.user_id;
    }
    if (!api->db) {
        auto res = error_response(req, "ai_unavailable", domain::render(lang, "internal_error"));  // LCOV_EXCL_LINE
        co_await ex.respond(std::move(res));  // LCOV_EXCL_LINE
        co_return;                            // LCOV_EXCL_LINE
    }
    auto const d = api->db->kind();
    auto query = [d, f = q.filter](soci::session& sql) { return persistence::usage_report(sql, d, f); };
    std::vector<persistence::usage_row> rows;
    bool failed = false;
    try {
        rows = co_await api->db->run(std::move(query));
    } catch (std::exception const& e) {
        spdlog::warn("GET /v1/usage: {}", e.what());
        failed = true;
    }
    if (failed) {
        auto res = error_response(req, "ai_unavailable", domain::render(lang, "internal_error"));
        co_await ex.respond(std::move(res));
        co_return;
    }
    auto body = usage_report_json(q, rows);
    auto res = json_response(req, body);
    co_await ex.respond(std::move(res));
}

// GET /v1/dev/token?lang=es|en (server.dev_tokens only): a day's token for
// user "dev", so the chat page can be tried on the simulator.
net::response dev_token(http_api const& api, net::request const& req) {
    if (!api.dev_tokens || api.auth.jwt_secret.empty()) {
        return error_response(req, "not_found", "no route for GET /v1/dev/token");
    }
    auto const target = std::string_view{req.target().data(), req.target().size()};
    jwt_claims c;
    c.sub = "dev";
    c.name = "Developer";
    c.iat = api.now_unix();
    c.exp = *c.iat + 86'400;
    if (target.ends_with("lang=en")) {
        c.lang = "en";
    } else if (target.ends_with("lang=es")) {
        c.lang = "es";
    }
    json::object body;
    body["token"] = mint_jwt(c, api.auth.jwt_secret);
    body["user"] = c.sub;
    return json_response(req, body);
}

struct route_kind {
    enum { none, respond, usage, completions, dev_token } k = none;
    char const* allow = "POST";
};

route_kind route_of(std::string_view path) {
    if (path == "/v1/respond") return {route_kind::respond, "POST"};
    if (path == "/v1/usage") return {route_kind::usage, "GET"};
    if (path == "/v1/chat/completions") return {route_kind::completions, "POST"};
    if (path == "/v1/dev/token") return {route_kind::dev_token, "GET"};
    return {};
}

}  // namespace

task<bool> handle_api(std::shared_ptr<http_api const> api, net::request& req, net::exchange& ex) {
    auto const target = std::string_view{req.target().data(), req.target().size()};
    auto const route = route_of(target.substr(0, target.find('?')));
    if (route.k == route_kind::none) {
        co_return false;
    }
    auto const wanted = route.k == route_kind::usage || route.k == route_kind::dev_token ? http::verb::get
                                                                                          : http::verb::post;
    if (req.method() != wanted) {
        auto res = method_not_allowed(req, route.allow);
        co_await ex.respond(std::move(res));
        co_return true;
    }
    if (route.k == route_kind::dev_token) {
        auto res = dev_token(*api, req);
        co_await ex.respond(std::move(res));
        co_return true;
    }
    auto who = caller(*api, req);
    if (!who) {
        auto res = error_response(req, "unauthorized", domain::render(api->default_language, "unauthorized"));
        res.set(http::field::www_authenticate, "Bearer");
        co_await ex.respond(std::move(res));
        co_return true;
    }
    if (route.k == route_kind::respond) {
        co_await respond(api, req, ex, std::move(*who));
    } else if (route.k == route_kind::usage) {
        co_await usage(api, req, ex, std::move(*who));
    } else {
        co_await proxy_completions(api, req, ex, std::move(*who));
    }
    co_return true;
}

}  // namespace parley::app
