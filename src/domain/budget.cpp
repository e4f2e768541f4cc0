#include "domain/budget.hpp"

#include <algorithm>

namespace parley::domain {
namespace {

constexpr std::int64_t max64 = std::numeric_limits<std::int64_t>::max();

nano_usd non_negative(nano_usd a) { return a.nanos > 0 ? a : nano_usd{}; }

// a + b for non-negative amounts, at most the int64 maximum.
nano_usd saturating_add(nano_usd a, nano_usd b) {
    return a.nanos > max64 - b.nanos ? nano_usd{max64} : a + b;
}

}  // namespace

std::int64_t utc_day(sys_time t) {
    return std::chrono::floor<std::chrono::days>(t).time_since_epoch().count();
}

sys_time utc_midnight_after(sys_time t) {
    return std::chrono::time_point_cast<sys_time::duration>(std::chrono::floor<std::chrono::days>(t) +
                                                             std::chrono::days{1});
}

budget::budget(nano_usd limit) : limit_{non_negative(limit)} {}

void budget::roll(sys_time now) {
    if (auto const today = utc_day(now); today > day_) {
        day_ = today;
        spent_ = nano_usd{};
    }
}

budget::decision budget::try_reserve(nano_usd amount, sys_time now) {
    roll(now);
    amount = non_negative(amount);
    // spent + reserved + amount <= limit, without overflow: the amount is
    // compared with what is left.
    auto const committed = saturating_add(spent_, reserved_);
    if (committed <= limit_ && amount <= limit_ - committed) {
        reserved_ += amount;
        return decision{true, std::chrono::seconds{0}};
    }
    auto const wait = std::chrono::ceil<std::chrono::seconds>(utc_midnight_after(now) - now);
    return decision{false, std::max(wait, std::chrono::seconds{1})};
}

void budget::settle(nano_usd reserved, nano_usd actual, sys_time now) {
    roll(now);
    reserved_ -= std::min(non_negative(reserved), reserved_);
    spent_ = saturating_add(spent_, non_negative(actual));
}

void budget::load(nano_usd spent_today, sys_time now) {
    auto const today = utc_day(now);
    if (today < day_) {
        return;
    }
    day_ = today;
    spent_ = non_negative(spent_today);
}

nano_usd budget::spent(sys_time now) const { return utc_day(now) > day_ ? nano_usd{} : spent_; }

nano_usd budget::reserved() const noexcept { return reserved_; }

nano_usd budget::limit() const noexcept { return limit_; }

void budget::set_limit(nano_usd limit) { limit_ = non_negative(limit); }

nano_usd budget::remaining(sys_time now) const {
    auto const committed = saturating_add(spent(now), reserved_);
    return committed >= limit_ ? nano_usd{} : limit_ - committed;
}

}  // namespace parley::domain
