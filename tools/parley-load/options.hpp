#pragma once
// parley-load's command line (README.md in this folder lists every option).
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace parley::load {

struct options {
    std::string scenario;  // http | ws | nats
    std::string url;       // http://h:p/path, ws://h:p/path, nats://h:p
    std::string subject = "parley.chat";  // nats

    // Shape of the load. http and nats: open loop at `rate` requests per
    // second, or (rate 0) a closed loop of `concurrency` callers.
    double rate = 0;
    unsigned concurrency = 10;
    unsigned max_connections = 4'096;  // http open loop: the pool's cap
    double duration_s = 10;            // http/nats: how long to send; ws: hard cap
    std::uint64_t max_requests = 0;    // 0: as many as the duration allows
    double timeout_s = 60;             // per request or turn
    double drain_s = 30;               // after the last send, how long answers may take

    // What is asked.
    bool stream = false;
    std::string model = "anthropic/claude-3.5-sonnet";
    std::string prompt = "Hello from parley-load";
    std::optional<unsigned> max_tokens;
    std::string language = "en";
    std::vector<std::pair<std::string, std::string>> headers;  // http, extra

    // Who asks: a fixed bearer token, or tokens minted with the JWT secret
    // for users <prefix>0 .. <prefix>(users-1).
    std::optional<std::string> token;
    std::optional<std::string> secret;
    unsigned users = 1;
    std::string user_prefix = "load-";

    // ws sessions.
    unsigned sessions = 10;
    unsigned messages = 1;   // per session; 0: connect, hold, close
    double think_ms = 0;     // between a session's messages
    double ramp_up_s = 0;    // sessions start evenly over this time
    double hold_s = 0;       // sessions stay open until this long after the ramp-up's end

    unsigned threads = 1;
    int watch_pid = 0;       // report this process's CPU and memory
    bool json = false;
    double progress_s = 1;
    bool quiet = false;      // no progress line
};

struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Throws usage_error with a one-line message for anything invalid.
options parse_options(int argc, char** argv);
std::string usage_text();

}  // namespace parley::load
