#include "state.hpp"

#include "render.hpp"

#include <boost/json/serialize.hpp>

#include <ctime>

namespace parley::sim {

namespace json = boost::json;

namespace {

std::string iso8601(std::int64_t unix_seconds) {
    std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    return buf;
}

void append_nullable(std::string& out, std::string_view s) {
    if (s.empty()) out += "null";
    else append_json_string(out, s);
}

}  // namespace

sim_state::sim_state(std::uint64_t seed, std::vector<fault_rate> rates) : rng_{seed}, rates_{std::move(rates)} {}

std::string sim_state::new_generation_id(std::int64_t unix_seconds) {
    std::lock_guard lock{mutex_};
    return "gen-" + std::to_string(unix_seconds) + "-" + random_alnum(20, rng_);
}

std::uint64_t sim_state::next_salt() {
    std::lock_guard lock{mutex_};
    return splitmix64(rng_);
}

std::optional<fault_kind> sim_state::draw_fault() {
    if (rates_.empty()) return std::nullopt;
    std::lock_guard lock{mutex_};
    double u = static_cast<double>(splitmix64(rng_) >> 11) * 0x1.0p-53;
    double acc = 0;
    for (auto const& r : rates_) {
        acc += r.probability;
        if (u < acc) return r.kind;
    }
    return std::nullopt;
}

std::uint32_t sim_state::record_attempt(std::string const& request_id) {
    std::lock_guard lock{mutex_};
    auto [it, inserted] = attempts_.try_emplace(request_id, 0);
    if (inserted) {
        attempt_order_.push_back(request_id);
        if (attempt_order_.size() > max_attempt_ids) {
            attempts_.erase(attempt_order_.front());
            attempt_order_.pop_front();
            it = attempts_.find(request_id);
        }
    }
    return ++it->second;
}

std::size_t sim_state::add_script(std::optional<std::string> const& key, std::vector<script_turn> turns) {
    std::lock_guard lock{mutex_};
    auto& q = key ? keyed_[*key] : unkeyed_;
    for (auto& t : turns) q.push_back(std::move(t));
    return q.size();
}

void sim_state::clear_scripts(std::optional<std::string> const& key) {
    std::lock_guard lock{mutex_};
    if (key) {
        keyed_.erase(*key);
    } else {
        keyed_.clear();
        unkeyed_.clear();
    }
}

std::optional<script_turn> sim_state::take_turn(std::string_view header_key, std::string_view user) {
    std::lock_guard lock{mutex_};
    auto take_keyed = [&](std::string_view key) -> std::optional<script_turn> {
        auto it = keyed_.find(key);
        if (it == keyed_.end() || it->second.empty()) return std::nullopt;
        script_turn t = std::move(it->second.front());
        it->second.pop_front();
        if (it->second.empty()) keyed_.erase(it);
        return t;
    };
    if (!header_key.empty()) return take_keyed(header_key);  // an explicit key never falls back
    if (!user.empty()) {
        if (auto t = take_keyed(user)) return t;
    }
    if (unkeyed_.empty()) return std::nullopt;
    script_turn t = std::move(unkeyed_.front());
    unkeyed_.pop_front();
    return t;
}

std::string sim_state::render_scripts() {
    std::lock_guard lock{mutex_};
    std::string out = "{\"unkeyed\":" + std::to_string(unkeyed_.size()) + ",\"keyed\":{";
    bool first = true;
    for (auto const& [k, q] : keyed_) {
        if (!first) out += ',';
        first = false;
        append_json_string(out, k);
        out += ':' + std::to_string(q.size());
    }
    out += "}}";
    return out;
}

void sim_state::count_request() {
    std::lock_guard lock{mutex_};
    ++requests_;
}
void sim_state::count_stream() {
    std::lock_guard lock{mutex_};
    ++streams_;
}
void sim_state::count_completed() {
    std::lock_guard lock{mutex_};
    ++completed_;
}
void sim_state::count_cancelled() {
    std::lock_guard lock{mutex_};
    ++cancelled_;
}
void sim_state::count_error() {
    std::lock_guard lock{mutex_};
    ++errors_;
}
void sim_state::count_fault(fault_kind k) {
    std::lock_guard lock{mutex_};
    ++faults_[static_cast<std::size_t>(k)];
}
void sim_state::stream_started() {
    std::lock_guard lock{mutex_};
    ++active_;
}
void sim_state::stream_finished() {
    std::lock_guard lock{mutex_};
    --active_;
}
void sim_state::add_cost(std::int64_t nano) {
    std::lock_guard lock{mutex_};
    cost_nano_ += nano;
}

void sim_state::record_request(recorded_request r) {
    std::lock_guard lock{mutex_};
    requests_log_.push_back(std::move(r));
    if (requests_log_.size() > max_recorded_requests) requests_log_.pop_front();
}

void sim_state::store_generation(generation_record g) {
    std::lock_guard lock{mutex_};
    auto id = g.id;
    auto [it, inserted] = generations_.insert_or_assign(id, std::move(g));
    if (inserted) {
        generation_order_.push_back(std::move(id));
        if (generation_order_.size() > max_generations) {
            generations_.erase(generation_order_.front());
            generation_order_.pop_front();
        }
    }
}

std::string sim_state::render_counters() {
    std::lock_guard lock{mutex_};
    std::string out = "{\"requests\":" + std::to_string(requests_) + ",\"streams\":" + std::to_string(streams_) +
                      ",\"completed\":" + std::to_string(completed_) + ",\"cancelled\":" + std::to_string(cancelled_) +
                      ",\"errors\":" + std::to_string(errors_) + ",\"active\":" + std::to_string(active_) +
                      ",\"faults_injected\":{";
    bool first = true;
    for (int i = 0; i < fault_kind_count; ++i) {
        if (faults_[i] == 0) continue;
        if (!first) out += ',';
        first = false;
        append_json_string(out, to_string(static_cast<fault_kind>(i)));
        out += ':' + std::to_string(faults_[i]);
    }
    out += "},\"attempts\":{";
    first = true;
    for (auto const& id : attempt_order_) {
        if (!first) out += ',';
        first = false;
        append_json_string(out, id);
        out += ':' + std::to_string(attempts_.at(id));
    }
    out += "}}";
    return out;
}

std::string sim_state::render_requests(std::size_t last) {
    std::lock_guard lock{mutex_};
    std::size_t n = std::min(last, requests_log_.size());
    std::string out = "{\"requests\":[";
    for (std::size_t i = requests_log_.size() - n; i < requests_log_.size(); ++i) {
        auto const& r = requests_log_[i];
        if (i != requests_log_.size() - n) out += ',';
        out += "{\"at\":" + std::to_string(r.at_ms) + ",\"generation_id\":";
        append_json_string(out, r.generation_id);
        out += ",\"authorization\":";
        out += r.authorization ? "true" : "false";
        out += ",\"headers\":{";
        bool first = true;
        for (auto const& [k, v] : r.headers) {
            if (!first) out += ',';
            first = false;
            append_json_string(out, k);
            out += ':';
            append_json_string(out, v);
        }
        out += "},\"body\":";
        out += json::serialize(r.body);
        out += '}';
    }
    out += "]}";
    return out;
}

std::optional<std::string> sim_state::render_generation(std::string_view id) {
    std::lock_guard lock{mutex_};
    auto it = generations_.find(std::string{id});
    if (it == generations_.end()) return std::nullopt;
    auto const& g = it->second;
    std::string out = "{\"data\":{\"id\":";
    append_json_string(out, g.id);
    out += ",\"upstream_id\":null,\"total_cost\":" + g.total_cost + ",\"cache_discount\":null";
    out += ",\"upstream_inference_cost\":" + g.total_cost;
    if (!g.prompt_cost.empty()) out += ",\"upstream_inference_prompt_cost\":" + g.prompt_cost;
    if (!g.completion_cost.empty()) out += ",\"upstream_inference_completions_cost\":" + g.completion_cost;
    out += ",\"created_at\":";
    append_json_string(out, iso8601(g.created_unix));
    out += ",\"model\":";
    append_json_string(out, g.model);
    out += ",\"app_id\":null,\"streamed\":";
    out += g.streamed ? "true" : "false";
    out += ",\"cancelled\":";
    out += g.cancelled ? "true" : "false";
    out += ",\"provider_name\":";
    append_json_string(out, g.provider);
    out += ",\"latency\":" + std::to_string(g.latency_ms) + ",\"moderation_latency\":null";
    out += ",\"generation_time\":" + std::to_string(g.generation_time_ms);
    out += ",\"finish_reason\":";
    append_nullable(out, g.finish_reason);
    out += ",\"native_finish_reason\":";
    append_nullable(out, g.native_finish_reason);
    out += ",\"tokens_prompt\":" + std::to_string(g.tokens_prompt);
    out += ",\"tokens_completion\":" + std::to_string(g.tokens_completion);
    out += ",\"native_tokens_prompt\":" + std::to_string(g.tokens_prompt);
    out += ",\"native_tokens_completion\":" + std::to_string(g.tokens_completion);
    out += ",\"native_tokens_reasoning\":0,\"native_tokens_cached\":" + std::to_string(g.tokens_cached);
    out += ",\"num_media_prompt\":null,\"num_media_completion\":null,\"num_search_results\":null";
    out += ",\"origin\":\"\",\"usage\":" + g.total_cost + ",\"is_byok\":false,\"api_type\":\"completions\"}}";
    return out;
}

std::string sim_state::render_key() {
    std::lock_guard lock{mutex_};
    std::string usage = format_nano(cost_nano_);
    return "{\"data\":{\"label\":\"sk-or-v1-sim...\",\"limit\":null,\"limit_reset\":null,\"limit_remaining\":null,"
           "\"include_byok_in_limit\":false,\"usage\":" +
           usage + ",\"usage_daily\":" + usage + ",\"usage_weekly\":" + usage + ",\"usage_monthly\":" + usage +
           ",\"byok_usage\":0,\"byok_usage_daily\":0,\"byok_usage_weekly\":0,\"byok_usage_monthly\":0,"
           "\"is_free_tier\":false,\"is_management_key\":false,\"is_provisioning_key\":false,\"expires_at\":null,"
           "\"rate_limit\":{\"requests\":-1,\"interval\":\"10s\"}}}";
}

void sim_state::reset() {
    std::lock_guard lock{mutex_};
    unkeyed_.clear();
    keyed_.clear();
    requests_ = streams_ = completed_ = cancelled_ = errors_ = 0;
    faults_.fill(0);
    attempts_.clear();
    attempt_order_.clear();
    requests_log_.clear();
    cost_nano_ = 0;
}

}  // namespace parley::sim
