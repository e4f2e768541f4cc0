#include "app/usage_query.hpp"

#include "domain/money.hpp"
#include "domain/usage.hpp"

#include <boost/json/array.hpp>

#include <chrono>

namespace parley::app {

namespace json = boost::json;

namespace {

using sys_time = std::chrono::system_clock::time_point;

// "YYYY-MM-DD" as the UTC midnight starting that day.
std::optional<sys_time> parse_day(std::string_view text) {
    if (text.size() != 10 || text[4] != '-' || text[7] != '-') {
        return std::nullopt;
    }
    auto number = [&](std::size_t at, std::size_t n) -> std::optional<int> {
        int v = 0;
        for (std::size_t i = at; i != at + n; ++i) {
            if (text[i] < '0' || text[i] > '9') {
                return std::nullopt;
            }
            v = v * 10 + (text[i] - '0');
        }
        return v;
    };
    auto const y = number(0, 4), m = number(5, 2), d = number(8, 2);
    if (!y || !m || !d) {
        return std::nullopt;
    }
    std::chrono::year_month_day const ymd{std::chrono::year{*y}, std::chrono::month{static_cast<unsigned>(*m)},
                                          std::chrono::day{static_cast<unsigned>(*d)}};
    if (!ymd.ok()) {
        return std::nullopt;
    }
    return std::chrono::sys_days{ymd};
}

std::string micros_text(std::int64_t micros) { return domain::format_usd(domain::nano_usd{micros * 1000}); }

json::object row_json(persistence::usage_row const& r) {
    return json::object{{"key", r.key},
                        {"requests", r.requests},
                        {"input_tokens", r.input_tokens},
                        {"output_tokens", r.output_tokens},
                        {"cached_tokens", r.cached_tokens},
                        {"cost_usd", micros_text(r.cost_micros)}};
}

}  // namespace

std::optional<std::string> read_usage_query(std::vector<std::pair<std::string, std::string>> const& params,
                                            std::string_view prefix, usage_query& q) {
    std::string const p{prefix};
    for (auto const& [k, v] : params) {
        if (k == "by") {
            if (v == "day") q.filter.by = persistence::usage_group::day;
            else if (v == "model") q.filter.by = persistence::usage_group::model;
            else if (v == "user") q.filter.by = persistence::usage_group::user;
            else return "invalid " + p + "by " + v + ": expected day, model or user";
            q.by = v;
        } else if (k == "since" || k == "until") {
            auto const day = parse_day(v);
            if (!day) {
                return "invalid " + p + k + " " + v + ": expected a date YYYY-MM-DD (UTC)";
            }
            if (k == "since") {
                q.filter.since = *day;
                q.since_text = v;
            } else {
                q.filter.until = *day + std::chrono::hours{24};  // the whole day included
                q.until_text = v;
            }
        } else if (k == "user") {
            if (v.empty() || v.size() > domain::max_user_id_bytes) {
                return "invalid " + p + "user: expected 1 to 255 bytes";
            }
            q.filter.user = v;
        }
    }
    if (q.filter.since && q.filter.until && *q.filter.until <= *q.filter.since) {
        return "invalid period: " + p + "until " + q.until_text + " is before " + p + "since " + q.since_text;
    }
    return std::nullopt;
}

persistence::usage_row usage_total(std::vector<persistence::usage_row> const& rows) {
    persistence::usage_row total;
    total.key = "total";
    for (auto const& row : rows) {
        total.requests += row.requests;
        total.input_tokens += row.input_tokens;
        total.output_tokens += row.output_tokens;
        total.cached_tokens += row.cached_tokens;
        total.cost_micros += row.cost_micros;
    }
    return total;
}

json::object usage_report_json(usage_query const& q, std::vector<persistence::usage_row> const& rows) {
    json::array items;
    for (auto const& row : rows) items.push_back(row_json(row));
    json::object o{{"by", q.by},
                   {"since", q.since_text.empty() ? json::value{} : json::value(q.since_text)},
                   {"until", q.until_text.empty() ? json::value{} : json::value(q.until_text)},
                   {"user", q.filter.user ? json::value(*q.filter.user) : json::value{}},
                   {"rows", std::move(items)},
                   {"total", row_json(usage_total(rows))}};
    o["total"].as_object().erase("key");
    return o;
}

}  // namespace parley::app
