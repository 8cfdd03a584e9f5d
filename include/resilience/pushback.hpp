#ifndef RESILIENCE_PUSHBACK_HPP
#define RESILIENCE_PUSHBACK_HPP

// Parsing the server's pushback: the HTTP Retry-After header (delta-seconds
// or HTTP-date in IMF-fixdate, RFC 850 and asctime forms) and Gemini's
// google.rpc.RetryInfo in an error body. Every parser takes a string_view and
// never throws; garbage means "no pushback". Values saturate instead of
// overflowing; capping at the policy's maximum is the retry loop's job.

#include <resilience/diagnostics.hpp>

#include <chrono>
#include <optional>
#include <string_view>

namespace resilience {

/// The largest pushback any parser returns (about 292 years would overflow
/// nanoseconds; we stop at 100 years).
inline constexpr duration max_pushback = std::chrono::hours(24 * 365 * 100);

/// Parses an HTTP-date (RFC 9110 5.6.7: IMF-fixdate, RFC 850, asctime).
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view s) noexcept;

/// Parses a Retry-After value. A date in the past means zero. `now` is the
/// wall-clock time the answer was received.
std::optional<duration> parse_retry_after(std::string_view value,
                                          std::chrono::system_clock::time_point now) noexcept;

/// Parses a google.protobuf.Duration in JSON form ("15s", "34.4s",
/// "45.837906927s"). Negative or malformed: nullopt; huge: saturated.
std::optional<duration> parse_proto_duration(std::string_view s) noexcept;

/// Finds a google.rpc.RetryInfo in a Google error body ({"error": {"details":
/// [...]}}, or that envelope wrapped in a one-element list) and returns its
/// retryDelay. A body that is not JSON, or has no RetryInfo: nullopt.
/// Defined in the HTTP layer (asio_resilience::http: it needs Boost.JSON).
std::optional<duration> parse_retry_info(std::string_view body) noexcept;

}  // namespace resilience

#endif
