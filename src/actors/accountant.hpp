#pragma once
// The accounting around one upstream call (issue #4), used by every front
// door: admission before the call (the hourly window and a reservation of
// the call's worst-case cost against the daily budgets), and after it the
// usage row (exact cost and its source) written to the usage log before the
// caller may report the turn complete, then the reservation settled.
//
//   auto worst = acct.worst_case(call.body, models, max_tokens);
//   auto adm = co_await acct.admit(who, worst);              // rate_limited / budget_exhausted
//   auto r = co_await client.complete(std::move(call));      // even when it failed or was cancelled...
//   auto row = co_await acct.record(who, *adm, model, body_bytes, r);   // ...it is recorded
//
// Cost of a call (ARCHITECTURE §6): OpenRouter's usage.cost (`provider`),
// else its token counts times the price table (`pricing`), else, for a
// stream cut before its usage chunk, an estimate from the bytes seen
// (`estimate`: prompt bytes / 4 and answer bytes / 4 tokens, rounded up,
// times the price table). An estimate with a generation id is corrected
// later from GET /api/v1/generation (the row keeps its request_id; its
// cost_source becomes `provider`; a higher real cost is added to the
// budgets too).
#include "actors/openrouter_client.hpp"
#include "actors/rate_limiter.hpp"
#include "actors/usage_writer.hpp"
#include "domain/pricing.hpp"
#include "domain/usage.hpp"

#include <boost/asio/strand.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::persistence {
class database;
}

namespace parley::actors {

class shared_limits;

struct accounting_options {
    domain::price_table prices = domain::default_price_table();
    std::string exempt_permission = "unlimited";  // empty: nobody is exempt
    std::chrono::milliseconds correction_delay{5'000};
    int correction_attempts = 5;  // 0: estimates are never looked up
};

// Told about every admission refusal and every recorded call (for metrics).
// Called from the coroutine of admit() or record(), on any thread: it must
// be thread-safe and must not block.
struct accounting_observer {
    virtual ~accounting_observer() = default;
    virtual void refused(admission_decision const& d) = 0;
    virtual void recorded(call_result const& r, domain::usage_record const& row) = 0;
};

// Who makes a call.
struct call_identity {
    std::string user_id;                   // empty: an anonymous (service) call
    std::vector<std::string> permissions;
    std::string session_id;
    std::string conversation_id;
};

// The usage row of a call from what the call returned (pure; exposed for
// tests). `requested_model` is what was asked for (the price fallback when
// the answer names no model); `prompt_bytes` sizes an estimate.
domain::usage_record make_usage_record(call_identity const& who, std::string const& request_id,
                                       std::string const& requested_model, std::size_t prompt_bytes,
                                       call_result const& r, domain::price_table const& prices,
                                       std::chrono::system_clock::time_point now);

class accountant {
public:
    // `client` may be null: estimates are then never looked up.
    accountant(asio::any_io_executor ex, std::shared_ptr<rate_limiter> limiter, std::shared_ptr<usage_writer> writer,
               std::shared_ptr<openrouter_client> client, accounting_options options);
    ~accountant();
    accountant(accountant const&) = delete;
    accountant& operator=(accountant const&) = delete;

    // The most a call can cost: every prompt byte a token (no tokenizer
    // makes fewer than one byte per token) at the highest prompt or
    // cache-write price of the models it may run on, plus max_tokens at the
    // highest completion price. An unknown model is priced at the highest
    // prices of the table.
    domain::nano_usd worst_case(std::size_t prompt_bytes, std::vector<std::string> const& models,
                                std::int64_t max_tokens) const;

    // The window and budgets; a refusal is a value (admitted false, code,
    // retry_after), an error only if the limiter is gone.
    task<result<admission_decision>> admit(call_identity const& who, domain::nano_usd worst_case);

    // Records the call (the row is in the usage log when this returns
    // success) and settles its reservation. errc::usage_log_failed when the
    // log cannot be written (the reservation is still settled).
    task<result<domain::usage_record>> record(call_identity const& who, admission_decision const& admission,
                                              std::string const& requested_model, std::size_t prompt_bytes,
                                              call_result const& r);

    // Set once, before the first call (null: none).
    void observe(std::shared_ptr<accounting_observer> o) { observer_ = std::move(o); }
    // Admissions go through limits shared with other processes (limits.backend
    // = postgres); set once, before the first call.
    void share(std::shared_ptr<shared_limits> s) { shared_ = std::move(s); }

    // Looks up, in the background, the real cost of estimate rows
    // (request_id, generation_id) left from earlier runs.
    void correct_later(std::vector<std::pair<std::string, std::string>> estimates);

    // Cancels the corrections still waiting; returns when none runs, or
    // after `wait` (a lookup in flight is then abandoned; its row keeps the
    // estimate, and the next start looks it up again).
    task<void> shutdown(std::chrono::milliseconds wait = std::chrono::milliseconds{2'000});

    accounting_options const& options() const noexcept { return options_; }

    struct corrections;  // opaque

private:
    void schedule(std::string request_id, std::string generation_id, std::string user_id,
                  std::optional<domain::nano_usd> recorded);

    asio::any_io_executor strand_;  // a strand (net::make_strand): the lookups' coroutines
    std::shared_ptr<rate_limiter> limiter_;
    std::shared_ptr<usage_writer> writer_;
    std::shared_ptr<openrouter_client> client_;
    accounting_options options_;
    std::shared_ptr<corrections> corrections_;
    std::shared_ptr<accounting_observer> observer_;
    std::shared_ptr<shared_limits> shared_;
};

// What the rate limiter should know at start-up, from the database: today's
// (UTC) spend, globally and per user, and the calls of the last `window`
// (of one user only when `user` is set, as `parley chat` needs).
task<limiter_load> load_limiter_state(persistence::database& db, std::chrono::system_clock::time_point now,
                                      std::chrono::seconds window, std::optional<std::string> user);

}  // namespace parley::actors
