// The gates plugged into the retry combinator, in virtual time on one thread.
#include <resilience/http/error.hpp>
#include <resilience/retry.hpp>
#include <resilience/testing/manual_clock.hpp>

#include "test_common.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <vector>

BOOST_TEST_DONT_PRINT_LOG_VALUE(resilience::breaker_state)
BOOST_TEST_DONT_PRINT_LOG_VALUE(resilience::transition_reason)

namespace asio = boost::asio;
using namespace resilience;
using namespace std::chrono_literals;

namespace {

struct fixture {
    asio::io_context ctx;
    testing::manual_clock clk;
    time_point t0 = clk.now();
    std::vector<time_point> calls;  // timestamps of every call of the operation

    std::shared_ptr<circuit_breaker> make_breaker(int threshold, std::chrono::milliseconds timeout, int probes = 1) {
        breaker_options o;
        o.config.failure_threshold = threshold;
        o.config.open_timeout = timeout;
        o.config.half_open_probes = probes;
        o.time = &clk;
        return std::make_shared<circuit_breaker>(o);
    }
    retry_options options() {
        retry_options o;
        o.time = &clk;
        o.seed = 42;
        o.policy.max_retries = 5;
        o.policy.backoff.initial_delay = 1000ms;
        o.budget = nullptr;  // on by default; these tests set one where they test it
        return o;
    }
};

failure server_error() { return failure(make_error_code(resilience::http::errc::server_error), "HTTP 503"); }

// Fails at once with a 503.
asio::awaitable<result<int>> failing(fixture& f) {
    f.calls.push_back(f.clk.now());
    co_return server_error();
}

// Fails with 503 until `healthy_at`, then succeeds; each call takes `latency`.
asio::awaitable<result<int>> recovering(fixture& f, time_point healthy_at, duration latency) {
    f.calls.push_back(f.clk.now());
    if (latency > duration::zero()) co_await f.clk.sleep_until(f.clk.now() + latency);
    if (f.clk.now() < healthy_at) co_return server_error();
    co_return 1;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(gates_pipeline)

BOOST_FIXTURE_TEST_CASE(thousand_operations_open_after_exactly_threshold_failures, fixture) {
    auto ro = options();
    ro.breaker = make_breaker(3, 60s);
    ro.admission = admission_mode::fail_fast;
    pipeline p(ro);
    int open_failures = 0, done = 0;
    for (int i = 0; i < 1000; ++i)
        asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
            auto r = co_await p.run([&] { return failing(*this); });
            BOOST_TEST(!r);
            if (r.error().code == errc::circuit_open) {
                ++open_failures;
                BOOST_TEST((r.error().diag.gave_up == give_up_reason::circuit_open));
            }
            ++done;
        }, test::rethrow{});
    BOOST_TEST(testing::run_virtual(ctx, clk, [&] { return done == 1000; }));
    BOOST_TEST(calls.size() == 3u);  // the breaker opened at the 3rd failure; nobody called after
    BOOST_TEST(open_failures == 1000);  // even the first three end on the open breaker when they retry
    auto h = ro.breaker->history();
    BOOST_REQUIRE(h.size() == 1u);
    BOOST_TEST(h[0].reason == transition_reason::failure_threshold);
    BOOST_TEST((h[0].at == t0));
}

BOOST_FIXTURE_TEST_CASE(waiting_operations_are_not_called_while_open, fixture) {
    auto ro = options();
    ro.breaker = make_breaker(3, 10s);
    ro.policy.max_retries = 1000;
    ro.policy.backoff.max_delay = 2000ms;
    pipeline p(ro);
    int done = 0;
    for (int i = 0; i < 1000; ++i)
        asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
            call_options c;
            c.deadline = t0 + 35s;
            auto r = co_await p.run([&] { return failing(*this); }, std::move(c));
            BOOST_TEST(!r);
            ++done;
        }, test::rethrow{});
    BOOST_TEST(testing::run_virtual(ctx, clk, [&] { return done == 1000; }));
    // With a deadline each attempt races a timer, so all 1000 first attempts
    // are in flight (admitted while CLOSED) before the first failure; the 3rd
    // failure opens it; then one probe per half-open: at 10 s, 20 s, 30 s.
    BOOST_TEST(calls.size() == 1003u);
    BOOST_TEST(std::count(calls.begin(), calls.end(), t0) == 1000);
    auto h = ro.breaker->history();
    for (auto tp : calls) {
        bool open = false;
        for (auto& t : h)
            if (t.to == breaker_state::open && tp > t.at && tp < t.at + 10s) open = true;
        BOOST_TEST(!open, "call at " << (tp - t0).count() / 1e9 << " s");
    }
    BOOST_REQUIRE(calls.size() == 1003u);
    BOOST_TEST((calls[1000] == t0 + 10s));
    BOOST_TEST((calls[1002] == t0 + 30s));
}

BOOST_FIXTURE_TEST_CASE(waiters_admitted_when_probe_succeeds, fixture) {
    auto ro = options();
    ro.breaker = make_breaker(3, 10s);
    ro.policy.max_retries = 1000;
    pipeline p(ro);
    const time_point healthy = t0 + 15s;
    int ok = 0, done = 0;
    time_point last_done{};
    for (int i = 0; i < 100; ++i)
        asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
            auto r = co_await p.run([&] { return recovering(*this, healthy, 100ms); });
            if (r) ++ok;
            ++done;
            last_done = clk.now();
        }, test::rethrow{});
    BOOST_TEST(testing::run_virtual(ctx, clk, [&] { return done == 100; }));
    BOOST_TEST(ok == 100);
    BOOST_TEST(ro.breaker->state() == breaker_state::closed);
    // The probe at ~10.1 s fails, the one at ~20.2 s succeeds and admits everyone at once.
    BOOST_TEST((last_done <= t0 + 21s));
    const auto h = ro.breaker->history();
    BOOST_TEST(h.back().reason == transition_reason::probe_succeeded);
    std::size_t during_outage = std::count_if(calls.begin(), calls.end(), [&](auto tp) { return tp < healthy; });
    BOOST_TEST(during_outage <= 100u + 2u);  // first attempts (all in flight at t0) + probes
}

BOOST_FIXTURE_TEST_CASE(half_open_admits_exactly_n_probes, fixture) {
    auto ro = options();
    ro.breaker = make_breaker(1, 10s, 2);
    ro.breaker->isolate();  // OPEN now, until reset
    pipeline p(ro);
    int done = 0, ok = 0;
    for (int i = 0; i < 50; ++i)
        asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
            auto r = co_await p.run([&] { return recovering(*this, t0, 1s); });
            if (r) ++ok;
            ++done;
        }, test::rethrow{});
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
        co_await clk.sleep_until(t0 + 5s);
        BOOST_TEST(ro.breaker->waiters() == 50u);
        // Reset, then open it again by hand to get a timed OPEN period: isolate()
        // holds callers until reset, a threshold failure opens for open_timeout.
        ro.breaker->reset();
    }, test::rethrow{});
    BOOST_TEST(testing::run_virtual(ctx, clk, [&] { return done == 50; }));
    BOOST_TEST(ok == 50);
    BOOST_TEST(calls.size() == 50u);
    BOOST_TEST(std::count(calls.begin(), calls.end(), t0 + 5s) == 50);

    // Now a timed open period: one counted failure opens it for 10 s; 50
    // callers wait; at the end exactly 2 probes run, then everyone else.
    calls.clear();
    done = ok = 0;
    const time_point t1 = clk.now();
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
        call_options c;
        c.admission = admission_mode::fail_fast;
        co_await p.run([&] { return failing(*this); }, std::move(c));
    }, test::rethrow{});
    for (int i = 0; i < 50; ++i)
        asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
            auto r = co_await p.run([&] { return recovering(*this, t0, 1s); });
            if (r) ++ok;
            ++done;
        }, test::rethrow{});
    BOOST_TEST(testing::run_virtual(ctx, clk, [&] { return done == 50; }));
    BOOST_TEST(ok == 50);
    BOOST_TEST(std::count(calls.begin(), calls.end(), t1 + 10s) == 2);  // the two probes
    BOOST_TEST(std::count(calls.begin(), calls.end(), t1 + 11s) == 48);  // admitted when a probe closed it
    BOOST_TEST(calls.size() == 51u);
}

// The deadline has one owner and one code: a transport that reports its own
// deadline (errc::attempt_timeout, as the HTTP client does from
// attempt_context::deadline) once the call's deadline passed, and a breaker
// that will not admit before the deadline, both end with deadline_exceeded;
// the breaker hears neither.
BOOST_FIXTURE_TEST_CASE(an_expired_deadline_has_one_code_and_never_counts, fixture) {
    auto ro = options();
    ro.breaker = make_breaker(2, 30s);
    pipeline p(ro);
    bool done = false;
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
        call_options c;
        c.deadline = t0 + 5s;
        auto r = co_await p.run([&](const attempt_context& a) -> asio::awaitable<result<int>> {
            // Ends at the attempt's deadline with the transport's own code.
            co_await clk.sleep_until(a.deadline);
            co_return failure(make_error_code(errc::attempt_timeout), "the request's deadline passed");
        }, std::move(c));
        BOOST_TEST_REQUIRE(!r);
        BOOST_TEST((r.error().code == errc::deadline_exceeded));
        BOOST_TEST((r.error().diag.gave_up == give_up_reason::deadline));
        BOOST_TEST(r.error().what().find("the request's deadline passed") != std::string::npos);
        BOOST_TEST((clk.now() == t0 + 5s));
        BOOST_TEST(ro.breaker->snapshot().consecutive_failures() == 0);

        // Open it (two 503s), then a call whose deadline comes before the breaker's end.
        call_options once;
        once.admission = admission_mode::fail_fast;
        (void)co_await p.run([&] { return failing(*this); }, once);
        BOOST_TEST(ro.breaker->state() == breaker_state::open);
        const int failures = ro.breaker->snapshot().consecutive_failures();
        call_options cut;
        cut.deadline = clk.now() + 10s;
        auto w = co_await p.run([&] { return failing(*this); }, std::move(cut));
        BOOST_TEST_REQUIRE(!w);
        BOOST_TEST((w.error().code == errc::deadline_exceeded));
        BOOST_TEST((w.error().diag.gave_up == give_up_reason::deadline));
        BOOST_TEST(ro.breaker->snapshot().consecutive_failures() == failures);
        done = true;
    }, test::rethrow{});
    BOOST_TEST(testing::run_virtual(ctx, clk, [&] { return done; }));
}

BOOST_FIXTURE_TEST_CASE(cancelled_probe_frees_its_slot, fixture) {
    auto ro = options();
    ro.breaker = make_breaker(1, 10s);
    ro.breaker->isolate();
    ro.breaker->reset();
    pipeline p(ro);
    // Open it.
    int done = 0;
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
        call_options c;
        c.admission = admission_mode::fail_fast;
        auto r = co_await p.run([&] { return failing(*this); }, std::move(c));
        ++done;
    }, test::rethrow{});
    BOOST_TEST(testing::run_virtual(ctx, clk, [&] { return done == 1; }));
    BOOST_TEST(ro.breaker->state() == breaker_state::open);

    // A probe that hangs, cancelled at 15 s; a waiter behind it becomes the next probe.
    asio::cancellation_signal sig;
    bool probe_aborted = false, second_ok = false;
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
        auto r = co_await p.run([&]() -> asio::awaitable<result<int>> {
            if (error_code ec = co_await clk.sleep_until(clk.now() + 1000s)) co_return failure(ec);
            co_return 1;
        });
        probe_aborted = !r && r.error().code == asio::error::operation_aborted;
        ++done;
    }, asio::bind_cancellation_slot(sig.slot(), test::rethrow{}));
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
        co_await clk.sleep_until(t0 + 11s);
        auto r = co_await p.run([&]() -> asio::awaitable<result<int>> { co_return 2; });
        second_ok = r.has_value();
        ++done;
    }, test::rethrow{});
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
        co_await clk.sleep_until(t0 + 15s);
        BOOST_TEST(ro.breaker->state() == breaker_state::half_open);
        BOOST_TEST(ro.breaker->waiters() == 1u);
        sig.emit(asio::cancellation_type::terminal);
    }, test::rethrow{});
    BOOST_TEST(testing::run_virtual(ctx, clk, [&] { return done == 3; }));
    BOOST_TEST(probe_aborted);
    BOOST_TEST(second_ok);
    BOOST_TEST(ro.breaker->state() == breaker_state::closed);
    BOOST_TEST((clk.now() < t0 + 16s));
}

BOOST_FIXTURE_TEST_CASE(probe_cut_by_its_deadline_frees_its_slot, fixture) {
    auto ro = options();
    ro.breaker = make_breaker(1, 10s);
    pipeline p(ro);
    int done = 0;
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
        call_options c;
        c.admission = admission_mode::fail_fast;
        co_await p.run([&] { return failing(*this); }, std::move(c));
        ++done;
    }, test::rethrow{});
    BOOST_TEST(testing::run_virtual(ctx, clk, [&] { return done == 1; }));
    // The probe (admitted at 10 s) hangs and is cut by its deadline at 12 s;
    // the caller waiting behind it then probes, and succeeds.
    bool probe_deadline = false, second_ok = false;
    time_point second_at{};
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
        call_options c;
        c.deadline = t0 + 12s;
        auto r = co_await p.run([&]() -> asio::awaitable<result<int>> {
            if (error_code ec = co_await clk.sleep_until(clk.now() + 1000s)) co_return failure(ec);
            co_return 1;
        }, std::move(c));
        probe_deadline = !r && r.error().code == errc::deadline_exceeded;
        ++done;
    }, test::rethrow{});
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
        co_await clk.sleep_until(t0 + 10500ms);  // after the probe started
        auto r = co_await p.run([&]() -> asio::awaitable<result<int>> { co_return 2; });
        second_ok = r.has_value();
        second_at = clk.now();
        ++done;
    }, test::rethrow{});
    BOOST_TEST(testing::run_virtual(ctx, clk, [&] { return done == 3; }));
    BOOST_TEST(probe_deadline);
    BOOST_TEST(second_ok);
    BOOST_TEST((second_at == t0 + 12s));
    BOOST_TEST(ro.breaker->state() == breaker_state::closed);
}

BOOST_FIXTURE_TEST_CASE(waiting_caller_honours_its_cancellation_and_deadline, fixture) {
    auto ro = options();
    ro.breaker = make_breaker(1, 60s);
    ro.breaker->isolate();
    pipeline p(ro);
    asio::cancellation_signal sig;
    int done = 0;
    std::vector<std::string> st;
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
        auto r = co_await p.run([&] { return failing(*this); });
        BOOST_TEST(!r);
        BOOST_TEST((r.error().code == asio::error::operation_aborted));
        BOOST_TEST((r.error().diag.gave_up == give_up_reason::cancelled));
        ++done;
    }, asio::bind_cancellation_slot(sig.slot(), test::rethrow{}));
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
        call_options c;
        c.deadline = t0 + 5s;
        auto r = co_await p.run([&] { return failing(*this); }, std::move(c));
        BOOST_TEST(!r);
        BOOST_TEST((r.error().diag.gave_up == give_up_reason::deadline));
        BOOST_TEST((clk.now() == t0 + 5s));
        ++done;
    }, test::rethrow{});
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
        co_await clk.sleep_until(t0 + 3s);
        BOOST_TEST(ro.breaker->waiters() == 2u);
        sig.emit(asio::cancellation_type::terminal);
    }, test::rethrow{});
    BOOST_TEST(testing::run_virtual(ctx, clk, [&] { return done == 2; }));
    BOOST_TEST(calls.empty());
    BOOST_TEST(ro.breaker->waiters() == 0u);
}

BOOST_FIXTURE_TEST_CASE(status_reports_breaker_state, fixture) {
    auto ro = options();
    ro.breaker = make_breaker(1, 60s);
    ro.policy.max_retries = 1;
    ro.policy.backoff.jitter = jitter_mode::none;
    std::vector<std::string> st;
    std::vector<event_type> ev;
    ro.on_status = [&](std::string_view s) { st.emplace_back(s); };
    ro.on_event = [&](const event& e) { ev.push_back(e.type); };
    pipeline p(ro);
    bool done = false;
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
        call_options c;
        c.deadline = t0 + 30s;
        auto r = co_await p.run([&] { return failing(*this); }, std::move(c));
        BOOST_TEST(!r);
        done = true;
    }, test::rethrow{});
    BOOST_TEST(testing::run_virtual(ctx, clk, [&] { return done; }));
    BOOST_REQUIRE(st.size() >= 2u);
    BOOST_TEST(st[1] == "Waiting 1s before retry (circuit breaker: OPEN)...");
    BOOST_TEST((std::find(ev.begin(), ev.end(), event_type::breaker_transition) != ev.end()));
    BOOST_TEST((std::find(ev.begin(), ev.end(), event_type::breaker_wait) == ev.end()));  // open until 60 s > deadline: gives up
}

BOOST_FIXTURE_TEST_CASE(cooldown_holds_every_operation_of_the_scope, fixture) {
    auto ro = options();
    ro.cooldown = std::make_shared<cooldown>();
    ro.scope = make_scope("api.example", "key");
    ro.policy.backoff.max_delay = 30s;
    std::vector<std::string> st;
    pipeline p(ro);
    int done = 0, ok = 0;
    for (int i = 0; i < 1000; ++i)
        asio::co_spawn(ctx, [&, i]() -> asio::awaitable<void> {
            call_options c;
            if (i == 1) c.on_status = [&](std::string_view s) { st.emplace_back(s); };
            auto r = co_await p.run([&](const attempt_context& a) -> asio::awaitable<result<int>> {
                calls.push_back(clk.now());
                if (i == 0 && a.attempt == 0) {
                    failure f(make_error_code(resilience::http::errc::too_many_requests), "quota");
                    f.diag.retry_after = 10s;
                    co_return f;
                }
                co_return 1;
            }, std::move(c));
            if (r) ++ok;
            ++done;
        }, test::rethrow{});
    BOOST_TEST(testing::run_virtual(ctx, clk, [&] { return done == 1000; }));
    BOOST_TEST(ok == 1000);
    BOOST_TEST(calls.size() == 1001u);
    BOOST_TEST(std::count_if(calls.begin(), calls.end(), [&](auto tp) { return tp < t0 + 10s; }) == 1);
    // The held calls are released spread over a tenth of the cooldown, not all at once.
    BOOST_TEST(std::count_if(calls.begin(), calls.end(), [&](auto tp) { return tp > t0 + 11s; }) == 0);
    BOOST_TEST(std::count_if(calls.begin(), calls.end(), [&](auto tp) { return tp > t0 + 10500ms; }) > 100);
    BOOST_REQUIRE(!st.empty());
    BOOST_TEST(st[0] == "Rate limited. Respecting Retry-After header: 10s");
}

// A quota storm: the server answers 429 with a 10 s delay until t0 + 60 s.
// 1,000 operations of one scope ask it far fewer than 1,000 times per cooldown:
// the calls released first meet the new pushback and hold the rest again.
BOOST_FIXTURE_TEST_CASE(quota_storm_costs_few_429s_per_cooldown, fixture) {
    auto ro = options();
    ro.cooldown = std::make_shared<cooldown>();
    ro.scope = "s";
    ro.policy.max_retries = 100;
    ro.policy.backoff.max_delay = 30s;
    pipeline p(ro);
    const time_point quota_back = t0 + 60s;
    int limited = 0, done = 0;
    auto op = [&]() -> asio::awaitable<result<int>> {
        calls.push_back(clk.now());
        if (clk.now() < quota_back) {
            ++limited;
            failure f(make_error_code(resilience::http::errc::too_many_requests), "HTTP 429");
            f.diag.retry_after = 10s;
            co_return f;
        }
        co_return 1;
    };
    for (int i = 0; i < 1000; ++i)
        asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
            auto r = co_await p.run(op);
            BOOST_TEST(r.has_value());
            ++done;
        }, test::rethrow{});
    BOOST_TEST(testing::run_virtual(ctx, clk, [&] { return done == 1000; }));
    // One 429 per cooldown period (t0, +10 s, ... +50 s), a few at most: not
    // one per operation (which would be 1,000 per period).
    BOOST_TEST_MESSAGE("429s: " << limited);
    BOOST_TEST(limited >= 6);
    BOOST_TEST(limited <= 6 * 3);
}

BOOST_FIXTURE_TEST_CASE(cooldown_past_deadline_gives_up_at_once, fixture) {
    auto ro = options();
    ro.cooldown = std::make_shared<cooldown>();
    ro.cooldown->defer(std::string_view("s"), t0 + 20s);
    ro.scope = "s";
    pipeline p(ro);
    bool done = false;
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
        call_options c;
        c.deadline = t0 + 5s;
        auto r = co_await p.run([&] { return failing(*this); }, std::move(c));
        BOOST_TEST(!r);
        BOOST_TEST((r.error().diag.gave_up == give_up_reason::deadline));
        BOOST_TEST((clk.now() == t0));
        done = true;
    }, test::rethrow{});
    BOOST_TEST(testing::run_virtual(ctx, clk, [&] { return done; }));
    BOOST_TEST(calls.empty());
}

// A 429 with a retry delay holds the scope even when the call that got it
// gives up (here max_retries = 0; the same holds for an exhausted budget):
// the next call of the scope waits for it instead of getting its own 429.
BOOST_FIXTURE_TEST_CASE(pushback_of_a_call_that_gives_up_still_holds_the_scope, fixture) {
    auto ro = options();
    ro.policy.max_retries = 0;
    ro.cooldown = std::make_shared<cooldown>();
    ro.scope = "s";
    pipeline p(ro);
    auto limited = [&]() -> asio::awaitable<result<int>> {
        calls.push_back(clk.now());
        failure f(make_error_code(resilience::http::errc::too_many_requests), "HTTP 429");
        f.diag.retry_after = 10s;
        co_return f;
    };
    int done = 0;
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
        auto r = co_await p.run(limited);
        BOOST_TEST(!r);
        BOOST_TEST((r.error().diag.gave_up == give_up_reason::max_retries));
        auto until = p.options().cooldown->blocked_until(std::string_view("s"), clk.now());
        BOOST_TEST((until && *until == t0 + 10s));
        auto r2 = co_await p.run(limited);
        BOOST_TEST(!r2);
        ++done;
    }, test::rethrow{});
    BOOST_TEST(testing::run_virtual(ctx, clk, [&] { return done == 1; }));
    BOOST_REQUIRE(calls.size() == 2u);
    // Held calls wake spread over a tenth of the cooldown after it ends.
    BOOST_TEST((calls[1] >= t0 + 10s));
    BOOST_TEST((calls[1] <= t0 + 11s));
}

BOOST_FIXTURE_TEST_CASE(budget_bounds_retries_under_sustained_failure, fixture) {
    auto ro = options();
    ro.budget = std::make_shared<retry_budget>(budget_config{100, 0.1});  // retries while > 50
    pipeline p(ro);
    int done = 0, budget_stops = 0;
    for (int i = 0; i < 200; ++i)
        asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
            auto r = co_await p.run([&] { return failing(*this); });
            BOOST_TEST(!r);
            if (r.error().diag.gave_up == give_up_reason::budget) {
                ++budget_stops;
                BOOST_TEST((r.error().code == errc::retry_budget_exhausted));
            }
            ++done;
        }, test::rethrow{});
    BOOST_TEST(testing::run_virtual(ctx, clk, [&] { return done == 200; }));
    const std::size_t retries = calls.size() - 200;
    BOOST_TEST(retries <= 50u);
    BOOST_TEST(retries >= 49u);
    BOOST_TEST(budget_stops >= 150);
}

// Retries the server asked for (a 429 with a delay) are paced by the server and
// the cooldown, not by the budget: 200 operations that each get one such 429
// all retry, even with the budget drained below its threshold by other
// failures, and they take no token.
BOOST_FIXTURE_TEST_CASE(budget_is_not_drained_by_server_pushback, fixture) {
    auto ro = options();
    ro.budget = std::make_shared<retry_budget>(budget_config{100, 0.1});
    for (int i = 0; i < 60; ++i) ro.budget->on_failure();  // 40 tokens: no retry allowed
    BOOST_REQUIRE(!ro.budget->retry_allowed());
    pipeline p(ro);
    int ok = 0, done = 0;
    for (int i = 0; i < 200; ++i)
        asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
            int attempt = 0;
            auto op = [&]() -> asio::awaitable<result<int>> {
                calls.push_back(clk.now());
                if (attempt++ > 0) co_return 1;
                failure f(make_error_code(resilience::http::errc::too_many_requests), "HTTP 429");
                f.diag.retry_after = 2s;
                co_return f;
            };
            auto r = co_await p.run(op);
            if (r) ++ok;
            ++done;
        }, test::rethrow{});
    BOOST_TEST(testing::run_virtual(ctx, clk, [&] { return done == 200; }));
    BOOST_TEST(ok == 200);
    BOOST_TEST(calls.size() == 400u);
    BOOST_TEST(ro.budget->tokens() == 40.0 + 200 * 0.1);  // successes only
}

// The shared breaker with the failure-rate window: successes on the lock-free
// path are counted (folded into the window at the next failure, spread over
// the time since the last fold), so 200 successes then 3 failures keep it
// CLOSED where the seed's rule opens; then a failure share of one half opens it.
BOOST_FIXTURE_TEST_CASE(shared_breaker_window_counts_lock_free_successes, fixture) {
    breaker_options o;
    o.config.failure_threshold = 3;
    o.config.open_timeout = 60s;
    o.rules.failure_ratio = 0.5;
    o.rules.minimum_throughput = 100;
    o.rules.sampling_duration = 10s;
    o.time = &clk;
    circuit_breaker b(o);
    for (int i = 0; i < 200; ++i) {
        clk.advance(10ms);
        auto r = b.try_acquire();
        BOOST_REQUIRE(r.permit);
        BOOST_TEST(!r.permit.succeeded());
    }
    BOOST_TEST(b.snapshot().window(clk.now()).first == 200u);
    for (int i = 0; i < 3; ++i) {
        auto r = b.try_acquire();
        BOOST_TEST(!r.permit.failed(error_kind::retryable_server));
    }
    BOOST_TEST(b.state() == breaker_state::closed);
    BOOST_TEST(b.snapshot().window(clk.now()).second == 3u);
    {
        auto r = b.try_acquire();  // a success after the streak takes the locked path and resets it
        r.permit.succeeded();
        BOOST_TEST(b.snapshot().consecutive_failures() == 0);
    }
    std::optional<breaker_transition> opened;
    for (int i = 0; i < 300 && !opened; ++i) {
        auto r = b.try_acquire();
        BOOST_REQUIRE(r.permit);
        opened = r.permit.failed(error_kind::retryable_server);
    }
    BOOST_REQUIRE(opened);
    BOOST_TEST(opened->reason == transition_reason::failure_ratio);
    BOOST_TEST(b.snapshot().window(clk.now()).first == 0u);
    // Failures 4..201 against 201 successes: opened at the share of one half.
    BOOST_TEST(b.history().back().reason == transition_reason::failure_ratio);
}

BOOST_AUTO_TEST_SUITE_END()
