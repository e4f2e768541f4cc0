#define BOOST_TEST_MODULE net
#include "net/http_server.hpp"

#include "support/io_fixture.hpp"
#include "support/process.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <string>

using namespace std::chrono_literals;
namespace http = boost::beast::http;
using parley::task;
using parley::use_nothrow;
using tcp = parley::asio::ip::tcp;
namespace asio = parley::asio;

namespace {

// Sends raw bytes, then reads until the peer closes or `limit` passes.
task<std::string> exchange_raw(tcp::endpoint ep, std::string bytes, std::chrono::milliseconds limit = 2000ms) {
    auto ex = co_await asio::this_coro::executor;
    tcp::socket s{ex};
    co_await s.async_connect(ep, asio::use_awaitable);
    co_await asio::async_write(s, asio::buffer(bytes), asio::use_awaitable);
    std::string out;
    asio::steady_timer t{ex, limit};
    t.async_wait([&](boost::system::error_code ec) {
        if (!ec) s.close();
    });
    char buf[4096];
    for (;;) {
        auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), use_nothrow);
        out.append(buf, n);
        if (ec) break;
    }
    t.cancel();
    co_return out;
}

std::string get(std::string_view path, std::string_view extra = "", bool close = true) {
    std::string r = "GET " + std::string{path} + " HTTP/1.1\r\nHost: x\r\n" + std::string{extra};
    if (close) r += "Connection: close\r\n";
    return r + "\r\n";
}

struct server_fixture : parley::test::io_fixture {
    parley::net::server_options options;
    std::unique_ptr<parley::net::http_server> server;

    void start(parley::net::handler h) {
        server = std::make_unique<parley::net::http_server>(ioc.get_executor(), options, std::move(h));
        server->start();
    }
    tcp::endpoint ep() const { return server->local_endpoint(); }
};

task<void> hello(parley::net::request& req, parley::net::exchange& ex) {
    parley::net::response res{http::status::ok, req.version()};
    res.body() = "hello " + std::string{req.target()} + " " + req.body();
    co_await ex.respond(std::move(res));
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(http_server_suite, server_fixture)

BOOST_AUTO_TEST_CASE(answers_and_keeps_the_connection_alive) {
    start(hello);
    run([&]() -> task<void> {
        auto out = co_await exchange_raw(ep(), get("/a", "", false) + get("/b"));
        BOOST_TEST(out.find("hello /a") != std::string::npos);
        BOOST_TEST(out.find("hello /b") != std::string::npos);
        BOOST_TEST(out.find("Content-Length: 9") != std::string::npos);
        server->stop();
    });
}

BOOST_AUTO_TEST_CASE(every_answer_carries_a_request_id) {
    start(hello);
    run([&]() -> task<void> {
        auto echoed = co_await exchange_raw(ep(), get("/a", "X-Request-Id: req-42\r\n"));
        BOOST_TEST(echoed.find("X-Request-Id: req-42\r\n") != std::string::npos, echoed);
        auto made = co_await exchange_raw(ep(), get("/b"));
        auto const at = made.find("X-Request-Id: ");
        BOOST_TEST_REQUIRE(at != std::string::npos);
        auto const id = made.substr(at + 14, made.find("\r\n", at) - at - 14);
        BOOST_TEST(id.size() == 32u);
        BOOST_TEST(id.find_first_not_of("0123456789abcdef") == std::string::npos);
        auto again = co_await exchange_raw(ep(), get("/c"));
        BOOST_TEST(again.find("X-Request-Id: " + id) == std::string::npos);  // a fresh one each time
        std::string const too_long(129, 'x');
        auto replaced = co_await exchange_raw(ep(), get("/d", "X-Request-Id: " + too_long + "\r\n"));
        BOOST_TEST(replaced.find(too_long) == std::string::npos);
        BOOST_TEST(replaced.find("X-Request-Id: ") != std::string::npos);
        server->stop();
    });
}

BOOST_AUTO_TEST_CASE(reads_the_body) {
    start(hello);
    run([&]() -> task<void> {
        auto out = co_await exchange_raw(
            ep(), "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody");
        BOOST_TEST(out.find("hello /p body") != std::string::npos);
        server->stop();
    });
}

BOOST_AUTO_TEST_CASE(rejects_a_body_over_the_limit_with_413) {
    options.body_limit = 10;
    start(hello);
    run([&]() -> task<void> {
        auto out = co_await exchange_raw(
            ep(), "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n01234567890");
        BOOST_TEST(out.rfind("HTTP/1.1 413", 0) == 0);
        BOOST_TEST(out.find("request body too large") != std::string::npos);
        server->stop();
    });
}

BOOST_AUTO_TEST_CASE(rejects_a_header_over_the_limit_with_431) {
    options.header_limit = 256;
    start(hello);
    run([&]() -> task<void> {
        auto out = co_await exchange_raw(ep(), get("/", "X-Big: " + std::string(400, 'a') + "\r\n"));
        BOOST_TEST(out.rfind("HTTP/1.1 431", 0) == 0);
        server->stop();
    });
}

BOOST_AUTO_TEST_CASE(rejects_garbage_with_400) {
    start(hello);
    run([&]() -> task<void> {
        auto out = co_await exchange_raw(ep(), "NOT HTTP AT ALL\r\n\r\n");
        BOOST_TEST(out.rfind("HTTP/1.1 400", 0) == 0);
        BOOST_TEST(out.find("\"type\":\"invalid_request_error\"") != std::string::npos);
        server->stop();
    });
}

BOOST_AUTO_TEST_CASE(a_throwing_handler_gives_500_and_the_server_goes_on) {
    start([](parley::net::request& req, parley::net::exchange& ex) -> task<void> {
        if (req.target() == "/throw") throw std::runtime_error("boom");
        co_await hello(req, ex);
    });
    run([&]() -> task<void> {
        auto out = co_await exchange_raw(ep(), get("/throw"));
        BOOST_TEST(out.rfind("HTTP/1.1 500", 0) == 0);
        BOOST_TEST(out.find("internal error") != std::string::npos);
        auto again = co_await exchange_raw(ep(), get("/ok"));
        BOOST_TEST(again.find("hello /ok") != std::string::npos);
        server->stop();
    });
}

BOOST_AUTO_TEST_CASE(a_handler_that_does_not_answer_gives_500) {
    start([](parley::net::request&, parley::net::exchange&) -> task<void> { co_return; });
    run([&]() -> task<void> {
        auto out = co_await exchange_raw(ep(), get("/"));
        BOOST_TEST(out.rfind("HTTP/1.1 500", 0) == 0);
        BOOST_TEST(out.find("no answer") != std::string::npos);
        server->stop();
    });
}

BOOST_AUTO_TEST_CASE(streams_chunks) {
    start([](parley::net::request& req, parley::net::exchange& ex) -> task<void> {
        http::response_header<> h;
        h.result(http::status::ok);
        h.set(http::field::content_type, "text/event-stream");
        BOOST_TEST(co_await ex.begin_stream(std::move(h)));
        BOOST_TEST(!co_await ex.respond(parley::net::response{}));  // only one answer
        BOOST_TEST(co_await ex.write("data: 1\n\n"));
        BOOST_TEST(co_await ex.write(""));
        BOOST_TEST(co_await ex.write("data: 2\n\n"));
        BOOST_TEST(co_await ex.end_stream());
        BOOST_TEST(!co_await ex.write("late"));
        BOOST_TEST(ex.answered());
        BOOST_TEST(ex.remote_address() == "127.0.0.1");
        (void)req;
    });
    run([&]() -> task<void> {
        auto out = co_await exchange_raw(ep(), get("/s"));
        BOOST_TEST(out.find("Transfer-Encoding: chunked") != std::string::npos);
        BOOST_TEST(out.find("9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n0\r\n\r\n") != std::string::npos);
        server->stop();
    });
}

BOOST_AUTO_TEST_CASE(abort_cuts_the_connection_mid_stream) {
    start([](parley::net::request&, parley::net::exchange& ex) -> task<void> {
        http::response_header<> h;
        h.result(http::status::ok);
        co_await ex.begin_stream(std::move(h));
        co_await ex.write("partial");
        ex.abort();
        BOOST_TEST(!co_await ex.write("more"));
        BOOST_TEST(!co_await ex.end_stream());
    });
    run([&]() -> task<void> {
        auto out = co_await exchange_raw(ep(), get("/s", "", false));
        BOOST_TEST(out.find("partial") != std::string::npos);
        BOOST_TEST(out.find("0\r\n\r\n") == std::string::npos);  // no last chunk
        server->stop();
    });
}

BOOST_AUTO_TEST_CASE(refuses_connections_over_the_limit_with_503) {
    options.max_connections = 1;
    start(hello);
    run([&]() -> task<void> {
        auto ex = co_await asio::this_coro::executor;
        tcp::socket held{ex};
        co_await held.async_connect(ep(), asio::use_awaitable);
        asio::steady_timer t{ex, 100ms};
        co_await t.async_wait(use_nothrow);  // let the server register it
        BOOST_TEST(server->open_connections() == 1u);
        auto out = co_await exchange_raw(ep(), get("/"));
        BOOST_TEST(out.rfind("HTTP/1.1 503", 0) == 0);
        BOOST_TEST(out.find("too many connections") != std::string::npos);
        server->stop();
    });
}

BOOST_AUTO_TEST_CASE(an_idle_connection_is_closed_after_the_idle_timeout) {
    options.idle_timeout = 200ms;
    start(hello);
    run([&]() -> task<void> {
        auto start = std::chrono::steady_clock::now();
        auto out = co_await exchange_raw(ep(), get("/", "", false), 3000ms);
        auto took = std::chrono::steady_clock::now() - start;
        BOOST_TEST(out.find("hello /") != std::string::npos);
        BOOST_TEST(took < 2000ms);  // closed by the server, not by our 3 s cap
        server->stop();
    });
}

BOOST_AUTO_TEST_CASE(stop_closes_open_connections) {
    start(hello);
    run([&]() -> task<void> {
        auto ex = co_await asio::this_coro::executor;
        tcp::socket s{ex};
        co_await s.async_connect(ep(), asio::use_awaitable);
        asio::steady_timer t{ex, 100ms};
        co_await t.async_wait(use_nothrow);
        BOOST_TEST(server->open_connections() == 1u);
        server->stop();
        char c;
        auto [ec, n] = co_await s.async_read_some(asio::buffer(&c, 1), use_nothrow);
        BOOST_TEST(ec == asio::error::eof);
        t.expires_after(50ms);
        co_await t.async_wait(use_nothrow);
        BOOST_TEST(server->open_connections() == 0u);
    });
}

BOOST_AUTO_TEST_CASE(serves_over_tls) {
    parley::test::temp_dir dir;
    auto cert = (dir.path / "cert.pem").string();
    auto key = (dir.path / "key.pem").string();
    std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -addext "
                      "subjectAltName=IP:127.0.0.1 -days 2 -keyout " + key + " -out " + cert + " >/dev/null 2>&1";
    BOOST_REQUIRE(std::system(cmd.c_str()) == 0);
    options.tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
    options.tls->use_certificate_chain_file(cert);
    options.tls->use_private_key_file(key, asio::ssl::context::pem);
    start(hello);
    run([&]() -> task<void> {
        asio::ssl::context client_ctx{asio::ssl::context::tls_client};
        client_ctx.load_verify_file(cert);
        client_ctx.set_verify_mode(asio::ssl::verify_peer);
        asio::ssl::stream<tcp::socket> s{co_await asio::this_coro::executor, client_ctx};
        co_await s.next_layer().async_connect(ep(), asio::use_awaitable);
        co_await s.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
        auto req = get("/tls");
        co_await asio::async_write(s, asio::buffer(req), asio::use_awaitable);
        std::string out;
        char buf[1024];
        for (;;) {
            auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), use_nothrow);
            out.append(buf, n);
            if (ec) break;
        }
        BOOST_TEST(out.find("hello /tls") != std::string::npos);
        server->stop();
    });
}

BOOST_AUTO_TEST_CASE(start_fails_on_a_port_in_use) {
    start(hello);
    parley::net::server_options o = options;
    o.port = ep().port();
    parley::net::http_server second{ioc.get_executor(), o, hello};
    BOOST_CHECK_THROW(second.start(), boost::system::system_error);
    server->stop();
}

BOOST_AUTO_TEST_SUITE_END()
