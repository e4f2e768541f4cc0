#include "persistence/limits_repository.hpp"

#include "persistence/database.hpp"

#include <soci/into.h>
#include <soci/session.h>
#include <soci/use.h>

#include <algorithm>
#include <optional>

namespace parley::persistence {

namespace {

// One key for the budget ("parleybg" in ASCII); the window's keys are
// hashtext of the user id in the second key space.
constexpr long long budget_lock_key = 0x7061726c65796267LL;

}  // namespace

window_slot take_window_slot(soci::session& sql, std::string const& user_id, int limit, std::chrono::seconds window) {
    write_transaction tr{sql, dialect::postgresql};
    long long const secs = window.count();
    sql << "SELECT pg_advisory_xact_lock(7, hashtext(:user))", soci::use(user_id, "user");
    long long used = 0;
    double oldest_left = 0;  // seconds until the oldest counted call leaves the window
    soci::indicator ind = soci::i_ok;
    sql << "SELECT COUNT(*), EXTRACT(EPOCH FROM (MIN(at) + make_interval(secs => :w) - now()))"
           " FROM (SELECT at FROM limit_calls WHERE user_id = :user AND at > now() - make_interval(secs => :w)"
           " ORDER BY at DESC LIMIT :lim) recent",
        soci::into(used), soci::into(oldest_left, ind), soci::use(secs, "w"), soci::use(user_id, "user"),
        soci::use(static_cast<long long>(limit), "lim");
    window_slot out;
    out.used = static_cast<int>(used);
    if (used >= limit) {
        out.retry_after = std::chrono::seconds{std::max<long long>(1, static_cast<long long>(oldest_left) + 1)};
        tr.commit();
        return out;
    }
    sql << "INSERT INTO limit_calls (user_id, at) VALUES (:user, now())", soci::use(user_id, "user");
    tr.commit();
    out.admitted = true;
    out.used = static_cast<int>(used) + 1;
    return out;
}

domain::nano_usd acquire_lease(soci::session& sql, std::string const& instance, domain::nano_usd slice,
                               domain::nano_usd daily_limit, std::chrono::seconds ttl) {
    write_transaction tr{sql, dialect::postgresql};
    sql << "SELECT pg_advisory_xact_lock(" << budget_lock_key << ")";
    long long committed = 0;
    long long const ttl_s = ttl.count();
    sql << "SELECT CAST(COALESCE(SUM(CASE WHEN heartbeat_at > now() - make_interval(secs => :ttl)"
           " OR instance_id = :me THEN GREATEST(granted_nanos, spent_nanos) ELSE spent_nanos END), 0) AS BIGINT)"
           " FROM budget_leases WHERE day = (now() AT TIME ZONE 'UTC')::date",
        soci::into(committed), soci::use(ttl_s, "ttl"), soci::use(instance, "me");
    auto const available = daily_limit.nanos - committed;
    long long const grant = std::max<long long>(0, std::min<long long>(slice.nanos, available));
    if (grant > 0) {
        sql << "INSERT INTO budget_leases (instance_id, day, granted_nanos, spent_nanos, heartbeat_at)"
               " VALUES (:me, (now() AT TIME ZONE 'UTC')::date, :g, 0, now())"
               " ON CONFLICT (instance_id, day) DO UPDATE SET granted_nanos = budget_leases.granted_nanos + :g,"
               " heartbeat_at = now()",
            soci::use(instance, "me"), soci::use(grant, "g");
    }
    tr.commit();
    return domain::nano_usd{grant};
}

void report_lease(soci::session& sql, std::string const& instance, domain::nano_usd spent,
                  std::optional<domain::nano_usd> keep) {
    long long const s = spent.nanos;
    long long const k = keep ? keep->nanos : -1;
    sql << "INSERT INTO budget_leases (instance_id, day, granted_nanos, spent_nanos, heartbeat_at)"
           " VALUES (:me, (now() AT TIME ZONE 'UTC')::date, GREATEST(:k, 0), :s, now())"
           " ON CONFLICT (instance_id, day) DO UPDATE SET spent_nanos = :s, heartbeat_at = now(),"
           " granted_nanos = CASE WHEN :k >= 0 THEN :k ELSE budget_leases.granted_nanos END",
        soci::use(instance, "me"), soci::use(s, "s"), soci::use(k, "k");
}

void sweep_windows(soci::session& sql, std::chrono::seconds window) {
    long long const secs = window.count();
    sql << "DELETE FROM limit_calls WHERE at < now() - make_interval(secs => :w)", soci::use(secs, "w");
}

}  // namespace parley::persistence
