#pragma once
// Limits shared by several Parley processes (limits.backend = postgres;
// issue #7), PostgreSQL only. Time is the database's (now()), so the
// processes' clocks need not agree.
//
//  * The hourly window: limit_calls holds each admitted call (user, at). A
//    slot is taken in one transaction under a per-user advisory lock: the
//    calls of the last `window` are counted and, below the limit, one is
//    added; so however many processes admit at once, a user gets exactly
//    `limit` calls per window.
//  * The global daily budget: budget_leases holds, per process (instance)
//    and UTC day, the budget granted to it and what it reported spent. A
//    process takes slices under a global advisory lock: what is available
//    is the limit minus every live lease's grant (a lease whose heartbeat
//    is older than `ttl` counts only its reported spend: a crashed
//    process's unused grant comes back).
#include "domain/money.hpp"

#include <chrono>
#include <string>

namespace soci {
class session;
}

namespace parley::persistence {

struct window_slot {
    bool admitted = false;
    int used = 0;                          // calls in the window, this one included when admitted
    std::chrono::seconds retry_after{0};  // refused: until the oldest call that counts leaves the window
};

window_slot take_window_slot(soci::session& sql, std::string const& user_id, int limit, std::chrono::seconds window);

// Grants up to `slice` more of today's (UTC, by the database) budget to
// `instance`; returns what was granted (0 when nothing is left).
domain::nano_usd acquire_lease(soci::session& sql, std::string const& instance, domain::nano_usd slice,
                               domain::nano_usd daily_limit, std::chrono::seconds ttl);

// The instance's heartbeat: today's spend so far, and `granted` set to
// `keep` when given (the unused rest is given back).
void report_lease(soci::session& sql, std::string const& instance, domain::nano_usd spent,
                  std::optional<domain::nano_usd> keep = std::nullopt);

// Deletes window rows older than `window` (a periodic sweep).
void sweep_windows(soci::session& sql, std::chrono::seconds window);

}  // namespace parley::persistence
