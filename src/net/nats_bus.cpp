#include "net/nats_bus.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <random>
#include <vector>

namespace parley::net {

std::string_view to_string(nats_state s) noexcept {
    switch (s) {
    case nats_state::connecting: return "connecting";
    case nats_state::connected: return "connected";
    case nats_state::reconnecting: return "reconnecting";
    case nats_state::closed: break;
    }
    return "closed";
}

namespace {

using reply_channel = asio::experimental::concurrent_channel<void(boost::system::error_code, std::string)>;

void check(natsStatus s, char const* what) {
    if (s != NATS_OK) {
        throw nats_error{std::string{"NATS: "} + what + ": " + natsStatus_GetText(s)};
    }
}

std::string random_hex(std::size_t n) {
    static constexpr char digits[] = "0123456789abcdef";
    std::random_device rd;
    std::string out(n, '0');
    for (auto& c : out) c = digits[rd() % 16];
    return out;
}

}  // namespace

// What the cnats callbacks reach. It outlives the connection: the last
// owner is the closed callback's (or the destructor's) reference.
struct nats_bus::impl {
    asio::any_io_executor ex;
    nats_options options;
    natsConnection* conn = nullptr;
    std::string inbox_prefix;  // "_INBOX.<random>": replies arrive on <prefix>.<token>

    std::atomic<int> state{static_cast<int>(nats_state::connecting)};
    std::atomic<bool> closing{false};
    std::atomic<std::uint64_t> received{0}, published{0}, publish_failures{0}, too_large{0}, reconnects{0};

    std::mutex mutex;  // guards what follows
    std::vector<natsSubscription*> subscriptions;  // the reply inbox first, then the queue subscriptions
    std::map<std::string, std::shared_ptr<reply_channel>> pending;
    std::uint64_t next_token = 1;

    // A subscription's handler; freed by cnats' on-complete callback, after
    // which it is never called again.
    // It keeps the impl alive as long as cnats may call back with it.
    struct handler_box {
        std::shared_ptr<impl> owner;
        std::function<void(nats_message)> on_message;
    };

    static void on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
        auto* box = static_cast<handler_box*>(closure);
        auto* self = box->owner.get();
        nats_message m;
        m.subject = natsMsg_GetSubject(msg);
        if (auto const* reply = natsMsg_GetReply(msg)) m.reply = reply;
        auto const size = static_cast<std::size_t>(std::max(0, natsMsg_GetDataLength(msg)));
        if (size > self->options.max_message_bytes) {
            ++self->too_large;
            m.data.clear();  // the handler sees an empty body and answers bad_request
            spdlog::warn("NATS: a message of {} bytes on {} is over the limit of {} bytes", size, m.subject,
                         self->options.max_message_bytes);
        } else {
            m.data.assign(natsMsg_GetData(msg), size);
        }
        natsMsg_Destroy(msg);
        ++self->received;
        asio::post(self->ex, [fn = box->on_message, m = std::move(m)]() mutable { fn(std::move(m)); });
    }

    static void on_complete(void* closure) { delete static_cast<handler_box*>(closure); }

    static void on_reply(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
        auto* self = static_cast<handler_box*>(closure)->owner.get();
        std::string_view const subject = natsMsg_GetSubject(msg);
        auto const token = std::string{subject.substr(std::min(subject.size(), self->inbox_prefix.size() + 1))};
        std::shared_ptr<reply_channel> ch;
        {
            std::lock_guard lock{self->mutex};
            if (auto it = self->pending.find(token); it != self->pending.end()) ch = it->second;
        }
        if (ch) {
            if (natsMsg_IsNoResponders(msg)) {
                ch->try_send(asio::error::host_unreachable, std::string{});
            } else {
                auto const size = static_cast<std::size_t>(std::max(0, natsMsg_GetDataLength(msg)));
                ch->try_send(boost::system::error_code{}, std::string{natsMsg_GetData(msg), size});
            }
        }
        natsMsg_Destroy(msg);
    }

    static void on_disconnected(natsConnection*, void* closure) {
        auto* self = static_cast<impl*>(closure);
        if (!self->closing) {
            self->state = static_cast<int>(nats_state::reconnecting);
            spdlog::warn("NATS: disconnected; reconnecting");
        }
    }
    static void on_connected(natsConnection*, void* closure) {
        auto* self = static_cast<impl*>(closure);
        self->state = static_cast<int>(nats_state::connected);
        spdlog::info("NATS: connected");
    }
    static void on_reconnected(natsConnection*, void* closure) {
        auto* self = static_cast<impl*>(closure);
        self->state = static_cast<int>(nats_state::connected);
        ++self->reconnects;
        spdlog::info("NATS: reconnected");
    }
    static void on_closed(natsConnection*, void* closure) {
        static_cast<impl*>(closure)->state = static_cast<int>(nats_state::closed);
    }
    // Doubling waits from reconnect_wait up to reconnect_wait_max, with up to 20% jitter.
    static int64_t reconnect_delay(natsConnection*, int attempts, void* closure) {
        auto* self = static_cast<impl*>(closure);
        auto wait = self->options.reconnect_wait.count();
        for (int i = 1; i < attempts && wait < self->options.reconnect_wait_max.count(); ++i) wait *= 2;
        wait = std::min<std::int64_t>(wait, self->options.reconnect_wait_max.count());
        std::random_device rd;
        return wait + static_cast<int64_t>(rd() % static_cast<unsigned>(wait / 5 + 1));
    }
};

std::shared_ptr<nats_bus> nats_bus::connect(asio::any_io_executor ex, nats_options options) {
    auto i = std::make_shared<impl>();
    i->ex = std::move(ex);
    i->options = std::move(options);
    i->inbox_prefix = "_INBOX." + random_hex(22);
    natsOptions* opts = nullptr;
    check(natsOptions_Create(&opts), "options");
    std::unique_ptr<natsOptions, decltype(&natsOptions_Destroy)> guard{opts, &natsOptions_Destroy};
    auto const& o = i->options;
    check(natsOptions_SetURL(opts, o.url.c_str()), "url");
    if (o.user || o.password) {
        check(natsOptions_SetUserInfo(opts, o.user ? o.user->c_str() : "", o.password ? o.password->c_str() : ""),
              "user and password");
    }
    if (o.token) check(natsOptions_SetToken(opts, o.token->c_str()), "token");
    check(natsOptions_SetName(opts, o.name.c_str()), "name");
    check(natsOptions_SetTimeout(opts, o.connect_timeout.count()), "timeout");
    check(natsOptions_SetMaxReconnect(opts, -1), "max reconnect");
    check(natsOptions_SetCustomReconnectDelay(opts, &impl::reconnect_delay, i.get()), "reconnect delay");
    check(natsOptions_SetDisconnectedCB(opts, &impl::on_disconnected, i.get()), "disconnected callback");
    check(natsOptions_SetReconnectedCB(opts, &impl::on_reconnected, i.get()), "reconnected callback");
    check(natsOptions_SetClosedCB(opts, &impl::on_closed, i.get()), "closed callback");
    check(natsOptions_SetRetryOnFailedConnect(opts, true, &impl::on_connected, i.get()), "retry on failed connect");
    auto s = natsConnection_Connect(&i->conn, opts);
    if (s == NATS_OK) {
        i->state = static_cast<int>(nats_state::connected);
    } else if (s != NATS_NOT_YET_CONNECTED) {
        check(s, "connect");
    } else {
        spdlog::warn("NATS: {} is not reachable yet; retrying in the background", o.url);
    }
    natsSubscription* inbox = nullptr;
    auto const wildcard = i->inbox_prefix + ".*";
    auto* box = new impl::handler_box{i, {}};
    s = natsConnection_Subscribe(&inbox, i->conn, wildcard.c_str(), &impl::on_reply, box);
    if (s != NATS_OK) {
        delete box;
        check(s, "reply inbox");
    }
    natsSubscription_SetOnCompleteCB(inbox, &impl::on_complete, box);
    i->subscriptions.push_back(inbox);
    return std::shared_ptr<nats_bus>{new nats_bus{std::move(i)}};
}

nats_bus::~nats_bus() { close(std::chrono::milliseconds{0}); }

void nats_bus::queue_subscribe(std::string const& subject, std::string const& queue,
                               std::function<void(nats_message)> on_message) {
    auto* box = new impl::handler_box{impl_, std::move(on_message)};
    natsSubscription* sub = nullptr;
    auto s = natsConnection_QueueSubscribe(&sub, impl_->conn, subject.c_str(), queue.c_str(), &impl::on_message, box);
    if (s != NATS_OK) {
        delete box;
        check(s, "subscribe");
    }
    natsSubscription_SetOnCompleteCB(sub, &impl::on_complete, box);
    std::lock_guard lock{impl_->mutex};
    impl_->subscriptions.push_back(sub);
}

void nats_bus::stop_serving() {
    std::lock_guard lock{impl_->mutex};
    for (std::size_t i = 1; i < impl_->subscriptions.size(); ++i) {
        natsSubscription_Unsubscribe(impl_->subscriptions[i]);
    }
}

bool nats_bus::publish(std::string_view subject, std::string_view data) {
    if (impl_->closing || data.size() > impl_->options.max_message_bytes) {
        ++impl_->publish_failures;
        return false;
    }
    std::string const subj{subject};
    auto s = natsConnection_Publish(impl_->conn, subj.c_str(), data.data(), static_cast<int>(data.size()));
    if (s != NATS_OK) {
        ++impl_->publish_failures;
        return false;
    }
    ++impl_->published;
    return true;
}

task<boost::system::result<std::string>> nats_bus::request(std::string subject, std::string data,
                                                           std::chrono::milliseconds timeout) {
    auto i = impl_;
    if (i->closing || i->state.load() == static_cast<int>(nats_state::closed)) {
        co_return boost::system::error_code{asio::error::not_connected};
    }
    if (data.size() > i->options.max_message_bytes) {
        ++i->publish_failures;
        co_return boost::system::error_code{asio::error::message_size};
    }
    auto executor = co_await asio::this_coro::executor;
    auto ch = std::make_shared<reply_channel>(executor, 1);
    std::string token;
    {
        std::lock_guard lock{i->mutex};
        token = std::to_string(i->next_token++);
        i->pending[token] = ch;
    }
    auto const reply = i->inbox_prefix + "." + token;
    auto s = natsConnection_PublishRequest(i->conn, subject.c_str(), reply.c_str(), data.data(),
                                           static_cast<int>(data.size()));
    boost::system::result<std::string> out = boost::system::error_code{asio::error::not_connected};
    if (s == NATS_OK) {
        ++i->published;
        asio::steady_timer timer{executor, timeout};
        using namespace asio::experimental::awaitable_operators;
        auto receive = ch->async_receive(use_nothrow);
        auto wait = timer.async_wait(use_nothrow);
        auto which = co_await (std::move(receive) || std::move(wait));
        if (which.index() == 0) {
            auto& [ec, body] = std::get<0>(which);
            if (ec) {
                out = ec;
            } else {
                out = std::move(body);
            }
        } else {
            out = boost::system::error_code{asio::error::timed_out};
        }
    } else {
        ++i->publish_failures;
    }
    std::lock_guard lock{i->mutex};
    i->pending.erase(token);
    co_return out;
}

nats_state nats_bus::state() const noexcept { return static_cast<nats_state>(impl_->state.load()); }

nats_counters nats_bus::counters() const noexcept {
    nats_counters c;
    c.received = impl_->received;
    c.published = impl_->published;
    c.publish_failures = impl_->publish_failures;
    c.too_large = impl_->too_large;
    c.reconnects = impl_->reconnects;
    return c;
}

void nats_bus::close(std::chrono::milliseconds wait) {
    if (impl_->closing.exchange(true)) {
        return;
    }
    if (wait.count() > 0 && state() == nats_state::connected) {
        natsConnection_DrainTimeout(impl_->conn, wait.count());
        // Drain is asynchronous: wait (bounded) until the connection closed.
        auto const deadline = std::chrono::steady_clock::now() + wait + std::chrono::milliseconds{500};
        while (natsConnection_Status(impl_->conn) != NATS_CONN_STATUS_CLOSED &&
               std::chrono::steady_clock::now() < deadline) {
            nats_Sleep(10);
        }
    }
    natsConnection_Close(impl_->conn);
    // The closed callback is the connection's last (its closure is the impl).
    for (int i = 0; i != 200 && impl_->state.load() != static_cast<int>(nats_state::closed); ++i) {
        nats_Sleep(5);
    }
    std::vector<natsSubscription*> subs;
    {
        std::lock_guard lock{impl_->mutex};
        subs.swap(impl_->subscriptions);
    }
    for (auto* sub : subs) natsSubscription_Destroy(sub);
    natsConnection_Destroy(impl_->conn);
    impl_->conn = nullptr;
    impl_->state = static_cast<int>(nats_state::closed);
}

}  // namespace parley::net
