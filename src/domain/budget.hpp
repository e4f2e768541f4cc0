#pragma once
// One daily cost budget (USD per UTC day) with reservations (ARCHITECTURE
// §3): before an upstream call the limiter reserves the call's worst-case
// cost and settles it to the real cost afterwards, so concurrent calls can
// never overspend together. Used for the global AI_COST_LIMIT_DAILY and for
// each per-user budget. Time is passed in; no clock is read here.
#include "domain/money.hpp"

#include <chrono>
#include <cstdint>
#include <limits>

namespace parley::domain {

using sys_time = std::chrono::system_clock::time_point;

// Whole days since 1970-01-01 UTC, rounded down (also before 1970:
// one nanosecond before the epoch is day -1).
std::int64_t utc_day(sys_time t);

// The next 00:00:00 UTC strictly after t (at midnight itself: the next one).
sys_time utc_midnight_after(sys_time t);

class budget {
public:
    struct decision {
        bool ok = false;
        std::chrono::seconds retry_after{0};   // when refused: ceil(seconds to the next UTC midnight), at least 1
    };

    // A negative limit counts as 0.
    explicit budget(nano_usd limit);

    // Reserves `amount` (negative counts as 0) when spent_today + reserved +
    // amount <= limit. Seeing a later UTC day than before first resets
    // today's spend to 0 (reservations still open stay reserved: they will
    // settle into the new day). An earlier day than already seen (the clock
    // was set back) counts as the day already seen.
    decision try_reserve(nano_usd amount, sys_time now);

    // Ends one reservation of `reserved`: it stops being reserved, and
    // `actual` (any amount >= 0, even above `reserved`; negative counts as
    // 0) is added to the spend of the day of `now` (rolling over first, as
    // above). The reserved total is never driven below 0. Sums saturate at
    // the int64 maximum instead of wrapping.
    void settle(nano_usd reserved, nano_usd actual, sys_time now);

    // At start-up: today's spend as the database knows it (negative counts
    // as 0). It replaces the spend of the day of `now`; a total for a day
    // earlier than one already seen is ignored (it is not today's).
    void load(nano_usd spent_today, sys_time now);

    // A new limit (a shared budget's lease grew, or a new day's lease);
    // spend and reservations stay.
    void set_limit(nano_usd limit);

    nano_usd spent(sys_time now) const;      // 0 if `now` is a later day than the last one seen
    nano_usd reserved() const noexcept;
    nano_usd limit() const noexcept;
    nano_usd remaining(sys_time now) const;  // limit - spent - reserved, at least 0

private:
    // Moves to the day of `now` when it is later than the day seen.
    void roll(sys_time now);

    nano_usd limit_;
    nano_usd spent_;      // during day_
    nano_usd reserved_;   // open reservations, whatever their day
    std::int64_t day_ = std::numeric_limits<std::int64_t>::min();   // the latest UTC day seen; none yet
};

}  // namespace parley::domain
