#ifndef RESILIENCE_HTTP_RETRY_AFTER_HPP
#define RESILIENCE_HTTP_RETRY_AFTER_HPP

// Parsing the HTTP Retry-After header: delta-seconds or an HTTP-date in
// IMF-fixdate, RFC 850 and asctime forms. The parsers take a string_view and
// never throw; garbage means "no pushback". Values saturate at
// resilience::max_pushback instead of overflowing.

#include <resilience/pushback.hpp>

#include <chrono>
#include <optional>
#include <string_view>

namespace resilience::http {

/// Parses an HTTP-date (RFC 9110 5.6.7: IMF-fixdate, RFC 850, asctime).
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view s) noexcept;

/// Parses a Retry-After value. A date in the past means zero. `now` is the
/// wall-clock time the answer was received.
std::optional<duration> parse_retry_after(std::string_view value,
                                          std::chrono::system_clock::time_point now) noexcept;

}  // namespace resilience::http

#endif
