#ifndef RESILIENCE_TEST_HTTP_TEST_SERVER_HPP
#define RESILIENCE_TEST_HTTP_TEST_SERVER_HPP

// A small scriptable HTTP(S) server on loopback for tests. It runs on the
// test's io_context (no thread). Each accepted connection runs a script, a
// coroutine that receives a `server_conn` and does what the test wants:
// read requests, answer them properly, write raw bytes, stall, reset.
//
//   test_http::server srv(ctx.get_executor(), test_http::serve([](const auto& req) {
//       return test_http::make_response(200, "{}");
//   }));
//   ... client.send(url = srv.url("/x")) ...
//   srv.stop();   // closes the listener and every connection
//
// Also: certificates made at test time with the OpenSSL C API (a CA and
// leaf certificates it signs).

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace test_http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

using http_request = bhttp::request<bhttp::string_body>;
using http_response = bhttp::response<bhttp::string_body>;

http_response make_response(int status, std::string body, std::string content_type = "application/json");

/// One accepted connection (plain or TLS).
class server_conn {
public:
    server_conn(tcp::socket s, asio::ssl::context* tls);

    /// Reads one request; nullopt when the client closed or on error.
    asio::awaitable<std::optional<http_request>> read_request();
    /// Writes a response; false on error.
    asio::awaitable<bool> write(http_response res);
    /// Writes raw bytes; false on error.
    asio::awaitable<bool> write_raw(std::string bytes);
    /// Waits (real time); ends early when the connection is closed by stop().
    asio::awaitable<void> sleep(std::chrono::milliseconds d);
    /// Closes with a TCP reset.
    void reset();
    /// Closes (FIN).
    void close();

    std::size_t requests_read = 0;

    /// The TLS handshake (nothing for plain TCP); run by the server.
    asio::awaitable<bool> handshake();

private:
    beast::tcp_stream tcp_;
    std::unique_ptr<asio::ssl::stream<beast::tcp_stream&>> tls_;
    beast::flat_buffer buf_;
    asio::steady_timer timer_;
};

using script = std::function<asio::awaitable<void>(server_conn&)>;

/// A keep-alive script answering each request with `f(request)`.
script serve(std::function<http_response(const http_request&)> f);

class server {
public:
    /// Listens on `address` (127.0.0.1 or ::1), port chosen by the system.
    server(asio::any_io_executor ex, script s, asio::ssl::context* tls = nullptr,
           const std::string& address = "127.0.0.1");
    ~server();

    unsigned short port() const { return port_; }
    /// "http(s)://127.0.0.1:port" + path.
    std::string url(const std::string& path) const;
    int accepted() const { return *accepted_; }
    int open_now() const { return *open_; }
    int max_open() const { return *max_open_; }
    void stop();

    struct state;

private:
    std::shared_ptr<state> st_;
    unsigned short port_ = 0;
    std::string base_;
    std::shared_ptr<int> accepted_, open_, max_open_;
};

/// PEM strings of a certificate and its private key.
struct pem_pair {
    std::string cert;
    std::string key;
};

/// A self-signed CA.
pem_pair make_ca(const std::string& common_name);
/// A leaf certificate for `dns_names` and `ip_addresses`, signed by `ca`.
pem_pair make_leaf(const pem_pair& ca, const std::vector<std::string>& dns_names,
                   const std::vector<std::string>& ip_addresses);
/// A TLS server context presenting `leaf`.
std::unique_ptr<asio::ssl::context> server_tls_context(const pem_pair& leaf);

}  // namespace test_http

#endif
