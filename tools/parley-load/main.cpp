// parley-load: drives WebSocket, HTTP and NATS load at a Parley (or any
// OpenAI-compatible endpoint) and reports throughput, errors by code and
// latency percentiles. See README.md in this folder.
#include "options.hpp"
#include "scenario.hpp"
#include "stats.hpp"

#include <nats/nats.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <thread>

using namespace parley::load;

namespace {

// Many sessions need many descriptors: raise the soft limit to the hard one.
void raise_fd_limit() {
    rlimit r{};
    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        setrlimit(RLIMIT_NOFILE, &r);
    }
}

std::string progress_line(options const& o, std::vector<std::unique_ptr<worker>> const& workers, double elapsed,
                          std::uint64_t& last_completed, double& last_elapsed) {
    std::uint64_t started = 0, completed = 0, errors = 0, tokens = 0, open = 0;
    for (auto const& w : workers) {
        started += w->live.started.load(std::memory_order_relaxed);
        completed += w->live.completed.load(std::memory_order_relaxed);
        errors += w->live.errors.load(std::memory_order_relaxed);
        tokens += w->live.tokens.load(std::memory_order_relaxed);
        open += w->live.sessions_open.load(std::memory_order_relaxed);
    }
    auto const dt = elapsed - last_elapsed;
    auto const rate = dt > 0 ? static_cast<double>(completed - last_completed) / dt : 0.0;
    last_completed = completed;
    last_elapsed = elapsed;
    char line[256];
    if (o.scenario == "ws") {
        std::snprintf(line, sizeof line, "%7.1fs  sessions %llu started, %llu open  turns %llu (%.0f/s)  errors %llu  tokens %llu",
                      elapsed, static_cast<unsigned long long>(started), static_cast<unsigned long long>(open),
                      static_cast<unsigned long long>(completed), rate, static_cast<unsigned long long>(errors),
                      static_cast<unsigned long long>(tokens));
    } else {
        std::snprintf(line, sizeof line, "%7.1fs  sent %llu  done %llu (%.0f/s)  in flight %llu  errors %llu  tokens %llu",
                      elapsed, static_cast<unsigned long long>(started), static_cast<unsigned long long>(completed),
                      rate, static_cast<unsigned long long>(started - completed),
                      static_cast<unsigned long long>(errors), static_cast<unsigned long long>(tokens));
    }
    return line;
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    try {
        o = parse_options(argc, argv);
    } catch (usage_error const& e) {
        if (std::string_view{e.what()}.empty()) {
            std::cout << usage_text();
            return 0;
        }
        std::cerr << "parley-load: " << e.what() << "\n" << usage_text();
        return 2;
    }
    raise_fd_limit();

    std::vector<std::unique_ptr<worker>> workers;
    try {
        workers = o.scenario == "http" ? make_http_workers(o)
                  : o.scenario == "ws" ? make_ws_workers(o)
                                       : make_nats_workers(o);
    } catch (usage_error const& e) {
        std::cerr << "parley-load: " << e.what() << "\n";
        return 2;
    }

    std::optional<watch_result> watched;
    double watched_cpu_at_start = 0;
    if (o.watch_pid) {
        auto s = sample_process(o.watch_pid);
        if (!s) {
            std::cerr << "parley-load: --watch-pid " << o.watch_pid << ": no such process\n";
            return 2;
        }
        watched_cpu_at_start = s->cpu_s;
        watched = watch_result{o.watch_pid, 0, s->rss_kib, s->rss_kib, s->rss_kib, std::nullopt};
    }

    auto const cpu0 = own_cpu_seconds();
    auto const t0 = clock::now();
    std::atomic<unsigned> running{static_cast<unsigned>(workers.size())};
    std::atomic<bool> failed{false};
    std::vector<std::thread> threads;
    for (auto& w : workers) {
        threads.emplace_back([&w, &running, &failed] {
            try {
                w->run();
            } catch (std::exception const& e) {
                std::cerr << "parley-load: " << e.what() << "\n";
                failed = true;
            }
            --running;
        });
    }

    bool const tty = isatty(STDERR_FILENO) == 1;
    std::uint64_t last_completed = 0;
    double last_elapsed = 0, next_progress = o.progress_s;
    while (running > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds{100});
        auto const elapsed = std::chrono::duration<double>(clock::now() - t0).count();
        if (watched) {
            if (auto s = sample_process(o.watch_pid)) {
                watched->rss_peak_kib = std::max(watched->rss_peak_kib, s->rss_kib);
                watched->rss_end_kib = s->rss_kib;
                std::uint64_t open = 0;
                for (auto const& w : workers) open += w->live.sessions_open.load(std::memory_order_relaxed);
                if (o.scenario == "ws" && open == o.sessions) watched->rss_all_ready_kib = s->rss_kib;
            }
        }
        if (!o.quiet && elapsed >= next_progress) {
            next_progress += o.progress_s;
            auto line = progress_line(o, workers, elapsed, last_completed, last_elapsed);
            if (tty) std::cerr << "\r" << line << "\033[K" << std::flush;
            else std::cerr << line << "\n";
        }
    }
    for (auto& t : threads) t.join();
    if (!o.quiet && tty) std::cerr << "\n";

    report r;
    r.scenario = o.scenario;
    r.target = o.scenario == "nats" ? o.url + " " + o.subject : o.url;
    r.mode = o.scenario == "ws" ? "sessions" : (o.rate > 0 ? "open" : "closed");
    r.stream = o.stream;
    r.offered_rate = o.rate;
    r.concurrency = o.scenario == "ws" ? o.sessions : (o.rate > 0 ? 0 : o.concurrency);
    r.elapsed_s = std::chrono::duration<double>(clock::now() - t0).count();
    for (auto const& w : workers) {
        r.started += w->live.started.load();
        r.totals.merge(w->result);
    }
    r.load_cpu_s = own_cpu_seconds() - cpu0;
    if (watched) {
        if (auto s = sample_process(o.watch_pid)) {
            watched->cpu_s = s->cpu_s - watched_cpu_at_start;
            watched->rss_end_kib = s->rss_kib;
        }  // else the process ended during the run: its CPU time is unknown (0)
        r.watched = watched;
    }
    workers.clear();
    if (o.scenario == "nats") nats_Close();

    std::cout << (o.json ? to_json(r) + "\n" : to_table(r)) << std::flush;
    if (failed) return 1;
    return 0;
}
