#pragma once
// The OpenRouter client: one chat-completions call, streamed or not, through
// the connection pool and the retry loop (ARCHITECTURE §3; openrouter-api.md
// §1, §5, §6, §10).
//
//   openrouter_client client{ex, openrouter_options::from(settings)};
//   auto call = make_chat_call(history, options);        // body + stream flag
//   call.on_text = [](std::string_view t) { ... };       // each text delta, as it arrives
//   call_result r = co_await client.complete(std::move(call));
//   if (r.result) { r.result->text, ->tool_calls, ->finish_reason, ->model, ->generation_id, ->usage; r.cost }
//   else          { r.result.error(): status, code_text, message, retryable; r.attempts }
//   co_await client.shutdown();
//
// Each call gets one X-Request-Id (the same on every retry attempt). Headers:
// Authorization (the key is never logged), Content-Type, HTTP-Referer and
// X-OpenRouter-Title when configured, X-Request-Id, Accept. Local failures
// are upstream_errors with status 0 and code_text:
//   connect_timeout, first_byte_timeout, chunk_gap_timeout, deadline_exceeded,
//   connect_failed (resolve/connect/reset), tls_error (not retryable),
//   connection_closed (the peer closed mid-response), body_too_large,
//   pool_timeout, cancelled, no_api_key, client_stopped
// besides the reader's (empty_body, invalid_json, stream_ended_early, ...).
// Timeouts and deadline: each attempt's I/O is bounded by the stage timeouts
// and by the call's deadline (total_timeout from the call's start, retries
// and waits included); the retry loop does not start an attempt past it.
// Cancelling the awaiting coroutine (terminal, partial or total, e.g. `||`)
// aborts the I/O in progress and closes that connection, or ends a retry
// wait at once; complete() then returns a "cancelled" failure.
#include "actors/retry.hpp"
#include "actors/upstream_pool.hpp"
#include "domain/config.hpp"
#include "domain/messages.hpp"
#include "domain/money.hpp"
#include "domain/retry_policy.hpp"
#include "net/asio.hpp"
#include "net/openrouter_reader.hpp"

#include <boost/system/result.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace parley::actors {

struct openrouter_options {
    std::string base_url = "https://openrouter.ai/api/v1";
    std::string api_key;                 // secret; empty: every call fails with no_api_key
    std::optional<std::string> ca_file;  // PEM trust anchor instead of the system store
    std::string referer;                 // HTTP-Referer; empty: not sent
    std::string title = "Parley";        // X-OpenRouter-Title; empty: not sent
    std::chrono::milliseconds connect_timeout{10'000};
    std::chrono::milliseconds first_byte_timeout{60'000};
    std::chrono::milliseconds chunk_gap_timeout{30'000};
    std::chrono::milliseconds total_timeout{300'000};  // one call, retries included
    std::size_t pool_size = 64;
    std::chrono::milliseconds idle_timeout{30'000};    // pooled connections unused this long are closed
    std::size_t body_limit = 32 * 1024 * 1024;         // response body bytes
    domain::retry_policy retry;                        // total_deadline is replaced by total_timeout

    // From the settings (openrouter.*, retry.*).
    static openrouter_options from(domain::settings const& s);
};

struct chat_call {
    std::string body;  // the chat-completions JSON body
    bool stream = false;  // must match the body's "stream"
    // Each text delta of a streamed answer, as soon as it arrives. Runs on
    // the executor of the coroutine awaiting complete(); must not block.
    std::function<void(std::string_view)> on_text;
    std::string request_id;  // X-Request-Id; empty: a fresh random one
    // This call's deadline (retries included) instead of the client's total_timeout.
    std::optional<std::chrono::milliseconds> total_timeout;
    std::vector<std::pair<std::string, std::string>> extra_headers;  // added to every attempt
};

// The body (domain::build_request + serialize_request) and stream flag.
chat_call make_chat_call(std::vector<domain::message> const& history, domain::request_options const& options);

struct call_result {
    net::completion_result result;
    // On failure after a 200: what arrived before it failed (a stream's
    // text, usage if it came, model, generation id; a non-streamed answer's
    // generation id from X-Generation-Id), so the call can be recorded with
    // an estimated cost and corrected later; nullopt when no 200 came.
    std::optional<net::completion> partial;
    std::optional<domain::nano_usd> cost;  // usage.cost, exact (rounded to nano-dollars)
    std::string request_id;
    int attempts = 0;  // requests that reached the upstream
    std::vector<std::chrono::milliseconds> waits;  // retry waits, in order
    std::chrono::microseconds elapsed{0};          // the whole call, retries included
    // A streamed call's first text delta, from the call's start (none: no text came).
    std::optional<std::chrono::microseconds> first_token;
};

// Exact decimal USD text (usage.cost) in nano-dollars, rounded half up at
// the 9th decimal; nullopt if not a non-negative plain decimal.
std::optional<domain::nano_usd> cost_from_text(std::string_view text);

// OpenRouter's record of one generation (GET /api/v1/generation?id=).
struct generation_lookup {
    std::optional<domain::nano_usd> total_cost;  // data.total_cost, exact; nullopt when not found or failed
    int status = 0;                              // the HTTP status; 0 when the request failed locally
    std::string error;                           // one line when total_cost is missing
};

// GET /api/v1/models (for refreshing the price table).
struct models_lookup {
    int status = 0;
    std::string body;   // the JSON answer (at most 16 MiB)
    std::string error;  // set: no usable answer
};

class openrouter_client {
public:
    // Spawns the connection pool. Throws std::invalid_argument for a bad
    // base_url and std::runtime_error for an unreadable CA file.
    openrouter_client(asio::any_io_executor ex, openrouter_options options, retry_env env = retry_env::system());
    ~openrouter_client();
    openrouter_client(openrouter_client const&) = delete;
    openrouter_client& operator=(openrouter_client const&) = delete;

    task<call_result> complete(chat_call call);
    // One GET of the generation record (no retries: the caller schedules
    // its own later attempts), bounded by the connect and first-byte
    // timeouts; the body is limited to 1 MiB.
    task<generation_lookup> generation(std::string generation_id);
    task<models_lookup> models();

    task<boost::system::result<pool_stats>> stats();
    // Closes pooled connections and stops the pool; later calls fail with
    // client_stopped. Call it before the io_context is expected to run out
    // of work: the pool actor keeps it busy until then.
    task<void> shutdown();

    struct state;  // opaque

private:
    std::shared_ptr<state> state_;
};

}  // namespace parley::actors
