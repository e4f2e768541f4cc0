#pragma once
// Short names for the Asio/Beast vocabulary used everywhere above the domain.
// Asio and Beast are compiled separately (src/net/asio_impl.cpp), so this
// header pulls in declarations only.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace parley {

namespace asio = boost::asio;

template <class T = void>
using task = asio::awaitable<T>;

// Completion token for operations whose error is a normal outcome: the
// coroutine gets (error_code, results...) instead of an exception.
inline constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

namespace net {
// A new strand on the execution context of `ex`, as an any_io_executor.
// When `ex` is an io_context's executor (it always is in Parley) the strand
// is built on that executor itself, not on the type-erased `ex`: a
// strand<io_context::executor_type> fits any_io_executor's in-place buffer,
// while a strand<any_io_executor> does not, and then every copy of the
// executor (several hundred per proxied request: each handler, timer and
// coroutine takes one) allocates. Profiled in bench/results/gateways-profile.md.
asio::any_io_executor make_strand(asio::any_io_executor const& ex);
}  // namespace net

}  // namespace parley
