#include "actors/usage_writer.hpp"

#include "persistence/migrations.hpp"
#include "persistence/usage_repository.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <variant>

namespace parley::actors {

usage_writer::usage_writer(asio::any_io_executor ex, std::shared_ptr<persistence::usage_log> log,
                           std::shared_ptr<persistence::database> db, usage_writer_options options)
    : actor{std::move(ex), {.capacity = options.mailbox, .name = "usage_writer"}},
      log_{std::move(log)},
      db_{std::move(db)},
      options_{options},
      sync_timer_{get_executor()},
      flush_timer_{get_executor()} {
    // Start-up replay: what the database may not hold yet. Blocking file
    // reads, but before the actor runs and before any turn is served.
    queued_through_ = log_->checkpointed();
    stats_.replayed = log_->backlog();
    for (auto& e : log_->read_after(log_->checkpointed(), options_.max_pending)) {
        queued_through_ = e.seq;
        pending_.push_back(std::move(e));
    }
    overflow_ = log_->last_seq() > queued_through_;
    if (stats_.replayed != 0) {
        spdlog::info("usage writer: {} usage log entries after the checkpoint are replayed into the database",
                     stats_.replayed);
    }
}

usage_writer::~usage_writer() { sync_pool_.join(); }

task<result<void>> usage_writer::record(domain::usage_record r) {
    return ask(writer_msg::append{persistence::log_item{std::move(r)}, {}});
}

task<result<void>> usage_writer::correct(domain::cost_correction c) {
    return ask(writer_msg::append{persistence::log_item{std::move(c)}, {}});
}

task<result<void>> usage_writer::flush(std::chrono::milliseconds timeout) { return ask(writer_msg::flush{}, timeout); }

task<result<usage_writer_stats>> usage_writer::stats() { return ask(writer_msg::get_stats{}); }

task<void> usage_writer::shutdown(std::chrono::milliseconds timeout) {
    auto self = shared_from_this();
    auto flushed = flush(timeout);
    auto f = co_await std::move(flushed);
    if (!f) {
        spdlog::warn("usage writer: stopping with {} usage log entries not yet in the database ({}); they are "
                     "written at the next start",
                     log_->backlog(), f.error().message());
    }
    auto closed = ask(writer_msg::close{});
    co_await std::move(closed);
    // The last fdatasync, after any one in flight (the pool has one thread).
    auto last_sync = [log = log_]() -> task<void> {
        try {
            log->sync();
        } catch (std::exception const& e) {  // LCOV_EXCL_LINE: a disk failing at exit
            spdlog::error("usage writer: the last fdatasync of the usage log failed: {}", e.what());  // LCOV_EXCL_LINE
        }
        co_return;
    };
    co_await asio::co_spawn(sync_pool_.get_executor(), std::move(last_sync), asio::use_awaitable);
    co_await stop();
}

// ------------------------------------------------------------ handlers

void usage_writer::on(writer_msg::append& m) {
    if (closing_) {
        m.reply_to.fail(make_error_code(errc::actor_stopped));
        return;
    }
    std::uint64_t seq = 0;
    try {
        seq = log_->append(m.item);
    } catch (std::exception const& e) {
        ++stats_.log_failures;
        spdlog::error("usage writer: the usage log could not be written, the call's usage is NOT saved: {}", e.what());
        m.reply_to.fail(make_error_code(errc::usage_log_failed));
        return;
    }
    ++stats_.logged;
    dirty_ = true;
    arm_sync();
    queue(persistence::log_entry{seq, std::move(m.item)});
    m.reply_to.set();
    if (pending_.size() >= options_.batch_size) {
        start_write();
    } else {
        arm_flush(options_.flush_interval);
    }
}

void usage_writer::queue(persistence::log_entry e) {
    // Once anything waits in the log only, later entries wait there too, so
    // the queue stays in sequence order; refills read them back in order.
    if (!overflow_ && pending_.size() < options_.max_pending) {
        queued_through_ = e.seq;
        pending_.push_back(std::move(e));
    } else {
        overflow_ = true;
    }
}

void usage_writer::arm_sync() {
    if (sync_armed_ || syncing_ || closing_) {
        return;
    }
    sync_armed_ = true;
    sync_timer_.expires_after(options_.fsync_interval);
    sync_timer_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
        if (auto self = weak.lock(); self && !ec) {
            self->tell_later(writer_msg::sync_tick{});
        }
    });
}

void usage_writer::release_on_strand(std::shared_ptr<usage_writer> self) {
    auto ex = self->get_executor();
    asio::post(ex, [self = std::move(self)] {});
}

void usage_writer::on(writer_msg::sync_tick&) {
    sync_armed_ = false;
    if (!dirty_ || syncing_ || closing_) {
        return;  // closing: shutdown() makes the last fdatasync itself
    }
    dirty_ = false;
    syncing_ = true;
    asio::post(sync_pool_, [self = shared_from_this()]() mutable {
        try {
            self->log_->sync();
        } catch (std::exception const& e) {  // LCOV_EXCL_LINE: a failing disk
            spdlog::error("usage writer: fdatasync of the usage log failed: {}", e.what());  // LCOV_EXCL_LINE
        }
        self->tell_later(writer_msg::sync_done{});
        release_on_strand(std::move(self));
    });
}

void usage_writer::on(writer_msg::sync_done&) {
    syncing_ = false;
    ++stats_.syncs;
    if (dirty_) {
        arm_sync();
    }
}

void usage_writer::arm_flush(std::chrono::milliseconds after) {
    if (flush_armed_ || writing_ || closing_) {
        return;
    }
    flush_armed_ = true;
    flush_timer_.expires_after(after);
    flush_timer_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
        if (auto self = weak.lock(); self && !ec) {
            self->tell_later(writer_msg::flush_tick{});
        }
    });
}

void usage_writer::on(writer_msg::flush_tick&) {
    flush_armed_ = false;
    start_write();
}

void usage_writer::start_write() {
    if (writing_ || closing_) {
        return;
    }
    if (pending_.empty()) {
        start_refill();
        return;
    }
    writing_ = true;
    auto const n = std::min(pending_.size(), options_.batch_size);
    std::vector<domain::usage_record> records;
    std::vector<domain::cost_correction> corrections;
    for (std::size_t i = 0; i != n; ++i) {
        if (auto const* r = std::get_if<domain::usage_record>(&pending_[i].item)) {
            records.push_back(*r);
        } else {
            corrections.push_back(std::get<domain::cost_correction>(pending_[i].item));
        }
    }
    writer_msg::write_done done;
    done.count = n;
    done.last_seq = pending_[n - 1].seq;
    auto const now = std::chrono::steady_clock::now();
    bool const checkpoint = n == pending_.size() || now - last_checkpoint_ >= options_.checkpoint_interval;
    if (checkpoint) {
        last_checkpoint_ = now;
    }
    asio::co_spawn(
        get_executor(),
        [self = shared_from_this(), records = std::move(records), corrections = std::move(corrections), done,
         checkpoint]() mutable -> task<void> {
            // A record's correction always comes after it in the log, so
            // inserting the batch's rows before its corrections is in order.
            auto work = [&records, &corrections, log = self->log_, d = self->db_->kind(), ready = self->schema_ready_,
                         last = done.last_seq, checkpoint](soci::session& sql) {
                if (!ready->load()) {
                    // A database that was down at start-up may be new: its
                    // tables are created before the first rows go in.
                    persistence::migrate(sql, d);
                    ready->store(true);
                }
                auto const inserted = persistence::insert_usage(sql, d, records);
                auto const corrected = persistence::apply_corrections(sql, d, corrections);
                if (checkpoint) {
                    log->checkpoint(last);  // covers the batches written since the last one too
                }
                return std::pair{inserted, corrected};
            };
            try {
                auto const [inserted, corrected] = co_await self->db_->run(std::move(work));
                done.inserted = inserted;
                done.corrected = corrected;
                done.duplicates = records.size() - inserted;
            } catch (std::exception const& e) {
                done.error = e.what();
            }
            auto told = self->tell(std::move(done));
            co_await std::move(told);
        },
        [](std::exception_ptr) {});  // the body catches everything it can meet
}

void usage_writer::on(writer_msg::write_done& m) {
    writing_ = false;
    if (m.error) {
        ++stats_.write_failures;
        if (stats_.database_ok) {
            spdlog::warn("usage writer: writing usage rows to the database failed ({}); they wait in the usage log "
                         "and the write is retried",
                         *m.error);
        }
        stats_.database_ok = false;
        backoff_ = backoff_.count() == 0 ? options_.retry_initial : std::min(backoff_ * 2, options_.retry_max);
        answer_flushers(m.error);
        arm_flush(backoff_);
        return;
    }
    if (!stats_.database_ok) {
        spdlog::info("usage writer: the database is back; writing the waiting usage rows");
    }
    stats_.database_ok = true;
    backoff_ = std::chrono::milliseconds{0};
    ++stats_.batches;
    stats_.inserted += m.inserted;
    stats_.duplicates += m.duplicates;
    stats_.corrected += m.corrected;
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(m.count));
    if (all_written()) {
        answer_flushers(std::nullopt);
        return;
    }
    if (pending_.size() >= options_.batch_size || !flushers_.empty() || pending_.empty()) {
        start_write();  // a full batch, someone waiting, or a refill from the log
    } else {
        arm_flush(options_.flush_interval);
    }
}

void usage_writer::start_refill() {
    if (refilling_ || !overflow_ || closing_) {
        return;
    }
    refilling_ = true;
    asio::post(sync_pool_, [self = shared_from_this(), after = queued_through_, max = options_.max_pending]() mutable {
        writer_msg::refill r;
        try {
            r.entries = self->log_->read_after(after, max);
        } catch (std::exception const& e) {  // LCOV_EXCL_START: the log went unreadable under us
            spdlog::error("usage writer: reading the usage log back failed (retried later): {}", e.what());
            r.read_failed = true;
        }  // LCOV_EXCL_STOP
        self->tell_later(std::move(r));
        release_on_strand(std::move(self));
    });
}

void usage_writer::on(writer_msg::refill& m) {
    refilling_ = false;
    if (m.read_failed) {
        arm_flush(options_.retry_max);  // LCOV_EXCL_LINE: see start_refill
        return;                         // LCOV_EXCL_LINE
    }
    if (m.entries.empty()) {
        // Nothing readable after what is queued (numbers a failed append
        // gave up): there is nothing left to wait for in the log.
        queued_through_ = std::max(queued_through_, log_->last_seq());
    }
    for (auto& e : m.entries) {
        if (e.seq > queued_through_ && pending_.size() < options_.max_pending) {
            queued_through_ = e.seq;
            pending_.push_back(std::move(e));
        }
    }
    overflow_ = log_->last_seq() > queued_through_;
    start_write();
}

void usage_writer::on(writer_msg::flush& m) {
    if (all_written()) {
        m.reply_to.set();
        return;
    }
    flushers_.push_back(std::move(m.reply_to));
    start_write();
}

void usage_writer::on(writer_msg::get_stats& m) {
    auto s = stats_;
    s.queue_depth = pending_.size();
    s.log_backlog = log_->backlog();
    m.reply_to.set(s);
}

void usage_writer::on(writer_msg::close& m) {
    closing_ = true;
    sync_timer_.cancel();
    flush_timer_.cancel();
    answer_flushers(std::string{"the writer is stopping"});
    m.reply_to.set();
}

bool usage_writer::all_written() const { return pending_.empty() && !overflow_ && !writing_; }

void usage_writer::answer_flushers(std::optional<std::string> const& error) {
    for (auto& f : flushers_) {
        if (error) {
            f.fail(make_error_code(errc::database_unavailable));
        } else {
            f.set();
        }
    }
    flushers_.clear();
}

}  // namespace parley::actors
