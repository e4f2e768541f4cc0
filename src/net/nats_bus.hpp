#pragma once
// The NATS adapter (ARCHITECTURE §4 "NATS"; issue #7): one cnats connection
// that reconnects with back-off for as long as the process runs. cnats calls
// back on its own threads; those callbacks only copy what arrived and post
// it to the Asio executor given here, so nothing above ever runs on a cnats
// thread or touches actor state from one.
//
//   auto bus = net::nats_bus::connect(ex, options);            // throws nats_error on bad options
//   bus->queue_subscribe("parley.chat", "parley", [](net::nats_message m) { ... });   // runs on ex
//   bus->publish(m.reply, frame_json);                          // thread-safe
//   auto r = co_await bus->request("tools.weather", args, 5s);   // reply data, or an error
//   bus->close();                                               // drains, then closes
//
// A server that is not there at start-up is retried in the background (the
// process still starts; state() says connecting). Messages over
// max_message_bytes are dropped and counted.
#include "net/asio.hpp"

#include <boost/system/result.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace parley::net {

struct nats_options {
    std::string url;  // one or more nats:// URLs, comma-separated
    std::optional<std::string> user;
    std::optional<std::string> password;
    std::optional<std::string> token;
    std::string name = "parley";
    std::chrono::milliseconds connect_timeout{2'000};
    std::chrono::milliseconds reconnect_wait{250};       // the first wait; doubled up to reconnect_wait_max
    std::chrono::milliseconds reconnect_wait_max{8'000};
    std::size_t max_message_bytes = 1024 * 1024;
};

struct nats_message {
    std::string subject;
    std::string reply;  // empty: the sender wants no answer
    std::string data;
};

enum class nats_state { connecting, connected, reconnecting, closed };
std::string_view to_string(nats_state s) noexcept;

struct nats_counters {
    std::uint64_t received = 0;   // messages handed to a subscription's handler
    std::uint64_t published = 0;  // messages sent (replies, requests)
    std::uint64_t publish_failures = 0;
    std::uint64_t too_large = 0;  // incoming messages dropped for their size
    std::uint64_t reconnects = 0;
};

class nats_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class nats_bus {
public:
    // Starts connecting; throws nats_error for options cnats refuses.
    static std::shared_ptr<nats_bus> connect(asio::any_io_executor ex, nats_options options);
    ~nats_bus();
    nats_bus(nats_bus const&) = delete;
    nats_bus& operator=(nats_bus const&) = delete;

    // Every message on `subject` for this queue group; `on_message` runs on
    // the executor. Throws nats_error when the subscription cannot be made
    // (it is kept across reconnects by cnats).
    void queue_subscribe(std::string const& subject, std::string const& queue,
                         std::function<void(nats_message)> on_message);

    // Ends the queue subscriptions (the server then routes their messages to
    // the group's other members); requests and publishing go on.
    void stop_serving();

    // Thread-safe; false when it could not be buffered (closed, too big).
    bool publish(std::string_view subject, std::string_view data);

    // One request: the first reply's data, or an error: timed_out, no
    // responders (host_unreachable), closed (not_connected), data over
    // max_message_bytes (message_size).
    task<boost::system::result<std::string>> request(std::string subject, std::string data,
                                                     std::chrono::milliseconds timeout);

    nats_state state() const noexcept;
    nats_counters counters() const noexcept;

    // Drains the subscriptions (bounded by `wait`), then closes. Idempotent.
    void close(std::chrono::milliseconds wait = std::chrono::milliseconds{2'000});

    struct impl;

private:
    explicit nats_bus(std::shared_ptr<impl> i) : impl_{std::move(i)} {}
    std::shared_ptr<impl> impl_;
};

}  // namespace parley::net
