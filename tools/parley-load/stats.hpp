#pragma once
// What a worker measures, what the progress line reads while it runs, and
// the final report (table or JSON).
#include "histogram.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace parley::load {

using clock = std::chrono::steady_clock;

// A number of seconds from the command line as a clock duration.
inline clock::duration seconds_of(double s) {
    return std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>{s});
}

inline std::uint64_t micros_between(clock::time_point a, clock::time_point b) noexcept {
    return b <= a ? 0 : static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(b - a).count());
}

// Counters the progress line reads from another thread (relaxed atomics).
struct live_counters {
    std::atomic<std::uint64_t> started{0};
    std::atomic<std::uint64_t> completed{0};  // answered or failed
    std::atomic<std::uint64_t> errors{0};
    std::atomic<std::uint64_t> tokens{0};
    std::atomic<std::uint64_t> sessions_open{0};  // ws: past "ready" and not yet closed
};

// One worker's results; touched only by its own thread until it has stopped.
struct stats {
    std::uint64_t ok = 0;
    std::map<std::string, std::uint64_t> errors;  // by code
    histogram latency;   // start (scheduled time, open loop) to the whole answer
    histogram ttft;      // start to the first token (streamed) or the response head
    histogram gap;       // between consecutive tokens of one stream
    histogram connect;   // ws: TCP connect to "ready"
    std::uint64_t tokens = 0;        // token events seen (streamed)
    std::uint64_t usage_tokens = 0;  // completion tokens reported by the answers' usage
    std::uint64_t connections = 0;   // connections opened
    std::uint64_t sessions_ready = 0;

    void error(std::string const& code, live_counters& live);
    void merge(stats const& other);
};

// The process being measured (--watch-pid), read from /proc.
struct process_sample {
    double cpu_s = 0;            // utime + stime
    std::uint64_t rss_kib = 0;   // VmRSS
};
std::optional<process_sample> sample_process(int pid);
double own_cpu_seconds();

struct watch_result {
    int pid = 0;
    double cpu_s = 0;                // during the run
    std::uint64_t rss_start_kib = 0;
    std::uint64_t rss_peak_kib = 0;  // highest sampled during the run
    std::uint64_t rss_end_kib = 0;
    std::optional<std::uint64_t> rss_all_ready_kib;  // ws: last sample with every session open
};

struct report {
    std::string scenario;   // http | ws | nats
    std::string target;     // URL or subject
    std::string mode;       // open | closed | sessions
    bool stream = false;
    double offered_rate = 0;      // open loop: requests per second asked for
    unsigned concurrency = 0;     // closed loop / ws sessions
    double elapsed_s = 0;
    std::uint64_t started = 0;
    stats totals;
    double load_cpu_s = 0;        // this process
    std::optional<watch_result> watched;
};

std::string to_json(report const& r);
std::string to_table(report const& r);

}  // namespace parley::load
