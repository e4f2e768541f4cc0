// The non-template half of the actor runtime (see runtime.hpp).
#include "actors/runtime.hpp"

#include <boost/asio/experimental/channel_error.hpp>
#include <boost/core/demangle.hpp>
#include <boost/system/system_error.hpp>
#include <spdlog/spdlog.h>

namespace parley::actors::detail {

namespace {

constexpr std::uint64_t closed_bit = 1;
constexpr std::uint64_t one_sender = 2;

std::string describe(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (std::exception const& ex) {
        return ex.what();
    } catch (...) {
        return "unknown exception";
    }
}

}  // namespace

// Sequential consistency is not needed: every operation is a read-modify-write
// of the one atomic, so they are totally ordered, and acquire/release carries
// the senders' channel operations over to the actor's finish().
bool admission::try_enter() noexcept {
    if (state_.fetch_add(one_sender, std::memory_order_acq_rel) & closed_bit) {
        state_.fetch_sub(one_sender, std::memory_order_acq_rel);
        return false;
    }
    return true;
}

void admission::leave() noexcept {
    state_.fetch_sub(one_sender, std::memory_order_acq_rel);
}

bool admission::begin_stop() noexcept {
    auto s = state_.load(std::memory_order_acquire);
    while (!(s & closed_bit)) {
        if (state_.compare_exchange_weak(s, (s | closed_bit) + one_sender, std::memory_order_acq_rel,
                                         std::memory_order_acquire)) {
            return true;
        }
    }
    return false;
}

void admission::close() noexcept {
    state_.fetch_or(closed_bit, std::memory_order_acq_rel);
}

bool admission::is_closed() const noexcept {
    return state_.load(std::memory_order_acquire) & closed_bit;
}

bool admission::idle() const noexcept {
    return state_.load(std::memory_order_acquire) == closed_bit;
}

done_event::done_event(asio::any_io_executor ex) : ch_{std::move(ex), 0} {}

void done_event::set() {
    // Nothing is ever sent: closing wakes every waiter with channel_closed,
    // and every later wait completes at once the same way.
    ch_.close();
}

task<void> done_event::wait() {
    auto [ec] = co_await ch_.async_receive(use_nothrow);
    if (ec != asio::experimental::error::channel_closed) {
        throw boost::system::system_error{ec == asio::experimental::error::channel_cancelled
                                              ? make_error_code(asio::error::operation_aborted)
                                              : ec};
    }
}

error_code send_failure(error_code ec, bool stopping) noexcept {
    if (stopping || ec == asio::experimental::error::channel_closed) {
        return make_error_code(errc::actor_stopped);
    }
    if (ec == asio::experimental::error::channel_cancelled) {
        return make_error_code(asio::error::operation_aborted);  // the sender itself was cancelled
    }
    return ec;
}

void log_handler_failure(std::string_view actor, std::type_info const& message, std::exception_ptr e) noexcept {
    try {
        spdlog::error("actor {}: handler for {} threw: {}", actor, boost::core::demangle(message.name()),
                      describe(e));
    } catch (...) {  // logging must not take the actor down
    }
}

void log_actor_failure(std::string_view actor, std::exception_ptr e) noexcept {
    try {
        spdlog::error("actor {}: stopped by an exception: {}", actor, describe(e));
    } catch (...) {
    }
}

}  // namespace parley::actors::detail
