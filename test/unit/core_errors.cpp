// The error model: failure, diagnostics, result<T>, the exception type.
#include <resilience/http/error.hpp>
#include <resilience/diagnostics.hpp>

#include <boost/asio/error.hpp>
#include <boost/test/unit_test.hpp>

#include "core_printers.hpp"

using resilience::errc;
using resilience::failure;

BOOST_AUTO_TEST_SUITE(core_errors)

BOOST_AUTO_TEST_CASE(failure_what) {
    failure a(make_error_code(resilience::http::errc::forbidden));
    BOOST_TEST(a.what() == "HTTP 403 forbidden");
    failure b(make_error_code(resilience::http::errc::forbidden), "You do not have permission");
    BOOST_TEST(b.what() == "You do not have permission");
}

BOOST_AUTO_TEST_CASE(result_value_throws_error_with_diagnostics) {
    resilience::diagnostics d;
    d.http_status = 429;
    d.status = "RESOURCE_EXHAUSTED";
    d.message = "quota";
    d.attempts = 3;
    resilience::result<int> r = failure(make_error_code(resilience::http::errc::too_many_requests), d);
    BOOST_TEST(!r);
    try {
        (void)r.value();
        BOOST_FAIL("value() did not throw");
    } catch (const resilience::error& e) {
        BOOST_TEST(e.code() == resilience::http::errc::too_many_requests);
        BOOST_TEST(e.diag().http_status == 429);
        BOOST_TEST(e.diag().attempts == 3);
        BOOST_TEST(std::string(e.what()).find("quota") != std::string::npos);
    }
    // It is a boost::system::system_error too.
    BOOST_CHECK_THROW((void)r.value(), boost::system::system_error);
    resilience::result<int> ok = 5;
    BOOST_TEST(ok.value() == 5);
}

BOOST_AUTO_TEST_CASE(give_up_reason_names) {
    using resilience::give_up_reason;
    for (auto r : {give_up_reason::none, give_up_reason::non_retryable, give_up_reason::max_retries,
                   give_up_reason::deadline, give_up_reason::budget, give_up_reason::circuit_open,
                   give_up_reason::cancelled})
        BOOST_TEST(to_string(r) != "unknown");
}

BOOST_AUTO_TEST_SUITE_END()
