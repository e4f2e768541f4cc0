#pragma once
// The usage write-ahead log (ARCHITECTURE §3, UsageWriterActor): a usage
// record acknowledged to a caller survives a process crash (kill -9) and a
// database outage. Records are appended to segment files under a directory;
// a checkpoint says up to which sequence number the database holds them; at
// start-up everything after the checkpoint is replayed with read_after().
//
// Synchronous POSIX file I/O (open/write/fdatasync/rename), no Asio: callers
// run it on a blocking executor.
//
// On disk, in `dir`:
//   LOCK                                    flock'ed by the one process using the log
//   checkpoint                              "<seq>\n", replaced atomically (checkpoint.tmp + rename)
//   segment-<20-digit first seq>.log        one line per entry:
//       <crc32 of the JSON text, 8 lowercase hex digits> <JSON>\n
// The JSON is {"seq":N,"kind":"usage"|"correction", fields...}; money is the
// exact 9-decimal text of domain::format_usd_exact, never a double; a usage
// record's created_at is "created_at_ms", int64 milliseconds since the epoch.
//
// Durability: append() hands the bytes to the kernel (they survive a crash
// of this process); sync() makes them survive a crash of the machine. An
// entry is acknowledged once a sync() that began after its append() returned.
#include "domain/usage.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace parley::persistence {

using log_item = std::variant<domain::usage_record, domain::cost_correction>;

struct log_entry {
    std::uint64_t seq = 0;
    log_item item;

    friend bool operator==(log_entry const&, log_entry const&) = default;
};

struct usage_log_options {
    std::filesystem::path dir;                       // created if missing
    std::uint64_t segment_bytes = 16 * 1024 * 1024;  // a new segment is started once the current one reaches this
};

// Every failure: one line naming the path and the OS error.
class usage_log_error : public std::runtime_error {
public:
    using runtime_error::runtime_error;
};

// The largest JSON text of one entry; a bigger item is refused by append().
inline constexpr std::size_t usage_log_max_entry_bytes = 64 * 1024;

class usage_log {
public:
    // Opens the log in `dir` (creating it): takes an exclusive, non-blocking
    // flock on dir/LOCK (a second opener, in this process or another, gets
    // usage_log_error "... is in use by another process"); reads
    // dir/checkpoint (missing = 0; unparsable = usage_log_error); scans the
    // segment files in order. A line that fails its checksum or does not
    // parse (a torn last write; a final line without its newline) ends the
    // reading of that segment: it is counted (corrupt_lines()) and the file
    // is never appended to again (new appends go to a new segment; a torn
    // segment holding no valid entry at all may be replaced by a new segment
    // of the same name). Sequence numbers continue after the highest one seen
    // (or after the checkpoint if higher). A clean last segment is appended to.
    static std::unique_ptr<usage_log> open(usage_log_options options);

    // Closes the files without syncing (call sync() first for durability
    // against a machine crash; a process exit loses nothing already appended).
    ~usage_log();
    usage_log(usage_log const&) = delete;
    usage_log& operator=(usage_log const&) = delete;

    // Appends the items with consecutive sequence numbers (returned: the
    // first one) in ONE write(2) call (looping on partial writes and EINTR),
    // starting a new segment first when the current one is at or past
    // segment_bytes. An empty span writes nothing and returns the number the
    // next entry would get. An item whose JSON exceeds
    // usage_log_max_entry_bytes is refused (usage_log_error, nothing written).
    // On a write failure (ENOSPC, EIO...) throws usage_log_error and the
    // sequence counter is not advanced: whatever reached the file is cut off
    // again (ftruncate + fdatasync) and later appends go to a new segment. If
    // even that cut fails, the numbers of the failed batch are skipped
    // instead, so that no sequence number can ever appear twice on disk.
    std::uint64_t append(std::span<log_item const> items);
    std::uint64_t append(log_item item);

    // fdatasync of every segment written since the last sync, and fsync of
    // the directory after a segment was created. Safe to call from another
    // thread concurrently with append(): the syncing is done without holding
    // the lock append() needs; concurrent sync() calls are serialized.
    // On failure throws usage_log_error; the failed segment is no longer
    // appended to and is synced again by the next sync(). Entries appended
    // before a sync() that threw are not known to be durable even if a later
    // sync() succeeds (Linux may drop the failed pages and report the error
    // only once): keep them until the database has them.
    void sync();

    // Every entry with seq <= upto is in the database. Writes dir/checkpoint
    // atomically (checkpoint.tmp, fsync, rename, fsync of the directory) and
    // deletes the segment files whose entries are all <= upto (never the one
    // currently appended to). upto at or below the current checkpoint is
    // ignored; above last_seq() is an error (usage_log_error).
    void checkpoint(std::uint64_t upto);

    // Entries with seq > after, in sequence order, at most `max`, read from
    // the segment files (used at start-up and to refill a writer's queue
    // after a long database outage). Safe concurrently with append(),
    // sync() and checkpoint(); reads files without holding the append lock.
    // Entries deleted meanwhile by a concurrent checkpoint() are not returned
    // (the database has them).
    std::vector<log_entry> read_after(std::uint64_t after, std::size_t max) const;

    std::uint64_t checkpointed() const;   // the checkpoint
    std::uint64_t last_seq() const;       // the highest sequence number written (0: none)
    std::uint64_t backlog() const;        // last_seq() - checkpointed()
    std::size_t segment_count() const;
    std::size_t corrupt_lines() const;    // found by open()
    std::filesystem::path const& dir() const;

private:
    struct file;  // an owned file descriptor

    struct segment {
        std::uint64_t first_seq = 0;  // from the file name
        std::uint64_t last_seq = 0;   // the highest entry in it; first_seq - 1 while it holds none
        std::uint64_t bytes = 0;      // the length of its valid lines (where appends continue)
        std::filesystem::path path;
    };

    explicit usage_log(usage_log_options options);
    void scan();
    void start_segment_locked();
    void retire_current_locked();
    void queue_sync_locked();

    usage_log_options options_;
    std::shared_ptr<file> dir_fd_;
    std::shared_ptr<file> lock_fd_;

    mutable std::mutex mutex_;             // everything below
    std::vector<segment> segments_;        // sorted by first_seq; the current one (if any) is the last
    std::shared_ptr<file> current_;        // the segment appended to; null: the next append starts one
    std::vector<std::shared_ptr<file>> unsynced_;  // segments written since the last sync
    bool dir_unsynced_ = false;            // a segment was created since the last directory fsync
    std::uint64_t checkpoint_ = 0;
    std::uint64_t last_seq_ = 0;
    std::size_t corrupt_lines_ = 0;

    std::mutex sync_mutex_;                // one sync() at a time
    std::mutex checkpoint_mutex_;          // one checkpoint() at a time
};

}  // namespace parley::persistence
