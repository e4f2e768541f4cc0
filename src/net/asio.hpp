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

}  // namespace parley
