// Classification of error codes and HTTP statuses into the six kinds, the
// library's error category and the transient/permanent conditions.
#include <resilience/diagnostics.hpp>
#include <resilience/error.hpp>
#include <resilience/http/error.hpp>  // Beast and TLS codes: the HTTP layer's rules

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/test/unit_test.hpp>

#include "core_printers.hpp"

#include <string>

namespace asio = boost::asio;
namespace http = boost::beast::http;
using resilience::classify;
using resilience::classify_http_status;
using resilience::condition;
using resilience::errc;
using resilience::error_code;
using resilience::error_kind;

BOOST_AUTO_TEST_SUITE(core_classify)

// The nine cases of the original specification.
BOOST_AUTO_TEST_CASE(original_spec_cases) {
    const error_code network[] = {
        asio::error::connection_refused, asio::error::connection_reset, asio::error::connection_aborted,
        asio::error::timed_out,          asio::error::host_not_found,   asio::error::broken_pipe,
        asio::error::eof,
    };
    for (const auto& ec : network) {
        BOOST_TEST_CONTEXT(ec.message()) {
            BOOST_TEST(classify(ec) == error_kind::retryable_network);
            BOOST_TEST(to_string(classify(ec)) == "RETRYABLE_NETWORK");
        }
    }
    BOOST_TEST(classify_http_status(429) == error_kind::retryable_rate_limit);
    for (int s : {500, 502, 503, 504, 599}) BOOST_TEST(classify_http_status(s) == error_kind::retryable_server);
    BOOST_TEST(classify_http_status(401) == error_kind::non_retryable_auth);
    BOOST_TEST(classify_http_status(403) == error_kind::non_retryable_auth);
    for (int s : {400, 404, 405, 409, 412, 413, 422, 499})
        BOOST_TEST(classify_http_status(s) == error_kind::non_retryable_client);
    BOOST_TEST(classify(asio::error::operation_aborted) == error_kind::non_retryable_aborted);
    BOOST_TEST(classify(make_error_code(boost::system::errc::operation_canceled)) ==
               error_kind::non_retryable_aborted);
}

BOOST_AUTO_TEST_CASE(kind_names) {
    BOOST_TEST(to_string(error_kind::retryable_network) == "RETRYABLE_NETWORK");
    BOOST_TEST(to_string(error_kind::retryable_rate_limit) == "RETRYABLE_RATE_LIMIT");
    BOOST_TEST(to_string(error_kind::retryable_server) == "RETRYABLE_SERVER");
    BOOST_TEST(to_string(error_kind::non_retryable_auth) == "NON_RETRYABLE_AUTH");
    BOOST_TEST(to_string(error_kind::non_retryable_client) == "NON_RETRYABLE_CLIENT");
    BOOST_TEST(to_string(error_kind::non_retryable_aborted) == "NON_RETRYABLE_ABORTED");
    BOOST_TEST(resilience::is_retryable(error_kind::retryable_network));
    BOOST_TEST(!resilience::is_retryable(error_kind::non_retryable_aborted));
}

BOOST_AUTO_TEST_CASE(more_network_errors) {
    const error_code more[] = {
        asio::error::host_unreachable, asio::error::network_unreachable, asio::error::network_down,
        asio::error::network_reset,    asio::error::not_connected,       asio::error::host_not_found_try_again,
        boost::beast::error::timeout,  http::error::partial_message,     http::error::end_of_stream,
        asio::ssl::error::stream_truncated,
    };
    for (const auto& ec : more)
        BOOST_TEST_CONTEXT(ec.category().name() << ":" << ec.value() << " " << ec.message())
            BOOST_TEST(classify(ec) == error_kind::retryable_network);
    // A TLS handshake failure (an OpenSSL error code) is a network error.
    error_code tls(static_cast<int>(0x0A000410), asio::error::get_ssl_category());
    BOOST_TEST(classify(tls) == error_kind::retryable_network);
}

BOOST_AUTO_TEST_CASE(beast_parser_errors) {
    // The server sent something unreadable: its fault, worth retrying.
    BOOST_TEST(classify(http::error::bad_status) == error_kind::retryable_server);
    BOOST_TEST(classify(http::error::bad_chunk) == error_kind::retryable_server);
    // Our own limits: a retry gets the same answer.
    BOOST_TEST(classify(http::error::body_limit) == error_kind::non_retryable_client);
    BOOST_TEST(classify(http::error::header_limit) == error_kind::non_retryable_client);
}

BOOST_AUTO_TEST_CASE(library_codes) {
    BOOST_TEST(classify(errc::http_too_many_requests) == error_kind::retryable_rate_limit);
    BOOST_TEST(classify(errc::http_server_error) == error_kind::retryable_server);
    BOOST_TEST(classify(errc::malformed_response) == error_kind::retryable_server);
    BOOST_TEST(classify(errc::attempt_timeout) == error_kind::retryable_network);
    BOOST_TEST(classify(errc::http_unauthorized) == error_kind::non_retryable_auth);
    BOOST_TEST(classify(errc::http_forbidden) == error_kind::non_retryable_auth);
    for (errc e : {errc::http_client_error, errc::invalid_argument, errc::invalid_config, errc::quota_exhausted,
                   errc::file_failed, errc::response_too_large, errc::deadline_exceeded,
                   errc::retries_exhausted, errc::http_unexpected_status})
        BOOST_TEST_CONTEXT(make_error_code(e).message())
            BOOST_TEST(!resilience::is_retryable(classify(e)));
}

BOOST_AUTO_TEST_CASE(unknown_category_is_not_retried) {
    struct foreign_category : boost::system::error_category {
        const char* name() const noexcept override { return "foreign"; }
        std::string message(int) const override { return "foreign error"; }
    };
    static const foreign_category cat;
    BOOST_TEST(classify(error_code(7, cat)) == error_kind::non_retryable_client);
    BOOST_TEST(classify(make_error_code(boost::system::errc::permission_denied)) == error_kind::non_retryable_client);
}

BOOST_AUTO_TEST_CASE(http_status_mapping) {
    for (int s : {200, 201, 204, 299}) BOOST_TEST(!resilience::http_status_to_error(s));
    BOOST_TEST(resilience::http_status_to_error(401) == errc::http_unauthorized);
    BOOST_TEST(resilience::http_status_to_error(403) == errc::http_forbidden);
    BOOST_TEST(resilience::http_status_to_error(429) == errc::http_too_many_requests);
    BOOST_TEST(resilience::http_status_to_error(404) == errc::http_client_error);
    BOOST_TEST(resilience::http_status_to_error(503) == errc::http_server_error);
    // 408 Request Timeout: retried as a network-class failure (as the Google SDKs do).
    BOOST_TEST(resilience::http_status_to_error(408) == errc::http_request_timeout);
    BOOST_TEST(classify_http_status(408) == error_kind::retryable_network);
    BOOST_TEST(classify_http_status(400) == error_kind::non_retryable_client);
    BOOST_TEST(classify_http_status(409) == error_kind::non_retryable_client);
    for (int s : {100, 101, 301, 302, 304, 307, 0, -1, 600, 999}) {
        BOOST_TEST_CONTEXT("status " << s) {
            BOOST_TEST(resilience::http_status_to_error(s) == errc::http_unexpected_status);
            BOOST_TEST(classify_http_status(s) == error_kind::non_retryable_client);
        }
    }
}

BOOST_AUTO_TEST_CASE(conditions) {
    BOOST_TEST((error_code(asio::error::connection_reset) == condition::transient));
    BOOST_TEST((error_code(asio::error::connection_reset) != condition::permanent));
    BOOST_TEST((make_error_code(errc::http_too_many_requests) == condition::transient));
    BOOST_TEST((make_error_code(errc::http_server_error) == condition::transient));
    BOOST_TEST((make_error_code(errc::http_forbidden) == condition::permanent));
    BOOST_TEST((make_error_code(errc::http_client_error) == condition::permanent));
    BOOST_TEST((error_code(asio::error::operation_aborted) == condition::permanent));
    BOOST_TEST((error_code(asio::error::operation_aborted) != condition::transient));
    // success matches neither
    BOOST_TEST((error_code() != condition::transient));
    BOOST_TEST((error_code() != condition::permanent));
    BOOST_TEST(std::string(resilience::condition_category().name()) == "resilience.condition");
    BOOST_TEST(make_error_condition(condition::transient).message().find("unknown") == std::string::npos);
    BOOST_TEST(make_error_condition(condition::permanent).message().find("unknown") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(every_errc_has_a_message) {
    BOOST_TEST(std::string(resilience::error_category().name()) == "resilience");
    for (int v = static_cast<int>(errc::success); v <= static_cast<int>(errc::untrusted_url); ++v) {
        error_code ec = make_error_code(static_cast<errc>(v));
        BOOST_TEST_CONTEXT("errc " << v) {
            BOOST_TEST((ec.category() == resilience::error_category()));
            BOOST_TEST(!ec.message().empty());
            BOOST_TEST(ec.message().find("unknown") == std::string::npos);
            BOOST_TEST(std::string(ec.category().name()) == "resilience");
        }
    }
    // Past the last value: a message, not a crash.
    BOOST_TEST(!make_error_code(static_cast<errc>(1000)).message().empty());
}

BOOST_AUTO_TEST_SUITE_END()
