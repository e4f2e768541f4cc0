#include "scenario.hpp"

#include "domain/jwt.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/websocket/error.hpp>
#include <boost/url/parse.hpp>

#include <cctype>
#include <chrono>

namespace parley::load {

std::string token_for(options const& o, std::size_t n) {
    if (o.token) return *o.token;
    if (!o.secret) return {};
    jwt_claims c;
    c.sub = o.user_prefix + std::to_string(n % o.users);
    auto const now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    c.iat = now;
    c.exp = now + 86'400;
    c.lang = o.language;
    return mint_jwt(c, *o.secret);
}

std::string error_name(boost::system::error_code ec) {
    namespace asio = boost::asio;
    namespace beast = boost::beast;
    if (ec == beast::error::timeout) return "timeout";
    if (ec == asio::error::connection_refused) return "connection_refused";
    if (ec == asio::error::connection_reset || ec == asio::error::broken_pipe) return "connection_reset";
    if (ec == asio::error::eof || ec == beast::http::error::end_of_stream || ec == beast::http::error::partial_message)
        return "connection_closed";
    if (ec == beast::websocket::error::closed) return "closed_by_server";
    if (ec == asio::error::operation_aborted) return "cancelled";
    std::string name = ec.message();
    for (auto& c : name) c = (c == ' ') ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return name;
}

target_url parse_target(std::string const& url, std::string const& scheme) {
    auto u = boost::urls::parse_uri(url);
    if (!u) throw usage_error{"--url " + url + ": not a URL"};
    if (u->scheme() != scheme) {
        throw usage_error{"--url " + url + ": " + scheme + ":// only (loopback benchmarks; no TLS)"};
    }
    target_url t;
    t.address = std::string{u->host_address()};
    boost::system::error_code ec;
    boost::asio::ip::make_address(t.address, ec);
    if (ec) throw usage_error{"--url " + url + ": the host must be an IP address (loopback)"};
    t.port = static_cast<unsigned short>(u->has_port() ? u->port_number() : 80);
    t.host = std::string{u->encoded_host_and_port()};
    t.target = std::string{u->encoded_target()};
    if (t.target.empty()) t.target.push_back('/');  // (not = "/": a g++ 12 -Wrestrict false positive)
    return t;
}

std::string_view value_after(std::string_view json, std::string_view key) {
    std::size_t from = 0;
    while (true) {
        auto at = json.find(key, from);
        if (at == std::string_view::npos) return {};
        // key must be quoted: "key"
        if (at == 0 || json[at - 1] != '"' || at + key.size() >= json.size() || json[at + key.size()] != '"') {
            from = at + 1;
            continue;
        }
        auto p = at + key.size() + 1;
        while (p < json.size() && json[p] == ' ') ++p;
        if (p >= json.size() || json[p] != ':') {
            from = at + 1;
            continue;
        }
        ++p;
        while (p < json.size() && json[p] == ' ') ++p;
        return json.substr(p);
    }
}

std::uint64_t leading_number(std::string_view text) {
    std::uint64_t n = 0;
    for (char c : text) {
        if (c < '0' || c > '9') break;
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return n;
}

std::string leading_string(std::string_view text) {
    if (text.empty() || text.front() != '"') return {};
    auto end = text.find('"', 1);
    if (end == std::string_view::npos) return {};
    return std::string{text.substr(1, end - 1)};
}

void turn_timing::token(clock::time_point now, stats& s, live_counters& live) {
    if (!any) {
        s.ttft.record(micros_between(start, now));
        any = true;
    } else {
        s.gap.record(micros_between(last, now));
    }
    last = now;
    ++s.tokens;
    live.tokens.fetch_add(1, std::memory_order_relaxed);
}

frame_outcome on_frame(std::string_view frame, clock::time_point now, turn_timing& t, stats& s,
                       live_counters& live) {
    auto type = leading_string(value_after(frame, "type"));
    if (type == "delta") {
        t.token(now, s, live);
        return frame_outcome::going_on;
    }
    if (type == "done") {
        if (!t.any) s.ttft.record(micros_between(t.start, now));
        s.latency.record(micros_between(t.start, now));
        s.usage_tokens += leading_number(value_after(frame, "output_tokens"));
        ++s.ok;
        return frame_outcome::done;
    }
    if (type == "error") {
        auto code = leading_string(value_after(frame, "code"));
        s.error(code.empty() ? "error_frame" : code, live);
        return frame_outcome::failed;
    }
    return frame_outcome::going_on;  // tool progress, ready, pong
}

void sse_scan::feed(std::string_view bytes, clock::time_point now, turn_timing& t, stats& s, live_counters& live) {
    // Whole lines straight from `bytes`; only a trailing partial line is kept.
    if (!pending_.empty()) {
        auto nl = bytes.find('\n');
        if (nl == std::string_view::npos) {
            pending_.append(bytes);
            if (pending_.size() > 1024 * 1024) failed_ = true, pending_.clear();
            return;
        }
        pending_.append(bytes.substr(0, nl));
        line(pending_, now, t, s, live);
        pending_.clear();
        bytes.remove_prefix(nl + 1);
    }
    while (!bytes.empty()) {
        auto nl = bytes.find('\n');
        if (nl == std::string_view::npos) {
            pending_.assign(bytes);
            return;
        }
        line(bytes.substr(0, nl), now, t, s, live);
        bytes.remove_prefix(nl + 1);
    }
}

void sse_scan::line(std::string_view l, clock::time_point now, turn_timing& t, stats& s, live_counters& live) {
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (l.rfind("data:", 0) != 0) return;  // comments (keep-alives), event names, blank lines
    l.remove_prefix(5);
    if (!l.empty() && l.front() == ' ') l.remove_prefix(1);
    if (l == "[DONE]") {
        done_ = true;
        return;
    }
    if (l.rfind("{\"error\"", 0) == 0 || value_after(l, "finish_reason").rfind("\"error\"", 0) == 0) {
        failed_ = true;
        return;
    }
    auto content = value_after(l, "content");
    if (content.size() > 1 && content[0] == '"' && content[1] != '"') t.token(now, s, live);
    if (auto u = value_after(l, "completion_tokens"); !u.empty()) usage_tokens_ = leading_number(u);
}

}  // namespace parley::load
