#pragma once
// Wire rendering: SSE chunks, the non-streamed completion, usage and error
// bodies, written straight into strings in OpenRouter's key order. Chunk
// rendering appends to a caller-owned buffer, so a stream reuses one buffer
// for all its tokens.
#include "answer.hpp"
#include "options.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace parley::sim {

inline constexpr std::string_view padding_block = "\n         \n";  // "\n" + 9 spaces + "\n"
inline constexpr std::string_view keepalive_comment = ": OPENROUTER PROCESSING\n\n";
inline constexpr std::string_view done_event = "data: [DONE]\n\n";

// Appends s as a JSON string literal (with the quotes).
void append_json_string(std::string& out, std::string_view s);

struct usage_numbers {
    std::int64_t prompt = 0;
    std::int64_t completion = 0;
    std::int64_t cached = 0;
    std::int64_t cache_write = 0;
    std::string cost = "0";               // a JSON number, printed verbatim
    std::string prompt_cost;              // empty: left out
    std::string completion_cost;
    bool omit_cost = false;               // no cost and no cost_details (a wrapper that drops them, quirk 11)
};

std::string render_usage(usage_numbers const& u);

class chunk_renderer {
public:
    chunk_renderer(std::string_view id, std::string_view model, std::string_view provider, std::int64_t created);

    void content(std::string& out, std::string_view token) const;
    void tool_call_start(std::string& out, int index, std::string_view id, std::string_view name) const;
    void tool_call_piece(std::string& out, int index, std::string_view piece) const;
    void finish(std::string& out, std::string_view reason, std::string_view native) const;
    void usage(std::string& out, usage_shape shape, std::string_view reason, std::string_view native,
               std::string_view usage_json) const;
    // The mid-stream error chunk (§5): top-level error + finish_reason "error".
    void error(std::string& out, int code, std::string_view message, std::string_view error_type) const;

private:
    void choice_open(std::string& out) const;
    std::string head_;  // data: {"id":..,"provider":..,"model":..,"object":"chat.completion.chunk","created":N,
};

struct completion_fields {
    std::string_view id;
    std::string_view model;
    std::string_view provider;
    std::int64_t created = 0;
    std::string_view content;
    answer const* calls_from = nullptr;  // tool_calls of this answer (may be null)
    std::string_view finish_reason;
    std::string_view native_finish_reason;
    std::string_view usage_json;
    std::string_view choice_error_json;  // non-empty: "error" inside the choice
};

std::string render_completion(completion_fields const& f);

// {"error":{"message":..,"code":..,"metadata":..?,<extra_error>?}<extra_top>?}
std::string render_error(int code, std::string_view message, std::string_view metadata_json = {},
                         std::string_view extra_error = {}, std::string_view extra_top = {});

}  // namespace parley::sim
