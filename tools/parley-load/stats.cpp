#include "stats.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace parley::load {

void stats::error(std::string const& code, live_counters& live) {
    ++errors[code];
    live.errors.fetch_add(1, std::memory_order_relaxed);
}

void stats::merge(stats const& o) {
    ok += o.ok;
    for (auto const& [code, n] : o.errors) errors[code] += n;
    latency.merge(o.latency);
    ttft.merge(o.ttft);
    gap.merge(o.gap);
    connect.merge(o.connect);
    tokens += o.tokens;
    usage_tokens += o.usage_tokens;
    connections += o.connections;
    sessions_ready += o.sessions_ready;
}

std::optional<process_sample> sample_process(int pid) {
    std::ifstream stat{"/proc/" + std::to_string(pid) + "/stat"};
    std::string line;
    if (!std::getline(stat, line)) return std::nullopt;
    // Fields after the command (which may hold spaces) start after the last ')'.
    auto const close = line.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream rest{line.substr(close + 2)};
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14) utime = std::stoull(field);
        if (i == 15) stime = std::stoull(field);
    }
    process_sample s;
    s.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
    std::ifstream status{"/proc/" + std::to_string(pid) + "/status"};
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) s.rss_kib = std::stoull(line.substr(6));
    }
    return s;
}

double own_cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    auto secs = [](timeval t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return secs(u.ru_utime) + secs(u.ru_stime);
}

namespace {

double ms(std::uint64_t micros) { return static_cast<double>(micros) / 1000.0; }

boost::json::object summary(histogram const& h) {
    boost::json::object o;
    o["count"] = h.count();
    o["p50"] = ms(h.percentile(50));
    o["p90"] = ms(h.percentile(90));
    o["p99"] = ms(h.percentile(99));
    o["p999"] = ms(h.percentile(99.9));
    o["max"] = ms(h.max());
    o["mean"] = h.mean() / 1000.0;
    return o;
}

double per_second(double n, double secs) { return secs > 0 ? n / secs : 0.0; }

std::string fixed(double v, int digits) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

}  // namespace

std::string to_json(report const& r) {
    auto const& t = r.totals;
    boost::json::object o;
    o["scenario"] = r.scenario;
    o["target"] = r.target;
    o["mode"] = r.mode;
    o["stream"] = r.stream;
    if (r.mode == "open") o["offered_rps"] = r.offered_rate;
    if (r.concurrency) o["concurrency"] = r.concurrency;
    o["elapsed_s"] = r.elapsed_s;
    o["started"] = r.started;
    o["ok"] = t.ok;
    boost::json::object errors;
    std::uint64_t failed = 0;
    for (auto const& [code, n] : t.errors) {
        errors[code] = n;
        failed += n;
    }
    o["failed"] = failed;
    o["errors"] = std::move(errors);
    o["throughput_rps"] = per_second(static_cast<double>(t.ok), r.elapsed_s);
    o["latency_ms"] = summary(t.latency);
    o["ttft_ms"] = summary(t.ttft);
    if (r.stream) o["gap_ms"] = summary(t.gap);
    if (r.scenario == "ws") {
        o["sessions_ready"] = t.sessions_ready;
        o["connect_ms"] = summary(t.connect);
    }
    o["tokens"] = t.tokens;
    o["usage_tokens"] = t.usage_tokens;
    auto const toks = static_cast<double>(r.stream ? t.tokens : t.usage_tokens);
    o["tokens_per_s"] = per_second(toks, r.elapsed_s);
    o["connections"] = t.connections;
    o["load_cpu_s"] = r.load_cpu_s;
    if (r.watched) {
        auto const& w = *r.watched;
        boost::json::object p;
        p["pid"] = w.pid;
        p["cpu_s"] = w.cpu_s;
        p["cpu_ms_per_request"] = t.ok ? w.cpu_s * 1000.0 / static_cast<double>(t.ok) : 0.0;
        p["rss_start_kib"] = w.rss_start_kib;
        p["rss_peak_kib"] = w.rss_peak_kib;
        p["rss_end_kib"] = w.rss_end_kib;
        if (w.rss_all_ready_kib) p["rss_all_ready_kib"] = *w.rss_all_ready_kib;
        o["watched"] = std::move(p);
    }
    return boost::json::serialize(o);
}

std::string to_table(report const& r) {
    auto const& t = r.totals;
    std::ostringstream out;
    out << "parley-load " << r.scenario << " " << r.target << " (" << r.mode;
    if (r.mode == "open") out << ", " << fixed(r.offered_rate, 0) << " req/s offered";
    if (r.concurrency) out << ", " << r.concurrency << (r.scenario == "ws" ? " sessions" : " concurrent");
    out << (r.stream ? ", streamed" : ", not streamed") << ")\n";
    out << "  elapsed " << fixed(r.elapsed_s, 2) << " s, started " << r.started << ", ok " << t.ok
        << ", throughput " << fixed(per_second(static_cast<double>(t.ok), r.elapsed_s), 1) << " /s\n";
    if (r.scenario == "ws") out << "  sessions ready " << t.sessions_ready << "\n";
    if (t.errors.empty()) {
        out << "  errors: none\n";
    } else {
        out << "  errors:";
        for (auto const& [code, n] : t.errors) out << " " << code << "=" << n;
        out << "\n";
    }
    out << "                 count       p50       p90       p99       max   (ms)\n";
    auto row = [&](char const* name, histogram const& h) {
        char line[160];
        std::snprintf(line, sizeof line, "  %-10s %10llu %9.3f %9.3f %9.3f %9.3f\n", name,
                      static_cast<unsigned long long>(h.count()), ms(h.percentile(50)), ms(h.percentile(90)),
                      ms(h.percentile(99)), ms(h.max()));
        out << line;
    };
    row("latency", t.latency);
    row(r.stream ? "ttft" : "head", t.ttft);
    if (r.stream) row("gap", t.gap);
    if (r.scenario == "ws") row("connect", t.connect);
    auto const toks = static_cast<double>(r.stream ? t.tokens : t.usage_tokens);
    out << "  tokens " << static_cast<std::uint64_t>(toks) << ", " << fixed(per_second(toks, r.elapsed_s), 1)
        << " tokens/s; connections opened " << t.connections << "; parley-load CPU " << fixed(r.load_cpu_s, 2)
        << " s\n";
    if (r.watched) {
        auto const& w = *r.watched;
        out << "  pid " << w.pid << ": CPU " << fixed(w.cpu_s, 2) << " s";
        if (t.ok) out << " (" << fixed(w.cpu_s * 1e6 / static_cast<double>(t.ok), 1) << " us per request)";
        out << ", RSS start " << w.rss_start_kib << " KiB, peak " << w.rss_peak_kib << " KiB, end " << w.rss_end_kib
            << " KiB";
        if (w.rss_all_ready_kib) out << ", all sessions open " << *w.rss_all_ready_kib << " KiB";
        out << "\n";
    }
    return out.str();
}

}  // namespace parley::load
