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

/// Circuit breaker settings.
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
