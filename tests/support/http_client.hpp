#pragma once
// A small synchronous HTTP/1.1 client for integration tests: plain TCP or TLS
// (trusting one CA file), keep-alive, every operation time-capped. Whole
// exchanges return status, headers and the de-chunked body (plus the chunk
// sizes seen on the wire); the streaming mode hands out body bytes as they
// arrive, with their arrival time, and can cut the connection mid-body.
//
//   http_client c{"127.0.0.1", port};
//   auto r = c.request(http::verb::post, "/api/v1/chat/completions", body, {{"Authorization", "Bearer k"}});
//   c.send(http::verb::post, "/...", body, headers);
//   auto head = c.read_header();
//   while (auto piece = c.read_piece()) { ... if (enough) { c.close(); break; } }
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace parley::test {

namespace http = boost::beast::http;

using header_list = std::vector<std::pair<std::string, std::string>>;

struct http_response {
    unsigned status = 0;
    header_list headers;                     // in arrival order
    std::string body;                        // de-chunked
    bool chunked = false;                    // Transfer-Encoding: chunked
    std::vector<std::uint64_t> chunk_sizes;  // sizes of the data chunks (the final 0 left out)
    bool complete = false;                   // the message ended properly (not cut)
    std::string error;                       // why it is not complete

    // Value of the first header with this name (case-insensitive), "" if absent.
    std::string header(std::string_view name) const {
        for (auto const& [k, v] : headers)
            if (iequals(k, name)) return v;
        return {};
    }
    bool has_header(std::string_view name) const {
        for (auto const& [k, v] : headers)
            if (iequals(k, name)) return true;
        return false;
    }

    static bool iequals(std::string_view a, std::string_view b) {
        if (a.size() != b.size()) return false;
        for (std::size_t i = 0; i < a.size(); ++i) {
            auto x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
            if (std::tolower(x) != std::tolower(y)) return false;
        }
        return true;
    }
};

// Body bytes as they arrived, `at` after the request was sent.
struct body_piece {
    std::string data;
    std::chrono::milliseconds at{0};
};

class http_client {
public:
    struct tls_options {
        std::filesystem::path ca_file;  // the only trusted CA (or self-signed certificate)
        std::string verify_name;        // name checked against the certificate; empty: the host
    };

    http_client(std::string host, unsigned short port, std::optional<tls_options> tls = std::nullopt,
                std::chrono::milliseconds timeout = std::chrono::seconds(10))
        : host_{std::move(host)}, port_{port}, timeout_{timeout} {
        namespace asio = boost::asio;
        asio::ip::tcp::resolver resolver{ioc_};
        auto endpoints = resolver.resolve(host_, std::to_string(port_));
        if (tls) {
            ssl_ctx_.emplace(asio::ssl::context::tls_client);
            ssl_ctx_->load_verify_file(tls->ca_file.string());
            ssl_ctx_->set_verify_mode(asio::ssl::verify_peer);
            tls_ = std::make_unique<boost::beast::ssl_stream<boost::beast::tcp_stream>>(ioc_, *ssl_ctx_);
            std::string name = tls->verify_name.empty() ? host_ : tls->verify_name;
            tls_->set_verify_callback(asio::ssl::host_name_verification(name));
            boost::system::error_code not_ip;
            asio::ip::make_address(name, not_ip);
            if (not_ip) SSL_set_tlsext_host_name(tls_->native_handle(), name.c_str());  // SNI: names only
        } else {
            plain_ = std::make_unique<boost::beast::tcp_stream>(ioc_);
        }
        auto ec = run([&](auto handler) { lowest().async_connect(endpoints, std::move(handler)); });
        if (ec) throw std::runtime_error("connect " + host_ + ":" + std::to_string(port_) + ": " + ec.message());
        if (tls_) {
            ec = run([&](auto handler) { tls_->async_handshake(boost::asio::ssl::stream_base::client, std::move(handler)); });
            if (ec) throw std::runtime_error("TLS handshake with " + host_ + ": " + ec.message());
        }
    }

    http_client(http_client const&) = delete;
    http_client& operator=(http_client const&) = delete;

    // One whole exchange. Throws when no response header arrives.
    http_response request(http::verb method, std::string const& target, std::string body = {},
                          header_list const& headers = {}) {
        send(method, target, std::move(body), headers);
        return read_rest();
    }
    http_response get(std::string const& target, header_list const& headers = {}) {
        return request(http::verb::get, target, {}, headers);
    }
    http_response post(std::string const& target, std::string body, header_list const& headers = {}) {
        return request(http::verb::post, target, std::move(body), headers);
    }

    // Streaming mode: send, then read_header() and read_piece() until nullopt.
    void send(http::verb method, std::string const& target, std::string body = {}, header_list const& headers = {}) {
        http::request<http::string_body> req{method, target, 11};
        req.set(http::field::host, host_ + ":" + std::to_string(port_));
        req.set(http::field::user_agent, "parley-test");
        bool has_type = false;
        for (auto const& [k, v] : headers) {
            req.set(k, v);
            has_type = has_type || http_response::iequals(k, "content-type");
        }
        if (!body.empty() && !has_type) req.set(http::field::content_type, "application/json");
        req.body() = std::move(body);
        req.keep_alive(true);
        req.prepare_payload();
        current_ = {};
        header_read_ = false;
        consumed_ = 0;
        parser_.emplace();
        parser_->body_limit(64 * 1024 * 1024);
        parser_->on_chunk_header(chunk_header_cb_);
        sent_at_ = std::chrono::steady_clock::now();
        auto ec = run([&](auto handler) {
            with_stream([&](auto& s) { http::async_write(s, req, std::move(handler)); });
        });
        if (ec) throw std::runtime_error("send " + target + ": " + ec.message());
    }

    // Status and headers of the response to the last send(). Throws on failure.
    http_response read_header() {
        if (!parser_) throw std::logic_error("read_header without send");
        if (!header_read_) {
            auto ec = run([&](auto handler) {
                with_stream([&](auto& s) { http::async_read_header(s, buffer_, *parser_, std::move(handler)); });
            });
            if (ec) throw std::runtime_error("reading the response header: " + ec.message());
            header_read_ = true;
            header_at_ = elapsed();
            auto const& msg = parser_->get();
            current_.status = msg.result_int();
            for (auto const& f : msg) current_.headers.emplace_back(std::string{f.name_string()}, std::string{f.value()});
            current_.chunked = parser_->chunked();
            if (parser_->is_done()) current_.complete = true;
        }
        return current_;
    }

    // Milliseconds from send() to the arrival of the response header.
    std::chrono::milliseconds header_at() const { return header_at_; }

    // The next body bytes as they arrive; nullopt once the body ended (see
    // complete()) or failed (error()).
    std::optional<body_piece> read_piece() {
        if (!header_read_) read_header();
        for (;;) {
            auto& body = parser_->get().body();
            if (body.size() > consumed_) {
                body_piece p{body.substr(consumed_), elapsed()};
                consumed_ = body.size();
                return p;
            }
            if (parser_->is_done()) {
                current_.complete = true;
                return std::nullopt;
            }
            if (!current_.error.empty()) return std::nullopt;
            auto ec = run([&](auto handler) {
                with_stream([&](auto& s) { http::async_read_some(s, buffer_, *parser_, std::move(handler)); });
            });
            if (ec) current_.error = ec.message();
        }
    }

    // Reads to the end of the body; returns everything (complete == false if cut).
    http_response read_rest() {
        while (read_piece()) {
        }
        current_.body = parser_->get().body();
        return current_;
    }

    bool complete() const { return current_.complete; }
    std::string const& error() const { return current_.error; }

    // Cuts the connection now (e.g. in the middle of a body).
    void close() {
        boost::system::error_code ignored;
        lowest().socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
        lowest().socket().close(ignored);
    }

private:
    boost::beast::tcp_stream& lowest() { return tls_ ? boost::beast::get_lowest_layer(*tls_) : *plain_; }

    template <class F>
    void with_stream(F&& f) {
        if (tls_) f(*tls_);
        else f(*plain_);
    }

    // Starts one async operation and runs the private io_context until it
    // completes; the stream's timer bounds it (on expiry the socket closes).
    template <class Start>
    boost::system::error_code run(Start start) {
        boost::system::error_code result;
        bool done = false;
        lowest().expires_after(timeout_);
        start([&](boost::system::error_code ec, auto&&...) {
            result = ec;
            done = true;
        });
        ioc_.restart();
        ioc_.run();
        if (!done) result = boost::asio::error::timed_out;
        return result;
    }

    std::chrono::milliseconds elapsed() const {
        return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - sent_at_);
    }

    std::string host_;
    unsigned short port_;
    std::chrono::milliseconds timeout_;
    boost::asio::io_context ioc_;
    std::optional<boost::asio::ssl::context> ssl_ctx_;
    std::unique_ptr<boost::beast::tcp_stream> plain_;
    std::unique_ptr<boost::beast::ssl_stream<boost::beast::tcp_stream>> tls_;
    boost::beast::flat_buffer buffer_;
    std::optional<http::response_parser<http::string_body>> parser_;
    http_response current_;
    bool header_read_ = false;
    std::size_t consumed_ = 0;
    std::chrono::steady_clock::time_point sent_at_{};
    std::chrono::milliseconds header_at_{0};
    std::function<void(std::uint64_t, boost::beast::string_view, boost::system::error_code&)> chunk_header_cb_ =
        [this](std::uint64_t size, boost::beast::string_view, boost::system::error_code&) {
            if (size > 0) current_.chunk_sizes.push_back(size);
        };
};

}  // namespace parley::test
