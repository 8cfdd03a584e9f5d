// Stands for another Asio-based library in the same program, compiled with
// Asio's default (header-only) configuration like the rest of the consumer.
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <memory>

int* other_library_start(boost::asio::io_context& ctx) {
    static int ticks = 0;
    auto timer = std::make_shared<boost::asio::steady_timer>(ctx, std::chrono::milliseconds(1));
    timer->async_wait([timer](boost::system::error_code ec) {
        if (!ec) ++ticks;
    });
    boost::asio::post(ctx, [] { ++ticks; });
    return &ticks;
}
