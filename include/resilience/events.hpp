#ifndef RESILIENCE_EVENTS_HPP
#define RESILIENCE_EVENTS_HPP

// Structured events and the human-readable status text.
//
// Status text (word for word, DESIGN.md):
//   Retry X/Y after error (ERROR_TYPE): message
//   Waiting Ns before retry (circuit breaker: STATE)...
//   Rate limited. Respecting Retry-After header: Xs
//   Operation failed after X attempts: message
// and, with the adaptive rate gate on:
//   Waiting Ns for the rate gate (R requests/s)...
// Seconds are printed rounded to a tenth from 1 s on and to a hundredth
// below ("2s", "12.3s", "0.5s", "0.05s").

#include <resilience/diagnostics.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace resilience {

enum class breaker_state : unsigned char { closed, open, half_open };
/// "CLOSED", "OPEN", "HALF_OPEN".
std::string_view to_string(breaker_state s) noexcept;

enum class event_type : unsigned char {
    attempt_started,    ///< attempt `attempt` is about to call the operation
    attempt_failed,     ///< it failed with `code`, classified as `kind`
    attempt_succeeded,  ///< it succeeded
    retry_scheduled,    ///< retry `attempt` will start after `delay` (`pushback` if the server chose it)
    gave_up,            ///< the loop stopped without success (`reason`)
    cooldown_wait,      ///< waiting `delay` for the scope's cooldown before an attempt
    breaker_wait,       ///< waiting for the circuit breaker to admit the attempt
    breaker_transition, ///< the breaker went from `from` to `to`
    rate_wait,          ///< the adaptive rate gate holds the attempt `delay` (once per attempt; `rate`: the gate's rate)
};
std::string_view to_string(event_type t) noexcept;

/// A set of event types (bit `1 << type`), e.g. retry_options::event_types.
using event_mask = std::uint32_t;
constexpr event_mask event_bit(event_type t) noexcept { return event_mask(1) << static_cast<unsigned>(t); }
inline constexpr event_mask all_events = ~event_mask(0);

/// One structured event. String views are valid during the callback only.
///
/// Tracing: every attempt is reported by `attempt_started` and then exactly
/// one end, `attempt_succeeded` or `attempt_failed` (with `kind`, `code` and
/// `message`), both carrying the same `call_id` and `attempt`; the end carries
/// `attempt_elapsed`. `at` is when the event happened on the pipeline's clock.
/// A handler can open a span at the start and close it at the end (see
/// docs/retry-mechanism.md); the handler runs on the thread running the call,
/// synchronously, just before the operation is called and just after it
/// completed, so a span made there may also be made "current" for the
/// operation (e.g. for http::client_options::on_request).
struct event {
    event_type type{};
    int attempt = 0;                 ///< 0-based attempt number (for retry_scheduled: the attempt to come)
    int max_retries = 0;
    error_kind kind = error_kind::non_retryable_client;  ///< for failures
    error_code code{};
    duration delay{};                ///< for retry_scheduled, cooldown_wait, breaker_wait, rate_wait
    duration elapsed{};              ///< since the first attempt started
    bool pushback = false;           ///< the delay is the server's
    give_up_reason reason = give_up_reason::none;
    breaker_state from = breaker_state::closed, to = breaker_state::closed;
    std::string_view message;        ///< failure message
    std::string_view subject;        ///< what the operation is about (e.g. a file name), may be empty
    std::string_view tag;            ///< the caller's name for the call (call_options::tag), may be empty
    time_point at{};                 ///< when the event happened, on the pipeline's clock
    duration attempt_elapsed{};      ///< attempt_succeeded, attempt_failed: since this attempt's attempt_started
    /// The same for every event of one call, distinct between calls (a
    /// process-wide counter, from 1): pairs each attempt's start with its end
    /// when one handler serves many concurrent calls.
    std::uint64_t call_id = 0;
    double rate = 0;                 ///< rate_wait: the rate gate's rate for the scope, requests per second
};

using status_handler = std::function<void(std::string_view)>;
using event_handler = std::function<void(const event&)>;

/// "2s", "12.3s", "0.5s", "0.05s".
std::string format_seconds(duration d);

namespace status {
std::string retry(int retry, int max_retries, error_kind kind, std::string_view message);
std::string waiting(duration delay, breaker_state state);
std::string rate_limited(duration delay);
/// "Waiting 0.4s for the rate gate (2.5 requests/s)...": the adaptive rate
/// gate holds the attempt (the rate in whole requests from 10/s on, two significant digits below).
std::string rate_wait(duration delay, double rate);
std::string failed(int attempts, std::string_view message);
}  // namespace status

}  // namespace resilience

#endif
