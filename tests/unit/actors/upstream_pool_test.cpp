// UpstreamPool: lending, reuse, bounds, FIFO waiters, slots that must not
// leak (gave-up and cancelled waiters), idle expiry, dead idle connections,
// shutdown. Real connections to a loopback net::http_server, one
// single-threaded io_context per test (io_fixture).
#include "actors/upstream_pool.hpp"
#include "net/http_server.hpp"
#include "net/upstream_connection.hpp"

#include "support/io_fixture.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
namespace asio = parley::asio;
namespace actors = parley::actors;
namespace net = parley::net;
namespace http = boost::beast::http;
using parley::task;
using parley::use_nothrow;
using actors::upstream_lease;
using actors::upstream_pool;
using boost::system::error_code;

task<void> sleep_for(std::chrono::milliseconds d) {
    asio::steady_timer t{co_await asio::this_coro::executor, d};
    co_await t.async_wait(use_nothrow);
}

// A loopback HTTP server: /ok answers "hello" at once; /slow streams two
// chunks 200 ms apart (so a reader can stop half-way).
struct pool_fixture : parley::test::io_fixture {
    std::unique_ptr<net::http_server> server;

    // Runs one test coroutine and stops the io_context when it ends (the
    // server keeps it busy otherwise); time-capped.
    template <class F>
    void run(F body, std::chrono::steady_clock::duration limit = 20s) {
        run_and_stop(std::move(body), limit);
    }

    std::shared_ptr<net::connection_options> conn_options = std::make_shared<net::connection_options>();

    pool_fixture() {
        net::server_options o;
        server = std::make_unique<net::http_server>(
            ioc.get_executor(), o, [](net::request& req, net::exchange& ex) -> task<void> {
                if (req.target() == "/slow") {
                    http::response_header<> h;
                    h.result(http::status::ok);
                    co_await ex.begin_stream(std::move(h));
                    co_await ex.write("first");
                    co_await sleep_for(200ms);
                    co_await ex.write("second");
                    co_await ex.end_stream();
                    co_return;
                }
                net::response res{http::status::ok, 11};
                res.body() = "hello";
                co_await ex.respond(std::move(res));
            });
        server->start();
        conn_options->endpoint = {false, "127.0.0.1", server->local_endpoint().port(), ""};
    }
    ~pool_fixture() {
        server->stop();
        ioc.restart();
        ioc.run_for(1s);  // let the server's coroutines end
    }

    std::shared_ptr<upstream_pool> make_pool(std::size_t max, std::chrono::milliseconds idle = 30s) {
        return actors::spawn<upstream_pool>(ioc.get_executor(),
                                            actors::pool_options{.max_connections = max, .idle_timeout = idle});
    }

    // Opens a connection on the lease (which must carry none).
    task<void> open_on(upstream_lease& lease) {
        BOOST_REQUIRE(lease.connection() == nullptr);
        auto c = co_await net::upstream_connection::open(ioc.get_executor(), conn_options, 2s,
                                                         std::chrono::steady_clock::now() + 5s);
        BOOST_REQUIRE(c.has_value());
        lease.adopt(std::move(*c));
    }

    // One exchange; reads the whole body when `to_end`, else only the header.
    task<std::string> exchange(net::upstream_connection& c, std::string target, bool to_end) {
        net::outgoing_request req{std::move(target), "{}", {}};
        auto ec = co_await c.send(std::move(req), 2s, std::chrono::steady_clock::now() + 5s);
        BOOST_REQUIRE(!ec);
        std::string body;
        while (to_end) {
            auto piece = co_await c.read_body(2s, std::chrono::steady_clock::now() + 5s);
            BOOST_REQUIRE(piece.has_value());
            if (piece->empty()) {
                break;
            }
            body += *piece;
        }
        co_return body;
    }
};

task<actors::pool_stats> stats_of(upstream_pool& pool) {
    auto s = co_await pool.stats();
    BOOST_REQUIRE(s.has_value());
    co_return *s;
}

// Waits (bounded) until the pool has nothing lent, for slots that come back
// through the mailbox.
task<actors::pool_stats> settled(upstream_pool& pool) {
    actors::pool_stats s;
    for (int i = 0; i < 100; ++i) {
        s = co_await stats_of(pool);
        if (s.in_use == 0) {
            break;
        }
        co_await sleep_for(10ms);
    }
    co_return s;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(upstream_pool_suite, pool_fixture)

/// The first acquire hands out the right to open a connection; giving the
/// empty slot back frees it.
BOOST_AUTO_TEST_CASE(first_acquire_grants_the_right_to_open_one) {
    auto pool = make_pool(4);
    run([&]() -> task<void> {
        auto lease = co_await pool->acquire(1s);
        BOOST_REQUIRE(lease.has_value());
        BOOST_TEST(lease->valid());
        BOOST_TEST(lease->connection() == nullptr);
        auto s = co_await stats_of(*pool);
        BOOST_TEST(s.max_connections == 4u);
        BOOST_TEST(s.open == 1u);
        BOOST_TEST(s.in_use == 1u);
        BOOST_TEST(s.opened == 1u);
        BOOST_TEST(s.acquired == 1u);
        lease->release();
        BOOST_TEST(!lease->valid());
        lease->release();  // twice: nothing more happens
        s = co_await settled(*pool);
        BOOST_TEST(s.open == 0u);
        BOOST_TEST(s.discarded == 0u);
        co_await pool->shutdown();
    });
}

/// A connection that finished its exchange cleanly is kept and lent again.
BOOST_AUTO_TEST_CASE(a_reusable_connection_is_lent_again) {
    auto pool = make_pool(4);
    run([&]() -> task<void> {
        net::upstream_connection* first = nullptr;
        {
            auto lease = co_await pool->acquire(1s);
            co_await open_on(*lease);
            first = lease->connection();
            BOOST_TEST(co_await exchange(*first, "/ok", true) == "hello");
            BOOST_TEST(first->reusable());
        }  // destroyed: given back
        auto s = co_await settled(*pool);
        BOOST_TEST(s.idle == 1u);
        BOOST_TEST(s.open == 1u);
        auto again = co_await pool->acquire(1s);
        BOOST_REQUIRE(again.has_value());
        BOOST_TEST(again->connection() == first);
        BOOST_TEST(co_await exchange(*again->connection(), "/ok", true) == "hello");
        BOOST_TEST(again->connection()->exchanges() == 2u);
        s = co_await stats_of(*pool);
        BOOST_TEST(s.reused == 1u);
        BOOST_TEST(s.idle == 0u);
        BOOST_TEST(s.in_use == 1u);
        again->release();
        co_await pool->shutdown();
    });
}

/// A connection given back in the middle of a body is closed, never lent.
BOOST_AUTO_TEST_CASE(a_half_read_connection_is_never_lent_again) {
    auto pool = make_pool(4);
    run([&]() -> task<void> {
        {
            auto lease = co_await pool->acquire(1s);
            co_await open_on(*lease);
            co_await exchange(*lease->connection(), "/slow", false);
            BOOST_TEST(!lease->connection()->reusable());
        }
        auto s = co_await settled(*pool);
        BOOST_TEST(s.discarded == 1u);
        BOOST_TEST(s.open == 0u);
        BOOST_TEST(s.idle == 0u);
        auto next = co_await pool->acquire(1s);
        BOOST_TEST(next->connection() == nullptr);
        next->release();
        co_await pool->shutdown();
    });
}

/// At most max_connections are out; later acquirers wait and are served in
/// arrival order as slots come back (a broken connection frees its slot
/// for the next waiter as the right to open a new one).
BOOST_AUTO_TEST_CASE(bounded_and_waiters_are_served_first_come_first_served) {
    auto pool = make_pool(2);
    run([&]() -> task<void> {
        auto a = co_await pool->acquire(1s);
        auto b = co_await pool->acquire(1s);
        co_await open_on(*a);
        co_await exchange(*a->connection(), "/ok", true);
        std::vector<int> order;
        std::vector<std::optional<upstream_lease>> got(3);
        auto ex = co_await asio::this_coro::executor;
        for (int i = 0; i < 3; ++i) {
            asio::co_spawn(
                ex,
                [&, i]() -> task<void> {
                    auto l = co_await pool->acquire(5s);
                    BOOST_REQUIRE(l.has_value());
                    order.push_back(i);
                    got[i] = std::move(*l);
                },
                [](std::exception_ptr e) {
                    if (e) std::rethrow_exception(e);
                });
            co_await sleep_for(5ms);  // a definite arrival order
        }
        auto s = co_await stats_of(*pool);
        BOOST_TEST(s.waiting == 3u);
        BOOST_TEST(s.waited == 3u);
        BOOST_TEST(s.open == 2u);
        auto* kept = a->connection();
        a->release();  // reusable: goes to waiter 0 as is
        b->release();  // an unused slot: waiter 1 may open one
        co_await sleep_for(20ms);
        BOOST_TEST((order == std::vector<int>{0, 1}));
        BOOST_REQUIRE(got[0].has_value());
        BOOST_TEST(got[0]->connection() == kept);
        BOOST_TEST(got[1]->connection() == nullptr);
        got[0]->connection()->close();  // broken: its slot goes to waiter 2
        got[0]->release();
        co_await sleep_for(20ms);
        BOOST_TEST((order == std::vector<int>{0, 1, 2}));
        BOOST_TEST(got[2]->connection() == nullptr);
        s = co_await stats_of(*pool);
        BOOST_TEST(s.open == 2u);
        BOOST_TEST(s.in_use == 2u);
        BOOST_TEST(s.waiting == 0u);
        BOOST_TEST(s.discarded == 1u);
        got[1]->release();
        got[2]->release();
        s = co_await settled(*pool);
        BOOST_TEST(s.open == 0u);
        co_await pool->shutdown();
    });
}

/// An acquirer that timed out is skipped in effect: the slot handed to it
/// comes straight back, and the pool ends with nothing lent.
BOOST_AUTO_TEST_CASE(a_waiter_that_timed_out_does_not_leak_its_slot) {
    auto pool = make_pool(1);
    run([&]() -> task<void> {
        auto held = co_await pool->acquire(1s);
        auto late = co_await pool->acquire(30ms);
        BOOST_REQUIRE(late.has_error());
        BOOST_TEST(late.error() == make_error_code(asio::error::timed_out));
        held->release();
        auto s = co_await settled(*pool);
        BOOST_TEST(s.in_use == 0u);
        BOOST_TEST(s.open == 0u);
        BOOST_TEST(s.acquired == 2u);  // the second lease was made, reached nobody, came back
        auto again = co_await pool->acquire(1s);
        BOOST_TEST(again.has_value());
        again->release();
        co_await pool->shutdown();
    });
}

/// An acquirer cancelled through its cancellation slot (here by `||`) gets
/// operation_aborted and does not leak the slot either.
BOOST_AUTO_TEST_CASE(a_cancelled_waiter_does_not_leak_its_slot) {
    auto pool = make_pool(1);
    run([&]() -> task<void> {
        using namespace asio::experimental::awaitable_operators;
        auto held = co_await pool->acquire(1s);
        auto wait = pool->acquire(10s);
        auto nap = sleep_for(30ms);
        auto first = co_await (std::move(wait) || std::move(nap));
        BOOST_TEST(first.index() == 1u);
        held->release();
        auto s = co_await settled(*pool);
        BOOST_TEST(s.in_use == 0u);
        BOOST_TEST(s.open == 0u);
        co_await pool->shutdown();
    });
}

/// Idle connections are closed after idle_timeout without use.
BOOST_AUTO_TEST_CASE(idle_connections_expire) {
    auto pool = make_pool(4, 80ms);
    run([&]() -> task<void> {
        {
            auto a = co_await pool->acquire(1s);
            auto b = co_await pool->acquire(1s);
            co_await open_on(*a);
            co_await open_on(*b);
            co_await exchange(*a->connection(), "/ok", true);
            co_await exchange(*b->connection(), "/ok", true);
        }
        auto s = co_await settled(*pool);
        BOOST_TEST(s.idle == 2u);
        co_await sleep_for(300ms);
        s = co_await stats_of(*pool);
        BOOST_TEST(s.idle == 0u);
        BOOST_TEST(s.open == 0u);
        BOOST_TEST(s.expired == 2u);
        co_await pool->shutdown();
    });
}

/// An idle connection the peer closed is found dead when it would be lent:
/// it is closed, and the acquirer gets the right to open a fresh one.
BOOST_AUTO_TEST_CASE(a_connection_closed_by_the_peer_while_idle_is_not_lent) {
    auto pool = make_pool(4);
    run([&]() -> task<void> {
        {
            auto a = co_await pool->acquire(1s);
            co_await open_on(*a);
            co_await exchange(*a->connection(), "/ok", true);
        }
        co_await settled(*pool);
        server->stop();  // closes every server-side connection
        co_await sleep_for(100ms);
        auto fresh = co_await pool->acquire(1s);
        BOOST_REQUIRE(fresh.has_value());
        BOOST_TEST(fresh->connection() == nullptr);
        auto s = co_await stats_of(*pool);
        BOOST_TEST(s.discarded == 1u);
        BOOST_TEST(s.open == 1u);
        fresh->release();
        co_await pool->shutdown();
    });
}

/// shutdown(): waiters get actor_stopped, later acquires fail, a lease
/// given back afterwards is just closed, and idle connections are closed.
BOOST_AUTO_TEST_CASE(shutdown_fails_waiters_closes_idle_and_refuses_later_acquires) {
    auto pool = make_pool(2);
    auto other_pool = make_pool(2);
    run([&]() -> task<void> {
        {
            auto a = co_await pool->acquire(1s);
            co_await open_on(*a);
            co_await exchange(*a->connection(), "/ok", true);
        }
        co_await settled(*pool);
        BOOST_TEST(server->open_connections() == 1u);
        auto held = co_await pool->acquire(1s);  // the idle one
        BOOST_TEST(held->connection() != nullptr);
        auto other = co_await pool->acquire(1s);
        std::optional<error_code> waiter_error;
        auto ex = co_await asio::this_coro::executor;
        asio::co_spawn(
            ex,
            [&]() -> task<void> {
                auto l = co_await pool->acquire(5s);
                waiter_error = l.has_error() ? l.error() : error_code{};
            },
            [](std::exception_ptr e) {
                if (e) std::rethrow_exception(e);
            });
        co_await sleep_for(10ms);
        BOOST_TEST((co_await stats_of(*pool)).waiting == 1u);
        co_await pool->shutdown();
        co_await sleep_for(10ms);
        BOOST_TEST(waiter_error.value() == make_error_code(parley::errc::actor_stopped));
        auto after = co_await pool->acquire(1s);
        BOOST_REQUIRE(after.has_error());
        BOOST_TEST(after.error() == make_error_code(parley::errc::actor_stopped));
        held->release();  // the pool is gone: the connection is just closed
        other->release();
        co_await sleep_for(50ms);
        BOOST_TEST(server->open_connections() == 0u);

        // Idle connections are closed by shutdown.
        {
            auto b = co_await other_pool->acquire(1s);
            co_await open_on(*b);
            co_await exchange(*b->connection(), "/ok", true);
        }
        BOOST_TEST((co_await settled(*other_pool)).idle == 1u);
        BOOST_TEST(server->open_connections() == 1u);
        co_await other_pool->shutdown();
        co_await sleep_for(50ms);
        BOOST_TEST(server->open_connections() == 0u);
    });
}

/// An acquire that arrives while shutdown() runs (after the pool started
/// closing, before it stopped) is refused, never lent a slot.
BOOST_AUTO_TEST_CASE(an_acquire_racing_with_shutdown_is_refused) {
    auto pool = make_pool(2);
    run([&]() -> task<void> {
        using namespace asio::experimental::awaitable_operators;
        auto closing = pool->shutdown();
        auto late = pool->acquire(1s);
        auto got = co_await (std::move(closing) && std::move(late));
        BOOST_REQUIRE(got.has_error());
        BOOST_TEST(got.error() == make_error_code(parley::errc::actor_stopped));
    });
}

/// The lease is a move-only handle: moving transfers the slot, assigning
/// over a lease gives its slot back, adopt() and discard() swap the connection.
BOOST_AUTO_TEST_CASE(lease_moves_adopt_and_discard) {
    auto pool = make_pool(4);
    run([&]() -> task<void> {
        auto a = co_await pool->acquire(1s);
        auto b = co_await pool->acquire(1s);
        upstream_lease moved{std::move(*a)};
        BOOST_TEST(!a->valid());
        BOOST_TEST(moved.valid());
        moved = std::move(*b);  // gives moved's slot back, takes b's
        auto& self = moved;
        moved = std::move(self);  // self-assignment keeps the slot
        BOOST_TEST(moved.valid());
        auto s = co_await stats_of(*pool);  // the given-back slot arrives through the mailbox
        for (int i = 0; i < 50 && s.in_use != 1u; ++i) {
            co_await sleep_for(10ms);
            s = co_await stats_of(*pool);
        }
        BOOST_TEST(s.in_use == 1u);
        co_await open_on(moved);
        BOOST_TEST(moved.connection() != nullptr);
        moved.discard();
        BOOST_TEST(moved.connection() == nullptr);
        BOOST_TEST(moved.valid());
        upstream_lease empty;
        BOOST_TEST(!empty.valid());
        moved.release();
        s = co_await settled(*pool);
        BOOST_TEST(s.open == 0u);
        co_await pool->shutdown();
    });
}

BOOST_AUTO_TEST_SUITE_END()
