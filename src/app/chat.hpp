#pragma once
// `parley chat`: one turn from a terminal against the configured upstream
// (ARCHITECTURE §8).
//
//   parley chat [--stream] [--json] [--raw] [--user ID] [--perm P]...
//               [--context JSON] [--conversation ID]
//               [--model M] [--language es|en] TEXT...
//
// The positional arguments, joined by spaces, are the user's message.
// --model and --language are the settings flags (ai.model, language).
// A turn runs through a SessionActor (actors/session.hpp): the system
// prompt (language, --user as id and name, --perm, --context, today), the
// tools of tools.file that --perm allows, the tool loop, fallbacks. With
// --conversation (and --user, its owner) a stored conversation is resumed.
//  * default: the answer is printed when complete, then a newline;
//  * --stream: text deltas are printed as they arrive (flushed each);
//  * tool activity ("[tool] NAME done|failed") goes to stderr;
//  * --json: one JSON object on stdout: {text, model, fallback, usage
//    {input_tokens, output_tokens, cost_usd (6 decimals)} summed over the
//    turn's upstream calls, tools [{name, status}], conversation_id}, or on
//    an error {text:"", error {code, message, retry_after?}, usage, tools,
//    conversation_id};
//  * --raw: the text alone as ONE upstream call (no system prompt, no tool
//    loop), printing the call itself: with --json {text, tool_calls
//    [{id,name,arguments}], model, finish_reason, generation_id,
//    request_id, usage {input_tokens, output_tokens, cached_tokens,
//    cost_usd, cost_source} (null only if the row could not be recorded),
//    and on failure error {code, status, message, retryable, attempts}};
//    refused by the limits: {text:"", usage:null, error {code, message,
//    retry_after}}.
// Before the turn: the accounting stack starts (app/accounting.hpp: the
// database migrated, the usage log replayed, the limits loaded for --user)
// and the assistant's files are read (app/assistant.hpp). Every upstream
// call is admitted by the hourly window and the daily budgets and, whatever
// its outcome, its usage row is in the usage log before the turn ends; the
// rows are flushed to the database before exit (bounded: a database that is
// down leaves them in the log for the next start).
// Exit codes: 0 answered (a fallback answer too: said on stderr); 1 the
// turn ended in an error (rate_limited, ai_unavailable, ..., one line on
// stderr with the message in the session's language and the code), or the
// conversation cannot be resumed; 2 bad usage or configuration (no text, no
// OPENROUTER_API_KEY, bad base URL, CA file, DATABASE_URL, prompt, tools or
// fallbacks file, a usage log in use by another process); 130 interrupted
// (SIGINT/SIGTERM: the upstream connection is closed at once, the call
// recorded as cancelled). Logs go to stderr, warnings and up unless
// log.level is debug or trace.
#include "app/cli.hpp"
#include "domain/config.hpp"

#include <iosfwd>

namespace parley::app {

int run_chat(parsed_args const& args, domain::settings const& s, std::ostream& out, std::ostream& err);

}  // namespace parley::app
