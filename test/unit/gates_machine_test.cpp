// Pure state machines of the gates: breaker_machine, budget_state,
// cooldown_state. No timers, no io_context: every call takes `now`.
#include <resilience/circuit_breaker.hpp>
#include <resilience/cooldown.hpp>
#include <resilience/retry_budget.hpp>

#include <boost/test/unit_test.hpp>

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

BOOST_AUTO_TEST_CASE(names) {
    BOOST_TEST(to_string(transition_reason::probe_failed) == "probe failed");
    BOOST_TEST(to_string(breaker_state::half_open) == "HALF_OPEN");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(gates_budget_state)

BOOST_AUTO_TEST_CASE(grpc_throttling) {
    budget_state b;  // 100 tokens, ratio 0.1
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

BOOST_AUTO_TEST_CASE(shared_budget_clamps_config) {
    budget_config c;
    c.max_tokens = -3;
    c.token_ratio = 1e9;
    retry_budget b(c);
    BOOST_TEST(b.config().max_tokens == 100.0);
    BOOST_TEST(b.config().token_ratio == 100.0);
    for (int i = 0; i < 10; ++i) b.on_failure();
    BOOST_TEST(b.tokens() == 90.0);
    b.on_success();
    BOOST_TEST(b.tokens() == 100.0);
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
