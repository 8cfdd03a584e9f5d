#ifndef RESILIENCE_SRC_SIM_SATURATE_HPP
#define RESILIENCE_SRC_SIM_SATURATE_HPP

// Time arithmetic that saturates instead of overflowing (durations come from
// fault plans and configs, and add up).

#include <resilience/diagnostics.hpp>

#include <algorithm>

namespace resilience::sim::detail {

/// The longest duration a fault plan may hold (as its JSON form allows: 1e9 s).
inline constexpr duration max_fault_duration = std::chrono::seconds(1'000'000'000);

inline duration sat_add(duration a, duration b) noexcept {
    if (b > duration::zero() && a > duration::max() - b) return duration::max();
    if (b < duration::zero() && a < duration::min() - b) return duration::min();
    return a + b;
}

inline time_point sat_add(time_point t, duration d) noexcept {
    return time_point(sat_add(t.time_since_epoch(), d));
}

/// `d` clamped to [lo, hi].
inline duration clamp(duration d, duration lo, duration hi) noexcept { return std::clamp(d, lo, hi); }

}  // namespace resilience::sim::detail

#endif
