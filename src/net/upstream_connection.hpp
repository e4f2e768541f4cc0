#pragma once
// One HTTP/1.1 connection to the upstream (OpenRouter or the simulator),
// plain TCP or TLS, used for one exchange at a time and kept alive between
// exchanges (ARCHITECTURE §3, STYLE 2.5). The pool lends it; the borrowing
// coroutine does the I/O itself.
//
// TLS: the peer is verified (verify_peer) against the system CA store, or
// against `ca_file` alone when one is configured (there is no switch that
// turns verification off); SNI is sent for host names; the certificate must
// match the host (host_name_verification, RFC 6125).
//
// Timeouts (Beast stream expiry; on expiry the socket is closed, so a timed
// out connection is never reused):
//   connect     resolve + TCP connect + TLS handshake
//   first byte  from the start of the request write to the response header
//   chunk gap   each wait for more body bytes
// and every wait is also capped by the call's deadline (deadline_exceeded
// then). Cancellation: each operation takes the awaiting coroutine's
// cancellation slot (terminal cancellation, e.g. from `||`); a cancelled
// operation closes the connection and reports operation_aborted.
#include "net/asio.hpp"

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace boost::asio::ssl {
class context;
}

namespace parley::net {

// The failures this layer detects itself (everything else is an Asio, Beast
// or OpenSSL error code).
enum class upstream_errc {
    connect_timeout = 1,  // resolve + connect + TLS handshake took longer than the connect timeout
    first_byte_timeout,   // no response header within the first-byte timeout
    chunk_gap_timeout,    // the body went silent for longer than the chunk-gap timeout
    deadline_exceeded,    // the call's total deadline passed
    stale_connection,     // a reused keep-alive connection was closed by the peer before any response byte
    not_ready,            // an operation out of order (read_body before send, ...)
};

boost::system::error_category const& upstream_category() noexcept;

inline boost::system::error_code make_error_code(upstream_errc e) noexcept {
    return {static_cast<int>(e), upstream_category()};
}

// Where the upstream API lives, parsed from a base URL.
struct upstream_endpoint {
    bool tls = true;
    std::string host;           // a name or an IP literal (IPv6 without brackets)
    std::uint16_t port = 443;
    std::string base_path;      // "/api/v1": no trailing '/', "" for the root

    // The Host header value: host, bracketed if IPv6, ":port" unless default.
    std::string host_header() const;
    bool operator==(upstream_endpoint const&) const = default;
};

// "https://openrouter.ai/api/v1" -> {tls, "openrouter.ai", 443, "/api/v1"}.
// Accepts http and https, an optional port, an optional path; no user info,
// query or fragment. The error is a one-line reason.
boost::system::result<upstream_endpoint, std::string> parse_base_url(std::string_view url);

// A TLS client context: TLS 1.2 or later, verify_peer; trusts only the PEM
// file `ca_file` when given, else the system's default CA store. Throws
// std::runtime_error (one line) when the file cannot be read.
std::shared_ptr<asio::ssl::context> make_tls_client_context(std::optional<std::string> const& ca_file);

struct connection_options {
    upstream_endpoint endpoint;
    std::shared_ptr<asio::ssl::context> tls;  // required when endpoint.tls
    std::size_t header_limit = 64 * 1024;     // response header bytes
    std::size_t body_limit = 64 * 1024 * 1024;  // response body bytes (beyond: read_body fails with http::error::body_limit)
    std::string user_agent = "parley";
};

// A POST of a JSON body. Host, User-Agent, Content-Type and Content-Length
// are set by the connection; `headers` are added as given.
struct outgoing_request {
    std::string target;  // "/api/v1/chat/completions"
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
    bool get = false;  // GET without a body (else POST of a JSON body)
};

class upstream_connection {
public:
    using clock = std::chrono::steady_clock;
    using open_result = boost::system::result<std::unique_ptr<upstream_connection>>;

    // Resolves, connects and (for https) runs the TLS handshake, all within
    // min(connect_timeout, deadline). The connection's I/O runs on its own
    // strand made from `ex`. Errors: upstream_errc::connect_timeout /
    // deadline_exceeded, resolver and socket errors, OpenSSL errors
    // (asio::error::get_ssl_category(): the certificate did not verify, ...),
    // operation_aborted when cancelled.
    static task<open_result> open(asio::any_io_executor ex, std::shared_ptr<connection_options const> options,
                                  std::chrono::milliseconds connect_timeout, clock::time_point deadline);

    ~upstream_connection();
    upstream_connection(upstream_connection const&) = delete;
    upstream_connection& operator=(upstream_connection const&) = delete;

    // Writes the request and reads the response header, within
    // min(first_byte_timeout, deadline) from the start of the write. Returns
    // an error code (empty on success): upstream_errc::first_byte_timeout /
    // deadline_exceeded / stale_connection, or the I/O error. Valid only on
    // an idle connection (reusable() or fresh).
    task<boost::system::error_code> send(outgoing_request request, std::chrono::milliseconds first_byte_timeout,
                                         clock::time_point deadline);

    // The response status and a header (case-insensitive name) of the last
    // send(); 0 / nullopt before a header arrived.
    [[nodiscard]] unsigned status() const noexcept;
    [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const;

    // The next body bytes, as they arrive (de-chunked); an empty view once
    // the body has ended. Each wait is bounded by min(gap_timeout, deadline).
    // The view lasts until the next call. Errors: chunk_gap_timeout,
    // deadline_exceeded, http::error::body_limit, http::error::partial_message
    // (the peer closed mid-body), operation_aborted, ...
    task<boost::system::result<std::string_view>> read_body(std::chrono::milliseconds gap_timeout,
                                                            clock::time_point deadline);

    // True when the last exchange ended cleanly (whole body read, keep-alive,
    // nothing extra received) and the socket is open: it may be lent again.
    [[nodiscard]] bool reusable() const noexcept;
    // The request of the last send() was written completely.
    [[nodiscard]] bool request_sent() const noexcept;
    // Exchanges started on this connection (send() calls).
    [[nodiscard]] std::size_t exchanges() const noexcept;
    // For an idle connection: the socket is open and nothing is waiting to be
    // read (a peer that closed, or sent anything unasked, makes it unusable).
    [[nodiscard]] bool idle_alive() const noexcept;
    [[nodiscard]] upstream_endpoint const& endpoint() const noexcept;

    // Closes the socket now (no TLS close_notify: the connection is dropped).
    void close() noexcept;

private:
    struct impl;
    explicit upstream_connection(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
};

}  // namespace parley::net

template <>
struct boost::system::is_error_code_enum<parley::net::upstream_errc> : std::true_type {};
