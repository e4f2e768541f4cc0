// bench_sse: throughput of the SSE decoder alone and of decoder + OpenRouter
// stream reader, on a recorded-style stream (REC-2604 chunk shapes): one
// keep-alive comment, 2,000 content deltas, a finish chunk, a usage chunk
// (finish repeated), [DONE]. The body is fed in fixed-size pieces, as the
// HTTP client would after de-chunking. Bounded: at most --iterations passes
// and about --seconds of wall time per measurement.
//
//   bench_sse [--deltas N] [--piece BYTES] [--iterations N] [--seconds S]
#include "net/openrouter_reader.hpp"
#include "net/sse.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

using clock_type = std::chrono::steady_clock;

std::string make_stream(int deltas) {
    std::string const head =
        R"(data: {"id":"gen-1776000000-AbCdEfGhIjKlMnOpQrSt","provider":"Anthropic","model":"anthropic/claude-4.5-haiku-20251001","object":"chat.completion.chunk","created":1776000000,"choices":[{"index":0,"delta":{"role":"assistant","content":)";
    std::string const tail = R"(},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]})";
    // Token-sized pieces with the usual mix: words, punctuation, an escape,
    // a non-ASCII character.
    static constexpr std::string_view words[] = {
        "\"The\"", "\" quick\"", "\" brown\"", "\" fox\"", "\",\"", "\" jumps\"", "\" over\"", "\" the\"",
        "\" lazy\"", "\" dog\"", "\".\\n\\n\"", "\" Caf\u00e9\"", "\" \\\"quoted\\\"\"", "\" r\u00e9sum\u00e9\"",
    };
    std::string body = ": OPENROUTER PROCESSING\n\n";
    body.reserve(static_cast<std::size_t>(deltas) * 300 + 2048);
    for (int i = 0; i < deltas; ++i) {
        body += head;
        body += words[static_cast<std::size_t>(i) % std::size(words)];
        body += tail;
        body += "\n\n";
    }
    std::string const finish =
        R"(data: {"id":"gen-1776000000-AbCdEfGhIjKlMnOpQrSt","provider":"Anthropic","model":"anthropic/claude-4.5-haiku-20251001","object":"chat.completion.chunk","created":1776000000,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop","native_finish_reason":"end_turn","logprobs":null}]})";
    body += finish + "\n\n";
    body += finish.substr(0, finish.size() - 1) +
            R"(,"usage":{"prompt_tokens":1234,"completion_tokens":2000,"total_tokens":3234,"cost":0.011234,"is_byok":false,"prompt_tokens_details":{"cached_tokens":0,"cache_write_tokens":0},"cost_details":{"upstream_inference_cost":0.011234},"completion_tokens_details":{"reasoning_tokens":0}}})"
            "\n\n";
    body += "data: [DONE]\n\n";
    return body;
}

struct figures {
    double seconds = 0;
    long iterations = 0;
    std::size_t bytes = 0;
    std::size_t events = 0;
};

template <class Pass>
figures measure(std::string_view label, std::size_t body_size, long max_iterations, double max_seconds, Pass pass) {
    figures f;
    pass();  // warm-up
    auto const start = clock_type::now();
    while (f.iterations < max_iterations) {
        f.events += pass();
        f.bytes += body_size;
        ++f.iterations;
        f.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
        if (f.seconds >= max_seconds) {
            break;
        }
    }
    std::printf("%-22s %6ld passes  %8.3f s  %9.1f MB/s  %12.0f events/s  %8.1f us/pass\n", std::string{label}.c_str(),
                f.iterations, f.seconds, static_cast<double>(f.bytes) / 1e6 / f.seconds,
                static_cast<double>(f.events) / f.seconds, f.seconds * 1e6 / static_cast<double>(f.iterations));
    return f;
}

}  // namespace

int main(int argc, char** argv) {
    int deltas = 2000;
    std::size_t piece = 4096;
    long iterations = 2000;
    double seconds = 3.0;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string_view const flag = argv[i];
        if (flag == "--deltas") {
            deltas = std::atoi(argv[i + 1]);
        } else if (flag == "--piece") {
            piece = static_cast<std::size_t>(std::atol(argv[i + 1]));
        } else if (flag == "--iterations") {
            iterations = std::atol(argv[i + 1]);
        } else if (flag == "--seconds") {
            seconds = std::atof(argv[i + 1]);
        }
    }
    if (deltas <= 0 || piece == 0 || iterations <= 0 || seconds <= 0) {
        std::fprintf(stderr, "bench_sse: bad arguments\n");
        return 2;
    }

    std::string const body = make_stream(deltas);
    std::string_view const all = body;
    std::printf("stream: %zu bytes, %d content deltas + finish + usage + [DONE], fed in %zu-byte pieces\n",
                body.size(), deltas, piece);

    measure("sse_decoder", body.size(), iterations, seconds, [&] {
        parley::net::sse_decoder decoder;
        std::size_t n = 0;
        parley::net::sse_decoder::event_handler const count = [&n](parley::net::sse_event const&) { ++n; };
        for (std::size_t at = 0; at < all.size(); at += piece) {
            decoder.feed(all.substr(at, piece), count);
        }
        return n;
    });

    std::size_t text_bytes = 0;
    auto const reader = measure("sse + openrouter_stream", body.size(), iterations, seconds, [&] {
        parley::net::stream_options options;
        options.on_text = [&text_bytes](std::string_view t) { text_bytes += t.size(); };
        parley::net::openrouter_stream stream{std::move(options)};
        for (std::size_t at = 0; at < all.size() && stream.state() == parley::net::openrouter_stream::status::reading;
             at += piece) {
            stream.feed(all.substr(at, piece));
        }
        auto const result = stream.finish();
        if (!result || result->text.empty() || !result->usage || !result->saw_done) {
            std::fprintf(stderr, "bench_sse: the stream did not decode\n");
            std::exit(1);
        }
        return stream.data_events();
    });
    std::printf("forwarded text: %zu bytes per pass\n", text_bytes / static_cast<std::size_t>(reader.iterations + 1));
    return 0;
}
