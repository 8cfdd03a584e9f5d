// Hostile servers against resilience::http::client.
//
// Each case is a script for a TCP server on loopback (what to write, when to
// pause, how to close) run on the test's io_context; the client and the
// server share a manual clock, so a script that pauses for an hour or drips a
// byte a second runs in milliseconds of real time (run_virtual). Each case
// asserts that the call ends, with which code and kind, and within which
// virtual time; memory stays bounded because every endless or oversized answer
// must end with the client's limit error (and the server counts what it could
// write before the client hung up).
#define BOOST_TEST_MODULE hostile_tests
#include <boost/test/unit_test.hpp>

#include <resilience/error.hpp>
#include <resilience/http/client.hpp>
#include <resilience/testing/manual_clock.hpp>

#include "test_common.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <ostream>
#include <optional>
#include <string>
#include <vector>

namespace resilience {
inline std::ostream& operator<<(std::ostream& os, error_kind k) { return os << to_string(k); }
}  // namespace resilience

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace rh = resilience::http;
namespace rt = resilience::testing;
using resilience::errc;
using resilience::error_code;
using resilience::error_kind;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

// One step of a server script.
struct step {
    enum kind_t { read_request, write, pause, drip, repeat, close, reset } kind = write;
    std::string data;
    resilience::duration every{};  // pause: how long; drip: between bytes
    std::size_t count = 0;         // drip: bytes (0 = forever, cycling); repeat: times (0 = until the client hangs up)
};

step read_request() {
    step s;
    s.kind = step::read_request;
    return s;
}
step say(std::string bytes) {
    step s;
    s.data = std::move(bytes);
    return s;
}
step wait(resilience::duration d) {
    step s;
    s.kind = step::pause;
    s.every = d;
    return s;
}
step drip(std::string bytes, resilience::duration every, std::size_t count = 0) {
    step s;
    s.kind = step::drip;
    s.data = std::move(bytes);
    s.every = every;
    s.count = count;
    return s;
}
step repeat(std::string bytes, std::size_t times = 0) {
    step s;
    s.kind = step::repeat;
    s.data = std::move(bytes);
    s.count = times;
    return s;
}
step hang_up() {
    step s;
    s.kind = step::close;
    return s;
}
step reset() {
    step s;
    s.kind = step::reset;
    return s;
}

using script = std::vector<step>;

inline auto nothrow(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

// What a call ended with.
struct outcome {
    std::optional<resilience::result<rh::response>> r;
    resilience::duration elapsed{};  // virtual time from send to completion
    bool ended = false;               // run_virtual saw the call complete

    error_code code() const { return r && !r->has_value() ? r->error().code : error_code(); }
    std::string what() const { return r && !r->has_value() ? r->error().what() : std::string("success"); }
};

// A loopback server running `script` on every connection, and the clock and
// io_context it shares with the client under test. The clock outlives the
// io_context (coroutines asleep on it are destroyed with the context).
struct hostile {
    rt::manual_clock clk;
    asio::io_context ctx{1};
    tcp::acceptor acceptor{ctx, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
    script steps;
    std::uint64_t written = 0;  // bytes the server managed to write, all connections
    int accepted = 0;

    explicit hostile(script s) : steps(std::move(s)) {
        asio::co_spawn(ctx, accept_loop(), test::rethrow{});
    }

    std::string url(const std::string& path = "/v1beta/files/abc") const {
        return "http://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()) + path;
    }

    asio::awaitable<void> accept_loop() {
        for (;;) {
            error_code ec;
            tcp::socket s = co_await acceptor.async_accept(nothrow(ec));
            if (ec) co_return;
            ++accepted;
            asio::co_spawn(ctx, serve(std::move(s)), test::rethrow{});
        }
    }

    asio::awaitable<bool> put(tcp::socket& s, const std::string& bytes) {
        error_code ec;
        std::size_t n = co_await asio::async_write(s, asio::buffer(bytes), nothrow(ec));
        written += n;
        co_return !ec;
    }

    asio::awaitable<void> serve(tcp::socket s) {
        beast::flat_buffer buf;
        for (const step& st : steps) {
            switch (st.kind) {
            case step::read_request: {
                bhttp::request<bhttp::string_body> req;
                error_code ec;
                co_await bhttp::async_read(s, buf, req, nothrow(ec));
                if (ec) co_return;
                break;
            }
            case step::write:
                if (!co_await put(s, st.data)) co_return;
                break;
            case step::pause: {
                const auto until = clk.now() + st.every;
                co_await clk.sleep_until(until);
                break;
            }
            case step::drip:
                for (std::size_t i = 0; st.count == 0 || i < st.count; ++i) {
                    std::string one(1, st.data[i % st.data.size()]);
                    if (!co_await put(s, one)) co_return;
                    const auto until = clk.now() + st.every;
                    co_await clk.sleep_until(until);
                }
                break;
            case step::repeat:
                for (std::size_t i = 0; st.count == 0 || i < st.count; ++i)
                    if (!co_await put(s, st.data)) co_return;
                break;
            case step::close: {
                error_code ec;
                s.shutdown(tcp::socket::shutdown_send, ec);
                // Let the client read what was sent, then close when it does.
                char c;
                co_await s.async_read_some(asio::buffer(&c, 1), nothrow(ec));
                co_return;
            }
            case step::reset: {
                error_code ec;
                s.set_option(asio::socket_base::linger(true, 0), ec);
                s.close(ec);
                co_return;
            }
            }
        }
    }

    // Sends one GET (or `req` when given) with `o` on the shared clock and runs
    // until it completes, in virtual time.
    outcome send(rh::client_options o, std::optional<rh::request> given = std::nullopt,
                 rh::request_options ro = rh::request_options()) {
        o.time = &clk;
        rh::request req;
        if (given) req = std::move(*given);
        if (req.url.empty()) req.url = url();
        outcome out;
        {
            rh::client c(ctx.get_executor(), o);
            const auto t0 = clk.now();
            asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
                auto r = co_await c.send(std::move(req), std::move(ro));
                out.elapsed = clk.now() - t0;
                out.r = std::move(r);
            }, test::rethrow{});
            rt::run_options ro;
            ro.max_real = 30s;
            out.ended = rt::run_virtual(ctx, clk, [&] { return out.r.has_value(); }, ro);
            if (out.ended) {
                auto s = c.stats();
                BOOST_TEST(s.in_use == 0u);
                BOOST_TEST(s.waiting == 0u);
            }
        }
        BOOST_TEST_MESSAGE("  -> " << out.what() << " after " << std::chrono::duration<double>(out.elapsed).count()
                                   << " s (virtual); server wrote " << written << " bytes");
        return out;
    }
};

const std::string ok_head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n";

std::string response(const std::string& body) {
    return ok_head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// The call ended within `bound` of virtual time, with `code`, classified `kind`.
void check_failed(const outcome& o, error_code code, error_kind kind, resilience::duration bound) {
    BOOST_TEST_REQUIRE(o.ended);
    BOOST_TEST_REQUIRE(o.r.has_value());
    BOOST_TEST_REQUIRE(!o.r->has_value());
    BOOST_TEST(o.code() == code, o.what());
    BOOST_TEST(resilience::classify(o.code()) == kind, o.what());
    BOOST_TEST((o.elapsed <= bound), o.what());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(silent_and_slow)

BOOST_AUTO_TEST_CASE(accepts_and_never_answers) {
    // Default options: header_timeout (60 s, = io_timeout) catches it, a network failure.
    hostile h({read_request(), wait(24h)});
    auto o = h.send(rh::client_options());
    check_failed(o, asio::error::timed_out, error_kind::retryable_network, 60s);
    BOOST_TEST((o.elapsed >= 60s));
    BOOST_TEST(o.what().find("header_timeout") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(accepts_and_never_reads) {
    hostile h({wait(24h)});
    rh::client_options opts;
    opts.io_timeout = 5s;
    auto o = h.send(opts);
    check_failed(o, asio::error::timed_out, error_kind::retryable_network, 5s);
    BOOST_TEST(o.what().find("io_timeout") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(drips_the_header_a_byte_a_second) {
    // Each byte resets a stall timer; header_timeout (default 60 s) does not.
    hostile h({read_request(), say("HTTP/1.1 200 OK\r\n"), drip("X-Slow: aaaaaaaa", 1s)});
    auto o = h.send(rh::client_options());
    check_failed(o, asio::error::timed_out, error_kind::retryable_network, 60s);
    BOOST_TEST(o.what().find("header_timeout") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(drips_the_body_a_byte_a_second) {
    // The minimum progress rule (default 1 KiB per 10 s) ends it at the first window.
    hostile h({read_request(), say(ok_head + "Content-Length: 100000\r\n\r\n"), drip("{", 1s)});
    auto o = h.send(rh::client_options());
    check_failed(o, asio::error::timed_out, error_kind::retryable_network, 10s);
    BOOST_TEST((o.elapsed >= 10s));
    BOOST_TEST(o.what().find("min_progress_bytes") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(drips_a_chunked_body) {
    std::string chunk = "1\r\nx\r\n";
    hostile h({read_request(), say(ok_head + "Transfer-Encoding: chunked\r\n\r\n"), drip(chunk, 1s)});
    auto o = h.send(rh::client_options());
    check_failed(o, asio::error::timed_out, error_kind::retryable_network, 10s);
}

BOOST_AUTO_TEST_CASE(slow_but_steady_body_is_not_cut) {
    // 600 bytes a second for 6 s: above the default minimum, so it completes.
    const std::string part(600, 'a');
    script s{read_request(), say(ok_head + "Content-Length: 3600\r\n\r\n")};
    for (int i = 0; i < 6; ++i) {
        s.push_back(say(part));
        s.push_back(wait(1s));
    }
    hostile h(s);
    auto o = h.send(rh::client_options());
    BOOST_TEST_REQUIRE(o.ended);
    BOOST_TEST_REQUIRE(o.r->has_value(), o.what());
    BOOST_TEST((*o.r)->body.size() == 3600u);
    BOOST_TEST((o.elapsed >= 5s));
}

BOOST_AUTO_TEST_CASE(pauses_within_limits_are_fine) {
    // 50 s before the header (under header_timeout and io_timeout), then the answer.
    hostile h({read_request(), wait(50s), say(response("{}"))});
    auto o = h.send(rh::client_options());
    BOOST_TEST_REQUIRE(o.ended);
    BOOST_TEST_REQUIRE(o.r->has_value(), o.what());
    BOOST_TEST((*o.r)->status == 200);
    BOOST_TEST((o.elapsed >= 50s));
}

BOOST_AUTO_TEST_CASE(never_reads_a_large_request_body) {
    // 16 MiB posted to a server that reads nothing: once the socket buffers are
    // full, the next progress window (10 s) carries nothing.
    hostile h({wait(24h)});
    rh::request req;
    req.method = rh::verb::post;
    req.url = h.url();
    req.body.assign(16u * 1024 * 1024, 'u');
    auto o = h.send(rh::client_options(), std::move(req));
    check_failed(o, asio::error::timed_out, error_kind::retryable_network, 20s);
    BOOST_TEST(o.what().find("write to") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(tls_server_that_never_shakes_hands) {
    hostile h({wait(24h)});
    rh::client_options opts;
    opts.connect_timeout = 7s;
    rh::request req;
    req.url = "https://127.0.0.1:" + std::to_string(h.acceptor.local_endpoint().port()) + "/x";
    auto o = h.send(opts, std::move(req));
    check_failed(o, asio::error::timed_out, error_kind::retryable_network, 7s);
    BOOST_TEST(o.what().find("TLS handshake") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(one_deadline_code)

// The request's deadline ends it with errc::attempt_timeout wherever it
// expires, before every step limit.
BOOST_AUTO_TEST_CASE(deadline_while_waiting_for_the_header) {
    hostile h({read_request(), wait(24h)});
    rh::request req;
    rh::request_options ro(h.clk.now() + 3s);
    auto o = h.send(rh::client_options(), std::move(req), std::move(ro));
    check_failed(o, make_error_code(errc::attempt_timeout), error_kind::retryable_network, 3s);
}

BOOST_AUTO_TEST_CASE(deadline_during_a_dripped_header) {
    hostile h({read_request(), drip("HTTP/1.1 200 OK\r\nX: aaaaaaaaaaaaaaaaaaaaaaa", 1s)});
    rh::request req;
    rh::request_options ro(h.clk.now() + 4s);
    auto o = h.send(rh::client_options(), std::move(req), std::move(ro));
    check_failed(o, make_error_code(errc::attempt_timeout), error_kind::retryable_network, 4s);
}

BOOST_AUTO_TEST_CASE(deadline_during_a_dripped_body) {
    hostile h({read_request(), say(ok_head + "Content-Length: 100\r\n\r\n"), drip("a", 1s)});
    rh::request req;
    rh::request_options ro(h.clk.now() + 4s);
    auto o = h.send(rh::client_options(), std::move(req), std::move(ro));
    check_failed(o, make_error_code(errc::attempt_timeout), error_kind::retryable_network, 4s);
}

BOOST_AUTO_TEST_CASE(request_timeout_during_the_tls_handshake) {
    hostile h({wait(24h)});
    rh::client_options opts;
    opts.request_timeout = 2s;
    rh::request req;
    req.url = "https://127.0.0.1:" + std::to_string(h.acceptor.local_endpoint().port()) + "/x";
    auto o = h.send(opts, std::move(req));
    check_failed(o, make_error_code(errc::attempt_timeout), error_kind::retryable_network, 2s);
}

BOOST_AUTO_TEST_CASE(deadline_while_waiting_for_a_pool_slot) {
    // One connection per origin, held by a request the server never answers:
    // the second request waits for the slot until its deadline.
    hostile h({read_request(), wait(24h)});
    rh::client_options opts;
    opts.time = &h.clk;
    opts.max_connections_per_origin = 1;
    std::optional<resilience::result<rh::response>> first, second;
    resilience::duration second_took{};
    {
        rh::client c(h.ctx.get_executor(), opts);
        const auto t0 = h.clk.now();
        asio::co_spawn(h.ctx, [&]() -> asio::awaitable<void> {
            rh::request req;
            req.url = h.url();
            rh::request_options ro(t0 + 10s);
            first = co_await c.send(std::move(req), std::move(ro));
        }, test::rethrow{});
        asio::co_spawn(h.ctx, [&]() -> asio::awaitable<void> {
            rh::request req;
            req.url = h.url();
            rh::request_options ro(t0 + 3s);
            auto r = co_await c.send(std::move(req), std::move(ro));
            second_took = h.clk.now() - t0;
            second = std::move(r);
        }, test::rethrow{});
        BOOST_TEST_REQUIRE(rt::run_virtual(h.ctx, h.clk, [&] { return first && second; }));
        BOOST_TEST(c.stats().in_use == 0u);
        BOOST_TEST(c.stats().waiting == 0u);
    }
    BOOST_TEST_REQUIRE(!second->has_value());
    BOOST_TEST(second->error().code == make_error_code(errc::attempt_timeout));
    BOOST_TEST(second->error().what().find("waiting for a connection") != std::string::npos);
    BOOST_TEST((second_took <= 3s));
    BOOST_TEST_REQUIRE(!first->has_value());
    BOOST_TEST(first->error().code == make_error_code(errc::attempt_timeout));
    BOOST_TEST(h.accepted == 1);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(interim_responses)

BOOST_AUTO_TEST_CASE(continue_then_the_answer) {
    hostile h({read_request(), say("HTTP/1.1 100 Continue\r\n\r\n"), wait(2s),
               say("HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"),
               say(response("{\"name\":\"files/abc\"}"))});
    rh::request req;
    req.method = rh::verb::post;
    req.url = h.url();
    req.body = "{}";
    auto o = h.send(rh::client_options(), std::move(req));
    BOOST_TEST_REQUIRE(o.ended);
    BOOST_TEST_REQUIRE(o.r->has_value(), o.what());
    BOOST_TEST((*o.r)->status == 200);
    BOOST_TEST((*o.r)->body == "{\"name\":\"files/abc\"}");
}

BOOST_AUTO_TEST_CASE(endless_interim_responses) {
    // A 100 Continue every second, forever: header_timeout covers them all.
    hostile h({read_request(), wait(1s), say("HTTP/1.1 100 Continue\r\n\r\n"), wait(1s),
               repeat("HTTP/1.1 100 Continue\r\n\r\n", 50), wait(24h)});
    rh::client_options opts;
    opts.header_timeout = 20s;
    auto o = h.send(opts);
    check_failed(o, asio::error::timed_out, error_kind::retryable_network, 20s);
}

BOOST_AUTO_TEST_CASE(switching_protocols_is_not_pooled) {
    hostile h({read_request(), say("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"), wait(24h)});
    auto o = h.send(rh::client_options());
    BOOST_TEST_REQUIRE(o.ended);
    BOOST_TEST_REQUIRE(o.r->has_value(), o.what());
    BOOST_TEST((*o.r)->status == 101);
    BOOST_TEST(rh::to_failure(**o.r).code == make_error_code(resilience::http::errc::unexpected_status));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(broken_answers)

BOOST_AUTO_TEST_CASE(bad_status_line) {
    hostile h({read_request(), say("HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n"), hang_up()});
    auto o = h.send(rh::client_options());
    check_failed(o, make_error_code(resilience::http::errc::malformed_response), error_kind::retryable_server, 1s);
}

BOOST_AUTO_TEST_CASE(http_0_9_reply) {
    hostile h({read_request(), say("{\"name\":\"files/abc\"}\n"), hang_up()});
    auto o = h.send(rh::client_options());
    check_failed(o, make_error_code(resilience::http::errc::malformed_response), error_kind::retryable_server, 1s);
}

BOOST_AUTO_TEST_CASE(garbage_content_length) {
    hostile h({read_request(), say(ok_head + "Content-Length: 12abc\r\n\r\n{}"), hang_up()});
    auto o = h.send(rh::client_options());
    check_failed(o, make_error_code(resilience::http::errc::malformed_response), error_kind::retryable_server, 1s);
}

BOOST_AUTO_TEST_CASE(chunk_size_overflow) {
    hostile h({read_request(), say(ok_head + "Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\n"), wait(24h)});
    auto o = h.send(rh::client_options());
    check_failed(o, make_error_code(resilience::http::errc::malformed_response), error_kind::retryable_server, 1s);
}

BOOST_AUTO_TEST_CASE(empty_reply) {
    hostile h({read_request(), hang_up()});
    auto o = h.send(rh::client_options());
    check_failed(o, bhttp::error::end_of_stream, error_kind::retryable_network, 1s);
}

BOOST_AUTO_TEST_CASE(closed_mid_headers) {
    hostile h({read_request(), say("HTTP/1.1 200 OK\r\nContent-Le"), hang_up()});
    auto o = h.send(rh::client_options());
    check_failed(o, bhttp::error::partial_message, error_kind::retryable_network, 1s);
}

BOOST_AUTO_TEST_CASE(closed_mid_body) {
    hostile h({read_request(), say(ok_head + "Content-Length: 1000\r\n\r\n{\"name\":"), hang_up()});
    auto o = h.send(rh::client_options());
    check_failed(o, bhttp::error::partial_message, error_kind::retryable_network, 1s);
}

BOOST_AUTO_TEST_CASE(reset_mid_body) {
    hostile h({read_request(), say(ok_head + "Content-Length: 1000\r\n\r\n{\"name\":"), wait(1s), reset()});
    auto o = h.send(rh::client_options());
    check_failed(o, asio::error::connection_reset, error_kind::retryable_network, 2s);
}

BOOST_AUTO_TEST_CASE(reset_before_answering) {
    hostile h({read_request(), reset()});
    auto o = h.send(rh::client_options());
    BOOST_TEST_REQUIRE(o.ended);
    BOOST_TEST_REQUIRE(!o.r->has_value());
    BOOST_TEST(resilience::classify(o.code()) == error_kind::retryable_network, o.what());
}

BOOST_AUTO_TEST_CASE(bytes_after_the_answer_are_not_read_as_the_next_answer) {
    // Junk after a complete answer: the connection is not pooled, so the next
    // request opens a fresh one instead of reading the junk as its answer.
    hostile h({read_request(), say(response("{}") + "HTTP/1.1 500 Junk\r\n\r\n"), wait(24h)});
    rh::client_options opts;
    opts.time = &h.clk;
    int ok = 0;
    bool done = false;
    {
        rh::client c(h.ctx.get_executor(), opts);
        asio::co_spawn(h.ctx, [&]() -> asio::awaitable<void> {
            for (int i = 0; i < 2; ++i) {
                rh::request req;
                req.url = h.url();
                auto r = co_await c.send(std::move(req));
                if (r && r->status == 200) ++ok;
            }
            done = true;
        }, test::rethrow{});
        BOOST_TEST_REQUIRE(rt::run_virtual(h.ctx, h.clk, [&] { return done; }));
    }
    BOOST_TEST(ok == 2);
    BOOST_TEST(h.accepted == 2);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(bounded_memory)

BOOST_AUTO_TEST_CASE(endless_header) {
    // Header lines forever: max_header_bytes (default 64 KiB) ends it.
    hostile h({read_request(), say("HTTP/1.1 200 OK\r\n"), repeat("X-Pad: " + std::string(1000, 'p') + "\r\n")});
    auto o = h.send(rh::client_options());
    check_failed(o, make_error_code(resilience::http::errc::response_too_large), error_kind::non_retryable_client, 1s);
    BOOST_TEST(h.written < 8u * 1024 * 1024);
}

BOOST_AUTO_TEST_CASE(one_endless_header_line) {
    hostile h({read_request(), say("HTTP/1.1 200 OK\r\nX-Pad: "), repeat(std::string(4096, 'p'))});
    auto o = h.send(rh::client_options());
    check_failed(o, make_error_code(resilience::http::errc::response_too_large), error_kind::non_retryable_client, 1s);
    BOOST_TEST(h.written < 8u * 1024 * 1024);
}

BOOST_AUTO_TEST_CASE(endless_chunked_body) {
    std::string chunk = "1000\r\n" + std::string(4096, 'c') + "\r\n";
    hostile h({read_request(), say(ok_head + "Transfer-Encoding: chunked\r\n\r\n"), repeat(chunk)});
    rh::client_options opts;
    opts.max_body_bytes = 1024 * 1024;
    auto o = h.send(opts);
    check_failed(o, make_error_code(resilience::http::errc::response_too_large), error_kind::non_retryable_client, 1s);
    // The client stopped after its limit (plus what the socket buffers held).
    BOOST_TEST(h.written < 16u * 1024 * 1024);
}

BOOST_AUTO_TEST_CASE(endless_read_until_close_body) {
    hostile h({read_request(), say("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"), repeat(std::string(4096, 'b'))});
    rh::client_options opts;
    opts.max_body_bytes = 1024 * 1024;
    auto o = h.send(opts);
    check_failed(o, make_error_code(resilience::http::errc::response_too_large), error_kind::non_retryable_client, 1s);
    BOOST_TEST(h.written < 16u * 1024 * 1024);
}

BOOST_AUTO_TEST_CASE(declared_50_mb_body_is_refused_before_it_is_read) {
    // A 50 MB JSON answer against a 4 MiB limit: refused from its Content-Length.
    const std::uint64_t size = 50'000'000;
    hostile h({read_request(), say(ok_head + "Content-Length: " + std::to_string(size) + "\r\n\r\n"),
               repeat(std::string(64 * 1024, ' '), size / (64 * 1024))});
    rh::client_options opts;
    opts.max_body_bytes = 4 * 1024 * 1024;
    auto o = h.send(opts);
    check_failed(o, make_error_code(resilience::http::errc::response_too_large), error_kind::non_retryable_client, 1s);
    BOOST_TEST(h.written < 16u * 1024 * 1024);
}

BOOST_AUTO_TEST_CASE(default_body_limit_is_documented_value) {
    // The documented default: 64 MiB.
    BOOST_TEST(rh::client_options().max_body_bytes == 64ull * 1024 * 1024);
    BOOST_TEST(rh::client_options().max_header_bytes == 64u * 1024);
    BOOST_TEST((rh::client_options().header_timeout == std::chrono::seconds(60)));
    BOOST_TEST((rh::client_options().progress_window == std::chrono::seconds(10)));
    BOOST_TEST(rh::client_options().min_progress_bytes == 1024u);
}

BOOST_AUTO_TEST_SUITE_END()
