#include "persistence/usage_log.hpp"

#include "domain/money.hpp"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <limits>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>

namespace parley::persistence {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

constexpr std::string_view segment_prefix = "segment-";
constexpr std::string_view segment_suffix = ".log";
constexpr std::size_t segment_digits = 20;  // UINT64_MAX has 20 digits

// ---- errors ------------------------------------------------------------------------------------

std::string os_error(int err) { return std::generic_category().message(err); }

// "usage log: cannot write /var/parley/wal/segment-...log: No space left on device"
[[noreturn]] void fail(std::string_view what, fs::path const& path, int err) {
    std::string message = "usage log: ";
    message += what;
    message += ' ';
    message += path.string();
    message += ": ";
    message += os_error(err);
    throw usage_log_error(message);
}

// ---- file descriptors --------------------------------------------------------------------------

// Closes a descriptor on scope exit (for the short-lived ones).
struct fd_guard {
    int fd = -1;
    explicit fd_guard(int f) : fd(f) {}
    fd_guard(fd_guard const&) = delete;
    fd_guard& operator=(fd_guard const&) = delete;
    ~fd_guard() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
};

int open_retry(fs::path const& path, int flags, mode_t mode = 0) {
    int fd;
    do {
        fd = ::open(path.c_str(), flags, mode);
    } while (fd < 0 && errno == EINTR);
    return fd;
}

// Writes all of `data`, looping on partial writes and EINTR. Returns 0 or the
// errno of the failure; `written` says how much reached the file either way.
int write_all(int fd, std::string_view data, std::size_t& written) {
    written = 0;
    while (written < data.size()) {
        ssize_t const n = ::write(fd, data.data() + written, data.size() - written);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        if (n == 0) {
            return EIO;  // a regular file never takes nothing without an error; do not spin
        }
        written += static_cast<std::size_t>(n);
    }
    return 0;
}

int fdatasync_retry(int fd) {
    int rc;
    do {
        rc = ::fdatasync(fd);
    } while (rc != 0 && errno == EINTR);
    return rc == 0 ? 0 : errno;
}

int fsync_retry(int fd) {
    int rc;
    do {
        rc = ::fsync(fd);
    } while (rc != 0 && errno == EINTR);
    return rc == 0 ? 0 : errno;
}

// The first `limit` bytes of the file at `path`; nullopt if it does not exist.
std::optional<std::string> read_file(fs::path const& path,
                                     std::uint64_t limit = std::numeric_limits<std::uint64_t>::max()) {
    int const fd = open_retry(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return std::nullopt;
        }
        fail("cannot open", path, errno);
    }
    fd_guard guard{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        fail("cannot stat", path, errno);
    }
    auto const size = std::min<std::uint64_t>(limit, static_cast<std::uint64_t>(st.st_size));
    std::string data(static_cast<std::size_t>(size), '\0');
    std::size_t got = 0;
    while (got < data.size()) {
        ssize_t const n = ::read(fd, data.data() + got, data.size() - got);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            fail("cannot read", path, errno);
        }
        if (n == 0) {
            break;  // the file shrank meanwhile
        }
        got += static_cast<std::size_t>(n);
    }
    data.resize(got);
    return data;
}

// ---- CRC-32 (IEEE 802.3, reflected, as zlib's crc32) ----------------------------------------------

constexpr std::array<std::uint32_t, 256> make_crc_table() {
    std::array<std::uint32_t, 256> table{};
    for (std::uint32_t i = 0; i != 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k != 8; ++k) {
            c = (c & 1u) != 0 ? 0xEDB8'8320u ^ (c >> 1) : c >> 1;
        }
        table[i] = c;
    }
    return table;
}

constexpr auto crc_table = make_crc_table();

std::uint32_t crc32(std::string_view data) {
    std::uint32_t c = 0xFFFF'FFFFu;
    for (unsigned char const b : data) {
        c = crc_table[(c ^ b) & 0xFFu] ^ (c >> 8);
    }
    return c ^ 0xFFFF'FFFFu;
}

// ---- names -------------------------------------------------------------------------------------

std::string segment_name(std::uint64_t first_seq) {
    char digits[32];
    std::snprintf(digits, sizeof digits, "%020" PRIu64, first_seq);
    std::string name{segment_prefix};
    name += digits;
    name += segment_suffix;
    return name;
}

// The first sequence number in a segment file's name; nullopt for any other file.
std::optional<std::uint64_t> parse_segment_name(std::string_view name) {
    if (name.size() != segment_prefix.size() + segment_digits + segment_suffix.size() ||
        !name.starts_with(segment_prefix) || !name.ends_with(segment_suffix)) {
        return std::nullopt;
    }
    auto const digits = name.substr(segment_prefix.size(), segment_digits);
    std::uint64_t first = 0;
    auto const [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), first);
    if (ec != std::errc{} || end != digits.data() + digits.size() || first == 0) {
        return std::nullopt;  // not all digits, beyond uint64, or 0 (sequence numbers start at 1)
    }
    return first;
}

// ---- money and time as text --------------------------------------------------------------------

// The exact 9-decimal text; a negative amount (never expected) keeps its sign.
std::optional<domain::nano_usd> parse_cost(std::string_view text) {
    bool const negative = text.starts_with('-');
    if (negative) {
        text.remove_prefix(1);
    }
    auto const amount = domain::parse_usd(text);
    if (!amount) {
        return std::nullopt;
    }
    return negative ? domain::nano_usd{-amount->nanos} : *amount;
}

// The milliseconds a time point can carry without overflowing system_clock's duration.
constexpr std::int64_t max_abs_ms =
    std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::duration::max()).count();

// ---- encoding ----------------------------------------------------------------------------------

json::string_view jsv(std::string const& s) { return json::string_view{s.data(), s.size()}; }

// Appends "<crc32> <JSON>\n" for one entry to `out`. Throws usage_log_error
// for an entry that could not be read back (oversized, unrepresentable cost).
void encode_line(std::string& out, std::uint64_t seq, log_item const& item) {
    json::object o;
    o.reserve(16);
    o.emplace("seq", seq);
    std::string const* request_id = nullptr;
    domain::nano_usd cost;
    if (auto const* r = std::get_if<domain::usage_record>(&item)) {
        request_id = &r->request_id;
        cost = r->cost;
        o.emplace("kind", "usage");
        o.emplace("request_id", jsv(r->request_id));
        if (r->user_id) {
            o.emplace("user_id", jsv(*r->user_id));
        } else {
            o.emplace("user_id", nullptr);
        }
        o.emplace("session_id", jsv(r->session_id));
        o.emplace("conversation_id", jsv(r->conversation_id));
        o.emplace("input_tokens", r->input_tokens);
        o.emplace("output_tokens", r->output_tokens);
        o.emplace("cached_tokens", r->cached_tokens);
        o.emplace("cost", domain::format_usd_exact(r->cost));
        o.emplace("cost_source", domain::to_string(r->source));
        o.emplace("model", jsv(r->model));
        o.emplace("generation_id", jsv(r->generation_id));
        o.emplace("status", domain::to_string(r->status));
        o.emplace("created_at_ms",
                  std::chrono::floor<std::chrono::milliseconds>(r->created_at.time_since_epoch()).count());
    } else {
        auto const& c = std::get<domain::cost_correction>(item);
        request_id = &c.request_id;
        cost = c.cost;
        o.emplace("kind", "correction");
        o.emplace("request_id", jsv(c.request_id));
        o.emplace("cost", domain::format_usd_exact(c.cost));
    }
    if (parse_cost(domain::format_usd_exact(cost)) != cost) {
        // Only INT64_MIN nano-dollars: its magnitude is beyond parse_usd.
        throw usage_log_error("usage log: the cost of request " + *request_id + " cannot be logged (out of range)");
    }
    std::string const text = json::serialize(o);
    if (text.size() > usage_log_max_entry_bytes) {
        throw usage_log_error("usage log: the entry for request " + request_id->substr(0, 128) + " is " +
                              std::to_string(text.size()) + " bytes of JSON, more than the " +
                              std::to_string(usage_log_max_entry_bytes) + " allowed");
    }
    char crc[16];
    std::snprintf(crc, sizeof crc, "%08" PRIx32 " ", crc32(text));
    out += crc;
    out += text;
    out += '\n';
}

// ---- decoding ----------------------------------------------------------------------------------

std::optional<std::string> get_string(json::object const& o, std::string_view key) {
    auto const* v = o.if_contains(key);
    if (v == nullptr || !v->is_string()) {
        return std::nullopt;
    }
    return std::string{v->get_string().data(), v->get_string().size()};
}

std::optional<std::int64_t> get_int64(json::object const& o, std::string_view key) {
    auto const* v = o.if_contains(key);
    if (v != nullptr && v->is_int64()) {
        return v->get_int64();
    }
    return std::nullopt;  // also a double or a number beyond int64: never written by encode_line
}

std::optional<std::uint64_t> get_uint64(json::object const& o, std::string_view key) {
    auto const* v = o.if_contains(key);
    if (v != nullptr && v->is_uint64()) {
        return v->get_uint64();
    }
    if (v != nullptr && v->is_int64() && v->get_int64() >= 0) {
        return static_cast<std::uint64_t>(v->get_int64());
    }
    return std::nullopt;
}

// One entry from its JSON text; nullopt if it does not parse as one.
std::optional<log_entry> decode_entry(std::string_view text) {
    json::parse_options options;
    options.allow_invalid_utf8 = true;  // the writer does not validate the strings it is given
    boost::system::error_code ec;
    json::value const v = json::parse(json::string_view{text.data(), text.size()}, ec, {}, options);
    if (ec || !v.is_object()) {
        return std::nullopt;
    }
    auto const& o = v.get_object();
    auto const seq = get_uint64(o, "seq");
    auto const kind = get_string(o, "kind");
    auto const request_id = get_string(o, "request_id");
    auto const cost_text = get_string(o, "cost");
    if (!seq || *seq == 0 || !kind || !request_id || !cost_text) {
        return std::nullopt;
    }
    auto const cost = parse_cost(*cost_text);
    if (!cost) {
        return std::nullopt;
    }
    if (*kind == "correction") {
        return log_entry{*seq, domain::cost_correction{*request_id, *cost}};
    }
    if (*kind != "usage") {
        return std::nullopt;
    }
    domain::usage_record r;
    r.request_id = *request_id;
    r.cost = *cost;
    auto const* user_id = o.if_contains("user_id");
    if (user_id == nullptr || !(user_id->is_null() || user_id->is_string())) {
        return std::nullopt;
    }
    if (user_id->is_string()) {
        r.user_id = std::string{user_id->get_string().data(), user_id->get_string().size()};
    }
    auto session_id = get_string(o, "session_id");
    auto conversation_id = get_string(o, "conversation_id");
    auto const input_tokens = get_int64(o, "input_tokens");
    auto const output_tokens = get_int64(o, "output_tokens");
    auto const cached_tokens = get_int64(o, "cached_tokens");
    auto const source_text = get_string(o, "cost_source");
    auto model = get_string(o, "model");
    auto generation_id = get_string(o, "generation_id");
    auto const status_text = get_string(o, "status");
    auto const created_at_ms = get_int64(o, "created_at_ms");
    if (!session_id || !conversation_id || !input_tokens || !output_tokens || !cached_tokens || !source_text ||
        !model || !generation_id || !status_text || !created_at_ms) {
        return std::nullopt;
    }
    auto const source = domain::parse_cost_source(*source_text);
    auto const status = domain::parse_call_status(*status_text);
    if (!source || !status || *created_at_ms > max_abs_ms || *created_at_ms < -max_abs_ms) {
        return std::nullopt;
    }
    r.session_id = std::move(*session_id);
    r.conversation_id = std::move(*conversation_id);
    r.input_tokens = *input_tokens;
    r.output_tokens = *output_tokens;
    r.cached_tokens = *cached_tokens;
    r.source = *source;
    r.model = std::move(*model);
    r.generation_id = std::move(*generation_id);
    r.status = *status;
    r.created_at = std::chrono::system_clock::time_point{} +
                   std::chrono::duration_cast<std::chrono::system_clock::duration>(
                       std::chrono::milliseconds{*created_at_ms});
    return log_entry{*seq, std::move(r)};
}

// The sequence number at the start of an entry's JSON ({"seq":N,...}, as
// encode_line writes it), without parsing the rest; nullopt if not there.
std::optional<std::uint64_t> peek_seq(std::string_view text) {
    constexpr std::string_view head = R"({"seq":)";
    if (!text.starts_with(head)) {
        return std::nullopt;
    }
    text.remove_prefix(head.size());
    std::uint64_t seq = 0;
    auto const [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seq);
    if (ec != std::errc{} || end == text.data() + text.size() || *end != ',') {
        return std::nullopt;
    }
    return seq;
}

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// The JSON text of one line ("<crc32> <JSON>", newline excluded) if its
// checksum matches; nullopt otherwise.
std::optional<std::string_view> checked_json(std::string_view line) {
    constexpr std::size_t crc_digits = 8;
    if (line.size() < crc_digits + 2 || line[crc_digits] != ' ' ||
        line.size() - crc_digits - 1 > usage_log_max_entry_bytes) {
        return std::nullopt;
    }
    std::uint32_t crc = 0;
    for (std::size_t i = 0; i != crc_digits; ++i) {
        char const c = line[i];
        if (!is_lower_hex(c)) {
            return std::nullopt;
        }
        crc = crc << 4 | static_cast<std::uint32_t>(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    auto const text = line.substr(crc_digits + 1);
    if (crc32(text) != crc) {
        return std::nullopt;
    }
    return text;
}

struct scan_result {
    std::uint64_t valid_bytes = 0;  // the length of the good lines at the start
    std::uint64_t last_seq = 0;     // the highest good entry (first_seq - 1 if none)
    bool corrupt = false;           // a bad line ended the scan
};

// Reads the lines of one segment's bytes in order. Each good entry goes to
// on_entry (which returns false to stop early); entries with a sequence number
// <= skip_through are checked (checksum, order) but not decoded, and not passed
// on. A line that fails its checksum, does not parse, lacks its newline, or
// whose number is below the segment's first or not above the previous one
// ends the scan as corrupt.
template <class OnEntry>
scan_result scan_lines(std::string_view data, std::uint64_t first_seq, std::uint64_t skip_through,
                       OnEntry&& on_entry) {
    scan_result result;
    result.last_seq = first_seq - 1;
    std::size_t pos = 0;
    while (pos < data.size()) {
        auto const newline = data.find('\n', pos);
        if (newline == std::string_view::npos) {
            result.corrupt = true;  // a torn last write
            break;
        }
        auto const text = checked_json(data.substr(pos, newline - pos));
        std::optional<log_entry> entry;
        std::optional<std::uint64_t> seq;
        if (text) {
            seq = peek_seq(*text);
            if (!seq || *seq > skip_through) {
                entry = decode_entry(*text);
                seq = entry ? std::optional{entry->seq} : std::nullopt;
            }
        }
        if (!seq || *seq < first_seq || *seq <= result.last_seq) {
            result.corrupt = true;
            break;
        }
        result.last_seq = *seq;
        pos = newline + 1;
        result.valid_bytes = pos;
        if (entry && !on_entry(std::move(*entry))) {
            break;
        }
    }
    return result;
}

}  // namespace

// ---- usage_log ---------------------------------------------------------------------------------

struct usage_log::file {
    int fd = -1;
    fs::path path;
    bool queued = false;  // in unsynced_ (guarded by usage_log::mutex_)

    file(int f, fs::path p) : fd(f), path(std::move(p)) {}
    file(file const&) = delete;
    file& operator=(file const&) = delete;
    ~file() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
};

usage_log::usage_log(usage_log_options options) : options_(std::move(options)) {}

usage_log::~usage_log() = default;

std::unique_ptr<usage_log> usage_log::open(usage_log_options options) {
    if (options.dir.empty()) {
        throw usage_log_error("usage log: no directory given");
    }
    std::error_code ec;
    fs::create_directories(options.dir, ec);
    if (ec) {
        throw usage_log_error("usage log: cannot create directory " + options.dir.string() + ": " + ec.message());
    }
    if (!fs::is_directory(options.dir, ec)) {
        throw usage_log_error("usage log: " + options.dir.string() + " is not a directory" +
                              (ec ? ": " + ec.message() : std::string{}));
    }
    std::unique_ptr<usage_log> log{new usage_log(std::move(options))};
    auto const& dir = log->options_.dir;

    int const dir_fd = open_retry(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
        fail("cannot open directory", dir, errno);
    }
    log->dir_fd_ = std::make_shared<file>(dir_fd, dir);

    // flock belongs to the open file description: a second open() of LOCK,
    // even in this process, conflicts with the first.
    auto const lock_path = dir / "LOCK";
    int const lock_fd = open_retry(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd < 0) {
        fail("cannot open", lock_path, errno);
    }
    log->lock_fd_ = std::make_shared<file>(lock_fd, lock_path);
    int rc;
    do {
        rc = ::flock(lock_fd, LOCK_EX | LOCK_NB);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
        if (errno == EWOULDBLOCK) {
            throw usage_log_error("usage log: " + dir.string() + " is in use by another process (" +
                                  lock_path.string() + " is locked)");
        }
        fail("cannot lock", lock_path, errno);
    }

    log->scan();
    return log;
}

// Reads the checkpoint and the segments (open() only, before anyone else sees the log).
void usage_log::scan() {
    auto const& dir = options_.dir;
    auto const checkpoint_path = dir / "checkpoint";
    if (auto const text = read_file(checkpoint_path)) {
        std::string_view digits = *text;
        if (digits.ends_with('\n')) {
            digits.remove_suffix(1);
        }
        std::uint64_t value = 0;
        auto const [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
        if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size()) {
            throw usage_log_error("usage log: unparsable checkpoint file " + checkpoint_path.string() +
                                  " (expected a decimal sequence number and a newline)");
        }
        checkpoint_ = value;
    }

    std::error_code ec;
    for (fs::directory_iterator it{dir, ec}, end; !ec && it != end; it.increment(ec)) {
        auto const first = parse_segment_name(it->path().filename().string());
        std::error_code type_ec;
        if (first && it->is_regular_file(type_ec)) {
            segments_.push_back(segment{*first, *first - 1, 0, it->path()});
        }
    }
    if (ec) {
        throw usage_log_error("usage log: cannot list directory " + dir.string() + ": " + ec.message());
    }
    std::sort(segments_.begin(), segments_.end(),
              [](segment const& a, segment const& b) { return a.first_seq < b.first_seq; });

    bool last_clean = false;
    last_seq_ = checkpoint_;
    for (auto& seg : segments_) {
        auto const data = read_file(seg.path);
        if (!data) {
            throw usage_log_error("usage log: segment " + seg.path.string() + " vanished while opening the log");
        }
        auto const result = scan_lines(*data, seg.first_seq, 0, [](log_entry&&) { return true; });
        seg.last_seq = result.last_seq;
        seg.bytes = result.valid_bytes;
        if (result.corrupt) {
            ++corrupt_lines_;
        }
        if (result.last_seq >= seg.first_seq) {
            last_seq_ = std::max(last_seq_, result.last_seq);
        }
        last_clean = !result.corrupt;
    }

    // A clean last segment with room left is appended to, if the next number
    // may go in it (a leftover empty segment named beyond it may not).
    if (last_clean) {
        auto const& seg = segments_.back();
        if (seg.bytes < options_.segment_bytes && seg.first_seq <= last_seq_ + 1) {
            int const fd = open_retry(seg.path, O_WRONLY | O_APPEND | O_CLOEXEC);
            if (fd < 0) {
                fail("cannot open", seg.path, errno);
            }
            current_ = std::make_shared<file>(fd, seg.path);
        }
    }
}

// Creates the segment for the next sequence number and makes it current.
void usage_log::start_segment_locked() {
    std::uint64_t const first = last_seq_ + 1;
    // Segments named at or beyond `first` hold no good entry (every one seen
    // is <= last_seq_): torn leftovers, such as one whose first write failed.
    // They are replaced.
    while (!segments_.empty() && segments_.back().first_seq >= first) {
        auto const& doomed = segments_.back().path;
        if (::unlink(doomed.c_str()) != 0 && errno != ENOENT) {
            fail("cannot delete", doomed, errno);
        }
        segments_.pop_back();
        current_.reset();
    }
    auto path = options_.dir / segment_name(first);
    int const fd = open_retry(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        fail("cannot create", path, errno);
    }
    auto created = std::make_shared<file>(fd, path);
    segments_.push_back(segment{first, first - 1, 0, std::move(path)});
    current_ = std::move(created);
    dir_unsynced_ = true;
}

void usage_log::retire_current_locked() { current_.reset(); }

void usage_log::queue_sync_locked() {
    if (!current_->queued) {
        current_->queued = true;
        unsynced_.push_back(current_);
    }
}

std::uint64_t usage_log::append(log_item item) { return append(std::span<log_item const>{&item, 1}); }

std::uint64_t usage_log::append(std::span<log_item const> items) {
    std::lock_guard lock(mutex_);
    std::uint64_t const first = last_seq_ + 1;
    if (items.empty()) {
        return first;
    }
    // Encode everything first: an item refused here leaves no trace.
    std::string buffer;
    buffer.reserve(items.size() * 512);
    for (std::size_t i = 0; i != items.size(); ++i) {
        encode_line(buffer, first + i, items[i]);
    }
    if (!current_ || segments_.back().bytes >= options_.segment_bytes) {
        start_segment_locked();
    }
    auto& seg = segments_.back();
    std::uint64_t const last = first + items.size() - 1;

    std::size_t written = 0;
    int const err = write_all(current_->fd, buffer, written);
    if (err != 0) {
        std::string message = "usage log: cannot write " + seg.path.string() + ": " + os_error(err);
        if (written > 0) {
            // Whole lines of this batch may be in the file: cut them off,
            // durably, before their numbers are given out again. If that
            // fails too, skip the numbers, so that none is ever on disk twice.
            if (::ftruncate(current_->fd, static_cast<off_t>(seg.bytes)) != 0 ||
                fdatasync_retry(current_->fd) != 0) {
                message += " (and cannot cut the partial write off: " + os_error(errno) + "; sequence numbers " +
                           std::to_string(first) + " to " + std::to_string(last) + " are skipped)";
                last_seq_ = last;
                seg.last_seq = last;
            }
        }
        retire_current_locked();
        throw usage_log_error(message);
    }
    seg.bytes += buffer.size();
    seg.last_seq = last;
    last_seq_ = last;
    queue_sync_locked();
    return first;
}

void usage_log::sync() {
    std::lock_guard serial(sync_mutex_);
    std::vector<std::shared_ptr<file>> files;
    bool dir_too = false;
    {
        std::lock_guard lock(mutex_);
        files.swap(unsynced_);
        for (auto& f : files) {
            f->queued = false;
        }
        dir_too = std::exchange(dir_unsynced_, false);
    }
    // The data first, then the directory entries that make new segments findable.
    for (std::size_t i = 0; i != files.size(); ++i) {
        int const err = fdatasync_retry(files[i]->fd);
        if (err != 0) {
            std::lock_guard lock(mutex_);
            for (std::size_t j = i; j != files.size(); ++j) {
                if (!files[j]->queued) {
                    files[j]->queued = true;
                    unsynced_.push_back(files[j]);
                }
            }
            dir_unsynced_ = dir_unsynced_ || dir_too;
            if (current_ == files[i]) {
                retire_current_locked();
            }
            fail("cannot fdatasync", files[i]->path, err);
        }
    }
    if (dir_too) {
        int const err = fsync_retry(dir_fd_->fd);
        if (err != 0) {
            std::lock_guard lock(mutex_);
            dir_unsynced_ = true;
            fail("cannot fsync directory", options_.dir, err);
        }
    }
}

void usage_log::checkpoint(std::uint64_t upto) {
    std::lock_guard serial(checkpoint_mutex_);
    {
        std::lock_guard lock(mutex_);
        if (upto > last_seq_) {
            throw usage_log_error("usage log: checkpoint " + std::to_string(upto) + " in " + options_.dir.string() +
                                  " is beyond the last sequence number written (" + std::to_string(last_seq_) +
                                  ")");
        }
        if (upto <= checkpoint_) {
            return;
        }
    }

    // checkpoint.tmp, fsync, rename over checkpoint, fsync the directory:
    // after a crash the file holds the old number or the new one, never a torn one.
    auto const tmp_path = options_.dir / "checkpoint.tmp";
    auto const final_path = options_.dir / "checkpoint";
    {
        int const fd = open_retry(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            fail("cannot create", tmp_path, errno);
        }
        fd_guard guard{fd};
        std::string const text = std::to_string(upto) + "\n";
        std::size_t written = 0;
        if (int const err = write_all(fd, text, written); err != 0) {
            fail("cannot write", tmp_path, err);
        }
        if (int const err = fsync_retry(fd); err != 0) {
            fail("cannot fsync", tmp_path, err);
        }
    }
    if (::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
        fail("cannot rename " + tmp_path.string() + " to", final_path, errno);
    }
    if (int const err = fsync_retry(dir_fd_->fd); err != 0) {
        fail("cannot fsync directory", options_.dir, err);
    }

    // The segments wholly at or below the checkpoint go, except the current one.
    std::vector<segment> doomed;
    {
        std::lock_guard lock(mutex_);
        checkpoint_ = upto;
        auto const end = segments_.end() - (current_ ? 1 : 0);
        auto const keep = std::stable_partition(segments_.begin(), end,
                                                [upto](segment const& s) { return s.last_seq > upto; });
        doomed.assign(std::make_move_iterator(keep), std::make_move_iterator(end));
        segments_.erase(keep, end);
    }
    std::vector<segment> kept;
    std::string error;
    for (auto& seg : doomed) {
        if (::unlink(seg.path.c_str()) != 0 && errno != ENOENT) {
            if (error.empty()) {
                error = "usage log: checkpoint " + std::to_string(upto) + " written, but cannot delete " +
                        seg.path.string() + ": " + os_error(errno);
            }
            kept.push_back(std::move(seg));
        }
    }
    if (!kept.empty()) {
        // Keep them listed: the next checkpoint tries again.
        std::lock_guard lock(mutex_);
        for (auto& seg : kept) {
            auto const at = std::upper_bound(segments_.begin(), segments_.end(), seg.first_seq,
                                             [](std::uint64_t f, segment const& s) { return f < s.first_seq; });
            segments_.insert(at, std::move(seg));
        }
        throw usage_log_error(error);
    }
}

std::vector<log_entry> usage_log::read_after(std::uint64_t after, std::size_t max) const {
    std::vector<log_entry> out;
    if (max == 0) {
        return out;
    }
    // A snapshot of the segments holding entries > after, each with the
    // length of its good lines: the files are read without the lock, and
    // bytes beyond that length may be an append in progress.
    std::vector<segment> wanted;
    {
        std::lock_guard lock(mutex_);
        for (auto const& seg : segments_) {
            if (seg.last_seq > after && seg.bytes > 0) {
                wanted.push_back(seg);
            }
        }
    }
    std::uint64_t previous = after;
    for (auto const& seg : wanted) {
        auto const data = read_file(seg.path, seg.bytes);
        if (!data) {
            continue;  // deleted by a concurrent checkpoint(): the database has its entries
        }
        scan_lines(*data, seg.first_seq, after, [&](log_entry&& entry) {
            if (entry.seq > previous) {
                previous = entry.seq;
                out.push_back(std::move(entry));
            }
            return out.size() < max;
        });
        if (out.size() >= max) {
            break;
        }
    }
    return out;
}

std::uint64_t usage_log::checkpointed() const {
    std::lock_guard lock(mutex_);
    return checkpoint_;
}

std::uint64_t usage_log::last_seq() const {
    std::lock_guard lock(mutex_);
    return last_seq_;
}

std::uint64_t usage_log::backlog() const {
    std::lock_guard lock(mutex_);
    return last_seq_ - checkpoint_;
}

std::size_t usage_log::segment_count() const {
    std::lock_guard lock(mutex_);
    return segments_.size();
}

std::size_t usage_log::corrupt_lines() const {
    std::lock_guard lock(mutex_);
    return corrupt_lines_;
}

std::filesystem::path const& usage_log::dir() const { return options_.dir; }

}  // namespace parley::persistence
