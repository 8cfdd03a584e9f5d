// The adaptive rate gate's pure machine (CUBIC on a token bucket): off means
// never a delay, no limit before the first throttle, the cut, the pacing of
// reservations, the cubic recovery, the floor, configuration checks, scopes;
// and a closed loop against a server that accepts N requests a second.
// No clock and no timers: time points are made by hand.
#include <resilience/rate_gate.hpp>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <queue>
#include <vector>

using namespace std::chrono_literals;
using resilience::duration;
using resilience::rate_gate;
using resilience::rate_gate_config;
using resilience::rate_gate_state;
using resilience::time_point;

namespace {

const time_point t0 = time_point() + 1000s;

time_point at(double s) {
    return t0 + std::chrono::duration_cast<duration>(std::chrono::duration<double>(s));
}
double secs(duration d) { return std::chrono::duration<double>(d).count(); }

rate_gate_config on() {
    rate_gate_config c;
    c.enabled = true;
    return c;
}

// `rate` answers a second, all accepted, from `from` for `len` seconds.
double feed(rate_gate_state& g, double from, double len, double rate) {
    const double step = 1.0 / rate;
    double t = from;
    for (; t < from + len; t += step) g.on_response(at(t), false);
    return t;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(rate_gate_machine)

BOOST_AUTO_TEST_CASE(off_never_delays) {
    rate_gate g;  // default config: off
    BOOST_TEST(!g.enabled());
    for (int i = 0; i < 100; ++i) g.on_response(42, at(0.01 * i), true);
    BOOST_TEST(!g.snapshot(42).has_value());
    for (int i = 0; i < 100; ++i) {
        const auto r = g.acquire(42, at(1));
        BOOST_TEST((r.reserved && r.at == at(1)));
    }
}

BOOST_AUTO_TEST_CASE(no_limit_before_the_first_throttle) {
    rate_gate_state g(on());
    const double end = feed(g, 0, 5, 50);
    BOOST_TEST(!g.limiting());
    BOOST_TEST(g.snapshot().measured_rate == 50.0, boost::test_tools::tolerance(0.05));
    for (int i = 0; i < 1000; ++i) BOOST_TEST((g.acquire(at(end)).at == at(end)));
}

BOOST_AUTO_TEST_CASE(a_throttle_cuts_to_beta_of_the_measured_rate_and_paces_reservations) {
    rate_gate_state g(on());
    double t = feed(g, 0, 5, 20);
    g.on_response(at(t), true);
    const auto s = g.snapshot();
    BOOST_TEST(s.limiting);
    BOOST_TEST(s.last_max_rate == 20.0, boost::test_tools::tolerance(0.05));
    BOOST_TEST(s.fill_rate == 14.0, boost::test_tools::tolerance(0.05));
    // Ten callers at once: the bucket starts empty, so they leave 1/14 s apart, in order.
    time_point prev = at(t);
    for (int i = 1; i <= 10; ++i) {
        const auto grant = g.acquire(at(t));
        const time_point when = grant.at;
        BOOST_TEST(grant.reserved);
        BOOST_TEST(secs(when - at(t)) == i / s.fill_rate, boost::test_tools::tolerance(1e-6));
        BOOST_TEST((when > prev));
        prev = when;
    }
    // The debt is bounded by one bucket (14 tokens): the 15th caller gets a
    // time to ask again, when the debt is repaid (1 s), and takes nothing.
    for (int i = 11; i <= 14; ++i) BOOST_TEST(g.acquire(at(t)).reserved);
    const auto full = g.acquire(at(t));
    BOOST_TEST(!full.reserved);
    BOOST_TEST(secs(full.at - at(t)) == 14 / s.fill_rate, boost::test_tools::tolerance(1e-6));
    BOOST_TEST(g.snapshot().capacity == -14.0, boost::test_tools::tolerance(1e-9));
}

BOOST_AUTO_TEST_CASE(the_rate_grows_back_along_the_cubic_curve) {
    rate_gate_config c = on();
    rate_gate_state g(c);
    double t = feed(g, 0, 5, 40);
    g.on_response(at(t), true);
    const double wmax = g.snapshot().last_max_rate;
    const double k = std::cbrt(wmax * (1 - c.beta) / c.scale_constant);
    // Successes at a high rate (the 2x measured cap does not bind): the rate
    // climbs steeply, flattens at wmax after k seconds, then probes above it.
    double prev = g.snapshot().fill_rate;
    const double start = t;
    for (t += 0.01; t < start + k; t += 0.01) {
        g.on_response(at(t), false);
        const double r = g.snapshot().fill_rate;
        BOOST_TEST(r >= prev - 1e-9);
        prev = r;
    }
    BOOST_TEST(g.snapshot().fill_rate == wmax, boost::test_tools::tolerance(0.05));
    for (; t < start + k + 3; t += 0.01) g.on_response(at(t), false);
    BOOST_TEST(g.snapshot().fill_rate > wmax);
}

BOOST_AUTO_TEST_CASE(the_rate_never_exceeds_twice_the_measured_rate) {
    rate_gate_state g(on());
    double t = feed(g, 0, 5, 10);
    g.on_response(at(t), true);
    // Then a slow trickle of successes, one a second, for a long time.
    for (int i = 1; i <= 60; ++i) g.on_response(at(t + i), false);
    const auto s = g.snapshot();
    BOOST_TEST(s.fill_rate <= 2 * s.measured_rate + 1e-9);
}

BOOST_AUTO_TEST_CASE(repeated_throttles_stop_at_the_floor) {
    rate_gate_config c = on();
    rate_gate_state g(c);
    double t = feed(g, 0, 2, 100);
    for (int i = 0; i < 200; ++i, t += 0.25) g.on_response(at(t), true);
    const auto s = g.snapshot();
    BOOST_TEST(s.fill_rate == c.min_fill_rate);
    BOOST_TEST(s.max_capacity == c.min_capacity);
    // At the floor a caller waits 1/min_fill_rate = 2 s per token at most, not forever.
    const time_point when = g.acquire(at(t)).at;
    BOOST_TEST(secs(when - at(t)) <= 1 / c.min_fill_rate + 1e-6);
}

BOOST_AUTO_TEST_CASE(configuration_is_checked) {
    BOOST_TEST(resilience::validate(rate_gate_config()).has_value());
    // The first problem's message (errc::invalid_config), or "" when valid.
    auto bad = [](auto set) -> std::string {
        rate_gate_config c;
        set(c);
        auto r = resilience::validate(c);
        if (r) return "";
        BOOST_TEST((r.error().code == resilience::errc::invalid_config));
        return r.error().what();
    };
    BOOST_TEST(bad([](rate_gate_config& c) { c.beta = 1; }) == "rate_gate.beta = 1.000000: must be in (0, 1)");
    BOOST_TEST(bad([](rate_gate_config& c) { c.beta = NAN; }) == "rate_gate.beta = nan: must be in (0, 1)");
    BOOST_TEST(bad([](rate_gate_config& c) { c.scale_constant = 0; }) ==
               "rate_gate.scale_constant = 0.000000: must be > 0");
    BOOST_TEST(bad([](rate_gate_config& c) { c.smooth = 0; }) == "rate_gate.smooth = 0.000000: must be in (0, 1]");
    BOOST_TEST(bad([](rate_gate_config& c) { c.min_fill_rate = -1; }) ==
               "rate_gate.min_fill_rate = -1.000000: must be > 0");
    BOOST_TEST(bad([](rate_gate_config& c) { c.min_capacity = INFINITY; }) ==
               "rate_gate.min_capacity = inf: must be >= 1");
    BOOST_TEST(bad([](rate_gate_config& c) { c.cut_interval = -1s; }) ==
               "rate_gate.cut_interval = -1000.000000 ms: must be >= 0");
}

BOOST_AUTO_TEST_CASE(scopes_are_apart) {
    rate_gate g(on());
    for (int i = 0; i < 100; ++i) g.on_response(1, at(0.05 * i), false);
    g.on_response(1, at(5), true);
    BOOST_TEST(g.snapshot(1)->limiting);
    BOOST_TEST(!g.snapshot(2).has_value());
    BOOST_TEST((g.acquire(2, at(5)).at == at(5)));  // another scope is not slowed
    BOOST_TEST((g.acquire(1, at(5)).at > at(5)));
}

BOOST_AUTO_TEST_CASE(a_burst_of_throttles_is_one_cut) {
    rate_gate_state g(on());
    double t = feed(g, 0, 5, 40);
    g.on_response(at(t), true);
    const double after_one = g.snapshot().fill_rate;
    // The 30 requests already sent at the old rate come back 429 within the
    // cut interval: one congestion event, one cut.
    for (int i = 1; i <= 30; ++i) g.on_response(at(t + 0.02 * i), true);
    BOOST_TEST(g.snapshot().fill_rate >= after_one);
    // A throttle after the interval cuts again.
    g.on_response(at(t + 1.5), true);
    BOOST_TEST(g.snapshot().fill_rate < after_one);
}

// Closed loop: 50 workers, each sending its next request when the previous
// answer arrives (50 ms), against a server that accepts 25 requests a second
// (a token bucket of burst 25), for 120 virtual seconds. Without the gate
// nearly every request is a 429; with it the workers settle at the rate the
// server accepts.
BOOST_AUTO_TEST_CASE(a_fleet_slows_to_the_rate_the_server_accepts) {
    const double server_rate = 25, span = 120, latency = 0.05;
    const int workers = 50;
    auto run = [&](bool gate_on) {
        rate_gate_config c;
        c.enabled = gate_on;
        rate_gate_state g(c);
        double server_tokens = server_rate, server_last = 0;
        std::array<int, 4> n{};  // ok, throttled, ok in the second half, throttled in the second half
        // Events: (time, kind): kind 0 = a worker asks the gate, 1 = its request reaches the server.
        using ev = std::pair<double, int>;
        std::priority_queue<ev, std::vector<ev>, std::greater<>> events;
        for (int w = 0; w < workers; ++w) events.push({w * 0.001, 0});
        while (!events.empty()) {
            const auto [t, kind] = events.top();
            events.pop();
            if (t >= span) continue;
            if (kind == 0) {
                const auto grant = g.acquire(at(t));
                events.push({std::chrono::duration<double>(grant.at - t0).count(), grant.reserved ? 1 : 0});
                continue;
            }
            server_tokens = std::min(server_rate, server_tokens + (t - server_last) * server_rate);
            server_last = t;
            const bool accepted = server_tokens >= 1;
            if (accepted) server_tokens -= 1;
            g.on_response(at(t + latency), !accepted);
            n[accepted ? 0 : 1] += 1;
            if (t > span / 2) n[accepted ? 2 : 3] += 1;
            events.push({t + latency, 0});
        }
        return n;
    };
    const auto without = run(false);
    const auto with = run(true);
    BOOST_TEST_MESSAGE("without gate: ok " << without[0] << " throttled " << without[1]);
    BOOST_TEST_MESSAGE("with gate:    ok " << with[0] << " throttled " << with[1] << " (second half: ok "
                                           << with[2] << " throttled " << with[3] << ")");
    // Without the gate: the workers send 1,000 a second, 39 of 40 refused.
    BOOST_TEST(without[1] > 20 * without[0]);
    // With it, in the second half: goodput at least 90% of what the server
    // accepts, and fewer than one request in ten refused.
    BOOST_TEST(with[2] >= 0.9 * server_rate * span / 2);
    BOOST_TEST(with[3] * 10 < with[2]);
}

BOOST_AUTO_TEST_SUITE_END()
