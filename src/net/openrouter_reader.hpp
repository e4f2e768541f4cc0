#pragma once
// Reading OpenRouter chat-completion responses (the wire notes, openrouter-api.md
// §4-§6, §9, §10): the SSE stream of a `stream:true` request, a whole
// non-streamed body, and the classification of an error response. Pure code:
// bytes and strings in, values out; the HTTP client feeds it.
//
// Every failure is an upstream_error; `retryable` follows ARCHITECTURE §3
// (the retry loop adds the rule that nothing is retried once a token has
// reached the client: `mid_stream` tells it the failure came inside a stream).
#include "net/sse.hpp"

#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::net {

struct tool_call {
    std::string id;
    std::string name;
    std::string arguments;        // the JSON text as received; "" (or only whitespace) becomes "{}"
    bool arguments_valid = true;  // false: not a JSON object (cut, malformed); `arguments` kept as received
};

struct usage {
    int prompt_tokens = 0;       // includes cached tokens
    int completion_tokens = 0;
    int total_tokens = 0;        // prompt + completion when the field is missing
    std::optional<int> cached_tokens;       // prompt_tokens_details.cached_tokens
    std::optional<int> cache_write_tokens;  // prompt_tokens_details.cache_write_tokens
    std::optional<int> reasoning_tokens;    // completion_tokens_details.reasoning_tokens
    // usage.cost exactly as the JSON number's decimal text ("0.012207"), an
    // exponent rewritten as plain decimals ("1e-05" -> "0.00001"); never a double.
    std::optional<std::string> cost;
};

struct completion {
    std::string text;       // delta.content joined / message.content (null -> "")
    std::string reasoning;  // delta.reasoning / message.reasoning only (reasoning_details, its duplicate, is ignored)
    std::vector<tool_call> tool_calls;  // ordered by index (then arrival)
    std::string finish_reason;          // the first non-null one; "" if none came
    std::string native_finish_reason;
    std::string model;          // the model that served the request
    std::string generation_id;  // the body's "id" (gen-...)
    std::string provider;
    std::optional<parley::net::usage> usage;
    bool saw_done = false;  // the stream ended with data: [DONE] (always false for a non-streamed body)
};

struct upstream_error {
    // The HTTP status of an error response; for an error inside a 200 body or
    // stream, error.code (or error.http_status, or the status documented for
    // metadata.error_type); 0 for a failure Parley detected itself (code_text
    // then names it: empty_body, invalid_json, no_choices, finish_reason_error,
    // stream_ended_early, event_too_large).
    int status = 0;
    std::string code_text;  // error.code as text ("502", "server_error"), or Parley's code; "" if none
    std::string message;    // one line, at most max_error_message_bytes (cut with "...")
    std::optional<std::string> error_type;     // error.metadata.error_type (or error.error_type)
    std::optional<std::string> provider_code;  // error.metadata.provider_code
    std::optional<bool> availability_retryable;
    std::optional<std::string> availability_code;
    std::optional<std::chrono::milliseconds> retry_after;  // retry-after-ms, Retry-After, availability.retry_after
    // X-RateLimit-Reset (epoch ms or s): for logs only, never a retry delay.
    std::optional<std::chrono::system_clock::time_point> rate_limit_reset;
    bool retryable = false;
    bool mid_stream = false;  // came inside a 200 stream: a retry must be a fresh request
};

// The error type of result::value(): lets completion_result throw.
[[noreturn]] void throw_exception_from_error(upstream_error const& e, boost::source_location const& loc);
std::ostream& operator<<(std::ostream& os, upstream_error const& e);

using completion_result = boost::system::result<completion, upstream_error>;

inline constexpr std::size_t max_error_message_bytes = 512;
inline constexpr std::size_t max_error_body_bytes = 64 * 1024;  // larger error bodies are not parsed

// ---------------------------------------------------------------- streams

struct stream_options {
    std::size_t max_event_bytes = sse_decoder::default_max_event_bytes;
    // Each non-empty delta.content, in arrival order, as soon as its event is
    // complete (forward it to the client); the view lasts for the call only.
    std::function<void(std::string_view)> on_text;
};

// One streamed response: feed() the body bytes as they arrive, then finish().
//  * comments are skipped; a data event that is empty or starts with ':'
//    (a proxy re-emitting ": OPENROUTER PROCESSING" as data) is a keep-alive
//    and ignored; any other non-JSON or non-object event fails the stream
//    (invalid_json / invalid_chunk);
//  * data: [DONE] ends it; bytes after it are ignored;
//  * a chunk with a non-null `error` (top level or in the choice), or a
//    choice with finish_reason "error", fails it;
//  * only the choice with index 0 is read (n > 1 is not used); choices[] may
//    be empty;
//  * delta.content is joined; delta.tool_calls merge by `index` (any ints,
//    not dense): id and name from whichever fragment has them, argument
//    pieces joined in arrival order, a different id on a used index starts a
//    new call; arguments are checked only in finish();
//  * the first non-null finish_reason / native_finish_reason is kept, and
//    deltas after it are ignored (a repeated finish chunk adds nothing);
//  * `usage` is taken from any chunk that has it (the last one wins);
//  * end of body without [DONE]: success if a finish reason came, else
//    stream_ended_early.
class openrouter_stream {
public:
    enum class status {
        reading,  // wants more bytes
        done,     // [DONE] came: call finish()
        failed,   // an error ended the stream: call finish() for it
    };

    explicit openrouter_stream(stream_options options = {});

    status feed(std::string_view bytes);

    // At the end of the body (or once feed() said done/failed). Call once:
    // the completion is moved out.
    completion_result finish();

    [[nodiscard]] status state() const noexcept { return status_; }
    // What has been read so far (text, finish reason, usage, ids); tool_calls
    // stay empty until finish(). Useful after a failure for accounting.
    [[nodiscard]] completion const& partial() const noexcept { return result_; }
    [[nodiscard]] std::size_t comments() const noexcept { return decoder_.comments(); }
    [[nodiscard]] std::size_t data_events() const noexcept { return data_events_; }
    [[nodiscard]] std::size_t ignored_events() const noexcept { return ignored_events_; }

private:
    struct pending_call {
        int index = 0;
        tool_call call;
    };

    void on_event(sse_event const& ev);
    void on_chunk(std::string_view text);
    void fail(upstream_error e);

    stream_options options_;
    sse_decoder decoder_;
    sse_decoder::event_handler handler_;
    status status_ = status::reading;
    completion result_;
    std::vector<pending_call> calls_;
    std::map<int, std::size_t> current_call_;  // index -> position in calls_
    bool finished_ = false;                    // a finish_reason came
    std::optional<upstream_error> error_;
    std::size_t data_events_ = 0;
    std::size_t ignored_events_ = 0;
};

// ---------------------------------------------------------- whole bodies

// A non-streamed 200 body: leading whitespace skipped ("\n" + 9 spaces + "\n"
// padding); only whitespace -> retryable empty_body; an `error` member ->
// failure; else choices[index 0].message (content may be null), tool_calls,
// finish_reason (an `error` in the choice, or "error" -> failure), usage,
// model, id, provider.
completion_result parse_completion(std::string_view body);

// ---------------------------------------------------------- error responses

// Looks a response header up by its lower-case name (the caller's lookup must
// be case-insensitive, as Beast's fields are). An empty function: no headers.
using header_lookup = std::function<std::optional<std::string_view>(std::string_view name)>;

// An HTTP error response (or any body carrying {"error":...}). `status` is
// http_status when it is 400 or more, else taken from the body. A body that
// is not JSON (Cloudflare's HTML 502) classifies by status with a generic
// message. Retry delay: retry-after-ms, else Retry-After (delta-seconds or an
// HTTP-date, measured from `now`), else error.availability.retry_after
// (seconds), else a Retry-After copied into error.metadata.headers.
upstream_error classify(int http_status, std::string_view body, header_lookup const& headers,
                        std::chrono::system_clock::time_point now);
upstream_error classify(int http_status, std::string_view body);

// ARCHITECTURE §3: 408, 429, 500, 502, 503, 504, 524, 529.
bool is_retryable_status(int status) noexcept;

// Retry-After: delta-seconds, or an HTTP-date (IMF-fixdate, RFC 850 or
// asctime form) turned into a delay from `now` (0 if already past).
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value,
                                                           std::chrono::system_clock::time_point now);
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view value);

// A JSON number's text as plain decimal text, exactly: "1e-05" -> "0.00001",
// "1.5E+3" -> "1500", "12.5" unchanged. nullopt if not a JSON number or the
// exponent's magnitude exceeds 64.
std::optional<std::string> plain_decimal(std::string_view json_number);

// The exact text (as plain_decimal) of <root>.usage.cost in a JSON document:
// a number, or a string holding one; nullopt if absent, null, anything else,
// or if the document is not JSON.
std::optional<std::string> raw_usage_cost(std::string_view json_text);
// The same for <root>.<outer>.<inner> (GET /generation's data.total_cost).
std::optional<std::string> raw_member_number(std::string_view json_text, std::string_view outer, std::string_view inner);

}  // namespace parley::net
