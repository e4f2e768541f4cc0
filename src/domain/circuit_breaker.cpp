#include "domain/circuit_breaker.hpp"

namespace parley::domain {

std::string_view to_string(circuit_state s) noexcept {
    switch (s) {
    case circuit_state::closed: return "closed";
    case circuit_state::open: return "open";
    case circuit_state::half_open: return "half_open";
    }
    return "closed";  // LCOV_EXCL_LINE: every enumerator is handled above
}

circuit_state circuit_breaker::state(clock::time_point now) const {
    if (state_ == circuit_state::open && now - opened_at_ >= options_.open_for) {
        return circuit_state::half_open;
    }
    return state_;
}

bool circuit_breaker::allow(clock::time_point now) {
    switch (state(now)) {
    case circuit_state::closed: return true;
    case circuit_state::open: return false;
    case circuit_state::half_open:
        state_ = circuit_state::half_open;
        if (probe_in_flight_) {
            return false;
        }
        probe_in_flight_ = true;
        return true;
    }
    return false;  // LCOV_EXCL_LINE: every enumerator is handled above
}

void circuit_breaker::on_success() {
    state_ = circuit_state::closed;
    failures_ = 0;
    probe_in_flight_ = false;
}

void circuit_breaker::on_failure(clock::time_point now) {
    ++failures_;
    if (state_ == circuit_state::open) {
        return;  // a call that started before the circuit opened: it stays open as long as it was going to
    }
    if (state_ == circuit_state::half_open || failures_ >= options_.failure_threshold) {
        state_ = circuit_state::open;
        opened_at_ = now;
    }
    probe_in_flight_ = false;
}

void circuit_breaker::on_abandoned() { probe_in_flight_ = false; }

std::optional<circuit_breaker::clock::time_point> circuit_breaker::reopens_at() const {
    if (state_ != circuit_state::open) {
        return std::nullopt;
    }
    return opened_at_ + options_.open_for;
}

}  // namespace parley::domain
