#pragma once
// Runs one test coroutine on a private io_context, time-capped (STYLE 2.9).
#include "net/asio.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <exception>

namespace parley::test {

struct io_fixture {
    asio::io_context ioc;

    // F is the coroutine *function*; co_spawn keeps the closure alive.
    template <class F>
    void run(F body, std::chrono::steady_clock::duration limit = std::chrono::seconds(10)) {
        std::exception_ptr err;
        bool done = false;
        asio::co_spawn(ioc, std::move(body), [&](std::exception_ptr e) {
            err = e;
            done = true;
        });
        ioc.run_for(limit);
        BOOST_REQUIRE_MESSAGE(done, "coroutine did not complete in time");
        if (err) std::rethrow_exception(err);
        ioc.restart();
    }

    // Like run(), but stops the io_context as soon as the body ends, for
    // tests whose servers, pools or timers would keep it busy until `limit`.
    template <class F>
    void run_and_stop(F body, std::chrono::steady_clock::duration limit) {
        std::exception_ptr err;
        bool done = false;
        asio::co_spawn(ioc, std::move(body), [&](std::exception_ptr e) {
            err = e;
            done = true;
            ioc.stop();
        });
        ioc.restart();
        ioc.run_for(limit);
        BOOST_REQUIRE_MESSAGE(done, "the test coroutine did not complete in time");
        if (err) std::rethrow_exception(err);
    }
};

}  // namespace parley::test
