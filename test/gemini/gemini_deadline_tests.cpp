// The whole stack in virtual time: a gemini::client and the simulator on one
// io_context and one manual clock, down to the sockets. Each test asserts
// virtual durations exactly (pool wait, an I/O timeout, backoff, breaker wait,
// cooldown, poll pause), and that a deadline expiring in each of these places
// completes with errc::deadline_exceeded and leaves the breaker's failure
// count unchanged. No wall-clock bound anywhere.
#include <resilience/gemini/client.hpp>
#include <resilience/sim/server.hpp>
#include <resilience/testing/manual_clock.hpp>

#include "gemini_fixture.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/test/unit_test.hpp>

using resilience::duration;
using resilience::time_point;

namespace {

const std::string key = "deadline-test-key-3c1d";

template <class T>
struct outcome {
    std::optional<resilience::result<T>> r;
    duration took{};  // virtual time from start to completion
    bool done() const { return r.has_value(); }
    resilience::failure error() const { return r->error(); }
};

// Client options the tests start from: backoff without jitter (exact
// durations), the seed's consecutive breaker rule, 3 failures, 30 s open.
gemini::client_options base_options() {
    gemini::client_options o;
    o.retry.max_retries = 3;
    o.retry.backoff.initial_delay = 2s;
    o.retry.backoff.max_delay = 30s;
    o.retry.backoff.jitter = resilience::jitter_mode::none;
    o.breaker.failure_threshold = 3;
    o.breaker.open_timeout = 30s;
    o.breaker_window = resilience::breaker_rules();
    return o;
}

struct stack : test::gemini_sim_fixture {
    std::string name;  // an ACTIVE file

    explicit stack(gemini::client_options opts = base_options(), sim::config cfg = sim::config()) {
        start_sim(key, 7, std::move(cfg), std::move(opts));
        name = srv->add_file("clip", "video/mp4");
    }

    // Starts `make()` (returning an awaitable<result<T>>) now.
    template <class T, class F>
    void start(outcome<T>& out, F make) {
        const time_point t0 = clk.now();
        asio::co_spawn(ctx, [this, &out, make, t0]() -> asio::awaitable<void> {
            auto r = co_await make();
            out.took = clk.now() - t0;
            out.r = std::move(r);
        }, test::rethrow{});
    }
    void run_until(const std::function<bool()>& done) { BOOST_REQUIRE(run_virtual(ctx, clk, done)); }

    // Every failure the breaker holds (its consecutive count: the window is off).
    int breaker_failures() const { return client->breaker().snapshot().consecutive_failures(); }

    void fault(sim::fault_kind k, std::uint64_t n, duration latency = {}, duration retry_delay = 15s) {
        auto f = sim::fault::next(k, sim::route::get, n);
        f.latency = latency;
        f.retry_delay = retry_delay;
        srv->add_fault(f);
    }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(whole_stack_virtual_time)

// Pool wait: one connection per origin, held 50 s by a slow answer; a second
// call with a 10 s deadline waits for the slot and ends at +10 s exactly.
BOOST_AUTO_TEST_CASE(deadline_in_the_pool_wait) {
    auto o = base_options();
    o.http.max_connections_per_origin = 1;
    stack s(o);
    s.fault(sim::fault_kind::latency, 1, 50s);
    outcome<gemini::file> slow, waiting;
    s.start(slow, [&] { return s.client->get(s.name); });
    s.run_until([&] { return s.client->http().stats().in_use == 1; });
    const int failures = s.breaker_failures();
    s.start(waiting, [&] { return s.client->get(s.name, s.clk.now() + 10s); });
    s.run_until([&] { return waiting.done() && slow.done(); });
    BOOST_TEST((waiting.error().code == errc::deadline_exceeded));
    BOOST_TEST((waiting.took == 10s));
    BOOST_TEST(s.breaker_failures() == failures);
    BOOST_TEST((s.client->breaker_state() == resilience::breaker_state::closed));
    // The slow call held its slot for the whole latency, then succeeded.
    BOOST_TEST(slow.r->has_value());
    BOOST_TEST((slow.took == 50s));
}

// An I/O timeout (the per-attempt timeout, set per call) then a 2 s backoff:
// the answer comes at +5 s + 2 s. The timeout is a real failure: the breaker
// counts it until the retry succeeds.
BOOST_AUTO_TEST_CASE(attempt_timeout_then_backoff) {
    stack s;
    s.fault(sim::fault_kind::latency, 1, 20s);
    gemini::call_options c;
    c.retry.attempt_timeout = 5s;
    c.tag = "probe-7";
    outcome<gemini::file> r;
    s.start(r, [&] { return s.client->get(s.name, c); });
    s.run_until([&] { return r.done(); });
    BOOST_REQUIRE(r.r->has_value());
    BOOST_TEST((r.took == 7s));
    BOOST_REQUIRE(!s.status.empty());
    BOOST_TEST(s.status.front().starts_with("[probe-7] Retry 1/3 after error (RETRYABLE_NETWORK)"));
    BOOST_TEST(s.client->stats().retries == 1u);
}

// The deadline during I/O (a 60 s latency, the attempt timeout 60 s): the
// call ends at the deadline with its code; the breaker does not hear it.
BOOST_AUTO_TEST_CASE(deadline_during_io) {
    stack s;
    s.fault(sim::fault_kind::latency, 1, 60s);
    outcome<gemini::file> r;
    s.start(r, [&] { return s.client->get(s.name, s.clk.now() + 10s); });
    s.run_until([&] { return r.done(); });
    BOOST_TEST((r.error().code == errc::deadline_exceeded));
    BOOST_TEST((r.took == 10s));
    BOOST_TEST(s.breaker_failures() == 0);
    BOOST_TEST(s.client->stats().retries == 0u);
}

// Backoff: a 503 then a 2 s backoff (no jitter). With a 1 s deadline the
// backoff is not slept: deadline_exceeded at once, naming the last error; the
// 503 itself is counted by the breaker, the deadline adds nothing.
BOOST_AUTO_TEST_CASE(backoff_and_a_deadline_before_its_end) {
    stack s;
    s.fault(sim::fault_kind::overloaded, 1);
    outcome<gemini::file> ok;
    s.start(ok, [&] { return s.client->get(s.name); });
    s.run_until([&] { return ok.done(); });
    BOOST_REQUIRE(ok.r->has_value());
    BOOST_TEST((ok.took == 2s));

    s.fault(sim::fault_kind::overloaded, 1);
    outcome<gemini::file> cut;
    s.start(cut, [&] { return s.client->get(s.name, s.clk.now() + 1s); });
    s.run_until([&] { return cut.done(); });
    BOOST_TEST((cut.error().code == errc::deadline_exceeded));
    BOOST_TEST((cut.took == 0s));
    BOOST_TEST(cut.error().what().find("overloaded") != std::string::npos);
    BOOST_TEST((cut.error().diag.gave_up == resilience::give_up_reason::deadline));
    BOOST_TEST(s.breaker_failures() == 1);  // the 503 only
}

// Breaker wait: three 500s (retries off for those calls) open it for 30 s. A
// call that fails fast gets circuit_open at once; one with a 10 s deadline gets
// deadline_exceeded at once (the breaker admits nothing before +30 s); one
// without a deadline waits and returns at +30 s, closing it as the probe.
BOOST_AUTO_TEST_CASE(breaker_wait) {
    stack s;
    s.fault(sim::fault_kind::internal, 3);
    gemini::call_options once;
    once.retry.max_retries = 0;
    for (int i = 0; i < 3; ++i) {
        outcome<gemini::file> f;
        s.start(f, [&] { return s.client->get(s.name, once); });
        s.run_until([&] { return f.done(); });
        BOOST_TEST((f.error().code == resilience::http::errc::server_error));
    }
    BOOST_REQUIRE((s.client->breaker_state() == resilience::breaker_state::open));
    const int failures = s.breaker_failures();

    gemini::call_options fast;
    fast.admission = resilience::admission_mode::fail_fast;
    outcome<gemini::file> refused, cut, waited;
    s.start(refused, [&] { return s.client->get(s.name, fast); });
    s.start(cut, [&] { return s.client->get(s.name, s.clk.now() + 10s); });
    s.run_until([&] { return refused.done() && cut.done(); });
    BOOST_TEST((refused.error().code == errc::circuit_open));
    BOOST_TEST((cut.error().code == errc::deadline_exceeded));
    BOOST_TEST((cut.took == 0s));
    BOOST_TEST(s.breaker_failures() == failures);

    s.start(waited, [&] { return s.client->get(s.name); });
    s.run_until([&] { return waited.done(); });
    BOOST_REQUIRE(waited.r->has_value());
    BOOST_TEST((waited.took == 30s));
    BOOST_TEST((s.client->breaker_state() == resilience::breaker_state::closed));
}

// Cooldown: a 429 with RetryInfo 30 s holds the scope. The call that met it
// retries at +30 s (plus the release spread, at most a tenth of the delay
// capped at 2 s); a call started meanwhile with a 10 s deadline ends at once
// with deadline_exceeded; one without a deadline waits out the cooldown too.
// Throttling never counts against the breaker.
BOOST_AUTO_TEST_CASE(cooldown) {
    stack s;
    s.fault(sim::fault_kind::rate_limit, 1, {}, 30s);
    outcome<gemini::file> first, cut, held;
    s.start(first, [&] { return s.client->get(s.name); });
    s.run_until([&] { return s.srv->snapshot().faults_of("rate_limit") == 1u && s.client->stats().retries == 1u; });
    s.start(cut, [&] { return s.client->get(s.name, s.clk.now() + 10s); });
    s.start(held, [&] { return s.client->get(s.name); });
    s.run_until([&] { return first.done() && cut.done() && held.done(); });
    BOOST_REQUIRE(first.r->has_value());
    BOOST_TEST((first.took >= 30s && first.took <= 32s));
    BOOST_TEST((cut.error().code == errc::deadline_exceeded));
    BOOST_TEST((cut.took == 0s));
    BOOST_REQUIRE(held.r->has_value());
    BOOST_TEST((held.took >= 30s && held.took <= 32s));
    BOOST_TEST(s.breaker_failures() == 0);
    BOOST_TEST(s.srv->snapshot().faults_of("rate_limit") == 1u);
}

// Poll pause: a file PROCESSING for an hour; the wait's 30 s deadline ends it
// with deadline_exceeded (the last state named), never past the deadline.
BOOST_AUTO_TEST_CASE(deadline_in_the_poll_pause) {
    sim::config cfg;
    cfg.processing = sim::processing_time::fixed(1h);
    stack s(base_options(), cfg);
    const std::string slow = s.srv->add_file("slow", "video/mp4");
    gemini::wait_options w(s.clk.now() + 30s);
    w.poll_jitter = 0;
    outcome<gemini::file> r;
    s.start(r, [&] { return s.client->wait_until_active(slow, w); });
    s.run_until([&] { return r.done(); });
    BOOST_TEST((r.error().code == errc::deadline_exceeded));
    BOOST_TEST(r.error().what().find("PROCESSING") != std::string::npos);
    BOOST_TEST((r.took <= 30s));
    BOOST_TEST(s.breaker_failures() == 0);
}

BOOST_AUTO_TEST_SUITE_END()
