// The Gemini client against servers that misbehave on purpose (a scripted
// server on loopback, or the simulator's faults), in virtual time: each case
// ends within its deadline with a clear, classified error, a bounded number of
// requests, and never lets the API key travel elsewhere or reach our output.
#include <resilience/gemini/client.hpp>
#include <resilience/gemini/wire.hpp>
#include <resilience/sim/server.hpp>
#include <resilience/testing/manual_clock.hpp>

#include "gemini_fixture.hpp"
#include "test_server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>

namespace {

const std::string hkey = "hostile-key-7c41e9a2";

// A scripted server and a client on one io_context and one manual clock.
struct hostile : test::gemini_client_fixture {
    std::unique_ptr<test_http::server> srv;
    std::vector<test_http::http_request> seen;  // every request the server read (with serve_fn)

    explicit hostile(test_http::script s, gemini::client_options opts = gemini::client_options()) {
        srv = std::make_unique<test_http::server>(ctx.get_executor(), std::move(s));
        if (opts.api_key.empty()) opts.api_key = hkey;
        make_client(std::move(opts), srv->url(""), 7);
    }
    ~hostile() {
        srv->stop();
        client.reset();
    }
};

test_http::http_response with_header(test_http::http_response r, std::string_view name, std::string_view value) {
    r.set(name, value);
    return r;
}

std::string temp_file(const std::string& name, std::size_t size) {
    auto p = std::filesystem::temp_directory_path() / ("gemini-hostile-" + std::to_string(::getpid()) + "-" + name);
    std::ofstream(p, std::ios::binary) << std::string(size, 'x');
    return p.string();
}

const std::string active_file = R"({"name":"files/abc","state":"ACTIVE","mimeType":"text/plain","uri":"u"})";

}  // namespace

BOOST_AUTO_TEST_SUITE(gemini_hostile)

// --- specification gaps -----------------------------------------------------

BOOST_AUTO_TEST_CASE(max_retries_zero_ends_a_wait_at_the_first_failed_poll) {
    int gets = 0;
    gemini::client_options o;
    o.retry.max_retries = 0;
    hostile h(test_http::serve([&](const test_http::http_request&) {
        ++gets;
        return test_http::make_response(503, R"({"error":{"code":503,"message":"overloaded","status":"UNAVAILABLE"}})");
    }), o);
    gemini::wait_options w;
    w.deadline = h.clk.now() + 10min;
    std::optional<resilience::result<gemini::file>> r;
    h.run([&]() -> asio::awaitable<void> { r = co_await h.client->wait_until_active("files/abc", std::move(w)); });
    BOOST_REQUIRE(r && !*r);
    BOOST_TEST((r->error().code == resilience::http::errc::server_error), r->error().what());
    BOOST_TEST(r->error().what().find("overloaded") != std::string::npos, r->error().what());
    BOOST_TEST(gets == 1);
}

BOOST_AUTO_TEST_CASE(a_400_with_retry_after_does_not_hold_the_scope) {
    int gets = 0;
    hostile h(test_http::serve([&](const test_http::http_request&) {
        if (++gets == 1)
            return with_header(test_http::make_response(400, R"({"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}})"),
                               "Retry-After", "20");
        return test_http::make_response(200, active_file);
    }));
    std::optional<resilience::result<gemini::file>> a, b;
    const auto t0 = h.clk.now();
    h.run([&]() -> asio::awaitable<void> {
        a = co_await h.client->get("files/abc");
        b = co_await h.client->get("files/abc");
    });
    BOOST_REQUIRE(a && !*a);
    BOOST_TEST((a->error().code == resilience::http::errc::client_error));
    BOOST_REQUIRE(b && *b);
    BOOST_TEST((h.clk.now() - t0 < 1s));  // the second call was not held for 20 s
    BOOST_TEST(h.all_status().find("Rate limited") == std::string::npos, h.all_status());
}

BOOST_AUTO_TEST_CASE(a_408_is_retried_as_a_network_failure) {
    int gets = 0;
    hostile h(test_http::serve([&](const test_http::http_request&) {
        if (++gets == 1) return test_http::make_response(408, "request timeout", "text/plain");
        return test_http::make_response(200, active_file);
    }));
    std::optional<resilience::result<gemini::file>> r;
    h.run([&]() -> asio::awaitable<void> { r = co_await h.client->get("files/abc"); });
    BOOST_REQUIRE(r && *r);
    BOOST_TEST(gets == 2);
    BOOST_TEST(h.all_status().find("(RETRYABLE_NETWORK)") != std::string::npos, h.all_status());
}

BOOST_AUTO_TEST_CASE(a_deadline_failure_of_a_wait_reports_its_attempts) {
    int gets = 0;
    hostile h(test_http::serve([&](const test_http::http_request&) {
        ++gets;
        return test_http::make_response(200, R"({"name":"files/abc","state":"PROCESSING"})");
    }));
    gemini::wait_options w;
    w.deadline = h.clk.now() + 30s;
    std::optional<resilience::result<gemini::file>> r;
    h.run([&]() -> asio::awaitable<void> { r = co_await h.client->wait_until_active("files/abc", std::move(w)); });
    BOOST_REQUIRE(r && !*r);
    BOOST_TEST((r->error().code == errc::deadline_exceeded));
    BOOST_TEST(gets > 3);
    BOOST_TEST(r->error().diag.attempts == gets);
}

// --- security ---------------------------------------------------------------

BOOST_AUTO_TEST_CASE(the_key_goes_only_to_the_configured_origin) {
    // Another server on loopback (another port: another origin) that the
    // hostile one names as the upload session.
    int evil_requests = 0;
    std::unique_ptr<test_http::server> evil;
    std::string session;
    hostile h(test_http::serve([&](const test_http::http_request& req) {
        if (std::string(req.target()).starts_with("/upload/"))
            return with_header(test_http::make_response(200, "{}"), "x-goog-upload-url", session);
        return test_http::make_response(404, "{}");
    }));
    evil = std::make_unique<test_http::server>(h.ctx.get_executor(), test_http::serve([&](const test_http::http_request&) {
        ++evil_requests;
        return test_http::make_response(200, active_file);
    }));
    const std::string path = temp_file("origin.txt", 100);
    for (std::string target : {evil->url("/upload/session1"),
                               "https" + h.srv->url("/upload/session1").substr(4),  // same host and port, other scheme
                               "http://localhost:" + std::to_string(h.srv->port()) + "/s"}) {
        session = target;
        std::optional<resilience::result<gemini::file>> r;
        h.run([&]() -> asio::awaitable<void> { r = co_await h.client->upload(path); });
        BOOST_TEST_CONTEXT(target) {
            BOOST_REQUIRE(r && !*r);
            BOOST_TEST((r->error().code == resilience::gemini::errc::untrusted_url), r->error().what());
            BOOST_TEST(r->error().what().find("configured origin") != std::string::npos);
            BOOST_TEST(r->error().diag.attempts == 1);  // not retried
        }
    }
    BOOST_TEST(evil_requests == 0);
    evil->stop();
    std::filesystem::remove(path);
}

BOOST_AUTO_TEST_CASE(a_key_echoed_by_the_server_is_scrubbed_everywhere) {
    // The key as it is, and behind JSON escapes.
    std::string escaped;
    for (char c : hkey) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(c));
        escaped += buf;
    }
    hostile h(test_http::serve([&](const test_http::http_request& req) {
        std::string t(req.target());
        if (t.find("/files/plain") != std::string::npos) return test_http::make_response(200, "your key is " + hkey, "text/plain");
        if (t.find("/files/state") != std::string::npos)
            return test_http::make_response(200, R"({"name":"files/state","state":")" + hkey + R"(","displayName":")" + escaped + R"("})");
        if (t.find("/files/failed") != std::string::npos)
            return test_http::make_response(200, R"({"name":"files/failed","state":"FAILED","error":{"code":3,"message":"bad )" + escaped + R"("}})");
        if (t.find("/files/err") != std::string::npos)
            return test_http::make_response(400, R"({"error":{"code":400,"message":"key )" + hkey + R"(","status":")" + hkey + R"("}})");
        if (t.find("/files") != std::string::npos)  // list
            return test_http::make_response(200, R"({"files":[{"name":"files/a","displayName":")" + hkey + R"(","state":")" + escaped + R"("}]})");
        return test_http::make_response(404, "{}");
    }));
    std::string everything;
    auto add_file = [&](const gemini::file& f) {
        everything += f.name + f.display_name + f.state_text + f.uri + (f.error ? f.error->message : "") + "\n";
    };
    auto add_failure = [&](const resilience::failure& f) {
        everything += f.what() + f.diag.status + f.diag.reason + f.diag.quota_id + "\n";
    };
    int checked = 0;
    h.run([&]() -> asio::awaitable<void> {
        for (std::string n : {"files/plain", "files/err"}) {
            auto r = co_await h.client->get(n);
            BOOST_TEST(!r);
            if (!r) add_failure(r.error()), ++checked;
        }
        auto s = co_await h.client->get("files/state");
        BOOST_TEST(bool(s));
        if (s) add_file(*s), ++checked;
        gemini::wait_options w;
        w.deadline = h.clk.now() + 1min;
        auto f = co_await h.client->wait_until_active("files/failed", std::move(w));
        BOOST_TEST(!f);
        if (!f) add_failure(f.error()), ++checked;
        auto l = co_await h.client->list();
        BOOST_TEST(bool(l));
        if (l) for (auto& x : *l) add_file(x), ++checked;
    });
    BOOST_TEST(checked == 5);
    everything += h.all_status();
    BOOST_TEST(everything.find(hkey) == std::string::npos, everything);
    BOOST_TEST(everything.find("[redacted]") != std::string::npos);
}

// --- hostile servers ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(list_page_tokens_that_cycle_or_never_end) {
    int lists = 0;
    hostile cyc(test_http::serve([&](const test_http::http_request& req) {
        ++lists;
        std::string t(req.target());
        std::string next = t.find("pageToken=A") != std::string::npos ? "B" : "A";  // A, B, A, ...
        return test_http::make_response(200, R"({"files":[{"name":"files/x"}],"nextPageToken":")" + next + "\"}");
    }));
    std::optional<resilience::result<std::vector<gemini::file>>> r;
    cyc.run([&]() -> asio::awaitable<void> { r = co_await cyc.client->list(); });
    BOOST_REQUIRE(r && !*r);
    BOOST_TEST((r->error().code == resilience::http::errc::malformed_response));
    BOOST_TEST(r->error().what().find("cycle") != std::string::npos, r->error().what());
    BOOST_TEST(lists == 3);

    // Tokens that never end: bounded by list_max_pages.
    int n = 0;
    gemini::client_options o;
    o.list_max_pages = 50;
    hostile endless(test_http::serve([&](const test_http::http_request&) {
        ++n;
        return test_http::make_response(200, R"({"files":[],"nextPageToken":"t)" + std::to_string(n) + "\"}");
    }), o);
    endless.run([&]() -> asio::awaitable<void> { r = co_await endless.client->list(); });
    BOOST_REQUIRE(r && !*r);
    BOOST_TEST(r->error().what().find("50 pages") != std::string::npos, r->error().what());
    BOOST_TEST(n == 50);

    // ... and by the bytes they add up to.
    int m = 0;
    gemini::client_options ob;
    ob.list_max_bytes = 100000;
    hostile big(test_http::serve([&](const test_http::http_request&) {
        ++m;
        return test_http::make_response(200, R"({"files":[{"name":"files/x","displayName":")" + std::string(10000, 'd') +
                                                 R"("}],"nextPageToken":"t)" + std::to_string(m) + "\"}");
    }), ob);
    big.run([&]() -> asio::awaitable<void> { r = co_await big.client->list(); });
    BOOST_REQUIRE(r && !*r);
    BOOST_TEST((r->error().code == resilience::http::errc::response_too_large), r->error().what());
    BOOST_TEST(m <= 11);
}

BOOST_AUTO_TEST_CASE(an_upload_that_never_finalises_is_paced_and_bounded) {
    int chunk_requests = 0;
    std::string session;
    gemini::client_options o;
    o.retry.max_retries = 3;
    hostile h(test_http::serve([&](const test_http::http_request& req) {
        if (std::string(req.target()).starts_with("/upload/"))
            return with_header(test_http::make_response(200, "{}"), "x-goog-upload-url", session);
        ++chunk_requests;
        auto r = with_header(test_http::make_response(200, "{}"), "x-goog-upload-status", "active");
        return with_header(std::move(r), "x-goog-upload-size-received", "1000");
    }), o);
    session = h.srv->url("/session/1");
    const std::string path = temp_file("never.txt", 1000);
    std::optional<resilience::result<gemini::file>> r;
    const auto t0 = h.clk.now();
    h.run([&]() -> asio::awaitable<void> { r = co_await h.client->upload(path); });
    BOOST_REQUIRE(r && !*r);
    BOOST_TEST((r->error().code == resilience::http::errc::malformed_response), r->error().what());
    BOOST_TEST(r->error().what().find("finalis") != std::string::npos, r->error().what());
    // The finalize, then per retry a query and the finalize again: no tight loop.
    BOOST_TEST(chunk_requests <= 1 + 2 * o.retry.max_retries);
    BOOST_TEST((h.clk.now() - t0 >= 1s));  // paced by the backoff
    std::filesystem::remove(path);
}

BOOST_AUTO_TEST_CASE(an_attempt_that_throws_ends_at_once_with_its_cause) {
    int requests = 0;
    gemini::client_options o;
    o.api_key = std::string(64 * 1024 + 10, 'k');  // too long for a header: Beast throws before sending
    hostile h(test_http::serve([&](const test_http::http_request&) {
        ++requests;
        return test_http::make_response(200, active_file);
    }), o);
    std::optional<resilience::result<gemini::file>> r, w;
    const auto t0 = h.clk.now();
    h.run([&]() -> asio::awaitable<void> {
        r = co_await h.client->get("files/abc");
        gemini::wait_options wo;
        wo.deadline = h.clk.now() + 10min;
        w = co_await h.client->wait_until_active("files/abc", std::move(wo));
    });
    BOOST_REQUIRE(r && !*r);
    BOOST_TEST(r->error().what().find("timed out") == std::string::npos, r->error().what());
    BOOST_TEST((r->error().code != errc::attempt_timeout));
    BOOST_REQUIRE(w && !*w);
    BOOST_TEST((w->error().code != errc::deadline_exceeded), w->error().what());
    BOOST_TEST((h.clk.now() == t0));  // no 60 s stall per attempt
    BOOST_TEST(requests == 0);
    BOOST_TEST(r->error().what().find(std::string(100, 'k')) == std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_final_error_of_a_wait_names_the_cause) {
    struct case_t {
        const char* name;
        std::string raw;     // written raw after reading the request, then the connection is closed
        std::string cause;   // what the final error must mention
    };
    const std::vector<case_t> cases = {
        {"empty 200", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "is empty"},
        {"file without a name", "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n{\"state\":\"ACTIVE\"}  ", "has no name"},
        {"bad status line", "HTTP/1.1 abc\r\n\r\n", "bad status"},
        {"HTTP/0.9", "hello there\n", "bad version"},
        {"closed mid-headers", "HTTP/1.1 200 OK\r\nContent-", "partial message"},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            const std::string raw = c.raw;
            hostile h([raw](test_http::server_conn& conn) -> asio::awaitable<void> {
                auto req = co_await conn.read_request();
                if (!req) co_return;
                co_await conn.write_raw(raw);
                conn.close();
            });
            gemini::wait_options w;
            w.deadline = h.clk.now() + 5min;
            std::optional<resilience::result<gemini::file>> r;
            h.run([&]() -> asio::awaitable<void> { r = co_await h.client->wait_until_active("files/abc", std::move(w)); });
            BOOST_REQUIRE(r && !*r);
            const std::string msg = r->error().what();
            BOOST_TEST_MESSAGE(c.name << ": " << msg);
            BOOST_TEST(msg.find(c.cause) != std::string::npos, msg);
            // The breaker may be what held the last poll, but the error names what failed.
            bool names_cause = false;
            for (std::string marker : {"(last poll failed: ", "(last error: "})
                for (auto pos = msg.find(marker); pos != std::string::npos; pos = msg.find(marker, pos + 1)) {
                    const std::string rest = msg.substr(pos + marker.size());
                    if (!rest.starts_with("circuit breaker") && !rest.starts_with("deadline")) names_cause = true;
                }
            BOOST_TEST(names_cause, msg);
            BOOST_TEST((h.clk.now() <= w.deadline));
        }
    }
}

// --- bad input ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(unusable_files_and_names_are_refused_before_sending) {
    int requests = 0;
    hostile h(test_http::serve([&](const test_http::http_request&) {
        ++requests;
        return test_http::make_response(500, "{}");
    }));
    const auto dir = std::filesystem::temp_directory_path();
    for (std::string p : {std::string("/nonexistent/dir/file.mp4"), dir.string(), std::string("/dev/null")}) {
        std::optional<resilience::result<gemini::file>> r;
        h.run([&]() -> asio::awaitable<void> { r = co_await h.client->upload(p); });
        BOOST_TEST_CONTEXT(p) {
            BOOST_REQUIRE(r && !*r);
            BOOST_TEST((r->error().code == errc::invalid_argument), r->error().what());
        }
    }
    // A display name that is not UTF-8 is refused; a file name that is not is encoded.
    const std::string path = temp_file("ok.txt", 10);
    gemini::upload_options uo;
    uo.display_name = "bad\xff\xfe";
    std::optional<resilience::result<gemini::file>> r;
    h.run([&]() -> asio::awaitable<void> { r = co_await h.client->upload(path, std::move(uo)); });
    BOOST_REQUIRE(r && !*r);
    BOOST_TEST((r->error().code == errc::invalid_argument));
    BOOST_TEST(r->error().what().find("UTF-8") != std::string::npos);
    BOOST_TEST(requests == 0);
    std::filesystem::remove(path);
}

BOOST_AUTO_TEST_CASE(a_file_name_that_is_not_utf8_is_encoded) {
    manual_clock clk;
    asio::io_context ctx;
    sim::config cfg;
    cfg.api_key = hkey;
    cfg.time = &clk;
    sim::server srv(ctx, cfg);
    srv.start();
    gemini::client_options o;
    o.api_key = hkey;
    o.base_url = srv.base_url();
    o.time = &clk;
    gemini::client c(ctx.get_executor(), o);
    const std::string path = temp_file("name\xff.txt", 10);
    std::optional<resilience::result<gemini::file>> r;
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> { r = co_await c.upload(path); }, test::rethrow{});
    BOOST_REQUIRE(run_virtual(ctx, clk, [&] { return r.has_value(); }));
    BOOST_REQUIRE_MESSAGE(*r, r->error().what());
    BOOST_TEST(gemini::is_valid_utf8((*r)->display_name));
    BOOST_TEST((*r)->display_name.find("\\xff") != std::string::npos, (*r)->display_name);
    srv.stop();
    std::filesystem::remove(path);
}

BOOST_AUTO_TEST_CASE(base_urls_are_validated_fully) {
    asio::io_context ctx;
    for (std::string bad : {"", "http://127.0.0.1:0", "http://127.0.0.1:65536", "http://127.0.0.1:99999999",
                            "http://127.0.0.1:8a", "http://127.0.0.1:", "ftp://h", "http://h/#frag", "http://u:p@h/"}) {
        gemini::client_options o;
        o.api_key = hkey;
        o.base_url = bad;
        BOOST_TEST_CONTEXT("\"" << bad << "\"") {
            bool refused = false;
            try {
                gemini::client c(ctx.get_executor(), o);
            } catch (const resilience::error& e) {
                refused = e.get_failure().code == errc::invalid_config;
            }
            BOOST_TEST(refused);
        }
    }
    gemini::client_options o;
    o.api_key = hkey;
    o.base_url = "http://127.0.0.1:65535/prefix/";
    BOOST_CHECK_NO_THROW(gemini::client(ctx.get_executor(), o));
}

BOOST_AUTO_TEST_SUITE_END()
