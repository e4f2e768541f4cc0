#include "net/http_server.hpp"

#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <random>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace parley::net {

namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using boost::system::error_code;

response json_error(request const& req, http::status status, std::string_view type,
                    std::string_view message) {
    boost::json::value body = {
        {"error", {{"message", message}, {"type", type}, {"code", static_cast<int>(status)}}}};
    response res{status, req.version()};
    res.set(http::field::content_type, "application/json");
    res.body() = boost::json::serialize(body);
    res.body() += '\n';
    return res;
}

namespace {

// Closes a connection from outside its coroutine (server stop).
struct closable {
    virtual ~closable() = default;
    virtual void close() = 0;
};

tcp::socket& lowest_socket(beast::tcp_stream& s) { return s.socket(); }
tcp::socket& lowest_socket(beast::ssl_stream<beast::tcp_stream>& s) {
    return beast::get_lowest_layer(s).socket();
}

// The request's X-Request-Id when it is a usable one (1..128 visible ASCII
// characters), else a fresh one (32 hex digits).
std::string request_id_of(request const& req) {
    auto const given = req["X-Request-Id"];
    bool ok = !given.empty() && given.size() <= 128;
    for (char c : given) {
        ok = ok && c > 0x20 && c < 0x7F;
    }
    if (ok) {
        return std::string{given};
    }
    thread_local std::mt19937_64 rng{std::random_device{}()};
    static char const hex[] = "0123456789abcdef";
    std::string id;
    for (int i = 0; i < 2; ++i) {
        auto v = rng();
        for (int j = 0; j < 16; ++j) {
            id += hex[v & 0xF];
            v >>= 4;
        }
    }
    return id;
}

template <class Stream>
class connection_exchange final : public exchange {
public:
    connection_exchange(Stream& stream, request const& req, server_options const& opts,
                        std::string const& remote)
        : stream_{stream}, req_{req}, opts_{opts}, remote_{remote}, request_id_{request_id_of(req)} {}

    std::string const& request_id() const override { return request_id_; }

    task<bool> respond(response res) override {
        if (state_ != state::fresh) co_return false;
        state_ = state::done;
        res.set("X-Request-Id", request_id_);
        // A handler's "Connection: close" ends the connection after this answer.
        res.keep_alive(req_.keep_alive() && !beast::iequals(res[http::field::connection], "close"));
        res.prepare_payload();
        if (opts_.on_answer) opts_.on_answer(req_, res.result_int());
        keep_alive_ = res.keep_alive();
        arm();
        auto [ec, n] = co_await http::async_write(stream_, res, use_nothrow);
        if (ec) broken_ = true;
        co_return !ec;
    }

    task<bool> begin_stream(http::response_header<> header) override {
        if (state_ != state::fresh) co_return false;
        state_ = state::streaming;
        http::response<http::empty_body> res{std::move(header)};
        res.set("X-Request-Id", request_id_);
        res.version(req_.version());
        res.keep_alive(req_.keep_alive() && !beast::iequals(res[http::field::connection], "close"));
        res.chunked(true);
        keep_alive_ = res.keep_alive();
        if (opts_.on_answer) opts_.on_answer(req_, res.result_int());
        http::response_serializer<http::empty_body> sr{res};
        arm();
        auto [ec, n] = co_await http::async_write_header(stream_, sr, use_nothrow);
        if (ec) broken_ = true;
        co_return !ec;
    }

    task<bool> write(std::string_view data) override {
        if (state_ != state::streaming || broken_) co_return false;
        if (data.empty()) co_return true;  // an empty chunk would end the body
        arm();
        auto [ec, n] = co_await asio::async_write(
            stream_, http::make_chunk(asio::const_buffer(data.data(), data.size())), use_nothrow);
        if (ec) broken_ = true;
        co_return !ec;
    }

    task<bool> end_stream() override {
        if (state_ != state::streaming || broken_) co_return false;
        state_ = state::done;
        arm();
        auto [ec, n] = co_await asio::async_write(stream_, http::make_chunk_last(), use_nothrow);
        if (ec) broken_ = true;
        co_return !ec;
    }

    void abort() override {
        broken_ = true;
        error_code ignored;
        lowest_socket(stream_).shutdown(tcp::socket::shutdown_both, ignored);
        lowest_socket(stream_).close(ignored);
    }

    bool answered() const override { return state_ != state::fresh; }
    std::string const& remote_address() const override { return remote_; }

    // The connection can carry another request only after a complete answer.
    bool reusable() const { return !broken_ && state_ == state::done && keep_alive_; }

private:
    enum class state { fresh, streaming, done };
    void arm() { beast::get_lowest_layer(stream_).expires_after(opts_.write_timeout); }

    Stream& stream_;
    request const& req_;
    server_options const& opts_;
    std::string const& remote_;
    state state_ = state::fresh;
    bool broken_ = false;
    bool keep_alive_ = false;
    std::string request_id_;
};

// A WebSocket over the connection's stream (plain or TLS).
template <class Stream>
class stream_websocket final : public websocket_connection {
public:
    stream_websocket(Stream& stream, std::string const& remote) : ws_{stream}, remote_{remote} {}

    beast::websocket::stream<Stream&>& ws() { return ws_; }

    task<boost::system::result<std::string>> read() override {
        beast::flat_buffer buffer;
        auto [ec, n] = co_await ws_.async_read(buffer, use_nothrow);
        if (ec) {
            co_return ec;
        }
        co_return beast::buffers_to_string(buffer.data());
    }
    task<bool> write(std::string text) override {
        ws_.text(true);
        auto [ec, n] = co_await ws_.async_write(asio::buffer(text), use_nothrow);
        co_return !ec;
    }
    task<void> close(std::uint16_t code, std::string reason) override {
        if (reason.size() > 123) {
            reason.resize(123);
        }
        beast::websocket::close_reason cr;
        cr.code = code;
        cr.reason = reason;
        co_await ws_.async_close(cr, use_nothrow);
    }
    void abort() override {
        error_code ignored;
        beast::get_lowest_layer(ws_).socket().close(ignored);
    }
    std::string const& remote_address() const override { return remote_; }

private:
    beast::websocket::stream<Stream&> ws_;
    std::string const& remote_;
};

}  // namespace

struct http_server::impl : std::enable_shared_from_this<impl> {
    impl(asio::any_io_executor ex, server_options o, handler h, websocket_handler ws)
        : executor{std::move(ex)}, options{std::move(o)}, on_request{std::move(h)}, on_websocket{std::move(ws)},
          acceptor{net::make_strand(executor)} {}

    asio::any_io_executor executor;
    server_options options;
    handler on_request;
    websocket_handler on_websocket;
    tcp::acceptor acceptor;
    std::atomic<bool> stopped{false};

    mutable std::mutex mutex;  // guards `connections` (touched from many strands)
    struct entry {
        asio::any_io_executor strand;  // the connection's strand
        closable* handle;
    };
    std::unordered_map<std::uint64_t, entry> connections;
    std::uint64_t next_id = 0;

    std::size_t count() const {
        std::lock_guard lock{mutex};
        return connections.size();
    }

    task<void> accept_loop() {
        auto self = shared_from_this();
        while (!stopped) {
            auto [ec, socket] = co_await acceptor.async_accept(net::make_strand(executor), use_nothrow);
            if (ec) {
                if (ec == asio::error::operation_aborted || stopped) co_return;
                spdlog::warn("http: accept failed: {}", ec.message());
                continue;  // e.g. EMFILE: keep listening
            }
            launch(std::move(socket));
            // A burst of clients: take the connections already waiting in the
            // backlog now instead of one per trip through the scheduler.
            for (int burst = 0; burst < 256 && !stopped; ++burst) {
                tcp::socket more{net::make_strand(executor)};
                error_code aec;
                acceptor.accept(more, aec);
                if (aec) break;  // would_block: the backlog is empty
                launch(std::move(more));
            }
        }
    }

    void launch(tcp::socket socket) {
        error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);  // SSE deltas go out at once
        auto ex = socket.get_executor();
        asio::co_spawn(ex, run_connection(std::move(socket)), asio::detached);
    }

    task<void> run_connection(tcp::socket socket) {
        auto self = shared_from_this();
        error_code ec;
        auto peer = socket.remote_endpoint(ec);
        std::string remote = ec ? std::string{"?"} : peer.address().to_string();
        try {
            if (options.tls) {
                beast::ssl_stream<beast::tcp_stream> stream{beast::tcp_stream{std::move(socket)}, *options.tls};
                beast::get_lowest_layer(stream).expires_after(options.read_timeout);
                auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::server, use_nothrow);
                if (hec) co_return;
                co_await serve(stream, remote);
                beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
                co_await stream.async_shutdown(use_nothrow);
            } else {
                beast::tcp_stream stream{std::move(socket)};
                co_await serve(stream, remote);
                stream.socket().shutdown(tcp::socket::shutdown_send, ec);
            }
        } catch (std::exception const& e) {
            spdlog::error("http: connection from {} failed: {}", remote, e.what());
        }
    }

    template <class Stream>
    struct tracked final : closable {
        tracked(impl& s, Stream& st) : server{s}, stream{st} {
            std::lock_guard lock{server.mutex};
            id = ++server.next_id;
            server.connections.emplace(id, entry{lowest_socket(stream).get_executor(), this});
        }
        ~tracked() override {
            std::lock_guard lock{server.mutex};
            server.connections.erase(id);
        }
        void close() override {
            // Runs on the connection's strand (posted by stop()) under the lock.
            error_code ignored;
            lowest_socket(stream).shutdown(tcp::socket::shutdown_both, ignored);
            lowest_socket(stream).close(ignored);
        }
        impl& server;
        Stream& stream;
        std::uint64_t id = 0;
    };

    template <class Stream>
    task<void> serve(Stream& stream, std::string const& remote) {
        if (count() >= options.max_connections) {
            request dummy{http::verb::get, "/", 11};
            auto res = json_error(dummy, http::status::service_unavailable, "overloaded",
                                  "too many connections");
            res.keep_alive(false);
            res.prepare_payload();
            beast::get_lowest_layer(stream).expires_after(options.write_timeout);
            co_await http::async_write(stream, res, use_nothrow);
            co_return;
        }
        tracked<Stream> registration{*this, stream};
        if (stopped) co_return;
        beast::flat_buffer buffer;
        bool first = true;
        for (;;) {
            http::request_parser<http::string_body> parser;
            parser.header_limit(static_cast<std::uint32_t>(options.header_limit));
            parser.body_limit(options.body_limit);
            beast::get_lowest_layer(stream).expires_after(first ? options.read_timeout : options.idle_timeout);
            first = false;
            auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, use_nothrow);
            if (!ec && !parser.is_done()) {
                beast::get_lowest_layer(stream).expires_after(options.read_timeout);
                std::tie(ec, n) = co_await http::async_read(stream, buffer, parser, use_nothrow);
            }
            if (ec) {
                if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
                    ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
                    ec == asio::error::eof)
                    co_return;
                co_await reject(stream, ec);
                co_return;
            }
            request req = parser.release();
            if (on_websocket && !options.websocket_path.empty() && beast::websocket::is_upgrade(req) &&
                std::string_view{req.target()}.substr(0, std::string_view{req.target()}.find('?')) ==
                    options.websocket_path) {
                // The request buffer is not needed past the upgrade (a client
                // sends no frame before the 101): free it, an idle session
                // keeps the frame of this coroutine for its whole life.
                buffer.clear();
                buffer.shrink_to_fit();
                co_await run_websocket(stream, req, remote);
                co_return;
            }
            connection_exchange<Stream> ex{stream, req, options, remote};
            bool failed = false;
            try {
                co_await on_request(req, ex);
            } catch (std::exception const& e) {
                spdlog::error("http: {} {} failed: {}", req.method_string(), req.target(), e.what());
                failed = true;
            }
            if (failed && ex.answered()) ex.abort();  // a half-sent answer: cut it
            if (!ex.answered()) {
                co_await ex.respond(json_error(req, http::status::internal_server_error, "internal_error",
                                               failed ? "internal error" : "no answer"));
            }
            if (!ex.reusable() || stopped) co_return;
        }
    }

    template <class Stream>
    task<void> run_websocket(Stream& stream, request const& req, std::string const& remote) {
        beast::get_lowest_layer(stream).expires_never();  // the websocket's own timeouts from here on
        stream_websocket<Stream> conn{stream, remote};
        auto& ws = conn.ws();
        ws.read_message_max(options.body_limit);
        beast::websocket::stream_base::timeout t{};
        t.handshake_timeout = options.read_timeout;
        t.idle_timeout = options.idle_timeout;
        t.keep_alive_pings = true;
        ws.set_option(t);
        auto [ec] = co_await ws.async_accept(req, use_nothrow);
        if (ec) {
            co_return;
        }
        if (options.on_answer) options.on_answer(req, 101);
        try {
            co_await on_websocket(req, conn);
        } catch (std::exception const& e) {
            spdlog::error("http: websocket from {} failed: {}", remote, e.what());
        }
        if (ws.is_open()) {
            beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
            std::string const no_reason;
            co_await conn.close(static_cast<std::uint16_t>(beast::websocket::close_code::internal_error), no_reason);
        }
    }

    template <class Stream>
    task<void> reject(Stream& stream, error_code ec) {
        request dummy{http::verb::get, "/", 11};
        http::status status = http::status::bad_request;
        std::string_view message = "malformed HTTP request";
        if (ec == http::error::body_limit) {
            status = http::status::payload_too_large;
            message = "request body too large";
        } else if (ec == http::error::header_limit) {
            status = http::status::request_header_fields_too_large;
            message = "request header too large";
        }
        auto res = json_error(dummy, status, "invalid_request_error", message);
        res.keep_alive(false);
        res.prepare_payload();
        beast::get_lowest_layer(stream).expires_after(options.write_timeout);
        co_await http::async_write(stream, res, use_nothrow);
    }
};

http_server::http_server(asio::any_io_executor ex, server_options options, handler h, websocket_handler ws)
    : impl_{std::make_shared<impl>(std::move(ex), std::move(options), std::move(h), std::move(ws))} {}

http_server::~http_server() { stop(); }

void http_server::start() {
    auto& o = impl_->options;
    tcp::endpoint ep{asio::ip::make_address(o.host), o.port};
    auto& a = impl_->acceptor;
    a.open(ep.protocol());
    a.set_option(asio::socket_base::reuse_address(true));
    a.bind(ep);
    a.listen(asio::socket_base::max_listen_connections);
    a.non_blocking(true);  // the accept loop drains the backlog with accept() after each async_accept
    asio::co_spawn(a.get_executor(), impl_->accept_loop(), asio::detached);
}

void http_server::stop_accepting() {
    asio::post(impl_->acceptor.get_executor(), [i = impl_] {
        error_code ignored;
        i->acceptor.close(ignored);
    });
}

void http_server::stop() {
    if (impl_->stopped.exchange(true)) return;
    stop_accepting();
    std::lock_guard lock{impl_->mutex};
    for (auto& [id, e] : impl_->connections) {
        // Close on the connection's own strand, where its coroutine runs and
        // where its registration is removed, so the handle is still alive.
        asio::post(e.strand, [i = impl_, id = id] {
            std::lock_guard inner{i->mutex};
            if (auto it = i->connections.find(id); it != i->connections.end()) it->second.handle->close();
        });
    }
}

asio::ip::tcp::endpoint http_server::local_endpoint() const { return impl_->acceptor.local_endpoint(); }

std::size_t http_server::open_connections() const { return impl_->count(); }

}  // namespace parley::net
