#define BOOST_TEST_MODULE resilience_unit
#include <boost/test/unit_test.hpp>
