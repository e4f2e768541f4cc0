#pragma once
// Pieces the HTTP routes of app/http_api.cpp and app/completions.cpp share.
#include "app/http_api.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace parley::app {

// The status of an error code of ARCHITECTURE §4 (bad_request 400,
// message_too_long 413, unauthorized 401, forbidden 403,
// conversation_not_found 404, rate_limited and budget_exhausted 429,
// not_found 404, ai_unavailable and shutting_down 503, upstream_error 502, others 500).
net::http::status status_of(std::string_view code);

// An error in OpenAI's shape {"error":{message, type: code, code: status}};
// with retry_after also a top-level "retry_after" and the Retry-After header.
// The status is status_of(code) unless given.
net::response error_response(net::request const& req, std::string_view code, std::string const& message,
                             std::optional<std::int64_t> retry_after = std::nullopt,
                             std::optional<net::http::status> status = std::nullopt);

// 200 text/event-stream, Cache-Control: no-store (the header of an SSE answer).
net::http::response_header<> sse_header();

// 200 application/json, Cache-Control: no-store.
net::response json_response(net::request const& req, boost::json::object const& body);

// An `error` frame of §4: {type, id (when not empty), code, message (the
// text of `text`, else of `code`, in `lang`)}.
boost::json::object error_frame(domain::language lang, std::string const& id, std::string const& code,
                                std::string_view text = {});

// Cancels the session's turn in flight, if any, from a coroutine spawned on
// `ex` (for callbacks that cannot await: shutdown, a too-slow client).
void cancel_turn_soon(std::shared_ptr<actors::session> session, asio::any_io_executor ex);

// A `message` frame (ARCHITECTURE §4: id 1..64 bytes, text, context?,
// stream? default true) as a turn, or nullopt when its fields are wrong
// (app/ws_front.cpp; the NATS front reads its requests the same way).
std::optional<actors::turn_request> turn_of(boost::json::object const& o);

// POST /v1/chat/completions for an authenticated caller (app/completions.cpp).
task<void> proxy_completions(std::shared_ptr<http_api const> api, net::request& req, net::exchange& ex,
                             domain::principal who);

}  // namespace parley::app
