#pragma once
// The actor runtime (ARCHITECTURE §3, STYLE 2.4): a strand, a bounded
// mailbox (a concurrent_channel of a message std::variant) and ONE coroutine
// that handles the messages in order. An actor's state is touched only by
// that coroutine, so actor code has no mutex.
//
// Defining an actor with a typed facade (tests/unit/actors/runtime_test.cpp
// compiles and runs this example):
//
//     namespace actors = parley::actors;
//     struct add { int n; };                                  // a tell
//     struct total { actors::reply<int> reply_to; };          // an ask: its reply slot is `reply_to`
//     struct doze { std::chrono::milliseconds d; };
//
//     class counter final : public actors::actor<counter, add, total, doze> {
//     public:
//         explicit counter(asio::any_io_executor ex)
//             : actor{std::move(ex), {.capacity = 64, .name = "counter"}} {}
//         // The facade: what callers use. Each call owns its arguments (STYLE 2.3).
//         task<actors::result<void>> increase(int n) { return tell(add{n}); }
//         task<actors::result<void>> sleep(std::chrono::milliseconds d) { return tell(doze{d}); }
//         task<actors::result<int>> value() { return ask(total{}, std::chrono::seconds(1)); }
//     private:
//         friend actor;                                       // lets the runtime call on()
//         void on(add& m) { total_ += m.n; }                  // a synchronous handler
//         void on(total& m) { m.reply_to.set(total_); }
//         task<void> on(doze& m) {                            // a coroutine handler: the mailbox
//             asio::steady_timer t{co_await asio::this_coro::executor, m.d};   // waits for it
//             co_await t.async_wait(asio::use_awaitable);
//         }
//         int total_ = 0;                                     // touched only by handlers
//     };
//
//     auto c = actors::spawn<counter>(ex);       // shared_ptr<counter>, its coroutine running
//     co_await c->increase(2);                   // result<void>: in the mailbox, or an error
//     int v = (co_await c->value()).value();     // result<int>; .value() throws on error
//     co_await c->stop();                        // handles what is queued, then ends
//
// Contract:
// - tell(m): waits while the mailbox is full (backpressure, never drops), then
//   returns once the message is IN the mailbox (not handled yet).
// - ask(m[, timeout]): tell plus the wait for the answer. The timeout bounds
//   the wait for the answer once the message is in the mailbox; the wait for
//   mailbox space is backpressure and not bounded by it (cancel the caller's
//   coroutine for a hard deadline). Timing out gives asio::error::timed_out.
// - Errors are values, not exceptions: boost::system::result<T>, with
//   parley::errc::actor_stopped when the actor is stopping or gone, or when
//   the message was dropped or its handler threw before answering (a reply
//   slot destroyed unanswered answers actor_stopped itself, so an asker
//   never hangs). A handler may answer an error with reply_to.fail(ec). A
//   caller whose own coroutine is cancelled while it waits gets
//   asio::error::operation_aborted (one already cancelled when it calls gets
//   Asio's usual exception from co_await).
// - stop(): every message sent before stop() was called is handled, including
//   those of senders still waiting for mailbox space at that moment (they are
//   ahead of the stop request in the channel's FIFO). Every tell/ask started
//   after stop() was called fails with actor_stopped without waiting. A send
//   that races with stop() (started concurrently) is either handled or
//   refused; if it was already accepted and lands behind the stop request it
//   is dropped: its tell reported success, its ask gets actor_stopped, and a
//   sender waiting for space is released with actor_stopped. stop() returns
//   when the actor's coroutine has ended; stopped() only waits for that
//   (both throw system_error(operation_aborted) if the waiting coroutine is
//   cancelled; the stop itself goes on).
//   Never co_await stop() from the actor's own handler (it would wait for
//   itself): call quit() there.
// - Handlers: `void on(M&)` or `task<void> on(M&)` for each message type M. An
//   exception from a handler is logged (spdlog, with the actor's name and the
//   message type) and the actor goes on with the next message.
// - Messages are moved in (big payloads as shared_ptr<const T>). A dropped
//   message may be destroyed under the mailbox's lock: its destructor must
//   not send to the same actor.
// - Lifetime: actors are created by spawn() and owned by shared_ptr; the
//   running coroutine and every pending call hold a reference. An actor that
//   is never stopped keeps its io_context busy.
// - GCC 12.2 miscompiles `if (co_await f(x))` / `while (co_await f(x))` when
//   x is a parameter of the enclosing coroutine (or a member, via `this`):
//   it crashes at run time. Bind the result first: `auto r = co_await f(x);`.
#include "domain/errc.hpp"
#include "net/asio.hpp"

#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <variant>

namespace parley::actors {

using boost::system::error_code;
using boost::system::result;

template <class T>
class reply;

namespace detail {

// What travels in a reply channel: T, or std::monostate for reply<void>.
template <class T>
using value_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

// One-element channel shared by a reply slot and its asker. Its buffer of 1
// means the actor's set() never blocks, even when the asker gave up.
template <class T>
using reply_channel = asio::experimental::concurrent_channel<void(error_code, std::optional<value_t<T>>)>;

// The asker's end of a reply slot.
template <class T>
class answer {
public:
    explicit answer(std::shared_ptr<reply_channel<T>> ch) : ch_{std::move(ch)} {}

    // The answer, the error the actor gave, actor_stopped if the slot was
    // destroyed unanswered, asio::error::timed_out after `timeout`.
    task<result<T>> get(std::optional<std::chrono::steady_clock::duration> timeout) {
        std::optional<asio::steady_timer> timer;
        if (timeout) {
            // The timer answers through the same one-element channel: whichever
            // of the actor and the timer comes first wins, the other's
            // try_send fails. No operation on the channel is ever cancelled
            // (P7), and the handler touches only the thread-safe channel.
            timer.emplace(co_await asio::this_coro::executor, *timeout);
            timer->async_wait([ch = ch_](error_code ec) {
                if (!ec) {
                    ch->try_send(make_error_code(asio::error::timed_out), std::optional<value_t<T>>{});
                }
            });
        }
        auto [ec, value] = co_await ch_->async_receive(use_nothrow);
        if (timer) {
            timer->cancel();
        }
        if (ec == asio::experimental::error::channel_cancelled) {
            co_return make_error_code(asio::error::operation_aborted);  // the asker was cancelled
        }
        if (ec) {
            co_return ec;
        }
        if constexpr (std::is_void_v<T>) {
            co_return result<void>{};
        } else {
            co_return std::move(*value);
        }
    }

private:
    std::shared_ptr<reply_channel<T>> ch_;
};

template <class T>
std::pair<reply<T>, answer<T>> make_reply(asio::any_io_executor ex);

template <class T>
struct is_reply : std::false_type {};
template <class T>
struct is_reply<reply<T>> : std::true_type {};

// Admission to the mailbox, so stop() can tell "before" from "after" and the
// actor can end without leaving a sender stuck in the channel: bit 0 = closed,
// the rest counts senders between their admission and the moment their
// async_send has been started (a few instructions, never a suspension).
class admission {
public:
    bool try_enter() noexcept;   // false once closed
    void leave() noexcept;
    bool begin_stop() noexcept;  // closes and enters; true only for the first closer
    void close() noexcept;
    bool is_closed() const noexcept;
    bool idle() const noexcept;  // closed and no sender inside

private:
    std::atomic<std::uint64_t> state_{0};
};

class admission_guard {
public:
    explicit admission_guard(admission& a) noexcept : a_{a} {}
    admission_guard(admission_guard const&) = delete;
    admission_guard& operator=(admission_guard const&) = delete;
    ~admission_guard() { a_.leave(); }

private:
    admission& a_;
};

// A one-shot event with any number of waiters, before or after it is set.
class done_event {
public:
    explicit done_event(asio::any_io_executor ex);
    void set();
    // Returns once set; throws system_error if the waiting coroutine is cancelled.
    task<void> wait();

private:
    asio::experimental::concurrent_channel<void(error_code)> ch_;
};

// The error a sender sees when its async_send fails.
error_code send_failure(error_code ec, bool stopping) noexcept;

void log_handler_failure(std::string_view actor, std::type_info const& message, std::exception_ptr e) noexcept;
void log_actor_failure(std::string_view actor, std::exception_ptr e) noexcept;

struct stop_request {};

}  // namespace detail

// The reply slot a message carries (member `reply_to`). Move-only; answering
// twice is ignored; destroying it unanswered answers actor_stopped, so a
// dropped message, a stopped actor or a throwing handler never hangs an asker.
// A default-constructed slot has no asker (the message was told, not asked):
// answering it does nothing.
template <class T>
class reply {
public:
    using value_type = T;

    reply() noexcept = default;
    reply(reply&&) noexcept = default;
    reply& operator=(reply&& other) noexcept {
        if (this != &other) {
            abandon();
            ch_ = std::move(other.ch_);
        }
        return *this;
    }
    reply(reply const&) = delete;
    reply& operator=(reply const&) = delete;
    ~reply() { abandon(); }

    void set(detail::value_t<T> value) {
        if (auto ch = std::move(ch_)) {
            ch->try_send(error_code{}, std::optional<detail::value_t<T>>{std::move(value)});
        }
    }
    void set()
        requires std::is_void_v<T>
    {
        set(std::monostate{});
    }
    void fail(error_code ec) {
        if (auto ch = std::move(ch_)) {
            ch->try_send(ec, std::optional<detail::value_t<T>>{});
        }
    }
    // True while an asker waits for this slot's answer.
    bool pending() const noexcept { return ch_ != nullptr; }

private:
    explicit reply(std::shared_ptr<detail::reply_channel<T>> ch) noexcept : ch_{std::move(ch)} {}
    void abandon() noexcept {
        if (ch_) {
            fail(make_error_code(errc::actor_stopped));
        }
    }

    friend std::pair<reply, detail::answer<T>> detail::make_reply<T>(asio::any_io_executor);

    std::shared_ptr<detail::reply_channel<T>> ch_;
};

namespace detail {

template <class T>
std::pair<reply<T>, answer<T>> make_reply(asio::any_io_executor ex) {
    auto ch = std::make_shared<reply_channel<T>>(std::move(ex), 1);
    return {reply<T>{ch}, answer<T>{std::move(ch)}};
}

}  // namespace detail

// A message that can be asked: it has a `reply_to` member of type reply<R>.
template <class M>
concept askable = requires(M& m) {
    requires detail::is_reply<std::remove_cvref_t<decltype(m.reply_to)>>::value;
};

template <askable M>
using reply_type_t = typename std::remove_cvref_t<decltype(std::declval<M&>().reply_to)>::value_type;

struct actor_options {
    std::size_t capacity = 64;    // mailbox slots; a full mailbox makes senders wait
    std::string name = "actor";   // used in logs
};

template <class Derived, class... Args>
std::shared_ptr<Derived> spawn(Args&&... args);

// CRTP base: Derived defines on(M&) for every M in Messages and a facade
// calling the protected tell/ask/try_tell.
template <class Derived, class... Messages>
class actor : public std::enable_shared_from_this<Derived> {
public:
    using message = std::variant<detail::stop_request, Messages...>;
    using executor_type = asio::any_io_executor;  // a strand (net::make_strand)

    actor(actor const&) = delete;
    actor& operator=(actor const&) = delete;

    // The actor's strand: every handler runs on it.
    executor_type const& get_executor() const noexcept { return strand_; }
    std::string const& name() const noexcept { return name_; }

    // Handles everything sent before this call, then ends the actor; returns
    // when the actor's coroutine has ended. Idempotent: later callers only wait.
    task<void> stop() {
        auto self = this->shared_from_this();
        // The first caller queues the stop request behind everything already
        // sent, waiting senders included (channel FIFO); later callers and
        // calls after the end are refused at once. Either way: wait for the end.
        co_await send(message{std::in_place_index<0>}, admit::stopper);
        co_await done_.wait();
    }

    // Returns when the actor's coroutine has ended (after stop() or quit()).
    task<void> stopped() {
        auto self = this->shared_from_this();
        co_await done_.wait();
    }

protected:
    actor(asio::any_io_executor ex, actor_options opts)
        : strand_{net::make_strand(ex)},
          mailbox_{strand_, opts.capacity},
          done_{strand_},
          name_{std::move(opts.name)} {}
    ~actor() = default;

    // Sends m; waits while the mailbox is full. Success = m is in the mailbox.
    template <class M>
    task<result<void>> tell(M m) {
        static_assert(is_message<M>, "tell: M is not one of this actor's messages");
        auto self = this->shared_from_this();
        if (gate_.is_closed()) {
            co_return make_error_code(errc::actor_stopped);  // m (and its reply slot) dies here
        }
        auto [ec] = co_await send(message{std::in_place_type<M>, std::move(m)}, admit::sender);
        if (ec) {
            co_return detail::send_failure(ec, gate_.is_closed());
        }
        co_return result<void>{};
    }

    // Sends m only if there is room now; false if full or stopped (m is then
    // destroyed, so an asker of it would get actor_stopped). For callers that
    // must not wait (e.g. foreign threads); shedding must be counted (STYLE 2.4).
    template <class M>
    bool try_tell(M m) {
        static_assert(is_message<M>, "try_tell: M is not one of this actor's messages");
        if (!gate_.try_enter()) {
            return false;
        }
        detail::admission_guard guard{gate_};
        return mailbox_.try_send(error_code{}, message{std::in_place_type<M>, std::move(m)});
    }

    // Sends m with a fresh reply slot in m.reply_to and waits for the answer.
    template <askable M>
    task<result<reply_type_t<M>>> ask(M m) {
        return ask_impl(std::move(m), std::nullopt);
    }
    template <askable M>
    task<result<reply_type_t<M>>> ask(M m, std::chrono::steady_clock::duration timeout) {
        return ask_impl(std::move(m), timeout);
    }

    // A tell from outside a coroutine (a timer's handler, a worker thread):
    // a small coroutine on the actor's strand waits for mailbox space
    // (backpressure, nothing is dropped) and gives up quietly once the actor
    // has stopped. Never blocks.
    template <class M>
    void tell_later(M m) noexcept {
        static_assert(is_message<M>, "tell_later: M is not one of this actor's messages");
        asio::co_spawn(
            strand_,
            [self = this->shared_from_this(), m = std::move(m)]() mutable -> task<void> {
                auto sent = self->tell(std::move(m));
                co_await std::move(sent);
            },
            [](std::exception_ptr) {});  // tell reports its failures as values; nothing else can throw but bad_alloc
    }

    // From a handler: end the actor after the current message. Later sends
    // fail; messages still queued are dropped (their askers get actor_stopped).
    void quit() noexcept {
        quit_ = true;
        gate_.close();
    }

private:
    template <class D, class... A>
    friend std::shared_ptr<D> spawn(A&&... args);

    template <class M>
    static constexpr bool is_message = (std::is_same_v<M, Messages> || ...);

    template <class M>
    task<result<reply_type_t<M>>> ask_impl(M m, std::optional<std::chrono::steady_clock::duration> timeout) {
        static_assert(is_message<M>, "ask: M is not one of this actor's messages");
        auto self = this->shared_from_this();
        auto [slot, answer] = detail::make_reply<reply_type_t<M>>(co_await asio::this_coro::executor);
        m.reply_to = std::move(slot);
        // Never co_await inside an if/while condition: GCC 12.2 miscompiles it
        // when the call uses a parameter of the coroutine (crash at runtime).
        auto sent = co_await tell(std::move(m));
        if (!sent) {
            co_return sent.error();
        }
        co_return co_await answer.get(timeout);
    }

    enum class admit { sender, stopper };

    // Admission and async_send in one initiation, so "admitted" and "the send
    // has started" are one step for finish(): no suspension (nor a throw from
    // a cancelled caller's co_await) can come in between.
    auto send(message m, admit how) {
        return asio::async_initiate<decltype(use_nothrow), void(error_code)>(
            [this](auto handler, message m, admit how) {
                if (!(how == admit::sender ? gate_.try_enter() : gate_.begin_stop())) {
                    auto ex = asio::get_associated_executor(handler, strand_);
                    asio::post(ex, [h = std::move(handler)]() mutable {
                        std::move(h)(make_error_code(errc::actor_stopped));
                    });
                    return;  // m dies here: an asker gets actor_stopped
                }
                detail::admission_guard guard{gate_};
                mailbox_.async_send(error_code{}, std::move(m), std::move(handler));
            },
            use_nothrow, std::move(m), how);
    }

    void start() {
        asio::co_spawn(
            strand_, [self = this->shared_from_this()] { return self->run(); },
            [self = this->shared_from_this()](std::exception_ptr e) {
                if (e) {
                    detail::log_actor_failure(self->name_, e);
                }
                self->done_.set();
            });
    }

    task<void> run() {
        try {
            for (;;) {
                auto [ec, msg] = co_await mailbox_.async_receive(use_nothrow);
                if (ec || msg.index() == 0) {
                    break;  // stop request (or a channel error, which we never cause)
                }
                try {
                    if (auto pending = dispatch(msg)) {
                        co_await std::move(*pending);
                    }
                } catch (...) {
                    detail::log_handler_failure(
                        name_, std::visit([](auto const& m) -> std::type_info const& { return typeid(m); }, msg),
                        std::current_exception());
                }
                if (quit_) {
                    break;
                }
            }  // msg dies at the end of each turn: an unanswered reply slot answers actor_stopped
        } catch (...) {
            detail::log_actor_failure(name_, std::current_exception());
        }
        co_await finish();
    }

    // Calls the handler; a coroutine handler is returned to be awaited.
    std::optional<task<void>> dispatch(message& msg) {
        return std::visit(
            [this](auto& m) -> std::optional<task<void>> {
                using M = std::remove_cvref_t<decltype(m)>;
                if constexpr (std::is_same_v<M, detail::stop_request>) {
                    return std::nullopt;
                } else {
                    Derived& self = static_cast<Derived&>(*this);
                    static_assert(requires { self.on(m); }, "the actor has no handler on(M&) for a message type");
                    using R = decltype(self.on(m));
                    if constexpr (std::is_void_v<R>) {
                        self.on(m);
                        return std::nullopt;
                    } else {
                        static_assert(std::is_same_v<R, task<void>>, "a handler returns void or task<void>");
                        return self.on(m);
                    }
                }
            },
            msg);
    }

    // After the stop request (or quit): refuse new senders, wait out the few
    // admitted ones, release senders still waiting for space and drop what
    // raced in behind the stop request. Boost 1.81 constraints (P6): close()
    // keeps buffered messages unreachable and does not complete waiting
    // senders, and cancel() after close() mistakes waiting senders for
    // receivers. So: cancel() first, then drain, and close() last, when
    // admission guarantees that nobody touches the channel any more.
    task<void> finish() {
        gate_.close();
        while (!gate_.idle()) {
            co_await asio::post(strand_, asio::use_awaitable);
        }
        mailbox_.cancel();
        while (mailbox_.try_receive([](error_code, message) {})) {
        }
        mailbox_.close();
    }

    executor_type strand_;
    asio::experimental::concurrent_channel<void(error_code, message)> mailbox_;
    detail::admission gate_;
    detail::done_event done_;
    std::string const name_;
    bool quit_ = false;  // touched only by the actor's coroutine
};

// Creates an actor owned by a shared_ptr and starts its coroutine on its strand.
template <class Derived, class... Args>
std::shared_ptr<Derived> spawn(Args&&... args) {
    auto a = std::make_shared<Derived>(std::forward<Args>(args)...);
    a->start();
    return a;
}

}  // namespace parley::actors
