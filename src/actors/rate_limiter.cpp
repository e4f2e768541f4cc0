#include "actors/rate_limiter.hpp"

#include <spdlog/spdlog.h>

namespace parley::actors {

rate_limiter::rate_limiter(asio::any_io_executor ex, limiter_options options)
    : actor{std::move(ex), {.capacity = options.mailbox, .name = "rate_limiter"}},
      options_{std::move(options)},
      global_{options_.daily_global},
      sweep_timer_{get_executor()} {}

task<result<admission_decision>> rate_limiter::admit(admission_request request) {
    return ask(limiter_msg::admit{std::move(request), {}});
}

task<result<void>> rate_limiter::settle(std::uint64_t ticket, domain::nano_usd actual) {
    return tell(limiter_msg::settle{ticket, actual});
}

task<result<void>> rate_limiter::adjust(std::string user_id, domain::nano_usd delta) {
    return tell(limiter_msg::adjust{std::move(user_id), delta});
}

task<result<void>> rate_limiter::load(limiter_load state) { return ask(limiter_msg::load{std::move(state), {}}); }

task<result<limits_snapshot>> rate_limiter::snapshot(std::string user_id) {
    return ask(limiter_msg::snapshot{std::move(user_id), {}});
}

task<result<void>> rate_limiter::set_global_limit(domain::nano_usd limit) {
    limiter_msg::set_global_limit m;
    m.limit = limit;
    return ask(std::move(m));
}

task<void> rate_limiter::shutdown() {
    auto self = shared_from_this();
    auto closed = ask(limiter_msg::close{});
    co_await std::move(closed);  // fails only if already stopped
    co_await stop();
}

void rate_limiter::on(limiter_msg::close& m) {
    stopping_ = true;
    sweep_timer_.cancel();
    m.reply_to.set();
}

domain::rate_window& rate_limiter::window_of(std::string const& user) {
    auto it = windows_.find(user);
    if (it == windows_.end()) {
        it = windows_.emplace(user, domain::rate_window{options_.rate_per_hour, options_.window}).first;
        arm_sweep();
    }
    return it->second;
}

domain::budget* rate_limiter::budget_of(std::string const& user) {
    if (!options_.daily_per_user) {
        return nullptr;
    }
    auto it = user_budgets_.find(user);
    if (it == user_budgets_.end()) {
        it = user_budgets_.emplace(user, domain::budget{*options_.daily_per_user}).first;
        arm_sweep();
    }
    return &it->second;
}

void rate_limiter::on(limiter_msg::admit& m) {
    auto const now = options_.now();
    auto const& rq = m.request;
    admission_decision d;
    domain::rate_window* window = nullptr;
    if (!rq.exempt) {
        window = &window_of(rq.user_id);
        if (auto const w = window->check(now); !w.admitted) {
            d.code = "rate_limited";
            d.retry_after = w.retry_after;
            m.reply_to.set(std::move(d));
            return;
        }
    }
    if (auto const g = global_.try_reserve(rq.worst_case, now); !g.ok) {
        d.code = "budget_exhausted";
        d.scope = "global";
        d.retry_after = g.retry_after;
        m.reply_to.set(std::move(d));
        return;
    }
    if (auto* user_budget = budget_of(rq.user_id)) {
        if (auto const u = user_budget->try_reserve(rq.worst_case, now); !u.ok) {
            global_.settle(rq.worst_case, domain::nano_usd{}, now);  // undo the global reservation
            d.code = "budget_exhausted";
            d.scope = "user";
            d.retry_after = u.retry_after;
            m.reply_to.set(std::move(d));
            return;
        }
    }
    if (window) {
        window->admit(now);
    }
    d.admitted = true;
    d.ticket = next_ticket_++;
    tickets_.emplace(d.ticket, ticket_info{rq.user_id, rq.worst_case});
    m.reply_to.set(std::move(d));
}

void rate_limiter::on(limiter_msg::settle& m) {
    auto const it = tickets_.find(m.ticket);
    if (it == tickets_.end()) {
        spdlog::warn("rate_limiter: ticket {} settled twice or unknown; ignored", m.ticket);
        return;
    }
    auto const now = options_.now();
    global_.settle(it->second.reserved, m.actual, now);
    if (auto* user_budget = budget_of(it->second.user_id)) {
        user_budget->settle(it->second.reserved, m.actual, now);
    }
    tickets_.erase(it);
}

void rate_limiter::on(limiter_msg::adjust& m) {
    if (m.delta <= domain::nano_usd{}) {
        return;
    }
    auto const now = options_.now();
    global_.settle(domain::nano_usd{}, m.delta, now);
    if (auto* user_budget = budget_of(m.user_id)) {
        user_budget->settle(domain::nano_usd{}, m.delta, now);
    }
}

void rate_limiter::on(limiter_msg::load& m) {
    auto const now = options_.now();
    global_.load(m.state.global_spent_today, now);
    if (options_.daily_per_user) {
        for (auto const& [user, spent] : m.state.user_spent_today) {
            budget_of(user)->load(spent, now);
        }
    }
    for (auto const& [user, at] : m.state.recent_calls) {
        window_of(user).add(at);
    }
    m.reply_to.set();
}

void rate_limiter::on(limiter_msg::set_global_limit& m) {
    global_.set_limit(m.limit);
    m.reply_to.set();
}

void rate_limiter::on(limiter_msg::snapshot& m) {
    auto const now = options_.now();
    limits_snapshot s;
    s.window_limit = options_.rate_per_hour;
    if (auto const it = windows_.find(m.user_id); it != windows_.end()) {
        s.window_used = it->second.used(now);
    }
    s.global_spent = global_.spent(now);
    s.global_reserved = global_.reserved();
    s.global_limit = global_.limit();
    s.user_limit = options_.daily_per_user;
    if (auto const it = user_budgets_.find(m.user_id); it != user_budgets_.end()) {
        s.user_spent = it->second.spent(now);
        s.user_reserved = it->second.reserved();
    }
    s.open_tickets = tickets_.size();
    m.reply_to.set(s);
}

void rate_limiter::on(limiter_msg::sweep&) {
    sweep_armed_ = false;
    auto const now = options_.now();
    std::erase_if(windows_, [now](auto const& kv) { return kv.second.idle(now); });
    std::erase_if(user_budgets_, [now](auto const& kv) {
        return kv.second.reserved() == domain::nano_usd{} && kv.second.spent(now) == domain::nano_usd{};
    });
    arm_sweep();
}

void rate_limiter::arm_sweep() {
    if (sweep_armed_ || stopping_ || (windows_.empty() && user_budgets_.empty())) {
        return;
    }
    sweep_armed_ = true;
    sweep_timer_.expires_after(options_.sweep_interval);
    sweep_timer_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
        if (ec) {
            return;
        }
        if (auto self = weak.lock()) {
            self->tell_later(limiter_msg::sweep{});
        }
    });
}

}  // namespace parley::actors
