// POST /v1/chat/completions: the OpenRouter/OpenAI-compatible proxy
// (ARCHITECTURE §4; issue #6). The caller's body goes upstream nearly as it
// came (messages, tools and the rest are the caller's); around it Parley
// checks the model, admits the call (hourly window, daily budgets), lets the
// client retry, and records the call's usage whatever its outcome.
#include "app/api_common.hpp"
#include "app/drain.hpp"
#include "app/frame_queue.hpp"
#include "domain/i18n.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <variant>

namespace parley::app {

namespace json = boost::json;
namespace http = net::http;

namespace {

constexpr std::size_t max_messages = 4096;
constexpr std::size_t max_models = 8;

// Plugins whose use costs nothing beyond tokens: the others (web search,
// file parsing) bill outside the reservation, so they are refused.
bool free_plugin(json::value const& p) {
    auto const* o = p.if_object();
    auto const* id = o ? o->if_contains("id") : nullptr;
    if (!id || !id->is_string()) {
        return false;
    }
    return id->as_string() == "context-compression" || id->as_string() == "response-healing";
}

struct proxy_request {
    json::object body;                // what goes upstream
    std::string model;                // the model asked for
    std::vector<std::string> models;  // every model the call may run on
    bool stream = false;
    std::int64_t max_tokens = 0;
    // Allowance for content parts whose tokens their bytes do not bound
    // (images, audio, video), added to the worst case.
    std::size_t extra_prompt_bytes = 0;
};

constexpr std::size_t media_part_allowance = 16'384;

// The content parts of one message, checked; the reason they cannot go, if any.
std::optional<std::string> check_parts(json::value const& content, std::size_t& extra) {
    if (!content.is_array()) {
        return std::nullopt;
    }
    for (auto const& part : content.as_array()) {
        auto const* o = part.if_object();
        auto const* type = o ? o->if_contains("type") : nullptr;
        if (!type || !type->is_string()) {
            return std::string{"each content part must be an object with a type"};
        }
        if (type->as_string() == "file") {
            return std::string{"file content parts are not allowed (their parsing bills outside the reservation)"};
        }
        if (type->as_string() != "text") {
            extra += media_part_allowance;
        }
    }
    return std::nullopt;
}

bool allowed(http_api const& api, std::string_view model) {
    return std::find(api.allowed_models.begin(), api.allowed_models.end(), model) != api.allowed_models.end();
}

std::string not_allowed(http_api const& api, std::string_view model) {
    std::string list;
    for (auto const& m : api.allowed_models) {
        list += list.empty() ? "" : ", ";
        list += m;
    }
    return "model " + std::string{model.substr(0, 200)} + " is not allowed here (allowed: " + list + ")";
}

// A positive whole number field, or the reason it is not one.
std::optional<std::string> read_tokens(json::value const& v, char const* name, std::int64_t& out) {
    if (v.is_int64() && v.as_int64() >= 1) {
        out = v.as_int64();
        return std::nullopt;
    }
    if (v.is_uint64() && v.as_uint64() >= 1) {
        out = std::numeric_limits<std::int64_t>::max();
        return std::nullopt;
    }
    return std::string{name} + " must be a whole number of at least 1";
}

// The caller's body checked and made ready to send, or why it cannot be.
std::variant<proxy_request, std::string> parse_proxy(std::string const& text, http_api const& api,
                                                     std::string const& user_id) {
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec || !v.is_object()) {
        return std::string{"the body must be a JSON object"};
    }
    proxy_request r;
    r.body = std::move(v.as_object());
    auto& b = r.body;

    auto const* model = b.if_contains("model");
    if (model && !model->is_null() && !model->is_string()) {
        return std::string{"model must be a string"};
    }
    r.model = (model && model->is_string()) ? std::string{model->as_string()} : api.default_model;
    if (!allowed(api, r.model)) {
        return not_allowed(api, r.model);
    }
    b["model"] = r.model;
    r.models.push_back(r.model);
    if (auto const* models = b.if_contains("models")) {
        if (!models->is_array() || models->as_array().empty() || models->as_array().size() > max_models) {
            return "models must be an array of 1 to " + std::to_string(max_models) + " model ids";
        }
        for (auto const& m : models->as_array()) {
            if (!m.is_string()) {
                return std::string{"models must be an array of model ids"};
            }
            if (!allowed(api, m.as_string())) {
                return not_allowed(api, m.as_string());
            }
            r.models.emplace_back(m.as_string());
        }
    } else if (r.model == api.default_model && !api.fallback_models.empty()) {
        json::array models;
        models.emplace_back(r.model);
        for (auto const& m : api.fallback_models) {
            if (allowed(api, m)) {
                models.emplace_back(m);
                r.models.push_back(m);
            }
        }
        if (models.size() > 1) {
            b["models"] = std::move(models);
        }
    }

    auto const* messages = b.if_contains("messages");
    if (!messages || !messages->is_array() || messages->as_array().empty()) {
        return std::string{"messages must be a non-empty array"};
    }
    if (messages->as_array().size() > max_messages) {
        return "messages may hold at most " + std::to_string(max_messages) + " messages";
    }
    for (auto const& m : messages->as_array()) {
        auto const* o = m.if_object();
        auto const* role = o ? o->if_contains("role") : nullptr;
        if (!role || !role->is_string()) {
            return std::string{"each message must be an object with a role"};
        }
        auto const& rs = role->as_string();
        if (rs != "system" && rs != "developer" && rs != "user" && rs != "assistant" && rs != "tool") {
            return "unknown role " + std::string{rs.subview().substr(0, 32)};
        }
        if (auto const* content = o->if_contains("content")) {
            if (auto bad = check_parts(*content, r.extra_prompt_bytes)) {
                return *bad;
            }
        }
    }
    if (auto const* modalities = b.if_contains("modalities")) {
        if (!modalities->is_array()) {
            return std::string{"modalities must be an array"};
        }
        for (auto const& m : modalities->as_array()) {
            if (!m.is_string() || m.as_string() != "text") {
                return std::string{"only the text modality is allowed (other outputs bill outside the reservation)"};
            }
        }
    }

    if (auto const* stream = b.if_contains("stream")) {
        if (!stream->is_bool() && !stream->is_null()) {
            return std::string{"stream must be a boolean"};
        }
        r.stream = stream->is_bool() && stream->as_bool();
    }
    if (auto const* n = b.if_contains("n")) {
        if (!(n->is_int64() && n->as_int64() == 1) && !(n->is_uint64() && n->as_uint64() == 1)) {
            return std::string{"n must be 1"};
        }
    }
    if (auto const* plugins = b.if_contains("plugins")) {
        if (!plugins->is_array()) {
            return std::string{"plugins must be an array"};
        }
        for (auto const& p : plugins->as_array()) {
            if (!free_plugin(p)) {
                return std::string{"only the context-compression and response-healing plugins are allowed "
                                   "(the cost of the others cannot be reserved)"};
            }
        }
    }

    // The answer's length, capped at ai.max_tokens: the reservation
    // against the budgets is for the longest answer the call can have.
    r.max_tokens = api.max_tokens;
    for (char const* name : {"max_tokens", "max_completion_tokens"}) {
        if (auto const* mt = b.if_contains(name)) {
            if (mt->is_null()) {
                continue;
            }
            std::int64_t asked = 0;
            if (auto bad = read_tokens(*mt, name, asked)) {
                return *bad;
            }
            r.max_tokens = std::min(r.max_tokens, asked);
        }
    }
    b.erase("max_completion_tokens");
    b["max_tokens"] = r.max_tokens;
    if (!b.contains("user") && !user_id.empty()) {
        b["user"] = user_id;
    }
    return r;
}

// What an upstream failure becomes for the caller.
struct failure_answer {
    std::string code;  // type
    http::status status = http::status::bad_gateway;
    std::string message;
    std::optional<std::int64_t> retry_after;
};

failure_answer failure_of(net::upstream_error const& e, domain::language lang) {
    failure_answer f;
    f.code = "upstream_error";
    f.message = domain::render(lang, "upstream_error");
    if (e.retry_after) {
        f.retry_after = std::max<std::int64_t>(1, std::chrono::ceil<std::chrono::seconds>(*e.retry_after).count());
    }
    int const s = e.status;
    if (s == 400 || s == 403 || s == 404 || s == 413 || s == 422) {
        // The request itself was refused: the caller can act on the reason.
        f.code = s == 403 ? "forbidden" : s == 404 ? "not_found" : "bad_request";
        f.status = static_cast<http::status>(s);
        f.message = e.message.empty() ? domain::render(lang, f.code) : e.message;
        return f;
    }
    if (e.code_text == "no_api_key" || s == 401 || s == 402) {
        f.code = "ai_unavailable";
        f.status = http::status::service_unavailable;
        f.message = domain::render(lang, "ai_unavailable");
        return f;
    }
    if (e.code_text.ends_with("_timeout") || e.code_text == "deadline_exceeded") {
        f.status = http::status::gateway_timeout;
    }
    return f;
}

net::response failure_response(net::request const& req, failure_answer const& f) {
    return error_response(req, f.code, f.message, f.retry_after, f.status);
}

// usage in OpenAI's shape; `cost` is the exact decimal the row holds.
std::string usage_json(net::completion const& c, std::optional<domain::usage_record> const& row) {
    json::object u;
    std::int64_t prompt = c.usage ? c.usage->prompt_tokens : (row ? row->input_tokens : 0);
    std::int64_t completion = c.usage ? c.usage->completion_tokens : (row ? row->output_tokens : 0);
    u["prompt_tokens"] = prompt;
    u["completion_tokens"] = completion;
    u["total_tokens"] = c.usage ? c.usage->total_tokens : prompt + completion;
    if (c.usage && c.usage->cached_tokens) {
        json::object details;
        details["cached_tokens"] = *c.usage->cached_tokens;
        u["prompt_tokens_details"] = std::move(details);
    }
    auto text = json::serialize(u);
    if (row) {
        // A JSON number with the cost's exact digits (a double would round it).
        text.pop_back();
        text += ",\"cost\":" + domain::format_usd_exact(row->cost) + "}";
    }
    return text;
}

json::array tool_calls_json(std::vector<net::tool_call> const& calls, bool indexed) {
    json::array out;
    std::size_t i = 0;
    for (auto const& t : calls) {
        json::object fn;
        fn["name"] = t.name;
        fn["arguments"] = t.arguments;
        json::object call;
        if (indexed) {
            call["index"] = i;
        }
        call["id"] = t.id;
        call["type"] = "function";
        call["function"] = std::move(fn);
        out.push_back(std::move(call));
        ++i;
    }
    return out;
}

// The fields every chunk and the whole answer start with.
json::object head(std::string const& id, std::int64_t created, std::string const& model, char const* object) {
    json::object o;
    o["id"] = id;
    o["object"] = object;
    o["created"] = created;
    o["model"] = model;
    return o;
}

std::string sse(std::string const& data) { return "data: " + data + "\n\n"; }

// One streamed chunk with a delta (or none) and a finish reason (or null).
std::string chunk(std::string const& id, std::int64_t created, std::string const& model, json::object delta,
                  std::string const& finish) {
    auto o = head(id, created, model, "chat.completion.chunk");
    json::object choice;
    choice["index"] = 0;
    choice["delta"] = std::move(delta);
    if (finish.empty()) {
        choice["finish_reason"] = nullptr;
    } else {
        choice["finish_reason"] = finish;
    }
    json::array choices;
    choices.push_back(std::move(choice));
    o["choices"] = std::move(choices);
    return sse(json::serialize(o));
}

std::string text_chunk(std::string const& id, std::int64_t created, std::string const& model, std::string_view text) {
    json::object delta;
    delta["role"] = "assistant";
    delta["content"] = text;
    return chunk(id, created, model, std::move(delta), "");
}

// The end of a good stream: tool calls, the finish reason, usage, [DONE].
std::string stream_tail(std::string const& id, std::int64_t created, net::completion const& c,
                        std::optional<domain::usage_record> const& row) {
    std::string out;
    if (!c.tool_calls.empty()) {
        json::object delta;
        delta["role"] = "assistant";
        delta["content"] = nullptr;
        delta["tool_calls"] = tool_calls_json(c.tool_calls, true);
        out += chunk(id, created, c.model, std::move(delta), "");
    }
    json::object empty;
    out += chunk(id, created, c.model, std::move(empty), c.finish_reason.empty() ? "stop" : c.finish_reason);
    auto last = json::serialize(head(id, created, c.model, "chat.completion.chunk"));
    last.pop_back();
    last += ",\"choices\":[],\"usage\":" + usage_json(c, row) + "}";
    out += sse(last);
    out += "data: [DONE]\n\n";
    return out;
}

// A failure after the stream began, as OpenRouter sends one: a chunk with
// a top-level error and finish_reason "error"; the stream then ends.
std::string stream_error(std::string const& id, std::int64_t created, std::string const& model,
                         failure_answer const& f) {
    auto o = head(id, created, model, "chat.completion.chunk");
    json::object error;
    error["code"] = static_cast<int>(f.status);
    error["type"] = f.code;
    error["message"] = f.message;
    o["error"] = std::move(error);
    json::object delta;
    delta["content"] = "";
    json::object choice;
    choice["index"] = 0;
    choice["delta"] = std::move(delta);
    choice["finish_reason"] = "error";
    json::array choices;
    choices.push_back(std::move(choice));
    o["choices"] = std::move(choices);
    return sse(json::serialize(o));
}

std::string whole_answer(std::string const& id, std::int64_t created, net::completion const& c,
                         std::optional<domain::usage_record> const& row) {
    auto o = head(id, created, c.model, "chat.completion");
    o["system_fingerprint"] = nullptr;  // required (null allowed) by @openrouter/sdk's schema
    json::object message;
    message["role"] = "assistant";
    if (c.text.empty() && !c.tool_calls.empty()) {
        message["content"] = nullptr;
    } else {
        message["content"] = c.text;
    }
    if (!c.reasoning.empty()) {
        message["reasoning"] = c.reasoning;
    }
    if (!c.tool_calls.empty()) {
        message["tool_calls"] = tool_calls_json(c.tool_calls, false);
    }
    json::object choice;
    choice["index"] = 0;
    choice["message"] = std::move(message);
    choice["finish_reason"] = c.finish_reason.empty() ? "stop" : c.finish_reason;
    json::array choices;
    choices.push_back(std::move(choice));
    o["choices"] = std::move(choices);
    auto text = json::serialize(o);
    text.pop_back();
    text += ",\"usage\":" + usage_json(c, row) + "}\n";
    return text;
}

// The streamed call's side that writes: deltas as they come, the SSE header
// before the first one. A peer that is gone or reads too slowly (the queue
// overflowed) cancels the call.
struct stream_state {
    std::string id;
    std::int64_t created = 0;
    std::string model;
    bool started = false;
    bool writing = true;   // false: the peer is gone
    bool too_slow = false;  // deltas were dropped: the call is cancelled
    std::atomic<bool> shutting_down{false};  // cancelled by graceful shutdown
    asio::cancellation_signal cancel;
};

// Most bytes of deltas sent in one write.
constexpr std::size_t max_coalesced_bytes = 16 * 1024;

task<void> write_deltas(std::shared_ptr<frame_queue> queue, net::exchange& ex, std::shared_ptr<stream_state> sp) {
    auto& st = *sp;
    for (;;) {
        auto f = co_await queue->pop();
        if (f.empty()) {
            co_return;  // the call is over
        }
        if (!st.writing || st.too_slow) {
            continue;
        }
        if (queue->overflowed()) {
            st.too_slow = true;
            st.cancel.emit(asio::cancellation_type::terminal);
            continue;
        }
        if (!st.started) {
            st.started = true;
            auto header = sse_header();
            st.writing = co_await ex.begin_stream(std::move(header));
        }
        if (st.writing) {
            // The deltas that arrived together go out in one write: a fast
            // upstream's burst costs one syscall, not one per token
            // (bench/results/gateways-profile.md, the streamed-token relay).
            auto text = text_chunk(st.id, st.created, st.model, f.at("text").as_string());
            while (text.size() < max_coalesced_bytes) {
                auto more = queue->try_pop();
                if (!more) {
                    break;
                }
                text += text_chunk(st.id, st.created, st.model, more->at("text").as_string());
            }
            st.writing = co_await ex.write(text);
        }
        if (!st.writing) {
            st.cancel.emit(asio::cancellation_type::terminal);
        }
    }
}

task<actors::call_result> run_call(std::shared_ptr<actors::openrouter_client> client, actors::chat_call call,
                                   std::shared_ptr<frame_queue> queue, std::shared_ptr<stream_state> sp) {
    auto& st = *sp;
    auto executor = co_await asio::this_coro::executor;
    auto answer = client->complete(std::move(call));
    auto r = co_await asio::co_spawn(executor, std::move(answer),
                                     asio::bind_cancellation_slot(st.cancel.slot(), asio::use_awaitable));
    queue->close();
    co_return r;
}

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

task<void> proxy_completions(std::shared_ptr<http_api const> api, net::request& req, net::exchange& ex,
                             domain::principal who) {
    auto const lang = who.lang.value_or(api->default_language);
    auto parsed = parse_proxy(req.body(), *api, who.user_id);
    if (auto const* reason = std::get_if<std::string>(&parsed)) {
        auto res = error_response(req, "bad_request", *reason);
        co_await ex.respond(std::move(res));
        co_return;
    }
    auto& pr = std::get<proxy_request>(parsed);
    auto const& services = api->assistant;

    // Registered for graceful shutdown before anything is reserved: a call
    // that starts while the server drains is refused here, and one that
    // runs is cancelled at the grace period's end (and still recorded).
    auto executor = co_await asio::this_coro::executor;
    auto sp = std::make_shared<stream_state>();
    auto& st = *sp;
    std::shared_ptr<drain::ticket> ticket;
    if (api->drain) {
        auto on_cancel = [sp, executor] {
            sp->shutting_down = true;
            asio::post(executor, [sp] { sp->cancel.emit(asio::cancellation_type::terminal); });
        };
        std::function<void()> const no_drain_step;
        ticket = api->drain->enter(no_drain_step, std::move(on_cancel));
        if (!ticket) {
            auto res = error_response(req, "shutting_down", domain::render(lang, "shutting_down"));
            co_await ex.respond(std::move(res));
            co_return;
        }
    }

    bool const up = co_await services.circuit->allow();
    if (!up) {
        auto res = error_response(req, "ai_unavailable", domain::render(lang, "ai_unavailable"));
        co_await ex.respond(std::move(res));
        co_return;
    }
    // Should anything below throw, the circuit's permit is given back.
    actors::verdict_guard guard;
    guard.breaker = services.circuit;
    guard.ex = executor;
    actors::call_identity identity;
    identity.user_id = who.user_id;
    identity.permissions = who.permissions;
    identity.session_id = "http-" + ex.request_id().substr(0, 64);
    actors::chat_call call;
    call.body = json::serialize(pr.body);
    call.stream = pr.stream;
    // The call's own id (upstream X-Request-Id, the usage row's key) is a
    // fresh one: the caller's X-Request-Id may repeat, a row's key must not.
    std::size_t const prompt_bytes = call.body.size();
    auto const worst =
        services.accountant->worst_case(prompt_bytes + pr.extra_prompt_bytes, pr.models, pr.max_tokens);
    auto adm = co_await services.accountant->admit(identity, worst);
    if (!adm || !adm->admitted) {
        guard.armed = false;
        co_await services.circuit->report(actors::call_verdict::abandoned);
        if (!adm) {
            auto res = error_response(req, "internal_error", domain::render(lang, "internal_error"));  // LCOV_EXCL_LINE
            co_await ex.respond(std::move(res));  // LCOV_EXCL_LINE
            co_return;                            // LCOV_EXCL_LINE
        }
        domain::text_params wait;
        wait.wait = adm->retry_after;
        std::optional<std::int64_t> const retry_after = std::max<std::int64_t>(1, adm->retry_after.count());
        auto res = error_response(req, adm->code, domain::render(lang, adm->code, wait), retry_after);
        if (adm->code == "budget_exhausted") {
            // The SDKs retry a 429 after a short wait; the budget comes back
            // only at its reset, so they are told not to.
            res.set("x-should-retry", "false");
        }
        co_await ex.respond(std::move(res));
        co_return;
    }

    auto queue = std::make_shared<frame_queue>(executor, api->max_pending_frames);
    st.id = "chatcmpl-" + ex.request_id();
    st.created = unix_now();
    st.model = pr.model;
    if (pr.stream) {
        call.on_text = [queue](std::string_view t) {
            json::object f;
            f["type"] = "delta";
            f["text"] = t;
            queue->push(std::move(f));
        };
    }
    actors::call_result r;
    bool threw = false;
    try {
        using namespace asio::experimental::awaitable_operators;
        auto calling = run_call(services.client, std::move(call), queue, sp);
        auto writing = write_deltas(queue, ex, sp);
        r = co_await (std::move(calling) && std::move(writing));
    } catch (std::exception const& e) {  // LCOV_EXCL_START: the client and the writer report failures as values
        spdlog::error("POST /v1/chat/completions {}: {}", ex.request_id(), e.what());
        threw = true;
    }
    if (threw) {
        // Recorded all the same (an estimate from what was sent), so no
        // reservation stays open and nothing billed goes unrecorded.
        net::upstream_error e;
        e.code_text = "internal_error";
        e.message = "the proxy failed";
        r.result = e;
    }  // LCOV_EXCL_STOP
    auto recorded = co_await services.accountant->record(identity, *adm, pr.model, prompt_bytes, r);
    std::optional<domain::usage_record> row;
    if (recorded) {
        row = std::move(*recorded);
    } else {
        spdlog::error("POST /v1/chat/completions {}: the call's usage could not be recorded: {}", ex.request_id(),
                      recorded.error().message());
    }
    guard.armed = false;
    co_await services.circuit->report(actors::verdict_of(r));

    if (r.result && st.too_slow) {
        // The caller missed deltas (dropped while it did not read): the
        // answer it got is not whole, so it must not end as if it were.
        if (st.writing && st.started) {
            failure_answer f;
            f.code = "cancelled";
            f.status = http::status::too_many_requests;
            f.message = "the stream was read too slowly: deltas were dropped";
            auto text = stream_error(st.id, st.created, st.model, f);
            bool const sent = co_await ex.write(text);
            if (sent) {
                co_await ex.end_stream();
            }
        }
        co_return;
    }
    if (r.result) {
        auto const& c = *r.result;
        if (!pr.stream) {
            net::response res{http::status::ok, req.version()};
            res.set(http::field::content_type, "application/json");
            res.set(http::field::cache_control, "no-store");
            res.body() = whole_answer(st.id, st.created, c, row);
            co_await ex.respond(std::move(res));
            co_return;
        }
        if (!st.started) {
            st.started = true;
            auto header = sse_header();
            st.writing = co_await ex.begin_stream(std::move(header));
        }
        if (st.writing) {
            auto tail = stream_tail(st.id, st.created, c, row);
            bool const sent = co_await ex.write(tail);
            if (sent) {
                co_await ex.end_stream();
            }
        }
        co_return;
    }

    auto const& e = r.result.error();
    auto f = failure_of(e, lang);
    if (st.too_slow) {
        f.code = "cancelled";
        f.status = http::status::too_many_requests;
        f.message = "the stream was read too slowly and was cancelled";
    } else if (st.shutting_down) {
        f.code = "shutting_down";
        f.status = http::status::service_unavailable;
        f.message = domain::render(lang, "shutting_down");
    }
    if (e.code_text != "cancelled" || st.too_slow) {
        spdlog::warn("POST /v1/chat/completions {}: the call failed after {} attempt(s): {} {}", ex.request_id(),
                     r.attempts, e.status, e.code_text);
    }
    if (st.started) {
        if (st.writing) {
            auto text = stream_error(st.id, st.created, st.model, f);
            bool const sent = co_await ex.write(text);
            if (sent) {
                co_await ex.end_stream();
            }
        }
        co_return;
    }
    auto res = failure_response(req, f);
    if (st.too_slow) {
        res.set("x-should-retry", "false");
    }
    co_await ex.respond(std::move(res));
}

}  // namespace parley::app
