#pragma once
// The HTTP/1.1 listener every front door and the simulator share: keep-alive,
// header and body limits, read and idle timeouts, a connection limit,
// optional TLS. Each request goes to one handler coroutine together with an
// `exchange`, through which the handler answers whole or as a chunked stream;
// every answer carries the request's X-Request-Id (echoed, or made).
#include "net/asio.hpp"
#include "net/websocket.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace boost::asio::ssl {
class context;
}

namespace parley::net {

namespace http = boost::beast::http;
using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

struct server_options {
    std::string host = "127.0.0.1";
    unsigned short port = 0;                         // 0: any free port
    std::size_t header_limit = 16 * 1024;
    std::size_t body_limit = 1024 * 1024;
    std::chrono::milliseconds read_timeout{30'000};  // a request, once started
    std::chrono::milliseconds idle_timeout{60'000};  // between keep-alive requests
    std::chrono::milliseconds write_timeout{30'000}; // each write
    std::size_t max_connections = 10'000;
    std::shared_ptr<asio::ssl::context> tls;         // null: plain TCP
    std::string websocket_path;                      // upgrades accepted on this path; empty: none
    // Told the status of every answer as its header goes out (101 for an
    // accepted WebSocket), on the connection's strand; must not block.
    std::function<void(request const&, unsigned)> on_answer;
};

// One request's answer. A handler calls exactly one of: respond(), or
// begin_stream() then write()... then end_stream(); abort() drops the
// connection at any point (the peer sees a cut, not an answer).
class exchange {
public:
    virtual ~exchange() = default;
    // Content-Length and keep-alive are filled in from the request.
    virtual task<bool> respond(response res) = 0;
    // Sends the header with Transfer-Encoding: chunked.
    virtual task<bool> begin_stream(http::response_header<> header) = 0;
    // One chunk; false when the peer is gone (the stream is over).
    virtual task<bool> write(std::string_view data) = 0;
    virtual task<bool> end_stream() = 0;
    virtual void abort() = 0;
    virtual bool answered() const = 0;
    virtual std::string const& remote_address() const = 0;
    // The request's X-Request-Id (1..128 visible ASCII characters), else a
    // fresh one; every answer carries it back in X-Request-Id.
    virtual std::string const& request_id() const = 0;
};

using handler = std::function<task<void>(request&, exchange&)>;
// Runs an accepted WebSocket (see net/websocket.hpp) until it ends; the
// connection is closed after it returns.
using websocket_handler = std::function<task<void>(request const&, websocket_connection&)>;

class http_server {
public:
    http_server(asio::any_io_executor ex, server_options options, handler h, websocket_handler ws = {});
    ~http_server();
    http_server(http_server const&) = delete;
    http_server& operator=(http_server const&) = delete;

    // Binds and listens; throws boost::system::system_error on failure.
    void start();
    // Closes the listener; open connections go on.
    void stop_accepting();
    // Stops accepting and closes every open connection.
    void stop();
    asio::ip::tcp::endpoint local_endpoint() const;
    std::size_t open_connections() const;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

// A JSON error body in OpenAI's shape: {"error":{"message","type","code"}}.
response json_error(request const& req, http::status status, std::string_view type,
                    std::string_view message);

}  // namespace parley::net
