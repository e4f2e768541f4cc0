#pragma once
// The upstream circuit breaker as a shared actor (domain/circuit_breaker.hpp
// has the rules). Every session asks it before an upstream call and reports
// how the call ended, so the state is one for the whole process.
//
//   auto ok = co_await circuit->allow();            // false: skip the upstream (fallback)
//   ... the call ...
//   co_await circuit->report(call_verdict::failure);
#include "actors/runtime.hpp"
#include "domain/circuit_breaker.hpp"

#include <chrono>
#include <functional>
#include <memory>

namespace parley::actors {

enum class call_verdict { success, failure, abandoned };

struct call_result;
// How a finished call bears on the upstream's health: success; failure for
// a local failure (timeouts, connection), 408, 429 and 5xx; abandoned for a
// cancelled call, a stopped client, no API key, or a request the upstream
// refused (4xx: the upstream itself is up).
call_verdict verdict_of(call_result const& r);

struct circuit_status {
    domain::circuit_state state = domain::circuit_state::closed;
    int consecutive_failures = 0;
};

// (A struct: result<bool> cannot tell a bool from an error_code.)
struct circuit_permit {
    bool allowed = true;
};

namespace circuit_msg {
struct allow {
    reply<circuit_permit> reply_to;
};
struct report {
    call_verdict verdict = call_verdict::abandoned;
};
struct status {
    reply<circuit_status> reply_to;
};
}  // namespace circuit_msg

class circuit final : public actor<circuit, circuit_msg::allow, circuit_msg::report, circuit_msg::status> {
public:
    using clock = domain::circuit_breaker::clock;
    circuit(asio::any_io_executor ex, domain::circuit_options options,
            std::function<clock::time_point()> now = [] { return clock::now(); });

    // True when a call may go upstream now. If the actor is gone: true (the
    // breaker never blocks calls by failing itself).
    task<bool> allow();
    task<result<void>> report(call_verdict v);
    task<result<circuit_status>> status();

private:
    friend actor;
    void on(circuit_msg::allow& m);
    void on(circuit_msg::report& m);
    void on(circuit_msg::status& m);

    domain::circuit_breaker breaker_;
    std::function<clock::time_point()> now_;
    domain::circuit_state last_ = domain::circuit_state::closed;
};

// Reports `abandoned` for a permit whose call never reported (an
// exception between allow() and report()), so a half-open circuit's probe
// slot is given back. Disarm it once the verdict is reported.
struct verdict_guard {
    std::shared_ptr<circuit> breaker;
    asio::any_io_executor ex;
    bool armed = true;
    verdict_guard() = default;
    verdict_guard(verdict_guard const&) = delete;
    verdict_guard& operator=(verdict_guard const&) = delete;
    ~verdict_guard();
};

}  // namespace parley::actors
