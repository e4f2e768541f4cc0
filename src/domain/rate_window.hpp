#pragma once
// A per-key sliding window of admissions: the hourly per-user request limit
// of the rate limiter (ARCHITECTURE §3). One rate_window is one user's
// window; the limiter keeps a map of them and drops the idle ones. Time is
// passed in (no clock is read here), so every answer is exact and testable.
#include <chrono>
#include <deque>

namespace parley::domain {

class rate_window {
public:
    using time_point = std::chrono::system_clock::time_point;

    struct decision {
        bool admitted = false;
        // 0 when admitted; else ceil((oldest admission in the window + window) - now) in whole seconds, at
        // least 1: the exact wait until one slot frees.
        std::chrono::seconds retry_after{0};
    };

    // At most `limit` admissions in any `window`. Throws std::invalid_argument
    // when limit < 1 or window <= 0 (the configuration rejects those first).
    explicit rate_window(int limit, std::chrono::seconds window = std::chrono::hours{1});

    // Admits, and records `now`, when fewer than `limit` admissions lie in
    // the window at `now`; else refuses with the wait until the oldest of
    // them leaves it.
    decision admit(time_point now);

    // The answer admit(now) would give, without recording anything.
    decision check(time_point now) const;

    // A past admission (reloaded from the database), in any order. Only the
    // `limit` newest admissions are kept: older ones can never matter.
    void add(time_point t);

    // Admissions inside the window at `now`.
    int used(time_point now) const;

    // No admission inside the window at `now`: the entry can be dropped.
    bool idle(time_point now) const;

    int limit() const noexcept;
    std::chrono::seconds window() const noexcept;

    // The window at `now` is (now - window, now]: an admission at t stops
    // counting at t + window exactly. An admission later than `now` (the
    // clock was set back) still counts: it did happen, and forgetting it
    // would let a clock step open a burst. It leaves the window at
    // t + window like any other, so retry_after may then exceed the window.

private:
    // The oldest admission still counting at `now`, or end().
    std::deque<time_point>::const_iterator first_counting(time_point now) const;
    decision decide(time_point now) const;

    int limit_;
    std::chrono::seconds window_;
    std::deque<time_point> admissions_;   // ascending, at most limit_
};

}  // namespace parley::domain
