// 10,000 operations on an io_context run by 4 threads share one breaker, one
// cooldown and one retry budget (steady clock, 1 ms delays). Each operation
// runs on its own strand, as Asio's awaitable operators require.
#define BOOST_TEST_MODULE thread_safety
#include <resilience/http/error.hpp>
#include <resilience/retry.hpp>

#include "test_common.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace resilience;
using namespace std::chrono_literals;

namespace {
void run_shared_gates(breaker_options bo) {
    asio::io_context ctx(4);
    bo.config.failure_threshold = 5;
    bo.config.open_timeout = 2ms;
    bo.config.half_open_probes = 2;
    retry_options ro;
    ro.breaker = std::make_shared<circuit_breaker>(bo);
    ro.cooldown = std::make_shared<cooldown>();
    ro.budget = std::make_shared<retry_budget>();
    ro.scope = make_scope("api.example", "key");
    ro.policy.max_retries = 3;
    ro.policy.backoff.initial_delay = 1ms;
    ro.policy.backoff.max_delay = 2ms;
    pipeline p(ro);
    std::atomic<int> done{0}, ok{0}, calls{0};
    constexpr int n = 10000;
    for (int i = 0; i < n; ++i) {
        auto strand = asio::make_strand(ctx);
        asio::co_spawn(strand, [&, i]() -> asio::awaitable<void> {
            call_options c;
            c.deadline = std::chrono::steady_clock::now() + 2s;
            if (i % 3 == 0) c.admission = admission_mode::fail_fast;
            auto r = co_await p.run([&]() -> asio::awaitable<result<int>> {
                const int k = calls.fetch_add(1, std::memory_order_relaxed);
                // Outage windows (every third block of 500 calls) open the breaker.
                if ((k / 500) % 3 == 1 || k % 7 == 0)
                    co_return failure(make_error_code(resilience::http::errc::server_error), "503");
                if (k % 101 == 0) {
                    failure f(make_error_code(resilience::http::errc::too_many_requests), "429");
                    f.diag.retry_after = 1ms;
                    co_return f;
                }
                co_return 1;
            }, std::move(c));
            if (r) ok.fetch_add(1, std::memory_order_relaxed);
            done.fetch_add(1, std::memory_order_relaxed);
        }, test::rethrow{});
    }
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) threads.emplace_back([&] { ctx.run(); });
    for (auto& t : threads) t.join();
    BOOST_TEST(done.load() == n);
    BOOST_TEST(ok.load() > 0);
    BOOST_TEST(ro.breaker->waiters() == 0u);
    const auto h = ro.breaker->history();
    BOOST_TEST(!h.empty());  // the breaker did open (and the gates were exercised)
    BOOST_TEST_MESSAGE("calls " << calls.load() << ", ok " << ok.load() << ", transitions " << h.size()
                                << ", budget tokens " << ro.budget->tokens());
}
}  // namespace

BOOST_AUTO_TEST_CASE(thread_safety_shared_gates) { run_shared_gates({}); }

// The failure-rate window: lock-free success counting folded under the lock.
BOOST_AUTO_TEST_CASE(thread_safety_shared_gates_window) {
    breaker_options bo;
    bo.rules.failure_ratio = 0.5;
    bo.rules.minimum_throughput = 50;
    bo.rules.sampling_duration = 100ms;
    bo.rules.break_multiplier = 2;
    bo.rules.max_break = 8ms;
    run_shared_gates(bo);
}
