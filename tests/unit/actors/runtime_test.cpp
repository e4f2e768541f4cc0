// The actor runtime's contract, one behaviour per test, on a single-threaded
// io_context (io_fixture): handler order, backpressure, ask/reply errors,
// timeouts, handler exceptions, stop and quit semantics.
#include "actors/runtime.hpp"
#include "support/io_fixture.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/test/unit_test.hpp>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
namespace asio = parley::asio;
namespace actors = parley::actors;
using parley::task;
using parley::use_nothrow;
using actors::error_code;
using actors::result;

error_code const stopped_ec = make_error_code(parley::errc::actor_stopped);
error_code const timed_out_ec = make_error_code(asio::error::timed_out);

template <class T>
error_code error_of(result<T> const& r) {
    return r.has_error() ? r.error() : error_code{};
}

// Lets the test park the actor inside a handler and release it.
struct gate {
    explicit gate(asio::any_io_executor ex) : entered{ex, 16}, open{ex, 16} {}
    asio::experimental::concurrent_channel<void(error_code)> entered;  // the handler is parked
    asio::experimental::concurrent_channel<void(error_code)> open;     // one token per parked handler
};

// Messages of the test actor.
struct note { int v; };                                            // tell: record v
struct park {};                                                    // tell: wait on the gate
struct fetch { actors::reply<std::vector<int>> reply_to; };       // what was recorded
struct echo { int v; actors::reply<int> reply_to; };               // answer v
struct refuse { error_code ec; actors::reply<int> reply_to; };     // answer an error
struct ignore { actors::reply<int> reply_to; };                    // never answer
struct stash { actors::reply<int> reply_to; };                     // keep the slot for later
struct unstash { int v; };                                         // answer the kept slot late
struct boom { bool async; actors::reply<int> reply_to; };         // throw
struct nap { std::chrono::milliseconds d; };                       // coroutine handler with a timer
struct leave {};                                                   // quit()

class probe final : public actors::actor<probe, note, park, fetch, echo, refuse, ignore, stash, unstash, boom, nap, leave> {
public:
    probe(asio::any_io_executor ex, std::size_t capacity, std::shared_ptr<gate> g = nullptr)
        : actor{std::move(ex), {.capacity = capacity, .name = "probe"}}, gate_{std::move(g)} {}

    task<result<void>> record(int v) { return tell(note{v}); }
    bool try_record(int v) { return try_tell(note{v}); }
    task<result<void>> hold() { return tell(park{}); }
    task<result<std::vector<int>>> seen() { return ask(fetch{}); }
    task<result<int>> echo_back(int v) { return ask(echo{v, {}}); }
    task<result<int>> refuse_with(error_code ec) { return ask(refuse{ec, {}}); }
    task<result<int>> ignored() { return ask(ignore{}); }
    task<result<int>> stashed(std::chrono::milliseconds timeout) { return ask(stash{}, timeout); }
    task<result<void>> answer_stash(int v) { return tell(unstash{v}); }
    task<result<int>> explode(bool async) { return ask(boom{async, {}}); }
    task<result<void>> sleep(std::chrono::milliseconds d) { return tell(nap{d}); }
    task<result<void>> quit_next() { return tell(leave{}); }

private:
    friend actor;

    void on(note& m) { seen_.push_back(m.v); }
    task<void> on(park&) {
        seen_.push_back(0);
        gate_->entered.try_send(error_code{});
        co_await gate_->open.async_receive(use_nothrow);
    }
    void on(fetch& m) { m.reply_to.set(seen_); }
    void on(echo& m) {
        seen_.push_back(m.v);
        m.reply_to.set(m.v);
    }
    void on(refuse& m) { m.reply_to.fail(m.ec); }
    void on(ignore&) {}
    void on(stash& m) { stash_ = std::move(m.reply_to); }
    void on(unstash& m) { stash_.set(m.v); }  // its asker may have timed out: must not block
    task<void> on(boom& m) {
        if (m.async) {
            co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
        }
        throw std::runtime_error{"kaboom"};
    }
    task<void> on(nap& m) {
        seen_.push_back(-1);
        asio::steady_timer t{co_await asio::this_coro::executor, m.d};
        co_await t.async_wait(asio::use_awaitable);
        seen_.push_back(-2);
    }
    void on(leave&) { quit(); }

    std::shared_ptr<gate> gate_;
    std::vector<int> seen_;
    actors::reply<int> stash_;
};

// Runs f in its own coroutine and reports its completion on `done`.
template <class F>
void launch(asio::io_context& ioc, F f, std::shared_ptr<asio::experimental::concurrent_channel<void(error_code)>> done,
            std::vector<std::exception_ptr>& errors) {
    asio::co_spawn(ioc, std::move(f), [done, &errors](std::exception_ptr e) {
        if (e) {
            errors.push_back(e);
        }
        done->try_send(error_code{});
    });
}

task<void> sleep_for(std::chrono::milliseconds d) {
    asio::steady_timer t{co_await asio::this_coro::executor, d};
    co_await t.async_wait(asio::use_awaitable);
}

// The caller co_awaits at once and owns *out (STYLE 2.3).
task<void> record_into(std::shared_ptr<probe> a, int v, std::optional<result<void>>* out) {
    *out = co_await a->record(v);
}

struct fixture : parley::test::io_fixture {
    std::shared_ptr<asio::experimental::concurrent_channel<void(error_code)>> done =
        std::make_shared<asio::experimental::concurrent_channel<void(error_code)>>(ioc, 64);
    std::vector<std::exception_ptr> errors;

    task<void> wait_done(int n) {
        for (int i = 0; i < n; ++i) {
            co_await done->async_receive(asio::use_awaitable);
        }
    }
    ~fixture() {
        for (auto const& e : errors) {
            try {
                std::rethrow_exception(e);
            } catch (std::exception const& ex) {
                BOOST_ERROR("a spawned coroutine threw: " << ex.what());
            }
        }
    }
};

// Swaps spdlog's default logger for one writing into memory.
struct captured_log {
    std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(32);
    std::shared_ptr<spdlog::logger> previous = spdlog::default_logger();
    captured_log() { spdlog::set_default_logger(std::make_shared<spdlog::logger>("captured", sink)); }
    ~captured_log() { spdlog::set_default_logger(previous); }
    std::string text() const {
        std::string all;
        for (auto const& line : sink->last_formatted()) {
            all += line;
        }
        return all;
    }
};

}  // namespace

// The example at the top of runtime.hpp, verbatim.
namespace doc_example {
namespace asio = parley::asio;
using parley::task;

namespace actors = parley::actors;
struct add { int n; };                                  // a tell
struct total { actors::reply<int> reply_to; };          // an ask: its reply slot is `reply_to`
struct doze { std::chrono::milliseconds d; };

class counter final : public actors::actor<counter, add, total, doze> {
public:
    explicit counter(asio::any_io_executor ex)
        : actor{std::move(ex), {.capacity = 64, .name = "counter"}} {}
    // The facade: what callers use. Each call owns its arguments (STYLE 2.3).
    task<actors::result<void>> increase(int n) { return tell(add{n}); }
    task<actors::result<void>> sleep(std::chrono::milliseconds d) { return tell(doze{d}); }
    task<actors::result<int>> value() { return ask(total{}, std::chrono::seconds(1)); }
private:
    friend actor;                                       // lets the runtime call on()
    void on(add& m) { total_ += m.n; }                  // a synchronous handler
    void on(total& m) { m.reply_to.set(total_); }
    task<void> on(doze& m) {                            // a coroutine handler: the mailbox
        asio::steady_timer t{co_await asio::this_coro::executor, m.d};   // waits for it
        co_await t.async_wait(asio::use_awaitable);
    }
    int total_ = 0;                                     // touched only by handlers
};

}  // namespace doc_example

BOOST_FIXTURE_TEST_SUITE(actor_runtime, fixture)

// The header's example works as written.
BOOST_AUTO_TEST_CASE(header_example_works) {
    using doc_example::counter;
    run([&]() -> task<> {
        auto ex = ioc.get_executor();
        auto c = actors::spawn<counter>(ex);       // shared_ptr<counter>, its coroutine running
        co_await c->increase(2);                   // result<void>: in the mailbox, or an error
        co_await c->sleep(5ms);
        co_await c->increase(3);
        int v = (co_await c->value()).value();     // result<int>; .value() throws on error
        co_await c->stop();                        // handles what is queued, then ends
        BOOST_TEST(v == 5);
        BOOST_TEST(c->name() == "counter");
        BOOST_CHECK_THROW((co_await c->value()).value(), boost::system::system_error);
    });
}

// Tells are handled in order; an ask sees every earlier tell of its caller.
BOOST_AUTO_TEST_CASE(messages_are_handled_in_order) {
    run([&]() -> task<> {
        auto a = actors::spawn<probe>(ioc.get_executor(), 4);
        for (int i = 1; i <= 100; ++i) {
            BOOST_TEST(!error_of(co_await a->record(i)));
        }
        auto seen = co_await a->seen();
        BOOST_REQUIRE(seen.has_value());
        std::vector<int> expected;
        for (int i = 1; i <= 100; ++i) {
            expected.push_back(i);
        }
        BOOST_TEST(*seen == expected, boost::test_tools::per_element());
        co_await a->stop();
    });
}

// A coroutine handler pauses the mailbox: the next message waits for it.
BOOST_AUTO_TEST_CASE(coroutine_handler_pauses_the_mailbox) {
    run([&]() -> task<> {
        auto a = actors::spawn<probe>(ioc.get_executor(), 4);
        BOOST_TEST(!error_of(co_await a->sleep(30ms)));
        BOOST_TEST(!error_of(co_await a->record(7)));
        auto seen = co_await a->seen();
        BOOST_REQUIRE(seen.has_value());
        BOOST_TEST(*seen == (std::vector<int>{-1, -2, 7}), boost::test_tools::per_element());
        co_await a->stop();
    });
}

// A send beyond capacity does not complete until the actor drains.
BOOST_AUTO_TEST_CASE(full_mailbox_makes_the_sender_wait) {
    run([&]() -> task<> {
        auto g = std::make_shared<gate>(ioc.get_executor());
        auto a = actors::spawn<probe>(ioc.get_executor(), 2, g);
        BOOST_TEST(!error_of(co_await a->hold()));
        co_await g->entered.async_receive(asio::use_awaitable);  // the actor is parked in its handler
        BOOST_TEST(!error_of(co_await a->record(1)));           // mailbox: 1 of 2
        BOOST_TEST(!error_of(co_await a->record(2)));           // mailbox: 2 of 2
        BOOST_TEST(!a->try_record(99));                          // full: try_tell refuses

        bool sent = false;
        launch(ioc, [a, &sent]() -> task<> {
            auto r = co_await a->record(3);
            BOOST_TEST(!error_of(r));
            sent = true;
        }, done, errors);
        co_await sleep_for(50ms);
        BOOST_TEST(!sent);                                       // still waiting for space

        g->open.try_send(error_code{});                          // let the actor drain
        co_await wait_done(1);
        BOOST_TEST(sent);
        auto seen = co_await a->seen();
        BOOST_REQUIRE(seen.has_value());
        BOOST_TEST(*seen == (std::vector<int>{0, 1, 2, 3}), boost::test_tools::per_element());
        co_await a->stop();
    });
}

// stop(): queued asks (and a sender waiting for space) are answered, later
// calls fail with actor_stopped at once, and the actor's coroutine ends.
BOOST_AUTO_TEST_CASE(stop_answers_queued_asks_and_refuses_later_ones) {
    run([&]() -> task<> {
        auto g = std::make_shared<gate>(ioc.get_executor());
        auto a = actors::spawn<probe>(ioc.get_executor(), 2, g);
        BOOST_TEST(!error_of(co_await a->hold()));
        co_await g->entered.async_receive(asio::use_awaitable);

        std::vector<std::optional<result<int>>> answers(3);
        for (int i = 0; i < 3; ++i) {  // two fill the mailbox, the third waits for space
            launch(ioc, [a, i, &answers]() -> task<> { answers[i] = co_await a->echo_back(i + 1); }, done, errors);
        }
        co_await sleep_for(20ms);
        bool stop_returned = false;
        launch(ioc, [a, &stop_returned]() -> task<> {
            co_await a->stop();
            stop_returned = true;
        }, done, errors);
        co_await sleep_for(20ms);
        BOOST_TEST(!stop_returned);  // the actor is still parked with work queued
        for (auto const& x : answers) {
            BOOST_TEST(!x.has_value());
        }

        BOOST_TEST(error_of(co_await a->echo_back(4)) == stopped_ec);  // after stop(): refused at once
        BOOST_TEST(error_of(co_await a->record(5)) == stopped_ec);
        BOOST_TEST(!a->try_record(6));

        g->open.try_send(error_code{});
        co_await wait_done(4);
        BOOST_TEST(stop_returned);
        for (int i = 0; i < 3; ++i) {
            BOOST_REQUIRE(answers[i].has_value());
            BOOST_REQUIRE(answers[i]->has_value());
            BOOST_TEST(answers[i]->value() == i + 1);
        }
        co_await a->stopped();  // already ended: returns at once
        co_await a->stop();     // idempotent
        BOOST_TEST(error_of(co_await a->echo_back(7)) == stopped_ec);
        co_await asio::post(ioc, asio::use_awaitable);
        BOOST_TEST(a.use_count() == 1);  // the actor's coroutine has let go of it
    });
}

// Several coroutines may wait for the end; all are woken.
BOOST_AUTO_TEST_CASE(stopped_wakes_every_waiter) {
    run([&]() -> task<> {
        auto a = actors::spawn<probe>(ioc.get_executor(), 4);
        int woken = 0;
        for (int i = 0; i < 3; ++i) {
            launch(ioc, [a, &woken]() -> task<> {
                co_await a->stopped();
                ++woken;
            }, done, errors);
        }
        co_await sleep_for(10ms);
        BOOST_TEST(woken == 0);
        co_await a->stop();
        co_await wait_done(3);
        BOOST_TEST(woken == 3);
    });
}

// quit() from a handler: queued messages are dropped (asks get
// actor_stopped) and a sender waiting for space is released with actor_stopped.
BOOST_AUTO_TEST_CASE(quit_drops_queued_messages_and_releases_waiting_senders) {
    run([&]() -> task<> {
        auto g = std::make_shared<gate>(ioc.get_executor());
        auto a = actors::spawn<probe>(ioc.get_executor(), 2, g);
        BOOST_TEST(!error_of(co_await a->hold()));
        co_await g->entered.async_receive(asio::use_awaitable);
        BOOST_TEST(!error_of(co_await a->quit_next()));  // mailbox: 1 of 2

        std::optional<result<int>> queued, waiting;
        launch(ioc, [a, &queued]() -> task<> { queued = co_await a->echo_back(1); }, done, errors);
        co_await sleep_for(10ms);  // the mailbox is full now
        launch(ioc, [a, &waiting]() -> task<> { waiting = co_await a->echo_back(2); }, done, errors);
        co_await sleep_for(10ms);
        BOOST_TEST(!waiting.has_value());

        g->open.try_send(error_code{});
        co_await wait_done(2);
        co_await a->stopped();
        BOOST_REQUIRE(queued.has_value());
        BOOST_TEST(error_of(*queued) == stopped_ec);
        BOOST_REQUIRE(waiting.has_value());
        BOOST_TEST(error_of(*waiting) == stopped_ec);
        BOOST_TEST(error_of(co_await a->record(3)) == stopped_ec);
    });
}

// A reply slot destroyed unanswered answers actor_stopped.
BOOST_AUTO_TEST_CASE(unanswered_reply_slot_gives_actor_stopped) {
    run([&]() -> task<> {
        {  // the slot alone
            auto [slot, answer] = actors::detail::make_reply<int>(ioc.get_executor());
            BOOST_TEST(slot.pending());
            { auto dropped = std::move(slot); }
            BOOST_TEST(!slot.pending());
            BOOST_TEST(error_of(co_await answer.get(std::nullopt)) == stopped_ec);
        }
        {  // a value set before the slot dies wins
            auto [slot, answer] = actors::detail::make_reply<void>(ioc.get_executor());
            slot.set();
            slot.fail(stopped_ec);  // ignored: already answered
            BOOST_TEST(!error_of(co_await answer.get(std::nullopt)));
        }
        auto a = actors::spawn<probe>(ioc.get_executor(), 4);
        BOOST_TEST(error_of(co_await a->ignored()) == stopped_ec);  // handler returned without answering
        BOOST_TEST(co_await a->echo_back(5) == result<int>{5});     // and the actor goes on
        co_await a->stop();
    });
}

// An actor may answer an error of its own.
BOOST_AUTO_TEST_CASE(handler_can_answer_an_error) {
    run([&]() -> task<> {
        auto a = actors::spawn<probe>(ioc.get_executor(), 4);
        auto const limited = make_error_code(parley::errc::invalid_setting);
        BOOST_TEST(error_of(co_await a->refuse_with(limited)) == limited);
        co_await a->stop();
    });
}

// ask(m, timeout) gives timed_out; the late answer is harmless and the
// actor goes on.
BOOST_AUTO_TEST_CASE(ask_times_out_and_the_late_answer_is_harmless) {
    run([&]() -> task<> {
        auto a = actors::spawn<probe>(ioc.get_executor(), 4);
        auto const t0 = std::chrono::steady_clock::now();
        BOOST_TEST(error_of(co_await a->stashed(30ms)) == timed_out_ec);
        BOOST_TEST((std::chrono::steady_clock::now() - t0 >= 30ms));
        BOOST_TEST(!error_of(co_await a->answer_stash(1)));  // answers nobody; must not block
        BOOST_TEST(co_await a->echo_back(2) == result<int>{2});
        co_await a->stop();
    });
}

// A timeout that does not expire changes nothing.
BOOST_AUTO_TEST_CASE(ask_answered_before_its_timeout) {
    run([&]() -> task<> {
        auto a = actors::spawn<probe>(ioc.get_executor(), 4);
        std::optional<result<int>> r;
        launch(ioc, [a, &r]() -> task<> { r = co_await a->stashed(5s); }, done, errors);
        co_await sleep_for(10ms);
        BOOST_TEST(!r.has_value());
        auto const t0 = std::chrono::steady_clock::now();
        BOOST_TEST(!error_of(co_await a->answer_stash(42)));
        co_await wait_done(1);
        BOOST_TEST((std::chrono::steady_clock::now() - t0 < 1s));
        BOOST_REQUIRE(r.has_value());
        BOOST_TEST(*r == result<int>{42});
        co_await a->stop();
    });
}

// A throwing handler (sync, or a coroutine after a suspension) is logged, its
// asker gets actor_stopped and the actor handles the next message.
BOOST_AUTO_TEST_CASE(handler_exception_is_logged_and_the_actor_goes_on) {
    captured_log log;
    run([&]() -> task<> {
        auto a = actors::spawn<probe>(ioc.get_executor(), 4);
        BOOST_TEST(error_of(co_await a->explode(false)) == stopped_ec);
        BOOST_TEST(error_of(co_await a->explode(true)) == stopped_ec);
        BOOST_TEST(co_await a->echo_back(3) == result<int>{3});
        co_await a->stop();
    });
    auto const text = log.text();
    BOOST_TEST(text.find("actor probe: handler for") != std::string::npos, text);
    BOOST_TEST(text.find("boom threw: kaboom") != std::string::npos, text);
    BOOST_TEST(log.sink->last_formatted().size() == 2u);
}

// A sender cancelled while waiting for space gets operation_aborted and
// leaves the actor able to stop.
BOOST_AUTO_TEST_CASE(cancelled_sender_gets_operation_aborted) {
    run([&]() -> task<> {
        using namespace asio::experimental::awaitable_operators;
        auto g = std::make_shared<gate>(ioc.get_executor());
        auto a = actors::spawn<probe>(ioc.get_executor(), 1, g);
        BOOST_TEST(!error_of(co_await a->hold()));
        co_await g->entered.async_receive(asio::use_awaitable);
        BOOST_TEST(!error_of(co_await a->record(1)));  // full
        std::optional<result<void>> sent;
        auto r = co_await (record_into(a, 2, &sent) || sleep_for(20ms));
        BOOST_TEST(r.index() == 1u);  // the timer won, the send was cancelled
        BOOST_REQUIRE(sent.has_value());
        BOOST_TEST(error_of(*sent) == make_error_code(asio::error::operation_aborted));
        g->open.try_send(error_code{});
        auto seen = co_await a->seen();
        BOOST_REQUIRE(seen.has_value());
        BOOST_TEST(*seen == (std::vector<int>{0, 1}), boost::test_tools::per_element());
        co_await a->stop();
    });
}

// A stop() caller cancelled while it waits for the end does not undo the
// stop: the actor refuses new work, drains what was queued and ends.
BOOST_AUTO_TEST_CASE(cancelled_stop_caller_still_stops_the_actor) {
    run([&]() -> task<> {
        using namespace asio::experimental::awaitable_operators;
        auto g = std::make_shared<gate>(ioc.get_executor());
        auto a = actors::spawn<probe>(ioc.get_executor(), 4, g);
        BOOST_TEST(!error_of(co_await a->hold()));
        co_await g->entered.async_receive(asio::use_awaitable);
        BOOST_TEST(!error_of(co_await a->record(1)));
        // The stop request is queued, then its caller is cancelled while it waits for the end.
        auto r = co_await (a->stop() || sleep_for(20ms));
        BOOST_TEST(r.index() == 1u);
        BOOST_TEST(error_of(co_await a->record(2)) == stopped_ec);  // stopping all the same
        g->open.try_send(error_code{});
        co_await a->stopped();
        co_await a->stop();
    });
}

BOOST_AUTO_TEST_SUITE_END()
