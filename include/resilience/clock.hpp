#ifndef RESILIENCE_CLOCK_HPP
#define RESILIENCE_CLOCK_HPP

// Where the library gets time from. Everything that reads the time or waits
// (backoff, breaker open timeout, cooldown, poll intervals, the simulator's
// processing times) goes through a `clock`, so that tests, ours and our
// users', run retry timelines in virtual time without sleeping
// (see resilience/testing/manual_clock.hpp).
//
// Time points are std::chrono::steady_clock::time_point for every clock; the
// manual clock simply starts at a fixed point of that scale.

#include <resilience/diagnostics.hpp>

#include <boost/asio/awaitable.hpp>

namespace resilience {

class clock {
public:
    virtual ~clock() = default;

    /// The current time on this clock.
    virtual time_point now() const noexcept = 0;

    /// Suspends the calling coroutine until `now() >= tp`. Completes with an
    /// empty error_code when the time has come, or operation_aborted when the
    /// coroutine's per-operation cancellation fires first. A time point that
    /// has already passed completes at once.
    virtual boost::asio::awaitable<error_code> sleep_until(time_point tp) = 0;
};

/// The real clock: std::chrono::steady_clock and asio::steady_timer.
clock& steady_clock() noexcept;

}  // namespace resilience

#endif
