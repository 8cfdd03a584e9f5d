// The HTTP layer's error category, status mapping and its part of the
// default classification (Beast and TLS codes).
#include <resilience/http/error.hpp>

#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <string>

namespace resilience::http {
namespace {

// The most specific condition of each code (see error.hpp).
std::optional<condition> condition_of(int ev) noexcept {
    switch (static_cast<errc>(ev)) {
    case errc::unauthorized:
    case errc::forbidden: return condition::auth;
    case errc::too_many_requests: return condition::throttled;
    case errc::request_timeout: return condition::timeout;
    case errc::server_error:
    case errc::malformed_response: return condition::transient;
    case errc::client_error:
    case errc::unexpected_status:
    case errc::response_too_large: return condition::permanent;
    }
    return std::nullopt;
}

class http_category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "resilience.http"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
        case errc::unauthorized: return "HTTP 401 unauthorized";
        case errc::forbidden: return "HTTP 403 forbidden";
        case errc::too_many_requests: return "HTTP 429 too many requests";
        case errc::request_timeout: return "HTTP 408 request timeout";
        case errc::client_error: return "HTTP client error (4xx)";
        case errc::server_error: return "HTTP server error (5xx)";
        case errc::unexpected_status: return "unexpected HTTP status";
        case errc::malformed_response: return "malformed response";
        case errc::response_too_large: return "response exceeds the size limit";
        }
        return "unknown resilience.http error";
    }
    boost::system::error_condition default_error_condition(int ev) const noexcept override {
        if (auto c = condition_of(ev)) return resilience::make_error_condition(*c);
        return {ev, *this};
    }
    bool equivalent(int ev, const boost::system::error_condition& cond) const noexcept override {
        if (cond.category() == condition_category()) {
            auto c = condition_of(ev);
            return c && condition_matches(*c, static_cast<condition>(cond.value()));
        }
        return default_error_condition(ev) == cond;
    }
};

}  // namespace

const boost::system::error_category& error_category() noexcept {
    static const http_category c;
    return c;
}

error_code status_to_error(int status) noexcept {
    if (status >= 200 && status < 300) return {};
    if (status == 401) return errc::unauthorized;
    if (status == 403) return errc::forbidden;
    if (status == 408) return errc::request_timeout;
    if (status == 429) return errc::too_many_requests;
    if (status >= 400 && status < 500) return errc::client_error;
    if (status >= 500 && status < 600) return errc::server_error;
    return errc::unexpected_status;
}

error_kind classify_status(int status) noexcept { return classify(status_to_error(status)); }

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
