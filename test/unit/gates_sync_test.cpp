// The fleet seam of the gates (resilience/gate_sync.hpp): what a gate reports
// out to its observer, and what apply_remote / the probe gate do in. No I/O:
// a recording observer and a manual clock.
#include <resilience/circuit_breaker.hpp>
#include <resilience/cooldown.hpp>
#include <resilience/onset_gate.hpp>
#include <resilience/retry_budget.hpp>
#include <resilience/testing/manual_clock.hpp>

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

BOOST_TEST_DONT_PRINT_LOG_VALUE(resilience::breaker_state)
BOOST_TEST_DONT_PRINT_LOG_VALUE(resilience::transition_reason)
BOOST_TEST_DONT_PRINT_LOG_VALUE(resilience::onset_answer)

using namespace resilience;
using namespace std::chrono_literals;

namespace {
struct recorder final : gate_observer {
    std::vector<std::string> log;
    duration last_open_for{};
    duration last_cooldown{};
    std::int64_t budget_delta = 0;
    void on_breaker_transition(const breaker_transition& t, duration open_for) noexcept override {
        log.push_back(std::string(to_string(t.from)) + "->" + std::string(to_string(t.to)));
        last_open_for = open_for;
    }
    void on_breaker_failure(int streak) noexcept override { log.push_back("failure " + std::to_string(streak)); }
    void on_breaker_streak_reset() noexcept override { log.push_back("reset"); }
    void on_cooldown(std::uint64_t, duration remaining) noexcept override {
        log.push_back("cooldown");
        last_cooldown = remaining;
    }
    void on_budget(std::int64_t delta) noexcept override { budget_delta += delta; }
};

std::shared_ptr<circuit_breaker> make(testing::manual_clock& clk, int threshold = 3) {
    breaker_options o;
    o.config.failure_threshold = threshold;
    o.config.open_timeout = 10s;
    o.time = &clk;
    return std::make_shared<circuit_breaker>(o);
}
const time_point t0{std::chrono::hours(1000)};
}  // namespace

BOOST_AUTO_TEST_SUITE(gates_sync)

BOOST_AUTO_TEST_CASE(breaker_reports_failures_streak_end_and_transitions_but_not_the_success_path) {
    testing::manual_clock clk;
    auto b = make(clk);
    auto rec = std::make_shared<recorder>();
    b->set_observer(rec);
    b->try_acquire().permit.succeeded();  // the success path: nothing reported
    BOOST_TEST(rec->log.empty());
    b->try_acquire().permit.failed(error_kind::retryable_server);
    b->try_acquire().permit.failed(error_kind::non_retryable_client);  // not counted: nothing
    b->try_acquire().permit.failed(error_kind::retryable_network);
    b->try_acquire().permit.succeeded();  // ends the streak
    b->try_acquire().permit.succeeded();  // success path again
    const std::vector<std::string> want{"failure 1", "failure 2", "reset"};
    BOOST_TEST(rec->log == want, boost::test_tools::per_element());
    rec->log.clear();
    for (int i = 0; i < 3; ++i) b->try_acquire().permit.failed(error_kind::retryable_server);
    BOOST_REQUIRE(rec->log.size() == 3u);
    BOOST_TEST(rec->log[2] == "CLOSED->OPEN");
    BOOST_TEST((rec->last_open_for == duration(10s)));
}

BOOST_AUTO_TEST_CASE(apply_remote_changes_state_without_echo) {
    testing::manual_clock clk;
    auto b = make(clk);
    auto rec = std::make_shared<recorder>();
    std::vector<transition_reason> seen;
    b->set_observer(rec);
    b->apply_remote(breaker_state::open, 4s);
    BOOST_TEST(rec->log.empty());
    BOOST_TEST(b->state() == breaker_state::open);
    auto r = b->try_acquire();
    BOOST_TEST(!r.permit);
    BOOST_TEST((r.retry_at == clk.now() + 4s));
    // OPEN again from elsewhere: only the end moves.
    b->apply_remote(breaker_state::open, 7s);
    BOOST_TEST((b->try_acquire().retry_at == clk.now() + 7s));
    BOOST_TEST(b->history().size() == 1u);
    BOOST_TEST(b->history().back().reason == transition_reason::remote);
    b->apply_remote(breaker_state::closed);
    BOOST_TEST(b->state() == breaker_state::closed);
    BOOST_TEST(static_cast<bool>(b->try_acquire().permit));
    BOOST_TEST(rec->log.empty());
    // isolate() wins over the fleet.
    b->isolate();
    b->apply_remote(breaker_state::closed);
    BOOST_TEST(b->state() == breaker_state::open);
}

BOOST_AUTO_TEST_CASE(probe_gate_holds_half_open_probes_until_granted) {
    testing::manual_clock clk;
    auto b = make(clk, 1);
    auto rec = std::make_shared<recorder>();
    b->set_observer(rec);
    b->gate_probes(true);
    b->try_acquire().permit.failed(error_kind::retryable_server);
    BOOST_TEST(b->state() == breaker_state::open);
    clk.advance(10s);
    auto r = b->try_acquire();
    BOOST_TEST(!r.permit);  // HALF_OPEN, but the fleet has not granted a probe
    BOOST_TEST(r.state == breaker_state::half_open);
    BOOST_TEST((r.retry_at == time_point::max()));  // waits for a change
    BOOST_TEST(rec->log.back() == "OPEN->HALF_OPEN");
    const std::uint64_t v = r.version;
    b->grant_probes();
    BOOST_TEST(b->snapshot().version() != v);  // the waiters wake
    auto p = b->try_acquire();
    BOOST_TEST(static_cast<bool>(p.permit));
    BOOST_TEST(p.permit.probe());
    BOOST_TEST(!b->try_acquire().permit);  // one probe
    p.permit.succeeded();
    BOOST_TEST(rec->log.back() == "HALF_OPEN->CLOSED");
    // Gate off (the fleet is unreachable): a new HALF_OPEN period probes locally.
    b->try_acquire().permit.failed(error_kind::retryable_server);
    clk.advance(10s);
    BOOST_TEST(!b->try_acquire().permit);
    b->gate_probes(false);
    BOOST_TEST(static_cast<bool>(b->try_acquire().permit));
}

BOOST_AUTO_TEST_CASE(machine_force_is_a_remote_transition) {
    breaker_machine m;
    std::optional<breaker_transition> t;
    m.force(breaker_state::open, t0, 3s, t);
    BOOST_REQUIRE(t);
    BOOST_TEST(t->reason == transition_reason::remote);
    BOOST_TEST((m.open_until() == t0 + 3s));
    t.reset();
    m.force(breaker_state::half_open, t0 + 1s, {}, t);
    BOOST_REQUIRE(t);
    BOOST_TEST(m.state() == breaker_state::half_open);
    BOOST_TEST(to_string(transition_reason::remote) == "changed by the fleet");
}

BOOST_AUTO_TEST_CASE(cooldown_reports_raises_only_and_applies_remote_silently) {
    cooldown c;
    auto rec = std::make_shared<recorder>();
    c.set_observer(rec);
    c.defer(7, t0 + 5s, t0);
    BOOST_TEST(rec->log.size() == 1u);
    BOOST_TEST((rec->last_cooldown == duration(5s)));
    c.defer(7, t0 + 2s, t0);  // lower: nothing new
    c.defer(7, t0 + 9s);      // no `now`: not reported (no duration to tell)
    BOOST_TEST(rec->log.size() == 1u);
    c.apply_remote(8, t0 + 4s, t0);
    BOOST_TEST(rec->log.size() == 1u);
    BOOST_TEST((c.blocked_until(8, t0 + 1s) == t0 + 4s));
}

BOOST_AUTO_TEST_CASE(budget_reports_deltas_and_applies_remote_clamped) {
    retry_budget b(budget_config{10, 1});
    auto rec = std::make_shared<recorder>();
    b.set_observer(rec);
    b.on_success();  // full: no write, nothing reported
    BOOST_TEST(rec->budget_delta == 0);
    b.on_failure();
    b.on_failure();
    BOOST_TEST(rec->budget_delta == -2000);
    b.on_success();
    BOOST_TEST(rec->budget_delta == -1000);
    b.apply_remote(3000);
    BOOST_TEST(b.count() == 3000);
    BOOST_TEST(!b.retry_allowed());
    b.apply_remote(-5);
    BOOST_TEST(b.count() == 0);
    b.apply_remote(1'000'000);
    BOOST_TEST(b.count() == 10000);
    BOOST_TEST(rec->budget_delta == -1000);
}

BOOST_AUTO_TEST_CASE(the_onset_gate_is_warm_after_a_success_until_a_failure_or_the_window) {
    testing::manual_clock clk;
    onset_gate g;
    BOOST_TEST(!g.linked());
    BOOST_TEST(g.take() == onset_answer::go);  // no link: every request goes
    struct counting final : onset_permits {
        int taken = 0, back = 0, good = 0;
        onset_answer take() noexcept override {
            ++taken;
            return onset_answer::held;
        }
        void give_back(bool success) noexcept override {
            ++back;
            good += success;
        }
    };
    auto p = std::make_shared<counting>();
    onset_settings s;
    s.window = 10s;
    g.link(p, s);
    BOOST_TEST(g.linked());
    BOOST_TEST(!g.warm(clk.now()));  // nothing seen yet: cold
    BOOST_TEST(g.take() == onset_answer::held);
    g.give_back(true);
    BOOST_TEST(p->taken == 1);
    BOOST_TEST(p->good == 1);
    const time_point t0 = clk.now();
    g.succeeded(t0);
    BOOST_TEST(g.warm(t0));
    BOOST_TEST(g.warm(t0 + 9s));
    BOOST_TEST(!g.warm(t0 + 10s));  // the window passed without a success
    // Steady successes keep it warm; an older one changes nothing.
    g.succeeded(t0 + 8s);
    g.succeeded(t0 + 1s);
    BOOST_TEST(g.warm(t0 + 17s));
    // A 429 or 5xx answer to a request admitted after the newest success cools it...
    g.failed(t0 + 9s);
    BOOST_TEST(!g.warm(t0 + 9s));
    // ... a success admitted before that failure does not warm it again; a later one does.
    g.succeeded(t0 + 8500ms);
    BOOST_TEST(!g.warm(t0 + 9s));
    g.succeeded(t0 + 9s + 1ms);
    BOOST_TEST(g.warm(t0 + 10s));
}

BOOST_AUTO_TEST_SUITE_END()
