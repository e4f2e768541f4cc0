#pragma once
// The reference chat page (web/, ARCHITECTURE §4 `GET /`), compiled into the
// binary so an installed parley serves it without a checkout.
#include "net/http_server.hpp"

#include <optional>

namespace parley::app {

// GET or HEAD of one of the page's files ("/" is web/index.html): its
// response (Content-Type, Cache-Control); nullopt when the path is none of them.
std::optional<net::response> web_asset(net::request const& req);

}  // namespace parley::app
