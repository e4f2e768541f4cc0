#pragma once
// The simulator's shared state: seeded ids and random draws, scripted turns,
// counters, recorded requests and served generations. One mutex guards it
// all; it is touched a few times per request, never per token.
#include "answer.hpp"
#include "faults.hpp"
#include "options.hpp"

#include <boost/json/value.hpp>

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace parley::sim {

struct recorded_request {
    std::int64_t at_ms = 0;  // unix milliseconds
    std::string generation_id;
    std::vector<std::pair<std::string, std::string>> headers;  // of interest, lower-case names
    bool authorization = false;                                // never the key itself
    boost::json::value body;
};

struct generation_record {
    std::string id;
    std::string model;
    std::string provider;
    std::string total_cost = "0";  // decimal
    std::string prompt_cost;       // decimal or empty
    std::string completion_cost;
    std::int64_t tokens_prompt = 0;
    std::int64_t tokens_completion = 0;
    std::int64_t tokens_cached = 0;
    std::string finish_reason;         // empty: null
    std::string native_finish_reason;  // empty: null
    bool streamed = false;
    bool cancelled = false;
    std::int64_t latency_ms = 0;          // to the first token
    std::int64_t generation_time_ms = 0;  // first token to the end
    std::int64_t created_unix = 0;
};

class sim_state {
public:
    static constexpr std::size_t max_recorded_requests = 256;
    static constexpr std::size_t max_generations = 100'000;
    static constexpr std::size_t max_attempt_ids = 100'000;

    sim_state(std::uint64_t seed, std::vector<fault_rate> rates);

    std::string new_generation_id(std::int64_t unix_seconds);
    std::uint64_t next_salt();
    // A fault drawn at the configured rates, if any.
    std::optional<fault_kind> draw_fault();
    // Counts an attempt of this request id; returns its number (1 = first).
    std::uint32_t record_attempt(std::string const& request_id);

    // Queues turns; returns how many are pending in that queue.
    std::size_t add_script(std::optional<std::string> const& key, std::vector<script_turn> turns);
    void clear_scripts(std::optional<std::string> const& key);
    // The next turn: by header key, else by body user if such a keyed script exists, else unkeyed.
    std::optional<script_turn> take_turn(std::string_view header_key, std::string_view user);
    std::string render_scripts();

    void count_request();
    void count_stream();
    void count_completed();
    void count_cancelled();
    void count_error();
    void count_fault(fault_kind k);
    void stream_started();
    void stream_finished();
    void add_cost(std::int64_t nano);

    void record_request(recorded_request r);
    void store_generation(generation_record g);

    std::string render_counters();
    std::string render_requests(std::size_t last);
    std::optional<std::string> render_generation(std::string_view id);
    std::string render_key();

    // Clears counters, attempts, scripts and recorded requests (not generations).
    void reset();

private:
    std::mutex mutex_;
    std::uint64_t rng_;
    std::vector<fault_rate> rates_;

    std::deque<script_turn> unkeyed_;
    std::map<std::string, std::deque<script_turn>, std::less<>> keyed_;

    std::uint64_t requests_ = 0, streams_ = 0, completed_ = 0, cancelled_ = 0, errors_ = 0;
    std::int64_t active_ = 0;
    std::int64_t cost_nano_ = 0;
    std::array<std::uint64_t, fault_kind_count> faults_{};
    std::unordered_map<std::string, std::uint32_t> attempts_;
    std::deque<std::string> attempt_order_;

    std::deque<recorded_request> requests_log_;
    std::unordered_map<std::string, generation_record> generations_;
    std::deque<std::string> generation_order_;
};

}  // namespace parley::sim
