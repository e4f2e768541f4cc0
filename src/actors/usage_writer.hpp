#pragma once
// UsageWriterActor (ARCHITECTURE §3; issue #4): every usage record goes into
// the write-ahead log (persistence/usage_log.hpp) BEFORE record() returns, so
// a turn is reported complete only once its row survives a crash; from the
// log, rows go to the database in batches (INSERT ... ON CONFLICT
// (request_id) DO NOTHING), and the log's checkpoint advances after each
// batch the database took. A database outage only delays rows: the writer
// retries with a doubling backoff, keeps at most max_pending rows in memory
// and reads the rest back from the log when the database is back. At
// start-up everything after the checkpoint is replayed.
//
//  * record()/correct(): one write(2) to the log on the actor's strand (a
//    page-cache copy of a few hundred bytes), fdatasync'ed by a worker
//    thread about fsync_interval later (group commit: the interval plus the
//    fdatasync in flight, if one is; a crash of the process loses nothing
//    once write(2) returned, only a power cut can take that window). A log that cannot
//    be written is an error for the caller and a loud log line, never a
//    silent drop.
//  * Database writes and checkpoints run on the database's worker threads;
//    one batch is in flight at a time, in sequence order, so the checkpoint
//    never passes a row the database does not hold. The checkpoint (two
//    fsyncs) is written at most every checkpoint_interval while rows keep
//    coming, and always when the queue runs empty; a crash in between only
//    replays rows the database then skips.
//  * flush(): waits until everything logged so far is in the database
//    (or fails at once when a write fails), for a short-lived process.
//  * shutdown(): a last flush bounded by a timeout, a last fdatasync, stop.
#include "actors/runtime.hpp"
#include "domain/usage.hpp"
#include "persistence/database.hpp"
#include "persistence/usage_log.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace parley::actors {

struct usage_writer_options {
    std::size_t batch_size = 256;
    std::chrono::milliseconds flush_interval{200};
    std::chrono::milliseconds fsync_interval{5};
    std::size_t max_pending = 100'000;
    std::chrono::milliseconds retry_initial{250};   // database retry backoff, doubling...
    std::chrono::milliseconds retry_max{5'000};     // ... up to this
    std::chrono::milliseconds checkpoint_interval{1'000};  // between checkpoints while busy
    std::size_t mailbox = 4096;
};

// Gauges and counters (the metrics of issue #4: queue depth, log backlog,
// write failures).
struct usage_writer_stats {
    std::uint64_t logged = 0;          // entries appended to the log by this process
    std::uint64_t log_failures = 0;    // appends that failed (the caller got an error)
    std::uint64_t replayed = 0;        // entries found after the checkpoint at start-up
    std::uint64_t inserted = 0;        // rows the database took
    std::uint64_t duplicates = 0;      // rows the database already had (a replay after a crash)
    std::uint64_t corrected = 0;       // estimate rows given their provider cost
    std::uint64_t batches = 0;         // database transactions that succeeded
    std::uint64_t write_failures = 0;  // database writes that failed (retried)
    std::uint64_t syncs = 0;           // fdatasync calls
    std::size_t queue_depth = 0;       // entries in memory waiting for the database
    std::uint64_t log_backlog = 0;     // entries in the log not yet in the database
    bool database_ok = true;           // the last database write succeeded
};

namespace writer_msg {
struct append {
    persistence::log_item item;
    reply<void> reply_to;
};
struct sync_tick {};
struct sync_done {};
struct flush_tick {};
struct write_done {
    std::uint64_t last_seq = 0;
    std::size_t count = 0;
    std::size_t inserted = 0;
    std::size_t duplicates = 0;
    std::size_t corrected = 0;
    std::optional<std::string> error;  // set: the write failed
};
struct refill {
    std::vector<persistence::log_entry> entries;
    bool read_failed = false;  // the entries could not be read: nothing may be skipped
};
struct flush {
    reply<void> reply_to;
};
struct get_stats {
    reply<usage_writer_stats> reply_to;
};
struct close {
    reply<void> reply_to;
};
}  // namespace writer_msg

class usage_writer final
    : public actor<usage_writer, writer_msg::append, writer_msg::sync_tick, writer_msg::sync_done, writer_msg::flush_tick,
                   writer_msg::write_done, writer_msg::refill, writer_msg::flush, writer_msg::get_stats,
                   writer_msg::close> {
public:
    // Takes the opened log (its entries after the checkpoint are queued for
    // the database at once) and the database.
    usage_writer(asio::any_io_executor ex, std::shared_ptr<persistence::usage_log> log,
                 std::shared_ptr<persistence::database> db, usage_writer_options options);
    ~usage_writer();

    // In the log (written, fdatasync'ed within fsync_interval) when this
    // returns success; errc::usage_log_failed when the log cannot be written.
    task<result<void>> record(domain::usage_record r);
    task<result<void>> correct(domain::cost_correction c);
    // Everything logged so far is in the database (success), or the
    // database refused a write (errc::database_unavailable), or the timeout
    // passed (asio::error::timed_out).
    task<result<void>> flush(std::chrono::milliseconds timeout);
    task<result<usage_writer_stats>> stats();
    // A last flush (bounded by `timeout`), a last fdatasync, then stop.
    // Rows the database did not take stay in the log for the next start.
    task<void> shutdown(std::chrono::milliseconds timeout);
    // Starts writing what the log replayed at start-up (call once, after spawn).
    void kick() { tell_later(writer_msg::flush_tick{}); }
    // The migrations ran in this process (the writer then skips them).
    void schema_ready() { schema_ready_->store(true); }

private:
    friend actor;

    void on(writer_msg::append& m);
    void on(writer_msg::sync_tick& m);
    void on(writer_msg::sync_done& m);
    void on(writer_msg::flush_tick& m);
    void on(writer_msg::write_done& m);
    void on(writer_msg::refill& m);
    void on(writer_msg::flush& m);
    void on(writer_msg::get_stats& m);
    void on(writer_msg::close& m);

    void queue(persistence::log_entry e);
    void arm_sync();
    void arm_flush(std::chrono::milliseconds after);
    void start_write();
    void start_refill();
    void answer_flushers(std::optional<std::string> const& error);
    bool all_written() const;
    // Drops a reference held by work on sync_pool_ on the actor's strand
    // instead, so the writer is never destroyed on (and joining) that pool.
    static void release_on_strand(std::shared_ptr<usage_writer> self);

    std::shared_ptr<persistence::usage_log> log_;
    std::shared_ptr<persistence::database> db_;
    usage_writer_options options_;
    asio::thread_pool sync_pool_{1};   // fdatasync and log reads, off the io threads
    std::deque<persistence::log_entry> pending_;  // in sequence order
    std::uint64_t queued_through_ = 0;   // the highest seq queued in memory (or written)
    bool overflow_ = false;              // entries beyond max_pending wait in the log only
    bool writing_ = false;
    bool refilling_ = false;
    bool syncing_ = false;
    bool dirty_ = false;                 // appended since the last fdatasync started
    bool sync_armed_ = false;
    bool flush_armed_ = false;
    bool closing_ = false;
    std::chrono::milliseconds backoff_{0};
    std::chrono::steady_clock::time_point last_checkpoint_{};
    std::shared_ptr<std::atomic<bool>> schema_ready_ = std::make_shared<std::atomic<bool>>(false);
    asio::steady_timer sync_timer_;
    asio::steady_timer flush_timer_;
    std::vector<reply<void>> flushers_;
    usage_writer_stats stats_;
};

}  // namespace parley::actors
