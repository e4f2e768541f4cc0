#pragma once
// A log-linear latency histogram in the manner of HdrHistogram: values
// (microseconds) below 256 have a bucket each; above, every power of two is
// split into 128 buckets, so a reported percentile is within 0.8% of the
// recorded value. Fixed size (7 424 counters, the whole uint64 range), no allocation per record,
// mergeable: each worker thread keeps its own and they are summed at the end.
#include <array>
#include <cstdint>

namespace parley::load {

class histogram {
public:
    void record(std::uint64_t micros) noexcept;
    void merge(histogram const& other) noexcept;

    std::uint64_t count() const noexcept { return count_; }
    std::uint64_t max() const noexcept { return max_; }
    std::uint64_t min() const noexcept { return count_ ? min_ : 0; }
    double mean() const noexcept { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0; }
    // The smallest recorded value v such that at least `p` percent (0..100)
    // of the records are <= v, as the upper bound of its bucket (never above
    // max()); 0 when empty.
    std::uint64_t percentile(double p) const noexcept;

private:
    static constexpr unsigned exact_bits = 8;                    // 0..255 exact
    static constexpr unsigned sub_buckets = 1u << (exact_bits - 1);  // 128 per octave above
    static constexpr unsigned octaves = 64 - exact_bits;
    static constexpr std::size_t size = (1u << exact_bits) + octaves * sub_buckets;

    static std::size_t index_of(std::uint64_t v) noexcept;
    static std::uint64_t upper_bound_of(std::size_t index) noexcept;

    std::array<std::uint64_t, size> counts_{};
    std::uint64_t count_ = 0, sum_ = 0, max_ = 0, min_ = ~std::uint64_t{0};
};

}  // namespace parley::load
