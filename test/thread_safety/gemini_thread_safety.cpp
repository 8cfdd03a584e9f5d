// One gemini::client shared by handlers of an io_context run by 4 threads,
// with no strand arranged by the user, against the simulator (on its own
// thread, with faults): callbacks, coroutines awaiting async_* with
// use_awaitable, and callbacks started from inside other callbacks, all at
// once. Run under ThreadSanitizer by scripts/test.sh.
#include <resilience/gemini/client.hpp>
#include <resilience/sim/server.hpp>

#include "test_common.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace gemini = resilience::gemini;
namespace sim = resilience::sim;
using resilience::error_code;
using resilience::time_point;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_CASE(thread_safety_one_gemini_client_four_threads) {
    sim::config cfg;
    cfg.api_key = "tsan-key";
    cfg.processing = sim::processing_time::fixed(20ms);
    sim::server srv(cfg);  // its own thread, steady clock
    srv.start();
    // Some answers fail: retries, backoff and the breaker's bookkeeping run
    // concurrently with everything else.
    srv.add_fault(sim::fault::sometimes(sim::fault_kind::overloaded, sim::route::get, 0.05));
    srv.add_fault(sim::fault::sometimes(sim::fault_kind::reset_before_headers, sim::route::list, 0.05));

    asio::io_context ctx(4);
    gemini::client_options opts;
    opts.api_key = "tsan-key";
    opts.base_url = srv.base_url();
    opts.retry.max_retries = 6;
    opts.retry.backoff.initial_delay = 1ms;
    opts.retry.backoff.max_delay = 5ms;
    opts.breaker.failure_threshold = 1000;
    opts.http.max_connections_per_origin = 4;  // callers queue for slots
    gemini::client c(ctx.get_executor(), std::move(opts));

    const auto path = (std::filesystem::temp_directory_path() / ("tsan-" + std::to_string(::getpid()) + ".txt")).string();
    std::ofstream(path) << "hello from four threads";

    std::vector<std::string> names;
    for (int i = 0; i < 16; ++i) names.push_back(srv.add_file("file " + std::to_string(i), "text/plain"));

    // Boost.Test's assertions are not thread-safe: handlers on the 4 threads
    // only count, and the test checks the counts after the threads joined.
    std::atomic<int> ok{0}, failed{0}, pending{0}, not_active{0};
    auto done = [&](error_code ec) {
        (ec ? failed : ok).fetch_add(1, std::memory_order_relaxed);
        pending.fetch_sub(1, std::memory_order_relaxed);
    };
    constexpr int rounds = 40;
    // Every operation is started from a handler of the multi-threaded context.
    for (int i = 0; i < rounds; ++i) {
        pending.fetch_add(4, std::memory_order_relaxed);
        asio::post(ctx, [&, i] {
            c.async_get(names[i % names.size()], time_point::max(), [&](error_code ec, gemini::file) {
                // A follow-up call from inside a completion handler.
                c.async_list(time_point::max(), [&](error_code ec2, std::vector<gemini::file>) { done(ec2); });
                done(ec);
            });
        });
        asio::co_spawn(ctx, [&, i]() -> asio::awaitable<void> {
            error_code ec;
            try {
                auto f = co_await c.async_upload(path, gemini::upload_options(), asio::use_awaitable);
                gemini::wait_options w;
                w.poll_initial = 5ms;
                auto a = co_await c.async_wait_until_active(f.name, std::move(w), asio::use_awaitable);
                if (a.state != gemini::file_state::active) not_active.fetch_add(1, std::memory_order_relaxed);
                if (i % 2 == 0) co_await c.async_remove(a.name, time_point::max(), asio::use_awaitable);
            } catch (const boost::system::system_error& e) {
                ec = e.code();
            }
            done(ec);
        }, test::rethrow{});
        asio::post(ctx, [&] {
            std::vector<gemini::content> contents{{"user", {gemini::part::from_text("hi")}}};
            c.async_generate_content("gemini-2.0-flash", std::move(contents), time_point::max(),
                                     [&](error_code ec, gemini::generate_result) { done(ec); });
        });
    }
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) threads.emplace_back([&] { ctx.run(); });
    for (auto& t : threads) t.join();

    BOOST_TEST(pending.load() == 0);
    BOOST_TEST(not_active.load() == 0);
    BOOST_TEST(ok.load() == rounds * 4, "ok " << ok.load() << ", failed " << failed.load());
    const auto s = c.http().stats();
    BOOST_TEST(s.in_use == 0u);
    BOOST_TEST(s.waiting == 0u);
    BOOST_TEST(c.stats().calls > 0u);
    BOOST_TEST_MESSAGE("calls " << c.stats().calls << ", retries " << c.stats().retries << ", connections opened "
                                << s.opened << ", faults " << srv.snapshot().faults_injected);
    srv.stop();
    std::filesystem::remove(path);
}

// One http::client (thread_safe, the default) shared by coroutines awaiting
// send() directly on an io_context run by 4 threads, no strand anywhere:
// requests run on their callers' threads and share only the pool (4
// connections for 16 loops: callers queue for slots). Some answers come
// late, after the client's io_timeout, so that limits expire (the socket is
// shut down) while other requests run; some connections are reset.
BOOST_AUTO_TEST_CASE(thread_safety_one_http_client_four_threads_no_strand) {
    sim::config cfg;
    cfg.api_key = "tsan-key";
    sim::server srv(cfg);
    srv.start();
    sim::fault slow = sim::fault::sometimes(sim::fault_kind::latency, sim::route::get, 0.1);
    slow.latency = 300ms;
    srv.add_fault(slow);
    srv.add_fault(sim::fault::sometimes(sim::fault_kind::reset_before_headers, sim::route::get, 0.05));
    const std::string url = srv.base_url() + "/v1beta/" + srv.add_file("shared", "text/plain");

    asio::io_context ctx(4);
    resilience::http::client_options o;
    o.max_connections_per_origin = 4;
    o.io_timeout = 100ms;
    resilience::http::client c(ctx.get_executor(), o);
    std::atomic<int> ok{0}, timed_out{0}, other{0};
    constexpr int loops = 16, per_loop = 25;
    for (int k = 0; k < loops; ++k)
        asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
            for (int i = 0; i < per_loop; ++i) {
                resilience::http::request req;
                req.url = url;
                req.headers.set("x-goog-api-key", "tsan-key");
                auto r = co_await c.send(std::move(req));
                if (r && r->status == 200) ok.fetch_add(1, std::memory_order_relaxed);
                else if (!r && r.error().code == asio::error::timed_out) timed_out.fetch_add(1, std::memory_order_relaxed);
                else other.fetch_add(1, std::memory_order_relaxed);
            }
        }, test::rethrow{});
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) threads.emplace_back([&] { ctx.run(); });
    for (auto& t : threads) t.join();

    BOOST_TEST(ok.load() + timed_out.load() + other.load() == loops * per_loop);
    BOOST_TEST(ok.load() > 0);
    BOOST_TEST(timed_out.load() > 0);  // limits did expire under load
    const auto s = c.stats();
    BOOST_TEST(s.in_use == 0u);
    BOOST_TEST(s.waiting == 0u);
    BOOST_TEST(s.opened >= 4u);
    BOOST_TEST_MESSAGE("ok " << ok.load() << ", timed out " << timed_out.load() << ", other " << other.load()
                             << ", opened " << s.opened << ", reused " << s.reused);
    srv.stop();
}
