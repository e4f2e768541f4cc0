#include "actors/accountant.hpp"

#include "actors/shared_limits.hpp"

#include "domain/budget.hpp"
#include "persistence/database.hpp"
#include "persistence/usage_repository.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <set>

namespace parley::actors {

namespace {

std::int64_t tokens_for_bytes(std::size_t bytes) { return static_cast<std::int64_t>((bytes + 3) / 4); }

// At most `max` bytes, cut at a UTF-8 character boundary (as the
// repository cuts, so the row returned is the row stored).
std::string cut(std::string s, std::size_t max) {
    if (s.size() > max) {
        while (max > 0 && (static_cast<unsigned char>(s[max]) & 0xC0) == 0x80) {
            --max;  // s[max] continues a character: cut before that character
        }
        s.resize(max);
    }
    return s;
}

domain::model_price price_for(domain::price_table const& prices, std::string const& served,
                              std::string const& requested) {
    if (auto const* p = served.empty() ? nullptr : prices.find(served)) {
        return *p;
    }
    if (auto const* p = prices.find(requested)) {
        return *p;
    }
    return prices.highest();
}

}  // namespace

domain::usage_record make_usage_record(call_identity const& who, std::string const& request_id,
                                       std::string const& requested_model, std::size_t prompt_bytes,
                                       call_result const& r, domain::price_table const& prices,
                                       std::chrono::system_clock::time_point now) {
    domain::usage_record row;
    row.request_id = cut(request_id, domain::max_request_id_bytes);
    if (!who.user_id.empty()) {
        row.user_id = cut(who.user_id, domain::max_user_id_bytes);
    }
    row.session_id = cut(who.session_id.empty() ? request_id : who.session_id, domain::max_session_id_bytes);
    row.conversation_id = cut(who.conversation_id, domain::max_conversation_id_bytes);
    row.created_at = now;

    net::completion const* got = r.result ? &*r.result : (r.partial ? &*r.partial : nullptr);
    if (r.result) {
        row.status = domain::call_status::ok;
    } else {
        row.status = r.result.error().code_text == "cancelled" ? domain::call_status::cancelled
                                                                 : domain::call_status::error;
    }
    row.model = cut(got && !got->model.empty() ? got->model : requested_model, domain::max_model_bytes);
    if (got) {
        row.generation_id = cut(got->generation_id, domain::max_generation_id_bytes);
    }
    auto const price = price_for(prices, got ? got->model : std::string{}, requested_model);

    if (got && got->usage) {
        auto const& u = *got->usage;
        row.input_tokens = u.prompt_tokens;
        row.output_tokens = u.completion_tokens;
        row.cached_tokens = u.cached_tokens.value_or(0);
        // usage.cost is exact when it parses (call_result.cost for a success;
        // a failed stream's usage chunk carries it in the partial).
        std::optional<domain::nano_usd> cost = r.result ? r.cost : std::nullopt;
        if (!r.result && u.cost) {
            cost = cost_from_text(*u.cost);
        }
        if (cost) {
            row.cost = *cost;
            row.source = domain::cost_source::provider;
        } else {
            row.cost = domain::cost_of(price, {.input = u.prompt_tokens,
                                               .output = u.completion_tokens,
                                               .cached = u.cached_tokens.value_or(0),
                                               .cache_write = u.cache_write_tokens.value_or(0)});
            row.source = domain::cost_source::pricing;
        }
        return row;
    }
    if (got) {
        // No usage came: what was delivered is the measure (a stream cut
        // before its usage chunk, or an answer without usage).
        std::size_t answer_bytes = got->text.size() + got->reasoning.size();
        for (auto const& t : got->tool_calls) {
            answer_bytes += t.name.size() + t.arguments.size();
        }
        row.input_tokens = tokens_for_bytes(prompt_bytes);
        row.output_tokens = tokens_for_bytes(answer_bytes);
        row.cost = domain::cost_of(price, {.input = row.input_tokens, .output = row.output_tokens});
        row.source = domain::cost_source::estimate;
        return row;
    }
    // Failed before anything was read (an error status, a refused
    // connection): nothing was generated, nothing is billed.
    row.source = domain::cost_source::pricing;
    return row;
}

// ------------------------------------------------------------ corrections

// The /generation lookups in flight: their timers, so shutdown can cancel
// them. Not actor state: touched from the coroutines of several lookups,
// hence the mutex.
struct accountant::corrections {
    std::mutex mutex;
    std::set<std::shared_ptr<asio::steady_timer>> timers;
    std::size_t running = 0;
    bool stopping = false;
};

namespace {

struct correction_job {
    std::shared_ptr<accountant::corrections> state;
    std::shared_ptr<rate_limiter> limiter;
    std::shared_ptr<usage_writer> writer;
    std::shared_ptr<openrouter_client> client;
    std::string request_id;
    std::string generation_id;
    std::string user_id;
    std::optional<domain::nano_usd> recorded;  // the estimate the budgets counted; nullopt: not adjusted
    std::chrono::milliseconds delay;
    int attempts = 0;
};

task<void> run_correction(correction_job job) {
    auto timer = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor);
    {
        std::lock_guard lock{job.state->mutex};
        job.state->timers.insert(timer);
    }
    auto delay = job.delay;
    for (int attempt = 1; attempt <= job.attempts; ++attempt, delay *= 2) {
        timer->expires_after(delay);
        auto [ec] = co_await timer->async_wait(use_nothrow);
        if (ec) {
            break;  // shutting down
        }
        auto found = co_await job.client->generation(job.generation_id);
        if (!found.total_cost) {
            spdlog::debug("usage: generation {} has no cost yet ({}), attempt {} of {}", job.generation_id,
                          found.error, attempt, job.attempts);
            continue;
        }
        // Named, not braced inside the co_await: GCC 12 destroys such a
        // temporary twice (docs/architecture.md §3.1).
        domain::cost_correction correction{job.request_id, *found.total_cost};
        auto logged = co_await job.writer->correct(std::move(correction));
        if (!logged) {
            spdlog::error("usage: the cost correction of {} could not be logged: {}", job.request_id,
                          logged.error().message());
            break;
        }
        if (job.recorded && *found.total_cost > *job.recorded) {
            co_await job.limiter->adjust(job.user_id, *found.total_cost - *job.recorded);
        }
        spdlog::debug("usage: {} corrected to {} USD from /generation", job.request_id,
                      domain::format_usd(*found.total_cost));
        break;
    }
    std::lock_guard lock{job.state->mutex};
    job.state->timers.erase(timer);
    --job.state->running;
}

}  // namespace

accountant::accountant(asio::any_io_executor ex, std::shared_ptr<rate_limiter> limiter,
                       std::shared_ptr<usage_writer> writer, std::shared_ptr<openrouter_client> client,
                       accounting_options options)
    : strand_{net::make_strand(ex)},
      limiter_{std::move(limiter)},
      writer_{std::move(writer)},
      client_{std::move(client)},
      options_{std::move(options)},
      corrections_{std::make_shared<corrections>()} {}

accountant::~accountant() = default;

domain::nano_usd accountant::worst_case(std::size_t prompt_bytes, std::vector<std::string> const& models,
                                        std::int64_t max_tokens) const {
    domain::model_price worst;
    auto const widen = [&worst](domain::model_price const& p) {
        worst.prompt = std::max(worst.prompt, p.prompt);
        worst.completion = std::max(worst.completion, p.completion);
        worst.cache_read = std::max(worst.cache_read, p.cache_read);
        worst.cache_write = std::max(worst.cache_write, p.cache_write);
    };
    for (auto const& m : models) {
        auto const* p = options_.prices.find(m);
        widen(p ? *p : options_.prices.highest());
    }
    if (models.empty()) {
        widen(options_.prices.highest());
    }
    return domain::worst_case_cost(worst, static_cast<std::int64_t>(prompt_bytes), max_tokens);
}

task<result<admission_decision>> accountant::admit(call_identity const& who, domain::nano_usd worst_case) {
    admission_request rq;
    rq.user_id = who.user_id;
    rq.worst_case = worst_case;
    rq.exempt = !options_.exempt_permission.empty() &&
                std::find(who.permissions.begin(), who.permissions.end(), options_.exempt_permission) !=
                    who.permissions.end();
    std::optional<result<admission_decision>> decision;
    if (auto shared = shared_) {
        auto d = co_await shared->admit(std::move(rq));
        decision = std::move(d);
    } else {
        auto limiter = limiter_;
        auto d = co_await limiter->admit(std::move(rq));
        decision = std::move(d);
    }
    if (*decision && !(*decision)->admitted && observer_) {
        observer_->refused(**decision);
    }
    co_return std::move(*decision);
}

task<result<domain::usage_record>> accountant::record(call_identity const& who, admission_decision const& admission,
                                                       std::string const& requested_model, std::size_t prompt_bytes,
                                                       call_result const& r) {
    auto row = make_usage_record(who, r.request_id, requested_model, prompt_bytes, r, options_.prices,
                                 std::chrono::system_clock::now());
    auto writer = writer_;
    auto limiter = limiter_;
    auto logged = co_await writer->record(row);
    // The reservation ends whatever happened to the log: the spend is real.
    co_await limiter->settle(admission.ticket, row.cost);
    if (observer_) {
        observer_->recorded(r, row);
    }
    if (!logged) {
        co_return logged.error();
    }
    if (row.source == domain::cost_source::estimate && !row.generation_id.empty()) {
        schedule(row.request_id, row.generation_id, row.user_id.value_or(""), row.cost);
    }
    co_return row;
}

void accountant::correct_later(std::vector<std::pair<std::string, std::string>> estimates) {
    // Rows of earlier runs: the budgets loaded them already, so their
    // correction does not adjust the budgets (their estimate is unknown here).
    for (auto& [request_id, generation_id] : estimates) {
        schedule(std::move(request_id), std::move(generation_id), {}, std::nullopt);
    }
}

void accountant::schedule(std::string request_id, std::string generation_id, std::string user_id,
                          std::optional<domain::nano_usd> recorded) {
    if (!client_ || options_.correction_attempts <= 0) {
        return;
    }
    {
        std::lock_guard lock{corrections_->mutex};
        if (corrections_->stopping) {
            return;
        }
        ++corrections_->running;
    }
    correction_job job{corrections_,          limiter_,  writer_,  client_,
                       std::move(request_id), std::move(generation_id), std::move(user_id), recorded,
                       options_.correction_delay, options_.correction_attempts};
    asio::co_spawn(strand_, run_correction(std::move(job)), [](std::exception_ptr e) {
        if (e) {  // LCOV_EXCL_START: the job catches what it can meet
            spdlog::error("usage: a cost correction failed unexpectedly");
        }  // LCOV_EXCL_STOP
    });
}

task<void> accountant::shutdown(std::chrono::milliseconds wait) {
    auto state = corrections_;
    {
        std::lock_guard lock{state->mutex};
        state->stopping = true;
    }
    // The timers belong to coroutines on strand_: cancel them there.
    asio::post(strand_, [state] {
        std::lock_guard lock{state->mutex};
        for (auto const& t : state->timers) {
            t->cancel();
        }
    });
    asio::steady_timer poll{co_await asio::this_coro::executor};
    auto const until = std::chrono::steady_clock::now() + wait;
    for (;;) {
        {
            std::lock_guard lock{state->mutex};
            if (state->running == 0) {
                co_return;
            }
        }
        if (std::chrono::steady_clock::now() >= until) {
            spdlog::info("usage: {} cost lookups still running at shutdown are abandoned (their rows keep the estimate)",
                         state->running);
            co_return;
        }
        poll.expires_after(std::chrono::milliseconds{10});
        co_await poll.async_wait(use_nothrow);
    }
}

// ------------------------------------------------------------ start-up state

task<limiter_load> load_limiter_state(persistence::database& db, std::chrono::system_clock::time_point now,
                                      std::chrono::seconds window, std::optional<std::string> user) {
    auto const midnight = domain::utc_midnight_after(now) - std::chrono::hours{24};
    auto const since = now - window;
    auto const d = db.kind();
    auto work = [d, midnight, since, user](soci::session& sql) {
        limiter_load l;
        auto totals = persistence::spend_since(sql, d, midnight);
        l.global_spent_today = totals.global;
        l.user_spent_today = std::move(totals.per_user);
        l.recent_calls = persistence::calls_since(sql, d, since, user);
        return l;
    };
    co_return co_await db.run(std::move(work));
}

}  // namespace parley::actors
