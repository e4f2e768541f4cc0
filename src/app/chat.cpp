#include "app/chat.hpp"

#include "actors/openrouter_client.hpp"
#include "domain/messages.hpp"
#include "domain/money.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <ctime>
#include <exception>
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

std::string today_utc() {
    auto const t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return buf;
}

// The system prompt of a terminal turn (ARCHITECTURE §5 step 2: role,
// language, the user and their permissions, today's date).
std::string system_prompt(std::string const& language, std::string const& user, std::vector<std::string> const& perms) {
    bool const es = language == "es";
    std::string p = es ? "Eres Parley, un asistente útil. Responde en español, de forma clara y concisa."
                       : "You are Parley, a helpful assistant. Answer in English, clearly and concisely.";
    if (!user.empty()) {
        p += es ? " Usuario: " : " User: ";
        p += user;
        p += '.';
    }
    if (!perms.empty()) {
        p += es ? " Permisos: " : " Permissions: ";
        p += joined(perms);
        p += '.';
    }
    p += es ? " Fecha de hoy: " : " Today's date: ";
    p += today_utc();
    p += '.';
    return p;
}

void use_stderr_logging(domain::log_level level) {
    auto logger = std::make_shared<spdlog::logger>("parley", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    logger->set_level(level == domain::log_level::trace   ? spdlog::level::trace
                      : level == domain::log_level::debug ? spdlog::level::debug
                                                          : spdlog::level::warn);
    spdlog::set_default_logger(std::move(logger));
}

std::string error_code_text(net::upstream_error const& e) {
    return e.code_text.empty() ? std::to_string(e.status) : e.code_text;
}

json::object to_json(actors::call_result const& r) {
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
        o["request_id"] = r.request_id;
        json::object usage;
        usage["input_tokens"] = c.usage ? c.usage->prompt_tokens : 0;
        usage["output_tokens"] = c.usage ? c.usage->completion_tokens : 0;
        usage["cached_tokens"] = c.usage ? c.usage->cached_tokens.value_or(0) : 0;
        if (r.cost) {
            usage["cost_usd"] = domain::format_usd(*r.cost);
        } else {
            usage["cost_usd"] = nullptr;
        }
        o["usage"] = std::move(usage);
        return o;
    }
    auto const& e = r.result.error();
    o["text"] = "";
    o["tool_calls"] = json::array{};
    o["model"] = "";
    o["finish_reason"] = "";
    o["generation_id"] = "";
    o["request_id"] = r.request_id;
    o["usage"] = nullptr;
    o["error"] = json::object{{"code", error_code_text(e)},
                              {"status", e.status},
                              {"message", e.message},
                              {"retryable", e.retryable},
                              {"attempts", r.attempts}};
    return o;
}

}  // namespace

int run_chat(parsed_args const& a, domain::settings const& s, std::ostream& out, std::ostream& err) {
    std::string const text = joined(a.positional);
    if (blank(text)) {
        err << "parley chat: the message TEXT is required (parley chat [--stream] [--json] [--raw] TEXT)\n";
        return 2;
    }
    if (!s.openrouter.api_key || s.openrouter.api_key->empty()) {
        err << "parley chat: OPENROUTER_API_KEY is not set; set it to call " << s.openrouter.base_url << "\n";
        return 2;
    }
    bool const stream = has_flag(a, "stream");
    bool const as_json = has_flag(a, "json");
    bool const raw = has_flag(a, "raw");
    std::string user;
    std::vector<std::string> perms;
    for (auto const& [k, v] : a.command_flags) {
        if (k == "user") {
            user = v;
        } else if (k == "perm") {
            if (v.empty()) {
                err << "parley chat: invalid --perm: a permission name cannot be empty\n";
                return 2;
            }
            perms.push_back(v);
        }
    }
    use_stderr_logging(s.log.level);

    std::vector<domain::message> history;
    if (!raw) {
        domain::message sys;
        sys.r = domain::role::system;
        sys.content = system_prompt(s.language, user, perms);
        history.push_back(std::move(sys));
    }
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

    asio::io_context ioc{1};
    std::unique_ptr<actors::openrouter_client> client;
    try {
        client = std::make_unique<actors::openrouter_client>(ioc.get_executor(), actors::openrouter_options::from(s));
    } catch (std::exception const& e) {
        err << "parley chat: " << e.what() << "\n";
        return 2;
    }

    std::optional<actors::call_result> result;
    bool interrupted = false;
    std::exception_ptr failure;
    asio::co_spawn(
        ioc,
        [&]() -> task<void> {
            using namespace asio::experimental::awaitable_operators;
            asio::signal_set signals{ioc, SIGINT, SIGTERM};
            auto answer = client->complete(std::move(call));
            auto signalled = signals.async_wait(asio::use_awaitable);
            auto first = co_await (std::move(answer) || std::move(signalled));
            if (first.index() == 0) {
                result = std::move(std::get<0>(first));
            } else {
                interrupted = true;
            }
            co_await client->shutdown();
        },
        [&failure](std::exception_ptr e) { failure = e; });
    ioc.run();
    if (failure) {
        std::rethrow_exception(failure);  // LCOV_EXCL_LINE: the call reports its failures as values
    }

    if (interrupted) {
        if (printed) {
            out << "\n";
        }
        err << "parley chat: interrupted\n";
        return 130;
    }
    auto const& r = *result;
    if (as_json) {
        out << json::serialize(to_json(r)) << "\n";
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
    return 0;
}

}  // namespace parley::app
