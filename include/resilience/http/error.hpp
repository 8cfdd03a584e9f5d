#ifndef RESILIENCE_HTTP_ERROR_HPP
#define RESILIENCE_HTTP_ERROR_HPP

// The HTTP layer's error codes (category "resilience.http") and the
// classification of the transport's codes.
//
// resilience::http::errc covers HTTP error statuses and responses the client
// cannot accept. Each code maps to one of the core's conditions
// (resilience/error.hpp), so that resilience::classify() and
// `ec == resilience::condition::transient` read them like any other code:
// 401/403 are `auth`, 429 is `throttled`, 408 is `timeout` (a network
// failure), 5xx and an unreadable response are `transient`, the rest are
// `permanent`. The HTTP client's own time limits complete with
// resilience::errc::attempt_timeout (the request's deadline or
// request_timeout) or boost::asio::error::timed_out (a step limit): both
// match resilience::condition::timeout (resilience/error.hpp, "Running out
// of time").
//
// Beast's codes (timeouts, the HTTP parser) and TLS's (asio::ssl, OpenSSL)
// live in categories this library cannot change: including this header
// (every HTTP header does) registers their rules with
// resilience::add_classifier().

#include <resilience/error.hpp>

#include <optional>
#include <type_traits>

namespace resilience::http {

/// The HTTP layer's error codes.
enum class errc : int {
    unauthorized = 1,    ///< HTTP 401 (condition::auth)
    forbidden,           ///< HTTP 403 (condition::auth)
    too_many_requests,   ///< HTTP 429 (condition::throttled)
    request_timeout,     ///< HTTP 408: the server timed the request out (condition::timeout, so network)
    client_error,        ///< any other HTTP 4xx (condition::permanent)
    server_error,        ///< HTTP 5xx (condition::transient)
    unexpected_status,   ///< HTTP 1xx, 3xx or out of range where a final answer was expected (permanent)
    malformed_response,  ///< the answer could not be parsed: HTTP framing, or a body that is not what
                         ///< the caller expects (condition::transient: the server misbehaved)
    response_too_large,  ///< the response exceeded a configured size limit (condition::permanent)
};

/// The category of http::errc, named "resilience.http".
const boost::system::error_category& error_category() noexcept;

inline error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), http::error_category()};
}

/// Maps an HTTP status to the layer's code: an empty code for 2xx,
/// otherwise unauthorized, forbidden, request_timeout, too_many_requests,
/// client_error, server_error or unexpected_status.
error_code status_to_error(int status) noexcept;

/// classify(status_to_error(status)), for a non-2xx status.
error_kind classify_status(int status) noexcept;

/// The kind of a Beast or TLS code; nullopt for codes of other categories.
/// Timeouts, a truncated stream, a peer that closed mid-message and TLS
/// failures are network errors; an unreadable response is the server's
/// fault; our own size limits and a refused certificate are not retried.
std::optional<error_kind> classify_transport(const error_code& ec) noexcept;

namespace detail {
bool register_transport_classifier() noexcept;
inline const bool transport_classifier_registered = register_transport_classifier();
}  // namespace detail

}  // namespace resilience::http

namespace boost::system {
template <> struct is_error_code_enum<resilience::http::errc> : std::true_type {};
}  // namespace boost::system

#endif
