#include "net/asio.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

namespace parley::net {

asio::any_io_executor make_strand(asio::any_io_executor const& ex) {
    using plain = asio::io_context::executor_type;
    using tracked = decltype(asio::require(std::declval<plain>(), asio::execution::outstanding_work.tracked));
    if (auto const* io = ex.target<plain>()) return asio::make_strand(*io);
    if (auto const* io = ex.target<tracked>()) return asio::make_strand(*io);
    return asio::make_strand(ex);
}

}  // namespace parley::net
