// Tests of resilience::http::client against Beast servers on loopback.
#define BOOST_TEST_MODULE http_tests
#include <boost/test/unit_test.hpp>

#include "test_common.hpp"
#include "test_server.hpp"

#include <resilience/http/client.hpp>
#include <resilience/testing/manual_clock.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdio>
#include <thread>
#include <fstream>
#include <random>

namespace resilience {
inline std::ostream& operator<<(std::ostream& os, error_kind k) { return os << to_string(k); }
}  // namespace resilience

namespace asio = boost::asio;
namespace rh = resilience::http;
using namespace std::chrono_literals;
using resilience::error_kind;
using resilience::errc;
using test_http::http_request;
using test_http::http_response;
using test_http::make_response;
using test_http::server;
using test_http::server_conn;

namespace {

// Runs the test coroutine to completion (bounded: a hang fails the test).
template <class F>
void run(F f) {
    asio::io_context ctx(1);
    bool done = false;
    auto body = [&]() -> asio::awaitable<void> {
        co_await f(ctx);
        done = true;
    };
    asio::co_spawn(ctx, body(), test::rethrow{});
    ctx.run_for(20s);
    BOOST_TEST_REQUIRE(done);
}

rh::request get(const std::string& url) {
    rh::request r;
    r.url = url;
    return r;
}

asio::awaitable<void> pause(std::chrono::milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(asio::use_awaitable);
}

test_http::script echo_server() {
    return test_http::serve([](const http_request& req) {
        return make_response(200, "{\"path\":\"" + std::string(req.target()) + "\",\"len\":" +
                                      std::to_string(req.body().size()) + "}");
    });
}

void check_idle_pool(const rh::client& c) {
    auto s = c.stats();
    BOOST_TEST(s.in_use == 0u);
    BOOST_TEST(s.waiting == 0u);
}

// Sends `req` on `c` with a cancellation signal emitted after `after`.
asio::awaitable<resilience::result<rh::response>> send_and_cancel(rh::client& c, rh::request req,
                                                                   std::chrono::milliseconds after) {
    auto ex = co_await asio::this_coro::executor;
    asio::cancellation_signal sig;
    std::optional<resilience::result<rh::response>> out;
    auto op = [&c, &req]() -> asio::awaitable<resilience::result<rh::response>> {
        co_return co_await c.send(std::move(req));
    };
    asio::co_spawn(ex, op(),
                   asio::bind_cancellation_slot(sig.slot(), [&](std::exception_ptr p, resilience::result<rh::response> r) {
                       if (p) std::rethrow_exception(p);
                       out = std::move(r);
                   }));
    if (after.count() > 0) co_await pause(after);
    else co_await asio::post(ex, asio::use_awaitable);
    sig.emit(asio::cancellation_type::terminal);
    while (!out) co_await pause(1ms);
    co_return std::move(*out);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(http_client)

BOOST_AUTO_TEST_CASE(keep_alive_reuse) {
    run([](asio::io_context& ctx) -> asio::awaitable<void> {
        server srv(ctx.get_executor(), echo_server());
        rh::client c(ctx);
        for (int i = 0; i < 10; ++i) {
            auto r = co_await c.send(get(srv.url("/a?i=" + std::to_string(i))));
            BOOST_TEST_REQUIRE(r.has_value(), (r ? std::string() : r.error().what()));
            BOOST_TEST(r->status == 200);
            BOOST_TEST(r->body.find("/a?i=") != std::string::npos);
        }
        BOOST_TEST(srv.accepted() == 1);
        auto s = c.stats();
        BOOST_TEST(s.opened == 1u);
        BOOST_TEST(s.reused == 9u);
        BOOST_TEST(s.idle == 1u);
        check_idle_pool(c);
        srv.stop();
    });
}

BOOST_AUTO_TEST_CASE(post_body_and_headers) {
    run([](asio::io_context& ctx) -> asio::awaitable<void> {
        std::string seen_key, seen_ct, seen_body;
        server srv(ctx.get_executor(), test_http::serve([&](const http_request& req) {
                       seen_key = std::string(req["x-goog-api-key"]);
                       seen_ct = std::string(req[boost::beast::http::field::content_type]);
                       seen_body = req.body();
                       auto r = make_response(201, "created");
                       r.set("x-reply", "yes");
                       return r;
                   }));
        rh::client c(ctx);
        rh::request req;
        req.method = rh::verb::post;
        req.url = srv.url("/upload");
        req.headers.set("x-goog-api-key", "k123");
        req.headers.set(boost::beast::http::field::content_type, "text/plain");
        req.body = "hello";
        auto r = co_await c.send(std::move(req));
        BOOST_TEST_REQUIRE(r.has_value());
        BOOST_TEST(r->status == 201);
        BOOST_TEST(r->body == "created");
        BOOST_TEST(std::string(r->headers["x-reply"]) == "yes");
        BOOST_TEST(seen_key == "k123");
        BOOST_TEST(seen_ct == "text/plain");
        BOOST_TEST(seen_body == "hello");
        srv.stop();
    });
}

BOOST_AUTO_TEST_CASE(http_error_status_is_a_response) {
    run([](asio::io_context& ctx) -> asio::awaitable<void> {
        server srv(ctx.get_executor(), test_http::serve([](const http_request&) {
                       return make_response(429, R"({"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"15s"}]}})");
                   }));
        rh::client c(ctx);
        auto r = co_await c.send(get(srv.url("/x")));
        BOOST_TEST_REQUIRE(r.has_value());
        BOOST_TEST(r->status == 429);
        auto f = rh::to_failure(*r);
        BOOST_TEST(f.code == make_error_code(resilience::http::errc::too_many_requests));
        BOOST_TEST(f.diag.http_status == 429);
        BOOST_TEST(f.diag.message.find("Quota exceeded") != std::string::npos);  // the body's first line
        // Google's envelope and its RetryInfo are the Gemini layer's
        // (gemini::decode_error): the HTTP layer reads no JSON.
        BOOST_TEST(f.diag.status.empty());
        BOOST_TEST(!f.diag.retry_after.has_value());
        auto checked = rh::check(std::move(*r));
        BOOST_TEST(!checked.has_value());
        BOOST_TEST(resilience::classify(checked.error().code) == error_kind::retryable_rate_limit);
        srv.stop();
    });
}

BOOST_AUTO_TEST_CASE(to_failure_forms) {
    rh::response r;
    r.status = 503;
    r.headers.set("Retry-After", "7");
    r.body = "upstream unavailable\nsecond line";
    auto f = rh::to_failure(r);
    BOOST_TEST(f.code == make_error_code(resilience::http::errc::server_error));
    BOOST_TEST(f.diag.message == "HTTP 503: upstream unavailable");
    BOOST_TEST_REQUIRE(f.diag.retry_after.has_value());
    BOOST_TEST(std::chrono::duration_cast<std::chrono::seconds>(*f.diag.retry_after).count() == 7);

    rh::response g;
    g.status = 403;
    g.body = R"([{"error":{"code":403,"message":"denied","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}])";
    auto fg = rh::to_failure(g);
    BOOST_TEST(fg.code == make_error_code(resilience::http::errc::forbidden));
    BOOST_TEST(fg.diag.status.empty());  // no Google envelope in the HTTP layer
    BOOST_TEST(fg.diag.reason.empty());
    BOOST_TEST(!fg.diag.retry_after.has_value());

    rh::response ok;
    ok.status = 204;
    BOOST_TEST(!rh::to_failure(ok).code);
    BOOST_TEST(rh::check(ok).has_value());

    rh::response huge;
    huge.status = 500;
    huge.body = std::string(10000, 'x');
    BOOST_TEST(rh::to_failure(huge).diag.message.size() < 600u);
}

BOOST_AUTO_TEST_CASE(chunked_response) {
    run([](asio::io_context& ctx) -> asio::awaitable<void> {
        server srv(ctx.get_executor(), [](server_conn& c) -> asio::awaitable<void> {
            while (co_await c.read_request()) {
                co_await c.write_raw("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                     "5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nTrailer: x\r\n\r\n");
            }
        });
        rh::client c(ctx);
        for (int i = 0; i < 2; ++i) {
            auto r = co_await c.send(get(srv.url("/chunked")));
            BOOST_TEST_REQUIRE(r.has_value());
            BOOST_TEST(r->body == "hello world");
        }
        BOOST_TEST(srv.accepted() == 1);
        srv.stop();
    });
}

BOOST_AUTO_TEST_CASE(server_closes_idle_connection_stale_resend) {
    run([](asio::io_context& ctx) -> asio::awaitable<void> {
        // Answers one request with keep-alive, then closes the connection.
        server srv(ctx.get_executor(), [](server_conn& c) -> asio::awaitable<void> {
            if (auto req = co_await c.read_request()) co_await c.write(make_response(200, "one"));
            c.close();
        });
        rh::client c(ctx);
        auto r1 = co_await c.send(get(srv.url("/1")));
        BOOST_TEST_REQUIRE(r1.has_value());
        co_await pause(20ms);  // let the FIN arrive
        // GET: idempotent, sent on the stale connection, fails, is re-sent once.
        auto r2 = co_await c.send(get(srv.url("/2")));
        BOOST_TEST_REQUIRE(r2.has_value());
        BOOST_TEST(r2->body == "one");
        BOOST_TEST(c.stats().stale_resends == 1u);
        BOOST_TEST(srv.accepted() == 2);
        co_await pause(20ms);
        // POST: not idempotent; the closed pooled connection is detected before sending.
        rh::request p;
        p.method = rh::verb::post;
        p.url = srv.url("/3");
        p.body = "x";
        auto r3 = co_await c.send(std::move(p));
        BOOST_TEST_REQUIRE(r3.has_value());
        BOOST_TEST(c.stats().stale_resends == 1u);
        BOOST_TEST(srv.accepted() == 3);
        check_idle_pool(c);
        srv.stop();
    });
}

BOOST_AUTO_TEST_CASE(reset_in_the_middle_of_a_body) {
    run([](asio::io_context& ctx) -> asio::awaitable<void> {
        server srv(ctx.get_executor(), [](server_conn& c) -> asio::awaitable<void> {
            if (co_await c.read_request()) {
                co_await c.write_raw("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + std::string(100, 'a'));
                co_await c.sleep(20ms);
                c.reset();
            }
        });
        rh::client c(ctx);
        auto r = co_await c.send(get(srv.url("/reset?key=SECRET")));
        BOOST_TEST_REQUIRE(!r.has_value());
        BOOST_TEST_MESSAGE("reset: " << r.error().code.message() << " / " << r.error().what());
        BOOST_TEST(resilience::classify(r.error().code) == error_kind::retryable_network);
        BOOST_TEST(r.error().what().find("SECRET") == std::string::npos);
        BOOST_TEST(r.error().what().find("/reset") != std::string::npos);
        check_idle_pool(c);
        BOOST_TEST(c.stats().idle == 0u);
        srv.stop();
    });
}

BOOST_AUTO_TEST_CASE(truncated_body) {
    run([](asio::io_context& ctx) -> asio::awaitable<void> {
        server srv(ctx.get_executor(), [](server_conn& c) -> asio::awaitable<void> {
            if (co_await c.read_request()) {
                co_await c.write_raw("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + std::string(100, 'a'));
                c.close();
            }
        });
        rh::client c(ctx);
        auto r = co_await c.send(get(srv.url("/trunc")));
        BOOST_TEST_REQUIRE(!r.has_value());
        BOOST_TEST_MESSAGE("truncated: " << r.error().what());
        BOOST_TEST(resilience::classify(r.error().code) == error_kind::retryable_network);
        check_idle_pool(c);
        srv.stop();
    });
}

BOOST_AUTO_TEST_CASE(slow_server_times_out) {
    run([](asio::io_context& ctx) -> asio::awaitable<void> {
        server srv(ctx.get_executor(), [](server_conn& c) -> asio::awaitable<void> {
            while (co_await c.read_request()) {
                co_await c.sleep(5000ms);
                co_await c.write(make_response(200, "late"));
            }
        });
        {
            rh::client_options o;
            o.io_timeout = 100ms;
            rh::client c(ctx, o);
            auto r = co_await c.send(get(srv.url("/slow")));
            BOOST_TEST_REQUIRE(!r.has_value());
            BOOST_TEST(r.error().code == asio::error::timed_out);
            BOOST_TEST(resilience::classify(r.error().code) == error_kind::retryable_network);
            check_idle_pool(c);
        }
        {
            // The caller's deadline, on the client's (manual) clock: it expires
            // when that clock passes it, not in real time.
            resilience::testing::manual_clock clk;
            rh::client_options o;
            o.time = &clk;
            rh::client c(ctx, o);
            auto req = get(srv.url("/slow"));
            rh::request_options ro(clk.now() + 80ms);
            auto advance = [&clk]() -> asio::awaitable<void> {
                co_await pause(20ms);
                clk.advance(79ms);  // not yet
                co_await pause(20ms);
                clk.advance(1ms);
            };
            asio::co_spawn(ctx, advance(), test::rethrow{});
            auto r = co_await c.send(std::move(req), std::move(ro));
            BOOST_TEST_REQUIRE(!r.has_value());
            BOOST_TEST(r.error().code == make_error_code(errc::attempt_timeout));
            check_idle_pool(c);
            // A deadline already passed fails at once.
            auto late = get(srv.url("/slow"));
            rh::request_options late_ro(clk.now() - 1ms);
            auto r2 = co_await c.send(std::move(late), std::move(late_ro));
            BOOST_TEST(r2.error().code == make_error_code(errc::attempt_timeout));
        }
        srv.stop();
    });
}

BOOST_AUTO_TEST_CASE(oversize_body_and_headers) {
    run([](asio::io_context& ctx) -> asio::awaitable<void> {
        server srv(ctx.get_executor(), test_http::serve([](const http_request& req) {
                       if (req.target() == "/big-header") {
                           auto r = make_response(200, "x");
                           r.set("x-pad", std::string(4000, 'p'));
                           return r;
                       }
                       return make_response(200, std::string(5000, 'b'));
                   }));
        rh::client_options o;
        o.max_body_bytes = 1000;
        o.max_header_bytes = 2000;
        rh::client c(ctx, o);
        auto r = co_await c.send(get(srv.url("/big")));
        BOOST_TEST_REQUIRE(!r.has_value());
        BOOST_TEST(r.error().code == make_error_code(resilience::http::errc::response_too_large));
        BOOST_TEST(!resilience::is_retryable(resilience::classify(r.error().code)));
        auto h = co_await c.send(get(srv.url("/big-header")));
        BOOST_TEST_REQUIRE(!h.has_value());
        BOOST_TEST(h.error().code == make_error_code(resilience::http::errc::response_too_large));
        check_idle_pool(c);
        srv.stop();
    });
}

BOOST_AUTO_TEST_CASE(pool_limit_under_1000_concurrent_requests) {
    run([](asio::io_context& ctx) -> asio::awaitable<void> {
        // Each answer waits a little so that requests pile up.
        server srv(ctx.get_executor(), [](server_conn& c) -> asio::awaitable<void> {
            while (co_await c.read_request()) {
                co_await c.sleep(1ms);
                if (!co_await c.write(make_response(200, "{}"))) co_return;
            }
        });
        rh::client_options o;
        o.max_connections_per_origin = 8;
        rh::client c(ctx, o);
        int ok = 0, finished = 0;
        std::size_t max_in_use = 0, max_waiting = 0;
        auto one = [&]() -> asio::awaitable<void> {
            auto r = co_await c.send(get(srv.url("/p")));
            if (r && r->status == 200) ++ok;
            auto s = c.stats();
            max_in_use = std::max(max_in_use, s.in_use);
            max_waiting = std::max(max_waiting, s.waiting);
            ++finished;
        };
        for (int i = 0; i < 1000; ++i) asio::co_spawn(ctx, one(), test::rethrow{});
        while (finished < 1000) co_await pause(5ms);
        BOOST_TEST(ok == 1000);
        BOOST_TEST(srv.accepted() <= 8);
        BOOST_TEST(srv.max_open() <= 8);
        BOOST_TEST(max_in_use <= 8u);
        BOOST_TEST(max_waiting > 0u);
        auto s = c.stats();
        BOOST_TEST(s.opened <= 8u);
        BOOST_TEST(s.opened + s.reused == 1000u);
        check_idle_pool(c);
        srv.stop();
    });
}

BOOST_AUTO_TEST_CASE(waiting_for_a_slot_is_bounded_by_deadline) {
    run([](asio::io_context& ctx) -> asio::awaitable<void> {
        server srv(ctx.get_executor(), [](server_conn& c) -> asio::awaitable<void> {
            while (co_await c.read_request()) {
                co_await c.sleep(300ms);
                if (!co_await c.write(make_response(200, "{}"))) co_return;
            }
        });
        rh::client_options o;
        o.max_connections_per_origin = 1;
        rh::client c(ctx, o);
        bool first_ok = false;
        auto first = [&]() -> asio::awaitable<void> {
            auto r = co_await c.send(get(srv.url("/first")));
            first_ok = r.has_value();
        };
        asio::co_spawn(ctx, first(), test::rethrow{});
        co_await pause(10ms);
        auto req = get(srv.url("/second"));
        rh::request_options ro(resilience::steady_clock().now() + 50ms);
        auto r = co_await c.send(std::move(req), std::move(ro));
        BOOST_TEST_REQUIRE(!r.has_value());
        BOOST_TEST(r.error().code == make_error_code(errc::attempt_timeout));
        BOOST_TEST(c.stats().waiting == 0u);
        // Cancelled while waiting.
        auto r2 = co_await send_and_cancel(c, get(srv.url("/third")), 20ms);
        BOOST_TEST(r2.error().code == asio::error::operation_aborted);
        while (!first_ok) co_await pause(5ms);
        check_idle_pool(c);
        BOOST_TEST(srv.accepted() == 1);
        srv.stop();
    });
}

BOOST_AUTO_TEST_CASE(file_range_body) {
    const std::string path = "http_tests_upload.bin";
    std::string content;
    {
        std::mt19937 rng(42);
        content.resize(600 * 1024);
        for (auto& ch : content) ch = static_cast<char>(rng());
        std::ofstream f(path, std::ios::binary);
        f.write(content.data(), static_cast<std::streamsize>(content.size()));
    }
    run([&](asio::io_context& ctx) -> asio::awaitable<void> {
        std::string received;
        std::string seen_length;
        server srv(ctx.get_executor(), test_http::serve([&](const http_request& req) {
                       received = req.body();
                       seen_length = std::string(req[boost::beast::http::field::content_length]);
                       return make_response(200, "{}");
                   }));
        rh::client c(ctx);
        rh::request req;
        req.method = rh::verb::put;
        req.url = srv.url("/upload");
        rh::file_range fr;
        fr.path = path;
        fr.offset = 1234;
        fr.length = 512 * 1024 + 7;
        req.file = fr;
        auto r = co_await c.send(std::move(req));
        BOOST_TEST_REQUIRE(r.has_value(), (r ? std::string() : r.error().what()));
        BOOST_TEST(seen_length == std::to_string(fr.length));
        BOOST_TEST((received == content.substr(1234, fr.length)));
        // A range outside the file, a missing file: invalid_argument, nothing sent.
        rh::request bad;
        bad.method = rh::verb::put;
        bad.url = srv.url("/upload");
        fr.offset = content.size() - 10;
        fr.length = 11;
        bad.file = fr;
        auto rb = co_await c.send(std::move(bad));
        BOOST_TEST(rb.error().code == make_error_code(errc::invalid_argument));
        rh::request missing;
        missing.url = srv.url("/upload");
        fr.path = "does-not-exist.bin";
        missing.file = fr;
        auto rm = co_await c.send(std::move(missing));
        BOOST_TEST(rm.error().code == make_error_code(errc::invalid_argument));
        check_idle_pool(c);
        srv.stop();
    });
    std::remove(path.c_str());
}

BOOST_AUTO_TEST_CASE(bad_urls_and_refused_connection) {
    run([](asio::io_context& ctx) -> asio::awaitable<void> {
        rh::client c(ctx);
        for (const char* u : {"", "not a url", "ftp://host/x", "http:///nohost", "/relative", "http://h:0/"}) {
            auto r = co_await c.send(get(u));
            BOOST_TEST_REQUIRE(!r.has_value());
            BOOST_TEST(r.error().code == make_error_code(errc::invalid_argument), u);
        }
        // A port nobody listens on.
        unsigned short port;
        {
            asio::ip::tcp::acceptor a(ctx, {asio::ip::make_address("127.0.0.1"), 0});
            port = a.local_endpoint().port();
        }
        rh::request req = get("http://127.0.0.1:" + std::to_string(port) + "/v1/files?key=SECRET");
        req.headers.set("x-goog-api-key", "HEADERSECRET");
        auto r = co_await c.send(std::move(req));
        BOOST_TEST_REQUIRE(!r.has_value());
        BOOST_TEST(r.error().code == asio::error::connection_refused);
        BOOST_TEST(resilience::classify(r.error().code) == error_kind::retryable_network);
        BOOST_TEST(r.error().what().find("SECRET") == std::string::npos);
        BOOST_TEST(r.error().what().find("/v1/files") != std::string::npos);
        check_idle_pool(c);
    });
}

BOOST_AUTO_TEST_CASE(ipv6_loopback) {
    asio::io_context probe;
    boost::system::error_code ec;
    asio::ip::tcp::acceptor a(probe);
    a.open(asio::ip::tcp::v6(), ec);
    if (!ec) a.bind({asio::ip::make_address("::1"), 0}, ec);
    if (ec) {
        BOOST_TEST_MESSAGE("IPv6 loopback unavailable, skipped: " << ec.message());
        return;
    }
    a.close();
    run([](asio::io_context& ctx) -> asio::awaitable<void> {
        server srv(ctx.get_executor(), echo_server(), nullptr, "::1");
        rh::client c(ctx);
        auto r = co_await c.send(get(srv.url("/six")));
        BOOST_TEST_REQUIRE(r.has_value());
        BOOST_TEST(r->status == 200);
        BOOST_TEST(srv.url("/").find("[::1]") != std::string::npos);
        srv.stop();
    });
}

// A coroutine on another io_context (thread) sends through the client: the
// request runs on the client's executor and completes back on the caller's.
BOOST_AUTO_TEST_CASE(caller_on_another_executor) {
    asio::io_context client_ctx(1);
    auto guard = asio::make_work_guard(client_ctx);
    server srv(client_ctx.get_executor(), echo_server());
    rh::client c(client_ctx);
    std::thread t([&] { client_ctx.run(); });
    asio::io_context caller(1);
    int ok = 0;
    auto body = [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 20; ++i) {
            auto r = co_await c.send(get(srv.url("/x")));
            if (r && r->status == 200) ++ok;
        }
    };
    asio::co_spawn(caller, body(), test::rethrow{});
    caller.run_for(10s);
    asio::post(client_ctx, [&] {
        srv.stop();
        c.close_idle();
        guard.reset();
    });
    t.join();
    BOOST_TEST(ok == 20);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(http_tls)

BOOST_AUTO_TEST_CASE(verification) {
    auto ca = test_http::make_ca("resilience test CA");
    auto leaf = test_http::make_leaf(ca, {"localhost"}, {"127.0.0.1"});
    auto other_ca = test_http::make_ca("someone else");
    auto wrong_name = test_http::make_leaf(ca, {"wrong.example"}, {});
    auto untrusted = test_http::make_leaf(other_ca, {"localhost"}, {"127.0.0.1"});
    auto good_ctx = test_http::server_tls_context(leaf);
    auto wrong_ctx = test_http::server_tls_context(wrong_name);
    auto untrusted_ctx = test_http::server_tls_context(untrusted);

    run([&](asio::io_context& ctx) -> asio::awaitable<void> {
        server good(ctx.get_executor(), echo_server(), good_ctx.get());
        server wrong(ctx.get_executor(), echo_server(), wrong_ctx.get());
        server bad(ctx.get_executor(), echo_server(), untrusted_ctx.get());

        rh::client_options o;
        o.extra_ca_pem = ca.cert;
        rh::client c(ctx, o);
        // Accepted: by IP and by name (SNI, resolver), twice on one connection.
        for (int i = 0; i < 2; ++i) {
            auto r = co_await c.send(get(good.url("/tls")));
            BOOST_TEST_REQUIRE(r.has_value(), (r ? "" : r.error().what()));
            BOOST_TEST(r->status == 200);
        }
        BOOST_TEST(good.accepted() == 1);
        auto byname = co_await c.send(get("https://localhost:" + std::to_string(good.port()) + "/n"));
        BOOST_TEST_REQUIRE(byname.has_value(), (byname ? "" : byname.error().what()));

        // Rejected: untrusted issuer, host name mismatch.
        auto r1 = co_await c.send(get(bad.url("/tls")));
        BOOST_TEST_REQUIRE(!r1.has_value());
        BOOST_TEST_MESSAGE("untrusted: " << r1.error().what());
        BOOST_TEST((r1.error().code.category() == asio::error::get_ssl_category()));
        auto r2 = co_await c.send(get(wrong.url("/tls")));
        BOOST_TEST_REQUIRE(!r2.has_value());
        BOOST_TEST_MESSAGE("mismatch: " << r2.error().what());
        BOOST_TEST((r2.error().code.category() == asio::error::get_ssl_category()));
        // A refused certificate is not worth retrying.
        BOOST_TEST((resilience::classify(r1.error().code) == resilience::error_kind::non_retryable_client));
        BOOST_TEST((resilience::classify(r2.error().code) == resilience::error_kind::non_retryable_client));

        // A client without the test CA rejects the good server too.
        rh::client plain(ctx);
        auto r3 = co_await plain.send(get(good.url("/tls")));
        BOOST_TEST(!r3.has_value());

        // Only the explicitly named option turns verification off.
        rh::client_options insecure;
        insecure.insecure_skip_tls_verify = true;
        rh::client ic(ctx, insecure);
        auto r4 = co_await ic.send(get(wrong.url("/tls")));
        BOOST_TEST(r4.has_value());
        check_idle_pool(c);
        good.stop();
        wrong.stop();
        bad.stop();
    });
}

BOOST_AUTO_TEST_CASE(bad_extra_ca_is_a_config_error) {
    asio::io_context ctx;
    rh::client_options o;
    o.extra_ca_pem = "not a certificate";
    BOOST_CHECK_THROW(rh::client(ctx, o), resilience::error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(http_cancellation)

// Resolve: "localhost" goes through the asynchronous resolver; we cancel right
// after initiation (a loopback resolve is too quick to catch reliably midway).
BOOST_AUTO_TEST_CASE(cancel_during_resolve) {
    run([](asio::io_context& ctx) -> asio::awaitable<void> {
        server srv(ctx.get_executor(), echo_server());
        rh::client c(ctx);
        auto r = co_await send_and_cancel(c, get("http://localhost:" + std::to_string(srv.port()) + "/"), 0ms);
        BOOST_TEST_REQUIRE(!r.has_value());
        BOOST_TEST(r.error().code == asio::error::operation_aborted);
        BOOST_TEST(resilience::classify(r.error().code) == error_kind::non_retryable_aborted);
        check_idle_pool(c);
        BOOST_TEST(c.stats().idle == 0u);
        auto ok = co_await c.send(get("http://localhost:" + std::to_string(srv.port()) + "/"));
        BOOST_TEST(ok.has_value());
        srv.stop();
    });
}

// Connect: a listener whose accept queue is full drops new SYNs, so connect hangs.
BOOST_AUTO_TEST_CASE(cancel_and_timeout_during_connect) {
    run([](asio::io_context& ctx) -> asio::awaitable<void> {
        asio::ip::tcp::acceptor a(ctx);
        asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
        a.open(ep.protocol());
        a.bind(ep);
        a.listen(0);
        ep = a.local_endpoint();
        std::vector<std::unique_ptr<asio::ip::tcp::socket>> fillers;
        int connected = 0;
        for (int i = 0; i < 8; ++i) {
            auto s = std::make_unique<asio::ip::tcp::socket>(ctx);
            s->async_connect(ep, [&connected](boost::system::error_code ec) {
                if (!ec) ++connected;
            });
            fillers.push_back(std::move(s));
        }
        co_await pause(100ms);
        BOOST_TEST_MESSAGE("filler connections established: " << connected);
        const std::string url = "http://127.0.0.1:" + std::to_string(ep.port()) + "/";
        rh::client_options o;
        o.connect_timeout = 100ms;
        rh::client c(ctx, o);
        auto r = co_await send_and_cancel(c, get(url), 50ms);
        BOOST_TEST_REQUIRE(!r.has_value());
        BOOST_TEST(r.error().code == asio::error::operation_aborted, r.error().what());
        check_idle_pool(c);
        auto r2 = co_await c.send(get(url));
        BOOST_TEST_REQUIRE(!r2.has_value());
        BOOST_TEST(r2.error().code == asio::error::timed_out, r2.error().what());
        check_idle_pool(c);
        for (auto& s : fillers) s->close();
    });
}

// Handshake: a plain TCP server that never answers the TLS ClientHello.
BOOST_AUTO_TEST_CASE(cancel_during_handshake) {
    run([](asio::io_context& ctx) -> asio::awaitable<void> {
        server srv(ctx.get_executor(), [](server_conn& c) -> asio::awaitable<void> { co_await c.sleep(5000ms); });
        rh::client c(ctx);
        const std::string url = "https://127.0.0.1:" + std::to_string(srv.port()) + "/";
        auto r = co_await send_and_cancel(c, get(url), 50ms);
        BOOST_TEST_REQUIRE(!r.has_value());
        BOOST_TEST(r.error().code == asio::error::operation_aborted, r.error().what());
        BOOST_TEST(srv.accepted() == 1);
        check_idle_pool(c);
        srv.stop();
    });
}

// Write: a large body to a server that never reads fills the socket buffers.
BOOST_AUTO_TEST_CASE(cancel_during_write) {
    run([](asio::io_context& ctx) -> asio::awaitable<void> {
        server srv(ctx.get_executor(), [](server_conn& c) -> asio::awaitable<void> { co_await c.sleep(5000ms); });
        rh::client c(ctx);
        rh::request req;
        req.method = rh::verb::post;
        req.url = srv.url("/big");
        req.body.assign(64u << 20, 'w');
        auto r = co_await send_and_cancel(c, std::move(req), 100ms);
        BOOST_TEST_REQUIRE(!r.has_value());
        BOOST_TEST(r.error().code == asio::error::operation_aborted, r.error().what());
        check_idle_pool(c);
        srv.stop();
    });
}

// Read: the server reads the request and never answers.
BOOST_AUTO_TEST_CASE(cancel_during_read) {
    run([](asio::io_context& ctx) -> asio::awaitable<void> {
        server srv(ctx.get_executor(), [](server_conn& c) -> asio::awaitable<void> {
            while (co_await c.read_request()) co_await c.sleep(5000ms);
        });
        rh::client c(ctx);
        auto r = co_await send_and_cancel(c, get(srv.url("/r")), 50ms);
        BOOST_TEST_REQUIRE(!r.has_value());
        BOOST_TEST(r.error().code == asio::error::operation_aborted, r.error().what());
        check_idle_pool(c);
        BOOST_TEST(c.stats().idle == 0u);
        srv.stop();
    });
}

BOOST_AUTO_TEST_SUITE_END()
