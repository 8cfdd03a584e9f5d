#ifndef RESILIENCE_PUSHBACK_HPP
#define RESILIENCE_PUSHBACK_HPP

// The server's pushback as the core sees it: a duration in
// diagnostics::retry_after, never larger than max_pushback. The parsers live
// with the layer that knows the wire: the HTTP Retry-After header in
// resilience/http/retry_after.hpp, Gemini's google.rpc.RetryInfo in
// resilience/gemini/wire.hpp. Capping at the policy's maximum is the retry
// loop's job.

#include <resilience/diagnostics.hpp>

#include <chrono>

namespace resilience {

/// The largest pushback any parser returns (about 292 years would overflow
/// nanoseconds; we stop at 100 years).
inline constexpr duration max_pushback = std::chrono::hours(24 * 365 * 100);

}  // namespace resilience

#endif
