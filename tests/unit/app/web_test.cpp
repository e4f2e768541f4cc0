// The reference chat page's files (app/web.cpp): which requests they answer,
// with what headers, and that the bytes are web/ as built.
#include "app/web.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <iterator>
#include <string>

namespace http = parley::net::http;
using parley::app::web_asset;

namespace {

parley::net::request make_request(http::verb method, std::string target) {
    parley::net::request req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    return req;
}

std::string source_file(std::string const& name) {
    std::ifstream in{std::string{PARLEY_SOURCE_DIR} + "/web/" + name, std::ios::binary};
    BOOST_REQUIRE_MESSAGE(in, "cannot read web/" << name);
    return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

struct asset_case {
    char const* target;
    char const* file;
    char const* content_type;
};

constexpr asset_case assets[] = {
    {"/", "index.html", "text/html; charset=utf-8"},
    {"/index.html", "index.html", "text/html; charset=utf-8"},
    {"/app.js", "app.js", "text/javascript; charset=utf-8"},
    {"/app.css", "app.css", "text/css; charset=utf-8"},
    {"/?lang=en", "index.html", "text/html; charset=utf-8"},
};

}  // namespace

BOOST_AUTO_TEST_SUITE(web_suite)

BOOST_AUTO_TEST_CASE(get_serves_each_file_as_built_with_its_content_type) {
    for (auto const& c : assets) {
        BOOST_TEST_CONTEXT("GET " << c.target) {
            auto res = web_asset(make_request(http::verb::get, c.target));
            BOOST_REQUIRE(res.has_value());
            BOOST_TEST(res->result() == http::status::ok);
            BOOST_TEST(res->version() == 11u);
            BOOST_TEST(std::string{(*res)[http::field::content_type]} == c.content_type);
            BOOST_TEST(res->body() == source_file(c.file));
        }
    }
}

BOOST_AUTO_TEST_CASE(every_answer_carries_the_security_and_cache_headers) {
    for (auto method : {http::verb::get, http::verb::head}) {
        for (auto const& c : assets) {
            BOOST_TEST_CONTEXT(http::to_string(method) << " " << c.target) {
                auto res = web_asset(make_request(method, c.target));
                BOOST_REQUIRE(res.has_value());
                BOOST_TEST(std::string{(*res)[http::field::cache_control]} == "no-cache");
                BOOST_TEST(std::string{(*res)["X-Content-Type-Options"]} == "nosniff");
                BOOST_TEST(std::string{(*res)["Referrer-Policy"]} == "no-referrer");
                std::string const csp{(*res)["Content-Security-Policy"]};
                BOOST_TEST(csp.find("default-src 'self'") != std::string::npos);
                BOOST_TEST(csp.find("script-src 'self'") != std::string::npos);
                BOOST_TEST(csp.find("connect-src 'self' ws: wss:") != std::string::npos);
                BOOST_TEST(csp.find("frame-ancestors 'none'") != std::string::npos);
                BOOST_TEST(csp.find("unsafe-inline") == std::string::npos);
                BOOST_TEST(csp.find("unsafe-eval") == std::string::npos);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(head_has_the_headers_and_no_body) {
    auto res = web_asset(make_request(http::verb::head, "/app.js"));
    BOOST_REQUIRE(res.has_value());
    BOOST_TEST(res->result() == http::status::ok);
    BOOST_TEST(std::string{(*res)[http::field::content_type]} == "text/javascript; charset=utf-8");
    BOOST_TEST(res->body().empty());
}

BOOST_AUTO_TEST_CASE(other_methods_get_a_json_405_with_allow) {
    for (auto method : {http::verb::post, http::verb::put, http::verb::delete_, http::verb::options}) {
        for (char const* target : {"/", "/index.html", "/app.js", "/app.css"}) {
            BOOST_TEST_CONTEXT(http::to_string(method) << " " << target) {
                auto res = web_asset(make_request(method, target));
                BOOST_REQUIRE(res.has_value());
                BOOST_TEST(res->result() == http::status::method_not_allowed);
                BOOST_TEST(std::string{(*res)[http::field::allow]} == "GET, HEAD");
                BOOST_TEST(std::string{(*res)[http::field::content_type]} == "application/json");
                auto body = boost::json::parse(res->body()).as_object();
                auto const& error = body.at("error").as_object();
                BOOST_TEST(error.at("code").as_int64() == 405);
                BOOST_TEST(std::string{error.at("message").as_string()} == std::string{"use GET or HEAD "} + target);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(other_paths_are_not_the_page) {
    for (char const* target : {"/v1/ws", "/healthz", "/index.htm", "/app.js/", "/web/app.js", "/APP.JS",
                               "/../web/app.js", "//", "", "/favicon.ico", "/v1/dev/token"}) {
        BOOST_TEST_CONTEXT("GET " << target) {
            BOOST_TEST(!web_asset(make_request(http::verb::get, target)).has_value());
            BOOST_TEST(!web_asset(make_request(http::verb::post, target)).has_value());
        }
    }
}

BOOST_AUTO_TEST_CASE(the_page_has_no_inline_script_or_style) {
    // A strict CSP (no 'unsafe-inline') would block them.
    auto const html = source_file("index.html");
    BOOST_TEST(html.find("<script>") == std::string::npos);
    BOOST_TEST(html.find("<style") == std::string::npos);
    BOOST_TEST(html.find(" style=") == std::string::npos);
    BOOST_TEST(html.find(" onclick=") == std::string::npos);
    BOOST_TEST(html.find("<script type=\"module\" src=\"app.js\"></script>") != std::string::npos);
    BOOST_TEST(html.find("href=\"app.css\"") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
