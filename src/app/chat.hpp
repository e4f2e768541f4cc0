#pragma once
// `parley chat`: one turn from a terminal against the configured upstream
// (ARCHITECTURE §8).
//
//   parley chat [--stream] [--json] [--raw] [--user ID] [--perm P]...
//               [--model M] [--language es|en] TEXT...
//
// The positional arguments, joined by spaces, are the user's message.
// --model and --language are the settings flags (ai.model, language).
//  * default: the answer is printed when complete, then a newline;
//  * --stream: text deltas are printed as they arrive (flushed each);
//  * --json: one JSON object on stdout: text, tool_calls [{id,name,arguments}],
//    model, finish_reason, generation_id, request_id, usage {input_tokens,
//    output_tokens, cached_tokens, cost_usd ("0.000123", 6 decimals),
//    cost_source (provider, pricing or estimate)} as recorded (null only if
//    the row could not be recorded), and on failure error {code, status,
//    message, retryable, attempts (requests that reached the upstream)}.
//    Refused by the limits: {text:"", usage:null, error {code
//    (rate_limited, budget_exhausted), message, retry_after (seconds)}}.
//    With --stream too, the request is streamed but only the JSON object
//    is printed;
//  * --raw: the text alone as one upstream call (no system prompt, no tool
//    loop); without it a system prompt (language, user, permissions, date)
//    comes first.
// Before the call: the accounting stack starts (app/accounting.hpp: the
// database migrated, the usage log replayed, the limits loaded for --user),
// and the call is admitted by the hourly window and the daily budgets
// (actors/accountant.hpp). After it, whatever its outcome, its usage row is
// in the usage log before anything is printed, and the reservation is
// settled; the rows are flushed to the database before exit (bounded: a
// database that is down leaves them in the log for the next start).
// Exit codes: 0 answered; 1 the upstream call failed, or the limits refused
// it, or its usage could not be recorded (one line on stderr); 2 bad usage
// or configuration (no text, no OPENROUTER_API_KEY, bad base URL or CA
// file, bad DATABASE_URL, a usage log in use by another process); 130
// interrupted (SIGINT/SIGTERM: the upstream connection is closed at once,
// the call recorded as cancelled). Logs go to stderr, warnings and up
// unless log.level is debug or trace.
#include "app/cli.hpp"
#include "domain/config.hpp"

#include <iosfwd>

namespace parley::app {

int run_chat(parsed_args const& args, domain::settings const& s, std::ostream& out, std::ostream& err);

}  // namespace parley::app
