// http: POST chat completions over HTTP/1.1 keep-alive connections, in an
// open loop (a request every 1/rate seconds whatever the answers do; the
// latency of a request counts from when it was due, so a stalled server is
// not hidden by the client waiting: no coordinated omission) or a closed
// loop (each of C callers sends its next request when its answer is in).
#include "scenario.hpp"

#include "net/asio.hpp"

#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <deque>

namespace parley::load {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// Everything the workers read and never change.
struct http_plan {
    tcp::endpoint endpoint;
    std::vector<std::string> requests;  // the raw request, one per user
    clock::duration timeout;
};

http_plan make_plan(options const& o) {
    auto const url = parse_target(o.url, "http");
    http_plan plan;
    plan.endpoint = tcp::endpoint{asio::ip::make_address(url.address), url.port};
    plan.timeout = seconds_of(o.timeout_s);

    boost::json::object msg;
    msg["role"] = "user";
    msg["content"] = o.prompt;
    boost::json::array messages;
    messages.push_back(std::move(msg));
    boost::json::object body;
    body["model"] = o.model;
    body["messages"] = std::move(messages);
    if (o.stream) body["stream"] = true;
    if (o.max_tokens) body["max_tokens"] = *o.max_tokens;
    auto const text = boost::json::serialize(body);

    std::string head = "POST " + url.target + " HTTP/1.1\r\nHost: " + url.host +
                       "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(text.size()) +
                       "\r\nUser-Agent: parley-load\r\n";
    if (o.stream) head += "Accept: text/event-stream\r\n";
    for (auto const& [k, v] : o.headers) head += k + ": " + v + "\r\n";
    auto const users = (o.secret ? o.users : 1u);
    for (unsigned u = 0; u < users; ++u) {
        auto req = head;
        if (auto tok = token_for(o, u); !tok.empty()) req += "Authorization: Bearer " + tok + "\r\n";
        req += "\r\n" + text;
        plan.requests.push_back(std::move(req));
    }
    return plan;
}

struct http_conn {
    explicit http_conn(asio::any_io_executor ex) : stream{std::move(ex)} {}
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    std::size_t user = 0;
    char chunk[16 * 1024];  // body bytes land here, then are scanned
};

class http_worker final : public worker {
public:
    http_worker(options const& o, std::shared_ptr<http_plan const> plan, unsigned index)
        : o_{o}, plan_{std::move(plan)}, index_{index} {
        if (o_.rate > 0) {
            rate_ = o_.rate / o_.threads;
            max_open_ = std::max(1u, o_.max_connections / o_.threads);
        } else {
            auto const n = o_.concurrency;
            callers_ = n / o_.threads + (index < n % o_.threads ? 1u : 0u);
            max_open_ = std::max(1u, callers_);
        }
        if (o_.max_requests) {
            auto const n = o_.max_requests;
            max_requests_ = n / o_.threads + (index < n % o_.threads ? 1u : 0u);
        }
    }

    void run() override {
        auto main = [this]() -> task<void> {
            if (o_.rate > 0) co_await open_loop();
            else co_await closed_loop();
        };
        asio::co_spawn(ioc_, main(), [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
        ioc_.run();
    }

private:
    struct waiter {
        explicit waiter(asio::any_io_executor ex) : timer{std::move(ex)} {}
        asio::steady_timer timer;
        std::unique_ptr<http_conn> conn;  // handed over; empty: a slot to open one
        bool woken = false;
    };

    bool may_send(std::uint64_t sent, clock::time_point at) const {
        return at < end_ && (max_requests_ == 0 || sent < max_requests_);
    }

    task<void> open_loop() {
        start_ = clock::now();
        end_ = start_ + seconds_of(o_.duration_s);
        auto const interval = std::chrono::duration<double>{1.0 / rate_};
        // Workers are offset by a fraction of the interval so their sends interleave.
        auto const offset = interval * (static_cast<double>(index_) / o_.threads);
        asio::steady_timer timer{ioc_};
        for (std::uint64_t i = 0;; ++i) {
            auto const at = start_ + std::chrono::duration_cast<clock::duration>(offset + interval * static_cast<double>(i));
            if (!may_send(i, at)) break;
            timer.expires_at(at);
            co_await timer.async_wait(use_nothrow);
            auto one = [this](clock::time_point due) -> task<void> { co_await request(due); };
            asio::co_spawn(ioc_, one(at), asio::detached);
        }
        co_await drain();
    }

    task<void> closed_loop() {
        start_ = clock::now();
        end_ = start_ + seconds_of(o_.duration_s);
        auto caller = [this]() -> task<void> {
            while (may_send(sent_, clock::now())) {
                auto const now = clock::now();
                co_await request(now);
            }
            --callers_running_;
        };
        callers_running_ = callers_;
        for (unsigned c = 0; c < callers_; ++c) asio::co_spawn(ioc_, caller(), asio::detached);
        co_await drain();
    }

    // Waits for the answers still coming, at most --drain-s past the end,
    // then closes everything so the io_context runs out of work.
    task<void> drain() {
        auto const give_up = end_ + seconds_of(o_.drain_s);
        asio::steady_timer timer{ioc_};
        while ((in_flight_ > 0 || callers_running_ > 0) && clock::now() < give_up) {
            timer.expires_after(std::chrono::milliseconds{5});
            co_await timer.async_wait(use_nothrow);
        }
        for (std::uint64_t i = 0; i < in_flight_; ++i) result.error("unfinished", live);
        idle_.clear();
        for (auto* w : waiters_) w->timer.cancel();
        waiters_.clear();
        ioc_.stop();  // unfinished requests are dropped with their sockets
    }

    task<std::unique_ptr<http_conn>> acquire() {
        if (!idle_.empty()) {
            auto c = std::move(idle_.back());
            idle_.pop_back();
            co_return c;
        }
        if (open_ >= max_open_) {
            waiter w{ioc_.get_executor()};
            waiters_.push_back(&w);
            w.timer.expires_at(clock::time_point::max());
            co_await w.timer.async_wait(use_nothrow);
            if (!w.woken) co_return nullptr;  // shutting down
            if (w.conn) co_return std::move(w.conn);
        } else {
            ++open_;
        }
        auto c = std::make_unique<http_conn>(ioc_.get_executor());
        c->user = (index_ + o_.threads * opened_) % plan_->requests.size();
        ++opened_;
        ++result.connections;
        c->stream.expires_after(plan_->timeout);
        auto [ec] = co_await c->stream.async_connect(plan_->endpoint, use_nothrow);
        if (ec) {
            result.error("connect_" + error_name(ec), live);
            release(nullptr);
            co_return nullptr;
        }
        c->stream.socket().set_option(tcp::no_delay{true});
        co_return c;
    }

    // Back to the pool (or to a waiter); nullptr gives the slot back.
    void release(std::unique_ptr<http_conn> c) {
        if (!waiters_.empty()) {
            auto* w = waiters_.front();
            waiters_.pop_front();
            w->conn = std::move(c);
            w->woken = true;
            w->timer.cancel();
            return;
        }
        if (c) idle_.push_back(std::move(c));
        else --open_;
    }

    task<void> request(clock::time_point due) {
        ++sent_;
        ++in_flight_;
        live.started.fetch_add(1, std::memory_order_relaxed);
        auto c = co_await acquire();
        bool reusable = false;
        if (c) {
            reusable = co_await exchange(*c, due);
            release(reusable ? std::move(c) : nullptr);
        }
        --in_flight_;
        live.completed.fetch_add(1, std::memory_order_relaxed);
    }

    // One request and its answer on `c`; true when `c` can be used again.
    task<bool> exchange(http_conn& c, clock::time_point start) {
        c.stream.expires_after(plan_->timeout);
        auto const& raw = plan_->requests[c.user];
        auto [wec, wn] = co_await asio::async_write(c.stream, asio::buffer(raw), use_nothrow);
        if (wec) {
            result.error(error_name(wec), live);
            co_return false;
        }
        http::response_parser<http::buffer_body> parser;
        parser.body_limit(64 * 1024 * 1024);
        auto [hec, hn] = co_await http::async_read_header(c.stream, c.buffer, parser, use_nothrow);
        if (hec) {
            result.error(error_name(hec), live);
            co_return false;
        }
        auto const head = clock::now();
        auto const status = parser.get().result_int();
        bool const streamed = o_.stream && status == 200;
        turn_timing timing{start};
        sse_scan scan;
        std::string body;  // not streamed (or an error): kept up to 1 MiB
        while (!parser.is_done()) {
            parser.get().body().data = c.chunk;
            parser.get().body().size = sizeof c.chunk;
            auto [ec, n] = co_await http::async_read_some(c.stream, c.buffer, parser, use_nothrow);
            if (ec == http::error::need_buffer) ec = {};
            if (ec) {
                result.error(error_name(ec), live);
                co_return false;
            }
            auto const got = sizeof c.chunk - parser.get().body().size;
            auto const now = clock::now();
            if (streamed) scan.feed({c.chunk, got}, now, timing, result, live);
            else if (body.size() < 1024 * 1024) body.append(c.chunk, got);
        }
        auto const end = clock::now();
        if (status != 200) {
            auto code = leading_string(value_after(body, "code"));
            if (code.empty()) code = std::to_string(leading_number(value_after(body, "code")));
            bool const plain = code.empty() || code == "0" || code == std::to_string(status);
            result.error("http_" + std::to_string(status) + (plain ? "" : ":" + code), live);
        } else if (streamed && scan.failed()) {
            result.error("stream_error", live);
        } else if (streamed && !scan.done()) {
            result.error("stream_incomplete", live);
        } else {
            ++result.ok;
            result.latency.record(micros_between(start, end));
            if (!streamed || !timing.any) result.ttft.record(micros_between(start, head));
            result.usage_tokens += streamed ? scan.usage_tokens() : leading_number(value_after(body, "completion_tokens"));
        }
        co_return parser.get().keep_alive();
    }

    options const& o_;
    std::shared_ptr<http_plan const> plan_;
    unsigned index_;
    asio::io_context ioc_{1};
    double rate_ = 0;
    unsigned callers_ = 0;
    unsigned callers_running_ = 0;  // closed loop: callers not yet past their last request
    unsigned max_open_ = 1;
    std::uint64_t max_requests_ = 0;
    clock::time_point start_, end_;
    std::uint64_t sent_ = 0, in_flight_ = 0, opened_ = 0;
    unsigned open_ = 0;
    std::vector<std::unique_ptr<http_conn>> idle_;
    std::deque<waiter*> waiters_;
};

}  // namespace

std::vector<std::unique_ptr<worker>> make_http_workers(options const& o) {
    auto plan = std::make_shared<http_plan const>(make_plan(o));
    std::vector<std::unique_ptr<worker>> out;
    for (unsigned i = 0; i < o.threads; ++i) out.push_back(std::make_unique<http_worker>(o, plan, i));
    return out;
}

}  // namespace parley::load
