// The adaptive rate gate plugged into the retry combinator, in virtual time on
// one thread: off changes nothing; a closed loop against an operation that
// throttles above N a second settles near N; a rate wait ends on
// cancellation, on the deadline, and at its slot exactly; the status line and
// the event; a cut is reported to the cut handler and applied from outside.
#include <resilience/http/error.hpp>
#include <resilience/retry.hpp>
#include <resilience/testing/manual_clock.hpp>

#include "test_common.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace resilience;
using namespace std::chrono_literals;

namespace {

const std::string scope = "api.example#1234";

rate_gate_config gate_on() {
    rate_gate_config c;
    c.enabled = true;
    return c;
}

// Counts the reads of the time of the clock it wraps.
struct counting_clock final : clock {
    explicit counting_clock(clock& c) : inner(c) {}
    time_point now() const noexcept override {
        ++reads;
        return inner.now();
    }
    asio::awaitable<error_code> sleep_until(time_point tp) override { return inner.sleep_until(tp); }
    clock& inner;
    mutable int reads = 0;
};

failure throttled() { return failure(make_error_code(resilience::http::errc::too_many_requests), "HTTP 429"); }

struct fixture {
    asio::io_context ctx;
    testing::manual_clock clk;
    time_point t0 = clk.now();
    std::vector<std::string> status;
    std::vector<event> events;

    retry_options options(std::shared_ptr<rate_gate> g) {
        retry_options o;
        o.time = &clk;
        o.seed = 42;
        o.policy.max_retries = 5;
        o.policy.backoff.initial_delay = 100ms;
        o.policy.backoff.max_delay = 2s;
        o.budget = nullptr;
        o.rate_gate = std::move(g);
        o.scope = scope;
        o.on_status = [this](std::string_view s) { status.emplace_back(s); };
        return o;
    }

    // Makes the scope's gate limit at about 2 requests a second, with the
    // bucket empty: 4 answers in the first half-second, then a 429 (a cut to
    // 0.7 x 8/s), then the bucket's tokens taken.
    void prime(rate_gate& g) {
        const std::uint64_t k = scope_hash(scope);
        for (int i = 0; i < 4; ++i) g.on_response(k, clk.now(), false);
        g.on_response(k, clk.now(), true);
        BOOST_REQUIRE(g.snapshot(k)->limiting);
        while (g.acquire(k, clk.now()).at == clk.now()) {
        }
    }
};

// A server that accepts `limit` requests per 1 s window (as sim::quota) and
// answers 429 (without a retry delay) to the others.
struct window_server {
    testing::manual_clock& clk;
    time_point origin;
    std::uint64_t limit;
    std::int64_t window = -1;
    std::uint64_t used = 0;
    std::uint64_t accepted = 0, refused = 0, accepted_late = 0, refused_late = 0;
    time_point late;  // counts from here go to *_late too

    bool admit() {
        const auto idx = std::chrono::duration_cast<std::chrono::seconds>(clk.now() - origin).count();
        if (idx != window) {
            window = idx;
            used = 0;
        }
        const bool ok = used < limit;
        if (ok) ++used;
        (ok ? accepted : refused) += 1;
        if (clk.now() >= late) (ok ? accepted_late : refused_late) += 1;
        return ok;
    }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(gates_rate_pipeline)

// Off (no gate, or a gate whose config is not enabled): the same attempts at
// the same times, the same status text, no rate_wait event, and the quick path
// stays (a gate off reads no clock on success).
BOOST_FIXTURE_TEST_CASE(a_gate_off_changes_nothing, fixture) {
    auto run = [&](std::shared_ptr<rate_gate> g) {
        status.clear();
        events.clear();
        auto o = options(std::move(g));
        o.on_event = [this](const event& e) { events.push_back(e); };
        pipeline p(o);
        std::vector<duration> calls;
        const time_point start = clk.now();
        bool done = false;
        asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
            int n = 0;
            auto r = co_await p.run([&]() -> asio::awaitable<result<int>> {
                calls.push_back(clk.now() - start);
                if (++n <= 3) co_return throttled();
                co_return n;
            });
            BOOST_TEST(r.has_value());
            done = true;
        }, test::rethrow{});
        BOOST_REQUIRE(testing::run_virtual(ctx, clk, [&] { return done; }));
        ctx.restart();
        for (const auto& e : events) BOOST_TEST((e.type != event_type::rate_wait));
        return std::make_pair(calls, status);
    };
    const auto none = run(nullptr);
    const auto off = run(std::make_shared<rate_gate>());  // rate_gate_config::enabled is false
    BOOST_TEST(none.first.size() == 4u);
    BOOST_TEST((none.first == off.first));
    BOOST_TEST((none.second == off.second));
    // The success path of a pipeline whose gate is off reads no clock.
    counting_clock counted(clk);
    auto o = options(std::make_shared<rate_gate>());
    o.time = &counted;
    pipeline p(o);
    bool done = false;
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
        auto r = co_await p.run([]() -> asio::awaitable<result<int>> { co_return 1; });
        BOOST_TEST(r.has_value());
        done = true;
    }, test::rethrow{});
    BOOST_REQUIRE(testing::run_virtual(ctx, clk, [&] { return done; }));
    BOOST_TEST(counted.reads == 0);
}

// 50 workers in a closed loop (each call retried up to 20 times, 50 ms per
// request) against a server accepting 20 requests per 1 s window, for 60
// virtual seconds. With the gate the pipeline settles near 20 a second with
// few 429s; without it most requests are refused.
BOOST_FIXTURE_TEST_CASE(a_closed_loop_settles_near_the_rate_the_server_accepts, fixture) {
    constexpr std::uint64_t limit = 20;
    constexpr int workers = 50;
    const duration span = 60s, latency = 50ms;
    auto run = [&](std::shared_ptr<rate_gate> g) {
        testing::manual_clock local;  // a fresh clock per run: same start, same windows
        auto o = options(std::move(g));
        o.time = &local;
        o.on_status = nullptr;
        o.policy.max_retries = 20;
        pipeline p(o);
        window_server srv{local, local.now(), limit, -1, 0, 0, 0, 0, 0, local.now() + span / 2};
        const time_point end = local.now() + span;
        int finished = 0;
        for (int w = 0; w < workers; ++w)
            asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
                while (local.now() < end) {
                    (void)co_await p.run([&]() -> asio::awaitable<result<int>> {
                        co_await local.sleep_until(local.now() + latency);
                        if (srv.admit()) co_return 1;
                        co_return throttled();
                    });
                }
                ++finished;
            }, test::rethrow{});
        BOOST_REQUIRE(testing::run_virtual(ctx, local, [&] { return finished == workers; }));
        ctx.restart();
        return srv;
    };
    const auto without = run(nullptr);
    const auto with = run(std::make_shared<rate_gate>(gate_on()));
    BOOST_TEST_MESSAGE("without gate: accepted " << without.accepted << " refused " << without.refused
                                                 << " (second half " << without.accepted_late << " / "
                                                 << without.refused_late << ")");
    BOOST_TEST_MESSAGE("with gate:    accepted " << with.accepted << " refused " << with.refused
                                                 << " (second half " << with.accepted_late << " / "
                                                 << with.refused_late << ")");
    const double half = std::chrono::duration<double>(span / 2).count();
    // With the gate, in the second half: at least 80% of what the server
    // accepts, and at most one 429 for every five accepted requests.
    BOOST_TEST(with.accepted_late >= 0.8 * limit * half);
    BOOST_TEST(with.refused_late * 5 <= with.accepted_late);
    // Without it the same goodput costs several times the 429s.
    BOOST_TEST(without.refused_late >= 3 * with.refused_late);
}

// A call held by the gate: says so once (status and event), then makes its
// attempt at its slot exactly.
BOOST_FIXTURE_TEST_CASE(a_held_call_says_so_and_goes_at_its_slot, fixture) {
    auto g = std::make_shared<rate_gate>(gate_on());
    prime(*g);
    const time_point slot = g->acquire(scope_hash(scope), clk.now()).at;  // the next slot is the one after this
    BOOST_REQUIRE((slot > clk.now()));
    const double rate = g->snapshot(scope_hash(scope))->fill_rate;  // before the success grows it
    auto o = options(g);
    o.on_event = [this](const event& e) { events.push_back(e); };
    pipeline p(o);
    time_point called{};
    bool done = false;
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
        auto r = co_await p.run([&]() -> asio::awaitable<result<int>> {
            called = clk.now();
            co_return 1;
        });
        BOOST_TEST(r.has_value());
        done = true;
    }, test::rethrow{});
    BOOST_REQUIRE(testing::run_virtual(ctx, clk, [&] { return done; }));
    const duration gap = std::chrono::duration_cast<duration>(std::chrono::duration<double>(1 / rate));
    BOOST_TEST(std::chrono::abs(called - slot - gap) < 1us);  // one token later, on the clock
    BOOST_REQUIRE(status.size() == 1u);
    BOOST_TEST(status[0] == status::rate_wait(called - t0, rate));
    BOOST_TEST(status[0].find("for the rate gate (") != std::string::npos);
    const auto n = std::count_if(events.begin(), events.end(), [](const event& e) { return e.type == event_type::rate_wait; });
    BOOST_TEST(n == 1);
}

// Cancellation during a rate wait ends the call at once with
// operation_aborted; the operation is never called.
BOOST_FIXTURE_TEST_CASE(cancellation_ends_a_rate_wait, fixture) {
    auto g = std::make_shared<rate_gate>(gate_on());
    prime(*g);
    pipeline p(options(g));
    asio::cancellation_signal sig;
    int calls = 0;
    std::optional<result<int>> out;
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
        out = co_await p.run([&]() -> asio::awaitable<result<int>> {
            ++calls;
            co_return 1;
        });
    }, asio::bind_cancellation_slot(sig.slot(), test::rethrow{}));
    ctx.poll();
    BOOST_REQUIRE(clk.sleepers() == 1u);  // asleep in the rate wait
    sig.emit(asio::cancellation_type::terminal);
    BOOST_REQUIRE(testing::run_virtual(ctx, clk, [&] { return out.has_value(); }));
    BOOST_TEST(!*out);
    BOOST_TEST((out->error().code == asio::error::operation_aborted));
    BOOST_TEST((out->error().diag.gave_up == give_up_reason::cancelled));
    BOOST_TEST(calls == 0);
    BOOST_TEST((clk.now() == t0));
}

// A slot past the deadline ends the call at once with deadline_exceeded; a
// deadline after the slot lets the call through at the slot.
BOOST_FIXTURE_TEST_CASE(a_slot_past_the_deadline_ends_the_call_at_once, fixture) {
    auto g = std::make_shared<rate_gate>(gate_on());
    prime(*g);
    pipeline p(options(g));
    int calls = 0;
    std::optional<result<int>> early, late;
    auto op = [&]() -> asio::awaitable<result<int>> {
        ++calls;
        co_return 1;
    };
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
        call_options c;
        c.deadline = t0 + 10ms;  // the next slot is about 0.18 s away
        early = co_await p.run(op, c);
    }, test::rethrow{});
    BOOST_REQUIRE(testing::run_virtual(ctx, clk, [&] { return early.has_value(); }));
    BOOST_TEST(!*early);
    BOOST_TEST((early->error().code == errc::deadline_exceeded));
    BOOST_TEST((early->error().diag.gave_up == give_up_reason::deadline));
    BOOST_TEST(early->error().diag.message.find("rate gate") != std::string::npos);
    BOOST_TEST(calls == 0);
    BOOST_TEST((clk.now() == t0));
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
        call_options c;
        c.deadline = t0 + 10s;
        late = co_await p.run(op, c);
    }, test::rethrow{});
    BOOST_REQUIRE(testing::run_virtual(ctx, clk, [&] { return late.has_value(); }));
    BOOST_TEST(late->has_value());
    BOOST_TEST(calls == 1);
    BOOST_TEST((clk.now() > t0));
}

// 429s the pipeline meets cut the scope's rate, reported to the cut handler
// at most once per cut_interval (ten 429s, the later ones paced by the gate);
// apply_cut, a cut heard from another process, cuts without calling the
// handler.
BOOST_FIXTURE_TEST_CASE(cuts_are_reported_and_can_be_applied_from_outside, fixture) {
    auto g = std::make_shared<rate_gate>(gate_on());
    std::vector<rate_cut> cuts;
    std::vector<std::uint64_t> scopes;
    g->on_cut([&](std::uint64_t s, const rate_cut& c) {
        scopes.push_back(s);
        cuts.push_back(c);
    });
    auto o = options(g);
    o.policy.max_retries = 0;
    pipeline p(o);
    int done = 0;
    for (int i = 0; i < 10; ++i)
        asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
            auto r = co_await p.run([&]() -> asio::awaitable<result<int>> { co_return throttled(); });
            BOOST_TEST(!r);
            ++done;
        }, test::rethrow{});
    BOOST_REQUIRE(testing::run_virtual(ctx, clk, [&] { return done == 10; }));
    BOOST_TEST_MESSAGE(cuts.size() << " cuts for ten 429s over " << std::chrono::duration<double>(clk.now() - t0).count()
                                   << " s");
    BOOST_REQUIRE(!cuts.empty());
    BOOST_TEST(cuts.size() < 10u);
    BOOST_TEST(cuts[0].to_rate < cuts[0].from_rate);
    for (auto s : scopes) BOOST_TEST(s == scope_hash(scope));
    for (std::size_t i = 1; i < cuts.size(); ++i) {
        BOOST_TEST(cuts[i].to_rate <= cuts[i].from_rate);  // down to the floor (0.5/s)
        BOOST_TEST((cuts[i].at - cuts[i - 1].at >= 1s));
    }
    BOOST_TEST(g->snapshot(scope_hash(scope))->limiting);

    // apply_cut on a scope sending 40 a second (a cut to 28/s).
    const std::uint64_t k = scope_hash("busy scope");
    const std::size_t reported = cuts.size();
    const time_point t = clk.now();
    for (int i = 0; i < 20; ++i) g->on_response(k, t + i * 20ms, false);
    g->on_response(k, t + 400ms, true);
    BOOST_REQUIRE(cuts.size() == reported + 1);
    BOOST_TEST(scopes.back() == k);
    const double before = g->snapshot(k)->fill_rate;
    BOOST_TEST(before > 1.0);
    BOOST_TEST(!g->apply_cut(k, t + 900ms));  // the same congestion event
    BOOST_TEST(g->apply_cut(k, t + 2s));
    BOOST_TEST(g->snapshot(k)->fill_rate < before);
    BOOST_TEST(cuts.size() == reported + 1);  // not echoed
    BOOST_TEST(!g->apply_cut(scope_hash("another scope"), t + 2s));  // never sent: nothing to cut
}

BOOST_AUTO_TEST_SUITE_END()
