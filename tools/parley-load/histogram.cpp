#include "histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace parley::load {

std::size_t histogram::index_of(std::uint64_t v) noexcept {
    if (v < (1u << exact_bits)) return static_cast<std::size_t>(v);
    unsigned const msb = static_cast<unsigned>(std::bit_width(v)) - 1;  // >= exact_bits
    unsigned const shift = msb - (exact_bits - 1);
    auto const sub = static_cast<std::size_t>(v >> shift) - sub_buckets;  // 0..127
    return (1u << exact_bits) + (msb - exact_bits) * sub_buckets + sub;
}

std::uint64_t histogram::upper_bound_of(std::size_t index) noexcept {
    if (index < (1u << exact_bits)) return index;
    auto const rel = index - (1u << exact_bits);
    unsigned const msb = static_cast<unsigned>(rel / sub_buckets) + exact_bits;
    unsigned const shift = msb - (exact_bits - 1);
    auto const sub = static_cast<std::uint64_t>(rel % sub_buckets) + sub_buckets;
    return ((sub + 1) << shift) - 1;
}

void histogram::record(std::uint64_t micros) noexcept {
    ++counts_[index_of(micros)];
    ++count_;
    sum_ += micros;
    max_ = std::max(max_, micros);
    min_ = std::min(min_, micros);
}

void histogram::merge(histogram const& other) noexcept {
    for (std::size_t i = 0; i < size; ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    sum_ += other.sum_;
    max_ = std::max(max_, other.max_);
    min_ = std::min(min_, other.min_);
}

std::uint64_t histogram::percentile(double p) const noexcept {
    if (count_ == 0) return 0;
    p = std::clamp(p, 0.0, 100.0);
    auto rank = static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_)));
    rank = std::max<std::uint64_t>(rank, 1);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < size; ++i) {
        seen += counts_[i];
        if (seen >= rank) return std::min(upper_bound_of(i), max_);
    }
    return max_;
}

}  // namespace parley::load
