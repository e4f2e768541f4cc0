// The NATS adapter against a real nats-server started here (on a free
// loopback port, stopped by its PID): queue subscriptions, request/reply,
// no responders, timeouts, the size limit, reconnecting after the server
// restarts, connecting to a server that comes up late, and closing.
#include "net/nats_bus.hpp"

#include "support/io_fixture.hpp"
#include "support/pg_server.hpp"
#include "support/nats_server.hpp"
#include "support/process.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

namespace {

using namespace std::chrono_literals;
using parley::test::nats_server;
using parley::task;
using parley::net::nats_bus;
using parley::net::nats_state;
namespace asio = boost::asio;

parley::net::nats_options options_for(std::string url) {
    parley::net::nats_options o;
    o.url = std::move(url);
    o.reconnect_wait = 50ms;
    o.reconnect_wait_max = 200ms;
    o.max_message_bytes = 1024;
    return o;
}

// Waits (bounded) on the test's own thread for a condition cnats threads make true.
template <class F>
bool eventually(F f, std::chrono::milliseconds within = 10s) {
    auto const end = std::chrono::steady_clock::now() + within;
    while (!f()) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

task<void> pause(std::chrono::milliseconds d) {
    asio::steady_timer t{co_await asio::this_coro::executor, d};
    co_await t.async_wait(parley::use_nothrow);
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(nats_bus_suite, parley::test::io_fixture)

BOOST_AUTO_TEST_CASE(requests_are_answered_by_a_queue_member_and_failures_are_errors) {
    nats_server server;
    auto bus = nats_bus::connect(ioc.get_executor(), options_for(server.url()));
    BOOST_TEST((bus->state() == nats_state::connected));
    std::shared_ptr<nats_bus> shared = bus;
    std::string seen_subject;
    std::size_t empty_bodies = 0;
    bus->queue_subscribe("t.echo", "g", [shared, &seen_subject, &empty_bodies](parley::net::nats_message m) {
        seen_subject = m.subject;
        if (m.data.empty()) ++empty_bodies;
        if (!m.reply.empty()) shared->publish(m.reply, "echo:" + m.data);
    });
    bus->queue_subscribe("t.silent", "g", [](parley::net::nats_message) {});
    run([&]() -> task<void> {
        co_await pause(100ms);  // the subscriptions reach the server
        auto r = co_await shared->request("t.echo", "hi", 2s);
        BOOST_TEST_REQUIRE(r.has_value(), r.error().message());
        BOOST_TEST(*r == "echo:hi");
        auto none = co_await shared->request("t.nobody", "hi", 2s);
        BOOST_TEST_REQUIRE(!none.has_value());
        BOOST_TEST((none.error() == asio::error::host_unreachable));
        auto slow = co_await shared->request("t.silent", "hi", 200ms);
        BOOST_TEST_REQUIRE(!slow.has_value());
        BOOST_TEST((slow.error() == asio::error::timed_out));
        // A request over the size limit is not even sent.
        auto big = co_await shared->request("t.echo", std::string(1200, 'x'), 2s);
        BOOST_TEST((!big.has_value() && big.error() == asio::error::message_size));
    });
    BOOST_TEST(seen_subject == "t.echo");
    BOOST_TEST(!bus->publish("t.echo", std::string(2000, 'z')));
    auto const c = bus->counters();
    BOOST_TEST(c.received >= 1u);
    BOOST_TEST(c.published >= 3u);
    BOOST_TEST(c.publish_failures >= 1u);

    // After stop_serving, the queue members are gone: no responders.
    bus->stop_serving();
    run([&]() -> task<void> {
        co_await pause(100ms);
        auto r = co_await shared->request("t.echo", "hi", 2s);
        BOOST_TEST((!r.has_value() && r.error() == asio::error::host_unreachable));
    });
    bus->close();
    BOOST_TEST((bus->state() == nats_state::closed));
    BOOST_TEST(!bus->publish("t.echo", "late"));
    run([&]() -> task<void> {
        auto r = co_await shared->request("t.echo", "hi", 1s);
        BOOST_TEST((!r.has_value() && r.error() == asio::error::not_connected));
    });
    bus->close();  // idempotent
}

BOOST_AUTO_TEST_CASE(a_message_over_the_limit_reaches_the_handler_empty) {
    nats_server server;
    auto bus = nats_bus::connect(ioc.get_executor(), options_for(server.url()));
    auto sender_options = options_for(server.url());
    sender_options.max_message_bytes = 64 * 1024;
    auto sender = nats_bus::connect(ioc.get_executor(), sender_options);
    std::shared_ptr<nats_bus> shared = bus;
    std::size_t sizes = 99;
    bus->queue_subscribe("t.big", "g", [shared, &sizes](parley::net::nats_message m) {
        sizes = m.data.size();
        shared->publish(m.reply, "too big");
    });
    run([&]() -> task<void> {
        co_await pause(100ms);
        auto r = co_await sender->request("t.big", std::string(4000, 'x'), 2s);
        BOOST_TEST_REQUIRE(r.has_value());
        BOOST_TEST(*r == "too big");
    });
    BOOST_TEST(sizes == 0u);
    BOOST_TEST(bus->counters().too_large == 1u);
    sender->close();
    bus->close();
}

BOOST_AUTO_TEST_CASE(the_connection_comes_back_after_the_server_restarts_and_a_late_server_is_found) {
    auto const port = parley::test::free_loopback_port();
    // Nothing listens yet: the process starts anyway and keeps trying.
    auto bus = nats_bus::connect(ioc.get_executor(), options_for("nats://127.0.0.1:" + std::to_string(port)));
    BOOST_TEST((bus->state() == nats_state::connecting));
    std::shared_ptr<nats_bus> shared = bus;
    bus->queue_subscribe("t.echo", "g", [shared](parley::net::nats_message m) { shared->publish(m.reply, m.data); });
    nats_server server{port};
    BOOST_TEST(eventually([&] { return bus->state() == nats_state::connected; }));
    run([&]() -> task<void> {
        co_await pause(100ms);
        auto r = co_await shared->request("t.echo", "one", 2s);
        BOOST_TEST((r.has_value() && *r == "one"));
    });

    server.stop();
    BOOST_TEST(eventually([&] { return bus->state() == nats_state::reconnecting; }));
    server.start();
    BOOST_TEST(eventually([&] { return bus->state() == nats_state::connected; }));
    BOOST_TEST(bus->counters().reconnects == 1u);
    run([&]() -> task<void> {
        co_await pause(200ms);  // the subscription is sent again on reconnect
        auto r = co_await shared->request("t.echo", "two", 2s);
        BOOST_TEST((r.has_value() && *r == "two"));
    });
    bus->close(500ms);
    BOOST_TEST((bus->state() == nats_state::closed));
    BOOST_TEST(to_string(nats_state::reconnecting) == "reconnecting");
    BOOST_TEST(to_string(nats_state::connecting) == "connecting");
}

BOOST_AUTO_TEST_SUITE_END()
