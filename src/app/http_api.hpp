#pragma once
// The assistant and usage over HTTP (ARCHITECTURE §4; part of issue #6):
//
//   POST /v1/respond  {text, context?, language?, conversation_id?, stream?}
//     One turn of the assistant (a SessionActor for the request). Without
//     stream: 200 {text, model, fallback, usage {input_tokens,
//     output_tokens, cost_usd}, tools [{name,status}], conversation_id,
//     session_id}, or an error status with {"error":{message (the user's
//     language), type (the code of §4), code (the status)}, retry_after?}
//     and Retry-After when there is a wait. With "stream":true: 200
//     text/event-stream, one SSE event per frame of §4 (`event: delta`,
//     `tool`, then `done` or `error`; `data:` the frame's JSON). A client
//     that goes away, or reads too slowly (more than 1024 frames waiting),
//     has its turn cancelled; its calls are still recorded.
//   GET /v1/usage?by=day|model|user&since=YYYY-MM-DD&until=YYYY-MM-DD&user=ID
//     The caller's own usage (as `parley usage --json`); with the `admin`
//     permission anyone's (`user`) or everyone's (no `user`). Rows reach the
//     database within usage.flush_interval_ms of their call.
//
// Both need `Authorization: Bearer <JWT or API key>` (401 otherwise). The
// language of a turn: the body's `language`, else the token's `lang`, else
// the configured default. Status of a turn's error: bad_request 400,
// message_too_long 413, conversation_not_found 404, rate_limited 429,
// budget_exhausted 429, ai_unavailable 503, upstream_error 502, others 500.
#include "actors/session.hpp"
#include "domain/auth.hpp"
#include "domain/i18n.hpp"
#include "net/http_server.hpp"

#include <chrono>
#include <functional>
#include <memory>

namespace parley::persistence {
class database;
}
namespace parley::actors {
class usage_writer;
}
namespace parley::net {
class nats_bus;
}

namespace parley::app {

class drain;
class metrics;
struct nats_front_counters;

struct http_api {
    actors::assistant_services assistant;
    std::shared_ptr<persistence::database> db;  // null: /v1/usage answers 503
    domain::auth_config auth;
    std::shared_ptr<domain::auth_cache> verified = std::make_shared<domain::auth_cache>();  // tokens seen valid
    domain::language default_language = domain::language::es;
    std::size_t max_pending_frames = 1024;
    std::chrono::milliseconds hello_timeout{5'000};  // /v1/ws: a connection without a valid hello is closed
    std::function<std::int64_t()> now_unix;  // for token expiry
    // POST /v1/chat/completions: the models a caller may ask for (never
    // empty when served), the model of a body without one, the fallbacks
    // sent with it, and the cap on max_tokens.
    std::vector<std::string> allowed_models;
    std::string default_model;
    std::vector<std::string> fallback_models;
    std::int64_t max_tokens = 4096;
    bool dev_tokens = false;  // GET /v1/dev/token mints tokens (server.dev_tokens)
    // Optional: graceful shutdown's registry of work in flight, the metrics,
    // and the usage writer (for /metrics and /readyz).
    std::shared_ptr<app::drain> drain;
    std::shared_ptr<app::metrics> stats;
    std::shared_ptr<actors::usage_writer> writer;
    std::shared_ptr<net::nats_bus> bus;                  // null: the NATS adapter is off
    std::shared_ptr<nats_front_counters> nats_counters;  // the NATS front's, when it runs
};

// Handles the routes above; false when the path is none of them.
task<bool> handle_api(std::shared_ptr<http_api const> api, net::request& req, net::exchange& ex);

// GET /v1/ws (ARCHITECTURE §4, the WebSocket protocol), once upgraded:
//  * the first frame must be a valid `hello` within hello_timeout (its
//    token, or the Authorization header's): else an `error` frame
//    (unauthorized) and close 1008. A resumed conversation that is not
//    found: `error` conversation_not_found and close 1008. Then `ready`.
//  * `message` {id (1..64 bytes), text, context?, stream? (default true)}
//    starts a turn; `cancel` {id}; `language` {language}; `ping` gets
//    `pong`. A malformed frame (not JSON, unknown type, bad fields) gets an
//    `error` frame (bad_request) and the session goes on.
//  * One writer sends the frames in order; more than max_pending_frames
//    waiting (a client that does not read) drops the connection and
//    cancels the turn (its usage is recorded).
//  * When the connection ends, the turn in flight is cancelled and waited
//    for (recorded), and the session stops.
task<void> serve_websocket(std::shared_ptr<http_api const> api, net::request const& req,
                           net::websocket_connection& ws);

}  // namespace parley::app
