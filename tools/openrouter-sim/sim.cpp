#include "sim.hpp"

#include "answer.hpp"
#include "net/http_server.hpp"
#include "pricing.hpp"
#include "render.hpp"
#include "state.hpp"

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <cctype>
#include <charconv>
#include <chrono>
#include <stdexcept>

namespace parley::sim {

namespace json = boost::json;
namespace http = boost::beast::http;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using net::request;
using net::response;
using net::exchange;

namespace {

constexpr std::size_t body_limit = 4 * 1024 * 1024;
constexpr std::size_t recorded_body_limit = 256 * 1024;
constexpr std::size_t batch_bytes = 16 * 1024;    // tokens per write when unpaced
constexpr auto padding_interval = 500ms;         // non-streamed: a padding block this often

std::string_view header(request const& req, std::string_view name) {
    auto it = req.find(boost::beast::string_view{name.data(), name.size()});
    if (it == req.end()) return {};
    auto v = it->value();
    return {v.data(), v.size()};
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

std::optional<std::uint64_t> parse_u64(std::string_view s) {
    std::uint64_t v = 0;
    s = trim(s);
    if (s.empty()) return std::nullopt;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
    return v;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string percent_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
        } else if (s[i] == '+') {
            out += ' ';
        } else {
            out += s[i];
        }
    }
    return out;
}

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
    while (!query.empty()) {
        auto amp = query.find('&');
        auto item = query.substr(0, amp);
        auto eq = item.find('=');
        if (item.substr(0, eq) == name) return percent_decode(eq == std::string_view::npos ? "" : item.substr(eq + 1));
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return std::nullopt;
}

std::int64_t unix_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::int64_t unix_millis() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::int64_t millis_between(steady::time_point a, steady::time_point b) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

task<void> sleep_until(asio::steady_timer& timer, steady::time_point when) {
    if (when <= steady::now()) co_return;
    timer.expires_at(when);
    co_await timer.async_wait(use_nothrow);
}

// Walks an answer's stream events in order: text pieces, then for each tool
// call its first fragment and its argument pieces.
class unit_cursor {
public:
    explicit unit_cursor(answer const& a) : a_{a} {}

    void render(chunk_renderer const& r, std::string& out) {
        if (token_ < a_.tokens.size()) {
            r.content(out, a_.tokens[token_++]);
            return;
        }
        auto const& c = a_.calls[call_];
        if (piece_ < 0) r.tool_call_start(out, c.index, c.id, c.name);
        else r.tool_call_piece(out, c.index, c.pieces[static_cast<std::size_t>(piece_)]);
        if (++piece_ >= static_cast<std::ptrdiff_t>(c.pieces.size())) {
            ++call_;
            piece_ = -1;
        }
    }

private:
    answer const& a_;
    std::size_t token_ = 0;
    std::size_t call_ = 0;
    std::ptrdiff_t piece_ = -1;
};

// Everything one chat completion request needs once it has been accepted.
struct turn_context {
    std::string gen_id;
    std::int64_t created = 0;
    chat_request req;
    answer ans;
    std::optional<fault_spec> fault;
    std::chrono::milliseconds latency{0};
    std::uint32_t tokens_per_second = 0;
    std::uint32_t keepalive_comments = 0;
    usage_shape shape = usage_shape::empty;

    bool has_fault(fault_kind k) const { return fault && fault->kind == k; }
};

struct bill {
    usage_numbers numbers;
    std::string json;
    std::int64_t nano = -1;  // -1: a scripted cost that is not in nano-dollars
};

// Usage for `emitted` stream units; `partial`: the answer was cut, so scripted
// completion counts and costs no longer apply.
bill make_bill(turn_context const& c, std::size_t emitted, bool partial) {
    auto const& m = *c.req.model;
    auto const& o = c.ans.usage;
    token_counts t;
    t.prompt = o && o->prompt_tokens ? *o->prompt_tokens : c.req.prompt_tokens;
    t.completion = o && o->completion_tokens && !partial ? *o->completion_tokens : static_cast<std::int64_t>(emitted);
    t.cached = o && o->cached_tokens ? *o->cached_tokens : 0;
    t.cache_write = o && o->cache_write_tokens ? *o->cache_write_tokens : 0;
    bill b;
    b.numbers.prompt = t.prompt;
    b.numbers.completion = t.completion;
    b.numbers.cached = t.cached;
    b.numbers.cache_write = t.cache_write;
    if (o && o->cost && !partial) {
        b.numbers.cost = *o->cost;
        if (auto n = parse_nano(*o->cost)) b.nano = *n;
    } else {
        auto cost = compute_cost(m, t);
        b.nano = cost.total_nano();
        b.numbers.cost = format_nano(b.nano);
        b.numbers.prompt_cost = format_nano(cost.prompt_nano);
        b.numbers.completion_cost = format_nano(cost.completion_nano);
    }
    b.numbers.omit_cost = o && o->omit_cost;
    b.json = render_usage(b.numbers);
    return b;
}

std::string models_json() {
    std::string out = "{\"data\":[";
    bool first = true;
    for (auto const& m : model_table()) {
        if (!first) out += ',';
        first = false;
        std::string_view tokenizer = m.family == model_family::anthropic ? "Claude"
                                     : m.family == model_family::openai  ? "GPT"
                                                                         : "Llama3";
        out += "{\"id\":";
        append_json_string(out, m.id);
        out += ",\"canonical_slug\":";
        append_json_string(out, m.served_as);
        out += ",\"hugging_face_id\":\"\",\"name\":";
        append_json_string(out, m.name);
        out += ",\"created\":1718841600,\"description\":";
        append_json_string(out, std::string{"Simulated "} + std::string{m.name} + " (openrouter-sim).");
        out += ",\"context_length\":" + std::to_string(m.context_length);
        out += ",\"architecture\":{\"modality\":\"text->text\",\"input_modalities\":[\"text\"],"
               "\"output_modalities\":[\"text\"],\"tokenizer\":";
        append_json_string(out, tokenizer);
        out += ",\"instruct_type\":null},\"pricing\":{\"prompt\":";
        append_json_string(out, m.prompt);
        out += ",\"completion\":";
        append_json_string(out, m.completion);
        out += ",\"request\":";
        append_json_string(out, m.request);
        out += ",\"image\":";
        append_json_string(out, m.image);
        out += ",\"web_search\":\"0\",\"internal_reasoning\":\"0\",\"input_cache_read\":";
        append_json_string(out, m.cache_read);
        out += ",\"input_cache_write\":";
        append_json_string(out, m.cache_write);
        out += "},\"top_provider\":{\"context_length\":" + std::to_string(m.context_length) +
               ",\"max_completion_tokens\":" + std::to_string(m.max_completion_tokens) + ",\"is_moderated\":";
        out += m.family == model_family::meta ? "false" : "true";
        out += "},\"per_request_limits\":null,\"supported_parameters\":[\"max_tokens\",\"temperature\",\"top_p\","
               "\"stop\",\"seed\",\"tools\",\"tool_choice\",\"parallel_tool_calls\",\"response_format\","
               "\"structured_outputs\"],\"default_parameters\":{},\"expiration_date\":null}";
    }
    out += "]}";
    return out;
}

}  // namespace

struct simulator::impl {
    impl(asio::any_io_executor ex, options o) : executor{std::move(ex)}, opts{std::move(o)} {
        state = std::make_shared<sim_state>(opts.seed, opts.fault_rates);
        models = models_json();
        if (!opts.tls_cert.empty()) {
            tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
            tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                             asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                             asio::ssl::context::no_tlsv1_1);
            boost::system::error_code ec;
            tls->use_certificate_chain_file(opts.tls_cert, ec);
            if (ec) throw std::runtime_error("--tls-cert " + opts.tls_cert + ": " + ec.message());
            tls->use_private_key_file(opts.tls_key, asio::ssl::context::pem, ec);
            if (ec) throw std::runtime_error("--tls-key " + opts.tls_key + ": " + ec.message());
        }
    }

    asio::any_io_executor executor;
    options opts;
    std::shared_ptr<sim_state> state;
    std::shared_ptr<asio::ssl::context> tls;
    std::string models;
    std::unique_ptr<net::http_server> server;

    // ---- plain responses -------------------------------------------------

    static response json_response(request const& req, http::status status, std::string body) {
        response res{status, req.version()};
        res.set(http::field::content_type, "application/json");
        res.body() = std::move(body);
        return res;
    }

    task<void> reply_error(exchange& ex, request const& req, std::string const& gen_id, int code, std::string body) {
        state->count_error();
        auto res = json_response(req, static_cast<http::status>(code), std::move(body));
        res.set("X-Generation-Id", gen_id);
        co_await ex.respond(std::move(res));
    }

    task<void> reply_fault(exchange& ex, request const& req, turn_context const& c) {
        auto const& f = *c.fault;
        int code = fault_status(f.kind);
        auto const& m = *c.req.model;
        std::string body;
        auto res = json_response(req, static_cast<http::status>(code), {});
        res.set("X-Generation-Id", c.gen_id);
        std::string retry = std::to_string(f.retry_after.count());
        switch (f.kind) {
        case fault_kind::rate_limited: {
            std::string reset = std::to_string(unix_millis() + f.retry_after.count() * 1000);
            res.set(http::field::retry_after, retry);
            res.set("X-RateLimit-Limit", "20");
            res.set("X-RateLimit-Remaining", "0");
            res.set("X-RateLimit-Reset", reset);
            body = render_error(429, "Rate limit exceeded: free-models-per-min.",
                                "{\"error_type\":\"rate_limit_exceeded\",\"headers\":{\"X-RateLimit-Limit\":\"20\","
                                "\"X-RateLimit-Remaining\":\"0\",\"X-RateLimit-Reset\":\"" +
                                    reset + "\"},\"provider_name\":null}",
                                {}, "\"user_id\":\"user_sim\"");
            break;
        }
        case fault_kind::internal_error:
            body = render_error(500, "Internal Server Error", "{\"error_type\":\"server\"}");
            break;
        case fault_kind::bad_gateway: {
            std::string meta = "{\"error_type\":\"provider_unavailable\",\"provider_name\":";
            append_json_string(meta, m.provider);
            meta += '}';
            body = render_error(502, "Provider returned error", meta);
            break;
        }
        case fault_kind::unavailable: {
            res.set(http::field::retry_after, retry);
            std::string avail = "\"availability\":{\"code\":\"temporarily_unavailable\",\"retryable\":true,"
                                "\"retry_after\":" + retry + ",\"requested_models\":[";
            append_json_string(avail, m.id);
            avail += "],\"affected_providers\":[";
            append_json_string(avail, m.provider);
            avail += "],\"excluded_by\":[],\"fallback_models\":[],\"constraint\":null,\"docs_url\":"
                     "\"https://openrouter.ai/docs/api_reference/errors-and-debugging\"}";
            body = render_error(503, "No endpoints available for " + std::string{m.id} + " at this time",
                                "{\"error_type\":\"provider_overloaded\"}", avail);
            break;
        }
        case fault_kind::bad_request:
            body = render_error(400, "Invalid request parameters", "{\"error_type\":\"invalid_request\"}");
            break;
        case fault_kind::unauthorized:
            body = render_error(401, "User not found.", "{\"error_type\":\"authentication\"}");
            break;
        case fault_kind::payment_required:
            body = render_error(402, "Insufficient credits. Add more using https://openrouter.ai/settings/credits",
                                "{\"error_type\":\"payment_required\"}");
            break;
        default:
            break;
        }
        res.body() = std::move(body);
        state->count_error();
        co_await ex.respond(std::move(res));
    }

    // ---- generation records ---------------------------------------------

    void record_generation(turn_context const& c, bill const& b, std::string finish, std::string native, bool cancelled,
                           steady::time_point t0, steady::time_point first, steady::time_point end) {
        generation_record g;
        g.id = c.gen_id;
        g.model = c.req.model->served_as;
        g.provider = c.req.model->provider;
        g.total_cost = b.numbers.cost;
        g.prompt_cost = b.numbers.prompt_cost;
        g.completion_cost = b.numbers.completion_cost;
        g.tokens_prompt = b.numbers.prompt;
        g.tokens_completion = b.numbers.completion;
        g.tokens_cached = b.numbers.cached;
        g.finish_reason = std::move(finish);
        g.native_finish_reason = std::move(native);
        g.streamed = c.req.stream;
        g.cancelled = cancelled;
        g.latency_ms = millis_between(t0, first);
        g.generation_time_ms = millis_between(first, end);
        g.created_unix = c.created;
        state->store_generation(std::move(g));
        if (b.nano > 0) state->add_cost(b.nano);
    }

    // The client went away: a stream bills what was sent, a non-streamed
    // answer is billed whole (openrouter-api.md §5, Cancellation).
    void on_cancelled(turn_context const& c, std::size_t sent, steady::time_point t0, steady::time_point first) {
        state->count_cancelled();
        bill b = c.req.stream ? make_bill(c, sent, true) : make_bill(c, c.ans.units(), false);
        record_generation(c, b, {}, {}, true, t0, first, steady::now());
    }

    // ---- streamed answer --------------------------------------------------

    // Kept out of line: inlining this coroutine's ramp into chat() makes GCC 12
    // warn -Wmismatched-new-delete on Asio's frame allocator (a false positive).
    [[gnu::noinline]] task<void> stream(exchange& ex, turn_context& c) {
        auto const& m = *c.req.model;
        http::response_header<> h;
        h.result(http::status::ok);
        h.set(http::field::content_type, "text/event-stream");
        h.set(http::field::cache_control, "no-cache");
        h.set("X-Generation-Id", c.gen_id);
        auto t0 = steady::now();
        if (!co_await ex.begin_stream(std::move(h))) {
            on_cancelled(c, 0, t0, t0);
            co_return;
        }
        asio::steady_timer timer{co_await asio::this_coro::executor};
        for (std::uint32_t i = 0; i < c.keepalive_comments; ++i) {
            co_await sleep_until(timer, t0 + c.latency * i / c.keepalive_comments);
            if (!co_await ex.write(keepalive_comment)) {
                on_cancelled(c, 0, t0, steady::now());
                co_return;
            }
        }
        co_await sleep_until(timer, t0 + c.latency);

        if (c.has_fault(fault_kind::whitespace_only)) {
            ex.abort();
            co_return;
        }
        if (c.has_fault(fault_kind::error_200)) {
            std::string ev = "data: " + render_error(502, "Provider returned error") + "\n\n";
            if (co_await ex.write(ev)) co_await ex.end_stream();
            co_return;
        }

        chunk_renderer r{c.gen_id, m.served_as, m.provider, c.created};
        std::size_t total = c.ans.units();
        std::size_t cut = total;
        bool cutting = c.has_fault(fault_kind::mid_stream_error) || c.has_fault(fault_kind::drop);
        if (cutting) {
            cut = std::min<std::size_t>(total, c.fault->after_tokens.value_or(std::max<std::size_t>(1, total / 2)));
        }
        unit_cursor cursor{c.ans};
        std::string buf;
        buf.reserve(2048);
        auto first = steady::now();
        std::size_t sent = 0, pending = 0;
        auto due = [&](std::size_t k) {
            return first + std::chrono::nanoseconds{
                               static_cast<std::int64_t>(1'000'000'000ull * k / c.tokens_per_second)};
        };
        while (sent + pending < cut) {
            std::size_t k = sent + pending;
            if (c.tokens_per_second > 0 && k > 0) co_await sleep_until(timer, due(k));
            cursor.render(r, buf);
            ++pending;
            // Unpaced, or behind schedule (an overloaded simulator): the
            // events already due share one write instead of one write each.
            bool more = sent + pending < cut && buf.size() < batch_bytes;
            if (more && (c.tokens_per_second == 0 || due(k + 1) <= steady::now())) continue;
            if (!co_await ex.write(buf)) {
                on_cancelled(c, sent, t0, first);
                co_return;
            }
            sent += pending;
            pending = 0;
            buf.clear();
        }

        if (c.has_fault(fault_kind::mid_stream_error)) {
            r.error(buf, 502, "Provider returned error", "provider_unavailable");
            bool ok = co_await ex.write(buf);
            if (ok) ok = co_await ex.end_stream();
            if (!ok) state->count_cancelled();
            record_generation(c, make_bill(c, sent, true), "error", "error", false, t0, first, steady::now());
            co_return;
        }
        if (c.has_fault(fault_kind::drop)) {
            record_generation(c, make_bill(c, sent, true), {}, {}, false, t0, first, steady::now());
            ex.abort();
            co_return;
        }

        bill b = make_bill(c, sent, false);
        r.finish(buf, c.ans.finish_reason, c.ans.native_finish_reason);
        r.usage(buf, c.shape, c.ans.finish_reason, c.ans.native_finish_reason, b.json);
        buf += done_event;
        if (!co_await ex.write(buf)) {
            on_cancelled(c, sent, t0, first);
            co_return;
        }
        co_await ex.end_stream();
        record_generation(c, b, c.ans.finish_reason, c.ans.native_finish_reason, false, t0, first, steady::now());
        state->count_completed();
    }

    // ---- non-streamed answer (padded, chunked) ----------------------------

    [[gnu::noinline]] task<void> plain(exchange& ex, turn_context& c) {  // out of line: see stream()
        auto const& m = *c.req.model;
        http::response_header<> h;
        h.result(http::status::ok);
        h.set(http::field::content_type, "application/json");
        h.set("X-Generation-Id", c.gen_id);
        auto t0 = steady::now();
        if (!co_await ex.begin_stream(std::move(h))) {
            on_cancelled(c, 0, t0, t0);
            co_return;
        }
        asio::steady_timer timer{co_await asio::this_coro::executor};
        std::size_t total = c.ans.units();
        bool quick = c.has_fault(fault_kind::whitespace_only) || c.has_fault(fault_kind::error_200);
        auto work = std::chrono::duration_cast<steady::duration>(c.latency);
        if (c.tokens_per_second > 0 && !quick)
            work += std::chrono::nanoseconds{static_cast<std::int64_t>(1'000'000'000ull * total / c.tokens_per_second)};
        auto end = t0 + work;
        // Padding while the model works: one block now, one every interval.
        for (auto at = t0; at == t0 || at < end; at += padding_interval) {
            co_await sleep_until(timer, at);
            if (!co_await ex.write(padding_block)) {
                on_cancelled(c, 0, t0, t0 + c.latency);
                co_return;
            }
        }
        co_await sleep_until(timer, end);
        auto first = t0 + c.latency;

        if (c.has_fault(fault_kind::whitespace_only)) {
            ex.abort();
            co_return;
        }
        if (c.has_fault(fault_kind::error_200)) {
            if (co_await ex.write(render_error(502, "Provider returned error"))) co_await ex.end_stream();
            co_return;
        }

        completion_fields f;
        f.id = c.gen_id;
        f.model = m.served_as;
        f.provider = m.provider;
        f.created = c.created;
        if (c.has_fault(fault_kind::mid_stream_error) || c.has_fault(fault_kind::drop)) {
            std::size_t cut = std::min<std::size_t>(
                total, c.fault->after_tokens.value_or(std::max<std::size_t>(1, total / 2)));
            bill b = make_bill(c, cut, true);
            if (c.has_fault(fault_kind::drop)) {
                // Half of the final JSON, then the connection is cut.
                std::string text = c.ans.text();
                f.content = text;
                f.calls_from = &c.ans;
                f.finish_reason = c.ans.finish_reason;
                f.native_finish_reason = c.ans.native_finish_reason;
                bill full = make_bill(c, total, false);
                f.usage_json = full.json;
                std::string body = render_completion(f);
                co_await ex.write(std::string_view{body}.substr(0, body.size() / 2));
                record_generation(c, b, {}, {}, false, t0, first, steady::now());
                ex.abort();
                co_return;
            }
            // Documented shape of an error on a 200: the choice has finish_reason
            // "error", an "error" object and the partial content.
            std::string partial = c.ans.text_of_first(cut);
            f.content = partial;
            f.finish_reason = "error";
            f.native_finish_reason = "error";
            f.usage_json = b.json;
            f.choice_error_json = "{\"code\":502,\"message\":\"Provider returned error\",\"metadata\":{\"error_type\":"
                                  "\"provider_unavailable\"}}";
            bool ok = co_await ex.write(render_completion(f));
            if (ok) ok = co_await ex.end_stream();
            if (!ok) state->count_cancelled();
            record_generation(c, b, "error", "error", false, t0, first, steady::now());
            co_return;
        }

        bill b = make_bill(c, total, false);
        std::string text = c.ans.text();
        f.content = text;
        f.calls_from = &c.ans;
        f.finish_reason = c.ans.finish_reason;
        f.native_finish_reason = c.ans.native_finish_reason;
        f.usage_json = b.json;
        if (!co_await ex.write(render_completion(f))) {
            on_cancelled(c, total, t0, first);
            co_return;
        }
        co_await ex.end_stream();
        record_generation(c, b, c.ans.finish_reason, c.ans.native_finish_reason, false, t0, first, steady::now());
        state->count_completed();
    }

    // ---- POST /api/v1/chat/completions ------------------------------------

    struct active_guard {
        explicit active_guard(std::shared_ptr<sim_state> s) : state{std::move(s)} { state->stream_started(); }
        ~active_guard() { state->stream_finished(); }
        active_guard(active_guard const&) = delete;
        active_guard& operator=(active_guard const&) = delete;
        std::shared_ptr<sim_state> state;
    };

    static std::string_view bearer_of(request const& req) {
        auto auth = trim(header(req, "Authorization"));
        if (auth.size() < 7) return {};
        auto scheme = auth.substr(0, 7);
        bool is_bearer = true;
        for (std::size_t i = 0; i < 6; ++i)
            is_bearer = is_bearer && std::tolower(static_cast<unsigned char>(scheme[i])) == "bearer"[i];
        if (!is_bearer || scheme[6] != ' ') return {};
        return trim(auth.substr(7));
    }

    void record(request const& req, std::string const& gen_id, json::value const* body) {
        recorded_request rec;
        rec.at_ms = unix_millis();
        rec.generation_id = gen_id;
        rec.authorization = !header(req, "Authorization").empty();
        static constexpr std::string_view interesting[] = {
            "x-request-id",   "http-referer", "x-openrouter-title", "x-title",     "x-openrouter-categories",
            "x-session-id",   "x-sim-fault",  "x-sim-script",       "content-type", "user-agent"};
        for (auto name : interesting) {
            auto v = header(req, name);
            if (!v.empty()) rec.headers.emplace_back(name, v);
        }
        auto const& raw = req.body();
        if (raw.size() > recorded_body_limit) {
            rec.body = json::object{{"truncated", true}, {"bytes", raw.size()}};
        } else if (body) {
            rec.body = *body;
        } else {
            rec.body = json::string(raw);
        }
        state->record_request(std::move(rec));
    }

    task<void> chat(request& req, exchange& ex) {
        state->count_request();
        turn_context c;
        c.created = unix_seconds();
        c.gen_id = state->new_generation_id(c.created);

        boost::system::error_code jec;
        json::value body = json::parse(req.body(), jec);
        record(req, c.gen_id, jec ? nullptr : &body);

        auto bearer = bearer_of(req);
        if (bearer.empty()) {
            co_await reply_error(ex, req, c.gen_id, 401, render_error(401, "No auth credentials found"));
            co_return;
        }
        if (!opts.api_key.empty() && bearer != opts.api_key) {
            co_await reply_error(ex, req, c.gen_id, 401, render_error(401, "User not found."));
            co_return;
        }
        if (jec) {
            co_await reply_error(ex, req, c.gen_id, 400,
                                 render_error(400, "Invalid JSON in request body: " + jec.message(),
                                              "{\"error_type\":\"invalid_request\"}"));
            co_return;
        }
        auto analyzed = analyze_request(body);
        if (!analyzed.request) {
            co_await reply_error(ex, req, c.gen_id, analyzed.status,
                                 render_error(analyzed.status, analyzed.error, "{\"error_type\":\"invalid_request\"}"));
            co_return;
        }
        c.req = std::move(*analyzed.request);

        // Per-request overrides of the command-line pacing (for tests).
        c.latency = opts.latency;
        c.tokens_per_second = opts.tokens_per_second;
        c.keepalive_comments = opts.keepalive_comments;
        c.shape = opts.shape;
        generation_params params{opts.answer_tokens, opts.seed};
        std::string bad;
        auto number_header = [&](std::string_view name, std::uint64_t max) -> std::optional<std::uint64_t> {
            auto v = header(req, name);
            if (v.empty()) return std::nullopt;
            auto n = parse_u64(v);
            if (!n || *n > max) bad = std::string{name} + ": expected an integer 0.." + std::to_string(max);
            return n && *n <= max ? n : std::nullopt;
        };
        if (auto v = number_header("X-Sim-Latency-Ms", 600'000)) c.latency = std::chrono::milliseconds{*v};
        if (auto v = number_header("X-Sim-Tokens-Per-Second", 1'000'000)) c.tokens_per_second = static_cast<std::uint32_t>(*v);
        if (auto v = number_header("X-Sim-Keepalive-Comments", 10'000)) c.keepalive_comments = static_cast<std::uint32_t>(*v);
        if (auto v = number_header("X-Sim-Answer-Tokens", 1'000'000)) params.answer_tokens = static_cast<std::uint32_t>(std::max<std::uint64_t>(1, *v));
        if (auto v = header(req, "X-Sim-Usage-Shape"); !v.empty()) {
            if (auto s = parse_usage_shape(trim(v))) c.shape = *s;
            else bad = "X-Sim-Usage-Shape: expected empty, finish or delta";
        }
        if (!bad.empty()) {
            co_await reply_error(ex, req, c.gen_id, 400, render_error(400, bad, "{\"error_type\":\"invalid_request\"}"));
            co_return;
        }
        if (c.req.stream) state->count_stream();

        std::string request_id{header(req, "X-Request-Id")};
        std::uint32_t attempt = request_id.empty() ? 1 : state->record_attempt(request_id);

        // Fault: the header, else a scenario model, else the random rates.
        if (auto fh = header(req, "X-Sim-Fault"); !fh.empty()) {
            auto parsed = parse_fault_spec(fh, true);
            if (!parsed.spec) {
                co_await reply_error(ex, req, c.gen_id, 400,
                                     render_error(400, "X-Sim-Fault: " + parsed.error, "{\"error_type\":\"invalid_request\"}"));
                co_return;
            }
            if (!parsed.spec->times || attempt <= *parsed.spec->times) c.fault = parsed.spec;
        } else if (c.req.scenario_fault) {
            c.fault = fault_spec{};
            c.fault->kind = *c.req.scenario_fault;
        } else if (auto k = state->draw_fault()) {
            c.fault = fault_spec{};
            c.fault->kind = *k;
        }
        std::optional<script_turn> turn;
        if (!c.fault) {
            turn = state->take_turn(header(req, "X-Sim-Script"), c.req.user);
            if (turn && turn->fault) c.fault = turn->fault;
        }
        if (c.fault) state->count_fault(c.fault->kind);
        c.ans = plan_answer(c.req, turn ? &*turn : nullptr, params, state->next_salt());
        if (c.ans.latency) c.latency = *c.ans.latency;

        if (c.fault && fault_status(c.fault->kind) != 0) {
            co_await reply_fault(ex, req, c);
            co_return;
        }
        active_guard guard{state};
        if (c.has_fault(fault_kind::slow_first_byte)) {
            asio::steady_timer timer{co_await asio::this_coro::executor};
            timer.expires_after(c.fault->delay);
            co_await timer.async_wait(use_nothrow);
        }
        if (c.req.stream) co_await stream(ex, c);
        else co_await plain(ex, c);
    }

    // ---- routing ------------------------------------------------------------

    // A named coroutine owning the simulator while it answers (STYLE 2.3).
    static task<void> handle_request(std::shared_ptr<impl> self, request& req, exchange& ex) {
        if (!self) co_return;  // shutting down: the server answers 500
        co_await self->handle(req, ex);
    }

    task<void> handle(request& req, exchange& ex) {
        std::string_view target{req.target().data(), req.target().size()};
        auto qpos = target.find('?');
        std::string_view path = target.substr(0, qpos);
        std::string_view query = qpos == std::string_view::npos ? std::string_view{} : target.substr(qpos + 1);
        auto method = req.method();
        auto not_allowed = [&]() {
            return json_response(req, http::status::method_not_allowed, render_error(405, "Method Not Allowed"));
        };

        if (path == "/api/v1/chat/completions") {
            if (method != http::verb::post) {
                co_await ex.respond(not_allowed());
                co_return;
            }
            co_await chat(req, ex);
            co_return;
        }
        if (path == "/api/v1/models") {
            if (method != http::verb::get) co_await ex.respond(not_allowed());
            else co_await ex.respond(json_response(req, http::status::ok, models));
            co_return;
        }
        if (path == "/api/v1/generation") {
            if (method != http::verb::get) {
                co_await ex.respond(not_allowed());
            } else if (bearer_of(req).empty()) {
                co_await ex.respond(json_response(req, http::status::unauthorized, render_error(401, "No auth credentials found")));
            } else if (auto id = query_param(query, "id"); !id || id->empty()) {
                co_await ex.respond(json_response(req, http::status::bad_request, render_error(400, "Missing required parameter: id")));
            } else if (auto g = state->render_generation(*id)) {
                co_await ex.respond(json_response(req, http::status::ok, std::move(*g)));
            } else {
                co_await ex.respond(json_response(req, http::status::not_found,
                                                  render_error(404, "Generation " + *id + " not found")));
            }
            co_return;
        }
        if (path == "/api/v1/key" || path == "/api/v1/auth/key") {
            if (method != http::verb::get) co_await ex.respond(not_allowed());
            else if (bearer_of(req).empty())
                co_await ex.respond(json_response(req, http::status::unauthorized, render_error(401, "No auth credentials found")));
            else co_await ex.respond(json_response(req, http::status::ok, state->render_key()));
            co_return;
        }
        if (path == "/sim/script") {
            if (method == http::verb::post) {
                boost::system::error_code ec;
                auto body = json::parse(req.body(), ec);
                if (ec) {
                    co_await ex.respond(json_response(req, http::status::bad_request,
                                                      render_error(400, "script: invalid JSON: " + ec.message())));
                    co_return;
                }
                auto parsed = parse_script(body);
                if (!parsed.error.empty()) {
                    co_await ex.respond(json_response(req, http::status::bad_request, render_error(400, "script: " + parsed.error)));
                    co_return;
                }
                std::size_t n = parsed.turns.size();
                std::size_t pending = state->add_script(parsed.key, std::move(parsed.turns));
                std::string out = "{\"queued\":" + std::to_string(n) + ",\"pending\":" + std::to_string(pending) + ",\"key\":";
                if (parsed.key) append_json_string(out, *parsed.key);
                else out += "null";
                out += '}';
                co_await ex.respond(json_response(req, http::status::ok, std::move(out)));
            } else if (method == http::verb::delete_) {
                state->clear_scripts(query_param(query, "key"));
                co_await ex.respond(json_response(req, http::status::ok, "{\"cleared\":true}"));
            } else if (method == http::verb::get) {
                co_await ex.respond(json_response(req, http::status::ok, state->render_scripts()));
            } else {
                co_await ex.respond(not_allowed());
            }
            co_return;
        }
        if (path == "/sim/counters") {
            if (method != http::verb::get) co_await ex.respond(not_allowed());
            else co_await ex.respond(json_response(req, http::status::ok, state->render_counters()));
            co_return;
        }
        if (path == "/sim/requests") {
            if (method != http::verb::get) {
                co_await ex.respond(not_allowed());
                co_return;
            }
            std::size_t last = sim_state::max_recorded_requests;
            if (auto l = query_param(query, "last")) {
                auto n = parse_u64(*l);
                if (!n) {
                    co_await ex.respond(json_response(req, http::status::bad_request,
                                                      render_error(400, "last: expected a non-negative integer")));
                    co_return;
                }
                last = static_cast<std::size_t>(std::min<std::uint64_t>(*n, last));
            }
            co_await ex.respond(json_response(req, http::status::ok, state->render_requests(last)));
            co_return;
        }
        if (path == "/sim/reset") {
            if (method != http::verb::post) {
                co_await ex.respond(not_allowed());
                co_return;
            }
            state->reset();
            co_await ex.respond(json_response(req, http::status::ok, "{\"reset\":true}"));
            co_return;
        }
        co_await ex.respond(json_response(req, http::status::not_found, render_error(404, "Not Found")));
    }
};

simulator::simulator(asio::any_io_executor ex, options opts)
    : impl_{std::make_shared<impl>(std::move(ex), std::move(opts))} {
    net::server_options so;
    so.host = impl_->opts.host;
    so.port = impl_->opts.port;
    so.body_limit = body_limit;
    so.max_connections = 100'000;
    so.tls = impl_->tls;
    std::weak_ptr<impl> weak = impl_;
    impl_->server = std::make_unique<net::http_server>(
        impl_->executor, std::move(so),
        [weak](request& req, exchange& ex) { return impl::handle_request(weak.lock(), req, ex); });
}

simulator::~simulator() = default;

void simulator::start() { impl_->server->start(); }

void simulator::stop() { impl_->server->stop(); }

unsigned short simulator::port() const { return impl_->server->local_endpoint().port(); }

std::string simulator::url() const {
    auto ep = impl_->server->local_endpoint();
    std::string host = ep.address().to_string();
    if (ep.address().is_v6()) host = "[" + host + "]";
    return std::string{impl_->tls ? "https" : "http"} + "://" + host + ":" + std::to_string(ep.port());
}

}  // namespace parley::sim
