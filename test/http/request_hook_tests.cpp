// http::client_options::on_request: called once per send(), so once per
// attempt of a retried call; with the pipeline's attempt events it puts a W3C
// traceparent naming each attempt's own span on that attempt's request.
#include <boost/test/unit_test.hpp>

#include "test_common.hpp"
#include "test_server.hpp"

#include <resilience/http/client.hpp>
#include <resilience/retry.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace rh = resilience::http;
using namespace std::chrono_literals;
using test_http::http_request;
using test_http::make_response;

namespace {

template <class F>
void run_hook_test(F f) {
    asio::io_context ctx(1);
    bool done = false;
    auto body = [&]() -> asio::awaitable<void> {
        co_await f(ctx);
        done = true;
    };
    asio::co_spawn(ctx, body(), test::rethrow{});
    ctx.run_for(20s);  // a hang guard only
    BOOST_TEST_REQUIRE(done);
}

std::string hex(std::uint64_t v, int digits) {
    std::string s(static_cast<std::size_t>(digits), '0');
    for (int i = digits - 1; i >= 0 && v; --i, v >>= 4) s[static_cast<std::size_t>(i)] = "0123456789abcdef"[v & 0xf];
    return s;
}

// A toy tracer: one trace per call, one span per attempt (span id derived
// from the call id and the attempt), the attempt's span "current" from its
// start until its end.
struct tracer {
    std::string trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    std::optional<std::string> current;
    std::vector<std::string> started;              // traceparents of started spans
    std::map<std::string, std::string> outcome;    // traceparent -> "ok" / kind

    static std::string span_id(std::uint64_t call, int attempt) { return hex(call * 256 + static_cast<unsigned>(attempt), 16); }

    void on_event(const resilience::event& e) {
        const std::string tp = "00-" + trace_id + "-" + span_id(e.call_id, e.attempt) + "-01";
        if (e.type == resilience::event_type::attempt_started) {
            current = tp;
            started.push_back(tp);
        } else if (e.type == resilience::event_type::attempt_succeeded) {
            outcome[tp] = "ok";
            current.reset();
        } else if (e.type == resilience::event_type::attempt_failed) {
            outcome[tp] = std::string(resilience::to_string(e.kind));
            current.reset();
        }
    }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(http_request_hook)

BOOST_AUTO_TEST_CASE(hook_runs_once_per_send_and_may_add_headers) {
    run_hook_test([](asio::io_context& ctx) -> asio::awaitable<void> {
        std::vector<std::string> seen;
        test_http::server srv(ctx.get_executor(), test_http::serve([&](const http_request& req) {
                                  seen.emplace_back(req["x-hook"]);
                                  return make_response(200, "{}");
                              }));
        int calls = 0;
        rh::client_options o;
        o.on_request = [&](rh::request& r) { r.headers.set("x-hook", "call-" + std::to_string(++calls)); };
        rh::client c(ctx, o);
        for (int i = 0; i < 3; ++i) {
            rh::request req;
            req.url = srv.url("/x");
            auto r = co_await c.send(std::move(req));
            BOOST_TEST_REQUIRE(r.has_value());
        }
        BOOST_TEST(calls == 3);
        BOOST_TEST(seen == (std::vector<std::string>{"call-1", "call-2", "call-3"}), boost::test_tools::per_element());
        srv.stop();
    });
}

// A retried call: the server answers 503 to the first request and 200 to the
// second. Each request carries the traceparent of its own attempt's span,
// and the spans end with the attempts' outcomes.
BOOST_AUTO_TEST_CASE(traceparent_per_attempt) {
    run_hook_test([](asio::io_context& ctx) -> asio::awaitable<void> {
        std::vector<std::string> seen;
        test_http::server srv(ctx.get_executor(), test_http::serve([&](const http_request& req) {
                                  seen.emplace_back(req["traceparent"]);
                                  return make_response(seen.size() == 1 ? 503 : 200, "{}");
                              }));
        tracer tr;
        rh::client_options o;
        o.on_request = [&](rh::request& r) {
            if (tr.current) r.headers.set("traceparent", *tr.current);
        };
        rh::client c(ctx, o);

        resilience::retry_options ro;
        ro.policy.backoff.initial_delay = 0ms;  // no real waiting
        ro.policy.backoff.max_delay = 0ms;
        ro.on_event = [&](const resilience::event& e) { tr.on_event(e); };
        resilience::pipeline p(ro);
        const std::string url = srv.url("/v1beta/files/abc");
        auto op = [&]() -> asio::awaitable<resilience::result<rh::response>> {
            rh::request req;
            req.url = url;
            auto r = co_await c.send(std::move(req));
            if (!r) co_return r;
            co_return rh::check(std::move(*r));
        };
        auto r = co_await p.run(op);
        BOOST_TEST_REQUIRE(r.has_value(), (r ? std::string() : r.error().what()));

        BOOST_TEST_REQUIRE(seen.size() == 2u);
        BOOST_TEST_REQUIRE(tr.started.size() == 2u);
        BOOST_TEST(seen[0] == tr.started[0]);
        BOOST_TEST(seen[1] == tr.started[1]);
        BOOST_TEST(seen[0] != seen[1]);
        BOOST_TEST(seen[0].substr(0, 36) == "00-" + tr.trace_id + "-");
        BOOST_TEST(tr.outcome[seen[0]] == "RETRYABLE_SERVER");
        BOOST_TEST(tr.outcome[seen[1]] == "ok");
        BOOST_TEST(!tr.current.has_value());
        srv.stop();
    });
}

// request_options::on_request replaces the client's hook for one request
// (an empty function turns it off for that request); unset, the client's runs.
BOOST_AUTO_TEST_CASE(a_request_may_replace_the_clients_hook) {
    run_hook_test([](asio::io_context& ctx) -> asio::awaitable<void> {
        std::vector<std::string> seen;
        test_http::server srv(ctx.get_executor(), test_http::serve([&](const http_request& req) {
                                  seen.emplace_back(req["x-hook"]);
                                  return make_response(200, "{}");
                              }));
        rh::client_options o;
        o.on_request = [](rh::request& r) { r.headers.set("x-hook", "client"); };
        rh::client c(ctx, o);
        rh::request a;
        a.url = srv.url("/a");
        rh::request_options mine;
        mine.on_request = [](rh::request& r) { r.headers.set("x-hook", "mine"); };
        auto ra = co_await c.send(std::move(a), std::move(mine));
        BOOST_TEST(ra.has_value());
        rh::request b;
        b.url = srv.url("/b");
        rh::request_options off;
        off.on_request = std::function<void(rh::request&)>();
        auto rb = co_await c.send(std::move(b), std::move(off));
        BOOST_TEST(rb.has_value());
        rh::request d;
        d.url = srv.url("/c");
        auto rd = co_await c.send(std::move(d));
        BOOST_TEST(rd.has_value());
        BOOST_TEST(seen == (std::vector<std::string>{"mine", "", "client"}), boost::test_tools::per_element());
        srv.stop();
    });
}

// Settings given in code are checked by validate(), which the constructor runs.
BOOST_AUTO_TEST_CASE(client_options_are_validated) {
    BOOST_TEST(rh::client_options().validate().has_value());
    rh::client_options o;
    o.connect_timeout = -1s;
    auto v = o.validate();
    BOOST_TEST_REQUIRE(!v.has_value());
    BOOST_TEST((v.error().code == resilience::errc::invalid_config));
    BOOST_TEST(v.error().what().find("connect_timeout") != std::string::npos);
    asio::io_context ctx;
    BOOST_CHECK_THROW(rh::client(ctx, o), resilience::error);
    rh::client_options p;
    p.max_body_bytes = 0;
    BOOST_TEST(p.validate().error().what().find("max_body_bytes") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
