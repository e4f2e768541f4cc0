#include "app/chat.hpp"

#include "actors/accountant.hpp"
#include "actors/openrouter_client.hpp"
#include "actors/session.hpp"
#include "app/accounting.hpp"
#include "app/assistant.hpp"
#include "app/logging.hpp"
#include "domain/messages.hpp"
#include "domain/money.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <random>
#include <exception>
#include <functional>
#include <ostream>
#include <stdexcept>
#include <variant>

namespace parley::app {

namespace json = boost::json;

namespace {

bool has_flag(parsed_args const& a, std::string_view name) {
    for (auto const& [k, v] : a.command_flags) {
        if (k == name) {
            return true;
        }
    }
    return false;
}

std::string joined(std::vector<std::string> const& parts) {
    std::string s;
    for (auto const& p : parts) {
        if (!s.empty()) {
            s += ' ';
        }
        s += p;
    }
    return s;
}

bool blank(std::string_view s) { return s.find_first_not_of(" \t\r\n") == std::string_view::npos; }

std::string one_line(std::string s) {
    std::replace(s.begin(), s.end(), '\n', ' ');
    std::replace(s.begin(), s.end(), '\r', ' ');
    return s;
}

std::string error_code_text(net::upstream_error const& e) {
    return e.code_text.empty() ? std::to_string(e.status) : e.code_text;
}

std::string seconds_text(std::chrono::seconds s) { return std::to_string(s.count()) + " s"; }

json::object usage_json(domain::usage_record const& row) {
    return json::object{{"input_tokens", row.input_tokens},
                        {"output_tokens", row.output_tokens},
                        {"cached_tokens", row.cached_tokens},
                        {"cost_usd", domain::format_usd(row.cost)},
                        {"cost_source", domain::to_string(row.source)}};
}

json::object to_json(actors::call_result const& r, std::optional<domain::usage_record> const& row) {
    json::object o;
    if (r.result) {
        auto const& c = *r.result;
        o["text"] = c.text;
        json::array calls;
        for (auto const& t : c.tool_calls) {
            calls.push_back(json::object{{"id", t.id}, {"name", t.name}, {"arguments", t.arguments}});
        }
        o["tool_calls"] = std::move(calls);
        o["model"] = c.model;
        o["finish_reason"] = c.finish_reason;
        o["generation_id"] = c.generation_id;
    } else {
        o["text"] = r.partial ? r.partial->text : "";
        o["tool_calls"] = json::array{};
        o["model"] = r.partial ? r.partial->model : "";
        o["finish_reason"] = "";
        o["generation_id"] = r.partial ? r.partial->generation_id : "";
    }
    o["request_id"] = r.request_id;
    if (row) {
        o["usage"] = usage_json(*row);
    } else {
        o["usage"] = nullptr;
    }
    if (!r.result) {
        auto const& e = r.result.error();
        o["error"] = json::object{{"code", error_code_text(e)},
                                  {"status", e.status},
                                  {"message", e.message},
                                  {"retryable", e.retryable},
                                  {"attempts", r.attempts}};
    }
    return o;
}

// A refused admission, for people.
std::string refusal_text(actors::admission_decision const& d, domain::settings const& s, std::string const& user) {
    if (d.code == "rate_limited") {
        return "rate limited: user '" + user + "' made " + std::to_string(s.limits.rate_per_user_per_hour) +
               " requests in the last hour (AI_RATE_LIMIT_PER_USER); retry in " + seconds_text(d.retry_after);
    }
    std::string const which = d.scope == "user" ? "the daily budget of user '" + user + "' (AI_COST_LIMIT_DAILY_PER_USER)"
                                                : "the service's daily budget (AI_COST_LIMIT_DAILY)";
    return "budget exhausted: " + which + " has no room for this call's worst case; it resets at 00:00 UTC, in " +
           seconds_text(d.retry_after);
}

std::string random_session_id() {
    std::random_device rd;
    char buf[24];
    std::snprintf(buf, sizeof buf, "chat-%08x%08x", rd(), rd());
    return buf;
}


struct chat_args {
    std::string text;
    bool stream = false;
    bool as_json = false;
    std::string user;
    std::vector<std::string> perms;
    json::object context;
    std::optional<std::string> conversation;
};

// Runs `body` on a private io_context with the OpenRouter client and the
// accounting stack started (the limits loaded for `user`), then shuts them
// down. 2, after one line on `err`, when either cannot start; else 0.
using chat_body = std::function<task<void>(std::shared_ptr<actors::openrouter_client> const&, accounting_stack&,
                                           asio::io_context&)>;

int with_chat_stack(domain::settings const& s, std::string const& user, std::ostream& err, chat_body const& body) {
    asio::io_context ioc{1};
    std::shared_ptr<actors::openrouter_client> client;
    try {
        client = std::make_shared<actors::openrouter_client>(ioc.get_executor(), actors::openrouter_options::from(s));
    } catch (std::exception const& e) {
        err << "parley chat: " << e.what() << "\n";
        return 2;
    }
    std::string startup_failure;
    std::exception_ptr failure;
    asio::co_spawn(
        ioc,
        [&]() -> task<void> {
            accounting_stack stack;
            try {
                std::optional<std::string> const only_user = user;
                stack = co_await start_accounting(s, client, only_user);
            } catch (startup_error const& e) {
                startup_failure = e.what();
            }
            if (startup_failure.empty()) {
                co_await body(client, stack, ioc);
                co_await stack.shutdown(std::chrono::seconds{5});
            }
            co_await client->shutdown();
        },
        [&failure](std::exception_ptr e) { failure = e; });
    ioc.run();
    if (failure) {
        std::rethrow_exception(failure);  // LCOV_EXCL_LINE: calls and turns report their failures as values
    }
    if (!startup_failure.empty()) {
        err << "parley chat: " << one_line(startup_failure) << "\n";
        return 2;
    }
    return 0;
}

// --raw: the text alone as one upstream call (no system prompt, no tools).
int run_raw_chat(chat_args const& ca, domain::settings const& s, std::ostream& out, std::ostream& err) {
    auto const& text = ca.text;
    bool const stream = ca.stream;
    bool const as_json = ca.as_json;
    auto const& user = ca.user;
    auto const& perms = ca.perms;
    std::vector<domain::message> history;
    domain::message turn;
    turn.r = domain::role::user;
    turn.content = text;
    history.push_back(std::move(turn));
    domain::request_options ro;
    ro.model = s.ai.model;
    ro.fallback_models = s.ai.fallback_models;
    ro.max_tokens = s.ai.max_tokens;
    ro.temperature = s.ai.temperature;
    ro.stream = stream;
    ro.user = user;
    auto call = actors::make_chat_call(history, ro);
    bool printed = false;
    if (stream && !as_json) {
        call.on_text = [&out, &printed](std::string_view t) {
            out << t;
            out.flush();
            printed = true;
        };
    }

    actors::call_identity who;
    who.user_id = user;
    who.permissions = perms;
    who.session_id = random_session_id();
    std::vector<std::string> models{s.ai.model};
    models.insert(models.end(), s.ai.fallback_models.begin(), s.ai.fallback_models.end());
    std::size_t const prompt_bytes = call.body.size();

    std::optional<actors::call_result> result;
    std::optional<domain::usage_record> row;
    std::optional<actors::admission_decision> refused;
    std::string record_failure;
    bool interrupted = false;
    auto body = [&](std::shared_ptr<actors::openrouter_client> const& client, accounting_stack& stack,
                    asio::io_context& ioc) -> task<void> {
        auto const worst = stack.accountant->worst_case(prompt_bytes, models, s.ai.max_tokens);
        auto admitted = co_await stack.accountant->admit(who, worst);
        if (admitted && admitted->admitted) {
            // Ctrl-C cancels the call (the upstream connection is closed)
            // and the call is still recorded, as cancelled.
            asio::cancellation_signal cancel;
            asio::signal_set signals{ioc, SIGINT, SIGTERM};
            signals.async_wait([&](boost::system::error_code ec, int) {
                if (!ec) {
                    interrupted = true;
                    cancel.emit(asio::cancellation_type::terminal);
                }
            });
            auto answer = client->complete(std::move(call));
            auto r = co_await asio::co_spawn(ioc, std::move(answer),
                                             asio::bind_cancellation_slot(cancel.slot(), asio::use_awaitable));
            signals.cancel();
            auto recorded = co_await stack.accountant->record(who, *admitted, s.ai.model, prompt_bytes, r);
            if (recorded) {
                row = std::move(*recorded);
            } else {
                record_failure = recorded.error().message();
            }
            result = std::move(r);
        } else if (admitted) {
            refused = std::move(*admitted);
        } else {
            record_failure = admitted.error().message();  // LCOV_EXCL_LINE: the limiter runs until shutdown
        }
    };
    if (int const code = with_chat_stack(s, user, err, body); code != 0) {
        return code;
    }
    if (refused) {
        if (as_json) {
            json::object o{{"text", ""}, {"usage", nullptr}};
            o["error"] = json::object{{"code", refused->code},
                                      {"message", refusal_text(*refused, s, user)},
                                      {"retry_after", refused->retry_after.count()}};
            out << json::serialize(o) << "\n";
        }
        err << "parley chat: " << refusal_text(*refused, s, user) << " (" << refused->code << ")\n";
        return 1;
    }
    if (!record_failure.empty()) {
        err << "parley chat: the call's usage could not be recorded: " << record_failure << "\n";
    }
    if (interrupted) {
        if (printed) {
            out << "\n";
        }
        err << "parley chat: interrupted (the call is recorded as cancelled)\n";
        return 130;
    }
    auto const& r = *result;
    if (as_json) {
        out << json::serialize(to_json(r, row)) << "\n";
    } else if (r.result) {
        if (!stream) {
            out << r.result->text;
        }
        bool line_used = !r.result->text.empty();
        for (auto const& t : r.result->tool_calls) {
            out << (line_used ? "\n" : "") << "[tool call] " << t.name << " " << t.arguments;
            line_used = true;
        }
        out << "\n";
    } else if (printed) {
        out << "\n";  // end the partial line before the error
    }
    out.flush();
    if (!r.result) {
        auto const& e = r.result.error();
        err << "parley chat: " << one_line(e.message) << " (" << error_code_text(e) << ", " << r.attempts
            << (r.attempts == 1 ? " attempt" : " attempts") << ")\n";
        return 1;
    }
    if (!record_failure.empty()) {
        return 1;
    }
    return 0;
}

// The frames of one turn, for the terminal.
struct turn_printer {
    turn_printer(std::ostream& o, std::ostream& e, bool streamed, bool json_out)
        : out(o), err(e), stream(streamed), as_json(json_out) {}

    std::ostream& out;
    std::ostream& err;
    bool stream = false;
    bool as_json = false;
    bool printed = false;  // deltas reached stdout
    std::optional<json::object> last;  // the done or error frame
    json::array tools;

    void operator()(json::object f) {
        auto const type = f.at("type").as_string();
        if (type == "delta") {
            if (stream && !as_json) {
                out << f.at("text").as_string().c_str();
                out.flush();
                printed = true;
            }
        } else if (type == "tool") {
            if (f.at("status").as_string() != "started") {
                tools.push_back(json::object{{"name", f.at("name")}, {"status", f.at("status")}});
            }
            if (!as_json) {
                err << "[tool] " << f.at("name").as_string().c_str() << " " << f.at("status").as_string().c_str()
                    << "\n";
            }
        } else {
            last = std::move(f);
        }
    }
};

int run_session_chat(chat_args const& ca, domain::settings const& s, std::ostream& out, std::ostream& err) {
    assistant_files files;
    try {
        files = load_assistant_files(s);
    } catch (startup_error const& e) {
        err << "parley chat: " << one_line(e.what()) << "\n";
        return 2;
    }
    auto const lang = domain::parse_language(s.language).value_or(domain::language::es);
    turn_printer printer{out, err, ca.stream, ca.as_json};
    std::string open_failure;
    std::string conversation_id;
    bool interrupted = false;
    auto body = [&](std::shared_ptr<actors::openrouter_client> const& client, accounting_stack& stack,
                    asio::io_context& ioc) -> task<void> {
        auto assistant = start_assistant(ioc.get_executor(), s, std::move(files), client, stack);
        actors::session_options so;
        so.user.id = ca.user;
        so.user.name = ca.user;
        so.user.permissions = ca.perms;
        so.lang = lang;
        so.resume = ca.conversation;
        so.sink = [&printer](json::object f) { printer(std::move(f)); };
        asio::any_io_executor const session_ex = ioc.get_executor();
        auto opened = co_await actors::open_session(session_ex, assistant.services, std::move(so));
        if (opened.session) {
            auto session = opened.session;
            // Ctrl-C cancels the turn (the upstream connection is closed)
            // and its calls are still recorded, as cancelled.
            asio::signal_set signals{ioc, SIGINT, SIGTERM};
            signals.async_wait([&](boost::system::error_code ec, int) {
                if (!ec) {
                    interrupted = true;
                    asio::co_spawn(ioc, session->cancel(), asio::detached);
                }
            });
            actors::turn_request rq;
            rq.id = "t1";
            rq.text = ca.text;
            rq.context = ca.context;
            rq.stream = ca.stream;
            co_await session->send(std::move(rq));
            co_await session->idle();
            signals.cancel();
            auto info = co_await session->info();
            if (info) {
                conversation_id = info->conversation_id;
            }
            co_await session->shutdown(true);
        } else {
            open_failure = opened.error_code;
        }
        co_await assistant.shutdown();
    };
    if (int const code = with_chat_stack(s, ca.user, err, body); code != 0) {
        return code;
    }
    if (!open_failure.empty()) {
        err << "parley chat: " << domain::render(lang, open_failure) << " (" << open_failure << ")\n";
        return 1;
    }
    if (printer.printed) {
        out << "\n";  // end the streamed line
    }
    auto const& f = *printer.last;  // every accepted turn ends with done or error
    bool const ok = f.at("type").as_string() == "done";
    if (ca.as_json) {
        json::object o;
        if (ok) {
            o["text"] = f.at("text");
            o["model"] = f.at("model");
            o["fallback"] = f.at("fallback");
        } else {
            o["text"] = "";
            json::object e{{"code", f.at("code")}, {"message", f.at("message")}};
            if (auto const* ra = f.if_contains("retry_after")) {
                e["retry_after"] = *ra;
            }
            o["error"] = std::move(e);
        }
        o["usage"] = f.contains("usage") ? f.at("usage") : json::value(nullptr);
        o["tools"] = std::move(printer.tools);
        o["conversation_id"] = conversation_id;
        out << json::serialize(o) << "\n";
    } else if (ok && !ca.stream) {
        out << f.at("text").as_string().c_str() << "\n";
    }
    out.flush();
    if (ok && f.at("fallback").as_bool()) {
        err << "parley chat: the AI is unavailable; this is a fallback answer\n";
    }
    if (interrupted && !ok) {
        err << "parley chat: interrupted (the call is recorded as cancelled)\n";
        return 130;
    }
    if (!ok) {
        err << "parley chat: " << f.at("message").as_string().c_str() << " (" << f.at("code").as_string().c_str()
            << ")\n";
        return 1;
    }
    return 0;
}

}  // namespace

int run_chat(parsed_args const& a, domain::settings const& s, std::ostream& out, std::ostream& err) {
    chat_args ca;
    ca.text = joined(a.positional);
    if (blank(ca.text)) {
        err << "parley chat: the message TEXT is required (parley chat [--stream] [--json] [--raw] TEXT)\n";
        return 2;
    }
    if (!s.openrouter.api_key || s.openrouter.api_key->empty()) {
        err << "parley chat: OPENROUTER_API_KEY is not set; set it to call " << s.openrouter.base_url << "\n";
        return 2;
    }
    ca.stream = has_flag(a, "stream");
    ca.as_json = has_flag(a, "json");
    for (auto const& [k, v] : a.command_flags) {
        if (k == "user") {
            ca.user = v;
        } else if (k == "perm") {
            if (v.empty()) {
                err << "parley chat: invalid --perm: a permission name cannot be empty\n";
                return 2;
            }
            ca.perms.push_back(v);
        } else if (k == "context") {
            boost::system::error_code ec;
            auto v2 = json::parse(v, ec);
            if (ec || !v2.is_object()) {
                err << "parley chat: invalid --context: expected a JSON object\n";
                return 2;
            }
            ca.context = std::move(v2.as_object());
        } else if (k == "conversation") {
            ca.conversation = v;
        }
    }
    if (ca.conversation && ca.user.empty()) {
        err << "parley chat: --conversation needs --user (a conversation is resumed by its owner)\n";
        return 2;
    }
    use_stderr_logging(s.log.level);
    if (has_flag(a, "raw")) {
        return run_raw_chat(ca, s, out, err);
    }
    return run_session_chat(ca, s, out, err);
}

}  // namespace parley::app
