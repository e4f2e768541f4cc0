#pragma once
// Frames from a session's strand (its sink) to the coroutine of the front
// door that sends them (an HTTP stream, a WebSocket), thread-safe. Deltas
// beyond `limit` waiting are dropped and mark the queue overflowed (the
// front door then cancels the turn: its client reads too slowly); the
// frames that end a turn (done, error) and control frames are always kept.
#include "net/asio.hpp"

#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/json/object.hpp>

#include <list>
#include <mutex>
#include <optional>

namespace parley::app {

class frame_queue {
public:
    frame_queue(asio::any_io_executor ex, std::size_t limit) : limit_(limit), wake_(std::move(ex), 1) {}

    void push(boost::json::object f) {
        {
            std::lock_guard lock{mutex_};
            auto const* type = f.if_contains("type");
            bool const droppable = type && type->is_string() && (type->as_string() == "delta" || type->as_string() == "tool");
            if (droppable && frames_.size() >= limit_) {
                overflowed_ = true;
            } else {
                frames_.push_back(std::move(f));
            }
        }
        wake_.try_send(boost::system::error_code{});
    }

    // The next frame; an empty object once close() was called and nothing is left.
    task<boost::json::object> pop() {
        for (;;) {
            {
                std::lock_guard lock{mutex_};
                if (!frames_.empty()) {
                    auto f = std::move(frames_.front());
                    frames_.pop_front();
                    co_return f;
                }
                if (closed_) {
                    boost::json::object none;
                    co_return none;
                }
            }
            co_await wake_.async_receive(use_nothrow);
        }
    }

    // The next frame if one is waiting now; nullopt otherwise (also once
    // closed and drained). Never waits: a writer that took one frame with
    // pop() takes the ones that came with it here and sends them together.
    std::optional<boost::json::object> try_pop() {
        std::lock_guard lock{mutex_};
        if (frames_.empty()) {
            return std::nullopt;
        }
        auto f = std::move(frames_.front());
        frames_.pop_front();
        return f;
    }

    // Wakes pop() for good: it returns what is left, then empty objects.
    void close() {
        {
            std::lock_guard lock{mutex_};
            closed_ = true;
        }
        wake_.try_send(boost::system::error_code{});
    }

    // Drops the frames waiting (a client too slow to read them).
    void discard() {
        std::lock_guard lock{mutex_};
        frames_.clear();
    }

    bool overflowed() {
        std::lock_guard lock{mutex_};
        return overflowed_;
    }

private:
    std::size_t limit_;
    std::mutex mutex_;
    // A list, not a deque: an empty std::deque already holds a 512-byte node
    // and its map, and most connections sit idle (memory per idle
    // WebSocket session, bench/results/gateways-profile.md).
    std::list<boost::json::object> frames_;
    bool overflowed_ = false;
    bool closed_ = false;
    asio::experimental::concurrent_channel<void(boost::system::error_code)> wake_;
};

}  // namespace parley::app
