// The HTTP layer's part of the default classification (Beast and TLS codes).
#include <resilience/http/error.hpp>

#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace resilience::http {

std::optional<error_kind> classify_transport(const error_code& ec) noexcept {
    namespace beast_http = boost::beast::http;
    // A certificate the client refuses (unknown issuer, wrong host name) is a
    // TLS handshake failure that no retry mends: not retried.
    if (ec.category() == boost::asio::error::get_ssl_category()) {
        if (ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_CERTIFICATE_VERIFY_FAILED)
            return error_kind::non_retryable_client;
        return error_kind::retryable_network;
    }
    if (ec == boost::asio::ssl::error::stream_truncated || ec == boost::beast::error::timeout ||
        ec == beast_http::error::end_of_stream || ec == beast_http::error::partial_message)
        return error_kind::retryable_network;
    if (ec.category() == make_error_code(beast_http::error::need_more).category()) {
        // A response the parser could not read: the server (or a proxy) misbehaved,
        // except for our own size limits, which no retry changes.
        if (ec == beast_http::error::body_limit || ec == beast_http::error::header_limit ||
            ec == beast_http::error::buffer_overflow)
            return error_kind::non_retryable_client;
        return error_kind::retryable_server;
    }
    return std::nullopt;
}

namespace detail {
bool register_transport_classifier() noexcept { return add_classifier(&classify_transport); }
}  // namespace detail

}  // namespace resilience::http
