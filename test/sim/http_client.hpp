#ifndef RESILIENCE_TEST_SIM_HTTP_CLIENT_HPP
#define RESILIENCE_TEST_SIM_HTTP_CLIENT_HPP

// Raw HTTP/1.1 clients for the simulator tests: a blocking keep-alive client
// (for a server on its own threads) and a coroutine one (for a server on the
// test's io_context in virtual time).

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <string>
#include <utility>
#include <vector>

namespace simtest {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using response = http::response<http::string_body>;
using headers = std::vector<std::pair<std::string, std::string>>;

inline http::request<http::string_body> make_request(http::verb method, const std::string& target,
                                                     const std::string& body, const headers& hs) {
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    for (const auto& [k, v] : hs) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    return req;
}

/// The path and query of a URL ("http://host:port/path?q" -> "/path?q").
inline std::string target_of(const std::string& url) {
    auto p = url.find("://");
    auto slash = url.find('/', p == std::string::npos ? 0 : p + 3);
    return slash == std::string::npos ? "/" : url.substr(slash);
}

inline json::value body_json(const response& res) { return json::parse(res.body()); }

class sync_client {
public:
    explicit sync_client(unsigned short port) : stream_(ioc_) { connect(port); }

    void connect(unsigned short port) {
        port_ = port;
        stream_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    }

    /// Sends a request and reads the answer; `ec` is set on a transport failure.
    response send(http::verb method, const std::string& target, const std::string& body, const headers& hs,
                  beast::error_code& ec) {
        ec = {};
        if (!stream_.socket().is_open()) connect(port_);
        auto req = make_request(method, target, body, hs);
        http::write(stream_, req, ec);
        response res;
        if (ec) return res;
        http::response_parser<http::string_body> parser;
        parser.body_limit(256u << 20);
        http::read(stream_, buffer_, parser, ec);
        if (ec) {
            beast::error_code ignored;
            stream_.socket().close(ignored);
            buffer_.clear();
            return res;
        }
        res = parser.release();
        if (!res.keep_alive()) {
            beast::error_code ignored;
            stream_.socket().close(ignored);
            buffer_.clear();
        }
        return res;
    }

    response send(http::verb method, const std::string& target, const std::string& body = {},
                  const headers& hs = {}) {
        beast::error_code ec;
        auto res = send(method, target, body, hs, ec);
        if (ec) throw beast::system_error(ec);
        return res;
    }

    /// Writes raw bytes and reads one answer.
    response send_raw(const std::string& bytes, beast::error_code& ec) {
        asio::write(stream_.socket(), asio::buffer(bytes), ec);
        response res;
        if (ec) return res;
        http::read(stream_, buffer_, res, ec);
        return res;
    }

private:
    asio::io_context ioc_;
    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    unsigned short port_ = 0;
};

/// A coroutine keep-alive client on the caller's executor.
class async_client {
public:
    explicit async_client(asio::any_io_executor ex, unsigned short port) : stream_(ex), port_(port) {}

    /// Sends on the kept-alive connection; if the server closed it meanwhile
    /// (its idle timeout), sends once more on a new one, as HTTP clients do.
    asio::awaitable<response> send(http::verb method, std::string target, std::string body = {}, headers hs = {}) {
        constexpr auto tuple = asio::as_tuple(asio::use_awaitable);
        const bool reused = stream_.socket().is_open();
        auto req = make_request(method, target, body, hs);
        response res;
        beast::error_code ec;
        if (reused) {
            auto [wec, wn] = co_await http::async_write(stream_, req, tuple);
            (void)wn;
            ec = wec;
            if (!ec) {
                auto [rec, rn] = co_await http::async_read(stream_, buffer_, res, tuple);
                (void)rn;
                ec = rec;
            }
            if (!ec) co_return finish(std::move(res));
            beast::error_code ignored;
            stream_.socket().close(ignored);
            buffer_.clear();
            res = {};
        }
        tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port_);
        co_await stream_.async_connect(ep, asio::use_awaitable);
        co_await http::async_write(stream_, req, asio::use_awaitable);
        co_await http::async_read(stream_, buffer_, res, asio::use_awaitable);
        co_return finish(std::move(res));
    }

private:
    response finish(response res) {
        if (!res.keep_alive()) {
            beast::error_code ignored;
            stream_.socket().close(ignored);
            buffer_.clear();
        }
        return res;
    }

    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    unsigned short port_;
};

}  // namespace simtest

#endif
