// Classification of error codes and HTTP statuses into the six kinds, the
// categories of each layer (core, HTTP, Gemini) and the conditions.
#include <resilience/diagnostics.hpp>
#include <resilience/error.hpp>
#include <resilience/gemini/error.hpp>
#include <resilience/http/error.hpp>  // Beast and TLS codes: the HTTP layer's rules

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/system/errc.hpp>
#include <boost/test/unit_test.hpp>

#include "core_printers.hpp"

#include <string>
#include <utility>
#include <vector>

namespace asio = boost::asio;
namespace http = boost::beast::http;
using resilience::classify;
using resilience::http::classify_status;
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
    BOOST_TEST(classify_status(429) == error_kind::retryable_rate_limit);
    for (int s : {500, 502, 503, 504, 599}) BOOST_TEST(classify_status(s) == error_kind::retryable_server);
    BOOST_TEST(classify_status(401) == error_kind::non_retryable_auth);
    BOOST_TEST(classify_status(403) == error_kind::non_retryable_auth);
    for (int s : {400, 404, 405, 409, 412, 413, 422, 499})
        BOOST_TEST(classify_status(s) == error_kind::non_retryable_client);
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

// One row per code of a layer: its kind and the conditions it matches.
struct code_row {
    error_code ec;
    error_kind kind;
    condition own;  // the most specific condition
};

// Every condition, and whether a code whose own condition is `own` matches it.
void check_conditions(const error_code& ec, condition own) {
    const condition all[] = {condition::transient, condition::permanent, condition::throttled,
                             condition::deadline,  condition::network,   condition::auth,
                             condition::cancelled, condition::timeout};
    for (condition c : all) {
        BOOST_TEST_CONTEXT("condition " << make_error_condition(c).message()) {
            BOOST_TEST((ec == c) == resilience::condition_matches(own, c));
        }
    }
    // transient and permanent split every failure in two.
    BOOST_TEST((ec == condition::transient) != (ec == condition::permanent));
}

void check_rows(const std::vector<code_row>& rows, const char* category, int first, int last) {
    BOOST_TEST(rows.size() == static_cast<std::size_t>(last - first + 1));  // every value has its row
    for (const auto& r : rows) {
        BOOST_TEST_CONTEXT(r.ec.category().name() << ":" << r.ec.value() << " " << r.ec.message()) {
            BOOST_TEST(std::string(r.ec.category().name()) == category);
            BOOST_TEST(!r.ec.message().empty());
            BOOST_TEST(r.ec.message().find("unknown") == std::string::npos);
            BOOST_TEST(to_string(classify(r.ec)) == to_string(r.kind));
            BOOST_TEST((r.ec.default_error_condition() == make_error_condition(r.own)));
            check_conditions(r.ec, r.own);
        }
    }
    // Past the last value: a message naming the category, not a crash, no condition.
    error_code past(last + 1000, rows.front().ec.category());
    BOOST_TEST(past.message().find("unknown") != std::string::npos);
    BOOST_TEST(classify(past) == error_kind::non_retryable_client);
    BOOST_TEST((past != condition::transient));
}

BOOST_AUTO_TEST_CASE(core_codes) {
    using E = errc;
    const std::vector<code_row> rows = {
        {E::circuit_open, error_kind::retryable_server, condition::transient},
        {E::retries_exhausted, error_kind::non_retryable_client, condition::permanent},
        {E::retry_budget_exhausted, error_kind::non_retryable_client, condition::permanent},
        {E::deadline_exceeded, error_kind::non_retryable_client, condition::deadline},
        {E::attempt_timeout, error_kind::retryable_network, condition::timeout},
        {E::invalid_argument, error_kind::non_retryable_client, condition::permanent},
        {E::invalid_config, error_kind::non_retryable_client, condition::permanent},
        {E::operation_threw, error_kind::non_retryable_client, condition::permanent},
    };
    check_rows(rows, "resilience", 1, static_cast<int>(E::operation_threw));
    BOOST_TEST((make_error_code(E::circuit_open).category() == resilience::error_category()));
    BOOST_TEST(make_error_code(E::success).message() == "success");
    BOOST_TEST(!make_error_code(E::success));
    BOOST_TEST((make_error_code(E::success) != condition::transient));
    BOOST_TEST((make_error_code(E::success) != condition::permanent));
}

BOOST_AUTO_TEST_CASE(http_codes) {
    using E = resilience::http::errc;
    const std::vector<code_row> rows = {
        {E::unauthorized, error_kind::non_retryable_auth, condition::auth},
        {E::forbidden, error_kind::non_retryable_auth, condition::auth},
        {E::too_many_requests, error_kind::retryable_rate_limit, condition::throttled},
        {E::request_timeout, error_kind::retryable_network, condition::timeout},
        {E::client_error, error_kind::non_retryable_client, condition::permanent},
        {E::server_error, error_kind::retryable_server, condition::transient},
        {E::unexpected_status, error_kind::non_retryable_client, condition::permanent},
        {E::malformed_response, error_kind::retryable_server, condition::transient},
        {E::response_too_large, error_kind::non_retryable_client, condition::permanent},
    };
    check_rows(rows, "resilience.http", 1, static_cast<int>(E::response_too_large));
    BOOST_TEST((make_error_code(E::forbidden).category() == resilience::http::error_category()));
    BOOST_TEST((make_error_code(E::forbidden).category() != resilience::error_category()));
    // The printed messages are those of 0.x.
    BOOST_TEST(make_error_code(E::forbidden).message() == "HTTP 403 forbidden");
    BOOST_TEST(make_error_code(E::too_many_requests).message() == "HTTP 429 too many requests");
}

BOOST_AUTO_TEST_CASE(gemini_codes) {
    using E = resilience::gemini::errc;
    const std::vector<code_row> rows = {
        {E::quota_exhausted, error_kind::non_retryable_client, condition::permanent},
        {E::file_failed, error_kind::non_retryable_client, condition::permanent},
        {E::file_not_active, error_kind::non_retryable_client, condition::permanent},
        {E::untrusted_url, error_kind::non_retryable_client, condition::permanent},
    };
    check_rows(rows, "resilience.gemini", 1, static_cast<int>(E::untrusted_url));
    BOOST_TEST((make_error_code(E::file_failed).category() == resilience::gemini::error_category()));
    // A quota that no retry window clears is not throttling.
    BOOST_TEST((make_error_code(E::quota_exhausted) != condition::throttled));
}

// Another library's codes reach every kind through the conditions their
// category maps them to, with default_error_condition (one condition per
// code) or equivalent (several).
class mapped_category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "mapped"; }
    std::string message(int ev) const override { return "mapped " + std::to_string(ev); }
    // The value is the condition's value; 100: no condition.
    boost::system::error_condition default_error_condition(int ev) const noexcept override {
        if (ev >= 1 && ev <= static_cast<int>(condition::timeout)) return make_error_condition(static_cast<condition>(ev));
        return {ev, *this};
    }
};
const mapped_category mapped;

// One code that says both "throttled" and "transient" through equivalent().
class equivalent_category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "equivalent"; }
    std::string message(int) const override { return "busy"; }
    bool equivalent(int, const boost::system::error_condition& c) const noexcept override {
        return c == condition::throttled || c == condition::transient;
    }
};
const equivalent_category equivalent;

BOOST_AUTO_TEST_CASE(foreign_codes_reach_every_kind_through_conditions) {
    const std::pair<condition, error_kind> table[] = {
        {condition::network, error_kind::retryable_network},
        {condition::throttled, error_kind::retryable_rate_limit},
        {condition::transient, error_kind::retryable_server},
        {condition::auth, error_kind::non_retryable_auth},
        {condition::permanent, error_kind::non_retryable_client},
        {condition::deadline, error_kind::non_retryable_client},
        {condition::cancelled, error_kind::non_retryable_aborted},
        {condition::timeout, error_kind::retryable_network},
    };
    for (auto [c, kind] : table) {
        const error_code ec(static_cast<int>(c), mapped);
        BOOST_TEST_CONTEXT(make_error_condition(c).message()) {
            BOOST_TEST(to_string(classify(ec)) == to_string(kind));
            BOOST_TEST(resilience::to_kind(c) == kind);
            check_conditions(ec, c);
        }
    }
    BOOST_TEST(classify(error_code(100, mapped)) == error_kind::non_retryable_client);
    const error_code busy(1, equivalent);
    BOOST_TEST(classify(busy) == error_kind::retryable_rate_limit);
    BOOST_TEST((busy == condition::transient));
    BOOST_TEST((busy == condition::throttled));
    BOOST_TEST((busy != condition::permanent));
}

// error_kind_count is the number of kinds: every value below it has a
// name, the next one has none (an array indexed by error_kind fits them all).
BOOST_AUTO_TEST_CASE(error_kind_count_covers_every_kind) {
    static_assert(resilience::error_kind_count == 6);
    for (std::size_t k = 0; k < resilience::error_kind_count; ++k)
        BOOST_TEST(to_string(static_cast<error_kind>(k)) != "UNKNOWN");
    BOOST_TEST(to_string(static_cast<error_kind>(resilience::error_kind_count)) == "UNKNOWN");
}

BOOST_AUTO_TEST_CASE(condition_names) {
    BOOST_TEST(std::string(resilience::condition_category().name()) == "resilience.condition");
    for (int v = 1; v <= static_cast<int>(condition::timeout); ++v)
        BOOST_TEST_CONTEXT("condition " << v)
            BOOST_TEST(make_error_condition(static_cast<condition>(v)).message().find("unknown") == std::string::npos);
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
    for (int s : {200, 201, 204, 299}) BOOST_TEST(!resilience::http::status_to_error(s));
    BOOST_TEST(resilience::http::status_to_error(401) == resilience::http::errc::unauthorized);
    BOOST_TEST(resilience::http::status_to_error(403) == resilience::http::errc::forbidden);
    BOOST_TEST(resilience::http::status_to_error(429) == resilience::http::errc::too_many_requests);
    BOOST_TEST(resilience::http::status_to_error(404) == resilience::http::errc::client_error);
    BOOST_TEST(resilience::http::status_to_error(503) == resilience::http::errc::server_error);
    // 408 Request Timeout: retried as a network-class failure (as the Google SDKs do).
    BOOST_TEST(resilience::http::status_to_error(408) == resilience::http::errc::request_timeout);
    BOOST_TEST(classify_status(408) == error_kind::retryable_network);
    BOOST_TEST(classify_status(400) == error_kind::non_retryable_client);
    BOOST_TEST(classify_status(409) == error_kind::non_retryable_client);
    for (int s : {100, 101, 301, 302, 304, 307, 0, -1, 600, 999}) {
        BOOST_TEST_CONTEXT("status " << s) {
            BOOST_TEST(resilience::http::status_to_error(s) == resilience::http::errc::unexpected_status);
            BOOST_TEST(classify_status(s) == error_kind::non_retryable_client);
        }
    }
}

BOOST_AUTO_TEST_CASE(conditions) {
    BOOST_TEST((error_code(asio::error::connection_reset) == condition::transient));
    BOOST_TEST((error_code(asio::error::connection_reset) != condition::permanent));
    BOOST_TEST((make_error_code(resilience::http::errc::too_many_requests) == condition::transient));
    BOOST_TEST((make_error_code(resilience::http::errc::server_error) == condition::transient));
    BOOST_TEST((make_error_code(resilience::http::errc::forbidden) == condition::permanent));
    BOOST_TEST((make_error_code(resilience::http::errc::client_error) == condition::permanent));
    BOOST_TEST((error_code(asio::error::operation_aborted) == condition::permanent));
    BOOST_TEST((error_code(asio::error::operation_aborted) != condition::transient));
    // Codes of categories that know nothing of our conditions match through their kind.
    BOOST_TEST((error_code(asio::error::connection_reset) == condition::network));
    BOOST_TEST((error_code(boost::beast::error::timeout) == condition::network));
    BOOST_TEST((error_code(http::error::bad_status) == condition::transient));
    BOOST_TEST((error_code(http::error::bad_status) != condition::network));
    BOOST_TEST((error_code(asio::error::operation_aborted) == condition::cancelled));
    BOOST_TEST((error_code(asio::error::operation_aborted) != condition::deadline));
    BOOST_TEST((error_code(asio::error::timed_out) != condition::deadline));
}

// One condition for every code that means "ran out of time" (error.hpp,
// "Running out of time"); `deadline` picks out the one never retried.
BOOST_AUTO_TEST_CASE(one_condition_for_running_out_of_time) {
    const error_code timed_out[] = {
        make_error_code(errc::deadline_exceeded),                 // the caller's deadline
        make_error_code(errc::attempt_timeout),                   // an attempt's bound
        asio::error::timed_out,                                   // an HTTP step limit, ETIMEDOUT
        make_error_code(boost::system::errc::timed_out),          // the generic code
        make_error_code(resilience::http::errc::request_timeout), // HTTP 408
    };
    for (const auto& ec : timed_out) {
        BOOST_TEST_CONTEXT(ec.category().name() << ": " << ec.message()) {
            BOOST_TEST((ec == condition::timeout));
            BOOST_TEST(((ec == condition::deadline) == (ec == errc::deadline_exceeded)));
            // Only the deadline is final; every other timeout is a retried network failure.
            BOOST_TEST((ec == condition::transient) == (ec != errc::deadline_exceeded));
            BOOST_TEST(resilience::is_retryable(classify(ec)) == (ec != errc::deadline_exceeded));
        }
    }
    const error_code not_timed_out[] = {
        asio::error::connection_reset, asio::error::operation_aborted, make_error_code(errc::circuit_open),
        make_error_code(errc::retries_exhausted), make_error_code(resilience::http::errc::server_error),
        make_error_code(resilience::http::errc::too_many_requests), error_code(),
    };
    // The generic-category ETIMEDOUT is classified as Asio's is.
    BOOST_TEST(classify(make_error_code(boost::system::errc::timed_out)) == error_kind::retryable_network);
    for (const auto& ec : not_timed_out)
        BOOST_TEST_CONTEXT(ec.category().name() << ": " << ec.message()) BOOST_TEST((ec != condition::timeout));
    // Beast's own timeout (which the HTTP client maps to one of the codes
    // above) is a network failure with Beast's condition.
    BOOST_TEST((error_code(boost::beast::error::timeout) == boost::beast::condition::timeout));
    BOOST_TEST((error_code(boost::beast::error::timeout) == condition::network));
    // The classifier reads the condition: a code of another library that maps
    // to `timeout` is retried as a network failure, one that maps to
    // `deadline` is not retried and is a timeout too.
    const error_code foreign_timeout(static_cast<int>(condition::timeout), mapped);
    BOOST_TEST(classify(foreign_timeout) == error_kind::retryable_network);
    const error_code foreign_deadline(static_cast<int>(condition::deadline), mapped);
    BOOST_TEST(classify(foreign_deadline) == error_kind::non_retryable_client);
    BOOST_TEST((foreign_deadline == condition::timeout));
    // success matches neither
    BOOST_TEST((error_code() != condition::transient));
    BOOST_TEST((error_code() != condition::permanent));
    BOOST_TEST(std::string(resilience::condition_category().name()) == "resilience.condition");
    BOOST_TEST(make_error_condition(condition::transient).message().find("unknown") == std::string::npos);
    BOOST_TEST(make_error_condition(condition::permanent).message().find("unknown") == std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
