#include "options.hpp"

#include <boost/asio/ip/address.hpp>

#include <charconv>
#include <cmath>
#include <string_view>

namespace parley::sim {

std::string_view to_string(usage_shape s) {
    switch (s) {
    case usage_shape::empty: return "empty";
    case usage_shape::finish: return "finish";
    case usage_shape::delta: return "delta";
    }
    return "?";
}

std::optional<usage_shape> parse_usage_shape(std::string_view s) {
    if (s == "empty") return usage_shape::empty;
    if (s == "finish") return usage_shape::finish;
    if (s == "delta") return usage_shape::delta;
    return std::nullopt;
}

namespace {

template <class T>
std::optional<T> parse_uint(std::string_view s, T max) {
    std::uint64_t v = 0;
    if (s.empty()) return std::nullopt;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size() || v > static_cast<std::uint64_t>(max)) return std::nullopt;
    return static_cast<T>(v);
}

std::optional<double> parse_probability(std::string_view s) {
    // from_chars for double is in GCC 11+.
    double v = 0;
    if (s.empty()) return std::nullopt;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size() || !std::isfinite(v) || v < 0 || v > 1) return std::nullopt;
    return v;
}

bool parse_fault_rates(std::string_view text, std::vector<fault_rate>& out, std::string& error) {
    double sum = 0;
    while (!text.empty()) {
        auto comma = text.find(',');
        auto item = text.substr(0, comma);
        auto eq = item.find('=');
        if (eq == std::string_view::npos) {
            error = "--fault-rate: '" + std::string{item} + "' is not kind=probability";
            return false;
        }
        auto kind = parse_fault_kind(item.substr(0, eq));
        if (!kind) {
            error = "--fault-rate: unknown fault kind '" + std::string{item.substr(0, eq)} +
                    "' (kinds: " + fault_kind_list() + ")";
            return false;
        }
        auto p = parse_probability(item.substr(eq + 1));
        if (!p) {
            error = "--fault-rate: probability of " + std::string{item.substr(0, eq)} + " must be a number in 0..1, got '" +
                    std::string{item.substr(eq + 1)} + "'";
            return false;
        }
        for (auto const& r : out) {
            if (r.kind == *kind) {
                error = "--fault-rate: kind " + std::string{to_string(*kind)} + " given twice";
                return false;
            }
        }
        out.push_back({*kind, *p});
        sum += *p;
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
        if (text.empty()) {
            error = "--fault-rate: trailing comma";
            return false;
        }
    }
    if (out.empty()) {
        error = "--fault-rate: expected kind=probability[,kind=probability...]";
        return false;
    }
    if (sum > 1.0 + 1e-9) {
        error = "--fault-rate: probabilities add up to more than 1";
        return false;
    }
    return true;
}

}  // namespace

options_result parse_options(std::span<char const* const> args) {
    options_result r;
    options o;
    auto fail = [&](std::string msg) {
        r.error = std::move(msg);
        return r;
    };
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view arg = args[i] ? args[i] : "";
        if (arg == "--help" || arg == "-h") {
            o.help = true;
            continue;
        }
        if (!arg.starts_with("--")) return fail("unexpected argument '" + std::string{arg} + "' (see --help)");
        std::string_view name = arg;
        std::optional<std::string_view> inline_value;
        if (auto eq = arg.find('='); eq != std::string_view::npos) {
            name = arg.substr(0, eq);
            inline_value = arg.substr(eq + 1);
        }
        static constexpr std::string_view known[] = {
            "--host", "--port", "--latency-ms", "--tokens-per-second", "--answer-tokens",
            "--keepalive-comments", "--fault-rate", "--seed", "--tls-cert", "--tls-key",
            "--api-key", "--usage-shape", "--threads"};
        bool is_known = false;
        for (auto k : known) is_known = is_known || k == name;
        if (!is_known) return fail("unknown option " + std::string{name} + " (see --help)");
        std::string_view value;
        if (inline_value) {
            value = *inline_value;
        } else {
            if (i + 1 >= args.size() || !args[i + 1]) return fail(std::string{name} + ": missing value");
            value = args[++i];
        }
        auto bad = [&](std::string_view expected) {
            return fail(std::string{name} + ": expected " + std::string{expected} + ", got '" + std::string{value} + "'");
        };
        if (name == "--host") {
            boost::system::error_code ec;
            boost::asio::ip::make_address(std::string{value}, ec);
            if (ec) return bad("an IP address such as 127.0.0.1");
            o.host = value;
        } else if (name == "--port") {
            auto v = parse_uint<unsigned short>(value, 65535);
            if (!v) return bad("an integer 0..65535");
            o.port = *v;
        } else if (name == "--latency-ms") {
            auto v = parse_uint<std::uint32_t>(value, 600'000);
            if (!v) return bad("an integer 0..600000");
            o.latency = std::chrono::milliseconds{*v};
        } else if (name == "--tokens-per-second") {
            auto v = parse_uint<std::uint32_t>(value, 1'000'000);
            if (!v) return bad("an integer 0..1000000 (0 = as fast as possible)");
            o.tokens_per_second = *v;
        } else if (name == "--answer-tokens") {
            auto v = parse_uint<std::uint32_t>(value, 1'000'000);
            if (!v || *v == 0) return bad("an integer 1..1000000");
            o.answer_tokens = *v;
        } else if (name == "--keepalive-comments") {
            auto v = parse_uint<std::uint32_t>(value, 10'000);
            if (!v) return bad("an integer 0..10000");
            o.keepalive_comments = *v;
        } else if (name == "--fault-rate") {
            o.fault_rates.clear();
            std::string error;
            if (!parse_fault_rates(value, o.fault_rates, error)) return fail(error);
        } else if (name == "--seed") {
            auto v = parse_uint<std::uint64_t>(value, UINT64_MAX);
            if (!v) return bad("a non-negative integer");
            o.seed = *v;
        } else if (name == "--tls-cert") {
            if (value.empty()) return bad("a PEM certificate file");
            o.tls_cert = value;
        } else if (name == "--tls-key") {
            if (value.empty()) return bad("a PEM private key file");
            o.tls_key = value;
        } else if (name == "--api-key") {
            if (value.empty()) return bad("a non-empty key");
            o.api_key = value;
        } else if (name == "--usage-shape") {
            auto v = parse_usage_shape(value);
            if (!v) return bad("empty, finish or delta");
            o.shape = *v;
        } else if (name == "--threads") {
            auto v = parse_uint<std::uint32_t>(value, 256);
            if (!v || *v == 0) return bad("an integer 1..256");
            o.threads = *v;
        }
    }
    if (o.tls_cert.empty() != o.tls_key.empty())
        return fail("--tls-cert and --tls-key must be given together");
    r.opts = std::move(o);
    return r;
}

std::string usage_text() {
    return R"(openrouter-sim: an OpenRouter stand-in for tests, demos and benchmarks

Usage: openrouter-sim [options]

  --host ADDR                listen address (default 127.0.0.1)
  --port N                   listen port; 0 picks a free one (default 0)
  --latency-ms N             delay before the first token / the answer (default 300)
  --tokens-per-second N      streaming pace; 0 = as fast as possible (default 50)
  --answer-tokens N          length of generated answers in tokens (default 30)
  --keepalive-comments N     ': OPENROUTER PROCESSING' comments before the first token (default 1)
  --fault-rate K=P[,K=P...]  random faults per request, P in 0..1, with kinds:
                             )" + fault_kind_list() + R"(
  --seed N                   seed for ids, random faults and fragment cuts (default 1)
  --tls-cert FILE            serve HTTPS with this PEM certificate chain (needs --tls-key)
  --tls-key FILE             PEM private key for --tls-cert
  --api-key KEY              accept only this bearer key (default: any non-empty bearer)
  --usage-shape S            streamed usage chunk: empty | finish | delta (default empty)
  --threads N                I/O threads (default 1)
  --help                     this text

Prints 'openrouter-sim listening on http(s)://HOST:PORT' once ready; SIGINT/SIGTERM stop it.
Routes: POST /api/v1/chat/completions, GET /api/v1/models, GET /api/v1/generation?id=,
GET /api/v1/key, and the test controls POST|GET|DELETE /sim/script, GET /sim/counters,
GET /sim/requests?last=N, POST /sim/reset.
)";
}

}  // namespace parley::sim
