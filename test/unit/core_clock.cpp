// The manual clock and run_virtual: sleepers wake in order, cancellation of
// a sleeper, advance_to_next, and the steady clock's basics.
#include <resilience/testing/manual_clock.hpp>

#include "test_common.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/test/unit_test.hpp>

#include "core_printers.hpp"

#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using resilience::duration;
using resilience::error_code;
using resilience::time_point;
using resilience::testing::manual_clock;
using resilience::testing::run_virtual;

namespace {

struct woke {
    int id;
    duration at;
    error_code ec;
};

asio::awaitable<void> sleeper(manual_clock& clk, time_point start, duration d, int id, std::vector<woke>& log) {
    error_code ec = co_await clk.sleep_until(start + d);
    log.push_back({id, clk.now() - start, ec});
}

}  // namespace

BOOST_AUTO_TEST_SUITE(core_clock)

BOOST_AUTO_TEST_CASE(starts_fixed_and_advances) {
    manual_clock a, b;
    BOOST_TEST((a.now() == b.now()));
    const time_point t0 = a.now();
    a.advance(5s);
    BOOST_TEST((a.now() - t0 == duration(5s)));
    a.advance(-3s);  // never backwards
    BOOST_TEST((a.now() - t0 == duration(5s)));
    a.advance_to(t0);  // never backwards
    BOOST_TEST((a.now() - t0 == duration(5s)));
    BOOST_TEST(!a.next_wakeup().has_value());
    BOOST_TEST(!a.advance_to_next());
    manual_clock c(time_point(100s));
    BOOST_TEST((c.now() == time_point(100s)));
}

BOOST_AUTO_TEST_CASE(sleepers_wake_in_order) {
    manual_clock clk;  // outlives the coroutines asleep on it
    asio::io_context ctx;
    const time_point t0 = clk.now();
    std::vector<woke> log;
    // Spawned out of order, with a tie.
    asio::co_spawn(ctx, sleeper(clk, t0, 30s, 3, log), test::rethrow{});
    asio::co_spawn(ctx, sleeper(clk, t0, 10s, 1, log), test::rethrow{});
    asio::co_spawn(ctx, sleeper(clk, t0, 20s, 2, log), test::rethrow{});
    asio::co_spawn(ctx, sleeper(clk, t0, 20s, 4, log), test::rethrow{});
    asio::co_spawn(ctx, sleeper(clk, t0, 0s, 0, log), test::rethrow{});  // already due
    ctx.poll();
    BOOST_TEST(clk.sleepers() == 4u);
    BOOST_TEST_REQUIRE(log.size() == 1u);
    BOOST_TEST(log[0].id == 0);
    BOOST_TEST((clk.next_wakeup() == t0 + 10s));

    BOOST_TEST(clk.advance_to_next());
    ctx.poll();
    BOOST_TEST_REQUIRE(log.size() == 2u);
    BOOST_TEST(log[1].id == 1);
    BOOST_TEST((log[1].at == duration(10s)));

    // Advancing part of the way wakes nobody.
    clk.advance(5s);
    ctx.poll();
    BOOST_TEST(log.size() == 2u);

    // A jump past several wake-ups wakes them all.
    clk.advance(100s);
    ctx.poll();
    BOOST_TEST_REQUIRE(log.size() == 5u);
    BOOST_TEST(!log[2].ec);
    BOOST_TEST(clk.sleepers() == 0u);
    std::vector<int> ids;
    for (auto& w : log) ids.push_back(w.id);
    BOOST_TEST((ids[4] == 3));
    BOOST_TEST(((ids[2] == 2 && ids[3] == 4) || (ids[2] == 4 && ids[3] == 2)));
}

BOOST_AUTO_TEST_CASE(run_virtual_jumps_between_sleepers) {
    manual_clock clk;  // outlives the coroutines asleep on it
    asio::io_context ctx;
    const time_point t0 = clk.now();
    std::vector<woke> log;
    for (int i = 5; i >= 1; --i) asio::co_spawn(ctx, sleeper(clk, t0, std::chrono::hours(i), i, log), test::rethrow{});
    BOOST_TEST(run_virtual(ctx, clk));
    BOOST_TEST_REQUIRE(log.size() == 5u);
    for (int i = 0; i < 5; ++i) {
        BOOST_TEST(log[i].id == i + 1);
        BOOST_TEST((log[i].at == duration(std::chrono::hours(i + 1))));
    }
    BOOST_TEST((clk.now() - t0 == duration(5h)));
}

BOOST_AUTO_TEST_CASE(run_virtual_until_done) {
    manual_clock clk;  // outlives the coroutines asleep on it
    asio::io_context ctx;
    const time_point t0 = clk.now();
    std::vector<woke> log;
    asio::co_spawn(ctx, sleeper(clk, t0, 1s, 1, log), test::rethrow{});
    asio::co_spawn(ctx, sleeper(clk, t0, 10s, 2, log), test::rethrow{});
    BOOST_TEST(run_virtual(ctx, clk, [&] { return log.size() == 1; }));
    BOOST_TEST((clk.now() - t0 == duration(1s)));
    BOOST_TEST(clk.sleepers() == 1u);
    BOOST_TEST(run_virtual(ctx, clk, [&] { return log.size() == 2; }));
    // The virtual time limit.
    asio::co_spawn(ctx, sleeper(clk, clk.now(), 48h, 3, log), test::rethrow{});
    resilience::testing::run_options o;
    o.max_virtual = 24h;
    BOOST_TEST(!run_virtual(ctx, clk, [&] { return log.size() == 3; }, o));
    BOOST_TEST(log.size() == 2u);
    clk.advance(48h);
    ctx.poll();
    BOOST_TEST(log.size() == 3u);
}

BOOST_AUTO_TEST_CASE(cancelling_a_sleeper) {
    manual_clock clk;  // outlives the coroutines asleep on it
    asio::io_context ctx;
    const time_point t0 = clk.now();
    std::vector<woke> log;
    asio::cancellation_signal sig;
    asio::co_spawn(ctx, sleeper(clk, t0, 10s, 1, log), asio::bind_cancellation_slot(sig.slot(), test::rethrow{}));
    asio::co_spawn(ctx, sleeper(clk, t0, 20s, 2, log), test::rethrow{});
    ctx.poll();
    BOOST_TEST(clk.sleepers() == 2u);
    sig.emit(asio::cancellation_type::terminal);
    ctx.poll();
    BOOST_TEST_REQUIRE(log.size() == 1u);
    BOOST_TEST(log[0].id == 1);
    BOOST_TEST((log[0].ec == asio::error::operation_aborted));
    BOOST_TEST((log[0].at == duration::zero()));  // woke at once, in virtual time
    BOOST_TEST(clk.sleepers() == 1u);              // unregistered
    BOOST_TEST((clk.next_wakeup() == t0 + 20s));
    BOOST_TEST(run_virtual(ctx, clk));
    BOOST_TEST_REQUIRE(log.size() == 2u);
    BOOST_TEST(!log[1].ec);
    BOOST_TEST((log[1].at == duration(20s)));
}

BOOST_AUTO_TEST_CASE(destroying_the_context_with_sleepers) {
    manual_clock clk;
    std::vector<woke> log;
    {
        asio::io_context ctx;
        asio::co_spawn(ctx, sleeper(clk, clk.now(), 10s, 1, log), test::rethrow{});
        ctx.poll();
        BOOST_TEST(clk.sleepers() == 1u);
    }
    // The clock must survive the sleeper's executor going away.
    clk.advance(20s);
    BOOST_TEST(log.empty());
}

BOOST_AUTO_TEST_CASE(steady_clock_sleeps_briefly) {
    asio::io_context ctx;
    auto& clk = resilience::steady_clock();
    error_code result = asio::error::would_block;
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
            result = co_await clk.sleep_until(clk.now() + 1ms);
            // A past time point completes at once.
            error_code ec = co_await clk.sleep_until(clk.now() - 1s);
            BOOST_TEST(!ec);
        },
        test::rethrow{});
    ctx.run();
    BOOST_TEST(!result);
}

BOOST_AUTO_TEST_SUITE_END()
