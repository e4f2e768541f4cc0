// The ai_conversations / ai_messages repository, every case on SQLite and on
// the PostgreSQL of PARLEY_TEST_PG_URI (through database::run_blocking, on a
// migrated schema).
#include "persistence/conversation_repository.hpp"
#include "persistence/migrations.hpp"
#include "persistence/usage_repository.hpp"

#include "support/pg_database.hpp"

#include <soci/into.h>
#include <soci/session.h>
#include <soci/use.h>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <exception>
#include <memory>
#include <numeric>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

using namespace parley;
using namespace parley::persistence;
using domain::message;
using domain::role;
using domain::tool_call;
namespace chr = std::chrono;
using namespace std::string_literals;
using time_point = chr::system_clock::time_point;

namespace parley::domain {
std::ostream& operator<<(std::ostream& os, tool_call const& c) {
    return os << "{" << c.id << " " << c.name << " " << c.arguments << "}";
}
std::ostream& operator<<(std::ostream& os, message const& m) {
    os << "{" << m.r << " '" << m.content << "' calls=[";
    for (auto const& c : m.tool_calls) {
        os << c;
    }
    return os << "] call_id=" << m.tool_call_id << " name=" << m.name << "}";
}
}  // namespace parley::domain

namespace parley::persistence {
std::ostream& operator<<(std::ostream& os, conversation_info const& c) {
    return os << "{" << c.id << " user=" << c.user_id << " title=" << c.title << " lang=" << c.language
              << " created=" << iso_utc(c.created_at) << " updated=" << iso_utc(c.updated_at) << "}";
}
}  // namespace parley::persistence

namespace {

// 2024-05-01T10:00:00Z, a fixed point for every test.
time_point const t0 = chr::sys_days{chr::year{2024} / chr::May / 1} + chr::hours{10};

// A migrated database of each dialect: a new SQLite file, and the shared
// PostgreSQL database (kept migrated between tests; its tables are emptied).
std::vector<test::test_database> databases() {
    std::vector<test::test_database> dbs;
    auto lite = std::make_shared<test::temp_sqlite_database>();
    dbs.push_back({"sqlite", lite->url(), lite});
    if (auto& pg = test::shared_pg_database(); pg.available()) {
        dbs.push_back({"postgresql", pg.url(), nullptr});
    } else {
        BOOST_TEST_MESSAGE("postgresql " << test::pg_skip_message);
    }
    return dbs;
}

std::shared_ptr<database> open_empty(std::string const& url, std::size_t pool_size) {
    auto db = database::open({url, pool_size});
    db->run_blocking([&](soci::session& sql) {
        migrate(sql, db->kind());
        sql << "DELETE FROM ai_messages";
        sql << "DELETE FROM ai_conversations";
    });
    return db;
}

// Runs body(db) on each database, emptied.
template <class Body>
void on_each_database(Body body) {
    for (auto const& t : databases()) {
        BOOST_TEST_CONTEXT("database " << t.name) {
            auto db = open_empty(t.url, 2);
            body(*db);
        }
    }
}

conversation_info make_conversation(std::string id, time_point at = t0) {
    return {std::move(id), "user-1", "A title", "es", at, at};
}

message make_message(role r, std::string content) {
    message m;
    m.r = r;
    m.content = std::move(content);
    return m;
}

bool create(database& db, conversation_info const& c) {
    return db.run_blocking([&](soci::session& sql) { return create_conversation(sql, db.kind(), c); });
}

std::optional<conversation_info> find(database& db, std::string const& id) {
    return db.run_blocking([&](soci::session& sql) { return find_conversation(sql, db.kind(), id); });
}

int append(database& db, std::string const& id, std::vector<message> const& messages, std::string const& language = "es",
           time_point now = t0) {
    return db.run_blocking(
        [&](soci::session& sql) { return append_messages(sql, db.kind(), id, messages, language, now); });
}

std::vector<message> load(database& db, std::string const& id, std::size_t limit = 1000) {
    return db.run_blocking([&](soci::session& sql) { return load_messages(sql, db.kind(), id, limit); });
}

std::int64_t count(database& db, std::string const& id) {
    return db.run_blocking([&](soci::session& sql) { return count_messages(sql, db.kind(), id); });
}

// The stored seqs of a conversation, in order.
std::vector<int> seqs(database& db, std::string const& id) {
    return db.run_blocking([&](soci::session& sql) {
        std::vector<int> out;
        std::string key = id;
        int seq = 0;
        soci::statement st = (sql.prepare << "SELECT seq FROM ai_messages WHERE conversation_id = :id ORDER BY seq",
                              soci::use(key, "id"), soci::into(seq));
        st.execute();
        while (st.fetch()) {
            out.push_back(seq);
        }
        return out;
    });
}

// A row written by hand (what another version, or a person, might leave).
void insert_raw(database& db, std::string const& id, int seq, std::string const& role_text,
                std::optional<std::string> const& tool_calls) {
    db.run_blocking([&](soci::session& sql) {
        std::string key = id, r = role_text, content = "raw " + std::to_string(seq), calls = tool_calls.value_or("");
        std::string created = iso_utc(t0);
        soci::indicator calls_ind = tool_calls ? soci::i_ok : soci::i_null;
        sql << "INSERT INTO ai_messages (conversation_id, seq, role, content, tool_calls, tool_call_id, created_at)"
               " VALUES (:id, :seq, :role, :content, :calls, NULL, :created)",
            soci::use(key, "id"), soci::use(seq, "seq"), soci::use(r, "role"), soci::use(content, "content"),
            soci::use(calls, calls_ind, "calls"), soci::use(created, "created");
    });
}

}  // namespace

BOOST_AUTO_TEST_SUITE(conversation_repository_suite)

BOOST_AUTO_TEST_CASE(a_conversation_round_trips_with_its_times_to_the_millisecond) {
    on_each_database([](database& db) {
        conversation_info c{"conv-1", "user-7", "Mi título", "en", t0 + chr::microseconds{123'456},
                            t0 + chr::seconds{2} + chr::microseconds{999'999}};
        BOOST_TEST(create(db, c));
        auto got = find(db, "conv-1");
        BOOST_REQUIRE(got.has_value());
        BOOST_TEST(got->id == "conv-1");
        BOOST_TEST(got->user_id == "user-7");
        BOOST_TEST(got->title == "Mi título");
        BOOST_TEST(got->language == "en");
        BOOST_TEST((got->created_at == t0 + chr::milliseconds{123}));
        BOOST_TEST((got->updated_at == t0 + chr::seconds{2} + chr::milliseconds{999}));

        auto untitled = make_conversation("conv-2");
        untitled.title.clear();
        BOOST_TEST(create(db, untitled));
        BOOST_TEST((find(db, "conv-2") == untitled));
        auto nulls = db.run_blocking([](soci::session& sql) {
            long long n = 0;
            sql << "SELECT COUNT(*) FROM ai_conversations WHERE title IS NULL", soci::into(n);
            return n;
        });
        BOOST_TEST(nulls == 1);
    });
}

BOOST_AUTO_TEST_CASE(creating_an_existing_id_changes_nothing_and_returns_false) {
    on_each_database([](database& db) {
        auto const first = make_conversation("conv-1");
        BOOST_TEST(create(db, first));
        auto other = make_conversation("conv-1", t0 + chr::hours{1});
        other.user_id = "someone-else";
        other.title = "Other";
        BOOST_TEST(!create(db, other));
        BOOST_TEST((find(db, "conv-1") == first));
    });
}

BOOST_AUTO_TEST_CASE(a_missing_conversation_is_not_found_and_has_no_messages) {
    on_each_database([](database& db) {
        BOOST_TEST(!find(db, "nope").has_value());
        BOOST_TEST(load(db, "nope").empty());
        BOOST_TEST(count(db, "nope") == 0);
    });
}

BOOST_AUTO_TEST_CASE(messages_of_every_role_round_trip_with_calls_and_call_ids) {
    on_each_database([](database& db) {
        BOOST_TEST(create(db, make_conversation("conv-1")));
        std::vector<message> in;
        in.push_back(make_message(role::system, "Eres un asistente."));
        in.push_back(make_message(role::user, "¿Qué tiempo hace en \"Madrid\"?\nDime."));
        auto calls = make_message(role::assistant, "");
        calls.tool_calls = {{"toolu_1", "get_weather", R"({"city":"Madrid","units":"c"})"},
                            {"toolu_2", "get_time", ""}};
        in.push_back(calls);
        auto result1 = make_message(role::tool, R"({"temp":21})");
        result1.tool_call_id = "toolu_1";
        in.push_back(result1);
        auto result2 = make_message(role::tool, "12:00");
        result2.tool_call_id = "toolu_2";
        in.push_back(result2);
        in.push_back(make_message(role::assistant, "Hace 21 °C."));
        auto named = make_message(role::user, "gracias");
        named.name = "ana";  // not stored
        in.push_back(named);

        BOOST_TEST(append(db, "conv-1", in) == 7);
        auto expected = in;
        expected.back().name.clear();
        auto const got = load(db, "conv-1");
        BOOST_TEST(got == expected, boost::test_tools::per_element());
        BOOST_TEST(count(db, "conv-1") == 7);
        BOOST_TEST(seqs(db, "conv-1") == (std::vector<int>{1, 2, 3, 4, 5, 6, 7}), boost::test_tools::per_element());

        // NULL really is NULL, and each row has the append's time.
        auto stored = db.run_blocking([](soci::session& sql) {
            long long no_calls = 0, no_call_id = 0, at_t0 = 0;
            std::string t = iso_utc(t0);
            sql << "SELECT COUNT(*) FROM ai_messages WHERE tool_calls IS NULL", soci::into(no_calls);
            sql << "SELECT COUNT(*) FROM ai_messages WHERE tool_call_id IS NULL", soci::into(no_call_id);
            sql << "SELECT COUNT(*) FROM ai_messages WHERE created_at = :t", soci::use(t, "t"), soci::into(at_t0);
            return std::vector<long long>{no_calls, no_call_id, at_t0};
        });
        BOOST_TEST(stored == (std::vector<long long>{6, 5, 7}), boost::test_tools::per_element());
    });
}

BOOST_AUTO_TEST_CASE(seq_continues_across_appends_and_load_keeps_the_last_n_in_order) {
    on_each_database([](database& db) {
        BOOST_TEST(create(db, make_conversation("conv-1")));
        BOOST_TEST(create(db, make_conversation("conv-2")));
        BOOST_TEST(append(db, "conv-1", {}) == 0);  // nothing yet, nothing appended
        std::vector<message> batch;
        for (int i = 1; i <= 3; ++i) {
            batch.push_back(make_message(role::user, "m" + std::to_string(i)));
        }
        BOOST_TEST(append(db, "conv-1", batch) == 3);
        BOOST_TEST(append(db, "conv-2", {make_message(role::user, "other")}) == 1);  // its own seqs
        std::vector<message> big;  // more than one multi-row statement
        for (int i = 4; i <= 150; ++i) {
            big.push_back(make_message(i % 2 == 0 ? role::assistant : role::user, "m" + std::to_string(i)));
        }
        BOOST_TEST(append(db, "conv-1", big) == 150);
        BOOST_TEST(append(db, "conv-1", {make_message(role::user, "m151")}) == 151);
        BOOST_TEST(append(db, "conv-1", {}) == 151);

        BOOST_TEST(count(db, "conv-1") == 151);
        BOOST_TEST(count(db, "conv-2") == 1);
        auto const all = load(db, "conv-1");
        BOOST_REQUIRE(all.size() == 151u);
        for (std::size_t i = 0; i != all.size(); ++i) {
            BOOST_TEST_CONTEXT("message " << i) { BOOST_TEST(all[i].content == "m" + std::to_string(i + 1)); }
        }
        auto const last3 = load(db, "conv-1", 3);
        BOOST_REQUIRE(last3.size() == 3u);
        BOOST_TEST(last3[0].content == "m149");
        BOOST_TEST(last3[1].content == "m150");
        BOOST_TEST(last3[2].content == "m151");
        BOOST_TEST(load(db, "conv-1", 0).empty());
        BOOST_TEST(load(db, "conv-2", 10).size() == 1u);
        auto const s = seqs(db, "conv-1");
        BOOST_REQUIRE(s.size() == 151u);
        BOOST_TEST(s.front() == 1);
        BOOST_TEST(s.back() == 151);
    });
}

BOOST_AUTO_TEST_CASE(append_sets_language_and_updated_at_only) {
    on_each_database([](database& db) {
        auto const c = make_conversation("conv-1");
        BOOST_TEST(create(db, c));
        BOOST_TEST(append(db, "conv-1", {make_message(role::user, "hello")}, "en", t0 + chr::milliseconds{5'250}) == 1);
        auto got = find(db, "conv-1");
        BOOST_REQUIRE(got.has_value());
        BOOST_TEST(got->language == "en");
        BOOST_TEST((got->updated_at == t0 + chr::milliseconds{5'250}));
        BOOST_TEST((got->created_at == c.created_at));
        BOOST_TEST(got->user_id == c.user_id);
        BOOST_TEST(got->title == c.title);
        // An empty append still touches the conversation.
        BOOST_TEST(append(db, "conv-1", {}, "es", t0 + chr::seconds{9}) == 1);
        got = find(db, "conv-1");
        BOOST_TEST(got->language == "es");
        BOOST_TEST((got->updated_at == t0 + chr::seconds{9}));
    });
}

BOOST_AUTO_TEST_CASE(appending_to_a_missing_conversation_fails_and_stores_nothing) {
    on_each_database([](database& db) {
        BOOST_CHECK_THROW(append(db, "nope", {make_message(role::user, "x")}), database_error);
        BOOST_TEST(count(db, "nope") == 0);
    });
}

BOOST_AUTO_TEST_CASE(strings_beyond_their_columns_are_cut_and_invalid_utf8_replaced) {
    on_each_database([](database& db) {
        std::string accents;
        for (int i = 0; i != 300; ++i) {
            accents += "\xc3\xa9";  // é: two bytes
        }
        std::string const long_id = std::string(63, 'c') + "\xc3\xa9" + "tail";  // é straddles byte 64
        conversation_info c{long_id, accents, "bad\xff title\x00!"s, "english-long", t0, t0};
        BOOST_TEST(create(db, c));
        auto got = find(db, long_id);  // the id is cut the same way when looked up
        BOOST_REQUIRE(got.has_value());
        BOOST_TEST(got->id == std::string(63, 'c'));
        BOOST_TEST(got->user_id == accents.substr(0, 254));  // 127 whole characters
        BOOST_TEST(got->title == "bad? title?!");
        BOOST_TEST(got->language == "english-");
        BOOST_TEST(find(db, std::string(63, 'c')).has_value());

        auto m = make_message(role::assistant, "con\xc3 tenido\x00."s);
        m.tool_calls = {{"id\xfe", "na\x00me"s, "{\"q\":\"\xed\xa0\x80\"}"}};  // a surrogate is invalid
        auto r = make_message(role::tool, "ok");
        r.tool_call_id = std::string(200, 'x') + accents;
        BOOST_TEST(append(db, long_id, {m, r}, "es-419-long") == 2);
        auto const loaded = load(db, long_id);
        BOOST_REQUIRE(loaded.size() == 2u);
        BOOST_TEST(loaded[0].content == "con? tenido?.");
        BOOST_REQUIRE(loaded[0].tool_calls.size() == 1u);
        BOOST_TEST(loaded[0].tool_calls[0] == (tool_call{"id?", "na?me", "{\"q\":\"???\"}"}));
        BOOST_TEST(loaded[1].tool_call_id == std::string(200, 'x') + accents.substr(0, 54));  // 255 -> 254 bytes
        BOOST_TEST(find(db, long_id)->language == "es-419-l");
    });
}

BOOST_AUTO_TEST_CASE(rows_with_unreadable_calls_load_without_them_and_unknown_roles_are_skipped) {
    on_each_database([](database& db) {
        BOOST_TEST(create(db, make_conversation("conv-1")));
        insert_raw(db, "conv-1", 1, "user", std::nullopt);
        insert_raw(db, "conv-1", 2, "assistant", "{not json");
        insert_raw(db, "conv-1", 3, "assistant", R"([{"id":"a","name":"n"}])");  // no arguments
        insert_raw(db, "conv-1", 4, "assistant", R"({"id":"a","name":"n","arguments":"{}"})");  // not an array
        insert_raw(db, "conv-1", 5, "robot", std::nullopt);
        insert_raw(db, "conv-1", 6, "assistant", R"([{"id":"a","name":"n","arguments":"{}"}])");
        auto const got = load(db, "conv-1");
        BOOST_REQUIRE(got.size() == 5u);
        BOOST_TEST(got[0].content == "raw 1");
        for (std::size_t i = 1; i != 4; ++i) {
            BOOST_TEST_CONTEXT("message " << i) {
                BOOST_TEST((got[i].r == role::assistant));
                BOOST_TEST(got[i].content == "raw " + std::to_string(i + 1));
                BOOST_TEST(got[i].tool_calls.empty());
            }
        }
        BOOST_TEST(got[4].content == "raw 6");
        BOOST_TEST(got[4].tool_calls == (std::vector<tool_call>{{"a", "n", "{}"}}), boost::test_tools::per_element());
        // The skipped row still holds its seq.
        BOOST_TEST(append(db, "conv-1", {make_message(role::user, "next")}) == 7);
        BOOST_TEST(count(db, "conv-1") == 7);
    });
}

BOOST_AUTO_TEST_CASE(deleting_a_conversation_deletes_its_messages) {
    on_each_database([](database& db) {
        BOOST_TEST(create(db, make_conversation("conv-1")));
        BOOST_TEST(create(db, make_conversation("conv-2")));
        BOOST_TEST(append(db, "conv-1", {make_message(role::user, "a"), make_message(role::assistant, "b")}) == 2);
        BOOST_TEST(append(db, "conv-2", {make_message(role::user, "c")}) == 1);
        db.run_blocking([](soci::session& sql) { sql << "DELETE FROM ai_conversations WHERE id = 'conv-1'"; });
        BOOST_TEST(count(db, "conv-1") == 0);
        BOOST_TEST(count(db, "conv-2") == 1);
        BOOST_TEST(!find(db, "conv-1").has_value());
    });
}

// 8 threads x 10 appends to one conversation, through two `database`
// objects on the same database (two processes, in effect): 6 threads share
// a pool of 4 sessions, 2 another. SQLite has one session per database, so
// there the two take turns through BEGIN IMMEDIATE.
BOOST_AUTO_TEST_CASE(concurrent_appends_get_consecutive_seqs) {
    constexpr int threads = 8, appends = 10;
    for (auto const& t : databases()) {
        BOOST_TEST_CONTEXT("database " << t.name) {
            auto a = open_empty(t.url, 4);
            auto b = database::open({t.url, 4});
            BOOST_TEST(create(*a, make_conversation("conv-1")));
            std::vector<std::string> errors(threads);  // checked on this thread (P21)
            std::vector<std::vector<int>> returned(threads);
            std::vector<std::thread> workers;
            for (int k = 0; k != threads; ++k) {
                workers.emplace_back([&, k] {
                    auto& db = k % 4 == 3 ? *b : *a;
                    try {
                        for (int i = 0; i != appends; ++i) {
                            auto const text = std::to_string(k) + ":" + std::to_string(i);
                            returned[k].push_back(append(db, "conv-1", {make_message(role::user, text)}));
                        }
                    } catch (std::exception const& e) {
                        errors[k] = e.what();
                    }
                });
            }
            for (auto& w : workers) {
                w.join();
            }
            for (int k = 0; k != threads; ++k) {
                BOOST_TEST_CONTEXT("thread " << k) {
                    BOOST_TEST(errors[k] == "");
                    BOOST_TEST(std::is_sorted(returned[k].begin(), returned[k].end()));
                }
            }
            std::vector<int> expected(threads * appends);
            std::iota(expected.begin(), expected.end(), 1);
            BOOST_TEST(seqs(*a, "conv-1") == expected, boost::test_tools::per_element());
            std::vector<int> all_returned;
            for (auto const& r : returned) {
                all_returned.insert(all_returned.end(), r.begin(), r.end());
            }
            std::sort(all_returned.begin(), all_returned.end());
            BOOST_TEST(all_returned == expected, boost::test_tools::per_element());
            // Each thread's messages are in its own order.
            auto const loaded = load(*a, "conv-1");
            BOOST_REQUIRE(loaded.size() == expected.size());
            std::vector<int> next(threads, 0);
            for (auto const& m : loaded) {
                auto const colon = m.content.find(':');
                int const k = std::stoi(m.content.substr(0, colon));
                BOOST_TEST(std::stoi(m.content.substr(colon + 1)) == next[k]);
                ++next[k];
            }
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
