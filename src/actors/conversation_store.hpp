#pragma once
// ConversationStore (ARCHITECTURE §3): the conversations and their messages
// in the database (persistence/conversation_repository.hpp), so a client can
// resume one by id (its owner only). Stateless over the database, whose
// workers serialize the work; failures are values (database_unavailable).
#include "domain/errc.hpp"
#include "domain/messages.hpp"
#include "net/asio.hpp"
#include "persistence/conversation_repository.hpp"

#include <boost/system/result.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace parley::persistence {
class database;
}

namespace parley::actors {

struct stored_conversation {
    persistence::conversation_info info;
    std::vector<domain::message> messages;  // the newest ones, oldest first
};

class conversation_store {
public:
    using clock_fn = std::function<std::chrono::system_clock::time_point()>;
    explicit conversation_store(std::shared_ptr<persistence::database> db,
                                clock_fn now = [] { return std::chrono::system_clock::now(); });

    // The conversation and its last `max_messages` messages when `user_id`
    // owns it; nullopt when it does not exist or belongs to someone else
    // (the two are not told apart). errc::database_unavailable on failure.
    task<boost::system::result<std::optional<stored_conversation>>> load(std::string id, std::string user_id,
                                                                          std::size_t max_messages);

    // Creates the conversation if it does not exist yet (owner, title,
    // language), then appends the messages. errc::database_unavailable on failure.
    task<boost::system::result<void>> append(persistence::conversation_info conversation,
                                             std::vector<domain::message> messages);

private:
    std::shared_ptr<persistence::database> db_;
    clock_fn now_;
};

}  // namespace parley::actors
