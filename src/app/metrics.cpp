#include "app/metrics.hpp"

#include "app/nats_front.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <array>
#include <map>
#include <mutex>

namespace parley::app {

namespace prom = prometheus;

namespace {

constexpr std::array known_routes{std::string_view{"/"},
                                  std::string_view{"/v1/ws"},
                                  std::string_view{"/v1/chat/completions"},
                                  std::string_view{"/v1/respond"},
                                  std::string_view{"/v1/usage"},
                                  std::string_view{"/v1/dev/token"},
                                  std::string_view{"/healthz"},
                                  std::string_view{"/readyz"},
                                  std::string_view{"/metrics"}};

prom::Histogram::BucketBoundaries latency_buckets() {
    return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
}

}  // namespace

struct metrics::impl {
    std::shared_ptr<prom::Registry> registry = std::make_shared<prom::Registry>();
    prom::Family<prom::Counter>& requests = prom::BuildCounter()
                                                .Name("parley_http_requests_total")
                                                .Help("HTTP answers by route and status")
                                                .Register(*registry);
    prom::Family<prom::Counter>& calls = prom::BuildCounter()
                                             .Name("parley_upstream_calls_total")
                                             .Help("Upstream calls recorded, by outcome")
                                             .Register(*registry);
    prom::Histogram& latency = prom::BuildHistogram()
                                   .Name("parley_upstream_latency_seconds")
                                   .Help("Upstream call duration, retries included")
                                   .Register(*registry)
                                   .Add({}, latency_buckets());
    prom::Histogram& ttft = prom::BuildHistogram()
                                .Name("parley_upstream_ttft_seconds")
                                .Help("Time from a streamed call's start to its first text")
                                .Register(*registry)
                                .Add({}, latency_buckets());
    prom::Family<prom::Counter>& tokens =
        prom::BuildCounter().Name("parley_tokens_total").Help("Tokens of recorded calls").Register(*registry);
    prom::Counter& input_tokens = tokens.Add({{"direction", "input"}});
    prom::Counter& output_tokens = tokens.Add({{"direction", "output"}});
    prom::Counter& cost = prom::BuildCounter()
                              .Name("parley_cost_usd_total")
                              .Help("Cost of recorded calls in USD")
                              .Register(*registry)
                              .Add({});
    prom::Counter& retries = prom::BuildCounter()
                                 .Name("parley_upstream_retries_total")
                                 .Help("Upstream attempts beyond the first")
                                 .Register(*registry)
                                 .Add({});
    prom::Family<prom::Counter>& refusals = prom::BuildCounter()
                                                .Name("parley_refusals_total")
                                                .Help("Calls refused by the rate limit or a budget")
                                                .Register(*registry);
    prom::Gauge& sessions = prom::BuildGauge()
                                .Name("parley_active_sessions")
                                .Help("Sessions open (WebSocket connections and /v1/respond requests)")
                                .Register(*registry)
                                .Add({});
    prom::Family<prom::Gauge>& pool = prom::BuildGauge()
                                          .Name("parley_upstream_pool_connections")
                                          .Help("Upstream connections by state")
                                          .Register(*registry);
    prom::Gauge& pool_idle = pool.Add({{"state", "idle"}});
    prom::Gauge& pool_in_use = pool.Add({{"state", "in_use"}});
    prom::Gauge& pool_waiting = prom::BuildGauge()
                                    .Name("parley_upstream_pool_waiting")
                                    .Help("Callers waiting for an upstream connection")
                                    .Register(*registry)
                                    .Add({});
    prom::Gauge& backlog = prom::BuildGauge()
                               .Name("parley_usage_log_backlog")
                               .Help("Usage rows in the log not yet in the database")
                               .Register(*registry)
                               .Add({});
    prom::Gauge& queue_depth = prom::BuildGauge()
                                   .Name("parley_usage_queue_depth")
                                   .Help("Usage rows in memory waiting for the database")
                                   .Register(*registry)
                                   .Add({});
    prom::Gauge& database_ok = prom::BuildGauge()
                                   .Name("parley_usage_database_ok")
                                   .Help("1 when the last usage write to the database succeeded")
                                   .Register(*registry)
                                   .Add({});
    prom::Gauge& circuit = prom::BuildGauge()
                               .Name("parley_circuit_state")
                               .Help("Upstream circuit: 0 closed, 1 half-open, 2 open")
                               .Register(*registry)
                               .Add({});

    prom::Family<prom::Gauge>& nats_messages = prom::BuildGauge()
                                                   .Name("parley_nats_messages_total")
                                                   .Help("NATS messages received and published")
                                                   .Register(*registry);
    prom::Family<prom::Gauge>& nats_requests = prom::BuildGauge()
                                                   .Name("parley_nats_requests_total")
                                                   .Help("NATS chat requests by outcome")
                                                   .Register(*registry);
    prom::Gauge* nats_connected = nullptr;  // registered when NATS is on

    // Family::Add is thread-safe, but a pointer per label set saves its
    // lookup (and its allocation) on every answer.
    std::mutex mutex;
    std::map<std::pair<std::string_view, unsigned>, prom::Counter*> request_counters;
    std::map<std::string, prom::Counter*> labelled;

    prom::Counter& request_counter(std::string_view route, unsigned status) {
        std::lock_guard lock{mutex};
        auto& slot = request_counters[{route, status}];
        if (!slot) {
            slot = &requests.Add({{"route", std::string{route}}, {"status", std::to_string(status)}});
        }
        return *slot;
    }

    prom::Counter& once(prom::Family<prom::Counter>& family, char const* label, std::string_view value) {
        std::lock_guard lock{mutex};
        auto key = std::string{label} + "=" + std::string{value};
        auto& slot = labelled[key];
        if (!slot) {
            slot = &family.Add({{label, std::string{value}}});
        }
        return *slot;
    }
};

metrics::metrics() : impl_{std::make_unique<impl>()} { impl_->database_ok.Set(1); }

metrics::~metrics() = default;

std::string_view metrics::route_label(std::string_view target) {
    auto const path = target.substr(0, target.find('?'));
    for (auto r : known_routes) {
        if (path == r) {
            return r;
        }
    }
    if (path == "/index.html" || path == "/app.js" || path == "/app.css") {
        return known_routes[0];  // the page's files count as the page
    }
    return "other";
}

void metrics::request(std::string_view target, unsigned status) {
    impl_->request_counter(route_label(target), status).Increment();
}

void metrics::refused(actors::admission_decision const& d) {
    auto const reason = d.code == "rate_limited" || d.code == "budget_exhausted" ? std::string_view{d.code}
                                                                                   : std::string_view{"other"};
    impl_->once(impl_->refusals, "reason", reason).Increment();
}

void metrics::recorded(actors::call_result const& r, domain::usage_record const& row) {
    auto& m = *impl_;
    m.once(m.calls, "status", domain::to_string(row.status)).Increment();
    m.latency.Observe(std::chrono::duration<double>(r.elapsed).count());
    if (r.first_token) {
        m.ttft.Observe(std::chrono::duration<double>(*r.first_token).count());
    }
    m.input_tokens.Increment(static_cast<double>(row.input_tokens));
    m.output_tokens.Increment(static_cast<double>(row.output_tokens));
    if (row.cost.nanos > 0) {
        m.cost.Increment(static_cast<double>(row.cost.nanos) / 1e9);
    }
    if (r.attempts > 1) {
        m.retries.Increment(r.attempts - 1);
    }
}

session_gauge::session_gauge(std::shared_ptr<metrics> m) : m_{std::move(m)} {
    if (m_) m_->session_opened();
}

session_gauge::~session_gauge() {
    if (m_) m_->session_closed();
}

void metrics::session_opened() { impl_->sessions.Increment(); }

void metrics::session_closed() { impl_->sessions.Decrement(); }

std::string metrics::render(scrape_inputs const& in) {
    auto& m = *impl_;
    if (in.pool) {
        m.pool_idle.Set(static_cast<double>(in.pool->idle));
        m.pool_in_use.Set(static_cast<double>(in.pool->in_use));
        m.pool_waiting.Set(static_cast<double>(in.pool->waiting));
    }
    if (in.writer) {
        m.backlog.Set(static_cast<double>(in.writer->log_backlog));
        m.queue_depth.Set(static_cast<double>(in.writer->queue_depth));
        m.database_ok.Set(in.writer->database_ok ? 1 : 0);
    }
    if (in.circuit) {
        double state = 0;
        if (in.circuit->state == domain::circuit_state::half_open) state = 1;
        if (in.circuit->state == domain::circuit_state::open) state = 2;
        m.circuit.Set(state);
    }
    if (in.nats) {
        // (Gauges that mirror the adapter's own counters, set at each scrape.)
        std::lock_guard lock{m.mutex};
        m.nats_messages.Add({{"direction", "in"}}).Set(static_cast<double>(in.nats->received));
        m.nats_messages.Add({{"direction", "out"}}).Set(static_cast<double>(in.nats->published));
        if (!m.nats_connected) {
            m.nats_connected = &prom::BuildGauge()
                                    .Name("parley_nats_connected")
                                    .Help("1 while the NATS connection is up")
                                    .Register(*m.registry)
                                    .Add({});
        }
        m.nats_connected->Set(in.nats_connected ? 1 : 0);
    }
    if (in.nats_front) {
        std::lock_guard lock{m.mutex};
        auto const& f = *in.nats_front;
        m.nats_requests.Add({{"outcome", "ok"}}).Set(static_cast<double>(f.requests.load()));
        m.nats_requests.Add({{"outcome", "no_reply"}}).Set(static_cast<double>(f.no_reply.load()));
        m.nats_requests.Add({{"outcome", "unauthorized"}}).Set(static_cast<double>(f.unauthorized.load()));
        m.nats_requests.Add({{"outcome", "bad_request"}}).Set(static_cast<double>(f.bad_request.load()));
    }
    prom::TextSerializer serializer;
    return serializer.Serialize(m.registry->Collect());
}

}  // namespace parley::app
