// Pure state machines of the gates: breaker_machine, budget_state,
// cooldown_state. No timers, no io_context: every call takes `now`.
#include <resilience/circuit_breaker.hpp>
#include <resilience/error.hpp>
#include <resilience/cooldown.hpp>
#include <resilience/retry_budget.hpp>

#include <boost/test/unit_test.hpp>

#include <cmath>
#include <string>
#include <vector>

BOOST_TEST_DONT_PRINT_LOG_VALUE(resilience::breaker_state)
BOOST_TEST_DONT_PRINT_LOG_VALUE(resilience::transition_reason)

using namespace resilience;
using namespace std::chrono_literals;

namespace {
breaker_config cfg(int threshold, std::chrono::milliseconds timeout, int probes = 1) {
    breaker_config c;
    c.failure_threshold = threshold;
    c.open_timeout = timeout;
    c.half_open_probes = probes;
    return c;
}
const time_point t0{std::chrono::hours(1000)};
}  // namespace

BOOST_AUTO_TEST_SUITE(gates_breaker_machine)

BOOST_AUTO_TEST_CASE(closed_opens_after_threshold_consecutive_counted_failures) {
    breaker_machine m(cfg(3, 1000ms));
    std::optional<breaker_transition> t;
    auto a = m.try_admit(t0, t);
    BOOST_TEST(a.admitted);
    BOOST_TEST(!a.probe);
    m.on_failure(a, error_kind::retryable_server, t0, t);
    m.on_failure(a, error_kind::retryable_network, t0, t);
    BOOST_TEST(!t);
    BOOST_TEST(m.consecutive_failures() == 2);
    m.on_success(a, t0, t);  // resets the streak
    BOOST_TEST(m.consecutive_failures() == 0);
    m.on_failure(a, error_kind::retryable_server, t0, t);
    m.on_failure(a, error_kind::retryable_server, t0, t);
    BOOST_TEST(m.state() == breaker_state::closed);
    m.on_failure(a, error_kind::retryable_server, t0 + 5ms, t);
    BOOST_REQUIRE(t);
    BOOST_TEST(t->from == breaker_state::closed);
    BOOST_TEST(t->to == breaker_state::open);
    BOOST_TEST(t->reason == transition_reason::failure_threshold);
    BOOST_TEST((t->at == t0 + 5ms));
    BOOST_TEST((m.open_until() == t0 + 1005ms));
}

BOOST_AUTO_TEST_CASE(uncounted_failures_neither_count_nor_reset) {
    breaker_machine m(cfg(2, 1000ms));
    std::optional<breaker_transition> t;
    auto a = m.try_admit(t0, t);
    m.on_failure(a, error_kind::retryable_server, t0, t);
    m.on_failure(a, error_kind::non_retryable_client, t0, t);   // 404
    m.on_failure(a, error_kind::non_retryable_auth, t0, t);     // 403
    m.on_failure(a, error_kind::retryable_rate_limit, t0, t);   // 429
    BOOST_TEST(m.consecutive_failures() == 1);
    BOOST_TEST(m.state() == breaker_state::closed);
    m.on_failure(a, error_kind::retryable_network, t0, t);
    BOOST_TEST(m.state() == breaker_state::open);
}

BOOST_AUTO_TEST_CASE(open_refuses_until_timeout_then_half_open_admits_n_probes) {
    breaker_machine m(cfg(1, 1000ms, 2));
    std::optional<breaker_transition> t;
    auto a = m.try_admit(t0, t);
    m.on_failure(a, error_kind::retryable_server, t0, t);
    t.reset();
    auto r = m.try_admit(t0 + 999ms, t);
    BOOST_TEST(!r.admitted);
    BOOST_TEST(r.state == breaker_state::open);
    BOOST_TEST((r.retry_at == t0 + 1000ms));
    BOOST_TEST(!t);
    auto p1 = m.try_admit(t0 + 1000ms, t);
    BOOST_REQUIRE(t);
    BOOST_TEST(t->reason == transition_reason::open_timeout);
    BOOST_TEST(t->to == breaker_state::half_open);
    BOOST_TEST(p1.admitted);
    BOOST_TEST(p1.probe);
    auto p2 = m.try_admit(t0 + 1000ms, t);
    BOOST_TEST(p2.probe);
    auto p3 = m.try_admit(t0 + 1000ms, t);
    BOOST_TEST(!p3.admitted);
    BOOST_TEST((p3.retry_at == time_point::max()));
    BOOST_TEST(m.probes_in_flight() == 2);
}

BOOST_AUTO_TEST_CASE(probe_success_closes_probe_failure_reopens) {
    breaker_machine m(cfg(1, 1000ms));
    std::optional<breaker_transition> t;
    auto a = m.try_admit(t0, t);
    m.on_failure(a, error_kind::retryable_server, t0, t);
    auto p = m.try_admit(t0 + 1s, t);
    m.on_failure(p, error_kind::retryable_network, t0 + 2s, t);
    BOOST_REQUIRE(t);
    BOOST_TEST(t->reason == transition_reason::probe_failed);
    BOOST_TEST(m.state() == breaker_state::open);
    BOOST_TEST((m.open_until() == t0 + 3s));
    p = m.try_admit(t0 + 3s, t);
    BOOST_TEST(p.probe);
    m.on_success(p, t0 + 3s, t);
    BOOST_TEST(t->reason == transition_reason::probe_succeeded);
    BOOST_TEST(m.state() == breaker_state::closed);
}

BOOST_AUTO_TEST_CASE(probe_answered_with_uncounted_failure_closes) {
    breaker_machine m(cfg(1, 1000ms));
    std::optional<breaker_transition> t;
    auto a = m.try_admit(t0, t);
    m.on_failure(a, error_kind::retryable_server, t0, t);
    auto p = m.try_admit(t0 + 1s, t);
    m.on_failure(p, error_kind::non_retryable_client, t0 + 1s, t);  // 404: the service answered
    BOOST_TEST(m.state() == breaker_state::closed);
}

BOOST_AUTO_TEST_CASE(abandoned_probe_frees_its_slot) {
    breaker_machine m(cfg(1, 1000ms));
    std::optional<breaker_transition> t;
    auto a = m.try_admit(t0, t);
    m.on_failure(a, error_kind::retryable_server, t0, t);
    auto p = m.try_admit(t0 + 1s, t);
    BOOST_TEST(!m.try_admit(t0 + 1s, t).admitted);
    const auto v = m.version();
    BOOST_TEST(m.on_abandon(p));
    BOOST_TEST(m.version() != v);
    BOOST_TEST(m.try_admit(t0 + 1s, t).probe);
}

BOOST_AUTO_TEST_CASE(stale_outcomes_are_ignored) {
    breaker_machine m(cfg(1, 1000ms));
    std::optional<breaker_transition> t;
    auto old1 = m.try_admit(t0, t);
    auto old2 = m.try_admit(t0, t);
    m.on_failure(old1, error_kind::retryable_server, t0, t);
    BOOST_TEST(m.state() == breaker_state::open);
    t.reset();
    m.on_success(old2, t0, t);  // admitted while CLOSED, finishes while OPEN: no effect
    BOOST_TEST(m.state() == breaker_state::open);
    BOOST_TEST(!t);
    BOOST_TEST(!m.on_abandon(old2));
}

BOOST_AUTO_TEST_CASE(isolate_and_reset) {
    breaker_machine m(cfg(3, 1000ms));
    std::optional<breaker_transition> t;
    m.isolate(t0, t);
    BOOST_TEST(t->reason == transition_reason::isolated);
    BOOST_TEST(m.state() == breaker_state::open);
    auto r = m.try_admit(t0 + 1h, t);  // isolated: no half-open, ever
    BOOST_TEST(!r.admitted);
    BOOST_TEST((r.retry_at == time_point::max()));
    m.reset(t0 + 2h, t);
    BOOST_TEST(t->reason == transition_reason::reset);
    BOOST_TEST(m.state() == breaker_state::closed);
    BOOST_TEST(m.try_admit(t0 + 2h, t).admitted);
}

BOOST_AUTO_TEST_CASE(configurable_counted_kinds) {
    breaker_machine m(cfg(1, 1000ms), kind_bit(error_kind::retryable_rate_limit));
    std::optional<breaker_transition> t;
    auto a = m.try_admit(t0, t);
    m.on_failure(a, error_kind::retryable_server, t0, t);
    BOOST_TEST(m.state() == breaker_state::closed);
    m.on_failure(a, error_kind::retryable_rate_limit, t0, t);
    BOOST_TEST(m.state() == breaker_state::open);
}

breaker_rules window(double ratio, int min_throughput, std::chrono::milliseconds sampling) {
    breaker_rules r;
    r.failure_ratio = ratio;
    r.minimum_throughput = min_throughput;
    r.sampling_duration = sampling;
    return r;
}

// Thousands of polls: three unlucky failures in a row among many successes
// do not open it; the seed's rule on the same sequence does.
BOOST_AUTO_TEST_CASE(window_ignores_a_few_consecutive_failures_among_many_successes) {
    breaker_machine seed(cfg(3, 60s));
    breaker_machine win(cfg(3, 60s), default_counted_kinds, window(0.5, 100, 10s));
    std::optional<breaker_transition> t;
    auto a = seed.try_admit(t0, t);
    auto b = win.try_admit(t0, t);
    time_point now = t0;
    for (int i = 0; i < 200; ++i) {
        now += 10ms;
        seed.on_success(a, now, t);
        win.on_success(b, now, t);
    }
    for (int i = 0; i < 5; ++i) {
        now += 10ms;
        seed.on_failure(a, error_kind::retryable_server, now, t);
        win.on_failure(b, error_kind::retryable_server, now, t);
    }
    BOOST_TEST(seed.state() == breaker_state::open);
    BOOST_TEST(win.state() == breaker_state::closed);
    BOOST_TEST(win.consecutive_failures() == 5);
    BOOST_TEST(win.window(now).first == 200u);
    BOOST_TEST(win.window(now).second == 5u);
}

BOOST_AUTO_TEST_CASE(window_opens_when_the_failure_share_reaches_the_ratio) {
    breaker_machine m(cfg(3, 60s), default_counted_kinds, window(0.6, 100, 10s));
    std::optional<breaker_transition> t;
    auto a = m.try_admit(t0, t);
    time_point now = t0;
    for (int i = 0; i < 100; ++i) m.on_success(a, now += 10ms, t);
    for (int i = 0; i < 149; ++i) m.on_failure(a, error_kind::retryable_server, now += 10ms, t);
    BOOST_TEST(m.state() == breaker_state::closed);  // 149 of 249: just under 0.6
    BOOST_TEST(!t);
    m.on_failure(a, error_kind::retryable_server, now, t);  // 150 of 250
    BOOST_REQUIRE(t);
    BOOST_TEST(t->reason == transition_reason::failure_ratio);
    BOOST_TEST(m.state() == breaker_state::open);
    BOOST_TEST((m.open_until() == now + 60s));
    BOOST_TEST(m.window(now).first == 0u);  // a new state starts a new window
}

// Below the minimum throughput, the seed's rule still opens it (a lone
// caller), but only when the share has reached the ratio too.
BOOST_AUTO_TEST_CASE(window_below_minimum_throughput_opens_on_the_consecutive_rule) {
    {
        breaker_machine m(cfg(3, 60s), default_counted_kinds, window(0.5, 100, 10s));
        std::optional<breaker_transition> t;
        auto a = m.try_admit(t0, t);
        m.on_success(a, t0, t);
        m.on_failure(a, error_kind::retryable_server, t0 + 1s, t);
        m.on_failure(a, error_kind::retryable_server, t0 + 2s, t);
        BOOST_TEST(m.state() == breaker_state::closed);
        m.on_failure(a, error_kind::retryable_server, t0 + 3s, t);  // 3 in a row, 3 of 4
        BOOST_REQUIRE(t);
        BOOST_TEST(t->reason == transition_reason::failure_threshold);
    }
    {
        breaker_machine m(cfg(3, 60s), default_counted_kinds, window(0.5, 100, 10s));
        std::optional<breaker_transition> t;
        auto a = m.try_admit(t0, t);
        for (int i = 0; i < 5; ++i) m.on_success(a, t0, t);
        for (int i = 0; i < 4; ++i) m.on_failure(a, error_kind::retryable_server, t0 + 1s, t);
        BOOST_TEST(m.state() == breaker_state::closed);  // 4 in a row but 4 of 9
        m.on_failure(a, error_kind::retryable_server, t0 + 1s, t);  // 5 of 10
        BOOST_TEST(m.state() == breaker_state::open);
    }
}

// A busy breaker in an outage: the window still holds the successes from
// before it, so the share is far from the ratio; `failure_streak`
// consecutive failures open it anyway. A success breaks the streak.
BOOST_AUTO_TEST_CASE(window_failure_streak_opens_a_busy_breaker) {
    breaker_rules r = window(0.5, 100, 10s);
    r.failure_streak = 15;
    breaker_machine m(cfg(3, 60s), default_counted_kinds, r);
    breaker_machine plain(cfg(3, 60s), default_counted_kinds, window(0.5, 100, 10s));
    std::optional<breaker_transition> t, tp;
    auto a = m.try_admit(t0, t);
    auto b = plain.try_admit(t0, tp);
    time_point now = t0;
    for (int i = 0; i < 1000; ++i) {
        m.on_success(a, now += 1ms, t);
        plain.on_success(b, now, tp);
    }
    for (int i = 0; i < 14; ++i) m.on_failure(a, error_kind::retryable_server, now += 1ms, t);
    m.on_success(a, now += 1ms, t);  // breaks the streak
    for (int i = 0; i < 14; ++i) {
        m.on_failure(a, error_kind::retryable_server, now += 1ms, t);
        plain.on_failure(b, error_kind::retryable_server, now, tp);
    }
    BOOST_TEST(m.state() == breaker_state::closed);
    BOOST_TEST(m.consecutive_failures() == 14);
    BOOST_TEST(!t);
    // Non-counted failures (the service answered) neither count nor break it.
    m.on_failure(a, error_kind::retryable_rate_limit, now += 1ms, t);
    BOOST_TEST(m.consecutive_failures() == 14);
    m.on_failure(a, error_kind::retryable_server, now += 1ms, t);  // the 15th in a row, 29 of 1,030
    plain.on_failure(b, error_kind::retryable_server, now, tp);
    BOOST_REQUIRE(t);
    BOOST_TEST(t->reason == transition_reason::failure_threshold);
    BOOST_TEST(m.state() == breaker_state::open);
    BOOST_TEST((m.open_until() == now + 60s));
    BOOST_TEST(plain.state() == breaker_state::closed);  // without the streak rule: still closed
    // Closed again by a probe: the streak starts over.
    auto p = m.try_admit(now + 60s, t);
    m.on_success(p, now + 60s, t);
    BOOST_TEST(m.state() == breaker_state::closed);
    BOOST_TEST(m.consecutive_failures() == 0);
}

// Outcomes older than the sampling duration leave the window.
BOOST_AUTO_TEST_CASE(window_forgets_what_is_older_than_the_sampling_duration) {
    breaker_machine m(cfg(3, 60s), default_counted_kinds, window(0.5, 10, 10s));
    std::optional<breaker_transition> t;
    auto a = m.try_admit(t0, t);
    for (int i = 0; i < 100; ++i) m.on_success(a, t0, t);
    BOOST_TEST(m.window(t0 + 9s).first == 100u);
    BOOST_TEST(m.window(t0 + 10s).first == 0u);
}

BOOST_AUTO_TEST_CASE(window_share_counts_only_recent_outcomes) {
    // The same ten failures: with 100 recent successes they do not open it,
    // once those successes left the window they do.
    for (auto gap : {5s, 10s}) {
        breaker_machine m(cfg(100, 60s), default_counted_kinds, window(0.5, 10, 10s));
        std::optional<breaker_transition> t;
        auto a = m.try_admit(t0, t);
        for (int i = 0; i < 100; ++i) m.on_success(a, t0, t);
        for (int i = 0; i < 10; ++i) m.on_failure(a, error_kind::retryable_server, t0 + gap, t);
        BOOST_TEST((m.state() == (gap == 10s ? breaker_state::open : breaker_state::closed)));
    }
}

BOOST_AUTO_TEST_CASE(add_successes_spreads_over_the_time_and_drops_what_left_the_window) {
    breaker_machine m(cfg(3, 60s), default_counted_kinds, window(0.5, 10, 10s));
    m.add_successes(100, t0, t0 + 20s);  // spread 5 a second; the window keeps 9 whole buckets of 1 s
    BOOST_TEST(m.window(t0 + 20s).first == 45u);
    breaker_machine n(cfg(3, 60s), default_counted_kinds, window(0.5, 10, 10s));
    n.add_successes(7, t0 + 1s, t0 + 1s);
    BOOST_TEST(n.window(t0 + 1s).first == 7u);
    n.add_successes(30, t0 + 1s, t0 + 4s);
    BOOST_TEST(n.window(t0 + 4s).first == 37u);
    BOOST_TEST(n.window(t0 + 11s).first < 37u);  // the earliest buckets aged out
    breaker_machine off(cfg(3, 60s));
    off.add_successes(5, t0, t0 + 1s);  // window off: nothing kept
    BOOST_TEST(off.window(t0 + 1s).first == 0u);
}

BOOST_AUTO_TEST_CASE(break_grows_while_probes_fail_capped_and_resets_on_close) {
    breaker_rules r;
    r.break_multiplier = 2;
    r.max_break = 5min;
    breaker_machine m(cfg(1, 60s), default_counted_kinds, r);
    std::optional<breaker_transition> t;
    time_point now = t0;
    auto a = m.try_admit(now, t);
    m.on_failure(a, error_kind::retryable_server, now, t);
    BOOST_TEST((m.open_until() == now + 60s));
    std::vector<duration> breaks;
    for (int i = 0; i < 5; ++i) {
        now = m.open_until();
        auto p = m.try_admit(now, t);
        BOOST_REQUIRE(p.probe);
        m.on_failure(p, error_kind::retryable_server, now, t);
        BOOST_TEST(t->reason == transition_reason::probe_failed);
        breaks.push_back(m.open_until() - now);
    }
    BOOST_TEST((breaks == std::vector<duration>{120s, 240s, 300s, 300s, 300s}));
    now = m.open_until();
    auto p = m.try_admit(now, t);
    m.on_success(p, now, t);
    BOOST_TEST(m.state() == breaker_state::closed);
    auto c = m.try_admit(now, t);
    m.on_failure(c, error_kind::retryable_server, now, t);
    BOOST_TEST((m.open_until() == now + 60s));  // back to open_timeout
    // An abandoned probe neither grows nor resets the break.
    now = m.open_until();
    auto q = m.try_admit(now, t);
    m.on_failure(q, error_kind::retryable_server, now, t);
    BOOST_TEST((m.open_until() == now + 120s));
    now = m.open_until();
    auto q2 = m.try_admit(now, t);
    BOOST_TEST(m.on_abandon(q2));
    auto q3 = m.try_admit(now, t);
    m.on_failure(q3, error_kind::retryable_server, now, t);
    BOOST_TEST((m.open_until() == now + 240s));
    m.reset(now, t);  // reset also brings the break back
    auto d = m.try_admit(now, t);
    m.on_failure(d, error_kind::retryable_server, now, t);
    BOOST_TEST((m.open_until() == now + 60s));
}

BOOST_AUTO_TEST_CASE(constant_break_by_default) {
    breaker_machine m(cfg(1, 60s));
    std::optional<breaker_transition> t;
    auto a = m.try_admit(t0, t);
    m.on_failure(a, error_kind::retryable_server, t0, t);
    auto p = m.try_admit(t0 + 60s, t);
    m.on_failure(p, error_kind::retryable_server, t0 + 60s, t);
    BOOST_TEST((m.open_until() == t0 + 120s));
}

BOOST_AUTO_TEST_CASE(rules_out_of_range_are_clear_errors) {
    auto bad = [](auto mutate, const char* field) {
        breaker_rules r;
        mutate(r);
        auto v = validate(r);
        BOOST_REQUIRE(!v);
        BOOST_TEST((v.error().code == errc::invalid_config));
        BOOST_TEST(v.error().diag.message.find(field) != std::string::npos, v.error().diag.message);
        breaker_options o;
        o.rules = r;
        BOOST_CHECK_THROW(circuit_breaker{o}, resilience::error);
    };
    bad([](breaker_rules& r) { r.failure_ratio = -0.1; }, "breaker.failure_ratio");
    bad([](breaker_rules& r) { r.failure_ratio = 1.5; }, "breaker.failure_ratio");
    bad([](breaker_rules& r) { r.failure_ratio = std::nan(""); }, "breaker.failure_ratio");
    bad([](breaker_rules& r) { r.minimum_throughput = 0; }, "breaker.minimum_throughput");
    bad([](breaker_rules& r) { r.sampling_duration = 99ms; }, "breaker.sampling_duration");
    bad([](breaker_rules& r) { r.sampling_duration = 25h; }, "breaker.sampling_duration");
    bad([](breaker_rules& r) { r.break_multiplier = 0.5; }, "breaker.break_multiplier");
    bad([](breaker_rules& r) { r.break_multiplier = std::nan(""); }, "breaker.break_multiplier");
    bad([](breaker_rules& r) { r.max_break = -1ms; }, "breaker.max_break");
    bad([](breaker_rules& r) { r.max_break = 25h; }, "breaker.max_break");
    bad([](breaker_rules& r) { r.failure_streak = -1; }, "breaker.failure_streak");
    bad([](breaker_rules& r) { r.failure_ratio = 0.5; r.failure_streak = 1'000'001; }, "breaker.failure_streak");
    bad([](breaker_rules& r) { r.failure_streak = 15; }, "needs the failure-rate window");
    BOOST_TEST(bool(validate(breaker_rules{})));
}

BOOST_AUTO_TEST_CASE(names) {
    BOOST_TEST(to_string(transition_reason::probe_failed) == "probe failed");
    BOOST_TEST(to_string(breaker_state::half_open) == "HALF_OPEN");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(gates_budget_state)

BOOST_AUTO_TEST_CASE(grpc_throttling) {
    budget_state b(budget_config{100, 0.1});
    BOOST_TEST(b.tokens() == 100.0);
    int allowed = 0;
    for (int i = 0; i < 1000; ++i) {
        b.on_failure();
        if (b.retry_allowed()) ++allowed;
    }
    BOOST_TEST(allowed == 49);  // 99..51 tokens left after a failure: retries allowed
    BOOST_TEST(b.tokens() == 0.0);
    for (int i = 0; i < 510; ++i) b.on_success();
    BOOST_TEST(b.tokens() == 51.0);
    BOOST_TEST(b.retry_allowed());
}

BOOST_AUTO_TEST_CASE(budget_config_out_of_range_is_a_clear_error) {
    for (budget_config c : {budget_config{-3, 0.1}, budget_config{0, 0.1}, budget_config{1001, 0.1},
                            budget_config{std::nan(""), 0.1}, budget_config{100, 0}, budget_config{100, 1e9},
                            budget_config{100, std::nan("")}}) {
        auto r = validate(c);
        BOOST_REQUIRE(!r);
        BOOST_TEST((r.error().code == errc::invalid_config));
        BOOST_TEST(r.error().diag.message.find("budget.") != std::string::npos);
        BOOST_CHECK_THROW(retry_budget{c}, resilience::error);
        BOOST_CHECK_THROW(budget_state{c}, resilience::error);
    }
    BOOST_TEST(bool(validate(budget_config{})));
    BOOST_TEST(bool(validate(budget_config{1000, 1000})));
}

// What the shared class keeps in its atomic is the machine's whole state.
BOOST_AUTO_TEST_CASE(count_and_at_carry_the_whole_state) {
    budget_state b(budget_config{10, 0.5});
    BOOST_TEST(b.count() == 10000);
    b.on_failure();
    const budget_state c = budget_state(budget_config{10, 0.5}).at(b.count());
    BOOST_TEST(c.tokens() == 9.0);
    BOOST_TEST(c.retry_allowed() == b.retry_allowed());
    BOOST_TEST(!c.full());
    BOOST_TEST(c.at(10000).full());
    BOOST_TEST(!c.at(5000).retry_allowed());  // not above half
    BOOST_TEST(c.at(5001).retry_allowed());
}

// The shared class applies budget_state's rules: the same sequence of
// outcomes leaves both with the same tokens and the same decision.
BOOST_AUTO_TEST_CASE(shared_budget_follows_the_pure_rules) {
    for (budget_config c : {budget_config{}, budget_config{10, 0.5}, budget_config{3, 2.5}}) {
        budget_state pure(c);
        retry_budget shared(c);
        std::uint32_t x = 12345;
        for (int i = 0; i < 2000; ++i) {
            x = x * 1664525u + 1013904223u;
            if ((x >> 16) % 3 == 0) {
                pure.on_success();
                shared.on_success();
            } else {
                pure.on_failure();
                shared.on_failure();
            }
            BOOST_TEST(pure.tokens() == shared.tokens());
            BOOST_TEST(pure.retry_allowed() == shared.retry_allowed());
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(gates_cooldown_state)

BOOST_AUTO_TEST_CASE(per_scope_not_before) {
    cooldown_state c;
    c.defer(1, t0 + 10s);
    c.defer(1, t0 + 5s);  // never lowered
    BOOST_TEST((*c.blocked_until(1, t0) == t0 + 10s));
    BOOST_TEST(!c.blocked_until(2, t0));
    BOOST_TEST(!c.blocked_until(1, t0 + 10s));
    c.sweep(t0 + 11s);
    BOOST_TEST(c.size() == 0u);
}

BOOST_AUTO_TEST_CASE(scope_never_holds_the_key) {
    const std::string s = make_scope("generativelanguage.example", "AIzaSECRETKEY");
    BOOST_TEST(s.find("SECRET") == std::string::npos);
    BOOST_TEST(s.rfind("generativelanguage.example#", 0) == 0u);
    BOOST_TEST(s.size() == std::string("generativelanguage.example#").size() + 16);
    BOOST_TEST(make_scope("h", "k1") != make_scope("h", "k2"));
    cooldown c;
    BOOST_TEST(c.never_deferred());
    c.defer(s, t0 + 1s);
    BOOST_TEST(!c.never_deferred());
    BOOST_TEST(c.blocked_until(s, t0).has_value());
    BOOST_TEST(c.clear_at(t0 + 1s));
}

BOOST_AUTO_TEST_SUITE_END()
