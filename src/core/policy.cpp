// Validation of the core's policies (retry_policy, breaker_config): errors
// name the field; the process environment lookup. Loading the policies from
// the GEMINI_* environment is the Gemini layer's (src/gemini/config.cpp).
#include <resilience/config.hpp>

#include <cmath>
#include <cstdlib>
#include <string>

namespace resilience {
namespace {

using std::chrono::milliseconds;
constexpr milliseconds day{24LL * 3600 * 1000};

failure bad(std::string msg) { return failure(make_error_code(errc::invalid_config), std::move(msg)); }

}  // namespace

std::optional<std::string> process_env(const char* name) {
    const char* v = std::getenv(name);
    if (!v) return std::nullopt;
    return std::string(v);
}

result<void> validate(const retry_policy& p) {
    if (p.max_retries < 0 || p.max_retries > 1000)
        return bad("retry.max_retries = " + std::to_string(p.max_retries) + ": must be between 0 and 1000");
    const auto& b = p.backoff;
    if (b.initial_delay.count() < 0 || b.initial_delay > day)
        return bad("retry.initial_delay = " + std::to_string(b.initial_delay.count()) + " ms: must be between 0 and 86400000 ms");
    if (b.max_delay.count() < 0 || b.max_delay > day)
        return bad("retry.max_delay = " + std::to_string(b.max_delay.count()) + " ms: must be between 0 and 86400000 ms");
    if (b.initial_delay > b.max_delay)
        return bad("retry.initial_delay (" + std::to_string(b.initial_delay.count()) +
                   " ms) is greater than retry.max_delay (" + std::to_string(b.max_delay.count()) + " ms)");
    if (!std::isfinite(b.multiplier) || b.multiplier < 1.0 || b.multiplier > 1000.0)
        return bad("retry.multiplier = " + std::to_string(b.multiplier) + ": must be between 1 and 1000");
    if (p.max_pushback.count() < 0 || p.max_pushback > day)
        return bad("retry.max_pushback = " + std::to_string(p.max_pushback.count()) + " ms: must be between 0 and 86400000 ms");
    if (p.attempt_timeout.count() < 0 || p.attempt_timeout > day)
        return bad("retry.attempt_timeout = " + std::to_string(p.attempt_timeout.count()) + " ms: must be between 0 and 86400000 ms");
    return {};
}

result<void> validate(const breaker_config& b) {
    if (b.failure_threshold < 1 || b.failure_threshold > 1'000'000)
        return bad("breaker.failure_threshold = " + std::to_string(b.failure_threshold) + ": must be between 1 and 1000000");
    if (b.open_timeout.count() < 1 || b.open_timeout > day)
        return bad("breaker.open_timeout = " + std::to_string(b.open_timeout.count()) + " ms: must be between 1 and 86400000 ms");
    if (b.half_open_probes < 1 || b.half_open_probes > 1000)
        return bad("breaker.half_open_probes = " + std::to_string(b.half_open_probes) + ": must be between 1 and 1000");
    return {};
}

}  // namespace resilience
