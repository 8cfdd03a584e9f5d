// The universal asynchronous model: every public asynchronous operation
// (pipeline::async_run, circuit_breaker::async_wait_for_change,
// http::client::async_send, every gemini::client call, async_run_media_task)
// with every completion token (a callback, deferred, use_awaitable,
// use_future, as_tuple, redirect_error, bind_executor,
// bind_cancellation_slot), diagnostics through the out-parameter, and
// per-operation cancellation through bind_cancellation_slot. Virtual time
// throughout; the HTTP and Gemini ones against the simulator on loopback.
#define BOOST_TEST_MODULE async_operations
#include <resilience/gemini/client.hpp>
#include <resilience/gemini/media_task.hpp>
#include <resilience/retry.hpp>
#include <resilience/sim/server.hpp>
#include <resilience/testing/manual_clock.hpp>

#include "gemini_fixture.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <future>
#include <variant>

using resilience::diagnostics;
using resilience::error_code;
using resilience::time_point;

namespace {

template <class T>
using value_of = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

/// What a completion delivered.
template <class T>
struct outcome {
    bool done = false;
    int calls = 0;
    error_code ec;
    value_of<T> value{};
    void operator()(error_code e) {
        ++calls;
        done = true;
        ec = e;
    }
    template <class U>
    void operator()(error_code e, U&& u) {
        ++calls;
        done = true;
        ec = e;
        value = std::forward<U>(u);
    }
};

const char* const token_names[] = {"callback",      "deferred",       "use_awaitable",  "use_future",
                                   "as_tuple",      "redirect_error", "bind_executor",  "bind_cancellation_slot"};

/// Runs the operation `start(token)` once with each token and hands each
/// outcome to `check`. `start` must start a fresh operation at each call.
template <class T, class Start, class Check>
void each_token(asio::io_context& ctx, manual_clock& clk, Start start, Check check) {
    for (int k = 0; k < 8; ++k) {
        BOOST_TEST_CONTEXT("token " << token_names[k]) {
            outcome<T> out;
            auto cb = [&out](error_code e, auto&&... v) { out(e, std::forward<decltype(v)>(v)...); };
            auto strand = asio::make_strand(ctx);
            asio::cancellation_signal sig;
            std::optional<std::future<value_of<T>>> fut;
            std::optional<std::future<void>> vfut;
            switch (k) {
            case 0: start(cb); break;
            case 1: {
                auto op = start(asio::deferred);
                std::move(op)(cb);
                break;
            }
            case 2:
                asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
                    try {
                        if constexpr (std::is_void_v<T>) {
                            co_await start(asio::use_awaitable);
                            out(error_code());
                        } else {
                            auto v = co_await start(asio::use_awaitable);
                            out(error_code(), std::move(v));
                        }
                    } catch (const boost::system::system_error& e) {
                        out(e.code());
                    }
                }, test::rethrow{});
                break;
            case 3:
                if constexpr (std::is_void_v<T>)
                    vfut.emplace(start(asio::use_future));
                else
                    fut.emplace(start(asio::use_future));
                break;
            case 4:
                asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
                    auto t = co_await start(asio::as_tuple(asio::use_awaitable));
                    std::apply([&](auto&&... a) { out(std::move(a)...); }, std::move(t));
                }, test::rethrow{});
                break;
            case 5:
                asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
                    error_code ec;
                    if constexpr (std::is_void_v<T>) {
                        co_await start(asio::redirect_error(asio::use_awaitable, ec));
                        out(ec);
                    } else {
                        auto v = co_await start(asio::redirect_error(asio::use_awaitable, ec));
                        out(ec, std::move(v));
                    }
                }, test::rethrow{});
                break;
            case 6:
                start(asio::bind_executor(strand, [&out, strand](error_code e, auto&&... v) {
                    BOOST_TEST(strand.running_in_this_thread());  // the handler's associated executor is used
                    out(e, std::forward<decltype(v)>(v)...);
                }));
                break;
            case 7: start(asio::bind_cancellation_slot(sig.slot(), cb)); break;
            }
            auto ready = [&] {
                if (fut) return fut->wait_for(0s) == std::future_status::ready;
                if (vfut) return vfut->wait_for(0s) == std::future_status::ready;
                return out.done;
            };
            BOOST_REQUIRE(run_virtual(ctx, clk, ready));
            if (fut) {
                try {
                    out(error_code(), fut->get());
                } catch (const boost::system::system_error& e) {
                    out(e.code());
                }
            }
            if (vfut) {
                try {
                    vfut->get();
                    out(error_code());
                } catch (const boost::system::system_error& e) {
                    out(e.code());
                }
            }
            BOOST_TEST(out.calls == 1);
            check(out);
        }
    }
}

// A made-up asynchronous operation completing with void(error_code, int):
// fails with connection_reset while `fails` > 0, then yields `v`.
template <class CompletionToken>
auto async_flaky(asio::any_io_executor ex, int& fails, int v, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(error_code, int)>(
        [ex, &fails, v](auto handler) {
            asio::post(ex, [h = std::move(handler), &fails, v]() mutable {
                if (fails > 0) {
                    --fails;
                    std::move(h)(make_error_code(asio::error::connection_reset), 0);
                } else {
                    std::move(h)(error_code(), v);
                }
            });
        },
        token);
}

resilience::retry_options virtual_options(manual_clock& clk) {
    resilience::retry_options o;
    o.time = &clk;
    o.seed = 7;
    o.policy.max_retries = 3;
    o.policy.backoff.initial_delay = 1s;
    return o;
}

const std::string key = "sim-test-key-async";

struct sim_fixture : test::gemini_sim_fixture {
    explicit sim_fixture(sim::config cfg = sim::config()) {
        // No connection timeouts in the simulator: each would keep a watchdog
        // asleep on this clock per open connection (an idle kept-alive one
        // too), so clk.sleepers() would no longer count only the client's
        // sleepers, and run_virtual would walk virtual time in 60 s steps
        // towards the 610 s idle close. These tests are about the client.
        cfg.idle_timeout = cfg.header_timeout = cfg.body_timeout = resilience::duration::zero();
        gemini::client_options opts;
        opts.retry.backoff.initial_delay = 1s;
        start_sim(key, 3, std::move(cfg), std::move(opts));
    }
    ~sim_fixture() {
        client.reset();
        srv->stop();
    }
    /// Nothing left pending in the client: no connection slot held, nobody
    /// waiting for one, nobody asleep on the clock or on the breaker.
    /// `server_sleepers`: the simulator's own (a latency fault's delay).
    void nothing_pending(std::size_t server_sleepers = 0) {
        const auto s = client->http().stats();
        BOOST_TEST(s.in_use == 0u);
        BOOST_TEST(s.waiting == 0u);
        BOOST_TEST(clk.sleepers() == server_sleepers);
        BOOST_TEST(client->breaker().waiters() == 0u);
    }
};

std::string temp_file(const std::string& name, std::size_t size) {
    auto p = std::filesystem::temp_directory_path() / ("async-tests-" + std::to_string(::getpid()) + "-" + name);
    std::string bytes(size, 'x');
    std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return p.string();
}

}  // namespace

// ---- core: the retry combinator

BOOST_AUTO_TEST_CASE(pipeline_async_run_with_every_token) {
    manual_clock clk;
    asio::io_context ctx;
    resilience::pipeline p(virtual_options(clk));
    int calls = 0;
    // Fails once (RETRYABLE_NETWORK), then 42: one backoff on the virtual clock.
    auto factory = [&calls]() -> asio::awaitable<resilience::result<int>> {
        if (calls++ % 2 == 0) co_return resilience::failure(make_error_code(asio::error::connection_reset));
        co_return 42;
    };
    const auto t0 = clk.now();
    each_token<int>(ctx, clk, [&](auto&& token) { return p.async_run(ctx.get_executor(), factory, std::forward<decltype(token)>(token)); },
                    [&](const outcome<int>& o) {
                        BOOST_TEST(!o.ec);
                        BOOST_TEST(o.value == 42);
                    });
    BOOST_TEST(calls == 16);
    BOOST_TEST((clk.now() > t0));  // the backoffs ran in virtual time
}

BOOST_AUTO_TEST_CASE(pipeline_async_run_reports_diagnostics) {
    manual_clock clk;
    asio::io_context ctx;
    resilience::pipeline p(virtual_options(clk));
    auto factory = []() -> asio::awaitable<resilience::result<int>> {
        co_return resilience::failure(make_error_code(resilience::http::errc::server_error), "HTTP 503: overloaded");
    };
    diagnostics diag;
    diag.message = "stale";
    outcome<int> out;
    resilience::call_options call;
    p.async_run(ctx.get_executor(), factory, std::move(call), diag, [&](error_code ec, int v) { out(ec, v); });
    BOOST_REQUIRE(run_virtual(ctx, clk, [&] { return out.done; }));
    BOOST_TEST((out.ec == resilience::http::errc::server_error));
    BOOST_TEST(diag.attempts == 4);
    BOOST_TEST((diag.gave_up == resilience::give_up_reason::max_retries));
    BOOST_TEST(diag.message == "HTTP 503: overloaded");
    // Success clears it.
    auto ok = []() -> asio::awaitable<resilience::result<int>> { co_return 1; };
    outcome<int> out2;
    p.async_run(ctx.get_executor(), ok, resilience::call_options(), diag, [&](error_code ec, int v) { out2(ec, v); });
    BOOST_REQUIRE(run_virtual(ctx, clk, [&] { return out2.done; }));
    BOOST_TEST(!out2.ec);
    BOOST_TEST(diag.message.empty());
    BOOST_TEST(diag.attempts == 0);
}

// Callback-style code gets retries: the factory returns a deferred Asio operation.
BOOST_AUTO_TEST_CASE(pipeline_retries_a_deferred_operation) {
    manual_clock clk;
    asio::io_context ctx;
    resilience::pipeline p(virtual_options(clk));
    int fails = 2;
    auto factory = [&] { return async_flaky(ctx.get_executor(), fails, 7, asio::deferred); };
    outcome<int> out;
    p.async_run(ctx.get_executor(), factory, [&](error_code ec, int v) { out(ec, v); });
    BOOST_REQUIRE(run_virtual(ctx, clk, [&] { return out.done; }));
    BOOST_TEST(!out.ec);
    BOOST_TEST(out.value == 7);
    BOOST_TEST(fails == 0);
    // The co_await spelling takes it too.
    fails = 5;  // more than max_retries: gives up with the operation's own code
    std::optional<resilience::result<int>> r;
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> { r = co_await p.run(factory); }, test::rethrow{});
    BOOST_REQUIRE(run_virtual(ctx, clk, [&] { return r.has_value(); }));
    BOOST_REQUIRE(!*r);
    BOOST_TEST((r->error().code == asio::error::connection_reset));
    BOOST_TEST(r->error().diag.attempts == 4);
}

// The example of the issue: sock.async_connect(ep, asio::deferred), refused
// until the server listens.
BOOST_AUTO_TEST_CASE(pipeline_retries_async_connect) {
    manual_clock clk;
    asio::io_context ctx;
    resilience::pipeline p(virtual_options(clk));
    asio::ip::tcp::acceptor probe(ctx, {asio::ip::make_address("127.0.0.1"), 0});
    const asio::ip::tcp::endpoint ep = probe.local_endpoint();
    probe.close();  // nobody listens there: connection refused
    std::optional<asio::ip::tcp::acceptor> acc;
    asio::ip::tcp::socket sock(ctx);
    int attempts = 0;
    auto factory = [&] {
        if (attempts++ == 1) acc.emplace(ctx, ep);  // the server comes up before the second attempt
        sock.close();
        return sock.async_connect(ep, asio::deferred);
    };
    outcome<void> out;
    p.async_run(ctx.get_executor(), factory, [&](error_code ec) { out(ec); });
    BOOST_REQUIRE(run_virtual(ctx, clk, [&] { return out.done; }));
    BOOST_TEST(!out.ec, out.ec.message());
    BOOST_TEST(attempts == 2);
    BOOST_TEST(sock.is_open());
}

BOOST_AUTO_TEST_CASE(pipeline_per_operation_cancellation) {
    manual_clock clk;
    asio::io_context ctx;
    auto o = virtual_options(clk);
    o.policy.backoff.initial_delay = 10s;
    o.breaker = std::make_shared<resilience::circuit_breaker>(resilience::breaker_config{}, &clk);
    resilience::pipeline p(o);
    auto factory = []() -> asio::awaitable<resilience::result<int>> {
        co_return resilience::failure(make_error_code(resilience::http::errc::server_error));
    };
    asio::cancellation_signal sig;
    diagnostics diag;
    outcome<int> out;
    const auto t0 = clk.now();
    p.async_run(ctx.get_executor(), factory, resilience::call_options(), diag,
                asio::bind_cancellation_slot(sig.slot(), [&](error_code ec, int v) { out(ec, v); }));
    // Run until it sleeps in its first backoff, then cancel.
    BOOST_REQUIRE(run_virtual(ctx, clk, [&] { return clk.sleepers() == 1; }));
    BOOST_TEST(!out.done);
    sig.emit(asio::cancellation_type::terminal);
    BOOST_REQUIRE(run_virtual(ctx, clk, [&] { return out.done; }));
    BOOST_TEST((out.ec == asio::error::operation_aborted));
    BOOST_TEST((diag.gave_up == resilience::give_up_reason::cancelled));
    BOOST_TEST(diag.attempts == 1);
    BOOST_TEST((clk.now() == t0));  // woken at once, not at the end of the backoff
    BOOST_TEST(clk.sleepers() == 0u);
    BOOST_TEST(o.breaker->waiters() == 0u);
    ctx.poll();
    BOOST_TEST(out.calls == 1);
}

// ---- core: the breaker's admission wait

BOOST_AUTO_TEST_CASE(breaker_async_wait_for_change_with_every_token) {
    manual_clock clk;
    asio::io_context ctx;
    resilience::circuit_breaker b(resilience::breaker_config{}, &clk);
    bool isolated = false;
    each_token<void>(ctx, clk,
                     [&](auto&& token) {
                         // Wait for the next change, then make one.
                         auto v = b.snapshot().version();
                         asio::post(ctx, [&] {
                             if (isolated) b.reset(); else b.isolate();
                             isolated = !isolated;
                         });
                         return b.async_wait_for_change(ctx.get_executor(), v, std::forward<decltype(token)>(token));
                     },
                     [&](const outcome<void>& o) { BOOST_TEST(!o.ec); });
    BOOST_TEST(b.waiters() == 0u);
}

BOOST_AUTO_TEST_CASE(breaker_async_wait_cancelled) {
    manual_clock clk;
    asio::io_context ctx;
    resilience::circuit_breaker b(resilience::breaker_config{}, &clk);
    b.isolate();
    asio::cancellation_signal sig;
    outcome<void> out;
    b.async_wait_for_change(ctx.get_executor(), b.snapshot().version(),
                            asio::bind_cancellation_slot(sig.slot(), [&](error_code ec) { out(ec); }));
    BOOST_REQUIRE(run_virtual(ctx, clk, [&] { return b.waiters() == 1; }));
    sig.emit(asio::cancellation_type::terminal);
    BOOST_REQUIRE(run_virtual(ctx, clk, [&] { return out.done; }));
    BOOST_TEST((out.ec == asio::error::operation_aborted));
    BOOST_TEST(b.waiters() == 0u);
}

BOOST_AUTO_TEST_CASE(the_handlers_allocator_is_kept) {
    using handler = resilience::detail::result_handler<
        asio::allocator_binder<std::function<void(error_code, int)>, std::allocator<char>>, int, asio::any_io_executor>;
    asio::io_context ctx;
    handler h{asio::bind_allocator(std::allocator<char>(), std::function<void(error_code, int)>()), nullptr,
              ctx.get_executor()};
    static_assert(std::is_same_v<asio::associated_allocator_t<handler>, std::allocator<char>>);
    // Without an associated executor, the handler runs on the object's executor.
    BOOST_TEST((asio::get_associated_executor(h) == asio::any_io_executor(ctx.get_executor())));
}

// ---- HTTP

BOOST_AUTO_TEST_CASE(http_async_send_with_every_token) {
    sim_fixture fx;
    const std::string name = fx.srv->add_file("hello", "text/plain");
    resilience::http::client& c = fx.client->http();
    const std::string url = fx.srv->base_url() + "/v1beta/" + name;
    each_token<resilience::http::response>(fx.ctx, fx.clk,
                                           [&](auto&& token) {
                                               resilience::http::request req;
                                               req.url = url;
                                               req.headers.set("x-goog-api-key", key);
                                               return c.async_send(std::move(req), std::forward<decltype(token)>(token));
                                           },
                                           [&](const outcome<resilience::http::response>& o) {
                                               BOOST_TEST(!o.ec, o.ec.message());
                                               BOOST_TEST(o.value.status == 200);
                                               BOOST_TEST(o.value.body.find(name) != std::string::npos);
                                           });
    // A failure with diagnostics: a URL the client refuses.
    resilience::http::request bad;
    bad.url = "ftp://example.invalid/";
    diagnostics diag;
    outcome<resilience::http::response> out;
    c.async_send(std::move(bad), diag, [&](error_code ec, resilience::http::response r) { out(ec, std::move(r)); });
    BOOST_REQUIRE(run_virtual(fx.ctx, fx.clk, [&] { return out.done; }));
    BOOST_TEST((out.ec == errc::invalid_argument));
    BOOST_TEST(!diag.message.empty());
    fx.nothing_pending();
}

// ---- Gemini

BOOST_AUTO_TEST_CASE(gemini_get_list_remove_with_every_token) {
    sim_fixture fx;
    gemini::client& c = *fx.client;
    std::vector<std::string> names;
    for (int i = 0; i < 8; ++i) names.push_back(fx.srv->add_file("file " + std::to_string(i), "text/plain"));
    each_token<gemini::file>(fx.ctx, fx.clk,
                             // Without options (the client's defaults); the forms with options below.
                             [&](auto&& token) { return c.async_get(names[0], std::forward<decltype(token)>(token)); },
                             [&](const outcome<gemini::file>& o) {
                                 BOOST_TEST(!o.ec, o.ec.message());
                                 BOOST_TEST(o.value.name == names[0]);
                             });
    each_token<std::vector<gemini::file>>(fx.ctx, fx.clk,
                                          [&](auto&& token) { return c.async_list(std::forward<decltype(token)>(token)); },
                                          [&](const outcome<std::vector<gemini::file>>& o) {
                                              BOOST_TEST(!o.ec, o.ec.message());
                                              BOOST_TEST(o.value.size() == 8u);
                                          });
    std::size_t next = 0;
    each_token<void>(fx.ctx, fx.clk,
                     [&](auto&& token) { return c.async_remove(names.at(next++), time_point::max(), std::forward<decltype(token)>(token)); },
                     [&](const outcome<void>& o) { BOOST_TEST(!o.ec, o.ec.message()); });
    BOOST_TEST(fx.srv->snapshot().files == 0u);
    // Diagnostics of a failed call.
    diagnostics diag;
    outcome<gemini::file> out;
    c.async_get(names[0], time_point::max(), diag, [&](error_code ec, gemini::file f) { out(ec, std::move(f)); });
    BOOST_REQUIRE(run_virtual(fx.ctx, fx.clk, [&] { return out.done; }));
    BOOST_TEST((out.ec == resilience::http::errc::forbidden));
    BOOST_TEST(diag.http_status == 403);
    BOOST_TEST(diag.status == "PERMISSION_DENIED");
    // The same without options, diagnostics kept.
    diagnostics diag2;
    outcome<gemini::file> out2;
    c.async_get(names[0], diag2, [&](error_code ec, gemini::file f) { out2(ec, std::move(f)); });
    BOOST_REQUIRE(run_virtual(fx.ctx, fx.clk, [&] { return out2.done; }));
    BOOST_TEST((out2.ec == resilience::http::errc::forbidden));
    BOOST_TEST(diag2.http_status == 403);
    // remove without options, with diagnostics: the file is gone.
    diagnostics diag3;
    outcome<void> out3;
    c.async_remove(names[0], diag3, [&](error_code ec) { out3(ec); });
    BOOST_REQUIRE(run_virtual(fx.ctx, fx.clk, [&] { return out3.done; }));
    BOOST_TEST((out3.ec == resilience::http::errc::forbidden));
    BOOST_TEST(diag3.http_status == 403);
    fx.nothing_pending();
}

BOOST_AUTO_TEST_CASE(gemini_upload_wait_generate_with_every_token) {
    sim::config cfg;
    cfg.processing = sim::processing_time::fixed(3s);
    sim_fixture fx(cfg);
    gemini::client& c = *fx.client;
    const std::string path = temp_file("clip.mp4", 1000);
    std::vector<std::string> uploaded;
    each_token<gemini::file>(fx.ctx, fx.clk,
                             [&](auto&& token) { return c.async_upload(path, gemini::upload_options(), std::forward<decltype(token)>(token)); },
                             [&](const outcome<gemini::file>& o) {
                                 BOOST_TEST(!o.ec, o.ec.message());
                                 BOOST_TEST(o.value.size_bytes == 1000);
                                 uploaded.push_back(o.value.name);
                             });
    BOOST_REQUIRE(uploaded.size() == 8u);
    std::size_t next = 0;
    each_token<gemini::file>(fx.ctx, fx.clk,
                             [&](auto&& token) {
                                 // Without options: wait_options().
                                 return c.async_wait_until_active(uploaded.at(next++), std::forward<decltype(token)>(token));
                             },
                             [&](const outcome<gemini::file>& o) {
                                 BOOST_TEST(!o.ec, o.ec.message());
                                 BOOST_TEST((o.value.state == gemini::file_state::active));
                             });
    each_token<gemini::generate_result>(fx.ctx, fx.clk,
                                        [&](auto&& token) {
                                            std::vector<gemini::content> contents{
                                                {"user", {gemini::part::from_text("Describe it")}}};
                                            return c.async_generate_content("gemini-2.0-flash", std::move(contents),
                                                                            time_point::max(),
                                                                            std::forward<decltype(token)>(token));
                                        },
                                        [&](const outcome<gemini::generate_result>& o) {
                                            BOOST_TEST(!o.ec, o.ec.message());
                                            BOOST_TEST(!o.value.text.empty());
                                        });
    each_token<gemini::media_task_result>(fx.ctx, fx.clk,
                                          [&](auto&& token) {
                                              gemini::media_task_options t;
                                              t.file_path = path;
                                              t.delete_after = true;
                                              t.build_contents = [](const gemini::file& f) {
                                                  return std::vector<gemini::content>{
                                                      {"user", {gemini::part::from_file(f), gemini::part::from_text("Describe it")}}};
                                              };
                                              return gemini::async_run_media_task(c, std::move(t), std::forward<decltype(token)>(token));
                                          },
                                          [&](const outcome<gemini::media_task_result>& o) {
                                              BOOST_TEST(!o.ec, o.ec.message());
                                              BOOST_TEST(!o.value.generated.text.empty());
                                          });
    fx.nothing_pending();
    std::filesystem::remove(path);
}

BOOST_AUTO_TEST_CASE(gemini_wait_cancelled_through_bind_cancellation_slot) {
    sim::config cfg;
    cfg.processing = sim::processing_time::fixed(1h);
    sim_fixture fx(cfg);
    const std::string name = fx.srv->add_file("slow", "video/mp4");
    asio::cancellation_signal sig;
    diagnostics diag;
    outcome<gemini::file> out;
    const auto t0 = fx.clk.now();
    fx.client->async_wait_until_active(name, gemini::wait_options(), diag,
                                       asio::bind_cancellation_slot(sig.slot(), [&](error_code ec, gemini::file f) {
                                           out(ec, std::move(f));
                                       }));
    // Let it poll a few times, then cancel while it sleeps between polls.
    BOOST_REQUIRE(run_virtual(fx.ctx, fx.clk, [&] { return fx.clk.now() >= t0 + 5s && fx.clk.sleepers() == 1; }));
    const auto polls = fx.srv->snapshot().polls_of(name);
    BOOST_TEST(polls >= 2u);
    BOOST_TEST(!out.done);
    const auto t1 = fx.clk.now();
    sig.emit(asio::cancellation_type::terminal);
    BOOST_REQUIRE(run_virtual(fx.ctx, fx.clk, [&] { return out.done; }));
    BOOST_TEST((out.ec == asio::error::operation_aborted));
    BOOST_TEST(diag.message.find("cancelled") != std::string::npos);
    BOOST_TEST((fx.clk.now() == t1));  // at once
    BOOST_TEST(fx.srv->snapshot().polls_of(name) == polls);
    fx.nothing_pending();

    // Cancelled while a request is in flight (the server delays the answer).
    auto slow = sim::fault(sim::fault_kind::latency, sim::route::get);
    slow.latency = 10s;
    fx.srv->add_fault(slow);
    outcome<gemini::file> out2;
    fx.client->async_get(name, time_point::max(), asio::bind_cancellation_slot(sig.slot(), [&](error_code ec, gemini::file f) {
                             out2(ec, std::move(f));
                         }));
    // The server holds the request (its latency fault is counted as it starts
    // the delay); the client itself may have timers of its own asleep too.
    BOOST_REQUIRE(run_virtual(fx.ctx, fx.clk, [&] {
        return fx.client->http().stats().in_use == 1u && fx.srv->snapshot().faults_injected >= 1u;
    }));
    const auto t2 = fx.clk.now();
    sig.emit(asio::cancellation_type::terminal);
    BOOST_REQUIRE(run_virtual(fx.ctx, fx.clk, [&] { return out2.done; }));
    BOOST_TEST((out2.ec == asio::error::operation_aborted));
    BOOST_TEST((fx.clk.now() < t2 + 10s));  // before the server's answer
    fx.nothing_pending(1);  // the server still holds its 10 s latency
}
