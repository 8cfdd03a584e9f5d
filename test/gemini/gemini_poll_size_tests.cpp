// client_options::poll_by_size (docs/design-notes.md, "Poll scheduler"): a
// large file PROCESSING is polled less once the client has seen how fast the
// server processes large files, without a later return after ACTIVE. Virtual
// time, against the in-process simulator with processing time growing with
// the file's size.
#include <resilience/gemini/client.hpp>
#include <resilience/sim/server.hpp>
#include <resilience/testing/manual_clock.hpp>

#include "test_common.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/test/unit_test.hpp>

namespace asio = boost::asio;
namespace gemini = resilience::gemini;
namespace sim = resilience::sim;
using resilience::duration;
using resilience::error_code;
using resilience::time_point;
using resilience::testing::manual_clock;
using resilience::testing::run_virtual;
using namespace std::chrono_literals;

namespace {

const std::string key = "size-test-key-5c1";
constexpr std::uint64_t mib = 1024 * 1024;

// A simulator whose files take 2 s plus 1 s per MiB to process, and a client.
struct sized {
    manual_clock clk;
    asio::io_context ctx;
    std::unique_ptr<sim::server> srv;
    std::unique_ptr<gemini::client> client;

    explicit sized(bool by_size, duration per_mib = 1s) {
        sim::config cfg;
        cfg.api_key = key;
        cfg.time = &clk;
        cfg.processing = sim::processing_time::fixed(2s);
        cfg.processing_per_mib = per_mib;
        srv = std::make_unique<sim::server>(ctx, cfg);
        srv->start();
        gemini::client_options opts;
        opts.api_key = key;
        opts.base_url = srv->base_url();
        opts.time = &clk;
        opts.seed = 3;
        opts.poll_by_size = by_size;
        client = std::make_unique<gemini::client>(ctx.get_executor(), std::move(opts));
    }

    struct waited {
        std::uint64_t polls = 0;     // files.get the wait caused
        duration after_ready{};      // from the file's ACTIVE to the wait's return
        bool active = false;
    };

    // Waits for `name` alone; what it cost.
    waited wait(const std::string& name, gemini::wait_options w = gemini::wait_options()) {
        const auto polls0 = client->stats().polls;
        bool done = false;
        waited out;
        client->async_wait_until_active(name, std::move(w), [&](error_code ec, gemini::file f) {
            done = true;
            out.active = !ec && f.state == gemini::file_state::active;
            out.after_ready = clk.now() - srv->file(name)->ready_at;
        });
        BOOST_REQUIRE(run_virtual(ctx, clk, [&] { return done; }));
        out.polls = client->stats().polls - polls0;
        return out;
    }
};

}  // namespace

// Once a 700 MiB file was seen becoming ACTIVE, a 600 MiB file is polled a
// few times instead of every 10 s, and its wait returns as soon after ACTIVE
// as with the plain schedule (at most a poll_max and its jitter).
BOOST_AUTO_TEST_CASE(a_large_file_is_polled_less_once_the_rate_is_known) {
    sized on(true), off(false);
    for (auto* s : {&on, &off}) {
        auto first = s->wait(s->srv->add_file_of_size(700 * mib));
        BOOST_TEST(first.active);
    }
    auto big_on = on.wait(on.srv->add_file_of_size(600 * mib));
    auto big_off = off.wait(off.srv->add_file_of_size(600 * mib));
    BOOST_TEST(big_on.active);
    BOOST_TEST(big_off.active);
    BOOST_TEST(big_off.polls >= 55u);  // 602 s of processing at 1 s, x1.5, up to 10 s
    BOOST_TEST(big_on.polls * 4 <= big_off.polls, big_on.polls << " vs " << big_off.polls);
    BOOST_TEST((big_on.after_ready <= 11s));
    BOOST_TEST((big_off.after_ready <= 11s));
}

// Nothing learned yet (the first file), only smaller files seen (their rate,
// with the fixed part of processing, would be too high), or a small file:
// the plain schedule.
BOOST_AUTO_TEST_CASE(without_a_known_rate_or_for_a_small_file_the_schedule_is_unchanged) {
    sized on(true), off(false);
    auto a_on = on.wait(on.srv->add_file_of_size(200 * mib));
    auto a_off = off.wait(off.srv->add_file_of_size(200 * mib));
    BOOST_TEST(a_on.polls == a_off.polls);
    auto c_on = on.wait(on.srv->add_file_of_size(400 * mib));
    auto c_off = off.wait(off.srv->add_file_of_size(400 * mib));
    BOOST_TEST(c_on.polls == c_off.polls);
    BOOST_TEST((c_on.after_ready <= 11s));
    // A file under 16 MiB is still polled as before.
    auto b_on = on.wait(on.srv->add_file_of_size(8 * mib));
    auto b_off = off.wait(off.srv->add_file_of_size(8 * mib));
    BOOST_TEST(b_on.polls == b_off.polls);
    BOOST_TEST(b_on.polls > 1u);
}

// A long pause never runs past a wait's deadline: the wait still polls a
// poll_max before it and ends with deadline_exceeded at the deadline, not
// earlier.
BOOST_AUTO_TEST_CASE(a_long_pause_stops_short_of_the_deadline) {
    sized on(true);
    BOOST_TEST(on.wait(on.srv->add_file_of_size(1000 * mib)).active);
    const std::string big = on.srv->add_file_of_size(900 * mib);
    const time_point t0 = on.clk.now();
    gemini::wait_options w(t0 + 120s);
    bool done = false;
    error_code got;
    time_point at{};
    on.client->async_wait_until_active(big, std::move(w), [&](error_code ec, gemini::file) {
        done = true;
        got = ec;
        at = on.clk.now();
    });
    BOOST_REQUIRE(run_virtual(on.ctx, on.clk, [&] { return done; }));
    BOOST_TEST((got == resilience::errc::deadline_exceeded));
    BOOST_TEST((at - t0 >= 100s));
    BOOST_TEST((at - t0 <= 120s));
}

// The simulator's processing time grows with the size it reports.
BOOST_AUTO_TEST_CASE(simulated_processing_grows_with_size) {
    sized s(true, 500ms);
    const auto small = s.srv->file(s.srv->add_file_of_size(2 * mib));
    const auto large = s.srv->file(s.srv->add_file_of_size(200 * mib));
    BOOST_REQUIRE(small && large);
    BOOST_TEST(large->size == 200 * mib);
    BOOST_TEST((small->ready_at - small->created == 3s));
    BOOST_TEST((large->ready_at - large->created == 102s));
}
