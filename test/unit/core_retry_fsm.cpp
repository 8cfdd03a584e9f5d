// The retry loop's state machine (detail::retry_fsm) driven by hand: inputs
// in, actions out, with a manual clock that nobody advances unless a test
// says so, and no io_context: no timer runs, nothing waits.
#include <resilience/detail/retry_fsm.hpp>
#include <resilience/testing/manual_clock.hpp>

#include "test_common.hpp"

#include <boost/asio/error.hpp>
#include <boost/test/unit_test.hpp>

#include "core_printers.hpp"

#include <memory>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using resilience::call_options;
using resilience::errc;
using resilience::error_code;
using resilience::error_kind;
using resilience::event_type;
using resilience::failure;
using resilience::give_up_reason;
using resilience::jitter_source;
using resilience::retry_options;
using resilience::time_point;
using resilience::detail::retry_action_type;
using resilience::detail::retry_fsm;
using resilience::testing::manual_clock;

namespace {

// A pipeline's options with fixed delays (no jitter), a classifier that
// reads the failure's message, and recorders for status text and events.
struct fixture {
    manual_clock clk;
    jitter_source rng{0x5eed};
    retry_options opts;
    call_options call;
    std::vector<std::string> lines;
    std::vector<event_type> events;

    fixture() {
        opts.policy.max_retries = 2;
        opts.policy.backoff.initial_delay = 1000ms;
        opts.policy.backoff.max_delay = 8000ms;
        opts.policy.backoff.jitter = resilience::jitter_mode::none;
        opts.budget = nullptr;
        opts.classify = [](const failure& f) {
            if (f.diag.message == "quota") return error_kind::retryable_rate_limit;
            if (f.diag.message == "bad") return error_kind::non_retryable_client;
            return error_kind::retryable_server;
        };
        opts.on_status = [this](std::string_view s) { lines.emplace_back(s); };
    }
    void record_events() {
        opts.on_event = [this](const resilience::event& e) { events.push_back(e.type); };
    }
    std::vector<std::unique_ptr<resilience::breaker_permit>> permits;  // the shell's, one per machine
    std::unique_ptr<retry_fsm> machine(const call_options& c) {
        permits.push_back(std::make_unique<resilience::breaker_permit>());
        return std::make_unique<retry_fsm>(opts, clk, rng, c, *permits.back());
    }
    std::unique_ptr<retry_fsm> machine() { return machine(call); }
};

// Codes of the core's neighbours only: the fixture's classifier decides.
failure server_error() { return failure(make_error_code(boost::asio::error::connection_reset), "boom"); }
failure quota(std::chrono::seconds after) {
    failure f(make_error_code(boost::asio::error::try_again), "quota");
    f.diag.http_status = 429;
    f.diag.retry_after = after;
    return f;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(retry_fsm_machine)

BOOST_FIXTURE_TEST_CASE(success_first_time_is_one_attempt_then_done, fixture) {
    auto m = machine();
    auto a = m->start();
    BOOST_TEST((a.type == retry_action_type::attempt));
    BOOST_TEST(m->context().attempt == 0);
    BOOST_TEST((m->context().deadline == time_point::max()));
    a = m->attempt_succeeded();
    BOOST_TEST((a.type == retry_action_type::done));
    BOOST_TEST(m->succeeded());
    BOOST_TEST(lines.empty());
}

BOOST_FIXTURE_TEST_CASE(retryable_failure_asks_for_backoff_then_the_next_attempt, fixture) {
    auto m = machine();
    const time_point t0 = clk.now();
    (void)m->start();
    auto a = m->attempt_failed(server_error(), false);
    BOOST_TEST((a.type == retry_action_type::sleep));
    BOOST_TEST((a.until == t0 + 1s));
    BOOST_TEST(lines.size() == 2u);  // "Retry 1/2 ...", "Waiting 1s ..."
    clk.advance(1s);  // the shell slept
    a = m->wait_finished({}, false);
    BOOST_TEST((a.type == retry_action_type::attempt));
    BOOST_TEST(m->context().attempt == 1);
    a = m->attempt_failed(server_error(), false);
    BOOST_TEST((a.type == retry_action_type::sleep));
    BOOST_TEST((a.until == t0 + 1s + 2s));  // doubled
    clk.advance(2s);
    a = m->wait_finished({}, false);
    a = m->attempt_failed(server_error(), false);
    BOOST_TEST((a.type == retry_action_type::done));
    BOOST_TEST(!m->succeeded());
    const failure f = m->take_failure();
    BOOST_TEST((f.code == boost::asio::error::connection_reset));
    BOOST_TEST(f.diag.attempts == 3);
    BOOST_TEST((f.diag.gave_up == give_up_reason::max_retries));
    BOOST_TEST(lines.back() == "Operation failed after 3 attempts: boom");
}

BOOST_FIXTURE_TEST_CASE(non_retryable_failure_is_done_at_once, fixture) {
    auto m = machine();
    (void)m->start();
    auto a = m->attempt_failed(failure(make_error_code(boost::asio::error::access_denied), "bad"), false);
    BOOST_TEST((a.type == retry_action_type::done));
    BOOST_TEST((m->take_failure().diag.gave_up == give_up_reason::non_retryable));
}

BOOST_FIXTURE_TEST_CASE(cancellation_seen_after_an_attempt_is_never_retried, fixture) {
    auto m = machine();
    (void)m->start();
    auto a = m->attempt_failed(server_error(), true);
    BOOST_TEST((a.type == retry_action_type::done));
    const failure f = m->take_failure();
    BOOST_TEST((f.code == boost::asio::error::operation_aborted));
    BOOST_TEST((f.diag.gave_up == give_up_reason::cancelled));
    BOOST_TEST(f.diag.attempts == 1);
}

BOOST_FIXTURE_TEST_CASE(cancelled_backoff_ends_with_the_last_failures_diagnostics, fixture) {
    auto m = machine();
    (void)m->start();
    failure first = server_error();
    first.diag.http_status = 503;
    (void)m->attempt_failed(std::move(first), false);
    auto a = m->wait_finished(make_error_code(boost::asio::error::operation_aborted), false);
    BOOST_TEST((a.type == retry_action_type::done));
    const failure f = m->take_failure();
    BOOST_TEST((f.code == boost::asio::error::operation_aborted));
    BOOST_TEST(f.diag.http_status == 503);
    BOOST_TEST(f.diag.message == "operation cancelled");
    BOOST_TEST(f.diag.attempts == 1);
}

BOOST_FIXTURE_TEST_CASE(a_backoff_past_the_deadline_is_not_slept, fixture) {
    call.deadline = clk.now() + 500ms;
    auto m = machine();
    auto a = m->start();
    BOOST_TEST((a.type == retry_action_type::attempt));
    BOOST_TEST((m->context().deadline == call.deadline));
    a = m->attempt_failed(server_error(), false);
    BOOST_TEST((a.type == retry_action_type::done));
    BOOST_TEST((m->take_failure().diag.gave_up == give_up_reason::deadline));
}

BOOST_FIXTURE_TEST_CASE(attempt_timeout_shrinks_to_the_deadline, fixture) {
    opts.policy.attempt_timeout = 2000ms;
    call.deadline = clk.now() + 3s;
    auto m = machine();
    (void)m->start();
    BOOST_TEST((m->context().deadline == clk.now() + 2s));
    const failure t = m->timed_out(m->context());
    BOOST_TEST((t.code == errc::attempt_timeout));
    clk.advance(1500ms);
    auto a = m->attempt_failed(server_error(), false);  // 1 s backoff ends before the deadline
    BOOST_TEST((a.type == retry_action_type::sleep));
    clk.advance(1s);
    a = m->wait_finished({}, false);
    BOOST_TEST((a.type == retry_action_type::attempt));
    BOOST_TEST((m->context().deadline == call.deadline));  // 0.5 s left < the attempt timeout
    BOOST_TEST((m->timed_out(m->context()).code == errc::deadline_exceeded));
}

BOOST_FIXTURE_TEST_CASE(pushback_replaces_the_backoff_and_holds_the_scope, fixture) {
    opts.cooldown = std::make_shared<resilience::cooldown>();
    opts.scope = "host#key";
    const time_point t0 = clk.now();
    auto m = machine();
    (void)m->start();
    auto a = m->attempt_failed(quota(7s), false);
    BOOST_TEST((a.type == retry_action_type::sleep));
    // Released spread over a tenth of the delay after it (at most 2 s).
    BOOST_TEST((a.until >= t0 + 7s));
    BOOST_TEST((a.until < t0 + 7s + 700ms));
    // Another call of the scope is held by the cooldown before its attempt 0.
    call_options other;
    auto m2p = machine(other);
    retry_fsm& m2 = *m2p;
    auto b = m2.start();
    BOOST_TEST((b.type == retry_action_type::sleep));
    BOOST_TEST((b.until >= t0 + 7s));
    BOOST_TEST((b.until < t0 + 7s + 700ms));
    BOOST_TEST(lines.back() == "Rate limited. Respecting Retry-After header: 7s");
    clk.advance_to(b.until);
    b = m2.wait_finished({}, false);
    BOOST_TEST((b.type == retry_action_type::attempt));
    BOOST_TEST(m2.context().attempt == 0);
}

BOOST_FIXTURE_TEST_CASE(cancelled_cooldown_wait_ends_before_any_attempt, fixture) {
    opts.cooldown = std::make_shared<resilience::cooldown>();
    opts.cooldown->defer(std::string_view(""), clk.now() + 5s);
    auto m = machine();
    auto a = m->start();
    BOOST_TEST((a.type == retry_action_type::sleep));
    a = m->wait_finished({}, true);
    BOOST_TEST((a.type == retry_action_type::done));
    const failure f = m->take_failure();
    BOOST_TEST((f.code == boost::asio::error::operation_aborted));
    BOOST_TEST(f.diag.attempts == 0);
}

BOOST_FIXTURE_TEST_CASE(open_breaker_asks_for_an_admission_wait_or_fails_fast, fixture) {
    resilience::breaker_options bo;
    bo.config.failure_threshold = 1;
    bo.config.open_timeout = 30s;
    bo.time = &clk;
    opts.breaker = std::make_shared<resilience::circuit_breaker>(bo);
    opts.policy.max_retries = 0;
    auto m = machine();
    (void)m->start();
    (void)m->attempt_failed(server_error(), false);  // opens it
    BOOST_TEST((opts.breaker->state() == resilience::breaker_state::open));

    auto w = machine();
    auto a = w->start();
    BOOST_TEST((a.type == retry_action_type::breaker_wait));
    BOOST_TEST((a.until == clk.now() + 30s));
    clk.advance(30s);
    a = w->wait_finished({}, false);  // the open timeout passed: admitted as the probe
    BOOST_TEST((a.type == retry_action_type::attempt));
    BOOST_TEST((opts.breaker->state() == resilience::breaker_state::half_open));
    (void)w->attempt_succeeded();
    BOOST_TEST((opts.breaker->state() == resilience::breaker_state::closed));

    opts.breaker->isolate();
    call.admission = resilience::admission_mode::fail_fast;
    auto f = machine();
    a = f->start();
    BOOST_TEST((a.type == retry_action_type::done));
    const failure x = f->take_failure();
    BOOST_TEST((x.code == errc::circuit_open));
    BOOST_TEST((x.diag.gave_up == give_up_reason::circuit_open));
}

BOOST_FIXTURE_TEST_CASE(the_budget_refuses_a_retry_without_waiting, fixture) {
    resilience::budget_config bc;
    bc.max_tokens = 2;
    opts.budget = std::make_shared<resilience::retry_budget>(bc);
    auto m = machine();
    (void)m->start();
    auto a = m->attempt_failed(server_error(), false);  // 2 -> 1 token: not above 1
    BOOST_TEST((a.type == retry_action_type::done));
    const failure f = m->take_failure();
    BOOST_TEST((f.code == errc::retry_budget_exhausted));
    BOOST_TEST((f.diag.gave_up == give_up_reason::budget));
}

BOOST_FIXTURE_TEST_CASE(first_failed_continues_after_the_quick_path, fixture) {
    record_events();
    auto m = machine();
    auto a = m->first_failed(server_error(), false);
    BOOST_TEST((a.type == retry_action_type::sleep));
    a = m->wait_finished({}, false);
    BOOST_TEST((a.type == retry_action_type::attempt));
    BOOST_TEST(m->context().attempt == 1);
    (void)m->attempt_succeeded();
    const std::vector<event_type> want{event_type::attempt_failed, event_type::retry_scheduled,
                                       event_type::attempt_started, event_type::attempt_succeeded};
    BOOST_TEST(events == want, boost::test_tools::per_element());
}

BOOST_FIXTURE_TEST_CASE(events_of_a_call_that_gives_up, fixture) {
    record_events();
    opts.policy.max_retries = 1;
    auto m = machine();
    (void)m->start();
    (void)m->attempt_failed(server_error(), false);
    (void)m->wait_finished({}, false);
    (void)m->attempt_failed(server_error(), false);
    const std::vector<event_type> want{event_type::attempt_started, event_type::attempt_failed,
                                       event_type::retry_scheduled, event_type::attempt_started,
                                       event_type::attempt_failed,  event_type::gave_up};
    BOOST_TEST(events == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
