#pragma once
// The upstream circuit breaker (issue #5, ARCHITECTURE §5 step 6), a pure
// state machine on an injected time:
//
//   closed     calls go through; `failure_threshold` consecutive failures
//              open the circuit (a success resets the count)
//   open       calls are refused (allow() is false) until `open_for` has
//              passed since it opened
//   half_open  the first allow() after that lets ONE probe through; others
//              are refused while it is in flight. The probe's success closes
//              the circuit, its failure opens it again for `open_for`, and a
//              probe that ends without a verdict (abandoned: cancelled, or a
//              failure that says nothing about the upstream's health) frees
//              the probe slot so the next allow() sends a new probe.
//
// What counts as a failure is the caller's choice (the session reports
// failures after retries that point at the upstream: timeouts, connection
// errors, 408/429/5xx; not cancellations or 400s).
#include <chrono>
#include <optional>
#include <string_view>

namespace parley::domain {

enum class circuit_state { closed, open, half_open };

std::string_view to_string(circuit_state s) noexcept;

struct circuit_options {
    int failure_threshold = 5;                  // >= 1
    std::chrono::milliseconds open_for{30'000};  // >= 0
};

class circuit_breaker {
public:
    using clock = std::chrono::steady_clock;

    explicit circuit_breaker(circuit_options options = {}) : options_(options) {}

    // May a call go upstream at `now`? In half_open, true once per probe.
    bool allow(clock::time_point now);

    void on_success();
    void on_failure(clock::time_point now);
    void on_abandoned();

    // open becomes half_open once open_for has passed (the state a call
    // made now would find).
    circuit_state state(clock::time_point now) const;
    int consecutive_failures() const noexcept { return failures_; }
    // When an open circuit lets the next probe through; nullopt unless open.
    std::optional<clock::time_point> reopens_at() const;

    circuit_options const& options() const noexcept { return options_; }

private:
    circuit_options options_;
    circuit_state state_ = circuit_state::closed;  // closed, open (maybe expired) or half_open
    int failures_ = 0;
    clock::time_point opened_at_{};
    bool probe_in_flight_ = false;
};

}  // namespace parley::domain
