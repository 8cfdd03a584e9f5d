#ifndef RESILIENCE_BACKOFF_HPP
#define RESILIENCE_BACKOFF_HPP

// Backoff maths: pure functions of the retry number, the policy and a random
// sample. No timers, no clocks.
//
// Numbering: attempt 0 is the first call; retry k (k = 1..max_retries) comes
// after attempt k-1 failed. The cap for retry k is
//     cap(k) = min(max_delay, initial_delay * multiplier^(k-1)).
// The delay before retry k is (u uniform in [0, 1)):
//     none:         cap(k)
//     full:         u * cap(k)                          (the default)
//     equal:        cap(k)/2 + u * cap(k)/2
//     decorrelated: min(max_delay, initial + u * (3 * previous - initial)),
//                   previous being the delay before retry k-1 (initial for k = 1)
// (AWS "Exponential Backoff And Jitter".) Computed in floating point and
// clamped, so no retry number and no multiplier overflows.

#include <resilience/diagnostics.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string_view>

namespace resilience {

enum class jitter_mode : unsigned char { none, full, equal, decorrelated };
std::string_view to_string(jitter_mode j) noexcept;

struct backoff_policy {
    std::chrono::milliseconds initial_delay{1000};  ///< delay cap before retry 1
    std::chrono::milliseconds max_delay{30000};     ///< no computed delay exceeds this
    double multiplier = 2.0;                        ///< growth of the cap per retry (>= 1)
    jitter_mode jitter = jitter_mode::full;
};

/// cap(k) above; k >= 1.
duration backoff_cap(const backoff_policy& p, int retry) noexcept;

/// The delay before retry `retry` (>= 1) given a uniform sample u in [0, 1)
/// and the delay chosen before the previous retry (used by decorrelated).
duration backoff_delay(const backoff_policy& p, int retry, double u, duration previous) noexcept;

/// A small, fast, seedable generator (splitmix64 over an atomic counter): the
/// one generator of the library (backoff and cooldown jitter, the Gemini
/// poll jitter). Thread-safe: each draw is one relaxed atomic add, and the
/// sequence is the same for a given seed when draws are not concurrent.
class jitter_source {
public:
    explicit jitter_source(std::uint64_t seed = 0x853c49e6748fea9bULL) noexcept : state_(seed) {}
    /// Copies the current state (the copy continues the same sequence).
    jitter_source(const jitter_source& o) noexcept : state_(o.state_.load(std::memory_order_relaxed)) {}
    jitter_source& operator=(const jitter_source& o) noexcept {
        state_.store(o.state_.load(std::memory_order_relaxed), std::memory_order_relaxed);
        return *this;
    }
    /// The next sample in [0, 1).
    double next() noexcept;
    std::uint64_t next_u64() noexcept;
    void seed(std::uint64_t s) noexcept { state_.store(s, std::memory_order_relaxed); }

    // UniformRandomBitGenerator, so it plugs into <random> too.
    using result_type = std::uint64_t;
    static constexpr result_type min() { return 0; }
    static constexpr result_type max() { return ~result_type{0}; }
    result_type operator()() noexcept { return next_u64(); }

private:
    std::atomic<std::uint64_t> state_;
};

/// Maps 64 random bits to a double in [0, 1).
constexpr double to_unit_interval(std::uint64_t bits) noexcept {
    return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

}  // namespace resilience

#endif
