#include <resilience/backoff.hpp>

#include <algorithm>
#include <cmath>

namespace resilience {
namespace {

using dsec = std::chrono::duration<double, std::nano>;

// Converts a non-negative double count of nanoseconds, clamped to [0, hi].
duration clamp_ns(double ns, duration hi) noexcept {
    if (!(ns > 0)) return duration::zero();  // also NaN
    double h = static_cast<double>(hi.count());
    if (ns >= h) return hi;
    return duration(static_cast<duration::rep>(ns));
}

}  // namespace

std::string_view to_string(jitter_mode j) noexcept {
    switch (j) {
    case jitter_mode::none: return "none";
    case jitter_mode::full: return "full";
    case jitter_mode::equal: return "equal";
    case jitter_mode::decorrelated: return "decorrelated";
    }
    return "unknown";
}

duration backoff_cap(const backoff_policy& p, int retry) noexcept {
    const duration maxd = std::max<duration>(p.max_delay, duration::zero());
    const double initial = static_cast<double>(duration(p.initial_delay).count());
    const double mult = p.multiplier >= 1.0 ? p.multiplier : 1.0;
    const int k = std::max(retry, 1);
    // initial * mult^(k-1). std::pow is exact for the usual integral
    // multipliers (log/exp is not: 4 s came out as 3.999999999 s), and it
    // saturates to infinity instead of overflowing; clamp_ns caps at max_delay.
    double ns;
    if (initial <= 0)
        ns = 0;
    else if (mult == 1.0)
        ns = initial;
    else
        ns = std::round(initial * std::pow(mult, static_cast<double>(k - 1)));
    return clamp_ns(ns, maxd);
}

duration backoff_delay(const backoff_policy& p, int retry, double u, duration previous) noexcept {
    if (!(u >= 0.0)) u = 0.0;
    if (u >= 1.0) u = std::nextafter(1.0, 0.0);
    const duration cap = backoff_cap(p, retry);
    const double c = static_cast<double>(cap.count());
    switch (p.jitter) {
    case jitter_mode::none: return cap;
    case jitter_mode::full: return clamp_ns(u * c, cap);
    case jitter_mode::equal: return clamp_ns(c / 2 + u * (c / 2), cap);
    case jitter_mode::decorrelated: {
        const duration maxd = std::max<duration>(p.max_delay, duration::zero());
        const double base = static_cast<double>(std::min<duration>(p.initial_delay, maxd).count());
        double prev = previous > duration::zero() ? static_cast<double>(previous.count()) : base;
        if (retry <= 1) prev = base;
        double hi = std::max(base, 3.0 * prev);
        return clamp_ns(base + u * (hi - base), maxd);
    }
    }
    return cap;
}

std::uint64_t jitter_source::next_u64() noexcept {
    constexpr std::uint64_t golden = 0x9e3779b97f4a7c15ULL;
    std::uint64_t z = state_.fetch_add(golden, std::memory_order_relaxed) + golden;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double jitter_source::next() noexcept { return to_unit_interval(next_u64()); }

}  // namespace resilience
