// Attempts as spans: every attempt_started is followed by exactly one end
// (attempt_succeeded or attempt_failed) with the same call_id and attempt,
// the attempt's own duration and its outcome; call ids tell concurrent calls
// apart; the start is emitted right before the operation is called, so a
// handler can make its span current for the operation. Virtual time.
#include <resilience/http/error.hpp>
#include <resilience/retry.hpp>
#include <resilience/testing/manual_clock.hpp>

#include "test_common.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/test/unit_test.hpp>

#include "core_printers.hpp"

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using resilience::attempt_context;
using resilience::duration;
using resilience::errc;
using resilience::error_code;
using resilience::error_kind;
using resilience::event;
using resilience::event_type;
using resilience::failure;
using resilience::result;
using resilience::time_point;
using resilience::testing::manual_clock;

namespace {

// A toy tracer: spans keyed by (call_id, attempt), opened at attempt_started
// and closed at the attempt's end, as a user's handler would do.
struct span {
    std::uint64_t call_id = 0;
    int attempt = 0;
    time_point start{}, end{};
    duration reported{};  // event::attempt_elapsed
    bool closed = false;
    bool ok = false;
    error_kind kind{};
    error_code code;
    std::string message;
};

struct tracer {
    std::map<std::pair<std::uint64_t, int>, span> spans;
    int unmatched_ends = 0, double_starts = 0, double_ends = 0;
    std::optional<std::pair<std::uint64_t, int>> current;  // the span "current" for the operation

    void on_event(const event& e) {
        const auto key = std::make_pair(e.call_id, e.attempt);
        switch (e.type) {
        case event_type::attempt_started: {
            auto [it, fresh] = spans.try_emplace(key);
            if (!fresh) ++double_starts;
            it->second.call_id = e.call_id;
            it->second.attempt = e.attempt;
            it->second.start = e.at;
            current = key;
            break;
        }
        case event_type::attempt_succeeded:
        case event_type::attempt_failed: {
            auto it = spans.find(key);
            if (it == spans.end()) {
                ++unmatched_ends;
                break;
            }
            span& s = it->second;
            if (s.closed) ++double_ends;
            s.closed = true;
            s.end = e.at;
            s.reported = e.attempt_elapsed;
            s.ok = e.type == event_type::attempt_succeeded;
            s.kind = e.kind;
            s.code = e.code;
            s.message = std::string(e.message);
            current.reset();
            break;
        }
        default: break;
        }
    }
};

struct fixture {
    manual_clock clk;
    asio::io_context ctx;
    time_point t0 = clk.now();
    tracer tr;
    resilience::retry_options opts;

    fixture() {
        opts.time = &clk;
        opts.seed = 7;
        opts.policy.backoff.jitter = resilience::jitter_mode::none;
        opts.on_event = [this](const event& e) { tr.on_event(e); };
    }

    asio::awaitable<void> sleep(duration d) {
        if (error_code ec = co_await clk.sleep_until(clk.now() + d)) throw boost::system::system_error(ec);
    }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(core_tracing)

// Two concurrent calls on one pipeline: A fails once (503 after 2 s) then
// succeeds (after 1 s); B succeeds after 3 s. Every span is closed once, with
// the attempt's own virtual duration, and the two calls have distinct ids.
BOOST_FIXTURE_TEST_CASE(concurrent_calls_pair_starts_and_ends, fixture) {
    resilience::pipeline p(opts);
    // What the operation saw as the current span when it was called.
    std::vector<std::pair<std::uint64_t, int>> seen_current;
    auto op_a = [&](const attempt_context& a) -> asio::awaitable<result<int>> {
        seen_current.push_back(tr.current.value());
        co_await sleep(a.attempt == 0 ? 2s : 1s);
        if (a.attempt == 0) co_return failure(make_error_code(resilience::http::errc::server_error), "HTTP 503: overloaded");
        co_return 1;
    };
    auto op_b = [&](const attempt_context&) -> asio::awaitable<result<int>> {
        seen_current.push_back(tr.current.value());
        co_await sleep(3s);
        co_return 2;
    };
    std::optional<result<int>> ra, rb;
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> { ra.emplace(co_await p.run(op_a)); }, test::rethrow{});
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> { rb.emplace(co_await p.run(op_b)); }, test::rethrow{});
    BOOST_TEST_REQUIRE(resilience::testing::run_virtual(ctx, clk, [&] { return ra && rb; }));
    BOOST_TEST_REQUIRE(ra->has_value());
    BOOST_TEST_REQUIRE(rb->has_value());

    BOOST_TEST(tr.unmatched_ends == 0);
    BOOST_TEST(tr.double_starts == 0);
    BOOST_TEST(tr.double_ends == 0);
    BOOST_TEST_REQUIRE(tr.spans.size() == 3u);
    std::set<std::uint64_t> ids;
    for (const auto& [k, s] : tr.spans) {
        BOOST_TEST(s.closed);
        BOOST_TEST(s.call_id != 0u);
        BOOST_TEST((s.end - s.start == s.reported));
        ids.insert(s.call_id);
    }
    BOOST_TEST(ids.size() == 2u);  // A's two attempts share one id, B has another

    // Find A's spans: the call with two attempts.
    std::uint64_t a_id = 0;
    for (const auto& [k, s] : tr.spans)
        if (s.attempt == 1) a_id = s.call_id;
    BOOST_TEST_REQUIRE(a_id != 0u);
    const span& a0 = tr.spans.at({a_id, 0});
    const span& a1 = tr.spans.at({a_id, 1});
    BOOST_TEST(!a0.ok);
    BOOST_TEST(a0.kind == error_kind::retryable_server);
    BOOST_TEST((a0.code == resilience::http::errc::server_error));
    BOOST_TEST(a0.message == "HTTP 503: overloaded");
    BOOST_TEST((a0.reported == duration(2s)));
    BOOST_TEST((a0.start == t0));
    BOOST_TEST(a1.ok);
    BOOST_TEST((a1.reported == duration(1s)));
    BOOST_TEST((a1.start == t0 + 2s + 1s));  // after the 1 s backoff (jitter off)
    std::uint64_t b_id = *ids.begin() == a_id ? *ids.rbegin() : *ids.begin();
    const span& b0 = tr.spans.at({b_id, 0});
    BOOST_TEST(b0.ok);
    BOOST_TEST((b0.reported == duration(3s)));

    // Each operation was called while its own span was current.
    BOOST_TEST_REQUIRE(seen_current.size() == 3u);
    std::multiset<std::pair<std::uint64_t, int>> expected{{a_id, 0}, {a_id, 1}, {b_id, 0}};
    BOOST_TEST((std::multiset<std::pair<std::uint64_t, int>>(seen_current.begin(), seen_current.end()) == expected));
}

// An attempt cut by its timeout ends its span as failed (attempt_timeout,
// RETRYABLE_NETWORK) after exactly the timeout; a cancelled attempt ends its
// span as NON_RETRYABLE_ABORTED at the moment of cancellation.
BOOST_FIXTURE_TEST_CASE(timeout_and_cancellation_end_the_span, fixture) {
    opts.policy.attempt_timeout = 5s;
    opts.policy.max_retries = 1;
    resilience::pipeline p(opts);
    auto hang = [&](const attempt_context&) -> asio::awaitable<result<int>> {
        error_code ec = co_await clk.sleep_until(time_point::max());
        co_return failure(ec ? ec : make_error_code(asio::error::operation_aborted));
    };
    asio::cancellation_signal sig;
    std::optional<result<int>> r;
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> { r.emplace(co_await p.run(hang)); },
                   asio::bind_cancellation_slot(sig.slot(), test::rethrow{}));
    // Attempt 0 times out at 5 s; the 1 s backoff; attempt 1 starts at 6 s and
    // is cancelled at 8 s.
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
        co_await clk.sleep_until(t0 + 8s);
        sig.emit(asio::cancellation_type::terminal);
    }, test::rethrow{});
    BOOST_TEST_REQUIRE(resilience::testing::run_virtual(ctx, clk, [&] { return r.has_value(); }));
    BOOST_TEST_REQUIRE(!r->has_value());

    BOOST_TEST(tr.unmatched_ends == 0);
    BOOST_TEST(tr.double_ends == 0);
    BOOST_TEST_REQUIRE(tr.spans.size() == 2u);
    const std::uint64_t id = tr.spans.begin()->second.call_id;
    const span& s0 = tr.spans.at({id, 0});
    const span& s1 = tr.spans.at({id, 1});
    BOOST_TEST(s0.closed);
    BOOST_TEST((s0.code == errc::attempt_timeout));
    BOOST_TEST(s0.kind == error_kind::retryable_network);
    BOOST_TEST((s0.reported == duration(5s)));
    BOOST_TEST(s1.closed);
    BOOST_TEST(s1.kind == error_kind::non_retryable_aborted);
    BOOST_TEST((s1.start == t0 + 6s));
    BOOST_TEST((s1.end == t0 + 8s));
    BOOST_TEST((s1.reported == duration(2s)));
}

// Without an event handler nothing is drawn; each call with one gets a new id.
BOOST_FIXTURE_TEST_CASE(call_ids_are_distinct_across_calls, fixture) {
    resilience::pipeline p(opts);
    auto ok = [](const attempt_context&) -> asio::awaitable<result<int>> { co_return 3; };
    for (int i = 0; i < 3; ++i) {
        std::optional<result<int>> r;
        asio::co_spawn(ctx, [&]() -> asio::awaitable<void> { r.emplace(co_await p.run(ok)); }, test::rethrow{});
        BOOST_TEST_REQUIRE(resilience::testing::run_virtual(ctx, clk, [&] { return r.has_value(); }));
    }
    BOOST_TEST_REQUIRE(tr.spans.size() == 3u);
    std::set<std::uint64_t> ids;
    for (const auto& [k, s] : tr.spans) {
        ids.insert(s.call_id);
        BOOST_TEST(s.ok);
        BOOST_TEST((s.reported == duration::zero()));
    }
    BOOST_TEST(ids.size() == 3u);
}

BOOST_AUTO_TEST_SUITE_END()
