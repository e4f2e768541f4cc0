#include "app/accounting.hpp"

#include "actors/session.hpp"

#include "domain/budget.hpp"
#include "persistence/migrations.hpp"
#include "persistence/usage_repository.hpp"

#include <boost/asio/this_coro.hpp>
#include <spdlog/spdlog.h>

#include <variant>

namespace parley::app {

std::filesystem::path usage_log_dir(domain::settings const& s) {
    if (!s.usage.log_dir.empty()) {
        return s.usage.log_dir;
    }
    return std::filesystem::path{s.data_dir} / "usage-log";
}

namespace {

// Limits from the log entries the database does not hold yet (the database
// being unreachable at start-up).
void add_log_entries(actors::limiter_load& load, persistence::usage_log const& log,
                     std::chrono::system_clock::time_point now, std::chrono::seconds window,
                     std::optional<std::string> const& only_user) {
    auto const midnight = domain::utc_midnight_after(now) - std::chrono::hours{24};
    std::uint64_t after = log.checkpointed();
    for (;;) {
        auto entries = log.read_after(after, 10'000);
        if (entries.empty()) {
            return;
        }
        after = entries.back().seq;
        for (auto const& e : entries) {
            auto const* r = std::get_if<domain::usage_record>(&e.item);
            if (r == nullptr) {
                continue;
            }
            if (r->created_at >= midnight) {
                load.global_spent_today += r->cost;
                if (r->user_id) {
                    load.user_spent_today[*r->user_id] += r->cost;
                }
            }
            if (r->user_id && r->created_at >= now - window && (!only_user || *only_user == *r->user_id)) {
                load.recent_calls.emplace_back(*r->user_id, r->created_at);
            }
        }
    }
}

// pricing.refresh: OpenRouter's /models prices for the models the table
// does not list (configured prices win). A failure keeps the table as it is.
task<void> add_openrouter_prices(actors::openrouter_client& client, domain::price_table& table) {
    auto got = co_await client.models();
    if (!got.error.empty()) {
        spdlog::warn("pricing: OpenRouter's model prices could not be read ({}); using the configured table only",
                     got.error);
        co_return;
    }
    auto parsed = domain::parse_models_pricing(got.body);
    if (!parsed) {
        spdlog::warn("pricing: OpenRouter's model list is unusable ({}); using the configured table only",
                     parsed.error());
        co_return;
    }
    std::size_t added = 0;
    for (auto const& [model, price] : parsed->table.entries()) {
        if (!table.entries().contains(model)) {
            table.set(model, price);
            ++added;
        }
    }
    spdlog::info("pricing: {} model prices added from OpenRouter ({} entries skipped)", added, parsed->skipped);
}

}  // namespace

task<accounting_stack> start_accounting(domain::settings const& s, std::shared_ptr<actors::openrouter_client> client,
                                        std::optional<std::string> only_user) {
    auto ex = co_await asio::this_coro::executor;
    accounting_stack st;
    try {
        st.db = persistence::database::open({.url = s.database.url, .pool_size = s.database.pool_size});
    } catch (persistence::database_error const& e) {
        throw startup_error{std::string{"database: "} + e.what()};
    }
    try {
        st.log = persistence::usage_log::open({.dir = usage_log_dir(s), .segment_bytes = s.usage.segment_bytes});
    } catch (persistence::usage_log_error const& e) {
        std::string msg = e.what();  // names the directory
        if (msg.find("in use by another process") != std::string::npos) {
            msg += " (one process owns a usage log: stop the other one, or give this one its own "
                   "PARLEY_USAGE_LOG_DIR)";
        }
        throw startup_error{msg};
    }
    if (st.log->corrupt_lines() != 0) {
        spdlog::warn("usage log: {} torn or corrupt line(s) skipped in {} (a write cut by a crash)",
                     st.log->corrupt_lines(), st.log->dir().string());
    }
    auto const d = st.db->kind();
    try {
        auto migrate = [d](soci::session& sql) { return persistence::migrate(sql, d); };
        co_await st.db->run(std::move(migrate));  // logs what it applies
        st.database_reachable = true;
    } catch (persistence::database_error const& e) {
        if (!e.connection_lost()) {
            throw startup_error{std::string{"database migration failed: "} + e.what()};
        }
        spdlog::warn("database {} is unreachable ({}): usage rows wait in the usage log until it is back",
                     st.db->redacted_url(), e.what());
    }

    actors::usage_writer_options wo;
    wo.batch_size = s.usage.batch_size;
    wo.flush_interval = s.usage.flush_interval;
    wo.fsync_interval = s.usage.fsync_interval;
    wo.max_pending = s.usage.max_pending;
    st.writer = actors::spawn<actors::usage_writer>(ex, st.log, st.db, wo);
    if (st.database_reachable) {
        st.writer->schema_ready();
    }
    st.writer->kick();

    // The limits count what the database holds, so the log's replay goes
    // in first; what it could not write is counted from the log itself.
    auto const now = std::chrono::system_clock::now();
    auto const window = std::chrono::seconds{3600};
    actors::limiter_load load;
    bool loaded = false;
    if (st.database_reachable) {
        auto flushed = co_await st.writer->flush(std::chrono::seconds{10});
        try {
            load = co_await actors::load_limiter_state(*st.db, now, window, only_user);
            loaded = true;
            if (!flushed) {
                add_log_entries(load, *st.log, now, window, only_user);
            }
        } catch (persistence::database_error const& e) {
            spdlog::warn("database: today's spend could not be read ({}); the limits count the usage log only",
                         e.what());
        }
    }
    if (!loaded) {
        add_log_entries(load, *st.log, now, window, only_user);
    }

    bool const shared = s.limits.backend == domain::limits_backend::postgres;
    actors::limiter_options lo;
    lo.rate_per_hour = s.limits.rate_per_user_per_hour;
    lo.window = window;
    lo.daily_global = s.limits.cost_daily;
    lo.daily_per_user = s.limits.cost_daily_per_user;
    if (shared) {
        // The global limit is the slices leased (none yet), the window is
        // the database's: neither is counted here.
        lo.daily_global = domain::nano_usd{};
        load.global_spent_today = domain::nano_usd{};
        load.recent_calls.clear();
    }
    st.limiter = actors::spawn<actors::rate_limiter>(ex, lo);
    co_await st.limiter->load(std::move(load));

    actors::accounting_options ao;
    ao.prices = s.pricing.models;
    if (s.pricing.refresh && client) {
        co_await add_openrouter_prices(*client, ao.prices);
    }
    ao.exempt_permission = s.limits.exempt_permission;
    ao.correction_delay = s.usage.correction_delay;
    ao.correction_attempts = s.usage.correction_attempts;
    st.accountant = std::make_shared<actors::accountant>(ex, st.limiter, st.writer, client, std::move(ao));
    if (shared) {
        actors::shared_limits_options so;
        so.instance_id = actors::random_id("parley-");
        so.rate_per_hour = s.limits.rate_per_user_per_hour;
        so.window = window;
        so.daily_global = s.limits.cost_daily;
        so.slice = s.limits.lease;
        so.lease_ttl = std::chrono::duration_cast<std::chrono::seconds>(s.limits.lease_ttl);
        so.heartbeat = std::max<std::chrono::milliseconds>(std::chrono::milliseconds{200}, s.limits.lease_ttl / 6);
        st.shared = std::make_shared<actors::shared_limits>(ex, st.db, st.limiter, so);
        st.shared->start();
        st.accountant->share(st.shared);
        spdlog::info("limits: shared through PostgreSQL as {} (budget slices of {})", so.instance_id,
                     domain::format_usd_compact(so.slice));
    }
    if (st.database_reachable && client) {
        try {
            auto find = [d](soci::session& sql) { return persistence::estimates_to_correct(sql, d, 100); };
            auto estimates = co_await st.db->run(std::move(find));
            st.accountant->correct_later(std::move(estimates));  // after the usual delay, bounded by shutdown
        } catch (persistence::database_error const& e) {
            spdlog::debug("database: estimated rows could not be listed: {}", e.what());
        }
    }
    co_return st;
}

task<void> accounting_stack::shutdown(std::chrono::milliseconds flush_timeout) {
    if (accountant) {
        co_await accountant->shutdown();
    }
    if (shared) {
        co_await shared->shutdown();
    }
    if (writer) {
        co_await writer->shutdown(flush_timeout);
    }
    if (limiter) {
        co_await limiter->shutdown();
    }
    if (db) {
        db->close();
    }
}

}  // namespace parley::app
