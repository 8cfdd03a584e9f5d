#include <resilience/clock.hpp>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace resilience {
namespace {

class steady_clock_impl final : public clock {
public:
    time_point now() const noexcept override { return std::chrono::steady_clock::now(); }
    boost::asio::awaitable<error_code> sleep_until(time_point tp) override {
        namespace asio = boost::asio;
        asio::steady_timer t(co_await asio::this_coro::executor, tp);
        error_code ec;
        co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        co_return ec;
    }
};

}  // namespace

clock& steady_clock() noexcept {
    static steady_clock_impl c;
    return c;
}

}  // namespace resilience
