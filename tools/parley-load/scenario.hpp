#pragma once
// The pieces every scenario shares: a worker (one thread, one io_context,
// its own stats), the bearer tokens, and the reading of answer frames and
// SSE events that turns arrivals into token times.
#include "options.hpp"
#include "stats.hpp"

#include <boost/system/error_code.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace parley::load {

class worker {
public:
    virtual ~worker() = default;
    // Runs the worker's share of the load to the end (its own thread).
    virtual void run() = 0;
    stats result;
    live_counters live;
};

// One worker per thread, each with its share of the load.
std::vector<std::unique_ptr<worker>> make_http_workers(options const& o);
std::vector<std::unique_ptr<worker>> make_ws_workers(options const& o);
std::vector<std::unique_ptr<worker>> make_nats_workers(options const& o);

// The bearer token for user number `n` (`--token` as is, or minted from
// `--secret` for <prefix><n % users>, valid a day); empty when neither.
std::string token_for(options const& o, std::size_t n);

// An http:// or ws:// URL whose host is an IP address (loopback
// benchmarks: no name lookup, no TLS), split for connecting. Throws
// usage_error naming the URL.
struct target_url {
    std::string address;  // as written: 127.0.0.1, ::1
    unsigned short port = 80;
    std::string host;     // host[:port], for the Host header
    std::string target;   // path and query, at least "/"
};
target_url parse_target(std::string const& url, std::string const& scheme);

// A failed operation's error as a report code: timeout, connection_refused,
// connection_reset, connection_closed, closed_by_server (a WebSocket close),
// cancelled, else the message in snake case.
std::string error_name(boost::system::error_code ec);

// The JSON value after `"key"` and a colon (spaces allowed), or empty.
std::string_view value_after(std::string_view json, std::string_view key);
// A whole number at the start of `text`, or 0.
std::uint64_t leading_number(std::string_view text);
// The string at the start of `text` (which starts with a quote), unescaped
// only as far as needed for codes (no escapes expected), or empty.
std::string leading_string(std::string_view text);

// One request's or turn's timing: the first token gives the time to first
// token, each later one a gap.
struct turn_timing {
    clock::time_point start;
    clock::time_point last{};
    bool any = false;
    void token(clock::time_point now, stats& s, live_counters& live);
};

// Reads Parley's answer frames (WebSocket and NATS): delta, tool, done, error.
enum class frame_outcome { going_on, done, failed };
frame_outcome on_frame(std::string_view frame, clock::time_point now, turn_timing& t, stats& s,
                       live_counters& live);

// Splits an SSE body into events as bytes arrive; counts content tokens,
// notes usage, [DONE] and error events.
class sse_scan {
public:
    void feed(std::string_view bytes, clock::time_point now, turn_timing& t, stats& s, live_counters& live);
    bool done() const noexcept { return done_; }
    bool failed() const noexcept { return failed_; }
    std::uint64_t usage_tokens() const noexcept { return usage_tokens_; }

private:
    void line(std::string_view l, clock::time_point now, turn_timing& t, stats& s, live_counters& live);
    std::string pending_;
    bool done_ = false, failed_ = false;
    std::uint64_t usage_tokens_ = 0;
};

}  // namespace parley::load
