#include "net/sse.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace parley::net {

namespace {

constexpr std::string_view utf8_bom = "\xEF\xBB\xBF";

// The largest reconnection time kept (about 31 years): longer digit strings
// saturate instead of overflowing.
constexpr std::int64_t max_retry_ms = 1'000'000'000'000;

}  // namespace

sse_decoder::sse_decoder(std::size_t max_event_bytes) : max_{max_event_bytes} {}

bool sse_decoder::feed(std::string_view bytes, event_handler const& on_event) {
    if (error_ != sse_error::none) {
        return false;
    }
    if (!bom_done_) {
        std::size_t i = 0;
        while (i < bytes.size() && bom_matched_ < utf8_bom.size() && bytes[i] == utf8_bom[bom_matched_]) {
            ++i;
            ++bom_matched_;
        }
        if (bom_matched_ == utf8_bom.size()) {
            bom_done_ = true;
            bytes.remove_prefix(i);
        } else if (i == bytes.size()) {
            return true;  // every byte so far may still be the start of a BOM
        } else {
            // Not a BOM after all: the bytes matched in earlier feeds are
            // data; this feed's matched bytes are still at the front of `bytes`.
            bom_done_ = true;
            decode(utf8_bom.substr(0, bom_matched_ - i), on_event);
        }
    }
    decode(bytes, on_event);
    return error_ == sse_error::none;
}

std::vector<sse_event> sse_decoder::feed(std::string_view bytes) {
    std::vector<sse_event> out;
    feed(bytes, [&out](sse_event const& e) { out.push_back(e); });
    return out;
}

void sse_decoder::decode(std::string_view bytes, event_handler const& on_event) {
    char const* const p = bytes.data();
    std::size_t const n = bytes.size();
    std::size_t i = 0;
    if (skip_lf_ && n > 0) {
        skip_lf_ = false;
        if (p[0] == '\n') {
            i = 1;  // the LF of a CRLF split across two feeds
        }
    }
    while (i < n && error_ == sse_error::none) {
        char const* const start = p + i;
        std::size_t const rest = n - i;
        auto const* lf = static_cast<char const*>(std::memchr(start, '\n', rest));
        std::size_t len = lf != nullptr ? static_cast<std::size_t>(lf - start) : rest;
        auto const* cr = static_cast<char const*>(std::memchr(start, '\r', len));
        if (cr != nullptr) {
            len = static_cast<std::size_t>(cr - start);
        }
        if (lf == nullptr && cr == nullptr) {
            // An unterminated line: keep it for the next feed.
            if (line_.size() + rest + event_.data.size() > max_) {
                fail();
                return;
            }
            line_.append(start, rest);
            return;
        }
        if (line_.empty()) {
            line({start, len}, on_event);  // the whole line is in this feed: no copy
        } else {
            line_.append(start, len);
            line(line_, on_event);
            line_.clear();
        }
        i += len + 1;
        if (cr != nullptr) {
            if (i < n) {
                if (p[i] == '\n') {
                    ++i;
                }
            } else {
                skip_lf_ = true;
            }
        }
    }
}

bool sse_decoder::line(std::string_view text, event_handler const& on_event) {
    if (text.size() + event_.data.size() > max_) {
        return fail();
    }
    if (text.empty()) {
        dispatch(on_event);
        return true;
    }
    if (text.front() == ':') {
        ++comments_;
        return true;
    }
    in_event_ = true;
    auto const colon = text.find(':');
    if (colon == std::string_view::npos) {
        field(text, {});
        return true;
    }
    auto value = text.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') {
        value.remove_prefix(1);
    }
    field(text.substr(0, colon), value);
    return true;
}

void sse_decoder::field(std::string_view name, std::string_view value) {
    if (name == "data") {
        event_.data.append(value);
        event_.data.push_back('\n');
    } else if (name == "event") {
        event_.event.assign(value);
    } else if (name == "id") {
        if (value.find('\0') == std::string_view::npos) {
            last_id_.assign(value);
        }
    } else if (name == "retry") {
        bool const digits =
            !value.empty() && std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (digits) {
            std::int64_t ms = 0;
            for (char c : value) {
                ms = std::min(ms * 10 + (c - '0'), max_retry_ms);
            }
            retry_ = std::chrono::milliseconds{ms};
        }
    }
    // Any other field is ignored (WHATWG).
}

void sse_decoder::dispatch(event_handler const& on_event) {
    in_event_ = false;
    if (event_.data.empty()) {
        event_.event.clear();
        return;
    }
    event_.data.pop_back();  // the LF after the last data line
    event_.id = last_id_;
    ++events_;
    if (on_event) {
        on_event(event_);
    }
    event_.data.clear();
    event_.event.clear();
}

sse_end sse_decoder::finish() {
    if (error_ != sse_error::none) {
        return sse_end::failed;
    }
    bool const pending = !line_.empty() || in_event_ || (!bom_done_ && bom_matched_ > 0);
    line_.clear();
    event_.data.clear();
    event_.event.clear();
    in_event_ = false;
    skip_lf_ = false;
    return pending ? sse_end::truncated : sse_end::clean;
}

void sse_decoder::reset() { *this = sse_decoder{max_}; }

bool sse_decoder::fail() {
    error_ = sse_error::event_too_large;
    line_ = std::string{};
    event_ = sse_event{};
    return false;
}

}  // namespace parley::net
