#ifndef RESILIENCE_ERROR_HPP
#define RESILIENCE_ERROR_HPP

// The core's error codes, the error conditions and the six kinds of failure.
//
// Codes by layer, as Boost.MySQL keeps client_errc apart from server codes:
//   resilience::errc          the pipeline's outcomes (this header, category "resilience")
//   resilience::http::errc    HTTP statuses and responses (resilience/http/error.hpp, "resilience.http")
//   resilience::gemini::errc  the Gemini API's outcomes (resilience/gemini/error.hpp, "resilience.gemini")
// Codes of other libraries (Asio, Beast, SSL, yours) pass through unchanged.
//
// Conditions sit on top and are what the default classifier reads. A code
// names its most specific condition; the broader ones follow:
//
//   condition   kind (status text)        also matches
//   timeout     RETRYABLE_NETWORK          network, transient
//   network     RETRYABLE_NETWORK          transient
//   throttled   RETRYABLE_RATE_LIMIT       transient
//   transient   RETRYABLE_SERVER           -
//   auth        NON_RETRYABLE_AUTH         permanent
//   cancelled   NON_RETRYABLE_ABORTED      permanent
//   deadline    NON_RETRYABLE_CLIENT       timeout, permanent (never retried)
//   permanent   NON_RETRYABLE_CLIENT       -
//
// so the retry decision reads `ec == condition::transient`.
//
// Running out of time: three codes, one condition. `ec == condition::timeout`
// holds for every code that means "ran out of time"; `condition::deadline`
// picks out the one that is never retried:
//   errc::deadline_exceeded   the caller's overall deadline passed
//     (call_options::deadline, gemini::call_options::deadline), wherever:
//     breaker, cooldown or rate-gate wait, backoff, an attempt cut by it, a
//     poll pause. Condition deadline (and so timeout, permanent): never
//     retried, never counted by the breaker. Only the retry pipeline and the
//     Gemini client return it.
//   errc::attempt_timeout     one attempt's own bound passed
//     (retry_policy::attempt_timeout; for an http::client request, its
//     request_options::deadline or request_timeout, waiting for a pool slot
//     included). Condition timeout (network, transient): retried, and counted
//     by the breaker like any network failure. Inside a pipeline, an attempt
//     cut at or after the call's deadline is reported as deadline_exceeded.
//   boost::asio::error::timed_out   a step limit of the HTTP client
//     (connect_timeout, io_timeout, header_timeout, the minimum progress
//     rule; the message names it) or the system's ETIMEDOUT: a network
//     failure, retried. Matches condition::timeout, as does any code equal
//     to boost::system::errc::timed_out.
// http::errc::request_timeout (an HTTP 408: the server timed the request out)
// is a timeout too. Beast's own beast::error::timeout, which the HTTP client
// never returns (it maps it to attempt_timeout or timed_out), is a network
// failure; test beast::condition::timeout for it. The core knows
// Asio's codes and its own only. Another library's codes opt into retries by
// mapping to a condition: their category's default_error_condition() returns
// e.g. condition::throttled (or its equivalent() says so), and classify()
// treats them as rate limits. Our HTTP and Gemini layers do exactly that for
// their own enums. Codes of categories nobody can change (Beast's, OpenSSL's)
// are taught to classify() with add_classifier() (the HTTP layer does it).

#include <boost/system/error_category.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/error_condition.hpp>

#include <cstddef>
#include <optional>
#include <string_view>
#include <type_traits>

namespace resilience {

using boost::system::error_code;

/// The core's error codes: outcomes of the retry pipeline and its gates.
enum class errc : int {
    success = 0,
    circuit_open,          ///< the circuit breaker is open and the caller chose to fail fast (transient)
    retries_exhausted,     ///< every allowed attempt failed (see diagnostics for the last error)
    retry_budget_exhausted,///< the shared retry budget refused a retry
    deadline_exceeded,     ///< the caller's overall deadline passed (condition::deadline; never retried)
    attempt_timeout,       ///< one attempt took longer than its own bound (condition::timeout; retried)
    invalid_argument,      ///< the caller passed something unusable (a bad URL, a bad option)
    invalid_config,        ///< a configuration value (from code or environment) is invalid
    operation_threw,       ///< the operation threw an exception (its text is in the diagnostics)
};

/// Conditions: coarse groups that codes of any category may match (see the
/// table above). The values are stable.
enum class condition : int {
    transient = 1,  ///< the same request may succeed later (network and throttled included)
    permanent,      ///< retrying the same request will not help (auth, cancelled and deadline included)
    throttled,      ///< rate limited or over quota for now; retried honouring pushback
    deadline,       ///< the caller's overall deadline passed (never retried)
    network,        ///< the connection or the network failed, or an attempt timed out
    auth,           ///< the credentials were refused
    cancelled,      ///< the operation was cancelled (never retried)
    /// ran out of time, whichever bound: the overall deadline (deadline), an
    /// attempt's timeout, a step limit, ETIMEDOUT, an HTTP 408 (network)
    timeout,
};

const boost::system::error_category& error_category() noexcept;
const boost::system::error_category& condition_category() noexcept;

inline error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}
inline boost::system::error_condition make_error_condition(condition c) noexcept {
    return {static_cast<int>(c), condition_category()};
}

/// Whether a code whose most specific condition is `own` matches `asked`
/// (timeout is network; network and throttled are transient; auth,
/// cancelled and deadline are permanent; deadline is a timeout too). For
/// categories that map their codes to our conditions: their
/// equivalent(ev, cond) may answer `condition_matches(own(ev), cond)` so that
/// `ec == condition::transient` holds for a throttled code too.
constexpr bool condition_matches(condition own, condition asked) noexcept {
    if (own == asked) return true;
    switch (asked) {
    case condition::transient:
        return own == condition::network || own == condition::throttled || own == condition::timeout;
    case condition::network: return own == condition::timeout;
    case condition::timeout: return own == condition::deadline;
    case condition::permanent:
        return own == condition::auth || own == condition::cancelled || own == condition::deadline;
    default: return false;
    }
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

/// How many kinds there are: the size of an array indexed by error_kind
/// (e.g. gemini::client_stats::retries_by_kind).
inline constexpr std::size_t error_kind_count = static_cast<std::size_t>(error_kind::non_retryable_aborted) + 1;

/// "RETRYABLE_NETWORK", "NON_RETRYABLE_AUTH", ...
std::string_view to_string(error_kind k) noexcept;

constexpr bool is_retryable(error_kind k) noexcept {
    return k == error_kind::retryable_network || k == error_kind::retryable_rate_limit ||
           k == error_kind::retryable_server;
}

/// The kind a condition stands for (the table above).
constexpr error_kind to_kind(condition c) noexcept {
    switch (c) {
    case condition::timeout:
    case condition::network: return error_kind::retryable_network;
    case condition::throttled: return error_kind::retryable_rate_limit;
    case condition::transient: return error_kind::retryable_server;
    case condition::auth: return error_kind::non_retryable_auth;
    case condition::cancelled: return error_kind::non_retryable_aborted;
    case condition::deadline:
    case condition::permanent: break;
    }
    return error_kind::non_retryable_client;
}

/// The default classification of an error code (DESIGN.md, Classification):
/// Asio's cancellation is NON_RETRYABLE_ABORTED and its network errors
/// RETRYABLE_NETWORK; then the classifiers added with add_classifier();
/// then the conditions the code's own category maps it to, most specific
/// first (cancelled, deadline, throttled, timeout, network, auth, transient;
/// see the table above). A code that maps to none is NON_RETRYABLE_CLIENT.
error_kind classify(const error_code& ec) noexcept;

/// Classifies the codes of a category whose owner cannot make it map to our
/// conditions (Beast's, OpenSSL's): returns the kind, or nullopt for a code
/// it does not recognise. A category you own should rather map its codes to
/// conditions (default_error_condition or equivalent).
using category_classifier = std::optional<error_kind> (*)(const error_code&) noexcept;

/// Adds `f` to the classifiers classify() asks (after Asio's codes, before
/// the code's conditions). The HTTP layer adds Beast's and TLS's rules when
/// one of its headers is included. Thread-safe and idempotent; at most 8
/// distinct classifiers (false when full).
bool add_classifier(category_classifier f) noexcept;

}  // namespace resilience

namespace boost::system {
template <> struct is_error_code_enum<resilience::errc> : std::true_type {};
template <> struct is_error_condition_enum<resilience::condition> : std::true_type {};
}  // namespace boost::system

#endif
