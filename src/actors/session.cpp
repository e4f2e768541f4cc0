#include "actors/session.hpp"

#include "domain/money.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/detached.hpp>
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>
#include <exception>
#include <random>

namespace parley::actors {

namespace json = boost::json;

struct session::turn_state {
    std::string id;
    asio::cancellation_signal signal;
    bool cancelled = false;
};

namespace {

std::string today(std::chrono::system_clock::time_point t) {
    auto const tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return buf;
}

// Characters of UTF-8 text (bytes that do not continue a character).
std::size_t utf8_chars(std::string_view s) noexcept {
    std::size_t n = 0;
    for (unsigned char c : s) {
        n += (c & 0xC0) != 0x80;
    }
    return n;
}

bool blank(std::string_view s) { return s.find_first_not_of(" \t\r\n") == std::string_view::npos; }

tool_outcome too_many_calls(domain::tool_call const& call, std::size_t limit) {
    tool_outcome o;
    o.call_id = call.id;
    o.name = call.name.substr(0, 64);
    o.error = "more than " + std::to_string(limit) + " tool calls in one round";
    json::object e;
    e["error"] = "not run: at most " + std::to_string(limit) + " tool calls are run in one round";
    o.content = json::serialize(e);
    return o;
}

struct turn_usage {
    std::int64_t input_tokens = 0;
    std::int64_t output_tokens = 0;
    domain::nano_usd cost;
    int calls = 0;

    void add(domain::usage_record const& row) {
        input_tokens += row.input_tokens;
        output_tokens += row.output_tokens;
        // As the table stores it (6 decimals, half up), so the turn's cost is
        // the sum of its rows to the micro-dollar.
        cost += domain::nano_usd{domain::round_to_micros(row.cost) * 1000};
        ++calls;
    }
    json::object to_json() const {
        return json::object{{"input_tokens", input_tokens},
                            {"output_tokens", output_tokens},
                            {"cost_usd", domain::format_usd(cost)}};
    }
};

// Everything a turn works on: copies, so the turn never touches the actor's state.
struct turn_input {
    turn_request request;
    std::vector<domain::message> history;
    domain::language lang = domain::language::es;
    session_user user;
    std::string session_id;
    std::string conversation_id;
};

struct turn_output {
    std::vector<domain::message> appended;
};

class turn_runner {
public:
    turn_runner(assistant_services const& services, turn_input in, std::shared_ptr<session::turn_state> state,
                frame_sink const& sink)
        : s_(services), cfg_(*services.config), in_(std::move(in)), state_(std::move(state)), sink_(sink) {}

    task<turn_output> run();

private:
    void frame(json::object o) {
        o["id"] = in_.request.id;
        sink_(std::move(o));
    }
    void tool_frame(std::string const& name, char const* status) {
        json::object o;
        o["type"] = "tool";
        o["name"] = name;
        o["status"] = status;
        frame(std::move(o));
    }
    void delta(std::string_view text) {
        json::object o{{"type", "delta"}};
        o["text"] = text;
        frame(std::move(o));
    }
    void error(std::string const& code, domain::text_params const& params = {}) {
        json::object o{{"type", "error"}};
        o["code"] = code;
        o["message"] = domain::render(in_.lang, code, params);
        if (params.wait) {
            o["retry_after"] = params.wait->count();
        }
        if (usage_.calls > 0) {
            o["usage"] = usage_.to_json();  // what the turn's calls cost before it ended
        }
        frame(std::move(o));
    }
    void done(std::string const& text, std::string const& model, bool fallback) {
        json::object o{{"type", "done"}};
        o["text"] = text;
        o["model"] = model;
        o["fallback"] = fallback;
        o["usage"] = usage_.to_json();
        frame(std::move(o));
    }
    // The fallback answer when one matches, else the error `code`.
    void degrade(std::string const& code, domain::text_params const& params, turn_output& out) {
        if (!answer_.empty()) {
            // Text of earlier rounds reached the client: a canned answer now
            // would not match it. The turn ends with the error.
            error(code, params);
            return;
        }
        auto answer = cfg_.fallbacks.match(in_.request.text, in_.lang);
        if (!answer) {
            error(code, params);
            return;
        }
        if (in_.request.stream) {
            delta(*answer);
        }
        domain::message m;
        m.r = domain::role::assistant;
        m.content = *answer;
        out.appended.push_back(std::move(m));
        done(*answer, "", true);
    }
    std::string system_prompt() const {
        domain::prompt_inputs pin;
        pin.lang = in_.lang;
        pin.user_name = in_.user.name;
        pin.user_id = in_.user.id;
        pin.permissions = in_.user.permissions;
        pin.context = in_.request.context;
        pin.date = today(cfg_.now());
        return domain::render_system_prompt(cfg_.prompts.of(in_.lang), pin);
    }

    assistant_services const& s_;
    assistant_config const& cfg_;
    turn_input in_;
    std::shared_ptr<session::turn_state> state_;
    frame_sink const& sink_;
    turn_usage usage_;
    std::string answer_;  // all text of the turn, as streamed
    std::string model_;
};

task<turn_output> turn_runner::run() {
    turn_output out;
    domain::message user_msg;
    user_msg.r = domain::role::user;
    user_msg.content = in_.request.text;
    out.appended.push_back(std::move(user_msg));

    domain::message sys;
    sys.r = domain::role::system;
    sys.content = system_prompt();

    std::vector<std::string> models;
    models.push_back(cfg_.request.model);
    models.insert(models.end(), cfg_.request.fallback_models.begin(), cfg_.request.fallback_models.end());

    call_identity who;
    who.user_id = in_.user.id;
    who.permissions = in_.user.permissions;
    who.session_id = in_.session_id;
    who.conversation_id = in_.conversation_id;

    tool_user tuser;
    tuser.id = in_.user.id;
    tuser.name = in_.user.name;
    tuser.permissions = in_.user.permissions;
    tuser.lang = in_.lang;

    std::vector<domain::tool_spec> offered;
    if (s_.tools) {
        offered = s_.tools->registry().offered(in_.user.permissions);
    }
    auto ex = co_await asio::this_coro::executor;

    for (int round = 0;; ++round) {
        if (state_->cancelled) {
            error("cancelled");
            co_return out;
        }
        // The request: system prompt, trimmed history, this turn so far.
        std::vector<domain::message> convo = in_.history;
        convo.insert(convo.end(), out.appended.begin(), out.appended.end());
        convo = domain::trim_history(std::move(convo), cfg_.history_tokens);
        std::vector<domain::message> messages;
        messages.reserve(convo.size() + 1);
        messages.push_back(sys);
        messages.insert(messages.end(), convo.begin(), convo.end());

        domain::request_options ro = cfg_.request;
        ro.stream = in_.request.stream;
        ro.user = in_.user.id;
        ro.session_id = in_.session_id;
        bool const last_round = round >= cfg_.max_rounds;
        if (!offered.empty()) {
            ro.tools = offered;
            if (last_round) {
                domain::tool_choice_spec none;
                none.k = domain::tool_choice_spec::kind::none;
                ro.tool_choice = none;
            }
        }
        auto call = make_chat_call(messages, ro);
        std::size_t const prompt_bytes = call.body.size();
        bool streamed = false;
        bool const separate = !answer_.empty();
        std::size_t mark_text = answer_.size();  // this call's text starts here (after its separator)
        if (in_.request.stream) {
            call.on_text = [this, &streamed, &mark_text, separate](std::string_view t) {
                if (t.empty()) {
                    return;
                }
                if (!streamed && separate) {
                    delta("\n\n");
                    answer_ += "\n\n";
                    mark_text = answer_.size();
                }
                streamed = true;
                answer_.append(t);
                delta(t);
            };
        }

        bool const allowed = co_await s_.circuit->allow();
        if (!allowed) {
            degrade("ai_unavailable", domain::text_params{}, out);
            co_return out;
        }
        // Should anything below throw, a half-open circuit's probe slot is
        // given back (else no caller could ever probe again).
        verdict_guard guard;
        guard.breaker = s_.circuit;
        guard.ex = ex;
        auto const worst = s_.accountant->worst_case(prompt_bytes, models, cfg_.request.max_tokens.value_or(4096));
        auto adm = co_await s_.accountant->admit(who, worst);
        if (!adm || !adm->admitted) {
            guard.armed = false;
            co_await s_.circuit->report(call_verdict::abandoned);
            if (!adm) {
                error("internal_error");  // LCOV_EXCL_LINE: the limiter runs until shutdown
            } else {
                domain::text_params wait;
                wait.wait = adm->retry_after;
                if (adm->code == "rate_limited") {
                    error("rate_limited", wait);
                } else {
                    degrade("budget_exhausted", wait, out);
                }
            }
            co_return out;
        }

        call_result r;
        if (state_->cancelled) {
            net::upstream_error e;
            e.code_text = "cancelled";
            e.message = "the turn was cancelled";
            r.result = e;
            r.request_id = call.request_id;
        } else {
            auto answer = s_.client->complete(std::move(call));
            r = co_await asio::co_spawn(ex, std::move(answer),
                                        asio::bind_cancellation_slot(state_->signal.slot(), asio::use_awaitable));
        }
        auto recorded = co_await s_.accountant->record(who, *adm, cfg_.request.model, prompt_bytes, r);
        if (recorded) {
            usage_.add(*recorded);
        } else {
            spdlog::error("session {}: a call's usage could not be recorded: {}", in_.session_id,
                          recorded.error().message());
        }
        guard.armed = false;
        co_await s_.circuit->report(verdict_of(r));

        if (!r.result) {
            auto const& e = r.result.error();
            // What this call said before it ended (earlier rounds' text is
            // in their own messages already).
            std::string const said_now = answer_.substr(std::min(mark_text, answer_.size()));
            if (state_->cancelled || e.code_text == "cancelled") {
                if (!said_now.empty()) {
                    domain::message partial;
                    partial.r = domain::role::assistant;
                    partial.content = said_now;
                    out.appended.push_back(std::move(partial));
                }
                error("cancelled");
                co_return out;
            }
            spdlog::warn("session {}: upstream call failed after {} attempt(s): {} {}", in_.session_id, r.attempts,
                         e.status, e.code_text);
            if (streamed) {
                domain::message partial;
                partial.r = domain::role::assistant;
                partial.content = said_now;
                out.appended.push_back(std::move(partial));
                error("upstream_error");
            } else {
                degrade("ai_unavailable", domain::text_params{}, out);
            }
            co_return out;
        }

        auto const& c = *r.result;
        model_ = c.model.empty() ? cfg_.request.model : c.model;
        if (!in_.request.stream && !c.text.empty()) {
            if (!answer_.empty()) {
                answer_ += "\n\n";
            }
            answer_ += c.text;
        }
        domain::message said;
        said.r = domain::role::assistant;
        said.content = c.text;
        for (auto const& tc : c.tool_calls) {
            domain::tool_call dc;
            dc.id = tc.id;
            dc.name = tc.name;
            dc.arguments = tc.arguments;
            said.tool_calls.push_back(std::move(dc));
        }
        auto const calls = said.tool_calls;
        out.appended.push_back(std::move(said));

        if (c.tool_calls.empty() || last_round || !s_.tools) {
            done(answer_, model_, false);
            co_return out;
        }

        // A round of tools.
        for (auto const& tc : calls) {
            tool_frame(tc.name, "started");
        }
        auto on_done = [this](tool_outcome const& t) { tool_frame(t.name, t.ok ? "done" : "failed"); };
        // At most max_calls_per_round run; the others are answered without running.
        std::vector<domain::tool_call> to_run = calls;
        std::vector<tool_outcome> refused_calls;
        if (to_run.size() > cfg_.max_calls_per_round) {
            for (std::size_t i = cfg_.max_calls_per_round; i < to_run.size(); ++i) {
                refused_calls.push_back(too_many_calls(to_run[i], cfg_.max_calls_per_round));
                on_done(refused_calls.back());
            }
            to_run.resize(cfg_.max_calls_per_round);
        }
        std::vector<tool_outcome> outcomes;
        bool aborted = false;
        if (!state_->cancelled) {
            try {
                auto round_task = s_.tools->run_all(to_run, tuser, on_done);
                outcomes = co_await asio::co_spawn(
                    ex, std::move(round_task), asio::bind_cancellation_slot(state_->signal.slot(), asio::use_awaitable));
            } catch (std::exception const&) {
                aborted = true;
            }
        }
        if (aborted || state_->cancelled) {
            out.appended.pop_back();  // calls without results are not kept
            if (!c.text.empty()) {
                domain::message text_only;
                text_only.r = domain::role::assistant;
                text_only.content = c.text;
                out.appended.push_back(std::move(text_only));
            }
            error("cancelled");
            co_return out;
        }
        outcomes.insert(outcomes.end(), refused_calls.begin(), refused_calls.end());
        for (auto const& t : outcomes) {
            if (!t.ok) {
                spdlog::info("session {}: tool {} {}: {}", in_.session_id, t.name,
                             t.executed ? "failed" : "refused", t.error);
            }
            domain::message result_msg;
            result_msg.r = domain::role::tool;
            result_msg.tool_call_id = t.call_id;
            result_msg.content = t.content;
            out.appended.push_back(std::move(result_msg));
        }
    }
}

}  // namespace

std::string random_id(std::string_view prefix) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    static char const hex[] = "0123456789abcdef";
    std::string s{prefix};
    for (int i = 0; i < 2; ++i) {
        auto v = rng();
        for (int j = 0; j < 16; ++j) {
            s += hex[v & 0xF];
            v >>= 4;
        }
    }
    return s;
}

json::object ready_frame(session_info const& info) {
    json::array tools;
    for (auto const& t : info.tools) {
        tools.emplace_back(t);
    }
    return json::object{{"type", "ready"},
                        {"session_id", info.session_id},
                        {"conversation_id", info.conversation_id},
                        {"language", domain::to_string(info.lang)},
                        {"tools", std::move(tools)}};
}

session::session(asio::any_io_executor ex, assistant_services services, session_options options,
                 std::string conversation_id, std::vector<domain::message> history, bool stored)
    : actor{std::move(ex), {.capacity = 64, .name = "session"}},
      services_(std::move(services)),
      user_(std::move(options.user)),
      lang_(options.lang),
      session_id_(options.session_id.empty() ? random_id("s-") : std::move(options.session_id)),
      conversation_id_(std::move(conversation_id)),
      sink_(std::move(options.sink)),
      history_(std::move(history)),
      stored_(stored) {}

task<result<void>> session::send(turn_request request) { return tell(session_msg::send{std::move(request)}); }
task<result<void>> session::cancel(std::string id) { return tell(session_msg::cancel{std::move(id)}); }
task<result<void>> session::set_language(domain::language lang) { return tell(session_msg::set_language{lang}); }
task<result<session_info>> session::info() { return ask(session_msg::info{}); }
task<result<void>> session::idle() { return ask(session_msg::when_idle{}); }

task<void> session::shutdown(bool cancel_turn) {
    auto self = shared_from_this();
    if (cancel_turn) {
        std::string const any;  // (named: no temporaries inside co_await with GCC 12)
        co_await cancel(any);
    }
    co_await idle();
    co_await stop();
}

void session::error_frame(std::string const& id, std::string const& code, domain::text_params const& params,
                          std::string_view text) {
    json::object o{{"type", "error"}};
    o["id"] = id;
    o["code"] = code;
    o["message"] = domain::render(lang_, text.empty() ? std::string_view{code} : text, params);
    if (params.wait) {
        o["retry_after"] = params.wait->count();
    }
    sink_(std::move(o));
}

void session::on(session_msg::send& m) {
    auto& rq = m.request;
    auto const& cfg = *services_.config;
    if (turn_) {
        error_frame(rq.id, "busy");
        return;
    }
    if (blank(rq.text)) {
        error_frame(rq.id, "bad_request");
        return;
    }
    if (utf8_chars(rq.text) > cfg.max_message_chars) {
        error_frame(rq.id, "message_too_long", {.limit = cfg.max_message_chars});
        return;
    }
    if (!rq.context.empty() && json::serialize(rq.context).size() > cfg.max_context_bytes) {
        error_frame(rq.id, "bad_request", {.limit = cfg.max_context_bytes}, "context_too_large");
        return;
    }
    turn_ = std::make_shared<turn_state>();
    turn_->id = rq.id;
    turn_input in;
    in.request = std::move(rq);
    in.history = history_;
    in.lang = lang_;
    in.user = user_;
    in.session_id = session_id_;
    in.conversation_id = conversation_id_;
    auto self = shared_from_this();
    auto state = turn_;
    asio::co_spawn(
        get_executor(),
        [self, state, in = std::move(in)]() mutable -> task<void> {
            auto runner = std::make_unique<turn_runner>(self->services_, std::move(in), state, self->sink_);
            turn_output out;
            bool failed = false;
            try {
                out = co_await runner->run();
            } catch (std::exception const& e) {
                spdlog::error("session {}: a turn failed: {}", self->session_id_, e.what());
                failed = true;
            } catch (...) {  // LCOV_EXCL_LINE: nothing in a turn throws anything else
                failed = true;  // LCOV_EXCL_LINE
            }
            if (failed) {
                self->error_frame(state->id, "internal_error");
                out.appended.clear();
            }
            session_msg::turn_finished finished;
            finished.id = state->id;
            finished.appended = std::move(out.appended);
            self->tell_later(std::move(finished));
        },
        asio::detached);
}

void session::on(session_msg::cancel& m) {
    if (!turn_ || (!m.id.empty() && m.id != turn_->id) || turn_->cancelled) {
        return;
    }
    turn_->cancelled = true;
    turn_->signal.emit(asio::cancellation_type::terminal);
}

void session::on(session_msg::set_language& m) { lang_ = m.lang; }

task<void> session::on(session_msg::turn_finished& m) {
    auto const& cfg = *services_.config;
    turn_.reset();
    bool const answered = m.appended.size() > 1;  // the user's message and something after it
    if (answered) {
        history_.insert(history_.end(), m.appended.begin(), m.appended.end());
        history_ = domain::trim_history(std::move(history_), cfg.history_tokens);
    }
    if (answered && services_.store && !user_.id.empty()) {
        persistence::conversation_info c;
        c.id = conversation_id_;
        c.user_id = user_.id;
        c.language = std::string(domain::to_string(lang_));
        if (!stored_) {
            auto const& first = m.appended.front().content;
            std::size_t n = std::min<std::size_t>(first.size(), 80);
            while (n > 0 && n < first.size() && (static_cast<unsigned char>(first[n]) & 0xC0) == 0x80) {
                --n;  // first[n] continues a character: cut before it
            }
            c.title = first.substr(0, n);
        }
        auto stored = co_await services_.store->append(std::move(c), std::move(m.appended));
        stored_ = stored_ || stored.has_value();
    }
    // Released once the turn is stored: a shutdown waits for the store, and
    // a resume after idle() sees the turn.
    for (auto& w : idle_waiters_) {
        w.set();
    }
    idle_waiters_.clear();
}

session_info session::make_info() const {
    session_info i;
    i.session_id = session_id_;
    i.conversation_id = conversation_id_;
    i.lang = lang_;
    if (services_.tools) {
        i.tools = services_.tools->registry().offered_names(user_.permissions);
    }
    i.busy = static_cast<bool>(turn_);
    i.history_messages = history_.size();
    return i;
}

void session::on(session_msg::info& m) { m.reply_to.set(make_info()); }

void session::on(session_msg::when_idle& m) {
    if (!turn_) {
        m.reply_to.set();
        return;
    }
    idle_waiters_.push_back(std::move(m.reply_to));
}

task<open_result> open_session(asio::any_io_executor ex, assistant_services services, session_options options) {
    open_result out;
    std::string conversation_id;
    std::vector<domain::message> history;
    bool stored = false;
    if (options.resume) {
        if (!services.store || options.user.id.empty()) {
            out.error_code = "conversation_not_found";
            co_return out;
        }
        auto loaded = co_await services.store->load(*options.resume, options.user.id, services.config->resume_messages);
        if (!loaded) {
            out.error_code = "internal_error";
            co_return out;
        }
        if (!*loaded) {
            out.error_code = "conversation_not_found";
            co_return out;
        }
        conversation_id = (*loaded)->info.id;
        history = domain::trim_history(std::move((*loaded)->messages), services.config->history_tokens);
        stored = true;
    } else {
        conversation_id = random_id("c-");
    }
    out.session = spawn<session>(std::move(ex), std::move(services), std::move(options), std::move(conversation_id),
                                 std::move(history), stored);
    co_return out;
}

}  // namespace parley::actors
