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
//    output_tokens, cached_tokens, cost_usd ("0.000123", 6 decimals, or
//    null when the upstream gave no cost)} or null on failure, and on
//    failure error {code, status, message, retryable, attempts (requests
//    that reached the upstream)}. With --stream too, the request is
//    streamed but only the JSON object is printed;
//  * --raw: the text alone as one upstream call (no system prompt, no tool
//    loop); without it a system prompt (language, user, permissions, date)
//    comes first.
// Exit codes: 0 answered; 1 the upstream call failed (one line on stderr);
// 2 bad usage or configuration (no text, no OPENROUTER_API_KEY, bad
// base URL or CA file); 130 interrupted (SIGINT/SIGTERM: the upstream
// connection is closed at once). Logs go to stderr, warnings and up unless
// log.level is debug or trace.
#include "app/cli.hpp"
#include "domain/config.hpp"

#include <iosfwd>

namespace parley::app {

int run_chat(parsed_args const& args, domain::settings const& s, std::ostream& out, std::ostream& err);

}  // namespace parley::app
