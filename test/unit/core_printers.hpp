#ifndef RESILIENCE_TEST_CORE_PRINTERS_HPP
#define RESILIENCE_TEST_CORE_PRINTERS_HPP

// Boost.Test printers for the enums of each layer (found by ADL), so that failed
// assertions show names instead of failing to compile.
#include <resilience/backoff.hpp>
#include <resilience/events.hpp>
#include <resilience/gemini/error.hpp>
#include <resilience/http/error.hpp>

#include <boost/test/unit_test.hpp>

#include <ostream>

namespace resilience {
inline std::ostream& boost_test_print_type(std::ostream& os, errc e) { return os << make_error_code(e).message(); }
inline std::ostream& boost_test_print_type(std::ostream& os, condition c) { return os << make_error_condition(c).message(); }
inline std::ostream& boost_test_print_type(std::ostream& os, error_kind k) { return os << to_string(k); }
inline std::ostream& boost_test_print_type(std::ostream& os, give_up_reason r) { return os << to_string(r); }
inline std::ostream& boost_test_print_type(std::ostream& os, event_type t) { return os << to_string(t); }
inline std::ostream& boost_test_print_type(std::ostream& os, jitter_mode j) { return os << to_string(j); }
}  // namespace resilience
namespace resilience::http {
inline std::ostream& boost_test_print_type(std::ostream& os, errc e) { return os << make_error_code(e).message(); }
}  // namespace resilience::http
namespace resilience::gemini {
inline std::ostream& boost_test_print_type(std::ostream& os, errc e) { return os << make_error_code(e).message(); }
}  // namespace resilience::gemini

BOOST_TEST_DONT_PRINT_LOG_VALUE(resilience::time_point)

#endif
