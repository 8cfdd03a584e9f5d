#define BOOST_TEST_MODULE sim_tests
#include <boost/test/unit_test.hpp>
