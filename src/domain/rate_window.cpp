#include "domain/rate_window.hpp"

#include <algorithm>
#include <iterator>
#include <stdexcept>

namespace parley::domain {

rate_window::rate_window(int limit, std::chrono::seconds window) : limit_{limit}, window_{window} {
    if (limit < 1) {
        throw std::invalid_argument{"rate_window: the limit must be at least 1"};
    }
    if (window <= std::chrono::seconds::zero()) {
        throw std::invalid_argument{"rate_window: the window must be positive"};
    }
}

std::deque<rate_window::time_point>::const_iterator rate_window::first_counting(time_point now) const {
    // Sorted: the counting admissions (t > now - window) are a suffix.
    return std::upper_bound(admissions_.begin(), admissions_.end(), now - window_);
}

rate_window::decision rate_window::decide(time_point now) const {
    auto const first = first_counting(now);
    if (std::distance(first, admissions_.end()) < limit_) {
        return decision{true, std::chrono::seconds{0}};
    }
    // limit_ admissions count, and at most limit_ are stored: `first` is the
    // oldest stored one, and the first slot frees when it leaves.
    auto const wait = std::chrono::ceil<std::chrono::seconds>(*first + window_ - now);
    return decision{false, std::max(wait, std::chrono::seconds{1})};
}

rate_window::decision rate_window::admit(time_point now) {
    auto const d = decide(now);
    if (d.admitted) {
        add(now);
    }
    return d;
}

rate_window::decision rate_window::check(time_point now) const { return decide(now); }

void rate_window::add(time_point t) {
    admissions_.insert(std::upper_bound(admissions_.begin(), admissions_.end(), t), t);
    if (admissions_.size() > static_cast<std::size_t>(limit_)) {
        admissions_.pop_front();
    }
}

int rate_window::used(time_point now) const {
    return static_cast<int>(std::distance(first_counting(now), admissions_.end()));
}

bool rate_window::idle(time_point now) const { return first_counting(now) == admissions_.end(); }

int rate_window::limit() const noexcept { return limit_; }

std::chrono::seconds rate_window::window() const noexcept { return window_; }

}  // namespace parley::domain
