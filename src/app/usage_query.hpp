#pragma once
// A usage report's parameters and its JSON, shared by `parley usage` and
// `GET /v1/usage`: by (day, model, user; default day), since and until
// (UTC days "YYYY-MM-DD", both included), user.
#include "persistence/usage_repository.hpp"

#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace parley::app {

struct usage_query {
    persistence::usage_filter filter;
    std::string by = "day";
    std::string since_text, until_text;
};

// Reads (name, value) pairs ("by", "since", "until", "user"; other names
// are ignored). The error is one line naming the parameter as
// `prefix` + name ("--by", or "by" for a URL query).
std::optional<std::string> read_usage_query(std::vector<std::pair<std::string, std::string>> const& params,
                                            std::string_view prefix, usage_query& q);

// {by, since, until, user, rows: [{key, requests, input_tokens,
// output_tokens, cached_tokens, cost_usd}], total: {...}}: costs are
// 6-decimal strings, the total the exact sum of the rows.
boost::json::object usage_report_json(usage_query const& q, std::vector<persistence::usage_row> const& rows);

// The total line of the rows (key "total").
persistence::usage_row usage_total(std::vector<persistence::usage_row> const& rows);

}  // namespace parley::app
