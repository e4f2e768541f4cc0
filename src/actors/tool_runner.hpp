#pragma once
// ToolRunner (ARCHITECTURE §3, §5 step 4): runs the tool calls of one round
// for a session, concurrently, each bounded by its tool's timeout.
//
//   tool_runner runner{ex, registry, {.limiter = l, .db = db}};
//   auto outcomes = co_await runner.run_all(calls, user);   // one per call, in call order
//   // outcomes[i].content is what the model gets as the tool result (JSON text)
//
// Before a call runs it is checked: the tool must exist and the user must
// be allowed to use it (domain::may_use), and its arguments must pass
// domain::check_arguments. A refused call is answered to the model with
// {"error": "..."} and never executed (executed == false).
//
// Handlers:
//  * current_time: {"utc":"2026-12-01T21:57:19Z","date":"2026-12-01","weekday":"Tuesday","unix":...}
//  * my_usage: the caller's requests in the last hour and the hourly limit,
//    requests and spend today (UTC, from the database; omitted when it is
//    unreachable), and what is left of the daily budgets (from the limiter).
//  * http: POST of {"tool","arguments","user":{"id","name","permissions","language"}}
//    to the tool's URL (header X-Parley-Tool: name), bounded by the tool's
//    timeout (connect, send and whole answer) and max_response_bytes. A 2xx
//    answer that is JSON is given to the model as it is; other text is
//    wrapped as {"result":"<text>"}; a non-2xx status, a timeout, a
//    connection failure or an oversized answer is a failure:
//    {"error":"..."} to the model, executed == true, ok == false.
//  * nats: the same JSON as http's body, as a NATS request to the tool's
//    subject, bounded by its timeout; the reply's data as http's answer
//    (JSON as it is, other text wrapped, over max_response_bytes a
//    failure); no responders, a timeout or the adapter being off (no
//    NATS_URL) is a failure.
// Cancelling the awaiting coroutine (the turn's cancel) aborts the HTTP
// calls in flight.
#include "actors/rate_limiter.hpp"
#include "domain/i18n.hpp"
#include "domain/messages.hpp"
#include "domain/tools.hpp"
#include "net/asio.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace boost::asio::ssl {
class context;
}

namespace parley::persistence {
class database;
}
namespace parley::net {
class nats_bus;
}

namespace parley::actors {

struct tool_user {
    std::string id;
    std::string name;
    std::vector<std::string> permissions;
    domain::language lang = domain::language::es;
};

struct tool_outcome {
    std::string call_id;
    std::string name;
    bool executed = false;  // the handler ran (false: refused before running)
    bool ok = false;        // it ran and answered
    std::string content;    // the tool result given to the model (JSON text)
    std::string error;      // one line when !ok (for logs; never the arguments)
};

struct tool_runner_services {
    std::shared_ptr<rate_limiter> limiter;        // my_usage; null: limits not reported
    std::shared_ptr<persistence::database> db;    // my_usage's daily totals; null: not reported
    std::shared_ptr<net::nats_bus> bus;           // nats handlers; null: they fail (the adapter is off)
    std::function<std::chrono::system_clock::time_point()> now = [] { return std::chrono::system_clock::now(); };
};

class tool_runner {
public:
    // Throws std::runtime_error when an https tool exists and no TLS
    // context can be made.
    tool_runner(asio::any_io_executor ex, std::shared_ptr<domain::tool_registry const> registry,
                tool_runner_services services);

    task<tool_outcome> run(domain::tool_call call, tool_user user);
    // The calls concurrently, on the caller's executor; the outcomes in the
    // order of `calls`. `on_done` (optional) is called with each outcome as
    // its call ends, on the caller's executor.
    task<std::vector<tool_outcome>> run_all(std::vector<domain::tool_call> calls, tool_user user,
                                            std::function<void(tool_outcome const&)> on_done = {});

    domain::tool_registry const& registry() const noexcept { return *registry_; }

private:
    task<tool_outcome> run_nats(domain::tool_definition const& tool, domain::tool_call const& call,
                                boost::json::object const& arguments, tool_user const& user);
    task<tool_outcome> run_http(domain::tool_definition const& tool, domain::tool_call const& call,
                                boost::json::object const& arguments, tool_user const& user);
    task<tool_outcome> run_my_usage(domain::tool_call const& call, tool_user const& user);

    asio::any_io_executor ex_;
    std::shared_ptr<domain::tool_registry const> registry_;
    tool_runner_services services_;
    std::shared_ptr<asio::ssl::context> tls_;
};

}  // namespace parley::actors
