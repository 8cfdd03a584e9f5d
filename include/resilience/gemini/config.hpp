#ifndef RESILIENCE_GEMINI_CONFIG_HPP
#define RESILIENCE_GEMINI_CONFIG_HPP

// The GEMINI_* environment: loading, validating and overriding in code. A
// bad value is an error (resilience::errc::invalid_config) naming the
// variable and the value (never the API key's), never a silent default.
// Values set in code win over the environment.

#include <resilience/config.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace resilience::gemini {

/// Everything the GEMINI_* environment configures.
struct config {
    retry_policy retry{};
    breaker_config breaker{};
    bool adaptive_rate = false;  ///< RESILIENCE_ADAPTIVE_RATE: the adaptive rate gate on
    std::string api_key;       ///< GEMINI_API_KEY; never printed
    std::string base_url;      ///< GEMINI_BASE_URL; empty = the real service
};

/// Values set in code; each one that is set wins over the environment.
struct config_overrides {
    std::optional<int> max_retries;
    std::optional<std::chrono::milliseconds> initial_delay;
    std::optional<std::chrono::milliseconds> max_delay;
    std::optional<double> multiplier;
    std::optional<int> breaker_threshold;
    std::optional<std::chrono::milliseconds> breaker_timeout;
    std::optional<bool> adaptive_rate;
    std::optional<std::string> api_key;
    std::optional<std::string> base_url;
};

/// Checks a base URL fully: http or https, a host, a port (when one is
/// written) of 1..65535 in digits, no query, fragment or credentials. Empty
/// when it is usable, else what is wrong with it (never quoting the URL).
std::string base_url_problem(std::string_view url);

/// Builds the configuration: defaults, then the environment
/// (GEMINI_RETRY_MAX_ATTEMPTS, GEMINI_RETRY_INITIAL_DELAY_MS,
/// GEMINI_RETRY_MAX_DELAY_MS, GEMINI_RETRY_BACKOFF_MULTIPLIER,
/// GEMINI_CIRCUIT_BREAKER_THRESHOLD, GEMINI_CIRCUIT_BREAKER_TIMEOUT_MS,
/// GEMINI_API_KEY, GEMINI_BASE_URL, and RESILIENCE_ADAPTIVE_RATE: 1 or 0,
/// true or false, on or off), then `overrides`; then validates the
/// result. Errors (resilience::errc::invalid_config) name the variable and
/// its value (never the API key's value).
result<config> load_config(const config_overrides& overrides = {}, const env_lookup& env = process_env);

}  // namespace resilience::gemini

#endif
