#ifndef RESILIENCE_HTTP_ERROR_HPP
#define RESILIENCE_HTTP_ERROR_HPP

// Classification of the transport's codes: Beast's (timeouts, the HTTP
// parser) and TLS's (asio::ssl, OpenSSL). The core's classifier knows only
// Asio's and its own codes; including this header (every HTTP header does)
// registers these rules with resilience::add_classifier(), so
// resilience::classify() and `ec == condition::transient` cover them.

#include <resilience/error.hpp>

#include <optional>

namespace resilience::http {

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

#endif
