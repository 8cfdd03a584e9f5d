#ifndef RESILIENCE_BENCH_COMMON_HPP
#define RESILIENCE_BENCH_COMMON_HPP

// What the virtual-time benchmarks against the in-process simulator share:
// the names they use, a simulator on one io_context and one manual clock, the
// client settings that reach it, and run_virtual's options for one thread.
#include <resilience/gemini/client.hpp>
#include <resilience/sim/server.hpp>
#include <resilience/testing/manual_clock.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <string>
#include <utility>

namespace asio = boost::asio;
namespace sim = resilience::sim;
namespace gemini = resilience::gemini;
using resilience::duration;
using resilience::time_point;
using resilience::testing::manual_clock;
using resilience::testing::run_virtual;
using namespace std::chrono_literals;
using real_clock = std::chrono::steady_clock;

namespace bench {

inline double secs(duration d) { return std::chrono::duration<double>(d).count(); }

/// A completion handler for co_spawn that lets a coroutine's exception escape.
inline void rethrow_void(std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
}

/// run_virtual on the thread that runs the io_context: no idle quantum (ready
/// loopback I/O shows up in poll()), and up to `max_real` of real time.
inline resilience::testing::run_options fast_run(std::chrono::seconds max_real = std::chrono::seconds(600)) {
    resilience::testing::run_options o;
    o.idle_quantum = std::chrono::microseconds(0);
    o.max_real = max_real;
    return o;
}

/// The simulator taking `key`, started on `ctx` and the clock `clk`
/// (declared first: they outlive it).
struct sim_stack {
    std::string key;
    manual_clock clk;
    asio::io_context ctx;
    sim::server srv;

    sim_stack(std::string api_key, sim::config cfg) : key(std::move(api_key)), srv(ctx, with_key(std::move(cfg))) {
        srv.start();
    }

    /// Client settings for this simulator: its key, URL and clock, and `seed`.
    gemini::client_options client_options(std::uint64_t seed) {
        gemini::client_options o;
        o.api_key = key;
        o.base_url = srv.base_url();
        o.time = &clk;
        o.seed = seed;
        return o;
    }

private:
    sim::config with_key(sim::config cfg) {
        cfg.api_key = key;
        cfg.time = &clk;
        return cfg;
    }
};

}  // namespace bench

#endif
