#include "domain/errc.hpp"

#include <string>

namespace parley {
namespace {

class category final : public boost::system::error_category {
public:
    char const* name() const noexcept override { return "parley"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
        case errc::actor_stopped: return "actor stopped";
        case errc::invalid_setting: return "invalid setting";
        case errc::invalid_token: return "invalid token";
        case errc::token_expired: return "token expired";
        case errc::usage_log_failed: return "the usage log could not be written";
        case errc::database_unavailable: return "the database is unavailable";
        }
        return "unknown parley error " + std::to_string(ev);
    }
};

}  // namespace

boost::system::error_category const& parley_category() noexcept {
    static category const instance;
    return instance;
}

}  // namespace parley
