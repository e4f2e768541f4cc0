// The one module definition of unit_persistence (other files of this
// executable, such as usage_log_test.cpp, define none).
#define BOOST_TEST_MODULE unit_persistence
#include <boost/test/unit_test.hpp>
