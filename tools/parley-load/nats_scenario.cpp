// nats: requests on the bus subject Parley serves (ARCHITECTURE §4 "NATS"),
// answered with the same frames as the WebSocket on the request's reply
// subject. One cnats connection; every reply subject is under one inbox
// wildcard subscription, whose callback (a cnats thread) only posts what
// arrived to the worker's io_context.
#include "scenario.hpp"

#include "net/asio.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <nats/nats.h>

#include <random>
#include <unordered_map>

namespace parley::load {

namespace {

class nats_worker final : public worker {
public:
    explicit nats_worker(options const& o) : o_{o} {
        std::random_device rd;
        char hex[17];
        std::snprintf(hex, sizeof hex, "%08x%08x", rd(), rd());
        inbox_ = std::string{"_INBOX.load."} + hex;
        for (unsigned u = 0; u < (o_.secret ? o_.users : 1u); ++u) {
            boost::json::object req;
            req["token"] = token_for(o_, u);
            req["text"] = o_.prompt;
            req["stream"] = o_.stream;
            req["language"] = o_.language;
            bodies_.push_back(boost::json::serialize(req));
        }
    }

    ~nats_worker() override {
        if (sub_) {
            natsSubscription_Unsubscribe(sub_);
            natsSubscription_Destroy(sub_);
        }
        if (conn_) {
            natsConnection_Close(conn_);
            natsConnection_Destroy(conn_);
        }
    }

    void run() override {
        natsOptions* opts = nullptr;
        check(natsOptions_Create(&opts), "options");
        std::unique_ptr<natsOptions, decltype(&natsOptions_Destroy)> guard{opts, &natsOptions_Destroy};
        check(natsOptions_SetURL(opts, o_.url.c_str()), "--url");
        check(natsOptions_SetName(opts, "parley-load"), "name");
        check(natsConnection_Connect(&conn_, opts), "connect to " + o_.url);
        auto const wildcard = inbox_ + ".*";
        check(natsConnection_Subscribe(&sub_, conn_, wildcard.c_str(), &nats_worker::on_reply, this), "subscribe");
        natsSubscription_SetPendingLimits(sub_, -1, -1);  // never drop replies: the load must see them all
        natsConnection_Flush(conn_);

        auto main = [this]() -> task<void> {
            if (o_.rate > 0) co_await open_loop();
            else co_await closed_loop();
        };
        asio::co_spawn(ioc_, main(), [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
        auto work = asio::make_work_guard(ioc_);  // replies are posted from cnats threads
        ioc_.run();
    }

private:
    struct pending {
        turn_timing timing;
        clock::time_point deadline;
    };

    static void check(natsStatus s, std::string const& what) {
        if (s != NATS_OK) throw std::runtime_error{"nats " + what + ": " + natsStatus_GetText(s)};
    }

    static void on_reply(natsConnection*, natsSubscription*, natsMsg* msg, void* self_ptr) {
        auto* self = static_cast<nats_worker*>(self_ptr);
        std::string subject = natsMsg_GetSubject(msg);
        std::string data{natsMsg_GetData(msg), static_cast<std::size_t>(std::max(0, natsMsg_GetDataLength(msg)))};
        natsMsg_Destroy(msg);
        auto const now = clock::now();
        asio::post(self->ioc_, [self, subject = std::move(subject), data = std::move(data), now] {
            self->arrived(subject, data, now);
        });
    }

    void arrived(std::string const& subject, std::string const& data, clock::time_point now) {
        auto const dot = subject.rfind('.');
        auto const id = leading_number(std::string_view{subject}.substr(dot + 1));
        auto it = pending_.find(id);
        if (it == pending_.end()) return;  // timed out already
        if (on_frame(data, now, it->second.timing, result, live) == frame_outcome::going_on) return;
        pending_.erase(it);
        answered();
    }

    void answered() {
        live.completed.fetch_add(1, std::memory_order_relaxed);
        if (o_.rate <= 0 && may_send(clock::now())) send(clock::now());
    }

    bool may_send(clock::time_point at) const {
        return at < end_ && (o_.max_requests == 0 || sent_ < o_.max_requests);
    }

    void send(clock::time_point due) {
        auto const id = sent_++;
        live.started.fetch_add(1, std::memory_order_relaxed);
        auto const reply = inbox_ + "." + std::to_string(id);
        auto const& body = bodies_[id % bodies_.size()];
        pending_.emplace(id, pending{turn_timing{due}, due + seconds_of(o_.timeout_s)});
        auto s = natsConnection_PublishRequest(conn_, o_.subject.c_str(), reply.c_str(), body.data(),
                                               static_cast<int>(body.size()));
        if (s != NATS_OK) {
            pending_.erase(id);
            result.error("publish_failed", live);
            answered();
        }
    }

    task<void> open_loop() {
        start();
        auto const interval = std::chrono::duration<double>{1.0 / o_.rate};
        asio::steady_timer timer{ioc_};
        for (std::uint64_t i = 0;; ++i) {
            auto const at = start_ + std::chrono::duration_cast<clock::duration>(interval * static_cast<double>(i));
            if (!may_send(at)) break;
            timer.expires_at(at);
            co_await timer.async_wait(use_nothrow);
            send(at);
            if (i % 128 == 0) sweep();
        }
        co_await drain();
    }

    task<void> closed_loop() {
        start();
        for (unsigned c = 0; c < o_.concurrency && may_send(clock::now()); ++c) send(clock::now());
        co_await drain();
    }

    void start() {
        start_ = clock::now();
        end_ = start_ + seconds_of(o_.duration_s);
    }

    // Requests past their deadline fail as timeouts.
    void sweep() {
        auto const now = clock::now();
        for (auto it = pending_.begin(); it != pending_.end();) {
            if (it->second.deadline > now) {
                ++it;
                continue;
            }
            it = pending_.erase(it);
            result.error("timeout", live);
            answered();
        }
    }

    task<void> drain() {
        auto const give_up = end_ + seconds_of(o_.drain_s);
        asio::steady_timer timer{ioc_};
        // Open loop: every request is sent before drain() starts; closed loop:
        // replies send the next ones, so only an empty pending set is the end.
        while (!pending_.empty() && clock::now() < give_up) {
            timer.expires_after(std::chrono::milliseconds{20});
            co_await timer.async_wait(use_nothrow);
            sweep();
        }
        for (std::size_t i = 0; i < pending_.size(); ++i) result.error("unfinished", live);
        pending_.clear();
        ioc_.stop();
    }

    options const& o_;
    asio::io_context ioc_{1};
    natsConnection* conn_ = nullptr;
    natsSubscription* sub_ = nullptr;
    std::string inbox_;
    std::vector<std::string> bodies_;  // one per user
    std::unordered_map<std::uint64_t, pending> pending_;
    std::uint64_t sent_ = 0;
    clock::time_point start_, end_;
};

}  // namespace

std::vector<std::unique_ptr<worker>> make_nats_workers(options const& o) {
    std::vector<std::unique_ptr<worker>> out;
    out.push_back(std::make_unique<nats_worker>(o));
    return out;
}

}  // namespace parley::load
