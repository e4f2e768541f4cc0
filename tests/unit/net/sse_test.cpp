// The SSE decoder: WHATWG event-stream rules, arbitrary byte splits, limits.
#include "net/sse.hpp"

#include <boost/test/unit_test.hpp>

#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

using parley::net::sse_decoder;
using parley::net::sse_end;
using parley::net::sse_error;
using parley::net::sse_event;
using namespace std::string_view_literals;

namespace {

std::string fixture(std::string const& name) {
    std::ifstream in{std::string{PARLEY_SOURCE_DIR} + "/tests/data/" + name, std::ios::binary};
    BOOST_REQUIRE_MESSAGE(in, "missing fixture " << name);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

// Events as one comparable, printable string.
std::string render(std::vector<sse_event> const& events) {
    std::string out;
    for (auto const& e : events) {
        out += "[event=" + e.event + " id=" + e.id + " data=" + e.data + "]\n";
    }
    return out;
}

std::string decode_whole(std::string_view body) {
    sse_decoder d;
    return render(d.feed(body));
}

std::string decode_pieces(std::vector<std::string_view> const& pieces) {
    sse_decoder d;
    std::vector<sse_event> all;
    for (auto p : pieces) {
        auto events = d.feed(p);
        all.insert(all.end(), events.begin(), events.end());
    }
    BOOST_TEST((d.finish() == sse_end::clean));
    return render(all);
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
    for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
        s.replace(at, from.size(), to);
    }
    return s;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(sse_decoder_suite)

BOOST_AUTO_TEST_CASE(one_event_with_the_optional_space_after_the_colon) {
    sse_decoder d;
    auto events = d.feed("data: hello\n\n");
    BOOST_REQUIRE_EQUAL(events.size(), 1u);
    BOOST_TEST(events[0].data == "hello");
    BOOST_TEST(events[0].event == "");
    BOOST_TEST(events[0].id == "");
    BOOST_TEST(d.events() == 1u);
}

BOOST_AUTO_TEST_CASE(only_one_leading_space_is_dropped) {
    sse_decoder d;
    auto events = d.feed("data:hello\n\ndata:  two\n\ndata:\tthree\n\n");
    BOOST_REQUIRE_EQUAL(events.size(), 3u);
    BOOST_TEST(events[0].data == "hello");
    BOOST_TEST(events[1].data == " two");
    BOOST_TEST(events[2].data == "\tthree");
}

BOOST_AUTO_TEST_CASE(multi_line_data_is_joined_with_lf) {
    sse_decoder d;
    auto events = d.feed("data: first\ndata:second\ndata\ndata: fourth\n\n");
    BOOST_REQUIRE_EQUAL(events.size(), 1u);
    BOOST_TEST(events[0].data == "first\nsecond\n\nfourth");
}

BOOST_AUTO_TEST_CASE(an_empty_data_field_dispatches_an_event_with_empty_data) {
    sse_decoder d;
    auto events = d.feed("data\n\ndata:\n\n");
    BOOST_REQUIRE_EQUAL(events.size(), 2u);
    BOOST_TEST(events[0].data == "");
    BOOST_TEST(events[1].data == "");
}

BOOST_AUTO_TEST_CASE(an_event_without_data_is_not_dispatched_and_its_type_is_reset) {
    sse_decoder d;
    auto events = d.feed("event: ping\n\ndata: x\n\n");
    BOOST_REQUIRE_EQUAL(events.size(), 1u);
    BOOST_TEST(events[0].event == "");  // the type of the undispatched event does not leak
    BOOST_TEST(events[0].data == "x");
    BOOST_TEST(d.events() == 1u);
}

BOOST_AUTO_TEST_CASE(event_type_and_id_fields) {
    sse_decoder d;
    auto events = d.feed("event: update\nid: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\n");
    BOOST_REQUIRE_EQUAL(events.size(), 3u);
    BOOST_TEST(events[0].event == "update");
    BOOST_TEST(events[0].id == "7");
    BOOST_TEST(events[1].event == "");
    BOOST_TEST(events[1].id == "7");  // the last event id persists
    BOOST_TEST(events[2].id == "");   // "id" with no value resets it
    BOOST_TEST(d.last_event_id() == "");
}

BOOST_AUTO_TEST_CASE(an_id_containing_nul_is_ignored) {
    sse_decoder d;
    auto events = d.feed("id: 1\n\nid: a\0b\ndata: x\n\n"sv);
    BOOST_REQUIRE_EQUAL(events.size(), 1u);
    BOOST_TEST(events[0].id == "1");
}

BOOST_AUTO_TEST_CASE(comments_are_counted_and_never_data) {
    sse_decoder d;
    auto events = d.feed(": OPENROUTER PROCESSING\n\n: OPENROUTER PROCESSING\n\ndata: {\"a\":1}\n\n"
                         ": OPENROUTER PROCESSING\n\ndata: {\"a\":2}\n: inside an event\n\n");
    BOOST_REQUIRE_EQUAL(events.size(), 2u);
    BOOST_TEST(events[0].data == "{\"a\":1}");
    BOOST_TEST(events[1].data == "{\"a\":2}");
    BOOST_TEST(d.comments() == 4u);
}

BOOST_AUTO_TEST_CASE(unknown_fields_are_ignored) {
    sse_decoder d;
    auto events = d.feed("foo: bar\nDATA: upper\ndata : spaced\nbaz\ndata: kept\n\n");
    BOOST_REQUIRE_EQUAL(events.size(), 1u);
    BOOST_TEST(events[0].data == "kept");
}

BOOST_AUTO_TEST_CASE(retry_takes_only_ascii_digits_and_saturates) {
    sse_decoder d;
    BOOST_TEST(!d.retry().has_value());
    d.feed("retry: 3000\n\n");
    BOOST_REQUIRE(d.retry().has_value());
    BOOST_TEST(d.retry()->count() == 3000);
    d.feed("retry: 12a\n\nretry:\n\nretry: -5\n\n");
    BOOST_TEST(d.retry()->count() == 3000);
    d.feed("retry: 99999999999999999999999\n\n");
    BOOST_TEST(d.retry()->count() == 1'000'000'000'000);
}

BOOST_AUTO_TEST_CASE(cr_lf_and_crlf_end_lines_alike) {
    std::string const lf = "data: a\ndata: b\n\n: c\n\nevent: e\ndata: d\n\n";
    auto const expected = decode_whole(lf);
    BOOST_TEST(expected == "[event= id= data=a\nb]\n[event=e id= data=d]\n");
    BOOST_TEST(decode_whole(replace_all(lf, "\n", "\r\n")) == expected);
    BOOST_TEST(decode_whole(replace_all(lf, "\n", "\r")) == expected);
    BOOST_TEST(decode_whole("data: a\rdata: b\r\n\n: c\r\r\nevent: e\ndata: d\r\n\r") == expected);  // mixed
}

BOOST_AUTO_TEST_CASE(a_crlf_split_between_cr_and_lf_is_one_line_end) {
    // If the LF after a CR were taken as a second line end, "data: a\r" + "\n"
    // would end the event early; it must not.
    BOOST_TEST(decode_pieces({"data: a\r", "\ndata: b\r", "\n\r", "\n"}) == "[event= id= data=a\nb]\n");
    BOOST_TEST(decode_pieces({"data: a\r", "", "\n", "\r", "\n"}) == "[event= id= data=a]\n");
    // CR CR: a line end then a blank line.
    BOOST_TEST(decode_pieces({"data: a\r", "\r"}) == "[event= id= data=a]\n");
}

BOOST_AUTO_TEST_CASE(a_split_between_the_two_newlines_of_an_event_end) {
    sse_decoder d;
    BOOST_TEST(d.feed("data: a\n").empty());
    auto events = d.feed("\n");
    BOOST_REQUIRE_EQUAL(events.size(), 1u);
    BOOST_TEST(events[0].data == "a");
}

BOOST_AUTO_TEST_CASE(a_split_inside_a_utf8_character_is_harmless) {
    std::string const body = "data: caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\n\n";
    auto const expected = decode_whole(body);
    for (std::size_t cut = 0; cut <= body.size(); ++cut) {
        BOOST_TEST_CONTEXT("cut at " << cut) {
            BOOST_TEST(decode_pieces({std::string_view{body}.substr(0, cut), std::string_view{body}.substr(cut)}) ==
                       expected);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_leading_bom_is_dropped_once_even_when_split) {
    BOOST_TEST(decode_whole("\xEF\xBB\xBF" "data: x\n\n") == "[event= id= data=x]\n");
    BOOST_TEST(decode_pieces({"\xEF", "\xBB", "\xBF" "data: x\n\n"}) == "[event= id= data=x]\n");
    BOOST_TEST(decode_pieces({"", "\xEF\xBB\xBF", "data: x\n\n"}) == "[event= id= data=x]\n");
    // A second BOM is an ordinary byte: "\xEF\xBB\xBF" "data" is an unknown field.
    BOOST_TEST(decode_whole("\xEF\xBB\xBF\xEF\xBB\xBF" "data: x\n\ndata: y\n\n") == "[event= id= data=y]\n");
}

BOOST_AUTO_TEST_CASE(bytes_that_only_start_like_a_bom_are_kept) {
    // Matched across feeds, then a mismatch: the held bytes go back into the line.
    sse_decoder d;
    BOOST_TEST(d.feed("\xEF\xBB").empty());
    BOOST_TEST(render(d.feed("data: x\n\ndata: y\n\n")) == "[event= id= data=y]\n");  // "\xEF\xBB" "data" is unknown
    BOOST_TEST(decode_whole("\xEF" "data: x\n\ndata: y\n\n") == "[event= id= data=y]\n");
    BOOST_TEST(decode_whole("data: z\n\n") == "[event= id= data=z]\n");
}

BOOST_AUTO_TEST_CASE(every_two_way_split_of_a_recorded_stream_gives_the_same_events) {
    auto const body = fixture("stream_tool_calls.sse");
    std::string_view const all = body;
    auto const expected = decode_whole(all);
    std::size_t data_lines = 0;
    for (auto at = body.find("data: "); at != std::string::npos; at = body.find("data: ", at + 1)) {
        ++data_lines;
    }
    BOOST_TEST(data_lines == 13u);  // 12 chunks and [DONE]
    std::size_t events = 0;
    for (auto at = expected.find("[event="); at != std::string::npos; at = expected.find("[event=", at + 1)) {
        ++events;
    }
    BOOST_TEST(events == data_lines);
    for (std::size_t cut = 0; cut <= all.size(); ++cut) {
        auto const got = decode_pieces({all.substr(0, cut), all.substr(cut)});
        if (got != expected) {
            BOOST_TEST(got == expected, "split at byte " << cut);
            break;
        }
    }
}

BOOST_AUTO_TEST_CASE(one_byte_at_a_time_gives_the_same_events) {
    auto const body = fixture("stream_tool_calls.sse");
    std::string_view const all = body;
    std::vector<std::string_view> bytes;
    for (std::size_t i = 0; i < all.size(); ++i) {
        bytes.push_back(all.substr(i, 1));
    }
    BOOST_TEST(decode_pieces(bytes) == decode_whole(all));
    std::string const crlf = replace_all(body, "\n", "\r\n");
    bytes.clear();
    for (std::size_t i = 0; i < crlf.size(); ++i) {
        bytes.push_back(std::string_view{crlf}.substr(i, 1));
    }
    BOOST_TEST(decode_pieces(bytes) == decode_whole(all));
}

BOOST_AUTO_TEST_CASE(an_oversize_line_in_one_feed_is_an_error_state) {
    sse_decoder d{32};
    BOOST_TEST(d.max_event_bytes() == 32u);
    std::vector<sse_event> seen;
    BOOST_TEST(!d.feed("data: " + std::string(40, 'x') + "\n\ndata: after\n\n",
                       [&](sse_event const& e) { seen.push_back(e); }));
    BOOST_TEST((d.error() == sse_error::event_too_large));
    BOOST_TEST(seen.empty());
    BOOST_TEST(!d.feed("data: ok\n\n", [&](sse_event const& e) { seen.push_back(e); }));  // stays failed
    BOOST_TEST(seen.empty());
    BOOST_TEST((d.finish() == sse_end::failed));
}

BOOST_AUTO_TEST_CASE(an_oversize_partial_line_is_an_error_state) {
    sse_decoder d{32};
    BOOST_TEST(d.feed("data: " + std::string(20, 'x')).empty());
    BOOST_TEST((d.error() == sse_error::none));
    BOOST_TEST(d.feed(std::string(20, 'x')).empty());
    BOOST_TEST((d.error() == sse_error::event_too_large));
}

BOOST_AUTO_TEST_CASE(an_event_growing_past_the_limit_over_many_lines_is_an_error_state) {
    sse_decoder d{32};
    BOOST_TEST(d.feed("data: 0123456789\ndata: 0123456789\n").empty());
    BOOST_TEST((d.error() == sse_error::none));
    BOOST_TEST(d.feed("data: 0123456789\n").empty());
    BOOST_TEST((d.error() == sse_error::event_too_large));
}

BOOST_AUTO_TEST_CASE(an_event_exactly_at_the_limit_is_accepted) {
    sse_decoder d{16};
    auto events = d.feed("data: 0123456789\n\n");  // the line is 16 bytes
    BOOST_REQUIRE_EQUAL(events.size(), 1u);
    BOOST_TEST((d.error() == sse_error::none));
}

BOOST_AUTO_TEST_CASE(finish_reports_a_truncated_stream) {
    {
        sse_decoder d;
        d.feed("data: a\n\n: comment\n");
        BOOST_TEST((d.finish() == sse_end::clean));
    }
    {
        sse_decoder d;
        d.feed("data: a\n\ndata: {\"partial");  // cut inside a line
        BOOST_TEST((d.finish() == sse_end::truncated));
    }
    {
        sse_decoder d;
        d.feed("data: a\n\ndata: b\n");  // a complete line, but no blank line
        BOOST_TEST((d.finish() == sse_end::truncated));
        BOOST_TEST((d.finish() == sse_end::clean));  // the partial event was dropped
    }
    {
        sse_decoder d;
        d.feed("data: a\r");  // the CR already ended the line; the event is still open
        BOOST_TEST((d.finish() == sse_end::truncated));
    }
    {
        sse_decoder d;
        d.feed("data: a\r\r");
        BOOST_TEST((d.finish() == sse_end::clean));
    }
    {
        sse_decoder d;
        d.feed("\xEF\xBB");  // only the start of a BOM
        BOOST_TEST((d.finish() == sse_end::truncated));
    }
}

BOOST_AUTO_TEST_CASE(reset_clears_the_error_and_all_state) {
    sse_decoder d{10};
    d.feed(": c\n\nid: 5\nretry: 10\n\ndata: far too long\n\n");
    BOOST_TEST((d.error() == sse_error::event_too_large));
    d.reset();
    BOOST_TEST((d.error() == sse_error::none));
    BOOST_TEST(d.comments() == 0u);
    BOOST_TEST(d.last_event_id() == "");
    BOOST_TEST(!d.retry().has_value());
    BOOST_TEST(d.max_event_bytes() == 10u);
    BOOST_TEST(render(d.feed("data: ok\n\n")) == "[event= id= data=ok]\n");
}

BOOST_AUTO_TEST_CASE(a_feed_without_a_handler_still_counts_events) {
    sse_decoder d;
    BOOST_TEST(d.feed("data: a\n\ndata: b\n\n", sse_decoder::event_handler{}));
    BOOST_TEST(d.events() == 2u);
}

BOOST_AUTO_TEST_SUITE_END()
