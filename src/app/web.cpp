#include "app/web.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>

#include <algorithm>
#include <array>
#include <string>
#include <string_view>

namespace parley::app {

// The bytes of web/<path>, compiled in by cmake/embed_web.cmake
// (generated embedded_web.cpp).
std::optional<std::string_view> embedded_web(std::string_view path);

namespace {

namespace http = net::http;

struct asset {
    std::string_view path;  // as requested
    std::string_view file;  // under web/
    std::string_view content_type;
};

constexpr std::array<asset, 4> assets{{
    {"/", "index.html", "text/html; charset=utf-8"},
    {"/index.html", "index.html", "text/html; charset=utf-8"},
    {"/app.js", "app.js", "text/javascript; charset=utf-8"},
    {"/app.css", "app.css", "text/css; charset=utf-8"},
}};

// The page has no inline script or style and talks only to its own origin
// (the WebSocket included: a ws: source is not matched by 'self' in every
// browser). data: images: the empty favicon in index.html.
constexpr std::string_view content_security_policy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'";

}  // namespace

std::optional<net::response> web_asset(net::request const& req) {
    auto const target = std::string_view{req.target()};
    auto const path = target.substr(0, target.find('?'));
    auto const found = std::find_if(assets.begin(), assets.end(), [path](asset const& a) { return a.path == path; });
    if (found == assets.end()) {
        return std::nullopt;
    }
    bool const head = req.method() == http::verb::head;
    if (req.method() != http::verb::get && !head) {
        auto res = net::json_error(req, http::status::method_not_allowed, "invalid_request_error",
                                   "use GET or HEAD " + std::string{path});
        res.set(http::field::allow, "GET, HEAD");
        return res;
    }
    net::response res{http::status::ok, req.version()};
    res.set(http::field::content_type, found->content_type);
    res.set(http::field::cache_control, "no-cache");
    res.set("X-Content-Type-Options", "nosniff");
    res.set("Content-Security-Policy", content_security_policy);
    res.set("Referrer-Policy", "no-referrer");
    if (!head) {
        res.body() = std::string{embedded_web(found->file).value()};  // every asset is embedded
    }
    return res;
}

}  // namespace parley::app
