#pragma once
// The database commands (ARCHITECTURE §8):
//
//   parley migrate
//     applies the pending migrations; prints what it applied, or that the
//     schema is up to date. Exit 0; 1 if the database cannot be reached or a
//     migration fails; 2 for a bad DATABASE_URL.
//
//   parley usage [--by day|model|user] [--since YYYY-MM-DD] [--until YYYY-MM-DD]
//                [--user ID] [--json]
//     usage and cost from the database, grouped (default: by day), over the
//     UTC days since..until (both included), of one user or everyone: an
//     aligned table with a total line, or one JSON object
//     {by, since, until, user, rows: [{key, requests, input_tokens,
//     output_tokens, cached_tokens, cost_usd}], total: {...}} with costs as
//     6-decimal strings; the total is the exact sum of the rows. Before the
//     report, rows still waiting in the usage log (a database outage, a
//     crash) are written to the database, unless another process holds the
//     log (then they are left to it, and a note says so).
#include "app/cli.hpp"
#include "domain/config.hpp"

#include <iosfwd>

namespace parley::app {

int run_migrate(domain::settings const& s, std::ostream& out, std::ostream& err);
int run_usage(parsed_args const& args, domain::settings const& s, std::ostream& out, std::ostream& err);

}  // namespace parley::app
