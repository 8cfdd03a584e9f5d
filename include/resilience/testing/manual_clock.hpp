#ifndef RESILIENCE_TESTING_MANUAL_CLOCK_HPP
#define RESILIENCE_TESTING_MANUAL_CLOCK_HPP

// Virtual time for tests: a clock that moves only when told to, and a loop
// that runs an io_context and jumps the clock to the next pending wake-up
// whenever nothing else is ready. Part of the public API, so that users test
// their own retry behaviour deterministically.
//
//   resilience::testing::manual_clock clk;
//   options.time = &clk;
//   co_spawn(ctx, my_operation(options), rethrow);
//   resilience::testing::run_virtual(ctx, clk);   // runs to completion in virtual time
//
// The clock must outlive the coroutines asleep on it (declare it before the
// io_context). advance() may be called from any thread; a sleeper is woken by a handler
// posted to its own executor, so sleepers must run on a single-threaded
// io_context or a strand (use the steady clock for multi-threaded runs).

#include <resilience/clock.hpp>

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

namespace resilience::testing {

class manual_clock final : public clock {
public:
    /// Starts at a fixed, arbitrary point (not the real time).
    manual_clock() noexcept;
    explicit manual_clock(time_point start) noexcept;
    ~manual_clock() override;

    time_point now() const noexcept override;
    boost::asio::awaitable<error_code> sleep_until(time_point tp) override;

    /// Moves the clock forward by `d` (>= 0) and wakes every sleeper whose
    /// time has come.
    void advance(duration d);
    /// Moves the clock to `tp` if it is later than now.
    void advance_to(time_point tp);
    /// The earliest pending wake-up, if any coroutine sleeps.
    std::optional<time_point> next_wakeup() const;
    /// Jumps to the earliest pending wake-up. False when nobody sleeps.
    bool advance_to_next();
    /// Number of coroutines sleeping on this clock.
    std::size_t sleepers() const;

    struct sleeper;

private:
    mutable std::mutex mu_;
    std::atomic<time_point::rep> now_;
    std::multimap<time_point, std::shared_ptr<sleeper>> sleepers_;
};

struct run_options {
    /// Stop when virtual time passes start + this.
    duration max_virtual = std::chrono::hours(24 * 365);
    /// How long the loop waits in real time for I/O (loopback sockets) before
    /// it treats the context as idle and moves virtual time.
    std::chrono::microseconds idle_quantum{2000};
    /// Give up (return false) after this much real time; 0 = never. Off by
    /// default: a loaded machine (sanitizers, two cores) makes any real-time
    /// bound flaky; test runners have their own hang timeouts (ctest --timeout).
    std::chrono::seconds max_real{0};
};

/// Runs `ctx` until `done()` returns true (or the context runs out of work,
/// when `done` is empty). Whenever no handler is ready and no I/O completes
/// within `idle_quantum`, the clock jumps to the next pending wake-up.
/// Returns false if the virtual time limit was reached or nothing could make
/// progress while `done()` was still false.
bool run_virtual(boost::asio::io_context& ctx, manual_clock& clk, std::function<bool()> done = {},
                 run_options opts = {});

}  // namespace resilience::testing

#endif
