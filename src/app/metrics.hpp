#pragma once
// The serving process's metrics, as Prometheus text for GET /metrics
// (ARCHITECTURE §4; issue #6), kept in a prometheus-cpp registry:
//
//   parley_http_requests_total{route,status}    answers by route (the known paths, else "other")
//   parley_upstream_calls_total{status}         recorded calls: ok, error, cancelled
//   parley_upstream_latency_seconds             a call, retries included (histogram)
//   parley_upstream_ttft_seconds                a streamed call's first text (histogram)
//   parley_tokens_total{direction}              input, output
//   parley_cost_usd_total                       the recorded cost
//   parley_upstream_retries_total               attempts beyond the first
//   parley_refusals_total{reason}               rate_limited, budget_exhausted
//   parley_active_sessions                      WebSocket and /v1/respond sessions open
//   parley_upstream_pool_connections{state}     idle, in_use (read at scrape)
//   parley_upstream_pool_waiting                callers queued for a connection
//   parley_usage_log_backlog                    usage rows in the log, not yet in the database
//   parley_usage_queue_depth                    ... of them waiting in memory
//   parley_usage_database_ok                    1: the last database write succeeded
//   parley_circuit_state                        0 closed, 1 half-open, 2 open
//   parley_nats_messages_total{direction}       in, out (when NATS is on)
//   parley_nats_requests_total{outcome}         ok (a turn ran), no_reply, unauthorized, bad_request
//   parley_nats_connected                       1 while connected
//
// Every method is thread-safe.
#include "actors/accountant.hpp"
#include "actors/circuit.hpp"
#include "actors/upstream_pool.hpp"
#include "actors/usage_writer.hpp"
#include "net/nats_bus.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace parley::app {

struct nats_front_counters;

// What a scrape reads from the actors (nullopt: the actor did not answer;
// its gauges keep their last values).
struct scrape_inputs {
    std::optional<actors::pool_stats> pool;
    std::optional<actors::usage_writer_stats> writer;
    std::optional<actors::circuit_status> circuit;
    std::optional<net::nats_counters> nats;
    bool nats_connected = false;
    struct nats_front_counters const* nats_front = nullptr;  // the NATS front's counters, when it runs
};

class metrics;

// Counts one session in parley_active_sessions while it lives (m may be null).
class session_gauge {
public:
    explicit session_gauge(std::shared_ptr<metrics> m);
    ~session_gauge();
    session_gauge(session_gauge const&) = delete;
    session_gauge& operator=(session_gauge const&) = delete;

private:
    std::shared_ptr<metrics> m_;
};

class metrics final : public actors::accounting_observer {
public:
    metrics();
    ~metrics() override;
    metrics(metrics const&) = delete;
    metrics& operator=(metrics const&) = delete;

    // One answer of the HTTP server (the request's target and the status).
    void request(std::string_view target, unsigned status);
    void refused(actors::admission_decision const& d) override;
    void recorded(actors::call_result const& r, domain::usage_record const& row) override;
    void session_opened();
    void session_closed();

    // The exposition text, after setting the scraped gauges from `in`.
    std::string render(scrape_inputs const& in);

    // The route label of a target (exposed for tests).
    static std::string_view route_label(std::string_view target);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace parley::app
