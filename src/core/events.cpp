#include <resilience/events.hpp>

#include <cmath>
#include <cstdio>

namespace resilience {

std::string_view to_string(breaker_state s) noexcept {
    switch (s) {
    case breaker_state::closed: return "CLOSED";
    case breaker_state::open: return "OPEN";
    case breaker_state::half_open: return "HALF_OPEN";
    }
    return "UNKNOWN";
}

std::string_view to_string(event_type t) noexcept {
    switch (t) {
    case event_type::attempt_started: return "attempt_started";
    case event_type::attempt_failed: return "attempt_failed";
    case event_type::attempt_succeeded: return "attempt_succeeded";
    case event_type::retry_scheduled: return "retry_scheduled";
    case event_type::gave_up: return "gave_up";
    case event_type::cooldown_wait: return "cooldown_wait";
    case event_type::breaker_wait: return "breaker_wait";
    case event_type::breaker_transition: return "breaker_transition";
    case event_type::rate_wait: return "rate_wait";
    }
    return "unknown";
}

std::string format_seconds(duration d) {
    if (d < duration::zero()) d = duration::zero();
    // Tenths of a second from 1 s on, hundredths below (so that a short
    // backoff does not read "0s"); trailing zeros dropped.
    const long long ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::min<duration>(d, std::chrono::hours(24 * 365 * 100))).count();
    const bool fine = ms < 995;
    const long long unit = fine ? 10 : 100;  // milliseconds per printed step
    const long long steps = (ms + unit / 2) / unit;
    const long long per_second = 1000 / unit;
    std::string s = std::to_string(steps / per_second);
    long long frac = steps % per_second;
    if (frac != 0) {
        std::string digits = std::to_string(frac);
        digits.insert(0, (fine ? 2 : 1) - digits.size(), '0');
        while (digits.back() == '0') digits.pop_back();
        s += '.';
        s += digits;
    }
    s += 's';
    return s;
}

namespace status {

std::string retry(int retry, int max_retries, error_kind kind, std::string_view message) {
    std::string s = "Retry ";
    s += std::to_string(retry);
    s += '/';
    s += std::to_string(max_retries);
    s += " after error (";
    s += to_string(kind);
    s += "): ";
    s += message;
    return s;
}

std::string waiting(duration delay, breaker_state state) {
    std::string s = "Waiting ";
    s += format_seconds(delay);
    s += " before retry (circuit breaker: ";
    s += to_string(state);
    s += ")...";
    return s;
}

std::string rate_limited(duration delay) {
    return "Rate limited. Respecting Retry-After header: " + format_seconds(delay);
}

std::string rate_wait(duration delay, double rate) {
    char r[32];
    // Whole requests from 10/s on, two significant digits below ("2.5", "0.5").
    std::snprintf(r, sizeof r, rate >= 10 ? "%.0f" : "%.2g", rate);
    std::string s = "Waiting ";
    s += format_seconds(delay);
    s += " for the rate gate (";
    s += r;
    s += " requests/s)...";
    return s;
}

std::string failed(int attempts, std::string_view message) {
    std::string s = "Operation failed after ";
    s += std::to_string(attempts);
    s += " attempts: ";
    s += message;
    return s;
}

}  // namespace status
}  // namespace resilience
