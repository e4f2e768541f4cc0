// ws: N WebSocket sessions on /v1/ws, started evenly over --ramp-up-s; each
// says hello with its own token, waits for ready, sends --messages messages
// (--think-ms apart), then stays open until --hold-s past the ramp-up's end
// (reading, so pings are answered) and closes. Sessions are spread over the worker threads.
#include "scenario.hpp"

#include "net/asio.hpp"

#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace parley::load {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

struct ws_plan {
    tcp::endpoint endpoint;
    std::string host;
    std::string target;
};

ws_plan make_plan(options const& o) {
    auto const url = parse_target(o.url, "ws");
    ws_plan p;
    p.endpoint = tcp::endpoint{asio::ip::make_address(url.address), url.port};
    p.host = url.host;
    p.target = url.target;
    return p;
}

class ws_worker final : public worker {
public:
    ws_worker(options const& o, std::shared_ptr<ws_plan const> plan, unsigned index)
        : o_{o}, plan_{std::move(plan)}, index_{index} {}

    void run() override {
        start_ = clock::now();
        deadline_ = start_ + seconds_of(o_.duration_s);
        // Every session holds until the same moment (the ramp-up's end plus
        // --hold-s), so all of them are open together for --hold-s.
        hold_until_ = std::min(start_ + seconds_of(o_.ramp_up_s + o_.hold_s), deadline_);
        for (unsigned s = index_; s < o_.sessions; s += o_.threads) ++running_;
        if (running_ == 0) return;
        for (unsigned s = index_; s < o_.sessions; s += o_.threads) {
            auto const at = start_ + seconds_of(o_.ramp_up_s * s / o_.sessions);
            auto one = [this](unsigned n, clock::time_point when) -> task<void> { co_await session(n, when); };
            asio::co_spawn(ioc_, one(s, at), asio::detached);
        }
        // A watchdog ends whatever is still open at the hard cap.
        auto cap = [this]() -> task<void> {
            asio::steady_timer t{ioc_};
            t.expires_at(deadline_ + seconds_of(o_.drain_s));
            co_await t.async_wait(use_nothrow);
            for (unsigned i = 0; i < running_; ++i) result.error("unfinished", live);
            ioc_.stop();
        };
        asio::co_spawn(ioc_, cap(), asio::detached);
        ioc_.run();
    }

private:
    void finished() {
        if (--running_ == 0) ioc_.stop();  // every session is over: the watchdog need not wait
    }

    task<void> session(unsigned n, clock::time_point at) {
        asio::steady_timer timer{ioc_};
        timer.expires_at(at);
        co_await timer.async_wait(use_nothrow);
        live.started.fetch_add(1, std::memory_order_relaxed);
        websocket::stream<beast::tcp_stream> ws{ioc_};
        auto const t0 = clock::now();
        auto& tcp_layer = beast::get_lowest_layer(ws);
        tcp_layer.expires_after(seconds_of(o_.timeout_s));
        ++result.connections;
        auto [cec] = co_await tcp_layer.async_connect(plan_->endpoint, use_nothrow);
        if (cec) {
            result.error("connect_" + error_name(cec), live);
            finished();
            co_return;
        }
        tcp_layer.socket().set_option(tcp::no_delay{true});
        auto [hec] = co_await ws.async_handshake(plan_->host, plan_->target, use_nothrow);
        if (hec) {
            result.error("handshake_" + error_name(hec), live);
            finished();
            co_return;
        }
        tcp_layer.expires_never();
        ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
        ws.text(true);

        boost::json::object hello;
        hello["type"] = "hello";
        hello["token"] = token_for(o_, n);
        hello["language"] = o_.language;
        auto const hello_text = boost::json::serialize(hello);
        beast::flat_buffer buf;
        bool ok = co_await send(ws, hello_text);
        if (ok) ok = co_await receive(ws, buf, seconds_of(o_.timeout_s));
        if (!ok) {
            finished();
            co_return;
        }
        auto const first = beast::buffers_to_string(buf.data());
        if (leading_string(value_after(first, "type")) != "ready") {
            auto code = leading_string(value_after(first, "code"));
            result.error("hello_" + (code.empty() ? std::string{"refused"} : code), live);
            finished();
            co_return;
        }
        result.connect.record(micros_between(t0, clock::now()));
        ++result.sessions_ready;
        live.sessions_open.fetch_add(1, std::memory_order_relaxed);

        for (unsigned m = 0; m < o_.messages && clock::now() < deadline_; ++m) {
            if (m > 0 && o_.think_ms > 0) {
                timer.expires_after(seconds_of(o_.think_ms / 1000.0));
                co_await timer.async_wait(use_nothrow);
            }
            boost::json::object msg;
            msg["type"] = "message";
            msg["id"] = "m" + std::to_string(m);
            msg["text"] = o_.prompt;
            msg["stream"] = o_.stream;
            auto const text = boost::json::serialize(msg);
            turn_timing timing{clock::now()};
            if (!co_await send(ws, text)) break;
            auto outcome = frame_outcome::going_on;
            bool alive = true;
            while (outcome == frame_outcome::going_on) {
                buf.clear();
                alive = co_await receive(ws, buf, seconds_of(o_.timeout_s));
                if (!alive) break;
                auto const frame = beast::buffers_to_string(buf.data());
                outcome = on_frame(frame, clock::now(), timing, result, live);
            }
            live.completed.fetch_add(1, std::memory_order_relaxed);
            if (!alive) break;
        }

        if (o_.hold_s > 0 && clock::now() < hold_until_) co_await hold(ws);
        live.sessions_open.fetch_sub(1, std::memory_order_relaxed);
        tcp_layer.expires_after(std::chrono::seconds{5});
        auto [clec] = co_await ws.async_close(websocket::close_code::normal, use_nothrow);
        (void)clec;
        finished();
        co_return;
    }

    // Stays open until --hold-s past the end of the ramp-up, a read pending
    // the whole time (it answers the server's pings); the close afterwards
    // ends that read.
    task<void> hold(websocket::stream<beast::tcp_stream>& ws) {
        auto reader = [&ws]() -> task<void> {
            beast::flat_buffer b;
            while (true) {
                auto [ec, n] = co_await ws.async_read(b, use_nothrow);
                if (ec) co_return;
                b.clear();
            }
        };
        asio::co_spawn(ioc_, reader(), asio::detached);
        asio::steady_timer t{ioc_};
        t.expires_at(hold_until_);
        co_await t.async_wait(use_nothrow);
    }

    task<bool> send(websocket::stream<beast::tcp_stream>& ws, std::string const& text) {
        auto [ec, n] = co_await ws.async_write(asio::buffer(text), use_nothrow);
        if (ec) result.error("send_" + error_name(ec), live);
        co_return !ec;
    }

    task<bool> receive(websocket::stream<beast::tcp_stream>& ws, beast::flat_buffer& buf, clock::duration within) {
        beast::get_lowest_layer(ws).expires_after(within);
        auto [ec, n] = co_await ws.async_read(buf, use_nothrow);
        beast::get_lowest_layer(ws).expires_never();
        if (ec) result.error(error_name(ec), live);
        co_return !ec;
    }

    options const& o_;
    std::shared_ptr<ws_plan const> plan_;
    unsigned index_;
    asio::io_context ioc_{1};
    clock::time_point start_, deadline_, hold_until_;
    unsigned running_ = 0;  // sessions not yet over
};

}  // namespace

std::vector<std::unique_ptr<worker>> make_ws_workers(options const& o) {
    auto plan = std::make_shared<ws_plan const>(make_plan(o));
    std::vector<std::unique_ptr<worker>> out;
    for (unsigned i = 0; i < o.threads; ++i) out.push_back(std::make_unique<ws_worker>(o, plan, i));
    return out;
}

}  // namespace parley::load
