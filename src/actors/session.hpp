#pragma once
// SessionActor (ARCHITECTURE §3, §5): one per conversation, on its own
// strand. It owns the user's identity, the language, the conversation's
// history and the turn in flight; the front doors (WebSocket, HTTP, NATS,
// `parley chat`) drive it the same way and receive the frames of
// ARCHITECTURE §4 through a sink:
//
//   auto opened = co_await open_session(ex, services, {.user = u, .lang = language::es, .sink = send_frame});
//   if (!opened.session) { ... opened.error_code ("conversation_not_found", "internal_error") ... }
//   co_await opened.session->send({.id = "c1", .text = "¿Qué hora es?", .stream = true});
//   // frames: {"type":"delta",...}..., {"type":"tool",...}, then {"type":"done",...} or {"type":"error",...}
//   co_await opened.session->cancel("c1");
//   co_await opened.session->shutdown(true);               // cancels the turn, waits for it, stops
//
// A turn (§5): for each upstream call of the tool loop, the circuit is asked
// first, then the accountant admits it (the rate window counts each upstream
// call, as each has its usage row; the worst case is reserved), the call
// runs (streamed deltas go to the sink as they arrive), and it is recorded
// (before any frame that ends the turn). Tool calls run concurrently
// (ToolRunner); at most `max_rounds` rounds run tools, then one last call
// is made without tools. The turn's `usage` in `done` sums all its calls.
// On an open circuit, an upstream failure after retries (before any text
// was streamed), or an exhausted budget, the fallback catalog answers with
// `fallback:true`; else the error frame is `ai_unavailable` /
// `budget_exhausted`. A cancelled turn ends with the `cancelled` error
// frame, its partial call recorded as cancelled.
//
// Frames, in the session's language where they carry text:
//   {"type":"delta","id","text"}
//   {"type":"tool","id","name","status":"started"|"done"|"failed"}
//   {"type":"done","id","text","model","fallback","usage":{"input_tokens","output_tokens","cost_usd"}}
//   {"type":"error","id","code","message"[,"retry_after"][,"usage"]}  (usage: when calls were made)
// The sink runs on the session's strand and must not block.
//
// The sink is called only from the session's strand; frames of one turn
// are in order, and every accepted message gets exactly one `done` or
// `error` frame. A message sent during a turn gets `busy` (the turn goes
// on); a blank one `bad_request`; one over max_message_chars
// `message_too_long`; a context over max_context_bytes `bad_request` (with
// the context_too_large message, naming the limit).
#include "actors/accountant.hpp"
#include "actors/circuit.hpp"
#include "actors/conversation_store.hpp"
#include "actors/openrouter_client.hpp"
#include "actors/runtime.hpp"
#include "actors/tool_runner.hpp"
#include "domain/fallbacks.hpp"
#include "domain/i18n.hpp"
#include "domain/messages.hpp"
#include "domain/prompt.hpp"

#include <boost/asio/cancellation_signal.hpp>
#include <boost/json/object.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace parley::actors {

struct session_user {
    std::string id;    // empty: an anonymous service caller
    std::string name;  // display name; empty: the id
    std::vector<std::string> permissions;
};

struct turn_request {
    std::string id;               // the client's message id, echoed in every frame of the turn
    std::string text;
    boost::json::object context;  // rendered into the system prompt; empty: none
    bool stream = true;
};

using frame_sink = std::function<void(boost::json::object)>;

// What every session shares (immutable after start-up).
struct assistant_config {
    domain::request_options request;  // model, fallback models, max_tokens, temperature
    int max_rounds = 5;
    std::size_t max_calls_per_round = 16;  // more calls in one answer are answered with an error, not run
    std::size_t history_tokens = 8'000;
    std::size_t max_message_chars = 8'000;
    std::size_t max_context_bytes = 16'384;
    std::size_t resume_messages = 200;  // messages loaded when a conversation is resumed
    domain::prompt_templates prompts;
    domain::fallback_catalog fallbacks;
    std::function<std::chrono::system_clock::time_point()> now = [] { return std::chrono::system_clock::now(); };
};

struct assistant_services {
    std::shared_ptr<openrouter_client> client;
    std::shared_ptr<actors::accountant> accountant;
    std::shared_ptr<actors::circuit> circuit;
    std::shared_ptr<tool_runner> tools;         // null: no tools
    std::shared_ptr<conversation_store> store;  // null: conversations are not persisted
    std::shared_ptr<assistant_config const> config;
};

struct session_options {
    session_user user;
    domain::language lang = domain::language::es;
    std::string session_id;             // empty: a random one
    std::optional<std::string> resume;  // a conversation id to resume (its owner only)
    frame_sink sink;
};

struct session_info {
    std::string session_id;
    std::string conversation_id;
    domain::language lang = domain::language::es;
    std::vector<std::string> tools;  // the tools this user's turns may use
    bool busy = false;
    std::size_t history_messages = 0;
};

// The `ready` frame of a session.
boost::json::object ready_frame(session_info const& info);

class session;

namespace session_msg {
struct send {
    turn_request request;
};
struct cancel {
    std::string id;  // empty: whatever turn is in flight
};
struct set_language {
    domain::language lang;
};
struct turn_finished {
    std::string id;
    std::vector<domain::message> appended;  // the turn's messages to keep (may be empty)
};
struct info {
    reply<session_info> reply_to;
};
struct when_idle {
    reply<void> reply_to;
};
}  // namespace session_msg

class session final : public actor<session, session_msg::send, session_msg::cancel, session_msg::set_language,
                                   session_msg::turn_finished, session_msg::info, session_msg::when_idle> {
public:
    // Use open_session().
    session(asio::any_io_executor ex, assistant_services services, session_options options,
            std::string conversation_id, std::vector<domain::message> history, bool stored);

    task<result<void>> send(turn_request request);
    task<result<void>> cancel(std::string id = {});
    task<result<void>> set_language(domain::language lang);
    task<result<session_info>> info();
    // Returns when no turn is in flight.
    task<result<void>> idle();
    // Cancels the turn in flight when `cancel_turn` (else lets it finish),
    // waits for it (its usage is recorded), then stops the actor.
    task<void> shutdown(bool cancel_turn);

    struct turn_state;  // opaque

private:
    friend actor;
    void on(session_msg::send& m);
    void on(session_msg::cancel& m);
    void on(session_msg::set_language& m);
    task<void> on(session_msg::turn_finished& m);
    void on(session_msg::info& m);
    void on(session_msg::when_idle& m);

    // `text`: the catalog entry of the message when it is not the code's own.
    void error_frame(std::string const& id, std::string const& code, domain::text_params const& params = {},
                     std::string_view text = {});
    session_info make_info() const;

    assistant_services services_;
    session_user user_;
    domain::language lang_;
    std::string session_id_;
    std::string conversation_id_;
    frame_sink sink_;
    std::vector<domain::message> history_;
    bool stored_ = false;  // the conversation exists in the store
    std::shared_ptr<turn_state> turn_;
    std::vector<reply<void>> idle_waiters_;
};

struct open_result {
    std::shared_ptr<actors::session> session;  // null on failure
    std::string error_code;            // "conversation_not_found" or "internal_error" (store unreachable)
};

task<open_result> open_session(asio::any_io_executor ex, assistant_services services, session_options options);

// A random id, `prefix` + 32 hex digits.
std::string random_id(std::string_view prefix);

}  // namespace parley::actors
