#ifndef RESILIENCE_CONFIG_HPP
#define RESILIENCE_CONFIG_HPP

// The core's configuration: plain aggregates with the defaults of DESIGN.md
// and a validator that names the offending field, plus the environment
// lookup that loaders take. Reading the GEMINI_* variables is the Gemini
// layer's (resilience/gemini/config.hpp).

#include <resilience/backoff.hpp>
#include <resilience/diagnostics.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace resilience {

/// How many times and how fast to retry.
struct retry_policy {
    int max_retries = 5;                             ///< retries after the first attempt; 0 disables retrying
    backoff_policy backoff{};                        ///< delays between attempts
    std::chrono::milliseconds max_pushback{0};       ///< cap on a server-requested delay; 0 = backoff.max_delay
    std::chrono::milliseconds attempt_timeout{0};    ///< per-attempt timeout; 0 = none (the deadline still applies)

    /// The effective pushback cap.
    std::chrono::milliseconds pushback_cap() const noexcept {
        return max_pushback.count() > 0 ? max_pushback : backoff.max_delay;
    }
};

/// A per-call change to a retry_policy: each field that is set replaces the
/// base policy's, every other field comes from the base (the client's, and so
/// the environment's). Validate the outcome with validate(apply(base)).
struct retry_overrides {
    retry_overrides() = default;
    std::optional<int> max_retries;                           ///< 0 disables retrying for the call
    std::optional<std::chrono::milliseconds> initial_delay;   ///< backoff.initial_delay
    std::optional<std::chrono::milliseconds> max_delay;       ///< backoff.max_delay
    std::optional<double> multiplier;                         ///< backoff.multiplier
    std::optional<jitter_mode> jitter;                        ///< backoff.jitter
    std::optional<std::chrono::milliseconds> max_pushback;    ///< cap on a server-requested delay
    std::optional<std::chrono::milliseconds> attempt_timeout; ///< per-attempt timeout (0 = none)

    /// True when no field is set (the base policy applies unchanged).
    bool empty() const noexcept {
        return !max_retries && !initial_delay && !max_delay && !multiplier && !jitter && !max_pushback &&
               !attempt_timeout;
    }
    /// `base` with the fields set here replaced.
    retry_policy apply(retry_policy base) const noexcept {
        if (max_retries) base.max_retries = *max_retries;
        if (initial_delay) base.backoff.initial_delay = *initial_delay;
        if (max_delay) base.backoff.max_delay = *max_delay;
        if (multiplier) base.backoff.multiplier = *multiplier;
        if (jitter) base.backoff.jitter = *jitter;
        if (max_pushback) base.max_pushback = *max_pushback;
        if (attempt_timeout) base.attempt_timeout = *attempt_timeout;
        return base;
    }
};

/// The circuit breaker's consecutive rule: DESIGN.md's threshold and open
/// timeout (what GEMINI_CIRCUIT_BREAKER_THRESHOLD and _TIMEOUT_MS set), plus
/// the probes let through. One of the two validated parts of
/// breaker_options, the settings a circuit_breaker is built from
/// (circuit_breaker.hpp, "Settings"); named like budget_config and
/// rate_gate_config, the plain settings of a pure state machine.
struct breaker_config {
    int failure_threshold = 3;                       ///< consecutive counted failures that open it
    std::chrono::milliseconds open_timeout{60000};   ///< time OPEN before probes are let through
    int half_open_probes = 1;                        ///< probes admitted while HALF_OPEN
};

/// Checks ranges: max_retries 0..1000; delays 0..24 h; initial <= max;
/// multiplier finite and in [1, 1000]; threshold 1..1e6; open timeout
/// 1 ms..24 h; probes 1..1000. The failure's message names the field.
result<void> validate(const retry_policy& p);
result<void> validate(const breaker_config& b);

/// Reads a variable; nullopt when unset. The default reads the process
/// environment; tests pass their own.
using env_lookup = std::function<std::optional<std::string>(const char* name)>;
std::optional<std::string> process_env(const char* name);

}  // namespace resilience

#endif
