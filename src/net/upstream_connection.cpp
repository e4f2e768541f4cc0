#include "net/upstream_connection.hpp"

#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <stdexcept>

namespace parley::net {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using clock = upstream_connection::clock;

// ------------------------------------------------------------------ errors

namespace {

class upstream_category_impl final : public boost::system::error_category {
public:
    char const* name() const noexcept override { return "parley.upstream"; }
    std::string message(int ev) const override {
        switch (static_cast<upstream_errc>(ev)) {
        case upstream_errc::connect_timeout: return "connect timeout (resolve, connect and TLS handshake)";
        case upstream_errc::first_byte_timeout: return "no response header within the first-byte timeout";
        case upstream_errc::chunk_gap_timeout: return "the response went silent for longer than the chunk-gap timeout";
        case upstream_errc::deadline_exceeded: return "the call's total deadline passed";
        case upstream_errc::stale_connection: return "the kept-alive connection was closed by the peer";
        case upstream_errc::not_ready: return "connection operation out of order";
        }
        return "unknown upstream error";
    }
};

}  // namespace

boost::system::error_category const& upstream_category() noexcept {
    static upstream_category_impl const c;
    return c;
}

// ----------------------------------------------------------------- the URL

std::string upstream_endpoint::host_header() const {
    std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    if (port != (tls ? 443 : 80)) {
        h += ':';
        h += std::to_string(port);
    }
    return h;
}

boost::system::result<upstream_endpoint, std::string> parse_base_url(std::string_view url) {
    using R = boost::system::result<upstream_endpoint, std::string>;
    auto fail = [](std::string why) { return R{boost::system::in_place_error, std::move(why)}; };
    upstream_endpoint e;
    if (url.starts_with("https://")) {
        url.remove_prefix(8);
    } else if (url.starts_with("http://")) {
        e.tls = false;
        e.port = 80;
        url.remove_prefix(7);
    } else {
        return fail("the URL must start with http:// or https://");
    }
    auto const slash = url.find('/');
    std::string_view authority = url.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? std::string_view{} : url.substr(slash);
    if (authority.find('@') != std::string_view::npos) {
        return fail("user info in the URL is not supported");
    }
    if (path.find_first_of("?#") != std::string_view::npos) {
        return fail("a query or fragment in the base URL is not supported");
    }
    std::string_view port_text;
    if (authority.starts_with("[")) {
        auto const close = authority.find(']');
        if (close == std::string_view::npos) {
            return fail("unterminated IPv6 address");
        }
        e.host = std::string{authority.substr(1, close - 1)};
        auto rest = authority.substr(close + 1);
        if (!rest.empty()) {
            if (rest[0] != ':') {
                return fail("unexpected text after the IPv6 address");
            }
            port_text = rest.substr(1);
            if (port_text.empty()) {
                return fail("empty port");
            }
        }
    } else {
        auto const colon = authority.find(':');
        e.host = std::string{authority.substr(0, colon)};
        if (colon != std::string_view::npos) {
            port_text = authority.substr(colon + 1);
            if (port_text.empty()) {
                return fail("empty port");
            }
        }
    }
    if (e.host.empty()) {
        return fail("the URL has no host");
    }
    if (!port_text.empty()) {
        unsigned p = 0;
        auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), p);
        if (ec != std::errc{} || end != port_text.data() + port_text.size() || p == 0 || p > 65535) {
            return fail("invalid port '" + std::string{port_text} + "'");
        }
        e.port = static_cast<std::uint16_t>(p);
    }
    while (path.ends_with('/')) {
        path.remove_suffix(1);
    }
    e.base_path = std::string{path};
    return e;
}

std::shared_ptr<ssl::context> make_tls_client_context(std::optional<std::string> const& ca_file) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                     ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    ctx->set_verify_mode(ssl::verify_peer);
    error_code ec;
    if (ca_file) {
        ctx->load_verify_file(*ca_file, ec);
        if (ec) {
            throw std::runtime_error("cannot load the CA file " + *ca_file + ": " + ec.message());
        }
    } else {
        ctx->set_default_verify_paths(ec);
        if (ec) {  // LCOV_EXCL_LINE: only fails when OpenSSL itself is broken
            throw std::runtime_error("cannot load the system CA store: " + ec.message());  // LCOV_EXCL_LINE
        }
    }
    return ctx;
}

// -------------------------------------------------------------- connection

namespace {

// When a wait must end: the stage's own limit or the call's deadline,
// whichever comes first, and which of the two it was.
struct bound {
    clock::time_point at;
    bool by_deadline = false;
};

bound limit(std::chrono::milliseconds stage, clock::time_point deadline) {
    auto const at = clock::now() + stage;
    if (deadline <= at) {
        return {deadline, true};
    }
    return {at, false};
}

error_code timeout_error(bound const& b, upstream_errc stage) {
    return b.by_deadline ? make_error_code(upstream_errc::deadline_exceeded) : make_error_code(stage);
}

bool is_peer_close(error_code const& ec) {
    return ec == asio::error::eof || ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
           ec == asio::error::not_connected || ec == http::error::end_of_stream ||
           ec == ssl::error::stream_truncated;
}

using resolve_results = tcp::resolver::results_type;
using resolve_channel = asio::experimental::concurrent_channel<void(error_code, resolve_results)>;

// async_resolve cannot be cancelled (P11): the lookup runs on the resolver's
// thread and answers through a channel; a timer answers timed_out through
// the same one-element channel, whichever comes first wins. The channel and
// the resolver outlive this coroutine as long as the lookup runs.
task<std::pair<error_code, resolve_results>> resolve(asio::any_io_executor ex, std::string host, std::string port,
                                                     clock::time_point until) {
    auto resolver = std::make_shared<tcp::resolver>(ex);
    auto ch = std::make_shared<resolve_channel>(ex, 1);
    resolver->async_resolve(host, port, [resolver, ch](error_code ec, resolve_results r) {
        ch->try_send(ec, std::move(r));
    });
    asio::steady_timer timer{ex, until};
    timer.async_wait([ch](error_code ec) {
        if (!ec) {
            ch->try_send(make_error_code(asio::error::timed_out), resolve_results{});
        }
    });
    auto [ec, results] = co_await ch->async_receive(use_nothrow);
    timer.cancel();
    if (ec == asio::experimental::error::channel_cancelled) {
        ec = asio::error::operation_aborted;
    }
    co_return std::pair{ec, std::move(results)};
}

}  // namespace

struct upstream_connection::impl {
    enum class state { idle, awaiting_header, reading_body, broken };

    std::shared_ptr<connection_options const> options;
    std::unique_ptr<beast::tcp_stream> plain;
    std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure;
    beast::flat_buffer buffer;
    std::optional<http::response_parser<http::string_body>> parser;
    std::string chunk;  // the bytes handed out by the last read_body()
    std::uint64_t body_bytes = 0;  // of the current response
    state st = state::idle;
    bool keep_alive = true;
    bool sent = false;
    std::size_t exchanges = 0;

    beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }
    beast::tcp_stream const& lowest() const { return secure ? beast::get_lowest_layer(*secure) : *plain; }

    // Calls f with the stream the HTTP layer talks to (TLS or plain). f
    // returns an awaitable that is awaited at once (STYLE 2.3).
    template <class F>
    auto with_stream(F&& f) {
        return secure ? f(*secure) : f(*plain);
    }

    void drop() noexcept {
        st = state::broken;
        error_code ignored;
        auto& s = lowest().socket();
        s.shutdown(tcp::socket::shutdown_both, ignored);
        s.close(ignored);
    }
};

upstream_connection::upstream_connection(std::unique_ptr<impl> p) : impl_{std::move(p)} {}

upstream_connection::~upstream_connection() {
    if (impl_) {
        impl_->drop();
    }
}

task<upstream_connection::open_result> upstream_connection::open(asio::any_io_executor ex,
                                                                 std::shared_ptr<connection_options const> options,
                                                                 std::chrono::milliseconds connect_timeout,
                                                                 clock::time_point deadline) {
    auto const b = limit(connect_timeout, deadline);
    if (b.at <= clock::now()) {
        co_return timeout_error(b, upstream_errc::connect_timeout);
    }
    auto const& ep = options->endpoint;
    auto p = std::make_unique<impl>();
    p->options = options;
    auto strand = net::make_strand(ex);
    if (ep.tls) {
        BOOST_ASSERT(options->tls);
        p->secure = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(strand, *options->tls);
    } else {
        p->plain = std::make_unique<beast::tcp_stream>(strand);
    }

    error_code not_ip;
    auto const address = asio::ip::make_address(ep.host, not_ip);
    auto& lowest = p->lowest();
    lowest.expires_at(b.at);
    error_code ec;
    if (!not_ip) {
        std::tie(ec) = co_await lowest.async_connect(tcp::endpoint{address, ep.port}, use_nothrow);
    } else {
        asio::any_io_executor on{strand};
        std::string host = ep.host;
        std::string port = std::to_string(ep.port);
        auto [rec, results] = co_await resolve(std::move(on), std::move(host), std::move(port), b.at);
        if (rec) {
            ec = rec == asio::error::timed_out ? error_code{beast::error::timeout} : rec;
        } else {
            tcp::endpoint connected;
            std::tie(ec, connected) = co_await lowest.async_connect(results, use_nothrow);
        }
    }
    if (ec == beast::error::timeout) {
        co_return timeout_error(b, upstream_errc::connect_timeout);
    }
    if (ec) {
        co_return ec;
    }
    lowest.socket().set_option(tcp::no_delay{true}, ec);
    if (p->secure) {
        if (not_ip) {  // SNI carries names only (RFC 6066)
            SSL_set_tlsext_host_name(p->secure->native_handle(), ep.host.c_str());
        }
        p->secure->set_verify_callback(ssl::host_name_verification(ep.host));
        std::tie(ec) = co_await p->secure->async_handshake(ssl::stream_base::client, use_nothrow);
        if (ec == beast::error::timeout) {
            co_return timeout_error(b, upstream_errc::connect_timeout);
        }
        if (ec) {
            co_return ec;
        }
    }
    lowest.expires_never();
    co_return std::unique_ptr<upstream_connection>{new upstream_connection{std::move(p)}};
}

task<error_code> upstream_connection::send(outgoing_request request, std::chrono::milliseconds first_byte_timeout,
                                           clock::time_point deadline) {
    auto& m = *impl_;
    if (m.st != impl::state::idle) {
        co_return make_error_code(upstream_errc::not_ready);
    }
    ++m.exchanges;
    m.sent = false;
    bool const reused = m.exchanges > 1;
    auto const b = limit(first_byte_timeout, deadline);
    if (b.at <= clock::now()) {
        co_return timeout_error(b, upstream_errc::first_byte_timeout);
    }
    auto const& o = *m.options;
    http::request<http::string_body> req{request.get ? http::verb::get : http::verb::post, request.target, 11};
    req.set(http::field::host, o.endpoint.host_header());
    req.set(http::field::user_agent, o.user_agent);
    if (!request.get) {
        req.set(http::field::content_type, "application/json");
    }
    for (auto& [name, value] : request.headers) {
        req.set(name, value);
    }
    req.body() = std::move(request.body);
    req.keep_alive(true);
    req.prepare_payload();

    m.st = impl::state::awaiting_header;
    m.parser.emplace();
    m.parser->header_limit(static_cast<std::uint32_t>(o.header_limit));
    m.parser->body_limit(boost::none);  // counted in read_body, so an error status survives a long body
    m.body_bytes = 0;
    m.lowest().expires_at(b.at);  // one expiry covers the write and the header (P14)

    auto [wec, written] = co_await m.with_stream([&](auto& s) { return http::async_write(s, req, use_nothrow); });
    if (!wec) {
        m.sent = true;
        std::tie(wec, written) = co_await m.with_stream(
            [&](auto& s) { return http::async_read_header(s, m.buffer, *m.parser, use_nothrow); });
    }
    if (wec) {
        bool const nothing_came = !m.parser->got_some();
        m.drop();
        if (wec == beast::error::timeout) {
            co_return timeout_error(b, upstream_errc::first_byte_timeout);
        }
        if (reused && nothing_came && is_peer_close(wec)) {
            co_return make_error_code(upstream_errc::stale_connection);
        }
        co_return wec;
    }
    m.st = impl::state::reading_body;
    co_return error_code{};
}

unsigned upstream_connection::status() const noexcept {
    auto const& m = *impl_;
    if (!m.parser || !m.parser->is_header_done()) {
        return 0;
    }
    return m.parser->get().result_int();
}

std::optional<std::string_view> upstream_connection::header(std::string_view name) const {
    auto const& m = *impl_;
    if (!m.parser || !m.parser->is_header_done()) {
        return std::nullopt;
    }
    auto const& h = m.parser->get();
    auto it = h.find(beast::string_view{name.data(), name.size()});
    if (it == h.end()) {
        return std::nullopt;
    }
    return std::string_view{it->value().data(), it->value().size()};
}

task<boost::system::result<std::string_view>> upstream_connection::read_body(std::chrono::milliseconds gap_timeout,
                                                                             clock::time_point deadline) {
    auto& m = *impl_;
    if (m.st == impl::state::idle && m.parser) {
        co_return std::string_view{};  // the body already ended
    }
    if (m.st != impl::state::reading_body) {
        co_return make_error_code(upstream_errc::not_ready);
    }
    for (;;) {
        auto& body = m.parser->get().body();
        if (!body.empty()) {
            m.body_bytes += body.size();
            if (m.body_bytes > m.options->body_limit) {
                m.drop();
                co_return make_error_code(http::error::body_limit);
            }
            m.chunk.swap(body);
            body.clear();
            co_return std::string_view{m.chunk};
        }
        if (m.parser->is_done()) {
            m.keep_alive = m.parser->get().keep_alive();
            if (m.buffer.size() != 0) {
                m.keep_alive = false;  // bytes nobody asked for: do not reuse
            }
            m.st = impl::state::idle;
            m.lowest().expires_never();
            co_return std::string_view{};
        }
        auto const b = limit(gap_timeout, deadline);
        if (b.at <= clock::now()) {
            m.drop();
            co_return timeout_error(b, upstream_errc::chunk_gap_timeout);
        }
        m.lowest().expires_at(b.at);
        auto [ec, n] = co_await m.with_stream(
            [&](auto& s) { return http::async_read_some(s, m.buffer, *m.parser, use_nothrow); });
        if (ec) {
            m.drop();
            if (ec == beast::error::timeout) {
                co_return timeout_error(b, upstream_errc::chunk_gap_timeout);
            }
            co_return ec;
        }
    }
}

bool upstream_connection::reusable() const noexcept {
    auto const& m = *impl_;
    return m.st == impl::state::idle && m.keep_alive && m.lowest().socket().is_open();
}

bool upstream_connection::request_sent() const noexcept { return impl_->sent; }

std::size_t upstream_connection::exchanges() const noexcept { return impl_->exchanges; }

bool upstream_connection::idle_alive() const noexcept {
    auto const& m = *impl_;
    if (m.st != impl::state::idle || !m.lowest().socket().is_open()) {
        return false;
    }
    // The socket must be quiet: EOF (0) or any pending byte means the peer
    // closed or spoke out of turn. Non-blocking peek; no Asio operation runs
    // on an idle connection, so touching the descriptor here is safe.
    char byte = 0;
    auto const fd = const_cast<beast::tcp_stream&>(m.lowest()).socket().native_handle();
    auto const n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

upstream_endpoint const& upstream_connection::endpoint() const noexcept { return impl_->options->endpoint; }

void upstream_connection::close() noexcept { impl_->drop(); }

}  // namespace parley::net
