// bench_client: CPU time of the OpenRouter client per call, against a running
// openrouter-sim (its own process, so getrusage(RUSAGE_SELF) here is the
// client alone: request building, pool, HTTP, JSON / SSE reading). One
// openrouter_client on a single-threaded io_context; C concurrent callers
// run N non-streamed calls, then N streamed calls. Every call must succeed
// (retries are off, so a failure is not hidden): exit 1 otherwise. Bounded:
// N calls per mode and --max-seconds of wall time in all (abort, exit 1).
//
//   openrouter-sim --port 0 --latency-ms 0 --tokens-per-second 0 --answer-tokens 50
//   bench_client --sim-url http://127.0.0.1:PORT/api/v1 [--calls 2000] [--concurrency 16]
//                [--max-seconds 120]
#include "actors/openrouter_client.hpp"
#include "domain/messages.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

namespace {

namespace asio = parley::asio;
namespace actors = parley::actors;
namespace domain = parley::domain;
using parley::task;
using parley::use_nothrow;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

struct args {
    std::string sim_url;
    long calls = 2000;
    long concurrency = 16;
    long max_seconds = 120;
};

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: bench_client --sim-url http://127.0.0.1:PORT/api/v1 [--calls N] [--concurrency C] "
                 "[--max-seconds S]\n");
    std::exit(2);
}

args parse(int argc, char** argv) {
    args a;
    for (int i = 1; i < argc; ++i) {
        std::string_view k = argv[i];
        if (i + 1 >= argc) usage();
        char const* v = argv[++i];
        auto number = [&] {
            char* end = nullptr;
            long n = std::strtol(v, &end, 10);
            if (end == v || *end != '\0' || n <= 0) usage();
            return n;
        };
        if (k == "--sim-url") a.sim_url = v;
        else if (k == "--calls") a.calls = number();
        else if (k == "--concurrency") a.concurrency = number();
        else if (k == "--max-seconds") a.max_seconds = number();
        else usage();
    }
    if (a.sim_url.empty()) usage();
    return a;
}

double cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    auto tv = [](timeval t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return tv(u.ru_utime) + tv(u.ru_stime);
}

actors::chat_call make_call(bool stream) {
    domain::message m;
    m.r = domain::role::user;
    m.content = "Benchmark question: say something about connection pools.";
    domain::request_options ro;
    ro.model = "anthropic/claude-3.5-sonnet";
    ro.stream = stream;
    return actors::make_chat_call({m}, ro);
}

struct mode_figures {
    long ok = 0;
    long failed = 0;
    long tokens = 0;   // usage.completion_tokens, summed
    long deltas = 0;   // on_text callbacks (streams)
    double wall = 0;
    double cpu = 0;
    bool timed_out = false;
};

struct runner {
    actors::openrouter_client& client;
    clock_type::time_point deadline;

    // `calls` calls, `concurrency` callers; returns when all are done or the deadline passes.
    task<mode_figures> run(bool stream, long calls, long concurrency) {
        auto ex = co_await asio::this_coro::executor;
        mode_figures f;
        long next = 0;
        long running = std::min(concurrency, calls);
        asio::steady_timer done{ex, deadline};
        std::string first_error;

        auto caller = [&]() -> task<void> {
            while (next < calls) {
                ++next;
                auto call = make_call(stream);
                if (stream) call.on_text = [&f](std::string_view) { ++f.deltas; };
                auto r = co_await client.complete(std::move(call));
                if (r.result && r.result->finish_reason == "stop" && (!stream || r.result->saw_done)) {
                    ++f.ok;
                    if (r.result->usage) f.tokens += r.result->usage->completion_tokens;
                } else {
                    ++f.failed;
                    if (first_error.empty())
                        first_error = r.result ? "finish_reason " + r.result->finish_reason
                                               : r.result.error().code_text + ": " + r.result.error().message;
                }
            }
        };

        double const cpu0 = cpu_seconds();
        auto const t0 = clock_type::now();
        for (long i = 0; i < running; ++i)
            asio::co_spawn(ex, caller(), [&](std::exception_ptr e) {
                if (e) {
                    ++f.failed;
                    if (first_error.empty()) first_error = "exception in a caller";
                }
                if (--running == 0) done.cancel();
            });
        (void)co_await done.async_wait(use_nothrow);  // cancelled by the last caller, or the deadline
        f.wall = std::chrono::duration<double>(clock_type::now() - t0).count();
        f.cpu = cpu_seconds() - cpu0;
        if (running != 0) {
            // Deadline passed: the callers reference this frame, so do not return to them.
            std::fprintf(stderr, "bench_client: aborted, %s mode exceeded the time limit (%ld calls pending)\n",
                         stream ? "streamed" : "non-streamed", running);
            std::fflush(stderr);
            std::_Exit(1);
        }
        if (!first_error.empty()) std::fprintf(stderr, "bench_client: first failure: %s\n", first_error.c_str());
        co_return f;
    }
};

void print(char const* label, long calls, mode_figures const& f, bool stream) {
    double const n = static_cast<double>(calls);
    std::printf("%-12s calls %ld ok %ld failed %ld | wall %.3f s | %.0f calls/s | client CPU %.3f s = %.1f us/call",
                label, calls, f.ok, f.failed, f.wall, n / f.wall, f.cpu, f.cpu * 1e6 / n);
    if (stream && f.tokens > 0)
        std::printf(" | %ld tokens (%ld deltas) = %.2f us/token", f.tokens, f.deltas,
                    f.cpu * 1e6 / static_cast<double>(f.tokens));
    std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
    args const a = parse(argc, argv);

    asio::io_context ioc{1};
    actors::openrouter_options o;
    o.base_url = a.sim_url;
    o.api_key = "sk-or-bench-key";
    o.title = "Parley Bench";
    o.connect_timeout = 5s;
    o.first_byte_timeout = 30s;
    o.chunk_gap_timeout = 30s;
    o.total_timeout = 60s;
    o.pool_size = static_cast<std::size_t>(std::max(64L, a.concurrency));
    o.retry.max_retries = 0;  // a failure must show, not be retried away

    auto const deadline = clock_type::now() + std::chrono::seconds{a.max_seconds};
    int status = 0;
    bool finished = false;
    asio::co_spawn(
        ioc,
        [&]() -> task<void> {
            actors::openrouter_client client{ioc.get_executor(), o};
            runner r{client, deadline};
            // Warm-up (not measured): open the pool's connections, fault in code and allocator.
            auto warm = co_await r.run(false, a.concurrency * 4, a.concurrency);
            if (warm.failed != 0) status = 1;
            auto plain = co_await r.run(false, a.calls, a.concurrency);
            auto streamed = co_await r.run(true, a.calls, a.concurrency);
            co_await client.shutdown();
            std::printf("bench_client: %ld calls per mode, concurrency %ld, one thread, sim %s\n", a.calls,
                        a.concurrency, a.sim_url.c_str());
            print("non-streamed", a.calls, plain, false);
            print("streamed", a.calls, streamed, true);
            if (plain.ok != a.calls || streamed.ok != a.calls) status = 1;
        },
        [&](std::exception_ptr e) {
            finished = true;
            if (e) {
                try {
                    std::rethrow_exception(e);
                } catch (std::exception const& ex) {
                    std::fprintf(stderr, "bench_client: %s\n", ex.what());
                }
                status = 1;
            }
            ioc.stop();
        });
    ioc.run_until(deadline + 5s);
    if (!finished) {
        std::fprintf(stderr, "bench_client: did not finish in time\n");
        return 1;
    }
    if (status != 0) std::fprintf(stderr, "bench_client: FAILED (not every call succeeded)\n");
    return status;
}
