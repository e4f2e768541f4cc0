#pragma once
// Graceful shutdown's bookkeeping (issue #6): the work in flight (WebSocket
// connections, /v1/respond turns, proxied calls) registers here, so that on
// SIGTERM serve can tell it to wind down, wait for it within the grace
// period, and cancel what is left (its usage is still recorded).
//
//   auto t = drain->enter(on_drain, on_cancel);   // null: already draining, refuse the work
//   ...                                           // the work; t dropped when it ends
//   drain->begin();        // every on_drain is called (once): finish and close
//   drain->cancel_all();   // every on_cancel is called (once): stop now
//   drain->active();       // tickets still held
//
// Callbacks run on the thread that calls begin() or cancel_all(): they must
// post to their own executor and return at once. Thread-safe.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace parley::app {

class drain : public std::enable_shared_from_this<drain> {
public:
    class ticket {
    public:
        ticket(std::shared_ptr<drain> owner, std::uint64_t id) : owner_{std::move(owner)}, id_{id} {}
        ~ticket() { owner_->leave(id_); }
        ticket(ticket const&) = delete;
        ticket& operator=(ticket const&) = delete;

    private:
        std::shared_ptr<drain> owner_;
        std::uint64_t id_;
    };

    std::shared_ptr<ticket> enter(std::function<void()> on_drain, std::function<void()> on_cancel) {
        std::lock_guard lock{mutex_};
        if (draining_) {
            return nullptr;
        }
        auto const id = next_++;
        entries_[id] = entry{std::move(on_drain), std::move(on_cancel)};
        return std::make_shared<ticket>(shared_from_this(), id);
    }

    bool draining() const {
        std::lock_guard lock{mutex_};
        return draining_;
    }

    void begin() { call(&entry::on_drain, true); }
    void cancel_all() { call(&entry::on_cancel, false); }

    std::size_t active() const {
        std::lock_guard lock{mutex_};
        return entries_.size();
    }

private:
    struct entry {
        std::function<void()> on_drain;
        std::function<void()> on_cancel;
    };

    void leave(std::uint64_t id) {
        std::lock_guard lock{mutex_};
        entries_.erase(id);
    }

    void call(std::function<void()> entry::*which, bool start_draining) {
        std::vector<std::function<void()>> calls;
        {
            std::lock_guard lock{mutex_};
            if (start_draining) {
                if (draining_) {
                    return;
                }
                draining_ = true;
            }
            for (auto& [id, e] : entries_) {
                if (e.*which) {
                    calls.push_back(std::move(e.*which));
                    e.*which = nullptr;
                }
            }
        }
        for (auto& c : calls) {
            c();
        }
    }

    mutable std::mutex mutex_;
    bool draining_ = false;
    std::uint64_t next_ = 1;
    std::map<std::uint64_t, entry> entries_;
};

}  // namespace parley::app
