#ifndef RESILIENCE_TEST_COMMON_HPP
#define RESILIENCE_TEST_COMMON_HPP

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <exception>

namespace test {

/// Completion handler for co_spawn that rethrows, so a failing assertion or
/// an unexpected exception inside a coroutine fails the test (never `detached`).
struct rethrow {
    void operator()(std::exception_ptr p) const {
        if (p) std::rethrow_exception(p);
    }
    template <class T>
    void operator()(std::exception_ptr p, T&&) const {
        if (p) std::rethrow_exception(p);
    }
};

}  // namespace test

#endif
