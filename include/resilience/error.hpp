#ifndef RESILIENCE_ERROR_HPP
#define RESILIENCE_ERROR_HPP

// The library's error codes, error conditions and the six kinds of failure.
//
// Every failure the library reports is an error_code. Codes of other
// categories (Asio, Beast, SSL) pass through unchanged; the library's own
// codes live in resilience::error_category(). Conditions sit on top:
// `condition::transient` (worth retrying), `condition::throttled` (the server
// asks us to slow down), `condition::deadline` (the caller's time ran out)
// and `condition::permanent`, so the default retry decision reads
// `ec == condition::transient`.
//
// This header is the core's: it knows Asio's and Boost.System's codes only.
// Codes of other libraries opt into retries by mapping to a condition: their
// category's default_error_condition() (or equivalent()) returns
// condition::transient or condition::throttled. The HTTP layer teaches the
// classifier Beast's and TLS's codes the same way, through
// add_classifier() (resilience/http/error.hpp).

#include <boost/system/error_code.hpp>

#include <optional>
#include <string_view>
#include <type_traits>

namespace resilience {

using boost::system::error_code;

/// The library's own error codes.
enum class errc : int {
    success = 0,
    circuit_open,          ///< the circuit breaker is open and the caller chose to fail fast
    retries_exhausted,     ///< every allowed attempt failed (see diagnostics for the last error)
    retry_budget_exhausted,///< the shared retry budget refused a retry
    deadline_exceeded,     ///< the overall deadline passed
    attempt_timeout,       ///< one attempt took longer than its timeout
    http_unauthorized,     ///< HTTP 401
    http_forbidden,        ///< HTTP 403
    http_too_many_requests,///< HTTP 429
    http_client_error,     ///< any other HTTP 4xx
    http_server_error,     ///< HTTP 5xx
    http_unexpected_status,///< HTTP 1xx or 3xx where a final answer was expected
    malformed_response,    ///< the server's answer could not be parsed (bad JSON, bad header)
    response_too_large,    ///< the response exceeded a configured size limit
    invalid_argument,      ///< the caller passed something unusable (a bad URL, a bad option)
    invalid_config,        ///< a configuration value (from code or environment) is invalid
    quota_exhausted,       ///< a quota that no retry window clears (per-day, storage)
    file_failed,           ///< the server reports the file as FAILED
    file_not_active,       ///< the file is not ACTIVE (yet)
    http_request_timeout,  ///< HTTP 408: the server timed the request out (retryable, network class)
    operation_threw,       ///< the operation threw an exception (its text is in the diagnostics)
    untrusted_url,         ///< the server named a URL outside the configured origin; not followed
};

/// Conditions: coarse groups that codes of any category may match.
enum class condition : int {
    transient = 1,  ///< the same request may succeed later
    permanent,      ///< retrying the same request will not help
    throttled,      ///< rate limited or over quota for now (also transient)
    deadline,       ///< the caller's overall deadline passed (never retried)
};

const boost::system::error_category& error_category() noexcept;
const boost::system::error_category& condition_category() noexcept;

inline error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}
inline boost::system::error_condition make_error_condition(condition c) noexcept {
    return {static_cast<int>(c), condition_category()};
}

/// The six kinds of failure of DESIGN.md. Their names appear in status text.
enum class error_kind : unsigned char {
    retryable_network,
    retryable_rate_limit,
    retryable_server,
    non_retryable_auth,
    non_retryable_client,
    non_retryable_aborted,
};

/// "RETRYABLE_NETWORK", "NON_RETRYABLE_AUTH", ...
std::string_view to_string(error_kind k) noexcept;

constexpr bool is_retryable(error_kind k) noexcept {
    return k == error_kind::retryable_network || k == error_kind::retryable_rate_limit ||
           k == error_kind::retryable_server;
}

/// The default classification of an error code (DESIGN.md, Classification).
/// Network errors of Asio (and of Beast and SSL once the HTTP layer is
/// linked), timeouts, 429 and 5xx are retryable; 401/403, other 4xx, the
/// library's own permanent errors and unknown codes are not;
/// operation_aborted is never retried. A code of another category whose
/// category maps it to condition::throttled or condition::transient is
/// retried as a rate limit or as a server failure.
error_kind classify(const error_code& ec) noexcept;

/// Classifies the codes of a category the core does not know: returns the
/// kind, or nullopt for a code it does not recognise. Layers above the core
/// (the HTTP layer for Beast and TLS) register theirs with add_classifier().
using category_classifier = std::optional<error_kind> (*)(const error_code&) noexcept;

/// Adds `f` to the classifiers classify() asks (after its own codes and
/// Asio's network errors, before the foreign category's condition mapping).
/// Thread-safe and idempotent; at most 8 distinct classifiers (false when full).
bool add_classifier(category_classifier f) noexcept;

/// Maps an HTTP status to the library's code: 0 for 2xx, otherwise one of
/// http_unauthorized, http_forbidden, http_too_many_requests,
/// http_client_error, http_server_error, http_unexpected_status.
error_code http_status_to_error(int status) noexcept;

/// classify(http_status_to_error(status)), for a non-2xx status.
error_kind classify_http_status(int status) noexcept;

}  // namespace resilience

namespace boost::system {
template <> struct is_error_code_enum<resilience::errc> : std::true_type {};
template <> struct is_error_condition_enum<resilience::condition> : std::true_type {};
}  // namespace boost::system

#endif
