#pragma once
// An incremental Server-Sent Events decoder (WHATWG HTML, "Server-sent
// events", the event stream interpretation). Bytes go in with feed() in any
// pieces (one byte at a time, split inside a UTF-8 character, between CR and
// LF, between the two newlines that end an event); complete events come out.
// No I/O: the HTTP client feeds the de-chunked body.
//
// The rules implemented:
//  * a line ends with CR, LF or CRLF; one leading UTF-8 BOM is dropped;
//  * a line starting with ':' is a comment: counted, never data;
//  * "field:value" with one optional space after the colon; a line without a
//    colon is a field with an empty value;
//  * "data" appends the value and a LF to the data buffer; "event" sets the
//    event type; "id" sets the last event id (kept across events, ignored if
//    it contains NUL); "retry" with only ASCII digits sets the reconnection
//    time; any other field is ignored;
//  * a blank line dispatches the event: its data without the last LF; an
//    event whose data buffer is empty is not dispatched.
// The decoder is byte-transparent: it never decodes UTF-8 (line ends are
// ASCII, so a split inside a character is harmless); callers validate the
// data of each complete event (the JSON parser does).
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::net {

struct sse_event {
    std::string event;  // the "event" field; empty when none came (WHATWG: type "message")
    std::string data;   // the data lines joined by "\n"
    std::string id;     // the last event id at dispatch ("" if none ever came)
};

enum class sse_error {
    none,
    event_too_large,  // one line, or one event's data, passed max_event_bytes
};

// What finish() found at the end of the body.
enum class sse_end {
    clean,      // nothing pending: every event was complete
    truncated,  // a partial line or an undispatched event was pending (dropped)
    failed,     // the decoder was already in its error state
};

class sse_decoder {
public:
    using event_handler = std::function<void(sse_event const&)>;

    static constexpr std::size_t default_max_event_bytes = 1024 * 1024;

    // max_event_bytes bounds the memory one event can take: the data
    // buffer of the event being read plus the line being read.
    explicit sse_decoder(std::size_t max_event_bytes = default_max_event_bytes);

    // Decodes `bytes`, calling on_event for each event completed by them, in
    // order (the event is only valid during the call). Returns false when the
    // decoder is in its error state (then nothing more is decoded).
    bool feed(std::string_view bytes, event_handler const& on_event);

    // The same, returning the completed events; check error() afterwards.
    std::vector<sse_event> feed(std::string_view bytes);

    // At the end of the body: reports whether a partial event was pending
    // and drops it (an unterminated event is never dispatched).
    sse_end finish();

    // Back to the initial state (counters, last event id and error included).
    void reset();

    [[nodiscard]] sse_error error() const noexcept { return error_; }
    [[nodiscard]] std::size_t comments() const noexcept { return comments_; }
    [[nodiscard]] std::size_t events() const noexcept { return events_; }
    [[nodiscard]] std::string const& last_event_id() const noexcept { return last_id_; }
    [[nodiscard]] std::optional<std::chrono::milliseconds> retry() const noexcept { return retry_; }
    [[nodiscard]] std::size_t max_event_bytes() const noexcept { return max_; }

private:
    void decode(std::string_view bytes, event_handler const& on_event);
    bool line(std::string_view text, event_handler const& on_event);
    void field(std::string_view name, std::string_view value);
    void dispatch(event_handler const& on_event);
    bool fail();

    std::size_t max_;
    std::string line_;          // the unterminated line carried over between feeds
    sse_event event_;           // event.data doubles as the WHATWG data buffer
    std::string last_id_;
    std::optional<std::chrono::milliseconds> retry_;
    std::size_t comments_ = 0;
    std::size_t events_ = 0;
    std::size_t bom_matched_ = 0;  // bytes of a leading BOM matched so far
    bool bom_done_ = false;
    bool skip_lf_ = false;         // the last byte seen was a CR ending a line
    bool in_event_ = false;        // a field line came since the last blank line
    sse_error error_ = sse_error::none;
};

}  // namespace parley::net
