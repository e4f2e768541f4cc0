#include "actors/openrouter_client.hpp"

#include "domain/claude_format.hpp"
#include "net/upstream_connection.hpp"

#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/http/error.hpp>
#include <spdlog/spdlog.h>

#include <cctype>
#include <cstdio>
#include <random>
#include <stdexcept>

namespace parley::actors {

namespace http = boost::beast::http;
using boost::system::error_code;
using steady = std::chrono::steady_clock;
using net::upstream_errc;

namespace {

net::upstream_error local_failure(std::string code, std::string message, bool retryable) {
    net::upstream_error e;
    e.code_text = std::move(code);
    e.message = std::move(message);
    e.retryable = retryable;
    return e;
}

std::string random_request_id() {
    thread_local std::mt19937_64 engine{std::random_device{}()};
    char buf[33];
    std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(engine()),
                  static_cast<unsigned long long>(engine()));
    return buf;
}

enum class phase { connect, exchange };

// An I/O error as the upstream_error the retry loop and the caller see.
net::upstream_error io_failure(error_code const& ec, phase at, net::upstream_endpoint const& ep) {
    std::string const where = ep.host + ":" + std::to_string(ep.port);
    if (ec == asio::error::operation_aborted) {
        return cancelled_error("the call was cancelled");
    }
    if (ec.category() == net::upstream_category()) {
        return local_failure(std::string{ec == upstream_errc::connect_timeout      ? "connect_timeout"
                                         : ec == upstream_errc::first_byte_timeout ? "first_byte_timeout"
                                         : ec == upstream_errc::chunk_gap_timeout  ? "chunk_gap_timeout"
                                         : ec == upstream_errc::deadline_exceeded  ? "deadline_exceeded"
                                                                                   : "connection_closed"},
                             ec.message() + " (" + where + ")", true);
    }
    if (ec == http::error::body_limit) {
        return local_failure("body_too_large", "the response body from " + where + " exceeded its limit", false);
    }
    if (ec.category() == asio::error::get_ssl_category()) {
        return local_failure("tls_error", "TLS with " + where + " failed: " + ec.message(), false);
    }
    if (at == phase::connect) {
        return local_failure("connect_failed", "connecting to " + where + " failed: " + ec.message(), true);
    }
    return local_failure("connection_closed", "the connection to " + where + " failed: " + ec.message(), true);
}

net::completion_result failed(net::upstream_error e) {
    return net::completion_result{boost::system::in_place_error, std::move(e)};
}

}  // namespace

std::optional<domain::nano_usd> cost_from_text(std::string_view text) {
    auto const dot = text.find('.');
    if (dot == std::string_view::npos || text.size() - dot - 1 <= 9) {
        return domain::parse_usd(text);
    }
    auto const kept = text.substr(0, dot + 10);
    auto const rest = text.substr(dot + 10);
    if (rest.find_first_not_of("0123456789") != std::string_view::npos) {
        return std::nullopt;
    }
    auto v = domain::parse_usd(kept);
    if (v && rest[0] >= '5') {
        v->nanos += 1;
    }
    return v;
}

openrouter_options openrouter_options::from(domain::settings const& s) {
    openrouter_options o;
    o.base_url = s.openrouter.base_url;
    o.api_key = s.openrouter.api_key.value_or("");
    o.ca_file = s.openrouter.ca_file;
    o.referer = s.openrouter.referer;
    o.title = s.openrouter.title;
    o.connect_timeout = s.openrouter.connect_timeout;
    o.first_byte_timeout = s.openrouter.first_byte_timeout;
    o.chunk_gap_timeout = s.openrouter.chunk_gap_timeout;
    o.total_timeout = s.openrouter.total_timeout;
    o.pool_size = s.openrouter.pool_size;
    o.retry.max_retries = s.retry.max_retries;
    o.retry.initial = s.retry.initial_backoff;
    o.retry.max_backoff = s.retry.max_backoff;
    o.retry.max_retry_after = s.retry.max_retry_after;
    return o;
}

chat_call make_chat_call(std::vector<domain::message> const& history, domain::request_options const& options) {
    chat_call c;
    c.body = domain::serialize_request(domain::build_request(history, options));
    c.stream = options.stream;
    return c;
}

// ------------------------------------------------------------------ state

struct openrouter_client::state {
    asio::any_io_executor ex;
    openrouter_options options;
    retry_env env;
    std::shared_ptr<net::connection_options const> connection;
    std::shared_ptr<upstream_pool> pool;
    std::string target;
    std::string base_path;
};

namespace {

struct call_context {
    chat_call call;
    std::string request_id;
    steady::time_point deadline;
};

net::outgoing_request make_request(openrouter_options const& o, std::string const& target, call_context const& c) {
    net::outgoing_request r;
    r.target = target;
    r.body = c.call.body;
    r.headers.emplace_back("Authorization", "Bearer " + o.api_key);
    r.headers.emplace_back("Accept", c.call.stream ? "text/event-stream" : "application/json");
    if (!o.referer.empty()) {
        r.headers.emplace_back("HTTP-Referer", o.referer);
    }
    if (!o.title.empty()) {
        r.headers.emplace_back("X-OpenRouter-Title", o.title);
    }
    r.headers.emplace_back("X-Request-Id", c.request_id);
    for (auto const& h : c.call.extra_headers) {
        r.headers.push_back(h);
    }
    return r;
}

using state_ptr = std::shared_ptr<openrouter_client::state>;

// The stream's result; on failure also what it delivered before (the
// completion is moved out by finish(), so it is copied first).
void finish_stream(attempt_outcome& out, net::openrouter_stream& reader) {
    auto partial = reader.partial();
    out.result = reader.finish();
    if (!out.result) {
        out.partial = std::move(partial);
    }
}

// One attempt: a lease, a connection (opened on the lease if it came
// without one; a stale kept-alive one is replaced once), the exchange, the
// response read to its end (so the connection can be lent again).
task<attempt_outcome> attempt_once(state_ptr st, std::shared_ptr<call_context> ctx) {
    attempt_outcome out;
    auto const& o = st->options;
    auto const& ep = st->connection->endpoint;
    auto const remaining = ctx->deadline - steady::now();
    if (remaining <= steady::duration::zero()) {
        out.result = failed(local_failure("deadline_exceeded", "the call's total deadline passed", true));
        co_return out;
    }
    auto leased = co_await st->pool->acquire(remaining);
    if (!leased) {
        auto const ec = leased.error();
        out.result = failed(ec == asio::error::timed_out
                                ? local_failure("pool_timeout", "no upstream connection became free in time", true)
                            : ec == asio::error::operation_aborted
                                ? cancelled_error("the call was cancelled")
                                : local_failure("client_stopped", "the OpenRouter client is shut down", false));
        co_return out;
    }
    upstream_lease lease = std::move(*leased);
    for (bool replaced = false;;) {
        if (lease.connection() == nullptr) {
            auto opened = co_await net::upstream_connection::open(st->ex, st->connection, o.connect_timeout,
                                                                  ctx->deadline);
            if (!opened) {
                out.result = failed(io_failure(opened.error(), phase::connect, ep));
                co_return out;
            }
            lease.adopt(std::move(*opened));
        }
        auto request = make_request(o, st->target, *ctx);
        auto ec = co_await lease.connection()->send(std::move(request), o.first_byte_timeout, ctx->deadline);
        if (ec == upstream_errc::stale_connection && !replaced) {
            spdlog::debug("upstream call {}: kept-alive connection was closed, reconnecting", ctx->request_id);
            replaced = true;
            lease.discard();
            continue;
        }
        out.reached_upstream = lease.connection()->request_sent();
        if (ec) {
            out.result = failed(io_failure(ec, phase::exchange, ep));
            co_return out;
        }
        break;
    }
    auto* conn = lease.connection();
    unsigned const status = conn->status();
    std::string const generation_header{conn->header("x-generation-id").value_or("")};

    if (status < 200 || status >= 300) {
        // An error answer: read at most max_error_body_bytes of it, then classify.
        std::string body;
        for (;;) {
            auto piece = co_await conn->read_body(o.chunk_gap_timeout, ctx->deadline);
            if (!piece || piece->empty()) {
                break;  // classified with what came
            }
            if (body.size() + piece->size() > net::max_error_body_bytes) {
                conn->close();  // not read to its end: never reused
                break;
            }
            body += *piece;
        }
        net::header_lookup lookup = [conn](std::string_view name) { return conn->header(name); };
        out.result = failed(net::classify(static_cast<int>(status), body, lookup, std::chrono::system_clock::now()));
        co_return out;
    }

    if (ctx->call.stream) {
        net::stream_options so;
        so.on_text = [&out, ctx](std::string_view text) {
            out.token_sent = true;
            if (ctx->call.on_text) {
                ctx->call.on_text(text);
            }
        };
        net::openrouter_stream reader{std::move(so)};
        for (;;) {
            auto piece = co_await conn->read_body(o.chunk_gap_timeout, ctx->deadline);
            if (!piece) {
                auto e = io_failure(piece.error(), phase::exchange, ep);
                if (reader.state() == net::openrouter_stream::status::done || e.code_text == "connection_closed") {
                    // After [DONE] only the connection is lost; a peer that
                    // closed early still gave a complete answer if a finish
                    // reason came (§10), else stream_ended_early.
                    finish_stream(out, reader);
                } else {
                    e.mid_stream = true;
                    out.partial = reader.partial();
                    out.result = failed(std::move(e));
                }
                break;
            }
            if (piece->empty()) {
                finish_stream(out, reader);
                break;
            }
            if (reader.feed(*piece) == net::openrouter_stream::status::failed) {
                conn->close();  // the rest of the body is of no use
                finish_stream(out, reader);
                break;
            }
        }
    } else {
        std::string body;
        for (;;) {
            auto piece = co_await conn->read_body(o.chunk_gap_timeout, ctx->deadline);
            if (!piece) {
                out.result = failed(io_failure(piece.error(), phase::exchange, ep));
                // The 200 came: OpenRouter bills a non-streamed request in
                // full even when it is cut, so accounting gets what it can
                // (the generation id, to look the cost up).
                out.partial.emplace();
                out.partial->generation_id = generation_header;
                co_return out;
            }
            if (piece->empty()) {
                break;
            }
            body += *piece;
        }
        out.result = net::parse_completion(body);
    }
    if (out.result && out.result->generation_id.empty()) {
        out.result->generation_id = generation_header;
    }
    co_return out;
}

task<call_result> run_call(state_ptr st, chat_call call) {
    // Cancellation arrives as operation_aborted from the I/O in progress (or
    // a false sleep), never as an exception, so the connection in use is
    // closed and the lease given back on the normal path.
    co_await asio::this_coro::throw_if_cancelled(false);
    co_await asio::this_coro::reset_cancellation_state(asio::enable_total_cancellation());
    call_result out;
    auto const started = steady::now();
    auto first_text = std::make_shared<std::optional<steady::time_point>>();
    if (call.stream) {
        auto inner = std::move(call.on_text);
        call.on_text = [inner = std::move(inner), first_text](std::string_view t) {
            if (!*first_text) {
                *first_text = steady::now();
            }
            if (inner) {
                inner(t);
            }
        };
    }
    auto ctx = std::make_shared<call_context>();
    ctx->request_id = call.request_id.empty() ? random_request_id() : call.request_id;
    ctx->call = std::move(call);
    auto const total = ctx->call.total_timeout.value_or(st->options.total_timeout);
    ctx->deadline = steady::now() + total;
    out.request_id = ctx->request_id;
    if (st->options.api_key.empty()) {
        out.result = failed(local_failure("no_api_key", "no OpenRouter API key is configured (OPENROUTER_API_KEY)", false));
        co_return out;
    }
    domain::retry_policy policy = st->options.retry;
    policy.total_deadline = total;
    // Lambdas and other temporaries are kept out of co_await expressions:
    // GCC 12 destroys such a temporary twice (seen as a double release of
    // the captured shared_ptr).
    attempt_function attempt = [st, ctx](int) { return attempt_once(st, ctx); };
    auto outcome = co_await run_with_retry(std::move(policy), st->env, std::move(attempt));
    out.result = std::move(outcome.result);
    out.partial = std::move(outcome.partial);
    out.attempts = outcome.requests;
    out.waits = std::move(outcome.waits);
    out.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - started);
    if (*first_text) {
        out.first_token = std::chrono::duration_cast<std::chrono::microseconds>(**first_text - started);
    }
    if (out.result) {
        if (auto const& u = out.result->usage; u && u->cost) {
            out.cost = cost_from_text(*u->cost);
        }
        spdlog::debug("upstream call {}: {} after {} attempt(s), model {}", out.request_id,
                      out.result->finish_reason, outcome.attempts, out.result->model);
    } else {
        auto const& e = out.result.error();
        spdlog::debug("upstream call {} failed after {} attempt(s): {} {} {}", out.request_id, outcome.attempts,
                      e.status, e.code_text, e.message);
    }
    co_return out;
}

}  // namespace

openrouter_client::openrouter_client(asio::any_io_executor ex, openrouter_options options, retry_env env)
    : state_{std::make_shared<state>()} {
    auto ep = net::parse_base_url(options.base_url);
    if (!ep) {
        throw std::invalid_argument("invalid OpenRouter base URL '" + options.base_url + "': " + ep.error());
    }
    auto conn = std::make_shared<net::connection_options>();
    conn->endpoint = *ep;
    conn->body_limit = options.body_limit;
    if (ep->tls) {
        conn->tls = net::make_tls_client_context(options.ca_file);
    }
    state_->target = ep->base_path + "/chat/completions";
    state_->base_path = ep->base_path;
    state_->connection = std::move(conn);
    state_->ex = ex;
    state_->pool = spawn<upstream_pool>(
        std::move(ex), pool_options{.max_connections = options.pool_size, .idle_timeout = options.idle_timeout});
    state_->options = std::move(options);
    state_->env = std::move(env);
}

openrouter_client::~openrouter_client() = default;

task<call_result> openrouter_client::complete(chat_call call) {
    // A child coroutine of its own, so the cancellation settings made in
    // run_call stay there; the caller's cancellation slot is forwarded to it.
    auto st = state_;
    auto ex = co_await asio::this_coro::executor;
    auto body = [st, call = std::move(call)]() mutable { return run_call(st, std::move(call)); };
    auto r = co_await asio::co_spawn(ex, std::move(body), asio::use_awaitable);
    co_return r;
}

namespace {

std::string url_encoded(std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

struct get_result {
    int status = 0;
    std::string body;
    std::string error;  // set: no complete answer
};

// One GET of an OpenRouter JSON resource (no retries), bounded by the
// connect and first-byte timeouts and by `max_body` bytes.
task<get_result> get_once(state_ptr st, std::string target, std::size_t max_body) {
    get_result out;
    auto const& o = st->options;
    if (o.api_key.empty()) {
        out.error = "no OpenRouter API key is configured";
        co_return out;
    }
    auto const deadline = steady::now() + o.connect_timeout + o.first_byte_timeout;
    auto leased = co_await st->pool->acquire(o.first_byte_timeout);
    if (!leased) {
        out.error = "no upstream connection: " + leased.error().message();
        co_return out;
    }
    upstream_lease lease = std::move(*leased);
    net::outgoing_request rq;
    rq.get = true;
    rq.target = std::move(target);
    rq.headers.emplace_back("Authorization", "Bearer " + o.api_key);
    rq.headers.emplace_back("Accept", "application/json");
    for (bool replaced = false;;) {
        if (lease.connection() == nullptr) {
            auto opened = co_await net::upstream_connection::open(st->ex, st->connection, o.connect_timeout, deadline);
            if (!opened) {
                out.error = "connecting failed: " + opened.error().message();
                co_return out;
            }
            lease.adopt(std::move(*opened));
        }
        auto ec = co_await lease.connection()->send(rq, o.first_byte_timeout, deadline);
        if (ec == upstream_errc::stale_connection && !replaced) {
            replaced = true;
            lease.discard();
            continue;
        }
        if (ec) {
            out.error = "the request failed: " + ec.message();
            co_return out;
        }
        break;
    }
    auto* conn = lease.connection();
    out.status = static_cast<int>(conn->status());
    for (;;) {
        auto piece = co_await conn->read_body(o.chunk_gap_timeout, deadline);
        if (!piece) {
            out.error = "reading the answer failed: " + piece.error().message();
            co_return out;
        }
        if (piece->empty()) {
            break;
        }
        if (out.body.size() + piece->size() > max_body) {
            conn->close();
            out.error = "the answer is larger than " + std::to_string(max_body) + " bytes";
            co_return out;
        }
        out.body += *piece;
    }
    if (out.status != 200) {
        out.error = "HTTP " + std::to_string(out.status);
    }
    co_return out;
}

task<generation_lookup> lookup_generation(state_ptr st, std::string id) {
    generation_lookup out;
    auto got = co_await get_once(st, st->base_path + "/generation?id=" + url_encoded(id), 1024 * 1024);
    out.status = got.status;
    if (!got.error.empty()) {
        out.error = std::move(got.error);
        co_return out;
    }
    if (auto const text = net::raw_member_number(got.body, "data", "total_cost")) {
        out.total_cost = cost_from_text(*text);
    }
    if (!out.total_cost) {
        out.error = "the answer has no data.total_cost";
    }
    co_return out;
}

task<models_lookup> lookup_models(state_ptr st) {
    models_lookup out;
    auto got = co_await get_once(st, st->base_path + "/models", 16 * 1024 * 1024);
    out.status = got.status;
    out.error = std::move(got.error);
    out.body = std::move(got.body);
    co_return out;
}

}  // namespace

task<generation_lookup> openrouter_client::generation(std::string generation_id) {
    auto st = state_;
    auto ex = co_await asio::this_coro::executor;
    auto body = [st, id = std::move(generation_id)]() mutable { return lookup_generation(st, std::move(id)); };
    auto r = co_await asio::co_spawn(ex, std::move(body), asio::use_awaitable);
    co_return r;
}

task<models_lookup> openrouter_client::models() {
    auto st = state_;
    auto ex = co_await asio::this_coro::executor;
    auto body = [st]() { return lookup_models(st); };
    auto r = co_await asio::co_spawn(ex, std::move(body), asio::use_awaitable);
    co_return r;
}

task<boost::system::result<pool_stats>> openrouter_client::stats() {
    auto st = state_;
    co_return co_await st->pool->stats();
}

task<void> openrouter_client::shutdown() {
    auto st = state_;
    co_await st->pool->shutdown();
}

}  // namespace parley::actors
