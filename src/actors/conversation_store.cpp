#include "actors/conversation_store.hpp"

#include "persistence/database.hpp"

#include <spdlog/spdlog.h>

#include <exception>

namespace parley::actors {

namespace {

// A database error for the log: SOCI appends the statement and its bound
// values ("while executing ... with :v0=..."), which hold message contents.
std::string without_statement(std::string what) {
    if (auto at = what.find(" while "); at != std::string::npos) {
        what.resize(at);
    }
    return what;
}

}  // namespace

conversation_store::conversation_store(std::shared_ptr<persistence::database> db, clock_fn now)
    : db_(std::move(db)), now_(std::move(now)) {}

task<boost::system::result<std::optional<stored_conversation>>> conversation_store::load(std::string id,
                                                                                          std::string user_id,
                                                                                          std::size_t max_messages) {
    auto const d = db_->kind();
    auto work = [d, id, user_id, max_messages](soci::session& sql) -> std::optional<stored_conversation> {
        auto info = persistence::find_conversation(sql, d, id);
        if (!info || info->user_id != user_id) {
            return std::nullopt;
        }
        stored_conversation c;
        c.messages = persistence::load_messages(sql, d, id, max_messages);
        c.info = std::move(*info);
        return c;
    };
    std::optional<stored_conversation> found;
    bool failed = false;
    try {
        found = co_await db_->run(std::move(work));
    } catch (std::exception const& e) {
        spdlog::warn("conversation store: cannot load a conversation: {}", without_statement(e.what()));
        failed = true;
    }
    if (failed) {
        co_return make_error_code(errc::database_unavailable);
    }
    co_return found;
}

task<boost::system::result<void>> conversation_store::append(persistence::conversation_info conversation,
                                                             std::vector<domain::message> messages) {
    auto const d = db_->kind();
    auto const now = now_();
    if (conversation.created_at == std::chrono::system_clock::time_point{}) {
        conversation.created_at = now;
    }
    conversation.updated_at = now;
    auto work = [d, conversation, messages = std::move(messages), now](soci::session& sql) {
        persistence::create_conversation(sql, d, conversation);
        return persistence::append_messages(sql, d, conversation.id, messages, conversation.language, now);
    };
    bool failed = false;
    try {
        co_await db_->run(std::move(work));
    } catch (std::exception const& e) {
        spdlog::warn("conversation store: cannot store a turn of a conversation: {}", without_statement(e.what()));
        failed = true;
    }
    if (failed) {
        co_return make_error_code(errc::database_unavailable);
    }
    co_return boost::system::result<void>{};
}

}  // namespace parley::actors
