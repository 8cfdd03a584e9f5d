// Processing times, expiry, outage windows, quota windows and latency in
// virtual time: the server runs on the test's io_context with a manual clock.

#include "http_client.hpp"

#include <resilience/sim/server.hpp>
#include <resilience/testing/manual_clock.hpp>

#include <test_common.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/test/unit_test.hpp>

using namespace simtest;
using namespace std::chrono_literals;
namespace sim = resilience::sim;
namespace rt = resilience::testing;
using sim::route;

namespace {

headers key_h() { return headers{std::pair<std::string, std::string>("x-goog-api-key", "k")}; }

struct vfixture {
    asio::io_context ctx;
    rt::manual_clock clk;
    std::unique_ptr<sim::server> srv;
    bool done = false;

    void make(sim::config cfg) {
        cfg.api_key = "k";
        cfg.time = &clk;
        srv = std::make_unique<sim::server>(ctx, cfg);
        srv->start();
    }
    resilience::duration elapsed(resilience::time_point t0) const { return clk.now() - t0; }

    template <class F>
    void run(F f) {
        asio::co_spawn(ctx, f(), test::rethrow{});
        BOOST_REQUIRE(rt::run_virtual(ctx, clk, [&] { return done; }));
    }

    asio::awaitable<std::string> state_of(async_client& c, const std::string& name) {
        std::string target = "/v1beta/" + name;
        auto res = co_await c.send(http::verb::get, target, {}, key_h());
        if (res.result_int() != 200) co_return "HTTP " + std::to_string(res.result_int());
        co_return std::string(body_json(res).at("state").as_string());
    }
    asio::awaitable<void> sleep(resilience::duration d) {
        auto until = clk.now() + d;
        co_await clk.sleep_until(until);
    }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(sim_virtual_time, vfixture)

BOOST_AUTO_TEST_CASE(processing_then_active) {
    sim::config cfg;
    cfg.processing = sim::processing_time::fixed(5s);
    make(cfg);
    auto name = srv->add_file("video", "video/mp4");
    run([&]() -> asio::awaitable<void> {
        async_client c(co_await asio::this_coro::executor, srv->port());
        BOOST_CHECK_EQUAL(co_await state_of(c, name), "PROCESSING");
        co_await sleep(4900ms);
        BOOST_CHECK_EQUAL(co_await state_of(c, name), "PROCESSING");
        co_await sleep(100ms);
        BOOST_CHECK_EQUAL(co_await state_of(c, name), "ACTIVE");
        // expiry: 48 h after creation the file is gone (403)
        co_await sleep(48h);
        BOOST_CHECK_EQUAL(co_await state_of(c, name), "HTTP 403");
        done = true;
    });
    BOOST_CHECK_EQUAL(srv->snapshot().polls_of(name), 4u);
}

BOOST_AUTO_TEST_CASE(uniform_processing_and_failures) {
    sim::config cfg;
    cfg.processing = sim::processing_time::uniform(1s, 3s);
    cfg.fail_share = 0.5;
    cfg.seed = 11;
    make(cfg);
    std::vector<std::string> names;
    for (int i = 0; i < 40; ++i) names.push_back(srv->add_file("f", "text/plain"));
    int failed = 0;
    for (auto& n : names) {
        auto info = srv->file(n);
        BOOST_REQUIRE(info);
        BOOST_CHECK(info->ready_at - info->created >= 1s);
        BOOST_CHECK(info->ready_at - info->created <= 3s);
        BOOST_CHECK(info->state == sim::file_state::processing);
    }
    run([&]() -> asio::awaitable<void> {
        co_await sleep(3s);
        async_client c(co_await asio::this_coro::executor, srv->port());
        for (auto& n : names) {
            auto target = "/v1beta/" + n;
            auto res = co_await c.send(http::verb::get, target, {}, key_h());
            auto v = body_json(res).as_object();
            if (v.at("state").as_string() == "FAILED") {
                ++failed;
                BOOST_CHECK(v.at("error").as_object().contains("code"));
                BOOST_CHECK(v.at("error").as_object().contains("message"));
                std::string body = R"({"contents":[{"parts":[{"fileData":{"fileUri":")" + n + R"("}}]}]})";
                auto gen = co_await c.send(http::verb::post, "/v1beta/models/m:generateContent", body, key_h());
                BOOST_CHECK_EQUAL(gen.result_int(), 400);
            } else {
                BOOST_CHECK_EQUAL(v.at("state").as_string(), "ACTIVE");
            }
        }
        done = true;
    });
    BOOST_CHECK_GT(failed, 8);
    BOOST_CHECK_LT(failed, 32);
}

BOOST_AUTO_TEST_CASE(outage_window) {
    make(sim::config());
    srv->add_outage(sim::outage(10s, 30s));
    std::vector<std::pair<int, int>> seen;  // (second, status)
    run([&]() -> asio::awaitable<void> {
        async_client c(co_await asio::this_coro::executor, srv->port());
        for (int s = 0; s < 50; s += 5) {
            auto res = co_await c.send(http::verb::get, "/v1beta/files", {}, key_h());
            seen.emplace_back(s, res.result_int());
            co_await sleep(5s);
        }
        done = true;
    });
    for (auto [s, status] : seen) BOOST_CHECK_EQUAL(status, (s >= 10 && s < 40) ? 503 : 200);
    BOOST_CHECK_EQUAL(srv->snapshot().faults_of("outage"), 6u);
}

BOOST_AUTO_TEST_CASE(quota_window_retry_info_is_what_remains) {
    make(sim::config());
    srv->add_quota(sim::quota(route::list, 3, 60s));
    std::vector<std::string> delays;
    std::vector<int> statuses;
    run([&]() -> asio::awaitable<void> {
        async_client c(co_await asio::this_coro::executor, srv->port());
        co_await sleep(15s);
        for (int i = 0; i < 4; ++i) {
            auto res = co_await c.send(http::verb::get, "/v1beta/files", {}, key_h());
            statuses.push_back(res.result_int());
            if (res.result_int() == 429) {
                auto v = body_json(res);
                for (auto& d : v.at("error").at("details").as_array())
                    if (d.at("@type").as_string() == "type.googleapis.com/google.rpc.RetryInfo")
                        delays.emplace_back(d.at("retryDelay").as_string());
            }
        }
        co_await sleep(45s);  // the next window
        auto res = co_await c.send(http::verb::get, "/v1beta/files", {}, key_h());
        statuses.push_back(res.result_int());
        done = true;
    });
    BOOST_CHECK((statuses == std::vector<int>{200, 200, 200, 429, 200}));
    BOOST_REQUIRE_EQUAL(delays.size(), 1u);
    BOOST_CHECK_EQUAL(delays[0], "45s");
    BOOST_CHECK_EQUAL(srv->snapshot().faults_of("quota"), 1u);
}

BOOST_AUTO_TEST_CASE(latency_on_the_clock_and_request_log) {
    sim::config cfg;
    cfg.record_requests = true;
    make(cfg);
    auto f = sim::fault::next(sim::fault_kind::latency, route::all, 2);
    f.latency = 7s;
    srv->add_fault(f);
    auto t0 = clk.now();
    resilience::duration took{};
    run([&]() -> asio::awaitable<void> {
        async_client c(co_await asio::this_coro::executor, srv->port());
        for (int i = 0; i < 3; ++i) co_await c.send(http::verb::get, "/v1beta/files", {}, key_h());
        took = clk.now() - t0;
        done = true;
    });
    BOOST_CHECK(took == 14s);
    auto log = srv->requests();
    BOOST_REQUIRE_EQUAL(log.size(), 3u);
    // "How many requests before t = 10 s": the first (t=0) and second (t=7 s).
    auto before = std::count_if(log.begin(), log.end(), [&](auto& r) { return r.at - t0 < 10s; });
    BOOST_CHECK_EQUAL(before, 2);
    BOOST_CHECK_EQUAL(log[2].status, 200);
}

BOOST_AUTO_TEST_SUITE_END()
