#pragma once
// Command-line options of openrouter-sim, validated.
#include "faults.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace parley::sim {

// The three observed shapes of the streamed usage chunk (openrouter-api.md §5).
enum class usage_shape {
    empty,   // "choices":[] + usage (Mar 2026)
    finish,  // the finish choice repeated + usage (Apr 2026)
    delta,   // an empty assistant delta, finish_reason null + usage (Sep 2025)
};

std::string_view to_string(usage_shape s);
std::optional<usage_shape> parse_usage_shape(std::string_view s);

struct fault_rate {
    fault_kind kind;
    double probability;
};

struct options {
    std::string host = "127.0.0.1";
    unsigned short port = 0;
    std::chrono::milliseconds latency{300};
    std::uint32_t tokens_per_second = 50;  // 0: as fast as possible
    std::uint32_t answer_tokens = 30;
    std::uint32_t keepalive_comments = 1;
    std::vector<fault_rate> fault_rates;
    std::uint64_t seed = 1;
    std::string tls_cert;
    std::string tls_key;
    std::string api_key;  // empty: any non-empty bearer
    usage_shape shape = usage_shape::empty;
    std::uint32_t threads = 1;
    bool help = false;
};

struct options_result {
    std::optional<options> opts;
    std::string error;  // one line, without the program name
};

// args: the arguments after the program name.
options_result parse_options(std::span<char const* const> args);

std::string usage_text();

}  // namespace parley::sim
