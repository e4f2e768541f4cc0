#pragma once
// Fault kinds the simulator can inject, and the grammar that selects them:
//   <kind>[;times=N][;retry-after=S][;delay-ms=N][;after-tokens=N]
// (the X-Sim-Fault header, a scripted turn's "fault", --fault-rate kinds).
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace parley::sim {

enum class fault_kind {
    rate_limited,      // "429"
    internal_error,    // "500"
    bad_gateway,       // "502"
    unavailable,       // "503"
    bad_request,       // "400"
    unauthorized,      // "401"
    payment_required,  // "402"
    mid_stream_error,  // "mid-stream-error"
    drop,              // "drop"
    slow_first_byte,   // "slow-first-byte"
    error_200,         // "error-200"
    whitespace_only,   // "whitespace-only"
};

inline constexpr int fault_kind_count = 12;

std::string_view to_string(fault_kind k);
std::optional<fault_kind> parse_fault_kind(std::string_view name);
// Every kind name, comma separated (for messages and --help).
std::string fault_kind_list();
// The HTTP status of kinds that answer with an error status, else 0.
int fault_status(fault_kind k);

struct fault_spec {
    fault_kind kind = fault_kind::bad_gateway;
    std::optional<std::uint32_t> times;                // only the first N attempts
    std::chrono::seconds retry_after{1};               // 429 / 503
    std::chrono::milliseconds delay{3000};             // slow-first-byte
    std::optional<std::uint32_t> after_tokens;         // mid-stream-error / drop
};

struct fault_parse_result {
    std::optional<fault_spec> spec;
    std::string error;  // set when spec is empty
};

// allow_times: whether ";times=N" is accepted (the header: yes; a script: no).
fault_parse_result parse_fault_spec(std::string_view text, bool allow_times);

}  // namespace parley::sim
