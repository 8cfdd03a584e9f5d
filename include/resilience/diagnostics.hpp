#ifndef RESILIENCE_DIAGNOSTICS_HPP
#define RESILIENCE_DIAGNOSTICS_HPP

// What the library knows about a failure beyond its error_code, and the
// result type every public awaitable returns.
//
// Error model (one for the whole library): public awaitables return
// `resilience::result<T>`, which holds either a T or a `failure` (an
// error_code plus diagnostics). Calling `.value()` on a failed result throws
// `resilience::error`, the one exception type of the library, which carries
// both. Code that prefers exceptions writes `(co_await op(...)).value()`.

#include <resilience/error.hpp>

#include <boost/system/result.hpp>
#include <boost/system/system_error.hpp>

#include <chrono>
#include <optional>
#include <string>

namespace resilience {

using duration = std::chrono::steady_clock::duration;
using time_point = std::chrono::steady_clock::time_point;

/// Why the retry loop stopped without success.
enum class give_up_reason : unsigned char {
    none,           ///< it did not give up (success, or not finished)
    non_retryable,  ///< the classifier called the failure non-retryable
    max_retries,    ///< max_retries retries were made
    deadline,       ///< the next attempt or backoff would end past the deadline
    budget,         ///< the retry budget refused a retry
    circuit_open,   ///< the breaker was open and the call chose to fail fast
    cancelled,      ///< per-operation cancellation
};
std::string_view to_string(give_up_reason r) noexcept;

/// What is known about a failure. Never carries an API key, a request
/// header or a query string.
struct diagnostics {
    int http_status = 0;              ///< HTTP status of the last answer, 0 if none
    std::string status;               ///< Google status string, e.g. "RESOURCE_EXHAUSTED"
    std::string message;              ///< the server's message, or a description of a local failure
    std::optional<duration> retry_after;  ///< pushback asked for by the server (uncapped)
    std::string quota_id;             ///< QuotaFailure quotaId, when the server named one
    std::string reason;               ///< ErrorInfo reason, e.g. "API_KEY_INVALID"
    int attempts = 0;                 ///< attempts made (filled in by the retry loop)
    duration elapsed{};               ///< time from the first attempt to the end
    give_up_reason gave_up = give_up_reason::none;
};

/// `s` cut to at most `max` bytes, with "..." appended when cut: how server
/// text (a body's first line, an error envelope's fields) enters diagnostics.
std::string bounded_text(std::string_view s, std::size_t max = 512);

/// An error_code and its diagnostics.
struct failure {
    error_code code;
    diagnostics diag;

    failure() = default;
    failure(error_code ec) : code(ec) {}  // NOLINT: implicit on purpose
    failure(error_code ec, std::string message) : code(ec) { diag.message = std::move(message); }
    failure(error_code ec, diagnostics d) : code(ec), diag(std::move(d)) {}

    /// The message for humans: the diagnostics' message, or the code's.
    std::string what() const;
};

/// The exception thrown by result<T>::value() on failure.
class error : public boost::system::system_error {
public:
    explicit error(failure f);
    const diagnostics& diag() const noexcept { return f_.diag; }
    const failure& get_failure() const noexcept { return f_; }

private:
    failure f_;
};

[[noreturn]] void throw_exception_from_error(const failure& f, const boost::source_location& loc);

template <class T>
using result = boost::system::result<T, failure>;

}  // namespace resilience

#endif
