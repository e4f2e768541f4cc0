#pragma once
// What the simulated model answers: request analysis (validation, the last
// user message, tools), scripted turns, and the planned answer (text pieces,
// tool calls cut into argument fragments, finish reasons, token counts).
#include "faults.hpp"
#include "pricing.hpp"

#include <boost/json/fwd.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace parley::sim {

struct tool_def {
    std::string name;
    std::string default_arguments;  // JSON built from the schema's required params
};

enum class tool_choice_mode { automatic, none, required, named };

struct chat_request {
    std::string requested_model;          // as asked
    model_info const* model = nullptr;    // what answers
    std::optional<fault_kind> scenario_fault;  // model "sim/fault-<kind>"
    bool stream = false;
    std::string last_role;
    std::string last_user_text;               // of the last user message
    std::vector<std::string> tool_results;    // trailing tool messages, in order
    std::vector<tool_def> tools;
    bool parallel_tool_calls = true;
    tool_choice_mode tool_choice = tool_choice_mode::automatic;
    std::string tool_choice_name;
    std::optional<std::int64_t> max_tokens;
    std::int64_t prompt_tokens = 1;           // estimate, ~4 characters a token
    std::string user;                         // body "user"
};

struct analyze_result {
    std::optional<chat_request> request;
    int status = 400;     // when request is empty
    std::string error;    // OpenRouter error message
};

analyze_result analyze_request(boost::json::value const& body);

struct scripted_call {
    std::optional<int> index;
    std::optional<std::string> id;
    std::string name;
    std::string arguments;  // raw text, sent as is
};

struct usage_override {
    std::optional<std::int64_t> prompt_tokens;
    std::optional<std::int64_t> completion_tokens;
    std::optional<std::int64_t> cached_tokens;
    std::optional<std::int64_t> cache_write_tokens;
    std::optional<std::string> cost;  // plain decimal, printed verbatim
    bool omit_cost = false;           // "cost": null: the usage carries no cost at all
};

struct script_turn {
    std::optional<std::string> text;
    std::vector<scripted_call> tool_calls;
    std::optional<usage_override> usage;
    std::optional<std::string> finish_reason;
    std::optional<std::string> native_finish_reason;
    std::optional<fault_spec> fault;
    std::optional<std::chrono::milliseconds> latency;
};

struct script_parse_result {
    std::optional<std::string> key;
    std::vector<script_turn> turns;
    std::string error;  // non-empty: invalid
};

script_parse_result parse_script(boost::json::value const& body);

struct planned_call {
    int index = 0;
    std::string id;
    std::string name;
    std::string arguments;            // whole
    std::vector<std::string> pieces;  // arguments cut for streaming (joined == arguments)
};

struct answer {
    std::vector<std::string> tokens;  // text pieces (joined == the text)
    std::vector<planned_call> calls;
    std::string finish_reason = "stop";
    std::string native_finish_reason = "end_turn";
    std::optional<usage_override> usage;
    std::optional<std::chrono::milliseconds> latency;

    // Stream events the answer takes: one per text piece, per call header, per argument piece.
    std::size_t units() const;
    std::string text() const;
    // The text of the first n units (the partial answer of a cut stream).
    std::string text_of_first(std::size_t n) const;
};

struct generation_params {
    std::uint32_t answer_tokens = 30;
    std::uint64_t seed = 1;
};

// `salt` varies per request (ids, fragment cuts) and comes from the seeded generator.
answer plan_answer(chat_request const& req, script_turn const* turn, generation_params const& params,
                   std::uint64_t salt);

// Splits text into word pieces; joining them gives the text back.
std::vector<std::string> tokenize(std::string_view text);

std::string native_finish_reason(model_family f, std::string_view finish_reason);

// "toolu_..." for Anthropic models, "call_..." otherwise.
std::string make_call_id(model_family f, std::uint64_t& rng_state);
std::string random_alnum(std::size_t n, std::uint64_t& rng_state);
std::uint64_t splitmix64(std::uint64_t& state);

}  // namespace parley::sim
