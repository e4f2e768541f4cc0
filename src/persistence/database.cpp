#include "persistence/database.hpp"

#include <soci/error.h>
#include <soci/into.h>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/session.h>
#include <soci/sqlite3/soci-sqlite3.h>

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cctype>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

namespace parley::persistence {

namespace {

constexpr std::size_t max_message_bytes = 1000;
constexpr std::string_view redacted_mark = "(redacted)";

// SQL run by every session right after it connects.
constexpr char const* pg_session_setup[] = {
    "SET TIME ZONE 'UTC'",
};
constexpr char const* sqlite_busy_timeout = "PRAGMA busy_timeout = 5000";  // first: applies to what follows
constexpr char const* sqlite_journal_mode = "PRAGMA journal_mode";
constexpr char const* sqlite_use_wal = "PRAGMA journal_mode = WAL";
constexpr char const* sqlite_session_setup[] = {
    // FULL: a committed transaction survives a power cut (NORMAL could roll
    // it back, after the usage log was checkpointed past its rows).
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",  // off by default in SQLite; ai_messages cascades on it
};
constexpr int wal_switch_attempts = 250;  // x 20 ms: as long as busy_timeout
constexpr auto wal_switch_pause = std::chrono::milliseconds(20);

// Puts the file in WAL mode, which the file then keeps. Two connections
// switching a new file at once can fail with "database is locked" at once,
// without waiting for busy_timeout (SQLite's deadlock avoidance), so a busy
// switch is tried again for a while.
void use_wal(soci::session& sql) {
    for (int attempt = 1;; ++attempt) {
        try {
            std::string mode;
            sql << sqlite_journal_mode, soci::into(mode);
            if (mode == "wal" || mode == "memory") {  // ":memory:" has no WAL
                return;
            }
            sql << sqlite_use_wal, soci::into(mode);
            return;
        } catch (soci::sqlite3_soci_error const& e) {
            bool const busy = e.result() == SQLITE_BUSY || e.result() == SQLITE_LOCKED;
            if (!busy || attempt == wal_switch_attempts) {
                throw;
            }
        }
        std::this_thread::sleep_for(wal_switch_pause);
    }
}

// Every run of whitespace (line breaks included) becomes one space and other
// control characters '?'; the result is trimmed and cut, so a message fits
// one log line.
std::string one_line(std::string_view text) {
    std::string out;
    out.reserve(std::min(text.size(), max_message_bytes));
    bool pending_space = false;
    for (char c : text) {
        if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
            pending_space = !out.empty();
            continue;
        }
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            c = '?';
        }
        if (pending_space) {
            out += ' ';
            pending_space = false;
        }
        out += c;
    }
    if (out.size() > max_message_bytes) {
        out.resize(max_message_bytes);
        out += "...";
    }
    return out;
}

void replace_all(std::string& text, std::string_view what, std::string_view with) {
    if (what.empty()) {
        return;
    }
    for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + with.size())) {
        text.replace(pos, what.size(), with);
    }
}

bool starts_with_ci(std::string_view text, std::string_view prefix) {
    return text.size() >= prefix.size() &&
           std::equal(prefix.begin(), prefix.end(), text.begin(), [](char a, char b) {
               return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
           });
}

// The raw password text of "scheme://user:password@host...", if any.
std::string_view url_password(std::string_view url) {
    auto const scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) {
        return {};
    }
    auto const start = scheme_end + 3;
    auto const end = std::min(url.find_first_of("/?#", start), url.size());
    auto const at = url.substr(0, end).rfind('@');
    if (at == std::string_view::npos || at < start) {
        return {};
    }
    auto const colon = url.find(':', start);
    return colon < at ? url.substr(colon + 1, at - colon - 1) : std::string_view{};
}

// "scheme://user:password@host" keeps the user, and a libpq "password="
// query parameter hides its value.
std::string redact_url(std::string_view url) {
    std::string out{url};
    if (auto const pw = url_password(url); !pw.empty()) {
        auto const at = static_cast<std::size_t>(pw.data() - url.data());
        out.replace(at, pw.size(), redacted_mark);
    }
    for (auto pos = out.find('?'); pos != std::string::npos; pos = out.find('&', pos)) {
        ++pos;
        if (starts_with_ci(std::string_view{out}.substr(pos), "password=")) {
            auto const value = pos + 9;
            out.replace(value, std::min(out.find('&', value), out.size()) - value, redacted_mark);
        }
    }
    return one_line(out);
}

// libpq prints server notices (NOTICE, WARNING) on stderr by default; they
// go to the log instead, one line each.
void log_notice(void* redacted_url, char const* message) {
    auto const& url = *static_cast<std::string const*>(redacted_url);
    std::string_view const text{message};
    if (text.starts_with("WARNING")) {
        spdlog::warn("database {}: {}", url, one_line(text));
    } else {
        spdlog::info("database {}: {}", url, one_line(text));
    }
}

std::string unusable(std::string_view url, std::string_view why) {
    return "unusable database URL " + redact_url(url) + ": " + std::string{why};
}

}  // namespace

database_error::database_error(std::string msg, bool connection_lost)
    : std::runtime_error{std::move(msg)}, connection_lost_{connection_lost} {}

struct database::impl {
    // One session and whether it is known to be usable. Only the thread
    // that leased it touches it.
    struct session_slot {
        soci::session sql;
        bool connected = false;
    };

    // Leases a session from the free list for one call. With one worker
    // thread per session a worker never waits here; run_blocking() callers may.
    class lease {
    public:
        explicit lease(impl& d) : d_{d} {
            std::unique_lock lock{d_.mu};
            d_.slot_freed.wait(lock, [&] { return !d_.free.empty(); });
            slot_ = d_.free.back();
            d_.free.pop_back();
        }
        lease(lease const&) = delete;
        lease& operator=(lease const&) = delete;
        ~lease() {
            {
                std::lock_guard lock{d_.mu};
                d_.free.push_back(slot_);
            }
            d_.slot_freed.notify_one();
        }
        session_slot& operator*() const noexcept { return *slot_; }

    private:
        impl& d_;
        session_slot* slot_ = nullptr;
    };

    static std::unique_ptr<impl> make(database_options options);

    dialect kind = dialect::sqlite;
    std::string connect_string;           // what SOCI gets (may hold the password)
    std::string redacted;                 // what people see
    std::vector<std::string> secrets;     // password spellings scrubbed from messages

    std::mutex mu;
    std::condition_variable slot_freed;   // a session came back to the free list
    std::condition_variable calls_done;   // active fell to zero
    std::vector<std::unique_ptr<session_slot>> slots;
    std::vector<session_slot*> free;      // guarded by mu
    std::size_t active = 0;               // calls counted by call_guard; guarded by mu
    bool closed = false;                  // guarded by mu
    bool stopped = false;                 // the workers were joined; guarded by mu

    // A one-line message about this database, without its password.
    std::string describe(std::string_view what, std::string_view detail) const {
        std::string msg{what};
        if (!detail.empty()) {
            msg += ": ";
            msg += detail;
        }
        msg = one_line(msg);
        for (auto const& s : secrets) {
            replace_all(msg, s, redacted_mark);
        }
        return msg;
    }

    // (Re)connects a session and runs the session set-up. Any failure is a
    // connection failure: the server, the file or the credentials are not
    // usable right now.
    void connect(session_slot& s) {
        s.connected = false;
        try {
            s.sql.close();
            if (kind == dialect::postgresql) {
                s.sql.open(soci::postgresql, connect_string);
                auto* pg = static_cast<soci::postgresql_session_backend*>(s.sql.get_backend());
                PQsetNoticeProcessor(pg->conn_, &log_notice, &redacted);  // impl outlives its sessions
                for (auto const* stmt : pg_session_setup) {
                    s.sql << stmt;
                }
            } else {
                s.sql.open(soci::sqlite3, connect_string);
                s.sql << sqlite_busy_timeout;
                use_wal(s.sql);
                for (auto const* stmt : sqlite_session_setup) {
                    s.sql << stmt;
                }
            }
            s.connected = true;
        } catch (std::exception const& e) {
            try {
                s.sql.close();
            } catch (...) {  // LCOV_EXCL_LINE: closing a half-open session does not throw in practice
            }
            throw database_error(describe("cannot connect to the database " + redacted, e.what()), true);
        }
    }

    // Whether a session is inside a transaction its caller left open; a
    // broken PostgreSQL connection counts as "not usable" instead.
    enum class state { idle, in_transaction, broken };
    state session_state(session_slot& s) {
        auto* backend = s.sql.get_backend();
        if (backend == nullptr) {
            return state::broken;
        }
        if (kind == dialect::postgresql) {
            auto* pg = static_cast<soci::postgresql_session_backend*>(backend);
            switch (PQtransactionStatus(pg->conn_)) {
            case PQTRANS_IDLE: return state::idle;
            case PQTRANS_INTRANS:
            case PQTRANS_INERROR:
            case PQTRANS_ACTIVE: return state::in_transaction;
            case PQTRANS_UNKNOWN: return state::broken;
            }
            return state::broken;  // LCOV_EXCL_LINE: every status is handled above
        }
        auto* lite = static_cast<soci::sqlite3_session_backend*>(backend);
        return sqlite_api::sqlite3_get_autocommit(lite->conn_) != 0 ? state::idle : state::in_transaction;
    }

    // Before a session goes back to the free list: roll back what its caller
    // left open, and mark a broken one for reconnection.
    void settle(session_slot& s) noexcept {
        if (!s.connected) {
            return;
        }
        switch (session_state(s)) {
        case state::idle: return;
        case state::broken: s.connected = false; return;
        case state::in_transaction: break;
        }
        spdlog::warn("database {}: a caller left a transaction open; rolling it back", redacted);
        try {
            s.sql.rollback();
        } catch (std::exception const& e) {
            spdlog::warn("database {}: {}", redacted, describe("rollback failed; reconnecting", e.what()));
            s.connected = false;
        }
    }
};

std::unique_ptr<database::impl> database::impl::make(database_options options) {
    auto d = std::make_unique<database::impl>();
    std::string_view const url = options.url;
    std::size_t sessions = std::max<std::size_t>(options.pool_size, 1);

    if (url.starts_with("sqlite:")) {
        std::string const path{url.substr(7)};
        if (path.empty()) {
            throw database_error(unusable(url, "no file after \"sqlite:\""), false);
        }
        if (std::any_of(path.begin(), path.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; })) {
            throw database_error(unusable(url, "control characters in the path"), false);
        }
        // SOCI's sqlite3 backend reads "key=value" pairs when the string has
        // a '='; a plain path is taken whole.
        if (path.find('=') == std::string::npos) {
            d->connect_string = path;
        } else if (path.find_first_of(" \"") == std::string::npos) {
            d->connect_string = "db=\"" + path + "\"";
        } else {
            throw database_error(unusable(url, "a path with '=' cannot also have spaces or quotes"), false);
        }
        if (path != ":memory:") {
            auto const parent = std::filesystem::path{path}.parent_path();
            std::error_code ec;
            if (!parent.empty()) {
                std::filesystem::create_directories(parent, ec);
            }
            if (ec) {
                throw database_error(unusable(url, "cannot create " + parent.string() + ": " + ec.message()), false);
            }
        }
        d->kind = dialect::sqlite;
        d->redacted = redact_url(url);
        sessions = 1;  // one writer: SQLite serialises writes anyway
    } else if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
        if (auto const pw = url_password(url); !pw.empty()) {
            d->secrets.emplace_back(pw);
        }
        // SOCI 4.0 splits the connect string at spaces (see below).
        if (url.find_first_of(" \t\r\n") != std::string_view::npos) {
            throw database_error(unusable(url, "spaces are not allowed (percent-encode them as %20)"), false);
        }
        std::string const text{url};
        char* error = nullptr;
        PQconninfoOption* parsed = PQconninfoParse(text.c_str(), &error);
        if (parsed == nullptr) {
            std::string why = error != nullptr ? one_line(error) : std::string{"out of memory"};
            PQfreemem(error);
            for (auto const& s : d->secrets) {
                replace_all(why, s, redacted_mark);
            }
            throw database_error(unusable(url, why), false);
        }
        bool has_timeout = false;
        for (auto* o = parsed; o->keyword != nullptr; ++o) {
            if (o->val == nullptr) {
                continue;
            }
            if (std::strcmp(o->keyword, "password") == 0 && *o->val != '\0') {
                d->secrets.emplace_back(o->val);  // decoded: what libpq might repeat
            } else if (std::strcmp(o->keyword, "connect_timeout") == 0) {
                has_timeout = true;
            }
        }
        PQconninfoFree(parsed);
        d->connect_string = text;
        if (!has_timeout) {
            // Without it a connect to an unreachable host waits for the
            // kernel's TCP timeout (minutes), holding a worker. It also
            // keeps SOCI 4.0 from spoiling the URI: its PostgreSQL backend
            // splits the connect string into "key=value" words and appends
            // '=' to a URI that has none (the database name "db=").
            if (text.find('?') == std::string::npos) {
                d->connect_string += '?';
            } else if (text.back() != '?' && text.back() != '&') {
                d->connect_string += '&';
            }
            d->connect_string += "connect_timeout=5";
        }
        d->kind = dialect::postgresql;
        d->redacted = redact_url(url);
    } else {
        throw database_error(unusable(url, "expected sqlite:<path>, postgresql://... or postgres://..."), false);
    }

    for (std::size_t i = 0; i != sessions; ++i) {
        d->slots.push_back(std::make_unique<session_slot>());
        d->free.push_back(d->slots.back().get());
    }
    return d;
}

std::shared_ptr<database> database::open(database_options options) {
    return std::make_shared<database>(private_tag{}, std::move(options));
}

database::database(private_tag, database_options options)
    : impl_{impl::make(std::move(options))}, workers_{impl_->slots.size()} {}

database::~database() {
    try {
        close();
    } catch (std::exception const& e) {  // LCOV_EXCL_LINE: close() throws only on a failed thread join
        spdlog::error("database {}: closing failed: {}", impl_->redacted, e.what());  // LCOV_EXCL_LINE
    }
}

dialect database::kind() const noexcept { return impl_->kind; }

std::string const& database::redacted_url() const noexcept { return impl_->redacted; }

std::size_t database::pool_size() const noexcept { return impl_->slots.size(); }

void database::close() {
    {
        std::unique_lock lock{impl_->mu};
        impl_->closed = true;
        impl_->calls_done.wait(lock, [&] { return impl_->active == 0; });
        if (impl_->stopped) {
            return;
        }
        impl_->stopped = true;
    }
    workers_.join();
    // No call is active and the workers are gone: nothing holds a session.
    for (auto& s : impl_->slots) {
        try {
            s->sql.close();
        } catch (...) {  // LCOV_EXCL_LINE: closing does not throw in practice
        }
        s->connected = false;
    }
}

database::call_guard::call_guard(database& db) : db_{&db} {
    std::lock_guard lock{db.impl_->mu};
    if (db.impl_->closed) {
        throw database_error(db.impl_->describe("the database " + db.impl_->redacted + " is closed", {}), true);
    }
    ++db.impl_->active;
}

database::call_guard::~call_guard() {
    if (db_ == nullptr) {
        return;
    }
    bool last = false;
    {
        std::lock_guard lock{db_->impl_->mu};
        last = --db_->impl_->active == 0;
    }
    if (last) {
        db_->impl_->calls_done.notify_all();
    }
}

void database::execute(session_fn fn) {
    auto& d = *impl_;
    impl::lease leased{d};
    auto& s = *leased;
    for (int attempt = 1;; ++attempt) {
        if (!s.connected) {
            d.connect(s);  // throws database_error(true)
        }
        try {
            fn(s.sql);
            d.settle(s);
            return;
        } catch (soci::soci_error const& e) {
            // PostgreSQL reports a killed backend with SQLSTATE 57P01, not
            // a connection-class code: ask the session itself (a ping).
            bool const lost = e.get_error_category() == soci::soci_error::connection_error || !s.sql.is_connected();
            if (!lost) {
                d.settle(s);
                throw database_error(d.describe("database statement failed", e.what()), false);
            }
            s.connected = false;
            if (attempt == 2) {
                throw database_error(d.describe("lost the connection to the database " + d.redacted, e.what()), true);
            }
            spdlog::warn("database {}: {}", d.redacted, d.describe("the session was lost; reconnecting", e.what()));
        } catch (...) {
            d.settle(s);
            throw;
        }
    }
}

write_transaction::write_transaction(soci::session& sql, dialect d) : sql_{sql} {
    if (d == dialect::sqlite) {
        sql_ << "BEGIN IMMEDIATE";
    } else {
        sql_.begin();
    }
}

write_transaction::~write_transaction() {
    if (done_) {
        return;
    }
    try {
        sql_.rollback();
    } catch (...) {  // the connection may be gone; the server rolls back then
    }
}

void write_transaction::commit() {
    sql_.commit();
    done_ = true;
}

}  // namespace parley::persistence
