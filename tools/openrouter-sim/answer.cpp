#include "answer.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <array>

namespace parley::sim {

namespace json = boost::json;

namespace {

// Text of a message "content": a string, or the "text" of text parts.
std::string content_text(json::value const* content) {
    if (!content) return {};
    if (auto const* s = content->if_string()) return std::string{*s};
    std::string out;
    if (auto const* parts = content->if_array()) {
        for (auto const& p : *parts) {
            auto const* o = p.if_object();
            if (!o) continue;
            if (auto const* t = o->if_contains("text"); t && t->is_string()) {
                if (!out.empty()) out += ' ';
                out += t->get_string();
            }
        }
    }
    return out;
}

bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

// The tool name as a whole word in the text.
bool mentions(std::string_view text, std::string_view name) {
    if (name.empty()) return false;
    for (std::size_t pos = text.find(name); pos != std::string_view::npos; pos = text.find(name, pos + 1)) {
        bool left = pos == 0 || !is_name_char(text[pos - 1]);
        bool right = pos + name.size() >= text.size() || !is_name_char(text[pos + name.size()]);
        if (left && right) return true;
    }
    return false;
}

json::value sample_value(json::value const* schema) {
    auto const* o = schema ? schema->if_object() : nullptr;
    if (!o) return "sample";
    if (auto const* e = o->if_contains("enum"); e && e->is_array() && !e->get_array().empty())
        return e->get_array().front();
    if (auto const* d = o->if_contains("default")) return *d;
    std::string_view type = "string";
    if (auto const* t = o->if_contains("type")) {
        if (t->is_string()) type = t->get_string();
        else if (t->is_array() && !t->get_array().empty() && t->get_array().front().is_string())
            type = t->get_array().front().get_string();
    }
    if (type == "integer") return 1;
    if (type == "number") return 1.5;
    if (type == "boolean") return true;
    if (type == "array") return json::array{};
    if (type == "object") return json::object{};
    if (type == "null") return nullptr;
    return "sample";
}

std::string default_arguments(json::object const& function) {
    json::object args;
    auto const* params = function.if_contains("parameters");
    auto const* po = params ? params->if_object() : nullptr;
    if (po) {
        auto const* props = po->if_contains("properties");
        auto const* required = po->if_contains("required");
        if (required && required->is_array()) {
            for (auto const& r : required->get_array()) {
                if (!r.is_string()) continue;
                json::value const* schema = nullptr;
                if (props && props->is_object()) schema = props->get_object().if_contains(r.get_string());
                args[r.get_string()] = sample_value(schema);
            }
        }
    }
    return json::serialize(args);
}

std::size_t utf8_length(unsigned char lead) {
    if (lead < 0x80) return 1;
    if ((lead >> 5) == 0x6) return 2;
    if ((lead >> 4) == 0xE) return 3;
    if ((lead >> 3) == 0x1E) return 4;
    return 1;
}

// Byte length of the first n code points of s.
std::size_t code_points_prefix(std::string_view s, std::size_t n) {
    std::size_t pos = 0;
    while (n > 0 && pos < s.size()) {
        pos += std::min(utf8_length(static_cast<unsigned char>(s[pos])), s.size() - pos);
        --n;
    }
    return pos;
}

std::size_t count_code_points(std::string_view s) {
    std::size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

std::string collapse_spaces(std::string_view s) {
    std::string out;
    bool space = false;
    for (char c : s) {
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
            space = !out.empty();
            continue;
        }
        if (space) out += ' ';
        space = false;
        out += c;
    }
    return out;
}

constexpr std::array<std::string_view, 24> filler_words{
    "the",    "gateway", "streams", "every",  "token", "while",  "the",    "simulator", "keeps",  "time",  "and",
    "counts", "usage",   "so",      "tests",  "can",   "check",  "costs",  "retries",   "faults", "tools", "and",
    "a",      "budget"};

std::uint64_t fnv1a(std::string_view s) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return h;
}

// Cuts a tool call's arguments into streaming pieces: 1..8 code points each,
// sometimes right after a backslash (mid-escape), sometimes an empty piece.
std::vector<std::string> cut_arguments(std::string_view args, std::uint64_t& rng) {
    std::vector<std::string> pieces;
    std::size_t pos = 0;
    while (pos < args.size()) {
        std::uint64_t r = splitmix64(rng);
        if ((r & 0x7) == 0) pieces.emplace_back();  // an empty fragment, as seen on the wire
        std::size_t want = 1 + ((r >> 3) % 8);
        std::size_t len = code_points_prefix(args.substr(pos), want);
        auto piece = args.substr(pos, len);
        if (auto bs = piece.find('\\'); bs != std::string_view::npos && bs + 1 < piece.size() && ((r >> 8) & 1))
            len = bs + 1;  // end the piece inside an escape sequence
        pieces.emplace_back(args.substr(pos, len));
        pos += len;
    }
    return pieces;
}

}  // namespace

std::uint64_t splitmix64(std::uint64_t& state) {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

std::string random_alnum(std::size_t n, std::uint64_t& rng_state) {
    static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    std::string out(n, ' ');
    for (auto& c : out) c = alphabet[splitmix64(rng_state) % alphabet.size()];
    return out;
}

std::string make_call_id(model_family f, std::uint64_t& rng_state) {
    if (f == model_family::anthropic) return "toolu_01" + random_alnum(22, rng_state);
    return "call_" + random_alnum(24, rng_state);
}

std::string native_finish_reason(model_family f, std::string_view finish_reason) {
    if (f == model_family::anthropic) {
        if (finish_reason == "stop") return "end_turn";
        if (finish_reason == "tool_calls") return "tool_use";
        if (finish_reason == "length") return "max_tokens";
        if (finish_reason == "content_filter") return "refusal";
    }
    return std::string{finish_reason};
}

std::vector<std::string> tokenize(std::string_view text) {
    std::vector<std::string> tokens;
    std::size_t pos = 0;
    auto is_space = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
    while (pos < text.size()) {
        std::size_t start = pos;
        while (pos < text.size() && is_space(text[pos])) ++pos;
        std::size_t word = pos;
        while (pos < text.size() && !is_space(text[pos])) ++pos;
        if (word == pos) {  // trailing whitespace: joins the last token
            if (tokens.empty()) tokens.emplace_back();
            tokens.back().append(text.substr(start));
            break;
        }
        std::string_view w = text.substr(word, pos - word);
        std::string_view lead = text.substr(start, word - start);
        if (count_code_points(w) <= 8) {
            tokens.emplace_back(text.substr(start, pos - start));
            continue;
        }
        // A long word: pieces of 4 code points, the first with the leading space.
        bool first = true;
        while (!w.empty()) {
            std::size_t len = code_points_prefix(w, 4);
            std::string t = first ? std::string{lead} : std::string{};
            t.append(w.substr(0, len));
            tokens.push_back(std::move(t));
            w.remove_prefix(len);
            first = false;
        }
    }
    return tokens;
}

std::size_t answer::units() const {
    std::size_t n = tokens.size();
    for (auto const& c : calls) n += 1 + c.pieces.size();
    return n;
}

std::string answer::text() const { return text_of_first(tokens.size()); }

std::string answer::text_of_first(std::size_t n) const {
    std::string out;
    for (std::size_t i = 0; i < n && i < tokens.size(); ++i) out += tokens[i];
    return out;
}

analyze_result analyze_request(json::value const& body) {
    analyze_result r;
    auto fail = [&](std::string msg) {
        r.error = std::move(msg);
        return r;
    };
    auto const* obj = body.if_object();
    if (!obj) return fail("Invalid request: the body must be a JSON object");
    chat_request req;

    // Model: "model", else the first of "models", else the default.
    std::string model_id;
    if (auto const* m = obj->if_contains("model"); m && !m->is_null()) {
        if (!m->is_string()) return fail("Invalid request: \"model\" must be a string");
        model_id = m->get_string();
    } else if (auto const* ms = obj->if_contains("models"); ms && ms->is_array() && !ms->get_array().empty() &&
                                                            ms->get_array().front().is_string()) {
        model_id = ms->get_array().front().get_string();
    } else {
        model_id = default_model().id;
    }
    req.requested_model = model_id;
    if (std::string_view id = model_id; id.starts_with("sim/fault-")) {
        auto kind = parse_fault_kind(id.substr(10));
        if (!kind) return fail(model_id + " is not a valid model ID");
        req.scenario_fault = kind;
        req.model = &default_model();
    } else {
        req.model = find_model(model_id);
        if (!req.model) {
            // A fallback list may still name a model we serve.
            if (auto const* ms = obj->if_contains("models"); ms && ms->is_array()) {
                for (auto const& v : ms->get_array()) {
                    if (v.is_string() && (req.model = find_model(v.get_string()))) break;
                }
            }
        }
        if (!req.model) return fail(model_id + " is not a valid model ID");
    }

    if (auto const* s = obj->if_contains("stream"); s && !s->is_null()) {
        if (!s->is_bool()) return fail("Invalid request: \"stream\" must be a boolean");
        req.stream = s->get_bool();
    }
    for (char const* key : {"max_tokens", "max_completion_tokens"}) {
        if (auto const* mt = obj->if_contains(key); mt && !mt->is_null()) {
            if (!mt->is_int64() && !mt->is_uint64()) return fail(std::string{"Invalid request: \""} + key + "\" must be an integer");
            auto v = mt->to_number<std::int64_t>();
            if (v < 1) return fail(std::string{"Invalid request: \""} + key + "\" must be at least 1");
            req.max_tokens = req.max_tokens ? std::min(*req.max_tokens, v) : v;
        }
    }
    if (auto const* u = obj->if_contains("user"); u && u->is_string()) req.user = u->get_string();

    auto const* messages = obj->if_contains("messages");
    if (!messages || messages->is_null()) return fail("Input required: specify \"prompt\" or \"messages\"");
    if (!messages->is_array() || messages->get_array().empty())
        return fail("Invalid request: \"messages\" must be a non-empty array");

    std::size_t chars = 0;
    auto const& arr = messages->get_array();
    for (std::size_t i = 0; i < arr.size(); ++i) {
        auto const* m = arr[i].if_object();
        if (!m) return fail("Invalid request: messages[" + std::to_string(i) + "] must be an object");
        auto const* role = m->if_contains("role");
        if (!role || !role->is_string())
            return fail("Invalid request: messages[" + std::to_string(i) + "].role is required");
        std::string_view rs = role->get_string();
        if (rs != "system" && rs != "developer" && rs != "user" && rs != "assistant" && rs != "tool")
            return fail("Invalid request: messages[" + std::to_string(i) + "].role '" + std::string{rs} +
                        "' is not one of system, developer, user, assistant, tool");
        auto const* content = m->if_contains("content");
        if (content && !content->is_string() && !content->is_array() && !content->is_null())
            return fail("Invalid request: messages[" + std::to_string(i) + "].content must be a string or an array");
        std::string text = content_text(content);
        chars += rs.size() + text.size();
        if (auto const* calls = m->if_contains("tool_calls"); calls && calls->is_array()) {
            for (auto const& c : calls->get_array()) chars += json::serialize(c).size();
        }
        req.last_role = rs;
        if (rs == "user") {
            req.last_user_text = std::move(text);
            req.tool_results.clear();
        } else if (rs == "tool") {
            req.tool_results.push_back(std::move(text));
        } else {
            req.tool_results.clear();
        }
    }

    if (auto const* tools = obj->if_contains("tools"); tools && !tools->is_null()) {
        if (!tools->is_array()) return fail("Invalid request: \"tools\" must be an array");
        chars += json::serialize(*tools).size();
        for (auto const& t : tools->get_array()) {
            auto const* to = t.if_object();
            auto const* fn = to ? to->if_contains("function") : nullptr;
            auto const* fo = fn ? fn->if_object() : nullptr;
            auto const* name = fo ? fo->if_contains("name") : nullptr;
            if (!name || !name->is_string() || name->get_string().empty())
                return fail("Invalid request: each tool needs {\"type\":\"function\",\"function\":{\"name\":...}}");
            req.tools.push_back({std::string{name->get_string()}, default_arguments(*fo)});
        }
    }
    if (auto const* p = obj->if_contains("parallel_tool_calls"); p && p->is_bool()) req.parallel_tool_calls = p->get_bool();
    if (auto const* tc = obj->if_contains("tool_choice"); tc && !tc->is_null()) {
        if (auto const* s = tc->if_string()) {
            if (*s == "none") req.tool_choice = tool_choice_mode::none;
            else if (*s == "required") req.tool_choice = tool_choice_mode::required;
            else if (*s == "auto") req.tool_choice = tool_choice_mode::automatic;
            else return fail("Invalid request: tool_choice must be none, auto, required or a function");
        } else if (auto const* o = tc->if_object()) {
            auto const* fn = o->if_contains("function");
            auto const* name = fn && fn->is_object() ? fn->get_object().if_contains("name") : nullptr;
            if (!name || !name->is_string()) return fail("Invalid request: tool_choice.function.name is required");
            req.tool_choice = tool_choice_mode::named;
            req.tool_choice_name = name->get_string();
        }
    }
    req.prompt_tokens = std::max<std::int64_t>(1, static_cast<std::int64_t>((chars + 3) / 4));
    r.request = std::move(req);
    return r;
}

script_parse_result parse_script(json::value const& body) {
    script_parse_result r;
    auto fail = [&](std::string msg) {
        r.error = std::move(msg);
        r.turns.clear();
        return r;
    };
    auto const* obj = body.if_object();
    if (!obj) return fail("script must be a JSON object {\"key\"?, \"turns\":[...]}");
    if (auto const* k = obj->if_contains("key"); k && !k->is_null()) {
        if (!k->is_string()) return fail("\"key\" must be a string");
        r.key = std::string{k->get_string()};
    }
    auto const* turns = obj->if_contains("turns");
    if (!turns || !turns->is_array() || turns->get_array().empty()) return fail("\"turns\" must be a non-empty array");
    auto count = [](json::value const& v, std::string const& what, std::string& err) -> std::optional<std::int64_t> {
        if (!v.is_int64() && !v.is_uint64()) {
            err = what + " must be a non-negative integer";
            return std::nullopt;
        }
        auto n = v.to_number<std::int64_t>();
        if (n < 0) {
            err = what + " must be a non-negative integer";
            return std::nullopt;
        }
        return n;
    };
    auto const& arr = turns->get_array();
    for (std::size_t i = 0; i < arr.size(); ++i) {
        std::string where = "turns[" + std::to_string(i) + "]";
        auto const* t = arr[i].if_object();
        if (!t) return fail(where + " must be an object");
        script_turn turn;
        for (auto const& [key, v] : *t) {
            std::string err;
            if (key == "text") {
                if (!v.is_string()) return fail(where + ".text must be a string");
                turn.text = std::string{v.get_string()};
            } else if (key == "tool_calls") {
                if (!v.is_array()) return fail(where + ".tool_calls must be an array");
                for (std::size_t j = 0; j < v.get_array().size(); ++j) {
                    std::string cw = where + ".tool_calls[" + std::to_string(j) + "]";
                    auto const* c = v.get_array()[j].if_object();
                    if (!c) return fail(cw + " must be an object");
                    scripted_call call;
                    auto const* name = c->if_contains("name");
                    if (!name || !name->is_string() || name->get_string().empty())
                        return fail(cw + ".name must be a non-empty string");
                    call.name = name->get_string();
                    if (auto const* idx = c->if_contains("index"); idx && !idx->is_null()) {
                        auto n = count(*idx, cw + ".index", err);
                        if (!n || *n > 1000) return fail(err.empty() ? cw + ".index must be 0..1000" : err);
                        call.index = static_cast<int>(*n);
                    }
                    if (auto const* id = c->if_contains("id"); id && !id->is_null()) {
                        if (!id->is_string()) return fail(cw + ".id must be a string");
                        call.id = std::string{id->get_string()};
                    }
                    if (auto const* a = c->if_contains("arguments"); a && !a->is_null()) {
                        if (a->is_string()) call.arguments = a->get_string();
                        else if (a->is_object()) call.arguments = json::serialize(*a);
                        else return fail(cw + ".arguments must be a JSON object or a string");
                    } else {
                        call.arguments = "{}";
                    }
                    turn.tool_calls.push_back(std::move(call));
                }
            } else if (key == "usage") {
                auto const* u = v.if_object();
                if (!u) return fail(where + ".usage must be an object");
                usage_override uo;
                for (auto const& [uk, uv] : *u) {
                    std::optional<std::int64_t>* slot = nullptr;
                    if (uk == "prompt_tokens") slot = &uo.prompt_tokens;
                    else if (uk == "completion_tokens") slot = &uo.completion_tokens;
                    else if (uk == "cached_tokens") slot = &uo.cached_tokens;
                    else if (uk == "cache_write_tokens") slot = &uo.cache_write_tokens;
                    if (slot) {
                        auto n = count(uv, where + ".usage." + std::string{uk}, err);
                        if (!n) return fail(err);
                        *slot = n;
                    } else if (uk == "cost" && uv.is_null()) {
                        uo.omit_cost = true;
                    } else if (uk == "cost") {
                        std::string c = uv.is_string() ? std::string{uv.get_string()} : std::string{};
                        if (!is_plain_decimal(c)) return fail(where + ".usage.cost must be a decimal string such as \"0.0012\"");
                        uo.cost = c;
                    } else {
                        return fail(where + ".usage." + std::string{uk} + " is not a known field");
                    }
                }
                turn.usage = uo;
            } else if (key == "finish_reason" || key == "native_finish_reason") {
                if (!v.is_string()) return fail(where + "." + std::string{key} + " must be a string");
                (key == "finish_reason" ? turn.finish_reason : turn.native_finish_reason) = std::string{v.get_string()};
            } else if (key == "fault") {
                if (!v.is_string()) return fail(where + ".fault must be a string such as \"502\"");
                auto f = parse_fault_spec(v.get_string(), false);
                if (!f.spec) return fail(where + ".fault: " + f.error);
                turn.fault = f.spec;
            } else if (key == "latency_ms") {
                auto n = count(v, where + ".latency_ms", err);
                if (!n || *n > 600'000) return fail(err.empty() ? where + ".latency_ms must be 0..600000" : err);
                turn.latency = std::chrono::milliseconds{*n};
            } else {
                return fail(where + "." + std::string{key} + " is not a known field (text, tool_calls, usage, "
                                                              "finish_reason, native_finish_reason, fault, latency_ms)");
            }
        }
        r.turns.push_back(std::move(turn));
    }
    return r;
}

answer plan_answer(chat_request const& req, script_turn const* turn, generation_params const& params,
                   std::uint64_t salt) {
    answer a;
    std::uint64_t rng = salt ^ params.seed;
    auto family = req.model->family;

    if (turn) {
        if (turn->text) a.tokens = tokenize(*turn->text);
        int position = 0;
        for (auto const& c : turn->tool_calls) {
            planned_call p;
            p.index = c.index.value_or(position);
            p.id = c.id.value_or(make_call_id(family, rng));
            p.name = c.name;
            p.arguments = c.arguments;
            p.pieces = cut_arguments(p.arguments, rng);
            a.calls.push_back(std::move(p));
            ++position;
        }
        a.finish_reason = turn->finish_reason.value_or(a.calls.empty() ? "stop" : "tool_calls");
        a.native_finish_reason = turn->native_finish_reason.value_or(native_finish_reason(family, a.finish_reason));
        a.usage = turn->usage;
        a.latency = turn->latency;
        return a;
    }

    // Tool calls: the last message is the user's and it names tools (or tool_choice forces one).
    if (!req.tools.empty() && req.last_role == "user" && req.tool_choice != tool_choice_mode::none) {
        std::vector<tool_def const*> chosen;
        if (req.tool_choice == tool_choice_mode::named) {
            for (auto const& t : req.tools)
                if (t.name == req.tool_choice_name) chosen.push_back(&t);
        } else {
            for (auto const& t : req.tools) {
                if (mentions(req.last_user_text, t.name)) chosen.push_back(&t);
                if (!chosen.empty() && !req.parallel_tool_calls) break;
            }
            if (chosen.empty() && req.tool_choice == tool_choice_mode::required) chosen.push_back(&req.tools.front());
        }
        if (!chosen.empty()) {
            int index = 0;
            for (auto const* t : chosen) {
                planned_call p;
                p.index = index++;
                p.id = make_call_id(family, rng);
                p.name = t->name;
                p.arguments = t->default_arguments;
                p.pieces = cut_arguments(p.arguments, rng);
                a.calls.push_back(std::move(p));
            }
            a.finish_reason = "tool_calls";
            a.native_finish_reason = native_finish_reason(family, a.finish_reason);
            return a;
        }
    }

    std::string text;
    if (req.last_role == "tool" && !req.tool_results.empty()) {
        // Quote the tool results.
        text = req.tool_results.size() == 1 ? "The tool returned: " : "The tools returned: ";
        for (std::size_t i = 0; i < req.tool_results.size(); ++i) {
            if (i) text += "; ";
            auto const& r = req.tool_results[i];
            text += '"';
            text += r.substr(0, code_points_prefix(r, 300));
            text += '"';
        }
        text += '.';
        a.tokens = tokenize(text);
    } else {
        // Echo the start of the last user message, then filler up to answer_tokens.
        std::string echo = collapse_spaces(req.last_user_text);
        echo.resize(code_points_prefix(echo, 80));
        if (echo.empty()) echo = "(no text)";
        text = "Echo: " + echo;
        if (char last = text.back(); last != '.' && last != '?' && last != '!') text += '.';
        a.tokens = tokenize(text);
        std::size_t const echo_tokens = a.tokens.size();
        std::size_t target = params.answer_tokens;
        if (a.tokens.size() > target) a.tokens.resize(target);
        std::size_t w = static_cast<std::size_t>((fnv1a(echo) ^ params.seed) % filler_words.size());
        while (a.tokens.size() < target) {
            std::string t = " ";
            t += filler_words[w++ % filler_words.size()];
            a.tokens.push_back(std::move(t));
        }
        if (a.tokens.size() > echo_tokens) a.tokens.back() += '.';
    }
    a.finish_reason = "stop";
    if (req.max_tokens && static_cast<std::int64_t>(a.tokens.size()) > *req.max_tokens) {
        a.tokens.resize(static_cast<std::size_t>(*req.max_tokens));
        a.finish_reason = "length";
    }
    a.native_finish_reason = native_finish_reason(family, a.finish_reason);
    return a;
}

}  // namespace parley::sim
