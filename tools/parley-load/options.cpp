#include "options.hpp"

#include <charconv>
#include <cstdlib>
#include <cmath>
#include <string_view>

namespace parley::load {

std::string usage_text() {
    return R"(usage: parley-load http|ws|nats --url URL [options]

  http   POST chat completions: --url http://127.0.0.1:8080/v1/chat/completions
  ws     WebSocket sessions:    --url ws://127.0.0.1:8080/v1/ws
  nats   requests on the bus:   --url nats://127.0.0.1:4222 [--subject parley.chat]

load     --rate R (open loop, requests/s) | --concurrency C (closed loop, default 10)
         --duration-s S (10) --max-requests N --timeout-s S (60) --drain-s S (30)
         --max-connections N (4096, http open loop) --threads T (1)
request  --stream --model M --prompt TEXT --max-tokens N --language es|en
         --header 'Name: value' (http, repeatable)
auth     --token JWT | --secret S | --secret-env VAR (the JWT secret; tokens are minted)
         [--users N (1)] [--user-prefix P (load-)]
ws       --sessions N (10) --messages M (1) --think-ms T --ramp-up-s S --hold-s S
report   --json --watch-pid PID --progress-s S (1) --quiet
)";
}

namespace {

double number(std::string_view name, std::string const& v, double lo, double hi) {
    double out = 0;
    auto const* end = v.data() + v.size();
    auto [p, ec] = std::from_chars(v.data(), end, out);
    if (ec != std::errc{} || p != end || !std::isfinite(out) || out < lo || out > hi) {
        throw usage_error{"--" + std::string{name} + " " + v + ": expected a number in [" + std::to_string(lo) +
                          ", " + std::to_string(hi) + "]"};
    }
    return out;
}

unsigned whole(std::string_view name, std::string const& v, unsigned lo, unsigned hi) {
    unsigned out = 0;
    auto const* end = v.data() + v.size();
    auto [p, ec] = std::from_chars(v.data(), end, out);
    if (ec != std::errc{} || p != end || out < lo || out > hi) {
        throw usage_error{"--" + std::string{name} + " " + v + ": expected a whole number in [" +
                          std::to_string(lo) + ", " + std::to_string(hi) + "]"};
    }
    return out;
}

}  // namespace

options parse_options(int argc, char** argv) {
    if (argc < 2) throw usage_error{"missing scenario (http, ws or nats)"};
    options o;
    o.scenario = argv[1];
    if (o.scenario == "--help" || o.scenario == "-h") throw usage_error{""};
    if (o.scenario != "http" && o.scenario != "ws" && o.scenario != "nats") {
        throw usage_error{"unknown scenario '" + o.scenario + "' (http, ws or nats)"};
    }
    bool rate_set = false, concurrency_set = false, duration_set = false;
    for (int i = 2; i < argc; ++i) {
        std::string arg = argv[i];
        std::string value;
        bool has_value = false;
        if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
            value = arg.substr(eq + 1);
            arg.resize(eq);
            has_value = true;
        }
        auto const name = std::string_view{arg}.substr(arg.rfind("--", 0) == 0 ? 2 : 0);
        auto flag = [&] {
            if (has_value) throw usage_error{arg + " takes no value"};
        };
        auto next = [&]() -> std::string const& {
            if (!has_value) {
                if (i + 1 >= argc) throw usage_error{arg + " needs a value"};
                value = argv[++i];
            }
            if (value.size() > 64 * 1024) throw usage_error{arg + ": value over 64 KiB"};
            return value;
        };
        if (arg.rfind("--", 0) != 0) throw usage_error{"unexpected argument '" + arg + "'"};
        if (name == "help") throw usage_error{""};
        else if (name == "url") o.url = next();
        else if (name == "subject") o.subject = next();
        else if (name == "rate") o.rate = number(name, next(), 0.001, 1e6), rate_set = true;
        else if (name == "concurrency") o.concurrency = whole(name, next(), 1, 100'000), concurrency_set = true;
        else if (name == "max-connections") o.max_connections = whole(name, next(), 1, 100'000);
        else if (name == "duration-s") o.duration_s = number(name, next(), 0.01, 86'400), duration_set = true;
        else if (name == "max-requests") o.max_requests = whole(name, next(), 1, 4'000'000'000u);
        else if (name == "timeout-s") o.timeout_s = number(name, next(), 0.01, 3'600);
        else if (name == "drain-s") o.drain_s = number(name, next(), 0, 3'600);
        else if (name == "stream") flag(), o.stream = true;
        else if (name == "model") o.model = next();
        else if (name == "prompt") o.prompt = next();
        else if (name == "max-tokens") o.max_tokens = whole(name, next(), 1, 1'000'000);
        else if (name == "language") o.language = next();
        else if (name == "header") {
            auto const& h = next();
            auto colon = h.find(':');
            if (colon == std::string::npos || colon == 0) throw usage_error{"--header '" + h + "': expected 'Name: value'"};
            auto v = h.substr(colon + 1);
            while (!v.empty() && v.front() == ' ') v.erase(0, 1);
            o.headers.emplace_back(h.substr(0, colon), v);
        }
        else if (name == "token") o.token = next();
        else if (name == "secret") o.secret = next();
        else if (name == "secret-env") {
            auto const& var = next();
            char const* v = std::getenv(var.c_str());
            if (!v || !*v) throw usage_error{"--secret-env " + var + ": that environment variable is not set"};
            o.secret = v;
        }
        else if (name == "users") o.users = whole(name, next(), 1, 1'000'000);
        else if (name == "user-prefix") o.user_prefix = next();
        else if (name == "sessions") o.sessions = whole(name, next(), 1, 200'000);
        else if (name == "messages") o.messages = whole(name, next(), 0, 1'000'000);
        else if (name == "think-ms") o.think_ms = number(name, next(), 0, 3'600'000);
        else if (name == "ramp-up-s") o.ramp_up_s = number(name, next(), 0, 3'600);
        else if (name == "hold-s") o.hold_s = number(name, next(), 0, 86'400);
        else if (name == "threads") o.threads = whole(name, next(), 1, 64);
        else if (name == "watch-pid") o.watch_pid = static_cast<int>(whole(name, next(), 1, 4'194'304));
        else if (name == "json") flag(), o.json = true;
        else if (name == "progress-s") o.progress_s = number(name, next(), 0.05, 3'600);
        else if (name == "quiet") flag(), o.quiet = true;
        else throw usage_error{"unknown option " + arg};
    }
    if (o.url.empty()) throw usage_error{"--url is required"};
    if (rate_set && concurrency_set) throw usage_error{"--rate (open loop) and --concurrency (closed loop) exclude each other"};
    if (o.token && o.secret) throw usage_error{"--token and --secret/--secret-env exclude each other"};
    if (o.scenario != "http" && !o.token && !o.secret) throw usage_error{o.scenario + " needs --token or --secret"};
    if (o.language != "es" && o.language != "en") throw usage_error{"--language " + o.language + ": es or en"};
    if (o.scenario == "ws") {
        if (rate_set) throw usage_error{"ws drives --sessions, not --rate"};
        if (!duration_set) o.duration_s = 600;
    }
    if (o.threads > 1 && o.scenario == "nats") throw usage_error{"nats runs on one thread (one connection)"};
    return o;
}

}  // namespace parley::load
