#include "render.hpp"

namespace parley::sim {

void append_json_string(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out += '"';
    std::size_t run = 0;  // start of the pending run of plain bytes
    for (std::size_t i = 0; i < s.size(); ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out.append(s.data() + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 0xF];
        }
    }
    out.append(s.data() + run, s.size() - run);
    out += '"';
}

std::string render_usage(usage_numbers const& u) {
    std::string out;
    out.reserve(400);
    out += "{\"prompt_tokens\":" + std::to_string(u.prompt);
    out += ",\"completion_tokens\":" + std::to_string(u.completion);
    out += ",\"total_tokens\":" + std::to_string(u.prompt + u.completion);
    if (!u.omit_cost) {
        out += ",\"cost\":" + u.cost;
    }
    out += ",\"is_byok\":false";
    out += ",\"prompt_tokens_details\":{\"cached_tokens\":" + std::to_string(u.cached) +
           ",\"cache_write_tokens\":" + std::to_string(u.cache_write) + ",\"audio_tokens\":0,\"video_tokens\":0}";
    if (!u.omit_cost) {
        out += ",\"cost_details\":{\"upstream_inference_cost\":" + u.cost;
        if (!u.prompt_cost.empty()) out += ",\"upstream_inference_prompt_cost\":" + u.prompt_cost;
        if (!u.completion_cost.empty()) out += ",\"upstream_inference_completions_cost\":" + u.completion_cost;
        out += "}";
    }
    out += ",\"completion_tokens_details\":{\"reasoning_tokens\":0,\"image_tokens\":0,\"audio_tokens\":0}}";
    return out;
}

chunk_renderer::chunk_renderer(std::string_view id, std::string_view model, std::string_view provider,
                               std::int64_t created) {
    head_ = "data: {\"id\":";
    append_json_string(head_, id);
    head_ += ",\"provider\":";
    append_json_string(head_, provider);
    head_ += ",\"model\":";
    append_json_string(head_, model);
    head_ += ",\"object\":\"chat.completion.chunk\",\"created\":" + std::to_string(created) + ",";
}

void chunk_renderer::choice_open(std::string& out) const {
    out += head_;
    out += "\"choices\":[{\"index\":0,\"delta\":";
}

void chunk_renderer::content(std::string& out, std::string_view token) const {
    choice_open(out);
    out += "{\"content\":";
    append_json_string(out, token);
    out += ",\"role\":\"assistant\"},\"finish_reason\":null,\"native_finish_reason\":null,\"logprobs\":null}]}\n\n";
}

void chunk_renderer::tool_call_start(std::string& out, int index, std::string_view id, std::string_view name) const {
    choice_open(out);
    out += "{\"content\":null,\"role\":\"assistant\",\"tool_calls\":[{\"index\":" + std::to_string(index) + ",\"id\":";
    append_json_string(out, id);
    out += ",\"type\":\"function\",\"function\":{\"name\":";
    append_json_string(out, name);
    out += ",\"arguments\":\"\"}}]},\"finish_reason\":null,\"native_finish_reason\":null,\"logprobs\":null}]}\n\n";
}

void chunk_renderer::tool_call_piece(std::string& out, int index, std::string_view piece) const {
    choice_open(out);
    out += "{\"content\":null,\"role\":\"assistant\",\"tool_calls\":[{\"index\":" + std::to_string(index) +
           ",\"function\":{\"arguments\":";
    append_json_string(out, piece);
    out += "}}]},\"finish_reason\":null,\"native_finish_reason\":null,\"logprobs\":null}]}\n\n";
}

void chunk_renderer::finish(std::string& out, std::string_view reason, std::string_view native) const {
    choice_open(out);
    out += "{\"content\":\"\",\"role\":\"assistant\"},\"finish_reason\":";
    append_json_string(out, reason);
    out += ",\"native_finish_reason\":";
    append_json_string(out, native);
    out += ",\"logprobs\":null}]}\n\n";
}

void chunk_renderer::usage(std::string& out, usage_shape shape, std::string_view reason, std::string_view native,
                           std::string_view usage_json) const {
    switch (shape) {
    case usage_shape::empty:
        out += head_;
        out += "\"choices\":[]";
        break;
    case usage_shape::finish:
        choice_open(out);
        out += "{\"content\":\"\",\"role\":\"assistant\"},\"finish_reason\":";
        append_json_string(out, reason);
        out += ",\"native_finish_reason\":";
        append_json_string(out, native);
        out += ",\"logprobs\":null}]";
        break;
    case usage_shape::delta:
        choice_open(out);
        out += "{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null,\"native_finish_reason\":null,"
               "\"logprobs\":null}]";
        break;
    }
    out += ",\"usage\":";
    out += usage_json;
    out += "}\n\n";
}

void chunk_renderer::error(std::string& out, int code, std::string_view message, std::string_view error_type) const {
    out += head_;
    out += "\"error\":{\"code\":" + std::to_string(code) + ",\"message\":";
    append_json_string(out, message);
    out += ",\"metadata\":{\"error_type\":";
    append_json_string(out, error_type);
    out += "}},\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"error\","
           "\"native_finish_reason\":\"error\"}]}\n\n";
}

std::string render_completion(completion_fields const& f) {
    std::string out;
    out.reserve(512 + f.content.size() + f.usage_json.size());
    out += "{\"id\":";
    append_json_string(out, f.id);
    out += ",\"object\":\"chat.completion\",\"created\":" + std::to_string(f.created) + ",\"model\":";
    append_json_string(out, f.model);
    out += ",\"provider\":";
    append_json_string(out, f.provider);
    out += ",\"system_fingerprint\":null,\"choices\":[{\"index\":0,\"logprobs\":null,\"finish_reason\":";
    append_json_string(out, f.finish_reason);
    out += ",\"native_finish_reason\":";
    append_json_string(out, f.native_finish_reason);
    if (!f.choice_error_json.empty()) {
        out += ",\"error\":";
        out += f.choice_error_json;
    }
    out += ",\"message\":{\"role\":\"assistant\",\"content\":";
    append_json_string(out, f.content);
    out += ",\"refusal\":null,\"reasoning\":null";
    if (f.calls_from && !f.calls_from->calls.empty()) {
        out += ",\"tool_calls\":[";
        bool first = true;
        for (auto const& c : f.calls_from->calls) {
            if (!first) out += ',';
            first = false;
            out += "{\"type\":\"function\",\"index\":" + std::to_string(c.index) + ",\"id\":";
            append_json_string(out, c.id);
            out += ",\"function\":{\"name\":";
            append_json_string(out, c.name);
            out += ",\"arguments\":";
            append_json_string(out, c.arguments);
            out += "}}";
        }
        out += ']';
    }
    out += "}}],\"usage\":";
    out += f.usage_json;
    out += '}';
    return out;
}

std::string render_error(int code, std::string_view message, std::string_view metadata_json,
                         std::string_view extra_error, std::string_view extra_top) {
    std::string out = "{\"error\":{\"message\":";
    append_json_string(out, message);
    out += ",\"code\":" + std::to_string(code);
    if (!metadata_json.empty()) {
        out += ",\"metadata\":";
        out += metadata_json;
    }
    if (!extra_error.empty()) {
        out += ',';
        out += extra_error;
    }
    out += '}';
    if (!extra_top.empty()) {
        out += ',';
        out += extra_top;
    }
    out += '}';
    return out;
}

}  // namespace parley::sim
