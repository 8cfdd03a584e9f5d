#ifndef RESILIENCE_TEST_GEMINI_FIXTURE_HPP
#define RESILIENCE_TEST_GEMINI_FIXTURE_HPP

// The set-up the Gemini tests share: a gemini::client and the server it talks
// to on one io_context and one manual clock, and a runner for a test's
// coroutine in virtual time. A program that includes it links resilience_sim.
#include <resilience/gemini/client.hpp>
#include <resilience/sim/server.hpp>
#include <resilience/testing/manual_clock.hpp>

#include "test_common.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// The names every Gemini test file uses.
namespace asio = boost::asio;
namespace gemini = resilience::gemini;
namespace sim = resilience::sim;
using resilience::errc;
using resilience::testing::manual_clock;
using resilience::testing::run_virtual;
using namespace std::chrono_literals;

namespace test {

/// A client on one io_context and one manual clock (declared first: it
/// outlives every sleeper); every status line the client produces is kept.
struct gemini_client_fixture {
    resilience::testing::manual_clock clk;
    boost::asio::io_context ctx;
    std::unique_ptr<resilience::gemini::client> client;
    std::vector<std::string> status;

    /// Creates `client` for `base_url` on this clock, with `seed`; `opts`
    /// brings the API key and the test's own settings.
    void make_client(resilience::gemini::client_options opts, std::string base_url, std::uint64_t seed) {
        opts.base_url = std::move(base_url);
        opts.time = &clk;
        opts.seed = seed;
        opts.on_status = [this](std::string_view s) { status.emplace_back(s); };
        client = std::make_unique<resilience::gemini::client>(ctx.get_executor(), std::move(opts));
    }

    /// Runs `f()` (an awaitable) to its end in virtual time.
    template <class F>
    void run(F f) {
        bool done = false;
        boost::asio::co_spawn(ctx, [&]() -> boost::asio::awaitable<void> {
            co_await f();
            done = true;
        }, test::rethrow{});
        BOOST_REQUIRE(resilience::testing::run_virtual(ctx, clk, [&] { return done; }));
    }

    std::string all_status() const {
        std::string s;
        for (auto& l : status) s += l + "\n";
        return s;
    }
};

/// The same against the simulator (on the same clock), client and simulator
/// sharing one API key. The client goes first, then the simulator.
struct gemini_sim_fixture : gemini_client_fixture {
    std::unique_ptr<resilience::sim::server> srv;

    gemini_sim_fixture() = default;
    gemini_sim_fixture(const gemini_sim_fixture&) = delete;
    gemini_sim_fixture& operator=(const gemini_sim_fixture&) = delete;
    ~gemini_sim_fixture() { client.reset(); }

    void start_sim(std::string_view key, std::uint64_t seed, resilience::sim::config cfg,
               resilience::gemini::client_options opts) {
        cfg.api_key = key;
        cfg.time = &clk;
        srv = std::make_unique<resilience::sim::server>(ctx, cfg);
        srv->start();
        opts.api_key = key;
        make_client(std::move(opts), srv->base_url(), seed);
    }
};

}  // namespace test

#endif
