#pragma once
// The NATS front door (ARCHITECTURE §4 "NATS"; issue #7): chat requests on
// `nats.subject` in queue group `nats.queue_group` (several Parley
// processes share the work), each answered on its reply subject with the
// frames of the WebSocket protocol: `delta`... (when "stream" is true, the
// default), then `done` or `error`; the last one also carries the
// `conversation_id` (there is no `ready` frame), to resume it. Error frames
// carry the request's `id` when it had one.
//
//   request: {"token":"<jwt or API key>","text":"...","context":{...}?,
//             "conversation_id":"..."?,"language":"es|en"?,"stream":bool?,"id":"..."?}
//
// A request without a reply subject is logged and counted, never run. A
// bad token or a malformed request gets one `error` frame (`unauthorized`
// or `bad_request`, in the request's language, else the token's, else the
// default). A turn runs at most nats.request_timeout_ms, then it is
// cancelled; its usage is recorded whatever happens. Graceful shutdown
// lets turns finish within the grace period, then cancels them.
#include "app/http_api.hpp"
#include "net/nats_bus.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace parley::app {

struct nats_front_counters {
    std::atomic<std::uint64_t> requests{0};       // chat requests that ran a turn
    std::atomic<std::uint64_t> no_reply{0};       // dropped: no reply subject
    std::atomic<std::uint64_t> unauthorized{0};   // refused: bad or missing token
    std::atomic<std::uint64_t> bad_request{0};    // refused: not a valid request
    std::atomic<std::uint64_t> frames_out{0};     // frames published as replies
};

struct nats_front_options {
    std::string subject = "parley.chat";
    std::string queue_group = "parley";
    std::chrono::milliseconds request_timeout{120'000};
};

// Subscribes and serves until the bus closes. The counters are the front's
// (for /metrics).
std::shared_ptr<nats_front_counters> start_nats_front(asio::any_io_executor ex, std::shared_ptr<http_api const> api,
                                                      std::shared_ptr<net::nats_bus> bus,
                                                      nats_front_options options);

}  // namespace parley::app
