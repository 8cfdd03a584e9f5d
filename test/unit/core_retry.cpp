// Retry timelines in virtual time under a fixed seed: which attempt runs
// when, the status lines word for word, the structured events, pushback,
// the deadline, attempt timeouts and per-operation cancellation.
#include <resilience/http/error.hpp>
#include <resilience/pushback.hpp>
#include <resilience/retry.hpp>
#include <resilience/testing/manual_clock.hpp>

#include "test_common.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/test/unit_test.hpp>

#include "core_printers.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using resilience::attempt_context;
using resilience::call_options;
using resilience::duration;
using resilience::errc;
using resilience::error_code;
using resilience::error_kind;
using resilience::event_type;
using resilience::failure;
using resilience::give_up_reason;
using resilience::result;
using resilience::time_point;
using resilience::testing::manual_clock;

namespace {

constexpr std::uint64_t seed = 0x5eed;

// What one attempt does.
struct step {
    bool ok = false;
    failure f;
    duration takes{};   // virtual time the attempt takes
    bool hang = false;  // never completes by itself (only cancellation ends it)
    bool throws = false;  // self_timed_op: throws
};
step fail(error_code ec, std::string msg = {}) {
    step s;
    s.f = msg.empty() ? failure(ec) : failure(ec, std::move(msg));
    return s;
}
step ok(duration takes = {}) {
    step s;
    s.ok = true;
    s.takes = takes;
    return s;
}
step hang() {
    step s;
    s.hang = true;
    return s;
}
step pushback(duration d, std::string msg = "quota") {
    step s = fail(resilience::http::errc::too_many_requests, std::move(msg));
    s.f.diag.retry_after = d;
    return s;
}

struct call_record {
    duration at;  // virtual time since the start
    int attempt;
    time_point deadline;
};

struct event_record {
    event_type type;
    int attempt;
    error_kind kind;
    error_code code;
    duration delay;
    duration elapsed;
    bool pushback;
    give_up_reason reason;
    std::string message;
    std::string subject;
};

struct fixture {
    manual_clock clk;  // outlives the io_context and the coroutines asleep on it
    asio::io_context ctx;
    time_point t0 = clk.now();
    std::vector<step> script;
    std::vector<call_record> calls;
    std::vector<std::string> lines;
    std::vector<event_record> events;
    resilience::retry_options opts;

    fixture() {
        opts.time = &clk;
        opts.seed = seed;
        opts.policy.backoff.jitter = resilience::jitter_mode::none;
        opts.on_status = [this](std::string_view s) { lines.emplace_back(s); };
        opts.on_event = [this](const resilience::event& e) {
            events.push_back({e.type, e.attempt, e.kind, e.code, e.delay, e.elapsed, e.pushback, e.reason,
                              std::string(e.message), std::string(e.subject)});
        };
    }

    duration elapsed() const { return clk.now() - t0; }

    std::vector<duration> call_times() const {
        std::vector<duration> v;
        for (auto& c : calls) v.push_back(c.at);
        return v;
    }

    // The operation: follows the script, one step per attempt (the last step repeats).
    asio::awaitable<result<int>> attempt(attempt_context a) {
        calls.push_back({clk.now() - t0, a.attempt, a.deadline});
        BOOST_TEST(a.time == &clk);
        const step s = script.at(std::min<std::size_t>(a.attempt, script.size() - 1));
        if (s.hang) {
            error_code ec = co_await clk.sleep_until(time_point::max());
            co_return failure(ec ? ec : make_error_code(asio::error::operation_aborted));
        }
        if (s.takes > duration::zero()) {
            if (error_code ec = co_await clk.sleep_until(clk.now() + s.takes)) co_return failure(ec);
        }
        if (s.ok) co_return 42;
        co_return s.f;
    }

    auto factory() {
        return [this](const attempt_context& a) { return attempt(a); };
    }

    // Runs the factory through a pipeline to completion in virtual time.
    template <class Factory>
    auto run(resilience::pipeline& p, Factory f, call_options call = {},
             asio::cancellation_slot slot = {}) -> result<resilience::detail::factory_value_t<Factory>> {
        std::optional<result<resilience::detail::factory_value_t<Factory>>> out;
        asio::co_spawn(
            ctx,
            [&]() -> asio::awaitable<void> { out.emplace(co_await p.run(f, std::move(call))); },
            asio::bind_cancellation_slot(slot, test::rethrow{}));
        BOOST_TEST_REQUIRE(resilience::testing::run_virtual(ctx, clk, [&] { return out.has_value(); }));
        return std::move(*out);
    }

    result<int> run(call_options call = {}) {
        resilience::pipeline p(opts);
        return run(p, factory(), std::move(call));
    }
};

std::vector<duration> secs(std::initializer_list<double> v) {
    std::vector<duration> out;
    for (double s : v) out.push_back(std::chrono::duration_cast<duration>(std::chrono::duration<double>(s)));
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(core_retry)

BOOST_FIXTURE_TEST_CASE(success_at_once, fixture) {
    script = {ok()};
    auto r = run();
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(*r == 42);
    BOOST_TEST(calls.size() == 1u);
    BOOST_TEST(lines.empty());
    BOOST_TEST_REQUIRE(events.size() == 2u);
    BOOST_TEST((events[0].type == event_type::attempt_started));
    BOOST_TEST((events[1].type == event_type::attempt_succeeded));
}

BOOST_FIXTURE_TEST_CASE(success_after_k_failures_exact_delays, fixture) {
    script = {fail(resilience::http::errc::server_error, "overloaded"), fail(asio::error::connection_reset),
              fail(resilience::http::errc::server_error, "overloaded"), ok()};
    auto r = run();
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(call_times() == secs({0, 1, 3, 7}), boost::test_tools::per_element());
    for (std::size_t i = 0; i < calls.size(); ++i) BOOST_TEST(calls[i].attempt == static_cast<int>(i));
    const std::vector<std::string> expected = {
        "Retry 1/5 after error (RETRYABLE_SERVER): overloaded",
        "Waiting 1s before retry (circuit breaker: CLOSED)...",
        "Retry 2/5 after error (RETRYABLE_NETWORK): " + error_code(asio::error::connection_reset).message(),
        "Waiting 2s before retry (circuit breaker: CLOSED)...",
        "Retry 3/5 after error (RETRYABLE_SERVER): overloaded",
        "Waiting 4s before retry (circuit breaker: CLOSED)...",
    };
    BOOST_TEST(lines == expected, boost::test_tools::per_element());
    BOOST_TEST((elapsed() == duration(7s)));
}

BOOST_FIXTURE_TEST_CASE(delays_double_up_to_max_delay, fixture) {
    opts.policy.max_retries = 8;
    script = {fail(resilience::http::errc::server_error, "down")};
    auto r = run();
    BOOST_TEST_REQUIRE(!r.has_value());
    // 1, 2, 4, 8, 16, 30, 30, 30
    BOOST_TEST(call_times() == secs({0, 1, 3, 7, 15, 31, 61, 91, 121}), boost::test_tools::per_element());
    BOOST_TEST(r.error().code == resilience::http::errc::server_error);
    BOOST_TEST(r.error().diag.attempts == 9);
    BOOST_TEST((r.error().diag.gave_up == give_up_reason::max_retries));
    BOOST_TEST((r.error().diag.elapsed == duration(121s)));
    BOOST_TEST(lines.back() == "Operation failed after 9 attempts: down");
}

BOOST_FIXTURE_TEST_CASE(give_up_after_max_retries, fixture) {
    opts.policy.max_retries = 3;
    script = {fail(resilience::http::errc::server_error, "The model is overloaded. Please try again later.")};
    auto r = run();
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(calls.size() == 4u);
    BOOST_TEST(r.error().diag.attempts == 4);
    BOOST_TEST(r.error().what() == "The model is overloaded. Please try again later.");
    const std::vector<std::string> expected = {
        "Retry 1/3 after error (RETRYABLE_SERVER): The model is overloaded. Please try again later.",
        "Waiting 1s before retry (circuit breaker: CLOSED)...",
        "Retry 2/3 after error (RETRYABLE_SERVER): The model is overloaded. Please try again later.",
        "Waiting 2s before retry (circuit breaker: CLOSED)...",
        "Retry 3/3 after error (RETRYABLE_SERVER): The model is overloaded. Please try again later.",
        "Waiting 4s before retry (circuit breaker: CLOSED)...",
        "Operation failed after 4 attempts: The model is overloaded. Please try again later.",
    };
    BOOST_TEST(lines == expected, boost::test_tools::per_element());
}

BOOST_FIXTURE_TEST_CASE(zero_retries_is_one_attempt, fixture) {
    opts.policy.max_retries = 0;
    script = {fail(resilience::http::errc::server_error, "down"), ok()};
    auto r = run();
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(calls.size() == 1u);
    BOOST_TEST((elapsed() == duration::zero()));
    BOOST_TEST_REQUIRE(lines.size() == 1u);
    BOOST_TEST(lines[0] == "Operation failed after 1 attempts: down");
    BOOST_TEST((r.error().diag.gave_up == give_up_reason::max_retries));
}

BOOST_FIXTURE_TEST_CASE(non_retryable_stops_at_once, fixture) {
    struct row { error_code code; const char* kind; };
    for (auto [code, kind] : {row{resilience::http::errc::unauthorized, "NON_RETRYABLE_AUTH"},
                              row{resilience::http::errc::forbidden, "NON_RETRYABLE_AUTH"},
                              row{resilience::http::errc::client_error, "NON_RETRYABLE_CLIENT"}}) {
        BOOST_TEST_CONTEXT(kind << " " << code.message()) {
            calls.clear();
            lines.clear();
            events.clear();
            script = {fail(code, "no"), ok()};
            auto r = run();
            BOOST_TEST_REQUIRE(!r.has_value());
            BOOST_TEST(r.error().code == code);
            BOOST_TEST(calls.size() == 1u);
            BOOST_TEST((r.error().diag.gave_up == give_up_reason::non_retryable));
            BOOST_TEST(r.error().diag.attempts == 1);
            BOOST_TEST_REQUIRE(lines.size() == 1u);
            BOOST_TEST(lines[0] == "Operation failed after 1 attempts: no");
            BOOST_TEST_REQUIRE(events.size() == 3u);
            BOOST_TEST((events[1].type == event_type::attempt_failed));
            BOOST_TEST(to_string(events[1].kind) == kind);
            BOOST_TEST((events[2].type == event_type::gave_up));
            BOOST_TEST((events[2].reason == give_up_reason::non_retryable));
            BOOST_TEST(to_string(events[2].kind) == kind);
        }
    }
}

BOOST_FIXTURE_TEST_CASE(per_call_classifier, fixture) {
    script = {fail(resilience::http::errc::client_error, "not ready"), ok()};
    call_options call;
    call.classify = [](const failure& f) {
        return f.code == resilience::http::errc::client_error ? error_kind::retryable_server : resilience::default_classify(f);
    };
    auto r = run(std::move(call));
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(calls.size() == 2u);
    BOOST_TEST(lines.at(0) == "Retry 1/5 after error (RETRYABLE_SERVER): not ready");
}

// A custom classifier decides the kind everywhere: the attempt_failed and
// gave_up events carry its verdict, not the default classification.
BOOST_FIXTURE_TEST_CASE(custom_classifier_decides_the_gave_up_kind, fixture) {
    script = {fail(resilience::http::errc::server_error, "fatal here")};
    call_options call;
    call.classify = [](const failure& f) {
        return f.code == resilience::http::errc::server_error ? error_kind::non_retryable_auth : resilience::default_classify(f);
    };
    auto r = run(std::move(call));
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(calls.size() == 1u);
    BOOST_TEST_REQUIRE(events.size() == 3u);
    BOOST_TEST((events[1].kind == error_kind::non_retryable_auth));
    BOOST_TEST((events[2].type == event_type::gave_up));
    BOOST_TEST((events[2].kind == error_kind::non_retryable_auth));  // classify(code) would say RETRYABLE_SERVER
}

// Only a throttling answer sets the scope's cooldown: a 400 carrying a
// Retry-After (non-retryable) must not hold the other calls of the scope.
BOOST_FIXTURE_TEST_CASE(a_non_retryable_answer_with_a_delay_sets_no_cooldown, fixture) {
    opts.cooldown = std::make_shared<resilience::cooldown>();
    opts.scope = "s";
    step bad = fail(resilience::http::errc::client_error, "bad request");
    bad.f.diag.http_status = 400;
    bad.f.diag.retry_after = 20s;
    script = {bad};
    auto r = run();
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(!opts.cooldown->blocked_until(std::string_view("s"), clk.now()).has_value());
    // A 500 with a delay is not throttling either.
    step err = fail(resilience::http::errc::server_error, "internal");
    err.f.diag.http_status = 500;
    err.f.diag.retry_after = 20s;
    script = {err, ok()};
    calls.clear();
    r = run();
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(!opts.cooldown->blocked_until(std::string_view("s"), clk.now()).has_value());
    // A 503 with a delay, and a 429, do set it.
    step busy = fail(resilience::http::errc::server_error, "overloaded");
    busy.f.diag.http_status = 503;
    busy.f.diag.retry_after = 20s;
    script = {busy};
    opts.policy.max_retries = 0;
    r = run();
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(opts.cooldown->blocked_until(std::string_view("s"), clk.now()).has_value());
    clk.advance(30s);
    script = {pushback(20s)};
    r = run();
    BOOST_TEST(opts.cooldown->blocked_until(std::string_view("s"), clk.now()).has_value());
}

// An attempt that throws (Beast refuses a 64 KiB header value before sending)
// ends at once with its cause, not after the attempt timeout.
BOOST_FIXTURE_TEST_CASE(an_exception_ends_the_attempt_at_once, fixture) {
    opts.policy.attempt_timeout = 60s;
    opts.policy.max_retries = 2;
    resilience::pipeline p(opts);
    int made = 0;
    auto thrower = [&](const attempt_context&) -> asio::awaitable<result<int>> {
        ++made;
        throw std::length_error("field size exceeds limit");
        co_return 0;
    };
    auto r = run(p, thrower);
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST((r.error().code == errc::operation_threw));
    BOOST_TEST(r.error().what().find("field size exceeds limit") != std::string::npos, r.error().what());
    BOOST_TEST(made == 1);  // not retried: an exception is not a transient failure
    BOOST_TEST((elapsed() == duration::zero()));
    // The same with an overall deadline.
    call_options call;
    call.deadline = clk.now() + 10min;
    const auto t1 = clk.now();
    r = run(p, thrower, std::move(call));
    BOOST_TEST((r.error().code == errc::operation_threw));
    BOOST_TEST((clk.now() == t1));
}

BOOST_FIXTURE_TEST_CASE(full_jitter_is_within_caps_and_reproducible, fixture) {
    opts.policy.backoff.jitter = resilience::jitter_mode::full;
    opts.policy.max_retries = 6;
    script = {fail(resilience::http::errc::server_error, "x")};
    (void)run();
    const auto first = call_times();
    BOOST_TEST_REQUIRE(first.size() == 7u);
    // The same sequence as jitter_source with the same seed.
    resilience::jitter_source js(seed);
    duration t{}, prev{};
    for (int k = 1; k <= 6; ++k) {
        duration d = resilience::backoff_delay(opts.policy.backoff, k, js.next(), prev);
        prev = d;
        t += d;
        const duration gap = first[k] - first[k - 1];
        BOOST_TEST(gap >= duration::zero());
        BOOST_TEST(gap < resilience::backoff_cap(opts.policy.backoff, k));
        BOOST_TEST((first[k] == t));
    }
    // Run again with the same seed: the same timeline.
    calls.clear();
    lines.clear();
    t0 = clk.now();
    (void)run();
    BOOST_TEST(call_times() == first, boost::test_tools::per_element());
    // Another seed: another timeline.
    calls.clear();
    t0 = clk.now();
    opts.seed = seed + 1;
    (void)run();
    BOOST_TEST((call_times() != first));
}

BOOST_FIXTURE_TEST_CASE(pushback_replaces_the_delay, fixture) {
    opts.policy.max_pushback = 60s;  // the default cap (max_delay, 30 s) would cut 34.4 s
    script = {pushback(15s, "You exceeded your current quota"), pushback(34400ms, "again"), ok()};
    auto r = run();
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(call_times() == secs({0, 15, 49.4}), boost::test_tools::per_element());
    const std::vector<std::string> expected = {
        "Retry 1/5 after error (RETRYABLE_RATE_LIMIT): You exceeded your current quota",
        "Rate limited. Respecting Retry-After header: 15s",
        "Waiting 15s before retry (circuit breaker: CLOSED)...",
        "Retry 2/5 after error (RETRYABLE_RATE_LIMIT): again",
        "Rate limited. Respecting Retry-After header: 34.4s",
        "Waiting 34.4s before retry (circuit breaker: CLOSED)...",
    };
    BOOST_TEST(lines == expected, boost::test_tools::per_element());
    std::vector<event_record> sched;
    for (auto& e : events)
        if (e.type == event_type::retry_scheduled) sched.push_back(e);
    BOOST_TEST_REQUIRE(sched.size() == 2u);
    BOOST_TEST(sched[0].pushback);
    BOOST_TEST((sched[0].delay == duration(15s)));
    BOOST_TEST((sched[1].delay == duration(34400ms)));
    // Pushback of zero: retry at once.
    calls.clear();
    t0 = clk.now();
    script = {pushback(0s), ok()};
    BOOST_TEST(run().has_value());
    BOOST_TEST(call_times() == secs({0, 0}), boost::test_tools::per_element());
}

// Another library's code opts into retries by mapping to a condition: a
// "slow down" of a foreign category that maps to condition::throttled is
// retried as a rate limit (status text, events, the server's delay, the
// scope's cooldown), exactly as an HTTP 429 is.
class upstream_category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "upstream"; }
    std::string message(int) const override { return "upstream says slow down"; }
    boost::system::error_condition default_error_condition(int) const noexcept override {
        return resilience::condition::throttled;
    }
};

BOOST_FIXTURE_TEST_CASE(a_foreign_code_mapped_to_throttled_is_retried_as_a_rate_limit, fixture) {
    static const upstream_category upstream;
    const error_code slow_down(1, upstream);
    opts.cooldown = std::make_shared<resilience::cooldown>();
    opts.scope = "s";
    step s = fail(slow_down, "slow down");
    s.f.diag.retry_after = 7s;
    script = {s, ok()};
    auto r = run();
    BOOST_TEST_REQUIRE(r.has_value());
    // The server's delay (the scope's cooldown spreads the wake-up a little past it).
    BOOST_TEST_REQUIRE(calls.size() == 2u);
    BOOST_TEST((calls[1].at >= duration(7s)));
    BOOST_TEST((calls[1].at < duration(8s)));
    BOOST_TEST_REQUIRE(lines.size() >= 2u);
    BOOST_TEST(lines[0] == "Retry 1/5 after error (RETRYABLE_RATE_LIMIT): slow down");
    BOOST_TEST(lines[1] == "Rate limited. Respecting Retry-After header: 7s");
    auto failed = std::find_if(events.begin(), events.end(),
                               [](const event_record& e) { return e.type == event_type::attempt_failed; });
    BOOST_TEST_REQUIRE((failed != events.end()));
    BOOST_TEST((failed->kind == error_kind::retryable_rate_limit));
    BOOST_TEST((failed->code == slow_down));
    // Throttling holds the scope: the cooldown was set until the server's time.
    BOOST_TEST(opts.cooldown->blocked_until(std::string_view("s"), t0 + 1s).has_value());
    BOOST_TEST((slow_down == resilience::condition::transient));
}

BOOST_FIXTURE_TEST_CASE(pushback_is_capped, fixture) {
    // At max_delay by default ...
    script = {pushback(resilience::max_pushback), pushback(std::chrono::hours(1)), ok()};
    auto r = run();
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(call_times() == secs({0, 30, 60}), boost::test_tools::per_element());
    BOOST_TEST(lines.at(1) == "Rate limited. Respecting Retry-After header: 30s");
    // ... and at max_pushback when it is set.
    calls.clear();
    t0 = clk.now();
    opts.policy.max_pushback = 90s;
    r = run();
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(call_times() == secs({0, 90, 180}), boost::test_tools::per_element());
}

BOOST_FIXTURE_TEST_CASE(deadline_stops_before_a_backoff_past_it, fixture) {
    script = {fail(resilience::http::errc::server_error, "down")};
    call_options call;
    call.deadline = t0 + 10s;
    auto r = run(std::move(call));
    BOOST_TEST_REQUIRE(!r.has_value());
    // 0, 1, 3, 7; the next backoff (8 s) would end at 15 s > 10 s: not slept.
    BOOST_TEST(call_times() == secs({0, 1, 3, 7}), boost::test_tools::per_element());
    BOOST_TEST((elapsed() == duration(7s)));
    BOOST_TEST((r.error().diag.gave_up == give_up_reason::deadline));
    // One code for the deadline wherever it ends the call; the last error stays in the message.
    BOOST_TEST(r.error().code == errc::deadline_exceeded);
    BOOST_TEST(r.error().what().find("(last error: down)") != std::string::npos);
    BOOST_TEST(r.error().diag.attempts == 4);
    BOOST_TEST(lines.back() == "Operation failed after 4 attempts: down");
    for (auto& c : calls) BOOST_TEST((c.deadline == t0 + 10s));
}

BOOST_FIXTURE_TEST_CASE(deadline_cuts_an_attempt_that_never_completes, fixture) {
    script = {hang()};
    call_options call;
    call.deadline = t0 + 5s;
    auto r = run(std::move(call));
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().code == errc::deadline_exceeded);
    BOOST_TEST(calls.size() == 1u);
    BOOST_TEST((elapsed() == duration(5s)));
    BOOST_TEST((r.error().diag.gave_up == give_up_reason::deadline));
    BOOST_TEST(clk.sleepers() == 0u);  // the attempt was cancelled, not leaked
    BOOST_TEST(lines.back() == "Operation failed after 1 attempts: deadline exceeded during attempt 1");
}

BOOST_FIXTURE_TEST_CASE(deadline_already_passed, fixture) {
    script = {ok()};
    call_options call;
    call.deadline = t0;
    auto r = run(std::move(call));
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().code == errc::deadline_exceeded);
    BOOST_TEST(calls.empty());
    BOOST_TEST(r.error().diag.attempts == 0);
}

BOOST_FIXTURE_TEST_CASE(attempt_timeout_then_retry, fixture) {
    opts.policy.attempt_timeout = 2000ms;
    script = {hang(), hang(), ok(500ms)};
    auto r = run();
    BOOST_TEST_REQUIRE(r.has_value());
    // 0..2 timed out, 1 s backoff; 3..5 timed out, 2 s backoff; 7 succeeds at 7.5.
    BOOST_TEST(call_times() == secs({0, 3, 7}), boost::test_tools::per_element());
    BOOST_TEST((elapsed() == duration(7500ms)));
    BOOST_TEST((calls[0].deadline == t0 + 2s));
    BOOST_TEST((calls[1].deadline == t0 + 5s));
    BOOST_TEST(lines.at(0) == "Retry 1/5 after error (RETRYABLE_NETWORK): attempt timed out after 2s");
    BOOST_TEST(clk.sleepers() == 0u);
}

BOOST_FIXTURE_TEST_CASE(attempt_timeout_shrinks_to_the_deadline, fixture) {
    opts.policy.attempt_timeout = 10s;
    script = {fail(resilience::http::errc::server_error, "down"), hang()};
    call_options call;
    call.deadline = t0 + 4s;
    auto r = run(std::move(call));
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(call_times() == secs({0, 1}), boost::test_tools::per_element());
    BOOST_TEST((calls[0].deadline == t0 + 4s));
    BOOST_TEST((calls[1].deadline == t0 + 4s));
    BOOST_TEST(r.error().code == errc::deadline_exceeded);
    BOOST_TEST((elapsed() == duration(4s)));
    BOOST_TEST((r.error().diag.gave_up == give_up_reason::deadline));
}

BOOST_FIXTURE_TEST_CASE(cancellation_during_backoff, fixture) {
    script = {fail(resilience::http::errc::server_error, "down"), ok()};
    resilience::pipeline p(opts);
    asio::cancellation_signal sig;
    std::optional<result<int>> out;
    auto f = factory();
    asio::co_spawn(
        ctx, [&]() -> asio::awaitable<void> { out.emplace(co_await p.run(f)); },
        asio::bind_cancellation_slot(sig.slot(), test::rethrow{}));
    // Run until the first attempt failed and the loop sleeps in its 1 s backoff.
    BOOST_TEST_REQUIRE(resilience::testing::run_virtual(ctx, clk, [&] { return clk.sleepers() == 1; }));
    BOOST_TEST(calls.size() == 1u);
    BOOST_TEST((clk.next_wakeup() == t0 + 1s));
    sig.emit(asio::cancellation_type::terminal);
    BOOST_TEST_REQUIRE(resilience::testing::run_virtual(ctx, clk, [&] { return out.has_value(); }));
    BOOST_TEST_REQUIRE(!out->has_value());
    BOOST_TEST((out->error().code == asio::error::operation_aborted));
    BOOST_TEST((out->error().diag.gave_up == give_up_reason::cancelled));
    BOOST_TEST(calls.size() == 1u);              // no further call
    BOOST_TEST((elapsed() == duration::zero())); // returned at once, not at the backoff's end
    BOOST_TEST(clk.sleepers() == 0u);
    // Nothing more happens later either.
    resilience::testing::run_virtual(ctx, clk);
    BOOST_TEST(calls.size() == 1u);
    BOOST_TEST((events.back().type == event_type::gave_up));
    BOOST_TEST((events.back().reason == give_up_reason::cancelled));
}

BOOST_FIXTURE_TEST_CASE(cancellation_during_an_attempt, fixture) {
    for (bool with_deadline : {false, true}) {
        BOOST_TEST_CONTEXT("with deadline: " << with_deadline) {
            calls.clear();
            lines.clear();
            t0 = clk.now();
            script = {hang(), ok()};
            resilience::pipeline p(opts);
            asio::cancellation_signal sig;
            std::optional<result<int>> out;
            auto f = factory();
            call_options call;
            if (with_deadline) call.deadline = t0 + 1h;
            asio::co_spawn(
                ctx, [&]() -> asio::awaitable<void> { out.emplace(co_await p.run(f, std::move(call))); },
                asio::bind_cancellation_slot(sig.slot(), test::rethrow{}));
            BOOST_TEST_REQUIRE(resilience::testing::run_virtual(ctx, clk, [&] { return calls.size() == 1; }));
            ctx.poll();
            sig.emit(asio::cancellation_type::terminal);
            BOOST_TEST_REQUIRE(resilience::testing::run_virtual(ctx, clk, [&] { return out.has_value(); }));
            BOOST_TEST_REQUIRE(!out->has_value());
            BOOST_TEST((out->error().code == asio::error::operation_aborted));
            BOOST_TEST(calls.size() == 1u);
            BOOST_TEST((elapsed() == duration::zero()));
            BOOST_TEST(lines.empty());  // cancellation is never a "Retry" line
            BOOST_TEST(clk.sleepers() == 0u);
        }
    }
}

BOOST_FIXTURE_TEST_CASE(aborted_error_is_never_retried, fixture) {
    script = {fail(asio::error::operation_aborted), ok()};
    auto r = run();
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(calls.size() == 1u);
    BOOST_TEST((r.error().code == asio::error::operation_aborted));
}

namespace {
asio::awaitable<int> throwing_op(int& n) {
    if (n++ < 2) throw boost::system::system_error(asio::error::connection_refused);
    co_return 7;
}
asio::awaitable<int> throwing_resilience_error(int& n) {
    if (n++ < 1) throw resilience::error(failure(make_error_code(resilience::http::errc::server_error), "boom"));
    co_return 8;
}
asio::awaitable<result<void>> void_op(int& n) {
    if (n++ < 1) co_return failure(make_error_code(resilience::http::errc::server_error));
    co_return result<void>();
}
asio::awaitable<void> plain_void_op(int& n) {
    if (n++ < 1) throw boost::system::system_error(asio::error::eof);
    co_return;
}
}  // namespace

BOOST_FIXTURE_TEST_CASE(factories_of_other_shapes, fixture) {
    resilience::pipeline p(opts);
    int n = 0;
    auto a = run(p, [&] { return throwing_op(n); });
    static_assert(std::is_same_v<decltype(a), result<int>>);
    BOOST_TEST_REQUIRE(a.has_value());
    BOOST_TEST(*a == 7);
    BOOST_TEST(n == 3);
    BOOST_TEST(lines.at(0) == "Retry 1/5 after error (RETRYABLE_NETWORK): " +
                                  error_code(asio::error::connection_refused).message());

    n = 0;
    auto b = run(p, [&] { return throwing_resilience_error(n); });
    BOOST_TEST_REQUIRE(b.has_value());
    BOOST_TEST(*b == 8);

    n = 0;
    auto c = run(p, [&] { return void_op(n); });
    static_assert(std::is_same_v<decltype(c), result<void>>);
    BOOST_TEST(c.has_value());
    BOOST_TEST(n == 2);

    n = 0;
    auto d = run(p, [&] { return plain_void_op(n); });
    static_assert(std::is_same_v<decltype(d), result<void>>);
    BOOST_TEST(d.has_value());
    BOOST_TEST(n == 2);

    // Always throwing: the failure carries the thrown code.
    n = -100;
    opts.policy.max_retries = 1;
    resilience::pipeline p2(opts);
    auto e = run(p2, [&] { return throwing_op(n); });
    BOOST_TEST_REQUIRE(!e.has_value());
    BOOST_TEST((e.error().code == asio::error::connection_refused));
    BOOST_TEST(e.error().diag.attempts == 2);
}

BOOST_FIXTURE_TEST_CASE(events_carry_kind_attempt_delay_elapsed, fixture) {
    opts.policy.max_retries = 2;
    script = {fail(resilience::http::errc::server_error, "down"), pushback(5s), ok(250ms)};
    call_options call;
    call.subject = "files/abc";
    auto r = run(std::move(call));
    BOOST_TEST_REQUIRE(r.has_value());
    using T = event_type;
    const std::vector<T> types = {T::attempt_started, T::attempt_failed, T::retry_scheduled,
                                  T::attempt_started, T::attempt_failed, T::retry_scheduled,
                                  T::attempt_started, T::attempt_succeeded};
    BOOST_TEST_REQUIRE(events.size() == types.size());
    for (std::size_t i = 0; i < types.size(); ++i) BOOST_TEST((events[i].type == types[i]));
    for (auto& e : events) BOOST_TEST(e.subject == "files/abc");
    BOOST_TEST(events[1].attempt == 0);
    BOOST_TEST((events[1].kind == error_kind::retryable_server));
    BOOST_TEST(events[1].message == "down");
    BOOST_TEST(events[2].attempt == 1);
    BOOST_TEST((events[2].delay == duration(1s)));
    BOOST_TEST(!events[2].pushback);
    BOOST_TEST((events[3].elapsed == duration(1s)));
    BOOST_TEST(events[3].attempt == 1);
    BOOST_TEST((events[4].kind == error_kind::retryable_rate_limit));
    BOOST_TEST((events[4].code == resilience::http::errc::too_many_requests));
    BOOST_TEST(events[5].attempt == 2);
    BOOST_TEST((events[5].delay == duration(5s)));
    BOOST_TEST(events[5].pushback);
    BOOST_TEST((events[6].elapsed == duration(6s)));
    BOOST_TEST(events[7].attempt == 2);
    BOOST_TEST((events[7].elapsed == duration(6250ms)));

    // Giving up: the gave_up event.
    events.clear();
    t0 = clk.now();
    script = {fail(resilience::http::errc::server_error, "down")};
    r = run();
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST((events.back().type == T::gave_up));
    BOOST_TEST((events.back().reason == give_up_reason::max_retries));
    BOOST_TEST(events.back().attempt == 2);
    BOOST_TEST((events.back().kind == error_kind::retryable_server));
    BOOST_TEST((events.back().elapsed == duration(3s)));
}

// A handler that wants no attempt_started / attempt_succeeded (the quick
// path stays on): it hears the rest, as before.
BOOST_FIXTURE_TEST_CASE(event_types_leave_out_types, fixture) {
    using T = event_type;
    opts.event_types = resilience::all_events &
                       ~(resilience::event_bit(T::attempt_started) | resilience::event_bit(T::attempt_succeeded));
    script = {ok()};
    auto r = run();
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(events.empty());

    script = {fail(resilience::http::errc::server_error, "down"), ok(250ms)};
    calls.clear();
    t0 = clk.now();
    r = run();
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(call_times() == secs({0, 1}), boost::test_tools::per_element());
    BOOST_TEST_REQUIRE(events.size() == 2u);
    BOOST_TEST((events[0].type == T::attempt_failed));
    BOOST_TEST(events[0].attempt == 0);
    BOOST_TEST(events[0].message == "down");
    BOOST_TEST((events[1].type == T::retry_scheduled));
    BOOST_TEST((events[1].delay == duration(1s)));

    // A call's own handler hears every type.
    events.clear();
    std::vector<T> mine;
    call_options call;
    call.on_event = [&](const resilience::event& e) { mine.push_back(e.type); };
    script = {ok()};
    r = run(std::move(call));
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(events.empty());
    const std::vector<T> both = {T::attempt_started, T::attempt_succeeded};
    BOOST_TEST(mine == both, boost::test_tools::per_element());
}

namespace {
// A self-timed attempt (as the Gemini client's one HTTP request): it ends
// itself at its deadline with errc::attempt_timeout.
struct self_timed_op {
    fixture& fx;
    asio::awaitable<result<int>> operator()(const attempt_context& a) {
        fx.calls.push_back({fx.clk.now() - fx.t0, a.attempt, a.deadline});
        const step s = fx.script.at(std::min<std::size_t>(a.attempt, fx.script.size() - 1));
        if (s.hang) {
            if (error_code ec = co_await fx.clk.sleep_until(a.deadline)) co_return failure(ec);
            co_return failure(make_error_code(errc::attempt_timeout), "request deadline passed");
        }
        if (s.takes > duration::zero()) {
            if (error_code ec = co_await fx.clk.sleep_until(fx.clk.now() + s.takes)) co_return failure(ec);
        }
        if (s.throws) throw std::length_error("field size exceeds limit");
        if (s.ok) co_return 42;
        co_return s.f;
    }
};
}  // namespace

// Attempt 0 of a self-timed factory with an attempt timeout (the quick path
// when no handler wants its events): the same deadlines, texts, elapsed
// times and exception handling as through the state machine.
BOOST_FIXTURE_TEST_CASE(self_timed_attempts_with_a_timeout, fixture) {
    using resilience::detail::self_timed;
    for (bool quick : {false, true}) {
        BOOST_TEST_CONTEXT("quick path " << quick) {
            if (quick) opts.on_event = nullptr;
            opts.policy.attempt_timeout = 2000ms;
            opts.policy.max_retries = 5;
            script = {hang(), hang(), ok(500ms)};
            calls.clear();
            lines.clear();
            t0 = clk.now();
            resilience::pipeline p(opts);
            self_timed<self_timed_op> op{self_timed_op{*this}};
            auto r = run(p, op);
            BOOST_TEST_REQUIRE(r.has_value());
            BOOST_TEST(call_times() == secs({0, 3, 7}), boost::test_tools::per_element());
            BOOST_TEST((calls[0].deadline == t0 + 2s));
            BOOST_TEST((calls[1].deadline == t0 + 5s));
            BOOST_TEST(lines.at(0) == "Retry 1/5 after error (RETRYABLE_NETWORK): attempt timed out after 2s");

            // Not retried: the time counts from the start of attempt 0.
            opts.policy.max_retries = 0;
            script = {hang()};
            t0 = clk.now();
            resilience::pipeline p0(opts);
            auto f = run(p0, op);
            BOOST_TEST_REQUIRE(!f.has_value());
            BOOST_TEST((f.error().code == errc::attempt_timeout));
            BOOST_TEST(f.error().what() == "attempt timed out after 2s");
            BOOST_TEST((f.error().diag.elapsed == duration(2s)));
            BOOST_TEST(f.error().diag.attempts == 1);

            // An exception ends the attempt as its failure.
            step t;
            t.throws = true;
            script = {t};
            auto e = run(p0, op);
            BOOST_TEST_REQUIRE(!e.has_value());
            BOOST_TEST((e.error().code == errc::operation_threw));
            BOOST_TEST(clk.sleepers() == 0u);
        }
    }
}

BOOST_FIXTURE_TEST_CASE(per_call_handlers_and_policy, fixture) {
    std::vector<std::string> mine;
    resilience::retry_policy pol;
    pol.max_retries = 1;
    pol.backoff.jitter = resilience::jitter_mode::none;
    pol.backoff.initial_delay = 200ms;
    call_options call;
    call.on_status = [&](std::string_view s) { mine.emplace_back(s); };
    call.policy = &pol;
    script = {fail(resilience::http::errc::server_error, "down")};
    auto r = run(std::move(call));
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(lines.empty());
    const std::vector<std::string> expected = {
        "Retry 1/1 after error (RETRYABLE_SERVER): down",
        "Waiting 0.2s before retry (circuit breaker: CLOSED)...",
        "Operation failed after 2 attempts: down",
    };
    BOOST_TEST(mine == expected, boost::test_tools::per_element());
}

BOOST_FIXTURE_TEST_CASE(one_shot_retry_function, fixture) {
    script = {fail(resilience::http::errc::server_error, "down"), ok()};
    std::optional<result<int>> out;
    auto f = factory();
    auto o = opts;
    asio::co_spawn(
        ctx, [&]() -> asio::awaitable<void> { out.emplace(co_await resilience::retry(f, o)); }, test::rethrow{});
    BOOST_TEST_REQUIRE(resilience::testing::run_virtual(ctx, clk, [&] { return out.has_value(); }));
    BOOST_TEST_REQUIRE(out->has_value());
    BOOST_TEST(call_times() == secs({0, 1}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(status_text_formatting) {
    using resilience::format_seconds;
    BOOST_TEST(format_seconds(0s) == "0s");
    BOOST_TEST(format_seconds(2s) == "2s");
    BOOST_TEST(format_seconds(500ms) == "0.5s");
    BOOST_TEST(format_seconds(12340ms) == "12.3s");
    BOOST_TEST(format_seconds(12350ms) == "12.4s");
    BOOST_TEST(format_seconds(1999ms) == "2s");
    BOOST_TEST(format_seconds(50ms) == "0.05s");
    BOOST_TEST(format_seconds(994ms) == "0.99s");
    BOOST_TEST(format_seconds(996ms) == "1s");
    BOOST_TEST(format_seconds(120ms) == "0.12s");
    BOOST_TEST(format_seconds(1050ms) == "1.1s");
    BOOST_TEST(format_seconds(2ms) == "0s");
    BOOST_TEST(format_seconds(-5s) == "0s");
    BOOST_TEST(!format_seconds(resilience::max_pushback).empty());
    BOOST_TEST(!format_seconds(duration::max()).empty());
    BOOST_TEST(resilience::status::retry(1, 5, error_kind::retryable_network, "reset") ==
               "Retry 1/5 after error (RETRYABLE_NETWORK): reset");
    BOOST_TEST(resilience::status::waiting(4s, resilience::breaker_state::half_open) ==
               "Waiting 4s before retry (circuit breaker: HALF_OPEN)...");
    BOOST_TEST(resilience::status::rate_limited(15s) == "Rate limited. Respecting Retry-After header: 15s");
    BOOST_TEST(resilience::status::failed(6, "x") == "Operation failed after 6 attempts: x");
}

BOOST_AUTO_TEST_SUITE_END()
