#include "actors/circuit.hpp"

#include "actors/openrouter_client.hpp"

#include <boost/asio/detached.hpp>

#include <spdlog/spdlog.h>

namespace parley::actors {

verdict_guard::~verdict_guard() {
    if (armed && breaker) {
        asio::co_spawn(ex, breaker->report(call_verdict::abandoned), asio::detached);  // LCOV_EXCL_LINE
    }
}

call_verdict verdict_of(call_result const& r) {
    if (r.result) {
        return call_verdict::success;
    }
    auto const& e = r.result.error();
    if (e.code_text == "cancelled" || e.code_text == "client_stopped" || e.code_text == "no_api_key") {
        return call_verdict::abandoned;
    }
    if (e.status == 0 || e.status == 408 || e.status == 429 || e.status >= 500) {
        return call_verdict::failure;
    }
    return call_verdict::abandoned;  // the request was refused: the upstream itself is up
}

circuit::circuit(asio::any_io_executor ex, domain::circuit_options options, std::function<clock::time_point()> now)
    : actor{std::move(ex), {.capacity = 4096, .name = "circuit"}}, breaker_(options), now_(std::move(now)) {}

task<bool> circuit::allow() {
    circuit_msg::allow m;  // (named: no temporaries with members inside co_await with GCC 12)
    auto r = co_await ask(std::move(m));
    co_return r ? r->allowed : true;
}

task<result<void>> circuit::report(call_verdict v) { return tell(circuit_msg::report{v}); }

task<result<circuit_status>> circuit::status() { return ask(circuit_msg::status{}); }

void circuit::on(circuit_msg::allow& m) { m.reply_to.set(circuit_permit{breaker_.allow(now_())}); }

void circuit::on(circuit_msg::report& m) {
    auto const now = now_();
    switch (m.verdict) {
    case call_verdict::success: breaker_.on_success(); break;
    case call_verdict::failure: breaker_.on_failure(now); break;
    case call_verdict::abandoned: breaker_.on_abandoned(); break;
    }
    auto const state = breaker_.state(now);
    if (state != last_) {
        if (state == domain::circuit_state::open) {
            spdlog::warn("upstream circuit open after {} consecutive failures: calls skip the upstream for {} ms",
                         breaker_.consecutive_failures(), breaker_.options().open_for.count());
        } else if (state == domain::circuit_state::closed) {
            spdlog::info("upstream circuit closed again");
        }
        last_ = state;
    }
}

void circuit::on(circuit_msg::status& m) {
    m.reply_to.set(circuit_status{breaker_.state(now_()), breaker_.consecutive_failures()});
}

}  // namespace parley::actors
