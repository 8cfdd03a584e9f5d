// resilience::http::client driven over beast::test::stream through
// client_options::connect: no socket, no real time. Every time limit runs on
// a manual clock, and the loop below moves that clock only when no handler is
// ready, so a test can neither sleep nor depend on the machine's speed; a
// test that cannot finish is reported as stuck, not timed out.
#include <boost/test/unit_test.hpp>

#include "test_common.hpp"

#include <resilience/http/client.hpp>
#include <resilience/testing/manual_clock.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/_experimental/test/fail_count.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace resilience {
inline std::ostream& operator<<(std::ostream& os, error_kind k) { return os << to_string(k); }
}  // namespace resilience

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace rh = resilience::http;
using namespace std::chrono_literals;
using resilience::errc;
using resilience::error_code;
using resilience::error_kind;
using resilience::testing::manual_clock;

namespace {

using server_request = bhttp::request<bhttp::string_body>;

// The server end of one connection, run by a test's script.
struct server_end {
    explicit server_end(beast::test::stream&& s) : stream(std::move(s)) {}
    beast::test::stream stream;
    beast::flat_buffer buffer;
    std::vector<server_request> requests;  // every request read so far

    // Reads the next request; false when the client closed the connection.
    asio::awaitable<bool> read() {
        server_request req;
        error_code ec;
        co_await bhttp::async_read(stream, buffer, req, asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return false;
        requests.push_back(std::move(req));
        co_return true;
    }
    // Writes raw bytes (kept alive by the caller); false when the client is gone.
    asio::awaitable<bool> write(std::string_view raw) {
        error_code ec;
        co_await asio::async_write(stream, asio::buffer(raw), asio::redirect_error(asio::use_awaitable, ec));
        co_return !ec;
    }
};

// A fake network: each connect yields the client end of a fresh
// beast::test::stream pair; the server end runs `script` (the connection's
// index counts from 0).
struct fake_net {
    explicit fake_net(asio::io_context& c) : ctx(c) {}
    asio::io_context& ctx;
    std::function<asio::awaitable<void>(server_end&, int)> script;
    std::function<void(beast::test::stream&)> tune;  // the client end: read_size, write_size
    std::size_t fail_at = 0;                          // > 0: the client end's fail_at-th operation fails...
    error_code fail_with = asio::error::connection_reset;  // ...with this code
    error_code refuse;                                // a connect fails with this code
    bool hang = false;                                // a connect never completes
    bool complete_inline = false;                     // complete from within the connector's call
    bool connector_cancelled = false;                 // the client emitted cancellation on a hanging connect
    std::vector<rh::origin> seen;
    std::vector<std::unique_ptr<server_end>> servers;
    std::vector<std::unique_ptr<beast::test::fail_count>> counts;
    std::vector<rh::connect_handler> parked;

    rh::connector connector() {
        return [this](const rh::origin& o, rh::connect_handler h) {
            seen.push_back(o);
            auto ex = ctx.get_executor();
            if (hang) {
                asio::get_associated_cancellation_slot(h).assign(
                    [this](asio::cancellation_type) { connector_cancelled = true; });
                parked.push_back(std::move(h));
                return;
            }
            if (refuse) {
                asio::post(ex, [h = std::move(h), ec = refuse]() mutable { std::move(h)(ec, rh::any_stream()); });
                return;
            }
            std::optional<beast::test::stream> client_end;
            if (fail_at > 0) {
                counts.push_back(std::make_unique<beast::test::fail_count>(fail_at, fail_with));
                client_end.emplace(ctx, *counts.back());
            } else {
                client_end.emplace(ctx);
            }
            beast::test::stream server_stream(ctx);
            client_end->connect(server_stream);
            if (tune) tune(*client_end);
            servers.push_back(std::make_unique<server_end>(std::move(server_stream)));
            const int index = static_cast<int>(servers.size()) - 1;
            if (script) asio::co_spawn(ctx, script(*servers.back(), index), test::rethrow{});
            rh::any_stream s(std::move(*client_end));
            if (complete_inline) {
                std::move(h)(error_code(), std::move(s));
                return;
            }
            asio::post(ex, [h = std::move(h), s = std::move(s)]() mutable { std::move(h)(error_code(), std::move(s)); });
        };
    }
};

struct harness {
    manual_clock clk;
    asio::io_context ctx{1};
    fake_net net{ctx};

    rh::client_options options() {
        rh::client_options o;
        o.time = &clk;
        o.connect = net.connector();
        return o;
    }

    // Runs handlers while any is ready; when none is, moves the clock to the
    // next sleeper's time. False when `done` is false and nothing can move.
    bool drive(const bool& done) {
        for (;;) {
            if (ctx.stopped()) ctx.restart();
            if (ctx.poll() > 0) continue;
            if (done) return true;
            if (!clk.advance_to_next()) return false;
        }
    }

    // Runs the test's coroutine to its end in virtual time.
    template <class F>
    void run(F f) {
        bool done = false;
        auto body = [&]() -> asio::awaitable<void> {
            co_await f();
            done = true;
        };
        asio::co_spawn(ctx, body(), test::rethrow{});
        BOOST_TEST_REQUIRE(drive(done), "stuck: no handler ready and nobody asleep on the clock");
    }
};

rh::request get(const std::string& url) {
    rh::request r;
    r.url = url;
    return r;
}

std::string what(const resilience::result<rh::response>& r) { return r ? std::string() : std::string(r.error().what()); }

// Serves `n` requests on connection 0 with `raw` each, then leaves the connection open.
std::function<asio::awaitable<void>(server_end&, int)> answer(std::string raw, int n = 1) {
    return [raw, n](server_end& s, int) -> asio::awaitable<void> {
        for (int i = 0; i < n; ++i) {
            if (!co_await s.read()) co_return;
            if (!co_await s.write(raw)) co_return;
        }
    };
}

// Connection i reads one request and writes raw[i] (the last one on later
// connections), then closes when `close` is set.
std::function<asio::awaitable<void>(server_end&, int)> answer_each(std::vector<std::string> raw, bool close = false) {
    return [raw, close](server_end& s, int i) -> asio::awaitable<void> {
        if (!co_await s.read()) co_return;
        co_await s.write(raw[std::min(static_cast<std::size_t>(i), raw.size() - 1)]);
        if (close) s.stream.close();
    };
}

// The client end reads and writes one byte per operation.
void one_byte_at_a_time(beast::test::stream& s) {
    s.read_size(1);
    s.write_size(1);
}

const std::string ok_hello = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Test: yes\r\n\r\nhello";

}  // namespace

BOOST_AUTO_TEST_SUITE(http_client_over_test_stream)

BOOST_AUTO_TEST_CASE(scripted_response_and_origin) {
    harness h;
    h.net.script = answer(ok_hello);
    h.run([&]() -> asio::awaitable<void> {
        rh::client c(h.ctx, h.options());
        auto r = co_await c.send(get("http://api.example:8080/v1/files/abc?page=2"));
        BOOST_TEST_REQUIRE(r.has_value(), what(r));
        BOOST_TEST(r->status == 200);
        BOOST_TEST(r->body == "hello");
        BOOST_TEST(r->headers["X-Test"] == "yes");
        BOOST_TEST_REQUIRE(h.net.seen.size() == 1u);
        BOOST_TEST(h.net.seen[0].tls == false);
        BOOST_TEST(h.net.seen[0].host == "api.example");
        BOOST_TEST(h.net.seen[0].port == 8080);
        BOOST_TEST_REQUIRE(h.net.servers[0]->requests.size() == 1u);
        const auto& req = h.net.servers[0]->requests[0];
        BOOST_TEST(req.method() == bhttp::verb::get);
        BOOST_TEST(req.target() == "/v1/files/abc?page=2");
        BOOST_TEST(req[bhttp::field::host] == "api.example:8080");
        BOOST_TEST(c.stats().opened == 1u);
        BOOST_TEST(c.stats().idle == 1u);  // kept alive for the next request

        // https: the connector is told, and owns TLS; the client writes HTTP over its stream.
        auto r2 = co_await c.send(get("https://[::1]/x"));
        BOOST_TEST_REQUIRE(r2.has_value(), what(r2));
        BOOST_TEST_REQUIRE(h.net.seen.size() == 2u);
        BOOST_TEST(h.net.seen[1].tls == true);
        BOOST_TEST(h.net.seen[1].host == "::1");
        BOOST_TEST(h.net.seen[1].port == 443);
    });
}

BOOST_AUTO_TEST_CASE(response_split_in_single_bytes) {
    harness h;
    // Both directions one byte per operation, a chunked body and a 1xx first.
    h.net.tune = one_byte_at_a_time;
    h.net.script = answer(
        "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
        "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n");
    h.run([&]() -> asio::awaitable<void> {
        rh::client c(h.ctx, h.options());
        rh::request req = get("http://api.example/upload");
        req.method = bhttp::verb::post;
        req.body = std::string(300, 'x');
        auto r = co_await c.send(std::move(req));
        BOOST_TEST_REQUIRE(r.has_value(), what(r));
        BOOST_TEST(r->status == 200);
        BOOST_TEST(r->body == "hello, world");
        BOOST_TEST(r->headers["Content-Type"] == "text/plain");
        BOOST_TEST_REQUIRE(h.net.servers[0]->requests.size() == 1u);
        BOOST_TEST(h.net.servers[0]->requests[0].body() == std::string(300, 'x'));
        BOOST_TEST(c.stats().idle == 1u);
    });
}

BOOST_AUTO_TEST_CASE(body_over_max_body_bytes) {
    harness h;
    h.net.script = answer_each({"HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n12345678901234567",
                                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n"});
    h.run([&]() -> asio::awaitable<void> {
        auto o = h.options();
        o.max_body_bytes = 16;
        rh::client c(h.ctx, o);
        // Declared too large (Content-Length), then grown too large (chunked).
        for (int i = 0; i < 2; ++i) {
            auto r = co_await c.send(get("http://api.example/big"));
            BOOST_TEST_REQUIRE(!r.has_value());
            BOOST_TEST(r.error().code == make_error_code(rh::errc::response_too_large));
            BOOST_TEST(resilience::classify(r.error().code) == error_kind::non_retryable_client);
            BOOST_TEST(c.stats().idle == 0u);  // never pooled again
            BOOST_TEST(c.stats().in_use == 0u);
        }
        BOOST_TEST(c.stats().opened == 2u);
    });
}

BOOST_AUTO_TEST_CASE(malformed_status_line) {
    harness h;
    h.net.script = answer("HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n");
    h.run([&]() -> asio::awaitable<void> {
        rh::client c(h.ctx, h.options());
        auto r = co_await c.send(get("http://api.example/files/1"));
        BOOST_TEST_REQUIRE(!r.has_value());
        BOOST_TEST(r.error().code == make_error_code(rh::errc::malformed_response));
        BOOST_TEST(resilience::classify(r.error().code) == error_kind::retryable_server);
        BOOST_TEST(what(r).find("bad status") != std::string::npos, what(r));
        BOOST_TEST(c.stats().stale_resends == 0u);
        BOOST_TEST(c.stats().idle == 0u);
    });
}

BOOST_AUTO_TEST_CASE(peer_closes_mid_header_and_mid_body) {
    harness h;
    h.net.script = answer_each({"HTTP/1.1 200 OK\r\nContent-Le", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234"}, true);
    h.run([&]() -> asio::awaitable<void> {
        rh::client c(h.ctx, h.options());
        for (int i = 0; i < 2; ++i) {
            auto r = co_await c.send(get("http://api.example/files/1"));
            BOOST_TEST_REQUIRE(!r.has_value());
            BOOST_TEST(r.error().code == make_error_code(bhttp::error::partial_message), what(r));
            BOOST_TEST(resilience::classify(r.error().code) == error_kind::retryable_network);
            BOOST_TEST(c.stats().idle == 0u);
        }
    });
}

BOOST_AUTO_TEST_CASE(connection_reset_mid_header_and_mid_body) {
    // One byte per operation both ways: the client end's k-th operation is
    // then the (k - request length)-th byte of the response, so fail_count
    // resets the connection at an exact byte. A first run measures the
    // request's length.
    const std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
    const std::size_t header_len = response.find("\r\n\r\n") + 4;
    std::size_t request_len = 0;
    {
        harness h;
        h.net.tune = one_byte_at_a_time;
        h.net.script = answer_each({response});
        h.run([&]() -> asio::awaitable<void> {
            rh::client c(h.ctx, h.options());
            auto r = co_await c.send(get("http://api.example/files/1"));
            BOOST_TEST_REQUIRE(r.has_value(), what(r));
        });
        request_len = h.net.servers[0]->stream.nread_bytes();
    }
    BOOST_TEST_REQUIRE(request_len > 0u);
    for (std::size_t at : {std::size_t(10), header_len + 4}) {
        harness h;
        h.net.tune = one_byte_at_a_time;
        h.net.fail_at = request_len + at;
        h.net.script = answer_each({response});
        h.run([&]() -> asio::awaitable<void> {
            rh::client c(h.ctx, h.options());
            auto r = co_await c.send(get("http://api.example/files/1"));
            BOOST_TEST_REQUIRE(!r.has_value());
            BOOST_TEST(r.error().code == asio::error::connection_reset, what(r));
            BOOST_TEST(resilience::classify(r.error().code) == error_kind::retryable_network);
            BOOST_TEST(what(r).find("read from http://api.example:80/files/1") != std::string::npos, what(r));
            BOOST_TEST(c.stats().idle == 0u);
            BOOST_TEST(c.stats().stale_resends == 0u);  // a fresh connection: no re-send
        });
        BOOST_TEST(h.net.seen.size() == 1u);
    }
}

BOOST_AUTO_TEST_CASE(header_timeout_on_manual_clock) {
    harness h;
    // The server drips its header one byte per second: header_timeout (5 s)
    // passes first. (io_timeout runs from the start of the header read, since
    // Beast reads an incomplete header as one operation.)
    h.net.script = [&](server_end& s, int) -> asio::awaitable<void> {
        if (!co_await s.read()) co_return;
        const std::string header = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Padding: ";
        for (std::size_t i = 0;; ++i) {
            const std::string byte(1, i < header.size() ? header[i] : 'p');
            if (!co_await s.write(byte)) co_return;
            error_code ec = co_await h.clk.sleep_until(h.clk.now() + 1s);
            if (ec) co_return;
        }
    };
    h.run([&]() -> asio::awaitable<void> {
        auto o = h.options();
        o.io_timeout = 8s;
        o.header_timeout = 5s;
        rh::client c(h.ctx, o);
        const auto t0 = h.clk.now();
        auto r = co_await c.send(get("http://api.example/slow"));
        BOOST_TEST_REQUIRE(!r.has_value());
        BOOST_TEST(r.error().code == asio::error::timed_out, what(r));
        BOOST_TEST(resilience::classify(r.error().code) == error_kind::retryable_network);
        BOOST_TEST(what(r).find("header_timeout") != std::string::npos, what(r));
        BOOST_TEST((h.clk.now() - t0 == 5s));
        BOOST_TEST(c.stats().idle == 0u);
    });
}

BOOST_AUTO_TEST_CASE(min_progress_on_manual_clock) {
    harness h;
    // Header at once, then one body byte per second: below 100 bytes per
    // 10 s window, while io_timeout (3 s) never passes.
    h.net.script = [&](server_end& s, int) -> asio::awaitable<void> {
        if (!co_await s.read()) co_return;
        if (!co_await s.write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")) co_return;
        for (;;) {
            error_code ec = co_await h.clk.sleep_until(h.clk.now() + 1s);
            if (ec || !co_await s.write("b")) co_return;
        }
    };
    h.run([&]() -> asio::awaitable<void> {
        auto o = h.options();
        o.io_timeout = 3s;
        o.progress_window = 10s;
        o.min_progress_bytes = 100;
        rh::client c(h.ctx, o);
        const auto t0 = h.clk.now();
        auto r = co_await c.send(get("http://api.example/drip"));
        BOOST_TEST_REQUIRE(!r.has_value());
        BOOST_TEST(r.error().code == asio::error::timed_out, what(r));
        BOOST_TEST(resilience::classify(r.error().code) == error_kind::retryable_network);
        BOOST_TEST(what(r).find("min_progress_bytes") != std::string::npos, what(r));
        BOOST_TEST((h.clk.now() - t0 == 10s));
    });
}

BOOST_AUTO_TEST_CASE(deadline_mid_body_is_attempt_timeout) {
    harness h;
    h.net.script = [&](server_end& s, int) -> asio::awaitable<void> {
        if (!co_await s.read()) co_return;
        if (!co_await s.write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")) co_return;
        const std::string chunk(200, 'b');
        for (;;) {
            error_code ec = co_await h.clk.sleep_until(h.clk.now() + 1s);
            if (ec || !co_await s.write(chunk)) co_return;
        }
    };
    h.run([&]() -> asio::awaitable<void> {
        rh::client c(h.ctx, h.options());
        const auto t0 = h.clk.now();
        rh::request req = get("http://api.example/drip");
        rh::request_options ro(t0 + 2500ms);
        auto r = co_await c.send(std::move(req), std::move(ro));
        BOOST_TEST_REQUIRE(!r.has_value());
        BOOST_TEST(r.error().code == make_error_code(errc::attempt_timeout), what(r));
        BOOST_TEST((h.clk.now() - t0 == 2500ms));
    });
}

BOOST_AUTO_TEST_CASE(connect_timeout_cancels_the_connector) {
    harness h;
    h.net.hang = true;
    h.run([&]() -> asio::awaitable<void> {
        auto o = h.options();
        o.connect_timeout = 7s;
        rh::client c(h.ctx, o);
        const auto t0 = h.clk.now();
        auto r = co_await c.send(get("http://api.example/x"));
        BOOST_TEST_REQUIRE(!r.has_value());
        BOOST_TEST(r.error().code == asio::error::timed_out, what(r));
        BOOST_TEST(what(r).find("connect_timeout") != std::string::npos, what(r));
        BOOST_TEST((h.clk.now() - t0 == 7s));
        BOOST_TEST(h.net.connector_cancelled);
        BOOST_TEST(c.stats().in_use == 0u);
        BOOST_TEST(c.stats().opened == 0u);
    });
    // A late completion is dropped.
    BOOST_TEST_REQUIRE(h.net.parked.size() == 1u);
    std::move(h.net.parked[0])(error_code(), rh::any_stream());
}

BOOST_AUTO_TEST_CASE(connector_error_is_the_request_error) {
    harness h;
    h.net.refuse = asio::error::connection_refused;
    h.run([&]() -> asio::awaitable<void> {
        rh::client c(h.ctx, h.options());
        auto r = co_await c.send(get("http://api.example/x"));
        BOOST_TEST_REQUIRE(!r.has_value());
        BOOST_TEST(r.error().code == asio::error::connection_refused, what(r));
        BOOST_TEST(resilience::classify(r.error().code) == error_kind::retryable_network);
        BOOST_TEST(c.stats().in_use == 0u);
    });
}

BOOST_AUTO_TEST_CASE(pooled_stream_reused) {
    harness h;
    h.net.script = answer(ok_hello, 2);
    h.net.complete_inline = true;
    h.run([&]() -> asio::awaitable<void> {
        rh::client c(h.ctx, h.options());
        for (int i = 0; i < 2; ++i) {
            auto r = co_await c.send(get("http://api.example/files/" + std::to_string(i)));
            BOOST_TEST_REQUIRE(r.has_value(), what(r));
            BOOST_TEST(r->body == "hello");
        }
        BOOST_TEST(h.net.seen.size() == 1u);
        BOOST_TEST(c.stats().opened == 1u);
        BOOST_TEST(c.stats().reused == 1u);
        BOOST_TEST(c.stats().idle == 1u);
        BOOST_TEST_REQUIRE(h.net.servers[0]->requests.size() == 2u);
        BOOST_TEST(h.net.servers[0]->requests[1].target() == "/files/1");
    });
}

BOOST_AUTO_TEST_CASE(stale_pooled_stream_resends_idempotent_only) {
    harness h;
    // Connection 0 answers once and closes after; later ones answer every request.
    h.net.script = [](server_end& s, int i) -> asio::awaitable<void> {
        for (;;) {
            if (!co_await s.read()) co_return;
            if (!co_await s.write(ok_hello)) co_return;
            if (i == 0) {
                s.stream.close();
                co_return;
            }
        }
    };
    h.run([&]() -> asio::awaitable<void> {
        rh::client c(h.ctx, h.options());
        auto r1 = co_await c.send(get("http://api.example/a"));
        BOOST_TEST_REQUIRE(r1.has_value(), what(r1));
        // GET on the stale pooled stream: re-sent once on a fresh one.
        auto r2 = co_await c.send(get("http://api.example/b"));
        BOOST_TEST_REQUIRE(r2.has_value(), what(r2));
        BOOST_TEST(r2->body == "hello");
        BOOST_TEST(c.stats().stale_resends == 1u);
        BOOST_TEST(c.stats().opened == 2u);
        BOOST_TEST(c.stats().reused == 1u);
        BOOST_TEST_REQUIRE(h.net.servers.size() == 2u);
        BOOST_TEST_REQUIRE(h.net.servers[1]->requests.size() == 1u);
        BOOST_TEST(h.net.servers[1]->requests[0].target() == "/b");
    });
    // A POST on a stale pooled stream is not re-sent (a test stream cannot be
    // peeked at): it fails with the network error.
    harness p;
    p.net.script = h.net.script;
    p.run([&]() -> asio::awaitable<void> {
        rh::client c(p.ctx, p.options());
        auto r1 = co_await c.send(get("http://api.example/a"));
        BOOST_TEST_REQUIRE(r1.has_value(), what(r1));
        rh::request post = get("http://api.example/create");
        post.method = bhttp::verb::post;
        post.body = "{}";
        auto r2 = co_await c.send(std::move(post));
        BOOST_TEST_REQUIRE(!r2.has_value());
        BOOST_TEST(r2.error().code == make_error_code(bhttp::error::end_of_stream), what(r2));
        BOOST_TEST(resilience::classify(r2.error().code) == error_kind::retryable_network);
        BOOST_TEST(c.stats().stale_resends == 0u);
        BOOST_TEST(p.net.seen.size() == 1u);
    });
}

BOOST_AUTO_TEST_CASE(cancellation_over_test_stream) {
    harness h;
    h.net.script = [](server_end& s, int) -> asio::awaitable<void> {
        co_await s.read();  // never answers
    };
    h.run([&]() -> asio::awaitable<void> {
        rh::client c(h.ctx, h.options());
        asio::cancellation_signal sig;
        std::optional<resilience::result<rh::response>> out;
        c.async_send(get("http://api.example/x"),
                     asio::bind_cancellation_slot(sig.slot(), [&](error_code ec, rh::response) {
                         out = ec ? resilience::result<rh::response>(resilience::failure(ec, "x")) : rh::response();
                     }));
        // Cancel once the server has the request (the client then reads).
        while (h.net.servers.empty() || h.net.servers[0]->requests.empty())
            co_await asio::post(h.ctx, asio::use_awaitable);
        BOOST_TEST(!out);
        sig.emit(asio::cancellation_type::terminal);
        while (!out) co_await asio::post(h.ctx, asio::use_awaitable);
        BOOST_TEST_REQUIRE(!out->has_value());
        BOOST_TEST(out->error().code == asio::error::operation_aborted);
        BOOST_TEST(h.net.servers.size() == 1u);
        BOOST_TEST(c.stats().in_use == 0u);
        BOOST_TEST(c.stats().idle == 0u);
    });
}

BOOST_AUTO_TEST_SUITE_END()
