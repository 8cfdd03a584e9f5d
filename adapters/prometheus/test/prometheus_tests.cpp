// resilience::prometheus::metrics: events in, Prometheus text exposition out
// (prometheus-cpp's TextSerializer), both from hand-made events and from a
// pipeline run in virtual time with a shared breaker and budget.
#define BOOST_TEST_MODULE prometheus_tests
#include <boost/test/unit_test.hpp>

#include <resilience/prometheus/metrics.hpp>
#include <resilience/retry.hpp>
#include <resilience/testing/manual_clock.hpp>

#include <prometheus/text_serializer.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>

namespace asio = boost::asio;
namespace rp = resilience::prometheus;
using namespace std::chrono_literals;
using resilience::error_kind;
using resilience::event;
using resilience::event_type;

namespace {

// An upstream failure of this test's own category, retried because the
// category maps it to resilience::condition::transient (the adapter links the
// core only: no HTTP codes here).
class upstream_category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "upstream"; }
    std::string message(int) const override { return "upstream unavailable"; }
    boost::system::error_condition default_error_condition(int) const noexcept override {
        return resilience::condition::transient;
    }
};

resilience::error_code upstream_unavailable() {
    static const upstream_category c;
    return {1, c};
}

std::string text(const ::prometheus::Registry& r) { return ::prometheus::TextSerializer().Serialize(r.Collect()); }

// The value of the sample `series` (name and labels exactly as exposed:
// prometheus-cpp writes the constant labels first, then the series' own in
// name order, then `le`), or NaN.
double value(const std::string& text, const std::string& series) {
    const std::string key = "\n" + series + " ";
    auto pos = ("\n" + text).find(key);
    if (pos == std::string::npos) return std::nan("");
    return std::strtod(text.c_str() + pos + key.size() - 1, nullptr);
}

event ev(event_type t) {
    event e;
    e.type = t;
    return e;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(prometheus_metrics)

BOOST_AUTO_TEST_CASE(events_become_series) {
    ::prometheus::Registry reg;
    rp::metrics_options o;
    o.prefix = "gemini";
    o.labels = {{"service", "files"}};
    rp::metrics m(reg, o);

    // Attempt 0 fails with a 503 after 0.2 s, a 1.5 s backoff; attempt 1 gets
    // a 429 with a 10 s pushback; attempt 2 succeeds after 0.05 s, the call
    // having taken 12 s.
    event e = ev(event_type::attempt_started);
    m.record(e);
    e = ev(event_type::attempt_failed);
    e.kind = error_kind::retryable_server;
    e.attempt_elapsed = 200ms;
    m.record(e);
    e = ev(event_type::retry_scheduled);
    e.kind = error_kind::retryable_server;
    e.delay = 1500ms;
    m.record(e);
    m.record(ev(event_type::attempt_started));
    e = ev(event_type::attempt_failed);
    e.kind = error_kind::retryable_rate_limit;
    m.record(e);
    e = ev(event_type::retry_scheduled);
    e.kind = error_kind::retryable_rate_limit;
    e.delay = 10s;
    e.pushback = true;
    m.record(e);
    m.record(ev(event_type::attempt_started));
    e = ev(event_type::attempt_succeeded);
    e.attempt_elapsed = 50ms;
    e.elapsed = 12s;
    m.record(e);
    // Another call: held 3 s by the cooldown, then waits for the breaker, which
    // opens; it gives up at its deadline after 40 s.
    e = ev(event_type::cooldown_wait);
    e.delay = 3s;
    m.record(e);
    e = ev(event_type::rate_wait);
    e.delay = 250ms;
    e.rate = 4;
    m.record(e);
    e = ev(event_type::breaker_transition);
    e.from = resilience::breaker_state::closed;
    e.to = resilience::breaker_state::open;
    m.record(e);
    e = ev(event_type::breaker_wait);
    e.delay = 60s;
    m.record(e);
    e = ev(event_type::gave_up);
    e.reason = resilience::give_up_reason::deadline;
    e.elapsed = 40s;
    m.record(e);

    const std::string t = text(reg);
    BOOST_TEST_MESSAGE(t);
    BOOST_TEST(t.find("# TYPE gemini_attempts_total counter") != std::string::npos);
    BOOST_TEST(t.find("# TYPE gemini_request_duration_seconds histogram") != std::string::npos);
    BOOST_TEST(value(t, "gemini_attempts_total{service=\"files\"}") == 3);
    BOOST_TEST(value(t, "gemini_attempt_failures_total{service=\"files\",kind=\"RETRYABLE_SERVER\"}") == 1);
    BOOST_TEST(value(t, "gemini_attempt_failures_total{service=\"files\",kind=\"RETRYABLE_RATE_LIMIT\"}") == 1);
    BOOST_TEST(value(t, "gemini_attempt_failures_total{service=\"files\",kind=\"NON_RETRYABLE_AUTH\"}") == 0);
    BOOST_TEST(value(t, "gemini_retries_total{service=\"files\",kind=\"RETRYABLE_SERVER\"}") == 1);
    BOOST_TEST(value(t, "gemini_retries_total{service=\"files\",kind=\"RETRYABLE_RATE_LIMIT\"}") == 1);
    BOOST_TEST(value(t, "gemini_retry_delay_seconds_total{service=\"files\",source=\"backoff\"}") == 1.5);
    BOOST_TEST(value(t, "gemini_retry_delay_seconds_total{service=\"files\",source=\"server\"}") == 10);
    BOOST_TEST(value(t, "gemini_gave_up_total{service=\"files\",reason=\"deadline\"}") == 1);
    BOOST_TEST(value(t, "gemini_gave_up_total{service=\"files\",reason=\"budget\"}") == 0);
    BOOST_TEST(value(t, "gemini_cooldown_waits_total{service=\"files\"}") == 1);
    BOOST_TEST(value(t, "gemini_cooldown_wait_seconds_total{service=\"files\"}") == 3);
    BOOST_TEST(value(t, "gemini_rate_waits_total{service=\"files\"}") == 1);
    BOOST_TEST(value(t, "gemini_rate_wait_seconds_total{service=\"files\"}") == 0.25);
    BOOST_TEST(value(t, "gemini_breaker_waits_total{service=\"files\"}") == 1);
    BOOST_TEST(value(t, "gemini_breaker_wait_seconds_total{service=\"files\"}") == 60);
    BOOST_TEST(value(t, "gemini_breaker_transitions_total{service=\"files\",from=\"closed\",to=\"open\"}") == 1);
    BOOST_TEST(value(t, "gemini_breaker_state{service=\"files\",state=\"open\"}") == 1);
    BOOST_TEST(value(t, "gemini_breaker_state{service=\"files\",state=\"closed\"}") == 0);
    // Histograms: the successful call (12 s) and the failed one (40 s).
    BOOST_TEST(value(t, "gemini_request_duration_seconds_count{service=\"files\",outcome=\"success\"}") == 1);
    BOOST_TEST(value(t, "gemini_request_duration_seconds_sum{service=\"files\",outcome=\"success\"}") == 12);
    BOOST_TEST(value(t, "gemini_request_duration_seconds_bucket{service=\"files\",outcome=\"success\",le=\"10\"}") == 0);
    BOOST_TEST(value(t, "gemini_request_duration_seconds_bucket{service=\"files\",outcome=\"success\",le=\"30\"}") == 1);
    BOOST_TEST(value(t, "gemini_request_duration_seconds_count{service=\"files\",outcome=\"failure\"}") == 1);
    BOOST_TEST(value(t, "gemini_attempt_duration_seconds_count{service=\"files\",outcome=\"failure\"}") == 2);
    BOOST_TEST(value(t, "gemini_attempt_duration_seconds_bucket{service=\"files\",outcome=\"failure\",le=\"0.25\"}") == 2);
    BOOST_TEST(value(t, "gemini_attempt_duration_seconds_bucket{service=\"files\",outcome=\"failure\",le=\"0.1\"}") == 1);
    BOOST_TEST(value(t, "gemini_attempt_duration_seconds_sum{service=\"files\",outcome=\"success\"}") == 0.05);
    // No budget watched: no budget series.
    BOOST_TEST(t.find("gemini_retry_budget_tokens") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(bad_options_are_refused_clearly) {
    ::prometheus::Registry reg;
    auto refused = [&](rp::metrics_options o, const std::string& expect) {
        try {
            rp::metrics m(reg, std::move(o));
        } catch (const resilience::error& e) {
            BOOST_TEST((e.code() == resilience::errc::invalid_argument));
            BOOST_TEST(std::string(e.what()).find(expect) != std::string::npos, e.what());
            return;
        }
        BOOST_TEST(false, "accepted: " + expect);
    };
    rp::metrics_options o;
    o.prefix = "9bad";
    refused(o, "prefix \"9bad\"");
    o = rp::metrics_options();
    o.labels = {{"kind", "x"}};
    refused(o, "clashes");
    o = rp::metrics_options();
    o.labels = {{"bad-name", "x"}};
    refused(o, "bad-name");
    o = rp::metrics_options();
    o.request_buckets = {1, 0.5};
    refused(o, "strictly increasing");
    BOOST_TEST(reg.Collect().empty());  // nothing half-registered
}

// A real pipeline in virtual time, sharing a breaker (threshold 2) and a
// budget: a call that fails twice with 503 opens the breaker and ends on
// max_retries 1; the gauges follow.
BOOST_AUTO_TEST_CASE(fed_by_a_pipeline) {
    resilience::testing::manual_clock clk;
    asio::io_context ctx;
    ::prometheus::Registry reg;
    rp::metrics m(reg);

    resilience::breaker_options bo;
    bo.config.failure_threshold = 2;
    bo.time = &clk;
    auto breaker = std::make_shared<resilience::circuit_breaker>(bo);
    auto budget = std::make_shared<resilience::retry_budget>();
    m.watch(*breaker);
    m.watch(*budget);

    resilience::retry_options ro;
    ro.time = &clk;
    ro.seed = 1;
    ro.policy.max_retries = 1;
    ro.policy.backoff.jitter = resilience::jitter_mode::none;
    ro.breaker = breaker;
    ro.budget = budget;
    ro.on_event = m.handler();
    resilience::pipeline p(ro);

    auto op = [&]() -> asio::awaitable<resilience::result<int>> {
        (void)co_await clk.sleep_until(clk.now() + 100ms);
        co_return resilience::failure(upstream_unavailable(), "HTTP 503");
    };
    std::optional<resilience::result<int>> r;
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> { r.emplace(co_await p.run(op)); }, [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    });
    BOOST_TEST_REQUIRE(resilience::testing::run_virtual(ctx, clk, [&] { return r.has_value(); }));
    BOOST_TEST_REQUIRE(!r->has_value());

    m.refresh();
    const std::string t = text(reg);
    BOOST_TEST_MESSAGE(t);
    BOOST_TEST(value(t, "resilience_attempts_total") == 2);
    BOOST_TEST(value(t, "resilience_attempt_failures_total{kind=\"RETRYABLE_SERVER\"}") == 2);
    BOOST_TEST(value(t, "resilience_retries_total{kind=\"RETRYABLE_SERVER\"}") == 1);
    BOOST_TEST(value(t, "resilience_retry_delay_seconds_total{source=\"backoff\"}") == 1);
    BOOST_TEST(value(t, "resilience_gave_up_total{reason=\"max_retries\"}") == 1);
    BOOST_TEST(value(t, "resilience_breaker_transitions_total{from=\"closed\",to=\"open\"}") == 1);
    BOOST_TEST(value(t, "resilience_breaker_state{state=\"open\"}") == 1);
    BOOST_TEST(value(t, "resilience_retry_budget_tokens") == 98);  // two retryable failures, one token each
    BOOST_TEST(value(t, "resilience_request_duration_seconds_sum{outcome=\"failure\"}") == 1.2);  // 0.1 + 1 + 0.1
    BOOST_TEST(value(t, "resilience_attempt_duration_seconds_count{outcome=\"failure\"}") == 2);

    // The breaker is reset elsewhere (no event): refresh() reads it.
    breaker->reset();
    m.refresh();
    const std::string t2 = text(reg);
    BOOST_TEST(value(t2, "resilience_breaker_state{state=\"closed\"}") == 1);
    BOOST_TEST(value(t2, "resilience_breaker_state{state=\"open\"}") == 0);
}

BOOST_AUTO_TEST_SUITE_END()
