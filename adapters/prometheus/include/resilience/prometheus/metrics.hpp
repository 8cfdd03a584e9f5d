#ifndef RESILIENCE_PROMETHEUS_METRICS_HPP
#define RESILIENCE_PROMETHEUS_METRICS_HPP

// asio_resilience::prometheus (optional, CMake option RESILIENCE_PROMETHEUS):
// the structured events of include/resilience/events.hpp as Prometheus
// metrics in a prometheus-cpp Registry. The core does not depend on it.
//
//   prometheus::Registry registry;
//   resilience::prometheus::metrics m(registry);   // prefix "resilience"
//   opts.on_event = m.handler();                    // retry_options, gemini::client_options, ...
//   ...
//   m.refresh();                                    // watched gates, read now (optional)
//   std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
//
// Series (PREFIX = metrics_options::prefix; constant labels on all of them):
//   PREFIX_attempts_total                       counter   attempts started
//   PREFIX_attempt_failures_total{kind}         counter   failed attempts by error kind (RETRYABLE_SERVER, ...)
//   PREFIX_retries_total{kind}                  counter   retries scheduled, by the kind of the failure
//   PREFIX_retry_delay_seconds_total{source}    counter   delay scheduled before retries; source = backoff | server
//   PREFIX_gave_up_total{reason}                counter   calls that ended without success: non_retryable,
//                                                         max_retries, deadline, budget, circuit_open, cancelled
//   PREFIX_breaker_state{state}                 gauge     1 for the breaker's state (closed, open, half_open), 0 else
//   PREFIX_breaker_transitions_total{from,to}   counter   breaker transitions
//   PREFIX_breaker_waits_total                  counter   attempts that waited for the breaker
//   PREFIX_breaker_wait_seconds_total           counter   the waits' announced length (the open timeout left)
//   PREFIX_cooldown_waits_total                 counter   attempts held by the scope's cooldown
//   PREFIX_cooldown_wait_seconds_total          counter   the waits' announced length
//   PREFIX_rate_waits_total                     counter   attempts held by the adaptive rate gate
//   PREFIX_rate_wait_seconds_total              counter   the first wait's length of each held attempt
//   PREFIX_retry_budget_tokens                  gauge     tokens in the watched retry budget (only once watched)
//   PREFIX_request_duration_seconds{outcome}    histogram whole calls (all attempts and waits); success | failure
//   PREFIX_attempt_duration_seconds{outcome}    histogram single attempts; success | failure
//
// The breaker state gauge follows the breaker_transition events; the budget
// gauge is read at every attempt's end; refresh() reads both from the watched
// objects now (call it before serializing when other code shares them).
//
// Thread safety: record() (and so the handler) may be called concurrently
// from any thread; it only touches atomics (prometheus-cpp counters, gauges,
// histograms), every series being created by the constructor. watch() must
// not run concurrently with record() or refresh().
//
// Lifetimes: the registry must outlive the metrics object; a watched breaker
// or budget must outlive every later record() and refresh(); the metrics
// object must outlive every handler() copy in use (every pipeline or client
// that calls it).

#include <resilience/circuit_breaker.hpp>
#include <resilience/events.hpp>
#include <resilience/retry_budget.hpp>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>
#include <map>
#include <string>
#include <vector>

namespace resilience::prometheus {

struct metrics_options {
    metrics_options() = default;
    /// Metric names start with `prefix` + "_". Must make valid metric names
    /// ([a-zA-Z_:][a-zA-Z0-9_:]*), else the constructor throws resilience::error (invalid_argument).
    std::string prefix = "resilience";
    /// Constant labels on every series, e.g. {{"service", "gemini"}}. Valid label names only.
    std::map<std::string, std::string> labels;
    /// Upper bounds (seconds, increasing) of the request and attempt duration histograms.
    std::vector<double> request_buckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
    std::vector<double> attempt_buckets{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
};

class metrics {
public:
    /// Registers the families above in `registry`. Throws resilience::error
    /// (errc::invalid_argument) for a bad prefix, label or bucket list.
    explicit metrics(::prometheus::Registry& registry, metrics_options opts = metrics_options());
    metrics(const metrics&) = delete;
    metrics& operator=(const metrics&) = delete;

    /// Counts one event. Thread-safe, never throws.
    void record(const event& e) noexcept;
    /// An event_handler that calls record() (the object must outlive it).
    event_handler handler() {
        return [this](const event& e) { record(e); };
    }

    /// Publishes `b`'s state at refresh() (and the state gauge from now on).
    void watch(const circuit_breaker& b);
    /// Publishes `b`'s tokens as PREFIX_retry_budget_tokens.
    void watch(const retry_budget& b);
    /// Reads the watched breaker and budget into their gauges now.
    void refresh() noexcept;

private:
    void set_state(breaker_state s) noexcept;

    ::prometheus::Registry& registry_;
    metrics_options opts_;
    ::prometheus::Counter* attempts_;
    std::array<::prometheus::Counter*, 6> failures_{};  // by error_kind
    std::array<::prometheus::Counter*, 6> retries_{};   // by error_kind
    ::prometheus::Counter* delay_backoff_;
    ::prometheus::Counter* delay_server_;
    std::array<::prometheus::Counter*, 7> gave_up_{};   // by give_up_reason (none unused)
    std::array<::prometheus::Gauge*, 3> state_{};       // by breaker_state
    std::array<std::array<::prometheus::Counter*, 3>, 3> transitions_{};  // [from][to]
    ::prometheus::Counter* breaker_waits_;
    ::prometheus::Counter* breaker_wait_seconds_;
    ::prometheus::Counter* cooldown_waits_;
    ::prometheus::Counter* cooldown_wait_seconds_;
    ::prometheus::Counter* rate_waits_;
    ::prometheus::Counter* rate_wait_seconds_;
    ::prometheus::Histogram* request_ok_;
    ::prometheus::Histogram* request_failed_;
    ::prometheus::Histogram* attempt_ok_;
    ::prometheus::Histogram* attempt_failed_;
    ::prometheus::Gauge* budget_tokens_ = nullptr;
    std::atomic<const retry_budget*> budget_{nullptr};
    std::atomic<const circuit_breaker*> breaker_{nullptr};
};

}  // namespace resilience::prometheus

#endif
