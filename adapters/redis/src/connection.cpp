#include "connection.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <new>

namespace resilience::redis::detail {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

std::string_view text(const redisReply* r) noexcept {
    if (!r || !r->str) return {};
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR)
        return {r->str, r->len};
    return {};
}

connection::connection(asio::any_io_executor ex) : sock_(ex), timer_(ex), reader_(redisReaderCreate()) {
    if (!reader_) throw std::bad_alloc();
}

connection::~connection() { redisReaderFree(reader_); }

void connection::close() noexcept {
    error_code ignored;
    sock_.shutdown(tcp::socket::shutdown_both, ignored);
    sock_.close(ignored);
    timer_.cancel();
}

asio::awaitable<error_code> connection::connect_only(std::string host, std::uint16_t port) {
    tcp::resolver resolver(sock_.get_executor());
    const std::string service = std::to_string(port);
    auto [ec, endpoints] = co_await resolver.async_resolve(host, service, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return ec;
    auto [cec, ep] = co_await asio::async_connect(sock_, endpoints, asio::as_tuple(asio::use_awaitable));
    if (cec) co_return cec;
    error_code ignored;
    sock_.set_option(tcp::no_delay(true), ignored);
    co_return error_code{};
}

asio::awaitable<error_code> connection::connect(std::string host, std::uint16_t port, duration timeout) {
    timer_.expires_after(timeout);
    auto op = connect_only(std::move(host), port);
    auto wait = timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    auto r = co_await (std::move(op) || std::move(wait));
    if (r.index() == 1) {
        close();
        co_return make_error_code(errc::timeout);
    }
    co_return std::get<0>(r);
}

asio::awaitable<reply_result> connection::read_one() {
    for (;;) {
        void* out = nullptr;
        if (redisReaderGetReply(reader_, &out) != REDIS_OK) co_return reply_result{make_error_code(errc::protocol_error), nullptr};
        if (out) co_return reply_result{error_code{}, reply_ptr(static_cast<redisReply*>(out))};
        auto [ec, n] = co_await sock_.async_read_some(asio::buffer(buf_), asio::as_tuple(asio::use_awaitable));
        if (ec) co_return reply_result{ec, nullptr};
        if (redisReaderFeed(reader_, buf_.data(), n) != REDIS_OK)
            co_return reply_result{make_error_code(errc::protocol_error), nullptr};
    }
}

asio::awaitable<reply_result> connection::read() { co_return co_await read_one(); }

namespace {
std::string format(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    argv.reserve(args.size());
    lens.reserve(args.size());
    for (const auto& a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
    }
    char* cmd = nullptr;
    const int n = redisFormatCommandArgv(&cmd, static_cast<int>(args.size()), argv.data(), lens.data());
    if (n < 0 || !cmd) throw std::bad_alloc();
    std::string out(cmd, static_cast<std::size_t>(n));
    redisFreeCommand(cmd);
    return out;
}
}  // namespace

asio::awaitable<reply_result> connection::exec(std::vector<std::string> args, duration timeout) {
    const std::string wire = format(args);
    timer_.expires_after(timeout);
    auto io = [this, &wire]() -> asio::awaitable<reply_result> {
        auto [ec, n] = co_await asio::async_write(sock_, asio::buffer(wire), asio::as_tuple(asio::use_awaitable));
        (void)n;
        if (ec) co_return reply_result{ec, nullptr};
        co_return co_await read_one();
    };
    auto op = io();
    auto wait = timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    auto r = co_await (std::move(op) || std::move(wait));
    if (r.index() == 1) co_return reply_result{make_error_code(errc::timeout), nullptr};
    co_return std::move(std::get<0>(r));
}

}  // namespace resilience::redis::detail
