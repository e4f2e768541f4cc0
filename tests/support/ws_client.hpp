#pragma once
// A blocking WebSocket client for tests (plain TCP, loopback): each call
// runs one async operation on a private io_context, bounded by a timeout.
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace parley::test {

class ws_client {
public:
    // Connects and upgrades; `headers` are added to the upgrade request.
    ws_client(unsigned short port, std::string const& target,
              std::vector<std::pair<std::string, std::string>> headers = {},
              std::chrono::milliseconds timeout = std::chrono::seconds(10))
        : ws_{ioc_}, timeout_{timeout} {
        auto& tcp = boost::beast::get_lowest_layer(ws_);
        tcp.connect(boost::asio::ip::tcp::endpoint{boost::asio::ip::make_address("127.0.0.1"), port});
        ws_.set_option(boost::beast::websocket::stream_base::decorator(
            [headers](boost::beast::websocket::request_type& req) {
                for (auto const& [k, v] : headers) req.set(k, v);
            }));
        handshake_error = run([&](auto h) { ws_.async_handshake("127.0.0.1", target, std::move(h)); });
    }

    boost::system::error_code handshake_error;

    bool send(std::string const& text) {
        ws_.text(true);
        return !run([&](auto h) { ws_.async_write(boost::asio::buffer(text), std::move(h)); });
    }

    // The next message, or nullopt (closed, timed out); `last_error` says why.
    std::optional<std::string> receive(std::optional<std::chrono::milliseconds> within = std::nullopt) {
        boost::beast::flat_buffer b;
        last_error = run([&](auto h) { ws_.async_read(b, std::move(h)); }, within);
        if (last_error) return std::nullopt;
        return boost::beast::buffers_to_string(b.data());
    }

    boost::system::error_code last_error;
    boost::beast::websocket::close_reason close_reason() const { return ws_.reason(); }

    void close() {
        run([&](auto h) { ws_.async_close(boost::beast::websocket::close_code::normal, std::move(h)); });
    }
    // Drops the TCP connection without a close frame.
    void drop() {
        boost::system::error_code ignored;
        boost::beast::get_lowest_layer(ws_).socket().close(ignored);
    }

private:
    template <class Start>
    boost::system::error_code run(Start start, std::optional<std::chrono::milliseconds> within = std::nullopt) {
        boost::system::error_code result = boost::asio::error::timed_out;
        bool done = false;
        start([&](boost::system::error_code ec, auto&&...) {
            result = ec;
            done = true;
        });
        ioc_.restart();
        ioc_.run_for(within.value_or(timeout_));
        if (!done) {
            drop();  // the operation completes with an error; run it out
            ioc_.restart();
            ioc_.run_for(std::chrono::seconds(1));
            result = boost::asio::error::timed_out;
        }
        return result;
    }

    boost::asio::io_context ioc_;
    boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
    std::chrono::milliseconds timeout_;
};

}  // namespace parley::test
