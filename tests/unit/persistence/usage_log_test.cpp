// The usage write-ahead log on real files, each test in a fresh temporary
// directory that is removed afterwards.
#include "persistence/usage_log.hpp"

#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using namespace parley::domain;
using namespace parley::persistence;

namespace {

// A fresh directory under the system temporary directory; the log lives in
// its "log" subdirectory, which usage_log::open creates.
struct log_fixture {
    fs::path root;
    fs::path dir;

    log_fixture() {
        std::string pattern = (fs::temp_directory_path() / "parley-usage-log-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) {
            throw std::runtime_error("cannot create a temporary directory from " + pattern);
        }
        root = pattern;
        dir = root / "log";
    }
    ~log_fixture() {
        std::error_code ec;
        fs::remove_all(root, ec);
    }

    std::unique_ptr<usage_log> open(std::uint64_t segment_bytes = 16 * 1024 * 1024) const {
        return usage_log::open(usage_log_options{dir, segment_bytes});
    }

    // The segment files, in name (= sequence) order.
    std::vector<fs::path> segments() const {
        std::vector<fs::path> out;
        for (auto const& e : fs::directory_iterator(dir)) {
            auto const name = e.path().filename().string();
            if (name.starts_with("segment-") && name.ends_with(".log")) {
                out.push_back(e.path());
            }
        }
        std::sort(out.begin(), out.end());
        return out;
    }
};

std::string read_text(fs::path const& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_text(fs::path const& path, std::string const& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
}

void append_text(fs::path const& path, std::string const& text) {
    std::ofstream out(path, std::ios::binary | std::ios::app);
    out << text;
}

std::chrono::system_clock::time_point at_ms(std::int64_t ms) {
    return std::chrono::system_clock::time_point{} + std::chrono::milliseconds{ms};
}

// A usage record that varies every field with i (a null user_id every third).
usage_record sample_usage(int i) {
    usage_record r;
    r.request_id = "req-" + std::to_string(i);
    if (i % 3 != 0) {
        r.user_id = "user-" + std::to_string(i % 7);
    }
    r.session_id = "sess-" + std::to_string(i / 10);
    r.conversation_id = i % 2 == 0 ? "" : "conv-" + std::to_string(i);
    r.input_tokens = 1000 + i;
    r.output_tokens = 200 + 2 * i;
    r.cached_tokens = i % 5;
    r.cost = nano_usd{12'207'123 + i};  // needs all 9 decimals
    r.source = static_cast<cost_source>(i % 3);
    r.model = i % 2 == 0 ? "anthropic/claude-3.5-sonnet" : "openai/gpt-4o";
    r.generation_id = i % 4 == 0 ? "" : "gen-" + std::to_string(1'000'000 + i);
    r.status = static_cast<call_status>(i % 3);
    r.created_at = at_ms(1'718'000'000'123 + i);
    return r;
}

cost_correction sample_correction(int i) { return cost_correction{"req-" + std::to_string(i), nano_usd{999'999'999 + i}}; }

// Compares field by field (for readable failures), then as a whole.
void check_same(log_entry const& got, log_entry const& want) {
    BOOST_TEST_CONTEXT("seq " << want.seq) {
        BOOST_TEST(got.seq == want.seq);
        BOOST_TEST_REQUIRE(got.item.index() == want.item.index());
        if (auto const* w = std::get_if<usage_record>(&want.item)) {
            auto const& g = std::get<usage_record>(got.item);
            BOOST_TEST(g.request_id == w->request_id);
            BOOST_TEST(g.user_id.has_value() == w->user_id.has_value());
            BOOST_TEST(g.user_id.value_or("<null>") == w->user_id.value_or("<null>"));
            BOOST_TEST(g.session_id == w->session_id);
            BOOST_TEST(g.conversation_id == w->conversation_id);
            BOOST_TEST(g.input_tokens == w->input_tokens);
            BOOST_TEST(g.output_tokens == w->output_tokens);
            BOOST_TEST(g.cached_tokens == w->cached_tokens);
            BOOST_TEST(g.cost == w->cost);
            BOOST_TEST(to_string(g.source) == to_string(w->source));
            BOOST_TEST(g.model == w->model);
            BOOST_TEST(g.generation_id == w->generation_id);
            BOOST_TEST(to_string(g.status) == to_string(w->status));
            BOOST_TEST(g.created_at.time_since_epoch().count() == w->created_at.time_since_epoch().count());
        } else {
            auto const& wc = std::get<cost_correction>(want.item);
            auto const& gc = std::get<cost_correction>(got.item);
            BOOST_TEST(gc.request_id == wc.request_id);
            BOOST_TEST(gc.cost == wc.cost);
        }
        BOOST_TEST((got == want));
    }
}

void check_same(std::vector<log_entry> const& got, std::vector<log_entry> const& want) {
    BOOST_TEST_REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i != got.size(); ++i) {
        check_same(got[i], want[i]);
    }
}

std::vector<std::uint64_t> seqs(std::vector<log_entry> const& entries) {
    std::vector<std::uint64_t> out;
    for (auto const& e : entries) {
        out.push_back(e.seq);
    }
    return out;
}

// A predicate for BOOST_CHECK_EXCEPTION: the message contains every part.
auto message_has(std::vector<std::string> parts) {
    return [parts = std::move(parts)](usage_log_error const& e) {
        std::string_view const what = e.what();
        for (auto const& p : parts) {
            if (what.find(p) == std::string_view::npos) {
                BOOST_TEST_MESSAGE("message \"" << what << "\" lacks \"" << p << "\"");
                return false;
            }
        }
        return true;
    };
}

// An independent bitwise CRC-32 (IEEE), to check the file format.
std::uint32_t reference_crc32(std::string_view data) {
    std::uint32_t c = 0xFFFFFFFFu;
    for (unsigned char b : data) {
        c ^= b;
        for (int k = 0; k != 8; ++k) {
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
        }
    }
    return ~c;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(usage_log_suite)

BOOST_FIXTURE_TEST_CASE(entries_read_back_equal_after_reopen, log_fixture) {
    std::vector<log_entry> want;
    {
        auto log = open();
        BOOST_TEST(log->dir() == dir);
        BOOST_TEST(fs::is_directory(dir));
        BOOST_TEST(log->last_seq() == 0u);
        BOOST_TEST(log->read_after(0, 100).empty());

        auto odd = sample_usage(3);  // a null user_id
        BOOST_TEST_REQUIRE(!odd.user_id.has_value());
        odd.request_id = "req \"quoted\" \\ back\nslash\ttab \x01 ñandú \xff\xfe";  // JSON escapes, raw UTF-8, invalid UTF-8
        odd.model = "mistral/ministral-8b";
        odd.cost = nano_usd{1};             // 0.000000001
        odd.created_at = at_ms(-1'234);     // before the epoch, to the ms
        std::vector<log_item> const items{sample_usage(1), sample_correction(1), odd, sample_usage(4),
                                          cost_correction{"req-9", nano_usd{0}}};
        for (std::size_t i = 0; i != items.size(); ++i) {
            BOOST_TEST(log->append(items[i]) == i + 1);
            want.push_back(log_entry{i + 1, items[i]});
        }
        log->sync();
        BOOST_TEST(log->last_seq() == 5u);
        check_same(log->read_after(0, 100), want);  // before the reopen too
    }
    auto log = open();
    BOOST_TEST(log->corrupt_lines() == 0u);
    BOOST_TEST(log->last_seq() == 5u);
    BOOST_TEST(log->checkpointed() == 0u);
    BOOST_TEST(log->segment_count() == 1u);
    check_same(log->read_after(0, 100), want);
}

BOOST_FIXTURE_TEST_CASE(line_format_is_crc32_space_json, log_fixture) {
    auto log = open();
    log->append(cost_correction{"req-1", nano_usd{12'207'000}});
    auto const files = segments();
    BOOST_TEST_REQUIRE(files.size() == 1u);
    BOOST_TEST(files[0].filename().string() == "segment-00000000000000000001.log");
    std::string const text = read_text(files[0]);
    std::string const json = R"({"seq":1,"kind":"correction","request_id":"req-1","cost":"0.012207000"})";
    char crc[9];
    std::snprintf(crc, sizeof crc, "%08x", reference_crc32(json));
    BOOST_TEST(text == std::string(crc) + " " + json + "\n");
    BOOST_TEST(reference_crc32("123456789") == 0xCBF43926u);  // the reference itself is CRC-32/IEEE
}

BOOST_FIXTURE_TEST_CASE(batch_append_numbers_consecutively_in_one_segment, log_fixture) {
    auto log = open();
    std::vector<log_item> const batch{sample_usage(1), sample_usage(2), sample_correction(1)};
    BOOST_TEST(log->append(batch) == 1u);
    BOOST_TEST(log->append(batch) == 4u);
    BOOST_TEST(log->append(std::span<log_item const>{}) == 7u);  // nothing written
    BOOST_TEST(log->last_seq() == 6u);
    auto const got = log->read_after(0, 100);
    BOOST_TEST(seqs(got) == (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6}), boost::test_tools::per_element());
    check_same(got[4], log_entry{5, batch[1]});
    auto const files = segments();
    BOOST_TEST_REQUIRE(files.size() == 1u);
    auto const text = read_text(files[0]);
    BOOST_TEST(std::count(text.begin(), text.end(), '\n') == 6);
}

BOOST_FIXTURE_TEST_CASE(checkpoint_then_reopen_replays_only_later_entries, log_fixture) {
    {
        auto log = open();
        for (int i = 1; i <= 10; ++i) {
            log->append(sample_usage(i));
        }
        log->checkpoint(6);
        BOOST_TEST(log->checkpointed() == 6u);
        BOOST_TEST(log->backlog() == 4u);
        BOOST_TEST(read_text(dir / "checkpoint") == "6\n");
        BOOST_TEST(!fs::exists(dir / "checkpoint.tmp"));
    }
    auto log = open();
    BOOST_TEST(log->checkpointed() == 6u);
    BOOST_TEST(log->last_seq() == 10u);
    BOOST_TEST(log->backlog() == 4u);
    auto const got = log->read_after(log->checkpointed(), 100);
    BOOST_TEST_REQUIRE(got.size() == 4u);
    for (int i = 0; i != 4; ++i) {
        check_same(got[i], log_entry{static_cast<std::uint64_t>(7 + i), sample_usage(7 + i)});
    }
}

BOOST_FIXTURE_TEST_CASE(sequence_numbers_continue_after_reopen, log_fixture) {
    {
        auto log = open();
        log->append(sample_usage(1));
        log->append(sample_usage(2));
    }
    {
        auto log = open();
        BOOST_TEST(log->append(sample_usage(3)) == 3u);
        BOOST_TEST(log->segment_count() == 1u);  // the clean last segment is appended to
    }
    auto log = open();
    BOOST_TEST(log->last_seq() == 3u);
    BOOST_TEST(seqs(log->read_after(0, 10)) == (std::vector<std::uint64_t>{1, 2, 3}), boost::test_tools::per_element());
}

BOOST_FIXTURE_TEST_CASE(sequence_numbers_continue_after_the_checkpoint_when_no_segment_is_left, log_fixture) {
    {
        auto log = open(1);  // every append starts a segment
        for (int i = 1; i <= 3; ++i) {
            log->append(sample_correction(i));
        }
    }
    {
        // Reopened, the full last segment is not appended to, so a
        // checkpoint covering everything deletes every segment.
        auto log = open(1);
        log->checkpoint(3);
        BOOST_TEST(log->segment_count() == 0u);
        BOOST_TEST(segments().empty());
    }
    auto log = open(1);
    BOOST_TEST(log->checkpointed() == 3u);
    BOOST_TEST(log->last_seq() == 3u);
    BOOST_TEST(log->backlog() == 0u);
    BOOST_TEST(log->append(sample_correction(4)) == 4u);
    check_same(log->read_after(3, 10), std::vector<log_entry>{{4, sample_correction(4)}});
}

BOOST_FIXTURE_TEST_CASE(segments_roll_and_checkpoint_deletes_covered_ones_but_never_the_current, log_fixture) {
    {
        auto log = open(1);
        for (int i = 1; i <= 5; ++i) {
            BOOST_TEST(log->append(sample_correction(i)) == static_cast<std::uint64_t>(i));
        }
        BOOST_TEST(log->segment_count() == 5u);
        auto files = segments();
        BOOST_TEST_REQUIRE(files.size() == 5u);
        BOOST_TEST(files[0].filename().string() == "segment-00000000000000000001.log");
        BOOST_TEST(files[4].filename().string() == "segment-00000000000000000005.log");

        log->checkpoint(3);
        BOOST_TEST(log->segment_count() == 2u);
        files = segments();
        BOOST_TEST_REQUIRE(files.size() == 2u);
        BOOST_TEST(files[0].filename().string() == "segment-00000000000000000004.log");

        log->checkpoint(5);  // covers the current segment too: it stays
        BOOST_TEST(log->segment_count() == 1u);
        files = segments();
        BOOST_TEST_REQUIRE(files.size() == 1u);
        BOOST_TEST(files[0].filename().string() == "segment-00000000000000000005.log");
        check_same(log->read_after(0, 10), std::vector<log_entry>{{5, sample_correction(5)}});
        BOOST_TEST(log->read_after(5, 10).empty());
    }
    auto log = open(1);
    BOOST_TEST(log->checkpointed() == 5u);
    BOOST_TEST(log->last_seq() == 5u);
    BOOST_TEST(log->append(sample_correction(6)) == 6u);
    BOOST_TEST(log->segment_count() == 2u);
    log->checkpoint(6);
    BOOST_TEST(log->segment_count() == 1u);
    BOOST_TEST(segments().back().filename().string() == "segment-00000000000000000006.log");
}

BOOST_FIXTURE_TEST_CASE(segments_roll_at_the_size_limit, log_fixture) {
    std::uint64_t const limit = 2000;  // about five usage lines
    {
        auto log = open(limit);
        for (int i = 1; i <= 40; ++i) {
            log->append(sample_usage(i));
        }
        BOOST_TEST(log->segment_count() > 4u);
        BOOST_TEST(log->segment_count() == segments().size());
    }
    auto const files = segments();
    for (std::size_t i = 0; i + 1 < files.size(); ++i) {
        auto const size = fs::file_size(files[i]);
        BOOST_TEST(size >= limit);
        BOOST_TEST(size < limit + 1000);  // one line past the limit at most
    }
    auto log = open(limit);
    auto const got = log->read_after(0, 100);
    BOOST_TEST_REQUIRE(got.size() == 40u);
    for (int i = 0; i != 40; ++i) {
        check_same(got[i], log_entry{static_cast<std::uint64_t>(i + 1), sample_usage(i + 1)});
    }
    // A checkpoint in the middle of a segment keeps that segment.
    log->checkpoint(22);
    auto const left = log->read_after(0, 100);
    BOOST_TEST_REQUIRE(!left.empty());
    BOOST_TEST(left.front().seq <= 23u);
    BOOST_TEST(left.back().seq == 40u);
    BOOST_TEST(seqs(log->read_after(22, 100)).size() == 18u);
}

BOOST_FIXTURE_TEST_CASE(torn_last_line_is_counted_and_the_next_append_goes_to_a_new_segment, log_fixture) {
    {
        auto log = open();
        for (int i = 1; i <= 3; ++i) {
            log->append(sample_usage(i));
        }
    }
    auto const files = segments();
    BOOST_TEST_REQUIRE(files.size() == 1u);
    fs::resize_file(files[0], fs::file_size(files[0]) - 7);  // a crash in the middle of the last write
    {
        auto log = open();
        BOOST_TEST(log->corrupt_lines() == 1u);
        BOOST_TEST(log->last_seq() == 2u);
        check_same(log->read_after(0, 10),
                   std::vector<log_entry>{{1, sample_usage(1)}, {2, sample_usage(2)}});
        BOOST_TEST(log->append(sample_usage(30)) == 3u);
        BOOST_TEST(log->segment_count() == 2u);
        BOOST_TEST(segments().back().filename().string() == "segment-00000000000000000003.log");
    }
    auto log = open();
    BOOST_TEST(log->corrupt_lines() == 1u);  // still there, never appended to
    check_same(log->read_after(0, 10),
               std::vector<log_entry>{{1, sample_usage(1)}, {2, sample_usage(2)}, {3, sample_usage(30)}});
    BOOST_TEST(log->append(sample_usage(31)) == 4u);
    BOOST_TEST(log->segment_count() == 2u);  // the clean new segment is appended to
}

BOOST_FIXTURE_TEST_CASE(garbage_after_the_last_line_is_counted, log_fixture) {
    {
        auto log = open();
        log->append(sample_usage(1));
        log->append(sample_usage(2));
    }
    append_text(segments().front(), "deadbeef {\"seq\":3,\"kind\":\"correction\"}\n");  // a wrong checksum
    {
        auto log = open();
        BOOST_TEST(log->corrupt_lines() == 1u);
        BOOST_TEST(log->last_seq() == 2u);
        BOOST_TEST(seqs(log->read_after(0, 10)) == (std::vector<std::uint64_t>{1, 2}), boost::test_tools::per_element());
        BOOST_TEST(log->append(sample_correction(3)) == 3u);
        BOOST_TEST(log->segment_count() == 2u);
    }
    auto log = open();
    check_same(log->read_after(2, 10), std::vector<log_entry>{{3, sample_correction(3)}});
}

BOOST_FIXTURE_TEST_CASE(segment_holding_only_a_torn_line_is_replaced, log_fixture) {
    {
        auto log = open(1);
        log->append(sample_correction(1));
        log->append(sample_correction(2));
    }
    auto const files = segments();
    BOOST_TEST_REQUIRE(files.size() == 2u);
    fs::resize_file(files[1], fs::file_size(files[1]) / 2);  // segment 2's only line is torn
    auto log = open(1);
    BOOST_TEST(log->corrupt_lines() == 1u);
    BOOST_TEST(log->last_seq() == 1u);
    BOOST_TEST(log->append(sample_correction(20)) == 2u);  // a fresh segment-...2 replaces the torn one
    BOOST_TEST(log->segment_count() == 2u);
    check_same(log->read_after(0, 10), std::vector<log_entry>{{1, sample_correction(1)}, {2, sample_correction(20)}});
}

BOOST_FIXTURE_TEST_CASE(corrupted_checksum_in_the_middle_ends_that_segment, log_fixture) {
    {
        auto log = open(1200);  // a few lines per segment
        for (int i = 1; i <= 12; ++i) {
            log->append(sample_usage(i));
        }
        BOOST_TEST_REQUIRE(log->segment_count() >= 3u);
    }
    auto const files = segments();
    // Flip one checksum digit of the second line of the first segment.
    std::string text = read_text(files[0]);
    auto const second = text.find('\n') + 1;
    BOOST_TEST_REQUIRE(text.find('\n', second) != std::string::npos);
    text[second] = text[second] == '0' ? '1' : '0';
    write_text(files[0], text);

    auto log = open(1200);
    BOOST_TEST(log->corrupt_lines() == 1u);
    BOOST_TEST(log->last_seq() == 12u);
    auto const got = log->read_after(0, 100);
    BOOST_TEST_REQUIRE(!got.empty());
    check_same(got.front(), log_entry{1, sample_usage(1)});
    // The rest of the first segment is lost; the later segments are read.
    BOOST_TEST_REQUIRE(got.size() >= 2u);
    BOOST_TEST(got[1].seq > 2u);
    BOOST_TEST(got.back().seq == 12u);
    for (auto const& e : got) {
        check_same(e, log_entry{e.seq, sample_usage(static_cast<int>(e.seq))});
    }
    BOOST_TEST(log->append(sample_usage(13)) == 13u);
}

BOOST_FIXTURE_TEST_CASE(a_second_open_of_the_same_directory_is_refused, log_fixture) {
    auto first = open();
    first->append(sample_usage(1));
    BOOST_CHECK_EXCEPTION(open(), usage_log_error, message_has({dir.string(), "in use by another process"}));
    first->append(sample_usage(2));  // the first is unharmed
    first.reset();
    auto again = open();  // the lock went with the first
    BOOST_TEST(again->last_seq() == 2u);
}

BOOST_FIXTURE_TEST_CASE(a_directory_that_cannot_be_created_is_an_error_naming_it, log_fixture) {
    fs::create_directories(root);
    write_text(root / "plain-file", "x");
    auto const bad = root / "plain-file" / "log";
    BOOST_CHECK_EXCEPTION(usage_log::open(usage_log_options{bad}), usage_log_error,
                          message_has({"cannot create directory", bad.string(), "Not a directory"}));
    BOOST_CHECK_EXCEPTION(usage_log::open(usage_log_options{root / "plain-file"}), usage_log_error,
                          message_has({(root / "plain-file").string()}));
}

BOOST_FIXTURE_TEST_CASE(an_unparsable_checkpoint_is_an_error, log_fixture) {
    {
        auto log = open();
        log->append(sample_usage(1));
    }
    for (std::string const bad : {"", "12x\n", "-1\n", " 3\n", "99999999999999999999999\n"}) {
        BOOST_TEST_CONTEXT("checkpoint \"" << bad << "\"") {
            write_text(dir / "checkpoint", bad);
            BOOST_CHECK_EXCEPTION(open(), usage_log_error,
                                  message_has({"unparsable checkpoint", (dir / "checkpoint").string()}));
        }
    }
    write_text(dir / "checkpoint", "1");  // the newline is optional
    BOOST_TEST(open()->checkpointed() == 1u);
}

BOOST_FIXTURE_TEST_CASE(read_after_honours_after_and_max, log_fixture) {
    auto log = open(3000);
    for (int i = 1; i <= 50; ++i) {
        log->append(sample_usage(i));
    }
    BOOST_TEST_REQUIRE(log->segment_count() > 2u);
    BOOST_TEST(log->read_after(0, 0).empty());
    BOOST_TEST(seqs(log->read_after(0, 3)) == (std::vector<std::uint64_t>{1, 2, 3}), boost::test_tools::per_element());
    BOOST_TEST(seqs(log->read_after(48, 10)) == (std::vector<std::uint64_t>{49, 50}), boost::test_tools::per_element());
    BOOST_TEST(log->read_after(50, 10).empty());
    BOOST_TEST(log->read_after(1000, 10).empty());
    // Paging through everything, across segment boundaries.
    std::vector<log_entry> all;
    for (std::uint64_t after = 0;;) {
        auto page = log->read_after(after, 7);
        if (page.empty()) {
            break;
        }
        BOOST_TEST(page.size() <= 7u);
        BOOST_TEST(page.front().seq == after + 1);
        after = page.back().seq;
        all.insert(all.end(), page.begin(), page.end());
    }
    BOOST_TEST_REQUIRE(all.size() == 50u);
    for (int i = 0; i != 50; ++i) {
        check_same(all[i], log_entry{static_cast<std::uint64_t>(i + 1), sample_usage(i + 1)});
    }
}

BOOST_FIXTURE_TEST_CASE(checkpoint_bounds_and_backlog, log_fixture) {
    auto log = open();
    BOOST_TEST(log->backlog() == 0u);
    BOOST_CHECK_EXCEPTION(log->checkpoint(1), usage_log_error, message_has({"beyond the last sequence number"}));
    for (int i = 1; i <= 4; ++i) {
        log->append(sample_correction(i));
    }
    BOOST_TEST(log->backlog() == 4u);
    BOOST_CHECK_EXCEPTION(log->checkpoint(5), usage_log_error, message_has({"checkpoint 5", "(4)"}));
    BOOST_TEST(log->checkpointed() == 0u);
    log->checkpoint(3);
    BOOST_TEST(log->backlog() == 1u);
    log->checkpoint(2);  // below the checkpoint: ignored
    BOOST_TEST(log->checkpointed() == 3u);
    BOOST_TEST(read_text(dir / "checkpoint") == "3\n");
    log->checkpoint(4);
    BOOST_TEST(log->backlog() == 0u);
    log->append(sample_correction(5));
    BOOST_TEST(log->backlog() == 1u);
}

BOOST_FIXTURE_TEST_CASE(an_oversized_entry_is_refused_and_leaves_no_trace, log_fixture) {
    auto log = open();
    log->append(sample_usage(1));
    auto big = sample_usage(2);
    big.model = std::string(usage_log_max_entry_bytes, 'm');
    std::vector<log_item> const batch{sample_usage(3), big};
    BOOST_CHECK_EXCEPTION(log->append(batch), usage_log_error, message_has({"req-2", "65536"}));
    BOOST_TEST(log->last_seq() == 1u);
    BOOST_TEST(log->append(sample_usage(4)) == 2u);
    log.reset();
    log = open();
    BOOST_TEST(log->corrupt_lines() == 0u);
    check_same(log->read_after(0, 10), std::vector<log_entry>{{1, sample_usage(1)}, {2, sample_usage(4)}});
}

// RLIMIT_FSIZE makes write(2) fail with EFBIG past a size (SIGXFSZ ignored):
// a real short write followed by an error, without a full disk.
BOOST_FIXTURE_TEST_CASE(a_failed_write_is_cut_off_and_its_numbers_given_again, log_fixture) {
    auto log = open();
    log->append(sample_usage(1));
    auto const files = segments();
    BOOST_TEST_REQUIRE(files.size() == 1u);
    auto const size = fs::file_size(files[0]);

    std::string error;
    {
        struct restore {
            rlimit saved{};
            void (*old_handler)(int) = nullptr;
            restore() {
                old_handler = ::signal(SIGXFSZ, SIG_IGN);
                ::getrlimit(RLIMIT_FSIZE, &saved);
            }
            ~restore() {
                ::setrlimit(RLIMIT_FSIZE, &saved);
                ::signal(SIGXFSZ, old_handler);
            }
        } guard;
        rlimit limited = guard.saved;
        limited.rlim_cur = size + 600;  // the first line of the batch fits, the second does not
        BOOST_TEST_REQUIRE(::setrlimit(RLIMIT_FSIZE, &limited) == 0);
        // No Boost.Test output while the limit is on: its log may be a file.
        try {
            std::vector<log_item> const batch{sample_usage(2), sample_usage(3)};
            log->append(batch);
        } catch (usage_log_error const& e) {
            error = e.what();
        }
    }
    BOOST_TEST(error.find(files[0].string()) != std::string::npos, error);
    BOOST_TEST(error.find("File too large") != std::string::npos, error);
    BOOST_TEST(fs::file_size(files[0]) == size);  // the partial batch is cut off
    BOOST_TEST(log->last_seq() == 1u);

    std::vector<log_item> const batch{sample_usage(20), sample_usage(30)};
    BOOST_TEST(log->append(batch) == 2u);
    BOOST_TEST(log->segment_count() == 2u);  // later appends go to a new segment
    log->sync();
    log.reset();
    log = open();
    BOOST_TEST(log->corrupt_lines() == 0u);
    check_same(log->read_after(0, 10),
               std::vector<log_entry>{{1, sample_usage(1)}, {2, sample_usage(20)}, {3, sample_usage(30)}});
}

BOOST_FIXTURE_TEST_CASE(sync_runs_concurrently_with_appends, log_fixture) {
    constexpr int count = 3000;
    {
        auto log = open(8 * 1024);  // rolls often, so syncs see several segments and new directory entries
        std::atomic<bool> started{false};
        std::atomic<bool> done{false};
        std::atomic<int> syncs{0};
        std::string sync_error;
        std::thread syncer([&] {
            started = true;
            try {
                do {
                    log->sync();
                    ++syncs;
                } while (!done.load());
            } catch (std::exception const& e) {
                sync_error = e.what();
            }
        });
        while (!started.load()) {
            std::this_thread::yield();
        }
        for (int i = 1; i <= count; ++i) {
            log->append(i % 2 == 0 ? log_item{sample_usage(i)} : log_item{sample_correction(i)});
        }
        done = true;
        syncer.join();
        log->sync();
        BOOST_TEST(sync_error.empty(), sync_error);
        BOOST_TEST(syncs.load() > 0);
        BOOST_TEST(log->last_seq() == static_cast<std::uint64_t>(count));
    }
    auto log = open(8 * 1024);
    BOOST_TEST(log->corrupt_lines() == 0u);
    auto const got = log->read_after(0, count + 10);
    BOOST_TEST_REQUIRE(got.size() == static_cast<std::size_t>(count));
    for (int i = 1; i <= count; ++i) {
        auto const want = i % 2 == 0 ? log_item{sample_usage(i)} : log_item{sample_correction(i)};
        if (!(got[i - 1] == log_entry{static_cast<std::uint64_t>(i), want})) {
            check_same(got[i - 1], log_entry{static_cast<std::uint64_t>(i), want});
            break;
        }
    }
}

BOOST_FIXTURE_TEST_CASE(ten_thousand_entries_read_back, log_fixture) {
    constexpr int count = 10'000;
    {
        auto log = open(1024 * 1024);
        std::vector<log_item> batch;
        for (int i = 1; i <= count; ++i) {
            batch.push_back(sample_usage(i));
            if (batch.size() == 100) {
                log->append(batch);
                batch.clear();
            }
        }
        log->sync();
        BOOST_TEST(log->last_seq() == static_cast<std::uint64_t>(count));
        BOOST_TEST(log->segment_count() > 1u);
    }
    auto log = open(1024 * 1024);
    BOOST_TEST(log->corrupt_lines() == 0u);
    BOOST_TEST(log->backlog() == static_cast<std::uint64_t>(count));
    auto const got = log->read_after(0, count);
    BOOST_TEST_REQUIRE(got.size() == static_cast<std::size_t>(count));
    int mismatches = 0;
    for (int i = 1; i <= count; ++i) {
        if (!(got[i - 1] == log_entry{static_cast<std::uint64_t>(i), sample_usage(i)})) {
            if (mismatches++ == 0) {
                check_same(got[i - 1], log_entry{static_cast<std::uint64_t>(i), sample_usage(i)});
            }
        }
    }
    BOOST_TEST(mismatches == 0);
    log->checkpoint(count);
    BOOST_TEST(log->segment_count() <= 1u);  // at most the current one is kept
}

BOOST_AUTO_TEST_SUITE_END()
